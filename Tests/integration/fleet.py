"""Plumbing for the fleet tests (test_fleet.py): a few cache nodes on loopback ports, each restartable on
its own port, TLS or plain; Debian's nutcracker (twemproxy) in front of them; and asking one node directly
whether it holds a key. Processes are started here and stopped by PID only.

Only stdlib (plus harness/tlscerts from this directory).
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from harness import Conn, HarnessError, Server, base_args, free_port

NUTCRACKER_CANDIDATES = ("nutcracker", "/usr/sbin/nutcracker")


def nutcracker_bin():
    for name in NUTCRACKER_CANDIDATES:
        path = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
        if path:
            return path
    raise HarnessError("nutcracker (twemproxy) not found: apt-get install nutcracker (Scripts/bootstrap)")


def tls_client_context(ca_file):
    """Verifies the node's certificate against the test CA (the test certificates name IP 127.0.0.1)."""
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Node:
    """One cache server on a fixed port; `kill()` + `restart()` bring it back on the same port."""

    def __init__(self, binary, extra=(), tls_context=None, name="node"):
        self.binary = binary
        self.extra = list(extra)
        self.tls_context = tls_context
        self.name = name
        self.port = None
        self.server = None
        self.stopped = False   # SIGSTOP sent and not yet SIGCONT

    def start(self):
        last = None
        for _ in range(3):  # only the first start may pick another port; restarts keep theirs
            port = self.port or free_port()
            srv = Server(self.binary, port=port, args=[*base_args(port), *self.extra], name=f"{self.name}:{port}")
            try:
                srv.start()
            except HarnessError as e:
                last = e
                if self.port is not None or "Address already in use" not in str(e):
                    raise
                continue
            self.server, self.port = srv, port
            return self
        raise last

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def kill(self):
        """SIGKILL by PID: the node dies without closing anything politely."""
        self.resume()
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.wait_stopped(5)

    def restart(self):
        return self.start()

    def suspend(self):
        os.kill(self.server.pid, signal.SIGSTOP)
        self.stopped = True

    def resume(self):
        if self.stopped and self.server is not None and self.server.alive():
            os.kill(self.server.pid, signal.SIGCONT)
        self.stopped = False

    def stop(self):
        self.resume()
        if self.server is not None and self.server.alive():
            self.server.stop()

    def connect(self, timeout=5):
        raw = socket.create_connection(self.addr, timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_context is None:
            return Conn(raw, timeout=timeout, label=self.name)
        try:
            return Conn(self.tls_context.wrap_socket(raw, server_hostname="127.0.0.1"), timeout=timeout,
                        label=f"{self.name}/tls")
        except BaseException:
            raw.close()
            raise

    def value_of(self, key):
        """The value this node holds for `key` (bytes), or None — asked directly, not through the fleet."""
        with self.connect() as c:
            reply = c.cmd(f"get {key}")
        if reply == b"END\r\n":
            return None
        head, _, rest = reply.partition(b"\r\n")
        parts = head.split(b" ")
        if parts[0] != b"VALUE" or parts[1] != key.encode():
            raise HarnessError(f"{self.name}: unexpected reply to get {key}: {reply!r}")
        return rest[:int(parts[3])]

    def holds(self, key):
        return self.value_of(key) is not None


def stop_all(nodes):
    """SIGTERM to every node first, then reap (memcached takes about a second to exit: in parallel, not in turn)."""
    for n in nodes:
        n.resume()
        if n.server is not None and n.server.alive():
            n.server.terminate()
    for n in nodes:
        if n.server is not None:
            n.server.wait_stopped(5)


def holders(nodes, key):
    """Indexes of the nodes that hold `key`."""
    return [i for i, n in enumerate(nodes) if n.holds(key)]


class Nutcracker:
    """One nutcracker process with one or more pools over the same nodes.

    pools: {name: {"hash": ..., "distribution": ..., other twemproxy pool keys, optionally "weights": [w, …]
    (one per node, default 1)}}; each pool listens on its own free port (`self.ports[name]`). The stats port is
    a free port too (its default 22222 may be taken)."""

    def __init__(self, nodes, pools):
        self.nodes = nodes
        self.pools = pools
        self.ports = {}
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="cachet-fleet-")
        self.log = os.path.join(self.dir, "nutcracker.log")

    def config(self):
        lines = []
        for name, opts in self.pools.items():
            lines.append(f"{name}:")
            lines.append(f"  listen: 127.0.0.1:{self.ports[name]}")
            weights = opts.get("weights", [1] * len(self.nodes))
            for k, v in opts.items():
                if k != "weights":
                    lines.append(f"  {k}: {str(v).lower() if isinstance(v, bool) else v}")
            lines.append("  servers:")
            # no explicit server name, so twemproxy hashes "host:port" (libmemcached's spelling)
            lines += [f"    - 127.0.0.1:{n.port}:{w}" for n, w in zip(self.nodes, weights)]
        return "\n".join(lines) + "\n"

    def start(self, timeout=10):
        for name in self.pools:
            self.ports[name] = free_port()
        conf = os.path.join(self.dir, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write(self.config())
        argv = [nutcracker_bin(), "-c", conf, "-s", str(free_port()), "-a", "127.0.0.1", "-o", self.log]
        check = subprocess.run([*argv, "-t"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        if check.returncode != 0:
            raise HarnessError(f"nutcracker rejects its config: {check.stderr!r}\n{self.config()}")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None:
                    raise HarnessError(f"nutcracker exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise HarnessError(f"nutcracker not listening on {port} after {timeout}s")
                    time.sleep(0.02)
        return self

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def connect(self, pool, timeout=5):
        raw = socket.create_connection(("127.0.0.1", self.ports[pool]), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Conn(raw, timeout=timeout, label=f"nutcracker/{pool}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def request(conn, line, data=None):
    """One text-protocol request through a proxy connection; returns the whole reply. Replies are read to
    their end marker (END for retrievals, one line otherwise), never with the `mn` marker a proxy may not
    forward."""
    payload = line.encode() + b"\r\n"
    if data is not None:
        payload += data + b"\r\n"
    conn.send(payload)
    verb = line.split(" ", 1)[0]
    if verb in ("get", "gets"):
        buf = conn.read_until(b"\r\n")
        while not (buf.endswith(b"END\r\n") or buf.startswith((b"SERVER_ERROR", b"CLIENT_ERROR", b"ERROR"))):
            buf += conn.read_until(b"\r\n")
        return buf
    return conn.read_until(b"\r\n")
