// The key operations as every wire protocol runs them, whatever its framing: the store call plus what
// memcached does around it — `stats detail` prefixes, the `watch` lines, the counters. The text handlers
// (and a binary or UDP framing) parse their request, call these and format the outcome their own way.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    /// delete: true when the key was there.
    func runDelete(_ key: UnsafeRawBufferPointer) -> Bool {
        if server.prefixStats.isOn { server.prefixStats.record(key, .delete) }
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        switch store.delete(key, hash: store.hash(key)) {
        case .deleted(let classId):
            stats.addSlab(classId, .deleteHits)
            return true
        case .notFound:
            stats.add(.deleteMisses)
            return false
        }
    }

    /// incr / decr. An item that a reply memcached has not transmitted yet still references is not
    /// rewritten in place (ReplyOutput.heldItems).
    func runDelta(_ key: UnsafeRawBufferPointer, incr: Bool, delta: UInt64) -> DeltaResult {
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        let result = store.delta(key, hash: store.hash(key), incr: incr, delta: delta, casUnique: 0,
                                 referenced: output.referencedByPendingReply).result
        switch result {
        case .ok(_, let classId): stats.addSlab(classId, incr ? .incrHits : .decrHits)
        case .notFound: stats.add(incr ? .incrMisses : .decrMisses)
        case .nonNumeric, .outOfMemory: break
        }
        return result
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
