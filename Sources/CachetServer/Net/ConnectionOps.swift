// A connection's operational side: its `stats conns` record, `watch` connevents/fetchers/mutations lines,
// the watcher mode a `watch` command switches it into, and the streaming of `lru_crawler metadump`.
// Kept out of Connection.swift so the request path there stays small; everything here runs on the
// connection's worker thread, except what WatchLog/ConnRegistry document as shared.
import CacheStore
import CachetTLS
import Glibc
import MemcacheProtocol

/// memcached's conn_close reasons (logger.c).
enum CloseReason: String {
    case error, normal, idleTimeout = "idle_timeout"
}

struct ConnOps {
    var status: ConnStatus?
    var peerIP = ""
    var peerPort = 0
    var watcher: Watcher?
    /// The buffer a watcher's lines are swapped into (WatchLog.take); empty between takes.
    var watchLines: [UInt8] = []
    var metadump: LRUCrawl?
    /// A watch or metadump owns the connection: no more commands are parsed.
    var takenOver = false
    var everRead = false
    /// memcached logs "error" for a peer that closed after sending something, "normal" for `quit` or a
    /// connection that never sent a byte.
    var closeReason = CloseReason.error
}

extension Connection {
    var watchLog: WatchLog { server.watchLog }

    // MARK: life-cycle hooks (called from Connection.swift)

    func opsStarted() {
        let peer = ConnRegistry.peerAddress(fd: fd, listener: listener.address)
        ops.peerIP = peer.ip
        ops.peerPort = peer.port
        let st = ConnStatus(fd: fd, addr: peer.text, listenAddr: listener.address, state: .newCmd,
                            now: server.clock.currentTime)
        ops.status = st
        server.connRegistry.add(st)
        if watchLog.wants(.connevents) {
            watchLog.emit(.connevents, "type=conn_new rip=\(ops.peerIP) rport=\(ops.peerPort) transport=\(transportName) cfd=\(fd)")
        }
    }

    private var transportName: String { listener.address.hasPrefix("unix:") ? "local" : "tcp" }

    func opsHandshakeDone(_ t: TLSConnection) {
        var lines = [("tls_version", t.version), ("tls_cipher", t.cipher ?? "NONE"),
                     ("tls_resumed", t.sessionReused ? "yes" : "no")]
        if let subject = t.peerSubject { lines.append(("tls_peer_subject", subject)) }
        if let name = t.peerVerifiedName { lines.append(("tls_peer_name", name)) }
        ops.status?.tlsLines.withLock { $0 = lines }
    }

    /// memcached 1.6.30+ logs failed TLS handshakes to `watch connevents` as `conntlserr`.
    func opsTLSFailed(_ reason: String) {
        ops.everRead = true   // the peer sent bytes OpenSSL rejected: memcached's close reason is "error"
        if watchLog.wants(.connevents) {
            watchLog.emit(.connevents, "type=conntlserr fd=\(fd) msg=\(reason)")
        }
    }

    /// Publishes state and last-command time for `stats conns` (once per event, two relaxed stores).
    func opsPublishState() {
        guard let st = ops.status else { return }
        let state: ConnState
        if ops.takenOver { state = .watch }
        else if swallow > 0 { state = .swallow }
        else if pendingNeed > 0 { state = .nread }
        else if ops.everRead { state = .read }
        else { state = .newCmd }
        st.state.store(state.rawValue, ordering: .relaxed)
        st.lastCmd.store(lastCmdTime, ordering: .relaxed)
    }

    func opsClosed() {
        if let st = ops.status { server.connRegistry.remove(st) }
        if let w = ops.watcher {
            watchLog.remove(w)
            ops.watcher = nil
        }
        if let crawl = ops.metadump {
            crawl.finish()
            ops.metadump = nil
        }
        if watchLog.wants(.connevents) {
            let reason = !ops.everRead && ops.closeReason == .error ? CloseReason.normal : ops.closeReason
            watchLog.emit(.connevents, "type=conn_close rip=\(ops.peerIP) rport=\(ops.peerPort) transport=\(transportName) reason=\(reason.rawValue) cfd=\(fd)")
        }
    }

    // MARK: watch

    /// memcached process_watch_command.
    func processWatch(_ line: UnsafeRawBufferPointer) {
        let nr = noreply(line)
        if !server.settings.watchEnabled {
            reply(Reply.watchNotAllowed, noreply: nr)
            return
        }
        // memcached's resp_has_stack: replies of earlier commands not yet transmitted (a get transmits).
        if repliesSinceTransmit > 0 {
            reply(Reply.watchPipelined, noreply: nr)
            return
        }
        var types: WatchTypes = []
        if tokens.ntokens > 2 {
            for i in 1..<tokens.count {
                guard let t = WatchTypes(word: token(line, i)) else {
                    reply(Reply.error, noreply: nr)
                    return
                }
                types.insert(t)
            }
        } else {
            types = .fetchers
        }
        let w = Watcher(types: types, fd: fd, worker: worker)
        guard watchLog.add(w) else {
            wbuf.append(Reply.watcherTooMany)
            return
        }
        ops.watcher = w
        ops.takenOver = true
        wbuf.append(Reply.ok)
    }

    /// Queue takes per event: lines keep arriving while a watcher writes, so without a bound one watcher
    /// would keep its worker to itself for as long as the others keep logging.
    static let watchTakesPerEvent = 4

    /// A watcher's event: pass queued lines on while the socket takes them (a full socket leaves them in
    /// the bounded WatchLog buffer, where new lines are then dropped and counted); input is ignored.
    func driveWatcher() {
        guard let w = ops.watcher else { return }
        var takes = 0
        while true {
            if outputPending && !flush() { break }
            if closed { return }
            if takes == Connection.watchTakesPerEvent {
                // Lines may still be queued, and no wake-up comes for a queue that never went empty:
                // come back once the worker's other connections had their turn.
                scheduleResume()
                break
            }
            watchLog.take(w, into: &ops.watchLines)
            takes += 1
            if ops.watchLines.isEmpty { break }
            ops.watchLines.withUnsafeBytes { wbuf.append($0) }
            ops.watchLines.removeAll(keepingCapacity: true)
        }
        if closed { return }
        let eof = readAvailable()
        if closed { return }
        rbuf.reset()
        if eof { close(); return }
        opsPublishState()
    }

    // MARK: logging helpers for the command handlers (only called when `watchLog.wants(...)`)

    static func lookupStatus(_ r: LookupResult) -> String {
        switch r {
        case .hit: return "found"
        case .miss: return "not_found"
        case .flushed: return "flushed"
        case .expired: return "expired"
        }
    }

    /// memcached LOGGER_ITEM_GET.
    func logFetch(_ key: UnsafeRawBufferPointer, _ result: LookupResult, valueLength: Int) {
        var cls = 0
        if case .hit(let c) = result { cls = c }
        watchLog.emit(.fetchers, "type=item_get key=\(URIEncode.string(key)) status=\(Connection.lookupStatus(result)) clsid=\(cls) cfd=\(fd) size=\(cls == 0 ? 0 : valueLength)")
    }

    /// The item_get line memcached's store/delete/arith/touch paths log for the item they look up.
    func logPeek(_ key: UnsafeRawBufferPointer) -> (result: LookupResult, valueLength: Int, exptime: UInt32) {
        let p = store.peek(key, hash: store.hash(key))
        logFetch(key, p.result, valueLength: p.valueLength)
        return p
    }

    /// memcached LOGGER_ITEM_STORE. `ttl` is relative seconds (0 = never).
    func logStore(_ key: UnsafeRawBufferPointer, status: StoreResult, mode: StoreMode, ttl: Int64, classId: Int, size: Int) {
        let st: String
        switch status {
        case .stored: st = "stored"
        case .notStored: st = "not_stored"
        case .exists: st = "exists"
        case .notFound: st = "not_found"
        case .tooLarge: st = "too_large"
        case .outOfMemory: st = "no_memory"
        }
        let cmd: String
        switch mode {
        case .set: cmd = "set"
        case .add: cmd = "add"
        case .replace: cmd = "replace"
        case .append: cmd = "append"
        case .prepend: cmd = "prepend"
        case .cas: cmd = "cas"
        }
        let k = URIEncode.string(key)
        if status == .tooLarge || status == .outOfMemory {
            // 1.6.18 logs these with shifted arguments: the fd lands in clsid, cfd and size read 0.
            watchLog.emit(.mutations, "type=item_store key=\(k) status=\(st) cmd=\(cmd) ttl=0 clsid=\(fd) cfd=0 size=0")
        } else {
            watchLog.emit(.mutations, "type=item_store key=\(k) status=\(st) cmd=\(cmd) ttl=\(UInt32(truncatingIfNeeded: ttl)) clsid=\(classId) cfd=\(fd) size=\(size)")
        }
    }
}

extension Connection {
    /// The item_store line for a storage command's outcome: the new item's ttl, class and size, except for
    /// a successful append/prepend, which stores the joined value under the old item's exptime.
    func logStoreResult(_ key: UnsafeRawBufferPointer, _ result: StoreResult, _ mode: StoreMode,
                        old: (result: LookupResult, valueLength: Int, exptime: UInt32),
                        exptime: Int64, flags: UInt32, vlen: Int, classId: Int) {
        let now = Int64(store.clock.currentTime)
        var ttl: Int64 = exptime == 0 ? 0 : Int64(store.clock.realtime(exptime)) - now
        var size = vlen
        var cls = classId
        if result == .stored && (mode == .append || mode == .prepend), old.result.isHit {
            ttl = old.exptime == 0 ? 0 : Int64(old.exptime) - now
            size = old.valueLength + vlen
            cls = store.classId(forTotalSize: CacheStore.itemTotalSize(keyLength: key.count, valueLength: size, flags: flags,
                                                                       casEnabled: store.config.casEnabled))
        }
        logStore(key, status: result, mode: mode, ttl: ttl, classId: cls, size: size)
    }
}

extension LookupResult {
    var isHit: Bool { if case .hit = self { return true } else { return false } }
}
