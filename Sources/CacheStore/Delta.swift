// Owns incr/decr (memcached do_add_delta): parsing the stored value with safe_strtoull, wrapping incr,
// clamping decr, and rewriting the value in place (space padded) or into a new item.
import Glibc
import MemcacheProtocol

extension CacheStore {
    public func delta(_ key: UnsafeRawBufferPointer, hash: UInt32, incr: Bool, delta: UInt64) -> DeltaResult {
        self.delta(key, hash: hash, incr: incr, delta: delta, casUnique: 0).result
    }

    /// As above, plus the item's new CAS (for meta arithmetic's `c` flag). A non-zero `casUnique` that does
    /// not match the item's CAS leaves it alone and returns `casMismatch: true` (memcached
    /// DELTA_ITEM_CAS_MISMATCH, meta `C` flag → EX) with `.notFound` as the result.
    /// `referenced` tells whether an item (hash, CAS) is still referenced by a reply the caller has not
    /// sent in memcached's terms: such an item is never rewritten in place.
    public func delta(_ key: UnsafeRawBufferPointer, hash: UInt32, incr: Bool, delta: UInt64,
                      casUnique: UInt64, referenced: ((UInt32, UInt64) -> Bool)? = nil)
        -> (result: DeltaResult, cas: UInt64, casMismatch: Bool) {
        let seg = assoc.segment(for: hash)
        assoc.locks.lock(seg)
        defer { assoc.locks.unlock(seg) }
        guard let it = findLocked(key, hash: hash, seg: seg).item else { return (.notFound, 0, false) }
        if it.nbytes <= 2 || it.isChunked { return (.nonNumeric, 0, false) }
        if casUnique != 0 && it.cas(layout) != casUnique { return (.notFound, 0, true) }
        let r = deltaLocked(it, seg: seg, hash: hash, incr: incr, delta: delta, newCas: nil,
                            inPlaceAllowed: !(referenced?(hash, it.cas(layout)) ?? false))
        return (r.result, r.item?.cas(layout) ?? 0, false)
    }

    /// The arithmetic on a live, plain item whose segment lock the caller holds (CAS already checked).
    /// Returns the item now holding the value (the same one when the digits fit, else its replacement).
    func deltaLocked(_ it: ItemRef, seg: Int, hash: UInt32, incr: Bool, delta: UInt64,
                     newCas: UInt64?, inPlaceAllowed: Bool = true) -> (result: DeltaResult, item: ItemRef?) {
        let data = it.plainValue(layout)
        guard let current = CacheStore.parseDeltaValue(UnsafeRawBufferPointer(start: data, count: it.valueLength)) else {
            return (.nonNumeric, nil)
        }
        let value = incr ? current &+ delta : (delta > current ? 0 : current - delta)
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buf -> (result: DeltaResult, item: ItemRef?) in
            var n = value, start = 20
            repeat { start -= 1; buf[start] = UInt8(48 + n % 10); n /= 10 } while n > 0
            let digits = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buf)[start..<20])
            // A pinned value is being sent as it is: give it a new item instead (memcached: refcount == 2).
            if inPlaceAllowed && digits.count + 2 <= Int(it.nbytes) && it.itFlags & ItemFlags.pinned == 0 {
                memcpy(data, digits.baseAddress!, digits.count)
                memset(data + digits.count, 32, Int(it.nbytes) - digits.count - 2)
                // The `stats sizes` histogram counts an item only when its CAS is at least the one taken when
                // it was switched on; memcached takes the item out under its old CAS and puts it back under
                // the new one, so a value changed in place after `sizes_enable` starts being counted.
                let size = it.totalSize(layout)
                sizes.record(totalSize: size, cas: it.cas(layout), delta: -1)
                it.setCas(newCas ?? nextCas(), layout)
                sizes.record(totalSize: size, cas: it.cas(layout), delta: 1)
                updateLocked(it)
                return (.ok(value: value, classId: it.classId), it)
            }
            guard let fresh = allocItem(keyLength: it.nkey, valueLength: digits.count, flags: it.clientFlags,
                                        heldHash: hash) else {
                return (.outOfMemory, nil)
            }
            prepare(fresh, key: it.key(layout), hash: hash, flags: it.clientFlags, exptime: it.exptime)
            var writer = ValueWriter(item: fresh, layout: layout)
            writer.write(digits)
            finishValue(fresh)
            replaceLocked(it, with: fresh, seg: seg, cas: newCas)
            return (.ok(value: value, classId: fresh.classId), fresh)
        }
    }

    /// memcached's do_add_delta reads the stored value with safe_strtoull (the value is followed by "\r\n",
    /// which ends the number): the same function the protocol parses tokens with.
    @inline(__always)
    public static func parseDeltaValue(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        Numbers.strtoull(bytes)
    }
}
