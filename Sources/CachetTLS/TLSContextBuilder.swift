// Builds one complete server SSL_CTX from TLSSettings, in memcached 1.6.18's order (tls.c ssl_init +
// load_server_certificates), so that when several things are wrong the same error is reported first:
//   min proto → chain cert → key → check_private_key → (Cachet) alternate chain + key → CA (+ client CA list) → verify mode →
//   cipher list (Cachet's secure default when none is given, TLSDefaults) → (Cachet) TLS 1.3 ciphersuites
//   → session cache → kTLS → no renegotiation → modes → (Cachet) session-ticket keys.
// A context is never modified after `build` returns; reloading builds a new one (TLSContextStore).
import COpenSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide TLS counters (`stats`: ssl_handshake_errors, ssl_proto_errors, ssl_new_sessions,
/// plus Cachet's ssl_cert_reload_failures, ssl_handshake_timeouts, ssl_plaintext_rejected,
/// ssl_handshakes, ssl_resumed_handshakes).
/// Shared by every context a store builds, so a reload does not reset them. Relaxed atomics: these
/// are statistics, not synchronisation.
public final class TLSStats: Sendable {
    public let handshakeErrors = Atomic<UInt64>(0)
    public let protoErrors = Atomic<UInt64>(0)
    public let newSessions = Atomic<UInt64>(0)
    public let reloadFailures = Atomic<UInt64>(0)
    /// Connections closed because their handshake did not finish within ssl_handshake_timeout.
    public let handshakeTimeouts = Atomic<UInt64>(0)
    /// Connections whose first byte could not begin a TLS record (a plaintext or HTTP client).
    public let plaintextRejected = Atomic<UInt64>(0)
    /// Handshakes completed, and those of them that resumed a session (ticket or session id).
    public let handshakes = Atomic<UInt64>(0)
    public let resumedHandshakes = Atomic<UInt64>(0)
    /// ClientHellos that waited for their turn under ssl_handshake_share.
    public let handshakesDeferred = Atomic<UInt64>(0)
    /// Client certificates that verified but named none of ssl_verify_name.
    public let verifyNameFailures = Atomic<UInt64>(0)
    public init() {}
}

/// One immutable, fully configured server `SSL_CTX`.
///
/// Lifetime: this object owns one reference to the SSL_CTX (freed in deinit). Every `SSL` made from
/// it takes its own reference inside OpenSSL (SSL_new up-refs the ctx), and every TLSConnection also
/// keeps this object alive, so the new-session callback's `TLSStats` pointer (ex_data slot 0, not
/// retained) can never dangle. Thread safety: after `build` returns nothing mutates the ctx; OpenSSL
/// locks its own shared parts (session cache, ticket keys), so any thread may create SSLs from it.
public final class TLSContext: @unchecked Sendable {
    /// The `SSL_CTX *`. Exposed for diagnostics and tests; do not reconfigure it.
    public let sslContext: OpaquePointer
    public let stats: TLSStats
    /// Unix time of the leaf certificate's notAfter, if it could be read.
    public let certNotAfter: Int64?
    /// RFC 2253 subject of the leaf certificate (e.g. `CN=server1,OU=first`).
    public let certSubject: String?
    /// The leaf certificate's serial number in hex (as `openssl x509 -serial` prints it).
    public let certSerial: String?

    init(sslContext: OpaquePointer, stats: TLSStats) {
        self.sslContext = sslContext
        self.stats = stats
        let leaf = SSL_CTX_get0_certificate(sslContext)
        certNotAfter = leaf.flatMap { TLSContextBuilder.notAfter(of: $0) }
        certSubject = leaf.flatMap { TLSContextBuilder.subject(of: $0) }
        certSerial = leaf.flatMap { TLSContextBuilder.serial(of: $0) }
    }

    deinit { SSL_CTX_free(sslContext) }
}

public enum TLSContextBuilder {
    /// Session id context memcached sets when `ssl_session_cache` is on. Cachet sets it always
    /// (see `build`), and per listener kind in TLSConnection.
    public static let sessionIDContext = "memcached"

    /// memcached's `ssl_verify_mode` 0..3 as the OpenSSL bitmask it passes to SSL_CTX_set_verify
    /// and prints in `stats settings` (0, 1, 3, 7). Out-of-range input maps to 0 (the settings
    /// parser rejects it before we get here).
    public static func verifyFlags(forMode mode: Int) -> Int32 {
        switch mode {
        case 1: return SSL_VERIFY_PEER
        case 2: return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
        case 3: return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE
        default: return SSL_VERIFY_NONE
        }
    }

    /// `ssl_min_version` 0..3 → TLS1_VERSION … TLS1_3_VERSION (default TLS 1.2).
    public static func protocolVersion(forMinVersion v: Int) -> Int32 {
        switch v {
        case 0: return TLS1_VERSION
        case 1: return TLS1_1_VERSION
        case 3: return TLS1_3_VERSION
        default: return TLS1_2_VERSION
        }
    }

    /// `stats settings` text for `ssl_min_version` (memcached's ssl_proto_text).
    public static func protocolName(forMinVersion v: Int) -> String {
        switch v {
        case 0: return "tlsv1.0"
        case 1: return "tlsv1.1"
        case 2: return "tlsv1.2"
        case 3: return "tlsv1.3"
        default: return "unknown"
        }
    }

    /// True when this OpenSSL build knows SSL_OP_ENABLE_KTLS.
    public static var kernelTLSAvailable: Bool { cachet_has_ktls != 0 }

    /// Builds a server context. Reads the certificate, key and CA files now (call again to re-read).
    /// - Parameters:
    ///   - stats: counters the context's new-session callback bumps (share one per process).
    ///   - ticketKeysFrom: without `ssl_ticket_key_file`, carry this context's session-ticket keys over,
    ///     so tickets issued before a `refresh_certs` still resume afterwards (memcached reloads in place
    ///     and keeps them). With the file, its keys are (re-)read instead (TLSTicketKeys).
    public static func build(_ settings: TLSSettings, stats: TLSStats = TLSStats(),
                             ticketKeysFrom previous: TLSContext? = nil) throws(TLSContextError) -> TLSContext {
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            let (_, text) = OpenSSLErrorQueue.popFirst()
            OpenSSLErrorQueue.clear()
            throw TLSContextError(kind: .contextCreation, message: "Failed to create the SSL context: \(text)")
        }
        var built = false
        defer { if !built { SSL_CTX_free(ctx) } }

        _ = cachet_SSL_CTX_set_min_proto_version(ctx, protocolVersion(forMinVersion: settings.minVersion))
        try loadServerCertificates(ctx, settings)

        // The callback adds the ssl_verify_name check to OpenSSL's verdict (verify_name.c); without names
        // it passes OpenSSL's verdict through.
        SSL_CTX_set_verify(ctx, verifyFlags(forMode: settings.verifyMode), cachet_verify_callback)
        if !settings.verifyNames.isEmpty || !settings.verifyURIs.isEmpty {
            // Both lists as C strings for the call (strdup'd here, copied again by verify_name.c).
            var names: [UnsafePointer<CChar>?] = settings.verifyNames.map { UnsafePointer(strdup($0)) }
            var uris: [UnsafePointer<CChar>?] = settings.verifyURIs.map { UnsafePointer(strdup($0)) }
            defer { (names + uris).forEach { free(UnsafeMutablePointer(mutating: $0)) } }
            let ok = names.withUnsafeMutableBufferPointer { n in
                uris.withUnsafeMutableBufferPointer { u in
                    cachet_verify_names_install(ctx, n.baseAddress, n.count, u.baseAddress, u.count)
                }
            }
            if ok != 1 {
                throw TLSContextError(kind: .contextCreation,
                                      message: "Failed to set the client names (ssl_verify_name, ssl_verify_uri)")
            }
        }
        if let list = settings.ciphers, SSL_CTX_set_cipher_list(ctx, list) != 1 {
            OpenSSLErrorQueue.clear()  // memcached prints no queue here
            throw TLSContextError(kind: .ciphers, message: "Error setting the provided cipher(s): \(list)")
        }
        if settings.ciphers == nil {
            // Cachet's secure default (TLSDefaults); a list OpenSSL knows, so this cannot fail.
            _ = SSL_CTX_set_cipher_list(ctx, TLSDefaults.cipherList)
        }
        TLSDefaults.apply(to: ctx)
        if let suites = settings.ciphersuites, SSL_CTX_set_ciphersuites(ctx, suites) != 1 {
            OpenSSLErrorQueue.clear()
            throw TLSContextError(kind: .ciphersuites, message: "Error setting the provided ciphersuite(s): \(suites)")
        }

        if settings.sessionCache {
            SSL_CTX_sess_set_new_cb(ctx) { ssl, _ in
                // Must not capture (C callback): find the counters through the ctx's ex_data.
                if let ssl, let owner = SSL_get_SSL_CTX(ssl), let raw = SSL_CTX_get_ex_data(owner, 0) {
                    Unmanaged<TLSStats>.fromOpaque(raw).takeUnretainedValue()
                        .newSessions.add(1, ordering: .relaxed)
                }
                return 0  // we did not keep a reference to the session
            }
            _ = cachet_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_SERVER))
        } else {
            _ = cachet_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        }
        // memcached sets the session id context only with the cache on. Without it, OpenSSL aborts
        // any resumption (tickets stay on) under SSL_VERIFY_PEER with "session id context
        // uninitialized"; setting it always fixes that and changes nothing else.
        _ = sessionIDContext.withCString { p in
            SSL_CTX_set_session_id_context(ctx, UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self),
                                           UInt32(strlen(p)))
        }

        if settings.kernelTLS {
            guard kernelTLSAvailable else {
                throw TLSContextError(kind: .kernelTLS, message: "Kernel TLS offload is not available")
            }
            _ = cachet_SSL_CTX_set_options(ctx, cachet_SSL_OP_ENABLE_KTLS)
        }
        _ = cachet_SSL_CTX_set_options(ctx, cachet_SSL_OP_NO_RENEGOTIATION)
        // SSL_MODE_RELEASE_BUFFERS (memcached sets it on the context) is set per connection instead:
        // it frees and re-allocates OpenSSL's ~17 KB record buffers around every record (~1,300
        // instructions of malloc/free per request), so the server turns it off while a connection is
        // busy and back on when it goes quiet (TLSConnection.setReleaseBuffersAfterEachRecord).
        _ = cachet_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE) | Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))

        try TLSTicketKeys.install(on: ctx, file: settings.ticketKeyFile, previous: previous)
        _ = SSL_CTX_set_ex_data(ctx, 0, Unmanaged.passUnretained(stats).toOpaque())
        OpenSSLErrorQueue.clear()
        built = true
        return TLSContext(sslContext: ctx, stats: stats)
    }

    /// memcached's load_server_certificates, texts byte for byte.
    private static func loadServerCertificates(_ ctx: OpaquePointer, _ s: TLSSettings) throws(TLSContextError) {
        func fail(_ kind: TLSContextError.Kind, _ format: (String) -> String) -> TLSContextError {
            let (_, top) = OpenSSLErrorQueue.popFirst()
            let message = memcachedTruncated(format(top))
            return TLSContextError(kind: kind, message: message, opensslErrors: OpenSSLErrorQueue.printRemaining())
        }
        // memcached passes a NULL path straight to OpenSSL (glibc's fopen fails with EFAULT). Under
        // Address/ThreadSanitizer that NULL crashes the fopen interceptor, so there we produce the summary
        // line ourselves (without OpenSSL's queue lines).
        let badAddress = "error:8000000E:system library::Bad address"
        if s.chainCert == nil && cachet_built_with_sanitizer != 0 {
            throw TLSContextError(kind: .certificateChain, message: "Error loading the certificate chain: (null) : \(badAddress)")
        }
        if SSL_CTX_use_certificate_chain_file(ctx, s.chainCert) != 1 {
            throw fail(.certificateChain) { "Error loading the certificate chain: \(cString(s.chainCert)) : \($0)" }
        }
        if s.key == nil && cachet_built_with_sanitizer != 0 {
            throw TLSContextError(kind: .key, message: "Error loading the key: (null) : \(badAddress)")
        }
        if SSL_CTX_use_PrivateKey_file(ctx, s.key, s.keyFormat) != 1 {
            throw fail(.key) { "Error loading the key: \(cString(s.key)) : \($0)" }
        }
        if SSL_CTX_check_private_key(ctx) != 1 {
            throw fail(.validation) { "Error validating the certificate: \($0)" }
        }
        try TLSAltCertificate.load(ctx, s)
        if let ca = s.caCert {
            if SSL_CTX_load_verify_locations(ctx, ca, nil) != 1 {
                throw fail(.caCertificate) { "Error loading the CA certificate: \(ca) : \($0)" }
            }
            SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(ca))
        }
    }

    static func notAfter(of cert: OpaquePointer) -> Int64? {
        guard let t = X509_get0_notAfter(cert) else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(t, &parts) == 1 else { return nil }
        return Int64(timegm(&parts))
    }

    static func serial(of cert: OpaquePointer) -> String? {
        guard let asn1 = X509_get0_serialNumber(cert), let bn = ASN1_INTEGER_to_BN(asn1, nil) else { return nil }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { return nil }
        defer { CRYPTO_free(hex, #fileID, #line) }
        return String(cString: hex)
    }

    static func subject(of cert: OpaquePointer) -> String? {
        guard let name = X509_get_subject_name(cert) else { return nil }
        return nameString(name)
    }

    /// RFC 2253 form of an X509_NAME (`CN=client,O=Example`).
    static func nameString(_ name: OpaquePointer) -> String? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, cachet_XN_FLAG_RFC2253) >= 0 else { return nil }
        var data: UnsafeMutablePointer<CChar>? = nil
        let n = cachet_BIO_get_mem_data(bio, &data)
        guard n >= 0, let data else { return nil }
        return data.withMemoryRebound(to: UInt8.self, capacity: n) {
            String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
        }
    }
}
