"""TLS certificate reloads: `refresh_certs` replies for success and each kind of broken file set,
byte-compared with memcached 1.6.18 -Z; and, Cachet only, 20 reloads (refresh_certs and SIGHUP, good and
broken files) while 50 TLS clients work and new handshakes probe which certificate is served.

Servers as in test_tls_memory.py: a TLS and a `notls:` listener each, control traffic on the plaintext one.
"""

import os
import signal
import threading
import time
import unittest

from harness import cachet_bin, wait_for
from tlscerts import LiveFiles
from tlstools import TLSServer, CachetTLSCase, many_servers_module_setup, peer_ou, print_report
from difftools import Pair


CERTS = None
REPORT = {}   # measurements printed at the end, not asserted


def setUpModule():
    global CERTS
    CERTS = many_servers_module_setup()


def tearDownModule():
    print_report(__name__, REPORT)


class TLSRefreshDiff(unittest.TestCase):
    """refresh_certs replies for success and each failure (files swapped on disk between calls);
    both servers share the same files so the paths in the replies are equal."""

    def test_refresh_replies(self):
        live = LiveFiles(CERTS, "refresh")
        p = Pair(live=live, opts=["ssl_ca_cert=" + live.ca]).start()
        self.addCleanup(p.stop)
        c = CERTS
        # (label, files to install before the call, request)
        seq = [
            ("ok", {}, b"refresh_certs\r\n"),
            ("ok noreply", {}, b"refresh_certs noreply\r\n"),
            ("ok extra token", {}, b"refresh_certs foo\r\n"),
            ("new good pair", {"chain": c.server2_crt, "key": c.server2_key}, b"refresh_certs\r\n"),
            ("key missing", {"key": None}, b"refresh_certs\r\n"),
            ("key missing noreply", {}, b"refresh_certs noreply\r\n"),
            ("garbage key", {"key": c.garbage_key}, b"refresh_certs\r\n"),
            ("cert missing", {"chain": None, "key": c.server2_key}, b"refresh_certs\r\n"),
            ("cert garbage", {"chain": c.garbage_key}, b"refresh_certs\r\n"),
            ("restore", {"chain": c.server1_crt, "key": c.server1_key}, b"refresh_certs\r\n"),
            ("ca missing", {"ca": None}, b"refresh_certs\r\n"),
            ("ca restored", {"ca": c.ca_crt}, b"refresh_certs\r\n"),
            ("key mismatch", {"chain": c.server2_crt}, b"refresh_certs\r\n"),
            ("restore again", {"chain": c.server1_crt, "key": c.server1_key}, b"refresh_certs\r\n"),
        ]
        conns = {s.name: s.plain() for s in p.both()}
        self.addCleanup(lambda: [x.close() for x in conns.values()])
        tlsconn = {s.name: s.tls() for s in p.both()}
        self.addCleanup(lambda: [x.close() for x in tlsconn.values()])
        results = []
        for label, files, req in seq:
            live.install(**files)
            got = {}
            for s in p.both():
                got[s.name] = conns[s.name].roundtrip(req)
            results.append((label, got["memcached"], got["cachet"]))
        # also over a TLS connection (refresh_certs is allowed on any connection)
        for s in p.both():
            tlsconn[s.name].buf = b""
        tl = {s.name: tlsconn[s.name].roundtrip(b"refresh_certs\r\n") for s in p.both()}
        results.append(("over tls", tl["memcached"], tl["cachet"]))
        oracle = {lab: a for lab, a, _ in results}
        self.assertEqual(oracle["ok"], b"OK\r\n")
        self.assertEqual(oracle["ok noreply"], b"")
        self.assertEqual(oracle["key missing"],
                         f"Error loading the key: {live.key} : error:80000002:system library::"
                         f"No such file or directory\r\n".encode())
        self.assertTrue(oracle["key mismatch"].endswith(b"key values mismatch\r\n"), oracle["key mismatch"])
        diffs = [f"[{lab}] memcached {a!r} cachet {b!r}" for lab, a, b in results if a != b]
        self.assertEqual(diffs, [], "refresh_certs replies differ:\n" + "\n".join(diffs))


class CachetReloadUnderLoad(CachetTLSCase):
    def test_reload_under_load(self):
        live = LiveFiles(CERTS, "load")
        s = TLSServer(cachet_bin(), live, extra=["-c", "1024"], name="cachet").start()
        self.addCleanup(s.stop)
        stop = threading.Event()
        errors, ops, hs = [], [0] * 50, {"n": 0, "bad": []}

        def worker(i):
            try:
                c = s.tls()
            except Exception as e:  # noqa: BLE001
                errors.append(f"worker {i} connect: {e!r}")
                return
            try:
                n = 0
                while not stop.is_set():
                    v = b"%d-%d" % (i, n)
                    r = c.cmd(b"set key%d 0 0 %d\r\n" % (i, len(v)) + v)
                    if r != b"STORED\r\n":
                        errors.append(f"worker {i} set: {r!r}")
                        return
                    r = c.cmd(b"get key%d" % i)
                    if r != b"VALUE key%d 0 %d\r\n" % (i, len(v)) + v + b"\r\nEND\r\n":
                        errors.append(f"worker {i} get: {r!r}")
                        return
                    n += 1
                    ops[i] = n
            except Exception as e:  # noqa: BLE001
                errors.append(f"worker {i}: {e!r}")
            finally:
                c.close()

        probes = []  # (start, end, OU) of every prober handshake

        def prober():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    with s.tls() as c:
                        ou = peer_ou(c)
                        if c.cmd("version")[:8] != b"VERSION ":
                            hs["bad"].append("no VERSION")
                    probes.append((t0, time.monotonic(), ou))
                    hs["n"] += 1
                except Exception as e:  # noqa: BLE001
                    hs["bad"].append(repr(e))

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(50)]
        threads.append(threading.Thread(target=prober, daemon=True))
        for t in threads:
            t.start()
        wait_for(lambda: all(o > 0 for o in ops) or errors, timeout=20, what="all 50 workers running")
        fails0 = s.stat_int("ssl_cert_reload_failures")
        last_good, log = "first", []
        # windows in which the served certificate is known: from the confirmation of a good reload
        # (or the start) until the next good file set is triggered; broken reloads fall inside them
        windows, win_start = [], 0.0
        try:
            for i in range(20):
                trigger = "refresh" if (i // 2) % 2 == 0 else "sighup"
                if i % 2 == 0:
                    windows.append((win_start, time.monotonic(), last_good))
                    n = 2 if last_good == "first" else 1
                    live.good(n)
                    want = "first" if n == 1 else "second"
                else:
                    kind = ("mismatch", "garbage", "missing")[(i // 2) % 3]
                    other = CERTS.server2_crt if last_good == "first" else CERTS.server1_crt
                    if kind == "mismatch":
                        live.install(chain=other)
                    elif kind == "garbage":
                        live.install(key=CERTS.garbage_key)
                    else:
                        live.install(key=None)
                    want = last_good
                f_before = s.stat_int("ssl_cert_reload_failures")
                if trigger == "refresh":
                    r = s.refresh()
                    self.assertEqual(r == b"OK\r\n", i % 2 == 0, f"step {i}: {r!r}")
                elif i % 2 == 0:
                    os.kill(s.pid, signal.SIGHUP)
                    self.poll_ou(s, want)
                else:
                    os.kill(s.pid, signal.SIGHUP)
                    wait_for(lambda: s.stat_int("ssl_cert_reload_failures") == f_before + 1, timeout=5,
                             what=f"step {i}: reload failure counted after SIGHUP")
                with s.tls() as c:
                    got = peer_ou(c)
                log.append((i, trigger, want, got))
                self.assertEqual(got, want, f"step {i} ({trigger}): new handshake presented {got}")
                if i % 2 == 0:
                    win_start = time.monotonic()
                last_good = want
            windows.append((win_start, time.monotonic(), last_good))
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertEqual(errors, [], f"{len(errors)} failed requests on existing connections")
        self.assertEqual(hs["bad"], [], f"new handshakes failed/odd during reloads ({hs['n']} ok)")
        wrong = [(round(t0, 3), ou, w_ou) for t0, t1, ou in probes for w0, w1, w_ou in windows
                 if w0 <= t0 and t1 <= w1 and ou != w_ou]
        checked = sum(1 for t0, t1, _ in probes for w0, w1, _ in windows if w0 <= t0 and t1 <= w1)
        self.assertEqual(wrong, [], "probe handshakes presented a certificate other than the last good one")
        self.assertGreater(checked, 20, "too few probe handshakes fell inside known-certificate windows")
        self.assertEqual(s.stat_int("ssl_cert_reload_failures"), fails0 + 10)
        self.assertGreater(min(ops), 20)
        REPORT["reload_under_load"] = (f"{sum(ops)} get/set pairs, {hs['n']} probe handshakes "
                                       f"({checked} inside known-certificate windows)")


if __name__ == "__main__":
    unittest.main()
