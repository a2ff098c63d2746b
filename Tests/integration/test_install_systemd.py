"""systemd's readiness protocol as Cachet speaks it: a unix datagram socket stands in for systemd
($NOTIFY_SOCKET, a path or an abstract '@name'); READY=1 with MAINPID arrives once the listeners accept, and
STOPPING=1 when SIGTERM starts the exit.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import base_args, cachet_bin, free_port


class Notify(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cachet-notify-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def start(self, address, env_value, extra=()):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(address)
        sock.settimeout(10)
        port = free_port()
        env = dict(os.environ, NOTIFY_SOCKET=env_value)
        p = subprocess.Popen([cachet_bin(), *base_args(port), *extra], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop():
            if p.poll() is None:
                p.kill()
            p.wait(10)
            p.stderr.close()
        self.addCleanup(stop)
        return sock, p, port

    def check_ready_then_stopping(self, sock, p, port):
        msg = sock.recv(4096).decode()  # the socket timeout bounds this
        fields = dict(line.split("=", 1) for line in msg.strip().split("\n"))
        self.assertEqual(fields.get("READY"), "1", msg)
        self.assertEqual(fields.get("MAINPID"), str(p.pid))
        self.assertIn(f"tcp:127.0.0.1:{port}", fields.get("STATUS", ""))
        # Ready means accepting: the connection succeeds at once, no retry.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"version\r\n")
            self.assertTrue(c.recv(100).startswith(b"VERSION "))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(sock.recv(4096), b"STOPPING=1\n")
        self.assertEqual(p.wait(10), 0)

    def test_path_socket(self):
        path = os.path.join(self.dir, "notify.sock")
        self.check_ready_then_stopping(*self.start(path, path))

    def test_abstract_socket(self):
        name = f"cachet-test-notify-{os.getpid()}-{free_port()}"
        self.check_ready_then_stopping(*self.start("\0" + name, "@" + name))

    def test_ready_after_daemonizing_names_the_daemon(self):
        # With -d the READY=1 sender is the daemon; MAINPID tells systemd which process to watch.
        path = os.path.join(self.dir, "notify.sock")
        pidfile = os.path.join(self.dir, "d.pid")
        sock, p, port = self.start(path, path, ["-d", "-P", pidfile])
        self.assertEqual(p.wait(10), 0)
        fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().strip().split("\n"))
        with open(pidfile) as f:
            daemon = int(f.read())
        try:
            self.assertEqual(fields["READY"], "1")
            self.assertEqual(int(fields["MAINPID"]), daemon)
            self.assertNotEqual(daemon, p.pid)
        finally:
            os.kill(daemon, signal.SIGTERM)
        self.assertEqual(sock.recv(4096), b"STOPPING=1\n")

    def test_no_notify_socket_no_harm(self):
        # A NOTIFY_SOCKET nobody listens on (systemd gone) does not stop the server.
        port = free_port()
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(self.dir, "nobody-here"))
        p = subprocess.Popen([cachet_bin(), *base_args(port)], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(10)))
        import time
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                self.assertIsNone(p.poll(), "server exited")
                self.assertLess(time.monotonic(), deadline, "server never accepted")
                time.sleep(0.02)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0)


if __name__ == "__main__":
    unittest.main()
