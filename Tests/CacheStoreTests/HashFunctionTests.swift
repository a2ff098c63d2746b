// The key hash is MurmurHash3_x86_32 (memcached's default): published test vectors, tails of 0–3 bytes.
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
}
