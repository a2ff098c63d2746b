"""Differential fuzzing in `make test`: a fixed-seed run of Tests/fuzzdiff/fuzzdiff.py (a few hundred
generated request sequences, each on a fresh connection, memcached 1.6.18 vs CACHET_BIN), plus one
deterministic regression sequence per difference class the fuzzer found, so each fix stays fixed.
Longer runs: `make fuzz-diff SEED=… CASES=…`. With CACHET_BIN=/usr/bin/memcached this checks the
normalisation (must pass).
"""

import io
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzzdiff"))

import fuzzdiff  # noqa: E402

SEED = 20261202
CASES = int(os.environ.get("CACHET_FUZZ_CASES", "300"))
# The same generator over UDP (memcached's framing, `-U`, one worker): fewer cases, each is slower.
UDP_CASES = int(os.environ.get("CACHET_FUZZ_UDP_CASES", "150"))

K = b"rk"
LONG_KEY = b"x" * 251

# One entry per difference class: (name, request writes). Compared like a fuzz case.
REGRESSIONS = [
    # stats sizes_enable/sizes_disable answered ERROR; memcached switches its size histogram at run time
    ("stats sizes toggles and histogram",
     [b"stats sizes_enable\r\nset rk1 0 0 3\r\nabc\r\nset rk2 0 0 300\r\n" + b"x" * 300 +
      b"\r\nstats sizes\r\ndelete rk1\r\nstats sizes\r\nstats sizes_disable\r\nstats sizes\r\n"]),
    ("stats extstore", [b"stats extstore\r\n"]),
    # meta `x` accepted by every command (a superset meant for md only)
    ("meta x outside md", [b"mg rk x\r\nmg rk Tabc x\r\nms rk 2 x64\r\nab\r\nma rk x\r\nmg rk v\r\n"]),
    ("ms bad flag swallows its data", [b"ms rk 2 Z\r\n", b"ab\r\nmg rk v\r\n"]),
    # without the LRU maintainer memcached reclaims expired/flushed tail items before every allocation
    ("reclaim before alloc", [b"set rk1 0 -1 3\r\nabc\r\nset rk2 0 0 3\r\nabc\r\nflush_all\r\nset rk3 0 0 3\r\n"
                              b"abc\r\nstats items\r\nstats\r\n"]),
    # cachedump shows every item without the LRU maintainer
    ("cachedump", [b"set rk1 0 0 3\r\nabc\r\nstats cachedump 1 10\r\n"]),
    # a line whose newline lies past memcached's 16 KB read buffer is closed like an unterminated one,
    # and the replies of the same read go with the connection
    ("over-long line", [b"version\r\n" + b"a" * 17000 + b"\r\nversion\r\n"]),
    ("HTTP request drops the read's replies", [b"version\r\nGET / HTTP/1.1\r\n"]),
    # a store whose value arrived in a later read was transmitted before a get's cull
    ("value read later survives a cull", [b"delete rk\r\nset rk 0 0 10\r\nabc", b"defghij\r\nget " + LONG_KEY + b"\r\n"]),
    ("swallow read later survives a cull", [b"delete rk\r\nset rk 0 0 5000\r\n" + b"x" * 100,
                                            b"x" * 4900 + b"\r\nget " + LONG_KEY + b"\r\n"]),
    ("bget", [b"set rk 0 0 1\r\n1\r\nbget rk\r\nbget\r\n"]),
    # an mg reply holds its item until transmitted: incr/decr then make a new item (no space padding)
    ("incr after mg in the same read", [b"set rn 0 0 3\r\n100\r\nmg rn v\r\ndecr rn 1\r\nget rn\r\n"
                                        b"set ro 0 0 3\r\n100\r\nmg ro v\r\nmn\r\ndecr ro 1\r\nget ro\r\n"
                                        b"set rp 0 0 1\r\n6\r\nmg rp\r\nma rp\r\nmg rp v\r\n"]),
    # an incr/decr in place takes a new CAS: memcached moves the item out of the size histogram under the
    # old CAS and back in under the new one, so an item older than sizes_enable starts being counted
    ("in-place decr joins the size histogram", [b"set rs 0 0 5\r\n56296\r\nstats sizes_enable\r\ndecr rs 2\r\n"
                                                b"stats sizes\r\nincr rs 1\r\nstats sizes\r\ndelete rs\r\n"
                                                b"stats sizes\r\nstats sizes_disable\r\n"]),
    ("track_sizes follows sizes_enable", [b"stats sizes_enable\r\nstats settings\r\nstats sizes_disable\r\n"]),
    # memcached allocates the item before reading the value: a bad data chunk still takes a slab page
    ("bad data chunk allocates", [b"set rk 0 0 30\r\n" + b"x" * 32 + b"\r\nms rk 700\r\n" + b"y" * 702 + b"\r\n"]),
    # cas_hits / cas_badval are counted in the class of the item being replaced
    ("cas counters in the old item's class", [b"set rk 0 0 1000\r\n" + b"x" * 1000 + b"\r\ncas rk 0 0 1 1\r\np\r\n"
                                              b"ms rk 1 C1\r\nq\r\n"]),
]


class FuzzDiff(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pair = fuzzdiff.Pair(fuzzdiff.DEFAULT_OPTS.split()).start()

    @classmethod
    def tearDownClass(cls):
        cls.pair.stop()

    def test_regressions(self):
        for name, writes in REGRESSIONS:
            with self.subTest(name):
                same, a, b, na, nb = fuzzdiff.compare_one(self.pair, writes)
                if not same:
                    self.pair.restart()
                self.assertEqual(na, nb, f"{name}: memcached {a!r} vs cachet {b!r}")

    def test_fixed_seed(self):
        out = io.StringIO()
        diffs = fuzzdiff.run(SEED, CASES, fuzzdiff.DEFAULT_OPTS.split(), out=out)
        self.assertEqual(diffs, [], f"{len(diffs)} of {CASES} fuzz cases differ:\n{out.getvalue()[:6000]}")

    def test_fixed_seed_over_udp(self):
        out = io.StringIO()
        diffs = fuzzdiff.run(SEED, UDP_CASES, fuzzdiff.DEFAULT_OPTS.split(), out=out, udp=True)
        self.assertEqual(diffs, [], f"{len(diffs)} of {UDP_CASES} UDP fuzz cases differ:\n{out.getvalue()[:6000]}")


if __name__ == "__main__":
    unittest.main()
