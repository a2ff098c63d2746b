// delete / incr / decr / touch (memcached's process_delete_command, process_arithmetic_command,
// process_touch_command).
import CacheStore
import MemcacheProtocol

extension CommandSession {
    func processDelete(_ line: UnsafeRawBufferPointer) {
        var nr = false
        let ntokens = tokens.ntokens
        if ntokens > 3 {
            let holdIsZero = token(line, 2).elementsEqual("0".utf8)
            nr = noreply(line)
            let valid = (ntokens == 4 && (holdIsZero || nr)) || (ntokens == 5 && holdIsZero && nr)
            if !valid {
                reply(Reply.deleteUsage, noreply: nr)
                return
            }
        }
        let key = token(line, 1)
        if key.count > keyMaxLength {
            reply(Reply.badFormat, noreply: nr)
            return
        }
        if server.prefixStats.isOn { server.prefixStats.record(key, .delete) }
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        switch store.delete(key, hash: store.hash(key)) {
        case .deleted(let classId):
            stats.addSlab(classId, .deleteHits)
            reply(Reply.deleted, noreply: nr)
        case .notFound:
            stats.add(.deleteMisses)
            reply(Reply.notFound, noreply: nr)
        }
    }

    func processArithmetic(_ line: UnsafeRawBufferPointer, incr: Bool) {
        let nr = noreply(line)
        let key = token(line, 1)
        if key.count > keyMaxLength {
            reply(Reply.badFormat, noreply: nr)
            return
        }
        guard let delta = Numbers.strtoull(token(line, 2)) else {
            reply(Reply.invalidDelta, noreply: nr)
            return
        }
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        switch store.delta(key, hash: store.hash(key), incr: incr, delta: delta, casUnique: 0,
                             referenced: output.referencedByPendingReply).result {
        case .ok(let value, let classId):
            stats.addSlab(classId, incr ? .incrHits : .decrHits)
            if !nr {
                wbuf.appendDecimal(value)
                wbuf.append(Reply.crlf)
            }
        case .notFound:
            stats.add(incr ? .incrMisses : .decrMisses)
            reply(Reply.notFound, noreply: nr)
        case .nonNumeric:
            reply(Reply.nonNumeric, noreply: nr)
        case .outOfMemory:
            reply(Reply.outOfMemory, noreply: nr)
        }
    }

    func processTouch(_ line: UnsafeRawBufferPointer) {
        let nr = noreply(line)
        let key = token(line, 1)
        if key.count > keyMaxLength {
            reply(Reply.badFormat, noreply: nr)
            return
        }
        guard let e = Numbers.strtol(token(line, 2)) else {
            reply(Reply.invalidExptime, noreply: nr)
            return
        }
        if watchLog.wants(.fetchers) { _ = logPeek(key) }
        let result = store.touch(key, hash: store.hash(key), exptime: CommandSession.positiveExptime(e))
        stats.add(.touchCmds)
        if case .hit(let classId) = result {
            stats.addSlab(classId, .touchHits)
        } else {
            stats.add(.touchMisses)
        }
        if case .hit = result {
            reply(Reply.touched, noreply: nr)
        } else {
            reply(Reply.notFound, noreply: nr)
        }
    }
}
