// The client side of TLS: one SSL_CTX per run (shared read-only by all worker threads after setup),
// options from the command line, and OpenSSL error text for messages.

import COpenSSL

public final class TLSClientContext: @unchecked Sendable {
    // Invariant: configured once in init, then only used to create SSL objects (thread-safe in OpenSSL).
    public let ctx: OpaquePointer

    public init(_ o: BenchOptions) throws(OptionError) {
        guard let c = SSL_CTX_new(TLS_client_method()) else { throw OptionError("SSL_CTX_new: \(opensslErrors())") }
        ctx = c
        _ = cachet_SSL_CTX_set_mode(c, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        // Sessions are kept by the bench itself (SSL_get1_session / SSL_set_session), as clients do.
        _ = cachet_SSL_CTX_set_session_cache_mode(c, Int(SSL_SESS_CACHE_OFF))
        switch o.tlsVersion {
        case "1.2":
            _ = cachet_SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION)
            _ = cachet_SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION)
        case "1.3":
            _ = cachet_SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION)
            _ = cachet_SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION)
        default:
            _ = cachet_SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION)
        }
        if let ciphers = o.ciphers {
            // TLS 1.3 suites are named TLS_*; everything else is a <= 1.2 cipher list.
            let ok = ciphers.hasPrefix("TLS_") ? SSL_CTX_set_ciphersuites(c, ciphers) : SSL_CTX_set_cipher_list(c, ciphers)
            if ok != 1 { throw OptionError("bad --ciphers '\(ciphers)': \(opensslErrors())") }
        }
        if let sigalgs = o.sigalgs, cachet_SSL_CTX_set1_sigalgs_list(c, sigalgs) != 1 {
            throw OptionError("bad --sigalgs '\(sigalgs)': \(opensslErrors())")
        }
        if let groups = o.groups, cachet_SSL_CTX_set1_groups_list(c, groups) != 1 {
            throw OptionError("bad --groups '\(groups)': \(opensslErrors())")
        }
        if let ca = o.caCert {
            guard SSL_CTX_load_verify_locations(c, ca, nil) == 1 else {
                throw OptionError("cannot load CA \(ca): \(opensslErrors())")
            }
            SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nil)
        }
        if let cert = o.cert, let key = o.key {
            guard SSL_CTX_use_certificate_chain_file(c, cert) == 1 else {
                throw OptionError("cannot load certificate \(cert): \(opensslErrors())")
            }
            guard SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) == 1 else {
                throw OptionError("cannot load key \(key): \(opensslErrors())")
            }
        }
    }

    deinit { SSL_CTX_free(ctx) }
}

/// Drains OpenSSL's error queue into one line.
public func opensslErrors() -> String {
    var parts: [String] = []
    while true {
        let e = ERR_get_error()
        if e == 0 { break }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(e, &buf, buf.count)
        parts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return parts.isEmpty ? "(no OpenSSL error)" : parts.joined(separator: "; ")
}
