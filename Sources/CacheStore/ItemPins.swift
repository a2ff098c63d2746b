// Owns the references connections hold on items whose values they send straight from slab memory instead
// of copying them into an output buffer (memcached's item refcount, used here only for large values, so
// the 48-byte header keeps its layout: a header bit says "pinned", a side table holds the counts).
//
// Rules, all under the item's segment lock (the pin table's own mutex is the innermost lock of the store):
// - `pin` (inside a `get`/`metaGet` body) sets `ItemFlags.pinned` and counts one reference.
// - An unlink of a pinned item (delete, replace, expiry, flush, crawler) takes it out of the hash table, the
//   LRU and the class counters as usual but does not free its memory: the pin table marks it a zombie.
// - Eviction skips pinned items (memcached's lru_pull_tail skips items with references); incr/decr never
//   rewrites a pinned value in place (memcached checks refcount == 2 for the same reason).
// - `unpin` drops one reference; the last one clears the bit, or frees a zombie's memory.
// So a pinned value's bytes never change and are never reused until it is unpinned.
import CachetSync
import Synchronization

/// A pinned stretch of an item's value: stays readable after the segment lock is released, until it is
/// passed to `CacheStore.unpin` exactly once.
public struct PinnedValue: @unchecked Sendable {
    let item: ItemRef
    let valueStart: UnsafeRawPointer
    let hash: UInt32
    /// The stretch of the value this reference sends: `[lowerBound, upperBound)` in value bytes.
    public let range: Range<Int>

    /// The contiguous bytes of the value starting at `offset` (in `range`), up to the end of its chunk or
    /// of `range`.
    public func run(at offset: Int) -> UnsafeRawBufferPointer {
        precondition(range.contains(offset), "PinnedValue: offset outside the pinned range")
        let it = item
        guard it.isChunked else {
            return UnsafeRawBufferPointer(start: valueStart + offset, count: range.upperBound - offset)
        }
        var skip = offset
        var result = UnsafeRawBufferPointer(start: nil, count: 0)
        it.forEachSegment(keyAddress: valueStart - it.nkey - 1) { seg in
            if result.baseAddress != nil { return }
            if skip >= seg.count { skip -= seg.count; return }
            let end = min(seg.count, skip + range.upperBound - offset)
            result = UnsafeRawBufferPointer(rebasing: seg[skip..<end])
        }
        return result
    }
}

/// References to pinned items, keyed by item address (only items being sent right now are in it).
/// Invariant: an entry exists exactly while its item's `ItemFlags.pinned` bit is set or it is a zombie.
final class PinTable: Sendable {
    struct Entry { var count: Int; var zombie: Bool }
    let entries = Locked<[UInt: Entry]>([:])
}

/// A linked item's value as a `get` or meta get body sees it (`ItemView`, `MetaItem`): what a connection needs
/// to copy part of it or to pin it.
public protocol ItemValue {
    var valueLength: Int { get }
    /// The value's bytes in `range`, in order (more than one call only for chunked items).
    func forEachSegment(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void)
    /// Pins `range` of the value; only inside the body that received the item (its segment lock is held).
    func pin(_ range: Range<Int>, in store: CacheStore) -> PinnedValue
}

extension ItemView: ItemValue {
    public func pin(_ range: Range<Int>, in store: CacheStore) -> PinnedValue { store.pinLocked(item, range: range) }
}

extension MetaItem: ItemValue {
    public func pin(_ range: Range<Int>, in store: CacheStore) -> PinnedValue { store.pinLocked(item, range: range) }
}

extension CacheStore {
    func pinLocked(_ it: ItemRef, range: Range<Int>) -> PinnedValue {
        precondition(range.lowerBound >= 0 && range.upperBound <= it.valueLength)
        it.itFlags |= ItemFlags.pinned
        pins.entries.withLock { $0[UInt(bitPattern: it.raw), default: PinTable.Entry(count: 0, zombie: false)].count += 1 }
        let start = UnsafeRawPointer(it.raw + layout.keyOffset + it.nkey + 1)
        return PinnedValue(item: it, valueStart: start, hash: it.hash, range: range)
    }

    /// Drops a reference taken by `pin`; the last reference to an unlinked item frees its memory.
    public func unpin(_ p: PinnedValue) {
        let seg = assoc.segment(for: p.hash)
        assoc.locks.lock(seg)
        let freeIt = pins.entries.withLock { table -> Bool in
            let key = UInt(bitPattern: p.item.raw)
            guard var e = table[key] else { preconditionFailure("unpin: item is not pinned") }
            e.count -= 1
            if e.count > 0 { table[key] = e; return false }
            table[key] = nil
            if !e.zombie { p.item.itFlags &= ~ItemFlags.pinned }
            return e.zombie
        }
        assoc.locks.unlock(seg)
        if freeIt { freeUnlinked(p.item) }
    }

    /// Called by `releaseLocked` for a pinned item being unlinked: its memory now belongs to the pins.
    func keepPinnedZombie(_ it: ItemRef) {
        it.itFlags &= ~ItemFlags.linked
        pins.entries.withLock { $0[UInt(bitPattern: it.raw)]!.zombie = true }
    }

    /// Items currently pinned (linked or not): for tests and leak checks.
    var pinnedItemCount: Int { pins.entries.withLock { $0.count } }
}
