// `watch [fetchers|mutations|evictions|connevents|…]` (memcached's process_watch_command and logger.c):
// the session turns into a stream of log lines. Lines logged on any thread queue up in the watcher's
// bounded WatchLog buffer; its waker tells this session's transport, which then asks for them
// (`continueStream`) while its socket keeps up. A watcher that cannot keep up loses lines (counted).
import CacheStore
import MemcacheProtocol

extension CommandSession {
    func processWatch(_ line: UnsafeRawBufferPointer) {
        let nr = noreply(line)
        if !server.settings.watchEnabled {
            reply(Reply.watchNotAllowed, noreply: nr)
            return
        }
        // memcached's resp_has_stack: replies of earlier commands not yet transmitted (a get transmits).
        if output.repliesSinceTransmit > 0 {
            reply(Reply.watchPipelined, noreply: nr)
            return
        }
        var types: WatchTypes = []
        if tokens.ntokens > 2 {
            for i in 1..<tokens.count {
                guard let t = WatchTypes(word: token(line, i)) else {
                    reply(Reply.error, noreply: nr)
                    return
                }
                types.insert(t)
            }
        } else {
            types = .fetchers
        }
        let w = Watcher(types: types, cfd: cfd, waker: waker)
        guard watchLog.add(w) else {
            wbuf.append(Reply.watcherTooMany)
            return
        }
        startStream(.watch(w))
        wbuf.append(Reply.ok)
    }

    /// One take of the watcher's queued lines into the output.
    func continueWatch(_ w: Watcher) -> StreamProgress {
        watchLog.take(w, into: &watchLines)
        if watchLines.isEmpty { return .waiting }
        watchLines.withUnsafeBytes { wbuf.append($0) }
        watchLines.removeAll(keepingCapacity: true)
        return .more
    }
}
