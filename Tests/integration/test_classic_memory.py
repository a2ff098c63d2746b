"""Differential: where items go in memory — chunked items above slab_chunk_max, values of 64 KB and
more mixed with small ones, the `-vv` slab class table, eviction at `-m 8`, out of memory with `-M`,
`-I 2m` items — replies and `stats items/slabs` against memcached 1.6.18.

Each case sends the same requests to memcached 1.6.18 (the oracle) and to cachet on fresh connections and
compares the replies byte for byte (difftools.DiffCase); cases on the class's shared pair start with
`flush_all`, cases whose replies expose CAS uniques or counters get a fresh pair (`fresh=True`).
With CACHET_BIN=/usr/bin/memcached every case must pass (harness check).
"""

import unittest

from difftools import (DiffCase, print_summary, Pair, st, items_norm, stat_values, slabs_norm, slabs_norm_any,
                       O33)


def tearDownModule():
    print_summary(__name__)


class ChunkedItems(DiffCase):
    """Items larger than slab_chunk_max (512 KiB by default) are chunked."""

    def test_chunked(self):
        seq = (st(b"c600k", b"a" * 600000) + st(b"c1m", b"b" * 1048000) + st(b"c520k", b"c" * 524288) +
               b"get c600k\r\n")
        self.diff("chunked items get", seq, fresh=True)
        self.diff("chunked stats items", [seq, b"stats items\r\n"], norm=items_norm, fresh=True)
        self.diff("chunked stats", [seq, b"stats\r\n"], fresh=True)
        self.diff("chunked append/prepend", st(b"ca", b"a" * 500000) + st(b"ca", b"b" * 100000, cmd=b"append") +
                  st(b"ca", b"c" * 10, cmd=b"prepend") + b"get ca\r\n", fresh=True)
        self.diff("chunked incr non-numeric", st(b"ci", b"1" + b" " * 600000) + b"incr ci 1\r\n", fresh=True)

    # Slab layout (memcached 1.6.18 do_item_alloc / do_item_alloc_chunk / _store_item_copy_chunks): the header
    # (48 + 8 + key + 1 + suffix + 48-byte item_chunk) in a small class, the item counted in the largest class,
    # the value + "\r\n" in chunks of min(left + 48, slab_chunk_max) bytes from the smallest class that fits.

    def slabs_items(self, label, seq, extra=None):
        """`seq` (bytes, or a list of steps), then stats slabs / stats items / selected stats, each on a fresh pair."""
        seq = seq if isinstance(seq, list) else [seq]
        self.diff(label + ": stats slabs", seq + [b"stats slabs\r\n"], fresh=True, norm=slabs_norm_any, extra=extra)
        self.diff(label + ": stats items", seq + [b"stats items\r\n"], fresh=True, norm=items_norm, extra=extra)
        self.diff(label + ": stats", seq + [b"stats\r\n"], fresh=True,
                  norm=stat_values(["curr_items", "total_items", "bytes", "cmd_set", "get_hits", "total_malloced",
                                    "evictions", "store_too_large", "store_no_memory"]), extra=extra)

    def test_chunked_slabs(self):
        seq = (st(b"c600k", b"a" * 600000) + st(b"c1m", b"b" * 1048000) + st(b"c520k", b"c" * 524288) +
               b"get c600k\r\n")
        self.diff("chunked stats slabs", [seq, b"stats slabs\r\n"], fresh=True, norm=slabs_norm_any)
        self.diff("chunked delete then slabs", [seq + b"delete c600k\r\ndelete c1m\r\n", b"stats slabs\r\n"],
                  fresh=True, norm=slabs_norm_any)
        self.diff("slab_chunk_max=16384 -I 64k", [st(b"a", b"x" * 20000), b"stats slabs\r\n"],
                  fresh=True, extra=["-o", "slab_chunk_max=16384", "-I", "64k"])

    def test_chunked_sizes(self):
        # 524228: largest plain item with key "k"; 524238/524239: the "\r\n" spills 0/1 byte into class 1;
        # 1048478: exactly two largest chunks; 1048516: 1 MB - overhead (ntotal = -I); 1048517: too large.
        for size in (524228, 524229, 524238, 524239, 524241, 1048478, 1048479, 1048516, 1048517):
            self.slabs_items(f"chunked {size}", st(b"k", b"v" * size) + b"get k\r\n")
        self.slabs_items("chunked 1 MB - overhead, flags", st(b"k", b"v" * 1048512, flags=7) + b"get k\r\n")

    def test_chunked_keys_and_flags(self):
        # header class from key length and flags: 14/15-byte keys (class 2 vs 3 with flags), 109, 250 bytes.
        seq = b"".join(st(b"k" * n, b"v" * 700000, flags=f) for n, f in ((14, 0), (15, 0), (14, 9), (109, 0),
                                                                        (250, 1), (250, 0)))
        self.slabs_items("chunked keys/flags", seq + b"get " + b"k" * 250 + b"\r\n")

    def test_chunked_overwrite_delete(self):
        seq = (st(b"a", b"1" * 600000) + st(b"a", b"2" * 900000) + st(b"b", b"3" * 600000) + b"delete b\r\n" +
               st(b"c", b"4" * 700000) + st(b"c", b"small") + st(b"d", b"small") + st(b"d", b"5" * 800000) +
               b"get a c d\r\ndelete d\r\n")
        self.slabs_items("chunked overwrite/delete", seq)

    def test_chunked_append_prepend_layout(self):
        # _store_item_copy_chunks: each copied part gets chunks sized for what is left of it, and a full chunk
        # at the end of a part is followed by an empty 48-byte one (class 1).
        seq = (st(b"a", b"a" * 300000) + st(b"a", b"b" * 300000, cmd=b"append") +
               st(b"b", b"c" * 600000) + st(b"b", b"d" * 10, cmd=b"append") + st(b"b", b"e" * 5, cmd=b"prepend") +
               st(b"c", b"f" * 500000) + st(b"c", b"g" * 24240, cmd=b"append") +
               st(b"d", b"") + st(b"d", b"h" * 600000, cmd=b"append") + b"get a b c d\r\n")
        self.slabs_items("chunked append/prepend layout", seq)

    def test_chunked_big_item_size(self):
        seq = (st(b"big", b"b" * 1572864) + st(b"b2", b"c" * 2097052) + st(b"b3", b"d" * 2097000, flags=3) +
               b"get big b2\r\n")
        self.slabs_items("-I 2m chunked", seq, extra=["-I", "2m"])

    def test_chunked_slab_chunk_max(self):
        seq = (st(b"a", b"x" * 20000) + st(b"b", b"y" * 16336) + st(b"c", b"z" * 32672) + st(b"d", b"w" * 65000) +
               st(b"a", b"v" * 3, cmd=b"append") + b"get a b c d\r\n")
        self.slabs_items("slab_chunk_max=16384 -I 64k", seq, extra=["-o", "slab_chunk_max=16384", "-I", "64k"])
        seq = st(b"a", b"x" * 200000) + st(b"b", b"y" * 65536, flags=1) + st(b"c", b"z" * 900000) + b"get a\r\n"
        self.slabs_items("slab_chunk_max=65536", seq, extra=["-o", "slab_chunk_max=65536"])

    def test_chunked_no_cas(self):
        self.slabs_items("-C chunked", st(b"a", b"x" * 600000) + st(b"b", b"y" * 524233), extra=["-C"])

    def test_chunked_eviction(self):
        # -m 8: chunked items evict each other from the largest class's LRU (their headers sit in class 2);
        # small items in the header class are evicted by small items and headers alike.
        steps = [st(b"a%d" % (i % 7), b"v" * (600000 + i * 1000)) for i in range(40)]
        steps.append(b"delete a3\r\n" + st(b"a1", b"w" * 300000, cmd=b"append") + b"get a1 a6 a0\r\n")
        self.slabs_items("-m 8 chunked overwrites", steps, extra=["-m", "8"])
        steps = [st(b"a%d" % i, b"v" * 1048000) for i in range(6)]
        steps += [b"".join(st(b"s%09d" % i, b"s" * 40) for i in range(j, j + 1000)) for j in range(0, 30000, 1000)]
        steps += [st(b"b%d" % i, b"v" * 524288) for i in range(5)]
        self.slabs_items("-m 8 chunked + small", steps + [b"get b4 a0 s000000000\r\n"], extra=["-m", "8"])
        steps = [st(b"a%d" % i, b"v" * 600000) for i in range(8)]
        steps += [b"".join(st(b"s%05d" % i, b"s" * 200) for i in range(j, j + 1000)) for j in range(0, 40000, 1000)]
        self.slabs_items("-m 8 chunked then small", steps + [b"get a7 a0\r\n"], extra=["-m", "8"])
        steps = [st(b"a%d" % i, b"v" * 1048000) for i in range(6)] + [st(b"b", b"v" * 600000)]
        self.slabs_items("-m 8 -M chunked", steps + [b"get b a0\r\n"], extra=["-m", "8", "-M"])


class LargeValues(DiffCase):
    """Values of 64 KB and more, which Cachet sends straight from slab memory (pinned, ZeroCopyOutput.swift):
    mixed with small ones and chunked ones in one reply, and dropped again when the command is culled."""

    def test_large_values(self):
        sizes = [65535, 65536, 65537, 100000, 524200, 600000]
        setup = b"".join(st(b"v%d" % n, bytes([97 + i % 26]) * n, flags=i) for i, n in enumerate(sizes)) + st(b"s", b"1")
        keys = b" ".join(b"v%d" % n for n in sizes)
        for label, req in [
            ("get large and small mixed", setup + b"get s " + keys + b" s nope v65536\r\n"),
            ("gets / gat / gats large", setup + b"gets v100000 s\r\ngat 100 v600000\r\ngats 0 v65537 s\r\n"),
            ("pipelined large gets", setup + b"get v100000\r\nversion\r\nget v100000 v100000\r\nmn\r\n"),
            ("key 251 culls large values", [setup, b"get s v100000 v600000 " + b"a" * 251 + b"\r\nget v65536\r\n"]),
            ("key 251 culls an mg value", [setup, b"mg v100000 v\r\nget s " + b"a" * 251 + b"\r\nget s\r\n"]),
            ("mg then ma on a large numeric value", st(b"n", b"7" + b" " * 99999) + b"mg n v\r\nma n D5 v\r\nmg n v\r\n"),
            ("mg large v", setup + b"mg v65536 v s f\r\nmg v600000 v k q\r\nmg v100000 s\r\nmn\r\n"),
            ("mg large v, opaque too long", setup + b"mg v100000 v " + O33 + b"\r\nmg v600000 v t " + O33 +
                                            b"\r\nmg v65537 v\r\n"),
            ("incr on a large numeric value", st(b"n", b"7" + b" " * 99999) + b"get n\r\nincr n 5\r\nget n\r\n"),
            ("delete and replace after get", setup + b"get v100000\r\ndelete v100000\r\nget v100000\r\n" +
                                             st(b"v100000", b"z" * 100001) + b"get v100000\r\n"),
        ]:
            self.diff(label, req)


class VerboseSlabClasses(DiffCase):
    """`-vv` prints the slab class table on stderr at startup."""

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def test_vv_slab_classes(self):
        for flags in (["-vv"], ["-vv", "-f", "2", "-n", "100"], ["-vv", "-I", "2m"], ["-vv", "-m", "8", "-f", "1.5"]):
            pair = Pair(flags).start()
            try:
                lines = []
                for srv in (pair.oracle, pair.cachet):
                    lines.append(b"\n".join(ln for ln in srv.stderr().split(b"\n")
                                            if ln.startswith(b"slab class")))
            finally:
                pair.stop_later()
            self.assertTrue(lines[0], "memcached -vv printed no slab classes")
            self.compare(f"-vv slab classes {' '.join(flags[1:])}", " ".join(flags).encode(), *lines)


class Eviction8m(DiffCase):
    EXTRA = ["-m", "8"]

    def test_eviction(self):
        steps = [b"set key%03d 0 0 102400\r\n" % i + b"v" * 102400 + b"\r\n" for i in range(200)]
        steps.append(b"stats\r\n")
        steps.append(b"get key000 key199\r\n")
        self.diff("-m 8: 200 x 100KB", steps,
                  norm=stat_values(["curr_items", "evictions", "total_items", "limit_maxbytes",
                                    "evicted_unfetched"]), fresh=True)
        steps2 = steps[:200] + [b"stats items\r\n", b"stats slabs\r\n"]
        self.diff("-m 8: stats items/slabs after eviction", steps2,
                  norm=lambda r: items_norm(r) if r.startswith(b"STAT items:") else
                  slabs_norm(r) if r.startswith(b"STAT ") else r, fresh=True)


class OutOfMemory(DiffCase):
    EXTRA = ["-m", "8", "-M"]

    def test_out_of_memory(self):
        steps = [b"set key%03d 0 0 102400\r\n" % i + b"v" * 102400 + b"\r\n" for i in range(120)]
        steps.append(b"set small 0 0 5\r\nsmall\r\nget small\r\n")
        steps.append(b"stats\r\n")
        self.diff("-M: sets until OOM", steps,
                  norm=stat_values(["curr_items", "evictions", "store_no_memory", "total_items"]),
                  fresh=True)
        self.diff("-M: stats settings evictions off", b"stats settings\r\n",
                  norm=stat_values(["evictions", "maxbytes"]), fresh=True)


class BigItems(DiffCase):
    EXTRA = ["-I", "2m"]

    def test_big_values(self):
        self.diff("-I 2m: 1.5MB value", st(b"big", b"b" * 1572864) + b"get big\r\n")
        self.diff("-I 2m: 2MB value too large", st(b"big2", b"b" * 2097152) + b"get big2\r\n")
        self.diff("-I 2m: item_size_max", b"stats settings\r\n", norm=stat_values(["item_size_max"]))
        self.diff("-I 2m: 2MB - 100", st(b"big3", b"c" * (2097152 - 100)) + b"get big3\r\n")


if __name__ == "__main__":
    unittest.main()
