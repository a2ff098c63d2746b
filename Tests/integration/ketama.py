"""Ketama consistent hashing as memcached fleets use it, written from the algorithm so the fleet tests can
say where a key must live without asking the client or proxy that put it there.

The continuum is the one libmemcached builds in its libketama-compatible mode (weighted ketama, what
pylibmc's `ketama_weighted` and PHP's OPT_LIBKETAMA_COMPATIBLE select) and the one twemproxy builds for
`distribution: ketama`:
- each live server gets floor(weight/total * 40 * live + tiny) * 4 points (160 for equal weights);
- the points of a server are the four little-endian 32-bit words of md5("<name>-<i>") for i = 0, 1, …,
  where <name> is "host:port", or just "host" when the port is 11211 (both clients drop the default port);
- a key goes to the first point whose value is >= hash(key), wrapping to the first point of the circle.

Key hashes: md5 (first little-endian word of the digest: libmemcached's ketama, twemproxy's `hash: md5`) and
twemproxy's `fnv1a_64`, which is FNV-1a computed in 32 bits with both 64-bit constants truncated (so it is not
libmemcached's fnv1a_64: a proxy and a client only agree on placement with md5).

Only stdlib.
"""

import bisect
import hashlib
import math
import struct

POINTS_PER_SERVER = 160
POINTS_PER_HASH = 4
DEFAULT_PORT = 11211


def ketama_name(host, port):
    return host if port == DEFAULT_PORT else f"{host}:{port}"


def md5_words(data):
    """The four little-endian 32-bit words of md5(data)."""
    return struct.unpack("<4I", hashlib.md5(data).digest())


def hash_md5(key):
    return md5_words(key if isinstance(key, bytes) else key.encode())[0]


def hash_twemproxy_fnv1a_64(key):
    key = key if isinstance(key, bytes) else key.encode()
    h = 0xcbf29ce484222325 & 0xffffffff
    prime = 0x100000001b3 & 0xffffffff
    for b in key:
        h ^= b
        h = (h * prime) & 0xffffffff
    return h


def _f32(x):
    """Round to an IEEE single, as the C code computes its point counts in float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def points_for(weight, total_weight, live):
    pct = _f32(weight / total_weight)
    return int(math.floor(_f32(_f32(_f32(pct * POINTS_PER_SERVER) / 4) * live + 1e-10))) * POINTS_PER_HASH


class Continuum:
    """servers: [(host, port)] or [(host, port, weight)], in the order the client or proxy was given them;
    `server_for` returns the index into that list."""

    def __init__(self, servers):
        self.servers = [tuple(s[:2]) for s in servers]
        weights = [s[2] if len(s) > 2 else 1 for s in servers]
        total = sum(weights)
        points = []
        for index, ((host, port), weight) in enumerate(zip(self.servers, weights)):
            name = ketama_name(host, port)
            for i in range(points_for(weight, total, len(self.servers)) // POINTS_PER_HASH):
                for value in md5_words(f"{name}-{i}".encode()):
                    points.append((value, index))
        points.sort()  # equal values: lower server index first, as both implementations sort
        self.values = [v for v, _ in points]
        self.owners = [i for _, i in points]

    def server_for_hash(self, h):
        i = bisect.bisect_left(self.values, h)
        return self.owners[0 if i == len(self.values) else i]

    def server_for(self, key, hash_fn=hash_md5):
        return self.server_for_hash(hash_fn(key))

    def without(self, index):
        """The continuum after server `index` was ejected (a new circle over the others)."""
        rest = [s for i, s in enumerate(self.servers) if i != index]
        return Continuum(rest)
