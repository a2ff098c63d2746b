// A session's replies on their way out, whatever carries them: the reply bytes (`buffer`), large values
// sent straight from slab memory instead of being copied (pinned items, CacheStore/ItemPins.swift — what
// memcached does with item references and iovecs; a copy of a 1 MB value was 15% of the server's CPU for
// TLS bulk GETs), and memcached's transmit bookkeeping: which replies it would still hold unsent (a close
// culls them) and which items those replies still reference.
//
// The output stream is `buffer` with pinned values spliced in: each entry sits after the first `before`
// unsent bytes of `buffer`. The transport walks the stream as contiguous runs and consumes it in order.
import CacheStore
import MemcacheProtocol

/// Invariant: used by one thread at a time (the connection's worker); every pinned value in `entries` is
/// unpinned exactly once — when it was sent, culled (`truncate`) or dropped (`dropAll`).
final class ReplyOutput {
    struct PinnedEntry {
        let value: PinnedValue
        /// Unsent `buffer` bytes that go out before this value.
        var before: Int
        /// Next value offset to send (starts at `value.range.lowerBound`).
        var next: Int
    }

    let buffer = ByteBuffer(capacity: 4096)
    private let store: CacheStore
    /// The transport's record size when it encrypts (TLS: `ssl_wbuf_size` per SSL_write), nil otherwise.
    let recordSize: Int?
    /// In stream order; `before` never decreases along the array.
    private(set) var entries: [PinnedEntry] = []
    /// Value bytes queued in `entries` and not yet sent.
    private(set) var pinnedBytes = 0

    /// Reply bytes queued by non-get commands since memcached would last have transmitted (see
    /// `culledReplyStart`); also tells whether memcached would still hold unsent responses.
    var repliesSinceTransmit = 0
    /// Set by a command after which memcached transmits everything queued (a get, mn, a value that had to
    /// be waited for); the session then calls `markTransmitted`.
    var transmitPoint = false
    /// Items (hash, CAS) that mg hits answered since memcached would last have transmitted: its
    /// responses hold a reference to them until then, and incr/decr will not rewrite a referenced item
    /// in place (do_add_delta wants refcount 2), so they get a new item (no space padding, total_items+1).
    var heldItems: [(hash: UInt32, cas: UInt64)] = []

    /// Where memcached starts another response object inside one command's replies (after each key of a
    /// multi-key get), as output lengths (`queuedBytes`). nil — nothing recorded — unless the transport
    /// sends responses apart (UDP, one datagram series per response).
    var responseMarks: [Int]? = nil
    /// The shortest length a cull truncated the output to since the transport last reset it (UDP only).
    var culledTo: Int? = nil

    /// A new response object starts here (see `responseMarks`).
    @inline(__always) func markResponse() {
        if responseMarks != nil { responseMarks!.append(queuedBytes) }
    }

    init(store: CacheStore, recordSize: Int?) {
        self.store = store
        self.recordSize = recordSize
    }

    /// Values at least this long are sent from slab memory. Smaller ones are cheaper to copy than to pin.
    static let zeroCopyMinValue = 64 << 10

    /// Queues a hit's value (without its "\r\n") after what `buffer` holds: copied when small, else pinned.
    /// With records (TLS) the first and last few bytes are copied so that records are cut where a contiguous
    /// copy would cut them. The only extra record is a short one where a chunked value (> slab_chunk_max)
    /// crosses from one chunk to the next: 22 bytes per 512 KB (measured with `ss` bytes_sent: 1 MB GETs,
    /// +1 record each), not worth a staging copy.
    /// Called inside the store's get body (the item's lock is held).
    @inline(__always)
    func appendValue(_ item: some ItemValue) {
        let length = item.valueLength
        var head = 0, tail = 0
        if length >= ReplyOutput.zeroCopyMinValue, let cap = recordSize {
            let run = (buffer.count - (entries.last?.before ?? 0)) % cap
            head = min(length, run == 0 ? 0 : cap - run)
            tail = (length - head) % cap
        }
        let out = buffer
        if length < ReplyOutput.zeroCopyMinValue || head + tail >= length {
            out.reserve(length + 2)
            item.forEachSegment(in: 0..<length) { out.append($0) }
            return
        }
        if head > 0 { item.forEachSegment(in: 0..<head) { out.append($0) } }
        let p = item.pin(head..<(length - tail), in: store)
        entries.append(.init(value: p, before: out.count, next: p.range.lowerBound))
        pinnedBytes += p.range.count
        if tail > 0 { item.forEachSegment(in: (length - tail)..<length) { out.append($0) } }
    }

    /// Nothing queued at all.
    var isEmpty: Bool { buffer.isEmpty && entries.isEmpty }
    var hasPinnedValues: Bool { !entries.isEmpty }

    /// Output not yet handed to the transport, in bytes.
    var queuedBytes: Int { buffer.count + pinnedBytes }

    /// The next contiguous run of output, empty when everything is sent.
    func nextRun() -> UnsafeRawBufferPointer {
        guard let first = entries.first else { return buffer.readable }
        if first.before > 0 { return UnsafeRawBufferPointer(start: buffer.readPointer, count: first.before) }
        return first.value.run(at: first.next)
    }

    /// Marks `n` bytes of the stream as sent, unpinning values that are done.
    func consume(_ n: Int) {
        if entries.isEmpty { buffer.consume(n); return }
        var n = n
        while n > 0 {
            if let first = entries.first, first.before == 0 {
                let k = min(n, first.value.range.upperBound - first.next)
                entries[0].next += k
                pinnedBytes -= k
                n -= k
                if entries[0].next == first.value.range.upperBound {
                    store.unpin(entries.removeFirst().value)
                }
            } else {
                let k = min(n, entries.first?.before ?? buffer.count)
                precondition(k > 0, "ReplyOutput.consume: more bytes sent than were queued")
                buffer.consume(k)
                for i in entries.indices { entries[i].before -= k }
                n -= k
            }
        }
    }

    /// Up to `max` runs of output, in order, for writev (nothing is consumed).
    func runs(max: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        var given = 0
        var bufferOffset = 0
        for e in entries where given < max {
            if e.before > bufferOffset {
                body(UnsafeRawBufferPointer(start: buffer.readPointer + bufferOffset, count: e.before - bufferOffset))
                bufferOffset = e.before
                given += 1
            }
            var offset = e.next
            while offset < e.value.range.upperBound && given < max {
                let run = e.value.run(at: offset)
                body(run)
                offset += run.count
                given += 1
            }
        }
        if given < max && buffer.count > bufferOffset {
            body(UnsafeRawBufferPointer(start: buffer.readPointer + bufferOffset, count: buffer.count - bufferOffset))
        }
    }

    /// Drops queued output from `buffer` position `newTail` on (a culled reply), unpinning what it held.
    func truncate(to newTail: Int) {
        buffer.truncate(to: newTail)
        while let last = entries.last, last.before >= buffer.count {
            precondition(last.next == last.value.range.lowerBound, "ReplyOutput.truncate: value partly sent")
            entries.removeLast()
            pinnedBytes -= last.value.range.count
            store.unpin(last.value)
        }
        if responseMarks != nil {
            // memcached drops every response it has not sent (the command's own included), and with them
            // where they started: what follows is one new response.
            culledTo = min(culledTo ?? Int.max, queuedBytes)
            responseMarks!.removeAll(keepingCapacity: true)
        }
    }

    /// Unpins everything still queued (the connection is closing).
    func dropAll() {
        for e in entries { store.unpin(e.value) }
        entries = []
        pinnedBytes = 0
    }

    // MARK: memcached's transmit points

    /// How many times memcached would have transmitted (ASCII login replies pipelined between two
    /// transmits overwrite each other, AsciiAuth.swift).
    private(set) var transmits = 0

    /// memcached wrote (or culled) its queued responses, releasing their item references.
    @inline(__always) func markTransmitted() {
        transmits &+= 1
        repliesSinceTransmit = 0
        if !heldItems.isEmpty { heldItems.removeAll(keepingCapacity: true) }
    }

    /// Where the replies memcached would still hold unsent start: memcached transmits after every get
    /// and when a batch ends, so only replies of non-get commands since then are culled with this one.
    func culledReplyStart(commandStart: Int) -> Int {
        max(buffer.head, commandStart - repliesSinceTransmit)
    }

    /// For incr/decr: is this item referenced by a response memcached has not transmitted yet?
    var referencedByPendingReply: ((UInt32, UInt64) -> Bool)? {
        if heldItems.isEmpty { return nil }
        let held = heldItems
        return { hash, cas in cas != 0 && held.contains { $0.hash == hash && $0.cas == cas } }
    }
}
