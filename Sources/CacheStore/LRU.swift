// Owns the per-class LRU: a doubly linked list through the item header's prev/next, head = most recent.
// One plain LRU per slab class (memcached's non-segmented mode); bumps are rate-limited by the caller to
// once per ITEM_UPDATE_INTERVAL so a hot get does not take the class lock.

extension UnsafeMutablePointer where Pointee == SlabClass {
    /// Caller holds this class's lock.
    @inline(__always) func lruLinkAtHead(_ it: ItemRef) {
        it.prev = nil
        it.next = pointee.lruHead
        if let h = pointee.lruHead { ItemRef(h).prev = it.raw }
        pointee.lruHead = it.raw
        if pointee.lruTail == nil { pointee.lruTail = it.raw }
    }

    /// Caller holds this class's lock; `it` is on this list.
    @inline(__always) func lruUnlink(_ it: ItemRef) {
        if let p = it.prev { ItemRef(p).next = it.next } else { pointee.lruHead = it.next }
        if let n = it.next { ItemRef(n).prev = it.prev } else { pointee.lruTail = it.prev }
        it.prev = nil
        it.next = nil
    }

    /// Caller holds this class's lock.
    @inline(__always) func lruMoveToHead(_ it: ItemRef) {
        if pointee.lruHead == it.raw { return }
        lruUnlink(it)
        lruLinkAtHead(it)
    }
}
