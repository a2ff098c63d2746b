// The contract between CacheStore and its callers (CachetServer). Implementation lives in the other
// files of this module; this file only names the values that cross the seam.

/// Store-wide settings, taken from memcached's CLI options.
public struct StoreConfig: Sendable {
    /// `-m`, in bytes (memcached: `settings.maxbytes`).
    public var memoryLimit: Int = 64 << 20
    /// `-n`: minimum space for key + value + flags (memcached `settings.chunk_size`).
    public var chunkSize: Int = 48
    /// `-f`: slab class growth factor.
    public var growthFactor: Double = 1.25
    /// `-I`: largest item (header + key + value) in bytes.
    public var itemSizeMax: Int = 1 << 20
    /// Slab page size (memcached `settings.slab_page_size`).
    public var slabPageSize: Int = 1 << 20
    /// Largest chunk (memcached `settings.slab_chunk_size_max`, `-o slab_chunk_max`); bigger items are chunked.
    public var slabChunkMax: Int = 1 << 19
    /// `!-C`.
    public var casEnabled: Bool = true
    /// `!-M`.
    public var evictionsEnabled: Bool = true
    /// `-o hashpower`, or 16 (memcached's HASHPOWER_DEFAULT).
    public var hashPowerInitial: Int = 16
    public init() {}
}

public struct SlabClassInfo: Sendable, Equatable {
    public let id: Int
    public let chunkSize: Int
    public let perSlab: Int
    public init(id: Int, chunkSize: Int, perSlab: Int) {
        self.id = id; self.chunkSize = chunkSize; self.perSlab = perSlab
    }
}

public enum StoreMode: Sendable { case set, add, replace, append, prepend, cas }

public enum StoreResult: Sendable, Equatable {
    case stored, notStored, exists, notFound, tooLarge, outOfMemory
}

public enum LookupResult: Sendable, Equatable {
    case hit(classId: Int)
    case miss
    case expired
    case flushed
}

public enum DeleteResult: Sendable, Equatable { case deleted(classId: Int), notFound }

public enum DeltaResult: Sendable, Equatable {
    case ok(value: UInt64, classId: Int)
    case notFound
    case nonNumeric
    case outOfMemory
}
