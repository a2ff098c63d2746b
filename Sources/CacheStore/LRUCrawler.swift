// Owns walking the LRUs and the hash table for inspection without stopping the world:
// - `cachedump` (memcached item_cachedump): one short walk from a class's LRU head under its class lock,
//   bounded by the caller (memcached caps the reply at 2 MB);
// - `LRUCrawl` (memcached crawler.c), behind `lru_crawler metadump|crawl`: a sentinel is linked at the tail
//   of each crawled LRU (every segment of each class: memcached's ids class | segment << 6) and swapped one
//   step towards the head per visit, so the crawl holds a class
//   lock for one item at a time and can pause between batches while other threads store, bump and evict
//   around the sentinel (eviction skips sentinels). Classes advance round-robin, one item each per round,
//   which is the order memcached's crawler thread visits its LRUs in. `metadump hash` walks hash segments
//   instead, one segment per step under that segment's lock.
// Lock order is the store's: an item's segment lock is only *tried* while a class lock is held; a busy
// segment makes the crawler step back and retry that item on a later round.
// Accounting is crawler.c's: every item an LRU crawl looks at counts in its class's crawler_items_checked
// (metadump too, `metadump hash` not); a reclaim counts in crawler_reclaimed and, when the item expired
// without being fetched, expired_unfetched. `toCrawl` (memcached's lru_crawler_tocrawl) ends a class's
// walk of one LRU segment after that many items (memcached's rule too).
import Glibc

/// What `lru_crawler metadump` prints for one item; `key` is valid only during the visit.
public struct ItemMeta {
    public let key: UnsafeRawBufferPointer
    /// Relative times (see StoreClock); `exptime` 0 = never.
    public let exptime: UInt32
    public let lastAccess: UInt32
    public let cas: UInt64
    public let fetched: Bool
    public let classId: Int
    /// memcached's ITEM_ntotal.
    public let totalSize: Int
}

extension CacheStore {
    /// memcached item_cachedump: items of `classId`'s COLD LRU from the most recently used, while `body` (key, value
    /// length, relative exptime, relative last access) returns true. Reads under the class lock only, as memcached does: key and
    /// length never change while linked, and exptime is one aligned word (a concurrent touch shows old or new).
    public func cachedump(classId: Int, _ body: (UnsafeRawBufferPointer, Int, UInt32, UInt32) -> Bool) {
        guard classId >= 1 && classId <= largestClassId else { return }
        classLocks.lock(classId)
        defer { classLocks.unlock(classId) }
        var p = (classes + classId).list(LRUSegment.cold).pointee.head
        while let raw = p {
            let it = ItemRef(raw)
            p = it.next
            // memcached leaves out binary keys (meta `b`) so that no raw bytes are printed
            if it.isCrawlerSentinel || it.itFlags & ItemFlags.keyBinary != 0 { continue }
            if !body(it.key(layout), it.valueLength, it.exptime, it.time) { return }
        }
    }

    /// Valid class ids for the crawler (memcached: POWER_SMALLEST ..< MAX_NUMBER_OF_SLAB_CLASSES).
    public var crawlableClassIds: ClosedRange<Int> { 1...largestClassId }

    /// Starts a crawl over `classIds` (LRU order) or, with `byHash`, over the hash table; nil while another
    /// crawl runs (memcached's `BUSY currently processing crawler request`). `toCrawl` > 0 caps the items
    /// looked at per class (memcached's lru_crawler_tocrawl; metadump passes 0, as memcached does).
    public func startCrawl(classIds: [Int], byHash: Bool = false, toCrawl: Int = 0) -> LRUCrawl? {
        guard crawlerBusy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return nil
        }
        return LRUCrawl(store: self, classIds: classIds.filter { $0 >= 1 && $0 <= largestClassId }, byHash: byHash,
                        toCrawl: toCrawl)
    }

    /// memcached's lru_crawler_running: a crawl or metadump holds the crawler.
    public var isCrawling: Bool { crawlerBusy.load(ordering: .relaxed) }

    @inline(__always) func meta(_ it: ItemRef) -> ItemMeta {
        ItemMeta(key: it.key(layout), exptime: it.exptime, lastAccess: it.time, cas: it.cas(layout),
                 fetched: it.itFlags & ItemFlags.fetched != 0, classId: it.classId, totalSize: it.totalSize(layout))
    }

    /// Expired or flushed (memcached's crawler skips these in metadump and reclaims them in crawl).
    @inline(__always) func isDead(_ it: ItemRef, now: UInt32) -> Bool {
        (it.exptime != 0 && it.exptime < now) || isFlushed(it, now: now)
    }
}

/// One crawl in progress. Invariant: used by one thread at a time (the connection or job that started it);
/// sentinels are linked only while their class is active and are unlinked and freed by `finish()`, which
/// also releases the store's crawler slot (deinit does it for a crawl dropped unfinished).
public final class LRUCrawl: @unchecked Sendable {
    private let store: CacheStore
    /// LRU ids (class | segment << 6) still being walked, in memcached's crawl order (ascending).
    private var active: [Int]
    private var sentinels: [Int: UnsafeMutableRawPointer] = [:]
    /// Items looked at so far, by LRU id, against `toCrawl` (0 = no cap).
    private var checked: [Int]
    private let toCrawl: Int
    private let byHash: Bool
    private var nextSegment = 0
    private var finished = false

    init(store: CacheStore, classIds: [Int], byHash: Bool, toCrawl: Int = 0) {
        self.store = store
        self.byHash = byHash
        self.toCrawl = toCrawl
        checked = Array(repeating: 0, count: 256)
        active = byHash ? [] : Set(classIds).flatMap { cid in (0..<4).map { cid | $0 << 6 } }.sorted()
        for id in active {
            // nbytes 0 marks a sentinel (ItemRef.isCrawlerSentinel); it is never counted in its list.
            let s = UnsafeMutableRawPointer.allocate(byteCount: store.layout.keyOffset + 8, alignment: 16)
            memset(s, 0, store.layout.keyOffset + 8)
            let ref = ItemRef(s)
            ref.classId = id & 63
            ref.lruSegment = id >> 6
            sentinels[id] = s
            store.classLocks.lock(id & 63)
            let l = (store.classes + (id & 63)).list(id >> 6)
            // Link at the tail (memcached do_item_linktail_q).
            ref.next = nil
            ref.prev = l.pointee.tail
            if let t = l.pointee.tail { ItemRef(t).next = s } else { l.pointee.head = s }
            l.pointee.tail = s
            store.classLocks.unlock(id & 63)
        }
    }

    /// A crawl dropped unfinished (its connection went away) still gives its sentinels and the slot back.
    deinit { finish() }

    public var isDone: Bool { byHash ? nextSegment >= store.assoc.segmentCount : active.isEmpty }

    /// Visits up to `rounds` items per active class (or one hash segment per 256 rounds), calling `visit`
    /// for live items with the item's locks held (`visit` must not call into the store). True when done.
    public func step(rounds: Int, _ visit: (ItemMeta) -> Void) -> Bool {
        let now = store.clock.currentTime
        return advance(rounds: rounds) { it in
            if !store.isDead(it, now: now) { visit(store.meta(it)) }
            return false
        }
    }

    /// memcached's autoexpire crawler: unlinks expired and flushed items. True when done.
    public func reclaimStep(rounds: Int) -> Bool {
        let now = store.clock.currentTime
        return advance(rounds: rounds) { it in store.isDead(it, now: now) }
    }

    /// Unlinks the remaining sentinels and frees the crawler slot.
    public func finish() {
        if finished { return }
        for cid in active { unlinkSentinel(cid) }
        active.removeAll()
        finished = true
        store.crawlerBusy.store(false, ordering: .releasing)
    }

    // MARK: walking

    /// `handle` runs with the class lock (LRU mode) and the segment lock held; it returns true when the
    /// item is to be unlinked and freed.
    private func advance(rounds: Int, _ handle: (ItemRef) -> Bool) -> Bool {
        if byHash { return advanceHash(rounds: rounds, handle) }
        var round = 0
        while round < rounds && !active.isEmpty {
            round += 1
            var i = 0
            while i < active.count {
                if stepClass(active[i], handle) { i += 1 } else {
                    unlinkSentinel(active[i])
                    active.remove(at: i)
                }
            }
        }
        return active.isEmpty
    }

    /// One item of LRU `id`; false when the sentinel reached the head or the LRU had its `toCrawl`.
    private func stepClass(_ id: Int, _ handle: (ItemRef) -> Bool) -> Bool {
        if toCrawl > 0 && checked[id] >= toCrawl { return false }
        let cid = id & 63
        let s = ItemRef(sentinels[id]!)
        let c = store.classes + cid
        let l = c.list(id >> 6)
        store.classLocks.lock(cid)
        defer { store.classLocks.unlock(cid) }
        guard let p = s.prev else { return false }
        let it = ItemRef(p)
        swapTowardsHead(s, it, l)
        if it.isCrawlerSentinel { return true }
        let seg = store.assoc.segment(for: it.hash)
        if !store.assoc.locks.tryLock(seg) {
            // The lock order is segment, then class: let go of the class lock, wait for the segment,
            // take the class lock again and check the item is still the one right behind the
            // sentinel. (memcached's crawler skips such an item; a dump should not lose keys.)
            store.classLocks.unlock(cid)
            store.assoc.locks.lock(seg)
            store.classLocks.lock(cid)
            guard s.next == it.raw, !it.isCrawlerSentinel, store.assoc.segment(for: it.hash) == seg else {
                store.assoc.locks.unlock(seg)
                if s.next == it.raw { swapTowardsHead(it, s, l) }   // retry this position next round
                return true
            }
        }
        checked[id] += 1
        c.pointee.crawlerItemsChecked += 1
        if handle(it) {
            var deferred: UnsafeMutableRawPointer? = nil
            c.pointee.crawlerReclaimed += 1
            if it.itFlags & ItemFlags.fetched == 0 && !store.isFlushed(it, now: store.clock.currentTime) {
                c.pointee.expiredUnfetched += 1
            }
            store.assoc.remove(it, seg: seg)
            store.releaseLocked(it, in: c, deferred: &deferred)
            store.assoc.locks.unlock(seg)
            if deferred != nil {
                store.classLocks.unlock(cid)
                store.freeDeferred(deferred)
                store.classLocks.lock(cid)
            }
            return true
        }
        store.assoc.locks.unlock(seg)
        return true
    }

    /// `a` directly follows `b` (b is nearer the head) on list `l`: swap them. Caller holds the class lock.
    private func swapTowardsHead(_ a: ItemRef, _ b: ItemRef, _ l: UnsafeMutablePointer<LRUList>) {
        let before = b.prev, after = a.next
        if let x = before { ItemRef(x).next = a.raw } else { l.pointee.head = a.raw }
        a.prev = before; a.next = b.raw
        b.prev = a.raw; b.next = after
        if let y = after { ItemRef(y).prev = b.raw } else { l.pointee.tail = b.raw }
    }

    private func unlinkSentinel(_ id: Int) {
        guard let raw = sentinels.removeValue(forKey: id) else { return }
        store.classLocks.lock(id & 63)
        (store.classes + (id & 63)).lruUnlink(ItemRef(raw))
        store.classLocks.unlock(id & 63)
        raw.deallocate()
    }

    private func advanceHash(rounds: Int, _ handle: (ItemRef) -> Bool) -> Bool {
        var budget = max(1, rounds / 256)
        while budget > 0 && nextSegment < store.assoc.segmentCount {
            budget -= 1
            let seg = nextSegment
            nextSegment += 1
            store.assoc.locks.lock(seg)
            var dead: [ItemRef] = []
            store.assoc.forEachItem(seg: seg) { if handle($0) { dead.append($0) } }
            for it in dead { store.unlinkLocked(it, seg: seg) }
            store.assoc.locks.unlock(seg)
        }
        return nextSegment >= store.assoc.segmentCount
    }
}

extension CacheStore {
    /// Looks `key` up without side effects (no bump, no fetched flag, no unlink of a dead item): for
    /// `watch fetchers` lines describing what a command found. Status, value length, relative exptime.
    public func peek(_ key: UnsafeRawBufferPointer, hash: UInt32) -> (result: LookupResult, valueLength: Int, exptime: UInt32) {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        guard let it = assoc.find(key, hash: hash, seg: seg) else { return (.miss, 0, 0) }
        let now = clock.currentTime
        if isFlushed(it, now: now) { return (.flushed, 0, 0) }
        if it.exptime != 0 && it.exptime <= now { return (.expired, 0, 0) }
        return (.hit(classId: it.classId), it.valueLength, it.exptime)
    }
}
