// Owns the store's statistics: the public snapshot types (memcached `stats`, `stats slabs`, `stats items`
// fields that the store knows), how a snapshot is summed from the per-class counters, and `stats reset`.

public struct ClassStats: Sendable {
    public var id = 0, chunkSize = 0, perSlab = 0
    public var totalPages = 0, usedChunks = 0, freeChunks = 0, freeChunksEnd = 0
    public var number = 0, memRequested = 0
    /// Items per LRU segment, and the seconds since the last access of HOT's, WARM's and COLD's tail (`age`).
    public var numberHot = 0, numberWarm = 0, numberCold = 0, numberTemp = 0
    public var ageHot: UInt32 = 0, ageWarm: UInt32 = 0, age: UInt32 = 0
    public var evicted = 0, evictedNonzero = 0, evictedTime: UInt32 = 0, outOfMemory = 0
    public var reclaimed = 0, expiredUnfetched = 0, evictedUnfetched = 0, evictedActive = 0
    /// The segmented LRU's work (memcached items.c counters of the same names).
    public var movesToCold = 0, movesToWarm = 0, movesWithinLRU = 0, directReclaims = 0, lrutailReflocked = 0
    /// memcached's crawler_reclaimed / crawler_items_checked (LRUCrawler.swift).
    public var crawlerReclaimed = 0, crawlerItemsChecked = 0
    public init() {}
}

public struct StoreStats: Sendable {
    public var currItems = 0, totalItems = 0, bytes = 0
    public var evictions = 0, evictedUnfetched = 0, expiredUnfetched = 0, reclaimed = 0, evictedActive = 0
    public var crawlerReclaimed = 0, crawlerItemsChecked = 0, lrutailReflocked = 0
    public var movesToCold = 0, movesToWarm = 0, movesWithinLRU = 0, directReclaims = 0
    public var hashPowerLevel = 16, hashBytes = 524288, hashIsExpanding = false
    public var totalMalloced = 0, mallocFails = 0
    public var classes: [ClassStats] = []
    public init() {}
}

extension CacheStore {
    /// memcached's power_largest: the highest slab class id.
    public var largestSlabClass: Int { largestClassId }

    /// Pages class `id` holds (memcached slabclass[id].slabs); 0 for an id out of range.
    public func pageCount(classId id: Int) -> Int {
        guard id >= 1 && id <= largestClassId else { return 0 }
        classLocks.lock(id)
        defer { classLocks.unlock(id) }
        return classes[id].totalPages
    }

    /// Sums the per-class counters (one class lock at a time; totals are not an atomic cut across classes).
    /// `classes` lists the classes that have at least one page or hold an item, in id order (a chunked item is
    /// counted in the largest class, which may have no page when append/prepend built it from smaller chunks).
    public func statsSnapshot() -> StoreStats {
        var s = StoreStats()
        let now = clock.currentTime
        for id in 1...largestClassId {
            classLocks.lock(id)
            let c = classes[id]
            var cs = ClassStats()
            cs.id = c.id; cs.chunkSize = c.size; cs.perSlab = c.perSlab
            cs.totalPages = c.totalPages
            cs.usedChunks = c.totalPages * c.perSlab - c.freeCount
            cs.freeChunks = c.freeCount
            cs.number = c.number; cs.memRequested = c.memRequested
            let cp = classes + id
            cs.numberHot = cp.list(LRUSegment.hot).pointee.count
            cs.numberWarm = cp.list(LRUSegment.warm).pointee.count
            cs.numberCold = cp.list(LRUSegment.cold).pointee.count
            cs.numberTemp = cp.list(LRUSegment.temp).pointee.count
            cs.ageHot = cp.tailItem(LRUSegment.hot).map { now &- $0.time } ?? 0
            cs.ageWarm = cp.tailItem(LRUSegment.warm).map { now &- $0.time } ?? 0
            cs.age = cp.tailItem(LRUSegment.cold).map { now &- $0.time } ?? 0
            cs.evicted = c.evicted; cs.evictedNonzero = c.evictedNonzero; cs.evictedTime = c.evictedTime
            cs.outOfMemory = c.outOfMemory; cs.reclaimed = c.reclaimed
            cs.expiredUnfetched = c.expiredUnfetched; cs.evictedUnfetched = c.evictedUnfetched
            cs.evictedActive = c.evictedActive
            cs.crawlerReclaimed = c.crawlerReclaimed; cs.crawlerItemsChecked = c.crawlerItemsChecked
            cs.lrutailReflocked = c.lrutailReflocked
            cs.movesToCold = c.movesToCold; cs.movesToWarm = c.movesToWarm; cs.movesWithinLRU = c.movesWithinLRU
            cs.directReclaims = c.directReclaims
            s.totalItems += c.totalItems
            classLocks.unlock(id)
            s.currItems += cs.number
            s.bytes += cs.memRequested
            s.evictions += cs.evicted
            s.evictedUnfetched += cs.evictedUnfetched
            s.expiredUnfetched += cs.expiredUnfetched
            s.reclaimed += cs.reclaimed
            s.crawlerReclaimed += cs.crawlerReclaimed
            s.crawlerItemsChecked += cs.crawlerItemsChecked
            s.evictedActive += cs.evictedActive
            s.lrutailReflocked += cs.lrutailReflocked
            s.movesToCold += cs.movesToCold
            s.movesToWarm += cs.movesToWarm
            s.movesWithinLRU += cs.movesWithinLRU
            s.directReclaims += cs.directReclaims
            if cs.totalPages > 0 || cs.number > 0 { s.classes.append(cs) }
        }
        let buckets = assoc.totalBuckets
        s.hashPowerLevel = Int.bitWidth - 1 - buckets.leadingZeroBitCount
        s.hashBytes = buckets * MemoryLayout<UnsafeMutableRawPointer>.size
        s.hashIsExpanding = false
        let mem = allocator.memoryStats()
        s.totalMalloced = mem.malloced
        s.mallocFails = mem.mallocFails
        return s
    }

    /// memcached `stats reset`: zeroes total_items and the per-class eviction/reclaim counters
    /// (item_stats_reset); curr_items, bytes and memory are state, not counters, and stay.
    public func resetStats() {
        for id in 1...largestClassId {
            classLocks.lock(id)
            let c = classes + id
            c.pointee.totalItems = 0
            c.pointee.evicted = 0; c.pointee.evictedNonzero = 0; c.pointee.evictedTime = 0
            c.pointee.outOfMemory = 0; c.pointee.reclaimed = 0
            c.pointee.expiredUnfetched = 0; c.pointee.evictedUnfetched = 0
            c.pointee.crawlerReclaimed = 0; c.pointee.crawlerItemsChecked = 0
            c.pointee.evictedActive = 0; c.pointee.lrutailReflocked = 0
            c.pointee.movesToCold = 0; c.pointee.movesToWarm = 0; c.pointee.movesWithinLRU = 0
            c.pointee.directReclaims = 0
            classLocks.unlock(id)
        }
    }
}
