"""Differential machinery: a (memcached, cachet) server pair and a TestCase base that sends the
same request steps to both on fresh connections and asserts byte-equal replies.

Owns: the pair (plaintext, or over TLS with `live=` certificate files), its lifecycle (class-level, or
per case with `fresh=True`), crash detection/restart, the case counter and the mismatch log printed at
the end of the run, and the request builders and reply normalisations the differential files share.
"""

import os
import sys
import unittest

from harness import (Server, stop_later, reap_stopped, HarnessError, cachet_bin, memcached_bin, normalise_version,
                     normalise_stats, normalise_settings, parse_stats, wait_for)
from tlstools import TLSServer

CRLF = b"\r\n"

COUNTS = {"cases": 0, "steps": 0}
MISMATCHES = []  # (test id, case label, step index, request, oracle bytes, cachet bytes)


def short(b, limit=400):
    if isinstance(b, (bytes, bytearray)) and len(b) > limit:
        return repr(b[:limit // 2]) + f"...<{len(b)} bytes>..." + repr(b[-limit // 4:])
    return repr(b)


def pairs_diff(a, b):
    """Describe the difference of two normalised stats dumps ((kind, [(name, value)]))."""
    la, lb = a[1], b[1]
    na, nb = [n for n, _ in la], [n for n, _ in lb]
    out = []
    missing = [n for n in na if n not in nb]
    extra = [n for n in nb if n not in na]
    if missing:
        out.append(f"names missing in cachet: {missing}")
    if extra:
        out.append(f"names only in cachet: {extra}")
    common_a = [n for n in na if n in nb]
    common_b = [n for n in nb if n in na]
    if common_a != common_b:
        for i, (x, y) in enumerate(zip(common_a, common_b)):
            if x != y:
                out.append(f"order differs from position {i}: memcached {common_a[i:i + 5]} vs cachet {common_b[i:i + 5]}")
                break
    da, db = dict(la), dict(lb)
    vals = [f"{n}: memcached {da[n]!r} cachet {db[n]!r}" for n in na if n in db and da[n] != db[n]]
    if vals:
        out.append("values differ: " + "; ".join(vals))
    return " " + " | ".join(out)


def first_diff(a, b):
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == 2 and len(b) == 2 and a[0] == b[0]:
        return pairs_diff(a, b)
    if not isinstance(a, (bytes, bytearray)) or not isinstance(b, (bytes, bytearray)):
        return ""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return f" first difference at byte {i}: oracle {a[i:i + 60]!r} vs cachet {b[i:i + 60]!r}"
    return f" lengths differ: oracle {len(a)} vs cachet {len(b)} (common prefix {n} bytes)"


def await_startup_crawl(server):
    """Both servers' LRU maintainers start an autoexpire crawl right after start-up (memcached's
    lru_maintainer_crawler_check): a crawler command sent while it runs gets BUSY from one server and not the
    other. Waits, on one connection, until that crawl has run (or there is none: no maintainer or crawler)."""
    with server.connect() as c:
        settings = c.roundtrip(b"stats settings\r\n")
        if b"STAT lru_maintainer_thread yes\r\n" not in settings or b"STAT lru_crawler yes\r\n" not in settings:
            return

        def done():
            st = dict(parse_stats(c.roundtrip(b"stats\r\n")))
            return st.get("lru_crawler_starts", "0") != "0" and st.get("lru_crawler_running") == "0"
        wait_for(done, timeout=10, interval=0.005, what=f"the start-up crawl of {server.name}")


class Pair:
    """memcached (`oracle`) and cachet started with the same flags `extra`: plain harness Servers, or,
    with `live` (tlscerts.LiveFiles, shared by both so paths in replies are equal) and ssl `opts`,
    tlstools.TLSServers (-Z, a TLS and a notls: listener)."""

    def __init__(self, extra=(), live=None, opts=()):
        self.extra = list(extra)
        if live is None:
            self.oracle = Server(memcached_bin(), self.extra, name="memcached")
            self.cachet = Server(cachet_bin(), self.extra, name="cachet")
        else:
            self.oracle = TLSServer(memcached_bin(), live, opts, self.extra, name="memcached")
            self.cachet = TLSServer(cachet_bin(), live, opts, self.extra, name="cachet")

    def both(self):
        return (self.oracle, self.cachet)

    def start(self):
        self.oracle.start()
        try:
            self.cachet.start()
        except Exception:
            self.oracle.stop()
            raise
        return self

    def await_startup_crawls(self):
        try:
            for server in (self.oracle, self.cachet):
                await_startup_crawl(server)
        except BaseException:
            self.stop()   # never leave the pair running behind a failed set-up
            raise
        return self

    def stop(self):
        self.oracle.terminate()
        self.cachet.terminate()
        self.oracle.wait_stopped()
        self.cachet.wait_stopped()

    def stop_later(self):
        stop_later(self.oracle, self.cachet)


# -- requests and normalisations the differential files share ------------------------------------

def st(key=b"k", val=b"x", flags=0, exp=0, cmd=b"set", extra=b""):
    """A storage command with its data block."""
    return cmd + b" " + key + b" %d %d %d" % (flags, exp, len(val)) + extra + CRLF + val + CRLF


def ms(key=b"k", val=b"x", flags=b""):
    """A meta set with its data block."""
    return b"ms " + key + b" %d" % len(val) + (b" " + flags if flags else b"") + CRLF + val + CRLF


# Opaque tokens of the longest allowed length (32 bytes) and one byte over; keys likewise (250).
O32 = b"O" + b"o" * 31
O33 = b"O" + b"o" * 32
K250 = b"a" * 250
K251 = b"a" * 251


def stats_norm(raw):
    return normalise_stats(parse_stats(raw))


VOLATILE_ITEM_FIELDS = ("age_hot", "age_warm", "age", "number_hot", "number_warm", "number_cold",
                        "moves_to_cold", "moves_to_warm", "moves_within_lru", "lrutail_reflocked",
                        "crawler_reclaimed", "crawler_items_checked", "hits_to_hot", "hits_to_warm",
                        "hits_to_cold", "hits_to_temp", "evicted_time",
                        # how often an allocation found COLD empty depends on how far each server's LRU
                        # maintainer had got (exact under -o no_lru_maintainer, where it is compared)
                        "direct_reclaims")


def items_norm(raw):
    if not raw.startswith(b"STAT"):
        return raw
    out = []
    for n, v in parse_stats(raw):
        field = n.split(":")[-1]
        out.append((n, "<v>" if field in VOLATILE_ITEM_FIELDS else v))
    return ("stats items", out)


def stat_values(names):
    def norm(raw):
        if not raw.startswith(b"STAT"):
            return raw
        d = dict(parse_stats(raw))
        return ("selected stats", [(n, d.get(n, "<absent>")) for n in names])
    return norm


def slabs_norm(raw):
    """stats slabs as (name, value) pairs (every value compared) for a readable diff."""
    return ("stats slabs", parse_stats(raw))


def slabs_norm_any(raw):
    return slabs_norm(raw) if raw.startswith(b"STAT ") else raw


def auto_norm(reply):
    """Default normalisation: `VERSION <x>`; a `stats` dump → names + deterministic values;
    a `stats settings` dump → values except tcpport/inter. Other replies byte-exact."""
    reply = normalise_version(reply)
    if reply.startswith(b"STAT ") and reply.endswith(b"END\r\n") and reply.count(b"END\r\n") == 1:
        if reply.startswith(b"STAT pid "):
            return ("stats", normalise_stats(parse_stats(reply)))
        if reply.startswith(b"STAT maxbytes "):
            return ("stats settings", normalise_settings(parse_stats(reply)))
    return reply


def print_summary(module_name):
    reap_stopped()
    out = sys.stderr
    print(f"\n[{module_name}] differential cases compared: {COUNTS['cases']} "
          f"(request steps: {COUNTS['steps']}), mismatching steps: {len(MISMATCHES)}", file=out)
    for tid, label, idx, req, a, b in MISMATCHES:
        if isinstance(a, tuple) and isinstance(b, tuple):
            print(f"  MISMATCH {tid} [{label}] step {idx} request={short(req, 200)}\n"
                  f"   {first_diff(a, b)}", file=out)
        else:
            print(f"  MISMATCH {tid} [{label}] step {idx} request={short(req, 200)}\n"
                  f"    memcached: {short(a)}\n    cachet:    {short(b)}\n   {first_diff(a, b)}", file=out)
    path = os.environ.get("CACHET_DIFF_REPORT")
    if path:
        with open(path, "w") as f:
            f.write(f"cases {COUNTS['cases']} steps {COUNTS['steps']} mismatches {len(MISMATCHES)}\n")
            for tid, label, idx, req, a, b in MISMATCHES:
                if isinstance(a, tuple) and isinstance(b, tuple):
                    f.write(f"{tid} [{label}] step {idx}\n  request:   {short(req, 300)}\n"
                            f" {first_diff(a, b)}\n")
                else:
                    f.write(f"{tid} [{label}] step {idx}\n  request:   {short(req, 300)}\n"
                            f"  memcached: {short(a, 1200)}\n  cachet:    {short(b, 1200)}\n"
                            f" {first_diff(a, b)}\n")


class DiffCase(unittest.TestCase):
    """Subclasses set EXTRA (server flags). One pair per class, started in setUpClass."""

    EXTRA = []
    PRELUDE = b"flush_all\r\n"  # run before each shared-pair case (isolates key state)
    # Crawler commands right after start-up would race both servers' start-up autoexpire crawl (BUSY).
    AWAIT_STARTUP_CRAWL = False

    @classmethod
    def setUpClass(cls):
        cls.pair = Pair(cls.EXTRA).start()
        if cls.AWAIT_STARTUP_CRAWL:
            cls.pair.await_startup_crawls()

    @classmethod
    def tearDownClass(cls):
        cls.pair.stop()

    def _ensure_alive(self):
        p = self.pair
        if not p.cachet.alive():
            rc = p.cachet.proc.returncode
            err = p.cachet.stderr()[-500:]
            p.stop()
            type(self).pair = Pair(self.EXTRA).start()
            if self.AWAIT_STARTUP_CRAWL:
                self.pair.await_startup_crawls()
            raise AssertionError(f"cachet had died (exit {rc}) before this case; "
                                 f"stderr tail {err!r}; pair restarted")

    @staticmethod
    def _run_steps(server, steps, prelude, mode, oracle_replies=None):
        """Send steps on one fresh connection; returns list of replies (bytes or error text)."""
        replies = []
        conn = server.connect()
        try:
            if prelude:
                r = conn.roundtrip(prelude)
                if r != b"OK\r\n":
                    return [f"<prelude {prelude!r} answered {r!r}>"]
            for i, step in enumerate(steps):
                # a callable step sees the oracle's replies to the earlier steps (same for both)
                req = step(oracle_replies[:i] if oracle_replies is not None else list(replies)) \
                    if callable(step) else step
                try:
                    if mode == "eof":
                        if isinstance(req, list):  # several writes
                            for part in req:
                                conn.send(part)
                        else:
                            conn.send(req)
                        replies.append(conn.read_until_eof())
                        break
                    elif mode == "bytewise":
                        conn.send_bytewise(req + conn.MARK)
                        replies.append(conn.read_until(conn.MARK_REPLY)[:-4])
                    elif isinstance(req, list):  # several writes, marker after the last
                        for part in req[:-1]:
                            conn.send(part)
                        replies.append(conn.roundtrip(req[-1]))
                    else:
                        replies.append(conn.roundtrip(req))
                except (HarnessError, OSError) as e:
                    replies.append(f"<{type(e).__name__}: {e}>")
                    break
        finally:
            conn.close()
        return replies

    def compare(self, label, request, a, b):
        """Record and assert equality of two already-collected observations."""
        COUNTS["cases"] += 1
        COUNTS["steps"] += 1
        with self.subTest(label):
            if a != b:
                MISMATCHES.append((self.id(), label, 0, request, a, b))
                self.fail(f"[{label}] differs\n  memcached: {short(a)}\n  cachet:    {short(b)}\n"
                          f" {first_diff(a, b)}")

    def diff(self, label, steps, norm=None, fresh=False, mode="roundtrip",
             extra=None, prelude=None):
        """Compare replies of `steps` (bytes, or callables of the oracle's earlier replies)
        between memcached and cachet. Returns the oracle's replies."""
        if isinstance(steps, (bytes, bytearray)) or callable(steps):
            steps = [steps]
        COUNTS["cases"] += 1
        COUNTS["steps"] += len(steps)
        norm = norm or auto_norm
        if prelude is None:
            prelude = None if fresh else self.PRELUDE
        with self.subTest(label):
            if fresh:
                pair = Pair(self.EXTRA if extra is None else extra).start()
                if self.AWAIT_STARTUP_CRAWL:
                    pair.await_startup_crawls()
            else:
                self._ensure_alive()
                pair = self.pair
            try:
                a = self._run_steps(pair.oracle, steps, prelude, mode)
                for r in a:
                    if isinstance(r, str):
                        raise HarnessError(f"oracle (memcached) failed on {label}: {r}")
                b = self._run_steps(pair.cachet, steps, prelude, mode, oracle_replies=a)
                if not fresh and not pair.cachet.alive():
                    b.append(f"<cachet died: exit {pair.cachet.proc.returncode}, "
                             f"stderr {pair.cachet.stderr()[-300:]!r}>")
            finally:
                if fresh:
                    pair.stop_later()
            na = [norm(x) if norm and isinstance(x, bytes) else x for x in a]
            nb = [norm(x) if norm and isinstance(x, bytes) else x for x in b]
            if na != nb:
                msgs = []
                for i in range(max(len(na), len(nb))):
                    x = na[i] if i < len(na) else "<missing>"
                    y = nb[i] if i < len(nb) else "<missing>"
                    if x != y:
                        st = steps[i] if i < len(steps) else b""
                        req = st(a[:i]) if callable(st) else st
                        MISMATCHES.append((self.id(), label, i, req, x, y))
                        if isinstance(x, tuple) and isinstance(y, tuple):
                            msgs.append(f"step {i} request {short(req, 160)}:\n {first_diff(x, y)}")
                        else:
                            msgs.append(f"step {i} request {short(req, 160)}:\n  memcached: {short(x)}\n"
                                        f"  cachet:    {short(y)}\n {first_diff(x, y)}")
                        break  # later steps usually cascade
                self.fail(f"[{label}] replies differ\n" + "\n".join(msgs))
            return a
