// swift-tools-version:6.0
// libFuzzer targets for Cachet. A separate package because an executable whose entry point is
// LLVMFuzzerTestOneInput links only when everything is built with `--sanitize=fuzzer`; the main
// package stays buildable without it. Build and run: `make fuzz` (Scripts/fuzz).
import PackageDescription

// The fuzz entry point replaces main(); libFuzzer's own main() drives it.
let fuzzFlags: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "CachetFuzz",
    dependencies: [
        .package(name: "Cachet", path: ".."),
    ],
    targets: [
        // Text command lines: LineScanner → TokenList → TextCommandParser.
        .executableTarget(name: "FuzzCommandLine",
                          dependencies: [.product(name: "MemcacheProtocol", package: "Cachet")],
                          swiftSettings: fuzzFlags),
        // Meta flag tokens (mg/ms/md/ma) as the meta command handlers hand them to MetaFlags.parse.
        .executableTarget(name: "FuzzMetaFlags",
                          dependencies: [.product(name: "MemcacheProtocol", package: "Cachet")],
                          swiftSettings: fuzzFlags),
        // memcached's UDP framing: request datagrams, and replies cut into datagrams.
        .executableTarget(name: "FuzzUDPFrame",
                          dependencies: [.product(name: "MemcacheProtocol", package: "Cachet")],
                          swiftSettings: fuzzFlags),
        // The command line of the server itself (memcached's options).
        .executableTarget(name: "FuzzSettings",
                          dependencies: [.product(name: "CachetServer", package: "Cachet")],
                          swiftSettings: fuzzFlags),
        // Binary protocol request headers (BinaryPacket.swift): parse, lengths, re-encoding.
        .executableTarget(name: "FuzzBinaryPacket",
                          dependencies: [.product(name: "MemcacheProtocol", package: "Cachet")],
                          swiftSettings: fuzzFlags),
        // A whole client byte stream through a real Connection on a worker's event base.
        .executableTarget(name: "FuzzRequest",
                          dependencies: [.product(name: "CachetServer", package: "Cachet"),
                                         .product(name: "MemcacheProtocol", package: "Cachet")],
                          swiftSettings: fuzzFlags),
    ],
    swiftLanguageModes: [.v6]
)
