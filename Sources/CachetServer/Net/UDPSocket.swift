// UDP sockets (`-U`): one per address a `-l` entry (or the wildcard) resolves to, bound on the main thread
// at startup, then read by workers as memcached does — the socket is duplicated once per worker when
// there is one address (every worker reads the shared socket) and handed to a single worker per socket
// when `-l` lists several. Always plaintext: memcached has no DTLS, and a TLS `-l` entry gets a plain
// UDP socket next to its TLS listener.
import CLibevent
import Glibc

/// A bound UDP socket on its way to a worker, with what `stats conns` shows for it.
struct UDPSocketInfo: Sendable {
    let fd: Int32
    /// memcached's "udp:127.0.0.1:11211" / "udp6:[::1]:11211" (the socket's own address).
    let address: String
    let status: ConnStatus
}

extension SocketFactory {
    /// Binds every address `host` resolves to (all interfaces when nil) on `port` for UDP (-1: a port the
    /// kernel picks). On failure, memcached's getaddrinfo line when resolving failed, and the errno.
    static func udp(host: String?, port: Int) -> (fds: [Int32], error: Int32, message: String?) {
        var fds: [Int32] = []
        var lastErr: Int32 = 0
        let rc = eachPassiveAddress(host: host, port: port, type: SOCK_DGRAM) { ai in
            let fd = listeningSocket(ai)
            if fd < 0 { lastErr = errno; return true }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            maximizeSendBuffer(fd)
            if bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 {
                // memcached skips an address whose port is taken and serves the others (it fails only
                // when none could be bound).
                lastErr = errno
                close(fd)
                return true
            }
            fds.append(fd)
            return true
        }
        if rc != 0 {
            let why = rc == EAI_SYSTEM ? "getaddrinfo(): \(String(cString: strerror(errno)))\n"
                                       : "getaddrinfo(): \(String(cString: gai_strerror(rc)))\n"
            return ([], -1, why)
        }
        return (fds, fds.isEmpty ? (lastErr == 0 ? EINVAL : lastErr) : 0, nil)
    }

    /// memcached raises a UDP socket's send buffer as far as the system allows (up to 256 MB), so bursts of
    /// reply datagrams queue in the kernel instead of failing with EAGAIN.
    private static func maximizeSendBuffer(_ fd: Int32) {
        var size: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len) == 0 else { return }
        var lo = size, hi: Int32 = 256 * 1024 * 1024
        while lo <= hi {
            var mid = Int32((UInt32(bitPattern: lo) &+ UInt32(bitPattern: hi)) / 2)
            if setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &mid, socklen_t(MemoryLayout<Int32>.size)) == 0 {
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
    }

    /// The family and port a socket is bound to (what the port file and ephemeral ports need).
    static func boundPort(_ fd: Int32) -> (inet6: Bool, port: Int)? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { return nil }
        let family = ss.ss_family
        return withUnsafePointer(to: &ss) { p in
            if family == sa_family_t(AF_INET6) {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    (true, Int(UInt16(bigEndian: $0.pointee.sin6_port)))
                }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                (false, Int(UInt16(bigEndian: $0.pointee.sin_port)))
            }
        }
    }

    /// The socket's own address as memcached's `stats conns` writes a UDP address.
    static func udpLocalAddress(_ fd: Int32) -> String {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return udpAddressText(&ss)
    }

    /// "udp:<ipv4>:<port>" or "udp6:[<ipv6>]:<port>" (memcached's conn text for UDP).
    static func udpAddressText(_ ss: UnsafePointer<sockaddr_storage>) -> String {
        let (ip, port, inet6) = ConnRegistry.ipAndPort(ss.pointee)
        let text = inet6 ? "udp6:[\(ip)]" : "udp:\(ip)"
        return port != 0 ? "\(text):\(port)" : text
    }
}

extension Startup {
    /// memcached binds UDP after TCP: each `-U` socket, checked and named as memcached names its failures.
    static func openUDPSockets(server: ServerContext) -> Result<[Int32], BindFailure> {
        let s = server.settings
        guard case .success(let specs) = ListenerSpec.udpList(s) else { return .success([]) }
        var out: [Int32] = []
        for spec in specs {
            let (fds, err, message) = SocketFactory.udp(host: spec.host, port: spec.port)
            if fds.isEmpty {
                for fd in out { close(fd) }
                let why = err < 0 ? "Success" : String(cString: strerror(err))
                let head = message ?? ""
                if let inter = s.inter {
                    return .failure(BindFailure(message: head + "failed to listen on one of interface(s) \(inter): \(why)\n", exitCode: 71))
                }
                return .failure(BindFailure(message: head + "failed to listen on UDP port \(s.udpPort): \(why)\n", exitCode: 71))
            }
            out += fds
        }
        if let failure = SocketFactory.markAll(out, s.sockCookieId) {
            for fd in out { close(fd) }
            return .failure(failure)
        }
        return .success(out)
    }

    /// Hands each UDP socket to workers (memcached's dispatch): to every worker when there is one address,
    /// else to the next worker in the round robin accepted TCP connections also follow. Each copy is a
    /// "connection" of its own in `stats conns` and in the connection counts.
    static func dispatchUDPSockets(_ fds: [Int32], server: ServerContext) {
        let perSocket = server.settings.numThreadsPerUDP
        for fd in fds {
            let address = SocketFactory.udpLocalAddress(fd)
            for i in 0..<perSocket {
                let copy = i == 0 ? fd : dup(fd)
                if copy < 0 { continue }
                let status = ConnStatus(fd: copy, addr: address, listenAddr: nil, state: .read,
                                        now: server.clock.currentTime, udpPeer: address)
                server.connRegistry.add(status)
                server.listenerCount.add(1, ordering: .relaxed)
                let w = server.workers[server.workerChoice.pick(fd: copy)]
                w.post(.udpSocket(UDPSocketInfo(fd: copy, address: address, status: status)))
            }
        }
    }
}
