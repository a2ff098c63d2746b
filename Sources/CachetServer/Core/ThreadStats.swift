// Per-worker counters (memcached's struct thread_stats + slab_stats), summed when `stats` is read.
// Each worker bumps only its own block; the mutex makes the cross-thread read in `stats` safe and is
// uncontended on the hot path (memcached does the same with c->thread->stats.mutex).
import Glibc

enum ThreadCounter: Int, CaseIterable {
    case getCmds, getMisses, getExpired, getFlushed, touchCmds, touchMisses, deleteMisses
    case incrMisses, decrMisses, casMisses, metaCmds, bytesRead, bytesWritten, flushCmds
    case connYields, idleKicks, storeTooLarge, storeNoMemory, authCmds, authErrors
}

enum SlabCounter: Int, CaseIterable {
    case setCmds, getHits, touchHits, deleteHits, casHits, casBadval, incrHits, decrHits
}

/// Invariant: `values` holds `ThreadStats.width` UInt64s and is only read or written with `mutex` held.
final class ThreadStats: @unchecked Sendable {
    static let maxClasses = 64
    static let globalCount = ThreadCounter.allCases.count
    static let slabCount = SlabCounter.allCases.count
    static let width = globalCount + maxClasses * slabCount

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let values: UnsafeMutablePointer<UInt64>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        values = .allocate(capacity: ThreadStats.width)
        values.initialize(repeating: 0, count: ThreadStats.width)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        values.deallocate()
    }

    @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }

    /// Caller holds the lock (see `with`).
    @inline(__always) func add(_ c: ThreadCounter, _ n: UInt64 = 1) { values[c.rawValue] &+= n }
    @inline(__always) func addSlab(_ classId: Int, _ c: SlabCounter, _ n: UInt64 = 1) {
        guard classId > 0 && classId < ThreadStats.maxClasses else { return }
        values[ThreadStats.globalCount + classId * ThreadStats.slabCount + c.rawValue] &+= n
    }

    @inline(__always) func with(_ body: (ThreadStats) -> Void) { lock(); body(self); unlock() }
    @inline(__always) func bump(_ c: ThreadCounter, _ n: UInt64 = 1) { lock(); values[c.rawValue] &+= n; unlock() }

    /// Adds this worker's counters into `into` (length `width`).
    func accumulate(into: inout [UInt64]) {
        lock()
        for i in 0..<ThreadStats.width { into[i] &+= values[i] }
        unlock()
    }

    func reset() {
        lock()
        values.update(repeating: 0, count: ThreadStats.width)
        unlock()
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
