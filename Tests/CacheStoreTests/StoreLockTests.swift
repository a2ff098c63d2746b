// The store's mutex (CStoreLock): mutual exclusion under contention (which exercises the futex sleep and
// wake paths), a try that fails while the lock is held — by another thread or by the caller — and succeeds
// once it is released.
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
