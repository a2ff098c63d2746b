// The flag tokens of a meta command (mg/ms/md/ma), parsed like memcached 1.6.18's _meta_flag_preparse
// (proto_text.c): one pass over the tokens after the key (or after ms's datalen), each token's first
// byte is the flag, token flags carry their argument in the rest of the token (`T30`, `Oabc`).
//
// Error precedence is memcached's and visible on the wire: a repeated flag or an unknown flag stops the
// scan at once; every other bad token only marks the command failed and the scan goes on, so the *last*
// message set wins (`mg k Tx Ny` → the N message), and a bad `F` sets no message of its own (the caller's
// default, `bad command line format`). md and ma print `invalid or duplicate flag` for all of them.
//
// Superset (not in 1.6.18, which answers `CLIENT_ERROR invalid flag`): `E<cas>` (1.6.27+, explicit new
// CAS) for every command, and `x` (1.6.21+: drop the value but keep the item) for md only, where it
// means something. Elsewhere `x` stays the unknown flag 1.6.18 rejects.

/// Why a meta command's flags were rejected; `MetaReply.message(for:)` has memcached's text.
public enum MetaParseError: Sendable, Equatable {
    case duplicateFlag, invalidFlag
    /// A failure that sets no message (bad `F`): the command's default text.
    case badFormat
    case badToken, incorrectMLength, invalidInitial, invalidDelta, decodingKey
}

/// Parsed meta flags: a fixed-size value, no allocation. Time values are the token's number after
/// memcached's EXPTIME_TO_POSITIVE_TIME (negative → already expired); the caller applies realtime().
public struct MetaFlags: Sendable {
    private var seenLo: UInt64 = 0
    private var seenHi: UInt64 = 0
    public var error: MetaParseError? = nil
    public var noUpdate = false
    /// memcached `of.locked`: the item is looked up without the LRU bump, which runs after the reply.
    public var locked = false
    public var vivify = false
    public var value = false
    public var setStale = false
    public var noReply = false
    public var hasCas = false
    public var newTTL = false
    public var keyBinary = false
    /// Superset `E<cas>`: the CAS the modified item gets instead of a fresh unique.
    public var hasNewCas = false
    /// Superset `x` (md): keep the item, empty its value.
    public var removeValue = false
    public var mode: UInt8 = 0
    public var exptime: Int64 = 0
    public var autovivExptime: Int64 = 0
    public var recacheTime: Int64 = 0
    public var clientFlags: UInt32 = 0
    public var casIn: UInt64 = 0
    public var newCas: UInt64 = 0
    /// ma: delta defaults to 1, initial value to 0.
    public var delta: UInt64 = 1
    public var initial: UInt64 = 0
    /// With `b`: length of the decoded key in the caller's scratch buffer.
    public var keyLength = 0

    public init() {}

    /// True when flag `c` appeared.
    @inline(__always) public func has(_ c: UInt8) -> Bool {
        c < 64 ? (seenLo >> UInt64(c)) & 1 != 0 : (seenHi >> UInt64(c & 63)) & 1 != 0
    }

    @inline(__always) private mutating func markSeen(_ c: UInt8) -> Bool {
        if has(c) { return false }
        if c < 64 { seenLo |= 1 << UInt64(c) } else { seenHi |= 1 << UInt64(c & 63) }
        return true
    }

    /// memcached's EXPTIME_TO_POSITIVE_TIME: a negative TTL becomes REALTIME_MAXDELTA + 1 (long expired).
    @inline(__always) static func positive(_ v: Int32) -> Int64 { v < 0 ? 2_592_001 : Int64(v) }

    /// Parses tokens `first..<tokens.count` of `line`. With `b`, the key (token 1) is decoded into
    /// `keyScratch` (≥ 250 bytes), as memcached decodes it in place; the request line stays untouched so a
    /// command that waits for its data block can be parsed again.
    public static func parse(_ line: UnsafeRawBufferPointer, _ tokens: TokenList, first: Int,
                             keyScratch: UnsafeMutableRawBufferPointer, allowRemoveValue: Bool = false) -> MetaFlags {
        var f = MetaFlags()
        var i = first
        while i < tokens.count {
            let t = tokens[i]
            let o = line[t.start]
            if o >= 127 || !f.markSeen(o) {
                f.error = .duplicateFlag
                return f
            }
            let arg = UnsafeRawBufferPointer(rebasing: line[(t.start + 1)..<(t.start + t.length)])
            switch o {
            case UInt8(ascii: "b"):
                let k = tokens[1]
                let n = Base64.decode(UnsafeRawBufferPointer(rebasing: line[k.start..<(k.start + k.length)]),
                                      into: keyScratch)
                if n == 0 { f.error = .decodingKey }
                f.keyLength = n
                f.keyBinary = true
            case UInt8(ascii: "N"):
                f.locked = true
                f.vivify = true
                if let v = Numbers.strtol(arg) { f.autovivExptime = positive(v) } else { f.error = .badToken }
            case UInt8(ascii: "T"):
                f.locked = true
                if let v = Numbers.strtol(arg) { f.exptime = positive(v); f.newTTL = true } else { f.error = .badToken }
            case UInt8(ascii: "R"):
                f.locked = true
                if let v = Numbers.strtol(arg) { f.recacheTime = positive(v) } else { f.error = .badToken }
            case UInt8(ascii: "l"), UInt8(ascii: "h"):
                f.locked = true   // the LRU bump waits until fetched/last-access were read
            case UInt8(ascii: "O"), UInt8(ascii: "P"), UInt8(ascii: "L"), UInt8(ascii: "k"), UInt8(ascii: "s"),
                 UInt8(ascii: "t"), UInt8(ascii: "c"), UInt8(ascii: "f"):
                break
            case UInt8(ascii: "v"): f.value = true
            case UInt8(ascii: "u"): f.noUpdate = true
            case UInt8(ascii: "q"): f.noReply = true
            case UInt8(ascii: "F"):
                if let v = Numbers.strtoul(arg) { f.clientFlags = v } else if f.error == nil { f.error = .badFormat }
            case UInt8(ascii: "C"):
                if let v = Numbers.strtoull(arg) { f.casIn = v; f.hasCas = true } else { f.error = .badToken }
            case UInt8(ascii: "E"):   // superset, 1.6.27+
                if let v = Numbers.strtoull(arg) { f.newCas = v; f.hasNewCas = true } else { f.error = .badToken }
            case UInt8(ascii: "x") where allowRemoveValue:   // superset (md), 1.6.21+
                f.removeValue = true
            case UInt8(ascii: "M"):
                if t.length != 2 { f.error = .incorrectMLength } else { f.mode = line[t.start + 1] }
            case UInt8(ascii: "J"):
                if let v = Numbers.strtoull(arg) { f.initial = v } else { f.error = .invalidInitial }
            case UInt8(ascii: "D"):
                if let v = Numbers.strtoull(arg) { f.delta = v } else { f.error = .invalidDelta }
            case UInt8(ascii: "I"):
                f.setStale = true
            default:
                f.error = .invalidFlag
                return f
            }
            i += 1
        }
        return f
    }
}

/// memcached's MFLAG_MAX_OPT_LENGTH (ntokens incl. the terminal one) and MFLAG_MAX_OPAQUE_LENGTH.
public let metaMaxTokens = 20
public let metaMaxOpaqueLength = 32
