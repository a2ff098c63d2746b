// One TLS session on one accepted, non-blocking socket: the server-side state machine
// (handshake → read/write → close_notify) over OpenSSL, with handshake/protocol error accounting.
//
// THREADING INVARIANT: a TLSConnection is used by one thread at a time: the thread that owns the
// connection. Ownership moves only whole, from a handshake thread to a worker once the handshake is done,
// through a hand-over that orders the two threads (the worker's mailbox lock); the first thread never
// touches it again. OpenSSL's `SSL` is not thread safe, and the error queue we read after each failure is
// per thread (it is empty between calls). That is why this class is not Sendable.
//
// Accounting (Cachet counts reliably; memcached's counting is racy: it misses failures that happen in its workers):
// - `handshakeErrors` +1 for every connection whose handshake fails *from the server's view*, i.e.
//   any fatal error (including EOF / reset / plaintext / missing client cert) before
//   SSL_is_init_finished, whether it shows up in `handshake()` or in a `read`/`write` the server
//   issued before the handshake finished. With TLS 1.3 a missing/bad client certificate makes the
//   *client* believe the handshake is done, but the server is still waiting for the client's
//   Certificate/Finished, so the failure lands here and is counted as a handshake error.
// - `protoErrors` +1 for SSL_ERROR_SSL from read/write after the handshake completed (memcached's
//   ssl_proto_errors). Unexpected EOF (no close_notify) is a `.closed`, not an error; syscall
//   errors (ECONNRESET, EPIPE) are `.error` but not counted (memcached only logs them).
// Each connection counts at most once: after a fatal error every call returns the same failure.
// A connection the server closes before the handshake finished (idle timeout, shutdown) is not
// counted: nothing failed.
//
// How a worker drives it (fd non-blocking, SIGPIPE ignored process-wide):
//   accept → TLSConnection(fd:context: store.currentContext(), listener:) → handshake()
//     .wantRead  → wait for EV_READ, call handshake() again
//     .wantWrite → wait for EV_WRITE, call handshake() again
//     .failed    → (optionally answer plaintext clients if plaintextDetected) release, close(fd)
//     .done      → normal I/O:
//   read(into:) until .wantRead (or the buffer is full: then also look at `hasPending` before
//   sleeping); .wantWrite from a read → wait for EV_WRITE then read again (TLS may need to send).
//   write(_:): .bytes(n) → advance n (partial is normal); .wantWrite/.wantRead → wait for that
//   readiness and retry with the SAME remaining bytes.
//   .closed / .error → shutdown() (no-op after errors) → release → close(fd).
//   Closing normally (quit, idle timeout): shutdown() once, release, close(fd).
import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Peer verification per listener (`btls:`/`mtls:` prefixes): `.inherit` = global `ssl_verify_mode`,
/// `.off` = `btls:` (SSL_VERIFY_NONE), `.require` = `mtls:` (PEER | FAIL_IF_NO_PEER_CERT).
/// What a listener does about TLS (memcached 1.6.30+'s `-l` prefixes). The one enum for it: settings parse
/// it, listeners carry it, connections open their TLS session by it.
public enum ListenerTLS: Sendable, Equatable {
    /// No prefix: TLS when -Z, with the global ssl_verify_mode.
    case inherit
    /// `notls:` plaintext (also every listener without -Z).
    case plaintext
    /// `btls:` TLS, peer verification off.
    case basic
    /// `mtls:` TLS, peer certificate required.
    case mutual
}

/// Result of driving the handshake.
public enum TLSStep: Sendable, Equatable {
    case done
    /// Wait until the fd is readable, then call `handshake()` again.
    case wantRead
    /// Wait until the fd is writable, then call `handshake()` again.
    case wantWrite
    /// Fatal; counted in handshakeErrors. Close the connection (no `shutdown()` needed).
    case failed(reason: String)
}

/// Result of one read or write.
public enum TLSIO: Sendable, Equatable {
    case bytes(Int)
    case wantRead
    case wantWrite
    /// The peer closed: close_notify, or EOF without it. Close the connection.
    case closed
    /// Fatal; close the connection.
    case error(reason: String)
}

public final class TLSConnection {
    /// The context this session was created from (kept alive as long as the connection).
    public let context: TLSContext
    public let fd: Int32
    /// `SSL *`, owned: freed in deinit. Never shared with another thread.
    private let ssl: OpaquePointer
    /// The write BIO (gather_bio.c), owned by `ssl`.
    private let wbio: OpaquePointer
    public private(set) var handshakeComplete = false
    /// The handshake failed because the client's first bytes were not a TLS record (it spoke
    /// plaintext, e.g. `version\r\n`, or HTTP). The server may answer in plaintext before closing.
    public private(set) var plaintextDetected = false
    private var failure: String? = nil
    private var shutdownSent = false

    /// Session id contexts per listener kind: a session from a `btls:` listener (no client cert)
    /// must never resume on an `mtls:` listener, which would skip the certificate requirement.
    static func sessionIDContext(for listener: ListenerTLS) -> String {
        switch listener {
        case .inherit, .plaintext: return TLSContextBuilder.sessionIDContext
        case .basic: return TLSContextBuilder.sessionIDContext + ":btls"
        case .mutual: return TLSContextBuilder.sessionIDContext + ":mtls"
        }
    }

    /// Creates the server-side SSL on an accepted non-blocking socket (accept state; no I/O yet).
    /// Returns nil if OpenSSL cannot allocate it. Does not take ownership of `fd`.
    /// `listener` is never `.plaintext` (such a listener has no TLS session).
    public init?(fd: Int32, context: TLSContext, listener: ListenerTLS = .inherit) {
        precondition(listener != .plaintext, "TLSConnection on a plaintext listener")
        guard let ssl = SSL_new(context.sslContext) else {
            OpenSSLErrorQueue.clear()
            return nil
        }
        // Reads through OpenSSL's socket BIO; writes through the gathering BIO (gather_bio.c), which
        // passes each record straight to the socket until `setWriteGather` asks it to gather.
        guard let rbio = BIO_new_socket(fd, BIO_NOCLOSE) else {
            SSL_free(ssl)
            OpenSSLErrorQueue.clear()
            return nil
        }
        guard let wbio = cachet_gather_bio_new(fd) else {
            BIO_free(rbio)
            SSL_free(ssl)
            OpenSSLErrorQueue.clear()
            return nil
        }
        SSL_set_bio(ssl, rbio, wbio)   // the SSL owns both from here
        self.wbio = wbio
        // Start like memcached: record buffers freed whenever a connection has nothing buffered.
        _ = cachet_SSL_set_mode(ssl, Int(SSL_MODE_RELEASE_BUFFERS))
        switch listener {
        case .inherit, .plaintext: break
        case .basic: SSL_set_verify(ssl, SSL_VERIFY_NONE, nil)
        case .mutual: SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, cachet_verify_callback)
        }
        if listener != .inherit {
            _ = Self.sessionIDContext(for: listener).withCString { p in
                SSL_set_session_id_context(ssl, UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self),
                                           UInt32(strlen(p)))
            }
        }
        // Read-ahead: one read(2) takes whatever the socket holds (several records), instead of one read for
        // each record's 5-byte header and another for its body. Records it took but SSL_read has not yet
        // returned are invisible to epoll: callers check `hasPending` before going back to the event loop.
        SSL_set_read_ahead(ssl, 1)
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.fd = fd
        self.context = context
    }

    deinit { SSL_free(ssl) }

    // MARK: - Handshake

    /// Advances the handshake. Call on accept and again whenever the awaited readiness arrives.
    public func handshake() -> TLSStep {
        if handshakeComplete { return .done }
        if let failure { return .failed(reason: failure) }
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            markComplete()
            return .done
        }
        switch outcome(r) {
        case .wantRead: return .wantRead
        case .wantWrite: return .wantWrite
        case .closed: return .failed(reason: failure ?? "connection closed during handshake")
        case .error(let reason): return .failed(reason: reason)
        case .bytes: return .failed(reason: "unexpected handshake result")
        }
    }

    /// The handshake just finished: count it (and whether it resumed a session) once.
    private func markComplete() {
        handshakeComplete = true
        context.stats.handshakes.add(1, ordering: .relaxed)
        if SSL_session_reused(ssl) == 1 { context.stats.resumedHandshakes.add(1, ordering: .relaxed) }
    }

    // MARK: - Data

    /// Decrypts up to `buffer.count` bytes. Completes the handshake implicitly if it is not done.
    /// After `.bytes`, if you stop reading before `.wantRead` (buffer full), check `hasPending` before
    /// going back to the event loop: bytes buffered in OpenSSL do not wake epoll.
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSIO {
        if let failure { return .error(reason: failure) }
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .bytes(0) }
        let r = SSL_read(ssl, base, Int32(clamping: buffer.count))
        if r > 0 {
            if !handshakeComplete && SSL_is_init_finished(ssl) == 1 { markComplete() }
            return .bytes(Int(r))
        }
        return outcome(r)
    }

    /// OpenSSL holds bytes read from the socket that `read` has not returned yet (decrypted, or records
    /// taken by read-ahead): another `read` may succeed although epoll will not report the socket readable.
    public var hasPending: Bool { SSL_has_pending(ssl) == 1 }

    /// Frees OpenSSL's read and write record buffers if nothing is buffered in them (SSL_free_buffers);
    /// OpenSSL allocates them again on the next record. For connections that went quiet.
    @discardableResult
    public func releaseBuffers() -> Bool {
        cachet_gather_bio_release(wbio)
        return SSL_free_buffers(ssl) == 1
    }

    /// Largest write(2) the write BIO gathers records into.
    public static let gatherBytes = 256 * 1024

    /// Before a burst of `write`s: with `gather`, the write BIO collects their records and writes them
    /// together in writes of up to `gatherBytes` (one write(2) per 16 KB record is most of the kernel's cost
    /// of bulk TLS) — but no more than the socket's send buffer can take right now, so a slow reader does not
    /// keep a gather buffer full; without, each record goes straight to the socket, as OpenSSL's socket BIO does.
    public func beginWrites(gather: Bool) { cachet_gather_bio_set_cap(wbio, gather ? Self.gatherBytes : 0) }

    /// After the burst: writes what was gathered. `.bytes(0)` when all is out — gathering is off again, so
    /// anything OpenSSL writes on its own later (alerts, tickets) goes straight out, and the gather buffer is
    /// freed unless `keepBuffer`; `.wantWrite` when the socket is full (call again once writable); `.error`
    /// on a socket error.
    public func finishWrites(keepBuffer: Bool) -> TLSIO {
        switch cachet_gather_bio_flush(wbio) {
        case 1:
            cachet_gather_bio_set_cap(wbio, 0)
            if !keepBuffer { cachet_gather_bio_release(wbio) }
            return .bytes(0)
        case 0: return .wantWrite
        default:
            let reason = String(cString: strerror(errno))
            return fatal(reason, isProtocol: false)
        }
    }

    /// Encrypted bytes accepted from OpenSSL and not yet written to the socket.
    public var gatheredBytes: Int { cachet_gather_bio_pending(wbio) }

    /// SSL_MODE_RELEASE_BUFFERS for this connection: on (the default) keeps an idle connection small;
    /// off spares a busy one a malloc/free of ~17 KB around every record.
    public func setReleaseBuffersAfterEachRecord(_ on: Bool) {
        if on {
            _ = cachet_SSL_set_mode(ssl, Int(SSL_MODE_RELEASE_BUFFERS))
        } else {
            _ = cachet_SSL_clear_mode(ssl, Int(SSL_MODE_RELEASE_BUFFERS))
        }
    }

    /// Encrypts and sends up to `bytes.count` bytes; `.bytes(n)` may be partial (n < count):
    /// send the rest with another call. After `.wantWrite`/`.wantRead` the retry MUST pass the same
    /// bytes again (same length and content; the buffer may move — ACCEPT_MOVING_WRITE_BUFFER).
    public func write(_ bytes: UnsafeRawBufferPointer) -> TLSIO {
        if let failure { return .error(reason: failure) }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .bytes(0) }
        let r = SSL_write(ssl, base, Int32(clamping: bytes.count))
        if r > 0 {
            if !handshakeComplete && SSL_is_init_finished(ssl) == 1 { markComplete() }
            return .bytes(Int(r))
        }
        return outcome(r)
    }

    /// Sends close_notify once, non-blocking, best effort (skipped after a fatal error or before the
    /// handshake finished, where OpenSSL forbids it). Then release the connection and close the fd.
    public func shutdown() {
        guard !shutdownSent, failure == nil, handshakeComplete else { return }
        shutdownSent = true
        cachet_gather_bio_set_cap(wbio, 0)       // close_notify goes out now, after anything gathered
        _ = SSL_shutdown(ssl)
        _ = cachet_gather_bio_flush(wbio)
        OpenSSLErrorQueue.clear()
    }

    /// The client's first byte cannot begin a TLS record (TLSRecordStart): the handshake fails without
    /// OpenSSL reading anything. Counted as a failed handshake and in `plaintextRejected`. The caller
    /// sends TLSRecordStart.plaintextReply in the clear and closes.
    public func rejectPlaintext() {
        guard failure == nil, !handshakeComplete else { return }
        plaintextDetected = true
        context.stats.plaintextRejected.add(1, ordering: .relaxed)
        _ = fatal("client sent plaintext on a TLS port", isProtocol: false)
    }

    /// The server gave up on an unfinished handshake (ssl_handshake_timeout): counted in
    /// `handshakeTimeouts`, not as a handshake error (the client did nothing wrong that OpenSSL saw).
    public func abandonHandshake() {
        guard failure == nil, !handshakeComplete else { return }
        failure = "handshake timed out"
        context.stats.handshakeTimeouts.add(1, ordering: .relaxed)
    }

    // MARK: - `stats conns` accessors

    /// Negotiated protocol, e.g. `TLSv1.3` (`SSLv3`-style placeholder text before the handshake).
    public var version: String { String(cString: SSL_get_version(ssl)) }
    /// Negotiated cipher, e.g. `TLS_AES_256_GCM_SHA384`; nil before the handshake.
    public var cipher: String? {
        guard let c = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(c) else { return nil }
        return String(cString: name)
    }
    public var sessionReused: Bool { SSL_session_reused(ssl) == 1 }
    /// With ssl_verify_name: the client certificate's name that matched (e.g. `a.cache.example` for
    /// `*.cache.example`); nil without names or without a client certificate.
    public var peerVerifiedName: String? {
        guard handshakeComplete else { return nil }
        var buf = [CChar](repeating: 0, count: 256)
        guard cachet_peer_matching_name(ssl, &buf, buf.count) == 1 else { return nil }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
    /// RFC 2253 subject of the client certificate, when one was presented and verified.
    public var peerSubject: String? {
        guard handshakeComplete, let cert = SSL_get0_peer_certificate(ssl),
              SSL_get_verify_result(ssl) == X509_V_OK else { return nil }
        return TLSContextBuilder.subject(of: cert)
    }

    // MARK: - Error classification

    /// Maps a non-positive SSL_* return to a result, counting and latching fatal failures.
    private func outcome(_ r: Int32) -> TLSIO {
        let savedErrno = errno
        let code = SSL_get_error(ssl, r)
        switch code {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN:
            OpenSSLErrorQueue.clear()
            if !handshakeComplete { return fatal("connection closed during handshake", isProtocol: false) }
            return .closed
        case SSL_ERROR_SYSCALL:
            let (_, text) = OpenSSLErrorQueue.drainAll()
            if savedErrno == 0 || savedErrno == EAGAIN {
                if !handshakeComplete { return fatal("connection closed during handshake", isProtocol: false) }
                return .closed
            }
            let sys = String(cString: strerror(savedErrno))
            return fatal(text.isEmpty ? sys : "\(sys) (\(text))", isProtocol: false)
        case SSL_ERROR_SSL:
            let (first, text) = OpenSSLErrorQueue.drainAll()
            if !handshakeComplete && cachet_verify_name_failed(ssl) == 1 {
                if failure == nil { context.stats.verifyNameFailures.add(1, ordering: .relaxed) }
                return fatal("client certificate names none of ssl_verify_name", isProtocol: true)
            }
            let isSSLLib = cachet_ERR_GET_LIB(first) == cachet_ERR_LIB_SSL
            let reason = cachet_ERR_GET_REASON(first)
            if isSSLLib && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING {
                if !handshakeComplete { return fatal("connection closed during handshake", isProtocol: false) }
                return .closed
            }
            if !handshakeComplete, isSSLLib,
               reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_HTTP_REQUEST
                || reason == SSL_R_HTTPS_PROXY_REQUEST {
                plaintextDetected = true
                return fatal("client sent plaintext, not a TLS record (\(text))", isProtocol: true)
            }
            return fatal(text.isEmpty ? "TLS protocol error" : text, isProtocol: true)
        default:
            OpenSSLErrorQueue.clear()
            return fatal("unexpected SSL_get_error \(code)", isProtocol: false)
        }
    }

    private func fatal(_ reason: String, isProtocol: Bool) -> TLSIO {
        if failure == nil {
            failure = reason
            if !handshakeComplete {
                context.stats.handshakeErrors.add(1, ordering: .relaxed)
            } else if isProtocol {
                context.stats.protoErrors.add(1, ordering: .relaxed)
            }
        }
        return .error(reason: reason)
    }
}
