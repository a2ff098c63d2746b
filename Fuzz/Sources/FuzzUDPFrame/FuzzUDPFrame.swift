// Fuzz target: memcached's UDP framing. The input is a request datagram for `UDPRequestFrame.parse`, and —
// read as a script — a sequence of responses and send/cull events for `UDPReplyQueue`. Checks: a served
// datagram is longer than its header, says it is the only datagram and its payload is the rest of it; the
// queue sends exactly the bytes of the responses appended (less the culled ones), in datagrams of at most
// 1,392 reply bytes whose sequence numbers count up from 0 within a response and whose header count is the
// response's datagram count; it never sends a byte for a suppressed response.
import Glibc
import MemcacheProtocol

@inline(__always)
private func check(_ ok: Bool, _ what: StaticString) {
    if !ok {
        "invariant broken: \(what)\n".withCString { _ = write(2, $0, strlen($0)) }
        abort()
    }
}

private func checkParse(_ input: UnsafeRawBufferPointer) {
    switch UDPRequestFrame.parse(input) {
    case .request(let id, let payload):
        check(input.count > UDPFrameHeader.size, "a served datagram has a payload")
        check(input[4] == 0 && input[5] == 1, "a served datagram is the only one")
        check(id == UInt16(input[0]) << 8 | UInt16(input[1]), "the request id is the first two bytes")
        check(payload == UDPFrameHeader.size..<input.count, "the payload is everything after the header")
    case .tooShort:
        check(input.count <= UDPFrameHeader.size, "only a datagram without payload is too short")
    case .multiDatagram:
        check(input.count > UDPFrameHeader.size && !(input[4] == 0 && input[5] == 1), "only a count other than 1 is refused")
    }
}

private func checkQueue(_ input: UnsafeRawBufferPointer) {
    var q = UDPReplyQueue<Int>()
    let per = UDPReplyQueue<Int>.payloadPerDatagram
    /// Per response index: length appended, bytes seen sent, last sequence, total in its headers.
    var lengths: [Int] = [], skips: [Bool] = [], sentBytes: [Int] = [], lastSeq: [Int] = [], totals: [Int?] = []
    var queued = 0
    var i = 0
    func next() -> Int? {
        guard i < input.count else { return nil }
        defer { i += 1 }
        return Int(input[i])
    }
    while let op = next() {
        switch op % 4 {
        case 0, 1:   // a response: length from two bytes (scaled), maybe suppressed
            let len = ((next() ?? 0) << 8 | (next() ?? 0)) * (op % 4 == 1 ? 3 : 1)
            let skip = op & 0x10 != 0
            let n = lengths.count
            q.append(length: skip ? 0 : len, skip: skip, requestId: UInt16(truncatingIfNeeded: n), origin: n)
            lengths.append(skip ? 0 : len); skips.append(skip); sentBytes.append(0); lastSeq.append(-1); totals.append(nil)
            queued += skip ? 0 : len
        case 2:      // send one datagram
            guard let d = q.nextDatagram() else { check(q.queuedBytes == 0, "nothing to send means nothing queued"); continue }
            let r = d.origin
            check(!skips[r], "a suppressed response is never sent")
            check(d.payload <= per && d.payload >= 0, "a datagram carries at most 1,392 reply bytes")
            check(Int(d.header.sequence) == lastSeq[r] + 1, "sequence numbers count up from 0")
            check(Int(d.header.requestId) == r & 0xffff, "the response's request id")
            if let t = totals[r] { check(Int(d.header.total) == t, "one datagram count per response") }
            totals[r] = Int(d.header.total)
            lastSeq[r] += 1
            if (next() ?? 0) & 1 == 0 {   // the send went through
                q.sent(d.payload)
                sentBytes[r] += d.payload
                queued -= d.payload
            }
            check(q.queuedBytes == queued, "queued bytes follow what was sent")
        default:     // cull everything beyond a byte count
            let keep = min(queued, (next() ?? 0) * 97)
            q.truncate(toBytes: keep)
            queued = keep
            check(q.queuedBytes == queued, "a cull keeps the first bytes")
        }
    }
    // Drain: everything left goes out.
    var guardCount = 0
    while let d = q.nextDatagram() {
        q.sent(d.payload)
        queued -= d.payload
        guardCount += 1
        check(guardCount < 1 << 20, "draining ends")
    }
    check(queued == 0 && q.isEmpty, "every queued byte is sent once")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUDPFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    checkParse(input)
    checkQueue(input)
    return 0
}
