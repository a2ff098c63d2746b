"""Operator-facing process behaviour: the pid file's life, `Exiting normally`, reload log lines, the
`-Z` hint and the `-o ssl_*` without `-Z` warning, relative certificate paths after `-d`.

Where memcached 1.6.18 defines the behaviour, the same test runs against memcached and Cachet.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from tlscerts import self_signed
from harness import (HarnessError, Server, base_args, cachet_bin, free_port, memcached_bin,
                     wait_for)


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def _read_pid(path):
    try:
        with open(path) as f:
            txt = f.read().strip()
        return int(txt) if txt else None
    except (FileNotFoundError, ValueError):
        return None


def _connect(port):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return None


def _cmd(sock, line):
    sock.sendall(line)
    buf = b""
    deadline = time.monotonic() + 5
    while not buf.endswith(b"\r\n"):
        if time.monotonic() > deadline:
            raise HarnessError(f"no reply to {line!r}, got {buf!r}")
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


class Daemon:
    """A `-d` server started from `cwd`; its stderr (kept open by memcached's -v rule) goes to a file."""

    def __init__(self, test, binary, extra, cwd):
        self.test = test
        self.port = free_port()
        self.pidfile = os.path.join(cwd, "server.pid")
        self.errpath = os.path.join(cwd, "stderr.txt")
        argv = [binary, "-d", "-P", self.pidfile, *base_args(self.port), *extra]
        with open(self.errpath, "wb") as err:
            p = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=20)
        test.assertEqual(p.returncode, 0, f"{argv}: launcher exit {p.returncode}: {self.stderr()!r}")
        self.pid = wait_for(lambda: _read_pid(self.pidfile), timeout=10, what=f"pid file of {binary}")
        test.addCleanup(self.kill)
        self.sock = wait_for(lambda: _connect(self.port), timeout=10, what="daemon accepting")
        test.addCleanup(self.sock.close)

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read()

    def wait_gone(self):
        wait_for(lambda: _gone(self.pid), timeout=10, what="daemon exit")

    def kill(self):
        if not _gone(self.pid):
            os.kill(self.pid, signal.SIGKILL)


class PidFileAndExitLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cachet-ops-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def both(self):
        return (("memcached", memcached_bin()), ("cachet", cachet_bin()))

    def fresh_dir(self, name):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        return d

    def test_pidfile_removed_after_sigterm(self):
        for name, binary in self.both():
            with self.subTest(name):
                d = Daemon(self, binary, ["-v"], self.fresh_dir(name + "-term"))
                self.assertEqual(_cmd(d.sock, b"version\r\n")[:8], b"VERSION ")
                os.kill(d.pid, signal.SIGTERM)
                d.wait_gone()
                self.assertFalse(os.path.exists(d.pidfile), f"{name}: pid file left after SIGTERM")
                self.assertIn(b"Exiting normally\n", d.stderr())

    def test_pidfile_removed_after_shutdown(self):
        for name, binary in self.both():
            with self.subTest(name):
                d = Daemon(self, binary, ["-A"], self.fresh_dir(name + "-shutdown"))
                d.sock.sendall(b"shutdown\r\n")
                d.wait_gone()
                self.assertFalse(os.path.exists(d.pidfile), f"{name}: pid file left after shutdown")
                self.assertNotIn(b"Exiting normally", d.stderr(), "without -v nothing is printed at exit")

    def test_foreground_pidfile_written_and_kept(self):
        # Without -d memcached writes the pid file too, and leaves it to whoever started the process.
        for name, binary in self.both():
            with self.subTest(name):
                pidfile = os.path.join(self.fresh_dir(name + "-fg"), "fg.pid")
                srv = Server(binary, ["-P", pidfile, "-v"], name=name).start()
                self.addCleanup(srv.stop)
                self.assertEqual(wait_for(lambda: _read_pid(pidfile), timeout=5, what="pid file"), srv.pid)
                err = srv.stderr
                srv.terminate()
                self.assertEqual(srv.proc.wait(10), 0)
                self.assertIn(b"Exiting normally\n", err())
                self.assertTrue(os.path.exists(pidfile))

    def test_pidfile_in_missing_directory(self):
        # memcached reports it and keeps serving; so does Cachet.
        for name, binary in self.both():
            with self.subTest(name):
                missing = os.path.join(self.dir, "no-such-dir", "x.pid")
                srv = Server(binary, ["-P", missing], name=name).start()
                self.addCleanup(srv.stop)
                wait_for(lambda: b"Could not open the pid file" in srv.stderr(), timeout=5, what="pid error")
                self.assertIn(f"{missing}.tmp for writing: No such file or directory".encode(), srv.stderr())
                with srv.connect() as c:
                    self.assertEqual(c.roundtrip(b"set a 0 0 1\r\nx\r\n"), b"STORED\r\n")


class TLSOperatorMessages(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cachet-ops-tls-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self_signed(self.dir, cert="chain.pem", key="key.pem")

    def run_until_exit(self, binary, extra):
        return subprocess.run([binary, *base_args(free_port()), *extra], cwd=self.dir,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=20)

    def test_Z_without_certificate_hint(self):
        hint = b"cachet: -Z needs a certificate and its key: -o ssl_chain_cert=<chain.pem>,ssl_key=<key.pem>\n"
        for extra, line in ((["-Z"], b"Error loading the certificate chain: (null)"),
                            (["-Z", "-o", "ssl_chain_cert=chain.pem"], b"Error loading the key: (null)")):
            with self.subTest(extra):
                m = self.run_until_exit(memcached_bin(), extra)
                c = self.run_until_exit(cachet_bin(), extra)
                self.assertEqual(m.returncode, 64)
                self.assertEqual(c.returncode, m.returncode)
                self.assertIn(line, m.stderr)
                # One hint line first, then memcached's lines: its summary stays the last line.
                self.assertTrue(c.stderr.startswith(hint), c.stderr)
                self.assertEqual(c.stderr.rstrip(b"\r\n").split(b"\n")[-1], m.stderr.rstrip(b"\r\n").split(b"\n")[-1])
                self.assertEqual(c.stderr.count(b"\n"), m.stderr.count(b"\n") + 1)
                self.assertNotIn(b"-Z needs", m.stderr)

    def test_ssl_options_without_Z_warn(self):
        srv = Server(cachet_bin(), ["-o", f"ssl_key={self.dir}/key.pem"]).start()
        self.addCleanup(srv.stop)
        self.assertIn(b"cachet: warning: -o ssl_* options have no effect without -Z", srv.stderr())
        with srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set a 0 0 1\r\nx\r\n"), b"STORED\r\n")
        plain = Server(cachet_bin()).start()
        self.addCleanup(plain.stop)
        self.assertNotIn(b"warning", plain.stderr())

    def notls_server(self, *extra):
        port = free_port()
        return Server(cachet_bin(), port=port, args=[
            "-u", "root", "-U", "0", "-p", str(port), "-l", f"notls:127.0.0.1:{port}", *extra,
            "-Z", "-o", f"ssl_chain_cert={self.dir}/chain.pem,ssl_key={self.dir}/key.pem"]).start()

    def test_reload_logged_with_v(self):
        srv = self.notls_server("-v")
        self.addCleanup(srv.stop)
        with srv.connect() as c:
            self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
        self.assertIn(b"Reloaded TLS certificates on refresh_certs\n", srv.stderr())
        os.kill(srv.pid, signal.SIGHUP)
        wait_for(lambda: b"Reloaded TLS certificates on SIGHUP\n" in srv.stderr(), timeout=5, what="SIGHUP log")
        quiet = self.notls_server()
        self.addCleanup(quiet.stop)
        with quiet.connect() as c:
            self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
        self.assertNotIn(b"Reloaded", quiet.stderr())
        with quiet.connect() as c:  # `verbosity 1` at run time counts as -v, as in memcached
            self.assertEqual(c.cmd("verbosity 1"), b"OK\r\n")
            self.assertEqual(c.cmd("refresh_certs"), b"OK\r\n")
        self.assertIn(b"Reloaded TLS certificates on refresh_certs\n", quiet.stderr())

    def test_relative_cert_paths_reload_after_daemonize(self):
        # -d changes directory to /; relative paths are resolved at startup, so a reload still finds them.
        port = free_port()
        d = Daemon(self, cachet_bin(), ["-Z", "-o", "ssl_chain_cert=chain.pem,ssl_key=key.pem",
                                        "-l", f"notls:127.0.0.1:{port}"], self.dir)
        d.sock.close()
        d.sock = wait_for(lambda: _connect(port), timeout=10, what="notls listener")
        self.addCleanup(d.sock.close)
        self.assertEqual(_cmd(d.sock, b"refresh_certs\r\n"), b"OK\r\n")
        settings = b""
        d.sock.sendall(b"stats settings\r\n")
        while not settings.endswith(b"END\r\n"):
            settings += d.sock.recv(65536)
        # `stats settings` still shows the paths as given (memcached's output).
        self.assertIn(b"STAT ssl_chain_cert chain.pem\r\n", settings)


if __name__ == "__main__":
    unittest.main()
