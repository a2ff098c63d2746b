"""`-o lru_policy=s3fifo` (Cachet only): a key evicted without ever being fetched and set again starts in
COLD instead of HOT (the ghost table), unfetched HOT leavers are evicted before everything else, the option's
`stats settings` line and its start-up error. The default policy is memcached's (test_ops_lru.py compares it
with memcached 1.6.18)."""
import re
import unittest

from harness import Server, cachet_bin, parse_stats, run_startup, wait_for

VALUE = b"v" * 10_000   # ~100 per 1 MB page: with -m 8 the class holds ~800 items


def items(conn, cls):
    pre = f"items:{cls}:"
    return {k[len(pre):]: int(v) for k, v in parse_stats(conn.roundtrip(b"stats items\r\n")) if k.startswith(pre)}


class LRUPolicy(unittest.TestCase):
    def start(self, *extra):
        srv = Server(cachet_bin(), ["-m", "8", *extra]).start()
        self.addCleanup(srv.stop)
        conn = srv.connect(timeout=20)
        self.addCleanup(conn.close)
        return conn

    def set(self, conn, key):
        self.assertEqual(conn.roundtrip(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(VALUE), VALUE)), b"STORED\r\n")

    def hot_drained(self, conn, cls):
        # Nothing is fetched, so the maintainer moves every HOT item to COLD within about a second (HOT items
        # older than hot_max_factor x COLD's age).
        wait_for(lambda: items(conn, cls)["number_hot"] == 0, timeout=15, interval=0.05,
                 what="the maintainer moving HOT to COLD")

    def test_keys_evicted_unfetched_come_back_past_hot(self):
        # 20 keys evicted without being fetched are set again. segmented (memcached): each starts in HOT and
        # the maintainer moves it to COLD (moves_to_cold + 20). s3fifo: the ghost table remembers them and
        # they start at COLD's head, never in HOT (a few may have lost their ghost slot to a later eviction).
        for policy in ("segmented", "s3fifo"):
            with self.subTest(policy=policy):
                conn = self.start("-o", f"lru_policy={policy}")
                i = 0
                while int(dict(conn.stats()).get("evictions", 0)) < 20:
                    self.set(conn, b"k%d" % i)
                    i += 1
                cls = int(re.search(rb"STAT (\d+):chunk_size", conn.roundtrip(b"stats slabs\r\n")).group(1))
                self.hot_drained(conn, cls)
                # A metadump finds the evicted keys without marking the others fetched (a get would).
                conn.send(b"lru_crawler metadump all\r\n")
                listed = set(re.findall(rb"key=(\S+)", conn.read_until(b"END\r\n", timeout=20)))
                evicted = [b"k%d" % j for j in range(i) if b"k%d" % j not in listed]
                self.assertEqual(len(evicted), 20)
                before = items(conn, cls)
                for key in evicted:
                    self.set(conn, key)
                if policy == "s3fifo":
                    self.assertLessEqual(items(conn, cls)["number_hot"], 5)
                self.hot_drained(conn, cls)
                after = items(conn, cls)
                self.assertEqual(after["evicted"] - before["evicted"], 20)
                through_hot = after["moves_to_cold"] - before["moves_to_cold"]
                if policy == "segmented":
                    self.assertEqual(through_hot, 20)
                else:
                    self.assertLessEqual(through_hot, 5)
                self.assertEqual(after["number_warm"], 0)

    def test_stats_settings_and_bad_values(self):
        conn = self.start("-o", "lru_policy=s3fifo")
        lines = conn.roundtrip(b"stats settings\r\n").split(b"\r\n")
        self.assertEqual(lines[-3:], [b"STAT lru_policy s3fifo", b"END", b""])
        conn = self.start()
        self.assertIn(("lru_policy", "segmented"), conn.stats("settings"))
        for value, message in (("lfu", b"Unknown lru_policy option (segmented, s3fifo)"),
                               ("", b"Unknown lru_policy option (segmented, s3fifo)")):
            rc, last, err = run_startup(cachet_bin(), ["-u", "root", "-p", "0", "-U", "0", "-o", f"lru_policy={value}"])
            self.assertEqual((rc, err.strip()), (1, message), value)
        rc, _, err = run_startup(cachet_bin(), ["-u", "root", "-p", "0", "-U", "0", "-o", "lru_policy"])
        self.assertEqual((rc, err.strip()), (1, b"Missing lru_policy argument"))


if __name__ == "__main__":
    unittest.main()
