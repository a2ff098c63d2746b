// The slab page mover (SlabMover.swift): pages leave a class with their items rescued or evicted, values
// intact; pinned items hold a move up until they are unpinned; chunked items' headers and value chunks move;
// the global page pool takes and gives pages; memory over the limit is given back.
import Glibc
import Testing
@testable import CacheStore

extension Harness {
    func classStats(_ id: Int) -> ClassStats? { stats().classes.first { $0.id == id } }
    func pages(_ id: Int) -> Int { classStats(id)?.totalPages ?? 0 }

    /// Waits (bounded) until `moved` pages have been moved in all and no move is running.
    func awaitMoves(_ moved: Int, seconds: Double = 20) -> Bool {
        let deadline = monotonicSeconds() + seconds
        while monotonicSeconds() < deadline {
            let s = store.slabMoverStats
            if !s.running && s.slabsMoved >= moved { return s.slabsMoved == moved }
            usleep(1000)
        }
        return false
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

@Suite struct SlabMoverTests {
    static let value = [UInt8](repeating: 0x61, count: 100)

    /// Two full pages of one class; half of the second page's items deleted: the first page's items are
    /// rescued into those free chunks until there are none, the rest are evicted.
    @Test func pageMovesWithItemsRescuedThenEvicted() throws {
        let h = Harness()
        let cid = h.storeWithClass("k0", patternBytes(100, seed: 0)).classId
        let per = try #require(h.classStats(cid)).perSlab
        for i in 1..<(2 * per) { #expect(h.set("k\(i)", patternBytes(100, seed: UInt32(i))) == .stored) }
        #expect(h.pages(cid) == 2)
        let freed = per / 2
        for i in per..<(per + freed) { #expect(h.delete("k\(i)") == .deleted(classId: cid)) }
        #expect(h.store.slabsReassign(src: cid, dst: cid + 3) == .ok)
        #expect(h.awaitMoves(1))
        let m = h.store.slabMoverStats
        #expect(m.rescues == freed)
        #expect(m.evictionsNomem == per - freed)
        #expect(m.inlineReclaim == 0 && m.chunkRescues == 0 && m.busyItems == 0)
        #expect(h.pages(cid) == 1 && h.pages(cid + 3) == 1)
        let src = try #require(h.classStats(cid))
        #expect(src.freeChunks == 0 && src.usedChunks == per)
        #expect(h.classStats(cid + 3)?.freeChunks == h.classStats(cid + 3)?.perSlab)
        var hits = 0
        for i in 0..<(2 * per) {
            if let f = h.get("k\(i)") {
                hits += 1
                #expect(f.value == patternBytes(100, seed: UInt32(i)))
            }
        }
        #expect(hits == per)
        #expect(h.stats().currItems == per)
    }

    /// Free chunks of the page being emptied that the rescue allocation meets are cleared on the way
    /// (inline reclaim).
    @Test func freeChunksOfTheMovedPageAreReclaimedInline() throws {
        let h = Harness()
        let cid = h.storeWithClass("k0", Self.value).classId
        let per = try #require(h.classStats(cid)).perSlab
        for i in 1..<(3 * per) { h.set("k\(i)", Self.value) }
        #expect(h.pages(cid) == 3)
        // Items 0..<per are on the oldest page: free the newest page, then a few of the oldest page's items,
        // which puts those on top of the free list where the first rescue finds them.
        for i in (2 * per)..<(3 * per) { _ = h.delete("k\(i)") }
        for i in 0..<10 { _ = h.delete("k\(i)") }
        #expect(h.store.slabsReassign(src: cid, dst: 0) == .ok)
        #expect(h.awaitMoves(1))
        let m = h.store.slabMoverStats
        #expect(m.rescues == per - 10 && m.evictionsNomem == 0)
        #expect(m.inlineReclaim == 10)
        #expect(h.stats().currItems == 2 * per - 10)
        #expect(h.store.globalPagePool == 1 && h.pages(cid) == 2)
        #expect((10..<(2 * per)).allSatisfy { h.get("k\($0)")?.value == Self.value })
    }

    @Test func repliesAsMemcached() throws {
        let h = Harness()
        let cid = h.storeWithClass("k0", Self.value).classId
        #expect(h.store.slabsReassign(src: cid, dst: cid) == .same)
        #expect(h.store.slabsReassign(src: 99, dst: 1) == .badClass)
        #expect(h.store.slabsReassign(src: cid, dst: 99) == .badClass)
        #expect(h.store.slabsReassign(src: -2, dst: 1) == .badClass)
        #expect(h.store.slabsReassign(src: cid, dst: 1) == .noSpare)
        #expect(h.store.slabsReassign(src: -1, dst: 1) == .badClass)   // nothing to pick
        #expect(h.store.slabsReassign(src: 0, dst: 1) == .noSpare)     // the pool has no page
    }

    /// A pinned item (a connection sending it from slab memory) keeps the move waiting; the move completes
    /// once it is unpinned, and the value stayed intact throughout.
    @Test func pinnedItemDelaysTheMove() throws {
        let h = Harness()
        let cid = h.storeWithClass("k0", patternBytes(100, seed: 0)).classId
        let per = try #require(h.classStats(cid)).perSlab
        for i in 1..<(2 * per) { h.set("k\(i)", patternBytes(100, seed: UInt32(i))) }
        for i in per..<(2 * per) { _ = h.delete("k\(i)") }
        let p = try #require(h.pin("k5"))   // on the oldest page
        #expect(h.store.slabsReassign(src: cid, dst: 0) == .ok)
        let deadline = monotonicSeconds() + 20
        while h.store.slabMoverStats.busyItems < 3 && monotonicSeconds() < deadline { usleep(1000) }
        var m = h.store.slabMoverStats
        #expect(m.busyItems >= 3 && m.running && m.slabsMoved == 0)
        #expect(h.store.slabsReassign(src: cid, dst: 0) == .running)
        #expect(holds(p, patternBytes(100, seed: 5)))
        h.store.unpin(p)
        #expect(h.awaitMoves(1))
        m = h.store.slabMoverStats
        #expect(m.rescues == per && m.evictionsNomem == 0 && m.busyDeletes == 0)
        #expect((0..<per).allSatisfy { h.get("k\($0)")?.value == patternBytes(100, seed: UInt32($0)) })
        #expect(h.store.pinnedItemCount == 0)
    }

    /// A pin held through more than `maxBusyLoops` passes: the item is unlinked (a busy delete), its bytes
    /// stay intact for the connection, and the move completes once it lets go.
    @Test func longPinnedItemIsUnlinkedThenTheMoveCompletes() throws {
        let h = Harness()
        let cid = h.storeWithClass("k0", patternBytes(100, seed: 0)).classId
        let per = try #require(h.classStats(cid)).perSlab
        for i in 1..<(2 * per) { h.set("k\(i)", patternBytes(100, seed: UInt32(i))) }
        let p = try #require(h.pin("k3"))
        #expect(h.store.slabsReassign(src: cid, dst: 0) == .ok)
        let deadline = monotonicSeconds() + 30
        while h.store.slabMoverStats.busyItems <= SlabMover.maxBusyLoops + 2 && monotonicSeconds() < deadline {
            usleep(1000)
        }
        #expect(h.lookup("k3").result == .miss)
        #expect(holds(p, patternBytes(100, seed: 3)))
        #expect(h.store.slabMoverStats.running)
        h.store.unpin(p)
        #expect(h.awaitMoves(1))
        let m = h.store.slabMoverStats
        #expect(m.busyDeletes == 1 && m.evictionsNomem == per - 1 && m.rescues == 0)
        #expect(h.store.pinnedItemCount == 0)
    }

    /// Chunked items: a page of value chunks moves with its chunks copied and relinked; a page holding
    /// chunked items' headers moves with the headers copied. Every value reads back intact.
    @Test func chunkedItemsMove() throws {
        let h = Harness { $0.slabChunkMax = 16_384; $0.itemSizeMax = 1 << 20 }
        let largest = h.store.largestSlabClass
        // 40,000-byte values: two largest chunks and a tail each; headers in a small class.
        let n = 200
        var small = 0
        var headerClass = 0
        for i in 0..<n {
            #expect(h.set("c\(i)", patternBytes(40_000, seed: UInt32(1000 + i))) == .stored)
            // Small plain items sharing the headers' class, to give that class 2+ pages.
            for _ in 0..<50 {
                let r = h.storeWithClass("s\(small)", patternBytes(40, seed: UInt32(small)))
                headerClass = r.classId
                small += 1
            }
        }
        let largePages = h.pages(largest)
        #expect(largePages >= 2)
        #expect(h.pages(headerClass) >= 2)
        // Room for rescues: drop every other chunked item and most small ones.
        for i in stride(from: 1, to: n, by: 2) { _ = h.delete("c\(i)") }
        for i in stride(from: 0, to: small, by: 4) { _ = h.delete("s\(i)") }
        #expect(h.store.slabsReassign(src: largest, dst: 0) == .ok)
        #expect(h.awaitMoves(1))
        #expect(h.store.slabMoverStats.chunkRescues > 0)
        #expect(h.pages(largest) == largePages - 1)
        #expect(h.store.slabsReassign(src: headerClass, dst: 0) == .ok)
        #expect(h.awaitMoves(2))
        let m = h.store.slabMoverStats
        #expect(m.busyItems == 0)
        // Whatever was not evicted for lack of memory reads back intact.
        var chunkedHits = 0
        for i in stride(from: 0, to: n, by: 2) {
            if let f = h.get("c\(i)") {
                chunkedHits += 1
                #expect(f.value == patternBytes(40_000, seed: UInt32(1000 + i)))
            }
        }
        #expect(chunkedHits + m.evictionsNomem >= n / 2)
        #expect(chunkedHits > 0)
        for i in 0..<small where i % 4 != 0 {
            if let f = h.get("s\(i)") { #expect(f.value == patternBytes(40, seed: UInt32(i))) }
        }
        // The chains hold together for deletes and new sets after the moves.
        for i in stride(from: 0, to: n, by: 2) { _ = h.delete("c\(i)") }
        for i in 0..<20 { #expect(h.set("d\(i)", patternBytes(40_000, seed: UInt32(i))) == .stored) }
        #expect((0..<20).allSatisfy { h.get("d\($0)")?.value == patternBytes(40_000, seed: UInt32($0)) })
    }

    /// Pages go to the global pool and come back: a class needing a page takes a pooled one before mapping
    /// a new one; `slabs reassign 0 N` needs 2 pooled pages; pages over a lowered limit are unmapped.
    @Test func globalPoolInAndOut() throws {
        let h = Harness { $0.memoryLimit = 64 << 20 }
        let cid = h.storeWithClass("k0", Self.value).classId
        let per = try #require(h.classStats(cid)).perSlab
        for i in 1..<(4 * per) { h.set("k\(i)", Self.value) }
        for i in 0..<(4 * per) { _ = h.delete("k\(i)") }
        #expect(h.pages(cid) == 4)
        #expect(h.store.slabsReassign(src: cid, dst: 0) == .ok)
        #expect(h.awaitMoves(1))
        #expect(h.store.slabsReassign(src: cid, dst: 0) == .ok)
        #expect(h.awaitMoves(2))
        #expect(h.store.globalPagePool == 2 && h.pages(cid) == 2)
        let malloced = h.stats().totalMalloced
        #expect(malloced == 4 << 20)
        // A new class takes a pooled page: nothing new is mapped.
        let other = h.storeWithClass("x", [UInt8](repeating: 1, count: 2000)).classId
        #expect(other != cid && h.pages(other) == 1)
        #expect(h.store.globalPagePool == 1 && h.stats().totalMalloced == malloced)
        #expect(h.store.slabsReassign(src: 0, dst: other) == .noSpare)
        #expect(h.store.slabsReassign(src: cid, dst: 0) == .ok)
        #expect(h.awaitMoves(3))
        #expect(h.store.slabsReassign(src: 0, dst: other) == .ok)
        #expect(h.awaitMoves(4))
        #expect(h.store.globalPagePool == 1 && h.pages(other) == 2)
        // cache_memlimit below what is mapped: pages reaching the pool are unmapped.
        h.store.setMemoryLimit(2 << 20)
        #expect(h.store.slabsReassign(src: other, dst: 0) == .ok)
        #expect(h.awaitMoves(5))
        #expect(h.store.globalPagePool == 0)
        #expect(h.stats().totalMalloced == 2 << 20)
    }

    /// slab_automove=2: an eviction asks for a page from any class with a spare one.
    @Test func aggressiveAutomoveMovesOnEviction() throws {
        let h = Harness { $0.memoryLimit = 4 << 20 }
        let cid = h.storeWithClass("a0", Self.value).classId
        let per = try #require(h.classStats(cid)).perSlab
        for i in 1..<(3 * per) { h.set("a\(i)", Self.value) }
        for i in 0..<(3 * per) { _ = h.delete("a\(i)") }
        let big = [UInt8](repeating: 0x63, count: 400_000)
        h.store.slabAutomoveLevel = 2
        for i in 0..<6 { h.set("b\(i)", big) }   // 2 per page: the 4 MB fill up, evictions start
        let deadline = monotonicSeconds() + 20
        while h.store.slabMoverStats.slabsMoved < 1 && monotonicSeconds() < deadline { usleep(1000) }
        #expect(h.store.slabMoverStats.slabsMoved >= 1)
    }
}

@Suite struct SlabAutomoveTests {
    static func sample(pages: Int, free: Int = 0, evicted: Int = 0, age: Int, per: Int = 100) -> SlabAutomoveSample {
        SlabAutomoveSample(evicted: evicted, outOfMemory: 0, age: age, totalPages: pages, freeChunks: free,
                           chunksPerPage: per)
    }

    /// Class 1 is old with many pages, class 2 evicts every second with young items: once the window has
    /// filled, a page moves from 1 to 2.
    @Test func oldestGivesToYoungestEvicting() {
        var a = SlabAutomove(windowSize: 3, ratio: 0.8, classCount: 4)
        var decisions: [(Int, Int)?] = []
        for t in 1...5 {
            var s = Array(repeating: SlabAutomoveSample(), count: 4)
            s[1] = Self.sample(pages: 10, age: 1000, per: 100)
            s[2] = Self.sample(pages: 5, evicted: 10 * t, age: 10, per: 100)
            decisions.append(a.run(s).map { ($0.src, $0.dst) })
        }
        #expect(decisions[0] == nil && decisions[1] == nil && decisions[2] == nil)
        #expect(decisions[3].map { $0 == (1, 2) } == true)
        #expect(decisions[4].map { $0 == (1, 2) } == true)
    }

    /// No move while the ages are within the ratio, nor to a class that did not evict in the latest sample.
    @Test func ratioAndLatestEvictionGate() {
        var a = SlabAutomove(windowSize: 3, ratio: 0.8, classCount: 3)
        for t in 1...6 {
            var s = Array(repeating: SlabAutomoveSample(), count: 3)
            s[1] = Self.sample(pages: 10, age: 100)
            s[2] = Self.sample(pages: 5, evicted: 10 * t, age: 90)   // 90 ≥ 0.8 × 100
            #expect(a.run(s) == nil)
        }
        var b = SlabAutomove(windowSize: 3, ratio: 0.8, classCount: 3)
        for t in 1...6 {
            var s = Array(repeating: SlabAutomoveSample(), count: 3)
            s[1] = Self.sample(pages: 10, age: 1000)
            // Evicts in samples 1..4 only: the window still says "evicting", the latest sample does not.
            s[2] = Self.sample(pages: 5, evicted: 10 * min(t, 4), age: 10)
            let d = b.run(s)
            if t == 4 { #expect(d.map { $0 == (1, 2) } == true) }
            if t >= 5 { #expect(d == nil) }
        }
    }

    /// More than 2.5 pages of free chunks and a quiet window: a page goes back to the global pool at once.
    @Test func freeMemoryGoesToThePool() {
        var a = SlabAutomove(windowSize: 3, ratio: 0.8, classCount: 3)
        var s = Array(repeating: SlabAutomoveSample(), count: 3)
        s[2] = Self.sample(pages: 4, free: 251, age: 0, per: 100)
        // The first sample sees the pages appear (dirty): the window must forget that first.
        #expect(a.run(s) == nil && a.run(s) == nil && a.run(s) == nil)
        #expect(a.run(s).map { $0 == (2, 0) } == true)
        // A new page in the window makes the class dirty: no reclaim until the window forgets it.
        var b = SlabAutomove(windowSize: 3, ratio: 0.8, classCount: 3)
        var before = Array(repeating: SlabAutomoveSample(), count: 3)
        before[2] = Self.sample(pages: 3, free: 10, age: 0)
        #expect(b.run(before) == nil)
        s[2] = Self.sample(pages: 4, free: 251, age: 0)
        #expect(b.run(s) == nil)   // page count grew in this sample
        #expect(b.run(s) == nil)
        #expect(b.run(s) == nil)
        #expect(b.run(s).map { $0 == (2, 0) } == true)
        // 2.5 pages exactly is not more than 2.5.
        var c = SlabAutomove(windowSize: 3, ratio: 0.8, classCount: 3)
        s[2] = Self.sample(pages: 4, free: 250, age: 0)
        for _ in 0..<6 { #expect(c.run(s) == nil) }
    }
}
