#!/usr/bin/python3
"""Soak: one cachet (-t 4, a TLS and a notls: listener) under everything at once for SOAK_SECONDS
(default 1800; `SOAK_SECONDS=60` is a smoke). `make soak` runs it.

Concurrently, for the whole run:
- load: cachet-bench --verify in rounds, one plaintext and one TLS (own key prefixes), mixed sizes,
  pipelined multigets — every GET hit must carry the last value SET for its key;
- watchers: `watch fetchers mutations evictions connevents` connections that open, read, close;
- `lru_crawler metadump all` (sometimes dropped half-way) and `lru_crawler crawl all`;
- a certificate reload every 10 s, `refresh_certs` and SIGHUP in turn, switching between two
  certificates (checked through `ssl_cert_not_after`); a `flush_all` every 15 s;
- churn: connect, one request, close (plain and TLS);
- failed handshakes: plaintext on the TLS port, a malformed ClientHello, half-open TCP that
  never sends;
- a probe (a separate process, so no Python thread delays it) doing one tiny get every 50 ms.

Reports: wrong values (must be 0), the server's RSS and fd count (from /proc) at start, every
minute and at the end, probe stalls over 100 ms (count, worst), reloads, handshake failures seen by
the server, whether it is alive. Exit status 1 on a wrong value, a crash, a hang (any client not
answered within 5 s, or cachet-bench reporting no progress), growth past the plateau (RSS at the
end vs. after warm-up), or fds not back to the start level once every client left.

Env: CACHET_BIN (.build/release/cachet), CACHET_BENCH_BIN (.build/release/cachet-bench),
SOAK_SECONDS (1800), SOAK_JSON=<file> (summary as JSON), SOAK_NICE (10: niceness of the load
generators, so a soak on a shared machine yields to builds), SOAK_SKIP=<names> (comma-separated
activities left out, to tell which one a failure needs: bench-plain bench-tls watch crawler reload
flush churn bad-handshakes).
Only processes this script started are stopped, by PID, also on Ctrl-C or an error.
"""

import json
import os
import random
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import REPO_ROOT, Server, cachet_bin, free_ports  # noqa: E402

ANSWER_TIMEOUT = 5.0       # a reply later than this is a hang
STALL_MS = 100.0           # a probe reply slower than this is a stall (reported, not fatal)
PROBE_INTERVAL = 0.05
SAMPLE_INTERVAL = 10.0
BENCH_ROUND = 30.0


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# The probe runs in its own process: `soak.py --probe <port>`. It stops when its stdin closes and
# prints one JSON summary line; each stall or hang is also printed as it happens.
def probe_main(port):
    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    sock = connect()
    sock.sendall(b"set soak:probe 0 0 1\r\np\r\n")
    n = stalls = hangs = errors = 0
    worst = 0.0
    total = 0.0
    buf = b""
    while True:
        r, _, _ = select.select([sys.stdin], [], [], PROBE_INTERVAL)
        if r and not os.read(sys.stdin.fileno(), 1024):
            break
        t0 = time.perf_counter()
        try:
            if sock is None:
                sock = connect()
            sock.sendall(b"get soak:probe\r\n")
            while not buf.endswith(b"END\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed by the server")
                buf += chunk
            buf = b""
        except socket.timeout:
            hangs += 1
            print(f"HANG {time.time():.3f} no answer to a get within {ANSWER_TIMEOUT} s", flush=True)
            sock.close()
            sock, buf = None, b""
            continue
        except OSError as e:
            errors += 1
            print(f"ERROR {time.time():.3f} {e}", flush=True)
            if sock is not None:
                sock.close()
            sock, buf = None, b""
            time.sleep(0.5)
            continue
        ms = (time.perf_counter() - t0) * 1000
        n += 1
        total += ms
        worst = max(worst, ms)
        if ms > STALL_MS:
            stalls += 1
            print(f"STALL {time.time():.3f} {ms:.1f}", flush=True)
    print("SUMMARY " + json.dumps({"probes": n, "stalls": stalls, "hangs": hangs, "errors": errors,
                                   "worst_ms": round(worst, 1), "mean_ms": round(total / max(n, 1), 3)}),
          flush=True)


# ---------------------------------------------------------------------------------------------
class Soak:
    def __init__(self, seconds):
        self.seconds = seconds
        self.stop = threading.Event()
        self.lock = threading.RLock()  # re-entrant: the signal handler may run while the main thread holds it
        self.failures = []          # fatal: (activity, message)
        self.counts = {}            # activity counters for the report
        self.children = []          # Popen objects this script started (stopped by PID)
        self.tmp = tempfile.mkdtemp(prefix="cachet-soak-")
        self.bench_bin = os.environ.get("CACHET_BENCH_BIN",
                                        os.path.join(REPO_ROOT, ".build", "release", "cachet-bench"))
        self.nice = int(os.environ.get("SOAK_NICE", "10"))
        self.samples = []           # (t, rss_kb, fds)
        self.probe_events = []
        self.probe_summary = None
        self.server = None
        self.t0 = None
        self.skipped = []
        self.loads = {}              # sample time → 1-minute load average of the machine
        self.slab_kb = {}            # sample time → the store's slab pages (stats slabs total_malloced)
        self.wall0 = time.time()

    # -- bookkeeping --------------------------------------------------------------------------
    def count(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, activity, message, evidence=True):
        with self.lock:
            first = not self.failures
            self.failures.append((activity, message))
        log(f"FAILURE in {activity}: {message}")
        if first and evidence:
            self.evidence()
        self.stop.set()

    def evidence(self):
        """What the server's threads are doing right now (hang/crash evidence for the report)."""
        pid = self.server.pid if self.server else None
        if pid is None or not self.server.alive():
            rc = self.server.proc.poll() if self.server else None
            why = f"signal {-rc}" if rc is not None and rc < 0 else f"exit {rc}"
            log(f"server is gone ({why}); last stderr: {self.server.stderr()[-600:]!r}")
            return
        lines = []
        for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    wchan = f.read().strip()
                lines.append(f"tid {tid} state {fields[0]} cpu_ticks {int(fields[11]) + int(fields[12])} wchan {wchan}")
            except OSError:
                pass
        log("server threads: " + "; ".join(lines))
        gdb = shutil.which("gdb")
        if gdb:
            path = os.path.join(self.tmp, "..", f"cachet-soak-{pid}-threads.txt")
            path = os.path.abspath(path)
            try:
                out = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                                     capture_output=True, timeout=60, text=True).stdout
                with open(path, "w") as f:
                    f.write(out)
                log(f"server thread backtraces (gdb): {path}")
            except (subprocess.TimeoutExpired, OSError) as e:
                log(f"gdb backtrace failed: {e}")

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        with self.lock:
            self.children.append(p)
        return p

    def running(self):
        return not self.stop.is_set()

    def sleep(self, seconds):
        """Sleep unless the soak stops first (returns False then)."""
        return not self.stop.wait(seconds)

    def connect(self, tls, timeout=ANSWER_TIMEOUT):
        port = self.tls_port if tls else self.plain_port
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            s = self.client_ctx.wrap_socket(s, server_hostname="localhost")
        return s

    @staticmethod
    def read_line(sock):
        """One reply line (what follows it, e.g. watch lines, is dropped)."""
        buf = b""
        while b"\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed by the server after {buf[-200:]!r}")
            buf += chunk
        return buf[:buf.index(b"\r\n") + 2]

    @staticmethod
    def read_until(sock, suffixes, limit=None):
        buf = b""
        while not any(buf.endswith(x) for x in suffixes):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by the server after {buf[-200:]!r}")
            buf += chunk
            if limit and len(buf) > limit:
                buf = buf[-4096:]
        return buf

    def command(self, line, tls=False):
        """A one-line reply (OK, ERROR …, BUSY …)."""
        with self.connect(tls) as s:
            s.sendall(line)
            return self.read_line(s)

    def stats(self, sub=b""):
        with self.connect(False) as s:
            s.sendall(b"stats " + sub + b"\r\n")
            raw = self.read_until(s, (b"END\r\n",))
        out = {}
        for line in raw.split(b"\r\n"):
            parts = line.split(b" ", 2)
            if len(parts) == 3 and parts[0] == b"STAT":
                out[parts[1].decode()] = parts[2].decode()
        return out

    def guarded(self, name, body):
        """Run an activity loop; an unexpected exception is a failure of that activity."""
        def run():
            try:
                body()
            except socket.timeout as e:
                if self.running():
                    self.fail(name, f"no answer within {ANSWER_TIMEOUT} s — server hung? ({e})")
            except Exception as e:  # noqa: BLE001 — any error of an activity ends the soak
                if self.running():
                    alive = self.server.alive()
                    self.fail(name, f"{type(e).__name__}: {e}" + ("" if alive else " (server died)"))
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        return t

    # -- setup ---------------------------------------------------------------------------------
    def make_certs(self):
        # Two certificates with different expiry dates: `ssl_cert_not_after` tells which one serves.
        self.certs = []
        for days in (30, 31):
            key = os.path.join(self.tmp, f"key{days}.pem")
            crt = os.path.join(self.tmp, f"cert{days}.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", str(days), "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                            "-keyout", key, "-out", crt], check=True, capture_output=True)
            self.certs.append((crt, key))
        self.cert_path = os.path.join(self.tmp, "server.pem")
        self.key_path = os.path.join(self.tmp, "server.key")
        self.install_cert(0)

    def install_cert(self, i):
        crt, key = self.certs[i]
        for src, dst in ((crt, self.cert_path), (key, self.key_path)):
            shutil.copyfile(src, dst + ".new")
            os.replace(dst + ".new", dst)  # a reload never sees a half-written file

    def start_server(self):
        self.plain_port, self.tls_port = free_ports(2)
        user = ["-u", "root"] if os.geteuid() == 0 else []
        args = [*user, "-U", "0", "-p", str(self.tls_port), "-t", "4", "-m", "128", "-c", "4096", "-Z",
                "-o", f"ssl_chain_cert={self.cert_path},ssl_key={self.key_path}",
                "-l", f"notls:127.0.0.1:{self.plain_port},127.0.0.1:{self.tls_port}"]
        self.server = Server(cachet_bin(), args=args, port=self.plain_port, name="cachet")
        self.server.start()
        self.client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client_ctx.check_hostname = False
        self.client_ctx.verify_mode = ssl.CERT_NONE

    def proc_sample(self):
        pid = self.server.pid
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds

    # -- activities ------------------------------------------------------------------------------
    def bench_loop(self, tls):
        name = "bench-tls" if tls else "bench-plain"
        key = "tls" if tls else "plain"
        rnd = random.Random(7 if tls else 3)
        round_no = 0
        while self.running():
            left = self.seconds - (time.monotonic() - self.t0)
            secs = int(min(BENCH_ROUND, left))
            if secs < 2:
                return
            round_no += 1
            argv = ["nice", "-n", str(self.nice), self.bench_bin, "--port", str(self.tls_port if tls else self.plain_port),
                    "--threads", "1", "--conns", "6", "--pipeline", str(rnd.choice((1, 4, 16))),
                    "--ratio", "1:4", "--keys", "8000", "--data-size-range", "1-6000",
                    "--multiget", str(rnd.choice((1, 3, 8))), "--key-prefix", f"soak{key}:",
                    "--verify", "--time", str(secs), "--stall-timeout", str(ANSWER_TIMEOUT * 2),
                    "--seed", str(round_no), "--json", "--quiet"]
            if round_no == 1:
                argv.append("--prefill")
            if tls:
                argv.append("--tls")
            p = self.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = p.communicate()
            try:
                r = json.loads(out)
            except ValueError:
                r = None
            if r:
                self.count(f"{key}_requests", r["requests"])
                self.count(f"{key}_verified", r["verified"])
                self.count(f"{key}_wrong_values", r["verify_errors"])
                self.count(f"{key}_rounds")
            if not self.running():
                return
            if p.returncode != 0:
                why = (r or {}).get("failure") or err.strip()[-300:]
                self.fail(name, f"cachet-bench round {round_no} exit {p.returncode}: {why}")
                return

    def watch_loop(self, tls, seed):
        rnd = random.Random(seed)
        key = "watch_tls" if tls else "watch_plain"
        while self.running():
            with self.connect(tls) as s:
                s.sendall(b"watch fetchers mutations evictions connevents\r\n")
                head = self.read_line(s)
                if head != b"OK\r\n":
                    raise AssertionError(f"watch answered {head[:100]!r}")
                end = time.monotonic() + rnd.uniform(0.2, 3.0)
                got = 0
                while time.monotonic() < end and self.running():
                    s.settimeout(max(0.05, min(ANSWER_TIMEOUT, end - time.monotonic())))
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        continue  # a quiet watcher is fine; hangs are caught by the probe and bench
                    if not chunk:
                        raise ConnectionError("watch connection closed by the server")
                    got += chunk.count(b"\n")
                self.count(f"{key}_sessions")
                self.count(f"{key}_lines", got)
            self.sleep(rnd.uniform(0.0, 0.5))

    def crawler_loop(self):
        rnd = random.Random(11)
        while self.sleep(rnd.uniform(2.0, 6.0)):
            tls = rnd.random() < 0.3
            if rnd.random() < 0.2:
                reply = self.command(b"lru_crawler crawl all\r\n", tls)
                self.count("crawl_ok" if reply.startswith(b"OK") else "crawl_busy")
                continue
            with self.connect(tls, timeout=30) as s:
                s.sendall(b"lru_crawler metadump all\r\n")
                if rnd.random() < 0.25:
                    s.recv(4096)       # drop the dump half-way: the server must clean up
                    self.count("metadump_dropped")
                    continue
                out = self.read_until(s, (b"END\r\n", b"BUSY currently processing crawler request\r\n",
                                          b"ERROR locked try again later\r\n"), limit=1 << 20)
                self.count("metadump_done" if out.endswith(b"END\r\n") else "metadump_busy")

    def reload_loop(self):
        n = 0
        while self.sleep(10.0):
            n += 1
            which = n % 2
            self.install_cert(which)
            want = self.not_after[which]
            if n % 2:
                reply = self.command(b"refresh_certs\r\n", tls=bool(n % 4 == 1))
                if reply != b"OK\r\n":
                    raise AssertionError(f"refresh_certs answered {reply!r}")
                how = "refresh_certs"
            else:
                os.kill(self.server.pid, signal.SIGHUP)
                how = "sighup"
            deadline = time.monotonic() + 3.0   # SIGHUP reloads on the next 1-second clock tick
            while self.stats().get("ssl_cert_not_after") != want:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{how}: ssl_cert_not_after still not {want} after 3 s")
                self.sleep(0.05)
            with self.connect(tls=True) as s:  # a new handshake gets the new certificate
                s.sendall(b"version\r\n")
                self.read_line(s)
            self.count(f"reload_{how}")

    def flush_loop(self):
        while self.sleep(15.0):
            reply = self.command(b"flush_all\r\n")
            if reply != b"OK\r\n":
                raise AssertionError(f"flush_all answered {reply!r}")
            self.count("flush_all")

    def churn_loop(self):
        rnd = random.Random(5)
        n = 0
        while self.sleep(rnd.uniform(0.01, 0.08)):
            n += 1
            tls = n % 3 == 0
            with self.connect(tls) as s:
                if n % 2:
                    s.sendall(b"set soak:churn:%d 0 0 2\r\nok\r\n" % (n % 100))
                    reply = self.read_line(s)
                    ok = reply == b"STORED\r\n"
                else:
                    s.sendall(b"version\r\n")
                    reply = self.read_line(s)
                    ok = reply.startswith(b"VERSION ")
                if not ok:
                    raise AssertionError(f"churn reply {reply[:100]!r}")
            self.count("churn_tls" if tls else "churn_plain")

    def bad_handshake_loop(self):
        rnd = random.Random(9)
        half_open = []
        n = 0
        while self.sleep(rnd.uniform(0.05, 0.3)):
            n += 1
            kind = n % 3
            if kind == 2:
                # half-open: TCP connects and never says a word (held, then closed in batches)
                half_open.append(socket.create_connection(("127.0.0.1", self.tls_port), timeout=ANSWER_TIMEOUT))
                self.count("half_open")
                if len(half_open) >= 24:
                    for s in half_open:
                        s.close()
                    self.count("half_open_closed", len(half_open))
                    half_open = []
                continue
            if kind == 0:
                data = b"get soak:plain-on-tls\r\n"
            else:
                body = b"\x03\x03" + os.urandom(rnd.randrange(8, 120))
                hs = b"\x01" + len(body).to_bytes(3, "big") + body
                data = b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs
            with socket.create_connection(("127.0.0.1", self.tls_port), timeout=ANSWER_TIMEOUT) as s:
                s.sendall(data)
                try:
                    while s.recv(4096):
                        pass  # an alert, then EOF
                except ConnectionResetError:
                    pass
            self.count("plain_on_tls" if kind == 0 else "bad_client_hello")
        for s in half_open:
            s.close()
        self.count("half_open_closed", len(half_open))

    def probe_reader(self, proc):
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("SUMMARY "):
                self.probe_summary = json.loads(line[8:])
            elif line.startswith("STALL "):
                _, t, ms = line.split()
                self.probe_events.append((float(t), float(ms)))
            elif line.startswith("HANG ") or line.startswith("ERROR "):
                if self.running():
                    self.fail("probe", line)

    # -- run -------------------------------------------------------------------------------------
    def run(self):
        if not (os.path.isfile(self.bench_bin) and os.access(self.bench_bin, os.X_OK)):
            raise SystemExit(f"soak: {self.bench_bin} missing (swift build -c release --static-swift-stdlib "
                             "--product cachet-bench, or set CACHET_BENCH_BIN)")
        self.make_certs()
        self.start_server()
        self.not_after = []
        for i in (0, 1):
            self.install_cert(i)
            self.command(b"refresh_certs\r\n")
            self.not_after.append(self.stats()["ssl_cert_not_after"])
        if self.not_after[0] == self.not_after[1]:
            raise SystemExit("soak: the two certificates have the same expiry; reload check impossible")
        self.install_cert(0)
        self.command(b"refresh_certs\r\n")
        time.sleep(0.2)  # let the setup connections' closes be processed before the idle fd count
        start_rss, start_fds = self.proc_sample()
        self.samples.append((0.0, start_rss, start_fds))
        log(f"cachet pid {self.server.pid}: notls 127.0.0.1:{self.plain_port}, TLS 127.0.0.1:{self.tls_port}, "
            f"-t 4; {self.seconds:.0f} s; start RSS {start_rss} kB, {start_fds} fds")
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        probe = self.spawn([sys.executable, os.path.abspath(__file__), "--probe", str(self.plain_port)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        threads = [threading.Thread(target=self.probe_reader, args=(probe,), daemon=True)]
        threads[0].start()
        skip = set(filter(None, os.environ.get("SOAK_SKIP", "").split(",")))
        self.skipped = sorted(skip)
        activities = [("bench-plain", lambda: self.bench_loop(False)), ("bench-tls", lambda: self.bench_loop(True))]
        activities += [("watch", lambda tls=tls, i=i: self.watch_loop(tls, 100 + i))
                       for i, tls in enumerate((False, False, True))]
        activities += [("crawler", self.crawler_loop), ("reload", self.reload_loop), ("flush", self.flush_loop),
                       ("churn", self.churn_loop), ("bad-handshakes", self.bad_handshake_loop)]
        unknown = skip - {name for name, _ in activities}
        if unknown:
            raise SystemExit(f"soak: SOAK_SKIP names no activity: {sorted(unknown)}")
        for name, body in activities:
            if name not in skip:
                threads.append(self.guarded(name, body))
        if skip:
            log(f"left out: {', '.join(sorted(skip))}")

        next_log = 60.0
        while self.running():
            elapsed = time.monotonic() - self.t0
            if elapsed >= self.seconds:
                break
            self.stop.wait(min(SAMPLE_INTERVAL, self.seconds - elapsed))
            elapsed = time.monotonic() - self.t0
            if not self.server.alive():
                self.fail("server", "the server process died")
                break
            rss, fds = self.proc_sample()
            self.samples.append((elapsed, rss, fds))
            with open("/proc/loadavg") as f:
                self.loads[elapsed] = float(f.read().split()[0])
            try:  # slab memory vs. the rest of RSS: tells store growth from heap growth
                self.slab_kb[elapsed] = int(self.stats(b"slabs")["total_malloced"]) // 1024
            except (OSError, KeyError, ValueError):
                pass
            if elapsed >= next_log:
                next_log += 60.0
                log(f"t={elapsed:5.0f}s RSS {rss} kB, {fds} fds, {len(self.probe_events)} stalls, "
                    f"wrong values {self.counts.get('plain_wrong_values', 0) + self.counts.get('tls_wrong_values', 0)}")
        self.duration = time.monotonic() - self.t0
        self.stop.set()
        if self.failures:  # do not wait for the load generators' rounds to end
            with self.lock:
                benches = [p for p in self.children if p is not probe]
            for p in benches:
                if p.poll() is None:
                    p.terminate()
        probe.stdin.close()
        try:
            probe.wait(ANSWER_TIMEOUT + 2)
        except subprocess.TimeoutExpired:
            pass
        for t in threads:
            t.join(BENCH_ROUND + 15)
        return self.finish(start_rss, start_fds)

    def finish(self, start_rss, start_fds):
        alive = self.server.alive()
        # The last sample taken while the load ran is the end figure.
        end_rss, end_fds = (self.samples[-1][1:] if len(self.samples) > 1 else (None, None))
        idle_fds, server_stats = None, {}
        if alive:
            try:
                server_stats = self.stats()
            except OSError as e:
                self.failures.append(("final stats", f"no answer: {e}"))
            # Each failed handshake this script caused is counted by the server, and only those
            # (the server sees the last half-open closes a moment later: poll briefly).
            bad = sum(self.counts.get(k, 0) for k in ("plain_on_tls", "bad_client_hello", "half_open_closed"))
            deadline = time.monotonic() + 3
            while (server_stats.get("ssl_handshake_errors") != str(bad) and time.monotonic() < deadline
                   and not self.failures):
                time.sleep(0.1)
                try:
                    server_stats = self.stats()
                except OSError:
                    break
            if not self.failures and server_stats.get("ssl_handshake_errors") != str(bad):
                self.failures.append(("handshake errors", f"server counted {server_stats.get('ssl_handshake_errors')} "
                                                          f"failed handshakes, this script caused {bad}"))
            # Every client has left: the server must be back to its idle set of fds.
            deadline = time.monotonic() + 10
            while True:
                idle_fds = self.proc_sample()[1]
                if idle_fds <= start_fds or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        warm_at = max(20.0, min(300.0, 0.2 * self.seconds))
        warm = [s for s in self.samples if s[0] >= warm_at]
        warm_rss = warm[0][1] if warm else None
        wrong = self.counts.get("plain_wrong_values", 0) + self.counts.get("tls_wrong_values", 0)
        stalls = [ms for _, ms in self.probe_events]
        summary = {
            "duration_s": round(self.duration, 1),
            "server_alive_at_end": alive,
            "wrong_values": wrong,
            "rss_kb": {"start": start_rss, "after_warmup": warm_rss, "end": end_rss,
                       "max": max(s[1] for s in self.samples)},
            "fds": {"start_idle": start_fds, "end_under_load": end_fds, "end_idle": idle_fds,
                    "max": max(s[2] for s in self.samples)},
            "minutes": [{"t": round(t), "rss_kb": r, "slab_kb": self.slab_kb.get(t), "fds": f,
                         "loadavg": self.loads.get(t)}
                        for t, r, f in self.samples
                        if t == 0 or t == self.samples[-1][0] or int(t) % 60 < SAMPLE_INTERVAL],
            # When the probe stalled (seconds into the run) and for how long: compare with loadavg
            # above — on a shared machine most stalls are other processes holding the CPUs.
            "probe_stall_list": [[round(t - self.wall0, 1), ms] for t, ms in self.probe_events[:100]],
            "probe": self.probe_summary, "probe_stalls_over_100ms": len(stalls),
            "probe_worst_ms": max(stalls) if stalls else (self.probe_summary or {}).get("worst_ms"),
            "counts": dict(sorted(self.counts.items())),
            "server": {k: server_stats.get(k) for k in ("total_connections", "curr_connections",
                                                       "ssl_handshake_errors", "ssl_cert_reload_failures",
                                                       "log_watchers", "evictions", "cmd_flush")},
            "left_out": self.skipped,
            "failures": [f"{a}: {m}" for a, m in self.failures],
        }
        # Plateau: after warm-up the working set and buffers are at their size; the end may not be
        # far above (a leak of a few hundred bytes per churned connection would be).
        if warm_rss and end_rss and end_rss > warm_rss + max(16 * 1024, warm_rss // 5):
            summary["failures"].append(f"RSS grew from {warm_rss} kB after warm-up to {end_rss} kB")
        if idle_fds is not None and idle_fds > start_fds:
            summary["failures"].append(f"fds not back to the start level: {idle_fds} idle at the end vs {start_fds}")
        if wrong:
            summary["failures"].append(f"{wrong} wrong values seen by cachet-bench --verify")
        if not alive:
            rc = self.server.proc.poll()
            summary["failures"].append(f"server not alive at the end (exit status {rc})")
        for key, name in (("plain", "bench-plain"), ("tls", "bench-tls")):
            if not self.failures and name not in self.skipped and self.counts.get(f"{key}_rounds", 0) == 0:
                summary["failures"].append(f"{name} never completed a round")
        return summary

    def cleanup(self):
        self.stop.set()
        with self.lock:
            children = list(self.children)
        for p in children:
            if p.poll() is None:
                try:
                    p.terminate()  # by PID: Popen.terminate sends SIGTERM to this child only
                except ProcessLookupError:
                    pass
        for p in children:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends the probe by closing its stdin
        probe_main(int(sys.argv[2]))
        return 0
    seconds = float(os.environ.get("SOAK_SECONDS", "1800"))
    soak = Soak(seconds)

    def on_signal(sig, _frame):
        # Ends the run through the normal path (report, then every child stopped by PID).
        soak.fail("soak", f"interrupted by {signal.Signals(sig).name}", evidence=False)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        summary = soak.run()
    finally:
        soak.cleanup()
    text = json.dumps(summary, indent=1)
    if os.environ.get("SOAK_JSON"):
        with open(os.environ["SOAK_JSON"], "w") as f:
            f.write(text + "\n")
    print(text)
    r, p = summary["rss_kb"], summary["fds"]
    log(f"{summary['duration_s']} s: wrong values {summary['wrong_values']}; RSS start {r['start']} kB, "
        f"after warm-up {r['after_warmup']} kB, end {r['end']} kB; fds start {p['start_idle']}, "
        f"end {p['end_idle']} idle; probe stalls > {STALL_MS:.0f} ms: {summary['probe_stalls_over_100ms']} "
        f"(worst {summary['probe_worst_ms']} ms); server alive: {summary['server_alive_at_end']}")
    if summary["failures"]:
        for f in summary["failures"]:
            log(f"FAILED: {f}")
        return 1
    log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
