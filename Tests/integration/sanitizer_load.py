"""Concurrency-heavy scenarios for a sanitizer build of the server (`make asan`, `make tsan`; run by
Scripts/sanitize, not by `make test` — the file name does not match test_*.py on purpose).

Every scenario starts its own server with four worker threads and its sanitizer's log_path pointing
into SANITIZER_LOG_DIR, drives it from several client threads, checks the replies, stops the server
and then fails if the sanitizer wrote a report (a report file, or a report on the server's stderr).

    CACHET_BIN=.build-tsan/release/cachet SANITIZER=thread SANITIZER_LOG_DIR=/tmp/x \
        /usr/bin/python3 -m unittest -v sanitizer_load      # from Tests/integration

Scenarios: watch connections opening/closing during set/get traffic; `lru_crawler metadump all`
during traffic; refresh_certs and SIGHUP reloads under TLS load; SIGTERM while clients run; values
>= 64 KB (sent from slab memory) overwritten and deleted while clients read them; a 50-connection
cachet-bench --verify load, alone and with slab pages moving under it.
"""

import glob
import os
import random
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import Server, HarnessError, cachet_bin, wait_for, REPO_ROOT
from tlscerts import LiveFiles, shared
from tlstools import TLSServer, client_ctx, tls_connect

SECONDS = float(os.environ.get("SANITIZER_LOAD_SECONDS", "4"))
SANITIZER = os.environ.get("SANITIZER", "address")
LOG_DIR = os.environ.get("SANITIZER_LOG_DIR") or "/tmp/cachet-sanitizer-logs"
REPORT_MARKERS = (b"WARNING: ThreadSanitizer", b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer",
                  b"runtime error:", b"ThreadSanitizer: reported", b"ERROR: ThreadSanitizer")
CERTS = None


def setUpModule():
    global CERTS
    os.makedirs(LOG_DIR, exist_ok=True)
    CERTS = shared()                # the certificates tlstools' client_ctx trusts


def sanitizer_env(name):
    """The sanitizer options for one server: reports go to LOG_DIR/<name>.<pid>."""
    prefix = os.path.join(LOG_DIR, name)
    common = f"log_path={prefix}"
    env = dict(os.environ)
    supp = os.environ.get("SANITIZER_SUPPRESSIONS")
    if SANITIZER == "thread":
        opts = f"{common}:halt_on_error=0:second_deadlock_stack=1:history_size=4"
        if supp:
            opts += f":suppressions={supp}"
        env["TSAN_OPTIONS"] = opts
    else:
        env["ASAN_OPTIONS"] = f"{common}:detect_leaks=1:abort_on_error=0:halt_on_error=1"
        if supp:
            env["LSAN_OPTIONS"] = f"suppressions={supp}"
    return env, prefix


class SanitizedCase(unittest.TestCase):
    """Starts servers with the sanitizer environment; tearDown stops them and fails on any report."""

    def setUp(self):
        self.servers = []
        self.prefix = None
        self.errors = []
        self._saved_env = dict(os.environ)

    def start_server(self, make):
        env, self.prefix = sanitizer_env(self.id().split(".")[-1])
        for f in glob.glob(self.prefix + ".*"):
            os.unlink(f)
        os.environ.clear()
        os.environ.update(env)     # harness.Server inherits the environment
        try:
            srv = make()
            srv.start()
        finally:
            os.environ.clear()
            os.environ.update(self._saved_env)
        self.servers.append(srv)
        return srv

    def stop_servers(self):
        """SIGTERM each server; returns their exit codes and stderr."""
        out = []
        for s in self.servers:
            out.append(self.stop_one(getattr(s, "srv", s)))
        self.servers = []
        return out

    @staticmethod
    def stop_one(inner):
        """SIGTERM; stderr read after the exit (leak reports are written at exit), then reaped."""
        inner.terminate()
        # Sanitized builds exit slowly (TSan/LSan work at exit): wait longer than the harness default.
        try:
            inner.proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
        err = inner.stderr()
        return inner.wait_stopped(timeout=5), err

    def tearDown(self):
        results = self.stop_servers()
        reports = []
        if self.prefix:
            for f in sorted(glob.glob(self.prefix + ".*")):
                with open(f, "rb") as fh:
                    reports.append((f, fh.read()))
        for rc, err in results:
            if any(m in err for m in REPORT_MARKERS):
                reports.append(("stderr", err))
        if reports:
            text = "\n".join(f"--- {f} ---\n{body.decode(errors='replace')[:20000]}" for f, body in reports)
            self.fail(f"{SANITIZER} sanitizer report(s):\n{text}")
        if self.errors:
            self.fail("client errors:\n" + "\n".join(self.errors[:20]))

    # -- load helpers -------------------------------------------------------------------------
    def run_threads(self, fns, seconds=SECONDS):
        """Runs each fn(stop_event) in its own thread; records exceptions as errors."""
        stop = threading.Event()
        threads = []

        def wrap(fn):
            try:
                fn(stop)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                self.errors.append(f"{fn.__name__}: {type(e).__name__}: {e}")
                stop.set()
        for fn in fns:
            t = threading.Thread(target=wrap, args=(fn,), daemon=True)
            t.start()
            threads.append(t)
        stop.wait(seconds)
        stop.set()
        for t in threads:
            t.join(30)
            if t.is_alive():
                self.errors.append("a client thread did not finish within 30 s")
        return stop


def set_get_traffic(srv, tag, count_box, value_size=(1, 3000)):
    """A client that sets and reads back keys of its own (checks every reply)."""
    def traffic(stop):
        rnd = random.Random(tag)
        with srv.connect(timeout=30) as c:
            n = 0
            while not stop.is_set():
                k = f"{tag}:{rnd.randrange(200)}".encode()
                v = bytes([97 + n % 26]) * rnd.randint(*value_size)
                r = c.roundtrip(b"set %s 0 0 %d\r\n%s\r\nget %s\r\n" % (k, len(v), v, k), timeout=30)
                want = b"STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(v), v)
                if r != want:
                    raise AssertionError(f"{tag}: got {r[:120]!r}")
                n += 1
            count_box.append(n)
    traffic.__name__ = f"traffic-{tag}"
    return traffic


class Scenarios(SanitizedCase):
    def plain_server(self, *extra):
        return self.start_server(lambda: Server(cachet_bin(), extra=["-t", "4", "-m", "64", *extra]))

    def test_watch_during_traffic(self):
        srv = self.plain_server()
        done, lines = [], [0]

        def watcher(stop):
            while not stop.is_set():
                s = srv.raw_connect(timeout=30)
                try:
                    s.sendall(b"watch fetchers mutations\r\n")
                    s.settimeout(30)
                    buf = b""
                    while not buf.startswith(b"OK\r\n"):   # the reply first (a sanitized server is slow)
                        chunk = s.recv(65536)
                        if not chunk or (len(buf + chunk) >= 4 and not (buf + chunk).startswith(b"OK\r\n")):
                            raise AssertionError(f"watch reply {(buf + chunk)[:100]!r}")
                        buf += chunk
                    deadline = time.monotonic() + 0.3
                    while time.monotonic() < deadline:
                        s.settimeout(0.1)
                        try:
                            chunk = s.recv(65536)
                        except socket.timeout:
                            continue
                        if not chunk:
                            raise AssertionError(f"watcher closed by the server: {buf[:200]!r}")
                        buf += chunk
                    if not buf.startswith(b"OK\r\n"):
                        raise AssertionError(f"watch reply {buf[:100]!r}")
                    lines[0] += buf.count(b"\n") - 1
                finally:
                    s.close()
        fns = [set_get_traffic(srv, f"w{i}", done) for i in range(3)] + [watcher, watcher]
        self.run_threads(fns)
        self.assertEqual(len(done), 3, self.errors)
        self.assertGreater(lines[0], 0, "the watchers saw no log lines")

    def test_metadump_during_traffic(self):
        srv = self.plain_server()
        with srv.connect() as c:
            c.send(b"".join(b"set pre%d 0 0 4 noreply\r\nabcd\r\n" % i for i in range(3000)))
            self.assertEqual(c.cmd("get pre2999"), b"VALUE pre2999 0 4\r\nabcd\r\nEND\r\n")
        done, dumps = [], [0]

        def dumper(stop):
            while not stop.is_set():
                with srv.connect(timeout=30) as c:
                    c.send(b"lru_crawler metadump all\r\n")
                    out = c.read_until(b"\r\n", timeout=30)
                    if out == b"BUSY currently processing crawler request\r\n":
                        time.sleep(0.01)
                        continue   # the other dumper holds the crawler (memcached's reply too)
                    if not out.endswith(b"END\r\n"):
                        out += c.read_until(b"END\r\n", timeout=30)
                    if b"key=pre" not in out:
                        raise AssertionError(f"metadump without the prefilled keys: {out[:200]!r}")
                    dumps[0] += 1

        def deleter(stop):
            with srv.connect(timeout=30) as c:
                i = 0
                while not stop.is_set():
                    c.roundtrip(b"delete pre%d noreply\r\nset pre%d 0 0 2 noreply\r\nzz\r\n" % (i % 3000, (i * 7) % 3000))
                    i += 1
        self.run_threads([set_get_traffic(srv, f"m{i}", done) for i in range(2)] + [dumper, dumper, deleter])
        self.assertEqual(len(done), 2, self.errors)
        self.assertGreater(dumps[0], 0)

    def test_large_values_overwritten_while_read(self):
        srv = self.plain_server("-I", "2m")
        sizes = [65536, 100000, 300000, 1000000]
        done = []

        def writer(stop):
            rnd = random.Random(1)
            with srv.connect(timeout=30) as c:
                n = 0
                while not stop.is_set():
                    k = b"big%d" % rnd.randrange(4)
                    if rnd.random() < 0.2:
                        r = c.cmd(b"delete " + k)
                        if r not in (b"DELETED\r\n", b"NOT_FOUND\r\n"):
                            raise AssertionError(f"delete {r!r}")
                        continue
                    size = rnd.choice(sizes)
                    v = bytes([65 + n % 26]) * size
                    r = c.roundtrip(b"set %s %d 0 %d\r\n%s\r\n" % (k, size, size, v), timeout=30)
                    if r != b"STORED\r\n":
                        raise AssertionError(f"set {r[:100]!r}")
                    n += 1

        def reader(stop):
            # Reads slowly (small recv) so values stay queued/pinned while the writer replaces them.
            with srv.connect(timeout=30) as c:
                while not stop.is_set():
                    c.send(b"get big0 big1 big2 big3\r\n")
                    buf = c.read_until(b"END\r\n", timeout=30)
                    pos = 0
                    while buf.startswith(b"VALUE ", pos):
                        eol = buf.index(b"\r\n", pos)
                        _, key, flags, n = buf[pos:eol].split(b" ")
                        n = int(n)
                        val = buf[eol + 2:eol + 2 + n]
                        if int(flags) != n or len(val) != n or val.count(val[:1]) != n:
                            raise AssertionError(f"torn value for {key!r}: flags {flags} len {n}")
                        pos = eol + 2 + n + 2
                    if buf[pos:] != b"END\r\n":
                        raise AssertionError(f"reply tail {buf[pos:pos + 80]!r}")
                done.append(1)
        self.run_threads([writer, writer, reader, reader, reader])
        self.assertEqual(len(done), 3, self.errors)

    def test_sigterm_under_load(self):
        srv = self.plain_server()
        stop = threading.Event()
        box = []
        threads = [threading.Thread(target=self._until_closed, args=(srv, i, stop, box), daemon=True)
                   for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(min(2.0, SECONDS))
        rc, err = self.stop_one(srv)
        stop.set()
        for t in threads:
            t.join(30)
        self.servers = []
        self.assertFalse(any(m in err for m in REPORT_MARKERS), err.decode(errors="replace")[:20000])
        self.assertEqual(rc, 0, f"exit status after SIGTERM under load: {rc}")
        self.assertGreater(sum(box), 0, "no request completed before the SIGTERM")

    @staticmethod
    def _until_closed(srv, i, stop, box):
        n = 0
        try:
            with srv.connect(timeout=10) as c:
                while not stop.is_set():
                    c.roundtrip(b"set t%d 0 0 5\r\nhello\r\nget t%d\r\n" % (i, i), timeout=10)
                    n += 1
        except (OSError, HarnessError):
            pass   # the server went away under us: expected
        box.append(n)

    def test_bench_verify_50_connections(self):
        srv = self.plain_server("-c", "1024")
        bench = os.environ.get("CACHET_BENCH_BIN", os.path.join(REPO_ROOT, ".build", "release", "cachet-bench"))
        r = subprocess.run([bench, "--port", str(srv.port), "--threads", "2", "--conns", "25", "--pipeline", "4",
                            "--ratio", "1:4", "--keys", "5000", "--data-size-range", "1-100000", "--multiget", "3",
                            "--prefill", "--verify", "--time", str(int(SECONDS)), "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        self.assertEqual(r.returncode, 0, f"cachet-bench --verify failed: {r.stdout[-2000:]!r} {r.stderr[-2000:]!r}")


    def test_slab_moves_during_bench_verify(self):
        """Page moves (explicit `slabs reassign` and slab_automove=2 on every eviction) while 50 connections
        set and get plain and chunked values with cachet-bench --verify, in 32 MB so evictions happen (the
        prefill alone writes ~300 MB, so pages move even when a slow sanitized server serves few requests).
        32 rather than 16: with 16 MB over ~23 classes most hold one page, and a run can end before any class
        had a spare page to give."""
        srv = self.plain_server("-c", "1024", "-m", "32", "-o", "slab_automove=2,slab_chunk_max=16384")
        bench = os.environ.get("CACHET_BENCH_BIN", os.path.join(REPO_ROOT, ".build", "release", "cachet-bench"))
        proc = subprocess.Popen([bench, "--port", str(srv.port), "--threads", "2", "--conns", "25",
                                 "--pipeline", "2", "--ratio", "1:2", "--keys", "20000", "--data-size-range",
                                 "50-30000", "--prefill", "--verify", "--time", str(int(SECONDS)), "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        replies = set()
        with srv.connect(timeout=60) as c:
            deadline = time.monotonic() + SECONDS + 120
            while proc.poll() is None and time.monotonic() < deadline:
                for src, dst in ((-1, 0), (-1, 5), (-1, 12), (0, 20)):
                    replies.add(c.roundtrip(b"slabs reassign %d %d\r\n" % (src, dst), timeout=60))
                time.sleep(0.01)

            # A slow server may not have finished a page by the end of the load: keep asking (bounded).
            def moved():
                replies.add(c.roundtrip(b"slabs reassign -1 0\r\n", timeout=60))
                return [l for l in c.roundtrip(b"stats\r\n", timeout=60).split(b"\r\n")
                        if l.startswith(b"STAT slabs_moved ")] != [b"STAT slabs_moved 0"]
            wait_for(moved, timeout=60, interval=0.2, what="a slab page moved")
        out, err = proc.communicate(timeout=300)
        self.assertEqual(proc.returncode, 0, f"cachet-bench --verify failed: {out[-2000:]!r} {err[-2000:]!r}")
        # automove=2 keeps the mover busy, so an explicit request may never find it idle.
        self.assertLessEqual(replies, {b"OK\r\n", b"BUSY currently processing reassign request\r\n",
                                      b"NOSPARE source class has no spare pages\r\n",
                                      b"BADCLASS invalid src or dst class id\r\n"})


class TLSReload(SanitizedCase):
    def test_refresh_and_sighup_under_tls_load(self):
        live = LiveFiles(CERTS, "sanitize")
        srv = self.start_server(lambda: TLSServer(cachet_bin(), live, extra=["-t", "4", "-m", "64"]))
        counts = []

        def tls_client(stop):
            n = 0
            while not stop.is_set():
                # New handshakes (fresh connection every few requests) race with the context swaps.
                with tls_connect(srv.tls_port, client_ctx(), timeout=30) as c:
                    for _ in range(5):
                        r = c.roundtrip(b"set tl 0 0 2\r\nok\r\nget tl\r\n", timeout=30)
                        if not r.startswith(b"STORED\r\n"):
                            raise AssertionError(f"TLS reply {r[:100]!r}")
                        n += 1
            counts.append(n)

        def reloader(stop):
            i = 0
            while not stop.is_set():
                live.good(1 + i % 2)
                if i % 2:
                    os.kill(srv.pid, signal.SIGHUP)
                    time.sleep(1.1)   # SIGHUP reloads on the next clock tick
                else:
                    r = srv.refresh()
                    if r != b"OK\r\n":
                        raise AssertionError(f"refresh_certs {r!r}")
                i += 1
        self.run_threads([tls_client, tls_client, tls_client, tls_client, reloader], seconds=max(SECONDS, 5))
        self.assertEqual(len(counts), 4, self.errors)


if __name__ == "__main__":
    unittest.main()
