// A worker's UDP "connection": the transport of a CommandSession over a (shared) UDP socket, as memcached
// keeps one conn per worker on each UDP socket. It reads one datagram at a time, serves the requests in
// it, and sends the replies in memcached's framing (UDPFrame.swift in MemcacheProtocol).
//
// memcached's UDP behaviour, reproduced (each checked against memcached 1.6.18):
// - a datagram of 8 bytes or less, or one that says it is part of several, is dropped unanswered; a
//   good datagram replaces whatever incomplete request the previous one left;
// - while a storage command waits for the rest of its value (or discards a rejected one), memcached reads
//   the socket as a byte stream: the next datagram, whoever sent it, is taken whole — header included
//   — as value bytes, cut at what is still needed; the reply still goes to the command's requester;
// - each command's reply (each key's, for a multi-key get) goes out as its own datagram series, to the
//   address and with the request id of the datagram that carried the command;
// - `quit` (or a line that closes a TCP connection) resets the session instead: the rest of the datagram
//   is dropped, `quit` answers with a lone header;
// - `watch` and `lru_crawler metadump` cannot stream over UDP: memcached's logger and crawler fail to
//   write to the socket and give the connection back, leaving an empty response and the rest of the
//   datagram to be served when the next datagram arrives.
import CLibevent
import Glibc
import MemcacheProtocol

private let udpCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, what, arg in
    Unmanaged<UDPConnection>.fromOpaque(arg!).takeUnretainedValue().onEvent(what)
}

/// Where a reply goes: the requester's socket address.
struct UDPPeer {
    var address = sockaddr_storage()
    var length = socklen_t(0)

    func sameAddress(as other: UDPPeer) -> Bool {
        guard length == other.length else { return false }
        var a = address, b = other.address
        return memcmp(&a, &b, Int(length)) == 0
    }
}

/// Invariant: used only on its worker's thread, which keeps it for its whole life (`udpConnections`).
final class UDPConnection {
    let fd: Int32
    unowned(unsafe) let worker: Worker
    let server: ServerContext
    let stats: ThreadStats
    let session: CommandSession
    let output: ReplyOutput
    let rbuf: ByteBuffer
    let status: ConnStatus
    private var readEvent: OpaquePointer?
    private var writeEvent: OpaquePointer?
    /// Replies waiting to go out, one entry per memcached response object.
    private var replies = UDPReplyQueue<UDPPeer>()
    /// The request id and sender of the last datagram read as a request.
    private var requestId: UInt16 = 0
    private var requestPeer = UDPPeer()
    /// The peer whose address `status` shows (formatted only when the sender changes).
    private var shownPeer = UDPPeer()
    /// The rest of the datagram is served on the next event: a watch or metadump gave the session back
    /// (memcached serves it when the next datagram arrives), or sending blocked half-way.
    private var resumePending = false
    /// Sending would block: reading waits until the socket is writable again.
    private var blocked = false
    /// Commands served from the current datagram (memcached's per-event budget, `-R`).
    private var commandsInDatagram = 0

    /// memcached's UDP read buffer: the largest datagram.
    static let readSize = 65536
    /// Datagrams served per event, so the worker's other connections get their turn during a flood.
    static let datagramsPerEvent = 4

    init(info: UDPSocketInfo, worker: Worker) {
        fd = info.fd
        self.worker = worker
        server = worker.server
        stats = worker.stats
        status = info.status
        session = CommandSession(server: worker.server, stats: worker.stats, scratch: worker.scratch, cfd: info.fd,
                                 recordSize: nil, waker: worker)
        output = session.output
        rbuf = session.rbuf
        output.responseMarks = []
    }

    func start() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        readEvent = event_new(worker.base, fd, Int16(EV_READ | EV_PERSIST), udpCallback, me)
        writeEvent = event_new(worker.base, fd, Int16(EV_WRITE), udpCallback, me)
        event_add(readEvent, nil)
    }

    func onEvent(_ what: Int16) {
        if Int32(what) & EV_WRITE != 0 {
            blocked = false
            event_add(readEvent, nil)
        }
        drive()
        publishState()
        worker.publishWatchLines()
    }

    private func drive() {
        if resumePending {
            // The rest of the datagram, then the replies queued meanwhile.
            resumePending = false
            processInput()
            if resumePending { return }
        }
        if !transmit() { return }
        for _ in 0..<UDPConnection.datagramsPerEvent {
            guard receive() else { return }
            // memcached sends a watch's or metadump's empty response only with the next datagram's replies.
            if resumePending { return }
            if !transmit() { return }
        }
    }

    // MARK: reading

    /// Reads one datagram and serves it. False when there was none.
    private func receive() -> Bool {
        var peer = UDPPeer()
        peer.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let streamed = session.swallow > 0 || session.pendingNeed > rbuf.count
        // A value being read takes the datagram as plain bytes, cut at what the command still needs.
        let want = !streamed ? UDPConnection.readSize
            : min(UDPConnection.readSize, session.swallow > 0 ? session.swallow : session.pendingNeed - rbuf.count)
        if !streamed { rbuf.reset() }
        rbuf.reserve(want)
        var n: Int
        repeat {
            n = withUnsafeMutablePointer(to: &peer.address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, rbuf.writePointer, want, 0, $0, &peer.length)
                }
            }
        } while n < 0 && errno == EINTR
        if n < 0 { return false }
        if streamed {
            rbuf.commit(n)
            stats.add(.bytesRead, UInt64(n))
        } else {
            let datagram = UnsafeRawBufferPointer(start: rbuf.writePointer, count: n)
            if n > UDPFrameHeader.size { stats.add(.bytesRead, UInt64(n)) }
            guard case .request(let id, let payload) = UDPRequestFrame.parse(datagram) else { return true }
            requestId = id
            requestPeer = peer
            commandsInDatagram = 0
            // memcached picks the protocol again for every datagram on UDP (`-B auto`): each may come from
            // another client.
            if session.server.settings.bindingProtocol == .negotiating { session.wireProtocol = .negotiating }
            if !peer.sameAddress(as: shownPeer) { showPeer(peer) }
            rbuf.commit(n)
            rbuf.consume(payload.lowerBound)
        }
        processInput()
        return true
    }

    // MARK: serving

    /// Runs every complete request in `rbuf`, queueing each response as memcached delimits them.
    private func processInput() {
        while true {
            let before = output.queuedBytes
            let tailBefore = output.buffer.tail
            let isCommand = session.swallow == 0
            output.responseMarks!.removeAll(keepingCapacity: true)
            output.culledTo = nil
            let step = session.step()
            if step == .needMore || step == .discarding { return }
            var start = before
            if let cut = output.culledTo, cut < before {
                // memcached dropped responses it had not sent yet along with this command's.
                replies.truncate(toBytes: cut)
                start = cut
            }
            if !isCommand { continue }   // a discarded value ended
            // memcached serves -R commands per event and then yields (conn_yields), the first command of a
            // datagram coming for free: it yields after commands R+1, 2R+1, … (the bytes are the same).
            commandsInDatagram += 1
            let budget = server.settings.reqsPerEvent
            if commandsInDatagram > 1 && (commandsInDatagram - 1) % budget == 0 { stats.add(.connYields) }
            if step == .close { resetSession(); return }
            if session.isStreaming {
                output.truncate(to: tailBefore)
                session.endStream()
                replies.append(length: 0, skip: false, requestId: requestId, origin: requestPeer)
                resumePending = true
                return
            }
            let after = output.queuedBytes
            var pos = start
            for mark in output.responseMarks! where mark >= pos && mark <= after {
                replies.append(length: mark - pos, skip: false, requestId: requestId, origin: requestPeer)
                pos = mark
            }
            if session.closeAfterWrite {
                // quit: memcached sends its (empty) response, then cleans the connection up.
                replies.append(length: after - pos, skip: false, requestId: requestId, origin: requestPeer)
                resetSession()
                return
            }
            // A text command that wrote nothing had its reply suppressed (noreply, meta q): nothing is sent. A
            // binary quiet command's suppressed response still goes out in memcached, as a lone 8-byte header
            // (its response object is skipped but still framed).
            let suppressed = after == pos && pos == start && session.wireProtocol != .binary
            replies.append(length: after - pos, skip: suppressed, requestId: requestId, origin: requestPeer)
            // memcached sends at once after a get, `mn` or a value read from the socket — which decides
            // whether an empty response that follows gets a datagram of its own.
            if output.transmitPoint && !transmit() {
                resumePending = true   // the rest of the datagram once the socket takes more
                return
            }
        }
    }

    /// memcached's clean-up of a UDP conn: back to reading datagrams, nothing half-read kept.
    private func resetSession() {
        rbuf.reset()
        session.swallow = 0
        session.swallowWaited = false
        session.pendingNeed = 0
        session.closeAfterWrite = false
    }

    // MARK: sending

    /// Sends the queued responses. False when the socket is full (the rest goes once it is writable).
    private func transmit() -> Bool {
        if blocked { return false }
        output.markTransmitted()
        // Every output byte belongs to exactly one queued response (processInput keeps them in step). Should
        // that ever not hold, the queue follows the output rather than sending bytes it does not have.
        let have = output.queuedBytes, queued = replies.queuedBytes
        if have < queued {
            replies.truncate(toBytes: have)
        } else if have > queued {
            replies.append(length: have - queued, skip: false, requestId: requestId, origin: requestPeer)
        }
        while let d = replies.nextDatagram() {
            var header = d.header.bytes
            var peer = d.origin
            let sent: Int = withUnsafeMutableBytes(of: &header) { hdr in
                withUnsafeTemporaryAllocation(of: iovec.self, capacity: 17) { iov in
                    iov[0] = iovec(iov_base: hdr.baseAddress, iov_len: UDPFrameHeader.size)
                    var count = 1
                    var left = d.payload
                    output.runs(max: 16) { run in
                        guard left > 0 else { return }
                        let k = min(left, run.count)
                        iov[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: run.baseAddress), iov_len: k)
                        count += 1
                        left -= k
                    }
                    return withUnsafeMutablePointer(to: &peer.address) { addr in
                        var msg = msghdr()
                        msg.msg_name = UnsafeMutableRawPointer(addr)
                        msg.msg_namelen = peer.length
                        msg.msg_iov = iov.baseAddress
                        msg.msg_iovlen = count
                        return sendmsg(fd, &msg, 0)
                    }
                }
            }
            if sent < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                    blocked = true
                    event_del(readEvent)
                    event_add(writeEvent, nil)
                    return false
                }
                // memcached treats any other failure as a broken connection: its unsent replies are dropped.
                dropReplies()
                return true
            }
            stats.add(.bytesWritten, UInt64(sent))
            output.consume(d.payload)
            replies.sent(d.payload)
        }
        return true
    }

    private func dropReplies() {
        replies.removeAll()
        output.dropAll()
        output.buffer.reset()
        resetSession()
    }

    // MARK: stats conns

    /// `stats conns` shows the sender of the request being served (memcached's request_addr).
    private func showPeer(_ peer: UDPPeer) {
        shownPeer = peer
        var a = peer.address
        let text = SocketFactory.udpAddressText(&a)
        status.udpPeer?.withLock { $0 = text }
    }

    private func publishState() {
        status.state.store(session.connState.rawValue, ordering: .relaxed)
        status.lastCmd.store(session.lastCmdTime, ordering: .relaxed)
    }
}
