// What the meta commands share (memcached proto_text.c: META_SPACE/META_CHAR/META_KEY, the key and
// token-count checks every meta command starts with) and the `me` debug command. mg, ms, md and ma
// live in MetaGet/MetaSet/MetaDelete/MetaArithmetic.swift.
//
// Reply lines are built straight into the connection's output buffer; a status that is only known after
// the store ran (md) is written as a placeholder and patched, so nothing is staged elsewhere.
//
// `watch`: 1.6.18 logs meta commands from its item layer, so each one logs what its lookups and stores
// do: an item_get line per lookup (mg, md, ma, me; ms through do_store_item) and an item_store line per
// do_store_item (ms; ma's vivify, an add). Errors found before the lookup log nothing. `stats detail`
// never counts meta commands (1.6.18 records prefixes in the classic get/update/delete paths only).
import CacheStore
import MemcacheProtocol

extension CommandSession {
    /// The key a meta command works on: token 1, or its base64 decoding (`b`) in the worker's scratch.
    @inline(__always) func metaKey(_ line: UnsafeRawBufferPointer, _ f: MetaFlags) -> UnsafeRawBufferPointer {
        f.keyBinary ? UnsafeRawBufferPointer(rebasing: metaKeyScratch[0..<f.keyLength]) : token(line, 1)
    }

    /// memcached's META_CHAR: a space and the flag letter.
    @inline(__always) func metaChar(_ c: UInt8) {
        wbuf.append(UInt8(ascii: " "))
        wbuf.append(c)
    }

    /// memcached's META_KEY: ` k<key>`, or the base64 form followed by ` b` for binary keys.
    func appendMetaKey(_ key: UnsafeRawBufferPointer, binary: Bool) {
        metaChar(UInt8(ascii: "k"))
        if binary {
            Base64.encode(key, to: wbuf)
            metaChar(UInt8(ascii: "b"))
        } else {
            wbuf.append(key)
        }
    }

    /// Echoes the `O` and `k` flags of tokens `from...` (memcached's return-flag loop shared by the
    /// miss and status replies) and ends the line. False, with the reply replaced by the opaque error,
    /// when an `O` token is too long.
    func echoOpaqueAndKey(_ line: UnsafeRawBufferPointer, _ toks: TokenList, from: Int,
                          key: UnsafeRawBufferPointer, binary: Bool, mark: Int) -> Bool {
        for i in from..<toks.count {
            let t = toks[i]
            switch line[t.start] {
            case UInt8(ascii: "O"):
                if !appendOpaque(line, t) {
                    truncateReply(to: mark)
                    wbuf.append(MetaReply.opaqueTooLong)
                    return false
                }
            case UInt8(ascii: "k"): appendMetaKey(key, binary: binary)
            default: break
            }
        }
        wbuf.append(Reply.crlf)
        return true
    }

    /// Echoes an `O` token (` O<opaque>`); false when it is longer than memcached's 32 bytes.
    @inline(__always) func appendOpaque(_ line: UnsafeRawBufferPointer, _ t: Token) -> Bool {
        if t.length > metaMaxOpaqueLength { return false }
        wbuf.append(UInt8(ascii: " "))
        wbuf.append(UnsafeRawBufferPointer(rebasing: line[t.start..<(t.start + t.length)]))
        return true
    }

    /// A position in the output that survives the buffer compacting or growing (an offset from `head`).
    @inline(__always) var replyMark: Int { wbuf.count }
    @inline(__always) func truncateReply(to mark: Int) { output.truncate(to: wbuf.head + mark) }

    /// The checks mg/md/ma start with (WANT_TOKENS_MIN, key length, MFLAG_MAX_OPT_LENGTH); false when a
    /// reply was written.
    func metaPrologue(tooLong: StaticString) -> Bool {
        let n = tokens.ntokens
        if n < 3 { wbuf.append(Reply.error); return false }
        if tokens[1].length > keyMaxLength { wbuf.append(Reply.badFormat); return false }
        if n > metaMaxTokens { wbuf.append(tooLong); return false }
        return true
    }

    /// `me <key> [b]` (memcached process_meta_command, 1.6.18): the item's metadata without touching it.
    /// 1.6.18 prints exp as current_time - exptime (so a TTL of 30 shows `exp=-30`), which we keep.
    func processMetaDebug(_ line: UnsafeRawBufferPointer) {
        let n = tokens.ntokens
        if n < 3 || tokens[1].length > keyMaxLength { wbuf.append(Reply.badFormat); return }
        var key = token(line, 1)
        if n >= 4 && tokens[2].length == 1 && line[tokens[2].start] == UInt8(ascii: "b") {
            let len = Base64.decode(key, into: metaKeyScratch)
            if len == 0 { wbuf.append(Reply.badFormat); return }
            key = UnsafeRawBufferPointer(rebasing: metaKeyScratch[0..<len])
        }
        let now = store.clock.currentTime
        let out = wbuf
        var length = 0
        let result = store.metaPeek(key, hash: store.hash(key)) { it in
            length = it.valueLength
            out.append(MetaReply.me)
            if it.keyBinary { Base64.encode(it.key, to: out) } else { out.append(it.key) }
            out.append(" exp=" as StaticString)
            out.appendDecimal(it.exptime == 0 ? -1 : Int(Int32(bitPattern: now &- it.exptime)))
            out.append(" la=" as StaticString)
            out.appendDecimal(UInt64(now &- it.lastAccess))
            out.append(" cas=" as StaticString)
            out.appendDecimal(it.cas)
            out.append(it.fetched ? " fetch=yes cls=" as StaticString : " fetch=no cls=" as StaticString)
            out.appendDecimal(UInt64(it.classId))
            out.append(" size=" as StaticString)
            out.appendDecimal(UInt64(it.totalSize))
            out.append(Reply.crlf)
        }
        if watchLog.wants(.fetchers) { logFetch(key, result, valueLength: length) }
        switch result {
        case .hit: break
        case .expired: stats.add(.getExpired)
        case .flushed: stats.add(.getFlushed)
        case .miss: break
        }
        stats.add(.metaCmds)   // 1.6.18 counts cmd_meta for `me` only
        if case .hit = result { return }
        wbuf.append(MetaReply.en)
        wbuf.append(Reply.crlf)
    }
}
