// `md <key> <flags>*` (memcached 1.6.18 process_mdelete_command): delete, or with `I` mark the item stale
// (new CAS, win token cleared so the next mg wins, TTL from `T` if given); `C<cas>` must match (else EX).
// Every flag error reads `invalid or duplicate flag`. `q` drops HD only. Counters: delete_hits on a
// delete; delete_misses on NF and on EX; nothing for `I`.
//
// Superset: `x` (memcached 1.6.21+) empties the value but keeps the item; `E<cas>` sets the new CAS.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    func processMetaDelete(_ line: UnsafeRawBufferPointer) {
        guard metaPrologue(tooLong: MetaReply.flagsTooLong) else { return }
        let f = MetaFlags.parse(line, tokens, first: 2, keyScratch: metaKeyScratch, allowRemoveValue: true)
        if f.error != nil { wbuf.append(MetaReply.invalidOrDuplicateFlag); return }
        let key = metaKey(line, f)
        // The flags are echoed before the lookup (as memcached does), behind a status placeholder.
        let mark = replyMark
        wbuf.append(MetaReply.hd)
        if !echoOpaqueAndKey(line, tokens, from: 2, key: key, binary: f.keyBinary, mark: mark) { return }
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        let r = store.metaDelete(key, hash: store.hash(key), casIn: f.hasCas ? f.casIn : nil, stale: f.setStale,
                                 newExptime: f.newTTL ? f.exptime : nil, removeValue: f.removeValue,
                                 newCas: f.hasNewCas ? f.newCas : nil)
        let status: StaticString
        var nominal = false
        switch r {
        case .deleted(let classId):
            stats.addSlab(classId, .deleteHits)
            status = MetaReply.hd
            nominal = true
        case .kept:
            status = MetaReply.hd
            nominal = true
        case .casMismatch:
            stats.add(.deleteMisses)
            status = MetaReply.ex
        case .notFound:
            stats.add(.deleteMisses)
            status = MetaReply.nf
        }
        if f.noReply && nominal {
            truncateReply(to: mark)
            return
        }
        (wbuf.base + wbuf.head + mark).copyMemory(from: status.utf8Start, byteCount: 2)
    }
}
