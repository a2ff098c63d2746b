// Owns memcached's LRU maintainer thread (items.c lru_maintainer_thread): a background loop that juggles
// each slab class's LRU segments (CacheStore.juggle: HOT/WARM overflow to COLD, COLD rescues, TEMP
// reclaims) so that allocations rarely have to. As memcached, each class has its own back-off: a class
// with nothing to do is looked at again after 1 ms, growing by an eighth each idle pass up to 1 s; a class
// that had work halves its wait, but waits at least 5 ms after a juggle with little work (Cachet: fewer
// passes for the same moves under a light steady read load, see lightWorkRounds). The thread sleeps for the
// shortest wait due, on an eventfd so `stop()` wakes it at once — and at least 1 ms: memcached skips the
// sleep while a class keeps having work (under a steady read load, re-activated WARM items always give it
// some), which makes its maintainer spin on a core; 1 ms between passes still lets each pass move up to
// 500 × 5 items per class. `lru_maintainer_juggles` counts the passes. After each pass, as in memcached,
// come the once-a-second duties: the autoexpire crawler check and slab_automove=1's decision (which asks
// for its next turn after 1 ms while it is giving pages back to the global pool) — no thread of their own.
import CacheStore
import CLibevent
import Glibc
import Synchronization

private let maintainerMain: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { arg in
    let m = Unmanaged<LRUMaintainer>.fromOpaque(arg!).takeRetainedValue()
    m.run()
    m.stopped.store(true, ordering: .releasing)
    return nil
}

/// Invariant: `run` is the only code on the maintainer thread and the only user of `dueAt`/`backoff`;
/// other threads use `juggles`, `stopped` and `stop()` (an atomic flag plus an eventfd write).
final class LRUMaintainer: @unchecked Sendable {
    static let minSleepMicros = 1_000
    static let maxSleepMicros = 1_000_000
    /// A juggle with fewer rounds of work than this waits `lightWorkWaitMicros` before the next one.
    static let lightWorkRounds = 32
    static let lightWorkWaitMicros = 5_000

    private let store: CacheStore
    /// memcached's maintainer also schedules the autoexpire crawls and makes slab_automove=1's decisions
    /// (nil without `slab_reassign`).
    private let crawls: AutoexpireCrawls
    private let automove: SlabAutomoveRunner?
    private let wakeFd: Int32
    private let stopFlag = Atomic<Bool>(false)
    let stopped = Atomic<Bool>(false)
    /// memcached's `lru_maintainer_juggles` stat: passes of the loop.
    let juggles = Atomic<UInt64>(0)
    /// Per class: when its next juggle is due and its current back-off, in microseconds of the loop's own
    /// clock (the sum of the sleeps it asked for, so a class's wait counts down by each sleep, as memcached's
    /// does). A deadline rather than a countdown: a pass over the ~60 classes then only compares each with
    /// the clock, without rewriting it. Raw buffers owned by this object (allocated in init, freed in
    /// deinit): an Array here cost a uniqueness check per class per pass.
    private let dueAt: UnsafeMutableBufferPointer<Int>
    private let backoff: UnsafeMutableBufferPointer<Int>

    init(store: CacheStore, crawler: CrawlerState, automoveWindow: Int?) {
        self.store = store
        crawls = AutoexpireCrawls(store: store, crawler: crawler)
        automove = automoveWindow.map { SlabAutomoveRunner(store: store, windowSize: $0) }
        wakeFd = eventfd(0, Int32(EFD_NONBLOCK))
        dueAt = .allocate(capacity: store.largestSlabClass + 1)
        dueAt.initialize(repeating: 0)
        backoff = .allocate(capacity: store.largestSlabClass + 1)
        backoff.initialize(repeating: 0)
    }

    deinit {
        dueAt.deallocate()
        backoff.deallocate()
    }

    func start() {
        var thread = pthread_t()
        pthread_create(&thread, nil, maintainerMain, Unmanaged.passRetained(self).toOpaque())
        pthread_detach(thread)
    }

    /// Any thread: the loop ends at its next wake-up, which this causes at once.
    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
    }

    fileprivate func run() {
        var toSleep = LRUMaintainer.minSleepMicros
        var elapsed = 0
        while !stopFlag.load(ordering: .relaxed) {
            toSleep = max(toSleep, LRUMaintainer.minSleepMicros)
            var p = pollfd(fd: wakeFd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32((toSleep + 999) / 1000))
            if stopFlag.load(ordering: .relaxed) { break }
            elapsed += toSleep
            juggles.add(1, ordering: .relaxed)
            var soonest = Int.max
            for id in 1..<dueAt.count {
                if dueAt[id] <= elapsed {
                    let did = store.juggle(classId: id)
                    if did == 0 {
                        backoff[id] = backoff[id] != 0 ? backoff[id] + backoff[id] / 8 : LRUMaintainer.minSleepMicros
                        backoff[id] = min(backoff[id], LRUMaintainer.maxSleepMicros)
                    } else if did < LRUMaintainer.lightWorkRounds {
                        // A trickle of work (a read load re-activating a few items per millisecond): wait a few
                        // milliseconds so each juggle moves more items for its fixed cost (a pass over the
                        // classes, COLD's age, the last look at each tail). Overflow waits that much longer,
                        // which requests never notice: allocation moves HOT's tail itself when it must.
                        backoff[id] = max(backoff[id] / 2, LRUMaintainer.lightWorkWaitMicros)
                    } else if backoff[id] > 0 {
                        backoff[id] /= 2
                        if backoff[id] < LRUMaintainer.minSleepMicros { backoff[id] = 0 }
                    }
                    dueAt[id] = elapsed + backoff[id]
                }
                soonest = min(soonest, dueAt[id])
            }
            toSleep = min(soonest - elapsed, LRUMaintainer.maxSleepMicros)
            crawls.check()
            if let wait = automove?.check() { toSleep = min(toSleep, wait) }
        }
    }
}
