// Fuzz target: the server's command line (SettingsParser: memcached's getopt_long loop, `-o` options,
// listener specs, the checks after the loop). The input is split into arguments at NUL bytes (a real
// argv cannot hold a NUL); bytes that are not UTF-8 become U+FFFD as CommandLine.arguments makes them.
// Checks: the parser always decides (run or exit), and an exit carries memcached's codes and a message.
import CachetServer
import Glibc

@inline(__always)
private func check(_ ok: Bool, _ what: StaticString) {
    if !ok {
        "invariant broken: \(what)\n".withCString { _ = write(2, $0, strlen($0)) }
        abort()
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSettings(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let args = input.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    switch SettingsParser.parse(args) {
    case .run(let s):
        check(s.numThreads > 0, "a runnable configuration has worker threads")
        check(s.itemSizeMax >= 1024, "a runnable configuration has a sane item size")
        _ = s.storeConfig
        _ = s.listenEntries
    case .exit(let code, let out, let err):
        // 0 for -h/-V/-i; memcached's EX_USAGE (64), EX_CONFIG (78) or 1 otherwise, always with a text.
        check(code == 0 || !err.isEmpty, "a failing exit says why on stderr")
        check(code != 0 || !out.isEmpty, "a successful exit printed something (help, version, license)")
        check(code >= 0 && code < 128, "an exit code fits a process status")
    }
    return 0
}
