// A non-blocking socketpair with a client SSL (TLS_client_method) on one end and a TLSConnection
// on the other, driven in a loop on the test's thread (no event loop needed: both ends are ours).
import COpenSSL
import CachetTLS
import Glibc

struct ClientOptions {
    var maxVersion: Int32? = nil          // TLS1_2_VERSION / TLS1_3_VERSION
    var cert: String? = nil
    var key: String? = nil
    var trustCA: String? = nil            // verify the server against this CA
    var session: OpaquePointer? = nil     // SSL_SESSION to resume
}

/// The client side. Owns its SSL_CTX, SSL and fd.
final class TestClient {
    let ctx: OpaquePointer
    let ssl: OpaquePointer
    let fd: Int32

    init(fd: Int32, _ o: ClientOptions) {
        self.fd = fd
        ctx = SSL_CTX_new(TLS_client_method())!
        _ = cachet_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE) | Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        if let v = o.maxVersion { _ = cachet_SSL_CTX_set_max_proto_version(ctx, v) }
        if let c = o.cert { precondition(SSL_CTX_use_certificate_chain_file(ctx, c) == 1) }
        if let k = o.key { precondition(SSL_CTX_use_PrivateKey_file(ctx, k, SSL_FILETYPE_PEM) == 1) }
        if let ca = o.trustCA {
            precondition(SSL_CTX_load_verify_locations(ctx, ca, nil) == 1)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        }
        ssl = SSL_new(ctx)!
        precondition(SSL_set_fd(ssl, fd) == 1)
        SSL_set_connect_state(ssl)
        if let s = o.session { precondition(SSL_set_session(ssl, s) == 1) }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
        close(fd)
    }

    enum Step: Equatable { case done, again, failed(String) }

    func handshakeStep() -> Step {
        let r = SSL_do_handshake(ssl)
        if r == 1 { return .done }
        return classify(r)
    }

    func classify(_ r: Int32) -> Step {
        let e = SSL_get_error(ssl, r)
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return .again }
        var text = "SSL_get_error=\(e)"
        var code = ERR_get_error()
        while code != 0 {
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, 256)
            text += " " + buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            code = ERR_get_error()
        }
        return .failed(text)
    }

    /// Reads what is available; returns bytes, or nil on would-block; `.failed` on error/close.
    func read(max: Int = 65536) -> (bytes: [UInt8], step: Step) {
        var buf = [UInt8](repeating: 0, count: max)
        let r = buf.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
        if r > 0 { return (Array(buf[0..<Int(r)]), .done) }
        return ([], classify(r))
    }

    /// Server certificate subject as seen by the client (RFC 2253).
    var serverSubject: String? {
        guard let cert = SSL_get0_peer_certificate(ssl) else { return nil }
        return TestClient.rfc2253(X509_get_subject_name(cert))
    }

    static func rfc2253(_ name: OpaquePointer?) -> String? {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        _ = X509_NAME_print_ex(bio, name, 0, cachet_XN_FLAG_RFC2253)
        var p: UnsafeMutablePointer<CChar>? = nil
        let n = cachet_BIO_get_mem_data(bio, &p)
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }

    var version: String { String(cString: SSL_get_version(ssl)) }
    var sessionReused: Bool { SSL_session_reused(ssl) == 1 }
}

/// A connected, non-blocking AF_UNIX stream pair: (server fd, client fd).
func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    return (fds[0], fds[1])
}

/// One server connection + one client, wired by a socketpair.
final class Pair {
    let server: TLSConnection
    let client: TestClient
    let serverFD: Int32

    init(context: TLSContext, verify: ListenerTLS = .inherit, client o: ClientOptions = ClientOptions()) {
        ignoreSIGPIPE
        let (s, c) = socketPair()
        serverFD = s
        server = TLSConnection(fd: s, context: context, listener: verify)!
        client = TestClient(fd: c, o)
    }

    deinit {
        server.shutdown()
        close(serverFD)
    }

    struct HandshakeResult {
        var server: TLSStep
        var client: TestClient.Step
    }

    /// Drives both sides until both are done or one failed (or the loop stalls).
    @discardableResult
    func handshake(maxRounds: Int = 10_000) -> HandshakeResult {
        var s: TLSStep = .wantRead
        var c: TestClient.Step = .again
        var stalled = 0
        for _ in 0..<maxRounds {
            if !isFinal(s) { s = server.handshake() }
            if c == .again { c = client.handshakeStep() }
            if isFinal(s) && c != .again { break }
            if isFinal(s) { stalled += 1; if stalled > 100 { break } }
        }
        return HandshakeResult(server: s, client: c)
    }

    func isFinal(_ s: TLSStep) -> Bool {
        if case .failed = s { return true }
        return s == .done
    }

    /// Client sends `data`, server reads it all. Returns the bytes the server received.
    func clientToServer(_ data: [UInt8], readChunk: Int = 16384) -> [UInt8] {
        var sent = 0
        var received: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: readChunk)
        var rounds = 0
        while received.count < data.count && rounds < 1_000_000 {
            rounds += 1
            if sent < data.count {
                let r = data.withUnsafeBytes { SSL_write(client.ssl, $0.baseAddress! + sent, Int32(data.count - sent)) }
                if r > 0 { sent += Int(r) } else if case .failed(let e) = client.classify(r) { fatalError(e) }
            }
            let io = buf.withUnsafeMutableBytes { server.read(into: $0) }
            switch io {
            case .bytes(let n): received += buf[0..<n]
            case .wantRead, .wantWrite: break
            case .closed, .error: return received
            }
        }
        return received
    }

    /// Server sends `data` with TLSConnection.write (partial writes allowed); client reads it all.
    /// Returns (bytes the client received, number of partial writes).
    func serverToClient(_ data: [UInt8]) -> (received: [UInt8], partials: Int, result: TLSIO?) {
        var sent = 0
        var partials = 0
        var received: [UInt8] = []
        var rounds = 0
        while received.count < data.count && rounds < 1_000_000 {
            rounds += 1
            if sent < data.count {
                // On want* the retry passes the same remaining bytes (same length and content).
                let io = data.withUnsafeBytes { server.write(UnsafeRawBufferPointer(rebasing: $0[sent...])) }
                switch io {
                case .bytes(let n):
                    if n < data.count - sent { partials += 1 }
                    sent += n
                case .wantRead, .wantWrite: break
                case .closed, .error: return (received, partials, io)
                }
            }
            let (bytes, step) = client.read()
            received += bytes
            if case .failed = step { return (received, partials, nil) }
        }
        return (received, partials, nil)
    }
}

let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN); return () }()

/// A server context from the standard fixture cert/key plus tweaks.
func settings(_ tweak: (inout TLSSettings) -> Void = { _ in }) -> TLSSettings {
    var s = TLSSettings()
    s.enabled = true
    s.chainCert = fixtures.serverCert
    s.key = fixtures.serverKey
    tweak(&s)
    return s
}

func context(_ tweak: (inout TLSSettings) -> Void = { _ in }) throws -> TLSContext {
    try TLSContextBuilder.build(settings(tweak))
}
