// Owns the ghost table of `-o lru_policy=s3fifo`: per slab class, the key hashes of items that were evicted
// without ever being fetched. A SET of a key still remembered there is a key that came back soon after the
// cache dropped it, so it skips HOT (where one-hit wonders and scans pass through, and leave unfetched
// straight for COLD's tail) and starts at COLD's head (ItemStorage.linkLocked). This is S3-FIFO's ghost
// queue mapped onto memcached's segments.
//
// The table is a fixed array of 32-bit hashes (slot chosen from the hash; a later eviction landing on the same
// slot overwrites it): it remembers roughly the last N unfetched evictions without a queue, a node or an
// allocation per eviction. N is half the items the class can hold: on the hit-ratio bench a ghost as large as
// the class did worse in both zipf scenarios (it admits keys whose return is too late to matter), a quarter
// of it traded a little of zipf+scan for a little of plain zipf. It lives in the class it serves and is only
// touched under that class's lock (evictions and links already hold it). It grows with the class (rarely: by a
// quarter at least) and never shrinks. A false positive needs two keys with the same 32-bit hash in one slot, and costs only one item
// placed at COLD's head instead of HOT's.

struct GhostTable {
    private var slots: UnsafeMutablePointer<UInt32>? = nil
    private(set) var capacity = 0

    /// The slot of `hash`: the hash scaled onto 0..<capacity (multiply-shift, so any capacity works).
    @inline(__always) private func slot(_ hash: UInt32, _ capacity: Int) -> Int {
        Int((UInt64(hash) &* UInt64(capacity)) >> 32)
    }

    /// Remembers `hash`, first making room for `items` slots if the class outgrew the table. 0 is the empty
    /// slot, so a hash of 0 is not remembered.
    mutating func record(_ hash: UInt32, items: Int) {
        if items > capacity { grow(to: max(items, capacity + capacity / 4)) }
        guard hash != 0, let s = slots else { return }
        s[slot(hash, capacity)] = hash
    }

    /// True (and forgotten) when `hash` is remembered.
    @inline(__always) mutating func admit(_ hash: UInt32) -> Bool {
        guard hash != 0, let s = slots else { return false }
        let i = slot(hash, capacity)
        guard s[i] == hash else { return false }
        s[i] = 0
        return true
    }

    /// A bigger table with the remembered hashes moved into their new slots.
    private mutating func grow(to newCapacity: Int) {
        let fresh = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        fresh.initialize(repeating: 0, count: newCapacity)
        if let old = slots {
            for i in 0..<capacity where old[i] != 0 { fresh[slot(old[i], newCapacity)] = old[i] }
            old.deallocate()
        }
        slots = fresh
        capacity = newCapacity
    }

    /// Frees the slots (the store is going away).
    mutating func free() {
        slots?.deallocate()
        slots = nil
        capacity = 0
    }
}

extension UnsafeMutablePointer where Pointee == SlabClass {
    /// Puts the key of `it`, being evicted unfetched, into this class's ghost table, sized to half the items
    /// the class can hold (its chunks, or its items when chunked items outnumber them). Caller holds this
    /// class's lock.
    @inline(__always) func rememberEvicted(_ it: ItemRef) {
        let holds = Swift.max(pointee.number, pointee.totalPages * pointee.perSlab)
        pointee.ghost.record(it.hash, items: holds / 2)
    }
}
