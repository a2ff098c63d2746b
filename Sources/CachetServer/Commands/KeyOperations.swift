// The key operations as every wire protocol runs them, whatever its framing: the store call plus what
// memcached does around it — `stats detail` prefixes, the `watch` lines, the counters. The text handlers
// (and a binary or UDP framing) parse their request, call these and format the outcome their own way.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    /// What memcached counts and logs for one key a get or gat looked up (the lookup itself formats the
    /// reply under the item lock, so each framing calls `store.get` with its own body and then this).
    /// `segment` is the LRU segment the hit was found in.
    @inline(__always)
    func accountGet(_ key: UnsafeRawBufferPointer, _ result: LookupResult, segment: Int, touch: Bool) {
        switch result {
        case .hit(let classId):
            if touch {
                stats.add(.touchCmds)
                stats.addSlab(classId, .touchHits)
            } else {
                stats.addSlab(classId, .getHits)
                stats.addSlab(classId, SlabCounter.hits(segment: segment))
            }
        case .miss, .expired, .flushed:
            if result == .expired { stats.add(.getExpired) }
            if result == .flushed { stats.add(.getFlushed) }
            if touch {
                stats.add(.touchCmds)
                stats.add(.touchMisses)
            } else {
                stats.add(.getMisses)
            }
        }
        if !touch { stats.add(.getCmds) }   // memcached counts gat/gats only as touches
        if server.prefixStats.isOn { server.prefixStats.record(key, .get(hit: result.isHit)) }
        if watchLog.wants(.fetchers) {
            logFetch(key, result, valueLength: result.isHit ? store.peek(key, hash: store.hash(key)).valueLength : 0)
        }
    }

    /// delete: true when the key was there.
    func runDelete(_ key: UnsafeRawBufferPointer) -> Bool {
        runDelete(key, casUnique: 0) == .deleted
    }

    enum DeleteOutcome { case deleted, casMismatch, notFound }

    /// delete, refused when a non-zero `casUnique` is not the item's CAS (the binary protocol's delete
    /// carries one; memcached counts nothing for a mismatch).
    func runDelete(_ key: UnsafeRawBufferPointer, casUnique: UInt64) -> DeleteOutcome {
        if server.prefixStats.isOn { server.prefixStats.record(key, .delete) }
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        let hash = store.hash(key)
        if casUnique != 0 {
            switch store.metaDelete(key, hash: hash, casIn: casUnique, stale: false, newExptime: nil,
                                    removeValue: false, newCas: nil) {
            case .deleted(let classId):
                stats.addSlab(classId, .deleteHits)
                return .deleted
            case .casMismatch, .kept: return .casMismatch
            case .notFound:
                stats.add(.deleteMisses)
                return .notFound
            }
        }
        switch store.delete(key, hash: hash) {
        case .deleted(let classId):
            stats.addSlab(classId, .deleteHits)
            return .deleted
        case .notFound:
            stats.add(.deleteMisses)
            return .notFound
        }
    }

    /// incr / decr. An item that a reply memcached has not transmitted yet still references is not
    /// rewritten in place (ReplyOutput.heldItems).
    func runDelta(_ key: UnsafeRawBufferPointer, incr: Bool, delta: UInt64) -> DeltaResult {
        runDelta(key, incr: incr, delta: delta, casUnique: 0, countMiss: true).result
    }

    /// incr / decr with what the binary protocol adds: a CAS the item must have (a mismatch is counted
    /// nowhere) and the item's new CAS; `countMiss: false` leaves a miss uncounted for a caller that
    /// creates the item instead (memcached counts incr_misses only when it does not).
    func runDelta(_ key: UnsafeRawBufferPointer, incr: Bool, delta: UInt64, casUnique: UInt64,
                  countMiss: Bool) -> (result: DeltaResult, cas: UInt64, casMismatch: Bool) {
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        let r = store.delta(key, hash: store.hash(key), incr: incr, delta: delta, casUnique: casUnique,
                            referenced: output.referencedByPendingReply)
        switch r.result {
        case .ok(_, let classId): stats.addSlab(classId, incr ? .incrHits : .decrHits)
        case .notFound: if countMiss && !r.casMismatch { stats.add(incr ? .incrMisses : .decrMisses) }
        case .nonNumeric, .outOfMemory: break
        }
        return r
    }

    /// touch: the new exptime (already made positive) for the key, if it is there.
    func runTouch(_ key: UnsafeRawBufferPointer, exptime: Int64) -> LookupResult {
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        let result = store.touch(key, hash: store.hash(key), exptime: exptime)
        stats.add(.touchCmds)
        if case .hit(let classId) = result {
            stats.addSlab(classId, .touchHits)
        } else {
            stats.add(.touchMisses)
        }
        return result
    }
}
