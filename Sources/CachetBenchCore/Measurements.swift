// What a run measures and the arithmetic on it: per-worker counters and latency histogram (HDR,
// nanoseconds), their merge, throughput and percentile math, and CPU time of this process and of the
// server (utime+stime from /proc/<pid>/stat). Pure functions here are unit-tested.

import Histogram
#if canImport(Glibc)
import Glibc
#endif

public struct Counters: Sendable, Equatable {
    public var requests = 0        // completed requests (a multiget counts once)
    public var sets = 0
    public var gets = 0
    public var getKeys = 0         // keys asked for by GETs
    public var hits = 0
    public var misses = 0
    public var setFailures = 0     // anything but STORED
    public var protocolErrors = 0  // unexpected reply lines
    public var verifyErrors = 0
    public var verified = 0        // hits compared byte for byte
    public var unverifiable = 0    // hits on keys this run never wrote and whose value has no header
    public var bytesOut = 0        // application bytes written (before TLS)
    public var bytesIn = 0         // application bytes read (after TLS)
    public var valueBytesIn = 0    // bytes of GET hit values
    public var handshakes = 0      // connections set up in --new-conn-per-request mode
    public var resumed = 0         // of those, TLS sessions resumed

    public init() {}

    public mutating func add(_ o: Counters) {
        requests += o.requests; sets += o.sets; gets += o.gets; getKeys += o.getKeys
        hits += o.hits; misses += o.misses; setFailures += o.setFailures; protocolErrors += o.protocolErrors
        verifyErrors += o.verifyErrors; verified += o.verified; unverifiable += o.unverifiable
        bytesOut += o.bytesOut; bytesIn += o.bytesIn; valueBytesIn += o.valueBytesIn
        handshakes += o.handshakes; resumed += o.resumed
    }
}

/// Latency in nanoseconds, 3 significant digits, 1 ns .. 1000 s.
public typealias LatencyHistogram = Histogram<UInt64>

public func makeLatencyHistogram() -> LatencyHistogram {
    LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 1_000_000_000_000, numberOfSignificantValueDigits: .three)
}

public struct LatencySummary: Sendable, Equatable {
    public var count: UInt64
    public var meanUs, p50Us, p90Us, p99Us, p999Us, maxUs: Double

    public init(_ h: LatencyHistogram) {
        count = h.totalCount
        let us = { (ns: UInt64) -> Double in Double(ns) / 1000 }
        if count == 0 {
            meanUs = 0; p50Us = 0; p90Us = 0; p99Us = 0; p999Us = 0; maxUs = 0
        } else {
            meanUs = h.mean / 1000
            p50Us = us(h.valueAtPercentile(50)); p90Us = us(h.valueAtPercentile(90))
            p99Us = us(h.valueAtPercentile(99)); p999Us = us(h.valueAtPercentile(99.9))
            maxUs = us(h.max)
        }
    }
}

/// Events per second over `ns` nanoseconds (0 when no time passed).
public func ratePerSecond(_ events: Int, overNanoseconds ns: UInt64) -> Double {
    ns == 0 ? 0 : Double(events) * 1e9 / Double(ns)
}

/// Megabytes (10^6 bytes, like `openssl speed`) per second.
public func megabytesPerSecond(_ bytes: Int, overNanoseconds ns: UInt64) -> Double {
    ratePerSecond(bytes, overNanoseconds: ns) / 1e6
}

/// Microseconds of CPU per event.
public func cpuMicrosPerEvent(cpuSeconds: Double, events: Int) -> Double {
    events == 0 ? 0 : cpuSeconds * 1e6 / Double(events)
}

@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// CPU seconds (user + system) used by this process so far.
public func selfCPUSeconds() -> Double {
    var ru = rusage()
    getrusage(RUSAGE_SELF.rawValue, &ru)
    return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
        + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
}

/// utime+stime of another process from /proc/<pid>/stat, in seconds; nil if it is gone.
public func processCPUSeconds(pid: Int32) -> Double? {
    let fd = open("/proc/\(pid)/stat", O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 4096)
    let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
    guard n > 0 else { return nil }
    return parseProcStatCPU(Array(buf[0..<n]), ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
}

/// Fields 14 (utime) and 15 (stime) of /proc/<pid>/stat; the command name may hold spaces and parens,
/// so counting starts after the last ')'.
public func parseProcStatCPU(_ stat: [UInt8], ticksPerSecond: Double) -> Double? {
    guard let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
    let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
    // after ")": field 3 (state) is fields[0]; utime = field 14 → fields[11], stime → fields[12]
    guard fields.count > 12, let u = Int(String(decoding: fields[11], as: UTF8.self)),
          let s = Int(String(decoding: fields[12], as: UTF8.self)) else { return nil }
    return Double(u + s) / ticksPerSecond
}

/// Everything one worker thread reports back.
public struct WorkerReport: Sendable {
    public var counters = Counters()
    public var latency = makeLatencyHistogram()
    public var failure: String? = nil
    public init() {}
}
