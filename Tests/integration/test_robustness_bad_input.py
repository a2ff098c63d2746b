"""Bad input against the built server alone: random garbage bytes and lines, NUL bytes, a megabyte
line without a newline, a client leaving in the middle of a value, 5000 idle connections — the server
answers with memcached's errors or closes the connection, and stays healthy.

Every expectation here is what memcached 1.6.18 does too, so the file also passes with
CACHET_BIN=/usr/bin/memcached (that run validates the tests themselves).
"""

import random
import unittest

from harness import Server, cachet_bin, wait_for, stats_dict, assert_healthy, raise_nofile


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


if __name__ == "__main__":
    unittest.main()
