// Incremental parsing of memcached text-protocol replies, straight from the read buffer (no copies,
// no allocation). A GET reply is consumed one VALUE block at a time so a 1 MB value never forces a
// re-scan; a block is only taken when all of its bytes (and the trailing \r\n) have arrived.

#if canImport(Glibc)
import Glibc
#endif

public enum GetStep: Equatable, Sendable {
    /// One VALUE block: key and data ranges are offsets into the buffer given to parseGetStep.
    case value(key: Range<Int>, data: Range<Int>, consumed: Int)
    case end(consumed: Int)
    case incomplete
    /// A line that is neither VALUE nor END (e.g. SERVER_ERROR …): consumed through its \n.
    case unexpected(consumed: Int)
}

public enum StoreReply: Equatable, Sendable {
    case stored, notStored, exists, notFound, serverError, clientError, error, other
}

@inline(__always)
func lineEnd(_ buf: UnsafeRawBufferPointer, from: Int) -> Int? {
    guard from < buf.count, let base = buf.baseAddress else { return nil }
    guard let p = memchr(base + from, 10, buf.count - from) else { return nil }
    return UnsafeRawPointer(p) - base   // index of '\n'
}

@inline(__always)
func hasPrefix(_ buf: UnsafeRawBufferPointer, _ at: Int, _ lit: StaticString) -> Bool {
    let n = lit.utf8CodeUnitCount
    guard buf.count - at >= n else { return false }
    return memcmp(buf.baseAddress! + at, lit.utf8Start, n) == 0
}

/// Parses the next piece of a GET/GETS reply from `buf`.
public func parseGetStep(_ buf: UnsafeRawBufferPointer) -> GetStep {
    guard let nl = lineEnd(buf, from: 0) else { return .incomplete }
    if hasPrefix(buf, 0, "END\r\n") { return .end(consumed: 5) }
    guard hasPrefix(buf, 0, "VALUE ") else { return .unexpected(consumed: nl + 1) }
    // VALUE <key> <flags> <bytes>[ <cas>]\r\n
    let lineStop = (nl > 0 && buf[nl - 1] == 13) ? nl - 1 : nl
    var i = 6
    let keyStart = i
    while i < lineStop, buf[i] != 32 { i += 1 }
    let keyEnd = i
    guard keyEnd > keyStart, i < lineStop else { return .unexpected(consumed: nl + 1) }
    i += 1
    while i < lineStop, buf[i] != 32 { i += 1 }          // flags
    guard i < lineStop else { return .unexpected(consumed: nl + 1) }
    i += 1
    var bytes = 0
    var digits = 0
    while i < lineStop, buf[i] != 32 {
        let c = buf[i]
        guard c >= 48, c <= 57, digits < 12 else { return .unexpected(consumed: nl + 1) }
        bytes = bytes * 10 + Int(c - 48); digits += 1; i += 1
    }
    guard digits > 0 else { return .unexpected(consumed: nl + 1) }
    let dataStart = nl + 1
    let need = dataStart + bytes + 2
    guard buf.count >= need else { return .incomplete }
    return .value(key: keyStart..<keyEnd, data: dataStart..<(dataStart + bytes), consumed: need)
}

/// Parses one reply line to a storage command; nil while the line is incomplete.
public func parseStoreReply(_ buf: UnsafeRawBufferPointer) -> (StoreReply, consumed: Int)? {
    guard let nl = lineEnd(buf, from: 0) else { return nil }
    let kind: StoreReply
    if hasPrefix(buf, 0, "STORED\r\n") { kind = .stored }
    else if hasPrefix(buf, 0, "NOT_STORED") { kind = .notStored }
    else if hasPrefix(buf, 0, "EXISTS") { kind = .exists }
    else if hasPrefix(buf, 0, "NOT_FOUND") { kind = .notFound }
    else if hasPrefix(buf, 0, "SERVER_ERROR") { kind = .serverError }
    else if hasPrefix(buf, 0, "CLIENT_ERROR") { kind = .clientError }
    else if hasPrefix(buf, 0, "ERROR") { kind = .error }
    else { kind = .other }
    return (kind, nl + 1)
}
