"""The segmented LRU against memcached 1.6.18: `lru` commands and the settings they change, and where
items are (HOT / WARM / COLD / TEMP) after the same requests, once each server's LRU maintainer has
settled — waited for by polling `stats items`, never by sleeping a fixed time."""
import re
import unittest

from difftools import Pair
from harness import parse_stats, wait_for

LRU_SETTINGS = ("lru_segmented", "temp_lru", "temporary_ttl", "hot_lru_pct", "warm_lru_pct",
                "hot_max_factor", "warm_max_factor")
# Segment counts and counters that follow from the requests alone (ages and times depend on the clock).
ITEM_FIELDS = ("number", "number_hot", "number_warm", "number_cold", "number_temp", "mem_requested",
               "evicted", "reclaimed", "evicted_active", "moves_to_cold", "moves_to_warm", "hits_to_hot",
               "hits_to_warm", "hits_to_cold", "hits_to_temp")


def items(conn):
    return {k: v for k, v in parse_stats(conn.roundtrip(b"stats items\r\n"))}


def field(stats, cls, name):
    return stats.get(f"items:{cls}:{name}")


class LRUDifferential(unittest.TestCase):
    def pair(self, extra=()):
        p = Pair(["-m", "64"] + list(extra)).start()
        self.addCleanup(p.stop)
        a, b = p.oracle.connect(timeout=20), p.cachet.connect(timeout=20)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def both(self, conns, req):
        replies = [c.roundtrip(req) for c in conns]
        self.assertEqual(replies[1], replies[0], req)
        return replies[0]

    def settle(self, conns, cls, pred, what):
        for c in conns:
            wait_for(lambda: pred(items(c)), timeout=15, interval=0.05, what=f"{what} on {c.label}")

    def compare_items(self, conns, cls):
        snaps = [items(c) for c in conns]
        for name in ITEM_FIELDS:
            self.assertEqual(field(snaps[1], cls, name), field(snaps[0], cls, name), f"items:{cls}:{name}")
        self.assertEqual(conns[1].roundtrip(b"stats cachedump %d 0\r\n" % cls),
                         conns[0].roundtrip(b"stats cachedump %d 0\r\n" % cls))

    def test_lru_commands_change_the_same_settings(self):
        conns = self.pair()
        for req in (b"lru mode flat\r\n", b"lru mode segmented\r\n", b"lru mode bogus\r\n",
                    b"lru temp_ttl 30\r\n", b"lru temp_ttl -1\r\n", b"lru temp_ttl 0\r\n", b"lru temp_ttl x\r\n",
                    b"lru tune 10 50 0.5 3\r\n", b"lru tune 50 40 0.5 3\r\n", b"lru tune 10 10 0 1\r\n",
                    b"lru mode flat noreply\r\n"):
            self.both(conns, req)
            got = [dict(parse_stats(c.roundtrip(b"stats settings\r\n"))) for c in conns]
            for name in LRU_SETTINGS:
                self.assertEqual(got[1].get(name), got[0].get(name), (req, name))

    def test_items_move_between_segments_like_memcached(self):
        conns = self.pair()
        val = b"v" * 1000
        for c in conns:
            c.send(b"".join(b"set key%03d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val) for i in range(100)))
        cls = int(re.search(rb"STAT (\d+):chunk_size", conns[0].roundtrip(b"stats slabs\r\n")).group(1))
        # HOT takes new items; the maintainer moves them to COLD (over HOT's 20 % share at once, the rest
        # once they are older than hot_max_factor x COLD's age).
        self.settle(conns, cls, lambda s: field(s, cls, "number_cold") == "100", "all 100 items in COLD")
        self.compare_items(conns, cls)
        # Fetched twice in COLD: ACTIVE, rescued to WARM (memcached through its maintainer's bump queue).
        for i in range(10):
            for _ in range(2):
                self.both(conns, b"get key%03d\r\n" % i)
        self.settle(conns, cls, lambda s: field(s, cls, "number_warm") == "10", "10 items in WARM")
        self.compare_items(conns, cls)
        # New items again start in HOT and end in COLD; WARM keeps the twice-fetched ones.
        for i in range(100, 120):
            self.both(conns, b"set key%03d 0 0 %d\r\n%s\r\n" % (i, len(val), val))
        self.settle(conns, cls, lambda s: field(s, cls, "number_cold") == "110", "110 items in COLD")
        self.compare_items(conns, cls)

    def test_flat_mode_links_into_cold(self):
        conns = self.pair()
        self.both(conns, b"lru mode flat\r\n")
        for i in range(10):
            self.both(conns, b"set f%d 0 0 1\r\nx\r\n" % i)
        cls = int(re.search(rb"STAT (\d+):chunk_size", conns[0].roundtrip(b"stats slabs\r\n")).group(1))
        self.compare_items(conns, cls)

    def test_maintainer_starts_one_autoexpire_crawl_at_startup(self):
        conns = self.pair()
        for c in conns:
            wait_for(lambda: dict(parse_stats(c.roundtrip(b"stats\r\n"))).get("lru_crawler_starts") == "1",
                     timeout=10, what=f"the start-up crawl on {c.label}")
            wait_for(lambda: dict(parse_stats(c.roundtrip(b"stats\r\n"))).get("lru_crawler_running") == "0",
                     timeout=10, what=f"the start-up crawl to end on {c.label}")
        # The next ones are a minute or more away: a crawl asked for now is not refused as busy.
        self.both(conns, b"lru_crawler crawl all\r\n")

    def test_temp_lru_holds_short_ttls(self):
        conns = self.pair(["-o", "temporary_ttl=100"])
        for req in (b"set t1 0 50 1\r\nx\r\n", b"set t2 0 1000 1\r\nx\r\n", b"set t3 0 0 1\r\nx\r\n"):
            self.both(conns, req)
        cls = int(re.search(rb"STAT (\d+):chunk_size", conns[0].roundtrip(b"stats slabs\r\n")).group(1))
        self.settle(conns, cls, lambda s: field(s, cls, "number_cold") == "2", "the two others in COLD")
        self.compare_items(conns, cls)


if __name__ == "__main__":
    unittest.main()
