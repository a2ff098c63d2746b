// A growable byte buffer in raw memory, used for a connection's read and write sides.
// Owning raw memory here keeps the hot path free of Array copy-on-write checks and lets callers hand
// stable pointers to read(2)/write(2)/SSL_read/SSL_write.
import Glibc

/// Invariant: `base` points at `capacity` bytes owned by this buffer; bytes `[head, tail)` are live.
/// Only the thread that owns the connection touches it (not Sendable).
public final class ByteBuffer {
    public private(set) var base: UnsafeMutableRawPointer
    public private(set) var capacity: Int
    public private(set) var head = 0
    public private(set) var tail = 0
    /// Capacity to shrink back to once emptied, so an idle connection does not keep a huge buffer.
    public let initialCapacity: Int

    /// Starts with a tiny allocation; `initialCapacity` is the minimum size once used.
    public init(capacity: Int) {
        initialCapacity = max(capacity, 64)
        self.capacity = ByteBuffer.idleCapacity
        base = malloc(ByteBuffer.idleCapacity)!
    }

    deinit { free(base) }

    @inline(__always) public var count: Int { tail - head }
    @inline(__always) public var isEmpty: Bool { tail == head }
    @inline(__always) public var readable: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + head, count: tail - head)
    }
    @inline(__always) public var readPointer: UnsafeMutableRawPointer { base + head }
    /// Free space after `tail`.
    @inline(__always) public var writableCount: Int { capacity - tail }
    @inline(__always) public var writePointer: UnsafeMutableRawPointer { base + tail }

    @inline(__always) public func consume(_ n: Int) {
        head += n
        if head == tail { head = 0; tail = 0 }
    }

    @inline(__always) public func commit(_ n: Int) { tail += n }

    /// Drops everything.
    public func reset() { head = 0; tail = 0 }

    /// Makes room for at least `n` more bytes after `tail`: compacts first, grows if still short.
    public func reserve(_ n: Int) {
        if capacity - tail >= n { return }
        if head > 0 {
            let live = tail - head
            if live > 0 { memmove(base, base + head, live) }
            head = 0; tail = live
            if capacity - tail >= n { return }
        }
        var newCap = max(capacity, initialCapacity)
        while newCap - tail < n { newCap *= 2 }
        base = realloc(base, newCap)!
        capacity = newCap
    }

    /// Gives the memory back when empty, so an idle connection costs almost nothing; the next
    /// `reserve` allocates again.
    public func releaseIfEmpty() {
        if head == tail && capacity > ByteBuffer.idleCapacity {
            head = 0; tail = 0
            free(base)
            capacity = ByteBuffer.idleCapacity
            base = malloc(capacity)!
        }
    }

    static let idleCapacity = 16

    @inline(__always) public func append(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        if n == 0 { return }
        reserve(n)
        memcpy(base + tail, bytes.baseAddress!, n)
        tail += n
    }

    @inline(__always) public func append(_ byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: tail, as: UInt8.self)
        tail += 1
    }

    @inline(__always) public func append(_ s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    public func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends the decimal digits of `v` (memcached's itoa_u64).
    @inline(__always) public func appendDecimal(_ v: UInt64) {
        reserve(20)
        var digits = 0
        var x = v
        repeat { digits += 1; x /= 10 } while x != 0
        var p = base + tail + digits
        x = v
        repeat {
            p -= 1
            p.storeBytes(of: UInt8(truncatingIfNeeded: 48 + x % 10), as: UInt8.self)
            x /= 10
        } while x != 0
        tail += digits
    }

    @inline(__always) public func appendDecimal(_ v: Int) {
        if v < 0 { append(UInt8(ascii: "-")); appendDecimal(UInt64(-(v + 1)) + 1) } else { appendDecimal(UInt64(v)) }
    }

    /// Removes the last `n` bytes (used to drop a partially built multi-get reply).
    public func truncate(to newTail: Int) { tail = max(head, newTail) }
}
