// Owns the raw pthread mutexes of the store: arrays of them, one per 64-byte line (no false sharing).
// Used for the hash-table segments (which double as the striped item locks) and the slab classes.
import Glibc

/// `count` pthread mutexes in one aligned allocation.
/// Invariant: the memory is allocated and every mutex initialised in `init`, never moved, and destroyed and
/// freed only in `deinit`, so `mutex(i)` is a stable address for the owner's whole life.
final class LockArray: @unchecked Sendable {
    private static let stride = 64
    private let base: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        precondition(MemoryLayout<pthread_mutex_t>.size <= LockArray.stride)
        self.count = count
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, LockArray.stride, LockArray.stride * max(1, count)) == 0, let raw else {
            fatalError("CacheStore: cannot allocate \(count) locks")
        }
        base = raw
        for i in 0..<count { pthread_mutex_init(mutex(i), nil) }
    }

    deinit {
        for i in 0..<count { pthread_mutex_destroy(mutex(i)) }
        free(base)
    }

    @inline(__always)
    private func mutex(_ i: Int) -> UnsafeMutablePointer<pthread_mutex_t> {
        (base + i &* LockArray.stride).assumingMemoryBound(to: pthread_mutex_t.self)
    }

    @inline(__always) func lock(_ i: Int) { pthread_mutex_lock(mutex(i)) }
    @inline(__always) func unlock(_ i: Int) { pthread_mutex_unlock(mutex(i)) }
    /// Fails (false) also when the calling thread already holds lock `i` (default, non-recursive mutexes).
    @inline(__always) func tryLock(_ i: Int) -> Bool { pthread_mutex_trylock(mutex(i)) == 0 }
}
