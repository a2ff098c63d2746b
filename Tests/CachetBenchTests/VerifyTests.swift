// --verify end to end against a fake server: a correct one passes, one that returns a wrong value fails.
import Testing
@testable import CachetBenchCore

@Suite("verify against a fake server", .serialized)
struct VerifyTests {
    func options(port: UInt16) -> BenchOptions {
        var o = BenchOptions()
        o.port = port
        o.keys = 8
        o.verify = true
        o.setRatio = 1
        o.getRatio = 1
        o.requests = 200
        o.pipeline = 4
        o.dataSizeMin = 10
        o.dataSizeMax = 300
        o.multiget = 2
        o.quiet = true
        return o
    }

    @Test func honestServerPassesVerify() {
        let server = FakeServer(corruptGets: false)
        server.start()
        defer { server.stop() }
        let r = runBenchmark(options(port: server.port))
        #expect(r.failure == nil)
        #expect(r.counters.requests == 200)
        #expect(r.counters.hits > 0)
        #expect(r.counters.verified == r.counters.hits)
        #expect(r.counters.verifyErrors == 0)
    }

    @Test func wrongValueIsCaught() {
        let server = FakeServer(corruptGets: true)
        server.start()
        defer { server.stop() }
        let r = runBenchmark(options(port: server.port))
        #expect(r.failure == nil)
        #expect(r.counters.hits > 0)
        #expect(r.counters.verifyErrors == r.counters.hits)
        #expect(r.counters.verified == 0)
    }

    @Test func silentServerFailsInsteadOfHanging() {
        let server = FakeServer(ignoreGets: true)
        server.start()
        defer { server.stop() }
        var o = options(port: server.port)
        o.verify = false
        o.stallTimeout = 0.3
        let r = runBenchmark(o)
        #expect(r.failure?.contains("no progress for") == true && r.failure?.contains("outstanding") == true)
    }
}
