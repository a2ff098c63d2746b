#!/usr/bin/python3
"""Stress: 200 connections x pipelined random ops against one server (CACHET_BIN) for 60 s.

Checks, and exits non-zero if any fails:
- every reply parses and matches a per-connection model (each connection owns its keys, so an
  acknowledged write must be readable by later gets on that connection — memory is sized so
  nothing is evicted: `-m 256`, at most 200 x 40 keys x 4 KB in flight);
- after the run, every key's last acknowledged value is read back on a fresh connection;
- RSS (VmRSS) stays under `-m` + a fixed overhead during the run;
- the server still answers afterwards and `evictions` is 0.

Env: CACHET_BIN, CACHET_STRESS_SECONDS (default 60), CACHET_STRESS_CONNS (default 200).
"""

import os
import random
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Server, cachet_bin, vmrss_kb  # noqa: E402

SECONDS = float(os.environ.get("CACHET_STRESS_SECONDS", "60"))
CONNS = int(os.environ.get("CACHET_STRESS_CONNS", "200"))
MEM_MB = 256
OVERHEAD_MB = 128  # binary, threads, per-connection buffers, hash table
KEYS_PER_CONN = 40
DEPTH = 16


class Client:
    def __init__(self, idx, sock, rnd):
        self.idx = idx
        self.sock = sock
        self.rnd = rnd
        self.model = {}  # key → bytes (acknowledged), absent = missing
        self.pending = []  # list of (kind, key, value)
        self.buf = b""
        self.done_ops = 0

    def key(self):
        return b"c%03d:%02d" % (self.idx, self.rnd.randrange(KEYS_PER_CONN))

    def batch(self):
        out = []
        for _ in range(DEPTH):
            k = self.key()
            c = self.rnd.random()
            if c < 0.4:
                if self.rnd.random() < 0.3:
                    v = b"%d" % self.rnd.randrange(10**6)
                else:  # never parses as a number (memcached accepts "9\n<junk>" for incr)
                    v = b"x" + os.urandom(self.rnd.randrange(0, 4096))
                out.append(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
                self.pending.append(("set", k, v))
            elif c < 0.8:
                out.append(b"get %s\r\n" % k)
                self.pending.append(("get", k, None))
            elif c < 0.9:
                out.append(b"delete %s\r\n" % k)
                self.pending.append(("delete", k, None))
            else:
                out.append(b"incr %s 3\r\n" % k)
                self.pending.append(("incr", k, None))
        return b"".join(out)

    def consume(self):
        """Parse as many replies as the buffer holds; raise on any mismatch."""
        while self.pending:
            kind, k, v = self.pending[0]
            if kind == "get":
                if self.buf.startswith(b"END\r\n"):
                    got, used = None, 5
                elif self.buf.startswith(b"VALUE "):
                    nl = self.buf.find(b"\r\n")
                    if nl < 0:
                        return
                    parts = self.buf[:nl].split()
                    n = int(parts[3])
                    end = nl + 2 + n + 2 + 5
                    if len(self.buf) < end:
                        return
                    got = self.buf[nl + 2:nl + 2 + n]
                    if parts[1] != k or self.buf[nl + 2 + n:end] != b"\r\nEND\r\n":
                        raise AssertionError(f"conn {self.idx}: bad get reply {self.buf[:end][:200]!r}")
                    used = end
                else:
                    if len(self.buf) >= 6 or b"\n" in self.buf:
                        raise AssertionError(f"conn {self.idx}: unexpected get reply {self.buf[:100]!r}")
                    return
                want = self.model.get(k)
                if got != want and not (want is not None and got is not None and got.rstrip(b" ") == want):
                    raise AssertionError(f"conn {self.idx}: get {k!r} returned {short(got)} "
                                         f"but the last acknowledged value is {short(want)}")
            else:
                nl = self.buf.find(b"\r\n")
                if nl < 0:
                    return
                line, used = self.buf[:nl], nl + 2
                if kind == "set":
                    if line != b"STORED":
                        raise AssertionError(f"conn {self.idx}: set {k!r} → {line!r}")
                    self.model[k] = v
                elif kind == "delete":
                    exp = b"DELETED" if k in self.model else b"NOT_FOUND"
                    if line != exp:
                        raise AssertionError(f"conn {self.idx}: delete {k!r} → {line!r}, expected {exp!r}")
                    self.model.pop(k, None)
                else:  # incr
                    cur = self.model.get(k)
                    if cur is None:
                        exp = b"NOT_FOUND"
                    elif cur.strip(b" ").isdigit() and len(cur.strip(b" ")) <= 20 and \
                            int(cur.strip(b" ")) < 2**64:
                        exp = str((int(cur.strip(b" ")) + 3) % 2**64).encode()
                    else:
                        exp = b"CLIENT_ERROR cannot increment or decrement non-numeric value"
                    if line != exp:
                        raise AssertionError(f"conn {self.idx}: incr {k!r} (value {short(cur)}) → {line!r}, "
                                             f"expected {exp!r}")
                    if cur is not None and exp.isdigit():
                        self.model[k] = exp  # padding (if any) is ignored by the get check
            self.buf = self.buf[used:]
            self.pending.pop(0)
            self.done_ops += 1


def short(b):
    if b is None:
        return "<missing>"
    return repr(b[:40]) + (f"...({len(b)} bytes)" if len(b) > 40 else "")


def main():
    srv = Server(cachet_bin(), ["-m", str(MEM_MB), "-c", str(CONNS + 100)]).start()
    failures = []
    try:
        sel = selectors.DefaultSelector()
        clients = []
        for i in range(CONNS):
            s = srv.raw_connect(timeout=10)
            s.setblocking(False)
            c = Client(i, s, random.Random(1000 + i))
            clients.append(c)
            sel.register(s, selectors.EVENT_READ, c)
        for c in clients:
            c.sock.setblocking(True)
            c.sock.sendall(c.batch())
            c.sock.setblocking(False)
        t_end = time.monotonic() + SECONDS
        max_rss = 0
        last_rss = 0.0
        last_progress = time.monotonic()
        while time.monotonic() < t_end and not failures:
            events = sel.select(timeout=1.0)
            if not events and time.monotonic() - last_progress > 10:
                failures.append("no reply from any connection for 10 s")
                break
            for key, _ in events:
                c = key.data
                try:
                    data = c.sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    failures.append(f"conn {c.idx}: server closed the connection")
                    break
                last_progress = time.monotonic()
                c.buf += data
                try:
                    c.consume()
                except AssertionError as e:
                    failures.append(str(e))
                    break
                if not c.pending:
                    c.sock.setblocking(True)
                    c.sock.sendall(c.batch())
                    c.sock.setblocking(False)
            if time.monotonic() - last_rss > 1:
                last_rss = time.monotonic()
                max_rss = max(max_rss, vmrss_kb(srv.pid))
                if max_rss > (MEM_MB + OVERHEAD_MB) * 1024:
                    failures.append(f"RSS {max_rss} kB exceeds -m {MEM_MB} MB + {OVERHEAD_MB} MB")
        total = sum(c.done_ops for c in clients)
        # Drain outstanding replies so the models are final.
        for c in clients:
            c.sock.setblocking(True)
            c.sock.settimeout(10)
            try:
                while c.pending and not failures:
                    data = c.sock.recv(1 << 20)
                    if not data:
                        failures.append(f"conn {c.idx}: EOF while draining")
                        break
                    c.buf += data
                    c.consume()
            except (AssertionError, OSError) as e:
                failures.append(f"conn {c.idx}: {e}")
            c.sock.close()
        # Every acknowledged write is readable afterwards (fresh connection).
        checked = 0
        with srv.connect(timeout=10) as conn:
            for c in clients:
                for i in range(KEYS_PER_CONN):
                    k = b"c%03d:%02d" % (c.idx, i)
                    r = conn.roundtrip(b"get " + k + b"\r\n")
                    want = c.model.get(k)
                    if want is None:
                        ok = r == b"END\r\n"
                    else:
                        head = b"VALUE %s 0 " % k
                        ok = r.startswith(head) and r.endswith(b"\r\nEND\r\n") and \
                            r[r.index(b"\r\n") + 2:-7].rstrip(b" ") == want.rstrip(b" ")
                    checked += 1
                    if not ok:
                        failures.append(f"final read {k!r}: got {short(r)} want {short(want)}")
                        if len(failures) > 20:
                            break
            st = dict(conn.stats())
            if st.get("evictions") != "0":
                failures.append(f"evictions {st.get('evictions')} (memory was sized to avoid them)")
            if conn.roundtrip(b"version\r\n")[:8] != b"VERSION ":
                failures.append("server does not answer version after the run")
        print(f"[stress] {CONNS} conns, {SECONDS:.0f}s, {total} ops ({total / SECONDS:.0f}/s), "
              f"max RSS {max_rss} kB, {checked} keys verified, failures {len(failures)}")
    finally:
        if not srv.alive():
            failures.append(f"server died: exit {srv.proc.returncode} stderr {srv.stderr()[-400:]!r}")
        srv.stop()
    for f in failures[:20]:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
