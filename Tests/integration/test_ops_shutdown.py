"""Stopping the server from the protocol: `shutdown` and `shutdown graceful` with `-A` (exit 0, the
connection closed), a bad mode, and `shutdown graceful`/SIGUSR1/`shutdown` exit status, stdout and stderr
compared with memcached 1.6.18.
"""

import os
import signal
import subprocess
import unittest

from harness import Server, cachet_bin, memcached_bin, stats_dict, stat_of


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


class GracefulShutdown(unittest.TestCase):
    """`shutdown graceful` (-A) and SIGUSR1: exit status, stdout and stderr as memcached 1.6.18."""

    def outcome(self, binary, how):
        srv = Server(binary, ["-A"], name=os.path.basename(binary)).start()
        try:
            c = srv.connect()
            if how == "signal":
                os.kill(srv.pid, signal.SIGUSR1)
            else:
                c.send(how)
            try:
                tail = c.read_until_eof(timeout=10)
            except Exception:  # noqa: BLE001 - memcached may reset the connection
                tail = b""
            c.close()
            rc = srv.proc.wait(10)
            return rc, tail, srv.stderr()
        finally:
            srv.stop()

    def test_graceful_matches_memcached(self):
        for how in ("signal", b"shutdown graceful\r\n", b"shutdown\r\n"):
            with self.subTest(how=how):
                self.assertEqual(self.outcome(cachet_bin(), how), self.outcome(memcached_bin(), how))


if __name__ == "__main__":
    unittest.main()
