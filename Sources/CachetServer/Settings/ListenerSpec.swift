// `-l` lists: memcached's server_sockets() tokenizer (memcached.c) with the per-listener TLS prefixes
// of memcached 1.6.30+ (`notls:` plaintext, `btls:` TLS without client verification, `mtls:` TLS that
// requires a client certificate; no prefix: TLS when -Z is given). memcached only discovers a bad
// entry while binding, after it has dropped privileges and bound the entries before it; Cachet checks the whole list up front (`validate`) with the same
// texts and exit code 71 (EX_OSERR), and the server calls it at the point memcached would bind.
//
// - Entries are separated by ',' or ';' (strtok: empty entries vanish).
// - `notls:` is matched as strncmp(p, "notls", 5) and then 6 characters are skipped (the ':' is
//   assumed); `btls:`/`mtls:` (memcached ≥ 1.6.30, a superset of 1.6.18, which reads `mtls` as a
//   host) likewise with 4 + 1. Without -Z each prints "'<prefix>' option is valid only when SSL is
//   enabled" — for mtls memcached prints 'otls' (it offsets the name by one), reproduced.
// - `[v6]` or `[v6]:port`; `host:port`; a bare IPv6 with several ':' is all host; no port = `-p`;
//   host `*` = any address (nil).
// - Each error line is followed by "failed to listen on one of interface(s) <raw -l>: Success"
//   (memcached's vperror with errno still 0).
// Cachet difference: a port outside 0...65535 in an entry is an "Invalid port number" error
// (memcached hands it to getaddrinfo and fails later with a less clear text).
import CachetTLS


public struct ListenerError: Error, Equatable, Sendable {
    public let stderr: String
    public var exitCode: Int32 { 71 }
    public var outcome: SettingsOutcome { .exit(code: exitCode, stdout: "", stderr: stderr) }
}

public struct ListenerSpec: Sendable, Equatable {
    /// nil = any address (`*`, or no `-l`).
    public var host: String?
    public var port: Int
    public var tls: ListenerTLS

    public init(host: String?, port: Int, tls: ListenerTLS) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// nil when the listeners are fine; otherwise the exit memcached would take at bind time.
    public static func validate(_ settings: Settings) -> SettingsOutcome? {
        switch parseList(settings) {
        case .success: return nil
        case .failure(let e): return e.outcome
        }
    }

    /// The TCP listeners the settings ask for. Empty when `-s` is given or `-p 0` (memcached
    /// then opens no TCP socket at all, `-l` included).
    public static func parseList(_ s: Settings) -> Result<[ListenerSpec], ListenerError> {
        parseList(s, port: s.port)
    }

    /// The UDP sockets the settings ask for (`-U`): memcached binds each `-l` address for UDP as well, with
    /// the port an entry names or else the `-U` port; none with `-s` or `-U 0`. The TLS prefix is parsed
    /// and ignored: UDP is always plaintext (memcached has no DTLS).
    public static func udpList(_ s: Settings) -> Result<[ListenerSpec], ListenerError> {
        parseList(s, port: s.udpPort)
    }

    private static func parseList(_ s: Settings, port defaultPort: Int) -> Result<[ListenerSpec], ListenerError> {
        if s.socketPath != nil || defaultPort == 0 { return .success([]) }
        guard let inter = s.inter else {
            return .success([ListenerSpec(host: nil, port: defaultPort, tls: .inherit)])
        }
        func fail(_ line: String) -> Result<[ListenerSpec], ListenerError> {
            .failure(ListenerError(stderr: line + "failed to listen on one of interface(s) \(inter): Success\n"))
        }
        var specs: [ListenerSpec] = []
        for entry in inter.split(whereSeparator: { $0 == "," || $0 == ";" }) {
            var p = Substring(entry)
            var tls = ListenerTLS.inherit
            for (prefix, kind, shown) in [("notls", ListenerTLS.plaintext, "notls"), ("btls", .basic, "btls"),
                                          ("mtls", .mutual, "otls")] where p.hasPrefix(prefix) {
                if !s.tls.enabled { return fail("'\(shown)' option is valid only when SSL is enabled\n") }
                tls = kind
                p = p.dropFirst(prefix.count + 1)
                break
            }
            var bracketHost: Substring? = nil
            if p.first == "[" {
                guard let close = p.firstIndex(of: "]") else {
                    return fail("Invalid IPV6 address: \"\(p)\"")  // memcached prints no newline here
                }
                bracketHost = p[p.index(after: p.startIndex)..<close]
                p = p[p.index(after: close)...]
            }
            var port = defaultPort
            if let colon = p.firstIndex(of: ":") {
                let after = p[p.index(after: colon)...]
                if !after.contains(":") || bracketHost != nil {
                    guard let n = CNumeric.safeStrtol(String(after)), (0...65535).contains(n) else {
                        return fail("Invalid port number: \"\(after)\"\n")
                    }
                    port = Int(n)
                    p = p[..<colon]
                }
            }
            let host = bracketHost ?? p
            specs.append(ListenerSpec(host: host == "*" ? nil : String(host), port: port, tls: tls))
        }
        return .success(specs)
    }
}
