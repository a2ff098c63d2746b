// Owns the store's outward event hook: evictions reported to `watch evictions` (memcached's
// LOGGER_EVICTION in lru_pull_tail). The check is one relaxed atomic load on the eviction path, so a
// server nobody watches pays nothing more.
import Synchronization

/// An evicted item, as memcached logs it. `key` is valid only during the callback.
public struct EvictionRecord {
    public let key: UnsafeRawBufferPointer
    public let fetched: Bool
    /// Seconds left to live, -1 when the item never expires (memcached's `ttl`).
    public let ttl: Int64
    /// Seconds since last access (memcached's `la`).
    public let lastAccessAge: Int
    public let classId: Int
    public let valueLength: Int
}

/// Invariant: `onEviction` is set once before any thread stores (server startup) and never changed;
/// it runs with a class lock and a segment lock held, so it must only hand the record off (no store calls).
public final class StoreEvents: @unchecked Sendable {
    /// True while someone watches evictions; flipped by the server as watchers come and go.
    public let evictionsWatched = Atomic<Bool>(false)
    nonisolated(unsafe) public var onEviction: ((EvictionRecord) -> Void)?

    init() {}

    func reportEviction(_ it: ItemRef, layout: ItemLayout, now: UInt32) {
        guard let cb = onEviction else { return }
        cb(EvictionRecord(key: it.key(layout), fetched: it.itFlags & ItemFlags.fetched != 0,
                          ttl: it.exptime == 0 ? -1 : Int64(it.exptime) - Int64(now),
                          lastAccessAge: Int(now) - Int(it.time), classId: it.classId,
                          valueLength: it.valueLength))
    }
}
