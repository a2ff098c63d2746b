// Owns the slab class geometry: memcached's slabs_init() size progression and the size → class lookup.

/// memcached's MAX_NUMBER_OF_SLAB_CLASSES (63 + 1): ids run 1...63.
var maxNumberOfSlabClasses: Int { 64 }
/// memcached's CHUNK_ALIGN_BYTES.
var chunkAlignBytes: Int { 8 }
/// sizeof(item) in memcached, and the size of our `ItemHeader` (without CAS).
var itemHeaderSize: Int { 48 }

enum SlabClassTable {
    /// Exactly memcached 1.6 slabs_init() without `-o slab_sizes`: unsigned-int sizes, double factor.
    static func build(chunkSize: Int, growthFactor factor: Double, slabPageSize: Int, slabChunkMax: Int) -> [SlabClassInfo] {
        var classes: [SlabClassInfo] = []
        var size = UInt32(truncatingIfNeeded: itemHeaderSize + chunkSize)
        var i = 0
        while true {
            i += 1
            if i >= maxNumberOfSlabClasses - 1 { break }
            if Double(size) >= Double(slabChunkMax) / factor { break }
            if size % UInt32(chunkAlignBytes) != 0 { size += UInt32(chunkAlignBytes) - size % UInt32(chunkAlignBytes) }
            classes.append(SlabClassInfo(id: i, chunkSize: Int(size), perSlab: slabPageSize / Int(size)))
            size = UInt32(truncatingIfNeeded: UInt64(Double(size) * factor))
        }
        classes.append(SlabClassInfo(id: i, chunkSize: slabChunkMax, perSlab: slabPageSize / slabChunkMax))
        return classes
    }

    /// memcached slabs_init() with `-o slab_sizes`: one class per given size, aligned up to 8 bytes, then the
    /// slab_chunk_max class (which may repeat the last size, as in memcached).
    static func build(sizes: [Int], slabPageSize: Int, slabChunkMax: Int) -> [SlabClassInfo] {
        var classes: [SlabClassInfo] = []
        for (i, given) in sizes.prefix(maxNumberOfSlabClasses - 2).enumerated() {
            let size = (given + chunkAlignBytes - 1) / chunkAlignBytes * chunkAlignBytes
            classes.append(SlabClassInfo(id: i + 1, chunkSize: size, perSlab: slabPageSize / size))
        }
        classes.append(SlabClassInfo(id: classes.count + 1, chunkSize: slabChunkMax, perSlab: slabPageSize / slabChunkMax))
        return classes
    }

    /// memcached slabs_clsid(): the smallest class whose chunk holds `size` bytes, 0 if none does.
    static func classId(forSize size: Int, in classes: [SlabClassInfo]) -> Int {
        if size == 0 { return 0 }
        var lo = 0, hi = classes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if classes[mid].chunkSize >= size { hi = mid } else { lo = mid + 1 }
        }
        return lo < classes.count ? classes[lo].id : 0
    }
}
