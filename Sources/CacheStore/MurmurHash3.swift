// Owns the key hash: MurmurHash3_x86_32 with seed 0, memcached's default `hash_algorithm`.

enum MurmurHash3 {
    @inline(__always) private static func rotl(_ x: UInt32, _ r: UInt32) -> UInt32 { (x << r) | (x >> (32 - r)) }

    static func hash(_ key: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        let c1: UInt32 = 0xcc9e_2d51, c2: UInt32 = 0x1b87_3593
        let n = key.count
        var h = seed
        guard let p = key.baseAddress else { return fmix(h) }
        let blocks = n / 4
        for i in 0..<blocks {
            var k = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
            k = k &* c1; k = rotl(k, 15); k = k &* c2
            h ^= k; h = rotl(h, 13); h = h &* 5 &+ 0xe654_6b64
        }
        let tail = blocks &* 4
        var k1: UInt32 = 0
        switch n & 3 {
        case 3:
            k1 ^= UInt32(p.load(fromByteOffset: tail + 2, as: UInt8.self)) << 16
            fallthrough
        case 2:
            k1 ^= UInt32(p.load(fromByteOffset: tail + 1, as: UInt8.self)) << 8
            fallthrough
        case 1:
            k1 ^= UInt32(p.load(fromByteOffset: tail, as: UInt8.self))
            k1 = k1 &* c1; k1 = rotl(k1, 15); k1 = k1 &* c2; h ^= k1
        default: break
        }
        h ^= UInt32(truncatingIfNeeded: n)
        return fmix(h)
    }

    @inline(__always) private static func fmix(_ x: UInt32) -> UInt32 {
        var h = x
        h ^= h >> 16; h = h &* 0x85eb_ca6b
        h ^= h >> 13; h = h &* 0xc2b2_ae35
        h ^= h >> 16
        return h
    }
}
