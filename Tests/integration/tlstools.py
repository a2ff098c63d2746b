"""TLS servers and clients for the tests (the TLS half of harness.py).

Owns: `TLSServer` (a harness `Server` started with `-Z`, one TLS listener `tls_port` and one plaintext
`notls:` listener `plain_port`, plus optional `btls:`/`mtls:` ones; the readiness probe and every
`stats`/`refresh_certs` it sends go over the plaintext listener, so control traffic never counts as a
handshake), client contexts that trust the test CA, a TLS `Conn`, `openssl s_client` driven by phases,
and `CachetTLSCase`, the TestCase base for Cachet-only TLS tests. A memcached/cachet pair over TLS is
`difftools.Pair(extra, live=...)`.

Certificates come from tlscerts.py (`shared()`: one CA-signed set per process; `localhost_cert()` below:
one self-signed CN=localhost certificate per process).
"""

import os
import random
import select
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import tlscerts
from harness import Conn, DEFAULT_TIMEOUT, HarnessError, Server, cachet_bin, free_ports, raise_nofile, wait_for
from tlscerts import LiveFiles


# A 1 MiB value of random lowercase letters (fixed seed): spans many TLS records and slab chunks.
BIG = bytes(random.Random(7).randrange(97, 123) for _ in range(1 << 20))


# -- clients ------------------------------------------------------------------------------------

def client_ctx(version=None, cert=False, verify=True, cafile=None, ciphers=None):
    """A client context trusting the shared test CA (or `cafile`); `version` "1.2"/"1.3" pins it; `cert`
    presents the CA-signed client certificate; `ciphers` sets the TLS ≤ 1.2 cipher list."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.load_verify_locations(cafile or tlscerts.shared().ca_crt)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if cert:
        ctx.load_cert_chain(tlscerts.shared().client_crt, tlscerts.shared().client_key)
    if ciphers:
        ctx.set_ciphers(ciphers)
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


def s_client(port, version_flag, phases, timeout=10.0, extra=()):
    """`openssl s_client -quiet -no_ign_eof`: for each (data, expect_suffix) phase write `data` to
    its stdin and read its stdout until it ends with `expect_suffix` (bounded); then close stdin
    and wait for exit (bounded). Returns all stdout bytes."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version_flag, "-quiet",
            "-no_ign_eof", "-nocommands", "-CAfile", tlscerts.shared().ca_crt, "-verify_return_error", *extra]
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


# -- servers ------------------------------------------------------------------------------------

_LOCALHOST = None


def localhost_cert():
    """(certificate, key) of a self-signed CN=localhost certificate (SAN localhost and 127.0.0.1), made once
    per process next to the shared test certificates."""
    global _LOCALHOST
    if _LOCALHOST is None:
        d = tempfile.mkdtemp(prefix="localhost-", dir=tlscerts.shared().root)
        _LOCALHOST = tlscerts.self_signed(d, san="DNS:localhost,IP:127.0.0.1")
    return _LOCALHOST


class TLSServer(Server):
    """A server with `-Z`: TLS listener `tls_port`, plaintext `notls:` listener `plain_port` (the one the
    harness probes and `plain()`/`stats()` use), + optional extra listeners given as prefixes ("btls",
    "mtls"; their ports in `extra_ports`). The certificate is `live`'s files (a tlscerts.LiveFiles) or
    `cert`/`key`; `tls=False` leaves `-Z` out (the ssl_* options without TLS). `timeout` bounds the
    reads of the TLS connections it opens."""

    def __init__(self, binary, live=None, opts=(), extra=(), listeners=(), name=None, tls=True,
                 cert=None, key=None, timeout=DEFAULT_TIMEOUT):
        self.live = live
        self.timeout = timeout
        chain, key = cert or live.chain, key or live.key
        sslopt = ",".join([f"ssl_chain_cert={chain}", f"ssl_key={key}", *opts])
        self._config = (listeners, tls, sslopt, list(extra))
        super().__init__(binary, args=self._listen_args(), port=self.plain_port, name=name)

    def _listen_args(self):
        """Picks distinct free ports for every listener and returns the argument list."""
        listeners, tls, sslopt, extra = self._config
        ports = free_ports(2 + len(listeners))
        self.tls_port, self.plain_port = ports[0], ports[1]
        self.extra_ports = dict(zip(listeners, ports[2:]))
        ls = [f"127.0.0.1:{self.tls_port}", f"notls:127.0.0.1:{self.plain_port}"]
        ls += [f"{p}:127.0.0.1:{port}" for p, port in self.extra_ports.items()]
        args = ["-u", "root", "-U", "0", "-p", str(self.tls_port), "-l", ",".join(ls)]
        if tls:
            args.append("-Z")
        return args + ["-o", sslopt, *extra]

    def start(self):
        """As Server.start; a port taken by someone else between the pick and the bind: new ports, again."""
        for attempt in range(3):
            try:
                return super().start()
            except HarnessError as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
                self.args = self._listen_args()
                self.port = self.plain_port

    @property
    def srv(self):
        """The process (this object: tests written before TLSServer was a Server reach it as `.srv`)."""
        return self

    def plain(self):
        return self.connect()

    def tls(self, ctx=None, session=None, port=None, timeout=None):
        return tls_connect(port or self.tls_port, ctx, session=session, timeout=timeout or self.timeout,
                           label=f"{self.name}/tls")

    def raw(self, timeout=10):
        """A TCP connection to the TLS port with no handshake."""
        return Conn(socket.create_connection(("127.0.0.1", self.tls_port), timeout=timeout), timeout=timeout)

    def stats(self, sub=""):
        """`stats <sub>` over the plaintext listener: (name, value) pairs in the server's order."""
        with self.plain() as c:
            return c.stats(sub)

    def stats_dict(self, sub=""):
        return dict(self.stats(sub))

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


class CachetTLSCase(unittest.TestCase):
    """Base for Cachet-only TLS tests: `start()` runs `cachet -Z` on the shared CA-signed certificate (in
    its own LiveFiles, so a test may swap them) and stops it at cleanup."""

    def start(self, opts=(), extra=(), listeners=(), live=None):
        live = live or LiveFiles(tlscerts.shared(), "cachet")
        s = TLSServer(cachet_bin(), live, opts, extra, listeners=listeners, name="cachet").start()
        self.addCleanup(s.stop)
        return s

    def poll_ou(self, s, want, timeout=5.0):
        """Waits until new handshakes present the certificate with OU `want` (a reload took effect)."""
        seen = []

        def check():
            with s.tls() as c:
                seen.append(peer_ou(c))
                return seen[-1] == want
        try:
            wait_for(check, timeout=timeout, interval=0.05, what=f"new handshakes presenting OU={want}")
        except HarnessError as e:
            raise AssertionError(f"{e}; presented: {seen[-5:]}") from None


class LocalhostTLSCase(unittest.TestCase):
    """Base for Cachet-only TLS hardening tests: `start()` runs `cachet -Z` on the self-signed
    `localhost_cert()` (or `cert`/`key`), with 10 s client timeouts, stopped at cleanup."""

    def start(self, opts=(), extra=(), listeners=(), cert=None, key=None):
        crt, k = localhost_cert()
        s = TLSServer(cachet_bin(), opts=opts, extra=extra, listeners=listeners, cert=cert or crt,
                      key=key or k, name="cachet", timeout=10)
        s.start()
        self.addCleanup(s.stop)
        return s


def localhost_client_ctx(version=None, ciphers=None):
    """A client context that trusts `localhost_cert()` (TLS 1.2 pinned when `version` is "1.2")."""
    return client_ctx("1.2" if version == "1.2" else None, cafile=localhost_cert()[0], ciphers=ciphers)


def many_servers_module_setup():
    """For a file that starts many TLS servers with many clients (its setUpModule): room for their fds, and
    the shared test certificates (tlscerts.shared(), made with the `openssl` CLI once per process)."""
    raise_nofile(8192, required=False)
    return tlscerts.shared()


def print_report(module, report):
    """Measurements a test module gathered (not asserted), printed once at its end."""
    if report:
        print(f"\n[{module} report] " + "; ".join(f"{k}: {v}" for k, v in report.items()))
