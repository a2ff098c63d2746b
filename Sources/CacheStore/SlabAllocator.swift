// Owns slab memory: pages of `slabPageSize` bytes taken lazily per class under the `-m` limit (memcached
// slabs.c do_slabs_newslab / split_slab_page_into_freelist), each class's free-chunk list, and the per-class
// state that lives under the class lock (LRU ends and the `stats items` counters, see LRU.swift / Stats.swift).
import Glibc

/// One slab class.
/// Invariant: every `var` is read and written only while `SlabAllocator.classLocks` entry `id` is held.
final class SlabClass: @unchecked Sendable {
    let id: Int
    let size: Int
    let perSlab: Int

    // Memory.
    var freeList: UnsafeMutableRawPointer?
    var freeCount = 0
    var totalPages = 0
    // LRU (items whose head chunk is in this class), see LRU.swift.
    var lruHead: UnsafeMutableRawPointer?
    var lruTail: UnsafeMutableRawPointer?
    // `stats items` / `stats` counters.
    var number = 0, memRequested = 0, totalItems = 0
    var evicted = 0, evictedNonzero = 0, evictedTime: UInt32 = 0, outOfMemory = 0
    var reclaimed = 0, expiredUnfetched = 0, evictedUnfetched = 0

    init(id: Int, size: Int, perSlab: Int) { self.id = id; self.size = size; self.perSlab = perSlab }
}

/// Invariant: `classes[id]` is the class with that id (index 0 is an unused placeholder); the memory-limit
/// fields and `pages` are touched only under `memLock`, which is taken (briefly) only while holding a class
/// lock, never the other way round. Pages are freed only in `deinit`, when no thread can use the store.
final class SlabAllocator: @unchecked Sendable {
    let classes: [SlabClass]
    let largestId: Int
    let pageSize: Int
    let classLocks: LockArray
    private let memLock = LockArray(count: 1)
    private var memoryLimit: Int
    private var totalMalloced = 0
    private var mallocFails = 0
    private var pages: [UnsafeMutableRawPointer] = []

    init(table: [SlabClassInfo], pageSize: Int, memoryLimit: Int) {
        var classes = [SlabClass(id: 0, size: 0, perSlab: 0)]
        for info in table { classes.append(SlabClass(id: info.id, size: info.chunkSize, perSlab: info.perSlab)) }
        self.classes = classes
        largestId = table.last?.id ?? 0
        self.pageSize = pageSize
        self.memoryLimit = memoryLimit
        classLocks = LockArray(count: classes.count)
    }

    deinit { for p in pages { free(p) } }

    @inline(__always) func lock(_ c: SlabClass) { classLocks.lock(c.id) }
    @inline(__always) func unlock(_ c: SlabClass) { classLocks.unlock(c.id) }

    /// A free chunk of class `c`, from its free list or a new page; nil when the memory limit says no.
    /// Caller holds `c`'s lock.
    func takeFreeLocked(_ c: SlabClass) -> UnsafeMutableRawPointer? {
        if c.freeList == nil && !newPageLocked(c) { return nil }
        guard let p = c.freeList else { return nil }
        c.freeList = loadPointer(p, 0)
        c.freeCount -= 1
        return p
    }

    /// Returns a chunk to class `c`. Caller holds `c`'s lock.
    @inline(__always) func pushFreeLocked(_ c: SlabClass, _ p: UnsafeMutableRawPointer) {
        storePointer(p, 0, c.freeList)
        p.storeBytes(of: 0, toByteOffset: 45, as: UInt8.self)   // itFlags: not linked
        c.freeList = p
        c.freeCount += 1
    }

    /// memcached do_slabs_newslab: refuse when over the limit, unless the class has no page yet.
    private func newPageLocked(_ c: SlabClass) -> Bool {
        memLock.lock(0)
        if memoryLimit != 0 && totalMalloced + pageSize > memoryLimit && c.totalPages > 0 {
            memLock.unlock(0)
            return false
        }
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, 64, pageSize) == 0, let page = raw else {
            mallocFails += 1
            memLock.unlock(0)
            return false
        }
        pages.append(page)
        totalMalloced += pageSize
        memLock.unlock(0)
        c.totalPages += 1
        for i in 0..<c.perSlab { pushFreeLocked(c, page + i * c.size) }
        return true
    }

    /// Frees one chunk whose class lock the caller does not hold.
    func release(chunk p: UnsafeMutableRawPointer, classId: Int) {
        let c = classes[classId]
        lock(c)
        pushFreeLocked(c, p)
        unlock(c)
    }

    func setMemoryLimit(_ bytes: Int) {
        memLock.lock(0); memoryLimit = bytes; memLock.unlock(0)
    }

    func memoryStats() -> (limit: Int, malloced: Int, mallocFails: Int) {
        memLock.lock(0); defer { memLock.unlock(0) }
        return (memoryLimit, totalMalloced, mallocFails)
    }
}
