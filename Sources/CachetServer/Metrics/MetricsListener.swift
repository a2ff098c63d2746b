// The metrics endpoint's plain HTTP/1.x listener (`-o metrics_port`), on the main thread's event base next to
// the cache listeners: a scrape never runs on a worker, so it never delays a request.
//
// It is deliberately small and defensive, because whatever reaches this port must never affect the cache port:
// - one request per connection (`Connection: close`), GET or HEAD, `/metrics` (or `/`, a pointer to it);
// - the request head must arrive whole within 5 seconds of the accept and fit in 8 KB (slowloris and garbage
//   are cut off: 400/431/408-less close), and the reply must be taken within 5 seconds;
// - at most 32 connections at once; more are answered 503 and closed at accept;
// - non-blocking sockets throughout; a page is built in one go (cost: slab classes + workers, not items).
import CLibevent
import Glibc

private let metricsAcceptCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { fd, _, arg in
    Unmanaged<MetricsListener>.fromOpaque(arg!).takeUnretainedValue().acceptAll(fd)
}

private let metricsConnCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, what, arg in
    let conn = Unmanaged<MetricsConnection>.fromOpaque(arg!).takeUnretainedValue()
    conn.listener?.handle(conn, what: what)
}

final class MetricsListener {
    static let maxConnections = 32
    static let maxRequestBytes = 8192
    static let timeoutSeconds = 5

    let server: ServerContext
    let base: OpaquePointer
    private var fds: [Int32] = []
    private var acceptEvents: [OpaquePointer] = []
    private var connections: [Int32: MetricsConnection] = [:]

    init(server: ServerContext, base: OpaquePointer) {
        self.server = server
        self.base = base
    }

    /// Binds `addr:port`; on failure returns the message and exit code (EX_OSERR, as for the cache listeners).
    func open(addr: String, port: Int) -> BindFailure? {
        let (fds, err) = SocketFactory.tcp(host: addr, port: port, backlog: 64)
        if fds.isEmpty {
            let why = err < 0 ? "cannot resolve \(addr)" : String(cString: strerror(err))
            return BindFailure(message: "failed to listen on metrics address \(addr):\(port): \(why)\n", exitCode: 71)
        }
        self.fds = fds
        let me = Unmanaged.passUnretained(self).toOpaque()
        for fd in fds {
            let ev = event_new(base, fd, Int16(EV_READ | EV_PERSIST), metricsAcceptCallback, me)!
            event_add(ev, nil)
            acceptEvents.append(ev)
        }
        return nil
    }

    fileprivate func acceptAll(_ listenFd: Int32) {
        while true {
            let fd = accept(listenFd, nil, nil)
            if fd < 0 { return }  // EAGAIN (drained), or out of fds: the next poll retries
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            if connections.count >= Self.maxConnections {
                _ = Self.sendSome(fd, Array(HTTPReply.status(503, "Service Unavailable", body: "too many metrics connections\n").utf8)[...])
                Self.drainAndClose(fd)
                continue
            }
            let conn = MetricsConnection(fd: fd, listener: self, deadline: Self.monotonicSeconds() + Self.timeoutSeconds)
            connections[fd] = conn
            conn.event = event_new(base, fd, Int16(EV_READ), metricsConnCallback, Unmanaged.passUnretained(conn).toOpaque())
            arm(conn, EV_READ)
        }
    }

    private func arm(_ conn: MetricsConnection, _ what: Int32) {
        let left = conn.deadline - Self.monotonicSeconds()
        if left <= 0 { finish(conn); return }
        event_assign(conn.event, base, conn.fd, Int16(what), metricsConnCallback, Unmanaged.passUnretained(conn).toOpaque())
        var tv = timeval(tv_sec: left, tv_usec: 0)
        event_add(conn.event, &tv)
    }

    fileprivate func handle(_ conn: MetricsConnection, what: Int16) {
        if what & Int16(EV_TIMEOUT) != 0 { finish(conn); return }
        if conn.reply.isEmpty { readRequest(conn) } else { writeReply(conn) }
    }

    private func readRequest(_ conn: MetricsConnection) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(conn.fd, &chunk, chunk.count, 0)
            if n == 0 { finish(conn); return }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                if errno == EINTR { continue }
                finish(conn); return
            }
            conn.request.append(contentsOf: chunk[0..<n])
            if HTTPRequest.headEnd(conn.request) != nil || conn.request.count > Self.maxRequestBytes { break }
        }
        if let end = HTTPRequest.headEnd(conn.request), end <= Self.maxRequestBytes {
            respond(conn, HTTPRequest.reply(to: conn.request[..<end]) { MetricsPage.render(self.server) })
        } else if conn.request.count > Self.maxRequestBytes {
            respond(conn, HTTPReply.status(431, "Request Header Fields Too Large", body: "request head over 8 KB\n"))
        } else {
            arm(conn, EV_READ)
        }
    }

    private func respond(_ conn: MetricsConnection, _ reply: String) {
        conn.reply = Array(reply.utf8)
        conn.deadline = Self.monotonicSeconds() + Self.timeoutSeconds
        writeReply(conn)
    }

    private func writeReply(_ conn: MetricsConnection) {
        let sent = Self.sendSome(conn.fd, conn.reply[conn.written...])
        if sent < 0 { finish(conn); return }
        conn.written += sent
        if conn.written == conn.reply.count {
            // Half-close so the client reads everything before the FIN; the fd closes now (no lingering state).
            shutdown(conn.fd, Int32(SHUT_WR))
            finish(conn)
        } else {
            arm(conn, EV_WRITE)
        }
    }

    /// Bytes written (0 when the socket is full), or -1 on an error.
    private static func sendSome(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Int {
        if bytes.isEmpty { return 0 }
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n < 0 { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1 }
        return n
    }

    private func finish(_ conn: MetricsConnection) {
        guard connections.removeValue(forKey: conn.fd) != nil else { return }
        if let ev = conn.event {
            event_del(ev)
            event_free(ev)
            conn.event = nil
        }
        Self.drainAndClose(conn.fd)
        conn.listener = nil
    }

    /// Closing a socket with unread input makes the kernel send a reset, which can destroy the reply the
    /// client has not read yet; read (and drop) what is already there first. Bounded: never blocks.
    private static func drainAndClose(_ fd: Int32) {
        var sink = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<16 where recv(fd, &sink, sink.count, Int32(MSG_DONTWAIT)) > 0 {}
        close(fd)
    }

    static func monotonicSeconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec
    }
}

/// One metrics client. Owned by `MetricsListener.connections`; main thread only.
final class MetricsConnection {
    let fd: Int32
    weak var listener: MetricsListener?
    var event: OpaquePointer?
    var deadline: Int
    var request: [UInt8] = []
    var reply: [UInt8] = []
    var written = 0

    init(fd: Int32, listener: MetricsListener, deadline: Int) {
        self.fd = fd
        self.listener = listener
        self.deadline = deadline
    }
}
