// `stats conns` (memcached's process_stats_conns): every listener and client connection by fd, with its
// address, listener address, state and seconds since its last command. Connections live on worker
// threads, so each one publishes a small status record here when it starts (addresses, resolved once)
// and updates two atomics once per event (state, last command time); `stats conns` on any thread reads
// a consistent-enough snapshot under the registry lock without touching another worker's connection or session.
// TLS connections add Cachet-only lines (tls_version, tls_cipher, tls_resumed, tls_peer_subject).
import CachetSync
import Glibc
import Synchronization

/// memcached's conn states as `stats conns` names them (the subset a Cachet connection can be in).
enum ConnState: UInt8 {
    case newCmd, read, nread, swallow, watch, listening, parseCmd
    var name: String {
        switch self {
        case .newCmd: return "conn_new_cmd"
        case .read: return "conn_read"
        case .nread: return "conn_nread"
        case .swallow: return "conn_swallow"
        case .watch: return "conn_watch"
        case .listening: return "conn_listening"
        case .parseCmd: return "conn_parse_cmd"
        }
    }
}

final class ConnStatus: Sendable {
    let fd: Int32
    let addr: String
    /// nil for listeners.
    let listenAddr: String?
    let state: Atomic<UInt8>
    let lastCmd: Atomic<UInt32>
    /// Cachet-only `stats conns` lines, set once after a TLS handshake completes.
    let tlsLines = Locked<[(String, String)]>([])
    /// A worker's UDP "connection" (then `addr` is the socket's own address): the address of the request
    /// it served last. nil for TCP and unix connections.
    let udpPeer: Locked<String>?

    init(fd: Int32, addr: String, listenAddr: String?, state: ConnState, now: UInt32, udpPeer: String? = nil) {
        self.fd = fd
        self.addr = addr
        self.listenAddr = listenAddr
        self.state = Atomic(state.rawValue)
        self.lastCmd = Atomic(now)
        self.udpPeer = udpPeer.map { Locked($0) }
    }

    var isUDP: Bool { udpPeer != nil }

    /// The `addr` and `listen_addr` lines memcached prints for a connection in `state`: an idle UDP
    /// socket shows its own address and no listen address, a busy one the requester's address and its own.
    func addresses(in state: ConnState) -> (addr: String, listenAddr: String?) {
        guard let peer = udpPeer else { return (addr, listenAddr) }
        if state == .read { return (addr, nil) }
        return (peer.withLock { $0 }, addr)
    }
}

final class ConnRegistry: Sendable {
    private let entries = Locked<[Int32: ConnStatus]>([:])

    func add(_ s: ConnStatus) { entries.withLock { $0[s.fd] = s } }
    func remove(_ s: ConnStatus) {
        entries.withLock { e in if e[s.fd] === s { e[s.fd] = nil } }
    }

    /// Sorted by fd, as memcached walks its conns array.
    func snapshot() -> [ConnStatus] {
        entries.withLock { Array($0.values) }.sorted { $0.fd < $1.fd }
    }

    /// memcached's "tcp:<ip>:<port>" for the peer of `fd` (or "unix:<path>" from the listener).
    static func peerAddress(fd: Int32, listener: String) -> (text: String, ip: String, port: Int) {
        if listener.hasPrefix("unix:") { return (listener, "unix", 0) }
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) == 0 }
        }
        guard ok else { return ("tcp:unknown", "unknown", 0) }
        let a = ipAndPort(ss)
        return ("tcp:\(a.inet6 ? "[\(a.ip)]" : a.ip):\(a.port)", a.ip, a.port)
    }

    /// An IPv4 or IPv6 socket address as text and port number (for `stats conns` and watch lines).
    static func ipAndPort(_ ss: sockaddr_storage) -> (ip: String, port: Int, inet6: Bool) {
        var host = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var port = 0
        let inet6 = ss.ss_family == sa_family_t(AF_INET6)
        var copy = ss
        withUnsafePointer(to: &copy) { p in
            if inet6 {
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    var addr = a.pointee.sin6_addr
                    inet_ntop(AF_INET6, &addr, &host, socklen_t(host.count))
                    port = Int(UInt16(bigEndian: a.pointee.sin6_port))
                }
            } else {
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                    var addr = a.pointee.sin_addr
                    inet_ntop(AF_INET, &addr, &host, socklen_t(host.count))
                    port = Int(UInt16(bigEndian: a.pointee.sin_port))
                }
            }
        }
        let ip = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (ip, port, inet6)
    }
}

/// memcached's conn_close reasons (logger.c), as `watch connevents` prints them.
enum CloseReason: String {
    case error, normal, idleTimeout = "idle_timeout"
}
