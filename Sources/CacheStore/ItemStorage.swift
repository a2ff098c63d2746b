// Owns the life of an item's memory (memcached items.c do_item_alloc / do_item_link / do_item_unlink /
// lru_pull_tail): allocating plain and chunked items, reclaiming expired and evicting live items from a
// class's LRU tail when memory is full, linking into and unlinking from the hash table + LRU, and freeing.
//
// Lock order: hash segment → slab class → memory. The eviction path holds a class lock and only *tries*
// segment locks, so there is no cycle; an allocation made under a key's segment lock passes that key's hash
// down (`heldHash`) so the walk skips what memcached's item locks make it skip and does not try the segment
// it already holds (ItemLockStripes.swift).
// Chunks of another class found while holding a class lock are freed after that lock is released.
import Glibc

extension CacheStore {
    // MARK: Allocation

    /// One chunk of class `classId` (memcached do_item_alloc_pull): up to 10 rounds of free list or new
    /// page, else evict from the COLD tail, else (segmented) push HOT's tail down to COLD and retry. In
    /// flat mode every round first reclaims expired items from COLD's tail. Rounds after the first count
    /// as `direct_reclaims`. On failure `outofmemory` is counted in class `oomClass` (memcached
    /// do_item_alloc counts it in the item's class; a failed value chunk of a chunked item is not counted:
    /// pass nil).
    func allocChunk(_ classId: Int, oomClass: Int?, heldHash: UInt32? = nil) -> UnsafeMutableRawPointer? {
        let c = classes + classId
        classLocks.lock(classId)
        var deferred: UnsafeMutableRawPointer? = nil
        let now = clock.currentTime
        let segmented = lruPolicy.segmented
        var p: UnsafeMutableRawPointer? = nil
        var rounds = 0
        while rounds < 10 {
            if !segmented {
                _ = pullTailLocked(c, seg: LRUSegment.cold, totalBytes: 0, maxAge: 0, evict: false,
                                   crawlBlocks: false, now: now, deferred: &deferred, heldHash: heldHash)
            }
            p = c.popFree() ?? (allocator.newPageLocked(c) ? c.popFree() : nil)
            if p != nil { break }
            rounds += 1
            if pullTailLocked(c, seg: LRUSegment.cold, totalBytes: 0, maxAge: 0, evict: true,
                              crawlBlocks: false, now: now, deferred: &deferred, heldHash: heldHash) <= 0 {
                guard segmented else { break }
                _ = pullTailLocked(c, seg: LRUSegment.hot, totalBytes: 0, maxAge: 0, evict: false,
                                   crawlBlocks: false, now: now, deferred: &deferred, heldHash: heldHash)
            }
        }
        c.pointee.directReclaims += rounds
        if p == nil, let o = oomClass {
            if o == classId {
                c.pointee.outOfMemory += 1
            } else {
                classLocks.unlock(classId)
                classLocks.lock(o); classes[o].outOfMemory += 1; classLocks.unlock(o)
                freeDeferred(deferred)
                return nil
            }
        }
        classLocks.unlock(classId)
        freeDeferred(deferred)
        return p
    }

    /// An unlinked item with header, key space and value space ready (value not written), or nil on OOM.
    /// Sets nkey, nbytes, clsid, memClsid, itFlags (chunked), the chunk chain; the caller fills the rest.
    /// `copyParts` (append/prepend): the lengths memcached copies in turn, which decide chunk sizes.
    /// `heldHash`: the hash of the key whose segment lock the caller holds while allocating (see allocChunk).
    func allocItem(keyLength: Int, valueLength: Int, flags: UInt32, copyParts: (Int, Int)? = nil,
                   heldHash: UInt32? = nil) -> ItemRef? {
        let ntotal = layout.totalSize(keyLength: keyLength, valueLength: valueLength, flags: flags)
        // Only the largest class's fixed size and id: its other fields change under its lock, which is not
        // held here (copying the whole SlabClass raced with free-list updates on other threads).
        let largest = (id: largestClassId, size: classes[largestClassId].size)
        if ntotal <= largest.size {
            let cid = SlabClassTable.classId(forSize: ntotal, in: slabClasses)
            guard let p = allocChunk(cid, oomClass: cid, heldHash: heldHash) else { return nil }
            let it = ItemRef(p)
            it.classId = cid
            it.memClassId = cid
            it.itFlags = 0
            it.nkey = keyLength
            it.nbytes = UInt32(valueLength + 2)
            return it
        }
        // Chunked, as memcached 1.6.18 do_item_alloc + do_item_alloc_chunk (measured with `stats slabs` /
        // `stats items` against /usr/bin/memcached, default -n 48 -f 1.25):
        // - The header (item + cas + key + 1 + suffix + 48-byte item_chunk) comes from the small class that
        //   fits it: "c600k" → 110 bytes → class 2 (120); a 109-byte key → class 5; 250-byte key + flags → 7.
        // - The item is still linked (LRU, items:N:number, cmd_set, get_hits, evictions) in the largest class:
        //   3 chunked sets show items:39:number 3, 39:cmd_set 3 and 2:cmd_set 0.
        // - The value *with its "\r\n"* (nbytes) goes into chunks of min(remaining + 48, slab_chunk_max) bytes,
        //   each from the smallest class that fits, holding (class size - 48) bytes: 600000 → 39 + 31 (82792);
        //   1048000 → 39 + 39; 524288 → 39 + class 2 (50 + 48 = 98 bytes); 524239..524241 (key "k") → 39 +
        //   class 1 (the last 1..3 bytes incl. "\r\n"); 1048478 → exactly 2 largest chunks. So with these three
        //   items, class 2 has 4 used chunks (3 headers + a tail) and 2 after deleting c600k and c1m.
        // - -I 2m: 2097052 → 4 largest + class 3; slab_chunk_max=16384 -I 64k: 20000 → 23 + 18 (+ header in 2).
        let headFit = SlabClassTable.classId(forSize: layout.chunkedHeaderSize(keyLength: keyLength, flags: flags),
                                             in: slabClasses)
        let headClass = headFit == 0 ? largest.id : headFit
        guard let head = allocChunk(headClass, oomClass: largest.id, heldHash: heldHash) else { return nil }
        let it = ItemRef(head)
        it.memClassId = headClass
        it.classId = largest.id
        it.itFlags = ItemFlags.chunked
        it.nkey = keyLength
        it.nbytes = UInt32(valueLength + 2)
        let info = it.chunkInfo(layout)
        storePointer(info, 0, nil)
        // The chain is laid out as memcached fills it: a chunk is requested for what is left of the current copy
        // (min(left + 48, slab_chunk_max) bytes) and holds exactly that many bytes (request - 48), even when its
        // class's chunks are bigger; when it is full the next one is requested. A plain set is one copy of nbytes
        // (read_into_chunked_item stops when nothing is left). Append/prepend copy two parts
        // (_store_item_copy_chunks: the old value without "\r\n" then the added one with it; prepend the
        // reverse) and request a further chunk whenever one is full, even with 0 bytes left (48 bytes → class 1,
        // holding nothing). Observed (used_chunks per class, value sizes, default classes):
        //   set 300000 + append 300000 → 2 + 37 + 1 + 37 + 1 (each part in its own chunk, none in class 39);
        //   set 500000 + append 24238..24300 → 2 + 39 + 1 + 26 + 1; + append 100000 → 2 + 39 + 1 + 32 + 1;
        //   set 600000 (chunked) + append 10 → 2 + 39 + 31 + 1 + 1 + 1; set 524100 + prepend 200 → 2 + 39 + 1 + 6 + 1.
        var link = info
        var room = 0                          // the header's own item_chunk has size 0
        var valueLeft = valueLength
        let parts = copyParts ?? (valueLength + 2, 0)
        for part in 0..<2 {
            var remaining = part == 0 ? parts.0 : parts.1
            while remaining > 0 {
                let t = min(room, remaining)
                room -= t
                remaining -= t
                if room > 0 || (remaining == 0 && copyParts == nil) { continue }
                let need = min(remaining + chunkHeaderSize, largest.size)
                var cid = SlabClassTable.classId(forSize: need, in: slabClasses)
                var size = need
                var chunk = allocChunk(cid, oomClass: nil, heldHash: heldHash)
                if chunk == nil && cid != largest.id {
                    // memcached: when the smaller class for the last chunk has no memory, use a largest chunk
                    // (requested as slab_chunk_max bytes).
                    cid = largest.id
                    size = largest.size
                    chunk = allocChunk(cid, oomClass: nil, heldHash: heldHash)
                }
                guard let chunk else {
                    freeUnlinked(it)
                    return nil
                }
                room = size - chunkHeaderSize
                // Chunks before this one are full, so it holds the next `room` bytes of value + "\r\n".
                let len = min(room, valueLeft)
                storePointer(chunk, 0, nil)
                chunk.storeBytes(of: UInt32(len), toByteOffset: 8, as: UInt32.self)
                chunk.storeBytes(of: UInt8(cid), toByteOffset: 12, as: UInt8.self)
                ChunkMark.setHead(chunk, head)   // the slab mover finds the item from any of its chunks
                storePointer(link, 0, chunk)
                link = chunk
                valueLeft -= len
            }
        }
        return it
    }

    /// memcached allocates an item as soon as it has parsed a storage command, before its value arrives,
    /// and frees it again when the value turns out to be a bad data chunk. Cachet reads the value first;
    /// this makes the same allocation and frees it, for its side effects: the class gets its first page,
    /// expired tail items are reclaimed or one is evicted, `outofmemory` is counted.
    public func allocateAndRelease(keyLength: Int, valueLength: Int, flags: UInt32) {
        guard layout.totalSize(keyLength: keyLength, valueLength: valueLength, flags: flags) <= config.itemSizeMax,
              let it = allocItem(keyLength: keyLength, valueLength: valueLength, flags: flags) else { return }
        freeUnlinked(it)
    }

    // MARK: Freeing

    /// Frees an item that is not (or no longer) linked, taking each class lock in turn. Caller holds no class lock.
    func freeUnlinked(_ it: ItemRef) {
        let chain = it.isChunked ? loadPointer(it.chunkInfo(layout), 0) : nil
        releaseChunk(it.raw, classId: it.memClassId)
        freeDeferred(chain)
    }

    /// Frees `it`'s chunks that belong to `c` (whose lock the caller holds) and prepends the others to
    /// `deferred` (a list through the chunks' next pointers) for `freeDeferred` once the lock is released.
    func releaseLocked(_ it: ItemRef, in c: SlabClassRef, deferred: inout UnsafeMutableRawPointer?) {
        it.itFlags &= ~ItemFlags.linked   // under the segment lock: the slab mover relies on it
        c.lruUnlink(it)
        c.pointee.number -= 1
        c.pointee.memRequested -= it.totalSize(layout)
        sizes.record(totalSize: it.totalSize(layout), cas: it.cas(layout), delta: -1)
        if it.itFlags & ItemFlags.pinned != 0 { keepPinnedZombie(it); return }
        var chunk = it.isChunked ? loadPointer(it.chunkInfo(layout), 0) : nil
        let headClass = it.memClassId
        if headClass == c.pointee.id {
            c.pushFree(it.raw)
        } else {
            // A chunked item's header lives in a small class: defer it like a value chunk (next at 0, class
            // at byte 12 — the header is unlinked from the hash table and the LRU, so those bytes are free).
            storePointer(it.raw, 0, deferred)
            it.raw.storeBytes(of: UInt8(headClass), toByteOffset: 12, as: UInt8.self)
            deferred = it.raw
        }
        while let ch = chunk {
            chunk = loadPointer(ch, 0)
            if Int(ch.load(fromByteOffset: 12, as: UInt8.self)) == c.pointee.id {
                c.pushFree(ch)
            } else {
                storePointer(ch, 0, deferred)
                deferred = ch
            }
        }
    }

    /// Frees a list of value chunks (linked through their next pointers). Caller holds no class lock.
    func freeDeferred(_ list: UnsafeMutableRawPointer?) {
        var chunk = list
        while let ch = chunk {
            chunk = loadPointer(ch, 0)
            releaseChunk(ch, classId: Int(ch.load(fromByteOffset: 12, as: UInt8.self)))
        }
    }

    /// Frees one chunk whose class lock the caller does not hold.
    func releaseChunk(_ p: UnsafeMutableRawPointer, classId: Int) {
        classLocks.lock(classId)
        (classes + classId).pushFree(p)
        classLocks.unlock(classId)
    }

    // MARK: Link / unlink (caller holds the item's segment lock)

    /// memcached do_item_link: new CAS (or `cas`, meta's `E` flag), time = now, into the hash table and
    /// the LRU head.
    func linkLocked(_ it: ItemRef, seg: Int, cas: UInt64? = nil) {
        it.setCas(cas ?? nextCas(), layout)
        it.time = clock.currentTime
        it.itFlags |= ItemFlags.linked
        assoc.insert(it, seg: seg)
        let cid = it.classId
        let c = classes + cid
        classLocks.lock(cid)
        var lruSeg = initialSegment(exptime: it.exptime, now: it.time)
        // s3fifo: a key evicted unfetched a short while ago is back, so it is no one-hit wonder: it skips HOT
        // (whose unfetched leavers go straight to COLD's tail) and starts at COLD's head, where a second
        // fetch rescues it to WARM as any COLD item.
        if lruSeg == LRUSegment.hot && lruPolicy.s3fifo && c.pointee.ghost.admit(it.hash) { lruSeg = LRUSegment.cold }
        it.lruSegment = lruSeg
        c.lruLinkAtHead(it)
        c.pointee.number += 1
        c.pointee.memRequested += it.totalSize(layout)
        c.pointee.totalItems += 1
        classLocks.unlock(cid)
        sizes.record(totalSize: it.totalSize(layout), cas: it.cas(layout), delta: 1)
    }

    /// memcached do_item_unlink + free: out of the hash table and the LRU, memory back to the slabs.
    func unlinkLocked(_ it: ItemRef, seg: Int) {
        assoc.remove(it, seg: seg)
        var deferred: UnsafeMutableRawPointer? = nil
        let cid = it.classId
        classLocks.lock(cid)
        releaseLocked(it, in: classes + cid, deferred: &deferred)
        classLocks.unlock(cid)
        freeDeferred(deferred)
    }

    /// memcached item_replace: unlink `old`, link `new` (same key, same segment).
    func replaceLocked(_ old: ItemRef, with new: ItemRef, seg: Int, cas: UInt64? = nil) {
        unlinkLocked(old, seg: seg)
        linkLocked(new, seg: seg, cas: cas)
    }

    /// memcached do_item_get: the live item for `key`, unlinking it on the way if it is flushed or expired.
    /// Caller holds lock `seg`.
    @inline(__always)
    func findLocked(_ key: UnsafeRawBufferPointer, hash: UInt32, seg: Int) -> (item: ItemRef?, result: LookupResult) {
        guard let it = assoc.find(key, hash: hash, seg: seg) else { return (nil, .miss) }
        let now = clock.currentTime
        if isFlushed(it, now: now) {
            unlinkLocked(it, seg: seg)
            return (nil, .flushed)
        }
        if it.exptime != 0 && it.exptime <= now {
            unlinkLocked(it, seg: seg)
            return (nil, .expired)
        }
        return (it, .hit(classId: it.classId))
    }

    /// memcached item_is_flushed().
    @inline(__always)
    func isFlushed(_ it: ItemRef, now: UInt32) -> Bool {
        let live = flushOldestLive.load(ordering: .relaxed)
        if live == 0 || live > now { return false }
        if it.time <= live { return true }
        let oldCas = flushOldestCas.load(ordering: .relaxed)
        let cas = it.cas(layout)
        return oldCas != 0 && cas != 0 && cas < oldCas
    }

    /// Next CAS unique (first is 1), or 0 when CAS is disabled.
    @inline(__always) func nextCas() -> UInt64 {
        config.casEnabled ? casCounter.add(1, ordering: .relaxed).newValue : 0
    }
}
