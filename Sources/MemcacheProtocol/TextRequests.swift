// The classic text commands that act on one key, parsed into typed requests with memcached 1.6.18's
// error classification (proto_text.c process_update_command, process_delete_command,
// process_arithmetic_command, process_touch_command): which malformed line gets which CLIENT_ERROR, and
// whether `noreply` silences it. A handler runs the request; it never looks at tokens again.
// (The meta commands have theirs in MetaFlags.swift.)

/// Why a command line was refused; `reply` is memcached's text for it.
public enum TextRequestError: Error, Sendable {
    case badFormat, invalidDelta, invalidExptime, deleteUsage

    public var reply: StaticString {
        switch self {
        case .badFormat: return Reply.badFormat
        case .invalidDelta: return Reply.invalidDelta
        case .invalidExptime: return Reply.invalidExptime
        case .deleteUsage: return Reply.deleteUsage
        }
    }
}

/// A refused line and whether memcached honours `noreply` for its error (out_string does).
public struct TextRequestFailure: Error, Sendable {
    public let error: TextRequestError
    public let noreply: Bool
}

/// `set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]`,
/// `cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]`. The data block follows the line.
public struct StorageRequest: Sendable {
    public let key: Token
    public let flags: UInt32
    /// As sent; memcached turns a negative one into "already expired" (see `positiveExptime`).
    public let exptime: Int32
    public let valueLength: Int
    public let casUnique: UInt64
    public let noreply: Bool

    public static func parse(_ line: UnsafeRawBufferPointer, _ tokens: TokenList,
                             isCas: Bool) -> Result<StorageRequest, TextRequestFailure> {
        let nr = TextCommandParser.hasNoreply(line, tokens)
        let fail = Result<StorageRequest, TextRequestFailure>.failure(.init(error: .badFormat, noreply: nr))
        guard tokens[1].length <= keyMaxLength,
              let flags = Numbers.strtoul(tokens.bytes(line, 2)),
              let exptime = Numbers.strtol(tokens.bytes(line, 3)),
              let vlen = Numbers.strtol(tokens.bytes(line, 4)) else { return fail }
        var cas: UInt64 = 0
        if isCas {
            guard let c = Numbers.strtoull(tokens.bytes(line, 5)) else { return fail }
            cas = c
        }
        // memcached adds 2 for "\r\n" to an int: a length that would overflow is refused.
        if vlen < 0 || vlen > Int32.max - 2 { return fail }
        return .success(StorageRequest(key: tokens[1], flags: flags, exptime: exptime, valueLength: Int(vlen),
                                       casUnique: cas, noreply: nr))
    }
}

/// `delete <key> [0] [noreply]` (the `0` is the hold time of memcached 1.2, accepted only as zero).
public struct DeleteRequest: Sendable {
    public let key: Token
    public let noreply: Bool

    public static func parse(_ line: UnsafeRawBufferPointer, _ tokens: TokenList) -> Result<DeleteRequest, TextRequestFailure> {
        var nr = false
        let ntokens = tokens.ntokens
        if ntokens > 3 {
            let holdIsZero = tokens.bytes(line, 2).elementsEqual("0".utf8)
            nr = TextCommandParser.hasNoreply(line, tokens)
            let valid = (ntokens == 4 && (holdIsZero || nr)) || (ntokens == 5 && holdIsZero && nr)
            if !valid { return .failure(.init(error: .deleteUsage, noreply: nr)) }
        }
        if tokens[1].length > keyMaxLength { return .failure(.init(error: .badFormat, noreply: nr)) }
        return .success(DeleteRequest(key: tokens[1], noreply: nr))
    }
}

/// `incr|decr <key> <delta> [noreply]`.
public struct ArithmeticRequest: Sendable {
    public let key: Token
    public let delta: UInt64
    public let noreply: Bool

    public static func parse(_ line: UnsafeRawBufferPointer, _ tokens: TokenList) -> Result<ArithmeticRequest, TextRequestFailure> {
        let nr = TextCommandParser.hasNoreply(line, tokens)
        if tokens[1].length > keyMaxLength { return .failure(.init(error: .badFormat, noreply: nr)) }
        guard let delta = Numbers.strtoull(tokens.bytes(line, 2)) else {
            return .failure(.init(error: .invalidDelta, noreply: nr))
        }
        return .success(ArithmeticRequest(key: tokens[1], delta: delta, noreply: nr))
    }
}

/// `touch <key> <exptime> [noreply]`.
public struct TouchRequest: Sendable {
    public let key: Token
    public let exptime: Int32
    public let noreply: Bool

    public static func parse(_ line: UnsafeRawBufferPointer, _ tokens: TokenList) -> Result<TouchRequest, TextRequestFailure> {
        let nr = TextCommandParser.hasNoreply(line, tokens)
        if tokens[1].length > keyMaxLength { return .failure(.init(error: .badFormat, noreply: nr)) }
        guard let e = Numbers.strtol(tokens.bytes(line, 2)) else {
            return .failure(.init(error: .invalidExptime, noreply: nr))
        }
        return .success(TouchRequest(key: tokens[1], exptime: e, noreply: nr))
    }
}

/// memcached's EXPTIME_TO_POSITIVE_TIME: a negative exptime becomes an absolute time in 1970, i.e. already
/// expired (any absolute time before the server started counts as expired).
@inline(__always) public func positiveExptime(_ e: Int32) -> Int64 { e < 0 ? 2_592_001 : Int64(e) }

extension TokenList {
    /// Token `i`'s bytes in `line`.
    @inline(__always) public func bytes(_ line: UnsafeRawBufferPointer, _ i: Int) -> UnsafeRawBufferPointer {
        let t = self[i]
        return UnsafeRawBufferPointer(rebasing: line[t.start..<(t.start + t.length)])
    }
}

extension Token {
    @inline(__always) public func bytes(in line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: line[start..<(start + length)])
    }
}
