// Two guards on a TLS listener that run before OpenSSL does any work for a connection:
// - plaintext rejection: a client whose first byte cannot begin a TLS record (a memcached command,
//   an HTTP request) gets one SERVER_ERROR line in the clear and is closed; nothing it sent is parsed.
// - handshake timeout (`-o ssl_handshake_timeout`): a connection that has not finished its handshake
//   within the limit is closed by its worker's 1-second sweep. The worker keeps the connections still
//   in their handshake in a table of their own, so the sweep looks only at those (no timer per
//   connection, and no walk over the established ones).
import CachetTLS
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

extension Worker {
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
