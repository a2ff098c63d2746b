"""Differential cases for features tracked in issue 5 (meta protocol; stats detail/cachedump/watch moved
to Tests/integration/test_differential.py once they passed).

These are the acceptance tests for work not done yet: they are NOT part of `make test` (which must
pass) and nothing here is counted as passing. Run them with `make pending`.
"""
import unittest

from difftools import DiffCase, COUNTS, print_summary
from test_differential import st


class MetaBasics(DiffCase):
    """A few meta commands (spec B.10, 1.6.18 behaviour); `mn` is the harness's end marker."""

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
            ("md variants", b"ms d1 1\r\nx\r\nmd d1 q\r\nmd d1\r\nmd d1 q\r\nms d2 1\r\nx\r\nmd d2 x\r\nmg d2 v\r\n"),
            ("ms cas", b"ms c1 1 c\r\nx\r\nms c1 1 C1\r\ny\r\nms c1 1 C2 c\r\nz\r\nmg c1 v c\r\n"),
        ]:
            self.diff(label, req, fresh=True)
