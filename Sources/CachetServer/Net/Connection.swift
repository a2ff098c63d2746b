// One client connection on a worker: transport (plain fd or TLS session, handshake driven here in the
// worker, never on the listener thread), read buffer → command processing → write buffer → socket,
// memcached's per-event request budget (-R, conn_yields), and closing.
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
    let store: CacheStore
    let listener: ListenerInfo
    var tls: TLSConnection?
    private var handshakeDone: Bool
    /// A TLS connection whose first byte has not been looked at yet (TLSGuards.swift).
    private var firstByteUnchecked: Bool
    /// This connection's ClientHello has been handed to OpenSSL (it waited for the worker's handshake share).
    private var helloAnswered = false
    /// Clock second the connection reached its worker (ssl_handshake_timeout counts from here).
    let acceptedAt: UInt32
    private var readEvent: OpaquePointer?
    private var writeEvent: OpaquePointer?
    private var writeArmed = false
    private var readPaused = false
    let rbuf = ByteBuffer(capacity: 16384)
    let wbuf = ByteBuffer(capacity: 4096)
    /// Bytes of a rejected value still to discard (memcached conn_swallow).
    var swallow = 0
    /// The swallow ran out of input at least once (memcached then reads the rest from the socket).
    var swallowWaited = false
    /// The request at the head of `rbuf` needs this many bytes before it can run (a value arriving).
    var pendingNeed = 0
    var closeAfterWrite = false
    private(set) var closed = false
    /// The next event starts in memcached's conn_new_cmd (after a yield), which costs one request.
    private var resumeInNewCmd = false
    var lastCmdTime: UInt32
    /// The tokens of the command being run. They live in the worker (only one command runs at a time
    /// per worker), which keeps ~400 bytes out of every idle connection.
    let tokens: TokenList
    /// Reply bytes queued by non-get commands since memcached would last have transmitted (see
    /// `culledReplyStart`); also tells whether memcached would still hold unsent responses.
    var repliesSinceTransmit = 0
    /// Set by a get: memcached transmits everything queued right after it.
    var getTransmitted = false
    /// Items (hash, CAS) that mg hits answered since memcached would last have transmitted: its
    /// responses hold a reference to them until then, and incr/decr will not rewrite a referenced item
    /// in place (do_add_delta wants refcount 2), so they get a new item (no space padding, total_items+1).
    var heldItems: [(hash: UInt32, cas: UInt64)] = []
    /// Stop reading while this much output is waiting for a slow reader.
    static let outputHighWater = 4 << 20
    /// Operational state: stats conns record, watch, metadump, close reason (ConnectionOps.swift).
    var ops = ConnOps()
    /// Large values queued for sending straight from slab memory (ZeroCopyOutput.swift).
    var zeroCopy = ZeroCopyOutput()

    init(fd: Int32, worker: Worker, listener: ListenerInfo) {
        self.fd = fd
        self.worker = worker
        self.stats = worker.stats
        self.tokens = worker.tokens
        self.server = worker.server
        self.store = worker.server.store
        self.listener = listener
        let now = worker.server.clock.currentTime
        self.lastCmdTime = now
        self.acceptedAt = now
        if let verify = listener.tls, let tlsStore = server.tls {
            tls = TLSConnection(fd: fd, context: tlsStore.currentContext(), listenerVerify: verify)
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
        guard now &- lastActive >= 1 && pendingNeed == 0 && !buffersReleased else { return false }
        releaseBuffers()
        return true
    }

    /// Set once the buffers were given back; cleared by the next event.
    private var buffersReleased = false

    private func releaseBuffers() {
        buffersReleased = true
        rbuf.releaseIfEmpty()
        wbuf.releaseIfEmpty()
        if handshakeDone, let t = tls {
            t.releaseBuffers()
            if busy { t.setReleaseBuffersAfterEachRecord(true); busy = false }
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
        if listener.tls != nil && tls == nil { close(); return }
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
        defer { if wasQuiet && !closed && rbuf.isEmpty && wbuf.isEmpty { releaseBuffers() } }
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
            worker.handshakeNanos &+= monotonicNanos() &- start
            switch step {
            case .done: handshakeDone = true; worker.handshaking[fd] = nil; opsHandshakeDone(t)
            case .wantRead: return
            case .wantWrite: armWrite(); return
            case .failed(let reason): opsTLSFailed(reason); close(); return
            }
        }
        worker.servedEstablished = true
        if ops.watcher != nil { driveWatcher(); return }
        if outputPending {
            if !flush() { return }
        }
        if closeAfterWrite { close(); return }
        if ops.metadump != nil && continueMetadump() { return }
        if readPaused { resumeReading() }
        let eof = readAvailable()
        if closed { return }
        process()
        if closed { return }
        if outputPending { _ = flush() }
        if closed { return }
        if closeAfterWrite && !outputPending { close(); return }
        if eof { close(); return }
        opsPublishState()
    }

    // MARK: reading

    /// Reads what the socket has (bounded per event). Returns true at end of stream.
    /// The buffered bytes end in a request that is not complete yet: reading must go on.
    private var starved = true

    /// Requests already buffered beyond this are not joined by more reads: a client that pipelines
    /// faster than its -R budget lets it be served must not make the server buffer its whole stream
    /// (memcached likewise reads only when it has run out of complete requests).
    static let readAhead = 64 << 10

    func readAvailable() -> Bool {
        // Read until the buffer holds `readAhead` bytes, or the whole value a request is waiting for,
        // or — when the buffered bytes end in an unfinished request — `readAhead` more.
        let target = starved ? rbuf.count + Connection.readAhead : max(Connection.readAhead, pendingNeed)
        var budget = target - rbuf.count
        if budget <= 0 {
            // Enough is buffered; TLS may still hold decrypted bytes the socket will not signal again,
            // which the yield that left this data unprocessed comes back for (scheduleResume).
            return false
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
            ops.everRead = true
            stats.add(.bytesRead, UInt64(n))
            budget -= n
            if n < space && !(tls?.hasPending ?? false) { return false }
        }
        // Budget used up: come back after other connections had their turn.
        if tls != nil { scheduleResume() }
        return false
    }

    // MARK: processing (memcached's drive_machine request budget)

    enum Step { case done, needMore, close }

    private func process() {
        var nreqs = server.settings.reqsPerEvent
        if resumeInNewCmd { nreqs -= 1; resumeInNewCmd = false }
        while !closed && !closeAfterWrite && !ops.takenOver {
            if queuedOutputBytes > Connection.outputHighWater { pauseReading(); return }
            var step: Step
            if swallow > 0 {
                let n = min(swallow, rbuf.count)
                rbuf.consume(n)
                swallow -= n
                if swallow > 0 { swallowWaited = true; return }
                // memcached swallows what it still needs straight from the socket and then transmits.
                if swallowWaited { swallowWaited = false; markTransmitted() }
                step = .done
            } else if rbuf.isEmpty || rbuf.count < pendingNeed {
                step = .needMore
            } else {
                step = processCommand()
            }
            if step == .done { starved = false }
            switch step {
            case .close:
                // An over-long line or an HTTP request: memcached closes at once, dropping the replies it
                // had not transmitted yet (those since it last ran out of input, finished reading a value
                // from the socket, or answered a get); earlier ones still go out.
                truncateOutput(to: culledReplyStart(commandStart: wbuf.tail))
                _ = flush()
                close(); return
            case .needMore:
                starved = true
                if repliesSinceTransmit > 0 {
                    _ = flush()
                    nreqs -= 1
                    if nreqs < 0 { yieldNow() }
                }
                return
            case .done:
                nreqs -= 1
                if nreqs >= 0 {
                    if !rbuf.isEmpty && !closeAfterWrite { continue }
                    if repliesSinceTransmit > 0 && !closeAfterWrite {
                        _ = flush()
                        nreqs -= 1
                        if nreqs < 0 { yieldNow() }
                    }
                    return
                }
                if repliesSinceTransmit > 0 && !closeAfterWrite { _ = flush(); nreqs -= 1 }
                if !closeAfterWrite { yieldNow() }
                return
            }
        }
    }

    private func yieldNow() {
        if closed { return }
        stats.add(.connYields)
        resumeInNewCmd = true
        if !rbuf.isEmpty && rbuf.count >= pendingNeed { scheduleResume() }
    }

    /// Parses and runs the request at the head of `rbuf`.
    private func processCommand() -> Step {
        let buf = rbuf.readable
        switch LineScanner.scan(buf) {
        case .needMore: return .needMore
        case .close: return .close
        case .line(let lineEnd, let next):
            lastCmdTime = server.clock.currentTime
            let line = UnsafeRawBufferPointer(rebasing: buf[0..<lineEnd])
            tokens.tokenize(line)
            let before = wbuf.count
            getTransmitted = false
            let step = dispatch(line, buf, next)
            if getTransmitted { markTransmitted() } else { repliesSinceTransmit += wbuf.count - before }
            return step
        }
    }

    // MARK: writing

    /// Replies not yet handed to the kernel: queued in `wbuf` or as pinned values, or encrypted and
    /// gathered by the TLS write BIO.
    var outputPending: Bool {
        !wbuf.isEmpty || !zeroCopy.entries.isEmpty || (tls.map { $0.gatheredBytes > 0 } ?? false)
    }

    /// Writes as much of the queued output as the socket takes. Returns false when blocked or closed.
    @discardableResult
    func flush() -> Bool {
        markTransmitted()
        if let t = tls {
            // memcached copies replies into a per-worker ssl_wbuf and hands at most ssl_wbuf_size
            // bytes to one SSL_write. The replies already sit contiguously in `wbuf`, so Cachet
            // keeps the same per-write cap without the copy (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
            // allows a retry from a buffer that has moved).
            let cap = server.settings.tls.wbufSize
            // More than one SSL_write's worth queued (large values, deep pipelines): gather the records.
            t.beginWrites(gather: queuedOutputBytes > cap)
            while true {
                let run = nextOutputRun()
                if run.isEmpty { break }
                switch t.write(UnsafeRawBufferPointer(rebasing: run.prefix(cap))) {
                case .bytes(let k):
                    consumeOutput(k)
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
            let n = zeroCopy.entries.isEmpty ? Glibc.write(fd, wbuf.readPointer, wbuf.count) : writeRuns()
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { armWrite(); return false }
                close(); return false
            }
            consumeOutput(n)
            stats.add(.bytesWritten, UInt64(n))
        }
        return true
    }

    /// One writev(2) of the next runs of output (plain connections with pinned values queued).
    private func writeRuns() -> Int {
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: 16) { iov in
            var n = 0
            outputRuns(max: 16) { run in
                iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: run.baseAddress), iov_len: run.count)
                n += 1
            }
            return Glibc.writev(fd, iov.baseAddress, Int32(n))
        }
    }

    /// Where the replies memcached would still hold unsent start: memcached transmits after every get
    /// and when a batch ends, so only replies of non-get commands since then are culled with this one.
    /// memcached wrote (or culled) its queued responses, releasing their item references.
    @inline(__always) func markTransmitted() {
        repliesSinceTransmit = 0
        if !heldItems.isEmpty { heldItems.removeAll(keepingCapacity: true) }
    }

    /// For incr/decr: is this item referenced by a response memcached has not transmitted yet?
    var referencedByPendingReply: ((UInt32, UInt64) -> Bool)? {
        if heldItems.isEmpty { return nil }
        let held = heldItems
        return { hash, cas in cas != 0 && held.contains { $0.hash == hash && $0.cas == cas } }
    }

    func culledReplyStart(commandStart: Int) -> Int {
        max(wbuf.head, commandStart - repliesSinceTransmit)
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
        dropZeroCopyOutput()
        opsClosed()
        Glibc.close(fd)
        server.connectionClosed()
        worker.remove(self)
    }
}
