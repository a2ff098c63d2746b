"""`-Y <authfile>` ASCII authentication, against memcached 1.6.18 byte for byte: the login (`set <key> 0 0 <n>`
with `<user> <password>` as its data), every reply of the login phase (including memcached's habit of
answering several pipelined lines with one reply), start-up errors, `stats` and `stats settings`. Then what
Cachet adds: SIGHUP re-reads the file (memcached 1.6.40+), a login declaring a huge length is refused
instead of awaited, and logins over TLS."""
import os
import signal
import socket
import tempfile
import unittest

from harness import Conn, Server, cachet_bin, memcached_bin, run_startup, wait_for
from tlstools import TLSServer, client_ctx, tls_connect
import tlscerts

USERS = b"alice:secret\nbob:hunter2\r\ncarol:pa:ss word"   # a '\r' ends a password; the last line has no newline

class NoReply(bytes):
    """A write that gets no reply by itself (part of a login block)."""


# Each case: the writes of one connection. Every write but the last is answered before the next is sent
# (one reply line each, unless it is a NoReply); after the last, the client half-closes and reads until
# the server closes.
CASES = [
    ("a command before logging in", [b"get a\r\n"]),
    ("quit is refused too", [b"quit\r\n"]),
    ("meta commands are refused", [b"mn\r\n", b"mg a v\r\n"]),
    ("each refusal answered", [b"get a\r\n", b"version\r\n"]),   # unauthenticated: no version in it
    ("login then commands", [b"set x 0 0 12\r\nalice secret\r\n", b"set a 0 0 1\r\nv\r\nget a\r\n"]),
    ("the key and flags of the login do not matter", [b"set whatever 5 60 11\r\nbob hunter2\r\n", b"get a\r\n"]),
    ("a password with a colon and a space", [b"set x 0 0 14\r\ncarol pa:ss word\r\n", b"get a\r\n"]),
    ("wrong password", [b"set x 0 0 12\r\nalice wrong!\r\n", b"get a\r\n"]),
    ("unknown user", [b"set x 0 0 9\r\nmallory x\r\n", b"get a\r\n"]),
    ("a login block without a password", [b"set x 0 0 5\r\nalice\r\n"]),
    ("a login block without its CRLF", [b"set x 0 0 5\r\nalicex\r\n"]),
    ("a set line without a length", [b"set x 0 0\r\n"]),
    ("a set line with a bad length", [b"set x 0 0 abc\r\n"]),
    ("noreply is ignored", [b"set x 0 0 3 noreply\r\nbob\r\n"]),
    ("extra words after the password", [b"set x 0 0 14\r\nbob hunter2 zz\r\n", b"get a\r\n"]),
    ("the block in two writes", [NoReply(b"set x 0 0 12\r\nalice sec"), b"ret\r\nget a\r\n"]),
    ("pipelined refusals and a login answer once", [b"get a\r\nquit\r\nset x 0 0 12\r\nalice secret\r\nget a\r\n"]),
    ("pipelined refusals answer once", [b"get a\r\nget b\r\nversion\r\n"]),
    ("a failed login pipelined with commands", [b"set x 0 0 12\r\nalice wrong!\r\nget a\r\n"]),
    ("2 KB without a newline closes", [b"x" * 3000]),
]


def exchange(port, writes):
    conn = Conn(socket.create_connection(("127.0.0.1", port), timeout=10))
    try:
        out = b""
        for w in writes[:-1]:
            conn.send(w)
            if not isinstance(w, NoReply):
                out += conn.read_until(b"\r\n")
        conn.send(writes[-1])
        conn.sock.shutdown(socket.SHUT_WR)
        return out + conn.read_until_eof()
    finally:
        conn.close()


class AuthFileCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cachet-auth-")
        self.path = os.path.join(self.dir, "users")
        with open(self.path, "wb") as f:
            f.write(USERS)

    def tearDown(self):
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def pair(self, extra=()):
        m = Server(memcached_bin(), ["-Y", self.path, *extra], name="memcached").start()
        self.addCleanup(m.stop)
        c = Server(cachet_bin(), ["-Y", self.path, *extra], name="cachet").start()
        self.addCleanup(c.stop)
        return m, c


class LoginMatchesMemcached(AuthFileCase):
    def test_every_login_phase_reply(self):
        m, c = self.pair()
        for label, writes in CASES:
            with self.subTest(label):
                self.assertEqual(exchange(c.port, writes), exchange(m.port, writes))

    def test_stats_and_settings(self):
        m, c = self.pair()
        for s in (m, c):
            exchange(s.port, [b"set x 0 0 12\r\nalice secret\r\n", b"version\r\n"])
            exchange(s.port, [b"set x 0 0 12\r\nalice nope!!\r\n"])
            exchange(s.port, [b"set x 0 0 5\r\nalice\r\n"])   # not an attempt: a malformed block
        got = {}
        for s in (m, c):
            login = b"set x 0 0 11\r\nbob hunter2\r\n"
            raw = exchange(s.port, [login, b"stats\r\nstats settings\r\n"])
            lines = dict(l.split(b" ", 2)[1:] for l in raw.split(b"\r\n") if l.startswith(b"STAT "))
            got[s.name] = {k: lines[k] for k in (b"auth_cmds", b"auth_errors", b"binding_protocol",
                                                   b"auth_enabled_ascii", b"auth_enabled_sasl")}
        self.assertEqual(got["cachet"], got["memcached"])
        self.assertEqual(got["cachet"][b"auth_cmds"], b"3")
        self.assertEqual(got["cachet"][b"auth_errors"], b"1")
        self.assertEqual(got["cachet"][b"auth_enabled_ascii"], self.path.encode())

    def test_startup_errors(self):
        bad = os.path.join(self.dir, "bad")
        with open(bad, "wb") as f:
            f.write(b"alice:secret\n\nbob:x\n")   # an empty line is an entry without ':'
        for label, args in [("missing file", ["-Y", os.path.join(self.dir, "nope")]),
                            ("malformed", ["-Y", bad]),
                            ("with -B auto", ["-Y", self.path, "-B", "auto"])]:
            with self.subTest(label):
                mrc, _, merr = run_startup(memcached_bin(), ["-u", "root", "-p", "0", "-U", "0", *args])
                crc, _, cerr = run_startup(cachet_bin(), ["-u", "root", "-p", "0", "-U", "0", *args])
                self.assertEqual(crc, mrc)
                # memcached's text first (its malformed-file line has no newline; Cachet ends it and adds a hint)
                self.assertEqual(cerr.split(b"\n")[0], merr.split(b"\n")[0])
        rc, _, err = run_startup(cachet_bin(), ["-u", "root", "-p", "0", "-U", "0", "-Y", bad])
        self.assertIn(b"line 2 has no ':'", err)

    def test_ascii_is_allowed_explicitly(self):
        s = Server(cachet_bin(), ["-Y", self.path, "-B", "ascii"]).start()
        self.addCleanup(s.stop)
        self.assertEqual(exchange(s.port, [b"get a\r\n"]), b"CLIENT_ERROR unauthenticated\r\n")


class BeyondMemcached(AuthFileCase):
    def login(self, port, user_pass):
        return exchange(port, [b"set x 0 0 %d\r\n%s\r\n" % (len(user_pass), user_pass)])

    def test_sighup_rereads_the_file_and_keeps_it_when_the_new_one_is_bad(self):
        s = Server(cachet_bin(), ["-Y", self.path]).start()
        self.addCleanup(s.stop)
        self.assertEqual(self.login(s.port, b"dave pw"), b"CLIENT_ERROR authentication failure\r\n")
        tmp = self.path + ".new"
        with open(tmp, "wb") as f:
            f.write(b"dave:pw\n")
        os.rename(tmp, self.path)
        os.kill(s.proc.pid, signal.SIGHUP)
        # Re-read on the next clock tick (at most a second).
        wait_for(lambda: self.login(s.port, b"dave pw") == b"STORED\r\n", timeout=5, what="the new user")
        self.assertEqual(self.login(s.port, b"alice secret"), b"CLIENT_ERROR authentication failure\r\n")
        with open(tmp, "wb") as f:
            f.write(b"no colon here\n")
        os.rename(tmp, self.path)
        os.kill(s.proc.pid, signal.SIGHUP)
        wait_for(lambda: b"Could not reload authfile" in s.stderr(), timeout=5, what="the reload failure logged")
        self.assertEqual(self.login(s.port, b"dave pw"), b"STORED\r\n")

    def test_a_huge_declared_length_is_refused_not_awaited(self):
        s = Server(cachet_bin(), ["-Y", self.path]).start()
        self.addCleanup(s.stop)
        conn = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        try:
            conn.sendall(b"set x 0 0 4000000000\r\n")   # no shutdown: the server must answer and close by itself
            self.assertEqual(Conn(conn).read_until_eof(), b"CLIENT_ERROR auth token too long\r\n")
        finally:
            conn.close()
        self.assertEqual(self.login(s.port, b"alice secret"), b"STORED\r\n")

    def test_login_over_tls(self):
        certs = tlscerts.shared()
        s = TLSServer(cachet_bin(), cert=certs.server1_crt, key=certs.server1_key, extra=["-Y", self.path]).start()
        self.addCleanup(s.stop)
        c = tls_connect(s.tls_port, client_ctx())
        try:
            c.send(b"get a\r\n")
            self.assertEqual(c.read_until(b"\r\n"), b"CLIENT_ERROR unauthenticated\r\n")
            c.send(b"set x 0 0 12\r\nalice secret\r\n")
            self.assertEqual(c.read_until(b"\r\n"), b"STORED\r\n")
            self.assertEqual(c.roundtrip(b"set k 0 0 1\r\nv\r\nget k\r\n"), b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n")
        finally:
            c.close()
        # The plaintext listener asks for a login too.
        self.assertEqual(exchange(s.plain_port, [b"version\r\n"]), b"CLIENT_ERROR unauthenticated\r\n")


if __name__ == "__main__":
    unittest.main()
