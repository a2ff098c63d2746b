// Owns the segmented LRU's policy (memcached 1.6.18 items.c): what a fetch does to an item (FETCHED, then
// ACTIVE, a COLD hit rescued to WARM), `lru_pull_tail` — the one routine that reclaims expired items from a
// segment's tail, moves HOT/WARM overflow to COLD, rescues ACTIVE items and evicts from COLD — and the
// maintainer's per-class `juggle`, run by a background thread (CachetServer's LRUMaintainer) so requests
// rarely have to do that work themselves.
//
// Locks: everything here runs under the class lock, and tail items are only *tried* for their segment lock
// (the store's order is segment → class), exactly as eviction always did. A fetch runs under the item's
// segment lock and takes the class lock only when it moves the item (a COLD hit, or at most once a minute).
// memcached hands COLD hits to its maintainer through per-thread bump buffers; Cachet moves them at once
// (one short class-lock hold per rescued item), so `lru_bumps_dropped` stays 0.
//
// `-o lru_policy=s3fifo` (LRUPolicyKind) changes two things here: an unfetched item leaving HOT goes to COLD's
// tail, and an unfetched eviction leaves its key's hash in the class's ghost table (GhostTable.swift).
import Synchronization

/// memcached's run-time LRU settings (`lru mode`, `lru tune`, `lru temp_ttl`, `-o hot_lru_pct …`), read by
/// every request and the maintainer, written by commands: atomics.
public final class LRUPolicy: Sendable {
    let segmentedFlag: Atomic<Bool>
    let tempFlag: Atomic<Bool>
    let temporaryTTLValue: Atomic<Int>
    let hotPctValue: Atomic<Int>
    let warmPctValue: Atomic<Int>
    let hotFactorBits: Atomic<UInt64>
    let warmFactorBits: Atomic<UInt64>
    /// `-o lru_policy=s3fifo` (fixed at start), read where HOT's tail leaves, on eviction and on link.
    let s3fifo: Bool

    init(_ c: StoreConfig) {
        s3fifo = c.lruPolicyKind == .s3fifo
        segmentedFlag = Atomic(c.lruSegmented)
        tempFlag = Atomic(c.tempLRU)
        temporaryTTLValue = Atomic(c.temporaryTTL)
        hotPctValue = Atomic(c.hotLRUPct)
        warmPctValue = Atomic(c.warmLRUPct)
        hotFactorBits = Atomic(c.hotMaxFactor.bitPattern)
        warmFactorBits = Atomic(c.warmMaxFactor.bitPattern)
    }

    /// memcached `lru_segmented` (`lru mode segmented|flat`).
    public var segmented: Bool {
        get { segmentedFlag.load(ordering: .relaxed) }
        set { segmentedFlag.store(newValue, ordering: .relaxed) }
    }
    /// memcached `temp_lru`: items whose TTL is at most `temporaryTTL` go to the TEMP LRU.
    public var tempLRU: Bool {
        get { tempFlag.load(ordering: .relaxed) }
        set { tempFlag.store(newValue, ordering: .relaxed) }
    }
    public var temporaryTTL: Int {
        get { temporaryTTLValue.load(ordering: .relaxed) }
        set { temporaryTTLValue.store(newValue, ordering: .relaxed) }
    }
    public var hotPct: Int { hotPctValue.load(ordering: .relaxed) }
    public var warmPct: Int { warmPctValue.load(ordering: .relaxed) }
    public var hotMaxFactor: Double { Double(bitPattern: hotFactorBits.load(ordering: .relaxed)) }
    public var warmMaxFactor: Double { Double(bitPattern: warmFactorBits.load(ordering: .relaxed)) }

    /// `lru tune` (the caller has checked the values as memcached does).
    public func tune(hotPct: Int, warmPct: Int, hotMaxFactor: Double, warmMaxFactor: Double) {
        hotPctValue.store(hotPct, ordering: .relaxed)
        warmPctValue.store(warmPct, ordering: .relaxed)
        hotFactorBits.store(hotMaxFactor.bitPattern, ordering: .relaxed)
        warmFactorBits.store(warmMaxFactor.bitPattern, ordering: .relaxed)
    }
}

extension CacheStore {
    /// The segment a new item is linked into (memcached do_item_alloc): TEMP for a TTL within
    /// temporary_ttl when the TEMP LRU is on, else HOT when segmented, else COLD (flat mode).
    @inline(__always) func initialSegment(exptime: UInt32, now: UInt32) -> Int {
        if lruPolicy.tempLRU && exptime &- now <= UInt32(truncatingIfNeeded: lruPolicy.temporaryTTL) {
            return LRUSegment.temp
        }
        return lruPolicy.segmented ? LRUSegment.hot : LRUSegment.cold
    }

    /// memcached do_item_get's bump of a fetched item. Segmented: the first fetch sets FETCHED, the second
    /// ACTIVE, which refreshes the access time (a COLD item is rescued to WARM); flat: FETCHED and a move to
    /// the head at most once a minute. Caller holds the item's segment lock.
    @inline(__always) func bumpLocked(_ it: ItemRef) {
        let f = it.itFlags
        guard lruPolicy.segmented else {
            it.itFlags = f | ItemFlags.fetched
            updateLocked(it)
            return
        }
        if f & ItemFlags.active != 0 { return }
        if f & ItemFlags.fetched == 0 {
            it.itFlags = f | ItemFlags.fetched
            return
        }
        it.itFlags = f | ItemFlags.active
        updateLocked(it)
    }

    /// memcached do_item_update: segmented, an ACTIVE item in COLD moves to WARM (ACTIVE cleared), and the
    /// access time is refreshed either way; flat, at most once a minute the item's time is refreshed and it
    /// moves to its list's head. Caller holds the item's segment lock.
    @inline(__always) func updateLocked(_ it: ItemRef) {
        let now = clock.currentTime
        if lruPolicy.segmented {
            guard it.lruSegment == LRUSegment.cold && it.itFlags & ItemFlags.active != 0 else {
                it.time = now
                return
            }
        } else if Int64(it.time) >= Int64(now) - Int64(itemUpdateInterval) {
            return
        }
        relinkOnUpdate(it, now: now)
    }

    /// The part of `updateLocked` that moves the item, under its class lock: kept out of line so that the
    /// common case (a fetch that only refreshes the time) is inlined into the request path.
    @inline(never)
    func relinkOnUpdate(_ it: ItemRef, now: UInt32) {
        let cid = it.classId
        let c = classes + cid
        classLocks.lock(cid)
        if it.itFlags & ItemFlags.linked != 0 {
            it.time = now
            if lruPolicy.segmented {
                it.itFlags &= ~ItemFlags.active
                c.lruMove(it, to: LRUSegment.warm)
                c.pointee.movesToWarm += 1
            } else {
                c.lruMoveToHead(it)
            }
        }
        classLocks.unlock(cid)
    }

    // MARK: lru_pull_tail

    /// memcached lru_pull_tail on segment `seg` of class `c` (whose lock the caller holds): looks at up to 5
    /// tail items; reclaims expired/flushed ones and keeps going; then, by segment — HOT/WARM: an ACTIVE item
    /// is rescued (HOT → WARM; WARM: back to its head) and an item over the segment's share of `totalBytes` or
    /// older than `maxAge` moves to COLD; COLD: with `evict`, the tail item is evicted, else an ACTIVE one
    /// goes to WARM; TEMP: reclaims only. `crawlBlocks` (the maintainer) gives up at a crawler sentinel.
    /// `heldHash`: the caller allocates while holding the segment lock of a key with this hash; tail items
    /// memcached's item lock for that key would cover are skipped (ItemLockStripes.swift).
    /// Returns how many items it removed or moved. Chunks of other classes land on `deferred`.
    func pullTailLocked(_ c: SlabClassRef, seg: Int, totalBytes: Int, maxAge: UInt32, evict: Bool,
                        crawlBlocks: Bool, now: UInt32, deferred: inout UnsafeMutableRawPointer?,
                        heldHash: UInt32? = nil) -> Int {
        let limit = seg == LRUSegment.hot ? totalBytes * lruPolicy.hotPct / 100
            : seg == LRUSegment.warm ? totalBytes * lruPolicy.warmPct / 100 : 0
        return pullTail(c, seg: seg, limit: limit, maxAge: maxAge, evict: evict, crawlBlocks: crawlBlocks,
                        now: now, deferred: &deferred, heldHash: heldHash)
    }

    /// The body of `pullTailLocked`, with HOT's or WARM's byte limit worked out by the caller (memcached:
    /// total_bytes × hot_lru_pct or warm_lru_pct / 100). Inlined where its arguments are constants — the
    /// maintainer's juggle — so the branches for eviction and for an allocation under a key's lock fold away.
    @inline(__always)
    func pullTail(_ c: SlabClassRef, seg: Int, limit: Int, maxAge: UInt32, evict: Bool, crawlBlocks: Bool,
                  now: UInt32, deferred: inout UnsafeMutableRawPointer?, heldHash: UInt32?) -> Int {
        var removed = 0
        var tries = 5
        var search = c.list(seg).pointee.tail
        while tries > 0, let raw = search {
            let it = ItemRef(raw)
            search = it.prev
            if it.isCrawlerSentinel {
                if crawlBlocks { return removed }
                continue   // a crawl's sentinel costs no try
            }
            tries -= 1
            let lock = assoc.segment(for: it.hash)
            // Under the caller's own key lock memcached's try fails on that key's stripe: skip exactly those
            // items; one in the segment the caller holds (another stripe) is handled under that hold.
            var heldByCaller = false
            if let held = heldHash {
                if itemLockStripes.shareStripe(it.hash, held) { continue }
                heldByCaller = assoc.segment(for: held) == lock
            }
            guard heldByCaller || assoc.locks.tryLock(lock) else { continue }
            // Being sent from slab memory: neither reclaiming nor evicting would free anything now
            // (memcached counts such tail items as lrutail_reflocked).
            if it.itFlags & ItemFlags.pinned != 0 {
                c.pointee.lrutailReflocked += 1
                if !heldByCaller { assoc.locks.unlock(lock) }
                continue
            }
            let flags = it.itFlags
            if (it.exptime != 0 && it.exptime < now) || isFlushed(it, now: now) {
                c.pointee.reclaimed += 1
                if flags & ItemFlags.fetched == 0 { c.pointee.expiredUnfetched += 1 }
                assoc.remove(it, seg: lock)
                releaseLocked(it, in: c, deferred: &deferred)
                if !heldByCaller { assoc.locks.unlock(lock) }
                removed += 1
                continue   // all expired so far: keep looking
            }
            switch seg {
            case LRUSegment.hot, LRUSegment.warm:
                if flags & ItemFlags.active != 0 {
                    it.itFlags = flags & ~ItemFlags.active
                    removed += 1
                    if seg == LRUSegment.warm {
                        // Still wanted: back to WARM's head, and the walk goes on.
                        c.pointee.movesWithinLRU += 1
                        c.lruMoveToHead(it)
                        if !heldByCaller { assoc.locks.unlock(lock) }
                        continue
                    }
                    c.pointee.movesToWarm += 1
                    c.lruMove(it, to: LRUSegment.warm)
                } else if c.list(seg).pointee.bytes > limit || now &- it.time > maxAge {
                    c.pointee.movesToCold += 1
                    if seg == LRUSegment.hot && lruPolicy.s3fifo && flags & ItemFlags.fetched == 0
                        && lruPolicy.segmented {
                        // s3fifo: nobody asked for it while it was new — most likely a one-hit wonder, so it
                        // is the next to go rather than taking a full pass through COLD.
                        c.lruMoveToTail(it, of: LRUSegment.cold)
                    } else {
                        c.lruMove(it, to: LRUSegment.cold)
                    }
                    removed += 1
                }
            case LRUSegment.cold:
                if evict {
                    if !config.evictionsEnabled { break }
                    c.pointee.evicted += 1
                    c.pointee.evictedTime = now &- it.time
                    if it.exptime != 0 { c.pointee.evictedNonzero += 1 }
                    if flags & ItemFlags.fetched == 0 { c.pointee.evictedUnfetched += 1 }
                    if flags & ItemFlags.active != 0 { c.pointee.evictedActive += 1 }
                    if lruPolicy.s3fifo && flags & ItemFlags.fetched == 0 { c.rememberEvicted(it) }
                    if events.evictionsWatched.load(ordering: .relaxed) { events.reportEviction(it, layout: layout, now: now) }
                    assoc.remove(it, seg: lock)
                    releaseLocked(it, in: c, deferred: &deferred)
                    removed += 1
                    noteEviction(classId: c.pointee.id)   // slab_automove=2 (SlabMover.swift)
                } else if flags & ItemFlags.active != 0 && lruPolicy.segmented {
                    c.pointee.movesToWarm += 1
                    it.itFlags = flags & ~ItemFlags.active
                    c.lruMove(it, to: LRUSegment.warm)
                    removed += 1
                }
            default:
                break   // TEMP: only reclaims
            }
            if !heldByCaller { assoc.locks.unlock(lock) }
            break
        }
        return removed
    }

    // MARK: the maintainer's work

    /// memcached lru_maintainer_juggle for class `classId`: reclaims TEMP's expired tail, then up to 500
    /// rounds of HOT/WARM overflow to COLD and COLD rescues, 8 rounds per short hold of the class lock.
    /// HOT items older than hot_max_factor × COLD's tail age (WARM: warm_max_factor ×) move to COLD too;
    /// in flat mode (ages 0) HOT and WARM drain into COLD. Returns the rounds that did something.
    public func juggle(classId: Int) -> Int {
        guard classId >= 1 && classId <= largestClassId else { return 0 }
        let c = classes + classId
        var did = 0
        var deferred: UnsafeMutableRawPointer? = nil
        if lruPolicy.tempLRU {
            for _ in 0..<500 {
                classLocks.lock(classId)
                let n = pullTailLocked(c, seg: LRUSegment.temp, totalBytes: 0, maxAge: 0, evict: false,
                                       crawlBlocks: false, now: clock.currentTime, deferred: &deferred)
                classLocks.unlock(classId)
                freeDeferred(deferred); deferred = nil
                if n <= 0 { break }
                did += 1
            }
        }
        let segmented = lruPolicy.segmented
        var hotAge: UInt32 = 0, warmAge: UInt32 = 0, totalBytes = 0
        if segmented {
            classLocks.lock(classId)
            let now = clock.currentTime
            let coldAge = c.tailItem(LRUSegment.cold).map { now &- $0.time } ?? 0
            totalBytes = c.list(LRUSegment.hot).pointee.bytes + c.list(LRUSegment.warm).pointee.bytes
                + c.list(LRUSegment.cold).pointee.bytes
            classLocks.unlock(classId)
            hotAge = UInt32(clamping: Int(Double(coldAge) * lruPolicy.hotMaxFactor))
            warmAge = UInt32(clamping: Int(Double(coldAge) * lruPolicy.warmMaxFactor))
        }
        // memcached works HOT's and WARM's byte limits out on every tail pull; the settings they come from
        // (`lru tune`) are read once per juggle here, as the class's total and the ages already are.
        let hotLimit = totalBytes * lruPolicy.hotPct / 100
        let warmLimit = totalBytes * lruPolicy.warmPct / 100
        // Up to 500 rounds, each pulling the tail of every segment that is still busy: a segment whose pull
        // found nothing to do is not looked at again in this juggle (new work there waits for the next one,
        // at most the back-off later). Under a steady read load only WARM keeps having work (re-activated
        // items), so a round costs one tail look instead of three; COLD's look (an ACTIVE tail item, which
        // request threads already rescue themselves) is nearly always idle. Rounds run in batches of
        // `roundsPerHold` under one class-lock hold: each round is a few pointer moves, so the lock is taken an
        // eighth as often and still held only a few microseconds at a time.
        let roundsPerHold = 8
        // Bit `seg` set: that segment's last pull did something (HOT, WARM; COLD only when segmented).
        var busy = segmented ? 0b111 : 0b011
        var rounds = 0
        while rounds < 500 && busy != 0 {
            classLocks.lock(classId)
            let now = clock.currentTime
            let end = min(rounds + roundsPerHold, 500)
            did += juggleRoundsLocked(c, busy: &busy, rounds: &rounds, end: end, hotLimit: hotLimit,
                                      warmLimit: warmLimit, hotAge: hotAge, warmAge: warmAge, now: now,
                                      deferred: &deferred)
            classLocks.unlock(classId)
            if deferred != nil { freeDeferred(deferred); deferred = nil }
        }
        return did
    }

    /// The rounds of one class-lock hold of `juggle` (the caller holds the lock), up to round `end` or until
    /// no segment is busy; returns the rounds that did something. A function of its own, small enough for
    /// the tail pull (one call site) to be inlined with its constant arguments: the maintainer makes one
    /// pull per moved item, and a call's set-up plus the branches for eviction and for a caller's held key
    /// lock were a good part of a move's cost.
    @inline(never)
    func juggleRoundsLocked(_ c: SlabClassRef, busy: inout Int, rounds: inout Int, end: Int, hotLimit: Int,
                            warmLimit: Int, hotAge: UInt32, warmAge: UInt32, now: UInt32,
                            deferred: inout UnsafeMutableRawPointer?) -> Int {
        var did = 0
        repeat {
            var seg = LRUSegment.hot
            while seg <= LRUSegment.cold {
                if busy & (1 << seg) != 0 {
                    // COLD's pull (no eviction) uses neither the limit nor the age.
                    let hot = seg == LRUSegment.hot
                    if pullTail(c, seg: seg, limit: hot ? hotLimit : warmLimit, maxAge: hot ? hotAge : warmAge,
                                evict: false, crawlBlocks: true, now: now, deferred: &deferred, heldHash: nil) == 0 {
                        busy &= ~(1 << seg)
                    }
                }
                seg += 1
            }
            rounds += 1
            guard busy != 0 else { break }
            did += 1
        } while rounds < end
        return did
    }
}
