"""TLS differential: every classic command over TLS 1.2 and 1.3 (Python ssl and `openssl s_client`,
meta commands too, a pipelined write and a 1 MiB value), `quit`, the notls: listener, and pymemcache
over TLS — cachet -Z byte-compared with memcached 1.6.18 -Z.

Each server gets a TLS listener and a `notls:` listener (tlstools.TLSServer); the readiness probe and
all `stats`/`refresh_certs` control traffic use the plaintext one, so they never count as failed
handshakes. Certificates: tlscerts.shared(), made with the `openssl` CLI when the module starts.

    CACHET_BIN=$PWD/.build/release/cachet /usr/bin/python3 -m unittest discover -s Tests/integration -p test_tls_commands.py
"""

import ssl
import unittest

import tlscerts
from harness import HarnessError, normalise_version, raise_nofile
from tlscerts import LiveFiles
from tlstools import BIG, client_ctx, tls_connect, s_client
from difftools import Pair


CERTS = None


def setUpModule():
    global CERTS
    CERTS = tlscerts.shared()
    raise_nofile(8192, required=False)


def command_steps():
    def cas_from_gets(prev):
        # the oracle's `gets c1` reply is prev[-1]: VALUE c1 0 1 <cas>
        cas = prev[-1].split(b"\r\n")[0].split(b" ")[4]
        return b"cas c1 0 0 1 " + cas + b"\r\nZ\r\n"
    return [
        b"set k1 5 0 3\r\nabc\r\n", b"get k1\r\n", b"add k1 0 0 1\r\nx\r\n", b"add k2 0 0 1\r\nx\r\n",
        b"replace k2 7 0 2\r\nyy\r\n", b"replace nope 0 0 1\r\nx\r\n", b"append k1 0 0 2\r\nde\r\n",
        b"prepend k1 0 0 2\r\n__\r\n", b"get k1 k2 missing\r\n", b"set c1 0 0 1\r\nA\r\n", b"gets c1\r\n",
        cas_from_gets, b"get c1\r\n", b"cas c1 0 0 1 1\r\nQ\r\n", b"cas nokey 0 0 1 1\r\nQ\r\n",
        b"set n 0 0 2\r\n10\r\n", b"incr n 5\r\n", b"decr n 100\r\n", b"incr nokey 1\r\n",
        b"incr k1 1\r\n", b"touch n 100\r\n", b"touch nokey 1\r\n", b"gat 0 n\r\n", b"gats 0 n k2\r\n",
        b"delete k2\r\n", b"delete k2\r\n", b"set q 0 0 1 noreply\r\nq\r\nget q\r\n",
        b"verbosity 1\r\n", b"version\r\n", b"bogus\r\n",
        # 1 MiB value: sent without a pipelined marker (memcached < 1.6.39 hangs when requests follow a
        # value that spans many TLS records in the same write: SSL_pending not checked; see
        # test_tls_beyond_memcached's test_pipelined_after_big_value for Cachet)
        ("nomark", b"set big 0 0 %d\r\n" % len(BIG) + BIG + b"\r\n", b"\r\n"),
        ("nomark", b"get big\r\n", b"END\r\n"),
        # pipelined: many requests in one write
        b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a b\r\nincr a 5\r\ndelete b\r\nget a b\r\n"
        + b"".join(b"set p%d 0 0 3\r\nv%02d\r\n" % (i, i) for i in range(40))
        + b"get " + b" ".join(b"p%d" % i for i in range(40)) + b"\r\n",
        b"flush_all\r\n", b"get a\r\n",
    ]


def run_steps(conn, steps, oracle_replies=None):
    out = []
    for i, st in enumerate(steps):
        req = st(oracle_replies[:i] if oracle_replies is not None else out) if callable(st) else st
        try:
            if isinstance(req, tuple):  # ("nomark", request, reply suffix): no `mn` after it
                conn.send(req[1])
                out.append(conn.read_until(req[2], timeout=10))
                continue
            out.append(normalise_version(conn.roundtrip(req, timeout=10)))
        except (OSError, HarnessError) as e:
            out.append(f"<{type(e).__name__}: {e}>")
            break
    return out


def first_mismatch(steps, a, b):
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "<missing>"
        y = b[i] if i < len(b) else "<missing>"
        if x != y:
            st = steps[i] if i < len(steps) else b""
            req = "<callable>" if callable(st) else (st[1] if isinstance(st, tuple) else st)[:120]
            return f"step {i} request {req!r}:\n  memcached {str(x)[:300]}\n  cachet    {str(y)[:300]}"
    return None


def _strip_cas(reply):
    """CAS values depend on each server's earlier traffic in the shared pair: compare them as a shape."""
    import re as _re
    return _re.sub(rb"( c| cas=)\d+", rb"\1<cas>", reply)


class TLSCommandsDiff(unittest.TestCase):
    """Every classic command over TLS 1.2 and 1.3 (Python ssl and openssl s_client), incl. a
    pipelined write and a 1 MiB value; byte-compared with memcached -Z."""

    @classmethod
    def setUpClass(cls):
        cls.live = LiveFiles(CERTS, "cmds")
        cls.pair = Pair(["-I", "2m"], live=cls.live).start()

    @classmethod
    def tearDownClass(cls):
        cls.pair.stop()

    def compare_suite(self, version):
        steps = command_steps()
        with self.pair.oracle.tls(client_ctx(version)) as c:
            self.assertEqual(c.sock.version(), {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}[version])
            a = run_steps(c, steps)
        for r in a:
            self.assertIsInstance(r, bytes, f"oracle failed: {r}")
        with self.pair.cachet.tls(client_ctx(version)) as c:
            self.assertEqual(c.sock.version(), {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}[version])
            b = run_steps(c, steps, oracle_replies=a)
        self.assertIsNone(first_mismatch(steps, a, b))
        # sanity on the oracle's own answers so the comparison is not vacuous
        self.assertEqual(a[1], b"VALUE k1 5 3\r\nabc\r\nEND\r\n")
        self.assertEqual(a[31], b"VALUE big 0 %d\r\n" % len(BIG) + BIG + b"\r\nEND\r\n")

    def test_tls12_python(self):
        self.compare_suite("1.2")

    def test_tls13_python(self):
        self.compare_suite("1.3")

    def test_quit_closes(self):
        for srv in self.pair.both():
            with srv.tls() as c:
                c.send(b"version\r\nquit\r\n")
                got = c.read_until_eof()
                self.assertTrue(got.startswith(b"VERSION ") and got.endswith(b"\r\n"), f"{srv.name}: {got!r}")

    def test_s_client(self):
        script = [(b"set s1 0 0 5\r\nhello\r\nget s1\r\nincr s1 1\r\n"
                   b"set s2 0 0 2\r\n42\r\nincr s2 8\r\ngets s1 s2\r\ndelete s1\r\nget s1\r\nversion\r\nmn\r\n",
                   b"MN\r\n"),
                  # the 1 MiB value alone in its write (memcached < 1.6.39 hangs on requests pipelined after it)
                  (b"set sbig 0 0 %d\r\n" % len(BIG) + BIG + b"\r\n", b"STORED\r\n"),
                  (b"get sbig\r\n", b"END\r\n"), (b"mn\r\n", b"MN\r\n")]
        for flag in ("-tls1_2", "-tls1_3"):
            with self.subTest(flag):
                a = normalise_version(s_client(self.pair.oracle.tls_port, flag, script))
                b = normalise_version(s_client(self.pair.cachet.tls_port, flag, script))
                self.assertTrue(a.startswith(b"STORED\r\nVALUE s1 0 5\r\nhello\r\nEND\r\n"), a[:200])
                self.assertIn(b"VALUE sbig 0 %d\r\n" % len(BIG) + BIG + b"\r\nEND\r\n", a)
                self.assertEqual(a, b, f"s_client {flag}: memcached {a[:300]!r} vs cachet {b[:300]!r} "
                                 f"(lengths {len(a)} / {len(b)})")

    def test_s_client_meta_commands(self):
        """Meta commands driven through `openssl s_client` over TLS 1.2 and 1.3, byte-compared with
        memcached -Z (issue 5: real clients)."""
        script = [(b"ms m1 2 T0 F7 c\r\nhi\r\nmg m1 v f t s k O42\r\nma cnt N0 J5 v\r\nma cnt D3 v\r\n"
                   b"md m1 q\r\nmg m1 v q\r\nmg m1 v k\r\nme cnt\r\nmn\r\n", b"MN\r\n")]
        for flag in ("-tls1_2", "-tls1_3"):
            with self.subTest(flag):
                a = s_client(self.pair.oracle.tls_port, flag, script)
                b = s_client(self.pair.cachet.tls_port, flag, script)
                self.assertIn(b"VA 2 f7 t-1 s2 km1 O42\r\nhi\r\n", a)
                self.assertIn(b"\r\nME cnt exp=", a)
                self.assertEqual(_strip_cas(a), _strip_cas(b), f"s_client {flag}: memcached {a!r} vs cachet {b!r}")

    def test_notls_listener_plaintext(self):
        for srv in self.pair.both():
            with srv.plain() as c:
                self.assertEqual(c.cmd("set nt 0 0 2\r\nok"), b"STORED\r\n")
            with srv.tls() as c:
                self.assertEqual(c.cmd("get nt"), b"VALUE nt 0 2\r\nok\r\nEND\r\n", srv.name)

    def test_tls_client_on_notls_port_fails(self):
        for srv in self.pair.both():
            with self.assertRaises((ssl.SSLError, OSError), msg=srv.name):
                tls_connect(srv.plain_port, client_ctx(), timeout=3).close()
            self.assertTrue(srv.srv.alive())


class TLSPymemcache(unittest.TestCase):
    def test_pymemcache_tls(self):
        from pymemcache.client.base import Client
        live = LiveFiles(CERTS, "pymc")
        p = Pair(live=live).start()
        self.addCleanup(p.stop)
        for s in p.both():
            with self.subTest(s.name):
                cl = Client(("127.0.0.1", s.tls_port), tls_context=client_ctx(), connect_timeout=5, timeout=5)
                try:
                    self.assertTrue(cl.set("a", b"1"))
                    self.assertTrue(cl.set("b", b"two", expire=100))
                    self.assertEqual(cl.get("a"), b"1")
                    self.assertEqual(cl.get_many(["a", "b", "zz"]), {"a": b"1", "b": b"two"})
                    val, cas = cl.gets("b")
                    self.assertEqual(val, b"two")
                    self.assertTrue(cl.cas("b", b"three", cas))
                    self.assertFalse(cl.cas("b", b"four", cas))
                    self.assertEqual(cl.get("b"), b"three")
                    self.assertEqual(cl.incr("a", 41), 42)
                    self.assertEqual(cl.decr("a", 2), 40)
                    self.assertTrue(cl.delete("a"))
                    self.assertIsNone(cl.get("a"))
                    big = b"x" * 500000
                    self.assertTrue(cl.set("big", big))
                    self.assertEqual(cl.get("big"), big)
                finally:
                    cl.close()


if __name__ == "__main__":
    unittest.main()
