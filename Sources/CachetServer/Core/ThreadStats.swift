// Per-worker counters (memcached's struct thread_stats + slab_stats), summed when `stats` is read.
// Each counter is an atomic written only by its own worker (relaxed add: one instruction, no lock on
// the hot path, unlike memcached's per-thread mutex) and read by whichever worker runs `stats`.
import Synchronization

enum ThreadCounter: Int, CaseIterable {
    case getCmds, getMisses, getExpired, getFlushed, touchCmds, touchMisses, deleteMisses
    case incrMisses, decrMisses, casMisses, metaCmds, bytesRead, bytesWritten, flushCmds
    case connYields, idleKicks, storeTooLarge, storeNoMemory, authCmds, authErrors, readBufOOM
}

enum SlabCounter: Int, CaseIterable {
    case setCmds, getHits, touchHits, deleteHits, casHits, casBadval, incrHits, decrHits
    /// memcached's lru_hits: get hits by the LRU segment the item was on (HOT, WARM, COLD, TEMP in order).
    case hitsToHot, hitsToWarm, hitsToCold, hitsToTemp

    /// The hits_to_* counter of LRU segment `segment` (0...3).
    @inline(__always) static func hits(segment: Int) -> SlabCounter {
        SlabCounter(rawValue: SlabCounter.hitsToHot.rawValue + (segment & 3))!
    }
}

/// Invariant: `values` holds `ThreadStats.width` initialised atomics for the object's lifetime;
/// every access goes through the atomics, so concurrent reads from `stats` are race-free.
final class ThreadStats: @unchecked Sendable {
    static let maxClasses = 64
    static let globalCount = ThreadCounter.allCases.count
    static let slabCount = SlabCounter.allCases.count
    static let width = globalCount + maxClasses * slabCount

    private let values: UnsafeMutablePointer<Atomic<UInt64>>

    init() {
        values = .allocate(capacity: ThreadStats.width)
        for i in 0..<ThreadStats.width { (values + i).initialize(to: Atomic(0)) }
    }

    deinit {
        values.deinitialize(count: ThreadStats.width)
        values.deallocate()
    }

    @inline(__always) private func bumpIndex(_ i: Int, _ n: UInt64) {
        values[i].add(n, ordering: .relaxed)
    }

    @inline(__always) func add(_ c: ThreadCounter, _ n: UInt64 = 1) { bumpIndex(c.rawValue, n) }
    @inline(__always) func addSlab(_ classId: Int, _ c: SlabCounter, _ n: UInt64 = 1) {
        guard classId > 0 && classId < ThreadStats.maxClasses else { return }
        bumpIndex(ThreadStats.globalCount + classId * ThreadStats.slabCount + c.rawValue, n)
    }

    /// Adds this worker's counters into `into` (length `width`).
    func accumulate(into: inout [UInt64]) {
        for i in 0..<ThreadStats.width { into[i] &+= values[i].load(ordering: .relaxed) }
    }

    func reset() {
        for i in 0..<ThreadStats.width { values[i].store(0, ordering: .relaxed) }
    }
}

/// A summed snapshot across workers.
struct StatsTotals {
    var v: [UInt64] = Array(repeating: 0, count: ThreadStats.width)
    subscript(_ c: ThreadCounter) -> UInt64 { v[c.rawValue] }
    func slab(_ classId: Int, _ c: SlabCounter) -> UInt64 {
        v[ThreadStats.globalCount + classId * ThreadStats.slabCount + c.rawValue]
    }
    func slabTotal(_ c: SlabCounter) -> UInt64 {
        var t: UInt64 = 0
        for id in 1..<ThreadStats.maxClasses { t &+= slab(id, c) }
        return t
    }
}
