// Owns slab memory: pages of `slabPageSize` bytes taken lazily per class under the `-m` limit (memcached
// slabs.c do_slabs_newslab / split_slab_page_into_freelist), each class's free-chunk list, and the per-class
// state that lives under the class lock (LRU ends and the `stats items` counters, see LRU.swift / Stats.swift).
import Glibc

/// One slab class, kept in raw memory owned by `SlabAllocator` (no reference counting on the hot path).
/// Invariant: every `var` is read and written only while `SlabAllocator.classLocks` entry `id` is held.
struct SlabClass {
    let id: Int
    let size: Int
    let perSlab: Int

    // Memory.
    var freeList: UnsafeMutableRawPointer? = nil
    var freeCount = 0
    var totalPages = 0
    // The LRU segments (HOT, WARM, COLD, TEMP) of the items linked in this class, see LRU.swift; reached
    // through `list(_:)`. `keyOffset` (the store's item layout) lets a list count its items' bytes.
    var lists = (LRUList(), LRUList(), LRUList(), LRUList())
    var keyOffset = itemHeaderSize
    // `stats items` / `stats` counters.
    var number = 0, memRequested = 0, totalItems = 0
    var evicted = 0, evictedNonzero = 0, evictedTime: UInt32 = 0, outOfMemory = 0
    var reclaimed = 0, expiredUnfetched = 0, evictedUnfetched = 0, evictedActive = 0
    var crawlerReclaimed = 0, crawlerItemsChecked = 0, lrutailReflocked = 0
    var movesToCold = 0, movesToWarm = 0, movesWithinLRU = 0, directReclaims = 0

    init(id: Int, size: Int, perSlab: Int) { self.id = id; self.size = size; self.perSlab = perSlab }
}

typealias SlabClassRef = UnsafeMutablePointer<SlabClass>

extension UnsafeMutablePointer where Pointee == SlabClass {
    /// Pops a free chunk. Caller holds this class's lock.
    @inline(__always) func popFree() -> UnsafeMutableRawPointer? {
        guard let p = pointee.freeList else { return nil }
        pointee.freeList = loadPointer(p, 0)
        pointee.freeCount -= 1
        return p
    }

    /// Returns a chunk to this class. Caller holds this class's lock.
    @inline(__always) func pushFree(_ p: UnsafeMutableRawPointer) {
        storePointer(p, 0, pointee.freeList)
        ItemRef(p).itFlags = 0   // not linked
        pointee.freeList = p
        pointee.freeCount += 1
    }
}

/// Invariant: `classes[id]` is the class with that id for id in 0...largestId (0 is an unused placeholder);
/// `classes` and `classLocks` live until `deinit`. The memory-limit fields and `pages` are touched only under
/// `memLock`, which is taken (briefly) only while holding a class lock, never the other way round. Pages are
/// freed only in `deinit`, when no thread can use the store.
final class SlabAllocator: @unchecked Sendable {
    let classes: UnsafeMutablePointer<SlabClass>
    let classCount: Int
    let largestId: Int
    let pageSize: Int
    let classLocks: LockArray
    private let memLock = LockArray.allocate(count: 1)
    private var memoryLimit: Int
    private var totalMalloced = 0
    private var mallocFails = 0
    private var pages: [UnsafeMutableRawPointer] = []

    init(table: [SlabClassInfo], pageSize: Int, memoryLimit: Int) {
        classCount = table.count + 1
        classes = .allocate(capacity: classCount)
        classes.initialize(to: SlabClass(id: 0, size: 0, perSlab: 0))
        for (i, info) in table.enumerated() {
            precondition(info.id == i + 1)
            (classes + i + 1).initialize(to: SlabClass(id: info.id, size: info.chunkSize, perSlab: info.perSlab))
        }
        largestId = table.last?.id ?? 0
        self.pageSize = pageSize
        self.memoryLimit = memoryLimit
        classLocks = .allocate(count: classCount)
    }

    deinit {
        for p in pages { munmap(p, pageSize) }
        classes.deinitialize(count: classCount)
        classes.deallocate()
        classLocks.destroy()
        memLock.destroy()
    }

    /// memcached do_slabs_newslab: refuse when over the limit, unless the class has no page yet.
    /// Caller holds `c`'s lock.
    func newPageLocked(_ c: SlabClassRef) -> Bool {
        memLock.lock(0)
        if memoryLimit != 0 && totalMalloced + pageSize > memoryLimit && c.pointee.totalPages > 0 {
            memLock.unlock(0)
            return false
        }
        // Pages are mapped directly (page-aligned, never moved, given back only at deinit): they stay
        // out of malloc's arenas, whose heaps otherwise kept tens of MB of RSS around a large fill.
        guard let page = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              page != MAP_FAILED else {
            mallocFails += 1
            memLock.unlock(0)
            return false
        }
        pages.append(page)
        totalMalloced += pageSize
        memLock.unlock(0)
        c.pointee.totalPages += 1
        let size = c.pointee.size
        for i in 0..<c.pointee.perSlab { c.pushFree(page + i * size) }
        return true
    }

    func setMemoryLimit(_ bytes: Int) {
        memLock.lock(0); memoryLimit = bytes; memLock.unlock(0)
    }

    func memoryStats() -> (limit: Int, malloced: Int, mallocFails: Int) {
        memLock.lock(0); defer { memLock.unlock(0) }
        return (memoryLimit, totalMalloced, mallocFails)
    }
}
