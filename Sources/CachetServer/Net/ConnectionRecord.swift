// A connection's operational record: its `stats conns` entry (address, state, TLS details) and the
// `watch connevents` lines of its life (new, TLS failure, close). Kept out of Connection.swift so the
// transport there stays small; runs on the connection's worker thread, except what ConnRegistry and
// WatchLog document as shared.
import CacheStore
import CachetTLS
import Glibc
import MemcacheProtocol

struct ConnRecord {
    var status: ConnStatus?
    var peerIP = ""
    var peerPort = 0
    /// The peer sent at least one byte (a close is then logged with the session's reason, else "normal").
    var everRead = false
}

extension Connection {
    var watchLog: WatchLog { server.watchLog }

    // MARK: life-cycle hooks (called from Connection.swift)

    func opsStarted() {
        let peer = ConnRegistry.peerAddress(fd: fd, listener: listener.address)
        record.peerIP = peer.ip
        record.peerPort = peer.port
        let st = ConnStatus(fd: fd, addr: peer.text, listenAddr: listener.address, state: .newCmd,
                            now: server.clock.currentTime)
        record.status = st
        server.connRegistry.add(st)
        if watchLog.wants(.connevents) {
            watchLog.emit(.connevents, "type=conn_new rip=\(record.peerIP) rport=\(record.peerPort) transport=\(transportName) cfd=\(fd)")
        }
    }

    private var transportName: String { listener.address.hasPrefix("unix:") ? "local" : "tcp" }

    func opsHandshakeDone(_ t: TLSConnection) {
        var lines = [("tls_version", t.version), ("tls_cipher", t.cipher ?? "NONE"),
                     ("tls_resumed", t.sessionReused ? "yes" : "no")]
        if let subject = t.peerSubject { lines.append(("tls_peer_subject", subject)) }
        if let name = t.peerVerifiedName { lines.append(("tls_peer_name", name)) }
        record.status?.tlsLines.withLock { $0 = lines }
    }

    /// memcached 1.6.30+ logs failed TLS handshakes to `watch connevents` as `conntlserr`.
    func opsTLSFailed(_ reason: String) {
        record.everRead = true   // the peer sent bytes OpenSSL rejected: memcached's close reason is "error"
        if watchLog.wants(.connevents) {
            watchLog.emit(.connevents, "type=conntlserr fd=\(fd) msg=\(reason)")
        }
    }

    /// Publishes state and last-command time for `stats conns` (once per event, two relaxed stores).
    func opsPublishState() {
        // Everything is read before the record is (no call may run while it is held: one retain less).
        var state = session.connState
        if state == .read && !record.everRead { state = .newCmd }
        let lastCmd = session.lastCmdTime
        guard let st = record.status else { return }
        st.state.store(state.rawValue, ordering: .relaxed)
        st.lastCmd.store(lastCmd, ordering: .relaxed)
    }

    func opsClosed() {
        if let st = record.status { server.connRegistry.remove(st) }
        session.endStream()
        if watchLog.wants(.connevents) {
            let reason = !record.everRead && session.closeReason == .error ? CloseReason.normal : session.closeReason
            watchLog.emit(.connevents, "type=conn_close rip=\(record.peerIP) rport=\(record.peerPort) transport=\(transportName) reason=\(reason.rawValue) cfd=\(fd)")
        }
    }
}
