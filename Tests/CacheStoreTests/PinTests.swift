// Pinned values (ItemPins.swift): a value a connection sends from slab memory must stay intact and
// allocated through delete, replace, incr, expiry and eviction until it is unpinned, and then be freed.
import Testing
@testable import CacheStore

extension Harness {
    /// Pins the whole value of `key` (nil on a miss).
    func pin(_ key: String) -> PinnedValue? {
        var k = key
        var p: PinnedValue? = nil
        _ = k.withUTF8 { kp in
            store.get(UnsafeRawBufferPointer(kp), hash: hash(key), touchExptime: nil) { v in
                p = v.pin(0..<v.valueLength, in: store)
            }
        }
        return p
    }
}

/// The bytes a pinned value holds right now, read the way a connection sends them.
func pinnedBytes(_ p: PinnedValue) -> [UInt8] {
    var out: [UInt8] = []
    var offset = p.range.lowerBound
    while offset < p.range.upperBound {
        let run = p.run(at: offset)
        #expect(run.count > 0)
        out.append(contentsOf: run)
        offset += run.count
    }
    return out
}

/// Compares without printing a megabyte when it fails.
func holds(_ p: PinnedValue, _ expected: [UInt8]) -> Bool { pinnedBytes(p) == expected }

@Suite struct PinTests {
    @Test func deletedValueStaysIntactUntilUnpinned() throws {
        let h = Harness()
        let original = patternBytes(100_000, seed: 7)
        h.set("big", original)
        let p = try #require(h.pin("big"))
        let cls = try #require(h.stats().classes.first { $0.number == 1 })
        #expect(h.delete("big") == .deleted(classId: cls.id))
        // Unlinked and uncounted, but its chunk is still in use and nobody else gets it.
        var s = h.stats()
        #expect(s.currItems == 0 && s.classes.first { $0.id == cls.id }?.usedChunks == 1)
        for i in 0..<20 { h.set("other\(i)", patternBytes(100_000, seed: UInt32(i + 100))) }
        #expect(holds(p, original))
        #expect(h.store.pinnedItemCount == 1)
        h.store.unpin(p)
        #expect(h.store.pinnedItemCount == 0)
        s = h.stats()
        #expect(s.classes.first { $0.id == cls.id }?.usedChunks == 20)
    }

    @Test func replacedValueStaysIntactAndTheNewOneIsServed() throws {
        let h = Harness()
        let original = patternBytes(80_000, seed: 1)
        h.set("k", original)
        let p = try #require(h.pin("k"))
        h.set("k", patternBytes(80_000, seed: 2))
        let served = h.get("k")?.value == patternBytes(80_000, seed: 2)
        #expect(served)
        #expect(holds(p, original))
        h.store.unpin(p)
        #expect(h.stats().classes.reduce(0) { $0 + $1.usedChunks } == 1)
    }

    @Test func incrDoesNotRewriteAPinnedValueInPlace() throws {
        let h = Harness()
        let original = Array("41".utf8) + [UInt8](repeating: 32, count: 70_000)
        h.set("n", original)
        let p = try #require(h.pin("n"))
        #expect(h.delta("n", incr: true, 1) == .ok(value: 42, classId: h.get("n")!.classId))
        #expect(holds(p, original))
        #expect(h.get("n")?.string == "42")
        h.store.unpin(p)
        // Unpinned, the next incr rewrites in place again (space padded, memcached's behaviour).
        h.set("m", original)
        #expect(h.delta("m", incr: true, 1) == .ok(value: 42, classId: h.get("m")!.classId))
        #expect(h.get("m")?.value.count == original.count)
    }

    @Test func evictionSkipsPinnedItems() throws {
        let h = Harness { $0.memoryLimit = 8 << 20; $0.lruSegmented = false }   // one LRU: flat mode
        let value = patternBytes(102_400, seed: 3)
        for i in 0..<80 { h.set("key\(i)", value) }
        let p = try #require(h.pin("key0"))           // the LRU tail
        for i in 80..<200 { #expect(h.set("key\(i)", value) == .stored) }
        let kept = h.get("key0")?.value == value         // still linked: skipped, not evicted
        #expect(kept)
        #expect(h.stats().evictions == 120)
        h.store.unpin(p)
        #expect(h.set("key200", value) == .stored)
        #expect(h.lookup("key0").result == .miss)       // an ordinary tail item again
    }

    @Test func expiredPinnedItemIsFreedOnUnpin() throws {
        let h = Harness()
        h.set("e", patternBytes(70_000), exptime: 5)
        let p = try #require(h.pin("e"))
        h.advance(6)
        #expect(h.lookup("e").result == .expired)        // unlinked by the lookup, memory kept
        #expect(holds(p, patternBytes(70_000)))
        #expect(h.stats().classes.reduce(0) { $0 + $1.usedChunks } == 1)
        h.store.unpin(p)
        #expect(h.stats().classes.reduce(0) { $0 + $1.usedChunks } == 0)
    }

    @Test func chunkedValueRunsAndPartialRanges() throws {
        let h = Harness()
        let original = patternBytes(1_000_000, seed: 9)
        h.set("c", original)
        let before = h.stats().classes.reduce(0) { $0 + $1.usedChunks }
        #expect(before == 3)                             // header + two value chunks
        var k = "c"
        var p: PinnedValue? = nil
        _ = k.withUTF8 { kp in
            h.store.get(UnsafeRawBufferPointer(kp), hash: h.hash("c"), touchExptime: nil) { v in
                p = v.pin(1000..<999_000, in: h.store)
            }
        }
        let pinned = try #require(p)
        #expect(holds(pinned, Array(original[1000..<999_000])))
        // A run never crosses a chunk: the first one ends where the first value chunk does.
        #expect(pinned.run(at: 1000).count < 999_000 - 1000)
        #expect(h.delete("c") == .deleted(classId: h.store.classId(forTotalSize: 2 << 20)))
        #expect(h.stats().classes.reduce(0) { $0 + $1.usedChunks } == 3)
        #expect(holds(pinned, Array(original[1000..<999_000])))
        h.store.unpin(pinned)
        #expect(h.stats().classes.reduce(0) { $0 + $1.usedChunks } == 0)
    }

    @Test func twoReferencesFreeOnTheLastUnpin() throws {
        let h = Harness()
        h.set("t", patternBytes(90_000))
        let a = try #require(h.pin("t")), b = try #require(h.pin("t"))
        #expect(h.store.pinnedItemCount == 1)
        _ = h.delete("t")
        h.store.unpin(a)
        #expect(h.stats().classes.reduce(0) { $0 + $1.usedChunks } == 1)
        #expect(holds(b, patternBytes(90_000)))
        h.store.unpin(b)
        #expect(h.stats().classes.reduce(0) { $0 + $1.usedChunks } == 0)
        #expect(h.store.pinnedItemCount == 0)
    }
}
