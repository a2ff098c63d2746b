"""Differential: the classic text commands — storage (set/add/replace/append/prepend/cas), retrieval
(get/gets/gat/gats), delete/incr/decr/touch and the other commands (flush_all, version, verbosity,
errors) — against memcached 1.6.18.

Each case sends the same requests to memcached 1.6.18 (the oracle) and to cachet on fresh connections and
compares the replies byte for byte (difftools.DiffCase); cases on the class's shared pair start with
`flush_all`, cases whose replies expose CAS uniques or counters get a fresh pair (`fresh=True`).
With CACHET_BIN=/usr/bin/memcached every case must pass (harness check).
"""

import time
import unittest

from difftools import DiffCase, print_summary, st


def tearDownModule():
    print_summary(__name__)


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


if __name__ == "__main__":
    unittest.main()
