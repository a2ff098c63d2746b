"""Differential: the meta commands (mg ms md ma mn me) with every flag 1.6.18 has, alone and mixed
with text commands in pipelines, against memcached 1.6.18. Flags only later memcached implements are
Cachet's superset: test_meta_superset.py.

Each case sends the same requests to memcached 1.6.18 (the oracle) and to cachet on fresh connections and
compares the replies byte for byte (difftools.DiffCase); cases on the class's shared pair start with
`flush_all`, cases whose replies expose CAS uniques or counters get a fresh pair (`fresh=True`).
With CACHET_BIN=/usr/bin/memcached every case must pass (harness check).
"""

import unittest

from difftools import DiffCase, print_summary, st, ms, items_norm, O32, O33, K250, K251
from harness import parse_stats


def tearDownModule():
    print_summary(__name__)


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


class TailReclaimUnderKeyLock(DiffCase):
    """An allocation made while the command holds its key's item lock (mg/ma vivify, an incr that needs a
    longer item, append) first reclaims expired items from its slab class's LRU tail, but memcached only
    *tries* each tail item's lock, and that fails for items under the lock the command holds: items whose
    hash shares the key's low 12 bits (4096 item locks at -t 4) stay, others go. Each key pair below is
    chosen by its murmur3 hashes: "same stripe" pairs share those 12 bits (and differ in the top 8, Cachet's
    hash-segment index); "other stripe" pairs share the top 8 bits and not the low 12. Cachet once followed
    its own segments instead, and left curr_items/reclaimed one apart from memcached (fuzz-diff seed 11).
    Flat LRU (no maintainer): every allocation looks at the tail. The oracle's own reclaim count is checked
    too, so the pairs are known to exercise the case."""

    EXTRA = ["-o", "no_lru_maintainer"]

    # (label, expired key, command key, the command (set up before it as needed), class of both items,
    #  whether memcached reclaims the expired item)
    CASES = [
        ("mg vivify, other stripe", b"expired568", b"vivify0", b"mg vivify0 N30 v\r\n", 1, True),
        ("mg vivify, same stripe", b"expired915", b"vivify1", b"mg vivify1 N30 v\r\n", 1, False),
        ("ma vivify, other stripe", b"expired568", b"vivify0", b"ma vivify0 N0 J7 v\r\n", 1, True),
        ("ma vivify, same stripe", b"expired915", b"vivify1", b"ma vivify1 N0 J7 v\r\n", 1, False),
        # 26 bytes (class 1) + 5 (class 1 on its own) = 31 bytes: the joined item is in class 2
        ("append, other stripe", b"expired293", b"append0", b"append append0 0 0 5\r\n12345\r\n", 2, True),
        ("append, same stripe", b"expired66", b"append0", b"append append0 0 0 5\r\n12345\r\n", 2, False),
        # a 35-byte key: "99" fits class 1, "100" needs class 2
        ("incr, other stripe", b"expired551", b"counter_" + b"0" * 27, b"incr counter_" + b"0" * 27 + b" 1\r\n",
         2, True),
        ("incr, same stripe", b"expired4775", b"counter_" + b"0" * 26 + b"1", b"incr counter_" + b"0" * 26 + b"1 1\r\n",
         2, False),
    ]

    def test_expired_tail_item_and_the_held_lock(self):
        for label, expired, key, command, cls, reclaimed in self.CASES:
            setup = b""
            if command.startswith(b"append"):
                setup = st(key, b"a" * 26)
            elif command.startswith(b"incr"):
                setup = st(key, b"99")
            # the expired item is linked last, so the command's own set-up cannot reclaim it first
            expired_item = st(expired, b"x" * (30 if cls == 2 else 1), exp=-1)
            oracle = self.diff(label, [setup + expired_item, command, b"stats items\r\n"], norm=items_norm,
                               fresh=True)
            if oracle is None:
                continue   # the replies differed: already a failure of this case; go on with the others
            items = dict(parse_stats(oracle[2]))
            self.assertEqual(items.get(f"items:{cls}:reclaimed"), "1" if reclaimed else "0",
                             f"[{label}] memcached itself did not behave as the key pair was chosen for")


if __name__ == "__main__":
    unittest.main()
