#!/usr/bin/python3
"""Differential fuzzer: generated request sequences sent to memcached 1.6.18 (the oracle) and to
Cachet, replies compared byte for byte after normalisation.

Each case is one fresh connection with its own key namespace. The request bytes are sent in
one or more writes (split at random byte positions), followed by `mn\\r\\n`; then the client
half-closes its side and reads until the server closes. Both servers close a connection once
they read EOF after the last complete request, so the collected reply does not depend on
timing, and a connection the server closed earlier (`quit`, an over-long line) is part of it.

With `--udp` the same cases go over UDP instead (both servers `-U <port> -t 1`, so one UDP "connection"
serves them in order): each write becomes one datagram behind memcached's 8-byte header, then an `mn`
datagram; the reply datagrams (headers shown) are read until its `MN`. A case that leaves a server reading
a value from the socket gets up to four datagrams of CRLFs (the same for both) until the `MN` comes.

    make fuzz-diff SEED=7 CASES=3000
    /usr/bin/python3 Tests/fuzzdiff/fuzzdiff.py --seed 7 --cases 3000 [--opts '-m 64 ...'] [-v] [--udp]
    CACHET_BIN=/usr/bin/memcached ...   # the oracle against itself: checks the normalisation
    FUZZDIFF_NO_BINARY=1 ...            # the same cases, with the binary-protocol ones (1 in 10) as text

A binary-protocol case is one write of random packets (every opcode, quiet forms, CAS, lengths that
disagree, unknown opcodes, wrong magic) ending with a noop.

Exit status: 0 when every case matched, 1 when any differed (each difference is printed with the
case's input as the repr of the bytes sent), 2 when a server could not be started.

Only stdlib; run with Debian's /usr/bin/python3. Reuses Tests/integration/harness.py (servers,
free ports, version/stats normalisation).
"""

import argparse
import base64
import os
import random
import re
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import (Server, HarnessError, cachet_bin, memcached_bin,  # noqa: E402
                     normalise_version, normalise_stats, normalise_settings, parse_stats,
                     DETERMINISTIC_STATS)

# Server options both processes get. `-o no_lru_maintainer`: memcached's LRU maintainer moves items
# between HOT/WARM/COLD and reclaims expired ones in the background, which makes `stats items` and
# the expiry counters racy in the oracle itself; without it both servers have one LRU per class.
# `-I 4k` with `slab_chunk_max=4096` (no chunked items, whose `stats slabs` differ by design) makes
# values larger than the item limit cheap to send.
DEFAULT_OPTS = "-o no_lru_maintainer -I 4k -o slab_chunk_max=4096"

# What the generator deliberately never produces, in one place. Each entry: what, and why.
NOT_GENERATED = [
    ("`lru temp_ttl <n >= 0>`, `lru mode segmented`",
     "documented difference: Cachet has no segmented/temporary LRU (a later issue)"),
    ("a binary set/add/replace/append/prepend whose body length makes its value length negative (near 2^32)",
     "memcached answers 'Too large.' and then discards a byte count left over from an earlier connection on "
     "the same descriptor (its swallow count is not reset): not reproducible"),
    ("binary cases split into several writes, general/settings/items stats over the binary protocol",
     "which replies a close drops depends on memcached's read boundaries; stat values are process "
     "specific (Tests/integration/test_binary.py compares them normalised)"),
    ("meta `E<cas>` (mg/ms/md/ma), `md x`, `ms s`, `ms MA|MP N<ttl>`",
     "documented superset: later memcached flags Cachet implements; Tests/integration/test_meta_superset.py"),
    ("`slabs reassign` between two valid classes",
     "documented difference: Cachet never moves slab pages"),
    ("`watch`, `lru_crawler metadump|crawl|enable|disable`",
     "the connection (or a thread) is handed over and runs asynchronously in memcached: no bounded reply"),
    ("TTLs and delays of 1..3 s, `flush_all <positive delay>`",
     "the two servers run a case a few ms apart: a second boundary between them changes the outcome"),
    ("non-get lines longer than 2048 bytes that do end in a newline within 17 KB (also a long multiget\n"
     "     line after a misframed data block, which would be read from its middle)",
     "whether memcached closes depends on how the bytes were split into reads and its 16 KB read windows"),
    ("split writes in a case with a get key over 250 bytes, an over-long line or an HTTP request;\n"
     "     such cases longer than 12 KB",
     "memcached drops the replies it has not transmitted, and what it transmitted depends on its reads:\n"
     "     it reads at most 16 KB at a time and transmits whenever it has to read a value or a line further\n"
     "     (known difference: Cachet reads more at once and does not model memcached's 16 KB windows)"),
    ("`shutdown` with -A, `refresh_certs`, `stats conns` details",
     "process/fd specific; covered by the integration tests"),
]

# -- request generation ------------------------------------------------------------------------

ALNUM = b"abcdefghijklmnopqrstuvwxyz0123456789"
META_FLAGS_1618 = b"bcfhklOqstuvNTRPLFCMJDI"   # flags 1.6.18's preparse knows
BAD_FLAG_CHARS = b"aAdeGgHijmnoprwWxXyYzZ0123456789:!~-+"


# The binary opcodes that carry a value (set/add/replace, append/prepend and their quiet forms).
STORE_OPCODES = {0x01, 0x02, 0x03, 0x11, 0x12, 0x13, 0x0e, 0x0f, 0x19, 0x1a}


class Gen:
    """Builds one case: a list of request pieces (bytes) on a fresh key namespace."""

    def __init__(self, rng, ns):
        self.r = rng
        self.ns = ns
        self.keys = [ns + b"k%d" % i for i in range(3)]
        # Set once a data block may be misframed (wrong or unparsable length): the bytes after it are
        # then read from an arbitrary point, and a long multiget line would turn into a long non-get
        # line whose fate depends on memcached's 16 KB read windows (see NOT_GENERATED).
        self.misframed = False
        self.binary = False

    # small helpers
    def chance(self, p):
        return self.r.random() < p

    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def key(self):
        r = self.r.random()
        if r < 0.90:
            return self.pick(self.keys)
        if r < 0.95:
            return self.ns + b"L" * (250 - len(self.ns))   # 250 bytes: the longest valid key
        return self.ns + b"X" * (251 - len(self.ns))       # 251: too long

    def value(self, n=None):
        if n is None:
            n = self.pick([0, 1, 2, 3, 5, 10, 30, 100, 500, 1000])
        if self.chance(0.05) and n >= 4:
            mid = self.r.randrange(n - 2)
            return bytes(self.pick(ALNUM) for _ in range(mid)) + b"\r\n" + \
                bytes(self.pick(ALNUM) for _ in range(n - mid - 2))
        if self.chance(0.4):
            return bytes(self.pick(b"0123456789") for _ in range(n))
        return bytes(self.pick(ALNUM) for _ in range(n))

    def number(self, kind="u32"):
        """A numeric token, mostly valid for `kind`, sometimes not."""
        r = self.r.random()
        if r < 0.65:
            return {
                "u32": b"%d" % self.pick([0, 1, 7, 100, 65535, 4294967295]),
                "ttl": b"%d" % self.pick([0, 0, 0, -1, 100, 1000, 2592000, 2592001, int(time.time()) + 3600]),
                "u64": b"%d" % self.pick([0, 1, 2, 10, 1000, 18446744073709551615]),
                "len": b"%d" % self.pick([0, 1, 2, 3, 10]),
            }[kind]
        return self.pick([b"-1", b"abc", b"1x", b"", b"+5", b"0x10", b"4294967296", b"18446744073709551616",
                          b"99999999999999999999", b"-99999999999", b"2147483648", b" 1", b"007"])

    def ttl(self):
        return self.pick([b"0", b"0", b"-1", b"100", b"1000", b"2592000", b"2592001",
                          b"%d" % (int(time.time()) + 3600), b"abc", b"-5"])

    # -- classic storage --------------------------------------------------------------------
    def storage(self):
        cmd = self.pick([b"set", b"set", b"add", b"replace", b"append", b"prepend", b"cas"])
        key = self.key()
        flags = self.number("u32") if self.chance(0.3) else b"%d" % self.pick([0, 0, 5, 4294967295])
        ttl = self.ttl() if self.chance(0.3) else b"0"
        toks = [cmd, key, flags, ttl, None]
        if cmd == b"cas":
            toks.append(self.pick([b"%d" % self.r.randrange(0, 60), b"0", b"abc", b"18446744073709551615"]))
        if self.chance(0.25):
            toks.append(b"noreply")
        if self.chance(0.04):
            toks.append(b"extra")
        if self.chance(0.04):
            toks = toks[:self.r.randrange(1, len(toks))]
        # A line the server rejects leaves its data block to be read as a command line: keep such
        # blocks under memcached's 2048-byte line limit (see NOT_GENERATED).
        suspicious = len(key) > 250 or any(t in (b"abc", b"extra") for t in toks) or None not in toks or \
            any(t is not None and t[:1] in (b"-", b"+", b" ") or t == b"" for t in toks[2:4]) or \
            not all(t is None or t.isdigit() for t in toks[2:4])
        val = self.value(None if suspicious else self.sized())
        declared = len(val)
        if self.chance(0.08):                      # wrong declared length: data chunk errors
            declared = max(0, declared + self.pick([-2, -1, 1, 2]))
            self.misframed = True
        length = b"%d" % declared
        if self.chance(0.05):
            length = self.pick([b"-1", b"abc", b"2147483648", b"4294967296"])
            val = val[:1000]
            self.misframed = True
        if suspicious:
            self.misframed = True
        toks = [length if t is None else t for t in toks]
        line = b" ".join(toks) + self.eol()
        if length.isdigit() and int(length) < 100000:
            return line + val + b"\r\n"
        return line + (val + b"\r\n" if self.chance(0.5) else b"")

    def sized(self):
        r = self.r.random()
        if r < 0.85:
            return None
        if r < 0.95:   # around the 4 KB item limit of DEFAULT_OPTS
            return self.pick([3900, 4000, 4010, 4020, 4030, 4040, 4050, 4096, 5000])
        return self.pick([10000, 70000])

    def eol(self):
        return b"\n" if self.chance(0.05) else b"\r\n"

    # -- retrieval ----------------------------------------------------------------------------
    def retrieval(self):
        cmd = self.pick([b"get", b"gets", b"gat", b"gats", b"get", b"gets"])
        keys = [self.key() for _ in range(self.pick([0, 1, 1, 2, 3, 5]))]
        if self.chance(0.05):
            keys = [self.pick(self.keys) for _ in range(30)]   # > 24 tokens: processed in batches
        toks = [cmd]
        if cmd in (b"gat", b"gats"):
            toks.append(self.ttl())
        if self.chance(0.03):
            return self.pick([b"get ", b"gets  "]) + b" ".join(keys) + b" " * self.r.randrange(3) + self.eol()
        return b" ".join(toks + keys) + self.eol()

    def other_item(self):
        k = self.key()
        r = self.r.random()
        nr = [b"noreply"] if self.chance(0.2) else []
        if r < 0.3:
            toks = [b"delete", k] + self.pick([[], [], [b"0"], [b"1"], [b"x", b"y"]]) + nr
        elif r < 0.65:
            toks = [self.pick([b"incr", b"decr"]), k, self.number("u64")] + nr
        else:
            toks = [b"touch", k, self.ttl()] + nr
        if self.chance(0.04):
            toks = toks[:self.r.randrange(1, len(toks))]
        return b" ".join(toks) + self.eol()

    # -- meta ---------------------------------------------------------------------------------
    def meta_flag(self, cmd):
        r = self.r.random()
        if r < 0.12:
            c = self.pick(BAD_FLAG_CHARS)
            # superset flags Cachet accepts on purpose (documented, not generated)
            if c == ord("x") and cmd == b"md":
                c = ord("Z")
            return bytes([c]) + (b"" if self.chance(0.6) else self.pick([b"1", b"64", b":", b"abc"]))
        c = self.pick(META_FLAGS_1618)
        ch = bytes([c])
        if ch in b"NTR":
            return ch + self.pick([b"0", b"-1", b"100", b"1000", b"abc", b"", b"2592001"])
        if ch == b"F":
            return ch + self.pick([b"0", b"5", b"4294967295", b"4294967296", b"-1", b"x", b""])
        if ch in b"CJD":
            return ch + self.pick([b"0", b"1", b"5", b"%d" % self.r.randrange(60), b"18446744073709551615",
                                   b"18446744073709551616", b"-1", b"abc", b""])
        if ch == b"M":
            return ch + self.pick([b"E", b"A", b"P", b"R", b"S", b"I", b"D", b"+", b"-", b"a", b"s", b"", b"SS"])
        if ch == b"O":
            return ch + self.pick([b"", b"1", b"abc", b"x" * 31, b"x" * 32, b"x" * 33])
        if ch == b"b":
            return ch
        if self.chance(0.1):
            return ch + self.pick([b"1", b"x"])       # a flag letter with junk after it
        return ch

    def meta(self):
        cmd = self.pick([b"mg", b"mg", b"ms", b"ms", b"md", b"ma", b"ma", b"mn", b"me"])
        if cmd == b"mn":
            return b"mn" + self.eol()
        key = self.key()
        nflags = self.pick([0, 1, 2, 3, 4, 6])
        if self.chance(0.02):
            nflags = 25                                  # too many tokens
        flags = [self.meta_flag(cmd) for _ in range(nflags)]
        if b"b" in [f[:1] for f in flags]:
            if self.chance(0.8):
                key = base64.b64encode(key[:40])
            elif self.chance(0.5):
                key = b"!!!"                             # not base64
        if cmd == b"ms":
            # superset combinations (documented, not generated): `s`, N with append/prepend
            flags = [f for f in flags if f[:1] != b"s"]
            if any(f[:1] == b"N" for f in flags) and any(f in (b"MA", b"MP") for f in flags):
                flags = [f for f in flags if f[:1] != b"N"]
            # an unswallowed data block (bad key, too many tokens, bad datalen) is read as a line
            val = self.value(self.sized() if len(key) <= 250 and nflags < 20 else None)
            declared = len(val)
            if self.chance(0.06):
                declared = max(0, declared + self.pick([-1, 1, 2]))
                self.misframed = True
            dl = b"%d" % declared
            if self.chance(0.04):
                dl = self.pick([b"-1", b"abc", b"", b"2147483647"])
                val = val[:1000]
                self.misframed = True
            if len(key) > 250 or nflags >= 20:
                self.misframed = True
            toks = [b"ms", key] + ([dl] if dl else []) + flags
            line = b" ".join(toks) + self.eol()
            if dl.isdigit() and int(dl) < 100000:
                return line + val + b"\r\n"
            return line
        if cmd == b"me":
            toks = [b"me", key] + ([b"b"] if self.chance(0.1) else [])
            return b" ".join(toks) + self.eol()
        if self.chance(0.03):
            return cmd + self.eol()                      # no key
        return b" ".join([cmd, key] + flags) + self.eol()

    # -- operations -----------------------------------------------------------------------------
    def stats(self):
        sub = self.pick([b"", b"", b"settings", b"items", b"slabs", b"sizes", b"sizes_enable", b"sizes_disable",
                         b"extstore", b"reset", b"detail on", b"detail off", b"detail dump", b"detail",
                         b"detail bogus", b"cachedump 1 10", b"cachedump 1", b"cachedump 99 1",
                         b"cachedump x 1", b"bogus", b"settings extra", b"items extra", b"conns"])
        return (b"stats " + sub).rstrip() + self.eol()

    def admin(self):
        return self.pick([
            b"flush_all", b"flush_all 0", b"flush_all -1", b"flush_all noreply", b"flush_all 0 noreply",
            b"flush_all abc", b"flush_all 0 0 0",
            b"version", b"version extra",
            b"verbosity 1", b"verbosity 0", b"verbosity", b"verbosity abc", b"verbosity 1 noreply", b"verbosity 5",
            b"cache_memlimit 100", b"cache_memlimit 7", b"cache_memlimit 2000000000", b"cache_memlimit abc",
            b"cache_memlimit", b"cache_memlimit 64 noreply",
            b"shutdown", b"shutdown graceful",
            b"slabs automove 0", b"slabs automove 1", b"slabs automove 3", b"slabs automove x",
            b"slabs automove ratio 0.5", b"slabs reassign 1 1", b"slabs reassign 0 200", b"slabs reassign x y",
            b"slabs", b"lru tune 10 20 0.1 2.0", b"lru tune 50 50 1 1", b"lru mode flat", b"lru temp_ttl -1",
            b"lru bogus", b"lru", b"lru_crawler tocrawl 10", b"lru_crawler sleep 100", b"lru_crawler sleep x",
            b"lru_crawler bogus", b"lru_crawler", b"quit",
        ]) + self.eol()

    def garbage(self):
        r = self.r.random()
        if r < 0.3:
            return self.pick([b"", b"\r\n", b"x\r\n", b"GET a\r\n", b"get\r\n", b"mx k\r\n", b"m\r\n",
                              b"   get " + self.pick(self.keys) + b"\r\n", b"\x00\r\n", b"set\r\n",
                              b"GET / HTTP/1.1\r\n", b"bget " + self.pick(self.keys) + b"\r\n",
                              b"stats\x00\r\n", b"\r\r\n", b"incr\r\n", b"touch k\r\n"])
        if r < 0.6:
            # random printable/binary junk, ending in a newline; never longer than 2048 bytes
            n = self.r.randrange(1, 300)
            junk = bytes(self.r.randrange(1, 256) for _ in range(n)).replace(b"\n", b" ")
            return junk + b"\r\n"
        if r < 0.8 and not self.misframed:
            # a long multiget line (memcached keeps reading lines that start with `get `)
            keys = [self.pick(self.keys) for _ in range(self.r.randrange(300, 900))]
            return b"get " + b" ".join(keys) + b"\r\n"
        if r < 0.9:
            # a line without newline well past memcached's 2048-byte limit: the server closes
            return self.pick([b"set ", b"x", b"mg ", b""]) + b"a" * self.r.randrange(17000, 20000)
        # over-long key tokens on lines shorter than 2048 bytes
        return self.pick([b"get ", b"mg ", b"delete ", b"incr "]) + b"K" * self.r.randrange(251, 1500) + \
            self.pick([b"", b" 1", b" v"]) + b"\r\n"

    def command(self):
        r = self.r.random()
        if r < 0.25:
            return self.storage()
        if r < 0.40:
            return self.retrieval()
        if r < 0.52:
            return self.other_item()
        if r < 0.80:
            return self.meta()
        if r < 0.87:
            return self.stats()
        if r < 0.94:
            return self.admin()
        return self.garbage()

    # -- binary protocol ---------------------------------------------------------------------
    def packet(self, op, key=b"", extras=b"", value=b"", cas=0):
        keylen, extlen, body = len(key), len(extras), len(extras) + len(key) + len(value)
        if self.chance(0.04):   # lengths that disagree or do not fit the opcode
            which = self.r.randrange(3)
            if which == 0:
                keylen = self.pick([0, 1, keylen + 1, 251, 65535])
            elif which == 1:
                extlen = self.pick([0, 4, 8, 20, 255])
            elif op in STORE_OPCODES:
                body = self.pick([0, max(0, body - 1), body + 1])
            else:
                body = self.pick([0, max(0, body - 1), body + 1, 0xffffffff])
        return struct.pack(">BBHBBHIIQ", 0x80, op, keylen, extlen, 0, 0, body, self.r.randrange(1 << 32),
                           cas) + extras + key + value

    def binary_command(self):
        r = self.r.random()
        key = self.key()
        cas = self.pick([0, 0, 0, 1, 2, 3, 5, 10, 1 << 40])
        if r < 0.30:
            op = self.pick([0x01, 0x02, 0x03, 0x11, 0x12, 0x13])   # set/add/replace (+q)
            extras = struct.pack(">II", self.pick([0, 1, 0xffffffff]), self.pick([0, 0, 100, 2592001, 0xffffffff]))
            return self.packet(op, key, extras, self.value(), cas)
        if r < 0.55:
            return self.packet(self.pick([0x00, 0x09, 0x0c, 0x0d]), key)   # get family
        if r < 0.62:
            return self.packet(self.pick([0x0e, 0x0f, 0x19, 0x1a]), key, value=self.value(), cas=cas)
        if r < 0.70:
            return self.packet(self.pick([0x04, 0x14]), key, cas=cas)
        if r < 0.80:
            extras = struct.pack(">QQI", self.pick([0, 1, 5, 18446744073709551615]), self.pick([0, 7]),
                                 self.pick([0, 100, 0xffffffff]))
            return self.packet(self.pick([0x05, 0x06, 0x15, 0x16]), key, extras, cas=cas)
        if r < 0.88:
            extras = struct.pack(">I", self.pick([0, 100, 2592001]))
            return self.packet(self.pick([0x1c, 0x1d, 0x1e, 0x23, 0x24]), key, extras)
        if r < 0.94:
            return self.packet(self.pick([0x0a, 0x0a, 0x0b]))               # noop, version
        if r < 0.97:
            return self.packet(0x10, self.pick([b"bogus", b"conns", b"detail x", b"sizes"]))
        if r < 0.99:
            return self.packet(self.pick([0x1b, 0x20, 0x21, 0x50, 0xff]), self.pick([b"", b"PLAIN"]),
                               value=self.pick([b"", b"xyz"]))
        return b"\x81" + bytes(self.r.randrange(256) for _ in range(23))      # wrong magic: closes

    def binary_case(self):
        return b"".join(self.binary_command() for _ in range(self.pick([1, 2, 3, 5, 8, 12]))) + \
            self.packet(0x0a)

    def case(self):
        self.binary = self.chance(0.1) and getattr(self, "allow_binary", True) and not os.environ.get("FUZZDIFF_NO_BINARY")
        if self.binary:
            return self.binary_case()
        for _attempt in range(20):
            n = self.pick([1, 2, 3, 4, 5, 6, 8, 10])
            self.misframed = False
            data = b"".join(self.command() for _ in range(n))
            # Past memcached's 16 KB read buffer, a cull or close drops what memcached had not yet
            # transmitted at its read boundaries (see NOT_GENERATED): keep such cases shorter.
            if not (drops_untransmitted(data) and len(data) > 12000):
                break
        while data[:1] == b"\x80":   # binary protocol: not generated (see NOT_GENERATED)
            data = data[1:]
        return data

    def split(self, data):
        """Cut `data` into 1-4 writes at random byte positions. Not a case whose replies a cull or a
        close can drop (see NOT_GENERATED): which ones memcached drops depends on its read boundaries."""
        if self.binary:
            return [data]
        if len(data) < 2 or self.chance(0.5) or drops_untransmitted(data):
            return [data]
        cuts = sorted(self.r.sample(range(1, len(data)), min(len(data) - 1, self.r.randrange(1, 4))))
        out, prev = [], 0
        for c in cuts:
            out.append(data[prev:c])
            prev = c
        out.append(data[prev:])
        return out


# -- reply collection -----------------------------------------------------------------------------

END_MARK = b"mn\r\n"


def drops_untransmitted(data):
    """A get with a key over 250 bytes, an over-long line or an HTTP request make memcached drop the
    replies it has not transmitted yet; which those are depends on where its reads ended."""
    return b"HTTP/" in data or any(len(t) > 250 for t in re.split(rb"[ \r\n]", data))


def pause_between_writes(writes):
    """How long to wait between the pieces of a split request, so that the server reads each piece on
    its own; longer where the read boundaries decide which replies survive (hand-written cases)."""
    return 0.2 if drops_untransmitted(b"".join(writes)) else 0.002


def exchange(server, writes, timeout=10.0):
    """Send the writes (then `mn`), half-close, read until the server closes. Returns bytes; a
    server that did not close within `timeout` gets `<no close>` appended. A reset counts as a
    close: a server that closes with unread bytes (an over-long line) sends RST instead of FIN,
    depending on whether the rest had arrived, and Linux delivers the data received before it."""
    s = server.raw_connect(timeout=timeout)
    out = b""
    pause = pause_between_writes(writes) if len(writes) > 1 else 0
    if len(writes) == 1 and writes[0][:1] == b"\x80":
        # A binary case goes out with the end mark in the same write. Its packets' lengths may disagree
        # with their bodies, so the case can end inside a packet that `mn` completes into a bad one: the
        # server then closes, and whether the replies before it went out depends on whether `mn` came in
        # the same read (dropped) or a later one (sent first) — a race between two writes, seen as often
        # between memcached and itself as between memcached and Cachet. One write makes it one read.
        writes = [writes[0] + END_MARK]
        end_mark = b""
    else:
        end_mark = END_MARK
    try:
        try:
            for i, w in enumerate(writes):
                if w:
                    s.sendall(w)
                if i + 1 < len(writes):
                    time.sleep(pause)   # let the server see the pieces as separate reads
            if end_mark:
                s.sendall(end_mark)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # the server closed (quit, over-long line): what it sent is still readable
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out + b"<no close>"
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out + b"<no close>"
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


UDP_MARK_ID = 0xFFFE


def udp_frame(rid):
    return bytes([rid >> 8, rid & 0xFF, 0, 0, 0, 1, 0, 0])


def exchange_udp(server, writes, timeout=1.0):
    """The case over UDP: one datagram per write (cut at 60,000 bytes), then the `mn` marker; returns the
    replies as a stream with a `<request id>` line where each response starts (its datagrams numbered
    from 0, each with the same count, or `<bad sequence>` is written); sizes and exact headers are
    test_udp.py's business (stats replies differ in length by design)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # A big multiget answers with hundreds of datagrams at once: room for them, or the kernel drops some.
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)   # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    addr = ("127.0.0.1", server.udp_port)
    out = b""
    last = None   # (id, seq, total) of the previous datagram
    try:
        for i, w in enumerate(writes):
            for off in range(0, max(len(w), 1), 60000):
                s.sendto(udp_frame(i + 1) + w[off:off + 60000], addr)
        for attempt in range(5):
            if attempt:
                s.sendto(b"\r\n" * 30000, addr)   # feeds a value the server is still reading
            s.sendto(udp_frame(UDP_MARK_ID) + END_MARK, addr)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    d, _ = s.recvfrom(70000)
                except socket.timeout:
                    break
                if d == udp_frame(UDP_MARK_ID) + b"MN\r\n":
                    return out
                h = d[:8]
                rid, seq, total = (h[0] << 8) | h[1], (h[2] << 8) | h[3], (h[4] << 8) | h[5]
                if seq == 0:
                    out += b"<%d>\n" % rid
                elif last is None or last != (rid, seq - 1, total):
                    out += b"<bad sequence>"
                last = (rid, seq, total)
                out += d[8:]
        return out + b"<no MN>"
    finally:
        s.close()


# -- normalisation ----------------------------------------------------------------------------------

# `stats` values that depend on timing or on how requests were split into reads.
# bytes_read: whether the end marker was already read when `stats` ran depends on timing.
LOCAL_VOLATILE_STATS = {"conn_yields", "bytes_read"}
DET_STATS = DETERMINISTIC_STATS - LOCAL_VOLATILE_STATS
# `stats settings`: `oldest` is seconds since the last flush (a clock reading).
VOLATILE_SETTINGS_EXTRA = {"oldest"}
# `stats items` fields that are ages or times; and lrutail_reflocked, which memcached counts when its
# tail reclaim meets an item still referenced by an unsent reply (Cachet does not count it: a known
# difference, see the report of issue 10).
ITEM_TIME_FIELDS = {"age", "age_hot", "age_warm", "evicted_time", "lrutail_reflocked"}

STATS_BLOCK = re.compile(rb"(?:STAT [^\r\n]*\r\n)+END\r\n")
CAS_VALUE_LINE = re.compile(rb"^(VALUE \S+ \d+ \d+) (\d+)\r\n", re.M)
META_LINE = re.compile(rb"^(VA \d+|HD|EN|NS|EX|NF)((?: [^\r\n]*)?)\r\n", re.M)
ME_LINE = re.compile(rb"^ME (\S+) exp=(-?\d+) la=(\d+) cas=(\d+) ", re.M)
CACHEDUMP_ITEM = re.compile(rb"^ITEM [^\r\n]*\r\n", re.M)


class CasNames:
    """Replaces each distinct CAS value by its order of first appearance in one reply."""

    def __init__(self):
        self.names = {}

    def __call__(self, v):
        if v not in self.names:
            self.names[v] = b"<cas%d>" % (len(self.names) + 1)
        return self.names[v]


def _norm_stats_block(block):
    # `stats sizes_enable|sizes_disable` answer one STAT line without END (memcached's own quirk),
    # which then runs into the next dump: keep such a head as it is.
    for head in (b"STAT pid ", b"STAT maxbytes ", b"STAT items:"):
        at = block.find(b"\r\n" + head)
        if at >= 0 and not block.startswith(head):
            return block[:at + 2] + _norm_stats_block(block[at + 2:])
    try:
        pairs = parse_stats(block)
    except HarnessError:
        return block
    names = [n for n, _ in pairs]
    if names and names[0] == "pid":
        pairs = normalise_stats(pairs, DET_STATS)
    elif names and names[0] == "maxbytes":
        pairs = [(n, "<v>" if n in VOLATILE_SETTINGS_EXTRA else v) for n, v in normalise_settings(pairs)]
    elif names and names[0].startswith("items:"):
        pairs = [(n, "<v>" if n.split(":")[-1] in ITEM_TIME_FIELDS else v) for n, v in pairs]
    elif any(":addr" in n or ":state" in n for n in names):
        return b"STAT <conns>\r\nEND\r\n"   # fds, ports, idle seconds: process specific
    return b"".join(b"STAT %s %s\r\n" % (n.encode(), v.encode()) for n, v in pairs) + b"END\r\n"


def normalise_binary(reply):
    """A binary connection's reply: CAS values named by first appearance, the version body hidden."""
    cas, out, i = CasNames(), b"", 0
    while i + 24 <= len(reply) and reply[i] == 0x81:
        head = bytearray(reply[i:i + 24])
        blen = struct.unpack(">I", head[8:12])[0]
        body = reply[i + 24:i + 24 + blen]
        c = struct.unpack(">Q", head[16:24])[0]
        head[16:24] = b"\0" * 8
        if head[1] == 0x0b and head[6:8] == b"\0\0":
            body = b"<v>"
        out += bytes(head) + (cas(c) if c else b"") + body
        i += 24 + blen
    return out + reply[i:]


def normalise(reply):
    """Normalise one connection's reply: version, stats dumps, CAS values, TTLs, access times."""
    if reply[:1] == b"\x81":
        return normalise_binary(reply)
    reply = normalise_version(reply)
    reply = STATS_BLOCK.sub(lambda m: _norm_stats_block(m.group(0)), reply)
    reply = CACHEDUMP_ITEM.sub(b"ITEM <item>\r\n", reply)
    cas = CasNames()
    reply = CAS_VALUE_LINE.sub(lambda m: m.group(1) + b" " + cas(m.group(2)) + b"\r\n", reply)

    def meta_line(m):
        toks = m.group(2).split(b" ")
        out = []
        for t in toks:
            if len(t) > 1 and t[:1] == b"c" and t[1:].isdigit():
                t = b"c" + cas(t[1:])
            elif len(t) > 1 and t[:1] == b"t" and t[1:].isdigit() and int(t[1:]) > 0:
                t = b"t<ttl>"
            elif len(t) > 1 and t[:1] == b"l" and t[1:].isdigit():
                t = b"l<secs>"
            out.append(t)
        return m.group(1) + b" ".join(out) + b"\r\n"

    reply = META_LINE.sub(meta_line, reply)
    reply = ME_LINE.sub(lambda m: b"ME " + m.group(1) + b" exp=" +
                        (m.group(2) if m.group(2) == b"-1" else b"<exp>") + b" la=<la> cas=" +
                        cas(m.group(4)) + b" ", reply)
    return reply


# -- running ----------------------------------------------------------------------------------------

class Pair:
    def __init__(self, opts, cachet=None, udp=False):
        self.opts = opts
        self.cachet_path = cachet or cachet_bin()
        self.oracle = self.cachet = None
        self.udp = udp

    def server(self, binary, name):
        if not self.udp:
            return Server(binary, self.opts, name=name).start()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        srv = Server(binary, [*self.opts, "-U", str(port), "-t", "1"], name=name).start()
        srv.udp_port = port
        return srv

    def start(self):
        self.oracle = self.server(memcached_bin(), "memcached")
        try:
            self.cachet = self.server(self.cachet_path, "cachet")
        except Exception:
            self.oracle.stop()
            raise
        return self

    def stop(self):
        for s in (self.oracle, self.cachet):
            if s is not None:
                s.terminate()
        for s in (self.oracle, self.cachet):
            if s is not None:
                s.wait_stopped()

    def restart(self):
        self.stop()
        self.start()


def make_case(seed, index, binary=True):
    rng = random.Random(seed * 1_000_003 + index)
    g = Gen(rng, b"f%dc%d_" % (seed % 1000, index))
    g.allow_binary = binary
    data = g.case()
    return data, g.split(data)


STATE_PROBE = [b"stats\r\nstats items\r\nstats slabs\r\n"]


def compare_one(pair, writes, check_state=True):
    """Runs one case on both servers. With `check_state`, the counters and item/slab statistics are
    compared afterwards on a connection of their own, so a case that leaves the two stores apart
    (same replies, different state) is reported itself rather than whichever case notices later."""
    ex = exchange_udp if pair.udp else exchange
    a = ex(pair.oracle, writes)
    b = ex(pair.cachet, writes)
    na, nb = normalise(a), normalise(b)
    if na == nb and check_state:
        sa = exchange(pair.oracle, STATE_PROBE)
        sb = exchange(pair.cachet, STATE_PROBE)
        if normalise(sa) != normalise(sb):
            a, b = a + b"<state after the case:>" + sa, b + b"<state after the case:>" + sb
            na, nb = normalise(a), normalise(b)
    return na == nb, a, b, na, nb


def first_difference(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def short(b, limit=1500):
    if len(b) > limit:
        return repr(b[:limit * 2 // 3]) + f" ...<{len(b)} bytes>... " + repr(b[-limit // 4:])
    return repr(b)


def run(seed, cases, opts, cachet=None, verbose=False, out=sys.stdout, cases_list=None, udp=False):
    """Runs the cases; returns a list of (index, request, oracle reply, cachet reply)."""
    pair = Pair(opts, cachet, udp).start()
    diffs = []
    try:
        indices = cases_list if cases_list is not None else range(cases)
        for i in indices:
            # Over UDP the binary cases are left out: Cachet answers binary datagrams, but memcached's lone
            # headers for quiet commands' empty responses are not reproduced (a documented difference).
            data, writes = make_case(seed, i, binary=not pair.udp)
            same, a, b, na, nb = compare_one(pair, writes)
            dead = [s.name for s in (pair.oracle, pair.cachet) if not s.alive()]
            if not same or dead:
                diffs.append((i, writes, a, b))
                at = first_difference(na, nb)
                print(f"DIFF seed={seed} case={i} writes={len(writes)}"
                      + (f" (server died: {dead})" if dead else ""), file=out)
                print(f"  input:     {short(data)}", file=out)
                if len(writes) > 1:
                    print(f"  split at:  {[len(w) for w in writes]}", file=out)
                print(f"  memcached: {short(a)}", file=out)
                print(f"  cachet:    {short(b)}", file=out)
                print(f"  first normalised difference at byte {at}: memcached {na[at:at + 80]!r} "
                      f"vs cachet {nb[at:at + 80]!r}", file=out)
                # a difference can leave the two stores apart: start both afresh
                pair.restart()
            elif pair.udp and b"quit" in data:
                # memcached 1.6.18 keeps a UDP connection's close-after-write flag once a `quit` set it, and
                # from then on drops the rest of every datagram after its first send; Cachet does not
                # (a documented difference): later cases would differ, so both start afresh.
                pair.restart()
            elif verbose:
                print(f"ok case={i} {short(data, 200)}", file=out)
    finally:
        pair.stop()
    return diffs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "1")))
    ap.add_argument("--cases", type=int, default=int(os.environ.get("CASES", "1000")))
    ap.add_argument("--case", type=int, action="append", help="run only this case index (repeatable)")
    ap.add_argument("--opts", default=os.environ.get("FUZZ_OPTS", DEFAULT_OPTS),
                    help=f"server options for both servers (default: {DEFAULT_OPTS!r})")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--udp", action="store_true", help="send the cases over UDP (memcached's framing)")
    ap.add_argument("--show", action="store_true", help="print the generated cases and exit")
    args = ap.parse_args(argv)
    if args.show:
        for i in (args.case or range(args.cases)):
            data, writes = make_case(args.seed, i)
            print(i, [len(w) for w in writes], short(data, 400))
        return 0
    t0 = time.monotonic()
    try:
        diffs = run(args.seed, args.cases, args.opts.split(), verbose=args.verbose, cases_list=args.case,
                    udp=args.udp)
    except HarnessError as e:
        print(f"fuzz-diff: {e}", file=sys.stderr)
        return 2
    n = len(args.case) if args.case else args.cases
    print(f"fuzz-diff{' (UDP)' if args.udp else ''}: seed {args.seed}, {n} cases, options {args.opts!r}: {len(diffs)} differences "
          f"({time.monotonic() - t0:.1f} s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
