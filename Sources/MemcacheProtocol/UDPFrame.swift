// memcached's UDP framing, without sockets: the 8-byte header in front of every datagram (request id,
// sequence number, datagram count, reserved — each a big-endian 16-bit number), what a request datagram
// must look like to be served, and how a queue of replies is cut into datagrams.
//
// Requests: one datagram carries a whole request (or several pipelined ones). memcached drops, without an
// answer, a datagram of 8 bytes or less and one whose datagram count is not 1 (it never reassembles a
// request from several datagrams); it ignores the sequence number and the reserved field.
//
// Replies: memcached keeps one response object per command (a multi-key get has one per key) and sends
// each one on its own, in datagrams of at most 1,400 bytes (header included, so 1,392 bytes of reply),
// numbered from 0 with the count of the response's datagrams in every header. A response nothing was
// written to still goes out as a lone header (count 0), unless it follows another response in the same
// send: memcached then counts it as sent with that datagram. A reply suppressed by `noreply` (or a meta
// `q`) sends nothing at all. `UDPReplyQueue` reproduces this bookkeeping.

/// The header of a request or reply datagram.
public struct UDPFrameHeader: Equatable, Sendable {
    public static let size = 8

    public var requestId: UInt16
    public var sequence: UInt16
    public var total: UInt16
    public var reserved: UInt16

    public init(requestId: UInt16, sequence: UInt16, total: UInt16, reserved: UInt16 = 0) {
        self.requestId = requestId
        self.sequence = sequence
        self.total = total
        self.reserved = reserved
    }

    /// The header at the start of `bytes` (nil when shorter than a header).
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= UDPFrameHeader.size else { return nil }
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) }
        self.init(requestId: u16(0), sequence: u16(2), total: u16(4), reserved: u16(6))
    }

    /// The 8 bytes on the wire.
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) {
        (UInt8(requestId >> 8), UInt8(requestId & 0xff), UInt8(sequence >> 8), UInt8(sequence & 0xff),
         UInt8(total >> 8), UInt8(total & 0xff), UInt8(reserved >> 8), UInt8(reserved & 0xff))
    }
}

/// What a received datagram is, in memcached's reading.
public enum UDPRequestFrame: Equatable, Sendable {
    /// Serve the bytes after the header (`payload` is their offset range in the datagram).
    case request(requestId: UInt16, payload: Range<Int>)
    /// Dropped without an answer: the datagram holds nothing after its header.
    case tooShort
    /// Dropped without an answer: it says it is one of several datagrams (memcached does not reassemble).
    case multiDatagram
}

extension UDPRequestFrame {
    public static func parse(_ datagram: UnsafeRawBufferPointer) -> UDPRequestFrame {
        guard datagram.count > UDPFrameHeader.size, let h = UDPFrameHeader(datagram) else { return .tooShort }
        if h.total != 1 { return .multiDatagram }
        return .request(requestId: h.requestId, payload: UDPFrameHeader.size..<datagram.count)
    }
}

/// The replies of one UDP "connection" waiting to be sent, one entry per memcached response object, and
/// the datagrams they become. `Origin` is where a reply goes (the requester's address).
/// Invariant: the reply bytes themselves live elsewhere (the session's output), in the same order; the
/// queue only says how many of them the next datagram carries and with which header.
public struct UDPReplyQueue<Origin> {
    /// Bytes of reply per datagram: memcached's 1,400-byte datagrams less the header.
    public static var payloadPerDatagram: Int { 1400 - UDPFrameHeader.size }

    struct Response {
        var remaining: Int
        let skip: Bool
        let requestId: UInt16
        let origin: Origin
        var sequence: UInt16 = 0
        /// Set when the first header is built (from the whole length, as memcached does).
        var total: UInt16? = nil
    }

    private var responses: [Response] = []
    private var head = 0

    public init() {}

    public var isEmpty: Bool { head == responses.count }
    /// Reply bytes still to send.
    public var queuedBytes: Int { responses[head...].reduce(0) { $0 + $1.remaining } }

    /// A response of `length` bytes (the next ones in the output); `skip`: suppressed by noreply.
    public mutating func append(length: Int, skip: Bool, requestId: UInt16, origin: Origin) {
        responses.append(Response(remaining: length, skip: skip, requestId: requestId, origin: origin))
    }

    /// Drops the responses (or their parts) beyond the first `length` queued bytes: replies culled before
    /// they were sent.
    public mutating func truncate(toBytes length: Int) {
        var left = length
        var i = head
        while i < responses.count && left > 0 {
            let take = min(left, responses[i].remaining)
            responses[i].remaining = take
            left -= take
            i += 1
        }
        responses.removeSubrange(i...)
        compact()
    }

    public mutating func removeAll() {
        responses.removeAll(keepingCapacity: true)
        head = 0
    }

    /// The next datagram: its header, how many reply bytes follow it, and where it goes. nil when nothing
    /// is left to send. Builds the header as memcached does (the sequence advances even if the send then
    /// fails and is retried); call `sent(_:)` with the payload once the datagram went out.
    public mutating func nextDatagram() -> (header: UDPFrameHeader, payload: Int, origin: Origin)? {
        while head < responses.count && responses[head].skip { head += 1 }
        if head == responses.count { compact(); return nil }
        var r = responses[head]
        let per = UDPReplyQueue.payloadPerDatagram
        if r.total == nil {
            let n = (r.remaining + per - 1) / per
            r.total = UInt16(min(n, Int(UInt16.max)))
        }
        let header = UDPFrameHeader(requestId: r.requestId, sequence: r.sequence, total: r.total!)
        r.sequence &+= 1
        responses[head] = r
        return (header, min(r.remaining, per), r.origin)
    }

    /// `payload` reply bytes went out: finishes every response they complete, and with them every
    /// suppressed or empty response that follows (memcached's bookkeeping after a send).
    public mutating func sent(_ payload: Int) {
        var left = payload
        while head < responses.count {
            if responses[head].skip { head += 1; continue }
            if left >= responses[head].remaining {
                left -= responses[head].remaining
                head += 1
                continue
            }
            responses[head].remaining -= left
            break
        }
        compact()
    }

    private mutating func compact() {
        if head == responses.count {
            responses.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 {
            responses.removeFirst(head)
            head = 0
        }
    }
}
