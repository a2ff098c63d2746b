// The `watch` fetchers/mutations lines the command handlers log (memcached's LOGGER_ITEM_GET and
// LOGGER_ITEM_STORE), built only when a watcher wants them (`watchLog.wants(...)`).
import CacheStore
import MemcacheProtocol

extension CommandSession {
    static func lookupStatus(_ r: LookupResult) -> String {
        switch r {
        case .hit: return "found"
        case .miss: return "not_found"
        case .flushed: return "flushed"
        case .expired: return "expired"
        }
    }

    /// memcached LOGGER_ITEM_GET.
    func logFetch(_ key: UnsafeRawBufferPointer, _ result: LookupResult, valueLength: Int) {
        var cls = 0
        if case .hit(let c) = result { cls = c }
        watchLog.emit(.fetchers, "type=item_get key=\(URIEncode.string(key)) status=\(CommandSession.lookupStatus(result)) clsid=\(cls) cfd=\(cfd) size=\(cls == 0 ? 0 : valueLength)")
    }

    /// The item_get line memcached's store/delete/arith/touch paths log for the item they look up.
    func logPeek(_ key: UnsafeRawBufferPointer) -> (result: LookupResult, valueLength: Int, exptime: UInt32) {
        let p = store.peek(key, hash: store.hash(key))
        logFetch(key, p.result, valueLength: p.valueLength)
        return p
    }

    /// memcached LOGGER_ITEM_STORE. `ttl` is relative seconds (0 = never).
    func logStore(_ key: UnsafeRawBufferPointer, status: StoreResult, mode: StoreMode, ttl: Int64, classId: Int, size: Int) {
        let st: String
        switch status {
        case .stored: st = "stored"
        case .notStored: st = "not_stored"
        case .exists: st = "exists"
        case .notFound: st = "not_found"
        case .tooLarge: st = "too_large"
        case .outOfMemory: st = "no_memory"
        }
        let cmd: String
        switch mode {
        case .set: cmd = "set"
        case .add: cmd = "add"
        case .replace: cmd = "replace"
        case .append: cmd = "append"
        case .prepend: cmd = "prepend"
        case .cas: cmd = "cas"
        }
        let k = URIEncode.string(key)
        if status == .tooLarge || status == .outOfMemory {
            // 1.6.18 logs these with shifted arguments: the fd lands in clsid, cfd and size read 0.
            watchLog.emit(.mutations, "type=item_store key=\(k) status=\(st) cmd=\(cmd) ttl=0 clsid=\(cfd) cfd=0 size=0")
        } else {
            watchLog.emit(.mutations, "type=item_store key=\(k) status=\(st) cmd=\(cmd) ttl=\(UInt32(truncatingIfNeeded: ttl)) clsid=\(classId) cfd=\(cfd) size=\(size)")
        }
    }
}

extension CommandSession {
    /// The item_store line for a storage command's outcome: the new item's ttl, class and size, except for
    /// a successful append/prepend, which stores the joined value under the old item's exptime.
    func logStoreResult(_ key: UnsafeRawBufferPointer, _ result: StoreResult, _ mode: StoreMode,
                        old: (result: LookupResult, valueLength: Int, exptime: UInt32),
                        exptime: Int64, flags: UInt32, vlen: Int, classId: Int) {
        let now = Int64(store.clock.currentTime)
        var ttl: Int64 = exptime == 0 ? 0 : Int64(store.clock.realtime(exptime)) - now
        var size = vlen
        var cls = classId
        if result == .stored && (mode == .append || mode == .prepend), old.result.isHit {
            ttl = old.exptime == 0 ? 0 : Int64(old.exptime) - now
            size = old.valueLength + vlen
            cls = store.classId(forTotalSize: CacheStore.itemTotalSize(keyLength: key.count, valueLength: size, flags: flags,
                                                                       casEnabled: store.config.casEnabled))
        }
        logStore(key, status: result, mode: mode, ttl: ttl, classId: cls, size: size)
    }
}

extension LookupResult {
    var isHit: Bool { if case .hit = self { return true } else { return false } }
}

extension CommandSession {
    /// The watch lines of a storage command whose value was read: the item_get of do_store_item's lookup,
    /// then item_store. memcached allocates before it reads the value, so a failed allocation (no_memory,
    /// too_large) logs item_store first and then, when the command unlinks the old value
    /// (`lookupOnFailure`), that lookup. `old` is the key's state before the store.
    func logStoreOutcome(_ key: UnsafeRawBufferPointer, _ result: StoreResult, _ mode: StoreMode,
                         old: (result: LookupResult, valueLength: Int, exptime: UInt32),
                         exptime: Int64, flags: UInt32, vlen: Int, classId: Int, lookupOnFailure: Bool) {
        let fetchers = watchLog.wants(.fetchers), mutations = watchLog.wants(.mutations)
        if result == .outOfMemory || result == .tooLarge {
            if mutations { logStore(key, status: result, mode: mode, ttl: 0, classId: 0, size: 0) }
            if fetchers && lookupOnFailure { logFetch(key, old.result, valueLength: old.valueLength) }
            return
        }
        if fetchers { logFetch(key, old.result, valueLength: old.valueLength) }
        if mutations {
            logStoreResult(key, result, mode, old: old, exptime: exptime, flags: flags, vlen: vlen, classId: classId)
        }
    }
}
