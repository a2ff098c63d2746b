// TLS context errors with memcached's exact texts, and the helpers that read OpenSSL's per-thread
// error queue the way memcached 1.6.18 does (tls.c: print_ssl_error + ERR_print_errors_fp).
//
// memcached takes the *earliest* queued error (ERR_get_error) for the summary line and then dumps
// whatever is left with ERR_print_errors_fp(stderr) *before* printing the summary, so stderr reads:
//     <rest of the queue, one "<tid>:error:<code>:<lib>:<func>:<reason>:<file>:<line>:<data>" line each>
//     Error loading the key: /path : error:05800074:x509 certificate routines::key values mismatch\r\n
import COpenSSL

/// Why a server `SSL_CTX` could not be built. `message` is memcached's text without its line
/// terminator; `stderrText` is the exact bytes memcached 1.6.18 writes to stderr for the same failure.
public struct TLSContextError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case certificateChain, key, validation, caCertificate, ticketKeys
        case ciphers, ciphersuites, kernelTLS, contextCreation
    }

    public let kind: Kind
    /// e.g. `Error loading the certificate chain: /nonexist.pem : error:80000002:system library::No such file or directory`.
    /// This is also the `refresh_certs` failure reply (the server appends `\r\n`).
    public let message: String
    /// What `ERR_print_errors_fp(stderr)` printed before the summary: zero or more `\n`-terminated lines.
    /// Empty for the cipher/kTLS failures (memcached prints no queue there).
    public let opensslErrors: String

    public init(kind: Kind, message: String, opensslErrors: String = "") {
        self.kind = kind
        self.message = message
        self.opensslErrors = opensslErrors
    }

    /// memcached ends the certificate/key/CA summaries with `\r\n` (they double as the refresh_certs
    /// reply) but the cipher and kTLS lines with a plain `\n`.
    public var lineTerminator: String {
        switch kind {
        case .certificateChain, .key, .validation, .caCertificate, .ticketKeys: return "\r\n"
        case .ciphers, .ciphersuites, .kernelTLS, .contextCreation: return "\n"
        }
    }

    /// The exact stderr output at startup: the OpenSSL queue, then the summary line. Exit status 64.
    public var stderrText: String { opensslErrors + message + lineTerminator }

    public var description: String { message }
}

/// Reads and drains the calling thread's OpenSSL error queue.
enum OpenSSLErrorQueue {
    /// memcached's `SSL_ERROR_MSG_SIZE`: ERR_error_string_n writes at most 255 characters.
    static let errorStringSize = 256

    /// `ERR_error_string_n` of one packed error code.
    static func string(for code: UInt) -> String {
        var buf = [CChar](repeating: 0, count: errorStringSize)
        ERR_error_string_n(code, &buf, buf.count)
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// memcached's `print_ssl_error`: the earliest error's text (or "" when the queue is empty).
    static func popFirst() -> (code: UInt, text: String) {
        let code = ERR_get_error()
        return (code, code == 0 ? "" : string(for: code))
    }

    /// `ERR_print_errors` of the rest of the queue, drained; same format as `ERR_print_errors_fp`.
    static func printRemaining() -> String {
        guard ERR_peek_error() != 0, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        ERR_print_errors(bio)
        var data: UnsafeMutablePointer<CChar>? = nil
        let n = cachet_BIO_get_mem_data(bio, &data)
        guard n > 0, let data else { return "" }
        return data.withMemoryRebound(to: UInt8.self, capacity: n) {
            String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
        }
    }

    /// Every queued error as ERR_error_string_n texts joined by "; ", drained. Used for
    /// per-connection failure reasons (never printed by memcached, so the format is ours).
    static func drainAll() -> (first: UInt, text: String) {
        var first: UInt = 0
        var parts: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            if first == 0 { first = code }
            if parts.count < 4 { parts.append(string(for: code)) }
        }
        return (first, parts.joined(separator: "; "))
    }

    static func clear() { ERR_clear_error() }
}

/// glibc's printf of a NULL `%s`, which memcached's messages inherit.
@inline(__always) func cString(_ s: String?) -> String { s ?? "(null)" }

/// memcached formats into `MAXPATHLEN + ERROR_MSG_SIZE + SSL_ERROR_MSG_SIZE` bytes and snprintf's
/// with `errmax = that - 3`, keeping at most errmax-1 bytes of text before appending "\r\n".
func memcachedTruncated(_ s: String) -> String {
    let limit = 4096 + 64 + 256 - 3 - 1
    let utf8 = Array(s.utf8)
    if utf8.count <= limit { return s }
    return String(decoding: utf8[0..<limit], as: UTF8.self)
}
