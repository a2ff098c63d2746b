// Owns the per-class LRU lists: memcached's segmented LRU keeps four per slab class — HOT (new items), WARM
// (items fetched at least twice), COLD (the eviction end) and TEMP (items with a short TTL, when enabled) —
// each a doubly linked list through the item header's prev/next, head = most recent, with its item count
// and bytes (memcached's sizes[] / sizes_bytes[], which decide when HOT and WARM overflow into COLD).
// In flat mode (`lru mode flat`, `-o no_lru_maintainer`) every item lives in COLD. The item's segment is
// the top two bits of its class byte (ItemRef.lruSegment). Moving items between segments is
// LRUMaintenance.swift; linking items in and out of the store is ItemStorage.swift.

/// memcached's HOT_LRU / WARM_LRU / COLD_LRU / TEMP_LRU (its ids are these shifted left by 6).
enum LRUSegment {
    static let hot = 0
    static let warm = 1
    static let cold = 2
    static let temp = 3
}

/// One LRU segment of a class. Invariant: touched only under the class lock; `count`/`bytes` cover the
/// items on the list (crawler sentinels are linked but not counted).
struct LRUList {
    var head: UnsafeMutableRawPointer? = nil
    var tail: UnsafeMutableRawPointer? = nil
    var count = 0
    var bytes = 0
}

extension UnsafeMutablePointer where Pointee == SlabClass {
    /// Segment `seg`'s list (the four lists are one homogeneous tuple, so they sit one stride apart). The
    /// key path to a stored property folds to a constant offset; a `static let` offset cost a swift_once
    /// check on every call (the maintainer makes ~10 per moved item).
    @inline(__always) func list(_ seg: Int) -> UnsafeMutablePointer<LRUList> {
        UnsafeMutableRawPointer(pointer(to: \.lists).unsafelyUnwrapped).assumingMemoryBound(to: LRUList.self) + seg
    }

    /// The tail of segment `seg`, skipping crawler sentinels (memcached reads ages off the tail item).
    @inline(__always) func tailItem(_ seg: Int) -> ItemRef? {
        var p = list(seg).pointee.tail
        while let t = p, ItemRef(t).isCrawlerSentinel { p = ItemRef(t).prev }
        return p.map(ItemRef.init)
    }

    /// Links `it` at the head of the list its `lruSegment` names. Caller holds this class's lock.
    @inline(__always) func lruLinkAtHead(_ it: ItemRef) {
        let l = list(it.lruSegment)
        it.prev = nil
        it.next = l.pointee.head
        if let h = l.pointee.head { ItemRef(h).prev = it.raw }
        l.pointee.head = it.raw
        if l.pointee.tail == nil { l.pointee.tail = it.raw }
        if !it.isCrawlerSentinel {
            l.pointee.count += 1
            l.pointee.bytes += it.totalSize(pointee.keyOffset)
        }
    }

    /// Links `it` at the tail of the list its `lruSegment` names: the next item that segment gives up
    /// (`-o lru_policy=s3fifo` puts unfetched HOT leavers there). Caller holds this class's lock.
    @inline(__always) func lruLinkAtTail(_ it: ItemRef) {
        let l = list(it.lruSegment)
        it.next = nil
        it.prev = l.pointee.tail
        if let t = l.pointee.tail { ItemRef(t).next = it.raw }
        l.pointee.tail = it.raw
        if l.pointee.head == nil { l.pointee.head = it.raw }
        if !it.isCrawlerSentinel {
            l.pointee.count += 1
            l.pointee.bytes += it.totalSize(pointee.keyOffset)
        }
    }

    /// Caller holds this class's lock; `it` is on the list its `lruSegment` names.
    @inline(__always) func lruUnlink(_ it: ItemRef) {
        let l = list(it.lruSegment)
        if let p = it.prev { ItemRef(p).next = it.next } else { l.pointee.head = it.next }
        if let n = it.next { ItemRef(n).prev = it.prev } else { l.pointee.tail = it.prev }
        it.prev = nil
        it.next = nil
        if !it.isCrawlerSentinel {
            l.pointee.count -= 1
            l.pointee.bytes -= it.totalSize(pointee.keyOffset)
        }
    }

    /// Caller holds this class's lock.
    @inline(__always) func lruMoveToHead(_ it: ItemRef) {
        if list(it.lruSegment).pointee.head == it.raw { return }
        lruUnlink(it)
        lruLinkAtHead(it)
    }

    /// Moves `it` to the head of segment `seg`. Caller holds this class's lock and the item's segment lock.
    @inline(__always) func lruMove(_ it: ItemRef, to seg: Int) {
        lruUnlink(it)
        it.lruSegment = seg
        lruLinkAtHead(it)
    }

    /// Moves `it` to the tail of segment `seg`. Caller holds this class's lock and the item's segment lock.
    @inline(__always) func lruMoveToTail(_ it: ItemRef, of seg: Int) {
        lruUnlink(it)
        it.lruSegment = seg
        lruLinkAtTail(it)
    }
}
