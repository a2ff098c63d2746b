// `slabs automove|reassign` and `lru tune|mode|temp_ttl` (memcached 1.6.18 process_slabs_command,
// process_slabs_automove_command, process_lru_command): same parsing, same replies, same checks in the
// same order.
// - `slabs automove` levels and ratio apply at once to the store's automove (SlabAutomove.swift) and show in
//   `stats settings`;
// - `slabs reassign` starts the store's page mover (SlabMover.swift) with memcached's replies;
// - `lru tune|mode|temp_ttl` change the store's LRU policy (CacheStore's LRUPolicy) at once, as memcached's
//   settings do; `mode` and `temp_ttl` need the LRU maintainer thread, as in memcached.
import MemcacheProtocol

extension CommandSession {
    func processSlabs(_ line: UnsafeRawBufferPointer) {
        let n = tokens.ntokens
        if n == 5 && token(line, 1).elementsEqual("reassign".utf8) {
            wbuf.append(slabsReassignReply(line))
        } else if n >= 4 && token(line, 1).elementsEqual("automove".utf8) {
            let nr = noreply(line)
            let arg = token(line, 2)
            if arg.elementsEqual("ratio".utf8) {
                guard n >= 5, let ratio = Numbers.strtod(token(line, 3)) else {
                    reply(Reply.error, noreply: nr)
                    return
                }
                server.slabAutomoveRatioBits.store(ratio.bitPattern, ordering: .relaxed)
                store.slabAutomoveRatio = ratio
            } else {
                guard let level = Numbers.strtoul(arg) else { reply(Reply.badFormat, noreply: nr); return }
                guard level <= 2 else { reply(Reply.error, noreply: nr); return }
                server.slabAutomove.store(Int(level), ordering: .relaxed)
                // Without slab_reassign memcached has no mover thread: a level is recorded, nothing moves.
                if server.settings.slabReassign { store.slabAutomoveLevel = Int(level) }
            }
            reply(Reply.ok, noreply: nr)
        } else {
            wbuf.append(Reply.error)
        }
    }

    private func slabsReassignReply(_ line: UnsafeRawBufferPointer) -> StaticString {
        if !server.settings.slabReassign { return Reply.slabsReassignDisabled }
        guard let s = Numbers.strtol(token(line, 2)), let d = Numbers.strtol(token(line, 3)) else {
            return Reply.badFormat
        }
        switch store.slabsReassign(src: Int(s), dst: Int(d)) {
        case .ok: return Reply.ok
        case .running: return Reply.slabsReassignBusy
        case .same: return Reply.slabsReassignSame
        case .badClass: return Reply.slabsReassignBadClass
        case .noSpare: return Reply.slabsReassignNoSpare
        }
    }

    func processLRU(_ line: UnsafeRawBufferPointer) {
        let n = tokens.ntokens
        let nr = noreply(line)
        let sub = token(line, 1)
        let maintainer = server.settings.lruMaintainerThread
        if sub.elementsEqual("tune".utf8) && n >= 7 {
            guard let hot = Numbers.strtoul(token(line, 2)), let warm = Numbers.strtoul(token(line, 3)),
                  let hotFactor = Numbers.strtod(token(line, 4)), let warmFactor = Numbers.strtod(token(line, 5)) else {
                reply(Reply.error, noreply: nr)
                return
            }
            if hot &+ warm > 80 {   // uint32 arithmetic, as memcached
                reply(Reply.lruPctTooLarge, noreply: nr)
            } else if warmFactor <= 0 || hotFactor <= 0 {
                reply(Reply.lruFactorNotPositive, noreply: nr)
            } else {
                store.lruPolicy.tune(hotPct: Int(hot), warmPct: Int(warm), hotMaxFactor: hotFactor,
                                     warmMaxFactor: warmFactor)
                reply(Reply.ok, noreply: nr)
            }
        } else if sub.elementsEqual("mode".utf8) && n >= 4 && maintainer {
            let mode = token(line, 2)
            if mode.elementsEqual("flat".utf8) {
                store.lruPolicy.segmented = false
                reply(Reply.ok, noreply: nr)
            } else if mode.elementsEqual("segmented".utf8) {
                store.lruPolicy.segmented = true
                reply(Reply.ok, noreply: nr)
            } else {
                reply(Reply.error, noreply: nr)
            }
        } else if sub.elementsEqual("temp_ttl".utf8) && n >= 4 && maintainer {
            guard let ttl = Numbers.strtol(token(line, 2)) else { reply(Reply.error, noreply: nr); return }
            if ttl < 0 {
                store.lruPolicy.tempLRU = false
            } else {
                store.lruPolicy.temporaryTTL = Int(ttl)
                store.lruPolicy.tempLRU = true
            }
            reply(Reply.ok, noreply: nr)
        } else {
            reply(Reply.error, noreply: nr)
        }
    }
}
