// TLSConnection against a real OpenSSL client over a non-blocking socketpair.
import CachetTLS
import COpenSSL
import Glibc
import Testing

@Suite struct ConnectionTests {
    @Test(arguments: [TLS1_2_VERSION, TLS1_3_VERSION])
    func roundTripWithMegabytePayload(maxVersion: Int32) throws {
        let store = try TLSContextStore(settings: settings())
        let pair = Pair(context: store.currentContext(), client: ClientOptions(maxVersion: maxVersion, trustCA: fixtures.caCert))
        let hs = pair.handshake()
        #expect(hs.server == .done)
        #expect(hs.client == .done)
        #expect(pair.server.version == (maxVersion == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2"))
        #expect(pair.client.version == pair.server.version)
        #expect(pair.server.cipher == (maxVersion == TLS1_3_VERSION ? "TLS_AES_256_GCM_SHA384" : "ECDHE-RSA-AES256-GCM-SHA384"))
        #expect(pair.server.sessionReused == false)
        #expect(pair.server.peerSubject == nil)
        #expect(pair.client.serverSubject == "OU=first,CN=server1")

        let request = Array("version\r\n".utf8)
        #expect(pair.clientToServer(request) == request)

        var payload = [UInt8](repeating: 0, count: 1 << 20)
        for i in payload.indices { payload[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 7) }
        let (received, partials, failure) = pair.serverToClient(payload)
        #expect(failure == nil)
        #expect(received.count == payload.count)
        #expect(received == payload)
        #expect(partials > 0, "1 MiB through a socketpair must need partial writes")

        // And the other direction, read in small pieces (exercises SSL_pending).
        #expect(pair.clientToServer(payload, readChunk: 1000) == payload)
        #expect(store.handshakeErrors == 0)
        #expect(store.protoErrors == 0)
    }

    /// The server's first read after the client wrote (a socketpair delivers at once, but the first
    /// SSL_read may still see only part of a record): retries while OpenSSL wants more.
    private func firstRead(_ server: TLSConnection, into buf: inout [UInt8]) -> TLSIO {
        var got: TLSIO = .wantRead
        for _ in 0..<100 {
            got = buf.withUnsafeMutableBytes { server.read(into: $0) }
            if got != .wantRead { break }
        }
        return got
    }

    @Test func pendingReportsBufferedPlaintext() throws {
        let pair = Pair(context: try context())
        #expect(pair.handshake().server == .done)
        let msg = Array(repeating: UInt8(ascii: "x"), count: 1000)
        _ = msg.withUnsafeBytes { SSL_write(pair.client.ssl, $0.baseAddress, Int32($0.count)) }
        var small = [UInt8](repeating: 0, count: 10)
        #expect(firstRead(pair.server, into: &small) == .bytes(10))
        #expect(pair.server.hasPending)
        var rest = [UInt8](repeating: 0, count: 2000)
        #expect(rest.withUnsafeMutableBytes { pair.server.read(into: $0) } == .bytes(990))
        #expect(!pair.server.hasPending)
    }

    /// Read-ahead takes both records in one read(2); after the first, only `hasPending` (not SSL_pending,
    /// which counts decrypted bytes only) says the second can be read although the socket is empty.
    @Test func hasPendingSeesRecordsTakenByReadAhead() throws {
        let pair = Pair(context: try context())
        #expect(pair.handshake().server == .done)
        let a = Array(repeating: UInt8(ascii: "a"), count: 100), b = Array(repeating: UInt8(ascii: "b"), count: 100)
        _ = a.withUnsafeBytes { SSL_write(pair.client.ssl, $0.baseAddress, Int32($0.count)) }
        _ = b.withUnsafeBytes { SSL_write(pair.client.ssl, $0.baseAddress, Int32($0.count)) }
        var buf = [UInt8](repeating: 0, count: 100)
        #expect(firstRead(pair.server, into: &buf) == .bytes(100))
        #expect(buf == a)
        var peek = [UInt8](repeating: 0, count: 1)
        #expect(recv(pair.server.fd, &peek, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == -1)   // socket drained
        #expect(pair.server.hasPending)
        #expect(buf.withUnsafeMutableBytes { pair.server.read(into: $0) } == .bytes(100))
        #expect(buf == b)
        #expect(!pair.server.hasPending)
    }

    @Test func cleanCloseAndEOF() throws {
        let ctx = try context()
        // close_notify from the client → .closed
        do {
            let pair = Pair(context: ctx)
            #expect(pair.handshake().server == .done)
            _ = SSL_shutdown(pair.client.ssl)
            var buf = [UInt8](repeating: 0, count: 64)
            #expect(buf.withUnsafeMutableBytes { pair.server.read(into: $0) } == .closed)
        }
        // plain EOF without close_notify → .closed, not an error
        do {
            let pair = Pair(context: ctx)
            #expect(pair.handshake().server == .done)
            Glibc.shutdown(pair.client.fd, Int32(SHUT_WR))
            var buf = [UInt8](repeating: 0, count: 64)
            #expect(buf.withUnsafeMutableBytes { pair.server.read(into: $0) } == .closed)
        }
        #expect(ctx.stats.protoErrors.load(ordering: .relaxed) == 0)
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 0)
    }

    @Test func serverShutdownSendsCloseNotify() throws {
        let pair = Pair(context: try context())
        #expect(pair.handshake().server == .done)
        pair.server.shutdown()
        pair.server.shutdown()  // idempotent
        let (_, step) = pair.client.read()
        #expect(step == .failed("SSL_get_error=\(SSL_ERROR_ZERO_RETURN)"))
    }

    @Test func garbageAfterHandshakeIsAProtocolError() throws {
        let ctx = try context()
        let pair = Pair(context: ctx)
        #expect(pair.handshake().server == .done)
        let junk = Array("\u{17}\u{3}\u{3}\u{0}\u{5}hello".utf8)  // application-data record that won't decrypt
        _ = junk.withUnsafeBytes { Glibc.write(pair.client.fd, $0.baseAddress, $0.count) }
        var buf = [UInt8](repeating: 0, count: 64)
        let io = buf.withUnsafeMutableBytes { pair.server.read(into: $0) }
        guard case .error = io else { Issue.record("expected error, got \(io)"); return }
        #expect(ctx.stats.protoErrors.load(ordering: .relaxed) == 1)
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 0)
        // latched: further calls repeat the failure without counting again
        _ = buf.withUnsafeMutableBytes { pair.server.read(into: $0) }
        #expect(ctx.stats.protoErrors.load(ordering: .relaxed) == 1)
    }

    @Test func plaintextClientFailsHandshakeAndIsCounted() throws {
        let ctx = try context()
        ignoreSIGPIPE
        let (s, c) = socketPair()
        defer { close(s); close(c) }
        let conn = try #require(TLSConnection(fd: s, context: ctx))
        #expect(conn.handshake() == .wantRead)  // nothing sent yet
        let line = Array("version\r\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(c, $0.baseAddress, $0.count) }
        let step = conn.handshake()
        guard case .failed(let reason) = step else { Issue.record("expected failure, got \(step)"); return }
        #expect(conn.plaintextDetected)
        #expect(reason.hasPrefix("client sent plaintext"))
        #expect(reason.contains("wrong version number"))
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 1)
        #expect(conn.handshake() == step)  // latched, counted once
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 1)
        conn.shutdown()  // no-op after failure
    }

    @Test func connectThenCloseIsAHandshakeError() throws {
        let ctx = try context()
        let (s, c) = socketPair()
        defer { close(s) }
        let conn = try #require(TLSConnection(fd: s, context: ctx))
        close(c)
        guard case .failed(let reason) = conn.handshake() else { Issue.record("expected failure"); return }
        #expect(reason == "connection closed during handshake")
        #expect(!conn.plaintextDetected)
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 1)
    }

    @Test func tls12ClientAgainstTLS13Minimum() throws {
        let ctx = try context { $0.minVersion = 3 }
        let pair = Pair(context: ctx, client: ClientOptions(maxVersion: TLS1_2_VERSION))
        let hs = pair.handshake()
        guard case .failed(let reason) = hs.server else { Issue.record("expected failure, got \(hs)"); return }
        #expect(reason.contains("unsupported protocol"))
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 1)
    }

    @Test func ciphersApplyToTLS12AndCiphersuitesToTLS13() throws {
        let ctx = try context {
            $0.ciphers = "ECDHE-RSA-AES128-GCM-SHA256"
            $0.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"
        }
        let p12 = Pair(context: ctx, client: ClientOptions(maxVersion: TLS1_2_VERSION))
        #expect(p12.handshake().server == .done)
        #expect(p12.server.cipher == "ECDHE-RSA-AES128-GCM-SHA256")
        let p13 = Pair(context: ctx)
        #expect(p13.handshake().server == .done)
        #expect(p13.server.cipher == "TLS_CHACHA20_POLY1305_SHA256")
    }

    @Test func readBeforeHandshakeCompletesIt() throws {
        let ctx = try context()
        let pair = Pair(context: ctx)
        // Drive only the client handshake; the server goes straight to read().
        var buf = [UInt8](repeating: 0, count: 64)
        var c: TestClient.Step = .again
        var got: TLSIO = .wantRead
        let hello = Array("hi".utf8)
        var wrote = false
        for _ in 0..<1000 {
            if c == .again { c = pair.client.handshakeStep() }
            if c == .done && !wrote {
                wrote = hello.withUnsafeBytes { SSL_write(pair.client.ssl, $0.baseAddress, 2) } == 2
            }
            got = buf.withUnsafeMutableBytes { pair.server.read(into: $0) }
            if case .bytes = got { break }
        }
        #expect(got == .bytes(2))
        #expect(pair.server.handshakeComplete)
        #expect(pair.server.handshake() == .done)
    }
}
