// memcached's safe_strtoul / safe_strtol / safe_strtoull / safe_strtod (util.c), the one copy Cachet has: the
// protocol parses tokens with them, the option parser (Settings/CNumeric.swift) option values, and the store
// (CacheStore/Delta.swift) the values incr/decr change. They are thin
// checks around libc's strtoul family, so the exact edge cases (leading whitespace, '+', ERANGE, "-1" as
// unsigned, trailing whitespace) come from calling the same libc functions on a NUL-terminated copy.
import Glibc

public enum Numbers {
    @inline(__always)
    static func withCString<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafePointer<CChar>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { tmp in
            if bytes.count > 0 {
                UnsafeMutableRawPointer(tmp.baseAddress!).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
            tmp[bytes.count] = 0
            return body(tmp.baseAddress!)
        }
    }

    @inline(__always)
    static func isSpace(_ c: CChar) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0d) }

    /// Fast path for the common case: 1–9 plain ASCII digits.
    @inline(__always)
    static func plainDigits(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        let n = bytes.count
        if n == 0 || n > 9 { return nil }
        var v: UInt64 = 0
        for b in bytes {
            let d = b &- 48
            if d > 9 { return nil }
            v = v &* 10 &+ UInt64(d)
        }
        return v
    }

    /// safe_strtoull: unsigned 64-bit; rejects a '-' when the value would look negative as signed.
    public static func strtoull(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        if let v = plainDigits(bytes) { return v }
        return withCString(bytes) { s in
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let v = Glibc.strtoull(s, &end, 10)
            guard let e = end, errno != ERANGE, e != UnsafeMutablePointer(mutating: s) else { return nil }
            if isSpace(e.pointee) || e.pointee == 0 {
                // memcached: strchr(str, '-') over the whole string
                if Int64(bitPattern: UInt64(v)) < 0 && strchr(s, Int32(UInt8(ascii: "-"))) != nil { return nil }
                return UInt64(v)
            }
            return nil
        }
    }

    /// safe_strtoul: parses as unsigned long (64-bit here) and truncates to 32 bits, as memcached does.
    public static func strtoul(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
        if let v = plainDigits(bytes) { return UInt32(truncatingIfNeeded: v) }
        return withCString(bytes) { s in
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let v = Glibc.strtoul(s, &end, 10)
            guard let e = end, errno != ERANGE, e != UnsafeMutablePointer(mutating: s) else { return nil }
            if isSpace(e.pointee) || e.pointee == 0 {
                if Int(bitPattern: v) < 0 && strchr(s, Int32(UInt8(ascii: "-"))) != nil { return nil }
                return UInt32(truncatingIfNeeded: v)
            }
            return nil
        }
    }

    /// safe_strtol: parses a long and stores it into an int32 (memcached truncates the same way).
    /// `rejectAboveIntMax`: option values above INT_MAX are refused (Cachet's option parser always has);
    /// protocol tokens are truncated as memcached 1.6.18 does (`slabs reassign 4294967297 2` acts on class 1).
    public static func strtol(_ bytes: UnsafeRawBufferPointer, rejectAboveIntMax: Bool = false) -> Int32? {
        if let v = plainDigits(bytes) { return Int32(truncatingIfNeeded: v) }
        return withCString(bytes) { s in
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let v = Glibc.strtol(s, &end, 10)
            guard let e = end, errno != ERANGE, e != UnsafeMutablePointer(mutating: s) else { return nil }
            if rejectAboveIntMax && v > Int(Int32.max) { return nil }
            if isSpace(e.pointee) || e.pointee == 0 {
                return Int32(truncatingIfNeeded: v)
            }
            return nil
        }
    }

    /// safe_strtod: a double; the whole token must parse (trailing whitespace allowed), ERANGE fails.
    public static func strtod(_ bytes: UnsafeRawBufferPointer) -> Double? {
        withCString(bytes) { s in
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let v = Glibc.strtod(s, &end)
            guard let e = end, errno != ERANGE, e != UnsafeMutablePointer(mutating: s) else { return nil }
            return isSpace(e.pointee) || e.pointee == 0 ? v : nil
        }
    }
}
