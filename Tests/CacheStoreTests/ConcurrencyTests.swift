// Many threads on one store: mixed operations under memory pressure, then structural invariants.
import Testing
import Glibc
import CacheStore
import Synchronization

final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// Runs `body(threadIndex)` on `count` real pthreads and waits for them.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job: @unchecked Sendable {   // handed to exactly one thread, read-only there
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }
    var threads: [pthread_t] = []
    for i in 0..<count {
        var t = pthread_t()
        let ctx = Unmanaged.passRetained(Job(body, i)).toOpaque()
        let rc = pthread_create(&t, nil, { arg in
            let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
            job.body(job.index)
            return nil
        }, ctx)
        precondition(rc == 0)
        threads.append(t)
    }
    for t in threads { pthread_join(t, nil) }
}

@Suite struct ConcurrencyTests {
    /// Values are derived from the key and a version, so any torn or misplaced write is detectable.
    /// Byte i of (key, version) is (key * 31 + version * 7 + i) mod 256: a window of one 0...255 ramp.
    static let ramp: [UInt8] = (0..<(600_000 + 256)).map { UInt8(truncatingIfNeeded: $0) }

    static func valueFor(_ key: Int, _ version: Int, length: Int) -> [UInt8] {
        let off = (key &* 31 &+ version &* 7) & 255
        return Array(ramp[off..<(off + length)])
    }

    static func isIntact(_ value: [UInt8], key: Int, version: Int) -> Bool {
        let off = (key &* 31 &+ version &* 7) & 255
        return value.withUnsafeBytes { v in
            ramp.withUnsafeBytes { r in v.count == 0 || memcmp(v.baseAddress!, r.baseAddress! + off, v.count) == 0 }
        }
    }

    @Test func mixedOperationsKeepInvariants() {
        let h = Harness { $0.memoryLimit = 8 << 20; $0.hashPowerInitial = 10 }
        let keys = 3000
        let sizes = [10, 100, 1000, 5000, 30_000, 600_000]
        let corrupt = SharedCounter()
        runThreads(4) { t in
            var rng = UInt64(t + 1) &* 0x9E37_79B9_7F4A_7C15
            func next() -> Int { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return Int(rng % 1_000_000) }
            for _ in 0..<50_000 {
                let k = next() % keys
                let key = "key\(k)"
                switch next() % 10 {
                case 0...3:
                    let version = next() % 100
                    let size = sizes[next() % (next() % 50 == 0 ? sizes.count : sizes.count - 1)]
                    h.set(key, ConcurrencyTests.valueFor(k, version, length: size), flags: UInt32(version))
                case 4...6:
                    if let f = h.get(key) {
                        let v = Int(f.flags)
                        if v < 100, !ConcurrencyTests.isIntact(f.value, key: k, version: v) {
                            corrupt.value.add(1, ordering: .relaxed)
                        }
                    }
                case 7:
                    _ = h.delete(key)
                    if next() % 5000 == 0 { _ = h.store.statsSnapshot() }
                    if next() % 20000 == 0 { h.store.resetStats() }
                case 8: _ = h.touch(key, Int64(next() % 100))
                default:
                    h.set("ctr\(k % 50)", "0", mode: .add, flags: 1000)
                    _ = h.delta("ctr\(k % 50)", incr: true, 1)
                }
            }
        }
        #expect(corrupt.value.load(ordering: .relaxed) == 0)
        let s = h.stats()
        var live = 0, bytes = 0
        for k in 0..<keys {
            if let f = h.get("key\(k)") {
                live += 1; bytes += f.totalSize
                let intact = ConcurrencyTests.isIntact(f.value, key: k, version: Int(f.flags))
                #expect(intact, "key\(k)")
            }
        }
        var counters = 0
        for c in 0..<50 {
            if let f = h.get("ctr\(c)") {
                counters += 1; bytes += f.totalSize
                #expect(UInt64(f.string.split(separator: " ").first ?? "x") != nil)
            }
        }
        #expect(s.currItems == live + counters)
        #expect(s.bytes == bytes)
        #expect(s.totalMalloced <= 8 << 20 + s.classes.count << 20)
        for c in s.classes {
            #expect(c.usedChunks + c.freeChunks == c.totalPages * c.perSlab)
            #expect(c.usedChunks >= c.number)
        }
        #expect(s.evictions > 0)
    }

    /// Segments double while other threads insert and read: nothing is lost, every key is found.
    @Test func growthUnderConcurrentInsertsAndGets() {
        let h = Harness { $0.hashPowerInitial = 8; $0.memoryLimit = 256 << 20 }
        let perThread = 25_000
        let misses = SharedCounter()
        runThreads(4) { t in
            for i in 0..<perThread {
                let key = "t\(t)-\(i)"
                h.set(key, key)
                if i % 7 == 0, h.value("t\(t)-\(i / 2)") != "t\(t)-\(i / 2)" { misses.value.add(1, ordering: .relaxed) }
            }
        }
        #expect(misses.value.load(ordering: .relaxed) == 0)
        var found = 0
        for t in 0..<4 { for i in 0..<perThread where h.value("t\(t)-\(i)") == "t\(t)-\(i)" { found += 1 } }
        #expect(found == 4 * perThread)
        let s = h.stats()
        #expect(s.currItems == 4 * perThread)
        #expect(s.hashPowerLevel >= 16)
        #expect(s.evictions == 0)
    }
}
