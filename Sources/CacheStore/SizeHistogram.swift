// `stats sizes`: a histogram of the sizes of linked items in 32-byte buckets, switched on at run time by
// `stats sizes_enable` and off by `stats sizes_disable` (memcached items.c item_stats_sizes_*).
//
// As in memcached, switching it on takes a CAS unique of its own (so later uniques stay in step with
// memcached's), and only items whose CAS is at least that are counted when linked or unlinked: items that existed before the histogram was switched on are
// never counted (nor subtracted). The enabled flag is an atomic read on every link/unlink; the buckets
// sit behind their own lock, taken last (after the segment and class locks).
import CachetSync
import Synchronization

final class SizeHistogram: @unchecked Sendable {
    private let on = Atomic<Bool>(false)
    private let state = Locked<(buckets: [Int], casMin: UInt64)>(([], 0))

    /// Switches the histogram on unless it is on already (then `casMin` is not called).
    func enable(bucketCount: Int, casMin: () -> UInt64) {
        state.withLock { s in
            if on.load(ordering: .relaxed) { return }
            s = (Array(repeating: 0, count: bucketCount), casMin())
            on.store(true, ordering: .releasing)
        }
    }

    func disable() {
        state.withLock { s in
            on.store(false, ordering: .releasing)
            s = ([], 0)
        }
    }

    func snapshot() -> [Int]? {
        state.withLock { s in on.load(ordering: .relaxed) ? s.buckets : nil }
    }

    /// memcached's bucket: the item's total size rounded up to a multiple of 32, divided by 32.
    @inline(__always)
    func record(totalSize: Int, cas: UInt64, delta: Int) {
        guard on.load(ordering: .acquiring) else { return }
        state.withLock { s in
            guard on.load(ordering: .relaxed), cas >= s.casMin else { return }
            var b = totalSize / 32
            if totalSize % 32 != 0 { b += 1 }
            if b < s.buckets.count { s.buckets[b] += delta }
        }
    }
}

extension CacheStore {
    /// `stats sizes_enable`: buckets up to the item size limit (memcached: item_size_max / 32 + 1).
    public func enableSizeHistogram() {
        sizes.enable(bucketCount: config.itemSizeMax / 32 + 1, casMin: { nextCas() })
    }

    public func disableSizeHistogram() { sizes.disable() }

    /// Item counts per 32-byte bucket (index × 32 = size), or nil while the histogram is off.
    public func sizeHistogram() -> [Int]? { sizes.snapshot() }
}
