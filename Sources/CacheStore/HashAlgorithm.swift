// `-o hash_algorithm=murmur3|jenkins|xxh3`: the key hash behind the hash table and the item locks, as
// memcached's hash.c chooses it. murmur3 is the default; jenkins is what `-o no_modern` selects (Bob Jenkins'
// lookup3 hashlittle with seed 0); xxh3 is XXH3-64 truncated to 32 bits, from Debian's libxxhash. Only the
// distribution over buckets and lock stripes depends on it: replies are the same whichever is chosen.
import CXXHash

public enum HashAlgorithm: String, Sendable, CaseIterable {
    case murmur3, jenkins, xxh3

    @inline(__always)
    public func hash(_ key: UnsafeRawBufferPointer) -> UInt32 {
        switch self {
        case .murmur3: return MurmurHash3.hash(key)
        case .jenkins: return JenkinsLookup3.hash(key)
        case .xxh3: return UInt32(truncatingIfNeeded: XXH3_64bits(key.baseAddress, key.count))
        }
    }
}

/// lookup3.c's hashlittle(key, length, 0), read byte by byte (the same value its word-at-a-time paths give on
/// a little-endian machine).
enum JenkinsLookup3 {
    @inline(__always) private static func rot(_ x: UInt32, _ k: UInt32) -> UInt32 { (x << k) | (x >> (32 - k)) }

    @inline(__always) private static func word(_ p: UnsafeRawBufferPointer, _ at: Int, _ n: Int) -> UInt32 {
        var w: UInt32 = 0
        for i in 0..<n { w |= UInt32(p[at + i]) << UInt32(8 * i) }
        return w
    }

    static func hash(_ key: UnsafeRawBufferPointer) -> UInt32 {
        var a = 0xdeadbeef &+ UInt32(truncatingIfNeeded: key.count)
        var b = a, c = a
        var at = 0, left = key.count
        while left > 12 {
            a &+= word(key, at, 4); b &+= word(key, at + 4, 4); c &+= word(key, at + 8, 4)
            // mix
            a &-= c; a ^= rot(c, 4); c &+= b
            b &-= a; b ^= rot(a, 6); a &+= c
            c &-= b; c ^= rot(b, 8); b &+= a
            a &-= c; a ^= rot(c, 16); c &+= b
            b &-= a; b ^= rot(a, 19); a &+= c
            c &-= b; c ^= rot(b, 4); b &+= a
            at += 12; left -= 12
        }
        if left == 0 { return c }   // hashlittle returns before the final mix for an empty tail
        a &+= word(key, at, min(left, 4))
        if left > 4 { b &+= word(key, at + 4, min(left - 4, 4)) }
        if left > 8 { c &+= word(key, at + 8, left - 8) }
        // final
        c ^= b; c &-= rot(b, 14)
        a ^= c; a &-= rot(c, 11)
        b ^= a; b &-= rot(a, 25)
        c ^= b; c &-= rot(b, 16)
        a ^= c; a &-= rot(c, 4)
        b ^= a; b &-= rot(a, 14)
        c ^= b; c &-= rot(b, 24)
        return c
    }
}
