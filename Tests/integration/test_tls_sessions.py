"""TLS sessions: resumption with tickets and with the session cache over TLS 1.2 and 1.3, compared
with memcached 1.6.18 -Z; and, Cachet only, sessions scoped per kind of listener (a session never lets a
client skip the certificate an `mtls:` listener requires) and `ssl_ticket_key_file` (keys shared
between instances, rotation, bad files).

Each server gets a TLS listener and a `notls:` listener (tlstools.TLSServer); the readiness probe and
all `stats`/`refresh_certs` control traffic use the plaintext one, so they never count as failed
handshakes. Certificates: tlscerts.shared(), made with the `openssl` CLI when the module starts.
"""

import os
import shutil
import ssl
import subprocess
import tempfile
import unittest

import tlscerts
from harness import HarnessError, cachet_bin, free_port, wait_for
from tlscerts import LiveFiles
from tlstools import LocalhostTLSCase, localhost_cert, localhost_client_ctx, client_ctx
from difftools import Pair


CERT_DIR = None   # scratch directory of this module
CERT = KEY = None  # the self-signed localhost certificate (tlstools.localhost_cert)
CA_CERTS = CERTS = None   # CA-signed server and client certificates (tlscerts.shared)


def setUpModule():
    global CERT_DIR, CERT, KEY, CA_CERTS, CERTS
    CA_CERTS = CERTS = tlscerts.shared()
    CERT, KEY = localhost_cert()
    CERT_DIR = tempfile.mkdtemp(prefix="cachet-tlshard-")


def tearDownModule():
    if CERT_DIR:
        shutil.rmtree(CERT_DIR, ignore_errors=True)


class TLSSessionResumption(unittest.TestCase):
    """Tickets are on in both servers: resumption works for 1.2 and 1.3 with and without
    ssl_session_cache; asserted for memcached too so the test is not vacuous."""

    def test_resumption(self):
        for cache in (False, True):
            live = LiveFiles(CERTS, "sess")
            p = Pair(live=live, opts=["ssl_session_cache"] if cache else []).start()
            try:
                for s in p.both():
                    for version in ("1.2", "1.3"):
                        with self.subTest(server=s.name, cache=cache, version=version):
                            ctx = client_ctx(version)
                            with s.tls(ctx) as c1:
                                self.assertEqual(c1.cmd("version")[:8], b"VERSION ")
                                self.assertFalse(c1.sock.session_reused)
                                sess = c1.sock.session
                            self.assertIsNotNone(sess)
                            with s.tls(ctx, session=sess) as c2:
                                self.assertTrue(c2.sock.session_reused, f"{s.name} TLS{version} not resumed")
                                self.assertEqual(c2.cmd("set r 0 0 1\r\nx"), b"STORED\r\n")
                    if cache:
                        # OpenSSL-defined count (2 per full TLS 1.3 handshake); loosely
                        self.assertGreaterEqual(s.stat_int("ssl_new_sessions"), 1, s.name)
                    else:
                        self.assertIsNone(s.stat("ssl_new_sessions"))
            finally:
                p.stop()


class SessionScopePerListener(LocalhostTLSCase):
    """A session (session id or ticket, TLS 1.2 and 1.3) made on one kind of listener never resumes on a
    listener with another verification mode: above all, one made without a client certificate must not
    let a client skip the certificate an `mtls:` listener requires. Counted in ssl_handshakes and
    ssl_resumed_handshakes."""

    def ctx(self, version, cert=False):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.load_verify_locations(CA_CERTS.ca_crt)
        v = ssl.TLSVersion.TLSv1_2 if version == "1.2" else ssl.TLSVersion.TLSv1_3
        c.minimum_version = c.maximum_version = v
        if cert:
            c.load_cert_chain(CA_CERTS.client_crt, CA_CERTS.client_key)
        return c

    def session_from(self, s, port, ctx):
        with s.tls(ctx, port=port) as c:
            self.assertEqual(c.cmd("version")[:8], b"VERSION ")   # a TLS 1.3 ticket arrives after the handshake
            return c.sock.session

    def attempt(self, s, port, ctx, session):
        """'resumed', 'full' (served after a full handshake) or 'refused'."""
        try:
            with s.tls(ctx, port=port, session=session, timeout=5) as c:
                if c.cmd("version")[:8] != b"VERSION ":
                    return "refused"
                return "resumed" if c.sock.session_reused else "full"
        except (OSError, HarnessError):
            return "refused"

    def test_sessions_stay_on_their_kind_of_listener(self):
        for cache in (False, True):
            opts = ["ssl_ca_cert=" + CA_CERTS.ca_crt] + (["ssl_session_cache"] if cache else [])
            s = self.start(opts, listeners=("btls", "mtls"), cert=CA_CERTS.server1_crt, key=CA_CERTS.server1_key)
            default, bt, mt = s.tls_port, s.extra_ports["btls"], s.extra_ports["mtls"]
            for version in ("1.2", "1.3"):
                with self.subTest(cache=cache, version=version):
                    anon, withcert = self.ctx(version), self.ctx(version, cert=True)
                    h0, r0 = s.stat_int("ssl_handshakes"), s.stat_int("ssl_resumed_handshakes")
                    plain_sess = self.session_from(s, default, anon)
                    btls_sess = self.session_from(s, bt, anon)
                    mtls_sess = self.session_from(s, mt, withcert)
                    got = {
                        # each resumes where it was made (the check is not vacuous)
                        "default→default": self.attempt(s, default, anon, plain_sess),
                        "btls→btls": self.attempt(s, bt, anon, btls_sess),
                        "mtls→mtls": self.attempt(s, mt, withcert, mtls_sess),
                        # a session without a client certificate gets no way past mtls:
                        "default→mtls": self.attempt(s, mt, anon, plain_sess),
                        "btls→mtls": self.attempt(s, mt, anon, btls_sess),
                        # and none crosses to another kind of listener
                        "mtls→btls": self.attempt(s, bt, withcert, mtls_sess),
                        "btls→default": self.attempt(s, default, anon, btls_sess),
                        "mtls→default": self.attempt(s, default, withcert, mtls_sess),
                    }
                    self.assertEqual(got, {
                        "default→default": "resumed", "btls→btls": "resumed", "mtls→mtls": "resumed",
                        "default→mtls": "refused", "btls→mtls": "refused",
                        "mtls→btls": "full", "btls→default": "full", "mtls→default": "full"})
                    # 3 first handshakes + 6 served attempts, 3 of them resumed
                    wait_for(lambda: s.stat_int("ssl_handshakes") == h0 + 9, timeout=5,
                             what=f"ssl_handshakes == {h0 + 9}")
                    self.assertEqual(s.stat_int("ssl_resumed_handshakes"), r0 + 3)
            s.srv.stop()


class TicketKeyFile(LocalhostTLSCase):
    """`-o ssl_ticket_key_file`: instances sharing the file resume each other's sessions (TLS 1.2 and 1.3);
    keys rotate by prepending, re-read on refresh_certs; bad files are a startup error or a failed refresh."""

    def key_file(self, name, data):
        path = os.path.join(CERT_DIR, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return path

    CTXS = {}

    def ctx(self, version):
        # Python resumes a session only through the SSLContext that made it.
        if version not in self.CTXS:
            self.CTXS[version] = localhost_client_ctx(version)
        return self.CTXS[version]

    def session(self, s, version):
        with s.tls(self.ctx(version)) as c:
            self.assertEqual(c.cmd("version")[:8], b"VERSION ")   # a TLS 1.3 ticket arrives after the handshake
            return c.sock.session

    def resumes(self, s, version, sess):
        with s.tls(self.ctx(version), session=sess) as c:
            self.assertEqual(c.cmd("version")[:8], b"VERSION ")
            return c.sock.session_reused

    def test_instances_sharing_the_file_resume_each_others_sessions(self):
        path = self.key_file("shared.key", os.urandom(160))
        a = self.start([f"ssl_ticket_key_file={path}"])
        b = self.start([f"ssl_ticket_key_file={path}"])
        other = self.start()   # its own generated keys
        self.assertEqual(b.stats_dict("settings")["ssl_ticket_key_file"], path)
        self.assertEqual(other.stats_dict("settings")["ssl_ticket_key_file"], "NULL")
        for version in ("1.2", None):
            with self.subTest(version=version or "1.3"):
                r0 = b.stat_int("ssl_resumed_handshakes")
                sess = self.session(a, version)
                self.assertTrue(self.resumes(b, version, sess), "B did not resume A's session")
                self.assertTrue(self.resumes(a, version, self.session(b, version)), "A did not resume B's session")
                self.assertFalse(self.resumes(other, version, sess), "a server without the keys resumed")
                self.assertEqual(b.stat_int("ssl_resumed_handshakes"), r0 + 1)

    def test_rotation_by_prepending_and_refresh(self):
        k1, k2 = os.urandom(80), os.urandom(80)
        path = self.key_file("rotating.key", k1)
        s = self.start([f"ssl_ticket_key_file={path}"])
        for version in ("1.2", None):
            with self.subTest(version=version or "1.3"):
                self.key_file("rotating.key", k1)
                with s.plain() as c:
                    self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
                old = self.session(s, version)
                self.key_file("rotating.key", k2 + k1)          # new key first: it encrypts, k1 still decrypts
                with s.plain() as c:
                    self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
                self.assertTrue(self.resumes(s, version, old), "a ticket under the second key did not resume")
                new = self.session(s, version)
                self.key_file("rotating.key", k2)               # k1 retired
                with s.plain() as c:
                    self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
                self.assertFalse(self.resumes(s, version, old), "a ticket under a retired key resumed")
                self.assertTrue(self.resumes(s, version, new))

    def test_bad_files_stop_startup_and_fail_refresh(self):
        missing = os.path.join(CERT_DIR, "no-such.key")
        cases = {"missing": (missing, "No such file or directory"),
                 "empty": (self.key_file("empty.key", b""), "the file is empty"),
                 "short": (self.key_file("short.key", os.urandom(79)), "79 bytes is not a whole number of 80-byte keys"),
                 "torn": (self.key_file("torn.key", os.urandom(120)), "120 bytes is not a whole number of 80-byte keys"),
                 "huge": (self.key_file("huge.key", os.urandom(80 * 65)), "more than 64 keys"),
                 "nginx 48-byte": (self.key_file("short48.key", os.urandom(96)),
                                   "96 bytes: 48-byte keys (AES-128) are not read, make 80-byte ones (openssl rand 80)"),
                 "directory": (CERT_DIR, "Is a directory")}
        for label, (path, reason) in cases.items():
            with self.subTest(label):
                r = subprocess.run([cachet_bin(), "-u", "root", "-U", "0", "-p", str(free_port()), "-Z",
                                    "-o", f"ssl_chain_cert={CERT},ssl_key={KEY},ssl_ticket_key_file={path}"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertEqual(r.stderr, f"Error loading the ticket key file: {path} : {reason}\r\n".encode())
        # At run time a bad file fails the refresh and the keys in use stay.
        path = self.key_file("live.key", os.urandom(80))
        s = self.start([f"ssl_ticket_key_file={path}"])
        sess = self.session(s, "1.2")
        fails0 = s.stat_int("ssl_cert_reload_failures")
        self.key_file("live.key", os.urandom(100))
        with s.plain() as c:
            self.assertEqual(c.cmd("refresh_certs"),
                             f"Error loading the ticket key file: {path} : 100 bytes is not a whole number of "
                             f"80-byte keys\r\n".encode())
        self.assertEqual(s.stat_int("ssl_cert_reload_failures"), fails0 + 1)
        self.assertTrue(self.resumes(s, "1.2", sess), "the failed refresh replaced the keys")

    def test_generated_keys_survive_refresh(self):
        s = self.start()
        for version in ("1.2", None):
            sess = self.session(s, version)
            with s.plain() as c:
                self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
            self.assertTrue(self.resumes(s, version, sess), version)


if __name__ == "__main__":
    unittest.main()
