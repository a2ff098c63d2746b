// Owns moving slab pages between classes (memcached slabs.c slabs_reassign / slab_rebalance_start / _move /
// _finish and its rebalancer thread): `slabs reassign <src> <dst>`, automove's decisions and, with
// slab_automove=2, every eviction ask for a page of `src` (-1: any class with a spare page) to be emptied and
// given to `dst` (0: the global page pool).
//
// A background thread (started on the first request, exiting once its store is gone) empties the oldest
// page of the source class chunk by chunk, holding that class's lock for one chunk at a time:
// - a free chunk is cut out of the free list;
// - a linked item (found from its header, or from a value chunk's pointer to its header) whose segment lock
//   can be *tried* is rescued into a free chunk of the same class elsewhere when there is one
//   (`slab_reassign_rescues`; a value chunk is copied and its chain relinked: `slab_reassign_chunk_rescues`
//   only),
//   otherwise unlinked (`slab_reassign_evictions_nomem`); expired or flushed items are just unlinked;
// - free chunks of the page that the rescue allocation pops are `slab_reassign_inline_reclaim`;
// - anything else (allocated and not linked yet, being unlinked, pinned by a connection sending it, segment
//   busy) is busy: the pass goes on, and the page is walked again (after 1 ms) until no chunk is busy
//   (`slab_reassign_busy_items` counts them); after `maxBusyLoops` passes a pinned item is unlinked
//   (`slab_reassign_busy_deletes`) and its memory comes back when the connection lets go of it.
// When every chunk is cleared the page leaves the source class and is split into the destination's free list,
// or goes to the global pool, where pages beyond the memory limit are unmapped (memcached memory_release).
//
// Lock order is the store's: segment → class → memory; the mover only *tries* a segment lock while it holds a
// class lock, and releases the class lock before unlinking or replacing an item (which take class locks).
// The mover's own mutex is taken before a class lock (requests) or only tried under one (the eviction hook).
import CachetSync
import Glibc
import Synchronization

public enum ReassignResult: Sendable, Equatable {
    case ok, running, badClass, noSpare, same
}

/// memcached's `slab_reassign_*` / `slabs_moved` counters.
public struct SlabMoverStats: Sendable, Equatable {
    public var rescues = 0, chunkRescues = 0, evictionsNomem = 0, inlineReclaim = 0
    public var busyItems = 0, busyDeletes = 0, slabsMoved = 0
    public var running = false
    public init() {}
}

/// The mover's state, behind its own pthread mutex and condition variable.
/// Invariant: every field of `state` is read and written with `mutex` held; `signal` is 0 (idle), 1 (a move
/// was requested) or 2 (a page is being moved), as memcached's slab_rebalance_signal.
final class SlabMover: @unchecked Sendable {
    struct State {
        var signal = 0
        var src = 0, dst = 0
        var threadRunning = false
        var stats = SlabMoverStats()
        /// memcached slabs_reassign_pick_any's rotating cursor.
        var pickCursor = 0
    }
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var state = State()
    /// `slab_automove` level (0, 1, 2): 2 makes every eviction request a move.
    let automoveLevel = Atomic<Int>(0)
    /// `slab_automove_ratio`, as a Double's bit pattern.
    let automoveRatioBits = Atomic<UInt64>((0.8 as Double).bitPattern)
    /// `slab_reassign`: without it nothing is ever moved (the server refuses the command too).
    let enabled = Atomic<Bool>(true)

    /// Passes over a page with busy chunks before pinned items are unlinked (memcached SLAB_MOVE_MAX_LOOPS).
    static let maxBusyLoops = 1000

    init() {
        mutex.initialize(to: pthread_mutex_t()); pthread_mutex_init(mutex, nil)
        cond.initialize(to: pthread_cond_t()); pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond); cond.deallocate()
        pthread_mutex_destroy(mutex); mutex.deallocate()
    }

    func withLock<R>(_ body: (inout State) -> R) -> R {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return body(&state)
    }

    /// As `withLock`, nil when the mutex is taken (memcached's trylock of slabs_rebalance_lock).
    func withTryLock<R>(_ body: (inout State) -> R) -> R? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return body(&state)
    }

    func wake() { pthread_cond_signal(cond) }

    /// Waits up to `seconds` for a signal; caller holds `mutex` (inside `withLock`).
    func waitLocked(seconds: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        ts.tv_sec += seconds
        pthread_cond_timedwait(cond, mutex, &ts)
    }
}

/// What a background thread keeps of its store while idle.
final class WeakStore: @unchecked Sendable {
    weak var store: CacheStore?
    init(_ s: CacheStore) { store = s }
}

/// Starts a detached thread running `body`.
func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var thread = pthread_t()
    let arg = Unmanaged.passRetained(Box(body)).toOpaque()
    let rc = pthread_create(&thread, nil, { arg in
        let box = Unmanaged<AnyObject>.fromOpaque(arg!).takeRetainedValue() as! Box
        box.body()
        return nil
    }, arg)
    precondition(rc == 0, "cachet: cannot start a background thread")
    pthread_detach(thread)
}

extension CacheStore {
    // MARK: Requests

    /// memcached slabs_reassign: starts moving one page of `src` (-1: any class with a spare page, in turn)
    /// to `dst` (0: the global pool). Replies as memcached: busy while a move runs, then SAME, BADCLASS,
    /// NOSPARE (the source needs at least 2 pages; the pool as source, 2 pooled pages) in that order.
    public func slabsReassign(src: Int, dst: Int) -> ReassignResult {
        let r = mover.withLock { st -> ReassignResult in
            if st.signal != 0 { return .running }
            if src == dst { return .same }
            var s = src
            if s == -1 { s = pickAnyLocked(&st, dst: dst) }
            if s < 0 || s > largestClassId || dst < 0 || dst > largestClassId { return .badClass }
            if pageCountOrPool(s) < 2 { return .noSpare }
            st.signal = 1; st.src = s; st.dst = dst
            ensureMoverThreadLocked(&st)
            return .ok
        }
        if r == .ok { mover.wake() }
        return r
    }

    /// slab_automove=2 (memcached lru_pull_tail): an eviction in `classId` asks for a page from any class.
    /// Called with that class's lock held: the request only tries the mover's mutex, and the source is
    /// picked by the mover thread.
    @inline(__always) func noteEviction(classId: Int) {
        guard mover.automoveLevel.load(ordering: .relaxed) == 2 else { return }
        let started = mover.withTryLock { st -> Bool in
            guard st.signal == 0 else { return false }
            st.signal = 1; st.src = -1; st.dst = classId
            ensureMoverThreadLocked(&st)
            return true
        }
        if started == true { mover.wake() }
    }

    /// `slab_automove` level, `slab_reassign` switch.
    public var slabAutomoveLevel: Int {
        get { mover.automoveLevel.load(ordering: .relaxed) }
        set { mover.automoveLevel.store(newValue, ordering: .relaxed) }
    }

    public var slabMoverStats: SlabMoverStats { mover.withLock { $0.stats } }

    /// memcached's `slab_global_page_pool`.
    public var globalPagePool: Int { allocator.poolPages }

    private func pageCountOrPool(_ id: Int) -> Int { id == 0 ? allocator.poolPages : pageCount(classId: id) }

    /// memcached slabs_reassign_pick_any: the next class (round robin) other than `dst` with 2+ pages, or -1.
    private func pickAnyLocked(_ st: inout SlabMover.State, dst: Int) -> Int {
        for _ in 0..<largestClassId {
            st.pickCursor += 1
            if st.pickCursor > largestClassId { st.pickCursor = 1 }
            if st.pickCursor == dst { continue }
            if pageCount(classId: st.pickCursor) > 1 { return st.pickCursor }
        }
        return -1
    }

    private func ensureMoverThreadLocked(_ st: inout SlabMover.State) {
        if st.threadRunning { return }
        st.threadRunning = true
        let mover = self.mover
        let ref = WeakStore(self)
        startDetachedThread { CacheStore.moverThread(mover, ref) }
    }

    // MARK: The mover thread

    /// memcached slab_rebalance_thread: waits for a request, runs it to the end, waits again; exits when the
    /// store is gone (it keeps only a weak reference while idle).
    private static func moverThread(_ mover: SlabMover, _ ws: WeakStore) {
        while true {
            let job = mover.withLock { st -> (Int, Int)? in
                while st.signal != 1 {
                    if ws.store == nil { st.threadRunning = false; return nil }
                    mover.waitLocked(seconds: 1)
                }
                return (st.src, st.dst)
            }
            guard let (src, dst) = job else { return }
            guard let store = ws.store else { mover.withLock { $0.signal = 0; $0.threadRunning = false }; return }
            store.runMove(src: src, dst: dst)
        }
    }

    /// One move, from start to finish (or abandoned when the source has no spare page any more).
    private func runMove(src requested: Int, dst: Int) {
        var src = requested
        if src == -1 {
            src = mover.withLock { st in pickAnyLocked(&st, dst: dst) }
        }
        // memcached slab_rebalance_start: re-checks the classes and that the source still has 2+ pages.
        guard src >= 0, src <= largestClassId, dst >= 0, dst <= largestClassId, src != dst,
              pageCountOrPool(src) >= 2 else {
            mover.withLock { $0.signal = 0 }
            return
        }
        mover.withLock { $0.signal = 2; $0.stats.running = true }
        var counters = SlabMoverStats()
        let page: UnsafeMutableRawPointer?
        if src == 0 {
            page = allocator.takePageFromPool()
        } else {
            page = emptyOldestPage(of: src, counters: &counters)
        }
        if let page {
            if dst == 0 {
                allocator.givePageToPool(page)
            } else {
                // The destination's new chunks are carved from the page as from a freshly mapped one.
                memset(page, 0, allocator.pageSize)
                classLocks.lock(dst)
                (classes + dst).addPage(page)
                classLocks.unlock(dst)
            }
            counters.slabsMoved = 1
        }
        mover.withLock { st in
            st.stats.rescues += counters.rescues
            st.stats.chunkRescues += counters.chunkRescues
            st.stats.evictionsNomem += counters.evictionsNomem
            st.stats.inlineReclaim += counters.inlineReclaim
            st.stats.busyDeletes += counters.busyDeletes
            st.stats.slabsMoved += counters.slabsMoved
            st.stats.running = false
            st.signal = 0
        }
    }

    /// Clears every chunk of `src`'s oldest page and takes the page out of the class; nil when the class has
    /// fewer than 2 pages.
    private func emptyOldestPage(of src: Int, counters: inout SlabMoverStats) -> UnsafeMutableRawPointer? {
        let c = classes + src
        classLocks.lock(src)
        guard c.pointee.totalPages >= 2 else { classLocks.unlock(src); return nil }
        let page = c.pointee.pages[0]
        let size = c.pointee.size, perSlab = c.pointee.perSlab
        classLocks.unlock(src)
        var move = PageMove(page: page, size: size, perSlab: perSlab)
        while true {
            var busy = 0
            for i in 0..<perSlab where !move.completed[i] {
                if moveChunk(i, src: src, move: &move, counters: &counters) == .busy { busy += 1 }
            }
            if move.completed.allSatisfy({ $0 }) { break }
            if busy > 0 {
                // memcached adds a pass's busy items to the stat as soon as the pass ends.
                mover.withLock { $0.stats.busyItems += busy }
                move.busyLoops += 1
                usleep(1000)
            }
        }
        classLocks.lock(src)
        if let at = c.pointee.pages.firstIndex(of: page) { c.pointee.pages.remove(at: at) }
        classLocks.unlock(src)
        return page
    }

    private enum ChunkStatus { case done, busy, retry }

    /// The page being emptied and which of its chunks are cleared (mover thread only).
    private struct PageMove {
        let page: UnsafeMutableRawPointer
        let size: Int
        let end: UnsafeMutableRawPointer
        var completed: [Bool]
        var busyLoops = 0
        init(page: UnsafeMutableRawPointer, size: Int, perSlab: Int) {
            self.page = page; self.size = size
            end = page + size * perSlab
            completed = Array(repeating: false, count: perSlab)
        }
        func index(of p: UnsafeMutableRawPointer) -> Int? {
            p >= page && p < end ? (p - page) / size : nil
        }
    }

    /// memcached slab_rebalance_move for one chunk.
    private func moveChunk(_ i: Int, src: Int, move: inout PageMove, counters: inout SlabMoverStats) -> ChunkStatus {
        let c = classes + src
        let p = move.page + i * move.size
        classLocks.lock(src)
        let mark = ItemRef(p).itFlags
        if mark == ChunkMark.free {
            c.cutFree(p)
            move.completed[i] = true
            classLocks.unlock(src)
            return .done
        }
        var head = ItemRef(p)
        var valueChunk: UnsafeMutableRawPointer? = nil
        if mark == ChunkMark.valueChunk {
            guard let h = ChunkMark.head(of: p) else { classLocks.unlock(src); return .busy }
            head = ItemRef(h)
            valueChunk = p
        } else if ChunkMark.isMark(mark) {
            classLocks.unlock(src)
            if mark == ChunkMark.cleared { move.completed[i] = true; return .done }
            return .busy
        }
        // Not free: an item header (or the head of a value chunk). Only a linked one can be moved; its hash
        // was written before it was linked (the flags byte is read with acquire ordering).
        guard head.itFlags & ItemFlags.linked != 0 else { classLocks.unlock(src); return .busy }
        let seg = assoc.segment(for: head.hash)
        if !assoc.locks.tryLock(seg) {
            // Someone holds the segment (a request on another key, `stats` counting buckets): wait for it
            // in lock order (segment, then class) and check the chunk still holds the same item.
            classLocks.unlock(src)
            assoc.locks.lock(seg)
            classLocks.lock(src)
            let again = ItemRef(p).itFlags
            let sameHead = again == ChunkMark.valueChunk ? ChunkMark.head(of: p) == head.raw
                                                         : !ChunkMark.isMark(again) && valueChunk == nil
            guard again == mark || (valueChunk == nil && !ChunkMark.isMark(again)), sameHead,
                  head.itFlags & ItemFlags.linked != 0, assoc.segment(for: head.hash) == seg else {
                assoc.locks.unlock(seg); classLocks.unlock(src); return .busy
            }
        }
        // Under the segment lock the item cannot be linked or unlinked by anyone else.
        guard head.itFlags & ItemFlags.linked != 0,
              valueChunk == nil || chainLink(of: head, to: valueChunk!) != nil else {
            assoc.locks.unlock(seg); classLocks.unlock(src); return .busy
        }
        if head.itFlags & ItemFlags.pinned != 0 {
            classLocks.unlock(src)
            if move.busyLoops > SlabMover.maxBusyLoops {
                counters.busyDeletes += 1
                unlinkLocked(head, seg: seg)   // its memory comes back when the connection unpins it
            }
            assoc.locks.unlock(seg)
            return .busy
        }
        let now = clock.currentTime
        var fresh: UnsafeMutableRawPointer? = nil
        if !isDead(head, now: now) {
            fresh = rebalanceAllocLocked(c, move: &move, counters: &counters)
            if fresh == nil { counters.evictionsNomem += 1 }
        }
        // A plain item is copied while its LRU's class lock is still held: the LRU code may change header
        // bytes (the LRU segment bits of byte 46) under that lock alone.
        if let fresh, valueChunk == nil, !head.isChunked { copyItem(head, into: fresh) }
        // What the mover frees of this chunk is cleared, not put back on the free list (memcached marks it
        // cleared too): a rescued value chunk is cleared below without being freed.
        if valueChunk == nil || fresh == nil { c.pointee.clearOnFree = p }
        classLocks.unlock(src)
        if let fresh {
            if let ch = valueChunk {
                rescueValueChunk(ch, into: fresh, head: head, chunkSize: move.size)
                counters.chunkRescues += 1   // memcached counts these apart from `rescues`
                assoc.locks.unlock(seg)
                classLocks.lock(src)
                ItemRef(ch).itFlags = ChunkMark.cleared
                move.completed[i] = true
                classLocks.unlock(src)
                return .done
            }
            if head.isChunked { copyItem(head, into: fresh) }
            replaceLocked(head, with: ItemRef(fresh), seg: seg, cas: head.cas(layout))
            counters.rescues += 1
        } else {
            unlinkLocked(head, seg: seg)
        }
        assoc.locks.unlock(seg)
        // The item's chunk was freed as cleared (the chunk of a chunked item's header may still be on its
        // way when another thread holds the last reference: then the next pass sees it).
        classLocks.lock(src)
        if c.pointee.clearOnFree == p { c.pointee.clearOnFree = nil }
        if ItemRef(p).itFlags == ChunkMark.cleared { move.completed[i] = true }
        classLocks.unlock(src)
        return move.completed[i] ? .done : .retry
    }

    /// memcached slab_rebalance_alloc: a free chunk of the class outside the page being emptied; chunks of
    /// that page met on the way are cleared. Caller holds the class lock.
    private func rebalanceAllocLocked(_ c: SlabClassRef, move: inout PageMove,
                                      counters: inout SlabMoverStats) -> UnsafeMutableRawPointer? {
        for _ in 0..<c.pointee.perSlab {
            guard let p = c.popFree() else { return nil }
            guard let i = move.index(of: p) else { return p }
            ItemRef(p).itFlags = ChunkMark.cleared
            move.completed[i] = true
            counters.inlineReclaim += 1
        }
        return nil
    }

    /// The address of the pointer in `head`'s chain that points to `chunk`, or nil. Caller holds the
    /// item's segment lock.
    private func chainLink(of head: ItemRef, to chunk: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        guard head.isChunked else { return nil }
        var link = head.chunkInfo(layout)
        while let ch = loadPointer(link, 0) {
            if ch == chunk { return link }
            link = ch
        }
        return nil
    }

    /// Copies a linked item (plain, or a chunked item's header) into `fresh`, for `replaceLocked` to link the
    /// copy in its place with the same CAS (memcached do_item_replace; like memcached, the copy is linked as a
    /// new item: time = now). Caller holds the item's segment lock.
    private func copyItem(_ old: ItemRef, into fresh: UnsafeMutableRawPointer) {
        // Bytes 0..23 (hash chain and LRU links) are not copied: other threads change them under locks this
        // thread does not hold.
        let length = old.isChunked ? layout.chunkInfoOffset(keyLength: old.nkey) + 8 : old.totalSize(layout)
        memcpy(fresh + 24, old.raw + 24, length - 24)
        let it = ItemRef(fresh)
        it.hNext = nil; it.prev = nil; it.next = nil
        it.itFlags = old.itFlags & ~ItemFlags.linked
        if old.isChunked {
            // The value chunks now belong to the copy: the old header leaves with an empty chain.
            var chunk = loadPointer(it.chunkInfo(layout), 0)
            while let ch = chunk {
                ChunkMark.setHead(ch, fresh)
                chunk = loadPointer(ch, 0)
            }
            storePointer(old.chunkInfo(layout), 0, nil)
        }
    }

    /// Copies value chunk `chunk` of `head` into `fresh` (same class) and relinks the chain through it.
    /// Caller holds the item's segment lock (every reader of the chain does, or has pinned the item).
    private func rescueValueChunk(_ chunk: UnsafeMutableRawPointer, into fresh: UnsafeMutableRawPointer,
                                  head: ItemRef, chunkSize: Int) {
        let link = chainLink(of: head, to: chunk)!
        memcpy(fresh, chunk, chunkSize)
        ChunkMark.setHead(fresh, head.raw)
        storePointer(link, 0, fresh)
    }
}
