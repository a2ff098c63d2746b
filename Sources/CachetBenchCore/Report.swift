// Output: a human-readable table and a JSON document (hand-written: no Foundation in this tool).

public func formatNumber(_ v: Double, decimals: Int = 2) -> String {
    guard v.isFinite else { return "null" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (v * scale).rounded() / scale
    var s = String(r)
    if s.hasSuffix(".0") { s.removeLast(2) }
    if s.contains("e") { s = String(Int64(r)) }
    return s
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += "\\u00" + (u.value < 16 ? "0" : "") + String(u.value, radix: 16) }
            else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

public func renderJSON(_ r: BenchResult) -> String {
    let o = r.options
    let c = r.counters
    let l = LatencySummary(r.latency)
    var f: [(String, String)] = []
    func num(_ k: String, _ v: Double) { f.append((k, formatNumber(v, decimals: 3))) }
    func int(_ k: String, _ v: Int) { f.append((k, String(v))) }
    f.append(("mode", jsonString(o.newConnPerRequest ? "handshake" : "load")))
    f.append(("servers", "[" + o.targets.map { jsonString($0.description) }.joined(separator: ", ") + "]"))
    f.append(("tls", o.tls ? "true" : "false"))
    f.append(("tls_version", o.tlsVersion.map(jsonString) ?? "null"))
    f.append(("resume", o.resume ? "true" : "false"))
    int("threads", o.threads); int("conns_per_thread", o.conns); int("pipeline", o.pipeline)
    f.append(("ratio", jsonString(o.cacheAside ? "cache-aside" : "\(o.setRatio):\(o.getRatio)")))
    num("zipf", o.keyPattern == .zipf ? o.zipfExponent : 0); num("scan_ratio", o.scanRatio)
    int("keys", o.keys); f.append(("key_pattern", jsonString(o.keyPattern.rawValue)))
    int("data_size_min", o.dataSizeMin); int("data_size_max", o.dataSizeMax); int("multiget", o.multiget)
    num("elapsed_s", Double(r.elapsedNs) / 1e9)
    int("requests", c.requests); int("sets", c.sets); int("gets", c.gets); int("get_keys", c.getKeys)
    int("hits", c.hits); int("misses", c.misses); num("hit_ratio", r.hitRatio)
    int("set_failures", c.setFailures); int("protocol_errors", c.protocolErrors)
    f.append(("verify", o.verify ? "true" : "false"))
    int("verified", c.verified); int("verify_errors", c.verifyErrors); int("unverifiable", c.unverifiable)
    int("bytes_out", c.bytesOut); int("bytes_in", c.bytesIn); int("value_bytes_in", c.valueBytesIn)
    num("ops_per_sec", r.opsPerSecond); num("mb_per_sec", r.mbPerSecond); num("mb_in_per_sec", r.mbInPerSecond)
    int("handshakes", c.handshakes); int("resumed", c.resumed); num("handshakes_per_sec", r.handshakesPerSecond)
    num("latency_mean_us", l.meanUs); num("latency_p50_us", l.p50Us); num("latency_p90_us", l.p90Us)
    num("latency_p99_us", l.p99Us); num("latency_p999_us", l.p999Us); num("latency_max_us", l.maxUs)
    num("client_cpu_s", r.clientCPUSeconds)
    f.append(("server_cpu_s", r.serverCPUSeconds.map { formatNumber($0, decimals: 4) } ?? "null"))
    f.append(("server_us_per_op", r.serverMicrosPerOp.map { formatNumber($0, decimals: 4) } ?? "null"))
    f.append(("failure", r.failure.map(jsonString) ?? "null"))
    return "{\n" + f.map { "  \(jsonString($0.0)): \($0.1)" }.joined(separator: ",\n") + "\n}\n"
}

public func renderTable(_ r: BenchResult) -> String {
    let o = r.options
    let c = r.counters
    let l = LatencySummary(r.latency)
    var rows: [(String, String)] = []
    let target = o.targets.map(\.description).joined(separator: ",") + (o.targets.count > 1 ? " (ketama)" : "")
    rows.append(("target", "\(target)\(o.tls ? " TLS \(o.tlsVersion ?? "auto")" : " plain")"))
    rows.append(("shape", "\(o.threads) thread(s) x \(o.conns) conn(s), pipeline \(o.pipeline), set:get \(o.setRatio):\(o.getRatio), multiget \(o.multiget)"))
    rows.append(("keys / values", "\(o.keys) \(o.keyPattern.rawValue), \(o.dataSizeMin == o.dataSizeMax ? "\(o.dataSizeMin)" : "\(o.dataSizeMin)-\(o.dataSizeMax)") bytes"))
    rows.append(("elapsed", formatNumber(Double(r.elapsedNs) / 1e9, decimals: 3) + " s"))
    rows.append(("requests", "\(c.requests) (\(c.sets) sets, \(c.gets) gets)"))
    rows.append(("ops/s", formatNumber(r.opsPerSecond, decimals: 1)))
    rows.append(("hits / misses", "\(c.hits) / \(c.misses) (\(formatNumber(r.hitRatio * 100, decimals: 1))% hit)"))
    rows.append(("MB/s (in+out)", formatNumber(r.mbPerSecond, decimals: 2)))
    if o.newConnPerRequest {
        rows.append(("handshakes/s", formatNumber(r.handshakesPerSecond, decimals: 1) + " (\(c.handshakes) total, \(c.resumed) resumed)"))
    }
    rows.append(("latency us", "p50 \(formatNumber(l.p50Us)) p90 \(formatNumber(l.p90Us)) p99 \(formatNumber(l.p99Us)) p99.9 \(formatNumber(l.p999Us)) max \(formatNumber(l.maxUs)) mean \(formatNumber(l.meanUs))"))
    if o.verify {
        rows.append(("verify", "\(c.verified) verified, \(c.verifyErrors) WRONG, \(c.unverifiable) unverifiable"))
    }
    if c.setFailures + c.protocolErrors > 0 {
        rows.append(("errors", "\(c.setFailures) set failures, \(c.protocolErrors) protocol errors"))
    }
    rows.append(("client CPU", formatNumber(r.clientCPUSeconds, decimals: 3) + " s"))
    if let s = r.serverCPUSeconds {
        rows.append(("server CPU", formatNumber(s, decimals: 3) + " s, \(formatNumber(r.serverMicrosPerOp ?? 0, decimals: 3)) us/op"))
    }
    if let f = r.failure { rows.append(("FAILURE", f)) }
    let w = rows.map(\.0.count).max() ?? 0
    return rows.map { $0.0 + String(repeating: " ", count: w - $0.0.count) + " | " + $0.1 }.joined(separator: "\n") + "\n"
}
