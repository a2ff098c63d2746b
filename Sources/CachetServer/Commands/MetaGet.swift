// `mg <key> <flags>*` (memcached 1.6.18 process_mget_command). The reply line is built under the item
// lock in token order, because some flags change the item as they are reached: `T` sets the TTL (so a
// `t` before it shows the old one), `N` gives a vivified item its TTL and the win, `R` wins a recache
// when the TTL is below its token. Then Z (a win was already handed out), X (stale; wins if no token
// went out yet) and W (this client won; later ones see Z).
//
// `q` drops only the EN of a miss. With h/l/T/N/R the lookup does not bump the item; the bump runs after
// the reply (unless `u`), so `h`/`l` report the state before this request.
// Counters as 1.6.18: a hit counts get_hits + cmd_get, or with `T` cmd_touch + touch_hits instead; a
// miss counts get_misses + cmd_get (also with `T`); a vivified miss counts as a hit.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    func processMetaGet(_ line: UnsafeRawBufferPointer) {
        guard metaPrologue(tooLong: MetaReply.getFlagsTooLong) else { return }
        let f = MetaFlags.parse(line, tokens, first: 2, keyScratch: metaKeyScratch)
        if let e = f.error { wbuf.append(MetaReply.message(for: e)); return }
        let key = metaKey(line, f)
        let clock = store.clock
        let now = clock.currentTime
        let toks = tokens, output = self.output
        let mark = replyMark
        var ttlSet = false
        var opaqueTooLong = false
        var hitClass = 0, hitSegment = 0
        var hitLength = 0
        var ran = false
        var heldCas: UInt64 = 0
        let hash = store.hash(key)
        let (result, _) = store.metaGet(key, hash: hash, bumpBefore: !f.locked && !f.noUpdate,
                                        bumpAfter: f.locked && !f.noUpdate, vivify: f.vivify,
                                        newCas: f.hasNewCas ? f.newCas : nil) { it, created in
            ran = true
            heldCas = it.cas
            hitClass = it.classId
            hitSegment = it.lruSegment
            hitLength = it.valueLength
            let out = wbuf
            if f.value {
                out.append(MetaReply.va)
                out.appendDecimal(UInt64(it.valueLength))
            } else {
                out.append(MetaReply.hd)
            }
            var won = false
            for i in 2..<toks.count {
                let t = toks[i]
                let c = line[t.start]
                switch c {
                case UInt8(ascii: "T"):
                    ttlSet = true
                    it.exptime = clock.realtime(f.exptime)
                case UInt8(ascii: "N"):
                    if created {
                        it.exptime = clock.realtime(f.autovivExptime)
                        won = true
                    }
                case UInt8(ascii: "R"):
                    if !it.tokenSent && !created && it.exptime != 0 && it.exptime < clock.realtime(f.recacheTime) {
                        won = true
                    }
                case UInt8(ascii: "s"):
                    metaChar(c)
                    out.appendDecimal(UInt64(it.valueLength))
                case UInt8(ascii: "t"):
                    metaChar(c)
                    // memcached prints exptime - current_time as an unsigned 32-bit number.
                    if it.exptime == 0 { out.append("-1" as StaticString) } else { out.appendDecimal(UInt64(it.exptime &- now)) }
                case UInt8(ascii: "c"):
                    metaChar(c)
                    out.appendDecimal(it.cas)
                case UInt8(ascii: "f"):
                    metaChar(c)
                    out.appendDecimal(UInt64(it.clientFlags))
                case UInt8(ascii: "l"):
                    metaChar(c)
                    out.appendDecimal(UInt64(now &- it.lastAccess))
                case UInt8(ascii: "h"):
                    metaChar(c)
                    out.append(it.fetched ? UInt8(ascii: "1") : UInt8(ascii: "0"))
                case UInt8(ascii: "O"):
                    if !appendOpaque(line, t) { opaqueTooLong = true; return false }
                case UInt8(ascii: "k"):
                    appendMetaKey(it.key, binary: it.keyBinary)
                default:
                    break
                }
            }
            if it.tokenSent { metaChar(UInt8(ascii: "Z")) }
            if it.stale {
                metaChar(UInt8(ascii: "X"))
                if !it.tokenSent { won = true }
            }
            if won {
                metaChar(UInt8(ascii: "W"))
                it.tokenSent = true
            }
            out.append(Reply.crlf)
            if f.value {
                output.appendValue(it)
                out.append(Reply.crlf)
            }
            return true
        }
        // memcached logs the lookup (before any vivify), also when the reply then fails.
        if watchLog.wants(.fetchers) { logFetch(key, result, valueLength: hitLength) }
        if opaqueTooLong {
            truncateReply(to: mark)
            wbuf.append(MetaReply.opaqueTooLong)
            return
        }
        // memcached's response keeps a reference to the item until it is transmitted.
        if ran { output.heldItems.append((hash, heldCas)) }
        if result == .expired { stats.add(.getExpired) }
        if result == .flushed { stats.add(.getFlushed) }
        if ran {
            if ttlSet {
                stats.add(.touchCmds)
                stats.addSlab(hitClass, .touchHits)
            } else {
                stats.addSlab(hitClass, .getHits)
                stats.addSlab(hitClass, SlabCounter.hits(segment: hitSegment))
                stats.add(.getCmds)
            }
        } else {
            stats.add(.getMisses)
            stats.add(.getCmds)
        }
        if ran { return }
        wbuf.append(MetaReply.en)
        if !echoOpaqueAndKey(line, toks, from: 2, key: key, binary: f.keyBinary, mark: mark) { return }
        if f.noReply { truncateReply(to: mark) }
    }
}
