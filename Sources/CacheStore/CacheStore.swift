// TEMPORARY FACADE — the store helper replaces this file with the real implementation,
// keeping every public signature below.
import Synchronization

/// memcached's clock: seconds since process start, where the process is deemed to have started
/// ITEM_UPDATE_INTERVAL + 2 = 62 s before it did (so relative time 0 never means "now").
public final class StoreClock: Sendable {
    public let processStarted: Int
    private let current = Atomic<UInt32>(0)
    public init(now: Int) { processStarted = now - 62; current.store(62, ordering: .relaxed) }
    public var currentTime: UInt32 { current.load(ordering: .relaxed) }
    public func tick(now: Int) { current.store(UInt32(max(0, now - processStarted)), ordering: .relaxed) }
    /// memcached's realtime(): 0 = never; < 0 → 1 (expired); > 30 days = absolute unix time.
    public func realtime(_ exptime: Int64) -> UInt32 {
        if exptime == 0 { return 0 }
        if exptime < 0 { return 1 }
        if exptime > 2_592_000 {
            if exptime <= Int64(processStarted) { return 1 }
            return UInt32(truncatingIfNeeded: exptime - Int64(processStarted))
        }
        return UInt32(truncatingIfNeeded: exptime + Int64(currentTime))
    }
}

/// A read-only look at a linked item, valid only inside the closure that received it.
public struct ItemView {
    public let flags: UInt32
    public let cas: UInt64
    public let valueLength: Int
    public let key: UnsafeRawBufferPointer
    public let classId: Int
    /// Relative expiry (0 = never), last access (relative), fetched-before flag.
    public let exptime: UInt32
    public let lastAccess: UInt32
    public let fetched: Bool
    /// memcached's ntotal for this item (header + cas + key + 1 + value + 2).
    public let totalSize: Int
    let segments: [UnsafeRawBufferPointer]
    /// Calls `body` with the value's bytes (no trailing \r\n), in order; >1 call only for chunked items.
    public func forEachSegment(_ body: (UnsafeRawBufferPointer) -> Void) { for s in segments { body(s) } }
}

public struct ClassStats: Sendable {
    public var id = 0, chunkSize = 0, perSlab = 0
    public var totalPages = 0, usedChunks = 0, freeChunks = 0, freeChunksEnd = 0
    public var number = 0, memRequested = 0, age: UInt32 = 0
    public var evicted = 0, evictedNonzero = 0, evictedTime: UInt32 = 0, outOfMemory = 0
    public var reclaimed = 0, expiredUnfetched = 0, evictedUnfetched = 0
    public init() {}
}

public struct StoreStats: Sendable {
    public var currItems = 0, totalItems = 0, bytes = 0
    public var evictions = 0, evictedUnfetched = 0, expiredUnfetched = 0, reclaimed = 0
    public var hashPowerLevel = 16, hashBytes = 524288, hashIsExpanding = false
    public var totalMalloced = 0, mallocFails = 0
    public var classes: [ClassStats] = []
    public init() {}
}

public final class CacheStore: @unchecked Sendable {
    public let config: StoreConfig
    public let clock: StoreClock
    public let slabClasses: [SlabClassInfo]
    public init(config: StoreConfig, clock: StoreClock) {
        self.config = config; self.clock = clock; self.slabClasses = CacheStore.slabClassTable(config)
    }
    public static func slabClassTable(_ config: StoreConfig) -> [SlabClassInfo] { [] }
    /// memcached's ntotal: 48-byte header + 8 (CAS, when enabled) + key + 1 + value + 2.
    public static func itemTotalSize(keyLength: Int, valueLength: Int, casEnabled: Bool) -> Int {
        48 + (casEnabled ? 8 : 0) + keyLength + 1 + valueLength + 2
    }
    public func hash(_ key: UnsafeRawBufferPointer) -> UInt32 { 0 }
    /// Looks `key` up; on a hit calls `body` under the item's lock (after applying `touchExptime` if given).
    public func get(_ key: UnsafeRawBufferPointer, hash: UInt32, touchExptime: Int64?,
                    _ body: (ItemView) -> Void) -> LookupResult { .miss }
    public func store(_ mode: StoreMode, key: UnsafeRawBufferPointer, hash: UInt32, flags: UInt32,
                      exptime: Int64, value: UnsafeRawBufferPointer, casUnique: UInt64) -> (result: StoreResult, classId: Int) {
        (.notStored, 0)
    }
    public func delete(_ key: UnsafeRawBufferPointer, hash: UInt32) -> DeleteResult { .notFound }
    public func touch(_ key: UnsafeRawBufferPointer, hash: UInt32, exptime: Int64) -> LookupResult { .miss }
    public func delta(_ key: UnsafeRawBufferPointer, hash: UInt32, incr: Bool, delta: UInt64) -> DeltaResult { .notFound }
    public func flushAll(delay: Int64) {}
    /// memcached's settings.oldest_live (stats settings `oldest`).
    public var oldestLive: UInt32 { 0 }
    /// The slab class an item of `ntotal` bytes goes to (largest class for chunked items).
    public func classId(forTotalSize ntotal: Int) -> Int {
        for c in slabClasses where c.chunkSize >= ntotal { return c.id }
        return slabClasses.last?.id ?? 0
    }
    public func setMemoryLimit(_ bytes: Int) {}
    public func statsSnapshot() -> StoreStats { StoreStats() }
    public func resetStats() {}
}
