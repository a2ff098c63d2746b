// `-o lru_policy=s3fifo`: unfetched HOT leavers go to COLD's tail (evicted before items someone fetched), a
// key evicted unfetched and set again starts at COLD's head (the ghost table), and nothing changes for the
// default policy. Memory is 8 pages of 10 chunks of ~100 KB, so every eviction is visible.
import CacheStore
import Testing

@Suite struct S3FIFOPolicyTests {
    static let big = patternBytes(102_400, seed: 4)

    private func harness(_ policy: LRUPolicyKind) -> Harness {
        Harness { $0.memoryLimit = 8 << 20; $0.lruPolicyKind = policy }
    }

    private func cls(_ h: Harness) -> ClassStats { h.stats().classes.first { $0.number > 0 }! }

    private func present(_ h: Harness, _ keys: Range<Int>) -> [Int] {
        keys.filter { h.lookup("key\($0)").result != .miss }
    }

    /// key0 fetched once, then the juggle moves HOT's overflow (key0…key64: HOT keeps 20 % of the bytes) to
    /// COLD. segmented: key0 is COLD's oldest and goes first; s3fifo: the 64 unfetched leavers go first and
    /// key0 stays.
    @Test(arguments: [LRUPolicyKind.segmented, .s3fifo]) func fetchedHotLeaverOutlivesUnfetchedOnes(_ p: LRUPolicyKind) {
        let h = harness(p)
        for i in 0..<80 { h.set("key\(i)", Self.big) }
        #expect(h.get("key0") != nil)
        _ = h.store.juggle(classId: cls(h).id)
        var c = cls(h)
        #expect(c.numberHot == 15 && c.numberCold == 65 && c.movesToCold == 65)
        for i in 0..<64 { #expect(h.set("new\(i)", Self.big) == .stored) }
        c = cls(h)
        #expect(c.evicted == 64 && c.evictedUnfetched == (p == .s3fifo ? 64 : 63))
        let left = present(h, 0..<65)
        if p == .s3fifo { #expect(left == [0]) } else { #expect(left == [64]) }
    }

    /// A key evicted without ever being fetched and set again is remembered: s3fifo links it at COLD's head
    /// instead of HOT's (segmented: HOT). Each SET here evicts one item, so the class keeps 80.
    @Test(arguments: [LRUPolicyKind.segmented, .s3fifo]) func keyEvictedUnfetchedComesBackInCold(_ p: LRUPolicyKind) {
        let h = harness(p)
        for i in 0..<90 { h.set("key\(i)", Self.big) }   // no juggle: COLD is empty, HOT's tail is evicted
        var c = cls(h)
        #expect(c.evicted == 10 && c.numberHot == 80 && c.numberCold == 0)
        #expect(present(h, 0..<10).isEmpty)
        h.set("key9", Self.big)
        c = cls(h)
        #expect(c.evicted == 11 && c.number == 80)
        if p == .s3fifo {
            #expect(c.numberHot == 79 && c.numberCold == 1 && c.numberWarm == 0)
        } else {
            #expect(c.numberHot == 80 && c.numberCold == 0)
        }
        #expect(h.get("key9") != nil)
    }

    /// The ghost remembers a key once: set again after its admission it goes to HOT as any new key (a stale
    /// match must not send every later SET of it past HOT). Keys that were fetched before their eviction, and
    /// keys never evicted, are not in it.
    @Test func ghostAdmitsOnceAndOnlyUnfetchedEvictions() {
        let h = harness(.s3fifo)
        for i in 0..<80 { h.set("key\(i)", Self.big) }
        #expect(h.get("key0") != nil)                     // key0: fetched, HOT's tail
        for i in 80..<82 { h.set("key\(i)", Self.big) }   // evicts key0 (fetched) and key1 (unfetched)
        var c = cls(h)
        #expect(c.evicted == 2 && c.evictedUnfetched == 1 && present(h, 0..<2).isEmpty)
        h.set("key0", Self.big)                           // fetched when evicted: not remembered → HOT
        c = cls(h)
        #expect(c.numberCold == 0)
        h.set("key1", Self.big)                           // remembered → COLD
        c = cls(h)
        #expect(c.numberCold == 1)
        h.store.delete(key: "key1", in: h)
        h.set("key1", Self.big)                           // the ghost gave it up at its admission → HOT
        c = cls(h)
        #expect(c.numberCold == 0 && c.numberHot == 80)
        h.set("fresh", Self.big)                          // never seen → HOT
        #expect(cls(h).numberCold == 0)
    }

    /// The ghost is sized by the class (half the items it can hold) and grows with it: keys remembered while
    /// the class had 2 pages are still recognised after it grew to 8 and the table with it.
    @Test func ghostGrowsWithTheClassAndKeepsWhatItRemembered() {
        let h = Harness { $0.memoryLimit = 2 << 20; $0.lruPolicyKind = .s3fifo }
        let small = patternBytes(900, seed: 2)
        var n = 0
        func setNext() { h.set("s\(n)", small); n += 1 }
        func setUntilEvictions(_ target: Int) { while h.stats().evictions < target { setNext() } }
        setUntilEvictions(40)                             // 2 pages full, s0…s39 evicted unfetched
        let early = (0..<40).filter { h.lookup("s\($0)").result == .miss }
        #expect(early.count == 40)
        h.store.setMemoryLimit(8 << 20)                   // `cache_memlimit 8`: the class grows to 8 pages,
        setUntilEvictions(340)                            // and its evictions grow the table (4 × the slots)
        #expect(cls(h).totalPages == 8)
        let recent = Array((0..<n).filter { h.lookup("s\($0)").result == .miss }.suffix(200))
        #expect(recent.count == 200 && recent.first! > 40)
        // Room for what follows, so no eviction changes COLD while the returning keys are counted.
        h.store.setMemoryLimit(16 << 20)
        var cold = cls(h).numberCold
        for k in early { h.set("s\(k)", small) }
        // A few early keys lost their slot to a later eviction; most were carried into the bigger table.
        #expect(cls(h).numberCold - cold >= 30)
        cold = cls(h).numberCold
        for k in recent { h.set("s\(k)", small) }
        #expect(cls(h).numberCold - cold >= 170)
        #expect(h.stats().evictions == 340)
    }
}

private extension CacheStore {
    func delete(key: String, in h: Harness) {
        var k = key
        _ = k.withUTF8 { delete(UnsafeRawBufferPointer($0), hash: h.hash(key)) }
    }
}
