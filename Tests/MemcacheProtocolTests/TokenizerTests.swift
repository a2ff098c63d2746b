import MemcacheProtocol
import Testing

private func tokens(_ s: String) -> (TokenList, [String]) {
    let bytes = Array(s.utf8)
    let t = TokenList()
    return bytes.withUnsafeBytes { raw in
        t.tokenize(raw)
        var out: [String] = []
        for i in 0..<t.count {
            let tok = t[i]
            out.append(String(decoding: raw[tok.start..<(tok.start + tok.length)], as: UTF8.self))
        }
        return (t, out)
    }
}

@Suite struct TokenizerTests {
    @Test func splitsOnSpacesSkippingRuns() {
        let (t, words) = tokens("set  k 0   0 5 ")
        #expect(words == ["set", "k", "0", "0", "5"])
        #expect(t.ntokens == 6)
        #expect(t.remainder == nil)
    }

    @Test func nulEndsTheLineLikeStrlen() {
        let (_, words) = tokens("get a\u{0}b c")
        #expect(words == ["get", "a"])
    }

    @Test func keepsRemainderAfter23Tokens() {
        let keys = (0..<30).map { "k\($0)" }
        let line = "get " + keys.joined(separator: " ")
        let (t, words) = tokens(line)
        #expect(t.count == 23)
        #expect(words.first == "get" && words.last == "k21")
        let bytes = Array(line.utf8)
        let rest = String(decoding: bytes[t.remainder!...], as: UTF8.self)
        #expect(rest == (22..<30).map { "k\($0)" }.joined(separator: " "))
    }

    @Test func emptyLineHasOnlyTheTerminalToken() {
        let (t, words) = tokens("")
        #expect(words.isEmpty)
        #expect(t.ntokens == 1)
    }
}

@Suite struct NumberTests {
    private func ul(_ s: String) -> UInt32? { Array(s.utf8).withUnsafeBytes { Numbers.strtoul($0) } }
    private func l(_ s: String) -> Int32? { Array(s.utf8).withUnsafeBytes { Numbers.strtol($0) } }
    private func ull(_ s: String) -> UInt64? { Array(s.utf8).withUnsafeBytes { Numbers.strtoull($0) } }

    @Test func unsigned32TruncatesLikeMemcached() {
        #expect(ul("4294967295") == 4294967295)
        #expect(ul("4294967296") == 0)
        #expect(ul("-1") == nil)
        #expect(ul("abc") == nil)
        #expect(ul("5x") == nil)
        #expect(ul("+7") == 7)
        #expect(ul("") == nil)
    }

    @Test func signed32() {
        #expect(l("-1") == -1)
        #expect(l("2592000") == 2592000)
        #expect(l("99999999999999999999") == nil)
        #expect(l("1.5") == nil)
    }

    @Test func unsigned64() {
        #expect(ull("18446744073709551615") == UInt64.max)
        #expect(ull("18446744073709551616") == nil)
        #expect(ull("-5") == nil)
        #expect(ull("000000000000000000000000000042") == 42)
    }
}

@Suite struct LineScannerTests {
    private func scan(_ s: [UInt8]) -> LineScan { s.withUnsafeBytes { LineScanner.scan($0) } }

    @Test func stripsCarriageReturnOnlyOnLongerLines() {
        #expect(scan(Array("get a\r\nx".utf8)) == .line(lineEnd: 5, next: 7))
        #expect(scan(Array("get a\nx".utf8)) == .line(lineEnd: 5, next: 6))
        #expect(scan(Array("\r\n".utf8)) == .line(lineEnd: 1, next: 2))
    }

    @Test func longLineWithoutNewlineClosesUnlessMultiget() {
        #expect(scan(Array(repeating: UInt8(ascii: "x"), count: 2049)) == .close)
        #expect(scan(Array(repeating: UInt8(ascii: "x"), count: 2048)) == .needMore)
        #expect(scan(Array("get ".utf8) + Array(repeating: UInt8(ascii: "k"), count: 3000)) == .needMore)
        #expect(scan(Array(repeating: UInt8(ascii: " "), count: 101) + Array("get ".utf8) + Array(repeating: UInt8(ascii: "k"), count: 3000)) == .close)
    }

    @Test func newlineBeyondMemcachedsReadBufferCloses() {
        // memcached never sees a newline further out than its 16 KB read buffer: such a line is closed.
        let long = Array(repeating: UInt8(ascii: "x"), count: 16384) + Array("\r\n".utf8)
        #expect(scan(long) == .close)
        let fits = Array(repeating: UInt8(ascii: "x"), count: 16383) + Array("\n".utf8)
        #expect(scan(fits) == .line(lineEnd: 16383, next: 16384))
        #expect(scan(Array("get ".utf8) + Array(repeating: UInt8(ascii: "k"), count: 20000) + Array("\r\n".utf8))
                == .line(lineEnd: 20004, next: 20006))
    }
}

@Suite struct CommandTests {
    private func identify(_ s: String) -> TextCommand {
        let bytes = Array(s.utf8)
        return bytes.withUnsafeBytes { raw in
            let t = TokenList()
            t.tokenize(raw)
            return TextCommandParser.identify(raw, t)
        }
    }

    @Test func tokenCountsFollowMemcached() {
        #expect(identify("set k 0 0 1") == .set)
        #expect(identify("bget k") == .get)   // the ancient binary get, still a get in 1.6.18
        #expect(identify("bget") == .error)
        #expect(identify("set k 0 0 1 noreply") == .set)
        #expect(identify("set k 0 0") == .error)
        #expect(identify("cas k 0 0 1") == .error)
        #expect(identify("cas k 0 0 1 5") == .cas)
        #expect(identify("incr n") == .error)
        #expect(identify("delete k 0 noreply") == .delete)
        #expect(identify("delete k 0 noreply x") == .error)
        #expect(identify("get") == .error)
        #expect(identify("GET a") == .error)
        #expect(identify("x") == .error)
        #expect(identify("flush_all 1 noreply") == .flushAll)
        #expect(identify("mn") == .metaNoop)
    }

    @Test func httpRequestCloses() {
        #expect(identify("GET / HTTP/1.1") == .httpClose)
        #expect(identify("GET / HTTP") == .error)
    }
}

@Suite struct ByteBufferTests {
    @Test func decimalAndGrowth() {
        let b = ByteBuffer(capacity: 64)
        b.appendDecimal(UInt64(0)); b.append(UInt8(ascii: " ")); b.appendDecimal(UInt64.max)
        b.append(UInt8(ascii: " ")); b.appendDecimal(-42); b.append(UInt8(ascii: " "))
        for _ in 0..<1000 { b.append("0123456789" as StaticString) }
        let s = String(decoding: b.readable, as: UTF8.self)
        #expect(s.hasPrefix("0 18446744073709551615 -42 0123"))
        #expect(b.count == 27 + 10_000)
        b.consume(b.count)
        #expect(b.isEmpty)
        b.releaseIfEmpty()
        #expect(b.capacity < 64)
    }
}
