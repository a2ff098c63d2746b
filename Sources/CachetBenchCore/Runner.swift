// Runs a benchmark: builds the shared plan, walks every worker through connect → prefill → measure
// on its own thread, samples CPU time of this process and of the server around the measured phase
// only, and merges the workers' counters and histograms into one result.

#if canImport(Glibc)
import Glibc
#endif

public struct BenchResult: Sendable {
    public var options: BenchOptions
    public var counters = Counters()
    public var latency = makeLatencyHistogram()
    public var elapsedNs: UInt64 = 0
    public var clientCPUSeconds = 0.0
    public var serverCPUSeconds: Double? = nil
    public var failure: String? = nil

    public init(options: BenchOptions) { self.options = options }

    public var opsPerSecond: Double { ratePerSecond(counters.requests, overNanoseconds: elapsedNs) }
    public var handshakesPerSecond: Double { ratePerSecond(counters.handshakes, overNanoseconds: elapsedNs) }
    /// Application bytes in + out per second (what crosses the TLS layer), 10^6 bytes.
    public var mbPerSecond: Double { megabytesPerSecond(counters.bytesIn + counters.bytesOut, overNanoseconds: elapsedNs) }
    public var mbInPerSecond: Double { megabytesPerSecond(counters.bytesIn, overNanoseconds: elapsedNs) }
    public var serverMicrosPerOp: Double? {
        serverCPUSeconds.map { cpuMicrosPerEvent(cpuSeconds: $0, events: counters.requests) }
    }
    public var hitRatio: Double {
        counters.hits + counters.misses == 0 ? 0 : Double(counters.hits) / Double(counters.hits + counters.misses)
    }
}

public func progress(_ o: BenchOptions, _ msg: String) {
    guard !o.quiet else { return }
    let line = "cachet-bench: \(msg)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

public func runBenchmark(_ o: BenchOptions) -> BenchResult {
    var result = BenchResult(options: o)
    signal(SIGPIPE, SIG_IGN)
    var addresses: [sockaddr_in] = []
    for t in o.targets {
        guard let addr = loopbackAddress(host: t.host, port: t.port) else {
            result.failure = "cannot use host '\(t.host)' (give a numeric IPv4 address)"
            return result
        }
        addresses.append(addr)
    }
    var tls: TLSClientContext? = nil
    if o.tls {
        do { tls = try TLSClientContext(o) } catch { result.failure = error.description; return result }
    }
    raiseFileLimit(needed: o.totalConns + 64)
    if o.targets.count > 1 { progress(o, "placing \(o.keys) keys on \(o.targets.count) servers (ketama)") }
    let plan = RequestPlan(options: o, addresses: addresses, tls: tls)
    let workers = (0..<o.threads).map { Worker(plan: plan, id: $0) }

    func phase(_ p: WorkerPhase, deadline: UInt64 = .max) -> String? {
        for w in workers { w.prepare(p, deadline: deadline) }
        runOnThreads(workers)
        return workers.compactMap { $0.report.failure }.first
    }

    if !o.newConnPerRequest {
        progress(o, "connecting \(o.totalConns) connection(s)\(o.tls ? " (TLS)" : "")")
        if let f = phase(.connect) { result.failure = f; return result }
    }
    if let hold = o.hold {
        let line = "HOLDING \(o.totalConns)\n"
        _ = line.withCString { write(1, $0, strlen($0)) }
        var ts = timespec(tv_sec: Int(hold), tv_nsec: Int((hold - Double(Int(hold))) * 1e9))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
        return result
    }
    if o.prefill {
        progress(o, "prefilling \(o.keys) keys")
        if let f = phase(.prefill) { result.failure = f; return result }
    }
    progress(o, "measuring " + (o.requests.map { "\($0) requests" } ?? "\(o.effectiveTime ?? 0) s"))
    let cpu0 = selfCPUSeconds()
    let srv0 = serversCPUSeconds(o.serverPids)
    let t0 = monotonicNanos()
    let deadline = o.effectiveTime.map { t0 + UInt64($0 * 1e9) } ?? .max
    let failure = phase(.measure, deadline: deadline)
    let t1 = workers.map(\.finishedNs).max() ?? monotonicNanos()
    let srv1 = serversCPUSeconds(o.serverPids)
    result.clientCPUSeconds = selfCPUSeconds() - cpu0
    if let a = srv0, let b = srv1 { result.serverCPUSeconds = b - a }
    if !o.serverPids.isEmpty && srv1 == nil {
        result.failure = "server pid \(o.serverPids.map(String.init).joined(separator: ",")) is gone"
    }
    result.elapsedNs = t1 - t0
    for w in workers {
        result.counters.add(w.report.counters)
        result.latency.add(w.report.latency)
    }
    if let f = failure { result.failure = f }
    return result
}

/// Each connection needs a descriptor: raise the soft limit as far as the hard limit allows.
func raiseFileLimit(needed: Int) {
    var rl = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return }
    if rl.rlim_cur < rlim_t(needed) {
        rl.rlim_cur = min(rl.rlim_max, max(rlim_t(needed), rl.rlim_cur))
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
}

/// The summed CPU time of the sampled servers (nil when none is sampled or one of them is gone).
func serversCPUSeconds(_ pids: [Int32]) -> Double? {
    guard !pids.isEmpty else { return nil }
    var sum = 0.0
    for p in pids {
        guard let s = processCPUSeconds(pid: p) else { return nil }
        sum += s
    }
    return sum
}
