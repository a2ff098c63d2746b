"""Cachet-only TLS, where memcached 1.6.18 lacks the feature or Cachet is deliberately better: btls:/mtls:
listeners, reliable handshake-error counting, atomic refresh_certs (a failed one keeps the old certificate),
SIGHUP reloads, ssl_wbuf_size=0 rejected and =1 working, requests pipelined after a large value, several MB
to a slow reader, silent and garbage clients; `stats conns` TLS lines and `watch connevents` conntlserr.

Each server gets a TLS listener and a `notls:` listener (tlstools.TLSServer); the readiness probe and
all `stats`/`refresh_certs` control traffic use the plaintext one, so they never count as failed
handshakes. Certificates: tlscerts.shared(), made with the `openssl` CLI when the module starts.
"""

import os
import re
import signal
import socket
import ssl
import time
import unittest

import tlscerts
from harness import (Server, Conn, HarnessError, cachet_bin, drain, free_port, free_ports, wait_for, raise_nofile, run_startup,
                     DEFAULT_TIMEOUT)
from tlscerts import LiveFiles
from tlstools import CachetTLSCase, BIG, client_ctx, peer_subject, peer_ou, outcome, localhost_cert

ORACLE = os.path.basename(os.environ.get("CACHET_BIN", "")) == "memcached"
cachet_only = unittest.skipIf(ORACLE, "Cachet-only behaviour")


CERTS = None


def setUpModule():
    global CERTS
    CERTS = tlscerts.shared()
    raise_nofile(8192, required=False)


class CachetTLSBetter(CachetTLSCase):
    def test_btls_mtls_listeners(self):
        live = LiveFiles(CERTS, "listen")
        # global mode Require: default listener needs a cert, btls: does not
        s = self.start(["ssl_ca_cert=" + live.ca, "ssl_verify_mode=2"], listeners=("btls",), live=live)
        bt = s.extra_ports["btls"]
        self.assertEqual(outcome(bt, client_ctx("1.3")), "ok")
        self.assertEqual(outcome(bt, client_ctx("1.2")), "ok")
        self.assertTrue(outcome(s.tls_port, client_ctx("1.3")).startswith("fail"))
        self.assertEqual(outcome(s.tls_port, client_ctx("1.3", cert=True)), "ok")
        # global mode None: mtls: requires a cert
        s2 = self.start(["ssl_ca_cert=" + live.ca], listeners=("mtls",), live=live)
        mt = s2.extra_ports["mtls"]
        self.assertEqual(outcome(s2.tls_port, client_ctx("1.3")), "ok")
        for v in ("1.3", "1.2"):
            self.assertTrue(outcome(mt, client_ctx(v)).startswith("fail"), v)
            self.assertEqual(outcome(mt, client_ctx(v, cert=True)), "ok", v)
        self.assertIn(f"mtls:127.0.0.1:{mt}", dict(s2.stats("settings"))["inter"])

    def test_failed_handshakes_counted_reliably(self):
        # memcached does not count these (they fail in its worker); Cachet counts every
        # handshake that fails from the server's view
        live = LiveFiles(CERTS, "count")
        s = self.start(["ssl_ca_cert=" + live.ca, "ssl_verify_mode=2", "ssl_min_version=3"], live=live)
        base = s.stat_int("ssl_handshake_errors")
        self.assertTrue(outcome(s.tls_port, client_ctx("1.3")).startswith("fail"))  # no client cert
        self.assertTrue(outcome(s.tls_port, client_ctx("1.2", cert=True)).startswith("fail"))  # < min version
        wait_for(lambda: s.stat_int("ssl_handshake_errors") == base + 2, timeout=5,
                 what=f"ssl_handshake_errors == {base + 2} (missing client cert + TLS 1.2 vs min 1.3)")
        self.assertEqual(outcome(s.tls_port, client_ctx("1.3", cert=True)), "ok")
        self.assertEqual(s.stat_int("ssl_handshake_errors"), base + 2)

    def test_failed_refresh_keeps_old_cert(self):
        s = self.start()
        old = s.tls()
        self.addCleanup(old.close)
        self.assertEqual(peer_ou(old), "first")
        fails0 = s.stat_int("ssl_cert_reload_failures")
        s.live.install(chain=CERTS.server2_crt)  # server2's cert with server1's key
        r = s.refresh()
        self.assertTrue(r.startswith(b"Error loading the key: ") and r.endswith(b"key values mismatch\r\n"), r)
        for _ in range(5):
            with s.tls() as c:
                self.assertEqual(peer_ou(c), "first")
                self.assertEqual(c.cmd("set x 0 0 1\r\n1"), b"STORED\r\n")
        self.assertEqual(s.stat_int("ssl_cert_reload_failures"), fails0 + 1)
        self.assertEqual(old.cmd("get x"), b"VALUE x 0 1\r\n1\r\nEND\r\n")

    def test_good_refresh_new_cert_old_conn_works(self):
        s = self.start()
        old = s.tls()
        self.addCleanup(old.close)
        s.live.good(2)
        self.assertEqual(s.refresh(), b"OK\r\n")
        with s.tls() as c:
            self.assertEqual(peer_ou(c), "second")
            self.assertEqual(peer_subject(c)["commonName"], "server2")
            self.assertEqual(c.cmd("set y 0 0 1\r\n2"), b"STORED\r\n")
        self.assertEqual(peer_ou(old), "first")
        self.assertEqual(old.cmd("get y"), b"VALUE y 0 1\r\n2\r\nEND\r\n")
        self.assertLessEqual(s.stat_int("time_since_server_cert_refresh"), 2)

    def test_sighup_reload(self):
        s = self.start()
        self.assertEqual(outcome(s.tls_port, client_ctx()), "ok")
        s.live.good(2)
        os.kill(s.pid, signal.SIGHUP)
        self.poll_ou(s, "second")
        # a broken file set on SIGHUP: old cert keeps being served, failure counted, still alive
        fails0 = s.stat_int("ssl_cert_reload_failures")
        s.live.install(key=CERTS.garbage_key)
        os.kill(s.pid, signal.SIGHUP)
        wait_for(lambda: s.stat_int("ssl_cert_reload_failures") == fails0 + 1, timeout=5,
                 what="ssl_cert_reload_failures +1 after SIGHUP with a garbage key")
        with s.tls() as c:
            self.assertEqual(peer_ou(c), "second")
        self.assertTrue(s.srv.alive())

    def test_wbuf_size_zero_rejected(self):
        live = LiveFiles(CERTS, "wbuf")
        port = free_port()
        rc, last, err = run_startup(cachet_bin(), ["-u", "root", "-U", "0", "-p", str(port), "-l", "127.0.0.1",
                                                   "-Z", "-o", f"ssl_chain_cert={live.chain},ssl_key={live.key},"
                                                   "ssl_wbuf_size=0"])
        self.assertNotEqual(rc, "still running", "cachet started with ssl_wbuf_size=0")
        self.assertNotEqual(rc, 0)
        self.assertIn("ssl_wbuf_size", last)

    def test_pipelined_after_big_value(self):
        # memcached 1.6.18 hangs here (SSL_pending not checked before sleeping; fixed in 1.6.39)
        s = self.start(extra=["-I", "2m"])
        for version in ("1.2", "1.3"):
            with self.subTest(version), s.tls(client_ctx(version)) as c:
                req = (b"set big 0 0 %d\r\n" % len(BIG) + BIG + b"\r\nget big\r\n"
                       + b"".join(b"set p%d 0 0 1\r\n%d\r\n" % (i, i % 10) for i in range(20)) + b"get p7 p19\r\n")
                want = (b"STORED\r\nVALUE big 0 %d\r\n" % len(BIG) + BIG + b"\r\nEND\r\n" + b"STORED\r\n" * 20
                        + b"VALUE p7 0 1\r\n7\r\nVALUE p19 0 1\r\n9\r\nEND\r\n")
                self.assertEqual(c.roundtrip(req, timeout=10), want)

    def test_large_replies_to_a_slow_reader(self):
        # Several MB of replies to a client with a 4 KB receive buffer: the server's socket fills while
        # records are gathered for one write(2), so every write path that waits for EV_WRITE runs. Every
        # byte must arrive in order, pipelined small replies after them, and with `quit` last the data must
        # all arrive before close_notify.
        s = self.start(extra=["-I", "2m"])
        values = [BIG, BIG[::-1], BIG[1:] + b"x", b"y" * 70000]
        for version in ("1.2", "1.3"):
            with self.subTest(version):
                with s.tls(client_ctx(version)) as c:
                    for i, v in enumerate(values):
                        self.assertEqual(c.cmd(b"set v%d 0 0 %d\r\n" % (i, len(v)) + v), b"STORED\r\n")
                raw = socket.socket()
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                raw.settimeout(DEFAULT_TIMEOUT)
                raw.connect(("127.0.0.1", s.tls_port))
                conn = client_ctx(version).wrap_socket(raw)
                req = b"".join(b"get v%d\r\n" % i for i in range(len(values))) * 2 + b"get v3 v0\r\nversion\r\nquit\r\n"
                want = b"".join(b"VALUE v%d 0 %d\r\n" % (i, len(v)) + v + b"\r\nEND\r\n" for i, v in enumerate(values)) * 2
                want += (b"VALUE v3 0 %d\r\n" % len(values[3]) + values[3] + b"\r\nVALUE v0 0 %d\r\n" % len(BIG)
                         + BIG + b"\r\nEND\r\n")
                conn.sendall(req)
                got = bytearray()
                while True:
                    chunk = conn.recv(65536)   # b"" only after the server's close_notify
                    if not chunk:
                        break
                    got += chunk
                conn.close()
                self.assertEqual(bytes(got[:len(want)]), want)
                self.assertTrue(bytes(got[len(want):]).startswith(b"VERSION ") and got.endswith(b"\r\n"),
                                bytes(got[len(want):]))
        self.assertTrue(s.srv.alive())

    def test_wbuf_size_1_works(self):
        s = self.start(["ssl_wbuf_size=1"])
        with s.tls() as c:
            v = b"w" * 100000
            self.assertEqual(c.cmd(b"set w 0 0 %d\r\n" % len(v) + v), b"STORED\r\n")
            self.assertEqual(c.cmd("get w"), b"VALUE w 0 %d\r\n" % len(v) + v + b"\r\nEND\r\n")

    def test_plaintext_and_aborted_handshakes_counted(self):
        s = self.start()
        base = s.stat_int("ssl_handshake_errors")
        n = 0
        for i in range(30):
            raw = socket.create_connection(("127.0.0.1", s.tls_port), timeout=5)
            c = Conn(raw, timeout=5)
            if i % 3 == 0:
                c.send(b"version\r\n")  # immediately
            elif i % 3 == 1:
                # the delay is the stimulus, not a wait for an event: memcached counts plaintext only
                # when it arrives before its listener-thread SSL_accept; Cachet always
                time.sleep(0.05 if i < 20 else 0.3)
                c.send(b"version\r\n")
            if i % 3 != 2:
                got = c.read_until_eof()
                self.assertNotIn(b"VERSION", got)
            c.close()
            n += 1
        try:
            wait_for(lambda: s.stat_int("ssl_handshake_errors") >= base + n, timeout=5,
                     what=f"ssl_handshake_errors to reach {base + n}")
        except HarnessError as e:
            raise AssertionError(f"{e}: got {s.stat_int('ssl_handshake_errors') - base} of {n}") from None
        self.assertEqual(s.stat_int("ssl_handshake_errors"), base + n)
        self.assertEqual(outcome(s.tls_port, client_ctx()), "ok")

    def test_silent_client_does_not_block_and_is_idle_closed(self):
        s = self.start(extra=["-o", "idle_timeout=2"])
        silent = Conn(socket.create_connection(("127.0.0.1", s.tls_port), timeout=10), timeout=10)
        self.addCleanup(silent.close)
        t0 = time.monotonic()
        for _ in range(3):
            self.assertEqual(outcome(s.tls_port, client_ctx()), "ok")
        self.assertLess(time.monotonic() - t0, 1.5, "other clients were delayed by a silent one")
        got = silent.read_until_eof(timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(got, b"")
        self.assertGreaterEqual(elapsed, 1.5, "silent client closed before idle_timeout")
        self.assertLess(elapsed, 8.0)

    def test_garbage_after_handshake(self):
        s = self.start()
        base = s.stat_int("ssl_proto_errors")
        for version in ("1.2", "1.3"):
            with self.subTest(version):
                c = s.tls(client_ctx(version))
                self.assertEqual(c.cmd("set g 0 0 1\r\n1"), b"STORED\r\n")
                raw = socket.socket(fileno=os.dup(c.sock.fileno()))
                raw.sendall(b"GARBAGE GARBAGE\r\n" + bytes(range(256)))
                raw.close()
                closed = False
                try:
                    closed = c.read_until_eof(timeout=5) == b""
                except (ssl.SSLError, OSError):
                    closed = True
                self.assertTrue(closed)
                c.close()
                self.assertEqual(outcome(s.tls_port, client_ctx()), "ok")
        wait_for(lambda: s.stat_int("ssl_proto_errors") == base + 2, timeout=5,
                 what="ssl_proto_errors +2 after two garbage records")
        self.assertTrue(s.srv.alive())


@cachet_only
class TLSOperations(unittest.TestCase):
    """Cachet-only: `stats conns` TLS lines; `watch connevents` conntlserr (memcached 1.6.30+)."""

    @classmethod
    def setUpClass(cls):
        cls.cert, cls.key = localhost_cert()

    def start(self):
        plain, tls = free_ports(2)
        srv = Server(cachet_bin(), args=["-u", "root", "-U", "0", "-p", str(tls),
                                          "-l", f"notls:127.0.0.1:{plain},127.0.0.1:{tls}", "-Z",
                                          "-o", f"ssl_chain_cert={self.cert},ssl_key={self.key}"])
        srv.port = plain
        srv.start()
        self.addCleanup(srv.stop)
        return srv, tls

    def tls_connect(self, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5))

    def test_stats_conns_tls_lines(self):
        srv, tls = self.start()
        s = self.tls_connect(tls)
        s.sendall(b"stats conns\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += s.recv(65536)
        s.close()
        fd = re.search(rb"STAT (\d+):state conn_parse_cmd", data)
        self.assertIsNotNone(fd, data)
        me = fd.group(1)
        self.assertRegex(data, rb"STAT " + me + rb":tls_version TLSv1\.[23]\r\n")
        self.assertRegex(data, rb"STAT " + me + rb":tls_cipher \S+\r\n")
        self.assertIn(b"STAT " + me + b":tls_resumed no\r\n", data)
        self.assertIn(b":state conn_listening\r\n", data)

    def test_conntlserr_on_failed_handshake(self):
        srv, tls = self.start()
        w = srv.raw_connect()
        w.sendall(b"watch connevents\r\n")
        w.settimeout(5)
        self.assertEqual(w.recv(4), b"OK\r\n")
        bad = socket.create_connection(("127.0.0.1", tls), timeout=5)
        bad.sendall(b"version\r\n")
        time.sleep(0.3)
        bad.close()
        out = drain(w)
        self.assertRegex(out, rb"ts=\d+\.\d+ gid=\d+ type=conn_new rip=127\.0\.0\.1 rport=\d+ transport=tcp cfd=\d+\n")
        self.assertRegex(out, rb"ts=\d+\.\d+ gid=\d+ type=conntlserr fd=\d+ msg=[^\n]+\n")
        self.assertRegex(out, rb"type=conn_close rip=127\.0\.0\.1 rport=\d+ transport=tcp reason=error cfd=\d+\n")


if __name__ == "__main__":
    unittest.main()
