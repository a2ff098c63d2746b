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

    @Test func accountingAndFree() {
        let h = Harness()
        h.set("big", patternBytes(800 * 1024))
        var s = h.stats()
        #expect(s.currItems == 1 && s.bytes == 48 + 8 + 3 + 1 + 800 * 1024 + 2)
        // head in the 512 KB class, the rest (~288 KB) in class 37 (315872-byte chunks)
        #expect(s.classes.map(\.id) == [37, 39])
        #expect(s.classes.map(\.usedChunks) == [1, 1])
        #expect(s.totalMalloced == 2 << 20)
        #expect(h.delete("big") == .deleted(classId: 39))
        s = h.stats()
        #expect(s.classes.map(\.usedChunks) == [0, 0])
        #expect(s.currItems == 0 && s.bytes == 0)
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
