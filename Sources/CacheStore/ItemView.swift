// Owns the read-only window a caller gets on a linked item during `get`: header fields copied out, key and
// value bytes pointing straight into slab memory (no allocation per get).

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
    /// memcached's ntotal for this item (header + cas + key + 1 + (flags ? 4 : 0) + value + 2).
    public let totalSize: Int
    /// The LRU segment the item was on when it was found (0 HOT, 1 WARM, 2 COLD, 3 TEMP): memcached counts
    /// hits per segment (`hits_to_hot` …).
    public let lruSegment: Int
    /// The item in slab memory; valid while the caller of the closure holds the item's segment lock.
    let item: ItemRef

    init(item: ItemRef, layout: ItemLayout, fetchedBefore: Bool, lastAccess: UInt32, lruSegment: Int) {
        self.lruSegment = lruSegment
        self.item = item
        flags = item.clientFlags
        cas = item.cas(layout)
        valueLength = item.valueLength
        key = item.key(layout)
        classId = item.classId
        exptime = item.exptime
        self.lastAccess = lastAccess
        fetched = fetchedBefore
        totalSize = item.totalSize(layout)
    }

    /// Calls `body` with the value's bytes (no trailing \r\n), in order; >1 call only for chunked items.
    public func forEachSegment(_ body: (UnsafeRawBufferPointer) -> Void) {
        item.forEachSegment(keyAddress: key.baseAddress!, body)
    }

    /// As above, for value bytes `range` only.
    public func forEachSegment(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) {
        item.forEachSegment(keyAddress: key.baseAddress!, in: range, body)
    }

    /// True when the value is spread over several chunks (larger than slab_chunk_max).
    public var isChunked: Bool { item.isChunked }
}
