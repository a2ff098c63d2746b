// Process-wide state shared by the listener thread and every worker: settings, the store, TLS,
// connection accounting and the runtime knobs that commands can change (verbosity, memory limit).
import CachetSync
import CacheStore
import CachetTLS
import MemcacheProtocol
import Synchronization

final class ServerContext: Sendable {
    let settings: Settings
    let store: CacheStore
    let clock: StoreClock
    let tls: TLSContextStore?
    let startedAt: Int
    /// Client connections open now / ever (listeners are accounted separately, as memcached prints them).
    let currConns = Atomic<Int>(0)
    let totalConns = Atomic<Int>(0)
    let rejectedConns = Atomic<Int>(0)
    let peakConns = Atomic<Int>(0)
    let listenerCount = Atomic<Int>(0)
    let acceptingConns = Atomic<Bool>(true)
    let listenDisabledNum = Atomic<Int>(0)
    let verbosity: Atomic<Int>
    let maxBytes: Atomic<Int>
    /// `slabs automove <level>` / `slabs automove ratio <r>` as `stats settings` shows them (the store's
    /// automove gets the same values).
    let slabAutomove: Atomic<Int>
    let slabAutomoveRatioBits: Atomic<UInt64>
    /// Cert refresh bookkeeping in memcached's relative clock (time_since_server_cert_refresh).
    let certRefreshRel = Atomic<UInt32>(0)

    /// `stats detail`, `watch`, `stats conns`, `lru_crawler` (PrefixStats, WatchLog, ConnRegistry, CrawlerState).
    let prefixStats: PrefixStats
    let watchLog: WatchLog
    let connRegistry = ConnRegistry()
    /// `shutdown [graceful]` stops the server itself (memcached sets its stop flag; no signal notice).
    let shutdownByCommand = Atomic<Bool>(false)
    let crawler: CrawlerState
    /// memcached's LRU maintainer thread, unless `-o no_lru_maintainer` (started with the workers).
    let lruMaintainer: LRUMaintainer?

    /// Items a warm restart (`-e`) put back at start (`stats`: `restored_items`); set before any worker starts.
    nonisolated(unsafe) var restoredItems = 0

    /// Written once by the main thread before any worker or listener starts; read-only afterwards.
    nonisolated(unsafe) var workers: [Worker] = []
    /// `-o ssl_handshake_threads`: event loops that run TLS handshakes only (Net/HandshakeHandoff.swift).
    /// Set like `workers`; empty when the workers run their own handshakes.
    nonisolated(unsafe) var handshakeWorkers: [Worker] = []
    /// Every event-loop thread: the workers, then the handshake threads.
    var allWorkers: [Worker] { workers + handshakeWorkers }
    /// Which worker a new connection goes to (round robin, or by NAPI id with `-N`); main thread only.
    let workerChoice: WorkerChoice
    /// `-Y`: the users of ASCII authentication (nil: off). Set like `workers`; its list reloads on SIGHUP.
    nonisolated(unsafe) var authFile: AuthFile? = nil

    func sumThreadStats() -> StatsTotals {
        var t = StatsTotals()
        for w in allWorkers { w.stats.accumulate(into: &t.v) }
        return t
    }

    /// `stats reset`: thread counters, store counters, connection totals (memcached's stats_reset).
    func resetStats() {
        for w in allWorkers { w.stats.reset() }
        store.resetStats()
        prefixStats.clear()
        crawler.starts.store(0, ordering: .relaxed)
        totalConns.store(0, ordering: .relaxed)
        rejectedConns.store(0, ordering: .relaxed)
        listenDisabledNum.store(0, ordering: .relaxed)
    }

    init(settings: Settings, store: CacheStore, clock: StoreClock, tls: TLSContextStore?, now: Int) {
        self.settings = settings
        self.store = store
        self.clock = clock
        self.tls = tls
        self.startedAt = now
        self.verbosity = Atomic(settings.verbosity)
        self.maxBytes = Atomic(Int(clamping: settings.maxBytes))
        self.slabAutomove = Atomic(settings.slabAutomove)
        self.slabAutomoveRatioBits = Atomic(settings.slabAutomoveRatio.bitPattern)
        store.slabAutomoveRatio = settings.slabAutomoveRatio
        store.slabAutomoveLevel = settings.slabReassign ? settings.slabAutomove : 0
        self.prefixStats = PrefixStats(store: store, delimiter: settings.prefixDelimiter, enabled: settings.detailEnabled)
        self.workerChoice = WorkerChoice(workerCount: settings.numThreads, napiIds: settings.napiIds)
        self.watchLog = WatchLog(storeEvents: store.events, bufferLimit: settings.watcherLogbufSize)
        // memcached's track_sizes starts the `stats sizes` histogram (as `stats sizes_enable` would).
        if settings.trackSizes && settings.casEnabled { store.enableSizeHistogram() }
        self.crawler = CrawlerState(settings: settings)
        // memcached decides automove=1 moves in its LRU maintainer thread: without it, no automove.
        self.lruMaintainer = settings.lruMaintainerThread
            ? LRUMaintainer(store: store, crawler: crawler,
                            automoveWindow: settings.slabReassign ? settings.slabAutomoveWindow : nil)
            : nil
        // Weak: the watch log holds the store's events object, so a strong capture here would keep both
        // alive after the server context is gone (a cycle LeakSanitizer reported for every test context).
        store.events.onEviction = { [weak log = watchLog] r in
            guard let log else { return }
            log.emit(.evictions, "type=eviction key=\(URIEncode.string(r.key)) fetch=\(r.fetched ? "yes" : "no") ttl=\(r.ttl) la=\(r.lastAccessAge) clsid=\(r.classId) size=\(r.valueLength)")
        }
    }

    /// memcached's stats_state.reserved_fds as 1.6.18 reports it (20 with -t 4, 10 with -t 2).
    var reservedFds: Int { 5 * settings.numThreads }

    func connectionOpened() {
        let n = currConns.add(1, ordering: .relaxed).newValue
        totalConns.add(1, ordering: .relaxed)
        var peak = peakConns.load(ordering: .relaxed)
        while n > peak {
            let (exchanged, original) = peakConns.compareExchange(expected: peak, desired: n, ordering: .relaxed)
            if exchanged { break }
            peak = original
        }
    }

    func connectionClosed() { currConns.subtract(1, ordering: .relaxed) }
}

