// The key hashes (`-o hash_algorithm`): MurmurHash3_x86_32 (memcached's default), Bob Jenkins' lookup3 and
// XXH3 — published test vectors, tails of every length.
import Testing
@testable import CacheStore

@Suite struct HashFunctionTests {
    @Test func murmur3Vectors() {
        let vectors: [([UInt8], UInt32, UInt32)] = [
            ([], 0, 0), ([], 1, 0x514E_28B7), ([], 0xffff_ffff, 0x81F1_6F39), ([0, 0, 0, 0], 0, 0x2362_F9DE),
            (Array("aaaa".utf8), 0x9747_b28c, 0x5A97_808A), (Array("aaa".utf8), 0x9747_b28c, 0x283E_0130),
            (Array("aa".utf8), 0x9747_b28c, 0x5D21_1726), (Array("a".utf8), 0x9747_b28c, 0x7FA0_9EA6),
            (Array("abcd".utf8), 0x9747_b28c, 0xF047_8627), (Array("abc".utf8), 0x9747_b28c, 0xC84A_62DD),
            (Array("ab".utf8), 0x9747_b28c, 0x7487_5592),
            (Array("Hello, world!".utf8), 0x9747_b28c, 0x2488_4CBA),
            (Array("The quick brown fox jumps over the lazy dog".utf8), 0x9747_b28c, 0x2FA8_26CD),
        ]
        for (bytes, seed, want) in vectors {
            let got = bytes.withUnsafeBytes { MurmurHash3.hash($0, seed: seed) }
            #expect(got == want, "\(String(decoding: bytes, as: UTF8.self)) seed \(seed)")
        }
        let h = Harness()
        #expect(h.hash("a") == Array("a".utf8).withUnsafeBytes { MurmurHash3.hash($0, seed: 0) })
    }

    @Test func jenkinsLookup3Vectors() {
        // lookup3.c's own driver: hashlittle("", 0, 0) and the "Four score" line.
        #expect([UInt8]().withUnsafeBytes { JenkinsLookup3.hash($0) } == 0xdeadbeef)
        #expect(Array("Four score and seven years ago".utf8).withUnsafeBytes { JenkinsLookup3.hash($0) } == 0x1777_0551)
        // Every tail length 0...12 past a full block differs from its neighbours (each byte counts).
        let bytes = Array("abcdefghijklmnopqrstuvwxy".utf8)
        let hashes = (12...25).map { n in bytes.prefix(n).withUnsafeBytes { JenkinsLookup3.hash($0) } }
        #expect(Set(hashes).count == hashes.count)
    }

    @Test func xxh3Vector() {
        // XXH3_64bits of no bytes is 0x2D06800538D394C2; memcached keeps the low 32 bits.
        #expect([UInt8]().withUnsafeBytes { HashAlgorithm.xxh3.hash($0) } == 0x38D3_94C2)
    }

    @Test func storeUsesTheConfiguredHash() {
        for algorithm in HashAlgorithm.allCases {
            let h = Harness { $0.hashAlgorithm = algorithm }
            #expect(h.hash("some key") == Array("some key".utf8).withUnsafeBytes { algorithm.hash($0) })
            #expect(h.set("some key", "v") == .stored)
            #expect(h.value("some key") == "v")
        }
    }
}
