// memcached's UDP framing: which request datagrams are served, and the datagrams a queue of responses
// becomes (sizes, headers, and the empty/suppressed responses memcached folds into a previous send).
import Testing
import MemcacheProtocol

private func parse(_ bytes: [UInt8]) -> UDPRequestFrame {
    bytes.withUnsafeBytes { UDPRequestFrame.parse($0) }
}

/// Every datagram the queue produces until it is empty: (header, payload bytes).
private func drain(_ q: inout UDPReplyQueue<Int>) -> [(UDPFrameHeader, Int, Int)] {
    var out: [(UDPFrameHeader, Int, Int)] = []
    while let d = q.nextDatagram() {
        out.append((d.header, d.payload, d.origin))
        q.sent(d.payload)
    }
    return out
}

@Suite struct UDPFrameTests {
    @Test func requestDatagrams() {
        #expect(parse([0, 7, 0, 0, 0, 1, 0, 0, 0x67]) == .request(requestId: 7, payload: 8..<9))
        // Sequence number and reserved field are ignored, as memcached does.
        #expect(parse([0xab, 0xcd, 0, 9, 0, 1, 0xff, 0xff, 0x67]) == .request(requestId: 0xabcd, payload: 8..<9))
        #expect(parse([0, 7, 0, 0, 0, 1, 0, 0]) == .tooShort)
        #expect(parse([0, 7, 0, 0, 0, 1, 0]) == .tooShort)
        #expect(parse([]) == .tooShort)
        #expect(parse([0, 7, 0, 0, 0, 2, 0, 0, 0x67]) == .multiDatagram)
        #expect(parse([0, 7, 0, 0, 0, 0, 0, 0, 0x67]) == .multiDatagram)
        #expect(parse([0, 7, 0, 0, 1, 1, 0, 0, 0x67]) == .multiDatagram)
    }

    @Test func headerBytes() {
        let h = UDPFrameHeader(requestId: 0x1234, sequence: 2, total: 0x0304)
        let b = h.bytes
        #expect([b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7] == [0x12, 0x34, 0, 2, 3, 4, 0, 0])
    }

    /// A 5,020-byte response: 1,392 bytes per datagram, four datagrams numbered 0…3, count 4 in each.
    @Test func largeResponseIsCut() {
        var q = UDPReplyQueue<Int>()
        q.append(length: 5020, skip: false, requestId: 9, origin: 1)
        let ds = drain(&q)
        #expect(ds.map(\.1) == [1392, 1392, 1392, 844])
        #expect(ds.map(\.0.sequence) == [0, 1, 2, 3])
        #expect(ds.allSatisfy { $0.0.total == 4 && $0.0.requestId == 9 })
        #expect(q.isEmpty)
    }

    /// Suppressed responses send nothing; an empty one at the head goes out as a lone header (count 0) and
    /// finishes the empty ones after it; after a sent response, empty ones are finished without a datagram.
    @Test func emptyAndSuppressedResponses() {
        var q = UDPReplyQueue<Int>()
        q.append(length: 0, skip: true, requestId: 1, origin: 0)      // set … noreply
        q.append(length: 0, skip: false, requestId: 1, origin: 0)     // get x (miss)
        q.append(length: 0, skip: false, requestId: 1, origin: 0)     // … y (miss)
        q.append(length: 5, skip: false, requestId: 1, origin: 0)     // … z: END
        q.append(length: 0, skip: false, requestId: 2, origin: 0)     // an empty one after a sent one
        q.append(length: 8, skip: false, requestId: 3, origin: 0)
        let ds = drain(&q)
        #expect(ds.map(\.1) == [0, 5, 8])
        #expect(ds.map(\.0.total) == [0, 1, 1])
        #expect(ds.map(\.0.requestId) == [1, 1, 3])
    }

    /// A header is built per attempt: a send that failed and is retried carries the next sequence number.
    @Test func retriedSendAdvancesSequence() {
        var q = UDPReplyQueue<Int>()
        q.append(length: 3000, skip: false, requestId: 4, origin: 0)
        _ = q.nextDatagram()                 // EAGAIN: not sent
        let d = q.nextDatagram()
        #expect(d?.header.sequence == 1 && d?.payload == 1392)
    }

    /// Culled replies: the queue keeps only the first bytes the output still holds.
    @Test func truncateKeepsPrefix() {
        var q = UDPReplyQueue<Int>()
        q.append(length: 10, skip: false, requestId: 1, origin: 0)
        q.append(length: 20, skip: false, requestId: 2, origin: 0)
        q.append(length: 30, skip: false, requestId: 3, origin: 0)
        q.truncate(toBytes: 15)
        #expect(q.queuedBytes == 15)
        #expect(drain(&q).map(\.1) == [10, 5])
    }
}
