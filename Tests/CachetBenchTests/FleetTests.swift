// --servers: ketama placement checked against values computed independently (Tests/integration/ketama.py,
// itself checked against libmemcached through pylibmc and against nutcracker by test_fleet.py), one server
// behaving exactly as --host/--port, and a run over three fake servers putting every key where ketama says.
import Testing
@testable import CachetBenchCore

@Suite("--servers and ketama", .serialized)
struct FleetTests {
    static let keys = ["key:0", "key:1", "key:2", "key:3", "key:17", "key:99", "key:1000", "key:123456",
                       "user:42:profile", "a"]

    @Test func keyHashIsLibmemcachedsMd5() {
        // md5("a") = 0cc175b9…: its first four bytes read little-endian
        for (key, hash) in [("key:0", 0x82ab_86df as UInt32), ("a", 0xb975_c10c), ("", 0xd98c_1dd4)] {
            let bytes = Array(key.utf8)
            #expect(bytes.withUnsafeBytes { keyHash($0) } == hash, "\(key)")
        }
    }

    @Test func ringMatchesTheIndependentImplementation() {
        let ring = KetamaRing(servers: [40001, 40002, 40003].map { ServerAddress(host: "127.0.0.1", port: $0) })
        #expect(ring.values.count == 480)
        #expect(Array(ring.values.prefix(3)) == [13_231_954, 13_786_916, 22_255_389])
        #expect(Array(ring.owners.prefix(3)) == [0, 2, 1])
        #expect(Self.keys.map { ring.server(forKey: $0) } == [2, 1, 2, 1, 1, 2, 0, 0, 1, 1])
        // port 11211 is left out of the hashed name, as libmemcached and twemproxy do
        let fleet = KetamaRing(servers: [ServerAddress(host: "10.0.0.1", port: 11211),
                                         ServerAddress(host: "10.0.0.2", port: 11211),
                                         ServerAddress(host: "10.0.0.3", port: 11212)])
        #expect(Self.keys.map { fleet.server(forKey: $0) } == [1, 1, 2, 2, 0, 0, 1, 1, 0, 1])
    }

    @Test func placementTableAgreesWithTheRing() {
        let servers = [40001, 40002, 40003].map { ServerAddress(host: "127.0.0.1", port: $0) }
        let p = KeyPlacement(servers: servers, keys: 2000, prefix: Array("key:".utf8), width: 0)
        var counts = [0, 0, 0]
        for n in 0..<2100 {   // beyond 2000: hashed on demand (the --scan-ratio keys)
            #expect(p.server(ofKey: n) == p.ring.server(forKey: "key:\(n)"))
            counts[p.server(ofKey: n)] += 1
        }
        #expect(counts.allSatisfy { $0 > 500 }, "160 points each spread keys roughly evenly: \(counts)")
    }

    @Test func serversOptionParsing() throws {
        guard case .run(let o) = try parseBenchOptions(["--servers", "127.0.0.1:1,127.0.0.1:2,10.1.1.1:11211",
                                                        "--server-pid", "10,11,12"]) else {
            Issue.record("not a run"); return
        }
        #expect(o.targets.map(\.description) == ["127.0.0.1:1", "127.0.0.1:2", "10.1.1.1:11211"])
        #expect(o.serverPids == [10, 11, 12] && o.serverPid == 10)
        guard case .run(let plain) = try parseBenchOptions(["--port", "7"]) else { Issue.record("not a run"); return }
        #expect(plain.targets == [ServerAddress(host: "127.0.0.1", port: 7)])
        for bad in [["--servers", "127.0.0.1"], ["--servers", "127.0.0.1:0"], ["--servers", ":5"],
                    ["--servers", "127.0.0.1:5,"], ["--servers", "127.0.0.1:5,127.0.0.1:5"],
                    ["--servers", "127.0.0.1:5", "--port", "6"],
                    ["--servers", "127.0.0.1:5,127.0.0.1:6", "--multiget", "2"],
                    ["--servers", "127.0.0.1:5,127.0.0.1:6", "--new-conn-per-request"],
                    ["--server-pid", "1,x"]] {
            #expect(throws: OptionError.self, "\(bad)") { try parseBenchOptions(bad) }
        }
    }

    func options(_ args: [String]) -> BenchOptions {
        guard case .run(var o) = try! parseBenchOptions(args) else { fatalError("not a run") }
        o.quiet = true
        return o
    }

    @Test func oneServerIsTheSameRunAsHostAndPort() {
        let common = ["--keys", "50", "--ratio", "1:2", "--requests", "300", "--data-size-range", "5-60",
                      "--seed", "42", "--multiget", "2"]
        var results: [BenchResult] = []
        for target in [["--port"], ["--servers"]] {
            let server = FakeServer()
            server.start()
            let arg = target[0] == "--port" ? "\(server.port)" : "127.0.0.1:\(server.port)"
            results.append(runBenchmark(options(common + [target[0], arg])))
            server.stop()
        }
        for r in results { #expect(r.failure == nil) }
        let (a, b) = (results[0].counters, results[1].counters)
        #expect(a.requests == 300 && b.requests == 300)
        #expect(a.sets == b.sets && a.gets == b.gets && a.hits == b.hits && a.misses == b.misses)
        #expect(a.bytesOut == b.bytesOut && a.bytesIn == b.bytesIn)
        #expect(a.hits > 0)
    }

    @Test func threeServersHoldExactlyTheirKetamaKeys() {
        let servers = (0..<3).map { _ in FakeServer() }
        for s in servers { s.start() }
        let list = servers.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
        // one connection (the fake servers serve one client at a time), pipelined, verified
        let r = runBenchmark(options(["--servers", list, "--keys", "300", "--ratio", "1:1", "--requests", "3000",
                                      "--pipeline", "8", "--verify", "--data-size-range", "10-200"]))
        for s in servers { s.stop() }
        #expect(r.failure == nil)
        #expect(r.counters.requests == 3000 && r.counters.verifyErrors == 0 && r.counters.verified > 0)
        let ring = KetamaRing(servers: servers.map { ServerAddress(host: "127.0.0.1", port: $0.port) })
        for (i, s) in servers.enumerated() {
            #expect(s.store.count > 30, "server \(i) got \(s.store.count) keys: all three share the key space")
            for key in s.store.keys { #expect(ring.server(forKey: key) == i, "\(key) on server \(i)") }
        }
        #expect(servers.map(\.store.count).reduce(0, +) <= 300)
    }
}
