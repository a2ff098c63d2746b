"""Cachet-only TLS certificate options: ssl_auto_reload (changed files reload, half-changed pairs
wait), ssl_verify_name (client certificate names on verifying listeners), ssl_alt_chain_cert/ssl_alt_key
(an ECDSA certificate next to the RSA one, each client served one it can verify).

Servers use a self-signed CN=localhost certificate (tlstools.localhost_cert) or CA-signed ones
(tlscerts.shared), with a TLS listener and a `notls:` one for stats and control traffic.
"""

import os
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest

import tlscerts
from harness import HarnessError, cachet_bin, free_port, wait_for
from tlstools import LocalhostTLSCase, localhost_cert, localhost_client_ctx


CERT_DIR = None   # scratch directory of this module
CERT = KEY = None  # the self-signed localhost certificate (tlstools.localhost_cert)
CA_CERTS = None   # CA-signed server and client certificates (tlscerts.shared)


def setUpModule():
    global CERT_DIR, CERT, KEY, CA_CERTS
    CA_CERTS = tlscerts.shared()
    CERT, KEY = localhost_cert()
    CERT_DIR = tempfile.mkdtemp(prefix="cachet-tlshard-")


def tearDownModule():
    if CERT_DIR:
        shutil.rmtree(CERT_DIR, ignore_errors=True)


class AutoReload(LocalhostTLSCase):
    """`-o ssl_auto_reload=<s>`: changed certificate/key/CA/ticket-key files are reloaded without a
    command; a half-replaced pair never replaces the serving context and is retried once the files
    change again."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="autoreload-", dir=CERT_DIR)
        self.chain, self.key = os.path.join(self.dir, "chain.pem"), os.path.join(self.dir, "key.pem")
        self.put(CA_CERTS.server1_crt, self.chain)
        self.put(CA_CERTS.server1_key, self.key)

    @staticmethod
    def put(src, dst):
        shutil.copyfile(src, dst + ".tmp")
        os.replace(dst + ".tmp", dst)

    def ou(self, s):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(CA_CERTS.ca_crt)
        with s.tls(ctx) as c:
            subject = {k: v for rdn in c.sock.getpeercert()["subject"] for (k, v) in rdn}
            return subject.get("organizationalUnitName")

    def test_changed_files_reload_and_half_pairs_wait(self):
        s = self.start(["ssl_auto_reload=1"], cert=self.chain, key=self.key)
        self.assertEqual(s.stats_dict("settings")["ssl_auto_reload"], "1")
        self.assertEqual(self.ou(s), "first")
        fails0 = s.stat_int("ssl_cert_reload_failures")
        # New certificate next to the old key: the reload fails (once), the old pair keeps serving.
        self.put(CA_CERTS.server2_crt, self.chain)
        wait_for(lambda: s.stat_int("ssl_cert_reload_failures") == fails0 + 1, timeout=5,
                 what="the half-replaced pair tried and refused")
        self.assertEqual(self.ou(s), "first")
        err = s.srv.stderr()
        self.assertIn(b"Could not reload TLS certificates (ssl_auto_reload): Error loading the key: ", err)
        self.assertIn(b"key values mismatch", err)
        # The matching key arrives: the next look loads the pair.
        self.put(CA_CERTS.server2_key, self.key)
        wait_for(lambda: self.ou(s) == "second", timeout=5, what="the new pair served")
        self.assertEqual(s.stat_int("ssl_cert_reload_failures"), fails0 + 1, "a failed state was retried")
        self.assertLessEqual(s.stat_int("time_since_server_cert_refresh"), 2)

    def test_off_by_default(self):
        s = self.start(cert=self.chain, key=self.key)
        self.assertEqual(s.stats_dict("settings")["ssl_auto_reload"], "0")
        self.put(CA_CERTS.server2_crt, self.chain)
        self.put(CA_CERTS.server2_key, self.key)
        # Absence of a reload over 2.5 s; then the manual one still works.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            self.assertEqual(self.ou(s), "first")
            time.sleep(0.25)
        with s.plain() as c:
            self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
        self.assertEqual(self.ou(s), "second")

    def test_ticket_key_file_change_is_picked_up(self):
        keys = os.path.join(self.dir, "tickets.key")
        with open(keys, "wb") as f:
            f.write(os.urandom(80))
        s = self.start(["ssl_auto_reload=1", f"ssl_ticket_key_file={keys}"], cert=self.chain, key=self.key)
        ctx = localhost_client_ctx("1.2")
        ctx.load_verify_locations(CA_CERTS.ca_crt)
        with s.tls(ctx) as c:
            self.assertEqual(c.cmd("version")[:8], b"VERSION ")
            sess = c.sock.session

        def resumes():
            with s.tls(ctx, session=sess) as c:
                return c.sock.session_reused
        self.assertTrue(resumes())
        with open(keys + ".tmp", "wb") as f:
            f.write(os.urandom(80))                    # the old key retired
        os.replace(keys + ".tmp", keys)
        wait_for(lambda: not resumes(), timeout=5, what="the new key file in use")


def make_client_cert(name, subject_cn, san):
    """A client certificate signed by CA_CERTS' CA; `san` is an extension value or None (no SAN)."""
    d = CA_CERTS.root
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
        if san:
            f.write(f"subjectAltName={san}\n")
    run = lambda *a: subprocess.run(["openssl", *a], cwd=d, check=True, stdin=subprocess.DEVNULL,  # noqa: E731
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/O=Cachet Tests/CN={subject_cn}",
        "-keyout", f"{name}.key", "-out", f"{name}.csr")
    run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", f"{name}.crt")
    return os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")


class VerifyName(LocalhostTLSCase):
    """`-o ssl_verify_name`: where client certificates are verified, the certificate's DNS names (or its
    CN when it has none) must match a configured name; `*.` stands for exactly one label."""

    NAMES = "*.cache.example:exact.example"

    @classmethod
    def setUpClass(cls):
        cls.certs = {
            "one-label": make_client_cert("vn-a", "ignored", "DNS:a.cache.example"),
            "two-labels": make_client_cert("vn-deep", "ignored", "DNS:a.b.cache.example"),
            "bare-domain": make_client_cert("vn-bare", "ignored", "DNS:cache.example"),
            "cn-ignored-when-dns": make_client_cert("vn-other", "a.cache.example", "DNS:evil.example"),
            "cn-only": make_client_cert("vn-cn", "EXACT.example", None),
            "second-san": make_client_cert("vn-second", "ignored", "DNS:evil.example,DNS:exact.example"),
            "spiffe-web": make_client_cert("vn-sp-web", "ignored", "URI:spiffe://prod.example/ns/cache/sa/web"),
            "spiffe-batch": make_client_cert("vn-sp-batch", "ignored", "URI:spiffe://prod.example/ns/batch/sa/job"),
            "spiffe-admin": make_client_cert("vn-sp-admin", "ignored", "URI:spiffe://prod.example/admin"),
            "spiffe-admin-longer": make_client_cert("vn-sp-admin2", "ignored", "URI:spiffe://prod.example/admin2"),
        }

    def ctx(self, cert=None):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.load_verify_locations(CA_CERTS.ca_crt)
        if cert:
            c.load_cert_chain(*self.certs[cert])
        return c

    def outcome(self, s, port, cert):
        try:
            with s.tls(self.ctx(cert), port=port, timeout=5) as c:
                r = c.cmd("version")
                return "ok" if r.startswith(b"VERSION ") else f"reply {r!r}"
        except (OSError, HarnessError):
            return "refused"

    def test_names_on_verifying_listeners(self):
        s = self.start(["ssl_ca_cert=" + CA_CERTS.ca_crt, "ssl_verify_name=" + self.NAMES], listeners=("mtls", "btls"),
                       cert=CA_CERTS.server1_crt, key=CA_CERTS.server1_key)
        self.assertEqual(s.stats_dict("settings")["ssl_verify_name"], self.NAMES)
        mt, bt = s.extra_ports["mtls"], s.extra_ports["btls"]
        with s.plain() as w:
            w.send(b"watch connevents\r\n")
            # The watch's first reply; an event may follow in the same read (the close of the connection
            # that read the stats just before), so read exactly its bytes, not up to a buffer ending in OK.
            self.assertEqual(w.read_exact(4), b"OK\r\n")
            got = {name: self.outcome(s, mt, name) for name in self.certs if not name.startswith("spiffe")}
            got["no certificate"] = self.outcome(s, mt, None)
            self.assertEqual(got, {"one-label": "ok", "two-labels": "refused", "bare-domain": "refused",
                                   "cn-ignored-when-dns": "refused", "cn-only": "ok", "second-san": "ok",
                                   "no certificate": "refused"})
            deadline = time.monotonic() + 5
            while w.buf.count(b"names none of ssl_verify_name") < 3:
                chunk = w._recv("conntlserr lines", deadline)
                self.assertTrue(chunk, "watcher closed")
                w.buf += chunk
        wait_for(lambda: s.stat_int("ssl_verify_name_failures") == 3, timeout=5, what="3 name failures")
        # Listeners that do not verify client certificates ignore the names.
        for port in (s.tls_port, bt):
            self.assertEqual(self.outcome(s, port, "two-labels"), "ok")
            self.assertEqual(self.outcome(s, port, None), "ok")
        self.assertEqual(s.stat_int("ssl_verify_name_failures"), 3)
        # The identity shows in `stats conns`.
        held = s.tls(self.ctx("one-label"), port=mt)
        self.addCleanup(held.close)
        self.assertEqual(held.cmd("version")[:8], b"VERSION ")
        with s.plain() as c:
            raw = c.roundtrip(b"stats conns\r\n")
        self.assertIn(b":tls_peer_name a.cache.example\r\n", raw)

    URIS = ("spiffe://prod.example/ns/cache/*", "spiffe://prod.example/admin")

    def test_spiffe_uris(self):
        # ssl_verify_uri (repeatable): URI subjectAltNames, exact or up to a final `*`; with only URIs given,
        # DNS names and the CN do not count.
        s = self.start(["ssl_ca_cert=" + CA_CERTS.ca_crt] + ["ssl_verify_uri=" + u for u in self.URIS],
                       listeners=("mtls",), cert=CA_CERTS.server1_crt, key=CA_CERTS.server1_key)
        self.assertEqual(s.stats_dict("settings")["ssl_verify_uri"], " ".join(self.URIS))
        mt = s.extra_ports["mtls"]
        got = {name: self.outcome(s, mt, name) for name in
               ("spiffe-web", "spiffe-batch", "spiffe-admin", "spiffe-admin-longer", "one-label", "cn-only")}
        self.assertEqual(got, {"spiffe-web": "ok", "spiffe-batch": "refused", "spiffe-admin": "ok",
                               "spiffe-admin-longer": "refused", "one-label": "refused", "cn-only": "refused"})
        wait_for(lambda: s.stat_int("ssl_verify_name_failures") == 4, timeout=5, what="4 failures")
        held = s.tls(self.ctx("spiffe-web"), port=mt)
        self.addCleanup(held.close)
        self.assertEqual(held.cmd("version")[:8], b"VERSION ")
        with s.plain() as c:
            raw = c.roundtrip(b"stats conns\r\n")
        self.assertIn(b":tls_peer_name spiffe://prod.example/ns/cache/sa/web\r\n", raw)

    def test_names_and_uris_together(self):
        # Either a matching name or a matching URI lets a client in.
        s = self.start(["ssl_ca_cert=" + CA_CERTS.ca_crt, "ssl_verify_name=" + self.NAMES,
                        "ssl_verify_uri=" + self.URIS[0]],
                       listeners=("mtls",), cert=CA_CERTS.server1_crt, key=CA_CERTS.server1_key)
        mt = s.extra_ports["mtls"]
        got = {name: self.outcome(s, mt, name) for name in ("one-label", "spiffe-web", "spiffe-admin", "two-labels")}
        self.assertEqual(got, {"one-label": "ok", "spiffe-web": "ok", "spiffe-admin": "refused", "two-labels": "refused"})

    def test_optional_client_certificates_are_checked_when_presented(self):
        s = self.start(["ssl_ca_cert=" + CA_CERTS.ca_crt, "ssl_verify_mode=1", "ssl_verify_name=exact.example"],
                       cert=CA_CERTS.server1_crt, key=CA_CERTS.server1_key)
        self.assertEqual(self.outcome(s, s.tls_port, None), "ok")
        self.assertEqual(self.outcome(s, s.tls_port, "cn-only"), "ok")
        self.assertEqual(self.outcome(s, s.tls_port, "one-label"), "refused")
        wait_for(lambda: s.stat_int("ssl_verify_name_failures") == 1, timeout=5, what="1 name failure")


def make_ecdsa_server_cert(name="ecdsa"):
    """An ECDSA P-256 server certificate (OU=ecdsa) signed by CA_CERTS' CA."""
    d = CA_CERTS.root
    run = lambda *a: subprocess.run(["openssl", *a], cwd=d, check=True, stdin=subprocess.DEVNULL,  # noqa: E731
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", f"/O=Cachet Tests/OU=ecdsa/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
    run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "leaf.ext", "-out", f"{name}.crt")
    return os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")


class AlternateCertificate(LocalhostTLSCase):
    """`-o ssl_alt_chain_cert,ssl_alt_key`: an ECDSA certificate next to the RSA one; OpenSSL picks by
    what the client can verify, preferring the server's order (ECDSA first)."""

    @classmethod
    def setUpClass(cls):
        cls.ec_crt, cls.ec_key = make_ecdsa_server_cert()

    def served(self, s, version=None, ciphers=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(CA_CERTS.ca_crt)
        if version == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if ciphers:
            ctx.set_ciphers(ciphers)
        with s.tls(ctx) as c:
            self.assertEqual(c.cmd("version")[:8], b"VERSION ")
            return {k: v for rdn in c.sock.getpeercert()["subject"] for (k, v) in rdn}["organizationalUnitName"]

    def s_client_key_bits(self, s, sigalgs):
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.tls_port}", "-tls1_3", "-sigalgs", sigalgs],
                           input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        text = r.stdout.decode(errors="replace")
        line = [ln for ln in text.splitlines() if ln.startswith("Server public key is")]
        self.assertTrue(line, text[-1500:])
        return line[0]

    def test_each_client_gets_a_certificate_it_can_verify(self):
        s = self.start([f"ssl_alt_chain_cert={self.ec_crt}", f"ssl_alt_key={self.ec_key}"],
                       cert=CA_CERTS.server1_crt, key=CA_CERTS.server1_key)
        st = s.stats_dict("settings")
        self.assertEqual((st["ssl_alt_chain_cert"], st["ssl_alt_key"]), (self.ec_crt, self.ec_key))
        self.assertEqual(self.served(s), "ecdsa")                                          # TLS 1.3: server's order
        self.assertEqual(self.served(s, "1.2"), "ecdsa")
        self.assertEqual(self.served(s, "1.2", "ECDHE-RSA-AES128-GCM-SHA256"), "first")   # RSA-only client
        self.assertEqual(self.served(s, "1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), "ecdsa")
        self.assertEqual(self.s_client_key_bits(s, "rsa_pss_rsae_sha256"), "Server public key is 2048 bit")
        self.assertEqual(self.s_client_key_bits(s, "ecdsa_secp256r1_sha256"), "Server public key is 256 bit")
        # The primary certificate is the one `stats` describes, and a reload keeps both.
        with s.plain() as c:
            self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
        self.assertEqual(self.served(s, "1.2", "ECDHE-RSA-AES128-GCM-SHA256"), "first")
        self.assertEqual(self.served(s), "ecdsa")

    def test_der_keys_with_ssl_keyformat(self):
        """ssl_keyformat=DER applies to both keys; a PEM alternate key is then refused."""
        d = tempfile.mkdtemp(prefix="cachet-der-")
        self.addCleanup(shutil.rmtree, d, True)
        rsa_der, ec_der = os.path.join(d, "rsa.der"), os.path.join(d, "ec.der")
        for src, dst in ((CA_CERTS.server1_key, rsa_der), (self.ec_key, ec_der)):
            subprocess.run(["openssl", "pkey", "-in", src, "-outform", "DER", "-out", dst], check=True, timeout=20,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = self.start([f"ssl_alt_chain_cert={self.ec_crt}", f"ssl_alt_key={ec_der}", "ssl_keyformat=DER"],
                       cert=CA_CERTS.server1_crt, key=rsa_der)
        self.assertEqual(s.stats_dict("settings")["ssl_keyformat"], "2")
        self.assertEqual(self.served(s, "1.2", "ECDHE-RSA-AES128-GCM-SHA256"), "first")
        self.assertEqual(self.served(s, "1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), "ecdsa")
        r = subprocess.run([cachet_bin(), "-u", "root", "-U", "0", "-p", str(free_port()), "-Z", "-o",
                            f"ssl_chain_cert={CA_CERTS.server1_crt},ssl_key={rsa_der},ssl_keyformat=DER,"
                            f"ssl_alt_chain_cert={self.ec_crt},ssl_alt_key={self.ec_key}"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn(f"Error loading the alternate key: {self.ec_key} : ", r.stderr.decode(errors="replace"))

    def test_bad_alternate_pairs_stop_startup(self):
        rsa_crt, rsa_key = CA_CERTS.server2_crt, CA_CERTS.server2_key
        cases = {
            "cert without key": ([f"ssl_alt_chain_cert={self.ec_crt}"],
                                 "Error loading the alternate key: (null) : ssl_alt_chain_cert needs ssl_alt_key"),
            "key without cert": ([f"ssl_alt_key={self.ec_key}"],
                                 "Error loading the alternate certificate chain: (null) : ssl_alt_key needs ssl_alt_chain_cert"),
            "same key type": ([f"ssl_alt_chain_cert={rsa_crt}", f"ssl_alt_key={rsa_key}"],
                              f"Error loading the alternate certificate chain: {rsa_crt} : its key type is the same as ssl_chain_cert's"),
            "missing file": ([f"ssl_alt_chain_cert=/nonexistent-alt.pem", f"ssl_alt_key={self.ec_key}"],
                             "Error loading the alternate certificate chain: /nonexistent-alt.pem : "),
            "key of another cert": ([f"ssl_alt_chain_cert={self.ec_crt}", f"ssl_alt_key={rsa_key}"],
                                    f"Error loading the alternate key: {rsa_key} : "),
            "the primary's own key": ([f"ssl_alt_chain_cert={self.ec_crt}", f"ssl_alt_key={CA_CERTS.server1_key}"],
                                      f"Error loading the alternate key: {CA_CERTS.server1_key} : not the key of ssl_alt_chain_cert"),
        }
        for label, (opts, want) in cases.items():
            with self.subTest(label):
                r = subprocess.run([cachet_bin(), "-u", "root", "-U", "0", "-p", str(free_port()), "-Z", "-o",
                                    ",".join([f"ssl_chain_cert={CA_CERTS.server1_crt}", f"ssl_key={CA_CERTS.server1_key}", *opts])],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
                self.assertEqual(r.returncode, 64, r.stderr)
                last = r.stderr.decode(errors="replace").splitlines()[-1]
                self.assertTrue(last.startswith(want), f"{last!r} does not start with {want!r}")


if __name__ == "__main__":
    unittest.main()
