// A growable byte FIFO over raw memory: the per-connection read and write buffers. Owned by exactly one
// connection on one thread; `deinit` frees the memory. Consumed space is reclaimed by compacting
// when the readable part is small, so steady state does no allocation.

#if canImport(Glibc)
import Glibc
#endif

public final class ByteQueue {
    public private(set) var base: UnsafeMutableRawPointer
    public private(set) var capacity: Int
    public private(set) var head = 0      // first unread byte
    public private(set) var tail = 0      // one past the last written byte

    public init(capacity: Int = 16384) {
        self.capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }
    deinit { base.deallocate() }

    @inline(__always) public var count: Int { tail - head }
    @inline(__always) public var isEmpty: Bool { tail == head }
    @inline(__always) public var readable: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + head, count: tail - head)
    }

    /// Makes room for at least `n` more bytes at the tail and returns where to write them.
    @inline(__always)
    public func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if capacity - tail < n { makeRoom(n) }
        return base + tail
    }

    @inline(never)
    func makeRoom(_ n: Int) {
        let live = tail - head
        if head > 0 && capacity - live >= n && live <= capacity / 2 {
            if live > 0 { memmove(base, base + head, live) }
        } else {
            var newCap = capacity * 2
            while newCap - live < n { newCap *= 2 }
            let nb = UnsafeMutableRawPointer.allocate(byteCount: newCap, alignment: 16)
            if live > 0 { nb.copyMemory(from: base + head, byteCount: live) }
            base.deallocate()
            base = nb
            capacity = newCap
        }
        head = 0
        tail = live
    }

    @inline(__always) public func commit(_ n: Int) { tail += n }

    @inline(__always)
    public func append(_ p: UnsafeRawPointer, _ n: Int) {
        let dst = reserve(n)
        dst.copyMemory(from: p, byteCount: n)
        tail += n
    }

    @inline(__always)
    public func append(_ s: StaticString) { append(s.utf8Start, s.utf8CodeUnitCount) }

    @inline(__always)
    public func appendDecimal(_ value: Int) {
        let dst = reserve(20)
        var v = UInt64(value)
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let n = withUnsafeMutableBytes(of: &tmp) { d -> Int in
            var k = 0
            repeat { d[k] = UInt8(48 + v % 10); v /= 10; k += 1 } while v > 0
            for j in 0..<k { dst.storeBytes(of: d[k - 1 - j], toByteOffset: j, as: UInt8.self) }
            return k
        }
        tail += n
    }

    @inline(__always)
    public func consume(_ n: Int) {
        head += n
        if head == tail { head = 0; tail = 0 }
    }

    public func clear() { head = 0; tail = 0 }
}
