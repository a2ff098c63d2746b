"""Differential cases for features tracked in issue 5 (stats detail/cachedump, watch; meta moved to
test_differential.py once implemented).

These are the acceptance tests for work not done yet: they are NOT part of `make test` (which must
pass) and nothing here is counted as passing. Run them with `make pending`.
"""
import unittest

from difftools import DiffCase, COUNTS, print_summary
from test_differential import st, slabs_norm_any


class StatsDetailAndCachedump(DiffCase):
    def test_stats_detail_cachedump(self):
        for label, req in [
            ("stats detail on/dump/off", b"stats detail on\r\n" + st(b"p:a") + b"get p:a q:b\r\n"
                                         b"delete p:a\r\nstats detail dump\r\nstats detail off\r\n"
                                         b"stats detail dump\r\n"),
            ("stats cachedump no args", b"stats cachedump\r\n"),
            ("stats cachedump", st() + b"stats cachedump 1 0\r\n"),
            ("stats cachedump bad class", b"stats cachedump 99 0\r\n"),
            ("stats cachedump non-numeric", b"stats cachedump a b\r\n"),
        ]:
            self.diff(label, req, fresh=True)


class WatchDisabled(DiffCase):
    EXTRA = ["-W"]

    def test_watch_disabled(self):
        self.diff("-W watch", b"watch\r\nwatch fetchers\r\n")




class DumpDisabled(DiffCase):
    EXTRA = ["-X"]

    def test_dump_disabled(self):
        self.diff("-X stats detail", b"stats detail on\r\nstats detail dump\r\n")
        self.diff("-X cachedump", b"stats cachedump 1 0\r\n")
