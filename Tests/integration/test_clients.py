"""Real clients against the server under test (CACHET_BIN): pymemcache (Debian's
python3-pymemcache) and the libmemcached tools (memccapable, memcstat, memccp, memccat, memcrm).
A missing client is a failure with a clear message, never a skip.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from harness import Server, cachet_bin

try:
    from pymemcache.client.base import Client
    PYMEMCACHE_ERROR = None
except ImportError as e:  # reported as a failure by the tests that need it
    Client = None
    PYMEMCACHE_ERROR = e


def tool(name):
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} not found: install libmemcached-tools (Scripts/bootstrap)")
    return path


class ClientTestBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(cachet_bin()).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def run_tool(self, argv, timeout=30, **kw):
        try:
            return subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        except subprocess.TimeoutExpired as e:
            self.fail(f"{argv} did not finish in {timeout}s; stdout so far {e.stdout!r}")


class PyMemcache(ClientTestBase):
    def client(self):
        if Client is None:
            self.fail(f"pymemcache not importable with {sys.executable}: {PYMEMCACHE_ERROR} "
                      "(apt-get install python3-pymemcache; use /usr/bin/python3)")
        c = Client(("127.0.0.1", self.srv.port), connect_timeout=5, timeout=5)
        self.addCleanup(c.close)
        return c

    def test_set_get_delete(self):
        c = self.client()
        self.assertTrue(c.set("pk", b"value", expire=0))
        self.assertEqual(c.get("pk"), b"value")
        self.assertTrue(c.set("pk", b"v2", noreply=False))
        self.assertEqual(c.get("pk"), b"v2")
        self.assertTrue(c.delete("pk", noreply=False))
        self.assertFalse(c.delete("pk", noreply=False))
        self.assertIsNone(c.get("pk"))
        big = os.urandom(500000)
        self.assertTrue(c.set("big", big, noreply=False))
        self.assertEqual(c.get("big"), big)

    def test_get_many(self):
        c = self.client()
        c.set_many({"m1": b"1", "m2": b"22", "m3": b"333"}, noreply=False)
        self.assertEqual(c.get_many(["m1", "m2", "m3", "missing"]),
                         {"m1": b"1", "m2": b"22", "m3": b"333"})

    def test_gets_cas(self):
        c = self.client()
        c.set("ck", b"a", noreply=False)
        val, cas = c.gets("ck")
        self.assertEqual(val, b"a")
        self.assertTrue(cas)
        self.assertTrue(c.cas("ck", b"b", cas, noreply=False))
        self.assertFalse(c.cas("ck", b"c", cas, noreply=False))  # stale unique → EXISTS
        self.assertIsNone(c.cas("nock", b"c", cas, noreply=False))  # NOT_FOUND
        self.assertEqual(c.get("ck"), b"b")
        _, cas2 = c.gets("ck")
        self.assertNotEqual(cas, cas2)

    def test_incr_decr(self):
        c = self.client()
        c.set("n", b"10", noreply=False)
        self.assertEqual(c.incr("n", 5, noreply=False), 15)
        self.assertEqual(c.decr("n", 20, noreply=False), 0)
        self.assertIsNone(c.incr("nope", 1, noreply=False))
        c.set("n", b"100", noreply=False)
        self.assertEqual(c.decr("n", 1, noreply=False), 99)

    def test_add_replace_append_prepend(self):
        c = self.client()
        c.delete("ar", noreply=False)
        self.assertFalse(c.replace("ar", b"x", noreply=False))
        self.assertTrue(c.add("ar", b"x", noreply=False))
        self.assertFalse(c.add("ar", b"y", noreply=False))
        self.assertTrue(c.replace("ar", b"mid", noreply=False))
        self.assertTrue(c.append("ar", b">", noreply=False))
        self.assertTrue(c.prepend("ar", b"<", noreply=False))
        self.assertEqual(c.get("ar"), b"<mid>")
        self.assertFalse(c.append("nope", b"x", noreply=False))

    def test_touch_stats_version(self):
        c = self.client()
        c.set("t", b"1", noreply=False)
        self.assertTrue(c.touch("t", 100, noreply=False))
        self.assertFalse(c.touch("nope", 100, noreply=False))
        self.assertTrue(c.version())
        st = c.stats()
        self.assertIn(b"curr_items", st)
        self.assertIn(b"cmd_get", st)


class LibmemcachedTools(ClientTestBase):
    def test_memccapable_ascii(self):
        argv = [tool("memccapable"), "-h", "127.0.0.1", "-p", str(self.srv.port), "-a", "-t", "5"]
        try:
            p = subprocess.run(argv, capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
            out, rc = p.stdout.decode(errors="replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b"").decode(errors="replace"), None
        results = re.findall(r"^(ascii [\w ]+?)\s+\[(\w+)\]", out, re.M)
        ran = ", ".join(f"{n}={r}" for n, r in results)
        print(f"\n[memccapable] {len(results)} tests: {ran}", file=sys.stderr)
        if rc is None:
            self.fail(f"memccapable hung after: {results[-1][0] if results else 'start'}; output {out!r}")
        failed = [n for n, r in results if r != "pass"]
        self.assertEqual(rc, 0, f"memccapable exit {rc}; failed: {failed}; output {out[-1500:]!r}")
        self.assertGreaterEqual(len(results), 27, f"fewer ascii tests ran than expected: {ran}")
        self.assertFalse(failed)

    def test_memcstat(self):
        p = self.run_tool([tool("memcstat"), f"--servers=127.0.0.1:{self.srv.port}"])
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, f"memcstat exit {p.returncode}: {p.stderr!r}")
        self.assertIn(f"Server: 127.0.0.1 ({self.srv.port})", out)
        self.assertRegex(out, r"\n\s+pid: %d\n" % self.srv.pid)
        self.assertRegex(out, r"\n\s+curr_items: \d+\n")

    def test_memccp_memccat_memcrm(self):
        d = tempfile.mkdtemp(prefix="cachet-cp-")
        self.addCleanup(shutil.rmtree, d, True)
        name = "roundtrip.bin"
        path = os.path.join(d, name)
        payload = os.urandom(300000)
        with open(path, "wb") as f:
            f.write(payload)
        servers = f"--servers=127.0.0.1:{self.srv.port}"
        p = self.run_tool([tool("memccp"), servers, path])
        self.assertEqual(p.returncode, 0, f"memccp: {p.stdout!r} {p.stderr!r}")
        p = self.run_tool([tool("memccat"), servers, name])
        self.assertEqual(p.returncode, 0, f"memccat: {p.stderr!r}")
        # memccat prints the value followed by a newline
        self.assertEqual(p.stdout, payload + b"\n", "memccat returned different bytes than memccp stored")
        p = self.run_tool([tool("memcrm"), servers, name])
        self.assertEqual(p.returncode, 0, f"memcrm: {p.stdout!r} {p.stderr!r}")
        p = self.run_tool([tool("memccat"), servers, name])
        self.assertNotEqual(p.returncode, 0, "memccat found the key after memcrm")
        self.assertEqual(p.stdout, b"")


if __name__ == "__main__":
    unittest.main()
