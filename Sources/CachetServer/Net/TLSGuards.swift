// Three guards on a TLS listener that run before OpenSSL does any work for a connection:
// - plaintext rejection: a client whose first byte cannot begin a TLS record (a memcached command,
//   an HTTP request) gets one SERVER_ERROR line in the clear and is closed; nothing it sent is parsed.
// - handshake timeout (`-o ssl_handshake_timeout`): a connection that has not finished its handshake
//   within the limit is closed by its worker's 1-second sweep. The worker keeps the connections still
//   in their handshake in a table of their own, so the sweep looks only at those (no timer per
//   connection, and no walk over the established ones).
// - handshake share (`-o ssl_handshake_share=<percent>`) when the worker runs its own handshakes
//   (`ssl_handshake_threads=0`; handshake threads get the share as a weight, HandshakeHandoff.swift):
//   answering a ClientHello costs a signature (~1 ms for RSA-2048), a request on an established connection
//   a few microseconds, and OpenSSL cannot be interrupted inside a signature. While a worker also serves a
//   busy connection (one with at least 16 events in the current clock second, seen this second or the one
//   before), handshakes are paced: after a handshake step that took d, the next ClientHello waits until d ×
//   (100 − share) / share has passed, its socket out of epoll, so busy clients get turns between any two
//   signatures instead of waiting behind a burst of them. A worker with no busy connection answers every
//   ClientHello at once: a storm on its own runs at full speed, and a connection that makes one request and
//   goes (as the storm's own do) does not count as busy.
import CachetTLS
import CLibevent
import Glibc

extension Connection {
    enum FirstByte { case tls, plaintext, notYet }

    /// Looks at the first byte the client sent without taking it off the socket (OpenSSL reads it next).
    /// End of stream or a socket error count as `.tls`: OpenSSL then sees them and fails the handshake
    /// the way it always did.
    func peekFirstByte() -> FirstByte {
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if n == 1 { return TLSRecordStart.canBegin(byte) ? .tls : .plaintext }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .notYet }
            return .tls
        }
    }

    /// Answers a plaintext client on a TLS port and closes it.
    func rejectPlaintext(_ t: TLSConnection) {
        t.rejectPlaintext()
        opsTLSFailed("client sent plaintext on a TLS port")
        // Take what the client already sent off the socket first: closing with unread input makes the
        // kernel send a reset, which can discard the reply before the client reads it.
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<16 {
            let n = scratch.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < scratch.count { break }
        }
        let reply = TLSRecordStart.plaintextReply
        _ = reply.withCString { Glibc.write(fd, $0, strlen($0)) }   // one short line: fits a fresh socket's buffer
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
        close()
    }

    /// Called by the worker's sweep for a connection whose handshake ran out of time.
    func handshakeTimedOut(after seconds: Int) {
        tls?.abandonHandshake()
        opsTLSFailed("handshake not finished within \(seconds) s")
        close()
    }
}

private let handshakeTimerCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().resumeDeferredHandshakes()
}

@inline(__always) func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

extension Connection {
    /// Over the worker's handshake share: take the socket out of epoll (the unread ClientHello would wake
    /// every pass) and wait for its turn (resumeDeferredHandshakes).
    func deferHandshake() {
        tls?.context.stats.handshakesDeferred.add(1, ordering: .relaxed)
        pauseForHandshakeShare()
        worker.deferHandshake(self)
    }
}

extension Worker {
    /// May a connection of this worker answer a ClientHello now (`now`: monotonicNanos())?
    func mayStartHandshake(now: UInt64) -> Bool {
        if server.settings.tls.handshakeShare >= 100 { return true }
        if server.clock.currentTime &- lastBusySecond > 1 { return true }   // nobody busy to protect
        return now >= handshakeAllowedAt
    }

    /// A handshake step of this worker took `start..<end`: the next ClientHello waits long enough for
    /// the step to be `ssl_handshake_share` percent of the time.
    func handshakeStepTook(from start: UInt64, to end: UInt64) {
        let share = UInt64(server.settings.tls.handshakeShare)
        if share >= 100 { return }
        handshakeAllowedAt = end &+ (end &- start) &* (100 &- share) / share
    }

    func deferHandshake(_ c: Connection) {
        deferredHandshakes.append(c)
        if deferredHandshakes.count == 1 { armHandshakeTimer() }
    }

    private func armHandshakeTimer() {
        if handshakeTimer == nil {
            handshakeTimer = event_new(base, -1, 0, handshakeTimerCallback, Unmanaged.passUnretained(self).toOpaque())
        }
        let wait = handshakeAllowedAt &- min(handshakeAllowedAt, monotonicNanos())
        var tv = timeval(tv_sec: Int(wait / 1_000_000_000), tv_usec: Int(max(wait % 1_000_000_000 / 1000, 100)))
        event_add(handshakeTimer, &tv)
    }

    /// The pause is over: the waiting connections answer their ClientHellos oldest first, as long as the
    /// share allows (normally one); the others keep waiting, still out of epoll, for the next pause's end.
    func resumeDeferredHandshakes() {
        var next = 0
        while next < deferredHandshakes.count && mayStartHandshake(now: monotonicNanos()) {
            let c = deferredHandshakes[next]
            next += 1
            c.resumeAfterHandshakeShare()
        }
        deferredHandshakes.removeFirst(next)
        if !deferredHandshakes.isEmpty { armHandshakeTimer() }
        publishWatchLines()
    }

    /// Closes the connections whose TLS handshake started more than `ssl_handshake_timeout` seconds ago.
    /// A connection's clock second of acceptance is compared with the current one, so a connection is
    /// closed between the timeout and a second or two after it.
    func closeStalledHandshakes(now: UInt32) {
        let timeout = server.settings.tls.handshakeTimeout
        guard timeout > 0, !handshaking.isEmpty else { return }
        var victims: [Connection] = []
        for (_, c) in handshaking where Int(now &- c.acceptedAt) > timeout { victims.append(c) }
        for c in victims { c.handshakeTimedOut(after: timeout) }
    }
}
