// Memory limit, LRU eviction, reclaim of expired items, -M out of memory, cache_memlimit.
import Testing
import CacheStore

@Suite struct EvictionTests {
    static let value100k = [UInt8](repeating: 120, count: 102_400)

    /// memcached -m 8: 200 × 100 KB → curr_items 80, evictions 120, 8 pages in class 32.
    @Test func lruEvictsOldestWhenFull() {
        let h = Harness { $0.memoryLimit = 8 << 20 }
        for i in 0..<80 { #expect(h.set("key\(i)", Self.value100k, exptime: i < 10 ? 1000 : 0) == .stored) }
        #expect(h.lookup("key0").result == .hit(classId: 32))    // fetched, not bumped (< 60 s)
        h.advance(7)
        #expect(h.set("key80", Self.value100k) == .stored)
        var s = h.stats()
        #expect(s.evictions == 1)
        #expect(s.classes.first?.evictedTime == 7)
        #expect(s.evictedUnfetched == 0)       // key0 had been fetched
        for i in 81..<200 { #expect(h.set("key\(i)", Self.value100k) == .stored) }
        s = h.stats()
        #expect(s.currItems == 80)
        #expect(s.totalItems == 200)
        #expect(s.evictions == 120)
        #expect(s.evictedUnfetched == 119)
        #expect(s.totalMalloced == 8 << 20)
        let c = s.classes.first
        #expect(s.classes.count == 1)
        #expect(c?.id == 32 && c?.totalPages == 8 && c?.usedChunks == 80 && c?.freeChunks == 0)
        #expect(c?.evicted == 120 && c?.evictedNonzero == 10 && c?.evictedTime == 0)
        #expect((0..<120).allSatisfy { h.lookup("key\($0)").result == .miss })
        #expect((120..<200).allSatisfy { h.get("key\($0)")?.value.count == 102_400 })
        h.store.resetStats()
        s = h.stats()
        #expect(s.evictions == 0 && s.totalItems == 0 && s.classes.first?.evicted == 0)
        #expect(s.currItems == 80 && s.totalMalloced == 8 << 20)
    }

    @Test func recentlyUsedItemsSurvive() {
        let h = Harness { $0.memoryLimit = 8 << 20; $0.lruSegmented = false }   // one LRU: flat mode
        for i in 0..<80 { h.set("key\(i)", Self.value100k) }
        h.advance(61)
        #expect(h.get("key0") != nil)          // > 60 s since last access: moves to the LRU head
        #expect(h.get("key0")?.lastAccess == h.clock.currentTime)
        for i in 80..<85 { h.set("key\(i)", Self.value100k) }
        #expect(h.get("key0") != nil)
        #expect(h.lookup("key1").result == .miss)
        #expect(h.lookup("key5").result == .miss && h.get("key6") != nil)
        #expect(h.stats().classes.first?.age == 61)   // LRU tail key6 was stored 61 s ago
    }

    @Test func expiredTailItemsAreReclaimedNotEvicted() {
        let h = Harness { $0.memoryLimit = 8 << 20 }
        for i in 0..<80 { h.set("key\(i)", Self.value100k, exptime: 10) }
        #expect(h.get("key3") != nil)
        h.advance(11)
        for i in 80..<160 { #expect(h.set("key\(i)", Self.value100k) == .stored) }
        let s = h.stats()
        #expect(s.evictions == 0)
        #expect(s.reclaimed == 80)
        #expect(s.expiredUnfetched == 79)
        #expect(s.currItems == 80)
    }

    @Test func noEvictionsMeansOutOfMemory() {
        let h = Harness { $0.memoryLimit = 8 << 20; $0.evictionsEnabled = false }
        for i in 0..<80 { #expect(h.set("key\(i)", Self.value100k) == .stored) }
        #expect(h.set("key80", Self.value100k) == .outOfMemory)
        #expect(h.stats().classes.first?.outOfMemory == 1)
        #expect(h.stats().evictions == 0)
        // A failed set drops the key's old value (memcached), which frees a chunk for the next one.
        #expect(h.set("key5", Self.value100k) == .outOfMemory)
        #expect(h.lookup("key5").result == .miss)
        #expect(h.set("key80", Self.value100k) == .stored)
        #expect(h.stats().currItems == 80)
        // Smaller items still get a first page in their own class.
        #expect(h.set("small", "x") == .stored)
        #expect(h.stats().totalMalloced == 9 << 20)
    }

    @Test func memoryLimitCanBeRaisedAndLowered() {
        let h = Harness { $0.memoryLimit = 8 << 20 }
        for i in 0..<80 { h.set("key\(i)", Self.value100k) }
        h.store.setMemoryLimit(16 << 20)
        for i in 80..<160 { h.set("key\(i)", Self.value100k) }
        #expect(h.stats().evictions == 0)
        #expect(h.stats().currItems == 160)
        h.store.setMemoryLimit(4 << 20)
        #expect(h.set("key160", Self.value100k) == .stored)
        #expect(h.stats().evictions == 1)
        #expect(h.stats().totalMalloced == 16 << 20)   // pages are not given back
    }
}
