"""Integration tests against the built server alone (CACHET_BIN): process options, listeners,
limits, startup errors, robustness against bad input, memory behaviour under connection churn.

Every expectation here is what memcached 1.6.18 does too, so the file also passes with
CACHET_BIN=/usr/bin/memcached (that run validates the tests themselves).
"""

import os
import random
import resource
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from harness import (Server, Conn, HarnessError, cachet_bin, free_port, base_args, parse_stats,
                     vmrss_kb, wait_for)


def stats_dict(conn, sub=""):
    return dict(conn.stats(sub))


def assert_healthy(tc, server):
    """A fresh connection gets correct replies (set/get/incr/delete round trip)."""
    tc.assertTrue(server.alive(), f"server died: exit {server.proc.poll()} stderr {server.stderr()[-400:]!r}")
    with server.connect() as c:
        tc.assertEqual(c.roundtrip(b"set health 5 0 2\r\nok\r\nget health\r\nincr n 1\r\n"
                                   b"delete health\r\nget health\r\n"),
                       b"STORED\r\nVALUE health 5 2\r\nok\r\nEND\r\nNOT_FOUND\r\nDELETED\r\nEND\r\n")


def stat_of(tc, d, name):
    tc.assertIn(name, d, f"stat {name!r} missing; got {sorted(d)[:60]}")
    return d[name]


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n), hard) if hard != resource.RLIM_INFINITY else max(soft, n)
    if want < n:
        raise HarnessError(f"RLIMIT_NOFILE hard limit {hard} < {n} needed by this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class UnixSocket(unittest.TestCase):
    def test_unix_socket_permissions(self):
        d = tempfile.mkdtemp(prefix="cachet-us-")
        self.addCleanup(shutil.rmtree, d, True)
        for mask, mode in (("0700", 0o700), ("0755", 0o755)):
            path = os.path.join(d, f"sock{mask}")
            srv = Server(cachet_bin(), ["-a", mask], unix_path=path).start()
            try:
                st = os.stat(path)
                self.assertTrue(stat.S_ISSOCK(st.st_mode), f"{path} is not a socket")
                self.assertEqual(stat.S_IMODE(st.st_mode), mode,
                                 f"-a {mask}: socket mode {oct(stat.S_IMODE(st.st_mode))}")
                with srv.connect() as c:
                    self.assertTrue(c.roundtrip(b"version\r\n").startswith(b"VERSION "))
                    s = stats_dict(c, "settings")
                    self.assertEqual(stat_of(self, s, "domain_socket"), path)
                    self.assertEqual(stat_of(self, s, "umask"), mask.lstrip("0") or "0")
                assert_healthy(self, srv)
            finally:
                srv.stop()


class MaxConns(unittest.TestCase):
    def test_too_many_connections(self):
        srv = Server(cachet_bin(), ["-c", "40", "-t", "1"]).start()
        self.addCleanup(srv.stop)
        first = srv.connect()
        self.addCleanup(first.close)
        self.assertTrue(first.roundtrip(b"version\r\n").startswith(b"VERSION "))
        held, rejected = [], None
        try:
            for i in range(60):
                s = srv.raw_connect()
                s.sendall(b"version\r\n")
                c = Conn(s, label=f"client {i}")
                line = c.read_until(b"\r\n")
                if line.startswith(b"VERSION "):
                    held.append(c)
                    continue
                self.assertEqual(line, b"ERROR Too many open connections\r\n")
                self.assertEqual(c.read_until_eof(), b"", "rejected connection not closed after the error")
                c.close()
                rejected = i
                break
            self.assertIsNotNone(rejected, "60 connections accepted with -c 40")
            self.assertGreaterEqual(len(held), 1)
            s = stats_dict(first)
            self.assertGreaterEqual(int(stat_of(self, s, "rejected_connections")), 1)
            self.assertEqual(stat_of(self, s, "max_connections"), "40")
            # A second rejection grows the counter.
            c2 = srv.connect()
            self.assertEqual(c2.read_until(b"\r\n"), b"ERROR Too many open connections\r\n")
            c2.read_until_eof()
            c2.close()
            self.assertGreaterEqual(int(stats_dict(first)["rejected_connections"]), 2)
        finally:
            for c in held:
                c.close()
        # Once clients leave, new connections are served again (close is seen asynchronously).
        wait_for(lambda: int(stats_dict(first)["curr_connections"]) <= 2, what="connections released")
        assert_healthy(self, srv)


class IdleTimeout(unittest.TestCase):
    def test_idle_kick(self):
        srv = Server(cachet_bin(), ["-o", "idle_timeout=2"]).start()
        self.addCleanup(srv.stop)
        idle = srv.connect()
        active = srv.connect()
        self.addCleanup(idle.close)
        self.addCleanup(active.close)
        self.assertEqual(idle.roundtrip(b"get x\r\n"), b"END\r\n")
        t0 = time.monotonic()
        deadline = t0 + 8
        got_eof = False
        while time.monotonic() < deadline:
            r, _, _ = select.select([idle.sock], [], [], 0.3)
            if r:
                data = idle.sock.recv(100)
                self.assertEqual(data, b"", f"idle connection received data instead of EOF: {data!r}")
                got_eof = True
                break
            # The active connection keeps talking; it must survive.
            self.assertEqual(active.roundtrip(b"get x\r\n"), b"END\r\n")
        elapsed = time.monotonic() - t0
        self.assertTrue(got_eof, "idle connection was not closed within 8 s (idle_timeout=2)")
        self.assertGreaterEqual(elapsed, 1.5, f"idle connection closed too early ({elapsed:.2f}s)")
        s = stats_dict(active)
        self.assertGreaterEqual(int(stat_of(self, s, "idle_kicks")), 1)
        self.assertEqual(stat_of(self, stats_dict(active, "settings"), "idle_timeout"), "2")

    def test_no_idle_kicks_line_without_timeout(self):
        with Server(cachet_bin()) as srv, srv.connect() as c:
            self.assertNotIn("idle_kicks", stats_dict(c))


class TimeBased(unittest.TestCase):
    """Expiry and delayed flush, awaited by polling (the event), bounded in time.
    One server per test: a delayed flush also hides items stored in its flush second."""

    def setUp(self):
        self.srv = Server(cachet_bin()).start()
        self.addCleanup(self.srv.stop)

    def test_relative_expiry(self):
        with self.srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set e2 0 2 1\r\nx\r\nset e0 0 0 1\r\ny\r\n"), b"STORED\r\nSTORED\r\n")
            t0 = time.monotonic()
            wait_for(lambda: c.roundtrip(b"get e2\r\n") == b"END\r\n", timeout=5, interval=0.1,
                     what="item with exptime 2 to expire")
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.9, f"exptime 2 expired after {elapsed:.2f}s")
            self.assertEqual(c.roundtrip(b"get e0\r\n"), b"VALUE e0 0 1\r\ny\r\nEND\r\n")
            self.assertGreaterEqual(int(dict(c.stats())["get_expired"]) +
                                    int(dict(c.stats())["reclaimed"]), 1)

    def test_touch_extends(self):
        with self.srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set t2 0 2 1\r\nx\r\ntouch t2 100\r\n"), b"STORED\r\nTOUCHED\r\n")
            self.assertEqual(c.roundtrip(b"set t3 0 2 1\r\nx\r\n"), b"STORED\r\n")
            wait_for(lambda: c.roundtrip(b"get t3\r\n") == b"END\r\n", timeout=5, interval=0.1,
                     what="reference item to expire")
            self.assertEqual(c.roundtrip(b"get t2\r\n"), b"VALUE t2 0 1\r\nx\r\nEND\r\n")

    def test_delayed_flush(self):
        with self.srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set f 0 0 1\r\nx\r\nflush_all 2\r\nget f\r\n"),
                             b"STORED\r\nOK\r\nVALUE f 0 1\r\nx\r\nEND\r\n")
            t0 = time.monotonic()
            wait_for(lambda: c.roundtrip(b"get f\r\n") == b"END\r\n", timeout=5, interval=0.1,
                     what="delayed flush_all 2 to take effect")
            self.assertGreaterEqual(time.monotonic() - t0, 0.5)
            # Items stored in the flush-point second are flushed too (memcached's <= rule);
            # after it, new stores are visible again.
            wait_for(lambda: c.roundtrip(b"set g 0 0 1\r\nz\r\nget g\r\n") ==
                     b"STORED\r\nVALUE g 0 1\r\nz\r\nEND\r\n", timeout=3, interval=0.1,
                     what="stores visible again after the delayed flush")


class ShutdownCommand(unittest.TestCase):
    def test_shutdown_enabled(self):
        for cmd in (b"shutdown\r\n", b"shutdown graceful\r\n"):
            with self.subTest(cmd):
                srv = Server(cachet_bin(), ["-A"]).start()
                self.addCleanup(srv.stop)
                with srv.connect() as c:
                    self.assertEqual(stat_of(self, stats_dict(c, "settings"), "shutdown_command"), "yes")
                    c.send(cmd)
                    self.assertEqual(c.read_until_eof(), b"")
                try:
                    rc = srv.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.fail(f"{cmd!r} with -A: process still running after 10 s")
                self.assertEqual(rc, 0, f"exit status after {cmd!r}: {rc}, stderr {srv.stderr()!r}")

    def test_shutdown_bad_mode(self):
        with Server(cachet_bin(), ["-A"]) as srv, srv.connect() as c:
            self.assertEqual(c.roundtrip(b"shutdown foo\r\n"), b"CLIENT_ERROR invalid shutdown mode\r\n")
            self.assertTrue(srv.alive())


class Daemon(unittest.TestCase):
    def test_daemonize_pidfile(self):
        d = tempfile.mkdtemp(prefix="cachet-d-")
        self.addCleanup(shutil.rmtree, d, True)
        pidfile = os.path.join(d, "cachet.pid")
        port = free_port()
        with tempfile.TemporaryFile() as out:
            argv = [cachet_bin(), "-d", "-P", pidfile, *base_args(port)]
            try:
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=10)
            except subprocess.TimeoutExpired:  # run() has killed it
                out.seek(0)
                self.fail(f"launcher {argv} did not exit within 10 s (no daemonizing?); output {out.read()[-300:]!r}")
            out.seek(0)
            self.assertEqual(p.returncode, 0, f"launcher exit {p.returncode}: {out.read()!r}")

        def read_pid():
            try:
                with open(pidfile) as f:
                    txt = f.read().strip()
                return int(txt) if txt else None
            except (FileNotFoundError, ValueError):
                return None
        pid = wait_for(read_pid, timeout=5, what="pidfile")

        def kill_daemon():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                         open(f"/proc/{pid}/stat").read().split()[2] == "Z", timeout=5, what="daemon exit")
            except HarnessError:
                os.kill(pid, signal.SIGKILL)
        self.addCleanup(kill_daemon)

        os.kill(pid, 0)  # alive
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            self.assertIn(b"-d", f.read().split(b"\0"))
        srv = Server(cachet_bin(), port=port)
        c = wait_for(lambda: _try_connect(srv), timeout=5, what="daemon accepting")
        with c:
            self.assertEqual(int(stats_dict(c)["pid"]), pid, "stats pid differs from the pidfile")
            self.assertEqual(c.roundtrip(b"set d 0 0 1\r\nx\r\nget d\r\n"),
                             b"STORED\r\nVALUE d 0 1\r\nx\r\nEND\r\n")
        kill_daemon()
        self.assertFalse(os.path.exists(f"/proc/{pid}") and
                         open(f"/proc/{pid}/stat").read().split()[2] != "Z", "daemon survived SIGTERM")


def _try_connect(srv):
    try:
        return srv.connect()
    except OSError:
        return None


class StartupErrors(unittest.TestCase):
    # (args, exit status, full stderr) — as memcached 1.6.18 prints them.
    CASES = [
        (["-t", "0"], 1, "Number of threads must be greater than 0\n"),
        (["-c", "0"], 1, "Maximum connections must be greater than 0\n"),
        (["-R", "0"], 1, "Number of requests per event must be greater than 0\n"),
        (["-f", "1"], 1, "Factor must be greater than 1\n"),
        (["-n", "0"], 1, "Chunk size must be greater than 0\n"),
        (["-I", "512"], 64, "Item max size cannot be less than 1024 bytes.\n"),
        (["-I", "2k"], 64, "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 2048)\n"),
        (["-I", "3m", "-m", "4"], 64, "Cannot set item size limit higher than 1/2 of memory max.\n"),
        (["-p", "70000"], 64, "ERROR: Invalid port number 70000.\n"),
        (["-B", "foo"], 64, "Invalid value for binding protocol: foo\n -- should be one of auto, binary, or ascii\n"),
        (["-o", "idle_timeout"], 1, "Missing numeric argument for idle_timeout\n"),
        (["-q"], 1, None),  # getopt line names the program; last line checked
    ]

    def run_server(self, args, with_defaults=True):
        argv = [cachet_bin(), *(base_args(free_port()) if with_defaults else []), *args]
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
        except subprocess.TimeoutExpired as e:  # run() has killed it
            self.fail(f"{argv[1:]} still running after 5 s (expected a startup error); "
                      f"stderr {(e.stderr or b'')[-300:]!r}")
        return p

    def test_startup_errors(self):
        for args, rc, err in self.CASES:
            with self.subTest(" ".join(args)):
                p = self.run_server(args)
                self.assertEqual(p.returncode, rc, f"{args}: exit {p.returncode}, stderr {p.stderr!r}")
                text = p.stderr.decode(errors="replace")
                if err is not None:
                    self.assertEqual(text, err)
                else:
                    self.assertTrue(text.endswith('Illegal argument "?"\n'), repr(text))
                    self.assertIn("invalid option -- 'q'", text)

    def test_root_without_u(self):
        if os.geteuid() != 0:
            self.skipTest("not running as root: the -u check only applies to root")
        p = self.run_server(["-U", "0", "-l", "127.0.0.1", "-p", str(free_port())], with_defaults=False)
        self.assertEqual(p.returncode, 64, f"stderr {p.stderr!r}")
        self.assertEqual(p.stderr.decode().splitlines()[-1], "can't run as root without the -u switch")


class Robustness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(cachet_bin()).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def _send_ignoring_close(self, conn, data):
        try:
            conn.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def test_garbage_bytes(self):
        rnd = random.Random(7)
        c = self.srv.connect()
        garbage = bytes(rnd.randrange(256) for _ in range(200000))
        self._send_ignoring_close(c, garbage)
        c.close()
        assert_healthy(self, self.srv)

    def test_garbage_lines_get_errors(self):
        rnd = random.Random(8)
        lines = [bytes(rnd.choice(b"abcxyz!@#$%^&*()\x01\x7f\xfe") for _ in range(rnd.randrange(1, 40)))
                 for _ in range(200)]
        with self.srv.connect() as c:
            reply = c.roundtrip(b"".join(ln + b"\r\n" for ln in lines))
            self.assertEqual(reply, b"ERROR\r\n" * 200)
        assert_healthy(self, self.srv)

    def test_nul_bytes(self):
        with self.srv.connect() as c:
            self.assertEqual(c.roundtrip(b"\x00\x00\x00\r\n"), b"ERROR\r\n")
            self.assertEqual(c.roundtrip(b"set nul 0 0 3\r\n\x00\x00\x00\r\nget nul\r\n"),
                             b"STORED\r\nVALUE nul 0 3\r\n\x00\x00\x00\r\nEND\r\n")
        with self.srv.connect() as c:
            self._send_ignoring_close(c, b"\x00" * 100000)
        assert_healthy(self, self.srv)

    def test_megabyte_line_without_newline(self):
        c = self.srv.connect(timeout=10)
        self._send_ignoring_close(c, b"s" * (1 << 20))
        self.assertEqual(c.read_until_eof(), b"", "a long non-get line must close the connection silently")
        c.close()
        assert_healthy(self, self.srv)

    def test_disconnect_mid_value(self):
        for cut in (0, 10, 999, 1001):
            c = self.srv.connect()
            c.send(b"set mid 0 0 1000\r\n" + b"v" * cut)
            c.close()
        c = self.srv.connect()
        c.send(b"set big 0 0 1000000\r\n" + b"v" * 500000)
        c.close()
        with self.srv.connect() as c:
            # the half-sent sets stored nothing
            self.assertEqual(c.roundtrip(b"get mid big\r\n"), b"END\r\n")
        assert_healthy(self, self.srv)

    def test_many_idle_connections(self):
        raise_nofile(12000)
        srv = Server(cachet_bin(), ["-c", "6000"]).start()
        self.addCleanup(srv.stop)
        conns = []
        try:
            for _ in range(5000):
                conns.append(srv.raw_connect(timeout=10))
            with srv.connect() as c:
                wait_for(lambda: int(stats_dict(c)["curr_connections"]) >= 5001, timeout=20,
                         interval=0.1, what="5000 idle connections accepted")
            assert_healthy(self, srv)
            # idle ones still answer
            for s in conns[::500]:
                s.sendall(b"version\r\n")
                self.assertTrue(s.recv(100).startswith(b"VERSION "))
        finally:
            for s in conns:
                s.close()
        assert_healthy(self, srv)


class RssUnderChurn(unittest.TestCase):
    def churn(self, srv, n=5000):
        socks = []
        try:
            for _ in range(n):
                s = srv.raw_connect(timeout=10)
                socks.append(s)
            for s in socks:
                s.sendall(b"get k\r\n")
            for s in socks:
                data = b""
                while not data.endswith(b"END\r\n"):
                    chunk = s.recv(100)
                    if not chunk:
                        raise HarnessError(f"EOF during churn after {data!r}")
                    data += chunk
        finally:
            for s in socks:
                s.close()
        with srv.connect() as c:
            wait_for(lambda: int(stats_dict(c)["curr_connections"]) == 1, timeout=20, interval=0.1,
                     what="all churn connections closed server-side")

    def test_rss_plateau(self):
        raise_nofile(12000)
        srv = Server(cachet_bin(), ["-c", "6000"]).start()
        self.addCleanup(srv.stop)
        base = vmrss_kb(srv.pid)
        self.churn(srv)
        first = vmrss_kb(srv.pid)
        self.churn(srv)
        second = vmrss_kb(srv.pid)
        print(f"\n[rss] base {base} kB, after round 1 {first} kB, after round 2 {second} kB")
        self.assertLessEqual(second, first * 1.1 + 2048,
                             f"RSS grew between churn rounds: {first} kB → {second} kB")
        assert_healthy(self, srv)


if __name__ == "__main__":
    unittest.main()
