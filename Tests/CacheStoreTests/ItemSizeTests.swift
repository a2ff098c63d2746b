// Item size (memcached ntotal), class choice and the -I boundary.
import Testing
import CacheStore

@Suite struct ItemSizeTests {
    @Test func ntotalAndClassChoice() {
        #expect(CacheStore.itemTotalSize(keyLength: 10, valueLength: 100, casEnabled: true) == 169)
        #expect(CacheStore.itemTotalSize(keyLength: 10, valueLength: 100, casEnabled: false) == 161)
        let h = Harness()
        let r = h.storeWithClass("0123456789", [UInt8](repeating: 7, count: 100))
        #expect(r.result == .stored)
        #expect(r.classId == 4)   // 169 → 192-byte chunks, as memcached
        let f = h.get("0123456789")
        #expect(f?.totalSize == 169)
        #expect(f?.classId == 4)
        // Exactly a chunk: ntotal 96 stays in class 1; 97 goes to class 2.
        #expect(h.storeWithClass("k", [UInt8](repeating: 1, count: 96 - 60)).classId == 1)
        #expect(h.storeWithClass("k", [UInt8](repeating: 1, count: 97 - 60)).classId == 2)
        let s = h.stats()
        #expect(s.currItems == 2)
        #expect(s.bytes == 169 + 97)
    }

    @Test func itemSizeMaxBoundary() {
        let h = Harness { $0.itemSizeMax = 1 << 20 }
        let ok = [UInt8](repeating: 65, count: 1_048_516)
        #expect(h.set("k", ok) == .stored)
        let same = h.get("k")?.value == ok
        #expect(same)
        #expect(h.get("k")?.totalSize == 1 << 20)
        #expect(h.set("k", [UInt8](repeating: 66, count: 1_048_517)) == .tooLarge)
        // A failed set drops the old value (memcached: no stale data after a failed SET).
        #expect(h.lookup("k").result == .miss)
        #expect(h.stats().currItems == 0)
    }

    /// memcached counts 4 bytes for non-zero client flags (checked against memcached 1.6.18: `set a 0 0 36`
    /// lands in class 1, `set b 5 0 36` in class 2, `bytes` 196; with flags 1 the -I limit is 4 bytes lower).
    @Test func nonZeroFlagsCountFourBytes() {
        let h = Harness()
        #expect(CacheStore.itemTotalSize(keyLength: 1, valueLength: 36, flags: 5, casEnabled: true) == 100)
        #expect(h.storeWithClass("a", [UInt8](repeating: 120, count: 36)).classId == 1)
        #expect(h.storeWithClass("b", [UInt8](repeating: 120, count: 36), flags: 5).classId == 2)
        #expect(h.stats().bytes == 196)
        #expect(h.get("b")?.totalSize == 100)
        #expect(h.set("k", [UInt8](repeating: 97, count: 1_048_516), flags: 1) == .tooLarge)
        #expect(h.set("j", [UInt8](repeating: 97, count: 1_048_512), flags: 1) == .stored)
        #expect(h.set("j", [UInt8](repeating: 97, count: 1_048_513), flags: 1) == .tooLarge)
    }

    @Test func tooLargeWithoutUnlinkKeepsOldValue() {
        let h = Harness { $0.itemSizeMax = 2048 }
        #expect(h.set("k", "old") == .stored)
        #expect(h.set("k", [UInt8](repeating: 1, count: 4096), mode: .append, unlinkOnFailure: false) == .tooLarge)
        #expect(h.value("k") == "old")
        #expect(h.set("k", [UInt8](repeating: 1, count: 4096), mode: .replace) == .tooLarge)
        #expect(h.lookup("k").result == .miss)
    }

    @Test func noCasShrinksItems() {
        let h = Harness { $0.casEnabled = false }
        #expect(h.set("a", "1") == .stored)
        #expect(h.get("a")?.cas == 0)
        #expect(h.get("a")?.totalSize == 48 + 1 + 1 + 1 + 2)
    }
}
