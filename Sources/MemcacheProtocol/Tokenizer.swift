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

/// Up to 24 tokens (memcached's MAX_TOKENS). One list per worker thread is reused for every command,
/// so it is a class over a fixed buffer. Invariant: `storage` holds `maxTokens` tokens for the
/// object's lifetime; only the owning thread uses it.
public final class TokenList {
    public static let maxTokens = 24
    /// Real tokens (memcached's ntokens counts one more: the terminal token).
    public private(set) var count = 0
    /// Where unprocessed text starts when the line had more tokens than fit, else nil.
    public private(set) var remainder: Int? = nil
    private let storage: UnsafeMutablePointer<Token>

    public init() {
        storage = .allocate(capacity: TokenList.maxTokens)
        storage.initialize(repeating: Token(start: 0, length: 0), count: TokenList.maxTokens)
    }

    deinit { storage.deallocate() }

    /// memcached's `ntokens`: real tokens plus the terminal one.
    @inline(__always) public var ntokens: Int { count + 1 }

    @inline(__always) public subscript(i: Int) -> Token {
        precondition(i >= 0 && i < TokenList.maxTokens)
        return storage[i]
    }

    @inline(__always) func set(_ i: Int, _ t: Token) { storage[i] = t }

    /// Tokenizes `line[from..<end]` (offsets into `line`).
    public func tokenize(_ line: UnsafeRawBufferPointer, from: Int = 0) {
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
