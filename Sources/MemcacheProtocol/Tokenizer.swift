// memcached's tokenize_command (proto_text.c), byte for byte: tokens split on single spaces (runs of
// spaces are skipped), at most `maxTokens - 1` real tokens, and the rest of the line kept as a
// "remainder" that multi-key gets tokenize again. A NUL byte ends the line, because memcached uses
// strlen on the NUL-terminated command.

/// A token: a range of the command line.
public struct Token: Sendable {
    public var start: Int
    public var length: Int
    public init(start: Int, length: Int) { self.start = start; self.length = length }
}

/// Up to 24 tokens (memcached's MAX_TOKENS), stored inline: no allocation per command.
public struct TokenList {
    public static let maxTokens = 24
    /// Real tokens (memcached's ntokens counts one more: the terminal token).
    public private(set) var count = 0
    /// Where unprocessed text starts when the line had more tokens than fit, else nil.
    public private(set) var remainder: Int? = nil
    private var storage: (Token, Token, Token, Token, Token, Token, Token, Token, Token, Token, Token, Token,
                          Token, Token, Token, Token, Token, Token, Token, Token, Token, Token, Token, Token)

    public init() {
        let z = Token(start: 0, length: 0)
        storage = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    }

    /// memcached's `ntokens`: real tokens plus the terminal one.
    @inline(__always) public var ntokens: Int { count + 1 }

    @inline(__always) public subscript(i: Int) -> Token {
        precondition(i >= 0 && i < TokenList.maxTokens)
        return withUnsafeBytes(of: storage) { $0.load(fromByteOffset: i &* MemoryLayout<Token>.stride, as: Token.self) }
    }

    @inline(__always) mutating func set(_ i: Int, _ t: Token) {
        withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: t, toByteOffset: i &* MemoryLayout<Token>.stride, as: Token.self) }
    }

    /// Tokenizes `line[from..<end]` (offsets into `line`).
    public mutating func tokenize(_ line: UnsafeRawBufferPointer, from: Int = 0) {
        count = 0
        remainder = nil
        var end = line.count
        // strlen semantics: a NUL ends the command.
        var i = from
        while i < end { if line[i] == 0 { end = i; break }; i += 1 }
        var s = from
        var e = from
        let maxReal = TokenList.maxTokens - 1
        while e < end {
            if line[e] == 0x20 {
                if s != e {
                    set(count, Token(start: s, length: e - s))
                    count += 1
                    if count == maxReal {
                        e += 1
                        s = e
                        remainder = e < end ? e : nil
                        return
                    }
                }
                s = e + 1
            }
            e += 1
        }
        if s != e {
            set(count, Token(start: s, length: e - s))
            count += 1
        }
    }
}
