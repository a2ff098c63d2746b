"""Cachet-only TLS hardening (memcached has none of these): secure defaults checked by testssl.sh
(nothing LOW or worse but the test certificate), the TLS 1.2 cipher order, ticket lifetime,
ssl_handshake_timeout, plaintext and HTTP on TLS ports (one line, nothing runs), ssl_handshake_share,
ssl_handshake_threads (the timeout and plaintext classes run again with the workers running their own handshakes).

Servers use a self-signed CN=localhost certificate (tlstools.localhost_cert) with a TLS listener and a
`notls:` one; stats and control traffic use the plaintext one, so they never count as handshakes.

    CACHET_BIN=$PWD/.build/release/cachet /usr/bin/python3 -m unittest discover -s Tests/integration -p test_tls_secure_defaults.py

The testssl.sh scan takes 30-60 s (Debian's package `testssl.sh`, installed by Scripts/bootstrap);
`make testssl` runs testssl's full default scan instead (1-1.5 min).
"""

import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import HarnessError, cachet_bin, free_port, wait_for
from tlstools import LocalhostTLSCase, localhost_cert, localhost_client_ctx


CERT_DIR = None   # scratch directory of this module
CERT = KEY = None  # the self-signed localhost certificate (tlstools.localhost_cert)


def setUpModule():
    global CERT_DIR, CERT, KEY
    CERT, KEY = localhost_cert()
    CERT_DIR = tempfile.mkdtemp(prefix="cachet-tlshard-")


def tearDownModule():
    if CERT_DIR:
        shutil.rmtree(CERT_DIR, ignore_errors=True)


TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")


PLAINTEXT_REPLY = b"SERVER_ERROR TLS required: this port only accepts TLS connections\r\n"


def startup_with(option, value):
    """(exit code, stderr) of `cachet -Z` started with `-o <option>=<value>` (a bad value stops it)."""
    r = subprocess.run([cachet_bin(), "-u", "root", "-U", "0", "-p", str(free_port()), "-Z",
                        "-o", f"ssl_chain_cert={CERT},ssl_key={KEY},{option}={value}"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return r.returncode, r.stderr


class InWorkers:
    """Mixin: the same tests with `-o ssl_handshake_threads=0` (each worker runs its own handshakes; by
    default a handshake thread does)."""

    def start(self, opts=(), extra=(), **kw):
        return super().start(["ssl_handshake_threads=0", *opts], extra=extra, **kw)


class SecureDefaults(LocalhostTLSCase):
    def test_testssl_reports_nothing_but_the_test_certificate(self):
        """testssl.sh: no finding rated LOW or worse, except the ones about the self-signed, short-lived test
        certificate (and the DNS CAA record of its name). make test runs every check that rates anything
        (protocols, cipher categories, forward secrecy, server preferences, server defaults, vulnerabilities:
        about half the time of the default scan); the client simulations and the per-cipher listing it
        leaves out only inform. CACHET_TESTSSL_FULL=1 (make testssl) runs testssl's default scan."""
        self.assertIsNotNone(TESTSSL, "testssl.sh is not installed (Scripts/bootstrap installs it)")
        s = self.start()
        out = os.path.join(CERT_DIR, "testssl.json")
        full = os.environ.get("CACHET_TESTSSL_FULL") == "1"
        checks = [] if full else ["-p", "-s", "-f", "-P", "-S", "-U"]
        t0 = time.monotonic()
        r = subprocess.run([TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "--jsonfile", out, *checks,
                            f"127.0.0.1:{s.tls_port}"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
        elapsed = time.monotonic() - t0
        with open(out) as f:
            findings = json.load(f)
        ids = {f["id"] for f in findings}
        # The scan really ran against the TLS port (an aborted scan has none of these).
        for must in ("cipher_order", "LUCKY13", "secure_client_renego", "TLS_session_ticket", "cipherlist_AVERAGE"):
            self.assertIn(must, ids, f"testssl did not report {must}; output:\n{r.stdout.decode(errors='replace')[-3000:]}")
        bad = [f"{f['severity']} {f['id']}: {f['finding']}" for f in findings
               if f["severity"] in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
               and not (f["id"].startswith("cert") or f["id"] == "DNS_CAArecord")]
        self.assertEqual(bad, [], f"testssl findings (scan took {elapsed:.0f} s)")
        byid = {f["id"]: f for f in findings}
        self.assertEqual(byid["cipher_order"]["severity"], "OK", byid["cipher_order"])
        self.assertEqual(byid["LUCKY13"]["severity"], "OK", byid["LUCKY13"])
        print(f"\n[testssl{' full' if full else ''}] {len(findings)} findings, none LOW or worse apart from the "
              f"test certificate; scan took {elapsed:.0f} s")

    def test_tls12_offers_only_ecdhe_aead_in_the_servers_order(self):
        s = self.start()
        # CBC and static-RSA ciphers are refused.
        for weak in ("ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256", "AES256-SHA256", "DHE-RSA-AES128-GCM-SHA256"):
            with self.subTest(weak):
                with self.assertRaises(ssl.SSLError):
                    s.tls(localhost_client_ctx("1.2", weak)).close()
        # AEAD with ECDHE works; with several on offer, the server's preference wins over the client's order.
        with s.tls(localhost_client_ctx("1.2", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305")) as c:
            self.assertEqual(c.sock.cipher()[0], "ECDHE-RSA-CHACHA20-POLY1305")
            self.assertEqual(c.cmd("version")[:8], b"VERSION ")
        with s.tls(localhost_client_ctx("1.2", "ECDHE-RSA-AES128-GCM-SHA256")) as c:
            self.assertEqual(c.sock.cipher()[0], "ECDHE-RSA-AES128-GCM-SHA256")
        with s.tls(localhost_client_ctx()) as c:
            self.assertEqual(c.sock.version(), "TLSv1.3")
        # `stats settings` still shows memcached's NULL: no list was given.
        self.assertEqual(s.stats_dict("settings")["ssl_ciphers"], "NULL")

    def test_ssl_ciphers_overrides_the_default(self):
        s = self.start(["ssl_ciphers=DEFAULT"])
        with s.tls(localhost_client_ctx("1.2", "ECDHE-RSA-AES128-SHA")) as c:
            self.assertEqual(c.sock.cipher()[0], "ECDHE-RSA-AES128-SHA")
            self.assertEqual(c.cmd("version")[:8], b"VERSION ")

    def test_ticket_lifetime_at_most_a_day(self):
        s = self.start()
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.tls_port}", "-tls1_2"],
                           input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        text = r.stdout.decode(errors="replace")
        hint = [ln for ln in text.splitlines() if "lifetime hint" in ln]
        self.assertTrue(hint, text[-2000:])
        seconds = int(hint[0].split(":")[1].split()[0])
        self.assertGreater(seconds, 0)
        self.assertLessEqual(seconds, 86400)
        self.assertIn("Compression: NONE", text)


class HandshakeTimeout(LocalhostTLSCase):
    def test_stalled_handshakes_are_closed_and_counted(self):
        s = self.start(["ssl_handshake_timeout=1"])
        self.assertEqual(s.stats_dict("settings")["ssl_handshake_timeout"], "1")
        errors0 = s.stat_int("ssl_handshake_errors")
        # An established connection made before the stall must survive it (it finished its handshake).
        good = s.tls(localhost_client_ctx())
        self.addCleanup(good.close)
        silent = s.raw()                                  # never sends a byte
        partial = s.raw()
        partial.send(b"\x16\x03\x01\x02\x00\x01\x00\x01")   # the start of a ClientHello, then nothing
        self.addCleanup(silent.close)
        self.addCleanup(partial.close)
        t0 = time.monotonic()
        for c in (silent, partial):
            try:
                got = c.read_until_eof(timeout=10)
            except HarnessError as e:
                raise AssertionError(f"stalled handshake not closed within 10 s: {e}") from None
            self.assertEqual(got, b"")
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.9, "closed before the timeout")
        self.assertLess(elapsed, 4.0, "a 1 s handshake timeout took too long")
        wait_for(lambda: s.stat_int("ssl_handshake_timeouts") == 2, timeout=5, what="ssl_handshake_timeouts == 2")
        self.assertEqual(s.stat_int("ssl_handshake_errors"), errors0, "a timeout is not a handshake error")
        self.assertEqual(good.cmd("version")[:8], b"VERSION ")

    def test_many_stalled_handshakes_do_not_starve_others(self):
        s = self.start(["ssl_handshake_timeout=2"], extra=["-c", "4096"])
        conns0 = int(s.stats_dict()["curr_connections"])
        stalled = [s.raw() for _ in range(300)]
        wait_for(lambda: int(s.stats_dict()["curr_connections"]) >= conns0 + 299, timeout=5,
                 what="300 stalled connections accepted")
        self.addCleanup(lambda: [c.close() for c in stalled])
        for c in stalled[::2]:
            c.send(b"\x16\x03\x01")
        for _ in range(5):    # new clients are served while 300 handshakes hang
            with s.tls(localhost_client_ctx()) as c:
                self.assertEqual(c.cmd("version")[:8], b"VERSION ")
        wait_for(lambda: s.stat_int("ssl_handshake_timeouts") == 300, timeout=10,
                 what="ssl_handshake_timeouts == 300")
        for c in stalled[:20]:
            self.assertEqual(c.read_until_eof(timeout=5), b"")
        # (the baseline may still include the harness's readiness probe, hence <=)
        wait_for(lambda: int(s.stats_dict()["curr_connections"]) <= conns0, timeout=5,
                 what=f"curr_connections back to {conns0}")
        self.assertTrue(s.srv.alive())

    def test_zero_means_no_limit(self):
        s = self.start(["ssl_handshake_timeout=0"])
        self.assertEqual(s.stats_dict("settings")["ssl_handshake_timeout"], "0")
        silent = s.raw()
        self.addCleanup(silent.close)
        # Absence of a close over 2.5 s (what a 1 s limit would have done twice over).
        with self.assertRaises(HarnessError):
            silent.read_until_eof(timeout=2.5)
        self.assertEqual(s.stat_int("ssl_handshake_timeouts"), 0)

    def test_default_is_ten_seconds(self):
        s = self.start()
        self.assertEqual(s.stats_dict("settings")["ssl_handshake_timeout"], "10")
        self.assertEqual(s.stat_int("ssl_handshake_timeouts"), 0)

    def test_bad_values_stop_startup(self):
        for value in ("", "-1", "ten", "5s"):
            self.assertEqual(startup_with("ssl_handshake_timeout", value),
                             (1, b"could not parse argument to ssl_handshake_timeout\n"), value)


class PlaintextOnTLSPort(LocalhostTLSCase):
    def test_plaintext_and_http_get_one_line_and_nothing_runs(self):
        s = self.start()
        errors0 = s.stat_int("ssl_handshake_errors")
        with s.plain() as w:
            w.send(b"watch connevents\r\n")
            # The watch's first reply; an event may follow in the same read (the close of the connection
            # that read the stats just before), so read exactly its bytes, not up to a buffer ending in OK.
            self.assertEqual(w.read_exact(4), b"OK\r\n")
            requests = [b"set planted 0 0 1\r\nx\r\n", b"version\r\n", b"get planted\r\n",
                        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", b"flush_all\r\n", b"\r\n"]
            for req in requests:
                with s.raw() as c:
                    c.send(req)
                    self.assertEqual(c.read_until_eof(timeout=5), PLAINTEXT_REPLY, req)
            deadline = time.monotonic() + 5
            while w.buf.count(b"msg=client sent plaintext on a TLS port") < len(requests):
                chunk = w._recv("conntlserr lines", deadline)
                self.assertTrue(chunk, "watcher closed")
                w.buf += chunk
            self.assertIn(b"type=conntlserr", w.buf)
        with s.plain() as c:
            self.assertEqual(c.cmd("get planted"), b"END\r\n")   # the set never ran
        st = s.stats_dict()
        self.assertEqual(int(st["ssl_plaintext_rejected"]), len(requests))
        self.assertEqual(int(st["ssl_handshake_errors"]), errors0 + len(requests))
        self.assertEqual(int(st["cmd_set"]), 0)
        with s.tls(localhost_client_ctx()) as c:     # TLS clients are unaffected
            self.assertEqual(c.cmd("version")[:8], b"VERSION ")

    def test_sslv2_hello_and_bad_records_are_tls_failures_not_plaintext(self):
        s = self.start()
        errors0 = s.stat_int("ssl_handshake_errors")
        # An SSLv2-compatible ClientHello (top bit of the first byte set), a ClientHello record with a
        # garbage body, and an alert record: OpenSSL's to reject, never answered in plaintext.
        sslv2 = bytes([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]) + \
            bytes([0x00, 0x00, 0x2f] * 7) + bytes(16)
        for hello in (sslv2, b"\x16\x03\x01\x00\x05garba", b"\x15\x03\x03\x00\x02\x02\x28"):
            with self.subTest(hello[:3]):
                with s.raw() as c:
                    c.send(hello)
                    got = c.read_until_eof(timeout=5)
                    self.assertNotIn(b"SERVER_ERROR", got)
        wait_for(lambda: s.stat_int("ssl_handshake_errors") == errors0 + 3, timeout=5,
                 what="three failed handshakes")
        self.assertEqual(s.stat_int("ssl_plaintext_rejected"), 0)
        self.assertTrue(s.srv.alive())

    def test_client_that_sends_nothing_and_closes_is_not_plaintext(self):
        s = self.start()
        errors0 = s.stat_int("ssl_handshake_errors")
        s.raw().close()
        wait_for(lambda: s.stat_int("ssl_handshake_errors") == errors0 + 1, timeout=5,
                 what="the empty connection counted as a failed handshake")
        self.assertEqual(s.stat_int("ssl_plaintext_rejected"), 0)


class HandshakeShare(InWorkers, LocalhostTLSCase):
    """`-o ssl_handshake_share` with `ssl_handshake_threads=0`: while a worker serves an established client, new
    handshakes get only their share of its time — put off, never refused. (Throughput under a storm is
    measured by make bench.)"""

    def test_handshakes_wait_for_their_share_and_all_complete(self):
        s = self.start(["ssl_handshake_share=1"], extra=["-t", "1"])
        self.assertEqual(s.stats_dict("settings")["ssl_handshake_share"], "1")
        busy = s.tls(localhost_client_ctx())
        self.addCleanup(busy.close)
        stop = threading.Event()
        served = [0]

        def pipeline():   # keeps the only worker busy with an established connection
            req = b"get k\r\n" * 16
            while not stop.is_set():
                busy.send(req + b"mn\r\n")
                busy.read_until(b"MN\r\n", timeout=10)
                served[0] += 16
        t = threading.Thread(target=pipeline, daemon=True)
        t.start()
        self.addCleanup(lambda: (stop.set(), t.join(timeout=15)))
        wait_for(lambda: served[0] > 0, timeout=5, what="the established client served")
        d0, h0 = s.stat_int("ssl_handshakes_deferred"), s.stat_int("ssl_handshakes")
        t0 = time.monotonic()
        for _ in range(20):
            with s.tls(localhost_client_ctx()) as c:
                self.assertEqual(c.cmd("version")[:8], b"VERSION ")
        elapsed = time.monotonic() - t0
        self.assertGreater(s.stat_int("ssl_handshakes_deferred"), d0, "no handshake was put off")
        self.assertEqual(s.stat_int("ssl_handshakes"), h0 + 20)
        self.assertLess(elapsed, 20, "handshakes starved")
        before = served[0]
        wait_for(lambda: served[0] > before, timeout=5, what="the established client still served")

    def test_a_storm_on_its_own_is_never_held_back(self):
        """Connections that make a request and go are not busy: with nobody busy to protect, every
        ClientHello is answered at once, however small the share."""
        s = self.start(["ssl_handshake_share=1"], extra=["-t", "1"])
        for _ in range(30):
            with s.tls(localhost_client_ctx()) as c:
                self.assertEqual(c.cmd("set k 0 0 1\r\nv"), b"STORED\r\n")
                self.assertEqual(c.cmd("get k"), b"VALUE k 0 1\r\nv\r\nEND\r\n")
        self.assertEqual(s.stat_int("ssl_handshakes"), 30)
        self.assertEqual(s.stat_int("ssl_handshakes_deferred"), 0)

    def test_bad_values_stop_startup(self):
        for value, err in (("0", b"Invalid ssl_handshake_share. Use help to see valid options.\n"),
                           ("101", b"Invalid ssl_handshake_share. Use help to see valid options.\n"),
                           ("x", b"could not parse argument to ssl_handshake_share\n")):
            self.assertEqual(startup_with("ssl_handshake_share", value), (1, err), value)


class HandshakeTimeoutInWorkers(InWorkers, HandshakeTimeout):
    pass


class PlaintextOnTLSPortInWorkers(InWorkers, PlaintextOnTLSPort):
    pass


class HandshakeThreads(LocalhostTLSCase):
    """`-o ssl_handshake_threads`: a handshake thread runs each TLS handshake, then the connection moves to
    its worker with its OpenSSL session and its `stats conns` record."""

    def test_connections_move_to_their_workers_after_the_handshake(self):
        s = self.start(["ssl_handshake_threads=2"], extra=["-t", "2"])
        st = s.stats_dict("settings")
        self.assertEqual((st["ssl_handshake_threads"], st["num_threads"]), ("2", "2"))
        conns0 = int(s.stats_dict()["curr_connections"])
        clients = [s.tls(localhost_client_ctx(v)) for v in ("1.2", None) * 4]
        for c in clients:
            self.addCleanup(c.close)
        for i, c in enumerate(clients):
            self.assertEqual(c.cmd(f"set k{i} 0 0 1\r\n{i}"), b"STORED\r\n")
        for i, c in enumerate(clients):   # every connection reads what the others wrote: one store
            j = (i + 1) % len(clients)
            self.assertEqual(c.cmd(f"get k{j}"), f"VALUE k{j} 0 1\r\n{j}\r\nEND\r\n".encode())
        self.assertEqual(s.stat_int("ssl_handshakes"), len(clients))
        # Each moved connection keeps its `stats conns` record, TLS lines included.
        with s.plain() as p:
            conns = p.cmd("stats conns").decode()
        self.assertEqual(conns.count(":tls_version TLSv1.2"), 4, conns)
        self.assertEqual(conns.count(":tls_version TLSv1.3"), 4, conns)
        for c in clients:
            c.close()
        # (the baseline may still include the harness's readiness probe, hence <=)
        wait_for(lambda: int(s.stats_dict()["curr_connections"]) <= conns0, timeout=5,
                 what=f"curr_connections back to {conns0}")
        with s.plain() as p:
            self.assertNotIn(":tls_version", p.cmd("stats conns").decode())

    def test_one_per_four_workers_at_the_share_s_weight(self):
        """By default one handshake thread per four workers; ssl_handshake_share (default 40) becomes the
        thread's nice value against the workers': 40 % is nice +2, 25 % is +5, 50 % leaves it level."""
        def nices(s):
            out = []
            for tid in os.listdir(f"/proc/{s.pid}/task"):
                with open(f"/proc/{s.pid}/task/{tid}/stat") as f:
                    out.append(int(f.read().rsplit(")", 1)[1].split()[16]))
            return out
        for threads, share, want_count, want_step in ((8, None, 2, 2), (4, 25, 1, 5), (2, 50, 1, 0)):
            with self.subTest(threads=threads, share=share):
                s = self.start([f"ssl_handshake_share={share}"] if share else [], extra=["-t", str(threads)])
                st = s.stats_dict("settings")
                self.assertEqual((st["ssl_handshake_threads"], st["ssl_handshake_share"]),
                                 (str(want_count), str(share or 40)))
                base = os.getpriority(os.PRIO_PROCESS, s.pid)
                # Each thread sets its weight as it starts: one TLS client per thread (round robin) makes sure
                # every one of them has run.
                for _ in range(want_count):
                    with s.tls(localhost_client_ctx()) as c:
                        self.assertEqual(c.cmd("version")[:8], b"VERSION ")
                got = nices(s)
                if want_step:
                    self.assertEqual(got.count(base + want_step), want_count, got)
                self.assertEqual(got.count(base), len(got) - (want_count if want_step else 0), got)
                s.stop()

    def test_one_new_and_one_close_event_per_connection(self):
        s = self.start(["ssl_handshake_threads=1"])

        def ports(kind):
            return [re.search(r" rport=(\d+) ", ln).group(1) for ln in w.buf.decode().splitlines() if f"type={kind} " in ln]

        with s.plain() as w:
            w.send(b"watch connevents\r\n")
            self.assertEqual(w.read_exact(4), b"OK\r\n")
            for _ in range(3):
                with s.tls(localhost_client_ctx()) as c:
                    self.assertEqual(c.cmd("version")[:8], b"VERSION ")
            with s.plain() as c:   # a marker after the TLS clients: its events come after all of theirs
                c.cmd("version")
            deadline = time.monotonic() + 5
            while len(ports("conn_new")) < 4 or not set(ports("conn_new")) <= set(ports("conn_close")):
                chunk = w._recv("every connection's conn_close", deadline)
                self.assertTrue(chunk, "watcher closed")
                w.buf += chunk
        # (the watch may begin with the events of the connection that read stats just before the watcher's)
        news, closes = ports("conn_new"), ports("conn_close")
        self.assertIn(len(news), (4, 5), w.buf)
        for port in news:
            self.assertEqual(closes.count(port), 1, w.buf)

    def test_sessions_resume_through_the_handshake_thread(self):
        s = self.start(["ssl_handshake_threads=1"])
        for version in ("1.2", None):
            ctx = localhost_client_ctx(version)
            with s.tls(ctx) as c:
                self.assertEqual(c.cmd("version")[:8], b"VERSION ")
                session = c.sock.session
            resumed0 = s.stat_int("ssl_resumed_handshakes")
            with s.tls(ctx, session=session) as c:
                self.assertEqual(c.cmd("version")[:8], b"VERSION ")
                self.assertTrue(c.sock.session_reused, version)
            self.assertEqual(s.stat_int("ssl_resumed_handshakes"), resumed0 + 1)

    def test_bad_values_stop_startup(self):
        for value, err in (("65", b"Invalid ssl_handshake_threads. Use help to see valid options.\n"),
                           ("x", b"could not parse argument to ssl_handshake_threads\n"),
                           ("-1", b"could not parse argument to ssl_handshake_threads\n")):
            self.assertEqual(startup_with("ssl_handshake_threads", value), (1, err), value)


if __name__ == "__main__":
    unittest.main()
