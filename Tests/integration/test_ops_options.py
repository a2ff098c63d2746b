"""`-o` options that shape operational output, against memcached 1.6.18 where it is observable:
`track_sizes` (the `stats sizes` histogram from the start) and `watcher_logbuf_size` (how much a watcher that
does not read may have queued before lines are dropped and counted)."""
import socket
import unittest

from harness import Server, cachet_bin, memcached_bin, stats_dict


class TrackSizes(unittest.TestCase):
    def test_histogram_from_the_start_as_memcached(self):
        got = {}
        for name, binary in (("memcached", memcached_bin()), ("cachet", cachet_bin())):
            with Server(binary, ["-o", "track_sizes"], name=name) as srv, srv.connect() as c:
                empty = c.roundtrip(b"stats sizes\r\n")
                for i in range(20):
                    c.roundtrip(b"set k%d 0 0 %d\r\n%s\r\n" % (i, 10 * i, b"v" * (10 * i)))
                got[name] = (empty, c.roundtrip(b"stats sizes\r\n"), stats_dict(c, "settings")["track_sizes"])
        self.assertEqual(got["cachet"], got["memcached"])
        self.assertEqual(got["cachet"][0], b"END\r\n")   # on, and nothing stored yet
        self.assertEqual(got["cachet"][2], "yes")


class WatcherBuffer(unittest.TestCase):
    def lost_lines(self, kb):
        """Lines a watcher that reads nothing loses while 100,000 gets are logged (~10 MB of lines: more than
        the kernel's socket buffers take), with a `kb` KB buffer."""
        with Server(cachet_bin(), ["-o", "watcher_logbuf_size=%d" % kb]) as srv:
            w = srv.raw_connect()
            w.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            w.sendall(b"watch fetchers\r\n")
            w.settimeout(5)
            self.assertEqual(w.recv(4), b"OK\r\n")
            with srv.connect() as c:
                batch = b"".join(b"get k%d\r\n" % i for i in range(1000))
                for _ in range(100):
                    c.send(batch)
                self.assertEqual(c.read_exact(5 * 100_000, timeout=60), b"END\r\n" * 100_000)
                skipped = int(stats_dict(c)["log_watcher_skipped"])
            w.close()   # not drained: reading 2 MB through a 4 KB window takes a minute
            return skipped

    def test_a_smaller_buffer_drops_more(self):
        small, large = self.lost_lines(4), self.lost_lines(32768)
        self.assertGreater(small, 0)
        self.assertEqual(large, 0)   # 32 MB holds every line of 100,000 gets


if __name__ == "__main__":
    unittest.main()
