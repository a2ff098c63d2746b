"""Cachet as one node among three, the way memcached fleets are run: behind Debian's nutcracker (twemproxy)
with ketama and auto-ejection, under pymemcache's HashClient over TLS, and under libmemcached's ketama
(pylibmc, libketama-compatible mode). Where each key must live is computed independently (ketama.py from the
algorithm; pymemcache's own rendezvous hasher for HashClient) and checked by asking every node directly.

Every scenario runs twice: on three Cachet nodes and on three memcached 1.6.18 nodes (the `…OnMemcached`
classes) — the same assertions passing on memcached is what shows the fleet behaviour is memcached's.
Nodes are killed with SIGKILL and hung with SIGSTOP by PID (only processes these tests started).
"""

import os
import sys
import threading
import time
import unittest

from fleet import Node, Nutcracker, holders, request, stop_all, tls_client_context
from harness import cachet_bin, memcached_bin
from ketama import Continuum, hash_md5, hash_twemproxy_fnv1a_64
from tlscerts import TestCerts

try:
    from pymemcache.client.hash import HashClient
    from pymemcache.client.rendezvous import RendezvousHash
    PYMEMCACHE_ERROR = None
except ImportError as e:  # a failure in the tests that need it, never a skip
    HashClient = RendezvousHash = None
    PYMEMCACHE_ERROR = e

try:
    import pylibmc
    PYLIBMC_ERROR = None
except ImportError as e:
    pylibmc = None
    PYLIBMC_ERROR = e

CERTS = None


def setUpModule():
    global CERTS
    CERTS = TestCerts.create()


def tearDownModule():
    if CERTS is not None:
        CERTS.cleanup()


def keys_by_node(place, nodes, per_node, prefix):
    """{node index: [keys]} with `per_node` keys for every node; `place(key)` says where a key goes."""
    out = {i: [] for i in range(nodes)}
    i = 0
    while any(len(v) < per_node for v in out.values()):
        key = f"{prefix}:{i}:obj"
        i += 1
        where = place(key)
        if len(out[where]) < per_node:
            out[where].append(key)
        if i > 100_000:
            raise AssertionError(f"placement never reaches every node: {[len(v) for v in out.values()]}")
    return out


def wait_until(predicate, timeout, what):
    """Polls (bounded); returns the seconds it took."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.02)
    return time.monotonic() - t0


class FleetCase(unittest.TestCase):
    NODES = 3

    @classmethod
    def binary(cls):
        return cachet_bin()

    def start_nodes(self, extra=(), tls_context=None):
        nodes = []
        self.addCleanup(stop_all, nodes)
        for i in range(self.NODES):
            nodes.append(Node(self.binary(), extra=extra, tls_context=tls_context, name=f"node{i}"))
            nodes[-1].start()
        return nodes


# ---- nutcracker (twemproxy) --------------------------------------------------------------------------

# Ejection settings: two failures eject a node (a SIGKILLed node also closes the proxy's open connection, which
# counts as one), and an ejected node is tried again after 1.5 s; requests time out after 800 ms (a healthy node
# must answer in well under half of that, even on a loaded machine).
TIMEOUT_MS = 800
RETRY_MS = 1500
FAILURE_LIMIT = 2
POOL = dict(distribution="ketama", auto_eject_hosts=True, timeout=TIMEOUT_MS,
            server_retry_timeout=RETRY_MS, server_failure_limit=FAILURE_LIMIT)
# `md5`: the key hash libmemcached's ketama uses, so proxy and client-side hashing agree on placement (what a
# fleet that mixes both needs); `fnv1a_64`: twemproxy's sample configuration, the most common deployment.
# `weighted`: the middle node twice the weight of the others (twice the points on the circle).
WEIGHTS = [1, 2, 1]
POOLS = {"md5": dict(hash="md5", **POOL), "fnv": dict(hash="fnv1a_64", **POOL),
         "weighted": dict(hash="md5", weights=WEIGHTS, **POOL)}
HASHES = {"md5": hash_md5, "fnv": hash_twemproxy_fnv1a_64, "weighted": hash_md5}


class NutcrackerFleet(FleetCase):
    def setUp(self):
        self.nodes = self.start_nodes()
        self.proxy = Nutcracker(self.nodes, POOLS)
        self.addCleanup(self.proxy.stop)   # also when start() fails half-way
        self.proxy.start()
        self.ring = Continuum([n.addr for n in self.nodes])
        self.weighted_ring = Continuum([(*n.addr, w) for n, w in zip(self.nodes, WEIGHTS)])

    def place(self, pool):
        ring = self.weighted_ring if pool == "weighted" else self.ring
        return lambda key: ring.server_for(key, HASHES[pool])

    def test_every_key_lands_on_the_node_ketama_names(self):
        for pool in POOLS:
            with self.subTest(pool=pool), self.proxy.connect(pool) as c:
                keys = keys_by_node(self.place(pool), self.NODES, 40, f"place-{pool}")
                for node, ks in keys.items():
                    for k in ks:
                        self.assertEqual(request(c, f"set {k} 0 0 {len(k)}", k.encode()), b"STORED\r\n")
                for node, ks in keys.items():
                    for k in ks:
                        self.assertEqual(holders(self.nodes, k), [node], f"{pool}: {k} should be on node{node} only")
                        self.assertEqual(self.nodes[node].value_of(k), k.encode())

    def test_get_multiget_delete_incr_through_the_proxy(self):
        keys = keys_by_node(self.place("md5"), self.NODES, 3, "ops")
        every = [k for ks in keys.values() for k in ks]
        with self.proxy.connect("md5") as c:
            for k in every:
                self.assertEqual(request(c, f"set {k} 5 0 {len(k)}", k.encode()), b"STORED\r\n")
            self.assertEqual(request(c, f"get {every[0]}"),
                             f"VALUE {every[0]} 5 {len(every[0])}\r\n{every[0]}\r\nEND\r\n".encode())
            # one multi-get over all three nodes: the proxy splits it and answers in the order asked
            expected = b"".join(f"VALUE {k} 5 {len(k)}\r\n{k}\r\n".encode() for k in every) + b"END\r\n"
            self.assertEqual(request(c, "get " + " ".join(every + ["ops:missing"])), expected)
            for node, ks in keys.items():
                self.assertEqual(request(c, f"delete {ks[0]}"), b"DELETED\r\n")
                self.assertIsNone(self.nodes[node].value_of(ks[0]), f"{ks[0]} still on node{node} after delete")
                self.assertEqual(request(c, f"delete {ks[0]}"), b"NOT_FOUND\r\n")
                counter = ks[1]
                self.assertEqual(request(c, f"set {counter} 0 0 2", b"40"), b"STORED\r\n")
                self.assertEqual(request(c, f"incr {counter} 2"), b"42\r\n")
                self.assertEqual(request(c, f"decr {counter} 50"), b"0\r\n")
                self.assertEqual(self.nodes[node].value_of(counter).strip(), b"0", f"counter on node{node}")

    def test_killed_node_fails_over_then_is_taken_back(self):
        keys = keys_by_node(self.place("md5"), self.NODES, 4, "fail")
        victim = 1
        others = [i for i in range(self.NODES) if i != victim]
        survivors = self.ring.without(victim)
        with self.proxy.connect("md5") as c:
            for ks in keys.values():
                for k in ks:
                    self.assertEqual(request(c, f"set {k} 0 0 2", b"v1"), b"STORED\r\n")

            def others_unaffected():
                for i in others:
                    for k in keys[i]:
                        self.assertEqual(request(c, f"get {k}"), f"VALUE {k} 0 2\r\nv1\r\nEND\r\n".encode(),
                                         f"a key of node{i} was disturbed by node{victim}'s failure")

            self.nodes[victim].kill()
            t_dead = time.monotonic()
            # its keys: errors until the proxy has seen server_failure_limit failures, then served elsewhere
            moved = keys[victim][0]
            errors = 0
            for _ in range(FAILURE_LIMIT + 3):
                r = request(c, f"get {moved}")
                if r.startswith(b"SERVER_ERROR"):
                    errors += 1
                    others_unaffected()
                    continue
                self.assertEqual(r, b"END\r\n", "after ejection the key is looked up on a survivor (a miss)")
                break
            else:
                self.fail(f"node{victim}'s keys still fail after {FAILURE_LIMIT + 3} requests")
            self.assertLessEqual(errors, FAILURE_LIMIT, "more errors than server_failure_limit before ejection")
            others_unaffected()
            for k in keys[victim]:
                self.assertEqual(request(c, f"set {k} 0 0 2", b"v2"), b"STORED\r\n")
                fallback = survivors.server_for(k)
                self.assertEqual(holders([self.nodes[i] for i in others], k), [fallback],
                                 f"{k} should have moved to node{others[fallback]} (ketama without node{victim})")
            others_unaffected()

            # back on the same port: the proxy tries it again once server_retry_timeout has passed
            self.nodes[victim].restart()
            probe = keys[victim][1]

            def back():
                self.assertEqual(request(c, f"set {probe} 0 0 2", b"v3"), b"STORED\r\n")
                return self.nodes[victim].holds(probe)

            wait_until(back, RETRY_MS / 1000 + 5, f"node{victim} taken back after its restart")
            self.assertGreaterEqual(time.monotonic() - t_dead, RETRY_MS / 1000 * 0.9,
                                    "taken back before server_retry_timeout")
            others_unaffected()
            for k in keys[victim]:
                self.assertEqual(request(c, f"set {k} 0 0 2", b"v4"), b"STORED\r\n")
                self.assertEqual(self.nodes[victim].value_of(k), b"v4")

    def test_hung_node_stalls_no_other_node_beyond_the_timeout(self):
        keys = keys_by_node(self.place("md5"), self.NODES, 2, "hang")
        hung = 2
        with self.proxy.connect("md5") as c, self.proxy.connect("md5") as other:
            for ks in keys.values():
                for k in ks:
                    self.assertEqual(request(c, f"set {k} 0 0 2", b"v1"), b"STORED\r\n")
            self.nodes[hung].suspend()
            self.addCleanup(self.nodes[hung].resume)
            result = {}
            started = threading.Event()

            def ask_hung():
                started.set()
                t0 = time.monotonic()
                result["reply"] = request(c, f"get {keys[hung][0]}")
                # the same client connection: a request behind it for a healthy node waits at most the timeout
                result["behind"] = request(c, f"get {keys[0][0]}")
                result["seconds"] = time.monotonic() - t0

            t = threading.Thread(target=ask_hung, daemon=True)
            t.start()
            started.wait(5)
            # meanwhile, another client: every healthy node answers at once
            deadline = time.monotonic() + TIMEOUT_MS / 1000
            served = 0
            while time.monotonic() < deadline and t.is_alive():
                for i in (0, 1):
                    t0 = time.monotonic()
                    self.assertEqual(request(other, f"get {keys[i][1]}"),
                                     f"VALUE {keys[i][1]} 0 2\r\nv1\r\nEND\r\n".encode())
                    self.assertLess(time.monotonic() - t0, TIMEOUT_MS / 1000 / 2,
                                    f"node{i} stalled while node{hung} hangs")
                    served += 1
            t.join(TIMEOUT_MS / 1000 + 5)
            self.assertFalse(t.is_alive(), "the request to the hung node never came back")
            self.assertGreater(served, 0)
            self.assertEqual(result["reply"], b"SERVER_ERROR Connection timed out\r\n")
            self.assertEqual(result["behind"], f"VALUE {keys[0][0]} 0 2\r\nv1\r\nEND\r\n".encode())
            self.assertLess(result["seconds"], TIMEOUT_MS / 1000 + 1.0,
                            "a healthy node's reply waited longer than the proxy's timeout")


class NutcrackerFleetOnMemcached(NutcrackerFleet):
    @classmethod
    def binary(cls):
        return memcached_bin()


# ---- pymemcache HashClient over TLS --------------------------------------------------------------------

DEAD_TIMEOUT = 1.0


class HashClientTLSFleet(FleetCase):
    def setUp(self):
        if HashClient is None:
            self.fail(f"pymemcache not importable with {sys.executable}: {PYMEMCACHE_ERROR} "
                      "(apt-get install python3-pymemcache; use /usr/bin/python3)")
        self.ctx = tls_client_context(CERTS.ca_crt)
        ssl_opts = f"ssl_chain_cert={CERTS.server1_crt},ssl_key={CERTS.server1_key}"
        self.nodes = self.start_nodes(extra=["-Z", "-o", ssl_opts], tls_context=self.ctx)

    def client(self, **kw):
        c = HashClient([n.addr for n in self.nodes], tls_context=self.ctx, connect_timeout=2, timeout=2,
                       default_noreply=False, **kw)
        self.addCleanup(c.close)
        return c

    def hasher(self, without=None):
        """pymemcache's own hasher over the same node names the client uses ("host:port")."""
        h = RendezvousHash()
        for i, n in enumerate(self.nodes):
            if i != without:
                h.add_node("%s:%s" % n.addr)
        names = ["%s:%s" % n.addr for n in self.nodes]
        return lambda key: names.index(h.get_node(key))

    def test_keys_land_where_the_client_hashes_them(self):
        c = self.client()
        keys = keys_by_node(self.hasher(), self.NODES, 30, "hc")
        every = [k for ks in keys.values() for k in ks]
        for k in every:
            self.assertTrue(c.set(k, k.encode()))
        for node, ks in keys.items():
            for k in ks:
                self.assertEqual(holders(self.nodes, k), [node], f"{k} should be on node{node} only (over TLS)")
        self.assertEqual(c.get_many(every + ["hc:missing"]), {k: k.encode() for k in every})
        for node, ks in keys.items():
            self.assertTrue(c.delete(ks[0]))
            self.assertIsNone(self.nodes[node].value_of(ks[0]))
            self.assertTrue(c.set(ks[1], b"10"))
            self.assertEqual(c.incr(ks[1], 5), 15)
            self.assertEqual(self.nodes[node].value_of(ks[1]).strip(), b"15")

    def test_dead_node_is_skipped_then_taken_back(self):
        # retry_attempts=0: the first connection error marks the node dead for dead_timeout; ignore_exc: the
        # application sees misses, never exceptions, while that happens
        c = self.client(ignore_exc=True, retry_attempts=0, dead_timeout=DEAD_TIMEOUT)
        keys = keys_by_node(self.hasher(), self.NODES, 4, "hcdead")
        for ks in keys.values():
            for k in ks:
                self.assertTrue(c.set(k, b"v1"))
        victim = 0
        others = [i for i in range(self.NODES) if i != victim]
        self.nodes[victim].kill()
        moved = keys[victim][0]
        # the client notices on its next request to that node (a closed TLS connection, then a refused connect)
        for _ in range(4):
            self.assertIsNone(c.get(moved), "a dead node's key cannot be a hit")
            if self.nodes[victim].addr not in c._dead_clients:  # pymemcache keeps no public view of this
                continue
            break
        else:
            self.fail(f"node{victim} never marked dead after 4 requests")
        after = self.hasher(without=victim)
        for k in keys[victim]:
            self.assertTrue(c.set(k, b"v2"), f"set of {k} after node{victim} died")
            self.assertEqual(holders(self.nodes[1:], k), [others.index(after(k))],
                             f"{k} should have moved to node{after(k)}")
        for i in others:
            for k in keys[i]:
                self.assertEqual(c.get(k), b"v1", f"a key of node{i} was disturbed by node{victim}'s death")
        self.nodes[victim].restart()
        probe = keys[victim][1]
        wait_until(lambda: c.set(probe, b"v3") and self.nodes[victim].holds(probe),
                   DEAD_TIMEOUT * 2 + 5, f"node{victim} taken back after dead_timeout")
        for i in others:
            for k in keys[i]:
                self.assertEqual(c.get(k), b"v1")


class HashClientTLSFleetOnMemcached(HashClientTLSFleet):
    @classmethod
    def binary(cls):
        return memcached_bin()


# ---- libmemcached ketama (pylibmc) ---------------------------------------------------------------------

class LibmemcachedKetamaFleet(FleetCase):
    def setUp(self):
        if pylibmc is None:
            self.fail(f"pylibmc not importable with {sys.executable}: {PYLIBMC_ERROR} "
                      "(apt-get install python3-pylibmc; use /usr/bin/python3)")
        self.nodes = self.start_nodes()
        self.ring = Continuum([n.addr for n in self.nodes])

    def test_keys_land_where_libketama_puts_them(self):
        # ketama_weighted: libmemcached's libketama-compatible mode (md5 keys, 160 points per server), the one
        # PHP's OPT_LIBKETAMA_COMPATIBLE and twemproxy's `hash: md5` + `distribution: ketama` agree with
        mc = pylibmc.Client(["%s:%d" % n.addr for n in self.nodes], behaviors={"ketama_weighted": True})
        self.addCleanup(mc.disconnect_all)
        keys = keys_by_node(self.ring.server_for, self.NODES, 40, "lm")
        every = [k for ks in keys.values() for k in ks]
        for k in every:
            self.assertTrue(mc.set(k, k.encode()))
        for node, ks in keys.items():
            for k in ks:
                self.assertEqual(holders(self.nodes, k), [node], f"{k} should be on node{node} only")
        self.assertEqual(mc.get_multi(every + ["lm:missing"]), {k: k.encode() for k in every})
        for node, ks in keys.items():
            self.assertTrue(mc.delete(ks[0]))
            self.assertIsNone(self.nodes[node].value_of(ks[0]))
            self.assertTrue(mc.set(ks[1], b"7"))
            self.assertEqual(mc.incr(ks[1], 3), 10)
            self.assertEqual(self.nodes[node].value_of(ks[1]).strip(), b"10")


    def test_dead_node_fails_fast_then_is_taken_back(self):
        # remove_failed (libmemcached's auto-eject): after a connection failure the node is disabled until
        # retry_timeout; libmemcached 1.1 does not move its keys elsewhere meanwhile — requests for them fail at
        # once with ServerDown (never wait on the dead node), and the other nodes' keys are served as before.
        retry = 1
        mc = pylibmc.Client(["%s:%d" % n.addr for n in self.nodes],
                            behaviors={"ketama_weighted": True, "remove_failed": 1, "retry_timeout": retry,
                                       "connect_timeout": 1000, "_poll_timeout": 1000})
        self.addCleanup(mc.disconnect_all)
        keys = keys_by_node(self.ring.server_for, self.NODES, 3, "lmdead")
        for ks in keys.values():
            for k in ks:
                self.assertTrue(mc.set(k, b"v1"))
        victim = 1
        others = [i for i in range(self.NODES) if i != victim]
        self.nodes[victim].kill()
        for _ in range(4):
            t0 = time.monotonic()
            with self.assertRaises(pylibmc.Error):
                mc.get(keys[victim][0])
            self.assertLess(time.monotonic() - t0, 1.5, "a request for a dead node's key waited")
            for i in others:
                for k in keys[i]:
                    self.assertEqual(mc.get(k), b"v1", f"a key of node{i} was disturbed by node{victim}'s death")
        self.nodes[victim].restart()
        probe = keys[victim][1]

        def back():
            try:
                mc.set(probe, b"v2")
            except pylibmc.Error:
                return False
            return self.nodes[victim].holds(probe)

        wait_until(back, retry + 5, f"node{victim} taken back after retry_timeout")
        self.assertEqual(mc.get(probe), b"v2")
        for i in others:
            for k in keys[i]:
                self.assertEqual(mc.get(k), b"v1")


class LibmemcachedKetamaFleetOnMemcached(LibmemcachedKetamaFleet):
    @classmethod
    def binary(cls):
        return memcached_bin()


if __name__ == "__main__":
    unittest.main()
