// Items larger than slab_chunk_max: byte-exact round trips, memory accounting, freeing and eviction.
import Testing
import CacheStore

@Suite struct ChunkedItemTests {
    @Test func roundTrips() {
        let h = Harness()
        // A 1-byte key, flags 2 and 1 MB - 64 of value: ntotal is exactly -I.
        for (i, (key, size)) in [("k0", 524_289), ("k1", 900 * 1024), ("k", 1_048_512), ("k3", 600_000)].enumerated() {
            let v = patternBytes(size, seed: UInt32(i + 1))
            #expect(h.set(key, v, flags: UInt32(i)) == .stored)
            let f = h.get(key)
            let same = f?.value == v
            #expect(same, "size \(size)")
            #expect(f?.flags == UInt32(i) && f!.segments >= 2)
            #expect(f?.totalSize == 48 + 8 + key.utf8.count + 1 + (i != 0 ? 4 : 0) + size + 2)
        }
        #expect(h.get("k")?.classId == 39)
    }

    /// used_chunks per class (classes with a page), as `stats slabs` shows them.
    func used(_ h: Harness) -> [Int: Int] {
        var d: [Int: Int] = [:]
        for c in h.stats().classes where c.usedChunks > 0 { d[c.id] = c.usedChunks }
        return d
    }

    @Test func accountingAndFree() {
        let h = Harness()
        h.set("big", patternBytes(800 * 1024))
        var s = h.stats()
        #expect(s.currItems == 1 && s.bytes == 48 + 8 + 3 + 1 + 800 * 1024 + 2)
        // header (48 + 8 + 3 + 1 + 48 = 108) in class 2, 524240 value bytes in class 39, the other 294962 + 48
        // in class 37 (315872-byte chunks); the item itself is counted in class 39
        #expect(s.classes.map(\.id) == [2, 37, 39])
        #expect(s.classes.map(\.usedChunks) == [1, 1, 1])
        #expect(s.classes.map(\.number) == [0, 0, 1])
        #expect(s.totalMalloced == 3 << 20)
        #expect(h.delete("big") == .deleted(classId: 39))
        s = h.stats()
        #expect(s.classes.map(\.usedChunks) == [0, 0, 0])
        #expect(s.currItems == 0 && s.bytes == 0)
    }

    /// memcached 1.6.18, `stats slabs` after c600k / c1m / c520k (values of 600000, 1048000, 524288 bytes).
    @Test func layoutMatchesMemcached() {
        let h = Harness()
        h.set("c600k", patternBytes(600_000, seed: 1))
        h.set("c1m", patternBytes(1_048_000, seed: 2))
        h.set("c520k", patternBytes(524_288, seed: 3))
        #expect(used(h) == [2: 4, 31: 1, 39: 4])
        #expect(h.stats().totalMalloced == 4 << 20)
        #expect(h.stats().classes.first { $0.id == 39 }?.number == 3)
        #expect(h.delete("c600k") == .deleted(classId: 39))
        #expect(h.delete("c1m") == .deleted(classId: 39))
        #expect(used(h) == [2: 2, 39: 1])
        let same = h.get("c520k")?.value == patternBytes(524_288, seed: 3)
        #expect(same)
    }

    /// The value's "\r\n" is counted when sizing chunks: 1..3 bytes over a largest chunk go to class 1;
    /// exactly two chunks' worth (2 × 524240 = nbytes) takes no tail.
    @Test func crlfCountsInChunks() {
        for (size, expected) in [(524_238, [2: 1, 39: 1]), (524_239, [1: 1, 2: 1, 39: 1]), (524_241, [1: 1, 2: 1, 39: 1]),
                                 (1_048_478, [2: 1, 39: 2]), (1_048_479, [1: 1, 2: 1, 39: 2])] {
            let h = Harness()
            let v = patternBytes(size, seed: 7)
            #expect(h.set("k", v) == .stored)
            #expect(used(h) == expected, "size \(size)")
            let same = h.get("k")?.value == v
            #expect(same, "size \(size)")
        }
    }

    /// Header class from key length and flags: memcached's htotal = 48 + 8 + nkey + 1 + (flags ? 4 : 0) + 48.
    @Test func headerClassFollowsKeyAndFlags() {
        for (key, flags, headerClass) in [(String(repeating: "k", count: 14), UInt32(0), 2),
                                          (String(repeating: "k", count: 14), 9, 3),
                                          (String(repeating: "k", count: 109), 0, 5),
                                          (String(repeating: "k", count: 250), 1, 7)] {
            let h = Harness()
            h.set(key, patternBytes(700_000), flags: flags)
            #expect(used(h) == [headerClass: 1, 35: 1, 39: 1], "key \(key.count) flags \(flags)")
        }
    }

    @Test func smallSlabChunkMax() {
        let h = Harness { $0.slabChunkMax = 16384; $0.itemSizeMax = 64 << 10 }
        let v = patternBytes(20_000, seed: 4)
        h.set("a", v)
        #expect(used(h) == [2: 1, 18: 1, 23: 1])
        #expect(h.stats().totalMalloced == 3 << 20)
        let same = h.get("a")?.value == v
        #expect(same)
    }

    /// Append/prepend size chunks per copied part and take a (class 1, empty) chunk after each part.
    @Test func appendLayoutMatchesMemcached() {
        let h = Harness()
        let a = patternBytes(300_000, seed: 1), b = patternBytes(300_000, seed: 2)
        h.set("a", a)
        #expect(h.set("a", b, mode: .append) == .stored)
        #expect(used(h) == [1: 2, 2: 1, 37: 2])
        #expect(h.stats().classes.first { $0.id == 39 }?.number == 1)
        var same = h.get("a")?.value == a + b
        #expect(same)
        let c = patternBytes(600_000, seed: 3)
        h.set("c", c)
        #expect(h.set("c", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], mode: .append) == .stored)
        #expect(h.set("c", [11, 12], mode: .prepend) == .stored)
        same = h.get("c")?.value == [11, 12] + c + [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        #expect(same)
        #expect(h.delete("a") == .deleted(classId: 39))
        #expect(used(h) == [1: 3, 2: 1, 31: 1, 39: 1])
    }

    @Test func biggerThanAPage() {
        let h = Harness { $0.itemSizeMax = 4 << 20 }
        let v = patternBytes(3_000_000, seed: 9)
        #expect(h.set("huge", v) == .stored)
        let same = h.get("huge")?.value == v
        #expect(same)
        #expect(h.get("huge")!.segments >= 6)
    }

    @Test func chunkedItemsAreEvicted() {
        let h = Harness { $0.memoryLimit = 4 << 20 }
        for i in 0..<10 { #expect(h.set("k\(i)", patternBytes(900 * 1024, seed: UInt32(i))) == .stored) }
        let s = h.stats()
        #expect(s.evictions > 0)
        #expect(s.totalMalloced <= 4 << 20)
        let same = h.get("k9")?.value == patternBytes(900 * 1024, seed: 9)
        #expect(same)
        #expect(h.lookup("k0").result == .miss)
    }

    @Test func noCasLayout() {
        let h = Harness { $0.casEnabled = false }
        let v = patternBytes(1_048_524, seed: 5)   // -C: 8 more value bytes fit in 1 MB
        #expect(h.set("k", v) == .stored)
        let same = h.get("k")?.value == v
        #expect(same)
        #expect(h.set("k", patternBytes(1_048_525)) == .tooLarge)
    }
}
