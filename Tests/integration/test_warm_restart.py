"""Warm restart with `-e <memory file>` (memcached's restartable cache).

Items survive a graceful stop (SIGUSR1 or `shutdown graceful`) with value, flags, TTL and CAS; the CAS
counter continues above them; time spent stopped counts against TTLs. Everything else starts cold with
a `[restart]` log line and serves normally: SIGTERM/SIGKILL (no metadata), a truncated memory file, a
flipped metadata byte, another `-m`, a metadata write that hits a full disk. A locked, foreign-owned or
unopenable file stops the server with a clear message. memcached 1.6.18 runs side by side where its
behaviour is observable (log lines, `stats` names after a restart, the shutdown reply), and a rolling
restart of three nodes under a pymemcache HashClient load measures the hit ratio before and after.

Memory files live in /dev/shm (tmpfs, as in production) when it is writable. Cachet-only checks are
skipped when CACHET_BIN is memcached (the harness self-check).
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import Server, cachet_bin, memcached_bin, free_port, wait_for

SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
FAILED = "[restart] failed to validate metadata, starting with a clean cache"
NO_META = "[restart] no metadata save file, starting with a clean cache"


def is_memcached(binary):
    return os.path.basename(binary).startswith("memcached")


def next_second():
    """memcached 1.6.18 starts cold when restarted within the second it stopped in (its stop_time check);
    Cachet does not care. Side-by-side steps wait for the wall clock's next second after a stop."""
    t = int(time.time())
    wait_for(lambda: int(time.time()) > t, timeout=2, interval=0.01, what="the next second")


class RestartCase(unittest.TestCase):
    binary = None

    def setUp(self):
        self.binary = self.binary or cachet_bin()
        self.dir = tempfile.mkdtemp(prefix="cachet-restart-", dir=SHM)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.mem = os.path.join(self.dir, "mem")

    def start(self, extra=(), binary=None, port=None, mem=None, memory_mb=64):
        srv = Server(binary or self.binary, ["-m", str(memory_mb), "-A", "-e", mem or self.mem, *extra], port=port)
        srv.start()
        self.addCleanup(self._reap, srv)
        return srv

    @staticmethod
    def _reap(srv):
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()

    def stop(self, srv, how="signal", timeout=10):
        """Stops `srv` (SIGUSR1, `shutdown graceful`, SIGTERM or SIGKILL); returns its stderr."""
        if how == "command":
            with srv.connect() as c:
                c.send(b"shutdown graceful\r\n")
                self.assertEqual(c.read_until_eof(), b"", "shutdown graceful answers nothing, then closes")
        else:
            sig = {"signal": signal.SIGUSR1, "term": signal.SIGTERM, "kill": signal.SIGKILL}[how]
            os.kill(srv.pid, sig)
        try:
            rc = srv.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"{srv.name} still running {timeout} s after {how}")
        err = srv.stderr().decode(errors="replace")
        srv.wait_stopped()
        if how != "kill":
            self.assertEqual(rc, 0, f"exit status after {how}: {rc}; stderr {err!r}")
        return err

    def fill(self, srv, items):
        """items: key -> (value bytes, flags, ttl). Returns key -> CAS."""
        cas = {}
        with srv.connect() as c:
            for k, (v, f, ttl) in items.items():
                self.assertEqual(c.roundtrip(b"set %s %d %d %d\r\n%s\r\n" % (k.encode(), f, ttl, len(v), v)),
                                 b"STORED\r\n", k)
            for k in items:
                cas[k] = self.gets(c, k)[2]
        return cas

    def gets(self, c, key):
        """(value, flags, cas) or None."""
        r = c.roundtrip(b"gets %s\r\n" % key.encode(), timeout=10)
        if r == b"END\r\n":
            return None
        head, rest = r.split(b"\r\n", 1)
        _, _, flags, n, cas = head.split()
        return rest[:int(n)], int(flags), int(cas)

    def ttl(self, c, key):
        """Remaining TTL from `mg <key> t` (-1: none)."""
        r = c.roundtrip(b"mg %s t\r\n" % key.encode())
        self.assertTrue(r.startswith(b"HD t"), r)
        return int(r.split()[1][1:])

    def stats(self, srv, sub=""):
        with srv.connect() as c:
            return dict(c.stats(sub))


class CachetOnly(RestartCase):
    def setUp(self):
        super().setUp()
        if is_memcached(self.binary):
            self.skipTest("Cachet's restart checks (memcached aborts or serves stale data here)")


class ItemsSurvive(CachetOnly):
    def test_sigusr1_keeps_value_flags_ttl_and_cas(self):
        srv = self.start()
        rnd = random.Random(16)
        items = {
            "plain": (b"hello", 7, 0),
            "ttl": (b"expires later", 0xFFFFFFFF, 300),
            "abs": (b"absolute expiry", 1, int(time.time()) + 600),
            "chunked": (bytes(rnd.getrandbits(8) for _ in range(700_000)), 42, 0),   # > slab_chunk_max
            "mid": (bytes(rnd.getrandbits(8) for _ in range(100_000)), 3, 1000),
        }
        for i in range(300):
            items[f"k{i}"] = (b"v%d" % i * (i % 40 + 1), i, 0)
        cas = self.fill(srv, items)
        with srv.connect() as c:
            ttl_before = {k: self.ttl(c, k) for k in ("ttl", "abs", "mid")}
            st = dict(c.stats())
            started_before = int(st["time"]) - int(st["uptime"])
        t_stop = time.monotonic()
        err = self.stop(srv, "signal")
        self.assertIn("Gracefully stopping", err)
        self.assertTrue(os.path.exists(self.mem + ".meta"), err)

        srv2 = self.start()
        down = time.monotonic() - t_stop
        err2 = srv2.stderr().decode()
        self.assertIn(f"[restart] restored {len(items)} items", err2)
        self.assertFalse(os.path.exists(self.mem + ".meta"), "metadata is consumed at start")
        with srv2.connect() as c:
            for k, (v, f, _) in items.items():
                self.assertEqual(self.gets(c, k), (v, f, cas[k]), k)
            for k, before in ttl_before.items():
                now = self.ttl(c, k)
                self.assertLessEqual(now, before, k)
                self.assertGreaterEqual(now, before - down - 2, f"{k}: downtime {down:.1f}s counted once")
            self.assertEqual(self.ttl(c, "plain"), -1)
            self.assertEqual(c.roundtrip(b"set new 0 0 1\r\nn\r\n"), b"STORED\r\n")
            self.assertGreater(self.gets(c, "new")[2], max(cas.values()), "CAS continues above the restored ones")
            st = dict(c.stats())
            self.assertEqual(st["restored_items"], str(len(items)))
            self.assertEqual(st["curr_items"], str(len(items) + 1))
            # The clock continues: uptime counts from the first start, as memcached's does.
            self.assertEqual(int(st["time"]) - int(st["uptime"]), started_before)
            self.assertEqual(dict(c.stats("settings"))["memory_file"], self.mem)

    def test_shutdown_graceful_keeps_items_and_restarts_again(self):
        srv = self.start()
        cas = self.fill(srv, {"a": (b"1", 0, 0), "b": (b"22", 5, 0)})
        self.stop(srv, "command")
        metrics_port = free_port()
        srv2 = self.start(extra=["-o", f"metrics_port={metrics_port}"])
        page = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        self.assertIn("\ncachet_restored_items 2\n", page)
        with srv2.connect() as c:
            self.assertEqual(self.gets(c, "a"), (b"1", 0, cas["a"]))
            c.roundtrip(b"set c 0 0 3\r\nccc\r\ndelete a\r\n")
        # A second generation: what the restored server changed is what the next one sees.
        self.stop(srv2, "signal")
        srv3 = self.start()
        with srv3.connect() as c:
            self.assertIsNone(self.gets(c, "a"))
            self.assertEqual(self.gets(c, "b"), (b"22", 5, cas["b"]))
            self.assertEqual(self.gets(c, "c")[0], b"ccc")

    def test_items_expired_while_stopped_are_gone(self):
        srv = self.start()
        self.fill(srv, {"short": (b"s", 0, 1), "long": (b"l", 0, 100)})
        self.stop(srv, "signal")
        time.sleep(2.2)   # the TTL has to run out while no server runs: there is no event to wait for
        srv2 = self.start()
        self.assertIn("(1 expired while stopped", srv2.stderr().decode())
        with srv2.connect() as c:
            self.assertIsNone(self.gets(c, "short"))
            self.assertEqual(self.gets(c, "long")[0], b"l")

    def test_flush_all_before_the_stop_still_applies(self):
        srv = self.start()
        self.fill(srv, {"old": (b"o", 0, 0)})
        with srv.connect() as c:
            self.assertEqual(c.roundtrip(b"flush_all\r\n"), b"OK\r\n")
            c.roundtrip(b"set fresh 0 0 1\r\nf\r\n")
        self.stop(srv, "signal")
        srv2 = self.start()
        with srv2.connect() as c:
            self.assertIsNone(self.gets(c, "old"))
            self.assertEqual(self.gets(c, "fresh")[0], b"f")


class ColdStarts(CachetOnly):
    def _stopped_with_items(self):
        srv = self.start()
        self.fill(srv, {"a": (b"x", 0, 0)})
        return srv

    def assert_cold_and_serving(self, srv, *lines):
        err = srv.stderr().decode()
        for line in lines:
            self.assertIn(line, err)
        self.assertNotIn("[restart] restored", err)
        with srv.connect() as c:
            self.assertIsNone(self.gets(c, "a"))
            self.assertEqual(c.roundtrip(b"set a 0 0 2\r\nok\r\nget a\r\n"), b"STORED\r\nVALUE a 0 2\r\nok\r\nEND\r\n")
            self.assertEqual(dict(c.stats())["restored_items"], "0")

    def test_sigterm_and_sigkill_do_not_keep_the_cache(self):
        for how in ("term", "kill"):
            with self.subTest(how):
                srv = self._stopped_with_items()
                self.stop(srv, how)
                self.assertFalse(os.path.exists(self.mem + ".meta"))
                srv2 = self.start()
                self.assert_cold_and_serving(srv2, NO_META)
                self.stop(srv2, "kill")

    def test_sigkill_after_a_warm_start_is_cold(self):
        srv = self._stopped_with_items()
        self.stop(srv, "signal")
        srv2 = self.start()
        self.assertIn("[restart] restored 1 items", srv2.stderr().decode())
        self.stop(srv2, "kill")   # the metadata was consumed at start: nothing describes the file now
        self.assert_cold_and_serving(self.start(), NO_META)

    def test_truncated_memory_file(self):
        srv = self._stopped_with_items()
        self.stop(srv, "signal")
        os.truncate(self.mem, 32 << 20)
        self.assert_cold_and_serving(self.start(), "[restart] memory file is 33554432 bytes, its metadata describes 67108864", FAILED)

    def test_flipped_metadata_byte(self):
        srv = self._stopped_with_items()
        self.stop(srv, "signal")
        with open(self.mem + ".meta", "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 0x01]))
        self.assert_cold_and_serving(self.start(), "[restart] corrupt metadata file: metadata checksum mismatch", FAILED)

    def test_truncated_metadata(self):
        srv = self._stopped_with_items()
        self.stop(srv, "signal")
        size = os.path.getsize(self.mem + ".meta")
        os.truncate(self.mem + ".meta", size // 2)
        self.assert_cold_and_serving(self.start(), "[restart] corrupt metadata file", FAILED)

    def test_other_settings(self):
        cases = [(["-m", "128"], "maxbytes", "67108864"), (["-n", "96"], "chunk_size", "48"),
                 (["-f", "1.5"], "slab_config", "1.25"), (["-C"], "use_cas", "true"),
                 (["-I", "2m"], "item_size_max", "1048576"),
                 (["-o", "slab_chunk_max=262144"], "slab_chunk_size_max", "524288")]
        for extra, name, old in cases:
            with self.subTest(name):
                srv = self._stopped_with_items()
                self.stop(srv, "signal")
                srv2 = self.start(extra=extra)   # a later -m overrides the first, as in memcached
                self.assert_cold_and_serving(
                    srv2, f"[restart] restart incompatible due to setting for [{name}] [old value: {old}]", FAILED)
                self.stop(srv2, "kill")
                os.unlink(self.mem)

    def test_disk_full_while_writing_metadata(self):
        srv = self._stopped_with_items()
        # The metadata goes to <file>.meta.tmp first: pointing that name at /dev/full makes the write fail
        # with ENOSPC exactly where a full tmpfs would.
        os.symlink("/dev/full", self.mem + ".meta.tmp")
        err = self.stop(srv, "signal")
        self.assertIn("[restart] failed to save metadata", err)
        self.assertIn("No space left on device; the next start will be cold", err)
        self.assertFalse(os.path.exists(self.mem + ".meta"))
        self.assert_cold_and_serving(self.start(), NO_META)

    def test_damaged_item_memory_drops_only_the_damaged_page(self):
        srv = self.start()
        self.fill(srv, {"a": (b"x", 0, 0), "big": (b"B" * 5000, 0, 0)})
        self.stop(srv, "signal")
        # Page 0 holds class 1 (preallocated first): the 1-byte item "a" lives there.
        with open(self.mem, "r+b") as f:
            f.seek(1000)
            f.write(b"\xff" * 64)
        srv2 = self.start()
        err = srv2.stderr().decode()
        self.assertIn("[restart] 1 slab pages failed their checksum", err)
        with srv2.connect() as c:
            self.assertIsNone(self.gets(c, "a"))
            self.assertEqual(self.gets(c, "big")[0], b"B" * 5000)


class RelativePath(CachetOnly):
    def test_relative_memory_file_with_daemon(self):
        # -d changes directory to /: the metadata must still land next to the file given relative to the
        # directory the server was started in.
        port = free_port()
        pidfile = os.path.join(self.dir, "pid")
        p = subprocess.run([self.binary, "-u", "root", "-U", "0", "-l", "127.0.0.1", "-p", str(port), "-m", "64",
                            "-d", "-P", pidfile, "-e", "mem"], cwd=self.dir, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        pid = int(wait_for(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), what="pid file"))
        self.addCleanup(self._kill_if_running, pid)
        srv = Server(self.binary, port=port)
        with srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set a 0 0 1\r\nx\r\n"), b"STORED\r\n")
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: os.path.exists(self.mem + ".meta") and not os.path.exists(pidfile), timeout=10,
                 what="metadata next to the memory file, then the daemon gone")
        self.assertFalse(os.path.exists("/mem.meta"))


    def _kill_if_running(self, pid):
        """Only if that pid is still this test's daemon (the pid may have been reused since it exited)."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if self.binary.encode() not in f.read():
                    return
            os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass


class FileErrors(CachetOnly):
    def run_to_exit(self, args, timeout=10):
        p = subprocess.run([self.binary, "-u", "root", "-U", "0", "-l", "127.0.0.1", "-p", str(free_port()), *args],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        return p.returncode, p.stderr.decode()

    def test_a_second_server_on_the_same_file_is_refused(self):
        self.start()
        rc, err = self.run_to_exit(["-m", "64", "-e", self.mem])
        self.assertEqual(rc, 71, err)
        self.assertIn("the memory file is locked by another process", err)

    def test_metadata_that_cannot_be_removed_stops_the_server(self):
        # Read but not removed, the metadata would describe memory the next start has already changed.
        if os.getuid() != 0:
            self.skipTest("needs root to run the server as another user")
        os.chown(self.dir, 65534, 65534)
        srv = self.start(extra=["-u", "nobody"])
        self.stop(srv, "signal")
        self.assertTrue(os.path.exists(self.mem + ".meta"))
        os.chmod(self.dir, 0o555)
        p = subprocess.run([self.binary, "-u", "nobody", "-U", "0", "-l", "127.0.0.1", "-p", str(free_port()),
                            "-m", "64", "-e", self.mem], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 71, err)
        self.assertIn(f"cannot remove {self.mem}.meta: Permission denied", err)

    def test_missing_directory(self):
        rc, err = self.run_to_exit(["-m", "64", "-e", os.path.join(self.dir, "nope", "mem")])
        self.assertEqual(rc, 71, err)
        self.assertIn("failed to open file for mmap: No such file or directory", err)

    def test_file_owned_by_another_user(self):
        with open(self.mem, "wb"):
            pass
        os.chown(self.mem, 65534, 65534)
        rc, err = self.run_to_exit(["-m", "64", "-e", self.mem])
        self.assertEqual(rc, 71, err)
        self.assertIn("the memory file belongs to uid 65534", err)

    def test_file_the_user_cannot_open(self):
        if os.getuid() != 0:
            self.skipTest("needs root to run the server as another user")
        os.chmod(self.dir, 0o700)   # root's directory: the server, running as nobody (-u), cannot open it
        p = subprocess.run([self.binary, "-u", "nobody", "-U", "0", "-l", "127.0.0.1", "-p", str(free_port()),
                            "-m", "64", "-e", self.mem], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 71, err)
        self.assertIn("failed to open file for mmap: Permission denied", err)


class LikeMemcached(RestartCase):
    """The same steps on Cachet and on memcached 1.6.18 -e: the log lines and `stats` names agree."""

    def setUp(self):
        super().setUp()
        if is_memcached(self.binary):
            self.skipTest("compares Cachet with memcached")

    def run_both(self, steps):
        out = {}
        for binary in (cachet_bin(), memcached_bin()):
            self.dir = tempfile.mkdtemp(prefix="restart-pair-", dir=SHM)
            self.addCleanup(shutil.rmtree, self.dir, True)
            self.mem = os.path.join(self.dir, "mem")
            out[is_memcached(binary)] = steps(binary)
        return out[False], out[True]

    def test_log_lines_and_stats_after_a_restart(self):
        def steps(binary):
            srv = self.start(binary=binary)
            first = srv.stderr().decode()
            self.fill(srv, {"a": (b"1", 2, 0), "b": (b"22", 0, 100)})
            self.stop(srv, "command")
            next_second()
            srv2 = self.start(binary=binary)
            with srv2.connect() as c:
                values = [self.gets(c, k)[:2] for k in ("a", "b")]
                names = [n for n, _ in c.stats()]
                st = dict(c.stats())
                settings = dict(c.stats("settings"))
            self.stop(srv2, "signal")
            next_second()
            srv3 = self.start(binary=binary, extra=["-m", "128"])
            third = srv3.stderr().decode()
            return dict(first=first, values=values, names=names, items=(st["curr_items"], st["total_items"]),
                        memory_file=settings["memory_file"] == self.mem, third=third)

        ours, theirs = self.run_both(steps)
        self.assertIn(NO_META, ours["first"])
        self.assertIn(NO_META, theirs["first"])
        self.assertEqual(ours["values"], theirs["values"])
        self.assertEqual(ours["items"], theirs["items"])
        self.assertTrue(ours["memory_file"] and theirs["memory_file"])
        # Cachet's own lines come last (cachet_version, restored_items); memcached's order otherwise.
        extras = {"cachet_version", "restored_items"}
        self.assertEqual([n for n in ours["names"] if n not in extras], theirs["names"])
        self.assertEqual(ours["names"][-2:], ["cachet_version", "restored_items"])
        line = "[restart] restart incompatible due to setting for [maxbytes] [old value: 67108864]"
        self.assertIn(line, ours["third"])
        self.assertIn(line, theirs["third"])
        self.assertIn(FAILED, ours["third"])
        self.assertIn(FAILED, theirs["third"])


class RollingRestart(RestartCase):
    """Three nodes behind pymemcache's HashClient, a cache-aside load running; each node is stopped with
    SIGUSR1 and started again on the same port and memory file, one at a time. The hit ratio after the
    rollout stays within a few points of the one before (a cold rollout would lose a third of the cache)."""

    KEYS = 20_000
    WARM_SECONDS = 6.0
    WINDOW_SECONDS = 3.0

    def rollout(self, binary, how="signal"):
        from pymemcache.client.hash import HashClient
        nodes = []
        for i in range(3):
            port = free_port()
            mem = os.path.join(self.dir, f"node{i}-{os.path.basename(binary)}-{how}")
            nodes.append((port, mem, self.start(binary=binary, port=port, mem=mem)))
        client = HashClient([("127.0.0.1", p) for p, _, _ in nodes], use_pooling=False, ignore_exc=True, no_delay=True,
                            connect_timeout=1, timeout=1, retry_attempts=1, retry_timeout=0.05, dead_timeout=0.2)
        counts = {"hits": 0, "gets": 0}
        stop = threading.Event()
        errors = []

        def load():
            rnd = random.Random(7)
            try:
                while not stop.is_set():
                    k = "key:%d" % int(self.KEYS * rnd.random() ** 3)   # skewed, as real traffic is
                    v = client.get(k)
                    counts["gets"] += 1
                    if v is not None:
                        counts["hits"] += 1
                    else:
                        client.set(k, b"v" * (100 + hash(k) % 400), expire=0)
            except Exception as e:  # reported by the test, not lost in the thread
                errors.append(e)

        def window():
            h0, g0 = counts["hits"], counts["gets"]
            time.sleep(self.WINDOW_SECONDS)
            h1, g1 = counts["hits"], counts["gets"]
            self.assertGreater(g1 - g0, 1000, "the load ran")
            return (h1 - h0) / (g1 - g0)

        t = threading.Thread(target=load, daemon=True)
        t.start()
        try:
            time.sleep(self.WARM_SECONDS)
            before = window()
            restored = []
            for i, (port, mem, srv) in enumerate(nodes):
                self.stop(srv, how)
                next_second()
                srv2 = self.start(binary=binary, port=port, mem=mem)
                self.assertEqual(srv2.port, port)
                nodes[i] = (port, mem, srv2)
                if not is_memcached(binary):
                    restored.append(int(self.stats(srv2)["restored_items"]))
            after = window()
        finally:
            stop.set()
            t.join(10)
            client.close()
            for _, _, srv in nodes:
                srv.stop()
        self.assertFalse(errors, errors)
        return before, after, restored

    def test_rolling_restart_keeps_the_hit_ratio(self):
        binaries = [cachet_bin()] + ([memcached_bin()] if not is_memcached(cachet_bin()) else [])
        for binary in binaries:
            before, after, restored = self.rollout(binary)
            print(f"\n  rolling restart (SIGUSR1), {os.path.basename(binary)}: hit ratio {before:.3f} before, "
                  f"{after:.3f} after" + (f" (items restored per node: {restored})" if restored else ""),
                  file=sys.stderr)
            self.assertGreater(before, 0.5)
            self.assertGreaterEqual(after, before - 0.05, f"{binary}: {before:.3f} -> {after:.3f}")
            if restored:
                self.assertTrue(all(n > 1000 for n in restored), restored)
        # The same rollout with SIGTERM (no metadata: every node comes back cold) shows what the
        # measurement catches.
        before, after, _ = self.rollout(binaries[0], how="term")
        print(f"  rolling restart (SIGTERM, cold), {os.path.basename(binaries[0])}: hit ratio {before:.3f} before, "
              f"{after:.3f} after", file=sys.stderr)
        self.assertLess(after, before - 0.05, "a cold rollout loses hits")


if __name__ == "__main__":
    unittest.main()
