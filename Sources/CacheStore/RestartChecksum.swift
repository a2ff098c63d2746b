// Owns the checksum of the warm-restart files (docs/RESTART.md): a 64-bit hash over 8-byte words in four
// independent lanes (xxHash64's round and final mix), fast enough to cover every used slab page at stop
// and at start. Not cryptographic: it catches torn writes, truncation and flipped bits, not an attacker
// (the memory file is the server user's own, mode 0700, and locked while in use).

enum RestartChecksum {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63

    @inline(__always) private static func round(_ acc: UInt64, _ w: UInt64) -> UInt64 {
        let a = acc &+ w &* p2
        return ((a << 31) | (a >> 33)) &* p1
    }

    /// The hash of `count` bytes at `p` (any alignment).
    static func hash(_ p: UnsafeRawPointer, count: Int, seed: UInt64 = 0) -> UInt64 {
        var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
        var i = 0
        while i + 32 <= count {
            v1 = round(v1, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            v2 = round(v2, p.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            v3 = round(v3, p.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
            v4 = round(v4, p.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
            i += 32
        }
        var h = ((v1 << 1) | (v1 >> 63)) &+ ((v2 << 7) | (v2 >> 57))
            &+ ((v3 << 12) | (v3 >> 52)) &+ ((v4 << 18) | (v4 >> 46))
        for v in [v1, v2, v3, v4] { h = (h ^ round(0, v)) &* p1 &+ p4 }
        h = h &+ UInt64(count)
        while i + 8 <= count {
            h ^= round(0, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            h = ((h << 27) | (h >> 37)) &* p1 &+ p4
            i += 8
        }
        while i < count {
            h ^= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) &* p1
            h = ((h << 11) | (h >> 53)) &* p2
            i += 1
        }
        h ^= h >> 33; h = h &* p2; h ^= h >> 29; h = h &* p3; h ^= h >> 32
        return h
    }

    static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { hash($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, count: $0.count) }
    }
}
