// A value behind a pthread mutex: what the server uses wherever threads share a small piece of state
// (worker mailboxes, the watch log, the connection registry, the TLS context, item pins, …).
//
// Why not `Synchronization.Mutex`: on Linux it is a futex the ThreadSanitizer cannot see, so `make tsan`
// reported every access it guards as a data race, hiding real ones. A pthread mutex is intercepted by the
// sanitizers, and costs the same uncontended (glibc's fast path is one atomic instruction).
import Glibc

/// Invariant: `value` is read or written only inside `withLock`, while `mutex` is held; `mutex` is
/// initialised in `init` and destroyed in `deinit`, and never moves (it lives in its own allocation).
public final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    @inline(__always)
    public func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
