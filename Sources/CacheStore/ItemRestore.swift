// Owns the store's side of a warm restart (`-e`, memcached restart.c / slabs_fixup / do_item_link_fixup):
// recording the page table, clock and counters when the server stops gracefully, and on the next start
// putting the previous process's items back — every chunk of every page looked at, each linked item
// checked (its page's checksum, class, key length, key hash, value terminator, chunk chain bounds) before
// it is linked again, everything else returned to the free lists. The hash table is rebuilt from the items;
// LRU order is rebuilt per class and segment from each item's last-access time (oldest at the tail). The
// file format is RestartMetadata.swift; opening and locking the file is SlabMemoryFile.swift.
import Glibc

/// What a restore did, for the start-up log and `stats`.
public struct RestoreReport: Sendable, Equatable {
    /// Items linked again.
    public var restored = 0
    /// Items whose TTL ran out (or that a flush_all covered) while the server was down: freed.
    public var expired = 0
    /// Linked items that failed a check (or sat on a page whose checksum failed): freed.
    public var invalid = 0
    /// Pages whose checksum did not match: every chunk on them freed.
    public var badPages = 0
}

extension CacheStore {
    /// The memory file's path as it was opened (`-e`), nil without one.
    public var memoryFilePath: String? { allocator.memoryFile?.path }

    /// memcached preallocates one page per slab class when it gets a memory file (slabs_preallocate);
    /// false when the file has fewer pages than there are classes (memcached then refuses to start).
    public func preallocatePages() -> Bool {
        for id in 1...largestClassId {
            classLocks.lock(id)
            let ok = allocator.newPageLocked(classes + id)
            classLocks.unlock(id)
            if !ok { return false }
        }
        return true
    }

    /// Records what the next start needs to reuse the memory file, under every hash-segment and class lock.
    /// `holdLocks` (the server, which exits next) keeps them: nothing changes the items afterwards, a worker
    /// that did not stop in time just blocks. (Without it, a later change shows as a page checksum mismatch
    /// at the next start, and that page's items are dropped.) nil without a memory file.
    public func restartSnapshot(producer: String, stopTime: Int, holdLocks: Bool = true) -> RestartMetadata? {
        guard let file = allocator.memoryFile else { return nil }
        for i in 0..<assoc.segmentCount { assoc.locks.lock(i) }
        for id in 1...largestClassId { classLocks.lock(id) }
        defer {
            if !holdLocks {
                for id in 1...largestClassId { classLocks.unlock(id) }
                for i in 0..<assoc.segmentCount { assoc.locks.unlock(i) }
            }
        }
        guard let (table, used) = allocator.filePageTable() else { return nil }
        var sums = Array(repeating: UInt64(0), count: used)
        var items: UInt64 = 0
        for id in 1...largestClassId {
            items += UInt64(classes[id].number)
            for i in table[id] { sums[Int(i)] = pageChecksum(file, Int(i)) }
        }
        return RestartMetadata(
            producer: producer, settings: RestartSettings(config), mapBase: file.baseAddress,
            processStarted: Int64(clock.processStarted), currentTime: clock.currentTime, stopTime: Int64(stopTime),
            casCounter: casCounter.load(ordering: .relaxed), oldestLive: flushOldestLive.load(ordering: .relaxed),
            oldestCas: flushOldestCas.load(ordering: .relaxed), pagesUsed: used, classPages: table,
            pageChecksums: sums, itemCount: items)
    }

    private func pageChecksum(_ file: SlabMemoryFile, _ index: Int) -> UInt64 {
        RestartChecksum.hash(file.page(index, pageSize: allocator.pageSize), count: allocator.pageSize,
                             seed: UInt64(index))
    }

    /// Puts back the items a previous process left in the memory file. The caller has checked that `m` was
    /// written for the same settings (RestartMetadata.incompatibility) and built `clock` from its
    /// processStarted. Runs before any other thread uses the store. nil when the page table does not fit
    /// this store (then nothing was changed and the start must be cold).
    public func restore(from m: RestartMetadata) -> RestoreReport? {
        guard let file = allocator.memoryFile, m.classPages.count == largestClassId + 1,
              m.pagesUsed * allocator.pageSize <= file.size else { return nil }
        for id in 1...largestClassId where classes[id].totalPages != 0 { return nil }
        var report = RestoreReport()
        let pageSize = allocator.pageSize
        // Which class each used page belongs to (0: none), and which pages failed their checksum.
        var pageClass = Array(repeating: 0, count: m.pagesUsed)
        var badPage = Array(repeating: false, count: m.pagesUsed)
        for id in 1...largestClassId {
            for i in m.classPages[id] {
                pageClass[Int(i)] = id
                if pageChecksum(file, Int(i)) != m.pageChecksums[Int(i)] { badPage[Int(i)] = true; report.badPages += 1 }
            }
        }
        allocator.adoptFilePages(m.classPages, used: m.pagesUsed)
        flushOldestLive.store(m.oldestLive, ordering: .relaxed)
        flushOldestCas.store(m.oldestCas, ordering: .relaxed)

        var ctx = RelinkContext(file: file, oldBase: m.mapBase, pageSize: pageSize, pageClass: pageClass,
                                badPage: badPage, classes: classes)
        // Items to link, per class and LRU segment, with their last access (the LRU order).
        var toLink: [[[(time: UInt32, raw: UnsafeMutableRawPointer)]]] =
            Array(repeating: Array(repeating: [], count: 4), count: largestClassId + 1)
        var maxCas: UInt64 = 0
        let now = clock.currentTime
        for id in 1...largestClassId {
            let size = classes[id].size, perSlab = classes[id].perSlab
            for pi in m.classPages[id] where !badPage[Int(pi)] {
                let page = file.page(Int(pi), pageSize: pageSize)
                for k in 0..<perSlab {
                    let it = ItemRef(page + k * size)
                    let flags = it.itFlags
                    if ChunkMark.isMark(flags) || flags & ItemFlags.linked == 0 { continue }
                    guard validHeader(it, classId: id, ctx: &ctx) else { report.invalid += 1; continue }
                    if (it.exptime != 0 && it.exptime <= now) || isFlushed(it, now: now) {
                        unclaimChunks(it, &ctx); report.expired += 1; continue
                    }
                    let seg = assoc.segment(for: it.hash)
                    assoc.locks.lock(seg)
                    let duplicate = assoc.find(it.key(layout), hash: it.hash, seg: seg) != nil
                    if !duplicate { assoc.insert(it, seg: seg) }
                    assoc.locks.unlock(seg)
                    if duplicate { unclaimChunks(it, &ctx); report.invalid += 1; continue }
                    ctx.keep.insert(it.raw)
                    it.itFlags = flags & ~ItemFlags.pinned
                    maxCas = max(maxCas, it.cas(layout))
                    toLink[it.classId][restoredSegment(it)].append((it.time, it.raw))
                }
            }
        }
        // LRU: oldest first, each linked at the head, so the most recent access ends at the head.
        for cid in 1...largestClassId {
            let c = classes + cid
            for seg in 0..<4 where !toLink[cid][seg].isEmpty {
                for (_, raw) in toLink[cid][seg].sorted(by: { $0.time < $1.time }) {
                    let it = ItemRef(raw)
                    it.lruSegment = seg
                    c.lruLinkAtHead(it)
                    c.pointee.number += 1
                    c.pointee.memRequested += it.totalSize(layout)
                    c.pointee.totalItems += 1
                    sizes.record(totalSize: it.totalSize(layout), cas: it.cas(layout), delta: 1)
                    report.restored += 1
                }
            }
        }
        // Every other chunk (free, cleared, unlinked, failed a check, or on a bad page) back to its free list.
        for id in 1...largestClassId {
            let c = classes + id
            let size = c.pointee.size, perSlab = c.pointee.perSlab
            for pi in m.classPages[id].reversed() {
                let page = file.page(Int(pi), pageSize: pageSize)
                for k in (0..<perSlab).reversed() where !ctx.keep.contains(page + k * size) {
                    c.pushFree(page + k * size)
                }
            }
        }
        casCounter.store(max(m.casCounter, maxCas), ordering: .relaxed)
        return report
    }

    /// The NUL after the key is there and the stored hash is the key's (a changed key byte never lands under
    /// another key). Only for an item whose key is known to fit its chunk.
    private func keyIntact(_ it: ItemRef) -> Bool {
        it.raw.load(fromByteOffset: layout.keyOffset + it.nkey, as: UInt8.self) == 0
            && it.hash == hash(it.key(layout))
    }

    /// An item that passed the checks but is not linked after all (expired, duplicate): its value chunks
    /// (already pointing into the new mapping) are no longer kept, so the final sweep frees them.
    private func unclaimChunks(_ it: ItemRef, _ ctx: inout RelinkContext) {
        guard it.isChunked else { return }
        var next = loadPointer(it.chunkInfo(layout), 0)
        while let ch = next { ctx.keep.remove(ch); next = loadPointer(ch, 0) }
    }

    /// The segment a restored item goes back to: its own, unless the LRU mode changed since (flat: COLD;
    /// TEMP turned off: HOT).
    private func restoredSegment(_ it: ItemRef) -> Int {
        if !lruPolicy.segmented { return LRUSegment.cold }
        let seg = it.lruSegment
        if seg == LRUSegment.temp && !lruPolicy.tempLRU { return LRUSegment.hot }
        return seg
    }

    /// Checks a linked item header found in a page of class `classId`; for a chunked item also its chain,
    /// whose pointers it then rewrites for the new mapping and whose chunks it claims.
    private func validHeader(_ it: ItemRef, classId: Int, ctx: inout RelinkContext) -> Bool {
        let size = classes[classId].size
        let nkey = it.nkey
        guard nkey >= 1 && nkey <= 250, it.nbytes >= 2 else { return false }
        let valueLength = it.valueLength
        let flags = it.clientFlags
        let total = layout.totalSize(keyLength: nkey, valueLength: valueLength, flags: flags)
        // Sizes first: only then are the key and value bytes known to lie inside this chunk.
        if !it.isChunked {
            guard it.classId == classId, it.memClassId == classId, total <= size, keyIntact(it) else { return false }
            let end = it.plainValue(layout) + valueLength
            return end.load(as: UInt8.self) == 13 && end.load(fromByteOffset: 1, as: UInt8.self) == 10
        }
        guard it.memClassId == classId, it.classId == largestClassId, total <= config.itemSizeMax,
              layout.chunkedHeaderSize(keyLength: nkey, flags: flags) <= size, keyIntact(it) else { return false }
        // Walk the chain read-only first: nothing is rewritten unless every chunk passes.
        let oldHead = ctx.oldAddress(of: it.raw)
        var chain: [UnsafeMutableRawPointer] = []
        var sum = 0
        var next = loadPointer(it.chunkInfo(layout), 0)
        while let old = next {
            guard chain.count <= config.itemSizeMax / chunkHeaderSize + 1,
                  let ch = ctx.chunk(atOld: old), !ctx.keep.contains(ch),
                  ItemRef(ch).itFlags == ChunkMark.valueChunk,
                  UInt(bitPattern: ChunkMark.head(of: ch)) == UInt(oldHead) else { return false }
            let cid = Int(ch.load(fromByteOffset: 12, as: UInt8.self))
            let len = Int(ch.load(fromByteOffset: 8, as: UInt32.self))
            guard cid == ctx.classOfChunk(ch), len <= classes[cid].size - chunkHeaderSize else { return false }
            sum += len
            chain.append(ch)
            next = loadPointer(ch, 0)
        }
        guard sum == valueLength, !chain.isEmpty else { return false }
        storePointer(it.chunkInfo(layout), 0, chain[0])
        for (i, ch) in chain.enumerated() {
            storePointer(ch, 0, i + 1 < chain.count ? chain[i + 1] : nil)
            ChunkMark.setHead(ch, it.raw)
            ctx.keep.insert(ch)
        }
        return true
    }
}

/// The restore's view of the old mapping: which class each page has, which pages are bad, and the chunks
/// (item headers and value chunks) that stay in use.
private struct RelinkContext {
    let file: SlabMemoryFile
    let oldBase: UInt64
    let pageSize: Int
    let pageClass: [Int]
    let badPage: [Bool]
    let classes: UnsafeMutablePointer<SlabClass>
    var keep = Set<UnsafeMutableRawPointer>()

    init(file: SlabMemoryFile, oldBase: UInt64, pageSize: Int, pageClass: [Int], badPage: [Bool],
         classes: UnsafeMutablePointer<SlabClass>) {
        self.file = file; self.oldBase = oldBase; self.pageSize = pageSize
        self.pageClass = pageClass; self.badPage = badPage; self.classes = classes
    }

    func oldAddress(of p: UnsafeMutableRawPointer) -> UInt64 { oldBase &+ UInt64(p - file.base) }

    /// The chunk an old pointer named, if it is the start of a chunk of a good page some class holds.
    func chunk(atOld old: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        let o = UInt64(UInt(bitPattern: old))
        guard o >= oldBase else { return nil }
        let off = o - oldBase
        guard off < UInt64(pageClass.count * pageSize) else { return nil }
        let page = Int(off) / pageSize, inPage = Int(off) % pageSize
        let cid = pageClass[page]
        guard cid != 0, !badPage[page] else { return nil }
        let size = classes[cid].size
        guard inPage % size == 0, inPage / size < classes[cid].perSlab else { return nil }
        return file.base + Int(off)
    }

    func classOfChunk(_ p: UnsafeMutableRawPointer) -> Int {
        file.pageIndex(of: p, pageSize: pageSize).map { pageClass[$0] } ?? 0
    }
}
