// Percentiles, rates, CPU parsing, option parsing, value codec and reply parser — no sockets.
import Testing
@testable import CachetBenchCore

@Suite struct ArithmeticTests {
    @Test func histogramPercentiles() {
        var h = makeLatencyHistogram()
        for us in 1...1000 { _ = h.record(UInt64(us) * 1000) }   // 1 µs … 1000 µs, uniform
        let s = LatencySummary(h)
        #expect(s.count == 1000)
        // HDR with 3 significant digits: within 0.1 % of the exact order statistic
        #expect(abs(s.p50Us - 500) <= 0.5)
        #expect(abs(s.p90Us - 900) <= 0.9)
        #expect(abs(s.p99Us - 990) <= 1.0)
        #expect(abs(s.p999Us - 999) <= 1.0)
        #expect(abs(s.maxUs - 1000) <= 1.0)
        #expect(abs(s.meanUs - 500.5) <= 0.5)
    }

    @Test func mergedHistogramsKeepPercentiles() {
        var a = makeLatencyHistogram(), b = makeLatencyHistogram()
        for _ in 0..<99 { _ = a.record(100_000) }
        _ = b.record(10_000_000)
        a.add(b)
        let s = LatencySummary(a)
        #expect(abs(s.p50Us - 100) <= 0.1)
        #expect(abs(s.maxUs - 10_000) <= 10)
        #expect(s.p99Us < 101)
        #expect(s.p999Us > 9_990)
    }

    @Test func emptyHistogramIsZero() {
        let s = LatencySummary(makeLatencyHistogram())
        #expect(s.count == 0 && s.p99Us == 0 && s.maxUs == 0)
    }

    @Test func rates() {
        #expect(ratePerSecond(500_000, overNanoseconds: 2_000_000_000) == 250_000)
        #expect(ratePerSecond(10, overNanoseconds: 0) == 0)
        #expect(megabytesPerSecond(3_000_000, overNanoseconds: 1_500_000_000) == 2)
        #expect(abs(cpuMicrosPerEvent(cpuSeconds: 1.5, events: 300_000) - 5) < 1e-9)
        #expect(cpuMicrosPerEvent(cpuSeconds: 1, events: 0) == 0)
        var r = BenchResult(options: BenchOptions())
        r.counters.requests = 1000
        r.counters.bytesIn = 600_000
        r.counters.bytesOut = 400_000
        r.elapsedNs = 500_000_000
        r.serverCPUSeconds = 0.25
        #expect(r.opsPerSecond == 2000)
        #expect(r.mbPerSecond == 2)
        #expect(r.serverMicrosPerOp == 250)
    }

    @Test func procStatParsing() {
        let line = "1234 (mem cached) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 5 0 100 1000 200"
        #expect(parseProcStatCPU(Array(line.utf8), ticksPerSecond: 100) == 4.0)
        #expect(parseProcStatCPU(Array("garbage".utf8), ticksPerSecond: 100) == nil)
    }

    @Test func optionParsing() throws {
        guard case .run(let o) = try parseBenchOptions(["--port", "1234", "--ratio", "1:9", "--threads=2", "--conns", "25",
                                                        "--data-size-range", "10-100", "--time", "2.5", "--tls",
                                                        "--tls-version", "1.3", "--keys", "1m"]) else {
            Issue.record("expected a run"); return
        }
        #expect(o.port == 1234 && o.setRatio == 1 && o.getRatio == 9 && o.threads == 2 && o.conns == 25)
        #expect(o.dataSizeMin == 10 && o.dataSizeMax == 100 && o.time == 2.5 && o.tls && o.tlsVersion == "1.3")
        #expect(o.keys == 1_000_000 && o.totalConns == 50)
        #expect(throws: OptionError.self) { try parseBenchOptions(["--ratio", "x"]) }
        #expect(throws: OptionError.self) { try parseBenchOptions(["--resume"]) }
        #expect(throws: OptionError.self) { try parseBenchOptions(["--tls-version", "1.3"]) }
        #expect(try parseBenchOptions(["--help"]) == .help)
    }

    @Test func valueCodecRoundTrip() {
        let codec = ValueCodec(minSize: 5, maxSize: 4000)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 4000, alignment: 16)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 4000, alignment: 16)
        defer { buf.deallocate(); scratch.deallocate() }
        for key in [0, 7, 123_456] {
            for version: UInt32 in [1, 2, 99] {
                let n = codec.write(key: key, version: version, into: buf)
                #expect(n >= 5 && n <= 4000)
                let v = UnsafeRawBufferPointer(start: buf, count: n)
                #expect(codec.matches(key: key, version: version, value: v, scratch: scratch))
                #expect(!codec.matches(key: key, version: version + 1, value: v, scratch: scratch))
                #expect(!codec.matches(key: key + 1, version: version, value: v, scratch: scratch))
                if n > 20 { #expect(codec.headerVersion(key: key, value: v) == version) }
            }
        }
    }

    @Test func getReplyParsing() {
        let bytes = Array("VALUE key:1 0 3\r\nabc\r\nVALUE key:2 5 2 99\r\nxy\r\nEND\r\n".utf8)
        bytes.withUnsafeBytes { b in
            guard case .value(let k, let d, let used) = parseGetStep(b) else { Issue.record("value"); return }
            #expect(Array(b[k]) == Array("key:1".utf8) && Array(b[d]) == Array("abc".utf8) && used == 22)
            let rest = UnsafeRawBufferPointer(rebasing: b[used...])
            guard case .value(_, let d2, let used2) = parseGetStep(rest) else { Issue.record("value 2"); return }
            #expect(Array(rest[d2]) == Array("xy".utf8))
            #expect(parseGetStep(UnsafeRawBufferPointer(rebasing: rest[used2...])) == .end(consumed: 5))
            #expect(parseGetStep(UnsafeRawBufferPointer(rebasing: b[0..<20])) == .incomplete)
        }
        Array("SERVER_ERROR out of memory\r\n".utf8).withUnsafeBytes { b in
            #expect(parseGetStep(b) == .unexpected(consumed: 28))
            #expect(parseStoreReply(b)?.0 == .serverError)
        }
    }

    @Test func keysFormatAndPartition() {
        let p = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 1)
        defer { p.deallocate() }
        let n = formatKey(prefix: Array("key".utf8), width: 7, number: 42, into: p)
        let key = UnsafeRawBufferPointer(start: p, count: n)
        #expect(Array(key) == Array("key0000042".utf8))
        #expect(parseKeyNumber(prefix: Array("key".utf8), key: key) == 42)
        var rng = BenchRNG(seed: 1)
        var ch = KeyChooser(keys: 100, pattern: .random, partitionStride: 7, partition: 3)
        for _ in 0..<1000 { let k = ch.nextKey(&rng); #expect(k % 7 == 3 && k < 100) }
        var g = KeyChooser(keys: 1000, pattern: .gaussian)
        var mid = 0
        for _ in 0..<10_000 { let k = g.nextKey(&rng); #expect(k >= 0 && k < 1000); if k > 333 && k < 667 { mid += 1 } }
        #expect(mid > 6000)   // ±1σ holds ~68 %
    }
}
