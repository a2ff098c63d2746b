// The data block a storage command (`set` family, `ms`) carries after its line: memcached's conn_nread
// (wait until all of it is buffered, then check its "\r\n") and conn_swallow (discard the block of a
// command that was rejected after its length was understood). One receiver for both protocols.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    /// What `receiveDataBlock` found.
    enum DataBlock {
        /// Not all buffered yet: `pendingNeed` tells the transport how much to read first.
        case incomplete
        /// The block does not end in "\r\n". memcached allocated the item, counted the set and dropped it;
        /// the block is consumed and the caller writes the reply.
        case badChunk
        /// The value (without its "\r\n"), valid until `rbuf` is consumed up to `end`, which the caller
        /// does once the value was stored.
        case complete(value: UnsafeRawBufferPointer, end: Int)
    }

    /// The `vlen`-byte block after the command line that ends at `next` in `buf` (the readable part of
    /// `rbuf`). `keyLength`, `flags` and `classId` are what memcached's allocation for it would use.
    func receiveDataBlock(_ buf: UnsafeRawBufferPointer, next: Int, vlen: Int,
                          keyLength: Int, flags: UInt32, classId: Int) -> DataBlock {
        let end = next + vlen + 2
        if !dataBlockBuffered(end: end) { return .incomplete }
        if buf[next + vlen] != 0x0d || buf[next + vlen + 1] != 0x0a {
            store.allocateAndRelease(keyLength: keyLength, valueLength: vlen, flags: flags)
            stats.addSlab(classId, .setCmds)
            rbuf.consume(end)
            return .badChunk
        }
        return .complete(value: UnsafeRawBufferPointer(rebasing: buf[next..<(next + vlen)]), end: end)
    }

    /// Whether `rbuf` holds the first `end` bytes (a request and the value it carries); if not, `pendingNeed`
    /// tells the transport how much to read first. Shared by the text data block and the binary value.
    func dataBlockBuffered(end: Int) -> Bool {
        if rbuf.count < end {
            pendingNeed = end
            return false
        }
        // memcached reads a value that was not all there straight from the socket, exactly its bytes, and
        // then transmits everything queued (its read buffer is empty): a later cull spares these replies.
        if pendingNeed > 0 { output.transmitPoint = true }
        pendingNeed = 0
        return true
    }

    /// Consumes the command line that ends at `next` and discards the `vlen`-byte block after it as it
    /// arrives (memcached conn_swallow).
    func swallowDataBlock(next: Int, vlen: Int) -> Step {
        rbuf.consume(next)
        swallow = vlen + 2
        return .done
    }
}
