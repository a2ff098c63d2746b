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
    /// Serialises reloads (two concurrent `refresh_certs` would otherwise race to swap). It guards an
    /// unused Int rather than Void: ThreadSanitizer reports the inout access to a zero-sized value as a race
    /// between two threads that both held the lock (seen every run of concurrentRefreshAndLookup; gone with
    /// a value that has storage).
    private let reloading = Locked<Int>(0)
    private let lastRefreshTime: Atomic<Int64>
    /// Unix time generated ticket keys were last rotated (or made).
    private let lastKeyRotation: Atomic<Int64>
    /// ssl_auto_reload: the files' state when the serving context was built, the last state a reload was
    /// tried for, and when they were last looked at (main thread only, but kept behind a lock anyway).
    private let watch: Locked<(loaded: TLSFileState, tried: TLSFileState, checked: Int64)>
    private let notAfterTime: Atomic<Int64>  // Int64.min = unknown

    /// Builds the first context. Throws the startup error (print `error.stderrText`, exit 64).
    public init(settings: TLSSettings, stats: TLSStats = TLSStats()) throws(TLSContextError) {
        let files = TLSFileState.of(settings)   // before reading them: a change during the build shows next time
        let ctx = try TLSContextBuilder.build(settings, stats: stats)
        watch = Locked((loaded: files, tried: files, checked: Self.now()))
        self.settings = settings
        self.stats = stats
        current = Locked(ctx)
        lastRefreshTime = Atomic(Self.now())
        lastKeyRotation = Atomic(Self.now())
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
            let files = TLSFileState.of(settings)
            let fresh: TLSContext
            do throws(TLSContextError) {
                fresh = try TLSContextBuilder.build(settings, stats: stats, ticketKeysFrom: old)
            } catch {
                stats.reloadFailures.add(1, ordering: .relaxed)
                throw error
            }
            current.withLock { $0 = fresh }
            watch.withLock { $0.loaded = files }
            lastRefreshTime.store(Self.now(), ordering: .relaxed)
            notAfterTime.store(fresh.certNotAfter ?? Int64.min, ordering: .relaxed)
            // `old` is released at the end of this closure, outside the context lock; its SSL_CTX
            // is freed when the last connection made from it goes away.
        }
    }

    public enum AutoReload: Equatable, Sendable {
        case unchanged
        case reloaded
        /// The files changed but do not build a context (e.g. a new certificate next to the old key):
        /// the serving context stays; the next change of the files is tried again.
        case failed(TLSContextError)
    }

    /// Once a second from the main loop: with `ssl_auto_reload=<s>`, every <s> seconds looks at the
    /// certificate, key, CA and ticket-key files and reloads when they differ from what the serving
    /// context was built from. A state that failed to load is not retried (nor counted again) until the
    /// files change again.
    public func autoReloadIfDue(now: Int64) -> AutoReload {
        let interval = Int64(settings.autoReload)
        guard interval > 0 else { return .unchanged }
        let files: TLSFileState? = watch.withLock { w in
            guard now - w.checked >= interval else { return nil }
            w.checked = now
            let files = TLSFileState.of(settings)
            if files == w.loaded || files == w.tried { return nil }
            w.tried = files
            return files
        }
        guard files != nil else { return .unchanged }
        do {
            try reload()
            return .reloaded
        } catch {
            return .failed(error)
        }
    }

    /// Once a second from the main loop: without `ssl_ticket_key_file`, puts a fresh session-ticket key
    /// first when the current one is a day old (the previous one still decrypts for another day).
    /// Returns true when it rotated.
    @discardableResult
    public func rotateTicketKeysIfDue(now: Int64) -> Bool {
        guard settings.ticketKeyFile == nil,
              now - lastKeyRotation.load(ordering: .relaxed) >= TLSTicketKeys.rotationSeconds else { return false }
        return rotateTicketKeys(now: now)
    }

    /// Rotates the generated ticket keys now (a key file's keys change only by editing the file).
    @discardableResult
    public func rotateTicketKeys(now: Int64 = TLSContextStore.now()) -> Bool {
        guard settings.ticketKeyFile == nil else { return false }
        // Under the reload lock: a reload copies the keys of the context it replaces, and must copy them
        // either before or after a rotation, not lose it.
        return reloading.withLock { _ in
            lastKeyRotation.store(now, ordering: .relaxed)
            return TLSTicketKeys.rotate(currentContext())
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
    public var verifyNameFailures: UInt64 { stats.verifyNameFailures.load(ordering: .relaxed) }
    public var handshakesDeferred: UInt64 { stats.handshakesDeferred.load(ordering: .relaxed) }

    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}
