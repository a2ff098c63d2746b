"""memcached 1.6.18's memory and connection options, side by side with memcached where they show:
`-o slab_sizes` (and `worker_logbuf_size`, whose value 1.6.18 also reads as slab_sizes), `-L` (all memory
mapped at start, a page per class), `-o read_buf_mem_limit` (a connection that finds its worker's read
buffers spent is closed and counted), `-N` (NAPI-id worker choice: loopback falls back to round robin),
`-o sock_cookie_id` (SO_MARK on the listening sockets) and `-o hash_algorithm` (any of the three serves
the same replies; a warm restart with another one starts cold)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import Server, cachet_bin, memcached_bin, parse_stats, run_startup, stats_dict, wait_for

SLAB_FIELDS = ("chunk_size", "chunks_per_page", "total_pages", "total_chunks", "used_chunks")


def slab_shape(conn):
    """`stats slabs` reduced to what the options decide: each class's geometry and pages, the totals."""
    out = []
    for name, value in parse_stats(conn.roundtrip(b"stats slabs\r\n")):
        m = re.match(r"(\d+):(\w+)$", name)
        if (m and m.group(2) in SLAB_FIELDS) or name in ("active_slabs", "total_malloced"):
            out.append((name, value))
    return out


def both(extra, scenario):
    """Runs `scenario(conn)` on memcached and on Cachet started with `extra`; returns both results."""
    got = {}
    for name, binary in (("memcached", memcached_bin()), ("cachet", cachet_bin())):
        with Server(binary, extra, name=name) as srv, srv.connect() as c:
            got[name] = scenario(c)
    return got


def store_sizes(sizes):
    def scenario(c):
        for i, n in enumerate(sizes):
            assert c.roundtrip(b"set k%d 0 0 %d\r\n%s\r\n" % (i, n, b"v" * n)) == b"STORED\r\n"
        return slab_shape(c)
    return scenario


class SlabSizes(unittest.TestCase):
    SIZES = (1, 60, 150, 250, 1000, 5000, 100_000, 600_000)

    def test_explicit_classes_as_memcached(self):
        # strtok's '-' runs and a trailing blank are accepted, as memcached's parser does.
        for extra, first in ((["-o", "slab_sizes=100-200-300"], "104"),
                             (["-o", "slab_sizes=-100--200-5000 ,slab_chunk_max=262144"], "104"),
                             (["-n", "64", "-o", "slab_sizes=120-4096"], "120")):
            with self.subTest(extra=extra):
                got = both(extra, store_sizes(self.SIZES))
                self.assertEqual(got["cachet"], got["memcached"])
                self.assertIn(("1:chunk_size", first), got["cachet"])

    def test_worker_logbuf_size_is_read_as_slab_sizes_too(self):
        # memcached 1.6.18: one 64-byte class and the 512 KB class; Cachet keeps that, for the same memory use.
        got = both(["-o", "worker_logbuf_size=64"], store_sizes(self.SIZES))
        self.assertEqual(got["cachet"], got["memcached"])
        self.assertEqual([v for n, v in got["cachet"] if n.endswith(":chunk_size")], ["64", "524288"])
        # A later slab_sizes wins over it.
        got = both(["-o", "worker_logbuf_size=64,slab_sizes=100-200"], store_sizes(self.SIZES))
        self.assertEqual(got["cachet"], got["memcached"])
        self.assertEqual([v for n, v in got["cachet"] if n.endswith(":chunk_size")], ["104", "200", "524288"])


class LargePages(unittest.TestCase):
    def test_preallocated_pages_as_memcached(self):
        got = both(["-L", "-m", "64"], store_sizes((10, 1000, 100_000)))
        self.assertEqual(got["cachet"], got["memcached"])
        # Every class holds one page before anything is stored in it (39 classes, 39 MB).
        self.assertIn(("active_slabs", "39"), got["cachet"])
        self.assertIn(("total_malloced", str(39 << 20)), got["cachet"])

    def test_too_little_memory_for_a_page_per_class(self):
        mine = run_startup(cachet_bin(), ["-u", "root", "-p", "0", "-U", "0", "-L", "-m", "10"])
        theirs = run_startup(memcached_bin(), ["-u", "root", "-p", "0", "-U", "0", "-L", "-m", "10"])
        self.assertEqual(mine[0], theirs[0])
        self.assertEqual(mine[2], theirs[2])
        self.assertEqual(mine[0], 1)


class ReadBufMemLimit(unittest.TestCase):
    """-t 1 and 1 MB: 64 read buffers of 16 KB. 64 connections each holding half a command take them all; the
    next client is closed, counted in read_buf_oom; once the halves complete, everyone is served again.
    Cachet only: memcached takes its reply buffers from the same budget (so there the 64th `version` below
    already fails, counted in response_obj_oom); Cachet bounds read buffers alone (README)."""

    def test_a_spent_budget_closes_the_newcomer(self):
        with Server(cachet_bin(), ["-t", "1", "-o", "read_buf_mem_limit=1"]) as srv:
            held = []
            for _ in range(64):
                c = srv.raw_connect()
                c.settimeout(10)
                # The reply to `version` proves the server read this segment, half command included.
                c.sendall(b"version\r\nget half")
                self.assertTrue(c.recv(100).startswith(b"VERSION "))
                held.append(c)
            probe = srv.raw_connect()
            probe.settimeout(10)
            probe.sendall(b"version\r\n")
            try:
                reply = probe.recv(100)
            except ConnectionResetError:
                reply = b""
            probe.close()
            self.assertEqual(reply, b"", "the 65th client was served past the limit")
            for c in held:
                c.sendall(b"\r\n")
                self.assertEqual(c.recv(100), b"END\r\n")   # the holders were never disturbed
                c.close()
            with srv.connect() as c:
                self.assertEqual(stats_dict(c)["read_buf_oom"], "1")
                self.assertTrue(c.roundtrip(b"version\r\n").startswith(b"VERSION "))

    def test_stats_count_held_buffers(self):
        with Server(cachet_bin(), ["-t", "1"]) as srv, srv.connect() as c:
            half = srv.raw_connect()
            half.settimeout(10)
            half.sendall(b"version\r\nget half")
            self.assertTrue(half.recv(100).startswith(b"VERSION "))
            st = stats_dict(c)
            self.assertGreaterEqual(int(st["read_buf_count"]), 2)   # this connection and the half command
            self.assertEqual(int(st["read_buf_bytes"]), int(st["read_buf_count"]) * 16384)
            half.close()


class NapiIds(unittest.TestCase):
    def test_loopback_falls_back_to_round_robin(self):
        def scenario(c):
            extra = [socket.create_connection(("127.0.0.1", c.sock.getpeername()[1])) for _ in range(2)]
            for s in extra:
                s.sendall(b"version\r\n")
                s.recv(100)
                s.close()
            st = stats_dict(c)
            return st["round_robin_fallback"], st["unexpected_napi_ids"]
        # memcached 1.6.18 crashes on `stats settings` with -N; `stats` is safe.
        got = both(["-N", "2"], scenario)
        self.assertEqual(got["cachet"], got["memcached"])
        self.assertGreaterEqual(int(got["cachet"][0]), 3)   # the harness's readiness probe may count too
        self.assertEqual(got["cachet"][1], "0")
        with Server(cachet_bin(), ["-N", "2"]) as srv, srv.connect() as c:
            self.assertEqual(stats_dict(c, "settings")["num_napi_ids"], "2")


class SockCookieId(unittest.TestCase):
    def test_listening_sockets_carry_the_mark(self):
        ss = shutil.which("ss")
        self.assertIsNotNone(ss, "iproute2's ss (Scripts/bootstrap installs it)")
        for name, binary in (("memcached", memcached_bin()), ("cachet", cachet_bin())):
            with Server(binary, ["-o", "sock_cookie_id=7"], name=name) as srv:
                out = subprocess.run([ss, "-tlne", "sport = :%d" % srv.port], capture_output=True, text=True,
                                     timeout=10).stdout
                self.assertIn("fwmark:0x7", out, name)


class HashAlgorithms(unittest.TestCase):
    def test_each_hash_serves_the_same_replies(self):
        reqs = b"".join(b"set key%d 0 0 2\r\nv%d\r\n" % (i, i % 10) for i in range(2000))
        gets = b"get " + b" ".join(b"key%d" % i for i in range(0, 2000, 7)) + b"\r\n"
        for algorithm in ("murmur3", "jenkins", "xxh3"):
            with self.subTest(algorithm=algorithm):
                got = both(["-o", "hash_algorithm=" + algorithm],
                           lambda c: (c.roundtrip(reqs, timeout=20), c.roundtrip(gets),
                                      stats_dict(c, "settings")["hash_algorithm"]))
                self.assertEqual(got["cachet"], got["memcached"])
                self.assertEqual(got["cachet"][2], algorithm)

    def test_warm_restart_with_another_hash_starts_cold(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        mem = os.path.join(tmp, "mem")
        with Server(cachet_bin(), ["-e", mem, "-o", "hash_algorithm=jenkins"]) as srv, srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set k 0 0 1\r\nx\r\n"), b"STORED\r\n")
            srv.proc.send_signal(signal.SIGUSR1)
            srv.proc.wait(timeout=20)
        srv = Server(cachet_bin(), ["-e", mem, "-o", "hash_algorithm=xxh3"]).start()
        self.addCleanup(srv.stop)
        with srv.connect() as c:
            self.assertEqual(c.roundtrip(b"get k\r\n"), b"END\r\n")
        wait_for(lambda: b"restart incompatible due to setting for [hash_algorithm] [old value: jenkins]"
                 in srv.stderr(), what="the cold-start line")


if __name__ == "__main__":
    unittest.main()
