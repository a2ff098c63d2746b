// The process-wide current server context and its atomic reload (`refresh_certs`, SIGHUP).
//
// memcached reloads the certificate, key and CA *into the live SSL_CTX*: a cert whose key does not
// match leaves the context half-updated and every new handshake fails. Cachet instead
// builds a whole new context off to the side from the same settings (re-reading the files) and
// swaps it in only when every step succeeded; on failure the old context keeps serving.
//
// Connections take the current context when they are created and keep it (TLSConnection holds a
// strong reference, and OpenSSL's SSL holds its own SSL_CTX reference), so a swap never affects a
// live connection: old connections keep their certificate, new ones get the new one.
import CachetSync
import COpenSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class TLSContextStore: Sendable {
    public let settings: TLSSettings
    /// Counters shared by every context this store builds (survive reloads).
    public let stats: TLSStats

    /// The context new connections use. Readers take the lock only to copy (retain) the reference.
    private let current: Locked<TLSContext>
    /// Serialises reloads (two concurrent `refresh_certs` would otherwise race to swap).
    private let reloading = Locked<Void>(())
    private let lastRefreshTime: Atomic<Int64>
    private let notAfterTime: Atomic<Int64>  // Int64.min = unknown

    /// Builds the first context. Throws the startup error (print `error.stderrText`, exit 64).
    public init(settings: TLSSettings, stats: TLSStats = TLSStats()) throws(TLSContextError) {
        let ctx = try TLSContextBuilder.build(settings, stats: stats)
        self.settings = settings
        self.stats = stats
        current = Locked(ctx)
        lastRefreshTime = Atomic(Self.now())
        notAfterTime = Atomic(ctx.certNotAfter ?? Int64.min)
    }

    /// The context to create a new connection's SSL from. Cheap: one uncontended lock + retain.
    public func currentContext() -> TLSContext {
        current.withLock { $0 }
    }

    /// `refresh_certs`: returns nil on success (reply `OK`), otherwise memcached's failure text
    /// without `\r\n` (reply it followed by `\r\n`; it ignores `noreply`). On failure the current
    /// context is unchanged and `reloadFailures` is incremented. Use `reload()` to also get the
    /// OpenSSL queue text memcached prints to stderr.
    public func refresh() -> String? {
        do {
            try reload()
            return nil
        } catch {
            return error.message
        }
    }

    /// Same as `refresh()`, with the full error (its `opensslErrors` is what memcached prints to
    /// the server's stderr on a failed refresh).
    public func reload() throws(TLSContextError) {
        try reloading.withLock { _ throws(TLSContextError) in
            let old = currentContext()
            let fresh: TLSContext
            do throws(TLSContextError) {
                fresh = try TLSContextBuilder.build(settings, stats: stats, ticketKeysFrom: old)
            } catch {
                stats.reloadFailures.add(1, ordering: .relaxed)
                throw error
            }
            current.withLock { $0 = fresh }
            lastRefreshTime.store(Self.now(), ordering: .relaxed)
            notAfterTime.store(fresh.certNotAfter ?? Int64.min, ordering: .relaxed)
            // `old` is released at the end of this closure, outside the context lock; its SSL_CTX
            // is freed when the last connection made from it goes away.
        }
    }

    /// Unix time of the last successful load (startup or refresh):
    /// `time_since_server_cert_refresh = now - lastRefresh`.
    public var lastRefresh: Int64 { lastRefreshTime.load(ordering: .relaxed) }
    /// Unix time of the current leaf certificate's notAfter (nil if unreadable).
    public var certNotAfter: Int64? {
        let v = notAfterTime.load(ordering: .relaxed)
        return v == Int64.min ? nil : v
    }

    public var handshakeErrors: UInt64 { stats.handshakeErrors.load(ordering: .relaxed) }
    public var protoErrors: UInt64 { stats.protoErrors.load(ordering: .relaxed) }
    public var newSessions: UInt64 { stats.newSessions.load(ordering: .relaxed) }
    public var reloadFailures: UInt64 { stats.reloadFailures.load(ordering: .relaxed) }
    public var handshakeTimeouts: UInt64 { stats.handshakeTimeouts.load(ordering: .relaxed) }
    public var plaintextRejected: UInt64 { stats.plaintextRejected.load(ordering: .relaxed) }
    public var handshakes: UInt64 { stats.handshakes.load(ordering: .relaxed) }
    public var resumedHandshakes: UInt64 { stats.resumedHandshakes.load(ordering: .relaxed) }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}
