// incr/decr: memcached's parse (safe_strtoull), wrap, clamp, in-place rewrite with space padding.
import Testing
import CacheStore

@Suite struct DeltaTests {
    @Test func decrInPlacePadsWithSpaces() {
        let h = Harness()
        h.set("n", "100", flags: 5, exptime: 1000)
        let before = h.get("n")!
        #expect(h.delta("n", incr: false, 1) == .ok(value: 99, classId: 1))
        let after = h.get("n")!
        #expect(after.string == "99 ")
        #expect(after.cas > before.cas && after.flags == 5 && after.exptime == before.exptime)
        #expect(h.delta("n", incr: true, 1) == .ok(value: 100, classId: 1))
        #expect(h.value("n") == "100")
    }

    @Test func growingValueGetsANewItem() {
        let h = Harness()
        h.set("n", "5", flags: 3, exptime: 100)
        #expect(h.delta("n", incr: true, 10) == .ok(value: 15, classId: 1))
        let f = h.get("n")!
        #expect(f.string == "15" && f.flags == 3 && f.exptime == h.clock.currentTime + 100)
        #expect(h.stats().currItems == 1)
    }

    @Test func wrapAndClamp() {
        let h = Harness()
        h.set("max", "18446744073709551615")
        #expect(h.delta("max", incr: true, 2) == .ok(value: 1, classId: 1))
        #expect(h.value("max") == "1" + String(repeating: " ", count: 19))
        h.set("d", "5")
        #expect(h.delta("d", incr: false, 10) == .ok(value: 0, classId: 1))
        #expect(h.value("d") == "0")
    }

    @Test func parseCases() {
        let h = Harness()
        let ok: [(String, UInt64)] = [(" 1", 2), ("1 ", 2), ("+5", 6), ("-0", 1), ("\t7\t", 8), ("007", 8),
                                      ("18446744073709551614", 18446744073709551615)]
        for (v, want) in ok {
            h.set("k", v)
            #expect(h.delta("k", incr: true, 1) == .ok(value: want, classId: 1), "value \(v)")
        }
        for v in ["abc", "1a ", "1a", "-1", "", " ", "+", "-", "18446744073709551616", "1.5", "0x10"] {
            h.set("k", v)
            #expect(h.delta("k", incr: true, 1) == .nonNumeric, "value \(v)")
        }
        #expect(h.delta("missing", incr: true, 1) == .notFound)
        h.set("e", "1", exptime: 1)
        h.advance(1)
        #expect(h.delta("e", incr: true, 1) == .notFound)
    }

    @Test func parserMatchesStrtoull() {
        func p(_ s: String) -> UInt64? { Array(s.utf8).withUnsafeBytes { CacheStore.parseDeltaValue($0) } }
        #expect(p("42") == 42)
        #expect(p("  42  ") == 42)
        #expect(p("42x") == nil)
        #expect(p("-18446744073709551615") == 1)   // strtoull wraps; below 2^63 so memcached accepts it
        #expect(p("-9223372036854775808") == nil)
        #expect(p("99999999999999999999") == nil)
    }

    @Test func chunkedValuesAreNonNumeric() {
        let h = Harness()
        h.set("big", [UInt8](repeating: 49, count: 600_000))
        #expect(h.delta("big", incr: true, 1) == .nonNumeric)
    }
}
