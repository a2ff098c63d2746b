// The hit-ratio workload of cachet-bench: zipf key choice, one-hit-wonder keys, cache-aside options.
import Testing
@testable import CachetBenchCore

@Suite struct HitRatioModeTests {
    @Test func zipfFollowsItsLaw() {
        let n = 1000
        let table = ZipfTable(n: n, exponent: 1.0)
        var ch = KeyChooser(keys: n, pattern: .zipf, zipf: table)
        var rng = BenchRNG(seed: 3)
        var counts = [Int](repeating: 0, count: n)
        let draws = 200_000
        for _ in 0..<draws { counts[ch.nextKey(&rng)] += 1 }
        // With s = 1, rank 1 is asked for twice as often as rank 2 and ten times as often as rank 10;
        // its share is 1/H(1000) ≈ 13.4 %.
        let h = (1...n).reduce(0.0) { $0 + 1.0 / Double($1) }
        #expect(abs(Double(counts[0]) / Double(draws) - 1 / h) < 0.01)
        #expect(abs(Double(counts[0]) / Double(counts[1]) - 2) < 0.15)
        #expect(abs(Double(counts[0]) / Double(counts[9]) - 10) < 1.5)
        #expect(counts.allSatisfy { $0 >= 0 } && counts.reduce(0, +) == draws)
    }

    @Test func cacheAsideOptions() throws {
        guard case .run(let o) = try parseBenchOptions(["--cache-aside", "--key-pattern", "zipf", "--zipf", "0.8",
                                                        "--scan-ratio", "0.25"]) else {
            Issue.record("not a run")
            return
        }
        #expect(o.cacheAside && o.keyPattern == .zipf && o.zipfExponent == 0.8 && o.scanRatio == 0.25)
        for bad in [["--cache-aside", "--verify"], ["--cache-aside", "--multiget", "2"], ["--cache-aside", "--prefill"],
                    ["--scan-ratio", "1"], ["--scan-ratio", "-0.1"], ["--zipf", "0"], ["--key-pattern", "zipf", "--verify"]] {
            #expect(throws: OptionError.self) { try parseBenchOptions(bad) }
        }
    }
}
