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
        l.relinkAtHead(it)
        if !it.isCrawlerSentinel {
            l.pointee.count += 1
            l.pointee.bytes += it.totalSize(pointee.keyOffset)
        }
    }

    /// Links `it` at the tail of the list its `lruSegment` names: the next item that segment gives up
    /// (`-o lru_policy=s3fifo` puts unfetched HOT leavers there). Caller holds this class's lock.
    @inline(__always) func lruLinkAtTail(_ it: ItemRef) {
        let l = list(it.lruSegment)
        l.relinkAtTail(it)
        if !it.isCrawlerSentinel {
            l.pointee.count += 1
            l.pointee.bytes += it.totalSize(pointee.keyOffset)
        }
    }

    /// Caller holds this class's lock; `it` is on the list its `lruSegment` names.
    @inline(__always) func lruUnlink(_ it: ItemRef) {
        let l = list(it.lruSegment)
        l.detach(it)
        if !it.isCrawlerSentinel {
            l.pointee.count -= 1
            l.pointee.bytes -= it.totalSize(pointee.keyOffset)
        }
    }

    /// Caller holds this class's lock. A relink within one list: its count and bytes stay as they are.
    @inline(__always) func lruMoveToHead(_ it: ItemRef) {
        let l = list(it.lruSegment)
        if l.pointee.head == it.raw { return }
        l.detach(it)
        l.relinkAtHead(it)
    }

    /// Moves `it` to the head of segment `seg`. Caller holds this class's lock and the item's segment lock.
    /// The item's size is worked out once for both lists' byte counts (the maintainer's most frequent step).
    @inline(__always) func lruMove(_ it: ItemRef, to seg: Int) {
        let from = list(it.lruSegment), to = list(seg)
        from.detach(it)
        it.lruSegment = seg
        to.relinkAtHead(it)
        moveCounts(it, from: from, to: to)
    }

    /// Moves `it` to the tail of segment `seg`. Caller holds this class's lock and the item's segment lock.
    @inline(__always) func lruMoveToTail(_ it: ItemRef, of seg: Int) {
        let from = list(it.lruSegment), to = list(seg)
        from.detach(it)
        it.lruSegment = seg
        to.relinkAtTail(it)
        moveCounts(it, from: from, to: to)
    }

    @inline(__always) private func moveCounts(_ it: ItemRef, from: UnsafeMutablePointer<LRUList>,
                                              to: UnsafeMutablePointer<LRUList>) {
        if it.isCrawlerSentinel { return }
        let size = it.totalSize(pointee.keyOffset)
        from.pointee.count &-= 1
        from.pointee.bytes &-= size
        to.pointee.count &+= 1
        to.pointee.bytes &+= size
    }
}

extension UnsafeMutablePointer where Pointee == LRUList {
    /// Takes `it` out of this list's links (prev/next cleared); counts are the caller's business.
    @inline(__always) func detach(_ it: ItemRef) {
        let p = it.prev, n = it.next
        if let p { ItemRef(p).next = n } else { pointee.head = n }
        if let n { ItemRef(n).prev = p } else { pointee.tail = p }
        it.prev = nil
        it.next = nil
    }

    /// Links a detached `it` at this list's head; counts are the caller's business.
    @inline(__always) func relinkAtHead(_ it: ItemRef) {
        let h = pointee.head
        it.prev = nil
        it.next = h
        if let h { ItemRef(h).prev = it.raw } else { pointee.tail = it.raw }
        pointee.head = it.raw
    }

    /// Links a detached `it` at this list's tail; counts are the caller's business.
    @inline(__always) func relinkAtTail(_ it: ItemRef) {
        let t = pointee.tail
        it.next = nil
        it.prev = t
        if let t { ItemRef(t).next = it.raw } else { pointee.head = it.raw }
        pointee.tail = it.raw
    }
}
