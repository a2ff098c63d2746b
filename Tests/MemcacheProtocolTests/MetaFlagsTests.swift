import MemcacheProtocol
import Testing

/// Parses the flags of a meta command line (flags start at token `first`), returning the flags and the
/// decoded key when `b` was given.
private func parse(_ s: String, first: Int = 2, allowRemoveValue: Bool = false) -> (MetaFlags, [UInt8]) {
    let bytes = Array(s.utf8)
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    defer { scratch.deallocate() }
    return bytes.withUnsafeBytes { raw in
        let t = TokenList()
        t.tokenize(raw)
        let f = MetaFlags.parse(raw, t, first: first, keyScratch: scratch, allowRemoveValue: allowRemoveValue)
        return (f, f.keyBinary ? Array(scratch[0..<f.keyLength]) : [])
    }
}

@Suite struct MetaFlagsTests {
    @Test func plainFlagsAreRecordedWithoutError() {
        let (f, _) = parse("mg k s v f t c k O123 q h l u")
        #expect(f.error == nil)
        for c in "svftckOqhlu".utf8 { #expect(f.has(c)) }
        #expect(!f.has(UInt8(ascii: "T")))
        #expect(f.value && f.noReply && f.noUpdate && f.locked)
    }

    @Test func tokenFlagsCarryTheirNumbers() {
        let (f, _) = parse("ma k N30 J10 D5 T-1 C77 F4294967296 MD R0")
        #expect(f.error == nil)
        #expect(f.vivify && f.autovivExptime == 30)
        #expect(f.initial == 10 && f.delta == 5)
        #expect(f.exptime == 2_592_001 && f.newTTL)   // negative TTL → long expired, like memcached
        #expect(f.hasCas && f.casIn == 77)
        #expect(f.clientFlags == 0)                    // safe_strtoul then truncation to 32 bits
        #expect(f.mode == UInt8(ascii: "D"))
    }

    @Test func defaultsForArithmetic() {
        let (f, _) = parse("ma k")
        #expect(f.delta == 1 && f.initial == 0 && f.mode == 0 && !f.locked)
    }

    @Test func duplicateAndInvalidFlagsStopAtOnce() {
        #expect(parse("mg k v v").0.error == .duplicateFlag)
        #expect(parse("mg k T1 T2").0.error == .duplicateFlag)
        #expect(parse("mg k \u{7f}").0.error == .duplicateFlag)   // bytes >= 127 count as duplicates
        #expect(parse("mg k !").0.error == .invalidFlag)
        #expect(parse("mg k W").0.error == .invalidFlag)
        #expect(parse("mg k v ! Tx").0.error == .invalidFlag)
        #expect(parse("mg k Tx !").0.error == .invalidFlag)
    }

    @Test func lastNumericErrorWins() {
        #expect(parse("mg k Tabc").0.error == .badToken)
        #expect(parse("mg k T").0.error == .badToken)
        #expect(parse("mg k Jx").0.error == .invalidInitial)
        #expect(parse("mg k Dx").0.error == .invalidDelta)
        #expect(parse("mg k Tx Jx").0.error == .invalidInitial)
        #expect(parse("mg k Jx Tx").0.error == .badToken)
        #expect(parse("mg k Fx").0.error == .badFormat)
        #expect(parse("mg k Tx Fx").0.error == .badToken)   // a bad F sets no message of its own
        #expect(parse("mg k Fx Tx").0.error == .badToken)
        #expect(parse("mg k F-1").0.error == .badFormat)
        #expect(parse("mg k M").0.error == .incorrectMLength)
        #expect(parse("mg k MSS").0.error == .incorrectMLength)
        #expect(parse("mg k MZ").0.error == nil)            // the mode itself is checked by ms/ma
    }

    @Test func flagsStartAfterTheDatalenForMs() {
        let (f, _) = parse("ms k 5 T30 c", first: 3)
        #expect(f.error == nil && f.exptime == 30 && f.has(UInt8(ascii: "c")))
    }

    @Test func base64KeyIsDecodedIntoScratch() {
        let (f, key) = parse("mg Zm9v b v")
        #expect(f.error == nil && f.keyBinary)
        #expect(key == Array("foo".utf8))
        let (g, junk) = parse("mg a!2s= b")   // bytes outside the alphabet are skipped (memcached's decoder)
        #expect(g.error == nil && junk == Array("kk".utf8))
    }

    @Test func base64Failures() {
        #expect(parse("mg !!!! b").0.error == .decodingKey)
        #expect(parse("mg abc b").0.error == .decodingKey)
        #expect(parse("mg ==== b").0.error == .decodingKey)
        #expect(parse("mg A=== b").0.error == .decodingKey)
        #expect(parse("mg !!!! b Tx").0.error == .badToken)
        #expect(parse("mg !!!! b !").0.error == .invalidFlag)
    }

    @Test func supersetFlags() {
        let (f, _) = parse("md k E123 x", allowRemoveValue: true)
        #expect(f.error == nil && f.hasNewCas && f.newCas == 123 && f.removeValue)
        #expect(parse("mg k Eabc").0.error == .badToken)
        // `x` means something to md only; elsewhere it is the unknown flag 1.6.18 rejects, and an unknown
        // flag stops the scan with its own message (after an earlier bad token's).
        #expect(parse("ms k 1 E123 x64", first: 3).0.error == .invalidFlag)
        #expect(parse("mg k Tabc x").0.error == .invalidFlag)
        #expect(parse("ma k x x").0.error == .invalidFlag)
    }

    @Test func base64EncodeRoundTrips() {
        let out = ByteBuffer(capacity: 64)
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            out.reset()
            Array(s.utf8).withUnsafeBytes { Base64.encode($0, to: out) }
            let enc = Array(out.readable)
            let expected = ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"][s.count]
            #expect(enc == Array(expected.utf8))
            if !s.isEmpty {
                let dec = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
                defer { dec.deallocate() }
                let n = enc.withUnsafeBytes { Base64.decode($0, into: dec) }
                #expect(Array(dec[0..<n]) == Array(s.utf8))
            }
        }
    }
}
