// Expiry times: relative, absolute (> 30 days), negative, the 30-day boundary, lazy unlink, touch and gat.
import Testing
import CacheStore

@Suite struct ExpiryTests {
    @Test func relativeExpiry() {
        let h = Harness()
        h.set("a", "1", exptime: 10)
        #expect(h.get("a")?.exptime == h.clock.currentTime + 10)
        h.advance(9)
        #expect(h.value("a") == "1")
        h.advance(1)
        #expect(h.lookup("a").result == .expired)
        #expect(h.lookup("a").result == .miss)      // unlinked on the way
        #expect(h.stats().currItems == 0)
    }

    @Test func absoluteExpiry() {
        let h = Harness()
        h.set("a", "1", exptime: Int64(h.now + 100))
        h.set("past", "1", exptime: Int64(h.now - 100))
        #expect(h.lookup("past").result == .expired)
        h.advance(99)
        #expect(h.value("a") == "1")
        h.advance(1)
        #expect(h.lookup("a").result == .expired)
    }

    @Test func negativeExpiresImmediately() {
        let h = Harness()
        #expect(h.set("a", "1", exptime: -1) == .stored)
        #expect(h.lookup("a").result == .expired)
        #expect(h.delete("a") == .notFound)
    }

    @Test func thirtyDayBoundary() {
        let h = Harness()
        h.set("rel", "1", exptime: 2_592_000)          // 30 days: still relative
        h.set("abs", "1", exptime: 2_592_001)          // unix time in 1970: already past
        #expect(h.lookup("abs").result == .expired)
        h.advance(2_591_999)
        #expect(h.value("rel") == "1")
        h.advance(1)
        #expect(h.lookup("rel").result == .expired)
    }

    @Test func touchAndGatSetNewExpiry() {
        let h = Harness()
        h.set("a", "1", exptime: 10)
        let cas = h.get("a")?.cas
        #expect(h.touch("a", 100) == .hit(classId: 1))
        h.advance(50)
        #expect(h.value("a") == "1")
        let gat = h.lookup("a", touch: 5)
        #expect(gat.item?.exptime == h.clock.currentTime + 5)
        #expect(gat.item?.cas == cas)
        h.advance(5)
        #expect(h.lookup("a").result == .expired)
        #expect(h.touch("a", 100) == .miss)
        #expect(h.touch("nope", 100) == .miss)
        h.set("b", "1", exptime: 1)
        h.advance(1)
        #expect(h.touch("b", 100) == .expired)
    }

    @Test func fetchedAndLastAccessReportThePreviousState() {
        let h = Harness()
        h.set("a", "1")
        let stored = h.clock.currentTime
        let first = h.get("a")
        #expect(first?.fetchedBefore == false && first?.lastAccess == stored)
        h.advance(61)
        let second = h.get("a")
        #expect(second?.fetchedBefore == true && second?.lastAccess == stored)
        #expect(h.get("a")?.lastAccess == stored + 61)   // bumped by the previous access (> 60 s)
    }
}
