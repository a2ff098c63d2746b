// Owns the per-class LRU: a doubly linked list through the item header's prev/next, head = most recent.
// One plain LRU per slab class (memcached's non-segmented mode); bumps are rate-limited by the caller to
// once per ITEM_UPDATE_INTERVAL so a hot get does not take the class lock.

extension SlabClass {
    /// Caller holds this class's lock.
    @inline(__always) func lruLinkAtHead(_ it: ItemRef) {
        it.prev = nil
        it.next = lruHead
        if let h = lruHead { ItemRef(h).prev = it.raw }
        lruHead = it.raw
        if lruTail == nil { lruTail = it.raw }
    }

    /// Caller holds this class's lock; `it` is on this list.
    @inline(__always) func lruUnlink(_ it: ItemRef) {
        if let p = it.prev { ItemRef(p).next = it.next } else { lruHead = it.next }
        if let n = it.next { ItemRef(n).prev = it.prev } else { lruTail = it.prev }
        it.prev = nil
        it.next = nil
    }

    /// Caller holds this class's lock.
    @inline(__always) func lruMoveToHead(_ it: ItemRef) {
        if lruHead == it.raw { return }
        lruUnlink(it)
        lruLinkAtHead(it)
    }
}
