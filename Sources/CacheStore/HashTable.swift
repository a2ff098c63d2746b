// Owns the key → item index (memcached assoc.c): 2^k independent segments chosen by the hash's high bits,
// each with its own mutex and its own chained bucket array chosen by the low bits. A segment doubles its
// buckets (rehashing only itself, under its own lock) when it holds more than 1.5 items per bucket, so the
// table grows without stopping the world. The segment mutexes are also the store's striped item locks.
import Glibc

struct HashSegment {
    var buckets: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var mask: Int
    var count: Int
}

/// Invariant: `segments[i]` (its bucket array and every chain hanging off it, through ItemRef.hNext) is read
/// and written only while `locks` entry `i` is held. A plain struct of pointers (no reference counting on the
/// hot path): created once by `CacheStore.init`, destroyed once by its deinit; bucket arrays are freed only
/// when replaced (under the lock) or in `destroy()`.
struct AssocTable: @unchecked Sendable {
    let segmentBits: Int
    let segmentCount: Int
    /// 32 - segmentBits: a 64-bit shift of the hash by it gives the segment (0 when there is one segment),
    /// with no branch or overflow check on every request and every LRU tail look.
    private let segmentShift: UInt64
    let locks: LockArray
    private let segments: UnsafeMutablePointer<HashSegment>
    private let keyOffset: Int
    /// `-o no_hashexpand` makes this false: chains then grow instead of the bucket arrays.
    private let expands: Bool

    init(hashPower: Int, layout: ItemLayout, expands: Bool = true) {
        self.expands = expands
        let power = max(0, min(hashPower, 32))
        segmentBits = min(8, power)
        segmentCount = 1 << segmentBits
        segmentShift = UInt64(32 - segmentBits)
        keyOffset = layout.keyOffset
        locks = .allocate(count: segmentCount)
        segments = .allocate(capacity: segmentCount)
        let perSegment = 1 << (power - segmentBits)
        for i in 0..<segmentCount {
            let b = BucketMemory.allocate(perSegment)
            (segments + i).initialize(to: HashSegment(buckets: b, mask: perSegment - 1, count: 0))
        }
    }

    func destroy() {
        for i in 0..<segmentCount { BucketMemory.free(segments[i].buckets, segments[i].mask + 1) }
        segments.deallocate()
        locks.destroy()
    }

    @inline(__always) func segment(for hash: UInt32) -> Int {
        Int(truncatingIfNeeded: UInt64(hash) &>> segmentShift)
    }

    /// Total buckets (memcached: hashsize(hashpower)); takes each segment lock in turn.
    var totalBuckets: Int {
        var total = 0
        for i in 0..<segmentCount {
            locks.lock(i)
            total += segments[i].mask + 1
            locks.unlock(i)
        }
        return total
    }

    /// Caller holds lock `seg`.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hash: UInt32, seg: Int) -> ItemRef? {
        let s = segments + seg
        var p = s.pointee.buckets[Int(hash) & s.pointee.mask]
        let n = key.count
        while let raw = p {
            let it = ItemRef(raw)
            if it.hash == hash && it.nkey == n && (n == 0 || memcmp(raw + keyOffset, key.baseAddress!, n) == 0) { return it }
            p = it.hNext
        }
        return nil
    }

    /// Caller holds lock `seg`; `it.hash` is set and the key is not present.
    func insert(_ it: ItemRef, seg: Int) {
        let s = segments + seg
        if expands && s.pointee.count + 1 > (s.pointee.mask + 1) * 3 / 2 { grow(s) }
        let b = Int(it.hash) & s.pointee.mask
        it.hNext = s.pointee.buckets[b]
        s.pointee.buckets[b] = it.raw
        s.pointee.count += 1
    }

    /// Caller holds lock `seg`; `it` is in the table.
    func remove(_ it: ItemRef, seg: Int) {
        let s = segments + seg
        let b = Int(it.hash) & s.pointee.mask
        var prev: UnsafeMutableRawPointer? = nil
        var p = s.pointee.buckets[b]
        while let raw = p {
            if raw == it.raw {
                if let pr = prev { ItemRef(pr).hNext = it.hNext } else { s.pointee.buckets[b] = it.hNext }
                it.hNext = nil
                s.pointee.count -= 1
                return
            }
            prev = raw
            p = ItemRef(raw).hNext
        }
        preconditionFailure("AssocTable.remove: item not in its segment")
    }

    /// Calls `body` with every item of segment `seg`, bucket by bucket. Caller holds lock `seg`; `body`
    /// must not change the segment.
    func forEachItem(seg: Int, _ body: (ItemRef) -> Void) {
        let s = segments + seg
        for b in 0...s.pointee.mask {
            var p = s.pointee.buckets[b]
            while let raw = p {
                let it = ItemRef(raw)
                p = it.hNext
                body(it)
            }
        }
    }

    /// Doubles one segment's buckets. Caller holds its lock.
    private func grow(_ s: UnsafeMutablePointer<HashSegment>) {
        let oldSize = s.pointee.mask + 1
        let newSize = oldSize * 2
        let nb = BucketMemory.allocate(newSize)
        let newMask = newSize - 1
        let old = s.pointee.buckets
        for i in 0..<oldSize {
            var p = old[i]
            while let raw = p {
                let it = ItemRef(raw)
                p = it.hNext
                let b = Int(it.hash) & newMask
                it.hNext = nb[b]
                nb[b] = raw
            }
        }
        BucketMemory.free(old, oldSize)
        s.pointee.buckets = nb
        s.pointee.mask = newMask
    }
}

/// Bucket arrays. Arrays of a page or more are mapped directly, so the arrays a growing table leaves
/// behind go back to the kernel instead of staying in malloc's heap as fragments (which showed up as
/// ~4 bytes per item of RSS at 1M items). Mapped memory is zero-filled, i.e. every bucket starts nil.
enum BucketMemory {
    static let mapThreshold = 4096

    static func allocate(_ count: Int) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        let bytes = count * MemoryLayout<UnsafeMutableRawPointer?>.stride
        if bytes >= mapThreshold {
            guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                  p != MAP_FAILED else {
                fatalError("cachet: cannot map \(bytes) bytes for the hash table")
            }
            return p.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: count)
        }
        let b = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: count)
        b.initialize(repeating: nil, count: count)
        return b
    }

    static func free(_ p: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ count: Int) {
        let bytes = count * MemoryLayout<UnsafeMutableRawPointer?>.stride
        if bytes >= mapThreshold {
            munmap(UnsafeMutableRawPointer(p), bytes)
        } else {
            p.deallocate()
        }
    }
}
