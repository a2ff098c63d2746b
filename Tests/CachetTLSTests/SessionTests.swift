// Session resumption: tickets (always on, as in memcached) and the server session cache
// (`ssl_session_cache`), for TLS 1.2 and 1.3, and across refresh_certs.
import CachetTLS
import COpenSSL
import Glibc
import Testing

struct ResumeCase: Sendable, CustomTestStringConvertible {
    let maxVersion: Int32
    let sessionCache: Bool
    var testDescription: String {
        "\(maxVersion == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2"), session cache \(sessionCache ? "on" : "off")"
    }
}

/// Full handshake + a little data both ways (so the TLS 1.3 client processes the tickets), then
/// the client's SSL_SESSION (+1 reference; free it).
func firstSession(_ ctx: TLSContext, _ verify: ListenerTLS = .inherit, _ o: ClientOptions) -> OpaquePointer? {
    let pair = Pair(context: ctx, verify: verify, client: o)
    guard pair.handshake().server == .done else { return nil }
    let ping = Array("ping".utf8)
    guard pair.clientToServer(ping) == ping, pair.serverToClient(ping).received == ping else { return nil }
    _ = SSL_shutdown(pair.client.ssl)
    return SSL_get1_session(pair.client.ssl)
}

@Suite struct SessionTests {
    static let cases = [TLS1_2_VERSION, TLS1_3_VERSION].flatMap { v in
        [false, true].map { ResumeCase(maxVersion: v, sessionCache: $0) }
    }

    @Test(arguments: cases)
    func resumes(_ c: ResumeCase) throws {
        let store = try TLSContextStore(settings: settings { $0.sessionCache = c.sessionCache })
        let session = try #require(firstSession(store.currentContext(), .inherit, ClientOptions(maxVersion: c.maxVersion)))
        defer { SSL_SESSION_free(session) }
        let fullHandshakeSessions = store.newSessions

        let second = Pair(context: store.currentContext(), client: ClientOptions(maxVersion: c.maxVersion, session: session))
        #expect(second.handshake().server == .done)
        #expect(second.server.sessionReused)
        #expect(second.client.sessionReused)
        if c.sessionCache {
            if c.maxVersion == TLS1_3_VERSION { #expect(fullHandshakeSessions >= 2) }  // two tickets
        } else {
            #expect(store.newSessions == 0)  // the callback is only installed with the cache
        }
        #expect(store.handshakeErrors == 0)
    }

    @Test(arguments: [TLS1_2_VERSION, TLS1_3_VERSION])
    func resumesWithVerifyPeerAndNoCache(maxVersion: Int32) throws {
        // memcached would abort this handshake ("session id context uninitialized"): Cachet always
        // sets the session id context.
        let ctx = try context { $0.caCert = fixtures.caCert; $0.verifyMode = 1 }
        let o = ClientOptions(maxVersion: maxVersion, cert: fixtures.clientCert, key: fixtures.clientKey)
        let session = try #require(firstSession(ctx, .inherit, o))
        defer { SSL_SESSION_free(session) }
        var again = o
        again.session = session
        let second = Pair(context: ctx, client: again)
        #expect(second.handshake().server == .done)
        #expect(second.server.sessionReused)
        #expect(second.server.peerSubject == "CN=client1")  // the resumed session carries the peer cert
    }

    @Test(arguments: [TLS1_2_VERSION, TLS1_3_VERSION])
    func btlsSessionDoesNotSkipMTLSCertificateCheck(maxVersion: Int32) throws {
        let ctx = try context { $0.caCert = fixtures.caCert; $0.sessionCache = true }
        let session = try #require(firstSession(ctx, .basic, ClientOptions(maxVersion: maxVersion)))
        defer { SSL_SESSION_free(session) }
        // Same client, no certificate, offers the btls session to an mtls listener: must fail.
        let sneaky = Pair(context: ctx, verify: .mutual, client: ClientOptions(maxVersion: maxVersion, session: session))
        guard case .failed = sneaky.handshake().server else { Issue.record("mtls accepted a btls session"); return }
        #expect(!sneaky.server.sessionReused)
    }

    @Test(arguments: [TLS1_2_VERSION, TLS1_3_VERSION])
    func ticketsSurviveRefresh(maxVersion: Int32) throws {
        let store = try TLSContextStore(settings: settings())
        let session = try #require(firstSession(store.currentContext(), .inherit, ClientOptions(maxVersion: maxVersion)))
        defer { SSL_SESSION_free(session) }
        #expect(store.refresh() == nil)
        let second = Pair(context: store.currentContext(), client: ClientOptions(maxVersion: maxVersion, session: session))
        #expect(second.handshake().server == .done)
        #expect(second.server.sessionReused)
    }

    /// Generated ticket keys: a rotation puts a new key first and keeps the old one for decrypting, so a
    /// ticket survives one rotation and not two; reloads carry the whole key list over.
    @Test(arguments: [TLS1_2_VERSION, TLS1_3_VERSION])
    func generatedKeysRotateKeepingThePreviousOne(maxVersion: Int32) throws {
        let store = try TLSContextStore(settings: settings())
        let ctx0 = store.currentContext()
        #expect(TLSTicketKeys.names(of: ctx0).count == 1)
        let session = try #require(firstSession(ctx0, .inherit, ClientOptions(maxVersion: maxVersion)))
        defer { SSL_SESSION_free(session) }
        func resumes() -> Bool {
            let p = Pair(context: store.currentContext(), client: ClientOptions(maxVersion: maxVersion, session: session))
            return p.handshake().server == .done && p.server.sessionReused
        }
        let before = TLSTicketKeys.names(of: ctx0)
        #expect(!store.rotateTicketKeysIfDue(now: TLSContextStore.now() + 60))   // not a day yet
        #expect(store.rotateTicketKeysIfDue(now: TLSContextStore.now() + TLSTicketKeys.rotationSeconds))
        let after = TLSTicketKeys.names(of: store.currentContext())
        #expect(after.count == 2 && after[1] == before[0] && after[0] != before[0])
        #expect(store.refresh() == nil)
        #expect(TLSTicketKeys.names(of: store.currentContext()) == after)   // carried over by the reload
        #expect(resumes(), "a ticket under the previous key must still resume")
        #expect(store.rotateTicketKeys())
        #expect(TLSTicketKeys.names(of: store.currentContext()).count == 2)
        #expect(!resumes(), "a ticket two rotations old must not resume")
    }
}
