// Listening sockets (TCP per `-l` entry or `-p`, or a unix socket with `-s`) on the main thread's
// event base. Accepting only hands the fd to a worker (round-robin): TLS handshakes and all I/O
// happen in the worker, so a slow or hostile client never stalls the accept loop.
import CLibevent
import CachetTLS
import Glibc
import MemcacheProtocol

private let acceptCallback: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<sockaddr>?, Int32, UnsafeMutableRawPointer?) -> Void = { _, fd, _, _, arg in
    Unmanaged<Listener>.fromOpaque(arg!).takeUnretainedValue().accepted(fd)
}

private let acceptErrorCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Void = { _, arg in
    let err = errno
    Listener.pause?.acceptFailed(err)
}

/// Invariant: used only on the main thread (the listener base's thread).
final class Listener {
    let server: ServerContext
    let info: ListenerInfo
    /// Round robin over the handshake threads (`ssl_handshake_threads`); main thread only.
    private var nextHandshakeWorker = 0
    let fd: Int32
    private var evl: OpaquePointer?
    /// Shared by every listener: out of fds, all of them stop accepting together.
    nonisolated(unsafe) static var pause: AcceptPause?

    init(server: ServerContext, fd: Int32, info: ListenerInfo) {
        self.server = server
        self.fd = fd
        self.info = info
    }

    func start(base: OpaquePointer) {
        // Backlog 0: the socket already listens with `-b` (SocketFactory). A negative value would make
        // libevent call listen() again with its own fixed 128, silently overriding `-b`.
        evl = evconnlistener_new(base, acceptCallback, Unmanaged.passUnretained(self).toOpaque(),
                                 UInt32(LEV_OPT_CLOSE_ON_FREE), 0, fd)
        evconnlistener_set_error_cb(evl, acceptErrorCallback)
        if Listener.pause == nil { Listener.pause = AcceptPause(server: server, base: base) }
        Listener.pause!.register(self)
        server.listenerCount.add(1, ordering: .relaxed)
        server.connRegistry.add(ConnStatus(fd: fd, addr: info.address, listenAddr: nil, state: .listening,
                                           now: server.clock.currentTime))
    }

    /// Out of fds (AcceptPause): a backlog of 0 so the kernel queues no more clients meanwhile.
    func stopAccepting() {
        evconnlistener_disable(evl)
        _ = listen(fd, 0)
    }

    func resumeAccepting() {
        _ = listen(fd, Int32(truncatingIfNeeded: server.settings.backlog))
        evconnlistener_enable(evl)
    }

    func accepted(_ cfd: Int32) {
        let s = server
        let listeners = s.listenerCount.load(ordering: .relaxed)
        // memcached's limit is effectively by fd number (RLIMIT_NOFILE is -c): the last usable fd is
        // used to tell the client why it is being turned away.
        if s.settings.maxConnsFast &&
            (cfd >= Int32(s.settings.maxConns - 1) ||
             s.currConns.load(ordering: .relaxed) + listeners + s.reservedFds >= s.settings.maxConns - 1) {
            // Counted first: a client that saw the error and asks `stats` must find it counted.
            s.rejectedConns.add(1, ordering: .relaxed)
            let msg: StaticString = "ERROR Too many open connections\r\n"
            _ = write(cfd, msg.utf8Start, msg.utf8CodeUnitCount)
            close(cfd)
            return
        }
        // TCP_NODELAY comes from the listening socket (Linux copies it to every accepted socket, as memcached
        // relies on): no setsockopt per connection.
        s.connectionOpened()
        let worker = s.workerChoice.pick(fd: cfd)
        if info.tls != .plaintext && !s.handshakeWorkers.isEmpty {
            // The worker is chosen now (by NAPI id with -N); a handshake thread runs the handshake first.
            nextHandshakeWorker = (nextHandshakeWorker + 1) % s.handshakeWorkers.count
            s.handshakeWorkers[nextHandshakeWorker].post(.connection(PendingConnection(fd: cfd, listener: info, handOffTo: worker)))
        } else {
            s.workers[worker].post(.connection(PendingConnection(fd: cfd, listener: info)))
        }
    }
}

/// A listener that could not be opened: memcached's message and exit code (71, EX_OSERR).
struct BindFailure: Error {
    let message: String
    let exitCode: Int32
}

enum SocketFactory {
    /// getaddrinfo for listening sockets: calls `body` with each address `host` names (every interface when nil
    /// or "*") on `port` (-1: a port the kernel picks — memcached's convention, the port file says which),
    /// until `body` returns false. Returns getaddrinfo's code (0: resolved).
    static func eachPassiveAddress(host: String?, port: Int, type: __socket_type,
                                   _ body: (UnsafeMutablePointer<addrinfo>) -> Bool) -> Int32 {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(type.rawValue)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        let h = (host == nil || host == "*") ? nil : host
        let rc = getaddrinfo(h, String(port == -1 ? 0 : port), &hints, &res)
        if rc != 0 { return rc }
        defer { freeaddrinfo(res) }
        var p = res
        while let ai = p, body(ai) { p = ai.pointee.ai_next }
        return 0
    }

    /// A socket for `ai` with the options every listener has (SO_REUSEADDR; IPv6 sockets IPv6 only, so the
    /// IPv4 address of the same port binds too); -1 with errno set when socket(2) fails.
    static func listeningSocket(_ ai: UnsafeMutablePointer<addrinfo>) -> Int32 {
        let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
        if fd < 0 { return fd }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if ai.pointee.ai_family == AF_INET6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        return fd
    }

    /// Binds every address `host` resolves to (all interfaces when nil) on `port`.
    static func tcp(host: String?, port: Int, backlog: Int) -> (fds: [Int32], error: Int32) {
        var fds: [Int32] = []
        var lastErr: Int32 = 0
        var taken = false
        let rc = eachPassiveAddress(host: host, port: port, type: SOCK_STREAM) { ai in
            let fd = listeningSocket(ai)
            if fd < 0 { lastErr = errno; return true }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 {
                lastErr = errno
                close(fd)
                // memcached skips an address already taken by another of its own sockets.
                if lastErr == EADDRINUSE { taken = true; return false }
                return true
            }
            if listen(fd, Int32(backlog)) != 0 { lastErr = errno; close(fd); return true }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            fds.append(fd)
            return true
        }
        if rc != 0 { return ([], -1) }
        if taken { for f in fds { close(f) }; return ([], lastErr) }
        return (fds, fds.isEmpty ? (lastErr == 0 ? EINVAL : lastErr) : 0)
    }

    /// `-o sock_cookie_id`: the id as SO_MARK on each TCP/UDP listening socket, for firewall and routing
    /// rules (memcached sets it the same way). Setting a mark needs CAP_NET_ADMIN: without it the server stops
    /// rather than serve sockets the operator's rules would not recognise.
    static func markAll(_ fds: [Int32], _ id: UInt32) -> BindFailure? {
        guard id != 0 else { return nil }
        var mark = id
        for fd in fds where setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, socklen_t(MemoryLayout<UInt32>.size)) != 0 {
            let why = String(cString: strerror(errno))
            return BindFailure(message: "setsockopt(SO_MARK) failed for sock_cookie_id \(id): \(why)\n"
                               + "cachet: hint: marking sockets needs CAP_NET_ADMIN (run as root, or grant the capability)\n",
                               exitCode: 71)
        }
        return nil
    }

    static func unix(path: String, mask: Int, backlog: Int) -> (fd: Int32, error: Int32) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        if fd < 0 { return (-1, errno) }
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        if bytes.count >= MemoryLayout.size(ofValue: addr.sun_path) { close(fd); return (-1, ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let old = umask(mode_t(~mask & 0o777))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindErr = errno
        umask(old)
        if rc != 0 { close(fd); return (-1, bindErr) }
        if listen(fd, Int32(backlog)) != 0 { let e = errno; close(fd); return (-1, e) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return (fd, 0)
    }
}
