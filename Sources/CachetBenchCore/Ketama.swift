// Which server of --servers owns a key: ketama consistent hashing exactly as libmemcached builds it in its
// libketama-compatible mode (and as twemproxy builds it for `distribution: ketama` with `hash: md5`), so the
// bench spreads keys over a fleet the way real clients and proxies do.
//
// Equal weights: every server gets 160 points, the four little-endian 32-bit words of md5("<name>-<i>") for
// i in 0..<40, where <name> is "host:port", or "host" alone when the port is 11211 (both clients leave the
// default port out). A key belongs to the first point at or after the first little-endian word of md5(key),
// wrapping around to the lowest point.

import COpenSSL

public struct ServerAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public init(host: String, port: UInt16) { self.host = host; self.port = port }
    public var description: String { "\(host):\(port)" }
    /// The name ketama hashes for this server.
    public var ketamaName: String { port == 11211 ? host : "\(host):\(port)" }
}

public struct KetamaRing: Sendable {
    public static let pointsPerServer = 160
    /// Sorted point values, and the server index owning each point.
    let values: [UInt32]
    let owners: [Int]

    public init(servers: [ServerAddress]) {
        var points: [(UInt32, Int)] = []
        points.reserveCapacity(servers.count * Self.pointsPerServer)
        for (index, s) in servers.enumerated() {
            for i in 0..<(Self.pointsPerServer / 4) {
                let words = md5Words(Array("\(s.ketamaName)-\(i)".utf8))
                for w in words { points.append((w, index)) }
            }
        }
        // equal values: the lower server index first, as libmemcached sorts
        points.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        values = points.map(\.0)
        owners = points.map(\.1)
    }

    /// The server index owning a key hash.
    public func server(forHash h: UInt32) -> Int {
        var lo = 0, hi = values.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if values[mid] < h { lo = mid + 1 } else { hi = mid }
        }
        return owners[lo == values.count ? 0 : lo]
    }

    public func server(forKey key: UnsafeRawBufferPointer) -> Int { server(forHash: keyHash(key)) }

    public func server(forKey key: String) -> Int {
        let bytes = Array(key.utf8)
        return bytes.withUnsafeBytes { server(forKey: $0) }
    }
}

/// libmemcached's md5 key hash: the first little-endian 32-bit word of md5(key).
public func keyHash(_ key: UnsafeRawBufferPointer) -> UInt32 {
    md5Words(key)[0]
}

func md5Words(_ bytes: [UInt8]) -> [UInt32] {
    bytes.withUnsafeBytes { md5Words($0) }
}

func md5Words(_ data: UnsafeRawBufferPointer) -> [UInt32] {
    var digest = [UInt8](repeating: 0, count: 16)
    var len: UInt32 = 0
    let ok = digest.withUnsafeMutableBufferPointer { d in
        EVP_Digest(data.baseAddress, data.count, d.baseAddress, &len, EVP_md5(), nil)
    }
    precondition(ok == 1 && len == 16, "EVP_Digest(md5) failed")
    var words = [UInt32](repeating: 0, count: 4)
    for w in 0..<4 {
        var v: UInt32 = 0
        for b in (0..<4).reversed() { v = v << 8 | UInt32(digest[w * 4 + b]) }
        words[w] = v
    }
    return words
}

/// The ketama owner of every key number a run asks for: computed once for the key space (keys beyond it, the
/// one-hit wonders of --scan-ratio, are hashed when asked for). Shared read-only by every connection.
public final class KeyPlacement: Sendable {
    public let ring: KetamaRing
    let prefix: [UInt8]
    let width: Int
    let table: [UInt8]     // server index per key number below `keys` (--servers takes at most 255)

    public init(servers: [ServerAddress], keys: Int, prefix: [UInt8], width: Int) {
        precondition(servers.count <= 255, "at most 255 servers")
        ring = KetamaRing(servers: servers)
        self.prefix = prefix
        self.width = width
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: prefix.count + 24, alignment: 8)
        defer { scratch.deallocate() }
        var t = [UInt8](repeating: 0, count: keys)
        for n in 0..<keys {
            let len = formatKey(prefix: prefix, width: width, number: n, into: scratch)
            t[n] = UInt8(ring.server(forKey: UnsafeRawBufferPointer(start: scratch, count: len)))
        }
        table = t
    }

    @inline(__always)
    public func server(ofKey n: Int) -> Int {
        if n < table.count { return Int(table[n]) }
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: prefix.count + 24, alignment: 8)
        defer { scratch.deallocate() }
        let len = formatKey(prefix: prefix, width: width, number: n, into: scratch)
        return ring.server(forKey: UnsafeRawBufferPointer(start: scratch, count: len))
    }
}
