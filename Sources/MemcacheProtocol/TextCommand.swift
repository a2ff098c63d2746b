// Command recognition for memcached's text protocol, following process_command_ascii (proto_text.c
// 1.6.18): the first byte picks a family, then an exact name match and memcached's token-count checks
// (WANT_TOKENS*) decide between the command and a bare `ERROR`.

public enum TextCommand: Equatable, Sendable {
    case get, gets, gat, gats
    case set, add, replace, append, prepend, cas
    case delete, incr, decr, touch
    case stats, flushAll, version, quit, verbosity, shutdown, cacheMemlimit, refreshCerts
    /// Operational commands; their handlers check the token count themselves (as memcached does).
    case watch, lruCrawler, slabs, lru
    case metaNoop, metaGet, metaSet, metaDelete, metaArithmetic, metaDebug
    /// Known name but wrong number of tokens, unknown name, or a too-short line: reply `ERROR`.
    case error
    /// An unknown command whose last token starts with `HTTP/`: close without a reply.
    case httpClose
}

public enum TextCommandParser {
    @inline(__always)
    static func equals(_ line: UnsafeRawBufferPointer, _ t: Token, _ name: StaticString) -> Bool {
        guard t.length == name.utf8CodeUnitCount else { return false }
        let p = name.utf8Start
        for i in 0..<t.length where line[t.start + i] != p[i] { return false }
        return true
    }

    /// Identifies the command in `line` (already tokenized into `tokens`).
    public static func identify(_ line: UnsafeRawBufferPointer, _ tokens: TokenList) -> TextCommand {
        let n = tokens.ntokens
        guard n >= 2, tokens[0].length >= 2 else { return .error }
        let c = tokens[0]
        let first = line[c.start]
        @inline(__always) func want(_ lo: Int, _ hi: Int, _ cmd: TextCommand) -> TextCommand {
            (n < lo || n > hi) ? .error : cmd
        }
        @inline(__always) func wantOr(_ a: Int, _ b: Int, _ cmd: TextCommand) -> TextCommand {
            (n == a || n == b) ? cmd : .error
        }
        switch first {
        case UInt8(ascii: "m") where c.length == 2:
            switch line[c.start + 1] {
            case UInt8(ascii: "g"): return .metaGet
            case UInt8(ascii: "s"): return .metaSet
            case UInt8(ascii: "n"): return .metaNoop
            case UInt8(ascii: "d"): return .metaDelete
            case UInt8(ascii: "a"): return .metaArithmetic
            case UInt8(ascii: "e"): return .metaDebug
            default: return .error
            }
        case UInt8(ascii: "g"):
            if n < 3 { return .error }
            if equals(line, c, "get") { return .get }
            if equals(line, c, "gets") { return .gets }
            if equals(line, c, "gat") { return .gat }
            if equals(line, c, "gats") { return .gats }
            return .error
        case UInt8(ascii: "s"):
            if equals(line, c, "set") { return wantOr(6, 7, .set) }
            if equals(line, c, "stats") { return .stats }
            if equals(line, c, "shutdown") { return .shutdown }
            if equals(line, c, "slabs") { return .slabs }
            return .error
        case UInt8(ascii: "a"):
            if equals(line, c, "add") { return wantOr(6, 7, .add) }
            if equals(line, c, "append") { return wantOr(6, 7, .append) }
            return .error
        case UInt8(ascii: "c"):
            if equals(line, c, "cas") { return wantOr(7, 8, .cas) }
            if equals(line, c, "cache_memlimit") { return wantOr(3, 4, .cacheMemlimit) }
            return .error
        case UInt8(ascii: "i"):
            if equals(line, c, "incr") { return wantOr(4, 5, .incr) }
            return .error
        case UInt8(ascii: "d"):
            if equals(line, c, "delete") { return want(3, 5, .delete) }
            if equals(line, c, "decr") { return wantOr(4, 5, .decr) }
            return .error
        case UInt8(ascii: "t"):
            if equals(line, c, "touch") { return wantOr(4, 5, .touch) }
            return .error
        default:
            break
        }
        if equals(line, c, "prepend") { return wantOr(6, 7, .prepend) }
        if equals(line, c, "replace") { return wantOr(6, 7, .replace) }
        // The ancient `bget` (binary get): memcached still answers it exactly as `get`.
        if equals(line, c, "bget") { return n >= 3 ? .get : .error }
        if equals(line, c, "flush_all") { return want(2, 4, .flushAll) }
        if equals(line, c, "version") { return .version }
        if equals(line, c, "quit") { return .quit }
        if equals(line, c, "verbosity") { return wantOr(3, 4, .verbosity) }
        if equals(line, c, "refresh_certs") { return .refreshCerts }
        if equals(line, c, "watch") { return .watch }
        if equals(line, c, "lru_crawler") { return .lruCrawler }
        if equals(line, c, "lru") { return n >= 3 ? .lru : .error }
        // Unknown: a trailing HTTP/ token means a web client; memcached just closes.
        let last = tokens[tokens.count - 1]
        if last.length >= 5, line[last.start] == UInt8(ascii: "H"), line[last.start + 1] == UInt8(ascii: "T"),
           line[last.start + 2] == UInt8(ascii: "T"), line[last.start + 3] == UInt8(ascii: "P"),
           line[last.start + 4] == UInt8(ascii: "/") {
            return .httpClose
        }
        return .error
    }

    /// memcached's set_noreply_maybe: the token before the terminal one is literally `noreply`.
    public static func hasNoreply(_ line: UnsafeRawBufferPointer, _ tokens: TokenList) -> Bool {
        guard tokens.count >= 1 else { return false }
        return equals(line, tokens[tokens.count - 1], "noreply")
    }
}

/// memcached's KEY_MAX_LENGTH.
public let keyMaxLength = 250
