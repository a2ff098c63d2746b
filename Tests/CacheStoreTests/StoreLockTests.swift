// The store's mutex (CStoreLock): mutual exclusion under contention (which exercises the futex sleep and
// wake paths), through the out-of-line functions and through the inline fast paths LockArray uses, and a
// try that fails while the lock is held — by another thread or by the caller — and succeeds once it is
// released.
import CStoreLock
import Glibc
import Testing

/// One lock and a plain counter it guards, in a 64-byte slot as LockArray lays them out.
final class GuardedCounter: @unchecked Sendable {   // `count` is touched only under `lock`
    let lock: UnsafeMutableRawPointer
    var count = 0
    init() {
        lock = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        cachet_lock_init(lock)
    }
    deinit {
        cachet_lock_destroy(lock)
        lock.deallocate()
    }
}

@Suite struct StoreLockTests {
    @Test func excludesUnderContention() {
        let g = GuardedCounter()
        let threads = 4, rounds = 200_000
        runThreads(threads) { _ in
            for i in 0..<rounds {
                cachet_lock(g.lock)
                let v = g.count
                // A holder that lingers now and then, so the others find the lock held and sleep on it.
                if i % 1024 == 0 { sched_yield() }
                g.count = v + 1
                cachet_unlock(g.lock)
            }
        }
        #expect(g.count == threads * rounds)
    }

    /// LockArray's way: the inline try, the out-of-line wait when it fails, the inline release and a wake
    /// when it reports a sleeper (pthread calls instead in a ThreadSanitizer build, as LockArray does).
    @Test func inlinePathsExcludeUnderContention() {
        let g = GuardedCounter()
        let pthreadMode = cachet_lock_uses_pthread()
        let threads = 4, rounds = 200_000
        runThreads(threads) { _ in
            for i in 0..<rounds {
                if pthreadMode { cachet_lock(g.lock) } else if !cachet_lock_word_try(g.lock) { cachet_lock_word_wait(g.lock) }
                let v = g.count
                if i % 1024 == 0 { sched_yield() }
                g.count = v + 1
                if pthreadMode { cachet_unlock(g.lock) } else if cachet_lock_word_release(g.lock) { cachet_lock_word_wake(g.lock) }
            }
        }
        #expect(g.count == threads * rounds)
    }

    @Test func tryFailsWhileHeldAndSucceedsAfterRelease() {
        let g = GuardedCounter()
        #expect(cachet_trylock(g.lock))
        #expect(!cachet_trylock(g.lock))   // not recursive: the holder's own try fails
        let otherGotIt = SharedCounter()
        runThreads(1) { _ in
            if cachet_trylock(g.lock) { otherGotIt.value.store(1, ordering: .relaxed); cachet_unlock(g.lock) }
        }
        #expect(otherGotIt.value.load(ordering: .relaxed) == 0)
        cachet_unlock(g.lock)
        runThreads(1) { _ in
            if cachet_trylock(g.lock) { otherGotIt.value.store(1, ordering: .relaxed); cachet_unlock(g.lock) }
        }
        #expect(otherGotIt.value.load(ordering: .relaxed) == 1)
    }
}
