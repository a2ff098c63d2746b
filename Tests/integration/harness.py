"""Process and socket plumbing shared by the integration, differential and client tests.

Owns: locating the server binaries (CACHET_BIN, the memcached oracle), free loopback ports,
starting/stopping server processes by PID, a blocking `Conn` whose every read is bounded by a
timeout (a timeout is a test failure that shows what was received — a test never hangs), the
normalisation of replies that legitimately differ between two servers (version, volatile
stats), and the small helpers several test files share (`stats_dict`, `assert_healthy`, `drain`,
`raise_nofile`, `run_startup`). TLS servers and clients: tlstools.py; server pairs: difftools.py.

Only stdlib; run with Debian's /usr/bin/python3.
"""

import os
import re
import resource
import signal
import socket
import subprocess
import tempfile
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MEMCACHED_BIN = os.environ.get("MEMCACHED_BIN", "/usr/bin/memcached")
DEFAULT_TIMEOUT = float(os.environ.get("CACHET_TEST_TIMEOUT", "5"))


class HarnessError(AssertionError):
    """Raised for harness-level failures; an AssertionError so unittest reports a failure."""


def cachet_bin():
    path = os.environ.get("CACHET_BIN", os.path.join(REPO_ROOT, ".build", "release", "cachet"))
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise HarnessError(
            f"server binary not found or not executable: {path} "
            "(build it with `swift build -c release` or set CACHET_BIN)")
    return path


def memcached_bin():
    if not (os.path.isfile(MEMCACHED_BIN) and os.access(MEMCACHED_BIN, os.X_OK)):
        raise HarnessError(
            f"memcached oracle not found at {MEMCACHED_BIN} (apt-get install memcached, "
            "or run Scripts/bootstrap); differential tests cannot run without it")
    return MEMCACHED_BIN


def free_port():
    """A currently free loopback TCP port (bind port 0, read, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_ports(n):
    """`n` distinct free loopback TCP ports: all bound at once, so the kernel cannot hand out one twice
    (consecutive free_port() calls can return the same port)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def base_args(port):
    return ["-u", "root", "-U", "0", "-l", "127.0.0.1", "-p", str(port)]


class Server:
    """One server process. `start()` returns once it accepts connections."""

    def __init__(self, binary, extra=(), port=None, unix_path=None, args=None,
                 startup_timeout=10.0, name=None):
        self.binary = binary
        self.extra = list(extra)
        self.unix_path = unix_path
        self.port = port
        self.args = args  # full argument list override (no defaults added)
        self.startup_timeout = startup_timeout
        self.name = name or os.path.basename(binary)
        self.proc = None
        self._errf = None

    # -- lifecycle ---------------------------------------------------------------------------
    def argv(self):
        if self.args is not None:
            return [self.binary, *self.args]
        if self.unix_path is not None:
            return [self.binary, "-u", "root", "-U", "0", "-s", self.unix_path, *self.extra]
        if self.port is None:
            self.port = free_port()
        return [self.binary, *base_args(self.port), *self.extra]

    def start(self):
        last_err = None
        for _attempt in range(3):  # the free port may be taken between probe and bind
            argv = self.argv()
            self._errf = tempfile.TemporaryFile()
            # The child writes through its own O_APPEND file description, so our seek+read
            # in stderr() can never move its write offset (no overwritten lines).
            wfd = os.open(f"/proc/self/fd/{self._errf.fileno()}", os.O_WRONLY | os.O_APPEND)
            try:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=wfd, stderr=wfd)
            finally:
                os.close(wfd)
            try:
                self._wait_ready()
                return self
            except HarnessError as e:
                last_err = e
                self.stop()
                if self.args is not None or self.unix_path is not None:
                    break
                if "Address already in use" not in str(e):
                    break
                self.port = None
        raise last_err

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise HarnessError(f"{self.name} exited with {rc} during startup: {self.argv_str()}\n"
                                   f"stderr: {self.stderr()!r}")
            try:
                s = self.raw_connect(timeout=1.0)
                s.close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name} not accepting connections after "
                                   f"{self.startup_timeout}s: {self.argv_str()}\n"
                                   f"stderr: {self.stderr()!r}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def argv_str(self):
        return " ".join(self.proc.args) if self.proc else " ".join(self.argv())

    def stderr(self):
        if self._errf is None:
            return b""
        self._errf.seek(0)
        return self._errf.read()

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self):
        """Send SIGTERM by PID without waiting (memcached takes ~1 s to exit on SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self._term_sent = time.monotonic()

    def wait_stopped(self, timeout=5.0):
        """After terminate(): wait up to `timeout`, then SIGKILL by PID; returns exit status."""
        if self.proc is None:
            return None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        if self._errf is not None:
            self._errf.close()
            self._errf = None
        return self.proc.returncode

    def stop(self, timeout=5.0):
        """SIGTERM by PID, SIGKILL after `timeout`; returns the exit status."""
        self.terminate()
        return self.wait_stopped(timeout)

    _term_sent = None

    # -- connections -------------------------------------------------------------------------
    def raw_connect(self, timeout=DEFAULT_TIMEOUT):
        if self.unix_path is not None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix_path)
        else:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def connect(self, timeout=DEFAULT_TIMEOUT):
        return Conn(self.raw_connect(timeout), timeout=timeout, label=self.name)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Conn:
    """A client connection whose reads are bounded by a timeout (→ HarnessError with the bytes)."""

    MARK = b"mn\r\n"
    MARK_REPLY = b"MN\r\n"

    def __init__(self, sock, timeout=DEFAULT_TIMEOUT, label="server"):
        self.sock = sock
        self.timeout = timeout
        self.label = label
        self.buf = b""
        self.sock.settimeout(timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_bytewise(self, data):
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])

    def _recv(self, what, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HarnessError(f"{self.label}: timeout waiting for {what}; received so far: {self.buf!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise HarnessError(f"{self.label}: timeout waiting for {what}; received so far: {self.buf!r}")
        except ConnectionResetError:
            chunk = b""  # RST is treated as end of stream
        return chunk

    def read_until(self, suffix, timeout=None):
        """Read until the received data ends with `suffix`; return it all (buffer emptied)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.buf.endswith(suffix):
            chunk = self._recv(f"{suffix!r}", deadline)
            if not chunk:
                raise HarnessError(f"{self.label}: connection closed while waiting for {suffix!r}; "
                                   f"received: {self.buf!r}")
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            chunk = self._recv(f"{n} bytes", deadline)
            if not chunk:
                raise HarnessError(f"{self.label}: EOF after {len(self.buf)} of {n} bytes: {self.buf[:200]!r}")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until_eof(self, timeout=None):
        """Read until the peer closes (FIN or RST); return everything received."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            chunk = self._recv("EOF", deadline)
            if not chunk:
                break
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out

    def roundtrip(self, req, timeout=None):
        """Send `req` + `mn\\r\\n`; return the reply bytes before the terminating `MN\\r\\n`."""
        self.send(req + self.MARK)
        # A request may itself hold `mn` lines (each answered MN, possibly in its own segment): wait
        # for one marker reply more than the request's own, or the stream splits at a race.
        own = sum(1 for line in req.split(b"\n") if line.rstrip(b"\r") == b"mn" or line.startswith(b"mn "))
        deadline = time.monotonic() + (timeout or self.timeout)
        while not (self.buf.endswith(self.MARK_REPLY) and
                   sum(1 for line in self.buf.split(b"\n") if line == b"MN\r") >= own + 1):
            chunk = self._recv(f"{own + 1} x {self.MARK_REPLY!r}", deadline)
            if not chunk:
                raise HarnessError(f"{self.label}: connection closed while waiting for the end marker; "
                                   f"received: {self.buf!r}")
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out[:-len(self.MARK_REPLY)]

    def cmd(self, line, timeout=None):
        """One request line (no CRLF needed); reply bytes via roundtrip."""
        if isinstance(line, str):
            line = line.encode()
        if not line.endswith(b"\n"):
            line += b"\r\n"
        return self.roundtrip(line, timeout)

    def stats(self, sub=""):
        raw = self.roundtrip((f"stats {sub}".strip() + "\r\n").encode())
        return parse_stats(raw)


# -- normalisation ------------------------------------------------------------------------------

VERSION_RE = re.compile(rb"^VERSION [^\r\n]*\r\n", re.M)


def normalise_version(reply):
    return VERSION_RE.sub(b"VERSION <x>\r\n", reply)


def parse_stats(raw):
    """`STAT name value` lines → ordered list of (name, value) (bytes→str); asserts END."""
    if not raw.endswith(b"END\r\n"):
        raise HarnessError(f"stats reply does not end with END: {raw[-200:]!r}")
    out = []
    for line in raw[:-5].split(b"\r\n"):
        if not line:
            continue
        parts = line.split(b" ", 2)
        if parts[0] != b"STAT" or len(parts) != 3:
            raise HarnessError(f"malformed stats line {line!r}")
        out.append((parts[1].decode(), parts[2].decode()))
    return out


# Stats lines Cachet adds on purpose (ARCHITECTURE.md "Compatibility contract": superset).
# They are ignored only as a trailing block (after every memcached line), so an extra line
# in the middle of memcached's order still fails.
CACHET_EXTRA_STATS = {"cachet_version", "ssl_ciphersuites", "ssl_cert_reload_failures", "ssl_cert_not_after",
                      "ssl_handshake_timeout", "ssl_handshake_timeouts", "ssl_plaintext_rejected",
                      "ssl_handshakes", "ssl_resumed_handshakes", "ssl_ticket_key_file",
                      "ssl_auto_reload", "ssl_verify_name", "ssl_verify_uri", "ssl_verify_name_failures",
                      "ssl_alt_chain_cert", "ssl_alt_key", "ssl_handshake_share", "ssl_handshakes_deferred",
                      "ssl_handshake_threads", "lru_policy",
                      "restored_items"}


def drop_trailing_extras(pairs):
    out = list(pairs)
    while out and out[-1][0] in CACHET_EXTRA_STATS:
        out.pop()
    return out

# Not listed although they look deterministic: get_expired, get_flushed, reclaimed and
# expired_unfetched — memcached's LRU maintainer/crawler threads reclaim expired or flushed
# items in the background, so which path counts an item is racy in the oracle itself.
# curr_connections/total_connections: deterministic only once the startup probe connection's
# accept and close have been processed by its worker thread (StatsFamily checks them after a
# long sequence via CONNECTION_STATS).
CONNECTION_STATS = {"curr_connections", "total_connections"}
# `stats` values that are deterministic for an identical request history on a fresh server.
DETERMINISTIC_STATS = {
    "max_connections", "rejected_connections",
    "cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta", "get_hits", "get_misses",
    "delete_misses", "delete_hits", "incr_misses", "incr_hits",
    "decr_misses", "decr_hits", "cas_misses", "cas_hits", "cas_badval", "touch_hits",
    "touch_misses", "store_too_large", "store_no_memory", "auth_cmds", "auth_errors",
    "bytes_read", "limit_maxbytes", "accepting_conns", "listen_disabled_num", "threads",
    "conn_yields", "bytes", "curr_items", "total_items", "evictions", "evicted_unfetched", "pointer_size", "reserved_fds",
    "malloc_fails", "log_watchers", "unexpected_napi_ids",
}


def normalise_stats(pairs, deterministic=DETERMINISTIC_STATS):
    """Keep every name (order matters); keep a value only for deterministic names."""
    return [(n, v if n in deterministic else "<v>") for n, v in drop_trailing_extras(pairs)]


# `stats settings` values that legitimately differ between two processes.
VOLATILE_SETTINGS = {"tcpport", "udpport", "inter"}


def normalise_settings(pairs):
    return [(n, "<v>" if n in VOLATILE_SETTINGS else v) for n, v in drop_trailing_extras(pairs)]


_PENDING = []


def stop_later(*servers):
    """SIGTERM now; reaping (with SIGKILL after a bounded wait) happens in reap_stopped()."""
    for s in servers:
        s.terminate()
        _PENDING.append(s)
    # reap those already gone so the list stays short
    for s in list(_PENDING):
        if s.proc.poll() is not None:
            s.wait_stopped()
            _PENDING.remove(s)


def reap_stopped(timeout=5.0):
    while _PENDING:
        s = _PENDING.pop()
        left = max(0.1, timeout - (time.monotonic() - (s._term_sent or 0)))
        s.wait_stopped(left)


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise HarnessError(f"no VmRSS for pid {pid}")


def wait_for(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Poll `predicate` (an observable event, not a fixed delay) until true or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise HarnessError(f"timeout after {timeout}s waiting for {what}")
        time.sleep(interval)


def drain(sock, quiet=1.0, limit=64 << 20):
    """Everything a raw socket delivers until it has been quiet for `quiet` seconds (a watcher's stream)."""
    sock.settimeout(quiet)
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


# -- checks shared by several test files ----------------------------------------------------------

def stats_dict(conn, sub=""):
    return dict(conn.stats(sub))


def stat_of(tc, d, name):
    tc.assertIn(name, d, f"stat {name!r} missing; got {sorted(d)[:60]}")
    return d[name]


def assert_healthy(tc, server):
    """A fresh connection gets correct replies (set/get/incr/delete round trip)."""
    tc.assertTrue(server.alive(), f"server died: exit {server.proc.poll()} stderr {server.stderr()[-400:]!r}")
    with server.connect() as c:
        tc.assertEqual(c.roundtrip(b"set health 5 0 2\r\nok\r\nget health\r\nincr n 1\r\n"
                                   b"delete health\r\nget health\r\n"),
                       b"STORED\r\nVALUE health 5 2\r\nok\r\nEND\r\nNOT_FOUND\r\nDELETED\r\nEND\r\n")


def raise_nofile(n, required=True):
    """Raise this process's soft RLIMIT_NOFILE to `n` (servers started later inherit it). If the hard
    limit is lower: a HarnessError when `required`, else the hard limit is used."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n), hard) if hard != resource.RLIM_INFINITY else max(soft, n)
    if want < n and required:
        raise HarnessError(f"RLIMIT_NOFILE hard limit {hard} < {n} needed by this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def run_startup(binary, args, timeout=5.0):
    """Run a server expected to fail at startup: (exit code or 'still running', last output line, stderr)."""
    p = subprocess.Popen([binary, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=5)
        rc = "still running"
    lines = [ln for ln in (err + out).replace(b"\r\n", b"\n").split(b"\n") if ln.strip()]
    return rc, (lines[-1].decode(errors="replace") if lines else ""), err
