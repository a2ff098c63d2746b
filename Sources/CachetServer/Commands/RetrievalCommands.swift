// get / gets / gat / gats (memcached's process_get_command): values are copied from slab memory into
// the session's output buffer under the item lock (large ones are pinned and sent from slab memory,
// ReplyOutput.swift); a key over 250 bytes discards the replies already built for this command and
// answers CLIENT_ERROR instead.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    func processGet(_ line: UnsafeRawBufferPointer, returnCas: Bool, touch: Bool) {
        var first = 1
        var touchExptime: Int64? = nil
        if touch {
            guard let e = Numbers.strtol(token(line, 1)) else {
                wbuf.append(Reply.invalidExptime)
                return
            }
            touchExptime = positiveExptime(e)
            first = 2
        }
        let mark = wbuf.tail
        let out = wbuf, output = self.output
        while true {
            var i = first
            while i < tokens.count {
                let key = token(line, i)
                if key.count > keyMaxLength {
                    // memcached culls every response not yet sent (conn_release_items), not only this
                    // command's: replies of earlier pipelined commands still queued vanish as well.
                    output.truncate(to: output.culledReplyStart(commandStart: mark))
                    output.heldItems.removeAll()   // the culled responses drop their item references too
                    wbuf.append(Reply.badFormat)
                    return
                }
                var segment = 0
                let result = store.get(key, hash: store.hash(key), touchExptime: touchExptime) { item in
                    segment = item.lruSegment
                    out.append(Reply.value)
                    out.append(item.key)
                    out.append(UInt8(ascii: " "))
                    out.appendDecimal(UInt64(item.flags))
                    out.append(UInt8(ascii: " "))
                    out.appendDecimal(UInt64(item.valueLength))
                    if returnCas {
                        out.append(UInt8(ascii: " "))
                        out.appendDecimal(item.cas)
                    }
                    out.append(Reply.crlf)
                    output.appendValue(item)
                    out.append(Reply.crlf)
                }
                accountGet(key, result, segment: segment, touch: touch)
                i += 1
                // memcached answers each key in a response object of its own (UDP sends them apart).
                if i < tokens.count { output.markResponse() }
            }
            guard let rest = tokens.remainder else { break }
            output.markResponse()
            tokens.tokenize(line, from: rest)
            first = 0
        }
        wbuf.append(Reply.end)
        // memcached transmits right after every get (conn_mwrite): nothing before this point can be culled,
        // and the items sent lose their references (the transport writes pinned values out at once).
        output.transmitPoint = true
    }
}
