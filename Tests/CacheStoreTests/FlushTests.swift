// flush_all with and without delay, with and without CAS (memcached 1.6.18 process_flush_all).
import Testing
import CacheStore

@Suite struct FlushTests {
    @Test func immediateFlushWithCas() {
        let h = Harness()
        h.set("a", "1"); h.set("b", "2")
        #expect(h.get("a")?.cas == 1)
        h.store.flushAll(delay: 0)
        #expect(h.store.oldestLive == h.clock.currentTime - 1)
        #expect(h.store.oldestCas == 3)               // consumes a CAS unique, as memcached
        #expect(h.lookup("a").result == .flushed)
        #expect(h.lookup("a").result == .miss)
        h.set("c", "3")                               // same second, newer CAS: survives
        #expect(h.get("c")?.cas == 4)
        #expect(h.value("c") == "3")
        #expect(h.lookup("b").result == .flushed)
        h.advance(100)
        #expect(h.value("c") == "3")
    }

    @Test func immediateFlushWithoutCas() {
        let h = Harness { $0.casEnabled = false }
        h.set("a", "1")
        h.store.flushAll(delay: 0)
        #expect(h.store.oldestLive == h.clock.currentTime)
        #expect(h.lookup("a").result == .flushed)
        h.set("b", "2")                               // same second: flushed too (memcached -C does the same)
        #expect(h.lookup("b").result == .flushed)
        h.advance(1)
        h.set("c", "3")
        #expect(h.value("c") == "3")
    }

    @Test func delayedFlush() {
        let h = Harness()
        h.set("a", "1")
        let t0 = h.clock.currentTime
        h.store.flushAll(delay: 10)
        #expect(h.store.oldestLive == t0 + 9)         // realtime(10) - 1 (1.6.18 proto_text.c)
        #expect(h.store.oldestCas == 0)               // still in the future: no CAS cut
        h.advance(8)
        #expect(h.value("a") == "1")
        h.set("b", "2")
        h.advance(1)
        #expect(h.lookup("a").result == .flushed)
        #expect(h.lookup("b").result == .flushed)      // stored before the flush time
        h.set("c", "3")                               // time == oldestLive: flushed as well
        #expect(h.lookup("c").result == .flushed)
        h.advance(1)
        h.set("d", "4")
        #expect(h.value("d") == "4")
    }

    @Test func delayedFlushWithoutCas() {
        let h = Harness { $0.casEnabled = false }
        h.set("a", "1")
        h.store.flushAll(delay: 5)
        #expect(h.store.oldestLive == h.clock.currentTime + 5)  // realtime(5), no -1 without CAS
        h.advance(4)
        #expect(h.value("a") == "1")
        h.advance(1)
        #expect(h.lookup("a").result == .flushed)
    }

    @Test func flushedTailItemsAreReclaimed() {
        let h = Harness { $0.memoryLimit = 8 << 20 }
        let v = [UInt8](repeating: 1, count: 102_400)
        for i in 0..<80 { h.set("k\(i)", v) }
        h.store.flushAll(delay: 0)
        for i in 80..<90 { #expect(h.set("k\(i)", v) == .stored) }
        #expect(h.stats().evictions == 0)
        #expect(h.stats().reclaimed == 10)
    }
}
