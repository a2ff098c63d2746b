// A second server certificate of another key type (`-o ssl_alt_chain_cert=…,ssl_alt_key=…`), typically
// ECDSA P-256 next to RSA: an ECDSA signature costs the server a fraction of an RSA-2048 one, so clients
// that can verify ECDSA get cheap full handshakes, and the others still get the RSA certificate.
// OpenSSL keeps one certificate per key type in a context and picks by the client's signature
// algorithms, in the server's order (ECDSA first) since the server's preferences win (TLSDefaults).
// The alternate key is read in `ssl_keyformat`'s format, like the primary one: a deployment that keeps
// its keys in DER keeps both that way.
import COpenSSL

enum TLSAltCertificate {
    /// Loads the alternate chain and key after the primary pair; leaves the primary certificate current,
    /// so `stats` (ssl_cert_not_after) and `stats conns` describe the primary one.
    static func load(_ ctx: OpaquePointer, _ s: TLSSettings) throws(TLSContextError) {
        guard s.altChainCert != nil || s.altKey != nil else { return }
        func fail(_ kind: TLSContextError.Kind, _ text: (String) -> String) -> TLSContextError {
            let (_, top) = OpenSSLErrorQueue.popFirst()
            let message = memcachedTruncated(text(top))
            return TLSContextError(kind: kind, message: message, opensslErrors: OpenSSLErrorQueue.printRemaining())
        }
        guard let chain = s.altChainCert else {
            throw TLSContextError(kind: .certificateChain,
                                  message: "Error loading the alternate certificate chain: (null) : ssl_alt_key needs ssl_alt_chain_cert")
        }
        guard let key = s.altKey else {
            throw TLSContextError(kind: .key, message: "Error loading the alternate key: (null) : ssl_alt_chain_cert needs ssl_alt_key")
        }
        guard let primary = SSL_CTX_get0_certificate(ctx) else {
            throw TLSContextError(kind: .certificateChain, message: "Error loading the alternate certificate chain: \(chain) : no primary certificate")
        }
        let primaryType = EVP_PKEY_get_base_id(X509_get0_pubkey(primary))
        if SSL_CTX_use_certificate_chain_file(ctx, chain) != 1 {
            throw fail(.certificateChain) { "Error loading the alternate certificate chain: \(chain) : \($0)" }
        }
        // A certificate of the primary's key type would silently have replaced the primary one.
        guard let alt = SSL_CTX_get0_certificate(ctx), EVP_PKEY_get_base_id(X509_get0_pubkey(alt)) != primaryType else {
            OpenSSLErrorQueue.clear()
            throw TLSContextError(kind: .certificateChain,
                                  message: "Error loading the alternate certificate chain: \(chain) : its key type is the same as ssl_chain_cert's")
        }
        if SSL_CTX_use_PrivateKey_file(ctx, key, Int32(s.keyFormat)) != 1 {
            throw fail(.key) { "Error loading the alternate key: \(key) : \($0)" }
        }
        // A key of the primary's type lands in the primary's slot (and may even match it), leaving the
        // alternate certificate without a key that OpenSSL would then silently never use.
        if SSL_CTX_get0_certificate(ctx) != alt {
            OpenSSLErrorQueue.clear()
            throw TLSContextError(kind: .key, message: "Error loading the alternate key: \(key) : not the key of ssl_alt_chain_cert")
        }
        if SSL_CTX_check_private_key(ctx) != 1 {
            throw fail(.validation) { "Error validating the alternate certificate: \($0)" }
        }
        _ = cachet_SSL_CTX_select_current_cert(ctx, primary)
    }
}
