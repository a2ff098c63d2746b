// Client-certificate verification (global ssl_verify_mode, btls:/mtls: listeners) and the atomic
// refresh_certs swap, each proven with real handshakes.
import CachetTLS
import COpenSSL
import Glibc
import Testing

@Suite struct VerifyTests {
    static let versions = [TLS1_2_VERSION, TLS1_3_VERSION]

    @Test(arguments: versions)
    func requireWithoutClientCertFailsAndIsCounted(maxVersion: Int32) throws {
        let ctx = try context { $0.caCert = fixtures.caCert; $0.verifyMode = 2 }
        let pair = Pair(context: ctx, client: ClientOptions(maxVersion: maxVersion))
        let hs = pair.handshake()
        guard case .failed(let reason) = hs.server else { Issue.record("expected failure, got \(hs)"); return }
        #expect(reason.contains("peer did not return a certificate"))
        // With TLS 1.3 the client already considers its handshake done; the server never does.
        if maxVersion == TLS1_3_VERSION { #expect(hs.client == .done) }
        #expect(!pair.server.handshakeComplete)
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 1)
        #expect(ctx.stats.protoErrors.load(ordering: .relaxed) == 0)
    }

    @Test(arguments: versions)
    func mtlsListenerRequiresCertEvenWhenGlobalModeIsNone(maxVersion: Int32) throws {
        let ctx = try context { $0.caCert = fixtures.caCert }
        let without = Pair(context: ctx, verify: .mutual, client: ClientOptions(maxVersion: maxVersion))
        guard case .failed = without.handshake().server else { Issue.record("mtls without cert must fail"); return }
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 1)

        let with = Pair(context: ctx, verify: .mutual,
                        client: ClientOptions(maxVersion: maxVersion, cert: fixtures.clientCert, key: fixtures.clientKey))
        #expect(with.handshake().server == .done)
        #expect(with.server.peerSubject == "CN=client1")
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 1)
    }

    @Test func btlsListenerIgnoresGlobalRequire() throws {
        let ctx = try context { $0.caCert = fixtures.caCert; $0.verifyMode = 2 }
        let pair = Pair(context: ctx, verify: .basic)
        #expect(pair.handshake().server == .done)
        #expect(pair.server.peerSubject == nil)
    }

    @Test func requestModeAcceptsBothAndVerifiesWhenSent() throws {
        let ctx = try context { $0.caCert = fixtures.caCert; $0.verifyMode = 1 }
        let anon = Pair(context: ctx)
        #expect(anon.handshake().server == .done)
        #expect(anon.server.peerSubject == nil)
        let authed = Pair(context: ctx, client: ClientOptions(cert: fixtures.clientCert, key: fixtures.clientKey))
        #expect(authed.handshake().server == .done)
        #expect(authed.server.peerSubject == "CN=client1")
    }

    @Test func clientCertFromUnknownCAIsRejected() throws {
        let ctx = try context { $0.caCert = fixtures.otherCACert; $0.verifyMode = 2 }
        let pair = Pair(context: ctx, client: ClientOptions(cert: fixtures.clientCert, key: fixtures.clientKey))
        guard case .failed(let reason) = pair.handshake().server else { Issue.record("expected failure"); return }
        #expect(reason.contains("certificate verify failed"))
        #expect(ctx.stats.handshakeErrors.load(ordering: .relaxed) == 1)
    }
}

@Suite struct RefreshTests {
    /// Live files the store reads; the test rewrites them like an operator would.
    func liveFiles(_ tag: String) -> (cert: String, key: String) {
        let cert = fixtures.path("live-\(tag).pem"), key = fixtures.path("live-\(tag).key")
        fixtures.copy(fixtures.serverCert, to: cert)
        fixtures.copy(fixtures.serverKey, to: key)
        return (cert, key)
    }

    func servedSubject(_ store: TLSContextStore) -> String? {
        let pair = Pair(context: store.currentContext(), client: ClientOptions(trustCA: fixtures.caCert))
        guard pair.handshake().server == .done else { return nil }
        return pair.client.serverSubject
    }

    @Test func failedRefreshKeepsServingTheOldContext() throws {
        let (cert, key) = liveFiles("atomic")
        let store = try TLSContextStore(settings: settings { $0.chainCert = cert; $0.key = key })
        #expect(servedSubject(store) == "OU=first,CN=server1")
        let loadedAt = store.lastRefresh
        let notAfter = store.certNotAfter
        #expect(notAfter != nil)

        // An existing connection made before any refresh.
        let old = Pair(context: store.currentContext())
        #expect(old.handshake().server == .done)

        // New cert on disk whose key is not the configured key (memcached would now be broken).
        fixtures.copy(fixtures.server2Cert, to: cert)
        #expect(store.refresh()
            == "Error loading the key: \(key) : error:05800074:x509 certificate routines::key values mismatch")
        #expect(store.reloadFailures == 1)
        #expect(store.lastRefresh == loadedAt)
        #expect(servedSubject(store) == "OU=first,CN=server1")
        #expect(store.handshakeErrors == 0)

        // Missing key file: also refused, with memcached's text.
        fixtures.copy(fixtures.serverCert, to: cert)
        precondition(sh("mv \(q(key)) \(q(key)).moved") == 0)
        #expect(store.refresh()
            == "Error loading the key: \(key) : error:80000002:system library::No such file or directory")
        #expect(store.reloadFailures == 2)
        #expect(servedSubject(store) == "OU=first,CN=server1")

        // Now a consistent pair: swapped in; new handshakes get it, the old connection keeps working.
        fixtures.copy(fixtures.server2Cert, to: cert)
        fixtures.copy(fixtures.server2Key, to: key)
        sleep(1)
        #expect(store.refresh() == nil)
        #expect(store.lastRefresh > loadedAt)
        #expect(servedSubject(store) == "OU=second,CN=server2")
        #expect(old.client.serverSubject == "OU=first,CN=server1")
        let echo = Array("still alive\r\n".utf8)
        #expect(old.clientToServer(echo) == echo)
        #expect(store.reloadFailures == 2)
    }

    @Test func refreshReportsCAErrorsAndReloadsCA() throws {
        let (cert, key) = liveFiles("ca")
        let ca = fixtures.path("live-trust.pem")
        fixtures.copy(fixtures.caCert, to: ca)
        let store = try TLSContextStore(settings: settings {
            $0.chainCert = cert; $0.key = key; $0.caCert = ca; $0.verifyMode = 2
        })
        fixtures.copy(fixtures.garbageKey, to: ca)
        #expect(store.refresh()
            == "Error loading the CA certificate: \(ca) : error:05800088:x509 certificate routines::no certificate or crl found")
        do {
            try store.reload()
            Issue.record("reload should fail")
        } catch {
            #expect(error.kind == .caCertificate)
            #expect(error.stderrText.hasSuffix("\r\n"))
        }
        #expect(store.reloadFailures == 2)
        // Old CA still in force: the CA-signed client cert is accepted.
        let pair = Pair(context: store.currentContext(),
                        client: ClientOptions(cert: fixtures.clientCert, key: fixtures.clientKey))
        #expect(pair.handshake().server == .done)
        #expect(pair.server.peerSubject == "CN=client1")

        // A different CA on disk: after refresh the same client cert is refused.
        fixtures.copy(fixtures.otherCACert, to: ca)
        #expect(store.refresh() == nil)
        let refused = Pair(context: store.currentContext(),
                           client: ClientOptions(cert: fixtures.clientCert, key: fixtures.clientKey))
        guard case .failed = refused.handshake().server else { Issue.record("expected failure"); return }
        #expect(store.handshakeErrors == 1)
    }

    @Test func concurrentRefreshAndLookup() throws {
        let store = try TLSContextStore(settings: settings())
        // Readers and reloaders on several threads; every context handed out must be usable.
        final class Box: @unchecked Sendable { let store: TLSContextStore; init(_ s: TLSContextStore) { store = s } }
        let box = Unmanaged.passRetained(Box(store))
        var threads: [pthread_t] = []
        for i in 0..<4 {
            var t = pthread_t()
            let start: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { arg in
                let b = Unmanaged<Box>.fromOpaque(arg!).takeUnretainedValue()
                for _ in 0..<20 {
                    let ctx = b.store.currentContext()
                    let ssl = SSL_new(ctx.sslContext)
                    precondition(ssl != nil)
                    SSL_free(ssl)
                }
                return nil
            }
            let reloader: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { arg in
                let b = Unmanaged<Box>.fromOpaque(arg!).takeUnretainedValue()
                for _ in 0..<5 { precondition(b.store.refresh() == nil) }
                return nil
            }
            #expect(pthread_create(&t, nil, i % 2 == 0 ? start : reloader, box.toOpaque()) == 0)
            threads.append(t)
        }
        for t in threads { pthread_join(t, nil) }
        box.release()
        #expect(store.reloadFailures == 0)
        #expect(servedSubjectOK(store))
    }

    func servedSubjectOK(_ store: TLSContextStore) -> Bool { servedSubject(store) == "OU=first,CN=server1" }
}
