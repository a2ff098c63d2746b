"""Connection limits against the built server alone: `-c` maxconns (`ERROR Too many open connections`,
`rejected_connections`), `-o idle_timeout`, and RSS that plateaus while 5000 connections come and go.

Every expectation here is what memcached 1.6.18 does too, so the file also passes with
CACHET_BIN=/usr/bin/memcached (that run validates the tests themselves).
"""

import select
import time
import unittest

from harness import (Server, Conn, HarnessError, cachet_bin, vmrss_kb, wait_for, stats_dict, stat_of,
                     assert_healthy, raise_nofile)


class MaxConns(unittest.TestCase):
    def test_too_many_connections(self):
        srv = Server(cachet_bin(), ["-c", "40", "-t", "1"]).start()
        self.addCleanup(srv.stop)
        first = srv.connect()
        self.addCleanup(first.close)
        self.assertTrue(first.roundtrip(b"version\r\n").startswith(b"VERSION "))
        held, rejected = [], None
        try:
            for i in range(60):
                s = srv.raw_connect()
                s.sendall(b"version\r\n")
                c = Conn(s, label=f"client {i}")
                line = c.read_until(b"\r\n")
                if line.startswith(b"VERSION "):
                    held.append(c)
                    continue
                self.assertEqual(line, b"ERROR Too many open connections\r\n")
                self.assertEqual(c.read_until_eof(), b"", "rejected connection not closed after the error")
                c.close()
                rejected = i
                break
            self.assertIsNotNone(rejected, "60 connections accepted with -c 40")
            self.assertGreaterEqual(len(held), 1)
            s = stats_dict(first)
            self.assertGreaterEqual(int(stat_of(self, s, "rejected_connections")), 1)
            self.assertEqual(stat_of(self, s, "max_connections"), "40")
            # A second rejection grows the counter.
            c2 = srv.connect()
            self.assertEqual(c2.read_until(b"\r\n"), b"ERROR Too many open connections\r\n")
            c2.read_until_eof()
            c2.close()
            self.assertGreaterEqual(int(stats_dict(first)["rejected_connections"]), 2)
        finally:
            for c in held:
                c.close()
        # Once clients leave, new connections are served again (close is seen asynchronously).
        wait_for(lambda: int(stats_dict(first)["curr_connections"]) <= 2, what="connections released")
        assert_healthy(self, srv)


class IdleTimeout(unittest.TestCase):
    def test_idle_kick(self):
        srv = Server(cachet_bin(), ["-o", "idle_timeout=2"]).start()
        self.addCleanup(srv.stop)
        idle = srv.connect()
        active = srv.connect()
        self.addCleanup(idle.close)
        self.addCleanup(active.close)
        self.assertEqual(idle.roundtrip(b"get x\r\n"), b"END\r\n")
        t0 = time.monotonic()
        deadline = t0 + 8
        got_eof = False
        while time.monotonic() < deadline:
            r, _, _ = select.select([idle.sock], [], [], 0.3)
            if r:
                data = idle.sock.recv(100)
                self.assertEqual(data, b"", f"idle connection received data instead of EOF: {data!r}")
                got_eof = True
                break
            # The active connection keeps talking; it must survive.
            self.assertEqual(active.roundtrip(b"get x\r\n"), b"END\r\n")
        elapsed = time.monotonic() - t0
        self.assertTrue(got_eof, "idle connection was not closed within 8 s (idle_timeout=2)")
        self.assertGreaterEqual(elapsed, 1.5, f"idle connection closed too early ({elapsed:.2f}s)")
        s = stats_dict(active)
        self.assertGreaterEqual(int(stat_of(self, s, "idle_kicks")), 1)
        self.assertEqual(stat_of(self, stats_dict(active, "settings"), "idle_timeout"), "2")

    def test_no_idle_kicks_line_without_timeout(self):
        with Server(cachet_bin()) as srv, srv.connect() as c:
            self.assertNotIn("idle_kicks", stats_dict(c))


class RssUnderChurn(unittest.TestCase):
    def churn(self, srv, n=5000):
        socks = []
        try:
            for _ in range(n):
                s = srv.raw_connect(timeout=10)
                socks.append(s)
            for s in socks:
                s.sendall(b"get k\r\n")
            for s in socks:
                data = b""
                while not data.endswith(b"END\r\n"):
                    chunk = s.recv(100)
                    if not chunk:
                        raise HarnessError(f"EOF during churn after {data!r}")
                    data += chunk
        finally:
            for s in socks:
                s.close()
        with srv.connect() as c:
            wait_for(lambda: int(stats_dict(c)["curr_connections"]) == 1, timeout=20, interval=0.1,
                     what="all churn connections closed server-side")

    def test_rss_plateau(self):
        raise_nofile(12000)
        srv = Server(cachet_bin(), ["-c", "6000"]).start()
        self.addCleanup(srv.stop)
        base = vmrss_kb(srv.pid)
        self.churn(srv)
        first = vmrss_kb(srv.pid)
        self.churn(srv)
        second = vmrss_kb(srv.pid)
        print(f"\n[rss] base {base} kB, after round 1 {first} kB, after round 2 {second} kB")
        self.assertLessEqual(second, first * 1.1 + 2048,
                             f"RSS grew between churn rounds: {first} kB → {second} kB")
        assert_healthy(self, srv)


if __name__ == "__main__":
    unittest.main()
