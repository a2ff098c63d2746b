// memcached parses option values with atoi/atof/strtol and its own safe_strtol/safe_strtoul
// (util.c). Their quirks are visible to users (`-t abc` means 0 threads, `-p 4294978507` wraps to
// 11211, `ssl_wbuf_size=16k` is an error but `-m 64m` is 64), so Cachet calls the same libc
// functions instead of Swift's stricter Int(String).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MemcacheProtocol

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

    /// memcached's safe_strtol for option values (values above INT_MAX fail), MemcacheProtocol's copy.
    static func safeStrtol(_ s: String) -> Int32? {
        var s = s
        return s.withUTF8 { Numbers.strtol(UnsafeRawBufferPointer($0), rejectAboveIntMax: true) }
    }

    /// memcached's safe_strtoul for option values, MemcacheProtocol's copy.
    static func safeStrtoul(_ s: String) -> UInt32? {
        var s = s
        return s.withUTF8 { Numbers.strtoul(UnsafeRawBufferPointer($0)) }
    }
}
