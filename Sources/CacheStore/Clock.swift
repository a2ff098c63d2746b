// Owns memcached's notion of time: the relative clock (`current_time`), `realtime()` for exptimes, and the
// LRU update interval (memcached: memcached.c). The flush predicate is CacheStore.isFlushed (ItemStorage.swift).
import Synchronization

/// memcached's clock: seconds since process start, where the process is deemed to have started
/// ITEM_UPDATE_INTERVAL + 2 = 62 s before it did (so relative time 0 never means "now").
public final class StoreClock: Sendable {
    public let processStarted: Int
    private let current = Atomic<UInt32>(0)
    public init(now: Int) { processStarted = now - 62; current.store(62, ordering: .relaxed) }
    /// A warm restart (`-e`) continues the previous process's clock, as memcached does: relative times kept
    /// in the items stay valid, and the time the server was down counts against their TTLs.
    public init(processStarted: Int, now: Int) {
        self.processStarted = processStarted
        current.store(UInt32(clamping: max(0, now - processStarted)), ordering: .relaxed)
    }
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

/// memcached's ITEM_UPDATE_INTERVAL: an item is moved to the LRU head on access at most once a minute.
var itemUpdateInterval: UInt32 { 60 }
