// memcached parses option values with atoi/atof/strtol and its own safe_strtol/safe_strtoul
// (util.c). Their quirks are visible to users (`-t abc` means 0 threads, `-p 4294978507` wraps to
// 11211, `ssl_wbuf_size=16k` is an error but `-m 64m` is 64), so Cachet calls the same libc
// functions instead of Swift's stricter Int(String).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum CNumeric {
    /// glibc's atoi: `(int) strtol(s, NULL, 10)` — leading junk gives 0, trailing junk is ignored,
    /// values beyond long are clamped and then truncated to int.
    static func atoi(_ s: String) -> Int32 {
        Int32(truncatingIfNeeded: strtol(s, nil, 10))
    }

    static func atof(_ s: String) -> Double { strtod(s, nil) }

    /// `strtol(optarg, NULL, 8)` as `-a` uses it, truncated to int like `settings.access`.
    static func octal(_ s: String) -> Int32 {
        Int32(truncatingIfNeeded: strtol(s, nil, 8))
    }

    /// memcached's safe_strtol: the whole token must be a number (a trailing space is tolerated),
    /// values above INT_MAX fail, ERANGE fails.
    static func safeStrtol(_ s: String) -> Int32? {
        s.withCString { str -> Int32? in
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let l = strtol(str, &end, 10)
            guard let end, errno != ERANGE, end != UnsafeMutablePointer(mutating: str) else { return nil }
            if l > Int(Int32.max) { return nil }
            if isspace(Int32(UInt8(bitPattern: end.pointee))) != 0 || end.pointee == 0 {
                return Int32(truncatingIfNeeded: l)
            }
            return nil
        }
    }

    /// memcached's safe_strtoul: like safe_strtol for uint32, and a '-' is refused when the
    /// value would look negative as a signed long (so `-1` fails).
    static func safeStrtoul(_ s: String) -> UInt32? {
        s.withCString { str -> UInt32? in
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let l = strtoul(str, &end, 10)
            guard let end, errno != ERANGE, end != UnsafeMutablePointer(mutating: str) else { return nil }
            if isspace(Int32(UInt8(bitPattern: end.pointee))) != 0 || end.pointee == 0 {
                if Int(bitPattern: l) < 0 && s.contains("-") { return nil }
                return UInt32(truncatingIfNeeded: l)
            }
            return nil
        }
    }
}
