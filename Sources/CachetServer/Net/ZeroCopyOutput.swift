// Owns the connection's output that is not in `wbuf`: large values sent straight from slab memory
// (pinned items, CacheStore/ItemPins.swift) instead of being copied into the write buffer first — what
// memcached does with item references and iovecs. A copy of a 1 MB value was 15% of the server's CPU for
// TLS bulk GETs; the bytes now go from slab memory to OpenSSL (or to writev) directly.
//
// The output stream is `wbuf` with pinned values spliced in: each entry sits after the first `before`
// unsent bytes of `wbuf`. Flushing walks the stream as contiguous runs and consumes it in order.
import CacheStore
import Glibc
import MemcacheProtocol

struct ZeroCopyOutput {
    struct Entry {
        let value: PinnedValue
        /// Unsent `wbuf` bytes that go out before this value.
        var before: Int
        /// Next value offset to send (starts at `value.range.lowerBound`).
        var next: Int
    }
    /// In stream order; `before` never decreases along the array.
    var entries: [Entry] = []
    /// Value bytes queued here and not yet sent.
    var pendingBytes = 0
}

extension Connection {
    /// Values at least this long are sent from slab memory. Smaller ones are cheaper to copy than to pin.
    static let zeroCopyMinValue = 64 << 10

    /// Queues a hit's value (without its "\r\n") after what `wbuf` holds: copied when small, else pinned.
    /// Over TLS the first and last few bytes are copied so that records are cut where a contiguous copy
    /// would cut them (`ssl_wbuf_size` per SSL_write). The only extra record is a short one where a chunked
    /// value (> slab_chunk_max) crosses from one chunk to the next: 22 bytes per 512 KB (measured with
    /// `ss` bytes_sent: 1 MB GETs, +1 record each), not worth a staging copy.
    /// Called inside the store's get body (the item's lock is held).
    @inline(__always)
    func appendValue(_ item: some ItemValue) {
        let length = item.valueLength
        var head = 0, tail = 0
        if length >= Connection.zeroCopyMinValue, tls != nil {
            let cap = server.settings.tls.wbufSize
            let run = (wbuf.count - (zeroCopy.entries.last?.before ?? 0)) % cap
            head = min(length, run == 0 ? 0 : cap - run)
            tail = (length - head) % cap
        }
        let out = wbuf
        if length < Connection.zeroCopyMinValue || head + tail >= length {
            out.reserve(length + 2)
            item.forEachSegment(in: 0..<length) { out.append($0) }
            return
        }
        if head > 0 { item.forEachSegment(in: 0..<head) { out.append($0) } }
        let p = item.pin(head..<(length - tail), in: store)
        zeroCopy.entries.append(.init(value: p, before: out.count, next: p.range.lowerBound))
        zeroCopy.pendingBytes += p.range.count
        if tail > 0 { item.forEachSegment(in: (length - tail)..<length) { out.append($0) } }
    }

    /// Output not yet handed to the kernel or to OpenSSL, in bytes.
    var queuedOutputBytes: Int { wbuf.count + zeroCopy.pendingBytes }

    /// The next contiguous run of output, empty when everything is sent.
    func nextOutputRun() -> UnsafeRawBufferPointer {
        guard let first = zeroCopy.entries.first else { return wbuf.readable }
        if first.before > 0 { return UnsafeRawBufferPointer(start: wbuf.readPointer, count: first.before) }
        return first.value.run(at: first.next)
    }

    /// Marks `n` bytes of the stream as sent, unpinning values that are done.
    func consumeOutput(_ n: Int) {
        if zeroCopy.entries.isEmpty { wbuf.consume(n); return }
        var n = n
        while n > 0 {
            if let first = zeroCopy.entries.first, first.before == 0 {
                let k = min(n, first.value.range.upperBound - first.next)
                zeroCopy.entries[0].next += k
                zeroCopy.pendingBytes -= k
                n -= k
                if zeroCopy.entries[0].next == first.value.range.upperBound {
                    store.unpin(zeroCopy.entries.removeFirst().value)
                }
            } else {
                let k = min(n, zeroCopy.entries.first?.before ?? wbuf.count)
                precondition(k > 0, "consumeOutput: more bytes sent than were queued")
                wbuf.consume(k)
                for i in zeroCopy.entries.indices { zeroCopy.entries[i].before -= k }
                n -= k
            }
        }
    }

    /// Up to `max` runs of output, in order, for writev (nothing is consumed).
    func outputRuns(max: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        var given = 0
        var wbufOffset = 0
        for e in zeroCopy.entries where given < max {
            if e.before > wbufOffset {
                body(UnsafeRawBufferPointer(start: wbuf.readPointer + wbufOffset, count: e.before - wbufOffset))
                wbufOffset = e.before
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
        if given < max && wbuf.count > wbufOffset {
            body(UnsafeRawBufferPointer(start: wbuf.readPointer + wbufOffset, count: wbuf.count - wbufOffset))
        }
    }

    /// Drops queued output from `wbuf` position `newTail` on (a culled reply), unpinning what it held.
    func truncateOutput(to newTail: Int) {
        wbuf.truncate(to: newTail)
        while let last = zeroCopy.entries.last, last.before >= wbuf.count {
            precondition(last.next == last.value.range.lowerBound, "truncateOutput: value partly sent")
            zeroCopy.entries.removeLast()
            zeroCopy.pendingBytes -= last.value.range.count
            store.unpin(last.value)
        }
    }

    /// Unpins everything still queued (the connection is closing).
    func dropZeroCopyOutput() {
        for e in zeroCopy.entries { store.unpin(e.value) }
        zeroCopy = ZeroCopyOutput()
    }
}
