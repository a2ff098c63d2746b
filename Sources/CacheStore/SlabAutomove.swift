// Owns slab_automove=1's decision (memcached slab_automove.c): fed once a second with a sample of every
// class (pages, free chunks, evictions, tail age), it keeps a window of the last `windowSize` samples per
// class and says which page to move, if any:
// - a class with more than 2.5 pages' worth of free chunks and no eviction, out-of-memory or new page in the
//   whole window gives a page back to the global pool (destination 0);
// - otherwise, once the window has filled, the class whose tail is oldest on average over the window (with
//   more than 2 pages) gives a page to the class that is evicting in more than half of the window and has
//   the youngest average tail, when that youngest age is below `ratio` × the oldest and it evicted in the
//   latest sample.
// The type is pure (no locks, no clock); `SlabAutomoveRunner` is the thin thread around it.

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
    /// The numbers slab_automove=1 looks at, for every class id (index 0 stays empty).
    public func automoveSamples() -> [SlabAutomoveSample] {
        var samples = Array(repeating: SlabAutomoveSample(), count: largestClassId + 1)
        for c in statsSnapshot().classes {
            samples[c.id] = SlabAutomoveSample(evicted: c.evicted, outOfMemory: c.outOfMemory,
                                               age: c.number > 0 ? Int(c.age) : 0, totalPages: c.totalPages,
                                               freeChunks: c.freeChunks, chunksPerPage: c.perSlab)
        }
        for id in 1...largestClassId where samples[id].chunksPerPage == 0 {
            samples[id].chunksPerPage = slabClasses[id - 1].perSlab
        }
        return samples
    }

    /// `slabs automove ratio` (memcached slab_automove_ratio), read by the automove thread each run.
    public var slabAutomoveRatio: Double {
        get { Double(bitPattern: mover.automoveRatioBits.load(ordering: .relaxed)) }
        set { mover.automoveRatioBits.store(newValue.bitPattern, ordering: .relaxed) }
    }

    /// Starts the slab_automove=1 thread (memcached runs the decision in its LRU maintainer thread, once a
    /// second, and again after 1 ms while it is giving free pages back to the pool). It runs while the store
    /// lives; the level is read on every turn, so `slabs automove 0|1|2` applies at once.
    public func startSlabAutomove(windowSize: Int) {
        let ref = WeakStore(self)
        let classCount = largestClassId + 1
        startDetachedThread {
            var automove: SlabAutomove? = nil
            while true {
                var pause: UInt32 = 1_000_000
                do {
                    guard let store = ref.store else { return }
                    if store.slabAutomoveLevel == 1 {
                        if automove == nil {
                            automove = SlabAutomove(windowSize: windowSize, ratio: store.slabAutomoveRatio,
                                                    classCount: classCount)
                        }
                        automove!.ratio = store.slabAutomoveRatio
                        if let move = automove!.run(store.automoveSamples()) {
                            _ = store.slabsReassign(src: move.src, dst: move.dst)
                            if move.dst == 0 { pause = 1000 }
                        }
                    } else {
                        automove = nil
                    }
                }
                usleep(pause)
            }
        }
    }
}
