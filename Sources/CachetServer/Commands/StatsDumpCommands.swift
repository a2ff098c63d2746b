// `stats detail on|off|dump`, `stats cachedump <class> <limit>` and `stats conns` (memcached's
// process_stats_detail, item_cachedump and process_stats_conns), with memcached 1.6.18's replies.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    /// memcached: fewer than 4 tokens hands "" to process_stats_detail, which answers the usage error.
    /// 1.6.18 does not gate `stats detail` on -X (only cachedump and metadump).
    func processStatsDetail(_ line: UnsafeRawBufferPointer) {
        let arg = tokens.ntokens >= 4 ? token(line, 2) : UnsafeRawBufferPointer(start: nil, count: 0)
        if arg.elementsEqual("on".utf8) {
            server.prefixStats.enabled.store(true, ordering: .relaxed)
            wbuf.append(Reply.ok)
        } else if arg.elementsEqual("off".utf8) {
            server.prefixStats.enabled.store(false, ordering: .relaxed)
            wbuf.append(Reply.ok)
        } else if arg.elementsEqual("dump".utf8) {
            server.prefixStats.dump(into: wbuf)
        } else {
            wbuf.append(Reply.statsDetailUsage)
        }
    }

    /// memcached's cachedump reply cap (2 MB including the final END).
    static let cachedumpLimit = 2 * 1024 * 1024

    func processCachedump(_ line: UnsafeRawBufferPointer) {
        if !server.settings.dumpEnabled { wbuf.append(Reply.cachedumpNotAllowed); return }
        if tokens.ntokens < 5 { wbuf.append(Reply.badCommandLine); return }
        guard let id = Numbers.strtoul(token(line, 2)), let limit = Numbers.strtoul(token(line, 3)) else {
            wbuf.append(Reply.badFormat)
            return
        }
        if id >= 64 { wbuf.append(Reply.illegalSlabId); return }
        let started = server.clock.processStarted
        let out = wbuf
        var shown: UInt32 = 0
        var total = 0
        // As 1.6.18: only the COLD LRU is dumped (items reach it from HOT/WARM through the maintainer).
        store.cachedump(classId: Int(id)) { key, length, exptime, _ in
            if limit != 0 && shown >= limit { return false }
            let exp = exptime == 0 ? 0 : Int(exptime) + started
            // "ITEM " + key + " [" + len + " b; " + exp + " s]\r\n"
            let size = 5 + key.count + 2 + String(length).utf8.count + 4 + String(exp).utf8.count + 4
            if total + size + 6 > CommandSession.cachedumpLimit { return false }
            let item: StaticString = "ITEM ", open: StaticString = " [", b: StaticString = " b; ", s: StaticString = " s]\r\n"
            out.append(item); out.append(key); out.append(open)
            out.appendDecimal(length); out.append(b); out.appendDecimal(exp); out.append(s)
            total += size
            shown += 1
            return true
        }
        wbuf.append(Reply.end)
    }

    func processStatsConns() {
        let now = server.clock.currentTime
        for c in server.connRegistry.snapshot() {
            let p = "\(c.fd):"
            if c.isUDP { stat(p + "UDP", "UDP") }
            let mine = c.fd == cfd
            let state = mine ? ConnState.parseCmd : (ConnState(rawValue: c.state.load(ordering: .relaxed)) ?? .read)
            let (addr, listenAddr) = c.addresses(in: state)
            stat(p + "addr", addr)
            if let l = listenAddr { stat(p + "listen_addr", l) }
            stat(p + "state", state.name)
            let last = mine ? now : c.lastCmd.load(ordering: .relaxed)
            stat(p + "secs_since_last_cmd", String(Int(Int64(now) - Int64(last))))
            for (k, v) in c.tlsLines.withLock({ $0 }) { stat(p + k, v) }
        }
        wbuf.append(Reply.end)
    }
}
