// What a server context offers when the operator did not choose: the choices a TLS scanner
// (testssl.sh, SSL Labs) expects of a modern server, applied to every context TLSContextBuilder
// builds. memcached leaves OpenSSL's defaults in place, which still offer CBC ciphers (LUCKY13) and
// let the client pick the cipher; Cachet does not.
import COpenSSL

public enum TLSDefaults {
    /// TLS ≤ 1.2 ciphers used when `ssl_ciphers` is not given: forward secrecy (ECDHE) and AEAD only
    /// (AES-GCM, ChaCha20-Poly1305), no CBC, no static RSA key exchange, no finite-field DHE (whose
    /// group size scanners flag). Ordered like OpenSSL's TLS 1.3 suites: AES-256-GCM, ChaCha20,
    /// AES-128-GCM — ECDSA before RSA, so a server with both kinds of certificate prefers the cheaper one.
    /// `-o ssl_ciphers=DEFAULT` gives OpenSSL's own default list back.
    public static let cipherList = [
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    ].joined(separator: ":")

    /// Lifetime of a session and of the tickets that carry it (the hint a client sees). Two hours:
    /// OpenSSL's own default, well under the day scanners allow, and what the ticket-key rotation of
    /// a long-running server assumes.
    public static let sessionLifetimeSeconds = 7200

    /// Applied to every context whether or not `ssl_ciphers` was given: the server's cipher order wins
    /// (a client listing a weak cipher first does not get it), and TLS compression (CRIME) stays off.
    /// Renegotiation is switched off separately (TLSContextBuilder), as it always was.
    static func apply(to ctx: OpaquePointer) {
        _ = cachet_SSL_CTX_set_options(ctx, cachet_SSL_OP_CIPHER_SERVER_PREFERENCE | cachet_SSL_OP_NO_COMPRESSION)
        _ = SSL_CTX_set_timeout(ctx, sessionLifetimeSeconds)
    }
}
