"""Starting the server: the unix socket listener and its `-a` permissions, start-up errors (exit
status and stderr as memcached 1.6.18 prints them), `-d -P` daemonizing with a pid file.

Every expectation here is what memcached 1.6.18 does too, so the file also passes with
CACHET_BIN=/usr/bin/memcached (that run validates the tests themselves).
"""

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import unittest

from harness import (Server, HarnessError, cachet_bin, free_port, base_args, wait_for, stats_dict, stat_of,
                     assert_healthy)


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


if __name__ == "__main__":
    unittest.main()
