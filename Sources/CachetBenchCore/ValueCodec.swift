// Values that can be checked: every byte of the value stored for (key, version) is derived from
// the key number and the version, so a GET hit can be compared with the last SET without storing
// values. Layout: "<key>:<version>:" (when it fits) followed by a filler stream seeded by both.
// Without --verify the generator sends slices of one pre-built buffer instead (no per-request work).

public struct ValueCodec: Sendable {
    public let minSize: Int
    public let maxSize: Int

    public init(minSize: Int, maxSize: Int) {
        self.minSize = minSize
        self.maxSize = maxSize
    }

    @inline(__always)
    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var z = a &* 0x9E37_79B9_7F4A_7C15 ^ (b &+ 0xD1B5_4A32_D192_ED03)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Size of the value for (key, version): fixed, or spread over the range deterministically.
    @inline(__always)
    public func size(key: Int, version: UInt32) -> Int {
        if minSize == maxSize { return minSize }
        let span = UInt64(maxSize - minSize + 1)
        return minSize + Int(Self.mix(UInt64(key), UInt64(version) | 1 << 40) % span)
    }

    /// Writes the value for (key, version) into `out` (capacity >= size(key:version:)); returns its size.
    public func write(key: Int, version: UInt32, into out: UnsafeMutableRawPointer) -> Int {
        let n = size(key: key, version: version)
        var header: [UInt8] = Array("\(key):\(version):".utf8)
        if header.count > n { header.removeAll() }
        for (i, b) in header.enumerated() { out.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
        var state = Self.mix(UInt64(key), UInt64(version))
        var i = header.count
        while i + 8 <= n {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            out.storeBytes(of: state, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        if i < n {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var s = state
            while i < n { out.storeBytes(of: UInt8(truncatingIfNeeded: s), toByteOffset: i, as: UInt8.self); s >>= 8; i += 1 }
        }
        return n
    }

    /// Reads the version from a value header "<key>:<version>:"; nil when absent or for another key.
    public func headerVersion(key: Int, value: UnsafeRawBufferPointer) -> UInt32? {
        var i = 0
        var k = 0
        while i < value.count, i < 21, value[i] != 58 {
            let c = value[i]; guard c >= 48, c <= 57 else { return nil }
            k = k &* 10 &+ Int(c - 48); i += 1
        }
        guard i < value.count, value[i] == 58, k == key, i > 0 else { return nil }
        i += 1
        var v: UInt64 = 0
        let start = i
        while i < value.count, i - start < 11, value[i] != 58 {
            let c = value[i]; guard c >= 48, c <= 57 else { return nil }
            v = v * 10 + UInt64(c - 48); i += 1
        }
        guard i < value.count, value[i] == 58, i > start, v <= UInt64(UInt32.max) else { return nil }
        return UInt32(v)
    }

    /// True when `value` is exactly the value for (key, version). `scratch` must hold maxSize bytes.
    public func matches(key: Int, version: UInt32, value: UnsafeRawBufferPointer,
                        scratch: UnsafeMutableRawPointer) -> Bool {
        guard value.count == size(key: key, version: version) else { return false }
        let n = write(key: key, version: version, into: scratch)
        return memcmp(scratch, value.baseAddress!, n) == 0
    }
}

#if canImport(Glibc)
import Glibc
#endif
