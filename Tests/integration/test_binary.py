"""The binary protocol against memcached 1.6.18, byte for byte: every opcode 1.6.18 answers (plain and
quiet forms), CAS in replies and CAS-checked stores, status codes and error bodies, quiet batching and
what a close drops, bad packets (wrong magic, lengths that disagree, 2^32-1 body lengths, keys and
bodies beyond the limits, unknown opcodes), packets split at every byte and pipelined mixes, `-B`
negotiation, the stat opcode and the counters binary traffic moves. Then the same over TLS (cachet -Z
against memcached -Z) and real binary clients: memccapable (libmemcached's binary tests) and pylibmc
with binary=True.

Requests are hand-built packets. Every step ends with a noop carrying a marker opaque, and the reply is
read up to the marker's reply (or to EOF for steps that close), so no step waits on a timer.
"""

import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest

from difftools import Pair, short, VOLATILE_ITEM_FIELDS
from harness import (HarnessError, Server, Conn, cachet_bin, memcached_bin, free_port, normalise_stats,
                     normalise_settings)
from tlscerts import TestCerts, LiveFiles

# -- packets ------------------------------------------------------------------------------------

GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION, GETK, GETKQ = range(0x0e)
APPEND, PREPEND, STAT, SETQ, ADDQ, REPLACEQ, DELETEQ, INCRQ, DECRQ, QUITQ, FLUSHQ, APPENDQ, PREPENDQ = \
    range(0x0e, 0x1b)
VERBOSITY, TOUCH, GAT, GATQ = 0x1b, 0x1c, 0x1d, 0x1e
SASL_LIST, SASL_AUTH, SASL_STEP, GATK, GATKQ = 0x20, 0x21, 0x22, 0x23, 0x24

MARK_OPAQUE = 0x6d61726b


def pkt(op, key=b"", extras=b"", value=b"", opaque=0, cas=0, magic=0x80, bodylen=None, keylen=None, extlen=None):
    body = len(extras) + len(key) + len(value) if bodylen is None else bodylen
    return struct.pack(">BBHBBHIIQ", magic, op, len(key) if keylen is None else keylen,
                       len(extras) if extlen is None else extlen, 0, 0, body, opaque, cas) + extras + key + value


def store(op, key, value, flags=0, exptime=0, **kw):
    return pkt(op, key, struct.pack(">II", flags, exptime), value, **kw)


def delta(op, key, by=1, initial=0, expiration=0, **kw):
    return pkt(op, key, struct.pack(">QQI", by, initial, expiration), **kw)


def touch(op, key, exptime=0, **kw):
    return pkt(op, key, struct.pack(">I", exptime), **kw)


MARK = pkt(NOOP, opaque=MARK_OPAQUE)
MARK_REPLY = struct.pack(">BBHBBHIIQ", 0x81, NOOP, 0, 0, 0, 0, 0, MARK_OPAQUE, 0)


def responses(data):
    """Response packets → list of (opcode, status, opaque, cas, extras, key, value); trailing bytes
    that are not a whole packet end the list as ('partial', bytes)."""
    out, i = [], 0
    while i + 24 <= len(data):
        magic, op, klen, elen, _dt, status, blen, opaque, cas = struct.unpack(">BBHBBHIIQ", data[i:i + 24])
        if magic != 0x81 or i + 24 + blen > len(data):
            break
        body = data[i + 24:i + 24 + blen]
        out.append((op, status, opaque, cas, body[:elen], body[elen:elen + klen], body[elen + klen:]))
        i += 24 + blen
    if i < len(data):
        out.append(("partial", data[i:]))
    return out


def version_normalised(data):
    """The version reply's body differs on purpose (Cachet speaks a later memcached's protocol)."""
    out, i = b"", 0
    for r in responses(data):
        if r[0] == VERSION and r[1] == 0:
            out += struct.pack(">BBHBBHIIQ", 0x81, VERSION, 0, 0, 0, 0, 3, r[2], r[3]) + b"<v>"
        elif r[0] == "partial":
            out += r[1]
        else:
            op, status, opaque, cas, e, k, v = r
            out += struct.pack(">BBHBBHIIQ", 0x81, op, len(k), len(e), 0, status, len(e) + len(k) + len(v),
                               opaque, cas) + e + k + v
    return out


def stat_pairs(data):
    """A stat reply (packets up to the empty one) → [(name, value)]."""
    pairs = []
    for r in responses(data):
        if r[0] == "partial" or r[0] != STAT:
            continue
        if not r[5] and not r[6]:
            break
        pairs.append((r[5].decode(), r[6].decode()))
    return pairs


VERSION_MARK = pkt(VERSION, opaque=MARK_OPAQUE)


def read_until_version_mark(conn, timeout=None):
    """Reads up to the reply to VERSION_MARK (a version body of any length); returns what came before."""
    head = struct.pack(">BBHBBH", 0x81, VERSION, 0, 0, 0, 0)
    deadline = time.monotonic() + (timeout or conn.timeout)
    while True:
        for m in re.finditer(re.escape(head) + rb"(....)" + struct.pack(">I", MARK_OPAQUE) + b"\0" * 8, conn.buf, re.S):
            end = m.end() + struct.unpack(">I", m.group(1))[0]
            if end == len(conn.buf):
                out, conn.buf = conn.buf[:m.start()], b""
                return out
        chunk = conn._recv("the version marker", deadline)
        if not chunk:
            raise HarnessError(f"{conn.label}: connection closed while waiting for the version marker; "
                               f"received: {conn.buf!r}")
        conn.buf += chunk


def run_steps(conn, steps, version_mark=False):
    """Each step (bytes, a list of writes, or a callable of this server's earlier replies) is sent and
    followed by the marker noop; its reply is what came before the marker's reply. A step given as
    ('eof', data) is read to the end of the stream instead (it closes the connection)."""
    replies = []
    for step in steps:
        eof = isinstance(step, tuple) and step[0] == "eof"
        req = step[1] if eof else step
        if callable(req):
            req = req(replies)
        parts = req if isinstance(req, list) else [req]
        try:
            for p in parts[:-1]:
                conn.send(p)
            if eof:
                conn.send(parts[-1])
                replies.append(conn.read_until_eof() + b"<EOF>")
                break
            if version_mark:   # (a noop is refused before SASL authentication; version never is)
                conn.send(parts[-1] + VERSION_MARK)
                replies.append(read_until_version_mark(conn))
            else:
                conn.send(parts[-1] + MARK)
                replies.append(conn.read_until(MARK_REPLY)[:-len(MARK_REPLY)])
        except (HarnessError, OSError) as e:
            replies.append(f"<{type(e).__name__}: {e}>")
            break
    return replies


# What memcached's own background threads make racy: the LRU maintainer (ages, segments) and the
# crawler reclaiming expired or flushed items.
RACY_STAT_FIELDS = set(VOLATILE_ITEM_FIELDS) | {"reclaimed", "expired_unfetched", "get_expired", "get_flushed"}


def stats_values_normalised(data):
    """Stat packets whose values are racy in memcached itself keep their names and lose their values."""
    out = b""
    for r in responses(data):
        if r[0] == "partial":
            out += r[1]
            continue
        op, status, opaque, cas, e, k, v = r
        if op == STAT and k.decode(errors="replace").split(":")[-1] in RACY_STAT_FIELDS:
            v = b"<v>"
        out += struct.pack(">BBHBBHIIQ", 0x81, op, len(k), len(e), 0, status, len(e) + len(k) + len(v),
                           opaque, cas) + e + k + v
    return out


def cas_zeroed(data):
    out = b""
    for r in responses(data):
        if r[0] == "partial":
            return out + r[1]
        op, status, opaque, cas, e, k, v = r
        out += struct.pack(">BBHBBHIIQ", 0x81, op, len(k), len(e), 0, status, len(e) + len(k) + len(v),
                           opaque, 0) + e + k + v
    return out


def cas_of(reply, index=0):
    """The CAS of the `index`-th response packet in `reply`."""
    return responses(reply)[index][3]


COUNT = {"steps": 0}


class BinaryDiffBase(unittest.TestCase):
    """One memcached/cachet pair per class (EXTRA: their options); each case on fresh connections,
    after a binary flush unless told otherwise."""

    EXTRA = []

    @classmethod
    def setUpClass(cls):
        cls.pair = Pair(cls.EXTRA).start()

    @classmethod
    def tearDownClass(cls):
        cls.pair.stop()

    def connect(self, server):
        return server.connect()

    VERSION_MARK = False   # end each step with a version request instead of a noop

    def diff(self, label, steps, norm=version_normalised, prelude=True, pair=None):
        pair = pair or self.pair
        COUNT["steps"] += len(steps)
        out = []
        for server in (pair.oracle, pair.cachet):
            with self.connect(server) as c:
                if prelude:
                    c.send(pkt(FLUSH) + MARK)
                    got = c.read_until(MARK_REPLY)
                    self.assertEqual(got[:2], b"\x81\x08", f"{server.name}: flush prelude answered {got!r}")
                out.append(run_steps(c, steps, self.VERSION_MARK))
        a, b = out
        for r in a:
            self.assertIsInstance(r, bytes, f"oracle failed in {label}: {r}")
        na = [norm(x) if isinstance(x, bytes) else x for x in a]
        nb = [norm(x) if isinstance(x, bytes) else x for x in b]
        for i, (x, y) in enumerate(zip(na, nb)):
            self.assertEqual(x, y, f"[{label}] step {i} differs\n  memcached: {short(x)}\n  cachet:    {short(y)}")
        self.assertEqual(len(na), len(nb), f"[{label}] cachet answered {len(nb)} of {len(na)} steps: {nb[-1:]}")
        return a


class BinaryDiff(BinaryDiffBase):
    """Every opcode, error and stream shape (-B auto)."""

    # -- retrieval and storage ------------------------------------------------------------------

    def test_get_family(self):
        a = self.diff("get family", [
            store(SET, b"k", b"value", flags=0xdeadbeef, opaque=1),
            pkt(GET, b"k", opaque=2) + pkt(GETK, b"k", opaque=3) + pkt(GETQ, b"k", opaque=4)
            + pkt(GETKQ, b"k", opaque=5),
            pkt(GET, b"nope", opaque=6) + pkt(GETK, b"nope", opaque=7),
            pkt(GETQ, b"nope") + pkt(GETKQ, b"nope") + pkt(GETQ, b"k", opaque=8),
        ])
        hits = responses(a[1])
        self.assertEqual([(r[0], r[1], r[4], r[5], r[6]) for r in hits],
                         [(GET, 0, b"\xde\xad\xbe\xef", b"", b"value"), (GETK, 0, b"\xde\xad\xbe\xef", b"k", b"value"),
                          (GETQ, 0, b"\xde\xad\xbe\xef", b"", b"value"), (GETKQ, 0, b"\xde\xad\xbe\xef", b"k", b"value")])
        self.assertEqual(responses(a[2])[0][6], b"Not found")
        self.assertEqual(len(responses(a[3])), 1, "quiet misses answer nothing")

    def test_store_family(self):
        a = self.diff("set add replace", [
            store(SET, b"a", b"1", opaque=11),
            store(ADD, b"a", b"2", opaque=12),
            store(ADD, b"b", b"2", flags=5, exptime=100),
            store(REPLACE, b"c", b"3"),
            store(REPLACE, b"b", b"3"),
            store(SETQ, b"a", b"q") + store(ADDQ, b"a", b"q") + store(ADDQ, b"d", b"q") + store(REPLACEQ, b"e", b"q")
            + store(REPLACEQ, b"d", b"r"),
            pkt(GET, b"a") + pkt(GET, b"b") + pkt(GET, b"d"),
            store(SET, b"empty", b""),
            pkt(GETK, b"empty"),
        ])
        self.assertEqual(responses(a[1])[0][6], b"Data exists for key.")
        self.assertEqual(responses(a[3])[0][6], b"Not found")
        self.assertEqual([r[1] for r in responses(a[5])], [2, 1], "quiet stores answer only their errors")

    def test_cas(self):
        a = self.diff("cas", [
            store(SET, b"c", b"v1"),
            pkt(GET, b"c"),
            lambda r: store(SET, b"c", b"v2", cas=cas_of(r[1])),
            lambda r: store(SET, b"c", b"v3", cas=cas_of(r[1])),          # stale now
            store(SET, b"none", b"v", cas=12345),
            lambda r: store(REPLACE, b"c", b"v4", cas=cas_of(r[2])),
            lambda r: store(ADD, b"c", b"v5", cas=cas_of(r[5])),
            pkt(APPEND, b"c", value=b"x", cas=1),
            lambda r: pkt(APPEND, b"c", value=b"+", cas=cas_of(r[6])),
            pkt(GETK, b"c"),
            lambda r: pkt(DELETE, b"c", cas=cas_of(r[9]) + 1),
            lambda r: pkt(DELETE, b"c", cas=cas_of(r[9])),
            pkt(DELETE, b"c", cas=5),
            store(SETQ, b"c", b"q", cas=99),
        ])
        self.assertNotEqual(cas_of(a[0]), 0, "a stored value's reply carries its CAS")
        self.assertEqual(responses(a[3])[0][1], 2, "a stale CAS is refused (exists)")
        self.assertEqual(responses(a[4])[0][1], 1, "a CAS store of a missing key: not found")

    def test_append_prepend(self):
        self.diff("append prepend", [
            pkt(APPEND, b"x", value=b"nope"),
            pkt(PREPEND, b"x", value=b"nope"),
            store(SET, b"x", b"mid", flags=3),
            pkt(APPEND, b"x", value=b">"),
            pkt(PREPEND, b"x", value=b"<"),
            pkt(APPENDQ, b"x", value=b"]") + pkt(PREPENDQ, b"x", value=b"[") + pkt(APPENDQ, b"y", value=b"!"),
            pkt(GETK, b"x"),
        ])

    def test_delete(self):
        self.diff("delete", [
            pkt(DELETE, b"d"),
            store(SET, b"d", b"1"),
            pkt(DELETE, b"d", opaque=0xffffffff),
            pkt(GET, b"d"),
            store(SET, b"d", b"1") + pkt(DELETEQ, b"d") + pkt(DELETEQ, b"d"),
        ])

    def test_incr_decr(self):
        a = self.diff("incr decr", [
            delta(INCR, b"n", 5, initial=10),                     # created with the initial value
            delta(INCR, b"n", 5, initial=10),
            delta(DECR, b"n", 100),                               # clamps at 0
            delta(INCR, b"miss", 1, expiration=0xffffffff),       # don't create
            delta(DECR, b"miss", 1, expiration=0xffffffff),
            store(SET, b"big", b"18446744073709551615"),
            delta(INCR, b"big", 2),                               # wraps
            store(SET, b"txt", b"abc"),
            delta(INCR, b"txt", 1),
            delta(INCRQ, b"n", 3) + delta(DECRQ, b"n", 1) + delta(INCRQ, b"txt", 1) + delta(INCRQ, b"q", 1, initial=7),
            pkt(GET, b"n") + pkt(GET, b"q"),
            lambda r: delta(INCR, b"n", 1, cas=cas_of(r[10]) + 1),
            lambda r: delta(INCR, b"n", 1, cas=cas_of(r[10])),
            delta(INCR, b"exp", 1, initial=3, expiration=1000),
            store(SET, b"pad", b"100"),
            delta(DECR, b"pad", 95),
            pkt(GET, b"pad"),
        ])
        self.assertEqual(responses(a[0])[0][6], struct.pack(">Q", 10))
        self.assertEqual(responses(a[1])[0][6], struct.pack(">Q", 15))
        self.assertEqual(responses(a[6])[0][6], struct.pack(">Q", 1))

    def test_touch_gat(self):
        self.diff("touch gat", [
            store(SET, b"t", b"val", flags=9, exptime=100),
            touch(TOUCH, b"t", 1000),
            touch(TOUCH, b"none", 1000),
            touch(GAT, b"t", 0) + touch(GATK, b"t", 0),
            touch(GAT, b"none") + touch(GATK, b"none"),
            touch(GATQ, b"none") + touch(GATKQ, b"none") + touch(GATQ, b"t") + touch(GATKQ, b"t"),
        ])

    def test_misc_opcodes(self):
        self.diff("noop version flush", [
            pkt(NOOP, opaque=1234),
            pkt(VERSION, opaque=77),
            store(SET, b"f", b"1") + pkt(FLUSH, opaque=3) + pkt(GET, b"f"),
            store(SET, b"f", b"1") + pkt(FLUSHQ) + pkt(GET, b"f"),
            store(SET, b"f", b"1") + pkt(FLUSH, extras=struct.pack(">I", 1000)) + pkt(GET, b"f"),
            pkt(FLUSHQ, extras=struct.pack(">I", 0)),
        ])
        self.diff("quit", [store(SET, b"q", b"1") + pkt(GET, b"q"), ("eof", pkt(QUIT, opaque=9))])
        self.diff("quitq", [("eof", store(SETQ, b"q", b"1") + pkt(GET, b"q") + pkt(QUITQ) + pkt(NOOP))])

    def test_large_values(self):
        """Values big enough to be sent from slab memory (and chunked) come back whole in every form."""
        big = bytes(range(256)) * 800   # 200 KB
        self.diff("large values", [
            store(SET, b"big", big, flags=1),
            pkt(GETK, b"big"),
            touch(GAT, b"big", 100),
            pkt(APPEND, b"big", value=b"tail"),
            pkt(GET, b"big"),
        ])

    def test_quiet_hit_without_noop(self):
        """A batch of quiet requests with no noop after it: the hits still go out once input runs out."""
        out = []
        for server in (self.pair.oracle, self.pair.cachet):
            with self.connect(server) as c:
                c.send(store(SET, b"qh", b"value") + MARK)
                c.read_until(MARK_REPLY)
                c.send(pkt(GETKQ, b"qh", opaque=1) + pkt(GETQ, b"none") + pkt(GETQ, b"qh", opaque=2))
                out.append(c.read_exact(2 * 24 + 2 * 4 + 2 + 2 * 5))
        self.assertEqual(cas_zeroed(out[0]), cas_zeroed(out[1]))
        self.assertEqual([(r[0], r[5], r[6]) for r in responses(out[0])], [(GETKQ, b"qh", b"value"), (GETQ, b"", b"value")])

    # -- errors and bad packets ------------------------------------------------------------------

    def test_unknown_and_sasl_without_S(self):
        self.diff("unknown opcodes", [
            pkt(0x50),
            # memcached discards the body length counted from the end of the key: extras and key again
            pkt(0x50, key=b"abc", value=b"xyz") + b"\0" * 3,
            pkt(0x50, key=b"k", extras=b"ee", value=b"body") + b"\0" * 3,
            pkt(VERBOSITY, extras=struct.pack(">I", 1)) + b"\0\0\0\0",
            pkt(SASL_LIST),
            pkt(SASL_AUTH, b"PLAIN", value=b"\0user\0pass"),
            pkt(SASL_STEP, b"PLAIN", value=b"xx"),
            pkt(0xff, opaque=5),
        ])

    def test_closing_errors(self):
        cases = {
            "key longer than body": pkt(GET, b"abc", bodylen=2),
            "extras+key longer than body": pkt(SET, b"abc", extras=b"\0" * 8, bodylen=9),
            "key of 251": pkt(GET, b"a" * 251),
            "get with extras": pkt(GET, b"abc", extras=b"1234"),
            "get without key": pkt(GET),
            "set without extras": pkt(SET, b"k", value=b"v"),
            "incr with short extras": pkt(INCR, b"k", extras=b"\0" * 8),
            "noop with a body": pkt(NOOP, bodylen=5) + b"12345",
            "version with extras": pkt(VERSION, extras=b"1234"),
            "touch without extras": pkt(TOUCH, b"k"),
            "flush with a key": pkt(FLUSH, b"k"),
            "quit with a body": pkt(QUIT, bodylen=1) + b"x",
            "stat with extras": pkt(STAT, extras=b"1234"),
            "2^32-1 body get": pkt(GET, b"abc", bodylen=0xffffffff),
            "wrong magic": b"\x81" + pkt(NOOP)[1:],
            "text magic": b"\x00" * 24,
            "key that just fits the read buffer": pkt(GET, b"a" * (16384 - 24)),
        }
        for label, req in cases.items():
            with self.subTest(label):
                a = self.diff(label, [store(SET, b"pre", b"1"), ("eof", req)])
                self.assertTrue(a[-1].endswith(b"<EOF>"))
        # A key that cannot fit memcached's 16 KB read buffer: a close without a reply. memcached stops
        # reading there (bytes_read differs from then on), so this one runs on its own pair.
        pair = Pair(self.EXTRA).start()
        try:
            self.diff("key beyond the read buffer", [("eof", pkt(GET, b"a" * 20000))], pair=pair)
        finally:
            pair.stop()
        # after a closing error nothing pipelined behind it is answered
        self.diff("close drops what follows", [("eof", pkt(GET, b"x", extras=b"1234") + pkt(NOOP) + pkt(VERSION))])

    def test_too_large_and_swallow(self):
        big = b"x" * (1024 * 1024)
        self.diff("too large", [
            store(SET, b"big", b"small"),
            store(SET, b"big", big) + pkt(GET, b"big"),          # refused, the old value dropped
            store(ADD, b"big2", big) + store(REPLACEQ, b"big3", big) + pkt(APPEND, b"big", value=big),
            store(SET, b"h", b"", bodylen=0xffffffff) + pkt(GET, b"h"),   # negative value length: no swallow
            [store(SET, b"s", big)[:5000], store(SET, b"s", big)[5000:]],   # swallowed across writes
        ])

    def test_quiet_batches_and_culls(self):
        self.diff("quiet batch", [
            store(SETQ, b"a", b"1") + store(SETQ, b"b", b"2") + pkt(GETQ, b"a") + pkt(GETQ, b"zz")
            + pkt(GETKQ, b"b") + pkt(DELETEQ, b"zz") + store(ADDQ, b"a", b"x") + pkt(GETK, b"a"),
        ])
        # memcached writes a reply at once only after an error, a noop or quit: a close (bad magic) drops
        # the others still queued.
        self.diff("close culls queued replies", [("eof", pkt(GETQ, b"zz") + store(SET, b"x", b"v") + b"\x81" + b"\0" * 23)])
        self.diff("errors are written before a close", [
            ("eof", store(SETQ, b"x", b"v") + store(ADD, b"x", b"v") + store(SET, b"y", b"v") + b"\x81" + b"\0" * 23)])
        self.diff("noop flushes before a close", [
            ("eof", store(SET, b"x", b"v") + pkt(NOOP) + pkt(GETK, b"x") + b"\x81" + b"\0" * 23)])

    def test_split_and_pipelined(self):
        seq = (store(SET, b"sp", b"hello world", flags=1) + pkt(GETK, b"sp") + delta(INCR, b"ctr", 2, initial=1)
               + pkt(APPENDQ, b"sp", value=b"!") + touch(GATK, b"sp") + pkt(DELETE, b"nope") + pkt(VERSION))
        self.diff("split at every byte", [[seq[i:i + 1] for i in range(len(seq))]])
        self.diff("split in two everywhere", [[seq[:i], seq[i:]] for i in range(1, len(seq), 7)])
        mix = b"".join(store(SETQ, b"k%d" % i, b"v%d" % i) for i in range(100))
        mix += b"".join(pkt(GETKQ, b"k%d" % i) for i in range(0, 120, 3))
        mix += b"".join(delta(INCRQ, b"c", 1) for _ in range(50)) + pkt(GET, b"c")
        self.diff("pipelined mix", [mix, mix])

    def test_counters_after_binary_traffic(self):
        """Binary commands move the same counters as text ones (read back with the text `stats`)."""
        steps = [store(SET, b"a", b"1") + pkt(GET, b"a") + pkt(GETQ, b"zz") + pkt(GETK, b"nope")
                 + delta(INCR, b"a", 1) + delta(DECR, b"zz", 1, expiration=0xffffffff) + delta(INCR, b"new", 1)
                 + pkt(DELETE, b"a") + pkt(DELETE, b"a") + touch(TOUCH, b"new") + touch(GAT, b"zz")
                 + store(SET, b"c", b"1", cas=7) + pkt(APPEND, b"new", value=b"1", cas=3)
                 + store(ADD, b"n2", b"x" * (2 << 20))]
        pair = Pair(self.EXTRA).start()
        try:
            self.diff("traffic", steps, pair=pair, prelude=False)
            got = []
            for server in (pair.oracle, pair.cachet):
                with server.connect() as c:
                    got.append(dict(normalise_stats(c.stats())))
            for name in ("cmd_get", "get_hits", "get_misses", "cmd_set", "cmd_touch", "touch_hits", "touch_misses",
                         "incr_hits", "incr_misses", "decr_misses", "delete_hits", "delete_misses", "cas_misses",
                         "cas_badval", "cmd_flush", "store_too_large", "curr_items", "total_items"):
                self.assertEqual(got[0][name], got[1][name], f"{name}: memcached {got[0][name]} cachet {got[1][name]}")
            self.assertEqual(got[0]["cmd_get"], "3")
        finally:
            pair.stop()


class BinaryStats(BinaryDiffBase):
    """The stat opcode on a pair of its own that sees no flush: items a flush left behind are reclaimed
    by memcached's background threads whenever they get to it, which would make counts racy."""

    def diff(self, label, steps, norm=version_normalised, prelude=False, pair=None):
        return super().diff(label, steps, norm, prelude=False, pair=pair)

    def test_stat_opcode(self):
        def stats_norm(data):
            # memcached -Z 1.6.18 lists ssl_proto_errors elsewhere than Cachet (test_tls ignores it too)
            return normalise_stats([p for p in stat_pairs(data) if p[0] != "ssl_proto_errors"])

        def settings_norm(data):
            return normalise_settings(stat_pairs(data))

        a = self.diff("stat all", [pkt(STAT, opaque=42)], norm=stats_norm)
        self.assertGreater(len(stat_pairs(a[0])), 50)
        self.diff("stat settings", [pkt(STAT, b"settings")], norm=settings_norm)
        self.diff("stat groups", [
            store(SET, b"s1", b"x" * 100) + store(SET, b"s2", b"y" * 2000),
            pkt(STAT, b"items"), pkt(STAT, b"slabs", opaque=3), pkt(STAT, b"sizes"),
            pkt(STAT, b"bogus"), pkt(STAT, b"conns"), pkt(STAT, b"cachedump"), pkt(STAT, b"detail x"),
            pkt(STAT, b"detail on") + store(SET, b"p:1", b"1") + pkt(GET, b"p:1") + pkt(STAT, b"detail dump"),
            pkt(STAT, b"detail off") + pkt(STAT, b"sizes_enable") + pkt(STAT, b"sizes_disable"),
        ], norm=stats_values_normalised)
        self.diff("stat reset", [pkt(STAT, b"reset"), pkt(STAT, b"resetfoo")])


class BinaryFlushDisabled(BinaryDiffBase):
    """-F: the flush opcode is an auth failure (and not counted)."""

    EXTRA = ["-F"]

    def test_flush_refused(self):
        self.diff("flush refused", [pkt(FLUSH), pkt(FLUSHQ, extras=b"\0\0\0\x05")], prelude=False)
        with self.pair.cachet.connect() as c:
            self.assertEqual(dict(c.stats())["cmd_flush"], "0")


class BinaryOutOfMemory(BinaryDiffBase):
    """-M -m 2: stores that find no memory get memcached's "Out of memory allocating item"."""

    EXTRA = ["-M", "-m", "2"]

    def test_out_of_memory(self):
        fill = b"".join(store(SETQ, b"k%d" % i, b"x" * 50000) for i in range(80))
        a = self.diff("fill up", [fill, store(SET, b"one_more", b"y" * 50000), delta(INCR, b"ctr", 1, initial=5)],
                      prelude=False)
        self.assertIn(b"Out of memory allocating item", a[0])


class BindingProtocol(unittest.TestCase):
    """-B ascii / binary / auto: what each does with the other protocol."""

    def server(self, extra):
        srv = Server(cachet_bin(), extra).start()
        self.addCleanup(srv.stop)
        return srv

    def compare(self, label, extra, data, until=None):
        out = []
        for binary in (memcached_bin(), cachet_bin()):
            srv = Server(binary, extra, name=os.path.basename(binary)).start()
            try:
                with srv.connect() as c:
                    c.send(data)
                    out.append(c.read_until(until) if until else c.read_until_eof() + b"<EOF>")
            finally:
                srv.stop()
        self.assertEqual(version_normalised(out[0]).replace(b"1.6.18", b"<v>"),
                         version_normalised(out[1]).replace(b"1.6.45", b"<v>"), label)
        return out[0]

    def test_binary_only(self):
        a = self.compare("binary server, binary client", ["-B", "binary"], store(SET, b"k", b"v") + pkt(GET, b"k") + MARK,
                         until=MARK_REPLY)
        self.assertEqual(responses(a)[1][6], b"v")
        self.compare("binary server, text client", ["-B", "binary"], b"get a_key_long_enough_for_a_header\r\n")

    def test_ascii_only(self):
        out = []
        for binary in (memcached_bin(), cachet_bin()):
            srv = Server(binary, ["-B", "ascii"], name=os.path.basename(binary)).start()
            try:
                with srv.connect() as c:
                    out.append(c.roundtrip(pkt(GET, b"key") + b"\r\n"))
            finally:
                srv.stop()
        self.assertEqual(out[0], out[1])
        self.assertTrue(out[0].startswith(b"ERROR"), out[0])

    def test_negotiation_per_connection(self):
        srv = self.server([])
        with srv.connect() as text, srv.connect() as binary:
            text.send(b"set k 0 0 1\r\nv\r\n")
            self.assertEqual(text.read_until(b"\r\n"), b"STORED\r\n")
            binary.send(pkt(GETK, b"k") + MARK)
            r = responses(binary.read_until(MARK_REPLY))
            self.assertEqual((r[0][0], r[0][1], r[0][5], r[0][6]), (GETK, 0, b"k", b"v"))
            # the text connection stays text even when a 0x80 byte comes later
            text.send(pkt(NOOP) + b"\r\nversion\r\n")
            self.assertTrue(text.read_until(b"VERSION 1.6.45\r\n").startswith(b"ERROR"))

    def test_settings_shows_binding(self):
        for arg, shown in (("auto", "auto-negotiate"), ("ascii", "ascii"), ("binary", "binary")):
            with self.subTest(arg):
                out = []
                for binary in (memcached_bin(), cachet_bin()):
                    srv = Server(binary, ["-B", arg], name=os.path.basename(binary)).start()
                    try:
                        with srv.connect() as c:
                            if arg == "binary":
                                c.send(pkt(STAT, b"settings") + MARK)
                                pairs = dict(stat_pairs(c.read_until(MARK_REPLY)))
                            else:
                                pairs = dict(c.stats("settings"))
                            out.append(pairs["binding_protocol"])
                    finally:
                        srv.stop()
                self.assertEqual(out, [shown, shown])


# -- TLS ------------------------------------------------------------------------------------------

def tls_client_context():
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE   # a test CA; what is checked here is the protocol inside TLS
    return ctx


def start_tls_server(live, binary, name, extra=()):
    """A server with -Z on `tls_port` (and a plaintext notls: listener for the harness's probe)."""
    port, plain = free_port(), free_port()
    args = ["-u", "root", "-U", "0", "-p", str(port), "-Z", "-l", f"127.0.0.1:{port},notls:127.0.0.1:{plain}",
            "-o", f"ssl_chain_cert={live.chain},ssl_key={live.key}", *extra]
    srv = Server(binary, args=args, port=plain, name=name).start()
    srv.tls_port = port
    return srv


def tls_connection(ctx, server):
    raw = socket.create_connection(("127.0.0.1", server.tls_port), timeout=5)
    try:
        s = ctx.wrap_socket(raw)
    except BaseException:
        raw.close()
        raise
    return Conn(s, label=f"{server.name}/tls")


class BinaryOverTLS(BinaryDiff):
    """The same packets over TLS: cachet -Z against memcached -Z."""

    @classmethod
    def setUpClass(cls):
        cls.certs = TestCerts.create()
        cls.live = LiveFiles(cls.certs, "binary")
        cls.ctx = tls_client_context()
        cls.pair = types.SimpleNamespace()
        try:
            cls.pair.oracle = start_tls_server(cls.live, memcached_bin(), "memcached")
            try:
                cls.pair.cachet = start_tls_server(cls.live, cachet_bin(), "cachet")
            except BaseException:
                cls.pair.oracle.stop()
                raise
        except BaseException:
            cls.certs.cleanup()
            raise

    def own_cachet(self):
        """A Cachet -Z of its own, for cases without a memcached counterpart (the shared pair's state
        must stay the same on both sides)."""
        srv = start_tls_server(self.live, cachet_bin(), "cachet")
        self.addCleanup(srv.stop)
        return srv

    @classmethod
    def tearDownClass(cls):
        for s in (cls.pair.oracle, cls.pair.cachet):
            s.stop()
        cls.certs.cleanup()

    def connect(self, server):
        return tls_connection(self.ctx, server)

    # Cases that start their own plaintext pair or measure the read buffer are not repeated over TLS;
    # nor are values sent in many TLS records (memcached 1.6.18 -Z stalls on them and on what is
    # pipelined after them), which are checked on Cachet alone below.
    test_counters_after_binary_traffic = None
    test_closing_errors = None
    test_too_large_and_swallow = None
    test_large_values = None

    def test_split_and_pipelined(self):
        """memcached 1.6.18 -Z stalls on some requests split across TLS records, so the split forms are
        compared with Cachet's own reply to the unsplit stream (CAS values zeroed: the state moved on),
        and the unsplit stream with memcached -Z."""
        seq = (store(SET, b"sp", b"hello world", flags=1) + pkt(GETK, b"sp") + delta(INCR, b"ctr", 2, initial=1)
               + pkt(APPENDQ, b"sp", value=b"!") + touch(GATK, b"sp") + pkt(DELETE, b"nope") + pkt(VERSION))
        whole = self.diff("unsplit over TLS", [seq])[0]
        with self.connect(self.own_cachet()) as c:
            for label, parts in (("every byte", [seq[i:i + 1] for i in range(len(seq))]),
                                 ("in two", [seq[:len(seq) // 2 + 3], seq[len(seq) // 2 + 3:]])):
                c.send(pkt(FLUSH) + MARK)
                c.read_until(MARK_REPLY)
                got = run_steps(c, [parts])[0]
                self.assertEqual(cas_zeroed(got).replace(b"1.6.45", b"1.6.18"), cas_zeroed(whole), label)

    def test_tls_swallow_and_large_values(self):
        big = b"x" * (1024 * 1024)
        with self.connect(self.own_cachet()) as c:
            r = run_steps(c, [store(SET, b"s", b"small"),
                              [store(SET, b"s", big)[:5000], store(SET, b"s", big)[5000:] + pkt(GETK, b"s")]])
            self.assertEqual([(x[0], x[1], x[6]) for x in responses(r[1])],
                             [(SET, 3, b"Too large."), (GETK, 1, b"")])
            big = bytes(range(256)) * 800
            r = run_steps(c, [store(SET, b"big", big, flags=1) + pkt(GETK, b"big") + touch(GATK, b"big")])
            self.assertEqual([(x[0], x[1], x[4], x[5], x[6]) for x in responses(r[0])][1:],
                             [(GETK, 0, b"\0\0\0\x01", b"big", big), (GATK, 0, b"\0\0\0\x01", b"big", big)])

    def test_tls_stat(self):
        self.diff("stat settings and an unknown group over TLS", [pkt(STAT, b"settings"), pkt(STAT, b"bogus")],
                  norm=lambda d: normalise_settings(stat_pairs(d)))

    def test_tls_really_used(self):
        with self.connect(self.pair.cachet) as c:
            self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
            c.send(pkt(VERSION) + MARK)
            self.assertEqual(responses(c.read_until(MARK_REPLY))[0][6], b"1.6.45")

    def test_tls_closing_errors(self):
        for label, req in (("wrong magic", b"\x81" + pkt(NOOP)[1:]), ("key of 251", pkt(GET, b"a" * 251)),
                           ("lengths disagree", pkt(GET, b"abc", bodylen=2))):
            with self.subTest(label):
                self.diff(label, [store(SET, b"pre", b"1"), ("eof", req)])


class HeldRepliesDoNotStall(unittest.TestCase):
    """Cachet alone: while an unknown opcode's long body is discarded its replies are kept back (as
    memcached does); with megabytes of get replies queued before it, everything still arrives once the
    client has sent the whole body (a sender thread writes while this one reads)."""

    def test_big_replies_around_a_swallow(self):
        srv = Server(cachet_bin(), ["-I", "2m"]).start()
        self.addCleanup(srv.stop)
        value = os.urandom(1 << 20)
        with srv.connect() as c:
            c.send(store(SET, b"big", value) + MARK)
            c.read_until(MARK_REPLY)
            body = b"x" * (3 << 20)
            stream = pkt(GET, b"big") * 6 + pkt(0x50, key=b"k", value=body) + b"k" + pkt(GET, b"big") + MARK
            errors = []

            def send():
                try:
                    c.sock.sendall(stream)
                except OSError as e:
                    errors.append(e)
            t = threading.Thread(target=send)
            t.start()
            try:
                got = responses(c.read_until(MARK_REPLY, timeout=30))
            finally:
                t.join(30)
            self.assertFalse(errors)
            self.assertEqual([(r[0], r[1], r[6] == value) for r in got],
                             [(GET, 0, True)] * 6 + [(0x50, 0x81, False), (GET, 0, True), (NOOP, 0, False)])


# -- SASL -----------------------------------------------------------------------------------------

SASL_USER, SASL_PASSWORD = b"testuser", b"secret"
PLAIN = b"\0" + SASL_USER + b"\0" + SASL_PASSWORD


class SaslSetup:
    """A SASL configuration directory (SASL_CONF_PATH) naming a sasldb that saslpasswd2 made with one
    user, for both servers (they read SASL_CONF_PATH from their environment)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cachet-sasl-")
        db = os.path.join(self.dir, "sasldb2")
        with open(os.path.join(self.dir, "memcached.conf"), "w") as f:
            f.write(f"mech_list: plain\nsasldb_path: {db}\n")
        tool = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
        if not os.path.exists(tool):
            shutil.rmtree(self.dir)
            raise HarnessError("saslpasswd2 is not installed (Scripts/bootstrap installs sasl2-bin)")
        subprocess.run([tool, "-p", "-a", "memcached", "-c", "-f", db, SASL_USER.decode()], input=SASL_PASSWORD,
                       check=True, timeout=10, capture_output=True)
        self.saved = os.environ.get("SASL_CONF_PATH")
        os.environ["SASL_CONF_PATH"] = self.dir

    def cleanup(self):
        if self.saved is None:
            os.environ.pop("SASL_CONF_PATH", None)
        else:
            os.environ["SASL_CONF_PATH"] = self.saved
        shutil.rmtree(self.dir, ignore_errors=True)


class BinarySasl(BinaryDiffBase):
    """-S against memcached -S: mechanisms, PLAIN with the right and wrong password, steps out of order,
    bad mechanisms, what an unauthenticated client may do, and the auth counters."""

    EXTRA = ["-S"]
    VERSION_MARK = True

    @classmethod
    def setUpClass(cls):
        cls.sasl = SaslSetup()
        try:
            super().setUpClass()
        except BaseException:
            cls.sasl.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.sasl.cleanup()

    def diff(self, label, steps, norm=version_normalised, prelude=False, pair=None):
        return super().diff(label, steps, norm, prelude=False, pair=pair)

    def test_authentication(self):
        auth = pkt(SASL_AUTH, b"PLAIN", value=PLAIN)
        a = self.diff("list and auth", [pkt(SASL_LIST, opaque=1), auth, store(SET, b"a", b"1") + pkt(GETK, b"a")])
        self.assertEqual(responses(a[0])[0][6], b"PLAIN")
        self.assertEqual(responses(a[1])[0][6], b"Authenticated")
        self.diff("version before auth", [pkt(VERSION), ("eof", pkt(GET, b"a"))])
        for label, steps in (
                ("wrong password", [pkt(SASL_AUTH, b"PLAIN", value=b"\0testuser\0wrong"), ("eof", pkt(NOOP))]),
                ("unknown user", [pkt(SASL_AUTH, b"PLAIN", value=b"\0nobody\0secret"), ("eof", pkt(NOOP))]),
                ("step before auth", [pkt(SASL_STEP, b"PLAIN", value=PLAIN), ("eof", pkt(NOOP))]),
                ("unknown mechanism", [pkt(SASL_AUTH, b"FOO", value=b"x"), ("eof", pkt(NOOP))]),
                ("mechanism name over 32", [pkt(SASL_AUTH, b"M" * 33, value=b"xy"), ("eof", pkt(NOOP))]),
                ("no data", [pkt(SASL_AUTH, b"PLAIN"), ("eof", pkt(NOOP))]),
                ("a second auth that fails", [auth, pkt(SASL_AUTH, b"PLAIN", value=b"\0testuser\0no"),
                                              ("eof", pkt(NOOP))]),
                ("list again signs out", [auth, pkt(SASL_LIST), ("eof", pkt(NOOP))]),
                ("auth split in pieces", [[auth[:10], auth[10:30], auth[30:]], pkt(GET, b"a")]),
                ("auth pipelined with requests", [auth + store(SETQ, b"b", b"2") + pkt(GETK, b"b")]),
                ("unauthenticated quiet get", [("eof", pkt(GETQ, b"a") + pkt(NOOP))]),
                ("text is refused", [("eof", b"get a_key_that_fills_a_header\r\n")])):
            with self.subTest(label):
                self.diff(label, steps)

    def test_counters_and_settings(self):
        self.diff("auth traffic", [pkt(SASL_AUTH, b"PLAIN", value=PLAIN),
                                   pkt(SASL_AUTH, b"PLAIN", value=b"\0testuser\0x"),
                                   pkt(SASL_AUTH, b"PLAIN", value=PLAIN)])
        got = []
        for server in (self.pair.oracle, self.pair.cachet):
            with server.connect() as c:
                c.send(pkt(SASL_AUTH, b"PLAIN", value=PLAIN) + pkt(STAT) + pkt(STAT, b"settings") + VERSION_MARK)
                data = read_until_version_mark(c)
                pairs = stat_pairs(data)
                settings = stat_pairs(data[data.index(b"\x81\x10\x00\x00" + b"\0" * 20) + 24:])
                got.append((dict(pairs)["auth_cmds"], dict(pairs)["auth_errors"], dict(settings)["auth_enabled_sasl"],
                            dict(settings)["binding_protocol"]))
        self.assertEqual(got[0], got[1])
        self.assertEqual(got[0][2:], ("yes", "binary"))

    def test_pylibmc_sasl(self):
        import pylibmc
        good = pylibmc.Client([f"127.0.0.1:{self.pair.cachet.port}"], binary=True,
                              username=SASL_USER.decode(), password=SASL_PASSWORD.decode())
        bad = pylibmc.Client([f"127.0.0.1:{self.pair.cachet.port}"], binary=True,
                             username=SASL_USER.decode(), password="wrong")
        try:
            self.assertTrue(good.set("sk", b"v"))
            self.assertEqual(good.get("sk"), b"v")
            with self.assertRaises(pylibmc.Error):
                bad.set("sk", b"w")
            self.assertEqual(good.get("sk"), b"v")
        finally:
            good.disconnect_all()
            bad.disconnect_all()


class SaslStartup(unittest.TestCase):
    """-S with a -B that lets text in, and without a SASL configuration: memcached's messages and exit codes."""

    def test_startup_errors(self):
        for args, env in ((["-S", "-B", "ascii"], {}), (["-S", "-B", "auto"], {}), (["-S"], {"SASL_CONF_PATH": None})):
            with self.subTest(args):
                out = []
                for binary in (memcached_bin(), cachet_bin()):
                    e = dict(os.environ)
                    e.pop("SASL_CONF_PATH", None)
                    r = subprocess.run([binary, "-u", "root", "-U", "0", "-p", str(free_port()), "-l", "127.0.0.1",
                                        *args], capture_output=True, timeout=10, env=e, stdin=subprocess.DEVNULL)
                    out.append((r.returncode, r.stderr.decode().strip().split("\n")[-1]))
                self.assertEqual(out[0], out[1])
                self.assertNotEqual(out[0][0], 0)


class SaslOverTLS(BinaryDiffBase):
    """-S -Z: the SASL exchange inside TLS, against memcached -S -Z."""

    VERSION_MARK = True

    @classmethod
    def setUpClass(cls):
        cls.sasl = SaslSetup()
        cls.certs = TestCerts.create()
        cls.live = LiveFiles(cls.certs, "sasl")
        cls.ctx = tls_client_context()
        cls.pair = types.SimpleNamespace()
        try:
            cls.pair.oracle = start_tls_server(cls.live, memcached_bin(), "memcached", ["-S"])
            try:
                cls.pair.cachet = start_tls_server(cls.live, cachet_bin(), "cachet", ["-S"])
            except BaseException:
                cls.pair.oracle.stop()
                raise
        except BaseException:
            cls.certs.cleanup()
            cls.sasl.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            for s in (cls.pair.oracle, cls.pair.cachet):
                s.stop()
        finally:
            cls.certs.cleanup()
            cls.sasl.cleanup()

    def connect(self, server):
        return tls_connection(self.ctx, server)

    def test_sasl_over_tls(self):
        auth = pkt(SASL_AUTH, b"PLAIN", value=PLAIN)
        a = self.diff("auth over TLS", [pkt(SASL_LIST), auth, store(SET, b"t", b"1") + pkt(GETK, b"t")], prelude=False)
        self.assertEqual(responses(a[1])[0][6], b"Authenticated")
        self.diff("refused over TLS", [pkt(SASL_AUTH, b"PLAIN", value=b"\0testuser\0bad"), ("eof", pkt(GET, b"t"))],
                  prelude=False)


# -- real clients ---------------------------------------------------------------------------------

class BinaryClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(cachet_bin()).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_memccapable_binary(self):
        argv = ["/usr/bin/memccapable", "-h", "127.0.0.1", "-p", str(self.srv.port), "-t", "5"]
        try:
            p = subprocess.run(argv, capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
            out, rc = p.stdout.decode(errors="replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b"").decode(errors="replace"), None
        results = re.findall(r"^((?:binary|ascii) [\w ]+?)\s+\[(\w+)\]", out, re.M)
        binary = [(n, r) for n, r in results if n.startswith("binary")]
        print(f"\n[memccapable] {len(results)} tests ({len(binary)} binary)", file=sys.stderr)
        self.assertIsNotNone(rc, f"memccapable hung after {results[-1:] or 'start'}: {out[-500:]!r}")
        failed = [n for n, r in results if r != "pass"]
        self.assertEqual(rc, 0, f"memccapable exit {rc}; failed: {failed}; {out[-1500:]!r}")
        self.assertFalse(failed)
        self.assertGreaterEqual(len(binary), 25, f"fewer binary tests ran than expected: {binary}")

    def test_pylibmc_binary(self):
        try:
            import pylibmc
        except ImportError:
            self.fail("python3-pylibmc is not installed (Scripts/bootstrap installs it)")
        c = pylibmc.Client([f"127.0.0.1:{self.srv.port}"], binary=True, behaviors={"cas": True})
        try:
            self.assertTrue(c.set("pk", b"v1"))
            self.assertEqual(c.get("pk"), b"v1")
            self.assertFalse(c.add("pk", b"v2"))
            self.assertTrue(c.replace("pk", b"v3"))
            self.assertTrue(c.append("pk", b"+"))
            self.assertTrue(c.prepend("pk", b"-"))
            self.assertEqual(c.get("pk"), b"-v3+")
            value, cas = c.gets("pk")
            self.assertEqual(value, b"-v3+")
            self.assertTrue(c.cas("pk", b"new", cas))
            self.assertFalse(c.cas("pk", b"newer", cas))
            self.assertEqual(c.get("pk"), b"new")
            c.set_multi({"m1": 1, "m2": "two", "m3": b"three"})
            self.assertEqual(c.get_multi(["m1", "m2", "m3", "none"]), {"m1": 1, "m2": "two", "m3": b"three"})
            c.set("cnt", 10)
            self.assertEqual(c.incr("cnt", 5), 15)
            self.assertEqual(c.decr("cnt", 20), 0)
            self.assertTrue(c.delete("cnt"))
            self.assertFalse(c.delete("cnt"))
            self.assertTrue(c.touch("pk", 100))
            big = os.urandom(500 * 1024)
            self.assertTrue(c.set("big", big))
            self.assertEqual(c.get("big"), big)
            with self.assertRaises(pylibmc.TooBig):
                c.set("huge", b"x" * (2 << 20))
            st = c.get_stats()
            self.assertEqual(len(st), 1)
            self.assertIn("cmd_get", st[0][1])
            c.flush_all()
            self.assertIsNone(c.get("pk"))
        finally:
            c.disconnect_all()


def tearDownModule():
    print(f"\n[test_binary] differential request steps compared: {COUNT['steps']}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
