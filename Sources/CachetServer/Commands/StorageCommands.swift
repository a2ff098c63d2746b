// set / add / replace / append / prepend / cas (memcached's process_update_command and
// complete_nread_ascii): the line is parsed into a StorageRequest, the value is taken straight from the
// read buffer once all of it arrived (DataBlock.swift) and stored by `runStore`, which any framing can use.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    func processUpdate(_ line: UnsafeRawBufferPointer, _ buf: UnsafeRawBufferPointer, _ next: Int,
                       _ mode: StoreMode) -> Step {
        let r: StorageRequest
        switch StorageRequest.parse(line, tokens, isCas: mode == .cas) {
        case .success(let req): r = req
        case .failure(let f):
            // The data block is left to be read as commands, as memcached does.
            refuse(f)
            rbuf.consume(next)
            return .done
        }
        let nr = r.noreply, flags = r.flags, vlen = r.valueLength
        let key = r.key.bytes(in: line)
        let exptime = positiveExptime(r.exptime)
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
        let result = runStore(mode, key: key, flags: flags, exptime: exptime, value: value, casUnique: r.casUnique,
                              classId: classId)
        switch result {
        case .stored: reply(Reply.stored, noreply: nr)
        case .notStored: reply(Reply.notStored, noreply: nr)
        case .exists: reply(Reply.exists, noreply: nr)
        case .notFound: reply(Reply.notFound, noreply: nr)
        case .tooLarge: reply(Reply.tooLarge, noreply: nr)
        case .outOfMemory: reply(Reply.outOfMemoryStoring, noreply: nr)
        }
        rbuf.consume(end)
        return .done
    }

    /// Stores a value that arrived whole, as memcached's classic storage commands do (complete_nread +
    /// do_store_item): only `set` drops the old value when the new one cannot be stored; the watch lines,
    /// and the counters in the classes memcached charges. `classId` is the class the new item asked for.
    func runStore(_ mode: StoreMode, key: UnsafeRawBufferPointer, flags: UInt32, exptime: Int64,
                  value: UnsafeRawBufferPointer, casUnique: UInt64, classId: Int) -> StoreResult {
        runStoreItem(mode, key: key, flags: flags, exptime: exptime, value: value, casUnique: casUnique,
                     classId: classId).result
    }

    /// `runStore`, also telling the stored item's CAS (the binary protocol returns it).
    func runStoreItem(_ mode: StoreMode, key: UnsafeRawBufferPointer, flags: UInt32, exptime: Int64,
                      value: UnsafeRawBufferPointer, casUnique: UInt64, classId: Int) -> MetaStoreOutcome {
        let vlen = value.count
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
        case .stored: if mode == .cas { stats.addSlab(casClass, .casHits) }
        case .notStored: break
        case .exists: if mode == .cas { stats.addSlab(casClass, .casBadval) }   // not an append's CAS mismatch
        case .notFound: stats.add(.casMisses)
        case .tooLarge: stats.add(.storeTooLarge)
        case .outOfMemory: stats.add(.storeNoMemory)
        }
        return r
    }
}
