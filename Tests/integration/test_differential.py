"""Differential tests: identical request sequences to memcached 1.6.18 (oracle) and cachet,
replies compared byte for byte. Run against CACHET_BIN (default
.build/release/cachet); with CACHET_BIN=/usr/bin/memcached every case must pass (harness check).

Each case runs on fresh connections; cases on a shared (class-level) pair start with
`flush_all`; cases whose replies expose CAS uniques or counters get a fresh pair (fresh=True)
so one divergence does not cascade into unrelated cases.
"""

import random
import re
import time
import unittest

from harness import (normalise_version, normalise_stats, normalise_settings, parse_stats,
                     DETERMINISTIC_STATS, CONNECTION_STATS)
from difftools import DiffCase, COUNTS, print_summary, auto_norm, Pair

CRLF = b"\r\n"


def tearDownModule():
    print_summary(__name__)


def st(key=b"k", val=b"x", flags=0, exp=0, cmd=b"set", extra=b""):
    return cmd + b" " + key + b" %d %d %d" % (flags, exp, len(val)) + extra + CRLF + val + CRLF


def stats_norm(raw):
    return normalise_stats(parse_stats(raw))


# ------------------------------------------------------------------------------------------------
class Storage(DiffCase):
    """B.2 storage commands, their errors and noreply variants."""

    def test_set_get_basic(self):
        self.diff("set+get", st() + b"get k\r\n")
        self.diff("set empty value", b"set k 0 0 0\r\n\r\nget k\r\n")
        self.diff("set overwrite", st(val=b"one") + st(val=b"two", flags=7) + b"get k\r\n")
        self.diff("set binary value", st(val=bytes(range(256))) + b"get k\r\n")
        self.diff("value containing CRLF", st(val=b"a\r\nb\r\n") + b"get k\r\n")
        self.diff("set noreply", st(extra=b" noreply") + b"get k\r\n")
        self.diff("set leading zero length", b"set k 0 0 01\r\nx\r\nget k\r\n")

    def test_add_replace(self):
        self.diff("add missing", st(cmd=b"add") + b"get k\r\n")
        self.diff("add existing", st() + st(cmd=b"add", val=b"y") + b"get k\r\n")
        self.diff("add noreply existing", st() + st(cmd=b"add", extra=b" noreply") + b"get k\r\n")
        self.diff("replace missing", st(cmd=b"replace") + b"get k\r\n")
        self.diff("replace existing", st() + st(cmd=b"replace", val=b"yy", flags=3) + b"get k\r\n")
        self.diff("replace noreply", st(cmd=b"replace", extra=b" noreply") + st() +
                  st(cmd=b"replace", val=b"z", extra=b" noreply") + b"get k\r\n")

    def test_append_prepend(self):
        self.diff("append missing", st(cmd=b"append") + b"get k\r\n")
        self.diff("prepend missing", st(cmd=b"prepend") + b"get k\r\n")
        self.diff("append/prepend keep flags+exptime",
                  st(val=b"mid", flags=5) + st(cmd=b"append", val=b">>", flags=9, exp=-1) +
                  st(cmd=b"prepend", val=b"<<", flags=11, exp=-1) + b"get k\r\n")
        self.diff("append noreply", st() + st(cmd=b"append", val=b"y", extra=b" noreply") +
                  st(cmd=b"prepend", val=b"w", extra=b" noreply") + b"get k\r\n")
        self.diff("append to empty", b"set k 0 0 0\r\n\r\n" + st(cmd=b"append", val=b"abc") + b"get k\r\n")
        self.diff("append bad chunk", st() + b"append k 0 0 1\r\nyz\r\nget k\r\n")

    def test_cas(self):
        self.diff("cas missing", b"cas k 0 0 1 1\r\nx\r\n")
        self.diff("cas missing noreply", b"cas k 0 0 1 1 noreply\r\nx\r\nget k\r\n")
        self.diff("cas mismatch", st() + b"cas k 0 0 1 999999\r\ny\r\nget k\r\n")

        def cas_from(replies, idx=0, shift=0):
            line = replies[idx].split(b"\r\n")
            for ln in line:
                if ln.startswith(b"VALUE "):
                    return int(ln.split()[4]) + shift
            raise AssertionError(f"no VALUE in {replies[idx]!r}")

        self.diff("cas match", [st() + b"gets k\r\n",
                                lambda r: b"cas k 3 0 2 %d\r\nyy\r\ngets k\r\n" % cas_from(r)],
                  fresh=True)
        self.diff("cas match noreply", [st() + b"gets k\r\n",
                                        lambda r: b"cas k 3 0 2 %d noreply\r\nyy\r\ngets k\r\n" % cas_from(r)],
                  fresh=True)
        self.diff("cas stale after set", [st() + b"gets k\r\n",
                                          lambda r: st(val=b"n") + b"cas k 0 0 1 %d\r\nz\r\n" % cas_from(r)],
                  fresh=True)
        self.diff("cas no unique", b"cas k 0 0 1\r\nx\r\n")
        self.diff("cas unique non-numeric", b"cas k 0 0 1 abc\r\nx\r\n")
        self.diff("cas unique negative", b"cas k 0 0 1 -1\r\nx\r\n")
        self.diff("cas unique 2^64", b"cas k 0 0 1 18446744073709551616\r\nx\r\n")
        self.diff("cas unique 2^64-1", st() + b"cas k 0 0 1 18446744073709551615\r\nx\r\n")
        self.diff("cas bad chunk", st() + b"cas k 0 0 1 1\r\nxyz\r\n")
        self.diff("cas too many tokens", b"cas k 0 0 1 1 noreply x\r\nx\r\n")

    def test_cas_unique_sequence(self):
        # CAS counter: global, starts at 1, bumped by every store; touch/gat keep it.
        self.diff("cas uniques over ops",
                  [st(b"a") + st(b"b") + b"gets a b\r\n",
                   b"append a 0 0 1\r\n1\r\nprepend b 0 0 1\r\n2\r\ngets a b\r\n",
                   b"set n 0 0 1\r\n5\r\nincr n 1\r\ndecr n 2\r\ngets n\r\n",
                   b"touch n 100\r\ngat 100 n\r\ngats 0 n\r\ngets n\r\n",
                   b"replace a 0 0 1\r\nr\r\nadd c 0 0 1\r\nc\r\ngets a c\r\n",
                   b"flush_all\r\ngets a\r\n" + st(b"a") + b"gets a\r\n",
                   b"delete a\r\n" + st(b"a") + b"gets a\r\n"],
                  fresh=True)

    def test_command_line_errors(self):
        for label, req in [
            ("set too few tokens", b"set k 0 0\r\n"),
            ("set too many tokens", b"set k 0 0 1 2 3 4 5\r\nx\r\n"),
            ("set noreply extra", b"set k 0 0 1 noreply extra\r\nx\r\n"),
            ("flags non-numeric", b"set k abc 0 1\r\nx\r\n"),
            ("flags negative", b"set k -1 0 1\r\nx\r\n"),
            ("flags hex", b"set k 0x10 0 1\r\nx\r\n"),
            ("flags plus sign", b"set k +5 0 1\r\nx\r\nget k\r\n"),
            ("flags 2^32-1", b"set k 4294967295 0 1\r\nx\r\nget k\r\n"),
            ("flags 2^32", b"set k 4294967296 0 1\r\nx\r\nget k\r\n"),
            ("flags 2^64 overflow", b"set k 18446744073709551616 0 1\r\nx\r\n"),
            ("flags huge", b"set k 99999999999999999999 0 1\r\nx\r\n"),
            ("exptime non-numeric", b"set k 0 abc 1\r\nx\r\nget k\r\n"),
            ("exptime huge", b"set k 0 99999999999999999999 1\r\nx\r\nget k\r\n"),
            ("exptime very negative", b"set k 0 -99999999999 1\r\nx\r\nget k\r\n"),
            ("bytes negative", b"set k 0 0 -1\r\nx\r\n"),
            ("bytes non-numeric", b"set k 0 0 abc\r\nx\r\n"),
            ("bytes 2^31", b"set k 0 0 2147483648\r\n"),
            ("bytes huge", b"set k 0 0 99999999999999999999\r\n"),
            ("key 250", b"set " + b"a" * 250 + b" 0 0 1\r\nx\r\nget " + b"a" * 250 + b"\r\n"),
            ("key 251", b"set " + b"a" * 251 + b" 0 0 1\r\nx\r\n"),
            ("key 251 noreply", b"set " + b"a" * 251 + b" 0 0 1 noreply\r\nx\r\n"),
            ("add key 251", b"add " + b"b" * 251 + b" 0 0 1\r\nx\r\n"),
            ("cas key 251", b"cas " + b"b" * 251 + b" 0 0 1 1\r\nx\r\n"),
        ]:
            self.diff(label, req)

    def test_bytes_2_32_truncation_quirk(self):
        # 1.6.18 truncates <bytes> to int: 4294967296 → 0-byte value
        self.diff("bytes 2^32 truncates", b"set k 0 0 4294967296\r\n\r\nget k\r\n")

    def test_bad_data_chunk(self):
        for label, req in [
            ("chunk too long", b"set k 0 0 3\r\nabcde\r\nget k\r\n"),
            ("chunk too long noreply", b"set k 0 0 3 noreply\r\nabcde\r\nget k\r\n"),
            ("chunk no CR", b"set k 0 0 3\r\nabc\nXY\r\n"),
            ("chunk 2 extra", b"set k 0 0 3\r\nabcxx\r\n"),
            ("chunk short with CRLF inside", b"set k 0 0 5\r\nab\r\n\r\nxyz\r\n"),
            ("bad chunk deletes old", st() + b"set k 0 0 1\r\nyz\r\nget k\r\n"),
        ]:
            self.diff(label, req)

    def test_value_size_limits(self):
        self.diff("1048516 fits (key k)", st(val=b"v" * 1048516) + b"get k\r\n")
        self.diff("1048517 too large", st(val=b"v" * 1048517) + b"get k\r\n")
        self.diff("too large deletes old", st(val=b"old") + st(val=b"v" * 1048517) + b"get k\r\n")
        self.diff("too large noreply", st(val=b"v" * 2000000, extra=b" noreply") + b"get k\r\n")
        self.diff("key 250 size boundary", st(key=b"K" * 250, val=b"w" * 1048267) + b"get k\r\n")
        self.diff("append over limit", st(val=b"v" * 1048000) + st(cmd=b"append", val=b"a" * 1000) +
                  b"get k\r\n")

    def test_exptime(self):
        now = int(time.time())
        for label, req in [
            ("exptime relative", st(exp=100) + b"get k\r\n"),
            ("exptime negative", st(exp=-1) + b"get k\r\n"),
            ("exptime 30 days", st(exp=2592000) + b"get k\r\n"),
            ("exptime 30 days + 1 (absolute 1970)", st(exp=2592001) + b"get k\r\n"),
            ("exptime absolute future", st(exp=now + 3600) + b"get k\r\n"),
            ("exptime absolute past", st(exp=now - 3600) + b"get k\r\n"),
            ("negative exptime replaces", st(val=b"a") + st(val=b"b", exp=-1) + b"get k\r\n"),
            ("add over expired", st(exp=-1) + st(cmd=b"add", val=b"n") + b"get k\r\n"),
        ]:
            self.diff(label, req)


class Retrieval(DiffCase):
    """B.3 get/gets/gat/gats."""

    def test_get_variants(self):
        setup = st(b"a", b"1") + st(b"b", b"22", flags=4) + st(b"c", b"333")
        for label, req in [
            ("get miss", b"get nope\r\n"),
            ("get multi", setup + b"get a b c nope\r\n"),
            ("get duplicates", setup + b"get a a b a\r\n"),
            ("get no key", b"get\r\n"),
            ("get trailing space", setup + b"get a \r\n"),
            ("get double space", setup + b"get  a   b\r\n"),
            ("leading spaces", setup + b"   get a\r\n"),
            ("get key 251", b"get " + b"a" * 251 + b"\r\n"),
            ("get key 251 after hit, replies in same batch", setup + b"get a " + b"a" * 251 + b" b\r\n"),
            ("get key 250", b"get " + b"a" * 250 + b"\r\n"),
            ("get 30 keys (>24 tokens)", setup + b"get " + b" ".join([b"a", b"b", b"c"] * 10) + b"\r\n"),
            ("GET uppercase", setup + b"GET a\r\n"),
            ("Get mixed case", setup + b"Get a\r\n"),
            ("bare LF", setup + b"get a\n"),
            ("bare LF set", b"set k 0 0 1\nx\r\nget k\n"),
        ]:
            self.diff(label, req)
        self.diff("get key 251 after hit", [setup, b"get a " + b"a" * 251 + b" b\r\n"])
        many = b" ".join(b"k%02d" % i for i in range(30))
        self.diff("key 251 after 30 keys (batched)", [setup + st(b"k01") + st(b"k29"),
                                                      b"get " + many + b" " + b"z" * 251 + b"\r\n"])
        self.diff("get noreply is a key", [setup, b"get a noreply\r\n"])
        self.diff("get tab separator", [setup, b"get\ta\r\n", b"get a\tb\r\n"])
        self.diff("key with control char", [b"set a\x01b 0 0 1\r\nx\r\nget a\x01b\r\n"])
        self.diff("key with DEL/high bytes", [b"set a\x7f\xffb 0 0 1\r\nx\r\nget a\x7f\xffb\r\n"])
        self.diff("set trailing space", [b"set k 0 0 1 \r\nx\r\nget k\r\n"])
        self.diff("set many spaces", [b"set  k   0  0   1\r\nx\r\nget k\r\n"])
        self.diff("key 251 culls pending replies (1.6.18)", [setup, b"get a\r\nversion\r\nget a " +
                                                              b"a" * 251 + b"\r\nget b\r\n"])

    def test_gets_gat(self):
        setup = st(b"a", b"1") + st(b"b", b"22", flags=4)
        for label, req in [
            ("gets multi dup", setup + b"gets a b a nope\r\n"),
            ("gets no key", b"gets\r\n"),
            ("gat", setup + b"gat 100 a b nope\r\n"),
            ("gats", setup + b"gats 100 a a\r\n"),
            ("gat negative expires", setup + b"gat -1 a\r\nget a\r\n"),
            ("gat bad exptime", setup + b"gat abc a\r\n"),
            ("gat no key", b"gat 100\r\n"),
            ("gat no args", b"gat\r\n"),
            ("gats no args", b"gats\r\n"),
            ("gat key 251", b"gat 10 " + b"a" * 251 + b"\r\n"),
            ("touch keeps cas", setup + b"gets a\r\ntouch a 100\r\ngets a\r\ngats 50 a\r\n"),
        ]:
            self.diff(label, req, fresh=True)

    def test_large_multiget_line(self):
        keys = [b"key%04d" % i for i in range(400)]  # > 2048 bytes, many keys
        line = b"get " + b" ".join(keys) + b"\r\n"
        self.assertGreater(len(line), 2048)
        setup = b"".join(st(k, k) for k in keys[::37])
        self.diff("multiget > 2048 bytes", setup + line)
        self.diff("multiget > 2048 bytes bytewise-ish", [setup, [line[:1500], line[1500:]]])
        lineg = b"gets " + b" ".join(keys) + b"\r\n"
        self.diff("gets > 2048 bytes", setup + lineg, fresh=True)


class DeleteIncrTouch(DiffCase):
    """B.4–B.6."""

    def test_delete(self):
        for label, req in [
            ("delete hit", st() + b"delete k\r\nget k\r\n"),
            ("delete miss", b"delete k\r\n"),
            ("delete noreply", st() + b"delete k noreply\r\ndelete k noreply\r\nget k\r\n"),
            ("delete k 0", st() + b"delete k 0\r\nget k\r\n"),
            ("delete k 0 noreply", st() + b"delete k 0 noreply\r\nget k\r\n"),
            ("delete k x", st() + b"delete k x\r\nget k\r\n"),
            ("delete k 1", st() + b"delete k 1\r\n"),
            ("delete k x y", b"delete k x y\r\n"),
            ("delete no key", b"delete\r\n"),
            ("delete key 251", b"delete " + b"a" * 251 + b"\r\n"),
        ]:
            self.diff(label, req)

    def test_incr_decr(self):
        n = lambda v: st(b"n", v)
        for label, req in [
            ("incr", n(b"10") + b"incr n 5\r\nget n\r\n"),
            ("decr", n(b"10") + b"decr n 3\r\nget n\r\n"),
            ("incr miss", b"incr n 1\r\n"),
            ("decr miss", b"decr n 1\r\n"),
            ("incr noreply", n(b"1") + b"incr n 1 noreply\r\ndecr n 5 noreply\r\nget n\r\n"),
            ("incr miss noreply", b"incr n 1 noreply\r\n"),
            ("incr noreply non-numeric", n(b"abc") + b"incr n 1 noreply\r\n"),
            ("incr noreply bad delta", n(b"1") + b"incr n x noreply\r\ndecr n -1 noreply\r\n"),
            ("touch noreply bad exptime", n(b"1") + b"touch n x noreply\r\n"),
            ("delete noreply extra", n(b"1") + b"delete n noreply extra\r\n"),
            ("delta non-numeric", n(b"1") + b"incr n abc\r\n"),
            ("delta negative", n(b"1") + b"incr n -1\r\n"),
            ("delta 2^64", n(b"1") + b"incr n 18446744073709551616\r\n"),
            ("delta 2^64-1", n(b"1") + b"incr n 18446744073709551615\r\n"),
            ("delta leading zero", n(b"1") + b"incr n 01\r\n"),
            ("delta double space", n(b"1") + b"incr n  1\r\n"),
            ("incr wraps", n(b"18446744073709551615") + b"incr n 1\r\nget n\r\n"),
            ("incr wraps big", n(b"18446744073709551610") + b"incr n 10\r\n"),
            ("decr clamps", n(b"5") + b"decr n 100\r\nget n\r\n"),
            ("decr shrink pads", n(b"100") + b"decr n 1\r\nget n\r\n"),
            ("incr grows", n(b"99") + b"incr n 1\r\nget n\r\n"),
            ("value leading space", n(b" 1") + b"incr n 1\r\nget n\r\n"),
            ("value trailing space", n(b"1 ") + b"incr n 1\r\nget n\r\n"),
            ("value inner space", n(b"1 2") + b"incr n 1\r\n"),
            # memcached parses the stored bytes with strtoull: digits followed by whitespace or
            # NUL count as a number whatever comes after (the padding of the result is racy,
            # so only the incr/decr reply is compared)
            ("value digits NUL junk", n(b"300323\x00\xffjunk") + b"decr n 3\r\n"),
            ("value digits LF junk", n(b"9\nW\xe8") + b"incr n 1\r\n"),
            ("value digits TAB junk", n(b"41\tzz") + b"incr n 1\r\n"),
            ("value 23 chars numeric prefix", n(b"5" + b"\x00" * 22) + b"incr n 1\r\n"),
            ("value letters", n(b"abc") + b"incr n 1\r\n"),
            ("value empty", b"set n 0 0 0\r\n\r\nincr n 1\r\n"),
            ("value negative", n(b"-1") + b"incr n 1\r\n"),
            ("value 21 digits", n(b"1" * 21) + b"incr n 1\r\n"),
            ("value 2^64", n(b"18446744073709551616") + b"incr n 1\r\nget n\r\n"),
            ("value with flags kept", st(b"n", b"7", flags=42) + b"incr n 1\r\nget n\r\n"),
            ("incr no delta", b"incr n\r\n"),
            ("decr no delta", b"decr n\r\n"),
            ("incr extra token", b"incr n 1 2\r\n"),
            ("incr key 251", b"incr " + b"a" * 251 + b" 1\r\n"),
            ("decr to 0 then get", n(b"1") + b"decr n 1\r\nget n\r\n"),
            ("incr zero", n(b"7") + b"incr n 0\r\n"),
        ]:
            self.diff(label, req)

    def test_touch(self):
        for label, req in [
            ("touch hit", st() + b"touch k 100\r\nget k\r\n"),
            ("touch miss", b"touch k 100\r\n"),
            ("touch noreply", st() + b"touch k 100 noreply\r\ntouch q 1 noreply\r\n"),
            ("touch expire", st() + b"touch k -1\r\nget k\r\n"),
            ("touch bad exptime", st() + b"touch k abc\r\n"),
            ("touch no exptime", b"touch k\r\n"),
            ("touch extra tokens", b"touch k 1 2 3\r\n"),
            ("touch key 251", b"touch " + b"a" * 251 + b" 1\r\n"),
        ]:
            self.diff(label, req)


class OtherCommands(DiffCase):
    """B.1 framing, B.7 other commands."""

    def test_errors_and_framing(self):
        for label, req in [
            ("empty line", b"\r\n"),
            ("bare LF empty line", b"\n"),
            ("one char", b"x\r\n"),
            ("unknown command", b"foo bar\r\n"),
            ("misbehave", b"misbehave\r\n"),
            ("watch bad type", b"watch foo\r\n"),
            ("spaces only", b"     \r\n"),
            ("CR only line", b"\r\r\n"),
            ("pipelined", st(b"a", b"1") + b"get a\r\nincr a 5\r\ndelete a\r\nget a\r\nversion\r\n"
                          b"bogus\r\nset b 0 0 1\r\nb\r\ngets-x\r\n"),
        ]:
            self.diff(label, req)
        seq = st(b"a", b"hello") + b"append a 0 0 1\r\n!\r\nget a\r\nincr a 1\r\nversion\r\nfoo\r\n"
        self.diff("1-byte writes", seq, mode="bytewise")

    def test_version_verbosity(self):
        for label, req in [
            ("version", b"version\r\n"),
            ("version extra", b"version extra tokens\r\n"),
            ("verbosity 1", b"verbosity 1\r\n"),
            ("verbosity 5", b"verbosity 5\r\n"),
            ("verbosity noreply", b"verbosity 1 noreply\r\n"),
            ("verbosity no arg", b"verbosity\r\n"),
            ("verbosity non-numeric", b"verbosity abc\r\n"),
            ("verbosity too many", b"verbosity 1 2 3\r\n"),
            ("verbosity 0", b"verbosity 0\r\n"),
        ]:
            self.diff(label, req)

    def test_flush_all(self):
        for label, req in [
            ("flush_all", st() + b"flush_all\r\nget k\r\n"),
            ("flush_all 0", st() + b"flush_all 0\r\nget k\r\n"),
            ("flush_all noreply", st() + b"flush_all noreply\r\nget k\r\n"),
            ("flush_all 0 noreply", st() + b"flush_all 0 noreply\r\nget k\r\n"),
            ("flush_all negative", st() + b"flush_all -1\r\nget k\r\n"),
            ("flush_all bad delay", st() + b"flush_all abc\r\nget k\r\n"),
            ("flush_all bad delay noreply", b"flush_all abc noreply\r\n"),
            ("flush_all too many", b"flush_all 1 2 3\r\n"),
            ("set after flush", b"flush_all\r\n" + st() + b"get k\r\n"),
        ]:
            self.diff(label, req)
        self.diff("flush_all delayed", st() + b"flush_all 100\r\nget k\r\n", fresh=True)

    def test_shutdown_memlimit(self):
        for label, req in [
            ("shutdown", b"shutdown\r\n"),
            ("shutdown graceful", b"shutdown graceful\r\n"),
            ("shutdown bad mode", b"shutdown foo\r\n"),
            ("cache_memlimit no arg", b"cache_memlimit\r\n"),
            ("cache_memlimit non-numeric", b"cache_memlimit x\r\n"),
            ("cache_memlimit too small", b"cache_memlimit 4\r\n"),
            ("cache_memlimit bytes", b"cache_memlimit 2000000000\r\n"),
            ("cache_memlimit negative", b"cache_memlimit -1\r\n"),
        ]:
            self.diff(label, req)
        self.diff("cache_memlimit ok", [b"cache_memlimit 100\r\ncache_memlimit 64 noreply\r\n"
                  b"cache_memlimit 7 noreply\r\n", b"stats settings\r\n"], fresh=True)

    def test_connection_closing(self):
        self.diff("GET / HTTP/1.1", b"GET / HTTP/1.1\r\n", mode="eof")
        self.diff("get / HTTP/1.0 after valid", st() + b"get k\r\nGET / HTTP/1.0\r\nget k\r\n", mode="eof")
        self.diff("get / HTTP/1.1 lowercase is a get", b"get / HTTP/1.1\r\n")
        self.diff("quit", b"version\r\nquit\r\nversion\r\n", mode="eof")
        self.diff("quit pipelined after set", st() + b"get k\r\nquit\r\nget k\r\n", mode="eof")
        self.diff("2048 no newline (set)", b"set " + b"a" * 3000, mode="eof")
        self.diff("2048 no newline (junk) 2 writes", [[b"x" * 2000, b"y" * 1000]], mode="eof")
        self.diff("100 spaces then long", b" " * 120 + b"z" * 2100, mode="eof")
        # Server is still healthy after those closes:
        self.diff("after closes", st() + b"get k\r\n")


class StatsFamily(DiffCase):
    """B.8 — fresh pair per case: counters depend on the whole history."""

    SEQ = (st(b"a", b"1") + st(b"b", b"22") + st(b"c", b"x" * 500) + st(b"big", b"y" * 70000) +
           b"get a b nope\r\ngets c\r\nadd a 0 0 1\r\nq\r\nreplace zz 0 0 1\r\nq\r\n"
           b"append a 0 0 1\r\n2\r\nprepend nope 0 0 1\r\n3\r\ndelete b\r\ndelete nope\r\n"
           b"set n 0 0 2\r\n10\r\nincr n 5\r\nincr nope 1\r\ndecr n 3\r\ndecr nope 1\r\n"
           b"cas n 0 0 1 1\r\n9\r\ncas nope 0 0 1 1\r\n9\r\ntouch a 100\r\ntouch nope 1\r\n"
           b"gat 100 a nope\r\ngats 0 c\r\n" + st(b"e", b"gone", exp=-1) + b"get e\r\n"
           b"set t 0 0 2000000\r\n" + b"z" * 2000000 + b"\r\n")

    def test_stats_after_sequence(self):
        self.diff("stats (names/order, counters)", [self.SEQ, b"stats\r\n"], fresh=True)
        strict = DETERMINISTIC_STATS | CONNECTION_STATS
        self.diff("stats incl. connection counts", [self.SEQ, b"stats\r\n"], fresh=True,
                  norm=lambda r: normalise_stats(parse_stats(r), strict) if r.startswith(b"STAT ") else r)

    def test_stats_fresh(self):
        self.diff("stats on fresh server", b"stats\r\n", fresh=True)

    def test_stats_reset(self):
        self.diff("stats reset", [self.SEQ, b"stats reset\r\n", b"stats reset extra\r\n", b"stats\r\n"],
                  fresh=True)

    def test_stats_settings(self):
        self.diff("stats settings", b"stats settings\r\n", fresh=True)
        self.diff("stats settings extra", b"stats settings extra\r\n", fresh=True)

    def test_stats_slabs_items(self):
        self.diff("stats slabs empty", b"stats slabs\r\n", fresh=True)
        self.diff("stats items empty", b"stats items\r\n", fresh=True)
        self.diff("stats slabs after sequence", [self.SEQ, b"stats slabs\r\n"], fresh=True)
        self.diff("stats items after sequence", [self.SEQ, b"stats items\r\n"],
                  norm=items_norm, fresh=True)

    def test_stats_misc(self):
        for label, req in [
            ("stats bogus", b"stats bogus\r\n"),
            ("stats detail", b"stats detail\r\n"),
            ("stats detail bogus", b"stats detail bogus\r\n"),
            ("stats sizes", b"stats sizes\r\n"),
            ("STATS uppercase", b"STATS\r\n"),
        ]:
            self.diff(label, req, fresh=True)


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


# ------------------------------------------------------------------------------------------------
# Flag variations: a new pair per class.

def slabs_norm(raw):
    """stats slabs as (name, value) pairs (every value compared) for a readable diff."""
    return ("stats slabs", parse_stats(raw))


def slabs_norm_any(raw):
    return slabs_norm(raw) if raw.startswith(b"STAT ") else raw


class ChunkedItems(DiffCase):
    """Items larger than slab_chunk_max (512 KiB by default) are chunked."""

    def test_chunked(self):
        seq = (st(b"c600k", b"a" * 600000) + st(b"c1m", b"b" * 1048000) + st(b"c520k", b"c" * 524288) +
               b"get c600k\r\n")
        self.diff("chunked items get", seq, fresh=True)
        self.diff("chunked stats items", [seq, b"stats items\r\n"], norm=items_norm, fresh=True)
        self.diff("chunked stats", [seq, b"stats\r\n"], fresh=True)
        self.diff("chunked append/prepend", st(b"ca", b"a" * 500000) + st(b"ca", b"b" * 100000, cmd=b"append") +
                  st(b"ca", b"c" * 10, cmd=b"prepend") + b"get ca\r\n", fresh=True)
        self.diff("chunked incr non-numeric", st(b"ci", b"1" + b" " * 600000) + b"incr ci 1\r\n", fresh=True)

    # Slab layout (memcached 1.6.18 do_item_alloc / do_item_alloc_chunk / _store_item_copy_chunks): the header
    # (48 + 8 + key + 1 + suffix + 48-byte item_chunk) in a small class, the item counted in the largest class,
    # the value + "\r\n" in chunks of min(left + 48, slab_chunk_max) bytes from the smallest class that fits.

    def slabs_items(self, label, seq, extra=None):
        """`seq` (bytes, or a list of steps), then stats slabs / stats items / selected stats, each on a fresh pair."""
        seq = seq if isinstance(seq, list) else [seq]
        self.diff(label + ": stats slabs", seq + [b"stats slabs\r\n"], fresh=True, norm=slabs_norm_any, extra=extra)
        self.diff(label + ": stats items", seq + [b"stats items\r\n"], fresh=True, norm=items_norm, extra=extra)
        self.diff(label + ": stats", seq + [b"stats\r\n"], fresh=True,
                  norm=stat_values(["curr_items", "total_items", "bytes", "cmd_set", "get_hits", "total_malloced",
                                    "evictions", "store_too_large", "store_no_memory"]), extra=extra)

    def test_chunked_slabs(self):
        seq = (st(b"c600k", b"a" * 600000) + st(b"c1m", b"b" * 1048000) + st(b"c520k", b"c" * 524288) +
               b"get c600k\r\n")
        self.diff("chunked stats slabs", [seq, b"stats slabs\r\n"], fresh=True, norm=slabs_norm_any)
        self.diff("chunked delete then slabs", [seq + b"delete c600k\r\ndelete c1m\r\n", b"stats slabs\r\n"],
                  fresh=True, norm=slabs_norm_any)
        self.diff("slab_chunk_max=16384 -I 64k", [st(b"a", b"x" * 20000), b"stats slabs\r\n"],
                  fresh=True, extra=["-o", "slab_chunk_max=16384", "-I", "64k"])

    def test_chunked_sizes(self):
        # 524228: largest plain item with key "k"; 524238/524239: the "\r\n" spills 0/1 byte into class 1;
        # 1048478: exactly two largest chunks; 1048516: 1 MB - overhead (ntotal = -I); 1048517: too large.
        for size in (524228, 524229, 524238, 524239, 524241, 1048478, 1048479, 1048516, 1048517):
            self.slabs_items(f"chunked {size}", st(b"k", b"v" * size) + b"get k\r\n")
        self.slabs_items("chunked 1 MB - overhead, flags", st(b"k", b"v" * 1048512, flags=7) + b"get k\r\n")

    def test_chunked_keys_and_flags(self):
        # header class from key length and flags: 14/15-byte keys (class 2 vs 3 with flags), 109, 250 bytes.
        seq = b"".join(st(b"k" * n, b"v" * 700000, flags=f) for n, f in ((14, 0), (15, 0), (14, 9), (109, 0),
                                                                        (250, 1), (250, 0)))
        self.slabs_items("chunked keys/flags", seq + b"get " + b"k" * 250 + b"\r\n")

    def test_chunked_overwrite_delete(self):
        seq = (st(b"a", b"1" * 600000) + st(b"a", b"2" * 900000) + st(b"b", b"3" * 600000) + b"delete b\r\n" +
               st(b"c", b"4" * 700000) + st(b"c", b"small") + st(b"d", b"small") + st(b"d", b"5" * 800000) +
               b"get a c d\r\ndelete d\r\n")
        self.slabs_items("chunked overwrite/delete", seq)

    def test_chunked_append_prepend_layout(self):
        # _store_item_copy_chunks: each copied part gets chunks sized for what is left of it, and a full chunk
        # at the end of a part is followed by an empty 48-byte one (class 1).
        seq = (st(b"a", b"a" * 300000) + st(b"a", b"b" * 300000, cmd=b"append") +
               st(b"b", b"c" * 600000) + st(b"b", b"d" * 10, cmd=b"append") + st(b"b", b"e" * 5, cmd=b"prepend") +
               st(b"c", b"f" * 500000) + st(b"c", b"g" * 24240, cmd=b"append") +
               st(b"d", b"") + st(b"d", b"h" * 600000, cmd=b"append") + b"get a b c d\r\n")
        self.slabs_items("chunked append/prepend layout", seq)

    def test_chunked_big_item_size(self):
        seq = (st(b"big", b"b" * 1572864) + st(b"b2", b"c" * 2097052) + st(b"b3", b"d" * 2097000, flags=3) +
               b"get big b2\r\n")
        self.slabs_items("-I 2m chunked", seq, extra=["-I", "2m"])

    def test_chunked_slab_chunk_max(self):
        seq = (st(b"a", b"x" * 20000) + st(b"b", b"y" * 16336) + st(b"c", b"z" * 32672) + st(b"d", b"w" * 65000) +
               st(b"a", b"v" * 3, cmd=b"append") + b"get a b c d\r\n")
        self.slabs_items("slab_chunk_max=16384 -I 64k", seq, extra=["-o", "slab_chunk_max=16384", "-I", "64k"])
        seq = st(b"a", b"x" * 200000) + st(b"b", b"y" * 65536, flags=1) + st(b"c", b"z" * 900000) + b"get a\r\n"
        self.slabs_items("slab_chunk_max=65536", seq, extra=["-o", "slab_chunk_max=65536"])

    def test_chunked_no_cas(self):
        self.slabs_items("-C chunked", st(b"a", b"x" * 600000) + st(b"b", b"y" * 524233), extra=["-C"])

    def test_chunked_eviction(self):
        # -m 8: chunked items evict each other from the largest class's LRU (their headers sit in class 2);
        # small items in the header class are evicted by small items and headers alike.
        steps = [st(b"a%d" % (i % 7), b"v" * (600000 + i * 1000)) for i in range(40)]
        steps.append(b"delete a3\r\n" + st(b"a1", b"w" * 300000, cmd=b"append") + b"get a1 a6 a0\r\n")
        self.slabs_items("-m 8 chunked overwrites", steps, extra=["-m", "8"])
        steps = [st(b"a%d" % i, b"v" * 1048000) for i in range(6)]
        steps += [b"".join(st(b"s%09d" % i, b"s" * 40) for i in range(j, j + 1000)) for j in range(0, 30000, 1000)]
        steps += [st(b"b%d" % i, b"v" * 524288) for i in range(5)]
        self.slabs_items("-m 8 chunked + small", steps + [b"get b4 a0 s000000000\r\n"], extra=["-m", "8"])
        steps = [st(b"a%d" % i, b"v" * 600000) for i in range(8)]
        steps += [b"".join(st(b"s%05d" % i, b"s" * 200) for i in range(j, j + 1000)) for j in range(0, 40000, 1000)]
        self.slabs_items("-m 8 chunked then small", steps + [b"get a7 a0\r\n"], extra=["-m", "8"])
        steps = [st(b"a%d" % i, b"v" * 1048000) for i in range(6)] + [st(b"b", b"v" * 600000)]
        self.slabs_items("-m 8 -M chunked", steps + [b"get b a0\r\n"], extra=["-m", "8", "-M"])


class LargeValues(DiffCase):
    """Values of 64 KB and more, which Cachet sends straight from slab memory (pinned, ZeroCopyOutput.swift):
    mixed with small ones and chunked ones in one reply, and dropped again when the command is culled."""

    def test_large_values(self):
        sizes = [65535, 65536, 65537, 100000, 524200, 600000]
        setup = b"".join(st(b"v%d" % n, bytes([97 + i % 26]) * n, flags=i) for i, n in enumerate(sizes)) + st(b"s", b"1")
        keys = b" ".join(b"v%d" % n for n in sizes)
        for label, req in [
            ("get large and small mixed", setup + b"get s " + keys + b" s nope v65536\r\n"),
            ("gets / gat / gats large", setup + b"gets v100000 s\r\ngat 100 v600000\r\ngats 0 v65537 s\r\n"),
            ("pipelined large gets", setup + b"get v100000\r\nversion\r\nget v100000 v100000\r\nmn\r\n"),
            ("key 251 culls large values", [setup, b"get s v100000 v600000 " + b"a" * 251 + b"\r\nget v65536\r\n"]),
            ("key 251 culls an mg value", [setup, b"mg v100000 v\r\nget s " + b"a" * 251 + b"\r\nget s\r\n"]),
            ("mg then ma on a large numeric value", st(b"n", b"7" + b" " * 99999) + b"mg n v\r\nma n D5 v\r\nmg n v\r\n"),
            ("mg large v", setup + b"mg v65536 v s f\r\nmg v600000 v k q\r\nmg v100000 s\r\nmn\r\n"),
            ("mg large v, opaque too long", setup + b"mg v100000 v " + O33 + b"\r\nmg v600000 v t " + O33 +
                                            b"\r\nmg v65537 v\r\n"),
            ("incr on a large numeric value", st(b"n", b"7" + b" " * 99999) + b"get n\r\nincr n 5\r\nget n\r\n"),
            ("delete and replace after get", setup + b"get v100000\r\ndelete v100000\r\nget v100000\r\n" +
                                             st(b"v100000", b"z" * 100001) + b"get v100000\r\n"),
        ]:
            self.diff(label, req)


class VerboseSlabClasses(DiffCase):
    """`-vv` prints the slab class table on stderr at startup."""

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def test_vv_slab_classes(self):
        for flags in (["-vv"], ["-vv", "-f", "2", "-n", "100"], ["-vv", "-I", "2m"], ["-vv", "-m", "8", "-f", "1.5"]):
            pair = Pair(flags).start()
            try:
                lines = []
                for srv in (pair.oracle, pair.cachet):
                    lines.append(b"\n".join(ln for ln in srv.stderr().split(b"\n")
                                            if ln.startswith(b"slab class")))
            finally:
                pair.stop_later()
            self.assertTrue(lines[0], "memcached -vv printed no slab classes")
            self.compare(f"-vv slab classes {' '.join(flags[1:])}", " ".join(flags).encode(), *lines)


class Eviction8m(DiffCase):
    EXTRA = ["-m", "8"]

    def test_eviction(self):
        steps = [b"set key%03d 0 0 102400\r\n" % i + b"v" * 102400 + b"\r\n" for i in range(200)]
        steps.append(b"stats\r\n")
        steps.append(b"get key000 key199\r\n")
        self.diff("-m 8: 200 x 100KB", steps,
                  norm=stat_values(["curr_items", "evictions", "total_items", "limit_maxbytes",
                                    "evicted_unfetched"]), fresh=True)
        steps2 = steps[:200] + [b"stats items\r\n", b"stats slabs\r\n"]
        self.diff("-m 8: stats items/slabs after eviction", steps2,
                  norm=lambda r: items_norm(r) if r.startswith(b"STAT items:") else
                  slabs_norm(r) if r.startswith(b"STAT ") else r, fresh=True)


class OutOfMemory(DiffCase):
    EXTRA = ["-m", "8", "-M"]

    def test_out_of_memory(self):
        steps = [b"set key%03d 0 0 102400\r\n" % i + b"v" * 102400 + b"\r\n" for i in range(120)]
        steps.append(b"set small 0 0 5\r\nsmall\r\nget small\r\n")
        steps.append(b"stats\r\n")
        self.diff("-M: sets until OOM", steps,
                  norm=stat_values(["curr_items", "evictions", "store_no_memory", "total_items"]),
                  fresh=True)
        self.diff("-M: stats settings evictions off", b"stats settings\r\n",
                  norm=stat_values(["evictions", "maxbytes"]), fresh=True)


class NoCas(DiffCase):
    EXTRA = ["-C"]
    PRELUDE = None  # without CAS, flush_all's same-second rule would hide the case's own sets

    def test_no_cas(self):
        self.diff("-C gets shows 0", st(b"nc1") + b"gets nc1\r\n")
        self.diff("-C gats", st(b"nc2") + b"gats 100 nc2\r\n")
        self.diff("-C cas command", st(b"nc3") + b"cas nc3 0 0 1 0\r\ny\r\ncas nc3 0 0 1 1\r\nz\r\nget nc3\r\n")
        self.diff("-C stats settings cas_enabled", b"stats settings\r\n",
                  norm=stat_values(["cas_enabled"]))
        self.diff("-C size boundary (no 8-byte cas)", st(b"k", b"v" * 1048524) + st(b"k2", b"v" * 1048525))


class BigItems(DiffCase):
    EXTRA = ["-I", "2m"]

    def test_big_values(self):
        self.diff("-I 2m: 1.5MB value", st(b"big", b"b" * 1572864) + b"get big\r\n")
        self.diff("-I 2m: 2MB value too large", st(b"big2", b"b" * 2097152) + b"get big2\r\n")
        self.diff("-I 2m: item_size_max", b"stats settings\r\n", norm=stat_values(["item_size_max"]))
        self.diff("-I 2m: 2MB - 100", st(b"big3", b"c" * (2097152 - 100)) + b"get big3\r\n")


class Yields(DiffCase):
    EXTRA = ["-R", "2"]

    def test_conn_yields(self):
        burst = b"".join(st(b"y%02d" % i, b"v") for i in range(50))
        self.diff("-R 2: 50 pipelined sets", [burst, b"stats\r\n"],
                  norm=stat_values(["conn_yields", "cmd_set", "curr_items"]), fresh=True)
        self.diff("-R 2: reqs_per_event", b"stats settings\r\n", norm=stat_values(["reqs_per_event"]))


class FlushDisabled(DiffCase):
    EXTRA = ["-F"]
    PRELUDE = None

    def test_flush_disabled(self):
        self.diff("-F flush_all", st(b"f1") + b"flush_all\r\nflush_all 0 noreply\r\nget f1\r\n")
        self.diff("-F cmd_flush counted", [b"flush_all\r\n", b"stats\r\n"], norm=stat_values(["cmd_flush"]),
                  fresh=True)


class SettingsEcho(DiffCase):
    """`stats settings` / `stats` / `stats slabs` reflect the command-line flags identically."""

    FLAG_SETS = [
        ["-m", "8", "-M", "-C", "-R", "2"],
        ["-I", "2m", "-c", "500", "-t", "2", "-b", "512"],
        ["-f", "2", "-n", "100"],
        ["-f", "1.5", "-n", "64", "-B", "ascii", "-F", "-X", "-W", "-A"],
        ["-o", "idle_timeout=5", "-v"],
        ["-o", "no_lru_crawler,no_lru_maintainer,no_maxconns_fast"],
    ]

    def test_settings_per_flags(self):
        for flags in self.FLAG_SETS:
            f = " ".join(flags)
            self.diff(f"stats settings [{f}]", b"stats settings\r\n", fresh=True, extra=flags)
            self.diff(f"stats [{f}]", b"stats\r\n", fresh=True, extra=flags)
            self.diff(f"stats slabs after sets [{f}]",
                      [st(b"a", b"x" * 10) + st(b"b", b"y" * 1000) + st(b"c", b"z" * 20000),
                       b"stats slabs\r\n", b"stats sizes\r\n"], fresh=True, extra=flags)


class RandomMix(DiffCase):
    """Seeded random operations over 20 keys, compared op by op on a fresh pair."""

    SEED = 1806
    OPS = 2500

    def test_random_mix(self):
        rnd = random.Random(self.SEED)
        keys = [b"r%02d" % i for i in range(20)]
        cas_seen = {}

        def value():
            c = rnd.random()
            if c < 0.4:
                return str(rnd.choice([0, 1, 9, 10, 99, 100, 255, 1000,
                                       rnd.randrange(0, 10**6)])).encode()
            return bytes(rnd.choice(b"abcdefghij0\x00\xff") for _ in range(rnd.randrange(0, 40)))

        def exptime():
            return rnd.choice([0, 0, 0, 0, 100, 3600, -1, 2592001])

        def nr():
            return b" noreply" if rnd.random() < 0.2 else b""

        ops = []
        for _ in range(self.OPS):
            k = rnd.choice(keys)
            c = rnd.random()
            if c < 0.25:
                cmd = rnd.choice([b"set", b"set", b"add", b"replace", b"append", b"prepend"])
                ops.append(st(k, value(), flags=rnd.choice([0, 1, 4294967295]), exp=exptime(),
                              cmd=cmd, extra=nr()))
            elif c < 0.32:
                ops.append(("cas", k, value(), nr(), rnd.random() < 0.25))
            elif c < 0.47:
                ops.append(b"get " + b" ".join(rnd.sample(keys, rnd.randrange(1, 4))) + CRLF)
            elif c < 0.55:
                ops.append(b"gets " + b" ".join(rnd.sample(keys, rnd.randrange(1, 3))) + CRLF)
            elif c < 0.59:
                ops.append(rnd.choice([b"gat", b"gats"]) + b" %d " % exptime() + k + CRLF)
            elif c < 0.65:
                ops.append(b"delete " + k + nr() + CRLF)
            elif c < 0.80:
                # Never shrink a number: memcached pads a shrunk result in place only when no
                # other thread holds the item (racy), and the padding changes what later
                # appends/incrs see. Wrap/clamp/padding are covered by DeleteIncrTouch.
                if rnd.random() < 0.7:
                    ops.append(b"incr " + k + b" %d" % rnd.choice([0, 1, 2, 10, 1000]) + nr() + CRLF)
                else:
                    ops.append(b"decr " + k + b" 0" + nr() + CRLF)
            elif c < 0.86:
                ops.append(b"touch " + k + b" %d" % exptime() + nr() + CRLF)
            elif c < 0.87:
                ops.append(b"flush_all" + nr() + CRLF)
            elif c < 0.90:
                ops.append(rnd.choice([b"bogus\r\n", b"get\r\n", b"incr " + k + b" x\r\n",
                                       b"set " + k + b" 0 0 2\r\nabc\r\n", b"delete " + k + b" 0\r\n"]))
            else:
                ops.append(b"get " + k + CRLF)

        def make_step(op):
            if isinstance(op, bytes):
                return op
            _, k, v, nrs, stale = op

            def step(replies):
                # the most recent cas unique the oracle reported for k, or a stale/random one
                uniq = None
                for r in reversed(replies):
                    for ln in r.split(b"\r\n"):
                        p = ln.split(b" ")
                        if len(p) == 5 and p[0] == b"VALUE" and p[1] == k:
                            uniq = int(p[4])
                            break
                    if uniq is not None:
                        break
                if uniq is None or stale:
                    uniq = (len(replies) * 7) % 50 + 1
                return b"cas " + k + b" 0 0 %d %d" % (len(v), uniq) + nrs + CRLF + v + CRLF
            return step

        steps = [make_step(op) for op in ops]
        # Touch every key first: expired/flushed items are unlinked on access, otherwise the
        # background crawler decides when curr_items/bytes drop (racy in memcached).
        steps.append(b"get " + b" ".join(keys) + CRLF)
        steps.append(b"stats\r\n")
        self.diff(f"random mix seed={self.SEED} ops={self.OPS}", steps, fresh=True, norm=mix_norm)


# ------------------------------------------------------------------------------------------------
# Meta protocol (1.6.18 behaviour). Flags 1.6.18 rejects or ignores but later memcached
# implements (E, md x, ms s, ms N with append/prepend) are not compared here: test_meta_superset.py.
O32 = b"O" + b"o" * 31
O33 = b"O" + b"o" * 32
K250 = b"a" * 250
K251 = b"a" * 251


def ms(key=b"k", val=b"x", flags=b""):
    return b"ms " + key + b" %d" % len(val) + (b" " + flags if flags else b"") + CRLF + val + CRLF


class MetaBasics(DiffCase):
    """The first meta cases (from the issue-5 pending suite); `mn` is the harness's end marker."""

    def test_meta(self):
        for label, req in [
            ("ms/mg flags", b"ms m1 2 c k O123 F5 T100\r\nxx\r\nmg m1 s v f t c k O9 h l\r\n"),
            ("mg miss k/O echo", b"mg nokey v k O1\r\nmg nokey\r\nmg nokey q\r\n"),
            ("mg vivify", b"mg viv N30 v c t\r\nmg viv N30 v c t\r\n"),
            ("md invalidate", b"ms m1 2\r\nxx\r\nmd m1 I T30\r\nmg m1 v c\r\n"),
            ("ma", b"ma cnt N0 J10 v\r\nma cnt v D100 M-\r\nma cnt\r\nma nope\r\nma cnt MI D5 v\r\n"),
            ("me", b"ma cnt N0 J10 v\r\nme cnt\r\nme nope\r\n"),
            ("ms modes", b"ms m2 2 MA\r\nxx\r\nms m2 2 MS\r\nab\r\nms m2 2 MA\r\ncd\r\n"
                         b"ms m2 2 MP\r\nef\r\nms m2 1 ME\r\nz\r\nms m2 1 MR\r\ny\r\nmg m2 v\r\n"),
            ("ms base64 key", b"ms Zm9v 2 b\r\nhi\r\nmg foo v\r\nmg Zm9v b v k\r\n"),
            ("meta errors", b"mg\r\nms k\r\nms k abc\r\nmg k v v\r\nmg k !\r\nmg k Tabc\r\n"
                            b"ms k 1 MZ\r\nx\r\nma k MZ\r\nma k Dabc\r\nmg k O" + b"o" * 40 + b"\r\n"
                            b"mg " + b"a" * 251 + b" v\r\nmx\r\nmg !!!! b\r\n"),
            ("ms bad chunk q", b"ms k 2 q\r\nxyz\r\nmg k v\r\n"),
            ("md variants", b"ms d1 1\r\nx\r\nmd d1 q\r\nmd d1\r\nmd d1 q\r\nms d2 1\r\nx\r\nmd d2\r\nmg d2 v\r\n"),
            ("ms cas", b"ms c1 1 c\r\nx\r\nms c1 1 C1\r\ny\r\nms c1 1 C2 c\r\nz\r\nmg c1 v c\r\n"),
        ]:
            self.diff(label, req, fresh=True)


class MetaGet(DiffCase):
    """mg: every 1.6.18 flag on hits and misses, win/stale/recache tokens, bad tokens."""

    def test_mg_flags(self):
        for label, req in [
            ("mg no flags hit/miss", ms() + b"mg k\r\nmg nope\r\n"),
            ("mg each flag alone", ms(val=b"abc", flags=b"F7 T100") + b"mg k s\r\nmg k v\r\nmg k f\r\nmg k t\r\n"
                                   b"mg k k\r\nmg k O1\r\nmg k q\r\nmg k h\r\nmg k l\r\nmg k u\r\nmg k P\r\nmg k L\r\n"),
            ("mg flags in reverse order", ms(val=b"abc", flags=b"F7") + b"mg k l h O1 k f t s v\r\n"),
            ("mg h before/after fetch", ms() + b"mg k h\r\nmg k h\r\nmg k h u\r\n" + ms(b"k2") +
                                        b"mg k2 u\r\nmg k2 h\r\nmg k2 h\r\n"),
            ("mg u keeps unfetched", ms() + b"mg k u v\r\nmg k u\r\nmg k h\r\nmg k h\r\n"),
            ("mg value binary and empty", ms(val=bytes(range(256))) + b"mg k v s\r\n" + ms(b"e", b"") + b"mg e v s\r\n"),
            ("mg q hit shown, miss hidden", ms() + b"mg k q v\r\nmg nope q v\r\nmg nope q k O5\r\nmg k q\r\n"),
            ("mg q misses then mn", [b"mg a q\r\nmg b q\r\n", b"mg c q v\r\n"]),
            ("mg T touches", ms(flags=b"T100") + b"mg k t T30 t\r\nmg k t\r\nmg k T0 t\r\nmg k T-1 v\r\nmg k v\r\n"),
            ("mg T on miss", b"mg nope T30 v\r\n"),
            ("mg opaque 32 ok / 33 too long", ms() + b"mg k " + O32 + b"\r\nmg k " + O33 + b"\r\nmg nope " + O32 +
                                              b"\r\nmg nope " + O33 + b"\r\nmg nope q " + O33 + b"\r\n"),
            ("mg T before too-long opaque applies", ms() + b"mg k T30 " + O33 + b" t\r\nmg k t\r\n"),
            ("mg opaque before T stops it", ms() + b"mg k " + O33 + b" T30\r\nmg k t\r\n"),
            ("mg key 250/251", ms(K250) + b"mg " + K250 + b" v k\r\nmg " + K251 + b" v\r\nmg " + K251 + b"\r\n"),
            ("mg key with control-free bytes", ms(b"\xc3\xa9t\xc3\xa9") + b"mg \xc3\xa9t\xc3\xa9 v k\r\n"),
        ]:
            self.diff(label, req)

    def test_mg_cas_and_tokens(self):
        for label, req in [
            ("mg c after ms/md/ma", ms(flags=b"c") + b"mg k c\r\nma n N0 J3 c\r\nmg n c v\r\n"),
            ("mg vivify order N/t", b"mg v1 t N30 v c\r\nmg v1 t v c\r\nmg v2 N30 t v c h\r\nmg v2 h l\r\n"),
            ("mg vivify s f k", b"mg v3 N30 s f k\r\nmg v3 N30 s f k\r\nmg v3 v\r\n"),
            ("mg vivify q", b"mg v4 N30 q\r\nmg v4 N30 q\r\nmg v4 q v\r\n"),
            ("mg recache R", ms(flags=b"T20") + b"mg k R30 v c t\r\nmg k R30 v c t\r\nmg k R10 t\r\n" +
                             ms(b"k2", flags=b"T20") + b"mg k2 R10 t\r\nmg k2 R0 t\r\n" +
                             ms(b"k3") + b"mg k3 R30 t\r\n"),
            ("mg stale after md I", ms() + b"md k I\r\nmg k v c\r\nmg k v c\r\nmd k I T30 q\r\nmg k c t\r\n"
                                     b"mg k R99 c\r\n" + ms() + b"mg k c\r\n"),
            ("mg stale u", ms() + b"md k I\r\nmg k u\r\nmg k u\r\n"),
            ("mg vivify base64", b"mg Zm9v b N30 k v\r\nmg Zm9v b k\r\nmg foo k\r\n"),
            ("mg vivify over expired", ms(flags=b"T-1") + b"mg k N30 v c t\r\nmg k v c t\r\n"),
            ("mg N and T together", b"mg n1 N30 T60 t c\r\nmg n1 t\r\nmg n2 T60 N30 t\r\nmg n2 t\r\n"
                                    b"mg n2 N10 T20 t\r\n"),
            ("mg R after win already sent", ms(flags=b"T20") + b"mg k R30 c\r\nmd k I\r\nmg k R30 c\r\nmg k R30 c\r\n"),
            ("mg empty opaque", ms() + b"mg k O\r\nmg nope O k\r\n"),
            ("stale item through classic and ma", ms(b"n", b"5") + b"md n I\r\nget n\r\nma n v\r\nmg n v c\r\n"
                                                  b"append n 0 0 1\r\n0\r\nmg n v c\r\n"),
            ("mg stats with T and N", [ms() + b"mg k T30\r\nmg k N30 T30\r\nmg nope N30 T30\r\nmg nope2 T30\r\n",
                                      b"stats\r\n"]),
        ]:
            self.diff(label, req, fresh=True)

    def test_mg_errors(self):
        for label, req in [
            ("mg alone", b"mg\r\n"),
            ("mg duplicate flags", b"mg k v v\r\nmg k t t\r\nmg k O1 O2\r\nmg k T1 T2\r\nmg k b b\r\n"),
            ("mg invalid flags", b"mg k !\r\nmg k W\r\nmg k X\r\nmg k Z\r\nmg k a\r\nmg k m\r\nmg k 5\r\n"
                                 b"mg k \xff\r\nmg k \x7f\r\n"),
            ("mg invalid flag after dup", b"mg k v ! v\r\nmg k v v !\r\n"),
            ("mg bad numeric tokens", b"mg k Tabc\r\nmg k Nabc\r\nmg k Rabc\r\nmg k T\r\nmg k N\r\nmg k R\r\n"
                                      b"mg k Cabc\r\nmg k Fabc\r\nmg k F-1\r\nmg k Jx\r\nmg k Dx\r\nmg k T99999999999\r\n"),
            ("mg last error wins", b"mg k Tx Jx\r\nmg k Jx Tx\r\nmg k Tx Fx\r\nmg k Fx Tx\r\nmg k Dx Fx\r\n"),
            ("mg M length", b"mg k M\r\nmg k MSS\r\nmg k MZ\r\n"),
            ("mg accepted but ignored", ms() + b"mg k F5 J5 D5 MZ I C5 P L\r\n"),
            ("mg options too long", b"mg k" + b" s" * 17 + b"\r\nmg k" + b" !" * 17 + b"\r\nmg k" + b" !" * 18 + b"\r\n"
                                    b"mg k" + b" !" * 30 + b"\r\n"),
            ("mg base64 errors", b"mg !!!! b\r\nmg a b\r\nmg ==== b\r\nmg A=== b\r\nmg a!2s= b v\r\nmg !!!! b Tx\r\n"
                                 b"mg !!!! b !\r\n"),
            ("mg line longer than 2048 bytes", b"mg k O" + b"z" * 2500 + b" v\r\nmg k" + b" " * 2500 + b"v\r\n"),
            ("md/ma after stale + q miss", b"md nope I q\r\nma nope q\r\nmd nope q C1\r\n"),
            ("mg 251 key before flag errors", b"mg " + K251 + b" !\r\nmg " + K251 + b" !" * 25 + b"\r\n"),
        ]:
            self.diff(label, req)


class MetaSet(DiffCase):
    """ms: modes, CAS, invalidation, flags, data-block framing and swallowing."""

    def test_ms_modes(self):
        for label, req in [
            ("ms modes on miss", ms(flags=b"ME") + ms(b"a", flags=b"MA") + ms(b"p", flags=b"MP") +
                                 ms(b"r", flags=b"MR") + ms(b"s", flags=b"MS") + b"mg k v\r\nmg s v\r\nmg a v\r\n"),
            ("ms modes on hit", ms(val=b"mid") + ms(val=b"!", flags=b"ME") + ms(val=b">", flags=b"MA") +
                                ms(val=b"<", flags=b"MP") + b"mg k v\r\n" + ms(val=b"r", flags=b"MR") + b"mg k v\r\n"),
            ("ms append keeps flags/ttl", ms(val=b"a", flags=b"F9 T100") + ms(val=b"b", flags=b"MA F1 T5") +
                                          b"mg k v f t\r\n"),
            ("ms lower-case and bad modes", ms(flags=b"Ms") + ms(flags=b"Me") + ms(flags=b"MZ") + ms(flags=b"M") +
                                            ms(flags=b"MSS") + ms(flags=b"ms") + b"mg k v\r\n"),
            ("ms F flags", ms(flags=b"F4294967295") + b"mg k f\r\n" + ms(flags=b"F4294967296") + b"mg k f\r\n" +
                           ms(flags=b"Fabc") + ms(flags=b"F-1") + ms(flags=b"F") + b"mg k f v\r\n"),
            ("ms T", ms(flags=b"T-1") + b"mg k v\r\n" + ms(flags=b"T0") + b"mg k t\r\n" + ms(flags=b"T50") +
                     b"mg k t\r\n" + ms(flags=b"Tx")),
            ("ms q", [ms(flags=b"q") + ms(flags=b"q ME") + ms(b"r", flags=b"q MR") + ms(flags=b"q C1") +
                      b"mg k v\r\n", ms(flags=b"q")]),
            ("ms ignores mg flags", ms(flags=b"v t f h l u") + b"mg k v\r\n"),
        ]:
            self.diff(label, req)

    def test_ms_cas_and_return_flags(self):
        for label, req in [
            ("ms c k O", ms(flags=b"c k O123") + ms(flags=b"O1 c k") + ms(flags=b"ME c k O2") + ms(b"r", flags=b"MR c")),
            ("ms C match/mismatch/miss", ms(flags=b"c") + ms(flags=b"C1 c") + ms(flags=b"C99 c") + ms(b"n", flags=b"C1 c") +
                                         ms(flags=b"C2 MR c") + ms(flags=b"C0 c") + b"mg k c v\r\n"),
            ("ms C with append", ms(val=b"a") + ms(val=b"b", flags=b"MA C99") + ms(val=b"c", flags=b"MA C1 c") +
                                 b"mg k v c\r\n"),
            ("ms C with add", ms(val=b"a") + ms(val=b"b", flags=b"ME C1") + ms(b"n", flags=b"ME C5 c") + b"mg n c\r\n"),
            ("ms I stale set", ms(flags=b"I") + ms(val=b"y", flags=b"I C1 c") + b"mg k v c\r\n" +
                               ms(val=b"z", flags=b"I C99 c") + ms(val=b"w", flags=b"I C1 c T99") +
                               b"mg k v c t\r\nmg k c\r\n"),
            ("ms I keeps ttl and token", ms(flags=b"T50") + b"md k I T0\r\nmg k t v\r\n" + ms(val=b"q", flags=b"C2 I") +
                                         ms(val=b"q", flags=b"C1 I") + b"mg k v c t\r\n"),
            ("ms base64", ms(b"Zm9v", b"hi", b"b k c") + b"mg foo k v\r\nmg Zm9v b k\r\n" + ms(b"a", flags=b"b") +
                          ms(b"YQ==", flags=b"k b O5 c q") + ms(b"YQ==", flags=b"k b O5 c") + ms(b"a!Q==", flags=b"b k")),
            ("ms overwrite binary key plain", ms(b"Zm9v", flags=b"b") + ms(b"foo") + b"mg foo k\r\nme foo\r\n"),
            ("ms stats", [ms(flags=b"C5") + ms() + ms(flags=b"C99") + ms(flags=b"C2") + ms(flags=b"ME") +
                          ms(b"b", flags=b"MA") + ms(flags=b"I C1") + b"ms k 3\r\nabcde\r\n" + ms(b"z", flags=b"Fx"),
                          b"stats\r\n", b"stats slabs\r\n"]),
        ]:
            self.diff(label, req, fresh=True)

    def test_ms_framing_errors(self):
        for label, req in [
            ("ms alone / no datalen", b"ms\r\nms k\r\n"),
            ("ms bad datalen (data read as command)", b"ms k abc\r\nxx\r\nms k -1\r\nxx\r\nms k 2147483646\r\nx\r\n"
                                                      b"ms k 2147483647\r\nx\r\nms k 0x1\r\nx\r\n"),
            ("ms datalen truncated to 32 bits", b"ms k 4294967297\r\nx\r\nmg k v\r\n"),
            ("ms datalen leading +/0", b"ms k +1\r\nx\r\nms k 01\r\nx\r\nmg k v\r\n"),
            ("ms key 250/251", ms(K250) + b"mg " + K250 + b" s\r\n" + ms(K251) + b"ms " + K251 + b" abc\r\nxx\r\n"),
            ("ms flag errors swallow data", ms(flags=b"!") + ms(flags=b"v v") + ms(flags=b"Tx") + ms(flags=b"Jx") +
                                            ms(flags=b"M") + ms(flags=O33[:]) + ms(flags=O33 + b" MZ") +
                                            ms(flags=b"b") + b"mg k\r\n"),
            ("ms options too long", b"ms k 1" + b" !" * 16 + b"\r\nx\r\nms k 1" + b" !" * 17 + b"\r\nx\r\n"
                                    b"ms k abc" + b" !" * 17 + b"\r\nx\r\n"),
            ("ms bad data chunk", b"ms k 3\r\nabcde\r\nms k 3 q\r\nabcde\r\nms k 1\r\nxy\r\nmg k v\r\n"),
            ("ms data split over writes", [[b"ms k 5\r\nhel", b"lo\r\nmg k v\r\n"]]),
            ("ms empty value", b"ms k 0\r\n\r\nmg k v s\r\n"),
            ("ms value with CRLF inside", ms(val=b"a\r\nb") + b"mg k v\r\n"),
            ("ms too large swallows", b"ms k 1100000 T0\r\n" + b"z" * 1100000 + b"\r\nmg k v\r\n"),
            ("ms too large drops old", ms() + b"ms k 1100000 q\r\n" + b"z" * 1100000 + b"\r\nmg k v\r\n"),
            ("ms chunked value", b"ms big 700000\r\n" + b"q" * 700000 + b"\r\nmg big s v k\r\nma big\r\n"
                                 b"ms big 5 MA\r\nabcde\r\nmg big s\r\n"),
            ("ms max size", b"ms k 1048516\r\n" + b"z" * 1048516 + b"\r\nmg k s\r\n"
                            b"ms k 1048517\r\n" + b"z" * 1048517 + b"\r\nmg k s\r\n"),
        ]:
            self.diff(label, req)


class MetaDeleteArithmetic(DiffCase):
    """md and ma: return codes, q, stale marking, CAS, modes, vivify."""

    def test_md(self):
        for label, req in [
            ("md hit/miss/q", ms() + b"md k q\r\nmd k q\r\nmd k\r\n" + ms() + b"md k\r\n"),
            ("md O/k echo", ms() + b"md k O5 k\r\nmd k O5 k\r\nmd k k q\r\nmd nope " + O33 + b"\r\n" + ms() +
                            b"md k " + O33 + b"\r\nmg k v\r\n"),
            ("md C", ms(flags=b"c") + b"md k C99\r\nmd k C99 q\r\nmd nope C1\r\nmg k v\r\n"),
            ("md I/T", ms(flags=b"T50") + b"md k I T30\r\nmg k t v\r\nmd k I\r\nmg k t\r\nmd k T5\r\nmg k t\r\n"
                       b"md k I T0 q\r\nmg k t\r\nmd k\r\nmg k\r\n"),
            ("md I on miss", b"md nope I T30\r\n"),
            ("md errors", b"md\r\nmd k W\r\nmd k Tabc\r\nmd k I T\r\nmd k v v\r\nmd k !\r\nmd k b\r\nmd k Cx\r\n"
                          b"md " + K251 + b"\r\nmd k" + b" !" * 17 + b"\r\nmd k" + b" !" * 18 + b"\r\n"),
            ("md accepts other flags", ms() + b"md k MZ F5 N30 J1 D1 v s t\r\nmg k\r\n"),
            ("md base64", ms(b"foo") + b"md Zm9v b k q\r\nmd Zm9v b k\r\nmd !!!! b\r\n"),
        ]:
            self.diff(label, req)
        self.diff("md I cas and win", ms() + b"md k I\r\nmg k c\r\nmd k I C99\r\nmg k c v\r\n", fresh=True)
        self.diff("md stats", [ms() + b"md k\r\nmd k\r\nmd b I\r\n" + ms() + b"md k I\r\nmd k C1\r\n", b"stats\r\n"],
                  fresh=True)

    def test_ma(self):
        for label, req in [
            ("ma incr/decr", ms(b"n", b"10") + b"ma n\r\nma n v\r\nma n MD v\r\nma n M- D5 v\r\nma n M+ D100 v\r\n"
                             b"ma n MI v\r\nma n MD D1000 v\r\nmg n v\r\n"),
            ("ma miss/vivify", b"ma n\r\nma n MD\r\nma n N0\r\nma n v\r\nma m N0 J5 v\r\nma m N0 J5 v\r\nma o N30 J7 t v\r\n"
                               b"ma p t N30 J7 v\r\nma r T30 t v N0\r\n"),
            ("ma wrap and shrink", ms(b"n", b"18446744073709551615") + b"ma n v\r\n" + ms(b"n", b"100") +
                                   b"ma n MD v\r\nmg n v\r\n"),
            ("ma q", b"ma n q\r\nma n N0 J5 q\r\nma n q\r\nma n v q\r\nma n v\r\nma n C1 q\r\n"),
            ("ma O/k", b"ma nope O1 k\r\nma nope C5 O1\r\nma n N0 O1 k v\r\nma n O1 k\r\nma nope " + O33 + b"\r\n"),
            ("ma too-long opaque after the change", ms(b"n", b"5") + b"ma n " + O33 + b"\r\nmg n v\r\nma n q " + O33 +
                                                    b"\r\nmg n v\r\n"),
            ("ma T/t", ms(b"n", b"1", b"T100") + b"ma n t T30 t\r\nmg n t\r\n"),
            ("ma non-numeric", ms(b"n", b"abc") + b"ma n\r\nma n q\r\nma n N0 J1\r\n" + ms(b"e", b"") + b"ma e\r\n"),
            ("ma modes", b"ma n MI\r\nma n Mi\r\nma n MD\r\nma n Md\r\nma n M+\r\nma n M-\r\nma n Mx\r\nma n Mii\r\n"
                         b"ma n M\r\n"),
            ("ma errors", b"ma\r\nma n Dabc\r\nma n D-1\r\nma n D18446744073709551616\r\nma n Jabc\r\nma n N0 J-1\r\n"
                          b"ma n Nabc\r\nma n Tabc\r\nma n Cabc\r\nma n v v\r\nma n !\r\nma n W\r\nma " + K251 + b"\r\n"
                          b"ma n" + b" !" * 17 + b"\r\nma n" + b" !" * 18 + b"\r\nma n b\r\n"),
            ("ma base64", b"ma bg== b N0 J3 k v\r\nma bg== b k\r\nmg n v\r\n"),
            ("ma J/D max", b"ma n N0 J18446744073709551615 v\r\nma n D18446744073709551615 v\r\n"),
        ]:
            self.diff(label, req)
        self.diff("ma c and E-less cas", b"ma n N0 J3 c\r\nma n c v\r\nmg n c\r\nma n C1 c\r\nma n C99\r\n", fresh=True)
        self.diff("ma stats", [b"ma a\r\nma a MD\r\nma a N0\r\nma a\r\nma a MD\r\nma a C1\r\nma a q v\r\n", b"stats\r\n"],
                  fresh=True)


class MetaNoCas(DiffCase):
    """Meta commands with -C: every CAS reads 0, so a C token never matches a stored item."""
    EXTRA = ["-C"]

    def test_meta_no_cas(self):
        self.diff("meta with -C", b"ms k 1 c\r\nx\r\nmg k c v\r\nms k 1 C0 c\r\ny\r\nms k 1 C1 c\r\ny\r\n"
                  b"mg k v c\r\nmd k C0\r\nmd k C1\r\nma n N0 c\r\nma n C0 c\r\nma n C1 c\r\nme n\r\n"
                  b"ms k 1 I C1\r\nz\r\nmd k I\r\nmg k c\r\n", fresh=True)
        self.diff("meta chunked with -C", b"ms big 700000\r\n" + b"q" * 700000 + b"\r\nmg big s c\r\nme big\r\n",
                  fresh=True)


class MetaDebugNoopMixes(DiffCase):
    """me, mn, and meta commands pipelined with the classic text protocol."""

    def test_me_mn(self):
        self.diff("me", [ms(b"a") + b"me a\r\nme nope\r\nme\r\nme " + K251 + b"\r\nme a v\r\n", b"stats\r\n"], fresh=True)
        self.diff("me base64", ms(b"foo", b"hi") + b"me Zm9v b\r\nme !!!! b\r\nme a2s= b\r\nme Zm9v x\r\nme Zm9v bb\r\n"
                  + ms(b"Zm9v", b"hi", b"b") + b"me Zm9v b\r\nme foo\r\n", fresh=True)
        self.diff("me after fetch and ttl", ms(b"a", flags=b"T100") + b"mg a v\r\nme a\r\n", fresh=True)
        self.diff("mn", [b"mn\r\n", b"mn extra tokens\r\n", b""])

    def test_mixes(self):
        for label, req in [
            ("set then mg", st(val=b"abc", flags=5) + b"mg k v f s\r\n"),
            ("ms then get/gets", ms(flags=b"F3") + b"get k\r\n"),
            ("ms then incr/append", ms(b"n", b"5") + b"incr n 3\r\nappend n 0 0 1\r\n1\r\nmg n v\r\n"),
            ("touch then mg t", ms() + b"touch k 100\r\nmg k t\r\n"),
            ("delete after md I", ms() + b"md k I\r\nget k\r\ndelete k\r\nmg k\r\n"),
            ("mixed q and classic noreply", [ms(flags=b"q") + b"set j 0 0 1 noreply\r\ny\r\nmg k q v\r\nmg nope q\r\n"
                                             b"get j\r\n", b"get j\r\n"]),
            ("get culls queued meta replies", ms(flags=b"q") + ms() + b"mg k\r\nget " + K251 + b"\r\n"),
            ("mn transmits before culling get", [ms(), b"get " + K251 + b"\r\n"]),
            ("meta after culling get", ms() + b"get " + K251 + b"\r\nmg k v\r\n"),
            ("unknown m commands", b"mx\r\nmgg k\r\nm\r\nMG k\r\nmg\r\n"),
            ("classic commands after meta errors", b"mg k !\r\nset k 0 0 1\r\nx\r\nmg k v\r\nms k 1 !\r\nx\r\nget k\r\n"),
            ("expired and flushed via mg", ms(flags=b"T-1") + b"mg k v\r\n" + ms() + b"flush_all\r\nmg k v\r\nme k\r\n"),
        ]:
            self.diff(label, req)
        self.diff("mixed stats", [st(b"a") + b"mg a v\r\nmg a T5\r\nmg nope\r\nmg a N30 v\r\nmg b N30 v\r\n"
                                  b"ms c 1\r\nx\r\nmd c\r\nma n N0\r\nma n\r\nmd a I\r\nget a\r\n", b"stats\r\n"], fresh=True)

    def test_pipelined_batch(self):
        steps = [b"".join(ms(b"p%d" % i, b"v%d" % i, b"q") for i in range(50)) +
                 b"".join(b"mg p%d v k q\r\n" % i for i in range(0, 60, 3)),
                 b"".join(b"md p%d q\r\n" % i for i in range(0, 60, 7)),
                 b"".join(b"ma c%d N0 J%d q\r\n" % (i, i) for i in range(10)) + b"mg c3 v\r\n"]
        self.diff("pipelined meta batch", steps)


def strip_value_spaces(reply):
    """Rebuild VALUE blocks with spaces removed from the data (length recomputed)."""
    out, i = [], 0
    while reply.startswith(b"VALUE ", i):
        nl = reply.index(b"\r\n", i)
        head = reply[i:nl].split(b" ")
        n = int(head[3])
        data = reply[nl + 2:nl + 2 + n].replace(b" ", b"")
        head[3] = b"%d" % len(data)
        out.append(b" ".join(head) + b"\r\n" + data + b"\r\n")
        i = nl + 2 + n + 2
    return b"".join(out) + reply[i:]


def mix_norm(reply):
    """memcached 1.6.18 shrinks an incr/decr result in place (space-padded) only when no other
    thread holds a reference to the item (refcount == 2), otherwise it stores a new unpadded
    item: padding is racy in the oracle itself and survives later appends. The random mix never
    generates spaces in values, so it compares VALUE data with spaces removed; the
    deterministic padding rule is checked by DeleteIncrTouch "decr shrink pads"."""
    out = auto_norm(strip_value_spaces(reply))
    if isinstance(out, tuple) and out[0] == "stats":  # the copy path also bumps total_items
        out = (out[0], [(n, "<v>" if n == "total_items" else v) for n, v in out[1]])
    return out


# ------------------------------------------------------------------------------------------------
# stats detail / cachedump and the -W / -X switches (moved from Tests/pending, issue 5).

class StatsDetailAndCachedump(DiffCase):
    def test_stats_detail_cachedump(self):
        for label, req in [
            ("stats detail on/dump/off", b"stats detail on\r\n" + st(b"p:a") + b"get p:a q:b\r\n"
                                         b"delete p:a\r\nstats detail dump\r\nstats detail off\r\n"
                                         b"stats detail dump\r\n"),
            ("stats cachedump no args", b"stats cachedump\r\n"),
            ("stats cachedump bad class", b"stats cachedump 99 0\r\n"),
            ("stats cachedump non-numeric", b"stats cachedump a b\r\n"),
        ]:
            self.diff(label, req, fresh=True)

    def test_stats_detail_more(self):
        prefixes = b"".join(st(b"%c%c:k" % (a, b)) for a in b"abcdefgh" for b in b"xyz")
        for label, req in [
            ("detail prefix order (hash buckets)", b"stats detail on\r\n" + prefixes +
                                                   b"get ax:k zz:k\r\ndelete hz:k\r\nstats detail dump\r\n"),
            ("detail which commands count", b"stats detail on\r\n" + st(b"a:b:c") + st(b"nokey") +
                                            b"get nokey\r\nincr a:b:c 1\r\ntouch a:b:c 10\r\ngets a:b:c\r\n"
                                            b"gat 10 a:b:c\r\ndelete x:y\r\nset big:1 0 0 2000000\r\n" +
                                            b"x" * 2000000 + b"\r\nset bad:1 0 0 z\r\nstats detail dump\r\n"),
            ("detail reset clears", b"stats detail on\r\n" + st(b"p:a") + b"stats reset\r\nstats detail dump\r\n"),
            ("detail off keeps counts", b"stats detail on\r\n" + st(b"p:a") + b"stats detail off\r\n" +
                                        st(b"p:b") + b"stats detail dump\r\n"),
            ("detail extra tokens", b"stats detail on extra\r\nstats detail dump x\r\nstats detail bogus\r\n"),
            ("detail empty dump", b"stats detail dump\r\n"),
            # 1.6.18 records prefixes for get/gets/gat/set-family/delete only: meta commands never count.
            ("detail ignores meta commands", b"stats detail on\r\nms m:a 1\r\nx\r\nms m:b 1 MA\r\ny\r\n"
                                             b"mg m:a v\r\nmg m:z v\r\nmg m:v N30\r\nmd m:a\r\nmd m:z\r\n"
                                             b"ma m:n N0 J1\r\nma m:n\r\nma m:z\r\nme m:n\r\nms bf6Y 1 b\r\n"
                                             b"x\r\nmg bf6Y b\r\n" + st(b"c:a") + b"get c:a m:n\r\n"
                                             b"stats detail dump\r\n"),
            # Not compared: a dump right after the sets ("cachedump limit", "exptime and sizes"). memcached
            # lists only its COLD LRU, and whether fresh items are there yet depends on its LRU maintainer
            # thread's timing (seen both ways in CI); Cachet leaves out items touched this second.
            ("cachedump class 0/63/64", b"stats cachedump 0 0\r\nstats cachedump 63 0\r\nstats cachedump 64 0\r\n"),
            ("cachedump negative", b"stats cachedump -1 0\r\nstats cachedump 1 -1\r\nstats cachedump 1\r\n"),
            ("cachedump empty class", b"stats cachedump 2 0\r\n"),
        ]:
            self.diff(label, req, fresh=True)
        # Items show up once 1.6.18's LRU maintainer moved them to COLD (within about a second).
        later = lambda r: (time.sleep(2.2), b"stats cachedump 1 0\r\nstats cachedump 1 2\r\n")[1]  # noqa: E731
        # (the oracle runs first: absolute expiry times differ by the sleep)
        self.diff("cachedump after 2 s", [st(b"a") + st(b"b", b"xyz", exp=1000, flags=3) + st(b"c"), later],
                  fresh=True, norm=lambda r: re.sub(rb"; [1-9]\d* s]", b"; T s]", r))


class PrefixDelimiter(DiffCase):
    """`-D <char>`: the prefix delimiter of `stats detail` (first byte of the argument); it also turns
    detail on from the start. `stats settings` shows it as stat_key_prefix and detail_enabled."""

    KEYS = (st(b"a:b") + st(b"a/b") + st(b"a/b/c") + st(b"/lead") + st(b"trail/") + st(b"x\xc3\xa9y") +
            b"get a/b a:b zz/q nodelim\r\ndelete a/b/c\r\ndelete q/r\r\n")

    @staticmethod
    def raw_settings(reply):
        # byte-exact, but for the port (and inter) the pair differs in and Cachet's own last line
        return re.sub(rb"STAT (tcpport|inter|ssl_ciphersuites|ssl_handshake_timeout|ssl_ticket_key_file|ssl_auto_reload|ssl_verify_name|ssl_alt_chain_cert|ssl_alt_key|ssl_handshake_share) [^\r]*\r\n", b"", reply)

    def test_delimiter(self):
        for extra in (["-D", "/"], ["-D", ":"], ["-D/"], ["-D", "/x"], ["-D", "-", "-D", "/"], ["-D", "\u00e9"]):
            self.diff(f"{' '.join(extra)}: detail on from the start", self.KEYS + b"stats detail dump\r\n",
                      fresh=True, extra=extra)
            self.diff(f"{' '.join(extra)}: stats settings", b"stats settings\r\n", fresh=True, extra=extra,
                      norm=self.raw_settings)
        self.diff("-D /: detail off/on, settings follow", [b"stats detail off\r\n" + self.KEYS +
                                                           b"stats detail dump\r\n", b"stats settings\r\n",
                                                           b"stats detail on\r\n" + self.KEYS + b"stats detail dump\r\n",
                                                           b"stats settings\r\n"],
                  fresh=True, extra=["-D", "/"], norm=self.raw_settings)

    def test_default_delimiter_settings_follow_detail(self):
        self.diff("no -D: detail_enabled follows stats detail on/off",
                  [b"stats settings\r\n", b"stats detail on\r\nstats settings\r\n",
                   b"stats detail off\r\nstats settings\r\n"], fresh=True, extra=[], norm=self.raw_settings)


class WatchDisabled(DiffCase):
    EXTRA = ["-W"]

    def test_watch_disabled(self):
        self.diff("-W watch", b"watch\r\nwatch fetchers\r\n")
        self.diff("-W watch bad type", b"watch bogus\r\n")


class DumpDisabled(DiffCase):
    EXTRA = ["-X"]

    def test_dump_disabled(self):
        self.diff("-X stats detail", b"stats detail on\r\nstats detail dump\r\n")
        self.diff("-X cachedump", b"stats cachedump 1 0\r\n")
        self.diff("-X cachedump no args", b"stats cachedump\r\n")
        self.diff("-X metadump bad class", b"lru_crawler metadump 99\r\n")
        self.diff("-X crawl still allowed", b"lru_crawler crawl 1\r\n", fresh=True)


if __name__ == "__main__":
    unittest.main()
