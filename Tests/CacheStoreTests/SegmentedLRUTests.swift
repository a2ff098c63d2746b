// The segmented LRU (memcached 1.6.18 items.c): where items are linked, what fetches do to them, what the
// maintainer's juggle moves, how allocation evicts, and that twice-fetched items survive a scan that a single
// LRU loses them to.
import CacheStore
import Testing

@Suite struct SegmentedLRUTests {
    static let value1k = patternBytes(1_000, seed: 9)

    private func cls(_ h: Harness) -> ClassStats { h.stats().classes.first { $0.number > 0 }! }

    @Test func newItemsGoToHotAndOverflowToCold() {
        let h = Harness()
        for i in 100..<200 { h.set("k\(i)", Self.value1k) }   // equal sizes: HOT's share is 20 items
        var c = cls(h)
        #expect(c.numberHot == 100 && c.numberWarm == 0 && c.numberCold == 0)
        // HOT may hold 20 % of the class's bytes: the juggle moves the rest, oldest first, to COLD.
        #expect(h.store.juggle(classId: c.id) > 0)
        c = cls(h)
        #expect(c.numberHot == 20 && c.numberCold == 80 && c.movesToCold == 80)
        #expect(h.store.juggle(classId: c.id) == 0)   // settled
    }

    @Test func secondFetchMakesAnItemActiveAndItGoesToWarm() {
        let h = Harness()
        for i in 0..<100 { h.set("k\(i)", Self.value1k) }
        // k0 is HOT's tail: fetched twice it is ACTIVE, so the juggle moves it to WARM instead of COLD.
        #expect(h.get("k0")?.fetchedBefore == false)
        #expect(h.get("k0")?.fetchedBefore == true)
        let id = cls(h).id
        _ = h.store.juggle(classId: id)
        var c = cls(h)
        #expect(c.numberWarm == 1 && c.movesToWarm == 1)
        // A COLD item fetched twice is rescued to WARM at once (memcached: through its bump queue).
        _ = h.get("k1"); _ = h.get("k1")
        c = cls(h)
        #expect(c.numberWarm == 2 && c.movesToWarm == 2)
        // Fetched once more while in WARM, it is ACTIVE again; WARM's juggle keeps it (moves_within_lru).
        h.set("w", Self.value1k)
        _ = h.get("k1")
        #expect(h.get("k1") != nil)
    }

    /// One juggle settles HOT and WARM together (it pulls each segment's tail while that segment has work, in
    /// batches under one class-lock hold): nothing is left for the next one.
    @Test func oneJuggleSettlesHotAndWarmOverflow() {
        let h = Harness()
        for i in 100..<200 { h.set("k\(i)", Self.value1k) }
        let id = cls(h).id
        _ = h.store.juggle(classId: id)                   // HOT 20, COLD 80
        for i in 100..<160 { _ = h.get("k\(i)"); _ = h.get("k\(i)") }   // 60 COLD items rescued to WARM
        for i in 200..<230 { h.set("k\(i)", Self.value1k) }
        var c = cls(h)
        #expect(c.numberWarm == 60 && c.numberHot == 50)  // both over their share of 130 items (26 and 52)
        #expect(h.store.juggle(classId: id) > 0)
        c = cls(h)
        #expect(c.numberHot == 26 && c.numberWarm == 52 && c.number == 130)
        #expect(h.store.juggle(classId: id) == 0)
    }

    @Test func flatModeLinksIntoColdAndJuggleDrainsHot() {
        let h = Harness()
        for i in 0..<10 { h.set("k\(i)", Self.value1k) }
        h.store.lruPolicy.segmented = false               // `lru mode flat`
        for i in 10..<20 { h.set("k\(i)", Self.value1k) }
        var c = cls(h)
        #expect(c.numberHot == 10 && c.numberCold == 10)
        _ = h.store.juggle(classId: c.id)                 // flat: HOT and WARM drain into COLD
        c = cls(h)
        #expect(c.numberHot == 0 && c.numberCold == 20)
    }

    @Test func allocationEvictsFromColdAndPushesHotDown() {
        let h = Harness { $0.memoryLimit = 8 << 20 }
        let big = patternBytes(102_400, seed: 4)
        for i in 0..<80 { h.set("key\(i)", big) }         // 8 pages of 10 chunks, all in HOT
        for i in 80..<90 { #expect(h.set("key\(i)", big) == .stored) }
        let s = h.stats()
        #expect(s.evictions == 10 && s.currItems == 80)
        // COLD was empty each time: HOT's tail was pushed down to COLD, then evicted on the next round.
        #expect(s.directReclaims == 20 && s.movesToCold == 10)
        #expect((0..<10).allSatisfy { h.lookup("key\($0)").result == .miss })
    }

    @Test func temporaryItemsLiveInTempAndAreReclaimedThere() {
        let h = Harness { $0.tempLRU = true; $0.temporaryTTL = 10 }
        h.set("short", "x", exptime: 5)
        h.set("long", "x", exptime: 100)
        h.set("forever", "x")
        var c = cls(h)
        #expect(c.numberTemp == 1 && c.numberHot == 2)
        h.advance(6)
        _ = h.store.juggle(classId: c.id)
        c = cls(h)
        #expect(c.numberTemp == 0 && c.reclaimed == 1 && c.number == 2)
    }

    /// A hot set fetched twice is kept while a stream of one-hit keys twice the memory passes through:
    /// segmented, the hot keys sit in WARM and the stream cycles through HOT → COLD → out; flat, the
    /// stream pushes them out of the single LRU.
    @Test(arguments: [true, false]) func hotKeysSurviveAScan(segmented: Bool) {
        let h = Harness { $0.memoryLimit = 8 << 20; $0.lruSegmented = segmented }
        let value = patternBytes(10_000, seed: 5)        // ~100 per page, 8 pages
        for i in 0..<100 { h.set("hot\(i)", value) }
        for i in 0..<100 { _ = h.get("hot\(i)"); _ = h.get("hot\(i)") }
        var cid = 0
        for i in 0..<1_600 {
            h.set("scan\(i)", value)
            if i % 50 == 0 {
                cid = cls(h).id
                _ = h.store.juggle(classId: cid)          // the maintainer runs while the scan goes on
                for j in 0..<100 where i % 200 == 0 { _ = h.get("hot\(j)") }
            }
        }
        let kept = (0..<100).filter { h.lookup("hot\($0)").result != .miss }.count
        if segmented { #expect(kept == 100) } else { #expect(kept == 0) }
    }
}
