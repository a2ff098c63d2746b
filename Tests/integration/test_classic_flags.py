"""Differential: the classic commands under the flags that change them — `-C` (no CAS), `-R 2`
(yields), `-F` (flush_all disabled), `-W` (watch disabled) — against memcached 1.6.18.

Each case sends the same requests to memcached 1.6.18 (the oracle) and to cachet on fresh connections and
compares the replies byte for byte (difftools.DiffCase); cases on the class's shared pair start with
`flush_all`, cases whose replies expose CAS uniques or counters get a fresh pair (`fresh=True`).
With CACHET_BIN=/usr/bin/memcached every case must pass (harness check).
"""

import unittest

from difftools import DiffCase, print_summary, st, stat_values


def tearDownModule():
    print_summary(__name__)


class NoCas(DiffCase):
    EXTRA = ["-C"]
    PRELUDE = None  # without CAS, flush_all's same-second rule would hide the case's own sets

    def test_no_cas(self):
        self.diff("-C gets shows 0", st(b"nc1") + b"gets nc1\r\n")
        self.diff("-C gats", st(b"nc2") + b"gats 100 nc2\r\n")
        self.diff("-C cas command", st(b"nc3") + b"cas nc3 0 0 1 0\r\ny\r\ncas nc3 0 0 1 1\r\nz\r\nget nc3\r\n")
        self.diff("-C stats settings cas_enabled", b"stats settings\r\n",
                  norm=stat_values(["cas_enabled"]))
        self.diff("-C size boundary (no 8-byte cas)", st(b"k", b"v" * 1048524) + st(b"k2", b"v" * 1048525))


class Yields(DiffCase):
    EXTRA = ["-R", "2"]

    def test_conn_yields(self):
        burst = b"".join(st(b"y%02d" % i, b"v") for i in range(50))
        self.diff("-R 2: 50 pipelined sets", [burst, b"stats\r\n"],
                  norm=stat_values(["conn_yields", "cmd_set", "curr_items"]), fresh=True)
        self.diff("-R 2: reqs_per_event", b"stats settings\r\n", norm=stat_values(["reqs_per_event"]))


class FlushDisabled(DiffCase):
    EXTRA = ["-F"]
    PRELUDE = None

    def test_flush_disabled(self):
        self.diff("-F flush_all", st(b"f1") + b"flush_all\r\nflush_all 0 noreply\r\nget f1\r\n")
        self.diff("-F cmd_flush counted", [b"flush_all\r\n", b"stats\r\n"], norm=stat_values(["cmd_flush"]),
                  fresh=True)


class WatchDisabled(DiffCase):
    EXTRA = ["-W"]

    def test_watch_disabled(self):
        self.diff("-W watch", b"watch\r\nwatch fetchers\r\n")
        self.diff("-W watch bad type", b"watch bogus\r\n")


if __name__ == "__main__":
    unittest.main()
