// Owns the raw mutexes of the store: arrays of them, one per 64-byte line (no false sharing).
// Used for the hash-table segments (which double as the striped item locks) and the slab classes.
// The mutex itself is CStoreLock's (glibc's default mutex algorithm without its bookkeeping; a pthread
// mutex under ThreadSanitizer).
import CStoreLock
import Glibc

/// `count` mutexes in one aligned allocation. A plain struct of a pointer, so the hot path pays
/// no reference counting for it.
/// Invariant: created with `allocate`, destroyed exactly once with `destroy()` by its owner's deinit, when no
/// thread can use it any more; in between the memory never moves, so `mutex(i)` is a stable address.
struct LockArray: @unchecked Sendable {
    private static var stride: Int { 64 }
    private let base: UnsafeMutableRawPointer
    let count: Int
    /// A ThreadSanitizer build: every operation goes through CStoreLock's pthread functions. Otherwise the
    /// uncontended paths are inlined (a compare-and-swap or an exchange) and only a wait or a wake is a call.
    private let pthreadMode: Bool

    static func allocate(count: Int) -> LockArray {
        precondition(Int(cachet_lock_size()) <= LockArray.stride)
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, LockArray.stride, LockArray.stride * max(1, count)) == 0, let raw else {
            fatalError("CacheStore: cannot allocate \(count) locks")
        }
        let locks = LockArray(base: raw, count: count)
        for i in 0..<count { cachet_lock_init(locks.mutex(i)) }
        return locks
    }

    private init(base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
        pthreadMode = cachet_lock_uses_pthread()
    }

    func destroy() {
        for i in 0..<count { cachet_lock_destroy(mutex(i)) }
        free(base)
    }

    @inline(__always)
    private func mutex(_ i: Int) -> UnsafeMutableRawPointer {
        base + i &* LockArray.stride
    }

    @inline(__always) func lock(_ i: Int) {
        let m = mutex(i)
        if pthreadMode { cachet_lock(m) } else if !cachet_lock_word_try(m) { cachet_lock_word_wait(m) }
    }
    @inline(__always) func unlock(_ i: Int) {
        let m = mutex(i)
        if pthreadMode { cachet_unlock(m) } else if cachet_lock_word_release(m) { cachet_lock_word_wake(m) }
    }
    /// Fails (false) also when the calling thread already holds lock `i` (non-recursive mutexes).
    @inline(__always) func tryLock(_ i: Int) -> Bool {
        let m = mutex(i)
        return pthreadMode ? cachet_trylock(m) : cachet_lock_word_try(m)
    }
}
