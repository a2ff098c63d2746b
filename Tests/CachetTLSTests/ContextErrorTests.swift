// Startup/refresh error texts compared against the oracle: Debian's memcached 1.6.18 started with
// the same files must print the same stderr (OpenSSL queue lines minus the thread id, then the
// summary line byte for byte) and exit 64.
import CachetTestSupport
import CachetTLS
import COpenSSL
import Glibc
import Testing

struct OracleRun {
    let stderr: String
    let status: Int32
}

func freePort() -> UInt16 { freeLoopbackPort() }

let memcachedPath = "/usr/bin/memcached"
let oracleAvailable = access(memcachedPath, X_OK) == 0

/// Starts memcached -Z with the given `-o` suboptions; it fails in ssl_init before binding.
func runMemcached(_ suboptions: [String], tag: String) -> OracleRun {
    let err = fixtures.path("mc-\(tag).stderr")
    let o = suboptions.isEmpty ? "" : "-o \(q(suboptions.joined(separator: ",")))"
    let status = sh("timeout 5 \(memcachedPath) -u root -l 127.0.0.1 -p \(freePort()) -Z \(o) >/dev/null 2>\(q(err))")
    return OracleRun(stderr: readFile(err), status: status)
}

/// Drops the per-thread id (`4057CBAD8C7F0000:`) that starts every ERR_print_errors line.
/// Splits on "\n" bytes (Swift treats "\r\n" as one Character), keeping any "\r".
func normalizeQueue(_ text: String) -> [String] {
    Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { bytes in
        let line = String(decoding: bytes, as: UTF8.self)
        guard line.contains(":error:"), let colon = line.firstIndex(of: ":") else { return line }
        return String(line[line.index(after: colon)...])
    }
}

struct ErrorCase: Sendable, CustomTestStringConvertible {
    let name: String
    var chain: String? = nil     // "$D" = fixture dir
    var key: String? = nil
    var ca: String? = nil
    var ciphers: String? = nil
    var keyFormat: Int32 = 1
    let kind: TLSContextError.Kind
    var testDescription: String { name }

    func resolve(_ s: String?) -> String? { s.map { $0.replacingOccurrences("$D", fixtures.dir) } }

    var settings: TLSSettings {
        var s = TLSSettings()
        s.enabled = true
        s.chainCert = resolve(chain)
        s.key = resolve(key)
        s.caCert = resolve(ca)
        s.ciphers = ciphers
        s.keyFormat = keyFormat
        return s
    }

    var memcachedOptions: [String] {
        var o: [String] = []
        if let c = resolve(chain) { o.append("ssl_chain_cert=\(c)") }
        if let k = resolve(key) { o.append("ssl_key=\(k)") }
        if let c = resolve(ca) { o.append("ssl_ca_cert=\(c)") }
        if let c = ciphers { o.append("ssl_ciphers=\(c)") }
        if keyFormat != 1 { o.append("ssl_keyformat=\(keyFormat)") }
        return o
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        guard !a.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

let errorCases: [ErrorCase] = [
    ErrorCase(name: "no cert, no key", kind: .certificateChain),
    ErrorCase(name: "cert, no key", chain: "$D/server.pem", kind: .key),
    ErrorCase(name: "missing cert path", chain: "/nonexist.pem", key: "x", kind: .certificateChain),
    ErrorCase(name: "missing key path", chain: "$D/server.pem", key: "/nonexist", kind: .key),
    ErrorCase(name: "key does not match cert", chain: "$D/server.pem", key: "$D/server2.key", kind: .key),
    ErrorCase(name: "garbage key", chain: "$D/server.pem", key: "$D/garbage.key", kind: .key),
    ErrorCase(name: "garbage cert", chain: "$D/garbage.key", key: "$D/server.key", kind: .certificateChain),
    ErrorCase(name: "PEM key read as DER", chain: "$D/server.pem", key: "$D/server.key", keyFormat: 2, kind: .key),
    ErrorCase(name: "missing CA", chain: "$D/server.pem", key: "$D/server.key", ca: "/nonexist", kind: .caCertificate),
    ErrorCase(name: "garbage CA", chain: "$D/server.pem", key: "$D/server.key", ca: "$D/garbage.key", kind: .caCertificate),
    ErrorCase(name: "bad cipher list", chain: "$D/server.pem", key: "$D/server.key", ciphers: "BOGUS", kind: .ciphers),
]

@Suite struct ContextErrorTests {
    @Test(arguments: errorCases)
    func matchesMemcached(_ c: ErrorCase) throws {
        let error = try #require(throws: TLSContextError.self) { try TLSContextBuilder.build(c.settings) }
        #expect(error.kind == c.kind)
        try #require(oracleAvailable, "memcached oracle not installed")
        let oracle = runMemcached(c.memcachedOptions, tag: c.name.replacingAll(" ", with: "_"))
        #expect(oracle.status == 64)
        // The final line is byte-identical (incl. "\r" for the load errors)…
        let lastOracle: String? = normalizeQueue(oracle.stderr).dropLast().last   // text ends with "\n"
        let expectedLast: String = error.message + (error.lineTerminator == "\r\n" ? "\r" : "")
        #expect(lastOracle == expectedLast)
        // …and so is everything before it, apart from the thread id (except under a sanitizer, where a
        // NULL path is not handed to OpenSSL: see TLSContextBuilder).
        let nullPath = c.chain == nil || c.key == nil
        if !(nullPath && cachet_built_with_sanitizer != 0) {
            #expect(normalizeQueue(error.stderrText) == normalizeQueue(oracle.stderr))
        }
    }

    @Test func expectedTexts() throws {
        func message(_ tweak: (inout TLSSettings) -> Void) -> String? {
            do { _ = try context(tweak); return nil } catch let e as TLSContextError { return e.message } catch { return nil }
        }
        #expect(message { $0.chainCert = nil; $0.key = nil }
            == "Error loading the certificate chain: (null) : error:8000000E:system library::Bad address")
        #expect(message { $0.chainCert = "/nonexist.pem" }
            == "Error loading the certificate chain: /nonexist.pem : error:80000002:system library::No such file or directory")
        #expect(message { $0.key = fixtures.server2Key }
            == "Error loading the key: \(fixtures.server2Key) : error:05800074:x509 certificate routines::key values mismatch")
        #expect(message { $0.key = fixtures.garbageKey }
            == "Error loading the key: \(fixtures.garbageKey) : error:1E08010C:DECODER routines::unsupported")
        #expect(message { $0.caCert = "/nonexist" }
            == "Error loading the CA certificate: /nonexist : error:80000002:system library::No such file or directory")
        #expect(message { $0.ciphers = "BOGUS" } == "Error setting the provided cipher(s): BOGUS")
        #expect(message { $0.ciphersuites = "BOGUS" } == "Error setting the provided ciphersuite(s): BOGUS")
        // Errors leave nothing behind on this thread's OpenSSL queue.
        #expect(ERR_peek_error() == 0)
    }

    @Test func validSettingsBuild() throws {
        let ctx = try context {
            $0.caCert = fixtures.caCert
            $0.verifyMode = 2
            $0.ciphers = "ECDHE-RSA-AES128-GCM-SHA256"
            $0.ciphersuites = "TLS_AES_128_GCM_SHA256"
            $0.sessionCache = true
            $0.minVersion = 3
        }
        #expect(ctx.certSubject == "OU=first,CN=server1")
        let notAfter = try #require(ctx.certNotAfter)
        let now = Int64(time(nil))
        #expect(notAfter > now + 29 * 86400 && notAfter <= now + 31 * 86400)
        #expect(SSL_CTX_get_verify_mode(ctx.sslContext) == 3)
        #expect(cachet_SSL_CTX_set_options(ctx.sslContext, 0) & cachet_SSL_OP_NO_RENEGOTIATION != 0)
        #expect(cachet_SSL_CTX_set_options(ctx.sslContext, 0) & cachet_SSL_OP_NO_TICKET == 0)
    }

    @Test func kernelTLS() throws {
        if TLSContextBuilder.kernelTLSAvailable {
            let ctx = try context { $0.kernelTLS = true }
            #expect(cachet_SSL_CTX_set_options(ctx.sslContext, 0) & cachet_SSL_OP_ENABLE_KTLS != 0)
        } else {
            #expect(throws: TLSContextError(kind: .kernelTLS, message: "Kernel TLS offload is not available")) {
                try context { $0.kernelTLS = true }
            }
        }
    }

    @Test func verifyFlagsAndVersionNames() {
        #expect((0...3).map { TLSContextBuilder.verifyFlags(forMode: $0) } == [0, 1, 3, 7])
        #expect((0...3).map { TLSContextBuilder.protocolName(forMinVersion: $0) }
            == ["tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3"])
    }
}
