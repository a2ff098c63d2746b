// set / add / replace / append / prepend / cas (memcached's process_update_command and
// complete_nread_ascii). The value is taken straight from the read buffer once all of it arrived.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    /// memcached's EXPTIME_TO_POSITIVE_TIME: a negative exptime becomes an absolute time in 1970.
    @inline(__always) static func positiveExptime(_ e: Int32) -> Int64 { e < 0 ? 2_592_001 : Int64(e) }

    func processUpdate(_ line: UnsafeRawBufferPointer, _ buf: UnsafeRawBufferPointer, _ next: Int,
                       _ mode: StoreMode) -> Step {
        let nr = noreply(line)
        let keyTok = tokens[1]
        guard keyTok.length <= keyMaxLength,
              let flags = Numbers.strtoul(token(line, 2)),
              let exptime32 = Numbers.strtol(token(line, 3)),
              let vlen32 = Numbers.strtol(token(line, 4)) else {
            reply(Reply.badFormat, noreply: nr)
            rbuf.consume(next)
            return .done
        }
        var casUnique: UInt64 = 0
        if mode == .cas {
            guard let c = Numbers.strtoull(token(line, 5)) else {
                reply(Reply.badFormat, noreply: nr)
                rbuf.consume(next)
                return .done
            }
            casUnique = c
        }
        if vlen32 < 0 || vlen32 > Int32.max - 2 {
            reply(Reply.badFormat, noreply: nr)
            rbuf.consume(next)
            return .done
        }
        let vlen = Int(vlen32)
        let key = token(line, 1)
        let exptime = CommandSession.positiveExptime(exptime32)
        let ntotal = CacheStore.itemTotalSize(keyLength: key.count, valueLength: vlen, flags: flags,
                                              casEnabled: store.config.casEnabled)
        if server.prefixStats.isOn { server.prefixStats.record(key, .set) }
        if ntotal > store.config.itemSizeMax {
            if watchLog.wants(.mutations) { logStore(key, status: .tooLarge, mode: mode, ttl: 0, classId: 0, size: 0) }
            // memcached's set looks the old item up to unlink it (a fetchers line).
            if mode == .set && watchLog.wants(.fetchers) { _ = logPeek(key) }
            reply(Reply.tooLarge, noreply: nr)
            stats.add(.storeTooLarge)
            if mode == .set {
                // A failed set must not leave the old value behind (memcached unlinks it).
                _ = store.delete(key, hash: store.hash(key))
            }
            return swallowDataBlock(next: next, vlen: vlen)
        }
        let classId = store.classId(forTotalSize: ntotal)
        let value: UnsafeRawBufferPointer, end: Int
        switch receiveDataBlock(buf, next: next, vlen: vlen, keyLength: key.count, flags: flags, classId: classId) {
        case .incomplete: return .needMore
        case .badChunk:
            reply(Reply.badDataChunk, noreply: nr)
            return .done
        case .complete(let v, let e): (value, end) = (v, e)
        }
        let watched = watchLog.wants(.fetchers) || watchLog.wants(.mutations)
        let old = watched ? store.peek(key, hash: store.hash(key)) : nil
        // Only `set` drops the old value when the new one cannot be stored (memcached's text protocol).
        let r = store.storeItem(mode, key: key, hash: store.hash(key), flags: flags, exptime: exptime, value: value,
                                casUnique: casUnique, unlinkOnFailure: mode == .set, options: MetaStoreOptions())
        let result = r.result
        let usedClass = r.classId == 0 ? classId : r.classId
        // cas_hits / cas_badval go to the class of the item being replaced (memcached do_store_item).
        let casClass = r.oldClassId == 0 ? usedClass : r.oldClassId
        // memcached counts set_cmds in complete_nread, i.e. only once the incoming item was allocated:
        // with -M, 80000 small sets into a full class 2 show 2:cmd_set 69904 (the number stored).
        if result != .outOfMemory { stats.addSlab(classId, .setCmds) }
        if let old {
            // Only a failed set looks the old item up to unlink it (process_update_command).
            logStoreOutcome(key, result, mode, old: old, exptime: exptime, flags: flags, vlen: vlen, classId: usedClass,
                            lookupOnFailure: mode == .set)
        }
        switch result {
        case .stored:
            if mode == .cas { stats.addSlab(casClass, .casHits) }
            reply(Reply.stored, noreply: nr)
        case .notStored: reply(Reply.notStored, noreply: nr)
        case .exists:
            stats.addSlab(casClass, .casBadval)
            reply(Reply.exists, noreply: nr)
        case .notFound:
            stats.add(.casMisses)
            reply(Reply.notFound, noreply: nr)
        case .tooLarge:
            stats.add(.storeTooLarge)
            reply(Reply.tooLarge, noreply: nr)
        case .outOfMemory:
            stats.add(.storeNoMemory)
            reply(Reply.outOfMemoryStoring, noreply: nr)
        }
        rbuf.consume(end)
        return .done
    }
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
