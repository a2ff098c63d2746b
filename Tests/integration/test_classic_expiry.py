"""Expiry in real time against the built server alone: relative exptime, touch extending it, and a
delayed `flush_all` (which also hides items stored in its flush second), each awaited by polling.

Every expectation here is what memcached 1.6.18 does too, so the file also passes with
CACHET_BIN=/usr/bin/memcached (that run validates the tests themselves).
"""

import time
import unittest

from harness import Server, cachet_bin, wait_for


class TimeBased(unittest.TestCase):
    """Expiry and delayed flush, awaited by polling (the event), bounded in time.
    One server per test: a delayed flush also hides items stored in its flush second."""

    def setUp(self):
        self.srv = Server(cachet_bin()).start()
        self.addCleanup(self.srv.stop)

    def test_relative_expiry(self):
        with self.srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set e2 0 2 1\r\nx\r\nset e0 0 0 1\r\ny\r\n"), b"STORED\r\nSTORED\r\n")
            t0 = time.monotonic()
            wait_for(lambda: c.roundtrip(b"get e2\r\n") == b"END\r\n", timeout=5, interval=0.1,
                     what="item with exptime 2 to expire")
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.9, f"exptime 2 expired after {elapsed:.2f}s")
            self.assertEqual(c.roundtrip(b"get e0\r\n"), b"VALUE e0 0 1\r\ny\r\nEND\r\n")
            self.assertGreaterEqual(int(dict(c.stats())["get_expired"]) +
                                    int(dict(c.stats())["reclaimed"]), 1)

    def test_touch_extends(self):
        with self.srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set t2 0 2 1\r\nx\r\ntouch t2 100\r\n"), b"STORED\r\nTOUCHED\r\n")
            self.assertEqual(c.roundtrip(b"set t3 0 2 1\r\nx\r\n"), b"STORED\r\n")
            wait_for(lambda: c.roundtrip(b"get t3\r\n") == b"END\r\n", timeout=5, interval=0.1,
                     what="reference item to expire")
            self.assertEqual(c.roundtrip(b"get t2\r\n"), b"VALUE t2 0 1\r\nx\r\nEND\r\n")

    def test_delayed_flush(self):
        with self.srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set f 0 0 1\r\nx\r\nflush_all 2\r\nget f\r\n"),
                             b"STORED\r\nOK\r\nVALUE f 0 1\r\nx\r\nEND\r\n")
            t0 = time.monotonic()
            wait_for(lambda: c.roundtrip(b"get f\r\n") == b"END\r\n", timeout=5, interval=0.1,
                     what="delayed flush_all 2 to take effect")
            self.assertGreaterEqual(time.monotonic() - t0, 0.5)
            # Items stored in the flush-point second are flushed too (memcached's <= rule);
            # after it, new stores are visible again.
            wait_for(lambda: c.roundtrip(b"set g 0 0 1\r\nz\r\nget g\r\n") ==
                     b"STORED\r\nVALUE g 0 1\r\nz\r\nEND\r\n", timeout=3, interval=0.1,
                     what="stores visible again after the delayed flush")


if __name__ == "__main__":
    unittest.main()
