// One client's command session: everything between the bytes a transport received and the replies it
// must send — memcached's text and meta protocols, its binary protocol (Binary*.swift), the data block a
// storage command waits for (conn_nread) or discards (conn_swallow), and the replies with their transmit
// bookkeeping (ReplyOutput).
// It knows no socket, TLS session or event: a transport appends what it read to `rbuf`, calls `step()`
// until that reports `.needMore`, sends `output`, and — while a command streams its reply (watch,
// lru_crawler metadump) — asks for more with `continueStream()` whenever the output has drained.
// The handlers live in the other files of this folder as extensions of this type.
import CacheStore
import MemcacheProtocol

/// Scratch space one command at a time uses; shared by the sessions of one worker thread (only one of
/// them runs a command at any moment), which keeps ~650 bytes out of every idle connection.
/// Invariant: used by one thread only.
final class CommandScratch {
    /// The tokens of the command being run.
    let tokens = TokenList()
    /// Where a meta command's base64 key (`b`) is decoded.
    let metaKey = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)

    deinit { metaKey.deallocate() }
}

/// Invariant: used only by the thread that owns its transport (a connection's worker).
final class CommandSession {
    /// What the transport does after a `step()`.
    enum Step {
        /// A request was handled (or a discarded data block finished): step again, budget permitting.
        case done
        /// The buffered bytes do not hold a whole request: read more.
        case needMore
        /// Part of a rejected value is still to come: read more, and discard it as it arrives.
        case discarding
        /// Close the connection after sending what was not culled (an over-long line, an HTTP request).
        case close
    }

    /// What `continueStream()` did.
    enum StreamProgress {
        /// Produced output; call again once it has been sent (and others had their turn).
        case more
        /// Nothing to send now; the stream's waker says when there is (watch).
        case waiting
        /// The stream ended (its last line is queued); commands are parsed again.
        case finished
    }

    /// A reply that goes on after its command returned: it owns the session until it ends.
    enum ReplyStream {
        case watch(Watcher)
        case metadump(LRUCrawl)
    }

    let server: ServerContext
    let store: CacheStore
    let stats: ThreadStats
    let tokens: TokenList
    let metaKeyScratch: UnsafeMutableRawBufferPointer
    /// The client's socket number as memcached prints it (`cfd=` in watch lines, `stats conns`).
    let cfd: Int32
    /// Tells a watcher's transport that lines are waiting (from any thread).
    let waker: any WatcherWaking
    /// Received bytes not processed yet (memcached's rbuf).
    let rbuf = ByteBuffer(capacity: 16384)
    let output: ReplyOutput
    /// `output.buffer`: the reply bytes (memcached's wbuf).
    let wbuf: ByteBuffer

    /// Bytes of a rejected value still to discard (memcached conn_swallow).
    var swallow = 0
    /// The swallow ran out of input at least once (memcached then reads the rest from the socket).
    var swallowWaited = false
    /// The request at the head of `rbuf` needs this many bytes before it can run (a value arriving).
    var pendingNeed = 0
    /// Send what is queued, then close (quit, shutdown).
    var closeAfterWrite = false
    /// memcached logs "error" for a peer that closed after sending something, "normal" for `quit` or a
    /// connection that never sent a byte.
    var closeReason = CloseReason.error
    /// Clock second of the last command (idle_timeout, stats conns).
    var lastCmdTime: UInt32
    /// `-Y`: commands are refused until the client logged in (AsciiAuth.swift).
    var authenticated: Bool
    /// The login's data block length (+2) once its `set` line was read, else nil.
    var authBlockLength: Int? = nil
    /// Where the last login reply starts in the output (an offset from its head) and the transmit count then.
    var authReply: (mark: Int, transmits: Int)? = nil
    private(set) var stream: ReplyStream? { didSet { isStreaming = stream != nil } }
    /// No more commands are parsed: a reply stream owns the session. (Kept as a flag: the transport asks
    /// on every event, and looking into `stream` would retain what it holds.)
    private(set) var isStreaming = false
    /// The buffer a watcher's lines are swapped into (WatchLog.take); empty between takes.
    var watchLines: [UInt8] = []
    /// The protocol this client speaks: `-B` decides, or with `-B auto` its first byte (0x80: binary),
    /// for the connection's life.
    var wireProtocol: BindingProtocol
    /// `-S`: this client's SASL exchange, made when it first asks (BinarySasl.swift).
    var sasl: SaslSession?

    init(server: ServerContext, stats: ThreadStats, scratch: CommandScratch, cfd: Int32, recordSize: Int?,
         waker: any WatcherWaking) {
        self.server = server
        self.store = server.store
        self.stats = stats
        self.tokens = scratch.tokens
        self.metaKeyScratch = scratch.metaKey
        self.cfd = cfd
        self.waker = waker
        self.output = ReplyOutput(store: server.store, recordSize: recordSize)
        self.wbuf = output.buffer
        self.lastCmdTime = server.clock.currentTime
        self.authenticated = server.authFile == nil
        self.wireProtocol = server.settings.bindingProtocol
    }

    var watchLog: WatchLog { server.watchLog }

    // MARK: requests

    /// Handles what is at the head of `rbuf`: discards (part of) a rejected value, or runs one request.
    func step() -> Step {
        output.transmitPoint = false
        if !authenticated { return authStep() }
        if swallow > 0 {
            let n = min(swallow, rbuf.count)
            rbuf.consume(n)
            swallow -= n
            if swallow > 0 { swallowWaited = true; return .discarding }
            // memcached swallows what it still needs straight from the socket and then transmits.
            if swallowWaited { swallowWaited = false; output.markTransmitted() }
            return .done
        }
        if rbuf.isEmpty || rbuf.count < pendingNeed { return .needMore }
        if wireProtocol == .negotiating {
            wireProtocol = rbuf.readable[0] == BinaryRequestHeader.requestMagic ? .binary : .ascii
        }
        let step = wireProtocol == .binary ? processBinaryRequest() : processCommand()
        if step == .close {
            // memcached closes at once, dropping the replies it had not transmitted yet (those since it
            // last ran out of input, finished reading a value from the socket, or answered a get); earlier
            // ones still go out.
            output.truncate(to: output.culledReplyStart(commandStart: wbuf.tail))
        }
        return step
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
            let step = dispatch(line, buf, next)
            if output.transmitPoint { output.markTransmitted() } else { output.repliesSinceTransmit += wbuf.count - before }
            return step
        }
    }

    /// Replies wait while a rejected value is being discarded (text or binary): memcached writes nothing
    /// until its swallow is over (the error that started it goes out with what follows).
    var holdsOutput: Bool { swallow > 0 }

    /// memcached's protocol state for `stats conns`.
    @inline(__always) var connState: ConnState {
        if isStreaming { return .watch }
        if swallow > 0 { return .swallow }
        if pendingNeed > 0 { return .nread }
        return .read
    }

    // MARK: streams

    func startStream(_ s: ReplyStream) { stream = s }

    var watcher: Watcher? {
        if case .watch(let w) = stream { return w }
        return nil
    }

    /// A watcher ignores what its client sends.
    var streamDiscardsInput: Bool { watcher != nil }

    /// Produces the stream's next output (one batch).
    func continueStream() -> StreamProgress {
        switch stream {
        case .watch(let w)?: return continueWatch(w)
        case .metadump(let crawl)?: return continueMetadump(crawl)
        case nil: return .finished
        }
    }

    /// Ends a stream early (the transport is closing).
    func endStream() {
        switch stream {
        case .watch(let w)?: watchLog.remove(w)
        case .metadump(let crawl)?: crawl.finish()
        case nil: break
        }
        stream = nil
    }

    /// A stream ended by itself; commands are parsed again.
    func streamFinished() { stream = nil }
}
