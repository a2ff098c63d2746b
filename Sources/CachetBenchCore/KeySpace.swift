// Which key a request touches: a fast deterministic RNG and the random/sequential/gaussian/zipf patterns.
// In --verify mode keys are partitioned over connections (key % totalConns == connection index) so
// each key has exactly one writer and one ordered stream of requests: "the last SET" is well defined.

import Glibc

/// xoshiro256** — small, fast, good enough for load generation; seeded by splitmix64.
public struct BenchRNG: Sendable {
    var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var x = seed
        func split(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = split(&x); s1 = split(&x); s2 = split(&x); s3 = split(&x)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in 0..<n (n > 0); Lemire's multiply-shift, bias negligible for load generation.
    @inline(__always)
    public mutating func below(_ n: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// Uniform in [0, 1).
    @inline(__always)
    public mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}

/// Zipf's law over `n` ranks: rank r (0-based) is drawn with weight 1/(r+1)^s. The cumulative weights are
/// computed once per run and shared read-only by every connection; a draw is a binary search.
public final class ZipfTable: Sendable {
    let cdf: [Double]

    public init(n: Int, exponent s: Double) {
        var c = [Double](repeating: 0, count: n)
        var sum = 0.0
        for r in 0..<n {
            sum += 1.0 / Glibc.pow(Double(r + 1), s)
            c[r] = sum
        }
        for r in 0..<n { c[r] /= sum }
        cdf = c
    }

    /// A rank in 0..<n.
    @inline(__always)
    public func draw(_ rng: inout BenchRNG) -> Int {
        let u = rng.unit()
        var lo = 0, hi = cdf.count - 1
        while lo < hi {
            let mid = (lo + hi) >> 1
            if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// Picks key numbers for one connection.
public struct KeyChooser: Sendable {
    let keys: Int
    let pattern: KeyPattern
    let stride: Int      // 1, or totalConns when the key space is partitioned (verify)
    let offset: Int      // this connection's partition
    var cursor: Int
    let zipf: ZipfTable?

    public init(keys: Int, pattern: KeyPattern, partitionStride: Int = 1, partition: Int = 0, zipf: ZipfTable? = nil) {
        self.keys = keys
        self.pattern = pattern
        self.stride = partitionStride
        self.offset = partition
        self.cursor = 0
        precondition(pattern != .zipf || (zipf?.cdf.count == keys && partitionStride == 1),
                     "the zipf pattern needs a table over all keys and an unpartitioned key space")
        self.zipf = zipf
    }

    /// Number of keys this chooser can produce.
    public var ownedKeys: Int { stride == 1 ? keys : (keys - offset + stride - 1) / stride }

    @inline(__always)
    public mutating func nextKey(_ rng: inout BenchRNG) -> Int {
        let n = ownedKeys
        let slot: Int
        switch pattern {
        case .random:
            slot = rng.below(n)
        case .sequential:
            slot = cursor
            cursor += 1
            if cursor == n { cursor = 0 }
        case .gaussian:
            // memtier: centred in the key space, standard deviation = range / 6.
            var u1 = rng.unit()
            if u1 < 1e-300 { u1 = 1e-300 }
            let u2 = rng.unit()
            let z = (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
            let v = Int((Double(n) / 2 + z * Double(n) / 6).rounded(.down))
            slot = v < 0 ? 0 : (v >= n ? n - 1 : v)
        case .zipf:
            slot = zipf!.draw(&rng)
        }
        return slot * stride + offset
    }
}

@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }

/// Writes "<prefix><number>" (number zero-padded to `width`) into `out`; returns the byte count.
@inline(__always)
public func formatKey(prefix: [UInt8], width: Int, number: Int, into out: UnsafeMutableRawPointer) -> Int {
    var n = 0
    for b in prefix { out.storeBytes(of: b, toByteOffset: n, as: UInt8.self); n += 1 }
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes of scratch for up to 20 digits
    return withUnsafeMutableBytes(of: &digits) { d in
        var v = UInt64(number)
        var k = 0
        repeat { d[k] = UInt8(48 + v % 10); v /= 10; k += 1 } while v > 0
        var pad = width - k
        while pad > 0 { out.storeBytes(of: UInt8(48), toByteOffset: n, as: UInt8.self); n += 1; pad -= 1 }
        while k > 0 { k -= 1; out.storeBytes(of: d[k], toByteOffset: n, as: UInt8.self); n += 1 }
        return n
    }
}

/// Parses the key number back out of a key (prefix must match); nil if it is not one of ours.
public func parseKeyNumber(prefix: [UInt8], key: UnsafeRawBufferPointer) -> Int? {
    guard key.count > prefix.count, key.count - prefix.count <= 19 else { return nil }
    for i in 0..<prefix.count where key[i] != prefix[i] { return nil }
    var v = 0
    for i in prefix.count..<key.count {
        let c = key[i]
        guard c >= 48, c <= 57 else { return nil }
        v = v * 10 + Int(c - 48)
    }
    return v
}
