// One client connection on a worker: the transport of a CommandSession. It owns the socket and the TLS
// session (its handshake driven on a handshake thread or here in the worker, never on the listener thread),
// the libevent events, the read budget and memcached's per-event request budget (-R, conn_yields); it reads
// into the session's input, steps the session, and writes the session's output — and closes.
import CLibevent
import CacheStore
import CachetTLS
import Glibc
import MemcacheProtocol

private let connCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, what, arg in
    Unmanaged<Connection>.fromOpaque(arg!).takeUnretainedValue().onEvent(what)
}

/// Invariant: used only on its worker's thread; the worker's `connections` table keeps it alive while
/// its events exist (both are freed in `close()` before the table drops it).
final class Connection {
    let fd: Int32
    /// The worker outlives its connections (it frees them in `close()`), so no reference counting here.
    unowned(unsafe) let worker: Worker
    let server: ServerContext
    let stats: ThreadStats
    let listener: ListenerInfo
    /// The protocol side: parsing, commands, replies (Commands/).
    let session: CommandSession
    var tls: TLSConnection?
    private var handshakeDone: Bool
    /// A TLS connection whose first byte has not been looked at yet (TLSGuards.swift).
    private var firstByteUnchecked: Bool
    /// This connection's ClientHello has been handed to OpenSSL (it waited for the worker's handshake share).
    private var helloAnswered = false
    /// Clock second the connection reached its worker (ssl_handshake_timeout counts from here).
    let acceptedAt: UInt32
    /// On a handshake thread: the worker that serves this connection once its handshake is done
    /// (HandshakeHandoff.swift). Workers live as long as the process.
    unowned(unsafe) var handOffTo: Worker? = nil
    private var readEvent: OpaquePointer?
    private var writeEvent: OpaquePointer?
    private var writeArmed = false
    private var readPaused = false
    /// The session's input and reply bytes (memcached's rbuf and wbuf).
    let rbuf: ByteBuffer
    let wbuf: ByteBuffer
    let output: ReplyOutput
    private(set) var closed = false
    /// The next event starts in memcached's conn_new_cmd (after a yield), which costs one request.
    private var resumeInNewCmd = false
    /// Stop reading while this much output is waiting for a slow reader.
    static let outputHighWater = 4 << 20
    /// The `stats conns` record and connevents bookkeeping (ConnectionRecord.swift).
    var record = ConnRecord()

    init(fd: Int32, worker: Worker, listener: ListenerInfo, handedOff: TLSHandoff? = nil) {
        self.fd = fd
        self.worker = worker
        self.stats = worker.stats
        self.server = worker.server
        self.listener = listener
        session = CommandSession(server: worker.server, stats: worker.stats, scratch: worker.scratch, cfd: fd,
                                 recordSize: listener.tls != .plaintext ? worker.server.settings.tls.wbufSize : nil,
                                 waker: worker)
        rbuf = session.rbuf
        wbuf = session.wbuf
        output = session.output
        self.acceptedAt = handedOff?.acceptedAt ?? session.lastCmdTime
        if let h = handedOff {
            tls = h.tls
            record = h.record
            handshakeDone = true
            firstByteUnchecked = false
        } else if listener.tls != .plaintext, let tlsStore = server.tls {
            tls = TLSConnection(fd: fd, context: tlsStore.currentContext(), listener: listener.tls)
            handshakeDone = false
            firstByteUnchecked = true
        } else {
            handshakeDone = true
            firstByteUnchecked = false
        }
    }

    var isOpen: Bool { !closed }

    /// Called by the worker's 1-second sweep: a connection quiet for a while gives its buffers back,
    /// so idle connections cost almost nothing while busy ones never pay malloc/free per request.
    /// Returns true when it let buffers go (the worker then hands freed memory back to the kernel).
    @discardableResult
    func releaseBuffersIfQuiet(now: UInt32) -> Bool {
        guard now &- lastActive >= 1 && session.pendingNeed == 0 && !buffersReleased else { return false }
        releaseBuffers()
        return true
    }

    /// Set once the buffers were given back; cleared by the next event.
    private var buffersReleased = false

    private func releaseBuffers() {
        buffersReleased = true
        releaseReadBuffer()
        wbuf.releaseIfEmpty()
        if handshakeDone, let t = tls {
            t.releaseBuffers()
            if busy { t.setReleaseBuffersAfterEachRecord(true); busy = false }
        }
    }

    /// This connection counts against its worker's read buffers (ReadBufferBudget) from its first read until
    /// its input is used up and the buffer given back.
    private var holdsReadBuffer = false

    private func releaseReadBuffer() {
        rbuf.releaseIfEmpty()
        if holdsReadBuffer && rbuf.isEmpty {
            holdsReadBuffer = false
            worker.readBuffers.release()
        }
    }

    /// Events seen in the current clock second, and whether the connection counts as busy: a busy TLS
    /// connection keeps OpenSSL's record buffers between records until it goes quiet again.
    private var eventsThisSecond = 0
    private var busy = false
    static let busyEventsPerSecond = 16

    func start() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        readEvent = event_new(worker.base, fd, Int16(EV_READ | EV_PERSIST), connCallback, me)
        writeEvent = event_new(worker.base, fd, Int16(EV_WRITE), connCallback, me)
        event_add(readEvent, nil)
        opsStarted()
        if listener.tls != .plaintext && tls == nil { close(); return }
        if tls != nil { worker.handshaking[fd] = self }
        // A TLS client speaks first and its ClientHello has usually arrived by the time the connection
        // reaches this worker: start the handshake now instead of sleeping until epoll reports it (one
        // wake-up less per connection; if nothing is there yet, OpenSSL just wants to read).
        if tls != nil { onEvent(Int16(EV_READ)) }
    }

    func onEvent(_ what: Int16) {
        if closed { return }
        if Int32(what) & EV_WRITE != 0 { writeArmed = false }
        // close() drops the worker's reference; keep self alive until drive() returns.
        withExtendedLifetime(self) { drive() }
        worker.publishWatchLines()
    }

    /// Clock second of this connection's previous event (handshake, request or reply progress).
    private var lastActive: UInt32 = 0

    private func drive() {
        let now = server.clock.currentTime
        // A connection whose previous event was a while ago is not busy: give its buffers back as soon
        // as this event is done, like memcached does after every record. Busy ones keep them.
        let wasQuiet = now &- lastActive >= 1
        eventsThisSecond = now == lastActive ? eventsThisSecond + 1 : 1
        if !busy && eventsThisSecond >= Connection.busyEventsPerSecond, handshakeDone, let t = tls {
            busy = true
            t.setReleaseBuffersAfterEachRecord(false)
        }
        lastActive = now
        buffersReleased = false
        defer {
            if wasQuiet && !closed && rbuf.isEmpty && wbuf.isEmpty {
                releaseBuffers()
            } else if worker.readBuffers.limited && !closed && rbuf.isEmpty && session.pendingNeed == 0 {
                releaseReadBuffer()   // under a limit, as memcached: back as soon as the input is used up
            }
        }
        if let t = tls, !handshakeDone {
            if firstByteUnchecked {
                switch peekFirstByte() {
                case .notYet: return
                case .plaintext: rejectPlaintext(t); return
                case .tls: firstByteUnchecked = false
                }
            }
            // Answering the ClientHello (the expensive step) waits for the worker's handshake share
            // (TLSGuards.swift); every handshake step's time counts against that share.
            let start = monotonicNanos()
            if !helloAnswered {
                guard worker.mayStartHandshake(now: start) else { deferHandshake(); return }
                helloAnswered = true
            }
            let step = t.handshake()
            worker.handshakeStepTook(from: start, to: monotonicNanos())
            switch step {
            case .done:
                handshakeDone = true
                worker.handshaking[fd] = nil
                opsHandshakeDone(t)
                if let target = handOffTo { handOff(to: target); return }
            case .wantRead: return
            case .wantWrite: armWrite(); return
            case .failed(let reason): opsTLSFailed(reason); close(); return
            }
        }
        if eventsThisSecond >= Connection.busyEventsPerSecond { worker.lastBusySecond = now }
        if session.isStreaming && driveStream() { return }
        if outputPending && !holdsOutput {
            if !flush() { return }
        }
        if session.closeAfterWrite { close(); return }
        if readPaused { resumeReading() }
        let eof = readAvailable()
        if closed { return }
        process()
        if closed { return }
        if outputPending && !holdsOutput { _ = flush() }
        if closed { return }
        if session.closeAfterWrite && !outputPending { close(); return }
        if eof { close(); return }
        // A command started a reply stream: its first batch comes once the worker's others had their turn.
        if session.isStreaming { scheduleResume() }
        opsPublishState()
    }

    /// The session wants its replies kept back (a binary body being discarded), unless so much is queued
    /// that reading would pause: then they go out rather than wait for input that is not read.
    private var holdsOutput: Bool {
        session.holdsOutput && output.queuedBytes <= Connection.outputHighWater
    }

    /// Stream steps per event: a stream (a metadump, a watcher whose lines keep coming) must not keep its
    /// worker to itself.
    static let streamStepsPerEvent = 4

    /// Sends a reply stream's output while the socket takes it. True while the stream still owns the
    /// connection (come back when writable, woken or scheduled); false once it finished.
    private func driveStream() -> Bool {
        var steps = 0
        while true {
            if outputPending && !flush() { break }
            if closed { return true }
            if steps == Connection.streamStepsPerEvent {
                // Output may still be coming, and no wake-up comes for a queue that never went empty.
                scheduleResume()
                break
            }
            steps += 1
            switch session.continueStream() {
            case .more: continue
            case .waiting: break
            case .finished: return false
            }
            break
        }
        // A watcher reads and ignores what its client sends (only to notice a close).
        if session.streamDiscardsInput {
            let eof = readAvailable()
            if closed { return true }
            rbuf.reset()
            if eof { close(); return true }
            opsPublishState()
        }
        return true
    }

    // MARK: reading

    /// The buffered bytes end in a request that is not complete yet: reading must go on.
    private var starved = true

    /// Requests already buffered beyond this are not joined by more reads: a client that pipelines
    /// faster than its -R budget lets it be served must not make the server buffer its whole stream
    /// (memcached likewise reads only when it has run out of complete requests).
    static let readAhead = 64 << 10

    /// Reads what the socket has into the session's input (bounded per event). Returns true at end of stream.
    func readAvailable() -> Bool {
        // Read until the buffer holds `readAhead` bytes, or the whole value a request is waiting for,
        // or — when the buffered bytes end in an unfinished request — `readAhead` more.
        let pendingNeed = session.pendingNeed
        let target = starved ? rbuf.count + Connection.readAhead : max(Connection.readAhead, pendingNeed)
        var budget = target - rbuf.count
        if budget <= 0 {
            // Enough is buffered; TLS may still hold decrypted bytes the socket will not signal again,
            // which the yield that left this data unprocessed comes back for (scheduleResume).
            return false
        }
        if !holdsReadBuffer {
            guard worker.readBuffers.acquire() else {
                stats.add(.readBufOOM)
                close()
                return true
            }
            holdsReadBuffer = true
        }
        while budget > 0 {
            let want = max(16384, pendingNeed - rbuf.count)
            rbuf.reserve(min(want, 1 << 20))
            let space = rbuf.writableCount
            var n = 0
            if let t = tls {
                switch t.read(into: UnsafeMutableRawBufferPointer(start: rbuf.writePointer, count: space)) {
                case .bytes(let k): n = k
                case .wantRead: return false
                case .wantWrite: armWrite(); return false
                case .closed: return true
                case .error: close(); return true
                }
            } else {
                n = Glibc.read(fd, rbuf.writePointer, space)
                if n == 0 { return true }
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK { return false }
                    close(); return true
                }
            }
            rbuf.commit(n)
            record.everRead = true
            stats.add(.bytesRead, UInt64(n))
            budget -= n
            if n < space && !(tls?.hasPending ?? false) { return false }
        }
        // Budget used up: come back after other connections had their turn.
        if tls != nil { scheduleResume() }
        return false
    }

    // MARK: processing (memcached's drive_machine request budget)

    private func process() {
        var nreqs = server.settings.reqsPerEvent
        if resumeInNewCmd { nreqs -= 1; resumeInNewCmd = false }
        while !closed && !session.closeAfterWrite && !session.isStreaming {
            if output.queuedBytes > Connection.outputHighWater { pauseReading(); return }
            let step = session.step()
            if step == .done { starved = false }
            switch step {
            case .discarding:
                return
            case .close:
                _ = flush()
                close(); return
            case .needMore:
                starved = true
                if output.repliesSinceTransmit > 0 && !holdsOutput {
                    _ = flush()
                    nreqs -= 1
                    if nreqs < 0 { yieldNow() }
                }
                return
            case .done:
                // memcached writes at this point; pinned values go out now, so that their items lose
                // their references as memcached's do (a later incr then rewrites in place).
                if output.transmitPoint && output.hasPinnedValues { _ = flush() }
                nreqs -= 1
                if nreqs >= 0 {
                    if !rbuf.isEmpty && !session.closeAfterWrite { continue }
                    if output.repliesSinceTransmit > 0 && !session.closeAfterWrite && !holdsOutput {
                        _ = flush()
                        nreqs -= 1
                        if nreqs < 0 { yieldNow() }
                    }
                    return
                }
                if output.repliesSinceTransmit > 0 && !session.closeAfterWrite && !holdsOutput {
                    _ = flush(); nreqs -= 1
                }
                if !session.closeAfterWrite { yieldNow() }
                return
            }
        }
    }

    private func yieldNow() {
        if closed { return }
        stats.add(.connYields)
        resumeInNewCmd = true
        if !rbuf.isEmpty && rbuf.count >= session.pendingNeed { scheduleResume() }
    }

    // MARK: writing

    /// Replies not yet handed to the kernel: queued in `wbuf` or as pinned values, or encrypted and
    /// gathered by the TLS write BIO.
    var outputPending: Bool {
        !output.isEmpty || (tls.map { $0.gatheredBytes > 0 } ?? false)
    }

    /// Writes as much of the queued output as the socket takes. Returns false when blocked or closed.
    @discardableResult
    func flush() -> Bool {
        output.markTransmitted()
        if let t = tls {
            // memcached copies replies into a per-worker ssl_wbuf and hands at most ssl_wbuf_size
            // bytes to one SSL_write. The replies already sit contiguously in `wbuf`, so Cachet
            // keeps the same per-write cap without the copy (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
            // allows a retry from a buffer that has moved).
            let cap = server.settings.tls.wbufSize
            // More than one SSL_write's worth queued (large values, deep pipelines): gather the records.
            t.beginWrites(gather: output.queuedBytes > cap)
            while true {
                let run = output.nextRun()
                if run.isEmpty { break }
                switch t.write(UnsafeRawBufferPointer(rebasing: run.prefix(cap))) {
                case .bytes(let k):
                    output.consume(k)
                    stats.add(.bytesWritten, UInt64(k))
                case .wantWrite, .wantRead:
                    armWrite(); return false
                case .closed, .error:
                    close(); return false
                }
            }
            // A busy connection keeps the gather buffer until it goes quiet.
            switch t.finishWrites(keepBuffer: busy) {
            case .bytes: return true
            case .wantWrite: armWrite(); return false
            default: close(); return false
            }
        }
        while outputPending {
            let n = output.hasPinnedValues ? writeRuns() : Glibc.write(fd, wbuf.readPointer, wbuf.count)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { armWrite(); return false }
                close(); return false
            }
            output.consume(n)
            stats.add(.bytesWritten, UInt64(n))
        }
        return true
    }

    /// One writev(2) of the next runs of output (plain connections with pinned values queued).
    private func writeRuns() -> Int {
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: 16) { iov in
            var n = 0
            output.runs(max: 16) { run in
                iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: run.baseAddress), iov_len: run.count)
                n += 1
            }
            return Glibc.writev(fd, iov.baseAddress, Int32(n))
        }
    }

    /// Runs `drive()` again soon, after the worker's other ready connections (metadump batches).
    /// Waits for the socket to be writable (at once, unless it is full) rather than activating the event
    /// directly: libevent runs events activated from a callback in the same pass, before polling again, so a
    /// connection that keeps re-activating itself (a metadump, a deep pipeline) would starve every other
    /// connection of the worker. memcached yields the same way (EV_WRITE).
    func scheduleResume() {
        if !closed { armWrite() }
    }

    func armWrite() {
        if writeArmed || closed { return }
        writeArmed = true
        event_add(writeEvent, nil)
    }

    private func pauseReading() {
        if readPaused { return }
        readPaused = true
        event_del(readEvent)
        armWrite()
    }

    private func resumeReading() {
        readPaused = false
        event_add(readEvent, nil)
    }

    /// A ClientHello put off by the worker's handshake share: out of epoll until the worker resumes it.
    func pauseForHandshakeShare() {
        if let e = readEvent { event_del(e) }
    }

    func resumeAfterHandshakeShare() {
        if closed { return }
        event_add(readEvent, nil)
        onEvent(Int16(EV_READ))
    }

    // MARK: handshake threads (HandshakeHandoff.swift)

    /// On a handshake thread, the handshake is done: this object lets go of everything (without closing
    /// the socket or the session, and without counting a close) and the worker carries on with them.
    private func handOff(to target: Worker) {
        guard let t = tls else { return }
        if let e = readEvent { event_free(e); readEvent = nil }
        if let e = writeEvent { event_free(e); writeEvent = nil }
        closed = true
        tls = nil
        output.dropAll()
        if holdsReadBuffer { holdsReadBuffer = false; worker.readBuffers.release() }
        worker.remove(self)
        target.post(.handedOff(TLSHandoff(fd: fd, listener: listener, tls: t, record: record, acceptedAt: acceptedAt)))
    }

    /// On the worker, a connection whose handshake a handshake thread did: events, then a read at once
    /// (OpenSSL or the socket may already hold the first request).
    func startHandedOff() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        readEvent = event_new(worker.base, fd, Int16(EV_READ | EV_PERSIST), connCallback, me)
        writeEvent = event_new(worker.base, fd, Int16(EV_WRITE), connCallback, me)
        event_add(readEvent, nil)
        onEvent(Int16(EV_READ))
    }

    // MARK: closing

    func close() {
        if closed { return }
        closed = true
        if let t = tls {
            if handshakeDone { t.shutdown() }
            tls = nil
        }
        if let e = readEvent { event_free(e); readEvent = nil }
        if let e = writeEvent { event_free(e); writeEvent = nil }
        output.dropAll()
        if holdsReadBuffer { holdsReadBuffer = false; worker.readBuffers.release() }
        opsClosed()
        Glibc.close(fd)
        server.connectionClosed()
        worker.remove(self)
    }
}
