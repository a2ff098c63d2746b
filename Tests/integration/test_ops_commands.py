"""Differential cases for the operational commands: `lru_crawler` (crawl, tocrawl, metadump), `watch`,
`stats conns`, `slabs`/`lru` command replies, against memcached 1.6.18. Their replies need their own
normalisation:

- metadump lines carry absolute times (`exp=`, `la=`) → `T`; their order depends on memcached's
  HOT/WARM/COLD juggling (racy in the oracle itself) → lines sorted;
- watch lines carry `ts=`, `gid=` (gids are shared with other watchers/connections and racy),
  `rport=`, `cfd=` → placeholders; 1.6.18's too_large/no_memory lines print the fd as clsid and
  stack garbage as cfd → both placeholders;
- `stats conns` fds, ports and seconds → ordinal/placeholder.
"""

import re
import socket
import time

from harness import normalise_version
from difftools import DiffCase, COUNTS, MISMATCHES, Pair, short, CRLF, st

def norm_dump(reply):
    reply = re.sub(rb"(exp|la)=(?!-1 )\d+", rb"\1=T", reply)
    if reply.endswith(b"END\r\n") and b"\n" in reply[:-5]:
        # memcached's crawler walks HOT, WARM and COLD one after another while its LRU maintainer may move an
        # item from HOT's tail to COLD's head in between: that item is dumped twice (seen in CI). The set of
        # lines is what both servers must agree on.
        lines = set(reply[:-5].split(b"\n"))
        return b"\n".join(sorted(l for l in lines if l)) + b"\n<sorted>END\r\n"
    return reply


def norm_log(reply):
    reply = re.sub(rb"ts=\d+\.\d+ gid=\d+", b"ts=T gid=G", reply)
    reply = re.sub(rb"rport=\d+", b"rport=P", reply)
    reply = re.sub(rb"(status=(?:too_large|no_memory) [^\n]*)clsid=-?\d+ cfd=-?\d+ size=0\n",
                   rb"\1clsid=C cfd=F size=0\n", reply)
    reply = re.sub(rb"cfd=\d+", b"cfd=F", reply)
    return reply


def norm_conns(reply):
    fds = {}

    def fd(m):
        return b"STAT %d:" % fds.setdefault(m.group(1), len(fds))
    reply = re.sub(rb"STAT (\d+):", fd, reply)
    reply = re.sub(rb"tcp:127\.0\.0\.1:\d+", b"tcp:127.0.0.1:P", reply)
    return re.sub(rb"secs_since_last_cmd \d+", b"secs_since_last_cmd S", reply)


def read_until_any(sock, ends, timeout=5.0):
    """Reads until one of `ends` has arrived and the data ends a line (or EOF/timeout: returns what arrived)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while not (any(e in data for e in ends) and data.endswith(b"\n")) and time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


class OpsDiff(DiffCase):
    """Each case runs `scenario(server)` on a fresh pair and compares the (normalised) results."""

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def compare(self, label, scenario, extra=None):
        COUNTS["cases"] += 1
        COUNTS["steps"] += 1
        with self.subTest(label):
            pair = Pair(self.EXTRA if extra is None else extra).start()
            if self.AWAIT_STARTUP_CRAWL:
                pair.await_startup_crawls()
            try:
                a = scenario(pair.oracle)
                b = scenario(pair.cachet)
            finally:
                pair.stop_later()
            if a != b:
                MISMATCHES.append((self.id(), label, 0, b"<scenario>", a, b))
                self.fail(f"[{label}] differs\n  memcached: {short(a, 1500)}\n  cachet:    {short(b, 1500)}")


class LRUCrawlerCommands(DiffCase):
    AWAIT_STARTUP_CRAWL = True

    def test_arguments(self):
        for label, req in [
            ("lru_crawler alone", b"lru_crawler\r\n"),
            ("metadump no arg", b"lru_crawler metadump\r\n"),
            ("metadump class 99", b"lru_crawler metadump 99\r\n"),
            ("metadump class 0", b"lru_crawler metadump 0\r\n"),
            ("metadump class 64", b"lru_crawler metadump 64\r\n"),
            ("metadump non-numeric", b"lru_crawler metadump abc\r\n"),
            ("metadump bad in list", b"lru_crawler metadump 1,x\r\n"),
            ("metadump extra token", b"lru_crawler metadump all extra\r\n"),
            ("metadump noreply", b"lru_crawler metadump all noreply\r\n"),
            ("metadump after pipelined reply", b"version\r\nlru_crawler metadump all\r\n"),
            ("crawl no arg", b"lru_crawler crawl\r\n"),
            ("crawl class 99", b"lru_crawler crawl 99\r\n"),
            ("crawl class 0", b"lru_crawler crawl 0\r\n"),
            ("crawl non-numeric", b"lru_crawler crawl abc\r\n"),
            ("crawl hash", b"lru_crawler crawl hash\r\n"),
            ("crawl extra token", b"lru_crawler crawl all x\r\n"),
            ("tocrawl", b"lru_crawler tocrawl 10\r\n"),
            ("tocrawl bad", b"lru_crawler tocrawl x\r\n"),
            ("tocrawl negative", b"lru_crawler tocrawl -1\r\n"),
            ("tocrawl no arg", b"lru_crawler tocrawl\r\n"),
            ("sleep", b"lru_crawler sleep 100\r\n"),
            ("sleep bad", b"lru_crawler sleep x\r\n"),
            ("sleep too long", b"lru_crawler sleep 2000000\r\n"),
            ("enable when running", b"lru_crawler enable\r\n"),
            ("enable extra", b"lru_crawler enable x\r\n"),
            ("unknown subcommand", b"lru_crawler bogus\r\n"),
            ("mgdump (later versions)", b"lru_crawler mgdump all\r\n"),
            ("five tokens", b"lru_crawler a b c d e\r\n"),
        ]:
            self.diff(label, req)

    def test_enable_disable(self):
        # 1.6.18 stops its crawler thread asynchronously: give it a moment before the next step.
        pause = lambda req: lambda r: (time.sleep(0.3), req)[1]  # noqa: E731
        self.diff("disable twice, then disabled replies, enable",
                  [b"lru_crawler disable\r\n", pause(b"lru_crawler disable\r\n"),
                   pause(b"lru_crawler metadump all\r\n"), b"lru_crawler crawl all\r\n",
                   b"lru_crawler enable\r\n"], fresh=True)
        self.diff("sleep/tocrawl/disable shown by stats settings",
                  [b"lru_crawler sleep 0\r\nlru_crawler tocrawl 7\r\nlru_crawler disable\r\n",
                   pause(b"stats settings\r\n")], fresh=True)
        self.diff("crawl single classes", b"lru_crawler crawl 1\r\n", fresh=True)
        self.diff("crawl class list with empty item", b"lru_crawler crawl 1,\r\n", fresh=True)


class CrawlerToCrawl(OpsDiff):
    """`lru_crawler tocrawl N` / `-o lru_crawler_tocrawl=N`: a crawl looks at no more than N items per
    class (tail first) and reclaims only the expired ones among them; metadump ignores the cap. Run with
    `-o no_lru_maintainer`, where 1.6.18 keeps one LRU per class and nothing but the crawler reclaims
    (no maintainer thread, no allocation after the items expire), so its crawler counters are exact."""

    EXTRA = ["-o", "no_lru_maintainer"]
    SETUP = (b"".join(st(b"k%d" % i, exp=1) for i in range(30)) + b"get k3 k11\r\n" +
             b"".join(st(b"big%d" % i, b"y" * 300, exp=1) for i in range(12)) +
             b"".join(st(b"live%d" % i) for i in range(5)) + b"".join(st(b"biglive%d" % i, b"y" * 300) for i in range(3)))
    COUNTERS = (b"curr_items", b"reclaimed", b"expired_unfetched", b"crawler_reclaimed", b"crawler_items_checked",
                b"lru_crawler_starts", b"lru_crawler_running")

    @classmethod
    def counters(cls, c):
        general = [l for l in c.roundtrip(b"stats\r\n").split(b"\r\n") if l.split(b" ")[1:2] and l.split(b" ")[1] in cls.COUNTERS]
        items = re.sub(rb"(items:\d+:age) \d+", rb"\1 A", c.roundtrip(b"stats items\r\n"))
        return general, items

    @staticmethod
    def wait_idle(c):
        deadline = time.monotonic() + 10
        while b"STAT lru_crawler_running 1" in c.roundtrip(b"stats\r\n") and time.monotonic() < deadline:
            time.sleep(0.05)

    def crawl(self, c, command):
        r = c.roundtrip(command)
        self.wait_idle(c)
        return [r, self.counters(c)]

    def test_tocrawl_caps_items_checked_per_class(self):
        def scenario(server):
            with server.connect() as c:
                out = [c.roundtrip(self.SETUP)]
                time.sleep(2.5)   # everything with exptime 1 has expired (1.6.18 reclaims when exptime < now)
                out += self.crawl(c, b"lru_crawler tocrawl 10\r\nlru_crawler crawl all\r\n")
                out += self.crawl(c, b"lru_crawler tocrawl 1\r\nlru_crawler crawl 1\r\n")
                out += self.crawl(c, b"lru_crawler tocrawl 4\r\nlru_crawler crawl 1,2,3,4,5,6,7,8\r\n")
                out.append(c.roundtrip(b"lru_crawler tocrawl 2\r\n"))
                c.send(b"lru_crawler metadump all\r\n")   # not capped, but counted as checked
                out.append(norm_dump(read_until_any(c.sock, [b"END\r\n"])))
                self.wait_idle(c)
                out.append(self.counters(c))
                out += self.crawl(c, b"lru_crawler tocrawl 0\r\nlru_crawler crawl all\r\n")
                out.append(c.roundtrip(b"stats settings\r\n").count(b"lru_crawler_tocrawl 0\r\n"))
                return out
        self.compare("tocrawl 10/1/4/metadump/0 (no_lru_maintainer)", scenario)

    def test_tocrawl_option_and_flushed_items(self):
        def scenario(server):
            with server.connect() as c:
                out = [c.roundtrip(self.SETUP + b"flush_all\r\n")]
                time.sleep(1.2)   # flush_all marks items older than this second; let the clock tick
                out += self.crawl(c, b"lru_crawler crawl all\r\n")
                out.append([l for l in c.roundtrip(b"stats settings\r\n").split(b"\r\n") if b"lru_crawler_" in l])
                return out
        self.compare("-o lru_crawler_tocrawl=7: flushed items reclaimed, not counted unfetched", scenario,
                     self.EXTRA + ["-o", "lru_crawler_tocrawl=7,lru_crawler_sleep=50"])


SETUP = (st(b"foo") + st(b"b%20ar", b"abc", flags=5, exp=100) + st(b"k\xff\x01") +
         st(b"big", b"x" * 5000, exp=1000) + st(b"gone", b"x", exp=-1) + b"get foo gone\r\n")


class Metadump(OpsDiff):
    AWAIT_STARTUP_CRAWL = True

    def dump(self, label, setup, command, extra=None):
        def scenario(server):
            with server.connect() as c:
                first = c.roundtrip(setup) if setup else b""
                c.send(command)
                return [first, norm_dump(read_until_any(c.sock, [b"END\r\n", b"ERROR\r\n"]))]
        self.compare(label, scenario, extra)

    def test_metadump(self):
        for label, cmd in [
            ("metadump all", b"lru_crawler metadump all\r\n"),
            ("metadump class 1", b"lru_crawler metadump 1\r\n"),
            ("metadump class list", b"lru_crawler metadump 1,2,13,40\r\n"),
            ("metadump ,1 (empty list items)", b"lru_crawler metadump ,1\r\n"),
            ("metadump hash", b"lru_crawler metadump hash\r\n"),
            ("metadump empty class", b"lru_crawler metadump 5\r\n"),
            ("metadump class 63", b"lru_crawler metadump 63\r\n"),
        ]:
            self.dump(label, SETUP, cmd)
        self.dump("metadump empty cache", None, b"lru_crawler metadump all\r\n")
        self.dump("metadump after flush_all", SETUP + b"flush_all\r\n", b"lru_crawler metadump all\r\n")
        self.dump("metadump no CAS", SETUP, b"lru_crawler metadump all\r\n", extra=["-C"])

    def test_metadump_disabled(self):
        self.dump("-X metadump", SETUP, b"lru_crawler metadump all\r\n", extra=["-X"])


class Watch(OpsDiff):
    TRAFFIC = (b"set foo 0 0 1\r\nx\r\nget foo\r\nget nope\r\ndelete foo\r\ndelete foo\r\nincr x 1\r\n"
               b"touch foo 1\r\ngets foo\r\ngat 10 foo\r\n" + st(b"b%20ar", b"abc", flags=5, exp=100) +
               b"add b%20ar 0 0 1\r\nx\r\nappend b%20ar 0 0 1\r\ny\r\nprepend nope 0 0 1\r\ny\r\n"
               b"replace nope 0 0 1\r\nz\r\ncas b%20ar 0 0 1 1\r\nz\r\ncas nope 0 0 1 1\r\nz\r\n"
               b"set big 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\n" + b"set n 0 0 1\r\n1\r\nincr n 5\r\n"
               b"decr n 1\r\nget n\r\n" + st(b"e", exp=-1) + b"get e\r\n")

    def watch(self, label, types, traffic, end_marker, with_replies=False, extra=None):
        def scenario(server):
            with server.connect() as w:
                w.send(b"watch" + types + CRLF)
                ok = read_until_any(w.sock, [b"OK\r\n"])
                with server.connect() as c:
                    replies = c.roundtrip(traffic)
                    c.send(b"quit\r\n")
                lines = read_until_any(w.sock, [end_marker], timeout=3)
                if with_replies:
                    # TTLs of already-expired items are 1 - current_time (uint32): seconds of uptime.
                    return [ok, replies, re.sub(rb"ttl=42949\d{5}", b"ttl=PAST", norm_log(lines))]
                return [ok, norm_log(lines)]
        self.compare(label, scenario, extra)

    def test_watch_streams(self):
        self.watch("watch all four", b" fetchers mutations evictions connevents", self.TRAFFIC,
                   b"reason=normal")
        self.watch("watch default (fetchers)", b"", self.TRAFFIC + b"get zz_end\r\n", b"key=zz_end status=not_found clsid=0 cfd=")
        self.watch("watch mutations", b" mutations", self.TRAFFIC + b"set zz_end 0 0 1\r\n1\r\n",
                   b"key=zz_end status=stored cmd=set ttl=0 clsid=1 cfd=")

    # Meta commands log what 1.6.18's item layer logs for them: every lookup (mg, md, ma, me, and ms's
    # store) an item_get line, every do_store_item an item_store line (ms with its mode's name, ma's
    # vivify as an add); mg's vivify, md's delete and ma's incr/decr log nothing more. Flag errors that
    # stop a command before its lookup log nothing; an over-long opaque found after it still logs.
    META_TRAFFIC = (
        # ms: modes, stored/not_stored/exists/not_found, append TTL and size, stale cas, base64 keys
        b"ms a 1\r\nx\r\nms a 1 T100 F5\r\ny\r\nms a 1 MA\r\nz\r\nms a 1 ME\r\nz\r\nms nope 1 MR\r\nz\r\n"
        b"ms nope 1 MA\r\nz\r\nms a 1 C999\r\nz\r\nms nope 1 C999\r\nz\r\nms a 1 MX\r\nz\r\n"
        b"ms a 1\r\nxyz\r\nms big 2000000\r\n" + b"x" * 2000000 + b"\r\nms big 2000000 MA\r\n" +
        b"x" * 2000000 + b"\r\nms Zm9v 2 b\r\nab\r\nms /w8B 2 b\r\nab\r\nms s 1\r\nx\r\nms s 1\r\nx\r\n"
        b"ms s 1 C1 I\r\nz\r\nms s 1 T-1\r\nx\r\nmg s\r\nms s 1 T100 MS\r\nx\r\nms s 1 MP\r\np\r\n"
        b"ms s 1 q\r\nx\r\nms s 1 k O99 c\r\nx\r\nms ch 700000\r\n" + b"y" * 700000 + b"\r\nms ch 1 MA\r\nq\r\n"
        # mg: hit/miss, q, T, h/l, vivify, opaque too long (logged), bad flag and long key (not logged)
        b"set a 0 0 1\r\n5\r\nmg a\r\nmg a v s f t c k O123\r\nmg nope v\r\nmg nope q\r\nmg a T30 t\r\n"
        b"mg a h l\r\nmg viv N30 t\r\nmg viv v\r\nmg a O123456789012345678901234567890123456789\r\n"
        b"mg a zz\r\nmg " + b"k" * 251 + b" v\r\nset exp 0 -1 1\r\nx\r\nmg exp v\r\nmg /w8B b v k\r\n"
        # me
        b"me a\r\nme nope\r\nme Zm9v b\r\nme /w8B b\r\n"
        # md: miss, cas mismatch, stale, q, opaque too long (before the lookup), bad flag
        b"md nope\r\nmd a C999\r\nmd a I T30\r\nmd a q\r\nmd a\r\n"
        b"md exp2 O123456789012345678901234567890123456789\r\nmd a zz\r\nmd /w8B b q\r\n"
        # ma: miss, vivify (a second lookup + an add), incr/decr, cas mismatch, non-numeric, bad mode,
        # opaque too long (after the lookup), expired then vivified, binary key
        b"ma n\r\nma n N0 J7\r\nma n\r\nma n MD D2 v\r\nma n C999\r\nset txt 0 0 3\r\nabc\r\nma txt\r\n"
        b"ma n MX\r\nma n O123456789012345678901234567890123456789\r\nset exp3 0 -1 1\r\n1\r\nma exp3\r\n"
        b"ma exp3 N0 J3\r\nma /w8B b N0 J12345\r\nset nine 0 0 1\r\n9\r\nma nine v\r\n"
        # flushed items
        b"flush_all\r\nmg nine v\r\nmd nine\r\nma nine\r\n")

    def test_watch_meta(self):
        # -o no_lru_maintainer: 1.6.18's maintainer thread would otherwise reclaim expired and flushed
        # items in the background, racing the lookups that log them as expired/flushed (seen in a
        # memcached-vs-memcached run). Without it nothing reclaims behind the commands' backs here.
        quiet = ["-o", "no_lru_maintainer"]
        self.watch("watch meta fetchers+mutations", b" fetchers mutations", self.META_TRAFFIC + b"get zz_end\r\n",
                   b"key=zz_end status=not_found", with_replies=True, extra=quiet)
        self.watch("watch meta fetchers", b" fetchers", self.META_TRAFFIC + b"get zz_end\r\n",
                   b"key=zz_end status=not_found", with_replies=True, extra=quiet)
        self.watch("watch meta mutations", b" mutations", self.META_TRAFFIC + b"ms zz_end 1\r\n1\r\n",
                   b"key=zz_end status=stored cmd=set", with_replies=True, extra=quiet)

    def test_watch_meta_no_memory(self):
        # -M with a full cache: allocation fails, logged as item_store no_memory, then (set, ms of any
        # mode) the lookup that unlinks the old value; add/append log no lookup.
        fill = b"".join(b"set k%d 0 0 100000\r\n" % i + b"y" * 100000 + CRLF for i in range(30))
        v = b"y" * 100000 + CRLF
        traffic = (fill + b"ms k0 100000\r\n" + v + b"ms k1 100000 MA\r\n" + v + b"ms k2 100000 ME\r\n" + v +
                   b"set k3 0 0 100000\r\n" + v + b"add k4 0 0 100000\r\n" + v + b"append k5 0 0 100000\r\n" + v +
                   b"get zz_end\r\n")
        self.watch("watch no_memory (-M -m 2)", b" fetchers mutations", traffic, b"key=zz_end status=not_found",
                   with_replies=True, extra=["-M", "-m", "2"])

    def test_watch_replies(self):
        for label, req in [
            ("watch bad type", b"watch bogus\r\n"),
            ("watch good then bad type", b"watch fetchers bogus\r\n"),
            ("watch uppercase type", b"watch FETCHERS\r\n"),
            ("watch after pipelined reply", b"version\r\nwatch\r\n"),
        ]:
            self.compare(label, lambda s, r=req: self._once(s, r))

    @staticmethod
    def _once(server, req):
        with server.connect() as c:
            c.send(req)
            return normalise_version(read_until_any(c.sock, [b"ERROR\r\n", b"OK\r\n", b"watch\r\n"], timeout=1))


class StatsConns(OpsDiff):
    def test_stats_conns(self):
        def scenario(server):
            socks = []
            try:
                idle = server.raw_connect(); idle.sendall(b"version\r\n"); read_until_any(idle, [b"\r\n"])
                fresh = server.raw_connect()
                watcher = server.raw_connect(); watcher.sendall(b"watch\r\n"); read_until_any(watcher, [b"OK\r\n"])
                nread = server.raw_connect(); nread.sendall(b"set k 0 0 10\r\nab")
                partial = server.raw_connect(); partial.sendall(b"get k")
                socks += [idle, fresh, watcher, nread, partial]
                time.sleep(0.3)
                with server.connect() as c:
                    return [norm_conns(c.roundtrip(b"stats conns\r\n")),
                            norm_conns(c.roundtrip(b"stats conns extra\r\n"))]
            finally:
                for s in socks:
                    s.close()
        self.compare("stats conns (states, addresses)", scenario)


class SlabsAndLRUCommands(DiffCase):
    """`slabs automove|reassign` and `lru tune|mode|temp_ttl`: every reply 1.6.18 gives without moving a
    page (moves themselves: test_ops_slab_mover), and what `stats settings` shows afterwards."""

    SETTINGS = b"stats settings\r\n"

    def test_slabs_automove(self):
        for label, req in [
            ("slabs alone", b"slabs\r\n"), ("slabs bogus", b"slabs bogus\r\n"),
            ("automove no arg", b"slabs automove\r\n"), ("automove 0", b"slabs automove 0\r\n"),
            ("automove 2", b"slabs automove 2\r\n"), ("automove 3", b"slabs automove 3\r\n"),
            ("automove -1", b"slabs automove -1\r\n"), ("automove abc (strtoul: 0)", b"slabs automove abc\r\n"),
            ("automove 1x", b"slabs automove 1x\r\n"), ("automove 2^32 wraps to 0", b"slabs automove 4294967296\r\n"),
            ("automove noreply", b"slabs automove 1 noreply\r\n"), ("automove bad noreply", b"slabs automove 7 noreply\r\n"),
            ("ratio without value", b"slabs automove ratio\r\n"), ("ratio 0.5", b"slabs automove ratio 0.5\r\n"),
            ("ratio junk", b"slabs automove ratio x\r\n"), ("ratio 1e3", b"slabs automove ratio 1e3\r\n"),
        ]:
            self.diff(label, [req, b"mn\r\n"])
        self.diff("automove level and ratio in stats settings",
                  [b"slabs automove 2\r\n", b"slabs automove ratio 0.333\r\n", self.SETTINGS,
                   b"slabs automove 0\r\n", b"slabs automove ratio 1.5\r\n", self.SETTINGS], fresh=True)

    def test_slabs_reassign(self):
        for label, req in [
            ("reassign same", b"slabs reassign 1 1\r\n"), ("reassign empty class", b"slabs reassign 1 2\r\n"),
            ("reassign from global pool", b"slabs reassign 0 5\r\n"), ("reassign to global pool", b"slabs reassign 5 0\r\n"),
            ("reassign any (none spare)", b"slabs reassign -1 3\r\n"), ("reassign -2", b"slabs reassign -2 3\r\n"),
            ("reassign src 39", b"slabs reassign 39 1\r\n"), ("reassign src 40", b"slabs reassign 40 1\r\n"),
            ("reassign dst 40", b"slabs reassign 1 40\r\n"), ("reassign dst 63", b"slabs reassign 1 63\r\n"),
            ("reassign junk", b"slabs reassign x 1\r\n"), ("reassign junk dst", b"slabs reassign 1 2x\r\n"),
            ("reassign one arg", b"slabs reassign 1\r\n"), ("reassign three args", b"slabs reassign 1 2 3\r\n"),
            ("reassign noreply is not special", b"slabs reassign 1 noreply\r\n"),
        ]:
            self.diff(label, [req, b"mn\r\n"])
        # one page in class 1: still no spare page to give
        self.diff("reassign from a class with one page",
                  [b"set a 0 0 1\r\nx\r\n", b"slabs reassign 1 2\r\n"], fresh=True)
        self.diff("reassign disabled", [b"slabs reassign 1 1\r\n", b"slabs reassign x y\r\n"],
                  fresh=True, extra=["-o", "no_slab_reassign"])

    def test_lru(self):
        for label, req in [
            ("lru alone", b"lru\r\n"), ("lru bogus", b"lru bogus\r\n"),
            ("tune", b"lru tune 10 30 0.1 2\r\n"), ("tune too few", b"lru tune 10 30 0.1\r\n"),
            ("tune pcts over 80", b"lru tune 50 31 0.1 2\r\n"), ("tune pcts exactly 80", b"lru tune 50 30 0.1 2\r\n"),
            ("tune pct wraps", b"lru tune 4294967295 2 1 1\r\n"), ("tune zero factor", b"lru tune 10 10 0 2\r\n"),
            ("tune negative factor", b"lru tune 10 10 1 -2\r\n"), ("tune junk pct", b"lru tune x 10 1 2\r\n"),
            ("tune junk factor", b"lru tune 10 10 1 2x\r\n"), ("tune noreply", b"lru tune 10 30 0.1 2 noreply\r\n"),
            ("tune bad noreply", b"lru tune 90 30 0.1 2 noreply\r\n"),
            ("mode flat", b"lru mode flat\r\n"), ("mode bogus", b"lru mode bogus\r\n"), ("mode alone", b"lru mode\r\n"),
            ("temp_ttl -1", b"lru temp_ttl -1\r\n"), ("temp_ttl junk", b"lru temp_ttl x\r\n"),
            ("temp_ttl alone", b"lru temp_ttl\r\n"),
        ]:
            self.diff(label, [req, b"mn\r\n"])
        self.diff("tune and mode flat in stats settings",
                  [self.SETTINGS, b"lru tune 5 15 0.125 3.5\r\n", b"lru mode flat\r\n", self.SETTINGS], fresh=True)
        self.diff("mode and temp_ttl without the maintainer",
                  [b"lru mode flat\r\n", b"lru temp_ttl -1\r\n", b"lru tune 1 2 3 4\r\n", self.SETTINGS],
                  fresh=True, extra=["-o", "no_lru_maintainer"])
