// Owns slab memory: pages of `slabPageSize` bytes taken lazily per class under the `-m` limit (memcached
// slabs.c do_slabs_newslab / split_slab_page_into_freelist), each class's list of pages and free-chunk list,
// the global page pool (memcached's class 0: pages given back by the slab mover, taken before mapping new
// ones), and the per-class state that lives under the class lock (LRU ends and the `stats items` counters,
// see LRU.swift / Stats.swift).
//
// The free list is doubly linked (next at byte 0, prev at byte 8 of a free chunk) so that the slab mover can
// cut a free chunk of the page it empties out of the middle of the list (memcached slab_rebalance_cut_free).
// Every chunk carries its state in the flags byte (45), see `ChunkMark`.
import CItemFlags
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
    /// The class's pages, oldest first (memcached's slab_list): the slab mover empties `pages[0]`.
    var pages: [UnsafeMutableRawPointer] = []
    var totalPages: Int { pages.count }
    /// A chunk of the page the slab mover is emptying whose item the mover is unlinking: when it is freed it
    /// is cleared instead of going back to the free list, where a request could take it again.
    var clearOnFree: UnsafeMutableRawPointer? = nil
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
    /// `-o lru_policy=s3fifo`: hashes of keys evicted unfetched (GhostTable.swift); empty otherwise.
    var ghost = GhostTable()

    init(id: Int, size: Int, perSlab: Int) { self.id = id; self.size = size; self.perSlab = perSlab }
}

typealias SlabClassRef = UnsafeMutablePointer<SlabClass>

extension UnsafeMutablePointer where Pointee == SlabClass {
    /// Pops a free chunk, marked "allocated" (flags 0: neither free nor linked, so the slab mover waits for
    /// its new owner to link or free it). Caller holds this class's lock.
    @inline(__always) func popFree() -> UnsafeMutableRawPointer? {
        guard let p = pointee.freeList else { return nil }
        let next = loadPointer(p, 0)
        pointee.freeList = next
        if let n = next { storePointer(n, 8, nil) }
        pointee.freeCount -= 1
        ItemRef(p).itFlags = 0
        return p
    }

    /// Returns a chunk to this class. Caller holds this class's lock.
    @inline(__always) func pushFree(_ p: UnsafeMutableRawPointer) {
        if p == pointee.clearOnFree {
            pointee.clearOnFree = nil
            ItemRef(p).itFlags = ChunkMark.cleared
            return
        }
        let head = pointee.freeList
        storePointer(p, 0, head)
        storePointer(p, 8, nil)
        if let h = head { storePointer(h, 8, p) }
        ItemRef(p).itFlags = ChunkMark.free
        pointee.freeList = p
        pointee.freeCount += 1
    }

    /// Takes a free chunk out of the free list wherever it is (memcached slab_rebalance_cut_free).
    /// Caller holds this class's lock; `p` is marked `ChunkMark.free`.
    func cutFree(_ p: UnsafeMutableRawPointer) {
        let next = loadPointer(p, 0), prev = loadPointer(p, 8)
        if let pr = prev { storePointer(pr, 0, next) } else { pointee.freeList = next }
        if let n = next { storePointer(n, 8, prev) }
        pointee.freeCount -= 1
        ItemRef(p).itFlags = ChunkMark.cleared
    }

    /// Splits a page into free chunks and adds it to the class (memcached split_slab_page_into_freelist).
    /// Caller holds this class's lock.
    func addPage(_ page: UnsafeMutableRawPointer) {
        pointee.pages.append(page)
        let size = pointee.size
        for i in 0..<pointee.perSlab { pushFree(page + i * size) }
    }
}

/// What a chunk of a page holds, told by its flags byte (45). An item can be ACTIVE only after it was
/// fetched, and `fetched` is never cleared, so flags with `active` set and `fetched` clear never belong to an
/// item: those combinations mark the other states (crawler sentinels are separately allocated, never in a
/// page). Invariant, for every chunk of every page:
/// - `free`: on its class's free list (set by `pushFree` under the class lock);
/// - `cleared`: emptied by the slab mover for the page it is moving (off every list, unused);
/// - `valueChunk`: a value chunk of a chunked item; bytes 16..23 point to the item's header (set by
///   `allocItem` before the item is linked, cleared by `pushFree` when the chunk is freed);
/// - anything else (`isMark` false): an item header, linked (`ItemFlags.linked`) or not yet / no longer
///   (allocated and being filled, or a pinned item unlinked but still being sent): 0 right after `popFree`.
enum ChunkMark {
    static let free: UInt8 = ItemFlags.active | ItemFlags.stale
    static let cleared: UInt8 = ItemFlags.active | ItemFlags.tokenSent
    static let valueChunk: UInt8 = ItemFlags.active | ItemFlags.chunked

    /// True for the three marks above, false for every item header.
    @inline(__always) static func isMark(_ flags: UInt8) -> Bool {
        flags & (ItemFlags.active | ItemFlags.fetched) == ItemFlags.active
    }

    /// Byte offset of a value chunk's pointer to its item's header (bytes 13..47 of a chunk are unused).
    static let headOffset = 16

    @inline(__always) static func setHead(_ chunk: UnsafeMutableRawPointer, _ head: UnsafeMutableRawPointer) {
        cachet_store_pointer(chunk + headOffset, head)
        ItemRef(chunk).itFlags = valueChunk
    }
    @inline(__always) static func head(of chunk: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        cachet_load_pointer(chunk + headOffset)
    }
}

/// Invariant: `classes[id]` is the class with that id for id in 1...largestId (0 is a placeholder: the global
/// page pool lives in `pool`); `classes` and `classLocks` live until `deinit`. The memory-limit fields and
/// `pool` are touched only under `memLock`, which is taken (briefly) while holding at most one class lock,
/// never the other way round. A page belongs to exactly one class's `pages` or to `pool`; pages are unmapped
/// only from the pool (`releaseExcessLocked`, when over the limit) or in `deinit`.
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
    /// memcached's global page pool (slab class 0), last in first out.
    private var pool: [UnsafeMutableRawPointer] = []
    /// With `-e`: pages are carved in order from the memory file (`fileNext` is the next unused page) and
    /// never unmapped one by one. Without it (nil) every page is its own anonymous mapping.
    let memoryFile: SlabMemoryFile?
    /// `-L` without `-e`: the whole limit as one anonymous mapping advised for transparent huge pages.
    let largePages: LargePageRegion?
    /// Where pages are carved from in order (the memory file or the large-page region; nil: a mapping per
    /// page), and the next unused page there.
    private let carveBase: UnsafeMutableRawPointer?
    private let carveSize: Int
    private var fileNext = 0

    init(table: [SlabClassInfo], pageSize: Int, memoryLimit: Int, memoryFile: SlabMemoryFile? = nil,
         largePages: LargePageRegion? = nil) {
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
        self.memoryFile = memoryFile
        self.largePages = memoryFile == nil ? largePages : nil
        carveBase = memoryFile?.base ?? self.largePages?.base
        carveSize = memoryFile?.size ?? self.largePages?.size ?? 0
        classLocks = .allocate(count: classCount)
    }

    deinit {
        if carveBase == nil {
            for p in pool { munmap(p, pageSize) }
            for id in 1..<classCount { for p in classes[id].pages { munmap(p, pageSize) } }
        }
        for id in 0..<classCount { classes[id].ghost.free() }
        classes.deinitialize(count: classCount)
        classes.deallocate()
        classLocks.destroy()
        memLock.destroy()
    }

    /// memcached do_slabs_newslab: refuse when over the limit, unless the class has no page yet or the
    /// global pool has one; a pool page is taken before a new one is mapped. Caller holds `c`'s lock.
    func newPageLocked(_ c: SlabClassRef) -> Bool {
        memLock.lock(0)
        if memoryLimit != 0 && totalMalloced + pageSize > memoryLimit && c.pointee.totalPages > 0 && pool.isEmpty {
            memLock.unlock(0)
            return false
        }
        var page = pool.popLast()
        if page == nil, let base = carveBase {
            // memcached with a memory base (file or -L): no more pages once it is used up.
            guard (fileNext + 1) * pageSize <= carveSize else {
                mallocFails += 1
                memLock.unlock(0)
                return false
            }
            page = base + fileNext * pageSize
            fileNext += 1
            totalMalloced += pageSize
        } else if page == nil {
            // Pages are mapped directly (page-aligned, never moved): they stay out of malloc's arenas, whose
            // heaps otherwise kept tens of MB of RSS around a large fill.
            guard let p = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                  p != MAP_FAILED else {
                mallocFails += 1
                memLock.unlock(0)
                return false
            }
            totalMalloced += pageSize
            page = p
        }
        memLock.unlock(0)
        c.addPage(page!)
        return true
    }

    /// A page emptied by the slab mover goes to the global pool (memcached slab_rebalance_finish with
    /// destination 0); pages over the memory limit are then given back to the system (memory_release).
    func givePageToPool(_ page: UnsafeMutableRawPointer) {
        memLock.lock(0)
        pool.append(page)
        releaseExcessLocked()
        memLock.unlock(0)
    }

    /// Takes a page from the global pool (`slabs reassign 0 N`).
    func takePageFromPool() -> UnsafeMutableRawPointer? {
        memLock.lock(0); defer { memLock.unlock(0) }
        return pool.popLast()
    }

    private func releaseExcessLocked() {
        // Pages of the memory file or -L region stay mapped (memcached keeps its memory base whole as well).
        if carveBase != nil { return }
        while memoryLimit != 0 && totalMalloced > memoryLimit, let p = pool.popLast() {
            munmap(p, pageSize)
            totalMalloced -= pageSize
        }
    }

    /// Pages in the global pool (memcached's `slab_global_page_pool`).
    var poolPages: Int {
        memLock.lock(0); defer { memLock.unlock(0) }
        return pool.count
    }

    func setMemoryLimit(_ bytes: Int) {
        memLock.lock(0); memoryLimit = bytes; memLock.unlock(0)
    }

    // MARK: Warm restart (`-e`)

    /// Which file page each class holds, in its `pages` order, index 0 being the global pool; and how many
    /// pages of the file were handed out. A page the slab mover holds between two classes is in neither list
    /// (it is free memory then). Caller holds every class lock.
    func filePageTable() -> (classPages: [[UInt32]], used: Int)? {
        guard let file = memoryFile else { return nil }
        memLock.lock(0); defer { memLock.unlock(0) }
        var table: [[UInt32]] = [pool.compactMap { file.pageIndex(of: $0, pageSize: pageSize).map(UInt32.init) }]
        for id in 1..<classCount {
            table.append(classes[id].pages.compactMap { file.pageIndex(of: $0, pageSize: pageSize).map(UInt32.init) })
        }
        return (table, fileNext)
    }

    /// Gives each class the file pages a previous process left it (their chunks are sorted out by the
    /// caller); pages below `used` that no class holds join the pool. Before any page was handed out.
    func adoptFilePages(_ classPages: [[UInt32]], used: Int) {
        guard let file = memoryFile else { return }
        memLock.lock(0)
        var owned = Array(repeating: false, count: used)
        for list in classPages { for i in list { owned[Int(i)] = true } }
        pool = classPages[0].map { file.page(Int($0), pageSize: pageSize) }
        for i in 0..<used where !owned[i] { pool.append(file.page(i, pageSize: pageSize)) }
        fileNext = used
        totalMalloced = used * pageSize
        memLock.unlock(0)
        for id in 1..<classCount {
            classes[id].pages = classPages[id].map { file.page(Int($0), pageSize: pageSize) }
        }
    }

    func memoryStats() -> (limit: Int, malloced: Int, mallocFails: Int) {
        memLock.lock(0); defer { memLock.unlock(0) }
        return (memoryLimit, totalMalloced, mallocFails)
    }
}
