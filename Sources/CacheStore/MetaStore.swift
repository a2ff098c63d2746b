// Owns the store operations only the meta protocol needs (memcached proto_text.c process_mget_command,
// process_mdelete_command, process_marithmetic_command, process_meta_command): a get whose reply is
// built under the item lock while it may change the item (TTL, win token), vivify-on-miss, stale marking,
// arithmetic with vivify, and the debug peek. Meta set goes through `storeItem` (CacheStore.swift).
//
// Locking is the module's (CacheStore.md): every body runs under the key's segment lock and must not
// re-enter the store; allocation under that lock is allowed (eviction only try-locks segments).

/// A linked item as the meta commands see it, valid only inside the closure that received it. Unlike
/// `ItemView` it reads the header live, and lets the caller change what meta commands change in place.
public struct MetaItem {
    let item: ItemRef
    let layout: ItemLayout
    /// The LRU segment the item was on when it was looked up (0 HOT, 1 WARM, 2 COLD, 3 TEMP), before any
    /// bump moved it: memcached counts `hits_to_*` by it.
    public let lruSegment: Int

    @inline(__always) init(_ item: ItemRef, _ layout: ItemLayout, lruSegment: Int? = nil) {
        self.item = item; self.layout = layout; self.lruSegment = lruSegment ?? item.lruSegment
    }

    public var valueLength: Int { item.valueLength }
    public var clientFlags: UInt32 { item.clientFlags }
    public var cas: UInt64 { item.cas(layout) }
    public var classId: Int { item.classId }
    public var key: UnsafeRawBufferPointer { item.key(layout) }
    /// memcached's ntotal (what `me` prints as size).
    public var totalSize: Int { item.totalSize(layout) }
    /// Last access, relative time (memcached it->time).
    public var lastAccess: UInt32 { item.time }
    /// Relative expiry (0 = never); meta `T`/`N` set it directly, as memcached does.
    public var exptime: UInt32 {
        get { item.exptime }
        nonmutating set { item.exptime = newValue }
    }
    public var fetched: Bool { item.itFlags & ItemFlags.fetched != 0 }
    public var stale: Bool { item.itFlags & ItemFlags.stale != 0 }
    public var keyBinary: Bool { item.itFlags & ItemFlags.keyBinary != 0 }
    /// A recache win (W) was already handed out for this value.
    public var tokenSent: Bool {
        get { item.itFlags & ItemFlags.tokenSent != 0 }
        nonmutating set {
            if newValue { item.itFlags |= ItemFlags.tokenSent } else { item.itFlags &= ~ItemFlags.tokenSent }
        }
    }

    /// The value's bytes (no trailing CRLF), in order; more than one call only for chunked items.
    public func forEachSegment(_ body: (UnsafeRawBufferPointer) -> Void) {
        item.forEachSegment(keyAddress: item.raw + layout.keyOffset, body)
    }

    /// As above, for value bytes `range` only.
    public func forEachSegment(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) {
        item.forEachSegment(keyAddress: item.raw + layout.keyOffset, in: range, body)
    }
}

extension CacheStore {
    /// mg: looks `key` up (bumping it first when `bumpBefore`); on a miss with `vivify`, links an empty
    /// item (flags 0, no TTL, CAS `newCas` or a fresh one). `body(item, created)` runs under the lock and
    /// returns false to abandon the command (then no delayed bump). `bumpAfter` is memcached's delayed bump
    /// for locked lookups (h/l/T/N/R), so `h` and `l` show the state before this request.
    /// Returns the lookup outcome before vivification (for get_expired/get_flushed) and whether it created.
    public func metaGet(_ key: UnsafeRawBufferPointer, hash: UInt32, bumpBefore: Bool, bumpAfter: Bool,
                        vivify: Bool, newCas: UInt64?,
                        _ body: (MetaItem, Bool) -> Bool) -> (result: LookupResult, created: Bool) {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        var (found, result) = findLocked(key, hash: hash, seg: seg)
        var created = false
        if found == nil && vivify, let it = allocItem(keyLength: key.count, valueLength: 0, flags: 0, heldHash: hash) {
            prepare(it, key: key, hash: hash, flags: 0, exptime: 0)
            finishValue(it)
            linkLocked(it, seg: seg, cas: newCas)
            found = it
            created = true
        }
        guard let it = found else { return (result, false) }
        let segment = it.lruSegment
        if bumpBefore { bumpLocked(it) }
        if body(MetaItem(it, layout, lruSegment: segment), created) && bumpAfter { bumpLocked(it) }
        return (result, created)
    }

    /// me: the item without any bump (memcached limited_get with DONT_UPDATE).
    public func metaPeek(_ key: UnsafeRawBufferPointer, hash: UInt32, _ body: (MetaItem) -> Void) -> LookupResult {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        let (found, result) = findLocked(key, hash: hash, seg: seg)
        if let it = found { body(MetaItem(it, layout)) }
        return result
    }

    /// md: delete, or with `stale` mark the item stale (new CAS, win token cleared, TTL `newExptime` if
    /// given); superset `removeValue` (x) empties the value and keeps flags and TTL. A non-zero `casIn`
    /// must match the item's CAS.
    public func metaDelete(_ key: UnsafeRawBufferPointer, hash: UInt32, casIn: UInt64?, stale: Bool,
                           newExptime: Int64?, removeValue: Bool, newCas: UInt64?) -> MetaDeleteResult {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        guard let it = findLocked(key, hash: hash, seg: seg).item else { return .notFound }
        if let c = casIn, it.cas(layout) != c { return .casMismatch }
        if stale {
            if let e = newExptime { it.exptime = clock.realtime(e) }
            it.itFlags = (it.itFlags | ItemFlags.stale) & ~ItemFlags.tokenSent
            it.setCas(newCas ?? nextCas(), layout)
            return .kept
        }
        let cid = it.classId
        if removeValue, let empty = allocItem(keyLength: it.nkey, valueLength: 0, flags: it.clientFlags,
                                              heldHash: hash) {
            prepare(empty, key: it.key(layout), hash: hash, flags: it.clientFlags, exptime: it.exptime)
            empty.itFlags |= it.itFlags & ItemFlags.keyBinary
            finishValue(empty)
            replaceLocked(it, with: empty, seg: seg, cas: newCas)
            return .kept
        }
        // (x without memory for the empty item falls back to deleting it: the value is gone either way.)
        unlinkLocked(it, seg: seg)
        return .deleted(classId: cid)
    }

    /// ma: incr/decr (memcached do_add_delta) or, on a miss with `vivifyInitial`, an add of that value.
    /// `body(item, value, created)` runs under the lock with the item now holding `value`.
    public func metaDelta(_ key: UnsafeRawBufferPointer, hash: UInt32, incr: Bool, delta: UInt64,
                          referenced: ((UInt32, UInt64) -> Bool)? = nil,
                          casIn: UInt64, newCas: UInt64?, vivifyInitial: UInt64?,
                          _ body: (MetaItem, UInt64, Bool) -> Void) -> MetaDeltaResult {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        if let it = findLocked(key, hash: hash, seg: seg).item {
            if it.nbytes <= 2 || it.isChunked { return .nonNumeric }
            if casIn != 0 && it.cas(layout) != casIn { return .casMismatch }
            let r = deltaLocked(it, seg: seg, hash: hash, incr: incr, delta: delta, newCas: newCas,
                                inPlaceAllowed: !(referenced?(hash, it.cas(layout)) ?? false))
            switch r.result {
            case .ok(let value, let classId):
                body(MetaItem(r.item!, layout), value, false)
                return .ok(classId: classId)
            case .nonNumeric: return .nonNumeric
            default: return .outOfMemory
            }
        }
        guard let initial = vivifyInitial else { return .notFound }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 20 decimal digits fit in 24 bytes
        return withUnsafeMutableBytes(of: &digits) { buf -> MetaDeltaResult in
            var n = initial, start = 20
            repeat { start -= 1; buf[start] = UInt8(48 + n % 10); n /= 10 } while n > 0
            let text = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buf)[start..<20])
            guard let it = allocItem(keyLength: key.count, valueLength: text.count, flags: 0, heldHash: hash) else {
                return .vivifyOutOfMemory
            }
            prepare(it, key: key, hash: hash, flags: 0, exptime: 0)
            var writer = ValueWriter(item: it, layout: layout)
            writer.write(text)
            finishValue(it)
            linkLocked(it, seg: seg, cas: newCas)
            body(MetaItem(it, layout), initial, true)
            return .created
        }
    }
}
