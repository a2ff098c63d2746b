// Fuzz target: meta command flags. The first line of the input is tokenized and, when it passes the
// checks the mg/md/ma handlers make before parsing (at least a key, key ≤ 250 bytes, ≤ 19 real
// tokens), its flags are parsed from token 2 (mg/md/ma) and from token 3 (ms, whose token 2 is the
// value length), with a 256-byte key scratch as a worker has. Checks: a parse that reports no error
// saw every token's flag exactly once and only known flags; a decoded binary key fits the scratch.
import Glibc
import MemcacheProtocol

nonisolated(unsafe) private let tokens = TokenList()
/// As large as CommandScratch.metaKey (CachetServer).
nonisolated(unsafe) private let keyScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)

@inline(__always)
private func check(_ ok: Bool, _ what: StaticString) {
    if !ok {
        "invariant broken: \(what)\n".withCString { _ = write(2, $0, strlen($0)) }
        abort()
    }
}

/// The flag letters memcached 1.6.18 knows plus Cachet's superset (E, x).
private let knownFlags: Set<UInt8> = Set("bNTRlhOPLkstcfvuqFCExMJDI".utf8)

private func parseAndCheck(_ line: UnsafeRawBufferPointer, first: Int) {
    let f = MetaFlags.parse(line, tokens, first: first, keyScratch: keyScratch)
    if f.keyBinary && f.error == nil {
        check(f.keyLength > 0 && f.keyLength <= keyScratch.count, "a decoded key fits the scratch")
    }
    guard f.error == nil else { return }
    var seen = Set<UInt8>()
    for i in first..<max(first, tokens.count) {
        let c = line[tokens[i].start]
        check(knownFlags.contains(c), "no error means only known flags")
        check(seen.insert(c).inserted, "no error means no repeated flag")
        check(f.has(c), "every flag given is reported as seen")
    }
    if f.has(UInt8(ascii: "q")) { check(f.noReply, "q sets noReply") }
    if f.has(UInt8(ascii: "v")) { check(f.value, "v sets value") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetaFlags(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    var end = input.count
    if let nl = memchr(data, 0x0a, size) { end = UnsafeRawPointer(nl) - input.baseAddress! }
    let line = UnsafeRawBufferPointer(rebasing: input[0..<end])
    tokens.tokenize(line)
    // The handlers' prologue (metaPrologue / ms's own): only such lines reach MetaFlags.parse.
    guard tokens.ntokens >= 3, tokens[1].length <= keyMaxLength, tokens.ntokens <= metaMaxTokens else { return 0 }
    parseAndCheck(line, first: 2)
    if tokens.ntokens >= 4 { parseAndCheck(line, first: 3) }
    return 0
}
