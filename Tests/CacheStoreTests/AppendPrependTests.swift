// append/prepend: joined values, old flags and exptime kept, CAS checks, size limits.
import Testing
import CacheStore

@Suite struct AppendPrependTests {
    @Test func joinsValuesKeepingFlagsAndExptime() {
        let h = Harness()
        #expect(h.set("a", "x", mode: .append) == .notStored)
        #expect(h.set("a", "x", mode: .prepend) == .notStored)
        h.set("a", "mid", flags: 42, exptime: 500)
        let exp = h.get("a")!.exptime
        #expect(h.set("a", "-end", mode: .append, flags: 1, exptime: 5) == .stored)
        #expect(h.set("a", "start-", mode: .prepend, flags: 2, exptime: 9) == .stored)
        let f = h.get("a")!
        #expect(f.string == "start-mid-end")
        #expect(f.flags == 42 && f.exptime == exp)
        #expect(h.stats().currItems == 1)
        #expect(h.stats().bytes == f.totalSize)
    }

    @Test func casOnAppend() {
        let h = Harness()
        h.set("a", "1")
        let cas = h.get("a")!.cas
        #expect(h.set("a", "2", mode: .append, cas: cas + 5) == .exists)
        #expect(h.set("a", "2", mode: .append, cas: cas) == .stored)
        #expect(h.value("a") == "12")
    }

    @Test func appendBeyondItemSizeMaxIsNotStored() {
        let h = Harness { $0.itemSizeMax = 4096 }
        h.set("a", [UInt8](repeating: 97, count: 3000))
        #expect(h.set("a", [UInt8](repeating: 98, count: 2000), mode: .append) == .notStored)
        #expect(h.get("a")?.value.count == 3000)
    }

    @Test func appendAcrossChunkBoundary() {
        let h = Harness()
        let a = patternBytes(500_000, seed: 3), b = patternBytes(300_000, seed: 4)
        h.set("a", a)
        #expect(h.set("a", b, mode: .append) == .stored)
        let f = h.get("a")!
        let joined = f.value == a + b
        #expect(joined)
        #expect(f.segments > 1)
        #expect(h.set("a", [1, 2, 3], mode: .prepend) == .stored)
        let prepended = h.get("a")!.value == [1, 2, 3] + a + b
        #expect(prepended)
    }
}
