"""The developer/operator scripts: `make run`'s Scripts/run-dev (dev certificate made and renewed, a ready line,
Ctrl-C stops the server) and `Scripts/bench --help` (flags instead of only environment variables).
"""

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import REPO_ROOT, cachet_bin, free_ports

RUN_DEV = os.path.join(REPO_ROOT, "Scripts", "run-dev")
BENCH = os.path.join(REPO_ROOT, "Scripts", "bench")


def _openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, timeout=60)


class RunDev(unittest.TestCase):
    def setUp(self):
        self.dev = tempfile.mkdtemp(prefix="cachet-dev-")
        self.addCleanup(shutil.rmtree, self.dev, True)
        tls_port, plain_port = free_ports(2)
        self.env = dict(os.environ, CACHET_BIN=cachet_bin(), CACHET_DEV_DIR=self.dev,
                        CACHET_TLS_PORT=str(tls_port), CACHET_PLAIN_PORT=str(plain_port),
                        CACHET_RUN_USER="nobody")

    def fingerprint(self):
        r = _openssl("x509", "-noout", "-fingerprint", "-in", os.path.join(self.dev, "server.pem"))
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_certificate_made_kept_and_renewed(self):
        r = subprocess.run([RUN_DEV, "--cert-only"], env=self.env, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"made a self-signed dev certificate", r.stdout)
        first = self.fingerprint()
        r = subprocess.run([RUN_DEV, "--cert-only"], env=self.env, capture_output=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, b""), "a fresh certificate is kept")
        self.assertEqual(self.fingerprint(), first)
        # A certificate that expires tomorrow is renewed (within the 3-day window).
        r = _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                     "-keyout", os.path.join(self.dev, "server.key"), "-out", os.path.join(self.dev, "server.pem"))
        self.assertEqual(r.returncode, 0, r.stderr)
        short = self.fingerprint()
        r = subprocess.run([RUN_DEV, "--cert-only"], env=self.env, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"renewed", r.stdout)
        self.assertNotEqual(self.fingerprint(), short)
        ok = _openssl("x509", "-checkend", str(20 * 86400), "-noout", "-in", os.path.join(self.dev, "server.pem"))
        self.assertEqual(ok.returncode, 0, "the renewed certificate is valid for weeks")

    def test_ready_line_then_ctrl_c(self):
        p = subprocess.Popen([RUN_DEV], env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)

        def cleanup():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
            p.stdout.close()
        self.addCleanup(cleanup)
        out = b""
        deadline = time.monotonic() + 30
        while b"cachet ready" not in out:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, f"no ready line: {out!r}")
            if select.select([p.stdout], [], [], left)[0]:
                chunk = os.read(p.stdout.fileno(), 4096)
                self.assertTrue(chunk, f"run-dev ended before ready: {out!r}")
                out += chunk
        # Ready means both ports accept now.
        for port in (self.env["CACHET_TLS_PORT"], self.env["CACHET_PLAIN_PORT"]):
            self.assertEqual(subprocess.run(["nc", "-z", "127.0.0.1", port], timeout=10).returncode, 0)
        os.kill(p.pid, signal.SIGINT)  # what Ctrl-C sends to the script
        rest, _ = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0, out + rest)
        self.assertIn(b"Exiting normally", rest)


class BenchFlags(unittest.TestCase):
    def test_help_exits_at_once(self):
        r = subprocess.run([BENCH, "--help"], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        for flag in (b"--quick", b"--runs", b"--time", b"--build", b"--only", b"--cachet-bin"):
            self.assertIn(flag, r.stdout)

    def test_bad_flag_is_a_usage_error(self):
        for argv in (["--bogus"], ["--only", "nope"], ["--runs", "x"]):
            r = subprocess.run([BENCH, *argv], capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 2, (argv, r.stderr))
            self.assertIn(b"usage:", r.stderr)


if __name__ == "__main__":
    unittest.main()
