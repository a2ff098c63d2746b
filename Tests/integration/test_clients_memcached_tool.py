"""memcached's own operator tools against Cachet and against memcached 1.6.18 holding the same data:
Debian's memcached-tool (display, stats, settings, dump) and libmemcached's memcdump give the same output,
apart from what legitimately differs between two processes (pid, ports, CPU time, ages, memcached's
background-thread counters) and Cachet's documented extra stats lines.
"""

import os
import re
import shutil
import subprocess
import unittest

from harness import CACHET_EXTRA_STATS, DETERMINISTIC_STATS, Server, cachet_bin, memcached_bin, wait_for

MEMCACHED_TOOL = "/usr/share/memcached/scripts/memcached-tool"
# Lines Cachet adds on purpose (README "Stats beyond memcached").
# Cachet's documented extra `stats` / `stats settings` lines (README "Stats beyond memcached"): the harness's list.
CACHET_EXTRA_FIELDS = CACHET_EXTRA_STATS
VOLATILE_SETTINGS = {"tcpport"}

ITEMS = [(b"a", 0, b"x"), (b"user:1", 7, b"v" * 300), (b"user:2", 42, b"w" * 3000),
         (b"blob", 1, b"b" * 60000), (b"counter", 0, b"12345")]


def run_tool(*args):
    r = subprocess.run(["perl", MEMCACHED_TOOL, *args], capture_output=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"memcached-tool {' '.join(args)} failed: {r.stderr!r}")
    return r.stdout.decode()


def fields(text):
    """memcached-tool stats/settings: '#host Field Value' header, then '  name  value' rows."""
    lines = text.strip("\n").split("\n")
    assert lines[0].startswith("#"), lines[0]
    out = {}
    for ln in lines[1:]:
        parts = ln.split(None, 1)
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return lines[0].split(None, 1)[1], out


class MemcachedTool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(MEMCACHED_TOOL, os.R_OK):
            raise AssertionError(f"{MEMCACHED_TOOL} missing (Debian's memcached package; Scripts/bootstrap)")
        cls.servers = []
        for binary, name in ((memcached_bin(), "memcached"), (cachet_bin(), "cachet")):
            s = Server(binary, ["-t", "1"], name=name).start()
            cls.servers.append(s)
            with s.connect() as c:
                for key, flags, value in ITEMS:
                    assert c.roundtrip(b"set %s %d 0 %d\r\n%s\r\n" % (key, flags, len(value), value)) == b"STORED\r\n"
                c.roundtrip(b"get a user:1 missing\r\n")
                c.roundtrip(b"incr counter 5\r\n")

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.stop()

    def both(self, *args):
        return [run_tool(f"127.0.0.1:{s.port}", *args) for s in self.servers]

    def test_display(self):
        m, c = self.both("display")
        ml, cl = m.strip("\n").split("\n"), c.strip("\n").split("\n")
        self.assertEqual(ml[0], cl[0], "header")
        self.assertGreaterEqual(len(ml), 5)
        # Every column but Max_age (seconds since the oldest access: depends on when each server was filled).
        strip_age = lambda rows: [r.split()[:2] + r.split()[3:] for r in rows[1:]]  # noqa: E731
        self.assertEqual(strip_age(cl), strip_age(ml))

    def test_stats(self):
        (mh, m), (ch, c) = [fields(t) for t in self.both("stats")]
        self.assertEqual(mh.split(), ch.split())
        self.assertEqual(set(c) - CACHET_EXTRA_FIELDS, set(m))
        same = DETERMINISTIC_STATS - {"bytes_read"}
        checked = [k for k in sorted(m) if k in same]
        self.assertGreater(len(checked), 20)
        for k in checked:
            self.assertEqual(c[k], m[k], k)

    def test_settings(self):
        (mh, m), (ch, c) = [fields(t) for t in self.both("settings")]
        self.assertEqual(set(c) - CACHET_EXTRA_FIELDS, set(m))
        for k in m:
            if k not in VOLATILE_SETTINGS:
                self.assertEqual(c[k], m[k], k)

    def test_dump(self):
        def records(text):
            # "add <key> <flags> <exptime> <bytes>\r\n<value>\r\n" per item; the order follows each server's
            # LRU walk, so compare as a set.
            recs = re.findall(r"add (\S+) (\d+) (\d+) (\d+)\r?\n", text)
            self.assertEqual(len(recs), len(ITEMS), text[:300])
            return sorted(recs)
        m, c = [records(t) for t in self.both("dump")]
        self.assertEqual(c, m)

    def test_memcdump(self):
        tool = shutil.which("memcdump")
        self.assertIsNotNone(tool, "memcdump missing (libmemcached-tools; Scripts/bootstrap)")
        want = sorted(k for k, _, _ in ITEMS)

        def dump(s):
            r = subprocess.run([tool, f"--servers=127.0.0.1:{s.port}"], capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            return sorted(r.stdout.split())
        # memcdump walks `stats cachedump` per class; both servers may list a just-stored item only once their
        # LRU bookkeeping has caught up (memcached: its maintainer thread; Cachet: observed ~1 s after the
        # first store), so wait for the complete list, bounded.
        for s in self.servers:
            with self.subTest(s.name):
                wait_for(lambda: dump(s) == want, timeout=5, what=f"memcdump of {s.name} listing every key")


if __name__ == "__main__":
    unittest.main()
