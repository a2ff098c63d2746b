// swift-tools-version:6.0
// Cachet: a memcached-compatible cache server with TLS built in. Module layout: ARCHITECTURE.md (in this repo).
import PackageDescription

let releaseFlags: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Cachet",
    products: [
        .executable(name: "cachet", targets: ["cachet"]),
        .executable(name: "cachet-bench", targets: ["cachet-bench"]),
        // For the libFuzzer targets in Fuzz/ (their own package: a fuzz entry point links only with
        // -sanitize=fuzzer), which drive the real parsing and request code.
        .library(name: "MemcacheProtocol", targets: ["MemcacheProtocol"]),
        .library(name: "CachetServer", targets: ["CachetServer"]),
    ],
    dependencies: [
        // cachet-bench only: HDR latency histogram (offline mirror, pinned to 0.2.0 in practice).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(name: "CLibevent", pkgConfig: "libevent", providers: [.apt(["libevent-dev"])]),
        // `-S`: SASL authentication of binary-protocol clients, with Cyrus SASL as memcached.
        .systemLibrary(name: "CSasl", pkgConfig: "libsasl2", providers: [.apt(["libsasl2-dev"])]),
        // `-o hash_algorithm=xxh3`.
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        // DWARF 4: valgrind 3.19 (Debian 12, used by `make bench`'s callgrind rows) cannot read clang's
        // default DWARF 5 for C code and refuses to run the binary.
        .target(name: "COpenSSL", cSettings: [.unsafeFlags(["-gdwarf-4"])],
                linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .target(name: "CachetSync", swiftSettings: releaseFlags),
        .target(name: "CItemFlags", cSettings: [.unsafeFlags(["-gdwarf-4"])]),
        .target(name: "CStoreLock", cSettings: [.unsafeFlags(["-gdwarf-4"])]),
        // CacheStore reads incr/decr values with MemcacheProtocol's safe_strtoull (as memcached's do_add_delta).
        .target(name: "CacheStore", dependencies: ["CachetSync", "CItemFlags", "CStoreLock", "MemcacheProtocol", "CXXHash"], swiftSettings: releaseFlags),
        .target(name: "MemcacheProtocol", swiftSettings: releaseFlags),
        .target(name: "CachetTLS", dependencies: ["COpenSSL", "CachetSync"], swiftSettings: releaseFlags),
        .target(name: "CachetServer",
                dependencies: ["CLibevent", "COpenSSL", "CSasl", "CacheStore", "MemcacheProtocol", "CachetTLS",
                               "CachetSync"],
                swiftSettings: releaseFlags),
        .executableTarget(name: "cachet", dependencies: ["CachetServer"], swiftSettings: releaseFlags),
        .target(name: "CBenchEpoll"),
        .target(name: "CachetBenchCore",
                dependencies: ["COpenSSL", "CBenchEpoll", .product(name: "Histogram", package: "hdrhistogram-swift")],
                exclude: ["README.md"], swiftSettings: releaseFlags),
        .executableTarget(name: "cachet-bench", dependencies: ["CachetBenchCore"], swiftSettings: releaseFlags),
        .testTarget(name: "CacheStoreTests", dependencies: ["CacheStore", "CStoreLock"]),
        .testTarget(name: "MemcacheProtocolTests", dependencies: ["MemcacheProtocol"]),
        .target(name: "CachetTestSupport", path: "Tests/CachetTestSupport"),
        .testTarget(name: "CachetServerTests", dependencies: ["CachetServer", "CachetTestSupport"]),
        .testTarget(name: "CachetTLSTests", dependencies: ["CachetTLS", "COpenSSL", "CachetTestSupport"]),
        .testTarget(name: "CachetBenchTests", dependencies: ["CachetBenchCore", "CachetTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
