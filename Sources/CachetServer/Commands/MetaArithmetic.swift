// `ma <key> <flags>*` (memcached 1.6.18 process_marithmetic_command): incr (default, `MI`/`M+`) or decr
// (`MD`/`M-`) by `D` (default 1); `N<ttl>` creates a missing key with `J` (default 0); `C<cas>` must
// match. The reply line is built under the item lock in token order (`T`/`N` change the TTL a later `t`
// shows); `v` adds the number as a data block. The O/k echo comes after the arithmetic, so a too-long
// opaque is reported after the value already changed (as in memcached).
// `q` drops the reply of a successful incr/decr, not of a vivify, NF or EX. Every flag error reads
// `invalid or duplicate flag`. Counters: incr/decr hits and misses, none for a vivify or EX.
//
// Superset: `E<cas>` (1.6.27+) gives the changed item that CAS.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    func processMetaArithmetic(_ line: UnsafeRawBufferPointer) {
        guard metaPrologue(tooLong: MetaReply.flagsTooLong) else { return }
        let f = MetaFlags.parse(line, tokens, first: 2, keyScratch: metaKeyScratch)
        if f.error != nil { wbuf.append(MetaReply.invalidOrDuplicateFlag); return }
        let incr: Bool
        switch f.mode {
        case 0, UInt8(ascii: "I"), UInt8(ascii: "+"): incr = true
        case UInt8(ascii: "D"), UInt8(ascii: "-"): incr = false
        default:
            wbuf.append(MetaReply.invalidArithmeticMode)
            return
        }
        let key = metaKey(line, f)
        let clock = store.clock
        let now = clock.currentTime
        let toks = tokens
        let mark = replyMark
        var opaqueTooLong = false
        var createdClass = 0
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        let r = store.metaDelta(key, hash: store.hash(key), incr: incr, delta: f.delta,
                                referenced: output.referencedByPendingReply,
                                casIn: f.hasCas ? f.casIn : 0, newCas: f.hasNewCas ? f.newCas : nil,
                                vivifyInitial: f.vivify ? f.initial : nil) { it, value, created in
            let out = wbuf
            if created { createdClass = it.classId }
            if f.value {
                out.append(MetaReply.va)
                out.appendDecimal(UInt64(CommandSession.decimalLength(value)))
            } else {
                out.append(MetaReply.hd)
            }
            for i in 2..<toks.count {
                let t = toks[i]
                let c = line[t.start]
                switch c {
                case UInt8(ascii: "c"):
                    metaChar(c)
                    out.appendDecimal(it.cas)
                case UInt8(ascii: "t"):
                    metaChar(c)
                    if it.exptime == 0 { out.append("-1" as StaticString) } else { out.appendDecimal(UInt64(it.exptime &- now)) }
                case UInt8(ascii: "T"):
                    it.exptime = clock.realtime(f.exptime)
                case UInt8(ascii: "N"):
                    if created { it.exptime = clock.realtime(f.autovivExptime) }
                case UInt8(ascii: "O"):
                    if !appendOpaque(line, t) { opaqueTooLong = true; return }
                case UInt8(ascii: "k"):
                    appendMetaKey(key, binary: f.keyBinary)
                default:
                    break
                }
            }
            if f.value {
                out.append(Reply.crlf)
                out.appendDecimal(value)
            }
            out.append(Reply.crlf)
        }
        if r == .created { logVivifyAdd(key, classId: createdClass, initial: f.initial) }
        switch r {
        case .ok(let classId):
            stats.addSlab(classId, incr ? .incrHits : .decrHits)
        case .notFound:
            stats.add(incr ? .incrMisses : .decrMisses)
        default:
            break
        }
        if opaqueTooLong {
            truncateReply(to: mark)
            wbuf.append(MetaReply.opaqueTooLong)
            return
        }
        switch r {
        case .ok:
            if f.noReply { truncateReply(to: mark) }
            return
        case .created:
            return
        case .notFound: wbuf.append(MetaReply.nf)
        case .casMismatch: wbuf.append(MetaReply.ex)
        case .nonNumeric: wbuf.append(Reply.nonNumeric); return
        case .outOfMemory: wbuf.append(Reply.outOfMemory); return
        case .vivifyOutOfMemory: wbuf.append(MetaReply.vivifyOutOfMemory); return
        }
        if !echoOpaqueAndKey(line, toks, from: 2, key: key, binary: f.keyBinary, mark: mark) { return }
    }

    /// A vivified miss is stored by memcached's do_store_item as an add: its own lookup (not_found) and
    /// an item_store line with the TTL the item had before `N` set it (0) and the initial value's length.
    func logVivifyAdd(_ key: UnsafeRawBufferPointer, classId: Int, initial: UInt64) {
        if watchLog.wants(.fetchers) { logFetch(key, .miss, valueLength: 0) }
        if watchLog.wants(.mutations) {
            logStore(key, status: .stored, mode: .add, ttl: 0, classId: classId, size: CommandSession.decimalLength(initial))
        }
    }

    @inline(__always) static func decimalLength(_ v: UInt64) -> Int {
        var n = 1, x = v
        while x >= 10 { x /= 10; n += 1 }
        return n
    }
}
