// Owns the store's public operations (memcached's do_item_get / do_store_item / item_delete / item_touch /
// process_flush_all / cache_memlimit), wiring the slab allocator, the hash table, the LRUs and the clock.
// Every operation on a key holds that key's hash-segment lock for its whole duration; nothing takes a global
// lock. Incr/decr live in Delta.swift, statistics in Stats.swift, memory life-cycle in ItemStorage.swift.
// Design notes (locking, decisions vs memcached): CacheStore.docc/CacheStore.md.
import Glibc
import Synchronization

/// Invariant: all mutable state lives in `allocator`/`classes` (class locks), `assoc` (segment locks) or
/// atomics (`casCounter`, `flushOldest*`); `CacheStore`'s own stored properties are immutable after `init`.
/// `classes`, `classLocks` (owned by `allocator`) and `assoc` (owned here) are plain pointers, copied out so
/// the hot path does no reference counting; they live exactly as long as the store.
public final class CacheStore: @unchecked Sendable {
    public let config: StoreConfig
    public let clock: StoreClock
    public let slabClasses: [SlabClassInfo]
    let layout: ItemLayout
    let allocator: SlabAllocator
    let classes: UnsafeMutablePointer<SlabClass>
    let classLocks: LockArray
    let largestClassId: Int
    let assoc: AssocTable
    /// Which tail items an allocation under a key's lock must skip, as memcached's item locks decide.
    let itemLockStripes: ItemLockStripes
    /// memcached `settings.oldest_live` / `settings.oldest_cas`, read on every lookup.
    let flushOldestLive = Atomic<UInt32>(0)
    let flushOldestCas = Atomic<UInt64>(0)
    let casCounter = Atomic<UInt64>(0)
    /// Set while an LRU crawl (metadump or crawl) runs: memcached runs one crawler request at a time.
    let crawlerBusy = Atomic<Bool>(false)
    /// The segmented LRU's run-time settings (LRUMaintenance.swift).
    public let lruPolicy: LRUPolicy
    /// Eviction reports for `watch evictions` (StoreEvents.swift).
    public let events = StoreEvents()
    /// References to items whose values connections send from slab memory (ItemPins.swift).
    let pins = PinTable()
    /// `stats sizes` histogram (SizeHistogram.swift), off until `stats sizes_enable`.
    let sizes = SizeHistogram()
    /// The slab page mover (SlabMover.swift).
    let mover = SlabMover()

    /// `memoryFile` (`-e`): slab pages come from that file instead of anonymous mappings (warm restart,
    /// ItemRestore.swift).
    /// `largePages` (`-L`): pages come from that one region instead (ignored with a memory file, as memcached).
    public init(config: StoreConfig, clock: StoreClock, memoryFile: SlabMemoryFile? = nil,
                largePages: LargePageRegion? = nil) {
        self.config = config
        self.clock = clock
        slabClasses = CacheStore.slabClassTable(config)
        layout = ItemLayout(casEnabled: config.casEnabled)
        allocator = SlabAllocator(table: slabClasses, pageSize: config.slabPageSize, memoryLimit: config.memoryLimit,
                                  memoryFile: memoryFile, largePages: largePages)
        classes = allocator.classes
        classLocks = allocator.classLocks
        largestClassId = allocator.largestId
        for id in 0...largestClassId { classes[id].keyOffset = layout.keyOffset }
        lruPolicy = LRUPolicy(config)
        assoc = AssocTable(hashPower: config.hashPowerInitial, layout: layout, expands: config.hashExpand)
        hashAlgorithm = config.hashAlgorithm
        itemLockStripes = ItemLockStripes(workerThreads: config.workerThreads)
    }

    deinit { assoc.destroy() }

    /// memcached slabs_preallocate (`-L`): every class gets its first page now. False when the memory runs out
    /// first (the limit is smaller than one page per class).
    public func preallocate() -> Bool {
        for id in 1...largestClassId {
            let c = classes + id
            classLocks.lock(id)
            let ok = allocator.newPageLocked(c)
            classLocks.unlock(id)
            if !ok { return false }
        }
        return true
    }

    public static func slabClassTable(_ config: StoreConfig) -> [SlabClassInfo] {
        if let sizes = config.slabSizes {
            return SlabClassTable.build(sizes: sizes, slabPageSize: config.slabPageSize, slabChunkMax: config.slabChunkMax)
        }
        return SlabClassTable.build(chunkSize: config.chunkSize, growthFactor: config.growthFactor,
                                    slabPageSize: config.slabPageSize, slabChunkMax: config.slabChunkMax)
    }

    /// memcached's ntotal: 48-byte header + 8 (CAS, when enabled) + key + 1 + value + 2 (client flags 0).
    public static func itemTotalSize(keyLength: Int, valueLength: Int, casEnabled: Bool) -> Int {
        48 + (casEnabled ? 8 : 0) + keyLength + 1 + valueLength + 2
    }

    /// memcached's ntotal for any client flags: non-zero flags add 4 bytes (memcached item_make_header).
    public static func itemTotalSize(keyLength: Int, valueLength: Int, flags: UInt32, casEnabled: Bool) -> Int {
        itemTotalSize(keyLength: keyLength, valueLength: valueLength, casEnabled: casEnabled) + (flags != 0 ? 4 : 0)
    }

    /// Longest key the item header can hold (memcached's KEY_MAX_LENGTH is 250; the server enforces that).
    public static let maxKeyLength = 255

    /// `-o hash_algorithm` (memcached's default: murmur3).
    let hashAlgorithm: HashAlgorithm

    /// The key's hash: it picks the hash segment, the bucket and the item lock.
    @inline(__always)
    public func hash(_ key: UnsafeRawBufferPointer) -> UInt32 { hashAlgorithm.hash(key) }

    /// memcached `settings.oldest_live` (relative time; 0 = no flush pending), shown by `stats settings`.
    public var oldestLive: UInt32 { flushOldestLive.load(ordering: .relaxed) }
    /// memcached `settings.oldest_cas`: items with a smaller CAS are flushed once `oldestLive` has passed.
    public var oldestCas: UInt64 { flushOldestCas.load(ordering: .relaxed) }
    /// The last CAS unique handed out (0 before the first).
    public var currentCas: UInt64 { casCounter.load(ordering: .relaxed) }

    // MARK: get / touch / delete

    /// Looks `key` up; on a hit calls `body` under the item's lock (after applying `touchExptime` if given).
    /// `body` must copy what it needs and must not call back into the store (the segment lock is held).
    public func get(_ key: UnsafeRawBufferPointer, hash: UInt32, touchExptime: Int64?,
                    _ body: (ItemView) -> Void) -> LookupResult {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        let (found, result) = findLocked(key, hash: hash, seg: seg)
        guard let it = found else { return result }
        let flagsBefore = it.itFlags
        let timeBefore = it.time
        let segmentBefore = it.lruSegment
        bumpLocked(it)
        if let t = touchExptime { it.exptime = clock.realtime(t) }
        body(ItemView(item: it, layout: layout, fetchedBefore: flagsBefore & ItemFlags.fetched != 0,
                      lastAccess: timeBefore, lruSegment: segmentBefore))
        return result
    }

    /// memcached item_touch: a live item gets `exptime` (bumped like a fetch); its CAS is kept.
    public func touch(_ key: UnsafeRawBufferPointer, hash: UInt32, exptime: Int64) -> LookupResult {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        let (found, result) = findLocked(key, hash: hash, seg: seg)
        guard let it = found else { return result }
        bumpLocked(it)
        it.exptime = clock.realtime(exptime)
        return result
    }

    public func delete(_ key: UnsafeRawBufferPointer, hash: UInt32) -> DeleteResult {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        guard let it = findLocked(key, hash: hash, seg: seg).item else { return .notFound }
        let cid = it.classId
        unlinkLocked(it, seg: seg)
        return .deleted(classId: cid)
    }

    // MARK: store

    /// set/add/replace/append/prepend/cas. When the incoming value cannot be stored at all (`.tooLarge`,
    /// `.outOfMemory`) the key's current item is deleted, as memcached's meta set does (text `set` too).
    public func store(_ mode: StoreMode, key: UnsafeRawBufferPointer, hash: UInt32, flags: UInt32,
                      exptime: Int64, value: UnsafeRawBufferPointer, casUnique: UInt64) -> (result: StoreResult, classId: Int) {
        let r = store(mode, key: key, hash: hash, flags: flags, exptime: exptime, value: value, casUnique: casUnique,
                      unlinkOnFailure: true)
        return (r.result, r.classId)
    }

    /// As above, plus the stored item's new CAS (0 unless `.stored`), for meta set's `c` flag.
    /// `unlinkOnFailure: false` keeps the old item on `.tooLarge`/`.outOfMemory`, which is what memcached's
    /// text protocol does for add/replace/append/prepend/cas (it only drops the key for `set`).
    /// `classId` is the class of the incoming item (memcached counts `cmd_set` there), 0 when none was made.
    public func store(_ mode: StoreMode, key: UnsafeRawBufferPointer, hash: UInt32, flags: UInt32,
                      exptime: Int64, value: UnsafeRawBufferPointer, casUnique: UInt64,
                      unlinkOnFailure: Bool) -> (result: StoreResult, classId: Int, cas: UInt64) {
        let r = storeItem(mode, key: key, hash: hash, flags: flags, exptime: exptime, value: value,
                          casUnique: casUnique, unlinkOnFailure: unlinkOnFailure, options: MetaStoreOptions())
        return (r.result, r.classId, r.cas)
    }

    /// memcached do_store_item, plus the meta set options (stale CAS, binary key, explicit CAS, vivify).
    public func storeItem(_ mode: StoreMode, key: UnsafeRawBufferPointer, hash: UInt32, flags: UInt32,
                   exptime: Int64, value: UnsafeRawBufferPointer, casUnique: UInt64,
                   unlinkOnFailure: Bool, options: MetaStoreOptions) -> MetaStoreOutcome {
        let ntotal = layout.totalSize(keyLength: key.count, valueLength: value.count, flags: flags)
        if ntotal > config.itemSizeMax || key.count > CacheStore.maxKeyLength {
            if unlinkOnFailure { dropKey(key, hash: hash) }
            return MetaStoreOutcome(result: .tooLarge, classId: 0, cas: 0, valueLength: 0)
        }
        guard let it = allocItem(keyLength: key.count, valueLength: value.count, flags: flags) else {
            if unlinkOnFailure { dropKey(key, hash: hash) }
            return MetaStoreOutcome(result: .outOfMemory, classId: 0, cas: 0, valueLength: 0)
        }
        prepare(it, key: key, hash: hash, flags: flags, exptime: clock.realtime(exptime))
        if options.keyBinary { it.itFlags |= ItemFlags.keyBinary }
        var writer = ValueWriter(item: it, layout: layout)
        writer.write(value)
        finishValue(it)
        let classId = it.classId

        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        let old = findLocked(key, hash: hash, seg: seg).item
        let oldClass = old?.classId ?? 0
        let inCas = config.casEnabled ? casUnique : 0
        var result = StoreResult.notStored
        var linked = false
        var newCas: UInt64 = 0
        var length = 0
        if let old {
            let oldCas = old.cas(layout)
            let casMatch = inCas != 0 && inCas == oldCas
            switch mode {
            case .add:
                updateLocked(old)
            case .set, .replace:
                replaceLocked(old, with: it, seg: seg, cas: options.newCas); linked = true; result = .stored
            case .cas:
                if casMatch {
                    replaceLocked(old, with: it, seg: seg, cas: options.newCas); linked = true; result = .stored
                } else if options.casStale && inCas != 0 && inCas < oldCas {
                    // meta `ms I`: an older CAS may still replace the value, which then stays stale,
                    // keeps the old TTL and any win token already handed out (memcached CAS_STALE).
                    it.exptime = old.exptime
                    it.itFlags |= ItemFlags.stale | (old.itFlags & ItemFlags.tokenSent)
                    replaceLocked(old, with: it, seg: seg, cas: options.newCas); linked = true; result = .stored
                } else {
                    result = .exists
                }
            case .append, .prepend:
                if inCas != 0 && !casMatch { result = .exists; break }
                if let combined = combine(old, it, append: mode == .append) {
                    replaceLocked(old, with: combined, seg: seg, cas: options.newCas)
                    newCas = combined.cas(layout)
                    length = combined.valueLength
                    result = .stored
                }
            }
        } else {
            switch mode {
            case .set, .add: linkLocked(it, seg: seg, cas: options.newCas); linked = true; result = .stored
            case .cas: result = .notFound
            case .append, .prepend:
                // Superset (memcached 1.6.20+ `ms … MA N<ttl>`): a miss creates the item.
                if options.vivify { linkLocked(it, seg: seg, cas: options.newCas); linked = true; result = .stored }
            case .replace: break
            }
        }
        if linked { newCas = it.cas(layout); length = it.valueLength }
        assoc.locks.unlock(seg)
        if !linked { freeUnlinked(it) }
        return MetaStoreOutcome(result: result, classId: classId, cas: newCas, valueLength: length,
                                oldClassId: oldClass)
    }

    /// Append/prepend: a new item with old's flags and exptime and the two values joined; nil (→ NOT_STORED,
    /// as memcached) when it would be too large or memory is short. Caller holds the segment lock.
    private func combine(_ old: ItemRef, _ new: ItemRef, append: Bool) -> ItemRef? {
        let length = old.valueLength + new.valueLength
        guard layout.totalSize(keyLength: old.nkey, valueLength: length, flags: old.clientFlags) <= config.itemSizeMax,
              let it = allocItem(keyLength: old.nkey, valueLength: length, flags: old.clientFlags,
                                 copyParts: append ? (old.valueLength, new.valueLength + 2)
                                                   : (new.valueLength, old.valueLength + 2),
                                 heldHash: old.hash) else { return nil }
        prepare(it, key: old.key(layout), hash: old.hash, flags: old.clientFlags, exptime: old.exptime)
        var writer = ValueWriter(item: it, layout: layout)
        let first = append ? old : new, second = append ? new : old
        first.forEachSegment(keyAddress: first.raw + layout.keyOffset) { writer.write($0) }
        second.forEachSegment(keyAddress: second.raw + layout.keyOffset) { writer.write($0) }
        finishValue(it)
        return it
    }

    /// Fills the header fields and key of a freshly allocated item (nkey/nbytes/clsid/chunks already set).
    func prepare(_ it: ItemRef, key: UnsafeRawBufferPointer, hash: UInt32, flags: UInt32, exptime: UInt32) {
        it.hNext = nil; it.prev = nil; it.next = nil
        it.hash = hash
        it.clientFlags = flags
        it.exptime = exptime
        it.time = clock.currentTime
        it.setCas(0, layout)
        let k = it.raw + layout.keyOffset
        if let src = key.baseAddress { memcpy(k, src, key.count) }
        k.storeBytes(of: 0, toByteOffset: key.count, as: UInt8.self)
    }

    /// Plain items end with "\r\n" (counted in nbytes); chunked values carry none.
    func finishValue(_ it: ItemRef) {
        guard !it.isChunked else { return }
        let end = it.plainValue(layout) + it.valueLength
        end.storeBytes(of: 13, as: UInt8.self)
        end.storeBytes(of: 10, toByteOffset: 1, as: UInt8.self)
    }

    /// Removes whatever `key` holds (memcached: stale data must not survive a failed set).
    private func dropKey(_ key: UnsafeRawBufferPointer, hash: UInt32) {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        if let it = assoc.find(key, hash: hash, seg: seg) { unlinkLocked(it, seg: seg) }
        assoc.locks.unlock(seg)
    }

    // MARK: flush / memory limit

    /// memcached 1.6.18 process_flush_all. With CAS, taking `oldestCas` consumes one CAS unique.
    public func flushAll(delay: Int64) {
        let now = clock.currentTime
        let newOldest: UInt32 = delay > 0 ? clock.realtime(delay) : now
        if config.casEnabled {
            let live = newOldest &- 1
            flushOldestLive.store(live, ordering: .relaxed)
            if live <= now { flushOldestCas.store(nextCas(), ordering: .relaxed) }
        } else {
            flushOldestLive.store(newOldest, ordering: .relaxed)
        }
    }

    /// The slab class an item of `ntotal` bytes is stored in (the largest class for chunked items);
    /// callers count per-class stats (cmd_set) before the store runs.
    public func classId(forTotalSize ntotal: Int) -> Int {
        let id = SlabClassTable.classId(forSize: ntotal, in: slabClasses)
        return id == 0 ? (slabClasses.last?.id ?? 0) : id
    }

    /// memcached `cache_memlimit`: the new limit applies to future page allocations (pages are never returned).
    public func setMemoryLimit(_ bytes: Int) { allocator.setMemoryLimit(bytes) }
}
