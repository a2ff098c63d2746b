// Owns slab_automove=1's decision (memcached slab_automove.c): fed once a second with a sample of every
// class (pages, free chunks, evictions, tail age), it keeps a window of the last `windowSize` samples per
// class and says which page to move, if any:
// - a class with more than 2.5 pages' worth of free chunks and no eviction, out-of-memory or new page in the
//   whole window gives a page back to the global pool (destination 0);
// - otherwise, once the window has filled, the class whose tail is oldest on average over the window (with
//   more than 2 pages) gives a page to the class that is evicting in more than half of the window and has
//   the youngest average tail, when that youngest age is below `ratio` × the oldest and it evicted in the
//   latest sample.
// The type is pure (no locks, no clock); `SlabAutomoveRunner` feeds it from the LRU maintainer thread.

import Glibc

/// One class's numbers at one moment (memcached's item_stats_automove + slab_stats_automove).
public struct SlabAutomoveSample: Sendable, Equatable {
    public var evicted = 0, outOfMemory = 0
    /// Seconds since the LRU tail's last access (0 when the class holds nothing).
    public var age = 0
    public var totalPages = 0, freeChunks = 0, chunksPerPage = 0
    public init(evicted: Int = 0, outOfMemory: Int = 0, age: Int = 0, totalPages: Int = 0, freeChunks: Int = 0,
                chunksPerPage: Int = 0) {
        self.evicted = evicted; self.outOfMemory = outOfMemory; self.age = age
        self.totalPages = totalPages; self.freeChunks = freeChunks; self.chunksPerPage = chunksPerPage
    }
}

public struct SlabAutomove: Sendable {
    static let minPagesForSource = 2
    static let minPagesForReclaim = 2.5

    struct WindowEntry: Sendable { var age = 0, dirty = false, evicted = false }

    public let windowSize: Int
    public var ratio: Double
    let classCount: Int
    private var window: [WindowEntry]
    private var windowCur = 0
    private var before: [SlabAutomoveSample]

    /// `classCount`: highest class id + 1 (index 0, the global pool, is never sampled).
    public init(windowSize: Int, ratio: Double, classCount: Int) {
        self.windowSize = max(1, windowSize)
        self.ratio = ratio
        self.classCount = classCount
        window = Array(repeating: WindowEntry(), count: classCount * self.windowSize)
        before = Array(repeating: SlabAutomoveSample(), count: classCount)
    }

    /// One decision from this second's samples (`after[id]` for each class id, index 0 unused): a source and
    /// destination class (destination 0: the global pool), or nil.
    public mutating func run(_ after: [SlabAutomoveSample]) -> (src: Int, dst: Int)? {
        precondition(after.count == classCount)
        windowCur += 1
        var oldest = -1, oldestAge = 0
        var youngest = -1, youngestAge = Int.max, youngestEvicting = false
        var decision: (src: Int, dst: Int)? = nil
        for n in 1..<classCount {
            let base = n * windowSize
            var wd = WindowEntry()
            if after[n].evicted - before[n].evicted > 0 || after[n].outOfMemory - before[n].outOfMemory > 0 {
                wd.evicted = true
                wd.dirty = true
            }
            if after[n].totalPages - before[n].totalPages > 0 { wd.dirty = true }
            wd.age = after[n].age
            window[base + windowCur % windowSize] = wd

            var ageSum = 0, dirty = false, evictedCount = 0
            for k in 0..<windowSize {
                let e = window[base + k]
                ageSum += e.age
                if e.dirty { dirty = true }
                if e.evicted { evictedCount += 1 }
            }
            let age = ageSum / windowSize
            if Double(after[n].freeChunks) > Double(after[n].chunksPerPage) * SlabAutomove.minPagesForReclaim && !dirty {
                decision = (n, 0)
                break
            }
            if age > oldestAge && after[n].totalPages > SlabAutomove.minPagesForSource {
                oldest = n
                oldestAge = age
            }
            if age < youngestAge && evictedCount > windowSize / 2 {
                youngest = n
                youngestAge = age
                youngestEvicting = wd.evicted
            }
        }
        before = after
        if decision != nil { return decision }
        if youngest != -1 && oldest != -1 && windowCur > windowSize {
            if Double(youngestAge) < Double(oldestAge) * ratio && youngestEvicting {
                return (oldest, youngest)
            }
        }
        return nil
    }
}

extension CacheStore {
    /// The numbers slab_automove=1 looks at, for every class id (index 0 stays empty): each class's own
    /// counters read under its lock, as `stats items` / `stats slabs` report them (a class with neither
    /// pages nor items — absent from those — samples as zeros).
    public func automoveSamples() -> [SlabAutomoveSample] {
        var samples = Array(repeating: SlabAutomoveSample(), count: largestClassId + 1)
        let now = clock.currentTime
        for id in 1...largestClassId {
            let c = classes + id
            classLocks.lock(id)
            if c.pointee.totalPages > 0 || c.pointee.number > 0 {
                let age = c.pointee.number > 0 ? c.tailItem(LRUSegment.cold).map { Int(now &- $0.time) } ?? 0 : 0
                samples[id] = SlabAutomoveSample(evicted: c.pointee.evicted, outOfMemory: c.pointee.outOfMemory,
                                                 age: age, totalPages: c.pointee.totalPages,
                                                 freeChunks: c.pointee.freeCount, chunksPerPage: c.pointee.perSlab)
            }
            classLocks.unlock(id)
            if samples[id].chunksPerPage == 0 { samples[id].chunksPerPage = slabClasses[id - 1].perSlab }
        }
        return samples
    }

    /// `slabs automove ratio` (memcached slab_automove_ratio), read by the automove decision each run.
    public var slabAutomoveRatio: Double {
        get { Double(bitPattern: mover.automoveRatioBits.load(ordering: .relaxed)) }
        set { mover.automoveRatioBits.store(newValue.bitPattern, ordering: .relaxed) }
    }
}

/// slab_automove=1's turn in the LRU maintainer thread, as memcached takes it there: at most once per clock
/// second, and again after 1 ms while it is giving free pages back to the global pool. The level is read
/// on every turn, so `slabs automove 0|1|2` applies at once (leaving 1 drops the window).
/// Invariant: used by one thread only (the maintainer's).
public final class SlabAutomoveRunner: @unchecked Sendable {
    private let store: CacheStore
    private let windowSize: Int
    private var automove: SlabAutomove? = nil
    private var lastCheck: UInt32 = 0

    public init(store: CacheStore, windowSize: Int) {
        self.store = store
        self.windowSize = windowSize
    }

    /// One turn; returns the microseconds after which it wants the next one when that is sooner than the next
    /// clock second (1 ms after a page went back to the pool), else nil.
    public func check() -> Int? {
        guard store.slabAutomoveLevel == 1 else {
            automove = nil
            return nil
        }
        let now = store.clock.currentTime
        guard now != lastCheck else { return nil }
        if automove == nil {
            automove = SlabAutomove(windowSize: windowSize, ratio: store.slabAutomoveRatio,
                                    classCount: store.largestSlabClass + 1)
        }
        automove!.ratio = store.slabAutomoveRatio
        guard let move = automove!.run(store.automoveSamples()) else {
            lastCheck = now
            return nil
        }
        _ = store.slabsReassign(src: move.src, dst: move.dst)
        // memcached: a page for another class waits for the next second; one back to the pool, 1 ms.
        if move.dst != 0 {
            lastCheck = now
            return nil
        }
        return 1_000
    }
}
