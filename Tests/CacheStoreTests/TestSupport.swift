// Test harness: a store with a hand-driven clock and String/[UInt8] conveniences over the byte API.
import CacheStore

struct Fetched: Equatable {
    var value: [UInt8]
    var flags: UInt32
    var cas: UInt64
    var exptime: UInt32
    var fetchedBefore: Bool
    var lastAccess: UInt32
    var classId: Int
    var totalSize: Int
    var segments: Int
    var string: String { String(decoding: value, as: UTF8.self) }
}

final class Harness: @unchecked Sendable {
    static let start = 1_700_000_000
    let clock: StoreClock
    let store: CacheStore
    private(set) var now = Harness.start

    init(_ configure: (inout StoreConfig) -> Void = { _ in }) {
        var config = StoreConfig()
        configure(&config)
        clock = StoreClock(now: Harness.start)
        store = CacheStore(config: config, clock: clock)
    }

    /// A harness over a store built elsewhere (a warm restart's), whose clock reads `now`.
    init(store: CacheStore, clock: StoreClock, now: Int) {
        self.store = store
        self.clock = clock
        self.now = now
    }

    func advance(_ seconds: Int) { now += seconds; clock.tick(now: now) }

    func hash(_ key: String) -> UInt32 {
        var k = key
        return k.withUTF8 { store.hash(UnsafeRawBufferPointer($0)) }
    }

    @discardableResult
    func set(_ key: String, _ value: [UInt8], mode: StoreMode = .set, flags: UInt32 = 0, exptime: Int64 = 0,
             cas: UInt64 = 0, unlinkOnFailure: Bool = true) -> StoreResult {
        storeWithClass(key, value, mode: mode, flags: flags, exptime: exptime, cas: cas,
                       unlinkOnFailure: unlinkOnFailure).result
    }

    @discardableResult
    func set(_ key: String, _ value: String, mode: StoreMode = .set, flags: UInt32 = 0, exptime: Int64 = 0,
             cas: UInt64 = 0) -> StoreResult {
        set(key, Array(value.utf8), mode: mode, flags: flags, exptime: exptime, cas: cas)
    }

    func storeWithClass(_ key: String, _ value: [UInt8], mode: StoreMode = .set, flags: UInt32 = 0,
                        exptime: Int64 = 0, cas: UInt64 = 0,
                        unlinkOnFailure: Bool = true) -> (result: StoreResult, classId: Int) {
        let h = hash(key)
        var k = key
        let r = k.withUTF8 { kp in
            value.withUnsafeBytes { vp in
                store.store(mode, key: UnsafeRawBufferPointer(kp), hash: h, flags: flags, exptime: exptime,
                            value: vp, casUnique: cas, unlinkOnFailure: unlinkOnFailure)
            }
        }
        return (r.result, r.classId)
    }

    func lookup(_ key: String, touch: Int64? = nil) -> (result: LookupResult, item: Fetched?) {
        let h = hash(key)
        var k = key
        var out: Fetched? = nil
        let r = k.withUTF8 { kp in
            store.get(UnsafeRawBufferPointer(kp), hash: h, touchExptime: touch) { v in
                var bytes: [UInt8] = []
                bytes.reserveCapacity(v.valueLength)
                var segments = 0
                v.forEachSegment { bytes.append(contentsOf: $0); segments += 1 }
                out = Fetched(value: bytes, flags: v.flags, cas: v.cas, exptime: v.exptime, fetchedBefore: v.fetched,
                              lastAccess: v.lastAccess, classId: v.classId, totalSize: v.totalSize, segments: segments)
            }
        }
        return (r, out)
    }

    func get(_ key: String) -> Fetched? { lookup(key).item }
    func value(_ key: String) -> String? { get(key)?.string }

    func delete(_ key: String) -> DeleteResult {
        let h = hash(key)
        var k = key
        return k.withUTF8 { store.delete(UnsafeRawBufferPointer($0), hash: h) }
    }

    func touch(_ key: String, _ exptime: Int64) -> LookupResult {
        let h = hash(key)
        var k = key
        return k.withUTF8 { store.touch(UnsafeRawBufferPointer($0), hash: h, exptime: exptime) }
    }

    func delta(_ key: String, incr: Bool, _ by: UInt64) -> DeltaResult {
        let h = hash(key)
        var k = key
        return k.withUTF8 { store.delta(UnsafeRawBufferPointer($0), hash: h, incr: incr, delta: by) }
    }

    func stats() -> StoreStats { store.statsSnapshot() }
}

/// Deterministic, position-dependent bytes so a misplaced chunk shows.
func patternBytes(_ count: Int, seed: UInt32 = 1) -> [UInt8] {
    var x = seed &* 2_654_435_761 | 1
    return (0..<count).map { _ in
        x ^= x << 13; x ^= x >> 17; x ^= x << 5
        return UInt8(truncatingIfNeeded: x)
    }
}
