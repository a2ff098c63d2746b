// CAS uniques and the store modes (set/add/replace/cas) that compare against them.
import Testing
import CacheStore

@Suite struct CasTests {
    @Test func casSequence() {
        let h = Harness()
        h.set("a", "1"); h.set("b", "1"); h.set("a", "2")
        #expect(h.get("b")?.cas == 2)
        #expect(h.get("a")?.cas == 3)
        #expect(h.touch("a", 100) == .hit(classId: 1))
        #expect(h.lookup("a", touch: 50).item?.cas == 3)       // touch and gat keep the CAS
        #expect(h.set("a", "x", mode: .append) == .stored)
        #expect(h.get("a")?.cas == 4)
        h.set("n", "1")
        #expect(h.delta("n", incr: true, 1) == .ok(value: 2, classId: 1))
        #expect(h.get("n")?.cas == 6)
        #expect(h.store.currentCas == 6)
    }

    @Test func casMode() {
        let h = Harness()
        #expect(h.set("a", "1", mode: .cas, cas: 1) == .notFound)
        h.set("a", "1", flags: 7)
        let cas = h.get("a")!.cas
        #expect(h.set("a", "2", mode: .cas, cas: cas + 1) == .exists)
        #expect(h.set("a", "2", mode: .cas, cas: 0) == .exists)
        #expect(h.value("a") == "1")
        #expect(h.set("a", "3", mode: .cas, flags: 9, cas: cas) == .stored)
        let after = h.get("a")
        #expect(after?.string == "3" && after?.flags == 9 && after!.cas > cas)
        #expect(h.set("a", "4", mode: .cas, cas: cas) == .exists)
    }

    @Test func addAndReplace() {
        let h = Harness()
        #expect(h.set("a", "1", mode: .replace) == .notStored)
        #expect(h.lookup("a").result == .miss)
        #expect(h.set("a", "1", mode: .add) == .stored)
        #expect(h.set("a", "2", mode: .add) == .notStored)
        #expect(h.value("a") == "1")
        #expect(h.set("a", "3", mode: .replace) == .stored)
        #expect(h.value("a") == "3")
        h.set("e", "1", exptime: 1)
        h.advance(1)
        #expect(h.set("e", "2", mode: .add) == .stored)        // expired counts as missing
        #expect(h.stats().currItems == 2)
        #expect(h.stats().totalItems == 4)
    }

    @Test func casDisabled() {
        let h = Harness { $0.casEnabled = false }
        h.set("a", "1"); h.set("b", "2")
        #expect(h.get("a")?.cas == 0 && h.get("b")?.cas == 0)
        #expect(h.set("a", "2", mode: .cas, cas: 0) == .exists)  // memcached -C: cas never matches
        #expect(h.set("z", "2", mode: .cas, cas: 5) == .notFound)
        #expect(h.store.currentCas == 0)
    }

    @Test func storeAndDeltaReportTheNewCas() {
        let h = Harness()
        let key: [UInt8] = Array("n".utf8), v: [UInt8] = Array("10".utf8)
        let hash = h.hash("n")
        let r = key.withUnsafeBytes { k in v.withUnsafeBytes { vv in
            h.store.store(.set, key: k, hash: hash, flags: 0, exptime: 0, value: vv, casUnique: 0, unlinkOnFailure: true)
        } }
        #expect(r.result == .stored && r.cas == 1 && r.cas == h.get("n")?.cas)
        let add = key.withUnsafeBytes { k in v.withUnsafeBytes { vv in
            h.store.store(.add, key: k, hash: hash, flags: 0, exptime: 0, value: vv, casUnique: 0, unlinkOnFailure: false)
        } }
        #expect(add.result == .notStored && add.cas == 0)
        let bad = key.withUnsafeBytes { h.store.delta($0, hash: hash, incr: true, delta: 1, casUnique: 99) }
        #expect(bad.casMismatch && bad.result == .notFound)
        #expect(h.value("n") == "10")
        let good = key.withUnsafeBytes { h.store.delta($0, hash: hash, incr: true, delta: 5, casUnique: 1) }
        #expect(!good.casMismatch && good.result == .ok(value: 15, classId: 1))
        #expect(good.cas == 2 && h.get("n")?.cas == 2)
    }
}
