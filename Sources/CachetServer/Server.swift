// Startup and the main thread: options → root/user checks → TLS context → store → daemon → workers →
// listeners → the 1-second clock and signals on the main event base.
import CLibevent
import CacheStore
import CachetTLS
import Glibc
import MemcacheProtocol

private let clockCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<MainLoop>.fromOpaque(arg!).takeUnretainedValue().tick()
}

private let signalCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { sig, _, arg in
    Unmanaged<MainLoop>.fromOpaque(arg!).takeUnretainedValue().signal(sig)
}

/// The main thread's loop: accepts, ticks the clock, handles signals. Invariant: main thread only.
final class MainLoop {
    let server: ServerContext
    let base: OpaquePointer
    var listeners: [Listener] = []
    private var events: [OpaquePointer] = []
    private var reloadRequested = false

    init(server: ServerContext, base: OpaquePointer) {
        self.server = server
        self.base = base
    }

    func start() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        let clock = event_new(base, -1, Int16(EV_PERSIST), clockCallback, me)!
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        event_add(clock, &tv)
        events.append(clock)
        for sig in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] {
            let ev = event_new(base, sig, Int16(EV_SIGNAL | EV_PERSIST), signalCallback, me)!
            event_add(ev, nil)
            events.append(ev)
        }
    }

    func tick() {
        server.clock.tick(now: Int(time(nil)))
        if let tls = server.tls {
            tls.rotateTicketKeysIfDue(now: Int64(time(nil)))
            switch tls.autoReloadIfDue(now: Int64(time(nil))) {
            case .unchanged: break
            case .reloaded: server.certRefreshRel.store(server.clock.currentTime, ordering: .relaxed)
            case .failed(let e): writeStderr("Could not reload TLS certificates (ssl_auto_reload): \(e.message)\n")
            }
        }
        if reloadRequested {
            reloadRequested = false
            // memcached 1.6.40+ re-reads the ASCII auth file on SIGHUP; a bad file keeps the users it had.
            if let auth = server.authFile, let e = auth.reload() {
                writeStderr("Could not reload authfile [\(auth.path)] on SIGHUP, keeping the previous users: "
                            + AuthFile.startupMessage(e, path: auth.path))
            }
            if let tls = server.tls {
                if let failure = tls.refresh() {
                    writeStderr("Could not reload TLS certificates on SIGHUP: \(failure)\n")
                } else {
                    server.certRefreshRel.store(server.clock.currentTime, ordering: .relaxed)
                    if server.verbosity.load(ordering: .relaxed) > 0 {
                        writeStderr("Reloaded TLS certificates on SIGHUP\n")
                    }
                }
            }
        }
    }

    func signal(_ sig: Int32) {
        switch sig {
        case SIGHUP:
            // Like memcached 1.6.40+: reload on the next clock tick, off the signal path.
            reloadRequested = true
        case SIGUSR1:
            // memcached 1.6.18 printf()s the notice to stdout (seen on a terminal, lost when stdout is a
            // pipe) unless `shutdown graceful` set the stop flag directly, then says "Gracefully stopping"
            // on stderr and exits 0.
            if !server.shutdownByCommand.load(ordering: .relaxed) {
                writeStdoutIfTerminal("Graceful shutdown signal handled: \(String(cString: strsignal(sig))).\n")
            }
            writeStderr("Gracefully stopping\n")
            exitProcess(graceful: true)
        default:
            if !server.shutdownByCommand.load(ordering: .relaxed) {
                writeStdoutIfTerminal("Signal handled: \(String(cString: strsignal(sig))).\n")
            }
            exitProcess(graceful: false)
        }
    }

    /// memcached's end of main(): workers stopped, the pid file removed when it daemonized, and with `-v`
    /// (or a `verbosity` raised at run time) `Exiting normally` on stderr — except after a graceful stop,
    /// which says `Gracefully stopping` instead.
    private func exitProcess(graceful: Bool) -> Never {
        SystemdNotify.stopping()
        // No new connections while the workers finish what they are running.
        for l in listeners { l.stopAccepting() }
        stopWorkers()
        // Only a graceful stop keeps the cache for the next start (memcached: SIGTERM/SIGINT do not).
        if graceful && server.settings.memoryFile != nil {
            WarmRestart.save(store: server.store, verbose: server.verbosity.load(ordering: .relaxed) > 0)
        }
        if server.settings.daemonize, let pidFile = server.settings.pidFile {
            Startup.removePidFile(pidFile)
        }
        if !graceful && server.verbosity.load(ordering: .relaxed) > 0 {
            writeStderr("Exiting normally\n")
        }
        exit(0)
    }

    /// Asks every worker to leave its event loop and waits (at most a second) until they have, so exit's
    /// clean-up (OpenSSL's atexit handler among it) never runs under a worker that is still in the middle of
    /// a request. A worker stuck for longer does not hold the exit up.
    private func stopWorkers() {
        let all = server.allWorkers
        for w in all { w.post(.stop) }
        server.lruMaintainer?.stop()
        var waitedMs = 0
        while waitedMs < 1000 && !(all.allSatisfy({ $0.stopped.load(ordering: .acquiring) })
                                   && server.lruMaintainer?.stopped.load(ordering: .acquiring) ?? true) {
            usleep(1000)
            waitedMs += 1
        }
    }
}

func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// memcached's printf on stdout: line-buffered on a terminal, never flushed before exit into a pipe.
func writeStdoutIfTerminal(_ s: String) {
    if isatty(1) != 0 { writeStdout(s) }
}

func writeStdout(_ s: String) {
    var s = s
    s.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}

public enum CachetServerMain {
    /// Runs the server; returns only with an exit code on startup failure.
    public static func run(arguments: [String]) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let settings: Settings
        switch SettingsParser.parse(arguments) {
        case .exit(let code, let out, let err):
            if !out.isEmpty { writeStdout(out) }
            if !err.isEmpty { writeStderr(err) }
            return code
        case .run(let s):
            settings = s
        }
        for w in settings.startupWarnings { writeStderr(w) }
        var tlsStore: TLSContextStore? = nil
        if settings.tls.enabled {
            do {
                tlsStore = try TLSContextStore(settings: Startup.absoluteCertificatePaths(settings.tls))
            } catch {
                // The hint goes first so memcached's line stays the last one (scripts read the last line).
                if let hint = Startup.missingCertificateHint(settings.tls, error) { writeStderr(hint) }
                writeStderr(error.stderrText)
                return 64
            }
        }
        if let failure = Startup.applyProcessLimits(settings) ?? Startup.setFileLimit(settings.maxConns)
            ?? Startup.checkUserAndRoot(settings) {
            writeStderr(failure.message)
            return failure.code
        }
        if settings.saslEnabled, let failure = SaslServer.initialize(verbose: settings.verbosity > 0) {
            writeStderr(failure)
            return 1
        }
        let now = Int(time(nil))
        var clock = StoreClock(now: now)
        var store: CacheStore
        var restored = 0
        if settings.memoryFile != nil {
            switch WarmRestart.start(settings: settings, now: now) {
            case .failure(let f):
                writeStderr(f.message)
                return f.code
            case .success(let started):
                (store, clock, restored) = (started.store, started.clock, started.restored)
            }
        } else {
            var region: LargePageRegion? = nil
            if settings.largePages {
                switch LargePageRegion.make(size: Int(clamping: settings.maxBytes)) {
                case .success(let r):
                    if settings.verbosity > 1 { writeStderr("huge page size: \(r.hugePageSize)\n") }
                    region = r
                case .failure(let f):
                    writeStderr(f.message + "Warning: Failed to allocate requested memory in one large chunk.\n"
                                + "Will allocate in smaller chunks\n")
                }
            }
            store = CacheStore(config: settings.storeConfig, clock: clock, largePages: region)
        }
        if settings.verbosity > 1 {
            for c in store.slabClasses {
                writeStderr(Startup.slabClassLine(c))
            }
        }
        // memcached preallocates only without a memory file.
        if settings.largePages && settings.memoryFile == nil && !store.preallocate() {
            writeStderr("Error while preallocating slab memory!\n"
                        + "If using -L or other prealloc options, max memory must be at least \(store.slabClasses.count) megabytes.\n")
            return 1
        }
        // Re-read on SIGHUP, possibly after -d changed directory to `/`.
        let authPath = settings.authFile.map(Startup.absoluteIfExisting)
        if settings.daemonize {
            if let failure = Startup.daemonize(keepStdio: settings.verbosity > 0) {
                writeStderr(failure)
                return 71
            }
        }
        // memcached reads the auth file here: after the user switch and daemonizing, before any listener.
        var authFile: AuthFile? = nil
        if let path = authPath {
            switch AuthFile.read(path) {
            case .success(let entries): authFile = AuthFile(path: path, entries: entries)
            case .failure(let e):
                writeStderr(AuthFile.startupMessage(e, path: path))
                return 1
            }
        }
        evthread_use_pthreads()
        let server = ServerContext(settings: settings, store: store, clock: clock, tls: tlsStore, now: now)
        server.authFile = authFile
        server.restoredItems = restored
        // The first certificate load counts as a refresh at process start (memcached stamps it likewise).
        server.certRefreshRel.store(clock.currentTime, ordering: .relaxed)
        var workers: [Worker] = []
        for i in 0..<settings.numThreads { workers.append(Worker(id: i, server: server)) }
        server.workers = workers
        if tlsStore != nil {
            let count = settings.tls.handshakeThreadCount(workers: settings.numThreads)
            // Numbered after the workers: that is how a Worker knows it is a handshake thread.
            server.handshakeWorkers = (0..<count).map { Worker(id: settings.numThreads + $0, server: server) }
        }
        let base = event_base_new()!
        let main = MainLoop(server: server, base: base)
        // Signals first: a listening socket already queues connections, and a SIGUSR1/SIGINT sent by
        // someone who saw it accept must find memcached's handlers, not the default action.
        main.start()
        switch Startup.openListeners(server: server) {
        case .failure(let e):
            writeStderr(e.message)
            return e.exitCode
        case .success(let ls):
            main.listeners = ls
        }
        let udpSockets: [Int32]
        switch Startup.openUDPSockets(server: server) {
        case .failure(let e):
            writeStderr(e.message)
            return e.exitCode
        case .success(let fds):
            udpSockets = fds
        }
        Startup.writePortFile(tcp: main.listeners.map(\.fd), udp: udpSockets, settings: settings)
        var metrics: MetricsListener? = nil
        if let port = settings.metricsPort {
            let m = MetricsListener(server: server, base: base)
            if let e = m.open(addr: settings.metricsAddr, port: port) {
                writeStderr(e.message)
                return e.exitCode
            }
            metrics = m
        }
        for w in server.allWorkers { w.start() }
        Startup.dispatchUDPSockets(udpSockets, server: server)
        server.lruMaintainer?.start()
        for l in main.listeners { l.start(base: base) }
        if let pidFile = settings.pidFile { Startup.savePidFile(pidFile) }
        SystemdNotify.ready(listeners: main.listeners.map { ($0.info.tls == .plaintext ? "" : "tls ") + $0.info.address })
        event_base_dispatch(base)
        withExtendedLifetime(metrics) {}
        return 0
    }
}
