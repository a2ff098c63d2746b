"""TLS differential: the `stats settings` TLS block for every ssl_* option (and without -Z), the TLS
`stats` lines, the negotiated versions and ciphers, `ssl_verify_mode` 0-3 and `ssl_min_version`, and
every TLS start-up error (last stderr line and exit code) — cachet -Z against memcached 1.6.18 -Z.

Each server gets a TLS listener and a `notls:` listener (tlstools.TLSServer); the readiness probe and
all `stats`/`refresh_certs` control traffic use the plaintext one, so they never count as failed
handshakes. Certificates: tlscerts.shared(), made with the `openssl` CLI when the module starts.
"""

import ssl
import unittest

import tlscerts
from harness import (Server, cachet_bin, memcached_bin, free_port, raise_nofile, run_startup,
                     CACHET_EXTRA_STATS)
from tlscerts import LiveFiles
from tlstools import client_ctx, tls_connect, outcome
from difftools import Pair


CERTS = None


def setUpModule():
    global CERTS
    CERTS = tlscerts.shared()
    raise_nofile(8192, required=False)


# ssl_proto_errors exists only in memcached ≥ 1.6.30 (HEAD); the 1.6.18 oracle lacks it.
IGNORED_STATS = set(CACHET_EXTRA_STATS) | {"ssl_proto_errors"}


def settings_block(pairs):
    """The TLS block of `stats settings` plus its neighbours (position check)."""
    names = [n for n, _ in pairs if n not in IGNORED_STATS]
    vals = dict(pairs)
    i = names.index("ssl_enabled") if "ssl_enabled" in names else -1
    j = names.index("ssl_min_version") if "ssl_min_version" in names else -1
    before = names[i - 1] if i > 0 else None
    after = names[j + 1] if 0 <= j < len(names) - 1 else None
    return {"before": before, "after": after,
            "block": [(n, vals[n]) for n in names[i:j + 1]] if i >= 0 and j >= i else None}


def stats_tls_view(pairs):
    """Names of the TLS `stats` lines (minus Cachet-only/HEAD-only ones) with their neighbours."""
    names = [n for n, _ in pairs if n not in IGNORED_STATS]
    idx = [k for k, n in enumerate(names) if n.startswith("ssl_") or n == "time_since_server_cert_refresh"]
    if not idx:
        return {"tls": [], "before": None, "after": None}
    return {"tls": [names[k] for k in idx],
            "contiguous": idx == list(range(idx[0], idx[-1] + 1)),
            "before": names[idx[0] - 1] if idx[0] > 0 else None,
            "after": names[idx[-1] + 1] if idx[-1] + 1 < len(names) else None}


class TLSStatsDiff(unittest.TestCase):
    def setUp(self):
        self.live = LiveFiles(CERTS, "stats")

    def start_pair(self, opts=(), extra=()):
        p = Pair(extra, live=self.live, opts=opts).start()
        self.addCleanup(p.stop)
        return p

    def test_settings_block_default(self):
        p = self.start_pair()
        a, b = (settings_block(s.stats("settings")) for s in p.both())
        self.assertEqual(a["block"], [("ssl_enabled", "yes"), ("ssl_chain_cert", self.live.chain),
                                      ("ssl_key", self.live.key), ("ssl_verify_mode", "0"),
                                      ("ssl_keyformat", "1"), ("ssl_ciphers", "NULL"), ("ssl_ca_cert", "NULL"),
                                      ("ssl_wbuf_size", "16384"), ("ssl_session_cache", "no"),
                                      ("ssl_kernel_tls", "no"), ("ssl_min_version", "tlsv1.2")])
        self.assertEqual(a, b)

    def test_settings_block_all_options(self):
        p = self.start_pair(["ssl_ca_cert=" + self.live.ca, "ssl_verify_mode=1", "ssl_keyformat=1",
                             "ssl_ciphers=ECDHE-RSA-AES128-GCM-SHA256", "ssl_wbuf_size=64",
                             "ssl_session_cache", "ssl_kernel_tls", "ssl_min_version=3"])
        a, b = (settings_block(s.stats("settings")) for s in p.both())
        self.assertIn(("ssl_wbuf_size", "65536"), a["block"])
        self.assertIn(("ssl_kernel_tls", "yes"), a["block"])
        self.assertEqual(a, b)
        for s in p.both():  # and the server still serves TLS 1.3 with these settings
            self.assertEqual(outcome(s.tls_port, client_ctx("1.3")), "ok", s.name)

    def test_ciphers_and_negotiated_versions(self):
        # ssl_ciphers affects TLS <= 1.2 only; TLS 1.3 by default
        p = self.start_pair(["ssl_ciphers=ECDHE-RSA-AES128-GCM-SHA256"])
        got = {}
        for s in p.both():
            res = []
            for version in (None, "1.2", "1.3"):
                with s.tls(client_ctx(version)) as c:
                    res.append((c.sock.version(), c.sock.cipher()[0]))
            got[s.name] = res
        self.assertEqual(got["memcached"][1], ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"))
        self.assertEqual(got["memcached"][0][0], "TLSv1.3")
        self.assertEqual(got["cachet"], got["memcached"])

    def test_settings_without_Z(self):
        # ssl_* options without -Z: accepted, shown with ssl_enabled no; refresh_certs not enabled
        args = ["-o", f"ssl_chain_cert={self.live.chain},ssl_key={self.live.key},ssl_verify_mode=2"]
        srvs = [Server(memcached_bin(), args, name="memcached").start()]
        self.addCleanup(srvs[0].stop)
        srvs.append(Server(cachet_bin(), args, name="cachet").start())
        self.addCleanup(srvs[1].stop)
        views, replies, stat_views = [], [], []
        for s in srvs:
            with s.connect() as c:
                views.append(settings_block(c.stats("settings")))
                replies.append((c.cmd("refresh_certs"), c.cmd("refresh_certs noreply")))
                stat_views.append(stats_tls_view(c.stats()))
        self.assertEqual(views[0]["block"][0], ("ssl_enabled", "no"))
        self.assertEqual(views[0], views[1])
        self.assertEqual(replies[0], (b"Error TLS not enabled\r\n",) * 2)
        self.assertEqual(replies[0], replies[1])
        self.assertEqual(stat_views[0]["tls"], [])
        self.assertEqual(stat_views[0], stat_views[1])

    def test_settings_plain_server(self):
        srvs = [Server(memcached_bin(), name="memcached").start()]
        self.addCleanup(srvs[0].stop)
        srvs.append(Server(cachet_bin(), name="cachet").start())
        self.addCleanup(srvs[1].stop)
        views, replies = [], []
        for s in srvs:
            with s.connect() as c:
                views.append(settings_block(c.stats("settings")))
                replies.append((c.cmd("refresh_certs"), c.cmd("refresh_certs noreply")))
        self.assertIn(("ssl_chain_cert", "(null)"), views[0]["block"])
        self.assertEqual(views[0], views[1])
        self.assertEqual(replies[0], (b"Error TLS not enabled\r\n",) * 2)
        self.assertEqual(replies[1], replies[0])

    def test_stats_lines(self):
        for opts, want in (((), ["ssl_handshake_errors", "time_since_server_cert_refresh"]),
                           (("ssl_session_cache",), ["ssl_new_sessions", "ssl_handshake_errors",
                                                     "time_since_server_cert_refresh"])):
            with self.subTest(opts=opts):
                p = self.start_pair(opts)
                a, b = (stats_tls_view(s.stats()) for s in p.both())
                self.assertEqual(a["tls"], want)
                self.assertEqual(a, b)

    def test_time_since_refresh_resets(self):
        p = self.start_pair()
        for s in p.both():
            with self.subTest(s.name):
                before = s.stat_int("time_since_server_cert_refresh")
                self.assertGreaterEqual(before, 0)
                self.assertEqual(s.refresh(), b"OK\r\n")
                after = s.stat_int("time_since_server_cert_refresh")
                self.assertLessEqual(after, min(before, 2), s.name)


class TLSStartupErrorsDiff(unittest.TestCase):
    """Spec A.3/A.2: final stderr line and exit code equal to memcached's for the same input."""

    def test_startup_errors(self):
        c = CERTS
        port = str(free_port())
        base = ["-u", "root", "-U", "0", "-p", port, "-l", "127.0.0.1"]
        crt, key = c.server1_crt, c.server1_key
        cases = [
            ("no cert/key", base + ["-Z"]),
            ("cert, no key", base + ["-Z", "-o", f"ssl_chain_cert={crt}"]),
            ("cert missing", base + ["-Z", "-o", f"ssl_chain_cert=/nonexist.pem,ssl_key={key}"]),
            ("key missing", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key=/nonexist"]),
            ("key mismatch", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={c.server2_key}"]),
            ("garbage key", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={c.garbage_key}"]),
            ("garbage cert", base + ["-Z", "-o", f"ssl_chain_cert={c.garbage_key},ssl_key={key}"]),
            ("ca missing", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key},ssl_ca_cert=/nonexist-ca"]),
            ("bad ciphers", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key},ssl_ciphers=BOGUS"]),
            ("verify 4", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key},ssl_verify_mode=4"]),
            ("verify abc", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key},ssl_verify_mode=abc"]),
            ("min version 4", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key},ssl_min_version=4"]),
            ("wbuf 16k", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key},ssl_wbuf_size=16k"]),
            ("wbuf -1", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key},ssl_wbuf_size=-1"]),
            ("keyformat x", base + ["-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key},ssl_keyformat=x1"]),
            ("missing chain arg", base + ["-Z", "-o", "ssl_chain_cert"]),
            ("missing key arg", base + ["-Z", "-o", "ssl_key"]),
            ("no tcp port", ["-u", "root", "-U", "0", "-p", "0", "-Z", "-o", f"ssl_chain_cert={crt},ssl_key={key}"]),
            ("notls without -Z", ["-u", "root", "-U", "0", "-p", port, "-l", f"notls:127.0.0.1:{port}"]),
        ]
        diffs = []
        for label, args in cases:
            a = run_startup(memcached_bin(), args)
            b = run_startup(cachet_bin(), args)
            self.assertNotEqual(a[0], "still running", f"oracle started for {label}: {a[2][-300:]!r}")
            if a[:2] != b[:2]:
                diffs.append(f"[{label}] memcached exit {a[0]} {a[1]!r}\n    cachet exit {b[0]} {b[1]!r}")
        self.assertEqual(diffs, [], "startup errors differ:\n  " + "\n  ".join(diffs))


class TLSVerifyDiff(unittest.TestCase):
    def test_verify_modes(self):
        live = LiveFiles(CERTS, "verify")
        expected_mask = {0: "0", 1: "1", 2: "3", 3: "7"}
        expected = {0: ("ok", "ok"), 1: ("ok", "ok"), 2: ("fail", "ok"), 3: ("fail", "ok")}
        for mode in range(4):
            with self.subTest(mode=mode):
                p = Pair(live=live, opts=["ssl_ca_cert=" + live.ca, f"ssl_verify_mode={mode}"]).start()
                try:
                    res = {}
                    for s in p.both():
                        masks = dict(s.stats("settings"))["ssl_verify_mode"]
                        outs = []
                        for version in ("1.3", "1.2"):
                            for cert in (False, True):
                                outs.append(outcome(s.tls_port, client_ctx(version, cert=cert)).split(":")[0])
                        res[s.name] = (masks, outs)
                    self.assertEqual(res["memcached"][0], expected_mask[mode])
                    e = expected[mode]
                    self.assertEqual(res["memcached"][1], [e[0], e[1], e[0], e[1]])
                    self.assertEqual(res["cachet"], res["memcached"])
                finally:
                    p.stop()

    def test_min_version_3(self):
        live = LiveFiles(CERTS, "minver")
        p = Pair(live=live, opts=["ssl_min_version=3"]).start()
        self.addCleanup(p.stop)
        for s in p.both():
            with self.subTest(s.name):
                with self.assertRaises(ssl.SSLError) as cm:
                    tls_connect(s.tls_port, client_ctx("1.2")).close()
                self.assertIn("PROTOCOL_VERSION", str(cm.exception).upper().replace(" ", "_"))
                self.assertEqual(outcome(s.tls_port, client_ctx("1.3")), "ok")
                self.assertEqual(dict(s.stats("settings"))["ssl_min_version"], "tlsv1.3")


if __name__ == "__main__":
    unittest.main()
