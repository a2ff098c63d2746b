// Owns the warm-restart metadata (`<memory file>.meta`, layout in docs/RESTART.md): what a graceful stop
// records next to the memory file — the settings that shaped the slab pages, the clock, the CAS counter,
// the flush state, which page belongs to which slab class and a checksum per used page — and its binary
// encoding, decoding and checks. Pure: no files, no store; the server reads and writes the bytes.

/// The settings that decide the layout of the memory file: any difference makes a restart cold. Names and
/// value texts are memcached's metadata keys, so the log line reads as memcached's.
public struct RestartSettings: Sendable, Equatable {
    public var maxBytes: UInt64
    public var slabPageSize: UInt64
    public var chunkSize: UInt64
    public var growthFactor: Double
    public var itemSizeMax: UInt64
    public var slabChunkMax: UInt64
    public var casEnabled: Bool
    /// `-o slab_sizes` (empty: the `-f` progression decides the classes).
    public var slabSizes: [UInt32]
    /// `-o hash_algorithm`: items are found again by their stored hash.
    public var hashAlgorithm: String

    public init(maxBytes: UInt64, slabPageSize: UInt64, chunkSize: UInt64, growthFactor: Double,
                itemSizeMax: UInt64, slabChunkMax: UInt64, casEnabled: Bool, slabSizes: [UInt32] = [],
                hashAlgorithm: String = HashAlgorithm.murmur3.rawValue) {
        self.maxBytes = maxBytes; self.slabPageSize = slabPageSize; self.chunkSize = chunkSize
        self.growthFactor = growthFactor; self.itemSizeMax = itemSizeMax; self.slabChunkMax = slabChunkMax
        self.casEnabled = casEnabled; self.slabSizes = slabSizes; self.hashAlgorithm = hashAlgorithm
    }

    public init(_ c: StoreConfig) {
        self.init(maxBytes: UInt64(c.memoryLimit), slabPageSize: UInt64(c.slabPageSize), chunkSize: UInt64(c.chunkSize),
                  growthFactor: c.growthFactor, itemSizeMax: UInt64(c.itemSizeMax),
                  slabChunkMax: UInt64(c.slabChunkMax), casEnabled: c.casEnabled,
                  slabSizes: (c.slabSizes ?? []).map { UInt32(truncatingIfNeeded: $0) },
                  hashAlgorithm: c.hashAlgorithm.rawValue)
    }

    /// (memcached's key name, this side's value as memcached prints it), in memcached's order; slab_config is
    /// the slab_sizes text when given, as memcached records it. hash_algorithm is Cachet's own key.
    var named: [(String, String)] {
        let slabConfig = slabSizes.isEmpty ? String(growthFactor) : slabSizes.map(String.init).joined(separator: "-")
        return [("slab_config", slabConfig), ("maxbytes", String(maxBytes)), ("chunk_size", String(chunkSize)),
                ("item_size_max", String(itemSizeMax)), ("slab_chunk_size_max", String(slabChunkMax)),
                ("slab_page_size", String(slabPageSize)), ("use_cas", casEnabled ? "true" : "false"),
                ("hash_algorithm", hashAlgorithm)]
    }
}

public struct RestartMetadata: Sendable, Equatable {
    public static let magic = Array("CACHETMF".utf8)
    /// Bumped whenever the item layout or this encoding changes: an older file then starts cold.
    public static let formatVersion: UInt32 = 2
    /// Fixed bytes: magic, format, total length (the trailing 8-byte checksum included).
    static let headerSize = 16

    /// The Cachet version that wrote the file: another version starts cold (the item layout is not promised
    /// stable between versions).
    public var producer: String
    public var settings: RestartSettings
    /// Where the memory file was mapped (chunk pointers inside items are relative to it).
    public var mapBase: UInt64
    /// memcached's process_started (unix time; relative time 0) and current_time at the stop: the clock
    /// continues from it, so the time the server was down counts against every TTL.
    public var processStarted: Int64
    public var currentTime: UInt32
    /// Unix time of the stop.
    public var stopTime: Int64
    /// The last CAS unique handed out, and memcached's settings.oldest_live / oldest_cas (flush_all).
    public var casCounter: UInt64
    public var oldestLive: UInt32
    public var oldestCas: UInt64
    /// Pages of the memory file handed out (pages 0..<pagesUsed).
    public var pagesUsed: Int
    /// Page indices per slab class in the class's page order; entry 0 is the global page pool.
    public var classPages: [[UInt32]]
    /// One checksum per used page (0 for pages no class holds: their bytes do not matter).
    public var pageChecksums: [UInt64]
    /// Linked items at the stop.
    public var itemCount: UInt64

    public init(producer: String, settings: RestartSettings, mapBase: UInt64, processStarted: Int64,
                currentTime: UInt32, stopTime: Int64, casCounter: UInt64, oldestLive: UInt32, oldestCas: UInt64,
                pagesUsed: Int, classPages: [[UInt32]], pageChecksums: [UInt64], itemCount: UInt64) {
        self.producer = producer; self.settings = settings; self.mapBase = mapBase
        self.processStarted = processStarted; self.currentTime = currentTime; self.stopTime = stopTime
        self.casCounter = casCounter; self.oldestLive = oldestLive; self.oldestCas = oldestCas
        self.pagesUsed = pagesUsed; self.classPages = classPages; self.pageChecksums = pageChecksums
        self.itemCount = itemCount
    }

    public enum DecodeError: Error, Equatable {
        case tooShort, badMagic, badLength
        case checksumMismatch
        case unsupportedFormat(UInt32)
        /// Checksum right but a field out of range (a writer bug, or a file made by hand).
        case malformed(String)

        /// The reason, for the start-up log line.
        public var text: String {
            switch self {
            case .tooShort: return "metadata file too short"
            case .badMagic: return "not a Cachet metadata file"
            case .badLength: return "metadata file truncated or too long"
            case .checksumMismatch: return "metadata checksum mismatch"
            case .unsupportedFormat(let v): return "metadata format \(v), this Cachet reads format \(RestartMetadata.formatVersion)"
            case .malformed(let why): return "malformed metadata: \(why)"
            }
        }
    }

    // MARK: Encoding (little-endian)

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(RestartMetadata.magic)
        w.u32(RestartMetadata.formatVersion)
        w.u32(0)                                   // total length, patched below
        let p = Array(producer.utf8.prefix(255))
        w.u8(UInt8(p.count)); w.bytes(p)
        w.u64(settings.maxBytes); w.u64(settings.slabPageSize); w.u64(settings.chunkSize)
        w.u64(settings.growthFactor.bitPattern); w.u64(settings.itemSizeMax); w.u64(settings.slabChunkMax)
        w.u8(settings.casEnabled ? 1 : 0)
        w.u8(UInt8(settings.slabSizes.count))
        for size in settings.slabSizes { w.u32(size) }
        let algorithm = Array(settings.hashAlgorithm.utf8.prefix(255))
        w.u8(UInt8(algorithm.count)); w.bytes(algorithm)
        w.u64(mapBase)
        w.u64(UInt64(bitPattern: processStarted)); w.u32(currentTime); w.u64(UInt64(bitPattern: stopTime))
        w.u64(casCounter); w.u32(oldestLive); w.u64(oldestCas)
        w.u64(itemCount)
        w.u32(UInt32(pagesUsed))
        w.u32(UInt32(classPages.count))
        for list in classPages {
            w.u32(UInt32(list.count))
            for i in list { w.u32(i) }
        }
        for c in pageChecksums { w.u64(c) }
        let total = w.out.count + 8
        w.patchU32(at: 12, UInt32(total))
        w.u64(RestartChecksum.hash(w.out))
        return w.out
    }

    /// Decodes and checks a metadata file: length, checksum, format, then every field's range.
    public static func decode(_ b: [UInt8]) -> Result<RestartMetadata, DecodeError> {
        guard b.count >= headerSize + 8 else { return .failure(.tooShort) }
        guard Array(b[0..<8]) == magic else { return .failure(.badMagic) }
        var r = ByteReader(b)
        r.pos = 8
        let format = r.u32()!, total = r.u32()!
        guard Int(total) == b.count else { return .failure(.badLength) }
        let stored = b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: b.count - 8, as: UInt64.self) }
        guard RestartChecksum.hash(Array(b[0..<(b.count - 8)])) == UInt64(littleEndian: stored) else {
            return .failure(.checksumMismatch)
        }
        guard format == formatVersion else { return .failure(.unsupportedFormat(format)) }
        r.end = b.count - 8
        guard let m = parseBody(&r) else { return .failure(.malformed("field out of range or truncated")) }
        if let why = m.structuralProblem() { return .failure(.malformed(why)) }
        return .success(m)
    }

    private static func parseBody(_ r: inout ByteReader) -> RestartMetadata? {
        guard let plen = r.u8(), let pbytes = r.bytes(Int(plen)),
              let maxBytes = r.u64(), let pageSize = r.u64(), let chunkSize = r.u64(), let factor = r.u64(),
              let itemMax = r.u64(), let chunkMax = r.u64(), let cas = r.u8(), cas <= 1,
              let nsizes = r.u8(), nsizes < 64
        else { return nil }
        var slabSizes: [UInt32] = []
        for _ in 0..<nsizes { guard let size = r.u32() else { return nil }; slabSizes.append(size) }
        guard let alen = r.u8(), let algorithm = r.bytes(Int(alen)),
              let base = r.u64(), let started = r.u64(), let current = r.u32(), let stop = r.u64(),
              let casCounter = r.u64(), let oldestLive = r.u32(), let oldestCas = r.u64(),
              let items = r.u64(), let used = r.u32(), let nclasses = r.u32(), nclasses <= 64
        else { return nil }
        var classPages: [[UInt32]] = []
        for _ in 0..<nclasses {
            guard let n = r.u32(), n <= used else { return nil }
            var list: [UInt32] = []
            list.reserveCapacity(Int(n))
            for _ in 0..<n { guard let i = r.u32() else { return nil }; list.append(i) }
            classPages.append(list)
        }
        var sums: [UInt64] = []
        sums.reserveCapacity(Int(used))
        for _ in 0..<used { guard let s = r.u64() else { return nil }; sums.append(s) }
        guard r.pos == r.end else { return nil }
        let settings = RestartSettings(maxBytes: maxBytes, slabPageSize: pageSize, chunkSize: chunkSize,
                                       growthFactor: Double(bitPattern: factor), itemSizeMax: itemMax,
                                       slabChunkMax: chunkMax, casEnabled: cas == 1, slabSizes: slabSizes,
                                       hashAlgorithm: String(decoding: algorithm, as: UTF8.self))
        return RestartMetadata(producer: String(decoding: pbytes, as: UTF8.self), settings: settings, mapBase: base,
                               processStarted: Int64(bitPattern: started), currentTime: current,
                               stopTime: Int64(bitPattern: stop), casCounter: casCounter, oldestLive: oldestLive,
                               oldestCas: oldestCas, pagesUsed: Int(used), classPages: classPages,
                               pageChecksums: sums, itemCount: items)
    }

    /// Field checks beyond the encoding: the pages fit the file, each page belongs to at most one list.
    func structuralProblem() -> String? {
        guard settings.slabPageSize > 0, settings.maxBytes % settings.slabPageSize == 0 else {
            return "memory size not a whole number of pages"
        }
        guard UInt64(pagesUsed) <= settings.maxBytes / settings.slabPageSize else { return "more pages than the file holds" }
        guard !classPages.isEmpty else { return "no page table" }
        guard pageChecksums.count == pagesUsed else { return "page checksum count" }
        var seen = Array(repeating: false, count: pagesUsed)
        for list in classPages {
            for i in list {
                guard Int(i) < pagesUsed, !seen[Int(i)] else { return "page \(i) listed twice or out of range" }
                seen[Int(i)] = true
            }
        }
        guard processStarted > 0 else { return "process start time" }
        return nil
    }

    /// The first setting (memcached's name) whose recorded value differs from `current`, with the recorded
    /// value; then the producer version (`version`). nil when a warm restart is possible.
    public func incompatibility(with current: RestartSettings, producer currentProducer: String) -> (name: String, oldValue: String)? {
        for (old, now) in zip(settings.named, current.named) where old.1 != now.1 { return (old.0, old.1) }
        if producer != currentProducer { return ("version", producer) }
        return nil
    }
}

private struct ByteWriter {
    var out: [UInt8] = []
    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func bytes(_ b: [UInt8]) { out.append(contentsOf: b) }
    mutating func patchU32(at i: Int, _ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { for (k, x) in $0.enumerated() { out[i + k] = x } }
    }
}

/// Reads little-endian fields; every read returns nil past `end` instead of trapping.
private struct ByteReader {
    let b: [UInt8]
    var pos = 0
    var end: Int
    init(_ b: [UInt8]) { self.b = b; end = b.count }
    mutating func bytes(_ n: Int) -> [UInt8]? {
        guard n >= 0, pos + n <= end else { return nil }
        defer { pos += n }
        return Array(b[pos..<(pos + n)])
    }
    mutating func u8() -> UInt8? { bytes(1)?[0] }
    mutating func u32() -> UInt32? {
        guard let x = bytes(4) else { return nil }
        return x.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }
    mutating func u64() -> UInt64? {
        guard let x = bytes(8) else { return nil }
        return x.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
}
