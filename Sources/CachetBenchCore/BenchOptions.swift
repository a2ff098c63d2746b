// Command-line options of cachet-bench and their hand-written parser (memtier_benchmark-like names).
// Parsing is pure (no I/O) so tests can check it; errors carry the message printed to the user.

public enum KeyPattern: String, Sendable {
    case random, sequential, gaussian, zipf
}

public struct BenchOptions: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 11211
    /// --servers: several servers, keys spread over them by ketama (empty: the one --host/--port names).
    public var servers: [ServerAddress] = []
    public var tls = false
    public var caCert: String? = nil
    public var cert: String? = nil
    public var key: String? = nil
    public var tlsVersion: String? = nil   // "1.2" | "1.3" | nil (negotiate)
    public var ciphers: String? = nil
    public var sigalgs: String? = nil
    public var groups: String? = nil
    public var threads = 1
    public var conns = 1                   // per thread
    public var pipeline = 1
    public var setRatio = 1
    public var getRatio = 10
    public var keys = 10_000
    public var keyPattern: KeyPattern = .random
    public var keyPrefix = "key:"
    public var keyWidth = 0                // zero-pad the key number to this many digits
    public var dataSizeMin = 32
    public var dataSizeMax = 32
    public var multiget = 1
    public var time: Double? = nil         // seconds
    public var requests: Int? = nil        // total over all connections
    public var prefill = false
    public var verify = false
    public var newConnPerRequest = false
    public var resume = false
    public var json = false
    public var jsonFile: String? = nil
    public var serverPids: [Int32] = []    // sample their /proc/<pid>/stat around the measured phase
    public var seed: UInt64 = 0x5eed_cafe
    public var quiet = false
    public var stallTimeout = 10.0         // fail when a connection waits this long for a reply
    public var hold: Double? = nil         // connect everything, print "HOLDING <n>", stay idle S seconds
    public var zipfExponent = 0.9          // --key-pattern zipf: P(rank r) ∝ 1 / r^s
    public var scanRatio = 0.0             // share of GETs that go to keys asked for only once (one-hit wonders)
    public var cacheAside = false          // GET every key; on a miss, SET it (a cache in front of a database)

    public init() {}

    public var totalConns: Int { threads * conns }
    /// The servers requests go to: --servers, or the one --host/--port names.
    public var targets: [ServerAddress] { servers.isEmpty ? [ServerAddress(host: host, port: port)] : servers }
    /// The first --server-pid (kept for callers that sample one server).
    public var serverPid: Int32? {
        get { serverPids.first }
        set { serverPids = newValue.map { [$0] } ?? [] }
    }
    /// Default run length when neither --time nor --requests is given.
    public var effectiveTime: Double? { requests == nil ? (time ?? 10) : time }
}

public struct OptionError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

public enum ParseOutcome: Equatable, Sendable {
    case run(BenchOptions)
    case help
}

public let benchUsage = """
usage: cachet-bench [options]
  --host H                 server address (default 127.0.0.1)
  --port P                 server port (default 11211)
  --servers H:P,H:P,...    several servers (instead of --host/--port): every connection opens one socket to
                           each and sends each key to the server libmemcached's ketama picks (md5, 160 points
                           per server, as twemproxy with hash md5); --pipeline counts over all of them
  --tls                    speak TLS (OpenSSL); --cert F --key F for mutual TLS, --cacert F to verify the server
  --tls-version 1.2|1.3    pin the protocol version; --ciphers LIST (TLS <= 1.2 list / 1.3 suites)
  --sigalgs LIST           signature algorithms offered (e.g. ecdsa_secp256r1_sha256): picks the server certificate
  --groups LIST            key-exchange groups offered, in order (e.g. X25519:P-256)
  --threads N              worker threads, each with its own epoll loop (default 1)
  --conns N                connections per thread (default 1)
  --pipeline N             outstanding requests per connection (default 1)
  --ratio S:G              set:get mix (default 1:10)
  --keys N                 key space size (default 10000)
  --key-pattern P          random | sequential | gaussian | zipf (default random); --zipf S sets zipf's
                           exponent (default 0.9): the key of rank r is asked for with weight 1/r^S
  --key-prefix S           key prefix (default "key:"); --key-width W zero-pads the key number
  --data-size N            value size in bytes (default 32), or --data-size-range A-B
  --multiget K             keys per GET (default 1)
  --cache-aside            hit-ratio mode: every request is a GET of one key and each miss is followed by
                           a SET of that key, as an application caching a database does (--ratio is ignored)
  --scan-ratio R           share of GETs (0..1) that ask for a key never asked for before and never again
                           (one-hit wonders: scans, crawlers), mixed into the key pattern
  --time S | --requests N  run for S seconds, or N requests in total (default --time 10)
  --prefill                SET every key once before measuring
  --verify                 every GET hit must carry the last value SET for its key (keys are
                           partitioned over connections so "last" is well defined)
  --new-conn-per-request   handshake mode: connect (+TLS handshake), one request, close; reports conns/s
  --resume                 in handshake mode, resume the previous session (ticket or id)
  --server-pid PID[,PID]   sample the server's CPU time (/proc/PID/stat) around the measured phase
                           (several: their sum, for --servers)
  --seed N                 RNG seed
  --json                   print the result as JSON instead of a table; --json-file F writes it too
  --quiet                  no progress lines on stderr
  --stall-timeout S        fail when requests stay unanswered for S seconds (default 10)
  --hold S                 only connect (and handshake) all connections, print "HOLDING <n>" on stdout,
                           keep them open and idle for S seconds, then exit (memory per idle connection)
"""

public func parseBenchOptions(_ args: [String]) throws(OptionError) -> ParseOutcome {
    var o = BenchOptions()
    var i = 0
    var hostOrPortGiven = false
    func value(_ name: String) throws(OptionError) -> String {
        i += 1
        guard i < args.count else { throw OptionError("option \(name) needs a value") }
        return args[i]
    }
    func int(_ name: String, min: Int = 1) throws(OptionError) -> Int {
        let v = try value(name)
        guard let n = parseCount(v), n >= min else { throw OptionError("option \(name): bad number '\(v)'") }
        return n
    }
    while i < args.count {
        var a = args[i]
        // accept --name=value too
        if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
            let rest = String(a[a.index(after: eq)...])
            a = String(a[..<eq])
            return try parseBenchOptions(Array(args[..<i]) + [a, rest] + Array(args[(i + 1)...]))
        }
        switch a {
        case "-h", "--help": return .help
        case "--host", "-s": o.host = try value(a); hostOrPortGiven = true
        case "--port", "-p":
            let v = try value(a)
            guard let p = UInt16(v), p > 0 else { throw OptionError("option \(a): bad port '\(v)'") }
            o.port = p
            hostOrPortGiven = true
        case "--servers":
            let v = try value(a)
            var list: [ServerAddress] = []
            for item in v.split(separator: ",", omittingEmptySubsequences: false) {
                guard let colon = item.lastIndex(of: ":"), let p = UInt16(item[item.index(after: colon)...]), p > 0,
                      colon != item.startIndex
                else { throw OptionError("option --servers: expected HOST:PORT[,HOST:PORT...], got '\(item)'") }
                let s = ServerAddress(host: String(item[..<colon]), port: p)
                guard !list.contains(s) else { throw OptionError("option --servers: \(s) is listed twice") }
                list.append(s)
            }
            o.servers = list
        case "--tls": o.tls = true
        case "--cacert": o.caCert = try value(a)
        case "--cert": o.cert = try value(a)
        case "--key": o.key = try value(a)
        case "--tls-version":
            let v = try value(a)
            guard v == "1.2" || v == "1.3" else { throw OptionError("option --tls-version: use 1.2 or 1.3") }
            o.tlsVersion = v
        case "--ciphers": o.ciphers = try value(a)
        case "--sigalgs": o.sigalgs = try value(a)
        case "--groups": o.groups = try value(a)
        case "--threads", "-t": o.threads = try int(a)
        case "--conns", "-c": o.conns = try int(a)
        case "--pipeline": o.pipeline = try int(a)
        case "--ratio":
            let v = try value(a)
            let parts = v.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let s = Int(parts[0]), let g = Int(parts[1]), s >= 0, g >= 0, s + g > 0
            else { throw OptionError("option --ratio: expected SET:GET like 1:10, got '\(v)'") }
            o.setRatio = s; o.getRatio = g
        case "--keys", "--key-maximum": o.keys = try int(a)
        case "--key-pattern":
            let v = try value(a)
            guard let p = KeyPattern(rawValue: v) else {
                throw OptionError("option --key-pattern: random, sequential or gaussian, got '\(v)'")
            }
            o.keyPattern = p
        case "--zipf":
            let v = try value(a)
            guard let z = Double(v), z > 0, z < 10 else { throw OptionError("option --zipf: exponent in (0, 10), got '\(v)'") }
            o.zipfExponent = z
        case "--scan-ratio":
            let v = try value(a)
            guard let r = Double(v), r >= 0, r < 1 else { throw OptionError("option --scan-ratio: a share in [0, 1), got '\(v)'") }
            o.scanRatio = r
        case "--cache-aside": o.cacheAside = true
        case "--key-prefix": o.keyPrefix = try value(a)
        case "--key-width": o.keyWidth = try int(a, min: 0)
        case "--data-size", "-d":
            let n = try int(a)
            o.dataSizeMin = n; o.dataSizeMax = n
        case "--data-size-range":
            let v = try value(a)
            let parts = v.split(separator: "-")
            guard parts.count == 2, let lo = parseCount(String(parts[0])), let hi = parseCount(String(parts[1])),
                  lo >= 1, hi >= lo
            else { throw OptionError("option --data-size-range: expected A-B with 1 <= A <= B, got '\(v)'") }
            o.dataSizeMin = lo; o.dataSizeMax = hi
        case "--multiget": o.multiget = try int(a)
        case "--time", "--test-time":
            let v = try value(a)
            guard let t = Double(v), t > 0 else { throw OptionError("option --time: bad duration '\(v)'") }
            o.time = t
        case "--requests", "-n": o.requests = try int(a)
        case "--prefill": o.prefill = true
        case "--verify": o.verify = true
        case "--new-conn-per-request": o.newConnPerRequest = true
        case "--resume": o.resume = true
        case "--json": o.json = true
        case "--json-file": o.jsonFile = try value(a)
        case "--server-pid":
            let v = try value(a)
            o.serverPids = []
            for item in v.split(separator: ",", omittingEmptySubsequences: false) {
                guard let p = Int32(item), p > 0 else { throw OptionError("option --server-pid: bad pid '\(item)'") }
                o.serverPids.append(p)
            }
        case "--seed":
            let v = try value(a)
            guard let s = UInt64(v) else { throw OptionError("option --seed: bad number '\(v)'") }
            o.seed = s
        case "--quiet", "-q": o.quiet = true
        case "--stall-timeout":
            let v = try value(a)
            guard let t = Double(v), t > 0 else { throw OptionError("option --stall-timeout: bad duration '\(v)'") }
            o.stallTimeout = t
        case "--hold":
            let v = try value(a)
            guard let t = Double(v), t > 0 else { throw OptionError("option --hold: bad duration '\(v)'") }
            o.hold = t
        default: throw OptionError("unknown option '\(a)' (try --help)")
        }
        i += 1
    }
    if !o.servers.isEmpty && hostOrPortGiven { throw OptionError("--servers replaces --host and --port: give one or the other") }
    if o.servers.count > 1 && o.multiget > 1 {
        throw OptionError("--multiget with several --servers is not supported (a multi-get would be split per server)")
    }
    if o.servers.count > 1 && o.newConnPerRequest {
        throw OptionError("--new-conn-per-request measures one server's handshakes: use --host/--port")
    }
    if o.resume && !o.newConnPerRequest { throw OptionError("--resume only makes sense with --new-conn-per-request") }
    if o.hold != nil && o.newConnPerRequest { throw OptionError("--hold cannot be combined with --new-conn-per-request") }
    if o.prefill && o.newConnPerRequest { throw OptionError("--prefill cannot be combined with --new-conn-per-request") }
    if (o.cert == nil) != (o.key == nil) { throw OptionError("--cert and --key go together") }
    if o.cacheAside && (o.verify || o.multiget > 1 || o.newConnPerRequest || o.prefill) {
        throw OptionError("--cache-aside cannot be combined with --verify, --multiget, --new-conn-per-request or --prefill")
    }
    if (o.scanRatio > 0 || o.keyPattern == .zipf) && o.verify {
        throw OptionError("--scan-ratio and --key-pattern zipf cannot be combined with --verify")
    }
    if (o.cert != nil || o.tlsVersion != nil || o.ciphers != nil || o.sigalgs != nil || o.groups != nil || o.resume) && !o.tls {
        throw OptionError("TLS options need --tls")
    }
    if o.verify && o.multiget > 1 && o.keys < o.totalConns {
        throw OptionError("--verify needs at least one key per connection (--keys >= threads*conns)")
    }
    if o.verify && o.keys < o.totalConns {
        throw OptionError("--verify needs --keys >= threads*conns (keys are partitioned over connections)")
    }
    return .run(o)
}

/// "1000", "10k", "2m", "1g": powers of 1000 (give exact byte counts for sizes).
func parseCount(_ s: String) -> Int? {
    if let n = Int(s) { return n }
    guard let last = s.last, s.count > 1, let n = Int(s.dropLast()) else { return nil }
    switch last {
    case "k", "K": return n * 1000
    case "m", "M": return n * 1_000_000
    case "g", "G": return n * 1_000_000_000
    default: return nil
    }
}
