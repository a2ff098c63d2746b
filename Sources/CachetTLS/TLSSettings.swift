// TLS settings as memcached's `-o ssl_*` options carry them. Parsing lives in CachetServer's
// settings parser; this module builds contexts and sessions from these values.
public struct TLSSettings: Sendable, Equatable {
    /// `-Z`
    public var enabled = false
    public var chainCert: String? = nil
    public var key: String? = nil
    /// 1 = PEM (SSL_FILETYPE_PEM), 2 = ASN1/DER.
    public var keyFormat: Int32 = 1
    /// memcached's 0..3 input (None, Request, Require, Once).
    public var verifyMode: Int = 0
    public var ciphers: String? = nil
    /// TLS 1.3 suites (Cachet only; memcached has no knob; `ssl_ciphers` only covers TLS <= 1.2).
    public var ciphersuites: String? = nil
    public var caCert: String? = nil
    /// Bytes (the option is in KB).
    public var wbufSize: Int = 16384
    public var sessionCache = false
    public var kernelTLS = false
    /// 0 tlsv1.0, 1 tlsv1.1, 2 tlsv1.2, 3 tlsv1.3
    public var minVersion: Int = 2
    /// Cachet only: seconds a TLS connection may take to finish its handshake before the server closes
    /// it (counted in ssl_handshake_timeouts); 0 = no limit.
    public var handshakeTimeout: Int = 10
    /// Cachet only: file of 80-byte session-ticket keys (TLSTicketKeys); nil = generated and rotated.
    public var ticketKeyFile: String? = nil
    /// Cachet only: seconds between looks at the certificate/key/CA/ticket-key files, reloading when they
    /// changed (TLSContextStore.autoReloadIfDue); 0 = off.
    public var autoReload: Int = 0
    /// Cachet only: names a verified client certificate must carry (DNS SAN, else CN; `*.` = one label);
    /// empty = any certificate the CA vouches for.
    public var verifyNames: [String] = []
    /// `-o ssl_verify_uri=<uri>` (repeatable): URI subjectAltNames (SPIFFE IDs) a client certificate may carry
    /// instead of a matching name; a trailing `*` matches any rest.
    public var verifyURIs: [String] = []
    /// Cachet only: a second certificate chain and key (PEM) of another key type, e.g. ECDSA next to RSA.
    public var altChainCert: String? = nil
    public var altKey: String? = nil
    /// Cachet only: the share (percent) of a busy CPU's time handshakes may take from the workers; 100 = no
    /// bound. Handshake threads get it as their scheduling weight, workers that run their own handshakes
    /// as pacing (CachetServer's HandshakeHandoff.swift and TLSGuards.swift).
    public var handshakeShare: Int = 40
    /// Cachet only: threads that run every TLS handshake, handing each connection to its worker once the
    /// handshake is done; 0 = the workers run their own handshakes. nil: one per four workers (at least one).
    public var handshakeThreads: Int? = nil

    /// `handshakeThreads` once the worker count is known.
    public func handshakeThreadCount(workers: Int) -> Int { handshakeThreads ?? max(1, workers / 4) }
    public init() {}
}
