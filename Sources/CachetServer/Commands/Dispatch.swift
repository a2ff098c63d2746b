// Routes a tokenized command line to its handler (memcached's process_command_ascii).
import MemcacheProtocol

extension CommandSession {
    /// `line` is the command (without line ending), `buf` the whole read buffer, `next` where the
    /// following request starts. Handlers consume what they used from `rbuf`.
    func dispatch(_ line: UnsafeRawBufferPointer, _ buf: UnsafeRawBufferPointer, _ next: Int) -> Step {
        let cmd = TextCommandParser.identify(line, tokens)
        switch cmd {
        case .get: processGet(line, returnCas: false, touch: false)
        case .gets: processGet(line, returnCas: true, touch: false)
        case .gat: processGet(line, returnCas: false, touch: true)
        case .gats: processGet(line, returnCas: true, touch: true)
        case .set: return processUpdate(line, buf, next, .set)
        case .add: return processUpdate(line, buf, next, .add)
        case .replace: return processUpdate(line, buf, next, .replace)
        case .append: return processUpdate(line, buf, next, .append)
        case .prepend: return processUpdate(line, buf, next, .prepend)
        case .cas: return processUpdate(line, buf, next, .cas)
        case .delete: processDelete(line)
        case .incr: processArithmetic(line, incr: true)
        case .decr: processArithmetic(line, incr: false)
        case .touch: processTouch(line)
        case .stats: processStats(line)
        case .flushAll: processFlushAll(line)
        case .version: out("VERSION \(memcachedCompatVersion)")
        case .quit:
            rbuf.consume(next)
            closeAfterWrite = true
            closeReason = .normal
            return .done
        case .verbosity: processVerbosity(line)
        case .shutdown: processShutdown(line)
        case .cacheMemlimit: processMemlimit(line)
        case .refreshCerts: processRefreshCerts(line)
        case .watch: processWatch(line)
        case .lruCrawler: processLRUCrawler(line)
        case .slabs: processSlabs(line)
        case .lru: processLRU(line)
        case .metaNoop:
            wbuf.append(Reply.metaNoop)
            output.transmitPoint = true   // memcached's mn goes to conn_mwrite: everything queued is sent
        case .metaGet: processMetaGet(line)
        case .metaSet: return processMetaSet(line, buf, next)
        case .metaDelete: processMetaDelete(line)
        case .metaArithmetic: processMetaArithmetic(line)
        case .metaDebug: processMetaDebug(line)
        case .error: wbuf.append(Reply.error)
        case .httpClose: return .close
        }
        rbuf.consume(next)
        return .done
    }

    // MARK: reply helpers (memcached's out_string honours noreply)

    @inline(__always) func reply(_ s: StaticString, noreply: Bool) {
        if !noreply { wbuf.append(s) }
    }

    func out(_ s: String) {
        wbuf.append(s)
        wbuf.append(Reply.crlf)
    }

    @inline(__always) func token(_ line: UnsafeRawBufferPointer, _ i: Int) -> UnsafeRawBufferPointer {
        let t = tokens[i]
        return UnsafeRawBufferPointer(rebasing: line[t.start..<(t.start + t.length)])
    }

    @inline(__always) func noreply(_ line: UnsafeRawBufferPointer) -> Bool {
        TextCommandParser.hasNoreply(line, tokens)
    }
}
