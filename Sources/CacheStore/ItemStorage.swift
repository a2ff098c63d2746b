// Owns the life of an item's memory (memcached items.c do_item_alloc / do_item_link / do_item_unlink /
// lru_pull_tail): allocating plain and chunked items, reclaiming expired and evicting live items from a
// class's LRU tail when memory is full, linking into and unlinking from the hash table + LRU, and freeing.
//
// Lock order: hash segment → slab class → memory. The eviction path holds a class lock and only *tries*
// segment locks (its own caller's segment simply fails the try and is skipped), so there is no cycle.
// Chunks of another class found while holding a class lock are freed after that lock is released.
import Glibc

extension CacheStore {
    /// Tail items examined per allocation attempt (memcached lru_pull_tail's `tries`).
    static let evictionSearchDepth = 5

    // MARK: Allocation

    /// One chunk of class `classId`: free list, new page, then the LRU tail (reclaim expired, else evict).
    func allocChunk(_ classId: Int) -> UnsafeMutableRawPointer? {
        let c = classes + classId
        classLocks.lock(classId)
        if let p = c.popFree() ?? (allocator.newPageLocked(c) ? c.popFree() : nil) {
            classLocks.unlock(classId)
            return p
        }
        var deferred: UnsafeMutableRawPointer? = nil
        let now = clock.currentTime
        var search = c.pointee.lruTail
        var tries = CacheStore.evictionSearchDepth
        while tries > 0, let raw = search {
            tries -= 1
            let it = ItemRef(raw)
            search = it.prev
            if it.itFlags & ItemFlags.crawler != 0 { continue }   // a crawl's sentinel, not an item
            let seg = assoc.segment(for: it.hash)
            guard assoc.locks.tryLock(seg) else { continue }
            let fetched = it.itFlags & ItemFlags.fetched != 0
            if (it.exptime != 0 && it.exptime < now) || isFlushed(it, now: now) {
                c.pointee.reclaimed += 1
                if !fetched { c.pointee.expiredUnfetched += 1 }
                assoc.remove(it, seg: seg)
                releaseLocked(it, in: c, deferred: &deferred)
                assoc.locks.unlock(seg)
                continue   // all expired so far: keep looking
            }
            if !config.evictionsEnabled { assoc.locks.unlock(seg); break }
            c.pointee.evicted += 1
            c.pointee.evictedTime = now &- it.time
            if it.exptime != 0 { c.pointee.evictedNonzero += 1 }
            if !fetched { c.pointee.evictedUnfetched += 1 }
            if events.evictionsWatched.load(ordering: .relaxed) { events.reportEviction(it, layout: layout, now: now) }
            assoc.remove(it, seg: seg)
            releaseLocked(it, in: c, deferred: &deferred)
            assoc.locks.unlock(seg)
            break
        }
        let p = c.popFree() ?? (allocator.newPageLocked(c) ? c.popFree() : nil)
        if p == nil { c.pointee.outOfMemory += 1 }
        classLocks.unlock(classId)
        freeDeferred(deferred)
        return p
    }

    /// An unlinked item with header, key space and value space ready (value not written), or nil on OOM.
    /// Sets nkey, nbytes, clsid, itFlags (chunked), the chunk chain; the caller fills the rest.
    func allocItem(keyLength: Int, valueLength: Int, flags: UInt32) -> ItemRef? {
        let ntotal = layout.totalSize(keyLength: keyLength, valueLength: valueLength, flags: flags)
        let largest = classes[largestClassId]
        if ntotal <= largest.size {
            let cid = SlabClassTable.classId(forSize: ntotal, in: slabClasses)
            guard let p = allocChunk(cid) else { return nil }
            let it = ItemRef(p)
            it.classId = cid
            it.itFlags = 0
            it.nkey = keyLength
            it.nbytes = UInt32(valueLength + 2)
            return it
        }
        // Chunked: the head is a largest-class chunk holding header, key and the first value bytes; the rest
        // goes into chunks of the largest class, the last one from the smallest class that fits it.
        guard let head = allocChunk(largest.id) else { return nil }
        let it = ItemRef(head)
        it.classId = largest.id
        it.itFlags = ItemFlags.chunked
        it.nkey = keyLength
        it.nbytes = UInt32(valueLength + 2)
        let info = it.chunkInfo(layout)
        let headLen = min(valueLength, largest.size - layout.chunkedHeadDataOffset(keyLength: keyLength))
        storePointer(info, 0, nil)
        info.storeBytes(of: UInt32(headLen), toByteOffset: 8, as: UInt32.self)
        var link = info
        var remaining = valueLength - headLen
        while remaining > 0 {
            let need = remaining + chunkHeaderSize
            let cid = need >= largest.size ? largest.id : SlabClassTable.classId(forSize: need, in: slabClasses)
            guard let chunk = allocChunk(cid) else {
                freeUnlinked(it)
                return nil
            }
            let len = min(remaining, classes[cid].size - chunkHeaderSize)
            storePointer(chunk, 0, nil)
            chunk.storeBytes(of: UInt32(len), toByteOffset: 8, as: UInt32.self)
            chunk.storeBytes(of: UInt8(cid), toByteOffset: 12, as: UInt8.self)
            storePointer(link, 0, chunk)
            link = chunk
            remaining -= len
        }
        return it
    }

    // MARK: Freeing

    /// Frees an item that is not (or no longer) linked, taking each class lock in turn. Caller holds no class lock.
    func freeUnlinked(_ it: ItemRef) {
        let chain = it.isChunked ? loadPointer(it.chunkInfo(layout), 0) : nil
        releaseChunk(it.raw, classId: it.classId)
        freeDeferred(chain)
    }

    /// Frees `it`'s chunks that belong to `c` (whose lock the caller holds) and prepends the others to
    /// `deferred` (a list through the chunks' next pointers) for `freeDeferred` once the lock is released.
    func releaseLocked(_ it: ItemRef, in c: SlabClassRef, deferred: inout UnsafeMutableRawPointer?) {
        c.lruUnlink(it)
        c.pointee.number -= 1
        c.pointee.memRequested -= it.totalSize(layout)
        var chunk = it.isChunked ? loadPointer(it.chunkInfo(layout), 0) : nil
        c.pushFree(it.raw)
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

    /// memcached do_item_link: new CAS, time = now, into the hash table and the LRU head.
    func linkLocked(_ it: ItemRef, seg: Int) {
        it.setCas(nextCas(), layout)
        it.time = clock.currentTime
        it.itFlags |= ItemFlags.linked
        assoc.insert(it, seg: seg)
        let cid = it.classId
        let c = classes + cid
        classLocks.lock(cid)
        c.lruLinkAtHead(it)
        c.pointee.number += 1
        c.pointee.memRequested += it.totalSize(layout)
        c.pointee.totalItems += 1
        classLocks.unlock(cid)
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
    func replaceLocked(_ old: ItemRef, with new: ItemRef, seg: Int) {
        unlinkLocked(old, seg: seg)
        linkLocked(new, seg: seg)
    }

    /// memcached do_item_update: refresh `time` and move to the LRU head, at most once per update interval.
    @inline(__always)
    func updateLocked(_ it: ItemRef) {
        let now = clock.currentTime
        guard Int64(it.time) < Int64(now) - Int64(itemUpdateInterval) else { return }
        let cid = it.classId
        classLocks.lock(cid)
        it.time = now
        (classes + cid).lruMoveToHead(it)
        classLocks.unlock(cid)
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
