// `ms <key> <datalen> <flags>*` + data block (memcached 1.6.18 process_mset_command, complete_nread_ascii,
// _finalize_mset). Flags are checked before the data is read: any error after the datalen was understood
// swallows the data block (memcached conn_swallow), errors before it leave the block to be parsed as a
// command. Mode `M`: E add, A append, P prepend, R replace, S set (upper case only in 1.6.18); a `C`
// turns set/replace into cas; `I` with cas lets an older CAS store a stale value.
//
// Reply: HD / NS / EX / NF followed, in token order, by ` O…`, ` k<key>`, ` c<cas>` (0 unless stored).
// `q` drops only HD; a bad data chunk and server errors are always sent.
//
// Superset (memcached 1.6.20+; 1.6.18 ignores these flags): `s` appends ` s<datalen>`; `N<ttl>` with
// append/prepend creates a missing item with that TTL; `E<cas>` sets the stored item's CAS.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    func processMetaSet(_ line: UnsafeRawBufferPointer, _ buf: UnsafeRawBufferPointer, _ next: Int) -> Step {
        let n = tokens.ntokens
        @inline(__always) func fail(_ s: StaticString) -> Step {
            wbuf.append(s)
            rbuf.consume(next)
            return .done
        }
        if n < 3 { return fail(Reply.error) }
        if tokens[1].length > keyMaxLength || n == 3 { return fail(Reply.badFormat) }
        if n > metaMaxTokens { return fail(MetaReply.flagsTooLong) }
        guard let v32 = Numbers.strtol(token(line, 2)), v32 >= 0, v32 <= Int32.max - 2 else {
            return fail(Reply.badFormat)
        }
        let vlen = Int(v32)
        let f = MetaFlags.parse(line, tokens, first: 3, keyScratch: metaKeyScratch)
        var err: StaticString? = nil
        var mode = StoreMode.set
        if let e = f.error {
            err = MetaReply.message(for: e)
        } else {
            for i in 3..<tokens.count where line[tokens[i].start] == UInt8(ascii: "O") && tokens[i].length > metaMaxOpaqueLength {
                err = MetaReply.opaqueTooLong
            }
            switch f.mode {
            case 0, UInt8(ascii: "S"): mode = .set
            case UInt8(ascii: "E"): mode = .add
            case UInt8(ascii: "A"): mode = .append
            case UInt8(ascii: "P"): mode = .prepend
            case UInt8(ascii: "R"): mode = .replace
            default: err = MetaReply.invalidSetMode
            }
        }
        if let err {
            wbuf.append(err)
            return swallowDataBlock(next: next, vlen: vlen)
        }
        if f.hasCas && (mode == .set || mode == .replace) { mode = .cas }
        let key = metaKey(line, f)
        let ntotal = CacheStore.itemTotalSize(keyLength: key.count, valueLength: vlen, flags: f.clientFlags,
                                              casEnabled: store.config.casEnabled)
        if ntotal > store.config.itemSizeMax {
            // memcached fails the allocation before reading the data, and drops the key's old value.
            wbuf.append(Reply.tooLarge)
            stats.add(.storeTooLarge)
            // Logged as 1.6.18 does: the item_store line, then the lookup that unlinks the old value.
            if watchLog.wants(.mutations) { logStore(key, status: .tooLarge, mode: mode, ttl: 0, classId: 0, size: 0) }
            if watchLog.wants(.fetchers) { _ = logPeek(key) }
            _ = store.delete(key, hash: store.hash(key))
            return swallowDataBlock(next: next, vlen: vlen)
        }
        let classId = store.classId(forTotalSize: ntotal)
        let value: UnsafeRawBufferPointer, end: Int
        switch receiveDataBlock(buf, next: next, vlen: vlen, keyLength: key.count, flags: f.clientFlags, classId: classId) {
        case .incomplete: return .needMore
        case .badChunk:
            wbuf.append(Reply.badDataChunk)
            return .done
        case .complete(let v, let e): (value, end) = (v, e)
        }
        var options = MetaStoreOptions()
        options.casStale = f.setStale && mode == .cas
        options.keyBinary = f.keyBinary
        options.newCas = f.hasNewCas ? f.newCas : nil
        let vivify = f.vivify && (mode == .append || mode == .prepend)
        options.vivify = vivify
        // watch: what do_store_item looked up (item_get) and its outcome (item_store).
        let watched = watchLog.wants(.fetchers) || watchLog.wants(.mutations)
        let old = watched ? store.peek(key, hash: store.hash(key)) : nil
        let r = store.storeItem(mode, key: key, hash: store.hash(key), flags: f.clientFlags,
                                exptime: vivify ? f.autovivExptime : f.exptime, value: value,
                                casUnique: f.hasCas ? f.casIn : 0, unlinkOnFailure: true, options: options)
        rbuf.consume(end)
        if let old {
            // mset's failed allocation looks the old item up to unlink it, whatever the mode.
            logStoreOutcome(key, r.result, mode, old: old, exptime: vivify ? f.autovivExptime : f.exptime,
                            flags: f.clientFlags, vlen: vlen, classId: r.classId == 0 ? classId : r.classId,
                            lookupOnFailure: true)
        }
        if r.result != .outOfMemory && r.result != .tooLarge { stats.addSlab(classId, .setCmds) }
        if mode == .cas {
            // counted in the class of the item being replaced (memcached do_store_item)
            let casClass = r.oldClassId == 0 ? classId : r.oldClassId
            switch r.result {
            case .stored: stats.addSlab(casClass, .casHits)
            case .exists: stats.addSlab(casClass, .casBadval)
            case .notFound: stats.add(.casMisses)
            default: break
            }
        }
        if r.result == .outOfMemory { stats.add(.storeNoMemory) }
        if r.result == .tooLarge { stats.add(.storeTooLarge) }
        switch r.result {
        case .stored:
            if f.noReply { return .done }
            wbuf.append(MetaReply.hd)
        case .notStored: wbuf.append(MetaReply.ns)
        case .exists: wbuf.append(MetaReply.ex)
        case .notFound: wbuf.append(MetaReply.nf)
        case .outOfMemory:
            wbuf.append(Reply.outOfMemoryStoring)
            return .done
        case .tooLarge:
            wbuf.append(Reply.tooLarge)
            return .done
        }
        for i in 3..<tokens.count {
            let t = tokens[i]
            switch line[t.start] {
            case UInt8(ascii: "O"): _ = appendOpaque(line, t)
            case UInt8(ascii: "k"): appendMetaKey(key, binary: f.keyBinary)
            case UInt8(ascii: "c"):
                metaChar(UInt8(ascii: "c"))
                wbuf.appendDecimal(r.cas)
            case UInt8(ascii: "s"):   // superset (1.6.20+)
                metaChar(UInt8(ascii: "s"))
                wbuf.appendDecimal(UInt64(vlen))
            default: break
            }
        }
        wbuf.append(Reply.crlf)
        return .done
    }
}
