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
    /// memcached's segmented LRU (`lru_segmented`): HOT/WARM/COLD per class; false = flat (every item in
    /// COLD, and each allocation first reclaims expired items from COLD's tail, memcached do_item_alloc_pull).
    public var lruSegmented: Bool = true
    /// `-o hot_lru_pct`, `warm_lru_pct`: the shares of a class's bytes HOT and WARM may hold.
    public var hotLRUPct: Int = 20
    public var warmLRUPct: Int = 40
    /// `-o hot_max_factor`, `warm_max_factor`: HOT/WARM items older than this × COLD's tail age move to COLD.
    public var hotMaxFactor: Double = 0.2
    public var warmMaxFactor: Double = 2.0
    /// `-o temporary_ttl`: items with a TTL of at most this many seconds go to the TEMP LRU (`tempLRU`).
    public var tempLRU: Bool = false
    public var temporaryTTL: Int = 61
    /// `-o lru_policy`: memcached's segmented LRU as it is, or with S3-FIFO's admission rules on top.
    public var lruPolicyKind: LRUPolicyKind = .segmented
    /// `-o hashpower`, or 16 (memcached's HASHPOWER_DEFAULT).
    public var hashPowerInitial: Int = 16
    /// `!-o no_hashexpand`: the table grows as items arrive (otherwise it keeps `hashPowerInitial`).
    public var hashExpand: Bool = true
    /// `-o hash_algorithm`: the key hash behind the table and the item locks.
    public var hashAlgorithm: HashAlgorithm = .murmur3
    /// `-o slab_sizes`: explicit class sizes (each aligned to 8 bytes, then the slab_chunk_max class);
    /// nil = memcached's `-f` progression from `chunkSize`.
    public var slabSizes: [Int]? = nil
    /// `-L`: every page of `memoryLimit` is mapped at start in one region advised for huge pages, and each
    /// class gets its first page at once (memcached slabs_preallocate).
    public var preallocate: Bool = false
    /// `-t`: memcached sizes its item lock table by the worker count, which decides which LRU tail items an
    /// allocation under a key's lock skips (ItemLockStripes.swift).
    public var workerThreads: Int = 4
    public init() {}
}

/// `-o lru_policy=<name>`. `segmented` is memcached 1.6.18's segmented LRU. `s3fifo` keeps its segments and
/// maintainer and adds two rules from S3-FIFO: an item that leaves HOT without having been fetched goes to
/// COLD's tail (the next eviction) instead of its head, and a key evicted unfetched and set again soon after
/// (its hash still in the class's ghost table, GhostTable.swift) starts at COLD's head instead of in HOT.
public enum LRUPolicyKind: String, Sendable, CaseIterable {
    case segmented, s3fifo
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

/// Meta set (`ms`) options beyond the classic store modes.
public struct MetaStoreOptions: Sendable {
    /// `I` with a CAS: an older CAS than the item's still stores, marking the value stale.
    public var casStale = false
    /// `b`: the key was given base64-encoded; `k` and `me` print it encoded.
    public var keyBinary = false
    /// Superset `E<cas>`: the stored item's CAS instead of a fresh unique.
    public var newCas: UInt64? = nil
    /// Superset `N<ttl>` with append/prepend: a miss stores the value as a new item.
    public var vivify = false
    public init() {}
}

public struct MetaStoreOutcome: Sendable, Equatable {
    public var result: StoreResult
    /// Class of the incoming item (0 when none could be made).
    public var classId: Int
    /// The stored item's CAS (0 unless `.stored`).
    public var cas: UInt64
    /// The stored value's length (after append/prepend: the combined value).
    public var valueLength: Int
    /// Class of the item the key held before (0 when none): memcached counts cas_hits and cas_badval
    /// in that class, not the incoming item's.
    public var oldClassId: Int = 0
}

public enum MetaDeleteResult: Sendable, Equatable {
    case deleted(classId: Int)
    /// `I`: marked stale instead of deleted; `x`: value emptied.
    case kept
    case casMismatch
    case notFound
}

public enum MetaDeltaResult: Sendable, Equatable {
    case ok(classId: Int)
    /// The key was missing and `N` created it with the initial value.
    case created
    case notFound
    case casMismatch
    case nonNumeric
    case outOfMemory
    case vivifyOutOfMemory
}
