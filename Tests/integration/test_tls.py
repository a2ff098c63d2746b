"""TLS test layer: cachet -Z against memcached 1.6.18 -Z (the oracle) where 1.6.18
behaves the same, byte for byte; cachet alone where Cachet is deliberately better (atomic reload,
SIGHUP, reliable handshake-error counting, wbuf=0 rejected, btls:/mtls:).

Certificates are generated with the `openssl` CLI into a temp dir when the module starts
(tlscerts.py). Every server gets a TLS listener and a `notls:` listener; the harness's readiness
probe and all `stats`/`refresh_certs` control traffic use the plaintext one, so they never
count as failed handshakes.

    CACHET_BIN=.build-tlstests/release/cachet /usr/bin/python3 -m unittest -v test_tls   (cwd Tests/integration)
"""

import os
import random
import resource
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import unittest

from harness import (Server, Conn, HarnessError, cachet_bin, memcached_bin, free_port, parse_stats,
                     normalise_version, vmrss_kb, wait_for, CACHET_EXTRA_STATS, DEFAULT_TIMEOUT)
from tlscerts import TestCerts, LiveFiles

CERTS = None
# ssl_proto_errors exists only in memcached ≥ 1.6.30 (HEAD); the 1.6.18 oracle lacks it.
IGNORED_STATS = set(CACHET_EXTRA_STATS) | {"ssl_proto_errors"}
TLS_SETTINGS = ["ssl_enabled", "ssl_chain_cert", "ssl_key", "ssl_verify_mode", "ssl_keyformat",
                "ssl_ciphers", "ssl_ca_cert", "ssl_wbuf_size", "ssl_session_cache", "ssl_kernel_tls",
                "ssl_min_version"]
REPORT = {}


def setUpModule():
    global CERTS
    CERTS = TestCerts.create()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def tearDownModule():
    if REPORT:
        print("\n[test_tls report] " + "; ".join(f"{k}: {v}" for k, v in REPORT.items()))
    if CERTS is not None:
        CERTS.cleanup()


# -- clients ------------------------------------------------------------------------------------

def client_ctx(version=None, cert=False, verify=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.load_verify_locations(CERTS.ca_crt)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if cert:
        ctx.load_cert_chain(CERTS.client_crt, CERTS.client_key)
    return ctx


def tls_connect(port, ctx=None, session=None, timeout=DEFAULT_TIMEOUT, label="tls"):
    """TCP connect + complete TLS handshake; returns a harness Conn over the SSLSocket."""
    ctx = ctx or client_ctx()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s = ctx.wrap_socket(raw, session=session)
    except BaseException:
        raw.close()
        raise
    return Conn(s, timeout=timeout, label=label)


def peer_subject(conn):
    cert = conn.sock.getpeercert()
    return {k: v for rdn in cert["subject"] for (k, v) in rdn}


def peer_ou(conn):
    return peer_subject(conn).get("organizationalUnitName")


def outcome(port, ctx, req=b"version\r\n"):
    """'ok' if a TLS handshake and one request/reply succeed, else 'fail:<reason>'."""
    try:
        c = tls_connect(port, ctx, timeout=5)
    except (OSError, HarnessError) as e:
        return f"fail:handshake:{type(e).__name__}"
    try:
        c.send(req)
        r = c.read_until(b"\r\n")
        return "ok" if r.startswith(b"VERSION ") else f"fail:reply:{r!r}"
    except (OSError, HarnessError) as e:
        return f"fail:io:{type(e).__name__}"
    finally:
        c.close()


def stats_dict(conn, sub=""):
    return dict(conn.stats(sub))


# -- servers ------------------------------------------------------------------------------------

class TLSServer:
    """A server with `-Z`: TLS listener `tls_port`, plaintext `notls:` listener `plain_port`
    (+ optional extra listeners given as (prefix, port))."""

    def __init__(self, binary, live, opts=(), extra=(), listeners=(), name=None, tls=True):
        self.binary, self.live = binary, live
        self.name = name or os.path.basename(binary)
        self.tls_port, self.plain_port = free_port(), free_port()
        self.extra_ports = {p: free_port() for p in listeners}
        ls = [f"127.0.0.1:{self.tls_port}", f"notls:127.0.0.1:{self.plain_port}"]
        ls += [f"{p}:127.0.0.1:{port}" for p, port in self.extra_ports.items()]
        sslopt = ",".join([f"ssl_chain_cert={live.chain}", f"ssl_key={live.key}", *opts])
        args = ["-u", "root", "-U", "0", "-p", str(self.tls_port), "-l", ",".join(ls)]
        if tls:
            args.append("-Z")
        args += ["-o", sslopt, *extra]
        self.srv = Server(binary, args=args, port=self.plain_port, name=self.name)

    def start(self):
        self.srv.start()
        return self

    def stop(self):
        return self.srv.stop()

    @property
    def pid(self):
        return self.srv.pid

    def plain(self):
        return self.srv.connect()

    def tls(self, ctx=None, session=None, port=None):
        return tls_connect(port or self.tls_port, ctx, session=session, label=f"{self.name}/tls")

    def stats(self, sub=""):
        with self.plain() as c:
            return c.stats(sub)

    def stat(self, name):
        return dict(self.stats()).get(name)

    def stat_int(self, name):
        v = self.stat(name)
        if v is None:
            raise AssertionError(f"{self.name}: `stats` has no {name} line")
        return int(v)

    def refresh(self, noreply=False):
        with self.plain() as c:
            return c.cmd("refresh_certs noreply" if noreply else "refresh_certs")


class TLSPair:
    def __init__(self, live, opts=(), extra=()):
        self.oracle = TLSServer(memcached_bin(), live, opts, extra, name="memcached")
        self.cachet = TLSServer(cachet_bin(), live, opts, extra, name="cachet")

    def start(self):
        self.oracle.start()
        try:
            self.cachet.start()
        except Exception:
            self.oracle.stop()
            raise
        return self

    def stop(self):
        self.oracle.srv.terminate()
        self.cachet.srv.terminate()
        self.oracle.srv.wait_stopped()
        self.cachet.srv.wait_stopped()

    def both(self):
        return (self.oracle, self.cachet)


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


def run_startup(binary, args, timeout=5.0):
    """Run a server expected to fail at startup: (exit code or 'still running', last stderr line)."""
    p = subprocess.Popen([binary, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=5)
        rc = "still running"
    lines = [ln for ln in (err + out).replace(b"\r\n", b"\n").split(b"\n") if ln.strip()]
    return rc, (lines[-1].decode(errors="replace") if lines else ""), err


def _strip_cas(reply):
    """CAS values depend on each server's earlier traffic in the shared pair: compare them as a shape."""
    import re as _re
    return _re.sub(rb"( c| cas=)\d+", rb"\1<cas>", reply)


def s_client(port, version_flag, phases, timeout=10.0, extra=()):
    """`openssl s_client -quiet -no_ign_eof`: for each (data, expect_suffix) phase write `data` to
    its stdin and read its stdout until it ends with `expect_suffix` (bounded); then close stdin
    and wait for exit (bounded). Returns all stdout bytes."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version_flag, "-quiet",
            "-no_ign_eof", "-nocommands", "-CAfile", CERTS.ca_crt, "-verify_return_error", *extra]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    try:
        fd = p.stdout.fileno()
        for data, expect_suffix in phases:
            p.stdin.write(data)
            p.stdin.flush()
            deadline = time.monotonic() + timeout
            while not out.endswith(expect_suffix):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError(f"s_client {version_flag}: timeout; stdout so far {out[-300:]!r}")
                r, _, _ = select.select([fd], [], [], left)
                if not r:
                    continue
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    p.wait(2)
                    raise HarnessError(f"s_client {version_flag}: EOF after {out[-300:]!r}; "
                                       f"stderr {p.stderr.read()[-500:]!r}")
                out += chunk
        p.stdin.close()
        p.wait(timeout=5)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        for f in (p.stdout, p.stderr):
            f.close()
    return out


# -- the classic command suite (one connection; byte-compared between the two servers) ----------

BIG = bytes(random.Random(7).randrange(97, 123) for _ in range(1 << 20))


def command_steps():
    def cas_from_gets(prev):
        # the oracle's `gets c1` reply is prev[-1]: VALUE c1 0 1 <cas>
        cas = prev[-1].split(b"\r\n")[0].split(b" ")[4]
        return b"cas c1 0 0 1 " + cas + b"\r\nZ\r\n"
    return [
        b"set k1 5 0 3\r\nabc\r\n", b"get k1\r\n", b"add k1 0 0 1\r\nx\r\n", b"add k2 0 0 1\r\nx\r\n",
        b"replace k2 7 0 2\r\nyy\r\n", b"replace nope 0 0 1\r\nx\r\n", b"append k1 0 0 2\r\nde\r\n",
        b"prepend k1 0 0 2\r\n__\r\n", b"get k1 k2 missing\r\n", b"set c1 0 0 1\r\nA\r\n", b"gets c1\r\n",
        cas_from_gets, b"get c1\r\n", b"cas c1 0 0 1 1\r\nQ\r\n", b"cas nokey 0 0 1 1\r\nQ\r\n",
        b"set n 0 0 2\r\n10\r\n", b"incr n 5\r\n", b"decr n 100\r\n", b"incr nokey 1\r\n",
        b"incr k1 1\r\n", b"touch n 100\r\n", b"touch nokey 1\r\n", b"gat 0 n\r\n", b"gats 0 n k2\r\n",
        b"delete k2\r\n", b"delete k2\r\n", b"set q 0 0 1 noreply\r\nq\r\nget q\r\n",
        b"verbosity 1\r\n", b"version\r\n", b"bogus\r\n",
        # 1 MiB value: sent without a pipelined marker (memcached < 1.6.39 hangs when requests follow a
        # value that spans many TLS records in the same write: SSL_pending not checked; see
        # CachetTLSBetter.test_pipelined_after_big_value for Cachet)
        ("nomark", b"set big 0 0 %d\r\n" % len(BIG) + BIG + b"\r\n", b"\r\n"),
        ("nomark", b"get big\r\n", b"END\r\n"),
        # pipelined: many requests in one write
        b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a b\r\nincr a 5\r\ndelete b\r\nget a b\r\n"
        + b"".join(b"set p%d 0 0 3\r\nv%02d\r\n" % (i, i) for i in range(40))
        + b"get " + b" ".join(b"p%d" % i for i in range(40)) + b"\r\n",
        b"flush_all\r\n", b"get a\r\n",
    ]


def run_steps(conn, steps, oracle_replies=None):
    out = []
    for i, st in enumerate(steps):
        req = st(oracle_replies[:i] if oracle_replies is not None else out) if callable(st) else st
        try:
            if isinstance(req, tuple):  # ("nomark", request, reply suffix): no `mn` after it
                conn.send(req[1])
                out.append(conn.read_until(req[2], timeout=10))
                continue
            out.append(normalise_version(conn.roundtrip(req, timeout=10)))
        except (OSError, HarnessError) as e:
            out.append(f"<{type(e).__name__}: {e}>")
            break
    return out


def first_mismatch(steps, a, b):
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "<missing>"
        y = b[i] if i < len(b) else "<missing>"
        if x != y:
            st = steps[i] if i < len(steps) else b""
            req = "<callable>" if callable(st) else (st[1] if isinstance(st, tuple) else st)[:120]
            return f"step {i} request {req!r}:\n  memcached {str(x)[:300]}\n  cachet    {str(y)[:300]}"
    return None


# ================================================================================================
# Differential: cachet -Z vs memcached 1.6.18 -Z
# ================================================================================================

class TLSCommandsDiff(unittest.TestCase):
    """Every classic command over TLS 1.2 and 1.3 (Python ssl and openssl s_client), incl. a
    pipelined write and a 1 MiB value; byte-compared with memcached -Z."""

    @classmethod
    def setUpClass(cls):
        cls.live = LiveFiles(CERTS, "cmds")
        cls.pair = TLSPair(cls.live, extra=["-I", "2m"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.pair.stop()

    def compare_suite(self, version):
        steps = command_steps()
        with self.pair.oracle.tls(client_ctx(version)) as c:
            self.assertEqual(c.sock.version(), {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}[version])
            a = run_steps(c, steps)
        for r in a:
            self.assertIsInstance(r, bytes, f"oracle failed: {r}")
        with self.pair.cachet.tls(client_ctx(version)) as c:
            self.assertEqual(c.sock.version(), {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}[version])
            b = run_steps(c, steps, oracle_replies=a)
        self.assertIsNone(first_mismatch(steps, a, b))
        # sanity on the oracle's own answers so the comparison is not vacuous
        self.assertEqual(a[1], b"VALUE k1 5 3\r\nabc\r\nEND\r\n")
        self.assertEqual(a[31], b"VALUE big 0 %d\r\n" % len(BIG) + BIG + b"\r\nEND\r\n")

    def test_tls12_python(self):
        self.compare_suite("1.2")

    def test_tls13_python(self):
        self.compare_suite("1.3")

    def test_quit_closes(self):
        for srv in self.pair.both():
            with srv.tls() as c:
                c.send(b"version\r\nquit\r\n")
                got = c.read_until_eof()
                self.assertTrue(got.startswith(b"VERSION ") and got.endswith(b"\r\n"), f"{srv.name}: {got!r}")

    def test_s_client(self):
        script = [(b"set s1 0 0 5\r\nhello\r\nget s1\r\nincr s1 1\r\n"
                   b"set s2 0 0 2\r\n42\r\nincr s2 8\r\ngets s1 s2\r\ndelete s1\r\nget s1\r\nversion\r\nmn\r\n",
                   b"MN\r\n"),
                  # the 1 MiB value alone in its write (memcached < 1.6.39 hangs on requests pipelined after it)
                  (b"set sbig 0 0 %d\r\n" % len(BIG) + BIG + b"\r\n", b"STORED\r\n"),
                  (b"get sbig\r\n", b"END\r\n"), (b"mn\r\n", b"MN\r\n")]
        for flag in ("-tls1_2", "-tls1_3"):
            with self.subTest(flag):
                a = normalise_version(s_client(self.pair.oracle.tls_port, flag, script))
                b = normalise_version(s_client(self.pair.cachet.tls_port, flag, script))
                self.assertTrue(a.startswith(b"STORED\r\nVALUE s1 0 5\r\nhello\r\nEND\r\n"), a[:200])
                self.assertIn(b"VALUE sbig 0 %d\r\n" % len(BIG) + BIG + b"\r\nEND\r\n", a)
                self.assertEqual(a, b, f"s_client {flag}: memcached {a[:300]!r} vs cachet {b[:300]!r} "
                                 f"(lengths {len(a)} / {len(b)})")

    def test_s_client_meta_commands(self):
        """Meta commands driven through `openssl s_client` over TLS 1.2 and 1.3, byte-compared with
        memcached -Z (issue 5: real clients)."""
        script = [(b"ms m1 2 T0 F7 c\r\nhi\r\nmg m1 v f t s k O42\r\nma cnt N0 J5 v\r\nma cnt D3 v\r\n"
                   b"md m1 q\r\nmg m1 v q\r\nmg m1 v k\r\nme cnt\r\nmn\r\n", b"MN\r\n")]
        for flag in ("-tls1_2", "-tls1_3"):
            with self.subTest(flag):
                a = s_client(self.pair.oracle.tls_port, flag, script)
                b = s_client(self.pair.cachet.tls_port, flag, script)
                self.assertIn(b"VA 2 f7 t-1 s2 km1 O42\r\nhi\r\n", a)
                self.assertIn(b"\r\nME cnt exp=", a)
                self.assertEqual(_strip_cas(a), _strip_cas(b), f"s_client {flag}: memcached {a!r} vs cachet {b!r}")

    def test_notls_listener_plaintext(self):
        for srv in self.pair.both():
            with srv.plain() as c:
                self.assertEqual(c.cmd("set nt 0 0 2\r\nok"), b"STORED\r\n")
            with srv.tls() as c:
                self.assertEqual(c.cmd("get nt"), b"VALUE nt 0 2\r\nok\r\nEND\r\n", srv.name)

    def test_tls_client_on_notls_port_fails(self):
        for srv in self.pair.both():
            with self.assertRaises((ssl.SSLError, OSError), msg=srv.name):
                tls_connect(srv.plain_port, client_ctx(), timeout=3).close()
            self.assertTrue(srv.srv.alive())


class TLSStatsDiff(unittest.TestCase):
    def setUp(self):
        self.live = LiveFiles(CERTS, "stats")

    def start_pair(self, opts=(), extra=()):
        p = TLSPair(self.live, opts, extra).start()
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


class TLSRefreshDiff(unittest.TestCase):
    """refresh_certs replies for success and each failure (files swapped on disk between calls);
    both servers share the same files so the paths in the replies are equal."""

    def test_refresh_replies(self):
        live = LiveFiles(CERTS, "refresh")
        p = TLSPair(live, ["ssl_ca_cert=" + live.ca]).start()
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
                p = TLSPair(live, ["ssl_ca_cert=" + live.ca, f"ssl_verify_mode={mode}"]).start()
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
        p = TLSPair(live, ["ssl_min_version=3"]).start()
        self.addCleanup(p.stop)
        for s in p.both():
            with self.subTest(s.name):
                with self.assertRaises(ssl.SSLError) as cm:
                    tls_connect(s.tls_port, client_ctx("1.2")).close()
                self.assertIn("PROTOCOL_VERSION", str(cm.exception).upper().replace(" ", "_"))
                self.assertEqual(outcome(s.tls_port, client_ctx("1.3")), "ok")
                self.assertEqual(dict(s.stats("settings"))["ssl_min_version"], "tlsv1.3")


class TLSSessionResumption(unittest.TestCase):
    """Tickets are on in both servers: resumption works for 1.2 and 1.3 with and without
    ssl_session_cache; asserted for memcached too so the test is not vacuous."""

    def test_resumption(self):
        for cache in (False, True):
            live = LiveFiles(CERTS, "sess")
            p = TLSPair(live, ["ssl_session_cache"] if cache else []).start()
            try:
                for s in p.both():
                    for version in ("1.2", "1.3"):
                        with self.subTest(server=s.name, cache=cache, version=version):
                            ctx = client_ctx(version)
                            with s.tls(ctx) as c1:
                                self.assertEqual(c1.cmd("version")[:8], b"VERSION ")
                                self.assertFalse(c1.sock.session_reused)
                                sess = c1.sock.session
                            self.assertIsNotNone(sess)
                            with s.tls(ctx, session=sess) as c2:
                                self.assertTrue(c2.sock.session_reused, f"{s.name} TLS{version} not resumed")
                                self.assertEqual(c2.cmd("set r 0 0 1\r\nx"), b"STORED\r\n")
                    if cache:
                        # OpenSSL-defined count (2 per full TLS 1.3 handshake); loosely
                        self.assertGreaterEqual(s.stat_int("ssl_new_sessions"), 1, s.name)
                    else:
                        self.assertIsNone(s.stat("ssl_new_sessions"))
            finally:
                p.stop()


class TLSPymemcache(unittest.TestCase):
    def test_pymemcache_tls(self):
        from pymemcache.client.base import Client
        live = LiveFiles(CERTS, "pymc")
        p = TLSPair(live).start()
        self.addCleanup(p.stop)
        for s in p.both():
            with self.subTest(s.name):
                cl = Client(("127.0.0.1", s.tls_port), tls_context=client_ctx(), connect_timeout=5, timeout=5)
                try:
                    self.assertTrue(cl.set("a", b"1"))
                    self.assertTrue(cl.set("b", b"two", expire=100))
                    self.assertEqual(cl.get("a"), b"1")
                    self.assertEqual(cl.get_many(["a", "b", "zz"]), {"a": b"1", "b": b"two"})
                    val, cas = cl.gets("b")
                    self.assertEqual(val, b"two")
                    self.assertTrue(cl.cas("b", b"three", cas))
                    self.assertFalse(cl.cas("b", b"four", cas))
                    self.assertEqual(cl.get("b"), b"three")
                    self.assertEqual(cl.incr("a", 41), 42)
                    self.assertEqual(cl.decr("a", 2), 40)
                    self.assertTrue(cl.delete("a"))
                    self.assertIsNone(cl.get("a"))
                    big = b"x" * 500000
                    self.assertTrue(cl.set("big", big))
                    self.assertEqual(cl.get("big"), big)
                finally:
                    cl.close()


# ================================================================================================
# Cachet only (1.6.18 lacks the feature, or Cachet is deliberately better)
# ================================================================================================

class CachetTLSBetter(unittest.TestCase):
    def start(self, opts=(), extra=(), listeners=(), live=None):
        live = live or LiveFiles(CERTS, "cachet")
        s = TLSServer(cachet_bin(), live, opts, extra, listeners=listeners, name="cachet").start()
        self.addCleanup(s.stop)
        return s

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

    def poll_ou(self, s, want, timeout=5.0):
        seen = []

        def check():
            with s.tls() as c:
                seen.append(peer_ou(c))
                return seen[-1] == want
        try:
            wait_for(check, timeout=timeout, interval=0.05, what=f"new handshakes presenting OU={want}")
        except HarnessError as e:
            raise AssertionError(f"{e}; presented: {seen[-5:]}") from None

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


class LargeValuesWhileTheyChange(unittest.TestCase):
    """Large values being sent to a slow reader stay what they were when the get ran, while other clients
    replace them, delete them and churn memory — and their memory comes back once the reader is done.
    memcached keeps such items by reference count; Cachet sends values of 64 KB and more straight from
    slab memory and pins them (CacheStore/ItemPins.swift). Both servers, plain and TLS. The reply is
    larger than the 4 MB a socket's send buffer can take, so the later values are still in slab memory
    when they change."""

    VALUES = 6            # × 1,000,000 bytes, plus one of 200,000
    start = CachetTLSBetter.start

    def test_values_sent_intact_and_memory_returned(self):
        live = LiveFiles(CERTS, "pins")
        pair = TLSPair(live, extra=["-m", "48"]).start()
        self.addCleanup(pair.stop)
        for srv in pair.both():
            for transport in ("plain", "tls"):
                with self.subTest(server=srv.name, transport=transport):
                    self.check(srv, transport)

    def test_record_boundaries_with_odd_wbuf_sizes(self):
        # Over TLS a pinned value is preceded and followed by copied bytes so that records are cut where a
        # contiguous copy would cut them (ssl_wbuf_size per SSL_write); sizes that do not divide 64 KB
        # exercise every split, pipelined and in multi-gets. (Cachet only: memcached 1.6.18 hangs on
        # requests pipelined after a large value over TLS, see test_pipelined_after_big_value.)
        def value(n):
            r = random.Random(n)
            return bytes(r.randrange(33, 127) for _ in range(n))
        values = {b"w%d" % n: value(n) for n in (65535, 65536, 65537, 100001, 600000)}
        reply = {k: b"VALUE %s 0 %d\r\n" % (k, len(v)) + v + b"\r\n" for k, v in values.items()}
        req = (b"get " + b" ".join(values) + b"\r\nget w100001 x w65537\r\nmn\r\n" +
               b"".join(b"get %s\r\n" % k for k in reversed(list(values))) + b"mn\r\n")
        want = (b"".join(reply.values()) + b"END\r\n" + reply[b"w100001"] + b"VALUE x 0 1\r\n1\r\n" +
                reply[b"w65537"] + b"END\r\nMN\r\n" + b"".join(reply[k] + b"END\r\n" for k in reversed(list(values))) +
                b"MN\r\n")
        for wbuf in ("3", "7", "64"):
            s = self.start([f"ssl_wbuf_size={wbuf}"])
            with self.subTest(ssl_wbuf_size=wbuf), s.tls() as c:
                for k, v in values.items():
                    self.assertEqual(c.cmd(b"set %s 0 0 %d\r\n" % (k, len(v)) + v), b"STORED\r\n")
                self.assertEqual(c.cmd(b"set x 0 0 1\r\n1"), b"STORED\r\n")
                for _ in range(2):
                    c.send(req)
                    got = c.read_exact(len(want), timeout=10)
                    self.assertTrue(got == want, "first difference at %s of %d" % (
                        next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None), len(want)))

    def test_slow_readers_of_large_values_cost_no_copies(self):
        # 40 clients ask for 8 × 1 MB each and do not read. The server's socket buffers take ~4 MB of each
        # reply; before values were sent from slab memory the rest was copied into each connection's output
        # buffer (measured: +7.8 MB RSS per reader, 400 MB for 50). Now a reader costs its TLS records and
        # gather buffer at most (measured right away: ~0 plain, ~430 KB TLS; memcached: ~0 plain, ~50 KB TLS).
        s = self.start(extra=["-m", "64", "-c", "1024"])
        value = BIG[:1000000]
        with s.plain() as w:
            for i in range(8):
                self.assertEqual(w.cmd(b"set big%d 0 0 %d\r\n" % (i, len(value)) + value), b"STORED\r\n")
        req = b"get " + b" ".join(b"big%d" % i for i in range(8)) + b"\r\n"
        for transport in ("plain", "tls"):
            with self.subTest(transport=transport):
                before = vmrss_kb(s.pid)
                readers = []
                try:
                    for _ in range(40):
                        r = self.slow_reader(s, transport)
                        readers.append(r)
                        r.sendall(req)
                        self.assertTrue(r.recv(32).startswith(b"VALUE big0 0 1000000\r\n"))
                    # Every reader's reply has started, so the server has run every get: a server that copies
                    # values into output buffers has made all its copies by now.
                    grown = vmrss_kb(s.pid) - before
                    REPORT[f"RSS growth, 40 slow readers of 8 MB ({transport})"] = f"{grown} kB"
                    self.assertLess(grown, 40 * 1024, f"{transport}: RSS grew {grown} kB for 40 readers")
                finally:
                    for r in readers:
                        r.close()

    @staticmethod
    def slow_reader(srv, transport):
        """A client with a 4 KB receive buffer, so a large reply stays mostly inside the server."""
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(DEFAULT_TIMEOUT)
        raw.connect(("127.0.0.1", srv.tls_port if transport == "tls" else srv.plain_port))
        return client_ctx().wrap_socket(raw) if transport == "tls" else raw

    def check(self, srv, transport):
        w = srv.plain()
        self.addCleanup(w.close)
        olds = {b"v%d" % i: bytes([97 + i]) + BIG[i:1000000 + i - 1] for i in range(self.VALUES)}
        olds[b"med"] = BIG[::-1][:200000]
        replacement = bytes(reversed(BIG[:1000000]))
        for k, v in olds.items():
            self.assertEqual(w.cmd(b"set %s 0 0 %d\r\n" % (k, len(v)) + v), b"STORED\r\n")
        r = self.slow_reader(srv, transport)
        r.sendall(b"get " + b" ".join(olds) + b"\r\n")
        got = bytearray()
        head = b"VALUE v0 0 1000000\r\n"
        while len(got) < len(head):          # the server has run the get: the values are referenced
            got += r.recv(len(head) - len(got))
        self.assertEqual(bytes(got), head)
        # Replace the values, delete one, then push 60 MB through 48 MB of memory.
        for k in olds:
            if k != b"med":
                self.assertEqual(w.cmd(b"set %s 0 0 %d\r\n" % (k, len(replacement)) + replacement), b"STORED\r\n")
        self.assertEqual(w.cmd(b"delete med"), b"DELETED\r\n")
        for i in range(60):
            self.assertEqual(w.cmd(b"set churn%d 0 0 %d\r\n" % (i, len(replacement)) + replacement),
                             b"STORED\r\n")
        want = b"".join(b"VALUE %s 0 %d\r\n" % (k, len(v)) + v + b"\r\n" for k, v in olds.items()) + b"END\r\n"
        while len(got) < len(want):
            chunk = r.recv(65536)
            if not chunk:
                break
            got += chunk
        self.assertTrue(bytes(got) == want, f"{srv.name}/{transport}: {len(got)} bytes, first difference at "
                        f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")
        r.close()
        # A reader that leaves in the middle of three large values.
        r = self.slow_reader(srv, transport)
        r.sendall(b"get churn57 churn58 churn59\r\n")
        self.assertTrue(r.recv(64).startswith(b"VALUE churn57 "))
        r.close()
        # Once the readers are gone and every key deleted, no chunk stays in use (a reference that is never
        # dropped would keep its item's memory forever).
        for key in list(olds) + [b"churn%d" % i for i in range(60)]:
            w.cmd(b"delete " + key)

        def used_chunks():
            return sum(int(v) for k, v in w.stats("slabs") if k.endswith(":used_chunks"))
        wait_for(lambda: used_chunks() == 0, timeout=5, what=f"{srv.name}/{transport}: all chunks free")


class CachetReloadUnderLoad(unittest.TestCase):
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
                    CachetTLSBetter.poll_ou(self, s, want)
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


class TLSMemory(unittest.TestCase):
    @staticmethod
    def fail_batch(s, n, chunk=200):
        """n failed handshakes: half plaintext `version`, half connect + immediate close (RST)."""
        done = 0
        while done < n:
            socks = []
            for k in range(min(chunk, n - done)):
                x = socket.create_connection(("127.0.0.1", s.tls_port), timeout=10)
                x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if (done + k) % 2 == 0:
                    x.sendall(b"version\r\n")
                socks.append(x)
            for x in socks:
                x.close()
            done += len(socks)

    def test_rss_after_failed_handshakes(self):
        live = LiveFiles(CERTS, "rss")
        s = TLSServer(cachet_bin(), live, extra=["-c", "4096"], name="cachet").start()
        self.addCleanup(s.stop)
        base_tc = s.stat_int("total_connections")
        n = 10000

        def settle(total):
            wait_for(lambda: (lambda d: int(d["total_connections"]) >= total and int(d["curr_connections"]) <= 2)(
                dict(s.stats())), timeout=60, interval=0.1, what=f"{total} connections accepted and closed")
        # RSS takes one step of ~5 MB at some point (malloc's heaps growing under the burst; where it happens
        # varies run to run: 20.2, 25.7, 25.7, 25.7, 25.8, 25.9 MB in one six-batch run) and is flat otherwise.
        # A leak grows in every batch instead: leaving out the largest single step, the other four steps
        # (40k failed handshakes) may add at most 3 MB, so ~75 bytes per handshake would be caught.
        rss = []
        for i in range(1, 7):
            self.fail_batch(s, n)
            settle(base_tc + i * n + 2)
            rss.append(vmrss_kb(s.pid))
        steps = sorted(b - a for a, b in zip(rss, rss[1:]))
        REPORT["rss after failed handshakes"] = (f"{' → '.join(str(r) for r in rss)} kB after each 10k "
                                                 f"(ssl_handshake_errors {s.stat_int('ssl_handshake_errors')})")
        self.assertLessEqual(sum(steps[:-1]), 3072, f"RSS kept growing: {rss} kB after each 10k failed handshakes")
        self.assertEqual(outcome(s.tls_port, client_ctx()), "ok")

    def test_rss_per_idle_tls_connection(self):
        live = LiveFiles(CERTS, "idle")
        res = {}
        for binary, name in ((memcached_bin(), "memcached"), (cachet_bin(), "cachet")):
            s = TLSServer(binary, live, extra=["-c", "4096"], name=name).start()
            conns = []
            try:
                self.assertEqual(outcome(s.tls_port, client_ctx()), "ok")
                before = vmrss_kb(s.pid)
                ctx = client_ctx()
                for _ in range(1000):
                    c = s.tls(ctx)
                    conns.append(c)
                for c in conns:
                    c.send(b"version\r\n")
                for c in conns:
                    c.read_until(b"\r\n")
                # "Idle" means no traffic for a while: Cachet gives a connection's buffers back once it
                # has been quiet for a second (memcached frees OpenSSL's buffers after every record).
                # This is the measurement's definition, not a wait for an event.
                time.sleep(2.5)
                after = vmrss_kb(s.pid)
                res[name] = (after - before) / 1000.0
            finally:
                for c in conns:
                    c.close()
                s.stop()
        msg = ", ".join(f"{k} {v:.1f} kB" for k, v in res.items())
        print(f"\n[rss per idle TLS connection] {msg}")
        REPORT["rss per idle TLS connection"] = msg
        self.assertEqual(len(res), 2)


if __name__ == "__main__":
    unittest.main()
