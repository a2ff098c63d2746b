"""Slab page moves against memcached 1.6.18: `slabs reassign` replies and what `stats` / `stats slabs` say
after deterministic scenarios (explicit reassigns, `-o no_lru_maintainer` so no automove runs), each move
awaited by polling `slab_reassign_running` with a deadline. Plus one concurrency check: repeated reassigns
while 50 connections set/get/delete with cachet-bench --verify."""

import os
import re
import subprocess
import time
import unittest

from difftools import DiffCase, Pair, print_summary
from harness import HarnessError, Server, cachet_bin, memcached_bin, parse_stats, free_port, wait_for

MOVER_STATS = ["slab_reassign_rescues", "slab_reassign_chunk_rescues", "slab_reassign_evictions_nomem",
               "slab_reassign_inline_reclaim", "slab_reassign_busy_items", "slab_reassign_busy_deletes",
               "slab_reassign_running", "slabs_moved", "slab_global_page_pool", "curr_items", "total_items",
               "evictions"]


def stats(conn, sub=""):
    return dict(parse_stats(conn.roundtrip((f"stats {sub}".strip() + "\r\n").encode())))


def await_move(conn, moved, timeout=30.0):
    """Polls `stats` until `slabs_moved` reaches `moved` and no move runs (an event, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        s = stats(conn)
        if s["slab_reassign_running"] == "0" and int(s["slabs_moved"]) >= moved:
            # One `stats` reply is not an atomic cut: its item counts may predate the move's end that its
            # mover lines show. The next reply is taken after the move ended.
            return stats(conn)
        if time.monotonic() > deadline:
            raise HarnessError(f"move {moved} not finished after {timeout}s: {s['slabs_moved']} moved")
        time.sleep(0.005)


def pages(conn):
    """`stats slabs` lines that follow pages: per class total_pages, used/free chunks; total_malloced."""
    s = stats(conn, "slabs")
    keep = {k: v for k, v in s.items()
            if re.match(r"\d+:(total_pages|used_chunks|free_chunks|total_chunks)$", k)}
    keep["total_malloced"] = s["total_malloced"]
    keep["active_slabs"] = s["active_slabs"]
    return keep


def fill(conn, keys, size, prefix=b"k"):
    val = b"v" * size
    conn.roundtrip(b"".join(b"set %s%05d 0 0 %d noreply\r\n%s\r\n" % (prefix, i, size, val) for i in keys),
                   timeout=60)


def delete(conn, keys, prefix=b"k"):
    conn.roundtrip(b"".join(b"delete %s%05d noreply\r\n" % (prefix, i) for i in keys), timeout=60)


class SlabReassignDiff(DiffCase):
    EXTRA = ["-m", "64", "-o", "no_lru_maintainer"]

    def run_both(self, scenario, extra=None):
        pair = Pair(self.EXTRA if extra is None else extra).start()
        try:
            out = []
            for srv in (pair.oracle, pair.cachet):
                with srv.connect(timeout=60) as c:
                    out.append(scenario(c))
            return out
        finally:
            pair.stop_later()

    def test_pages_move_with_rescues_evictions_and_the_pool(self):
        """Three pages of 100-byte values (class 4); most of the third page deleted and ten items of the
        oldest page too; the oldest page goes to the pool (rescues, inline reclaims, evictions for lack of
        room), a second one too, then a pooled page goes to class 10."""
        def scenario(c):
            obs = []
            obs.append(c.roundtrip(b"slabs reassign 4 0\r\n"))   # nothing there yet
            fill(c, range(16000), 100)
            obs.append(pages(c))
            delete(c, range(11000, 16000))
            delete(c, range(0, 10))
            obs.append(c.roundtrip(b"slabs reassign 4 0\r\n"))
            s = await_move(c, 1)
            obs.append({k: s[k] for k in MOVER_STATS})
            obs.append(pages(c))
            obs.append(c.roundtrip(b"slabs reassign 4 0\r\n"))
            s = await_move(c, 2)
            obs.append({k: s[k] for k in MOVER_STATS})
            obs.append(pages(c))
            obs.append(c.roundtrip(b"slabs reassign 4 4\r\n"))
            obs.append(c.roundtrip(b"slabs reassign 4 0\r\n"))    # one page left
            obs.append(c.roundtrip(b"slabs reassign -1 10\r\n"))  # no class has a spare page
            obs.append(c.roundtrip(b"slabs reassign 0 10\r\n"))   # two pooled pages
            s = await_move(c, 3)
            obs.append({k: s[k] for k in MOVER_STATS})
            obs.append(pages(c))
            obs.append(c.roundtrip(b"slabs reassign 0 10\r\n"))   # one pooled page: no spare
            # Which keys survived, and their values.
            hits = c.roundtrip(b"".join(b"get k%05d\r\n" % i for i in range(16000)), timeout=60)
            obs.append((hits.count(b"VALUE "), hits.count(b"v" * 100 + b"\r\n")))
            # The page class 10 got is usable.
            fill(c, range(100), 1000, prefix=b"m")
            obs.append(pages(c))
            return obs

        a, b = self.run_both(scenario)
        for i, (x, y) in enumerate(zip(a, b)):
            self.compare(f"mover step {i}", b"", x, y)

    def test_pool_pages_over_the_memory_limit_are_released(self):
        """`cache_memlimit` below what is malloced: pages moved to the pool are freed (total_malloced drops),
        and a class that needs a page again takes it from the pool first."""
        def scenario(c):
            obs = []
            fill(c, range(14000), 2000)          # -m 16: the memory fills, evictions in one class
            obs.append(pages(c))
            obs.append(c.roundtrip(b"cache_memlimit 10\r\n"))
            for n in range(1, 4):
                obs.append(c.roundtrip(b"slabs reassign -1 0\r\n"))
                s = await_move(c, n)
                obs.append({k: s[k] for k in MOVER_STATS if k != "evictions"})
                obs.append(pages(c))
            obs.append(c.roundtrip(b"cache_memlimit 16\r\n"))
            fill(c, range(20), 100, prefix=b"s")  # a new class maps a page again
            obs.append(pages(c))
            return obs

        a, b = self.run_both(scenario, extra=["-m", "16", "-o", "no_lru_maintainer"])
        for i, (x, y) in enumerate(zip(a, b)):
            self.compare(f"memlimit step {i}", b"", x, y)

    def test_chunked_items_on_a_moved_page(self):
        """600 KB values are chunked (header in a small class, chunks in the largest and a tail class): a
        page of the largest class moves and every surviving value reads back intact."""
        def scenario(c):
            obs = []
            val = bytes(range(256)) * 2400
            c.roundtrip(b"".join(b"set c%03d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val) for i in range(20)),
                        timeout=60)
            for i in range(1, 20, 2):
                c.roundtrip(b"delete c%03d noreply\r\n" % i)
            obs.append(pages(c))
            obs.append(c.roundtrip(b"slabs reassign 39 0\r\n"))
            s = await_move(c, 1)
            obs.append({k: s[k] for k in MOVER_STATS})
            obs.append(pages(c))
            intact = 0
            for i in range(0, 20, 2):
                r = c.roundtrip(b"get c%03d\r\n" % i, timeout=30)
                if r == b"VALUE c%03d 0 %d\r\n%s\r\nEND\r\n" % (i, len(val), val):
                    intact += 1
                else:
                    self.assertEqual(r, b"END\r\n")
            obs.append(intact)
            return obs

        a, b = self.run_both(scenario)
        for i, (x, y) in enumerate(zip(a, b)):
            self.compare(f"chunked step {i}", b"", x, y)


class AutomoveOptions(DiffCase):
    """`-o slab_automove_ratio` / `slab_automove_window`: memcached's checks (message and exit status) and
    what `stats settings` shows."""

    def test_option_errors(self):
        for opt in ["slab_automove_ratio", "slab_automove_ratio=0", "slab_automove_ratio=1.5",
                    "slab_automove_ratio=x", "slab_automove_window", "slab_automove_window=2",
                    "slab_automove_window=x"]:
            out = []
            for binary in (memcached_bin(), cachet_bin()):
                p = subprocess.run([binary, "-u", "root", "-U", "0", "-p", str(free_port()), "-o", opt],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
                out.append((p.returncode, p.stderr))
            self.compare(f"-o {opt}", opt.encode(), out[0], out[1])

    def test_settings_shown(self):
        self.diff("ratio and window in stats settings", [b"stats settings\r\n"], fresh=True,
                  extra=["-o", "slab_automove_ratio=0.5,slab_automove_window=7,slab_automove=2"])
        self.diff("ratio 1 is accepted", [b"stats settings\r\n"], fresh=True,
                  extra=["-o", "slab_automove_ratio=1,slab_automove_window=3"])


class SlabMoverUnderLoad(unittest.TestCase):
    """Repeated `slabs reassign` (and slab_automove=2) while 50 connections set and get values of
    50..30000 bytes (plain and chunked with `slab_chunk_max` 16 KB) with cachet-bench --verify: no wrong
    value, no error, the server stays up."""

    def bench_bin(self):
        path = os.path.join(os.path.dirname(cachet_bin()), "cachet-bench")
        if not os.path.exists(path):
            self.fail(f"{path} missing: build it (swift build -c release --product cachet-bench)")
        return path

    def test_reassign_while_verifying(self):
        bench = self.bench_bin()
        # 32 MB: with 16 over ~23 classes most hold a single page and none may have one to spare in time.
        srv = Server(cachet_bin(), ["-m", "32", "-t", "4", "-o", "slab_automove=2,slab_chunk_max=16384"], name="cachet").start()
        try:
            with srv.connect(timeout=30) as c:
                proc = subprocess.Popen(
                    [bench, "--port", str(srv.port), "--threads", "2", "--conns", "25", "--time", "8",
                     "--keys", "20000", "--data-size-range", "50-30000", "--ratio", "1:2", "--prefill", "--verify",
                     "--quiet"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                replies = set()
                deadline = time.monotonic() + 30
                while proc.poll() is None and time.monotonic() < deadline:
                    for src, dst in ((-1, 0), (-1, 5), (-1, 12), (0, 20)):
                        replies.add(c.roundtrip(b"slabs reassign %d %d\r\n" % (src, dst)))
                    time.sleep(0.01)
                out, _ = proc.communicate(timeout=30)

                # On a loaded machine the 8 s of load may end before the mover finished a page (automove=2
                # keeps it busy, so explicit requests may never find it idle): keep asking until one moved.
                def a_page_moved():
                    replies.add(c.roundtrip(b"slabs reassign -1 0\r\n"))
                    return int(stats(c)["slabs_moved"]) > 0
                wait_for(a_page_moved, timeout=20, interval=0.1, what="a slab page moved")
            text = out.decode(errors="replace")
            self.assertEqual(proc.returncode, 0, text[-2000:])
            self.assertLessEqual(replies, {b"OK\r\n", b"BUSY currently processing reassign request\r\n",
                                          b"NOSPARE source class has no spare pages\r\n",
                                          b"BADCLASS invalid src or dst class id\r\n"})
            self.assertTrue(srv.alive())
        finally:
            srv.stop()


def tearDownModule():
    print_summary(__name__)


if __name__ == "__main__":
    unittest.main()
