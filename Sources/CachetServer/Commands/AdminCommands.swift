// flush_all / verbosity / shutdown / cache_memlimit / refresh_certs.
import CacheStore
import Glibc
import MemcacheProtocol

extension CommandSession {
    func processFlushAll(_ line: UnsafeRawBufferPointer) {
        let nr = noreply(line)
        stats.add(.flushCmds)
        if !server.settings.flushEnabled {
            reply(Reply.flushNotAllowed, noreply: nr)
            return
        }
        var delay: Int32 = 0
        if tokens.ntokens != (nr ? 3 : 2) {
            guard let d = Numbers.strtol(token(line, 1)) else {
                reply(Reply.invalidExptime, noreply: nr)
                return
            }
            delay = d
        }
        store.flushAll(delay: Int64(delay))
        reply(Reply.ok, noreply: nr)
    }

    func processVerbosity(_ line: UnsafeRawBufferPointer) {
        let nr = noreply(line)
        guard let level = Numbers.strtoul(token(line, 1)) else {
            reply(Reply.badFormat, noreply: nr)
            return
        }
        server.verbosity.store(Int(min(level, 2)), ordering: .relaxed)
        reply(Reply.ok, noreply: nr)
    }

    func processShutdown(_ line: UnsafeRawBufferPointer) {
        if !server.settings.shutdownEnabled {
            wbuf.append(Reply.shutdownNotEnabled)
            return
        }
        if tokens.ntokens == 2 {
            closeAfterWrite = true
            server.shutdownByCommand.store(true, ordering: .relaxed)
            raise(SIGINT)
        } else if tokens.ntokens == 3 && token(line, 1).elementsEqual("graceful".utf8) {
            closeAfterWrite = true
            server.shutdownByCommand.store(true, ordering: .relaxed)
            raise(SIGUSR1)
        } else {
            wbuf.append(Reply.invalidShutdownMode)
        }
    }

    func processMemlimit(_ line: UnsafeRawBufferPointer) {
        let nr = noreply(line)
        guard let mb = Numbers.strtoul(token(line, 1)) else {
            reply(Reply.error, noreply: nr)
            return
        }
        if mb < 8 {
            reply(Reply.memlimitTooSmall, noreply: nr)
        } else if mb > 1_000_000_000 {
            reply(Reply.memlimitNotBytes, noreply: nr)
        } else {
            let bytes = Int(mb) * 1024 * 1024
            store.setMemoryLimit(bytes)
            server.maxBytes.store(bytes, ordering: .relaxed)
            reply(Reply.ok, noreply: nr)
        }
    }

    /// refresh_certs: memcached's replies, but the reload is atomic (CachetTLS builds a whole new context
    /// and swaps it in only when every file loaded and matched). Failure texts ignore noreply.
    func processRefreshCerts(_ line: UnsafeRawBufferPointer) {
        guard let tls = server.tls else {
            wbuf.append(Reply.tlsNotEnabled)
            return
        }
        if let failure = tls.refresh() {
            out(failure)
        } else {
            server.certRefreshRel.store(server.clock.currentTime, ordering: .relaxed)
            if server.verbosity.load(ordering: .relaxed) > 0 {
                writeStderr("Reloaded TLS certificates on refresh_certs\n")
            }
            reply(Reply.ok, noreply: noreply(line))
        }
    }
}
