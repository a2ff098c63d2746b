// LRU crawler (metadump/crawl), cachedump, peek and eviction reports.
import Testing
import Synchronization
import CacheStore

@Suite struct CrawlerTests {
    private func keys(_ crawl: LRUCrawl, rounds: Int = 3) -> [String] {
        var out: [String] = []
        while !crawl.step(rounds: rounds, { out.append(String(decoding: $0.key, as: UTF8.self)) }) {}
        crawl.finish()
        return out
    }

    @Test func metadumpVisitsTailToHeadRoundRobinAcrossClasses() {
        let h = Harness()
        for i in 0..<5 { h.set("a\(i)", "x") }                         // class 1
        for i in 0..<3 { h.set("b\(i)", String(repeating: "y", count: 500)) }   // a bigger class
        let crawl = h.store.startCrawl(classIds: Array(1..<64))!
        #expect(keys(crawl) == ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "a4"])
    }

    @Test func oneCrawlAtATimeAndSentinelsAreGoneAfterwards() {
        let h = Harness { $0.lruSegmented = false }   // cachedump shows COLD, where flat mode links every item
        for i in 0..<10 { h.set("k\(i)", "v") }
        let crawl = h.store.startCrawl(classIds: [1])!
        #expect(h.store.startCrawl(classIds: [1]) == nil)
        var seen = 0
        _ = crawl.step(rounds: 4) { _ in seen += 1 }
        // Stores, deletes and bumps around the sentinel while the crawl is paused.
        h.set("k10", "v"); _ = h.delete("k5"); _ = h.lookup("k0")
        while !crawl.step(rounds: 4, { _ in seen += 1 }) {}
        crawl.finish()
        #expect(seen == 10)                      // k5 deleted unseen; k10, linked at the head meanwhile, is seen
        var dumped: [String] = []
        h.store.cachedump(classId: 1) { key, _, _, _ in dumped.append(String(decoding: key, as: UTF8.self)); return true }
        #expect(dumped.count == 10)              // no sentinel left in the LRU
        let next = h.store.startCrawl(classIds: [1])
        #expect(next != nil)
        next?.finish()
    }

    @Test func metadumpSkipsExpiredAndFlushedAndReportsFields() {
        let h = Harness()
        h.set("live", "abc", flags: 5, exptime: 100)
        h.set("dead", "x", exptime: 1)
        h.advance(2)
        _ = h.lookup("live")
        var metas: [(String, UInt32, Bool, Int)] = []
        let crawl = h.store.startCrawl(classIds: [1])!
        while !crawl.step(rounds: 10, { metas.append((String(decoding: $0.key, as: UTF8.self), $0.exptime, $0.fetched, $0.totalSize)) }) {}
        crawl.finish()
        #expect(metas.count == 1)
        #expect(metas.first?.0 == "live" && metas.first?.2 == true && metas.first?.3 == 48 + 8 + 4 + 1 + 4 + 5)
        h.store.flushAll(delay: 0)
        let again = h.store.startCrawl(classIds: [1])!
        #expect(keys(again).isEmpty)
    }

    @Test func crawlReclaimsExpiredOnly() {
        let h = Harness()
        for i in 0..<50 { h.set("e\(i)", "x", exptime: 1) }
        for i in 0..<5 { h.set("l\(i)", "x") }
        h.advance(3)
        let crawl = h.store.startCrawl(classIds: [1])!
        while !crawl.reclaimStep(rounds: 7) {}
        crawl.finish()
        #expect(h.stats().currItems == 5)
    }

    @Test func toCrawlCapsItemsCheckedPerClassAndCountsLikeMemcached() {
        let h = Harness()
        for i in 0..<50 { h.set("e\(i)", "x", exptime: 1) }                              // class 1, tail first
        for i in 0..<20 { h.set("b\(i)", String(repeating: "y", count: 500), exptime: 1) }  // a bigger class
        for i in 0..<5 { h.set("l\(i)", "x") }
        _ = h.lookup("e0")                                                               // fetched: not "unfetched"
        h.advance(3)
        var crawl = h.store.startCrawl(classIds: Array(1..<64), toCrawl: 10)!
        while !crawl.reclaimStep(rounds: 3) {}
        crawl.finish()
        var s = h.stats()
        #expect(s.currItems == 75 - 20)
        #expect(s.crawlerReclaimed == 20 && s.crawlerItemsChecked == 20 && s.expiredUnfetched == 19 && s.reclaimed == 0)
        #expect(s.classes.first { $0.id == 1 }?.crawlerReclaimed == 10)
        // A cap larger than the class: every item is looked at once, live ones are kept.
        crawl = h.store.startCrawl(classIds: [1], toCrawl: 1000)!
        while !crawl.reclaimStep(rounds: 7) {}
        crawl.finish()
        s = h.stats()
        #expect(s.currItems == 5 + 10 && s.crawlerItemsChecked == 20 + 45 && s.crawlerReclaimed == 60)
        // Metadump is never capped and counts what it looked at; flushed items are reclaimed, not "unfetched".
        crawl = h.store.startCrawl(classIds: [1])!
        var seen = 0
        while !crawl.step(rounds: 2, { _ in seen += 1 }) {}
        crawl.finish()
        #expect(seen == 5 && h.stats().crawlerItemsChecked == 65 + 5)
        h.store.flushAll(delay: 0)
        h.advance(1)
        crawl = h.store.startCrawl(classIds: [1], toCrawl: 2)!
        while !crawl.reclaimStep(rounds: 1) {}
        crawl.finish()
        s = h.stats()
        #expect(s.crawlerReclaimed == 62 && s.expiredUnfetched == 59 && s.currItems == 13)
        h.store.resetStats()
        #expect(h.stats().crawlerReclaimed == 0 && h.stats().crawlerItemsChecked == 0)
    }

    @Test func hashWalkSeesEverything() {
        let h = Harness()
        for i in 0..<1000 { h.set("k\(i)", "v") }
        let crawl = h.store.startCrawl(classIds: [], byHash: true)!
        #expect(Set(keys(crawl, rounds: 1000)).count == 1000)
    }

    @Test func evictionWithASentinelAtTheTail() {
        let h = Harness { $0.memoryLimit = 2 << 20; $0.slabPageSize = 1 << 20 }
        let big = [UInt8](repeating: 1, count: 100_000)
        for i in 0..<8 { h.set("k\(i)", big) }
        let crawl = h.store.startCrawl(classIds: Array(1..<64))!   // sentinels sit at every tail
        for i in 8..<40 { #expect(h.set("k\(i)", big) == .stored) }
        crawl.finish()
        #expect(h.stats().evictions > 0)
    }

    @Test func evictionReports() {
        let h = Harness { $0.memoryLimit = 2 << 20; $0.slabPageSize = 1 << 20 }
        let seen = Mutex<[String]>([])
        h.store.events.onEviction = { r in seen.withLock { $0.append(String(decoding: r.key, as: UTF8.self)) } }
        let big = [UInt8](repeating: 1, count: 100_000)
        for i in 0..<30 { h.set("k\(i)", big) }
        #expect(seen.withLock { $0.isEmpty })              // not watched: no reports
        h.store.events.evictionsWatched.store(true, ordering: .relaxed)
        for i in 30..<40 { h.set("k\(i)", big) }
        #expect(seen.withLock { $0.count } == 10)
    }

    @Test func peekHasNoSideEffects() {
        let h = Harness()
        h.set("k", "abc", exptime: 50)
        var key = "k"
        let p = key.withUTF8 { h.store.peek(UnsafeRawBufferPointer($0), hash: h.hash("k")) }
        #expect(p.result == .hit(classId: 1) && p.valueLength == 3)
        #expect(h.get("k")?.fetchedBefore == false)
    }
}
