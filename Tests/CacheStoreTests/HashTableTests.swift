// Hash table growth: segments double on their own while keys keep being found; memory per item vs memcached.
import Testing
import CacheStore

@Suite struct HashTableTests {
    @Test func initialSizeMatchesMemcached() {
        let s = Harness().stats()
        #expect(s.hashPowerLevel == 16)
        #expect(s.hashBytes == 524_288)
        let small = Harness { $0.hashPowerInitial = 12 }.stats()
        #expect(small.hashPowerLevel == 12)
        #expect(small.hashBytes == 4096 * 8)
    }

    /// 1M items of 10-byte keys and 100-byte values: all retrievable, the table grew, and memory per item is
    /// memcached's (class 4, 192-byte chunks: 184 pages of 1 MB; memcached 1.6.18 measured with the same load:
    /// total_malloced 192937984, hash_power_level 20).
    @Test func millionKeysGrowTheTable() {
        let h = Harness { $0.memoryLimit = 1 << 30 }
        let store = h.store
        let n = 1_000_000
        var key = [UInt8](repeating: 48, count: 10)
        var value = [UInt8](repeating: 0, count: 100)
        func fill(_ i: Int) {
            var x = i
            for j in stride(from: 9, through: 1, by: -1) { key[j] = UInt8(48 + x % 10); x /= 10 }
            key[0] = 107
            value[0] = UInt8(truncatingIfNeeded: i); value[99] = UInt8(truncatingIfNeeded: i >> 8)
        }
        var failures = 0
        for i in 0..<n {
            fill(i)
            let r = key.withUnsafeBytes { k in
                value.withUnsafeBytes { v in
                    store.store(.set, key: k, hash: store.hash(k), flags: UInt32(i), exptime: 0, value: v, casUnique: 0)
                }
            }
            if r != (.stored, 4) { failures += 1 }
        }
        #expect(failures == 0)
        var misses = 0
        for i in 0..<n {
            fill(i)
            var ok = false
            _ = key.withUnsafeBytes { k in
                store.get(k, hash: store.hash(k), touchExptime: nil) { v in
                    var first: UInt8 = 0, last: UInt8 = 0
                    v.forEachSegment { seg in first = seg[0]; last = seg[99] }
                    ok = v.flags == UInt32(i) && first == value[0] && last == value[99] && v.valueLength == 100
                }
            }
            if !ok { misses += 1 }
        }
        #expect(misses == 0)
        let s = store.statsSnapshot()
        #expect(s.currItems == n)
        #expect(s.totalItems == n)
        #expect(s.bytes == n * 173 - 4)   // 169 + 4 for non-zero flags (all but key 0)
        #expect(s.hashPowerLevel == 20)
        #expect(s.hashBytes == (1 << 20) * 8)
        #expect(s.classes.map(\.id) == [4])
        #expect(s.totalMalloced == 184 << 20)   // ceil(1M / 5461) pages, as memcached
        print("bytes per item: \(Double(s.totalMalloced) / Double(n)) (class \(s.classes[0].id), chunk \(s.classes[0].chunkSize))")
    }

    @Test func deleteKeepsChainsIntact() {
        let h = Harness { $0.hashPowerInitial = 8 }   // 1 bucket per segment: long chains
        for i in 0..<3000 { h.set("key\(i)", "v\(i)") }
        for i in stride(from: 0, to: 3000, by: 3) { #expect(h.delete("key\(i)") != .notFound) }
        var found = 0
        for i in 0..<3000 where h.value("key\(i)") == "v\(i)" { found += 1 }
        #expect(found == 2000)
        #expect(h.delete("key0") == .notFound)
        #expect(h.stats().currItems == 2000)
        #expect(h.stats().hashPowerLevel > 8)
    }
}
