// Every setting memcached 1.6.18 shows in `stats settings` that Cachet acts on or reports, with
// memcached's defaults (settings_init() in memcached.c). Values keep memcached's C semantics
// (int truncation, size_t maxbytes) because `stats settings` prints them back verbatim.
// Parsing: SettingsParser.swift; `-o`: ExtendedOptions.swift; output: StatsSettings.swift.
import CacheStore
import CachetTLS

/// memcached's `-B`. Binary is refused at parse time (Cachet has no binary protocol).
public enum BindingProtocol: String, Sendable, Equatable {
    case ascii
    case binary
    /// The first byte of each connection decides (0x80: binary).
    case negotiating = "auto-negotiate"
}

public struct Settings: Sendable {
    // Network
    /// `-p`, 0 = no TCP listener.
    public var port: Int = 11211
    /// `-U`, 0 = no UDP (memcached's default since 1.5.6); -1 (like `-p -1`) = a port the kernel picks.
    public var udpPort: Int = 0
    /// Whether `-p` / `-U` were given: memcached moves TCP to a non-zero `-U` port when `-p` was not.
    var portGiven = false
    var udpPortGiven = false
    /// `-l` exactly as given (repeated `-l` joined by ','); `stats settings` echoes it as `inter`.
    public var inter: String? = nil
    /// `-s`
    public var socketPath: String? = nil
    /// `-a`, octal.
    public var unixMask: Int = 0o700
    /// `-b`
    public var backlog: Int = 1024
    /// `-c`
    public var maxConns: Int = 1024
    /// `-o maxconns_fast` / `no_maxconns_fast`.
    public var maxConnsFast = true
    /// `-o idle_timeout` seconds, 0 = never.
    public var idleTimeout: Int = 0
    /// `-t`
    public var numThreads: Int = 4
    /// `-R`
    public var reqsPerEvent: Int = 20
    /// `-B`
    public var bindingProtocol: BindingProtocol = .negotiating
    /// `-B` was given (memcached's protocol_specified: with `-S` only `-B binary`, with `-Y` only `-B ascii`).
    public var bindingProtocolGiven = false
    /// `-o watcher_logbuf_size` (given in KB): each watcher's buffer of lines not yet sent, in bytes.
    public var watcherLogbufSize = 256 * 1024
    /// `-o worker_logbuf_size` (given in KB), in bytes. Reported only: Cachet's workers write log lines
    /// straight into each watcher's buffer, so there is no per-worker buffer for it to bound.
    public var workerLogbufSize = 64 * 1024
    /// `-o read_buf_mem_limit` (given in MB; memcached multiplies a 32-bit value, so it wraps the same way),
    /// in bytes; 0 = no limit. Split evenly between the workers, in 16 KB read buffers (ReadBufferBudget).
    public var readBufMemLimit: UInt32 = 0
    /// `-o track_sizes`: the `stats sizes` histogram runs from the start.
    public var trackSizes = false
    /// `-Y <file>`: ASCII authentication (Core/AuthFile.swift), nil when off.
    public var authFile: String? = nil
    /// `-S`: binary-protocol clients must authenticate (SASL) before anything but version.
    public var saslEnabled = false

    // Process
    /// `-A`
    public var shutdownEnabled = false
    /// `-d`
    public var daemonize = false
    /// `-r`
    public var maxCore = false
    /// `-u`
    public var user: String? = nil
    /// `-k`
    public var lockMemory = false
    /// `-v` count (`-vv` = 2).
    public var verbosity: Int = 0
    /// `-P`
    public var pidFile: String? = nil

    // Store
    /// `-m` in bytes. memcached computes `(size_t)atoi(arg) * 1024 * 1024`; kept as the same bit
    /// pattern (UInt64) so a negative `-m` behaves and prints as it does there.
    public var maxBytes: UInt64 = 64 * 1024 * 1024
    /// `!-M`
    public var evictionsEnabled = true
    /// `-f`
    public var growthFactor: Double = 1.25
    /// `-n`
    public var chunkSize: Int = 48
    /// `!-C`
    public var casEnabled = true
    /// `-I` (k/m suffixes).
    public var itemSizeMax: Int = 1024 * 1024
    /// `-o slab_chunk_max` (bytes in 1.6.18, despite the help text saying kilobytes).
    public var slabChunkMax: Int = 512 * 1024
    /// memcached's settings.slab_page_size; not settable.
    public var slabPageSize: Int = 1024 * 1024
    /// `-e <file>`: item memory lives in this file (mapped shared) and survives a graceful stop
    /// (SIGUSR1, `shutdown graceful`) for a warm restart (Ops/WarmRestart.swift).
    public var memoryFile: String? = nil
    /// `-o hashpower`; 0 = default (the store starts at 16).
    public var hashPowerInit: Int = 0
    /// `!-o no_hashexpand`: the hash table doubles when it holds 1.5 items per bucket.
    public var hashExpand = true
    /// `-o slab_sizes=<a>-<b>-…` as given (memcached parses it after every option, so `-n` and
    /// `slab_chunk_max` count whatever their place), then the parsed class sizes; nil = `-f` progression.
    public var slabSizesText: String? = nil
    public var slabSizes: [Int]? = nil
    /// The slab_sizes text came from `worker_logbuf_size` (for the hint when it is refused).
    public var slabSizesFromWorkerLogbuf = false
    /// `-L`: all of `-m` is mapped at start in one region advised for transparent huge pages, and every
    /// slab class gets its first page at once (memcached's preallocation).
    public var largePages = false
    /// `-N <n>`: new connections go to the worker that already serves their NIC receive queue
    /// (SO_INCOMING_NAPI_ID); 0 = round robin only.
    public var napiIds = 0
    /// `-o tail_repair_time=<s>` (≥ 10, 0 = off). Reported only: memcached uses it to free items whose
    /// reference count leaked; a Cachet pin belongs to a connection's reply and ends with it.
    public var tailRepairTime = 0
    /// `-o sock_cookie_id=<n>`: SO_MARK on every listening socket, for firewall rules (0 = none).
    public var sockCookieId: UInt32 = 0

    // Commands
    /// `!-F`
    public var flushEnabled = true
    /// `!-X`
    public var dumpEnabled = true
    /// `!-W`
    public var watchEnabled = true
    /// `-D <char>`: the byte that ends a key's prefix for `stats detail` (memcached's
    /// settings.prefix_delimiter; the first byte of the argument).
    public var prefixDelimiter: UInt8 = UInt8(ascii: ":")
    /// memcached's settings.detail_enabled at start: `-D` turns `stats detail` on.
    public var detailEnabled = false

    // The page mover, the crawler and the LRU maintainer (what each `-o` option does: ExtendedOptions.swift).
    public var slabReassign = true
    public var slabAutomove: Int = 1
    /// `-o slab_automove_ratio` / `slab_automove_window` (memcached's defaults 0.8 and 30).
    public var slabAutomoveRatio: Double = 0.8
    public var slabAutomoveWindow: Int = 30
    public var lruCrawler = true
    /// `-o lru_crawler_sleep` (µs between crawler batches) and `-o lru_crawler_tocrawl` (items checked
    /// per class per crawl, 0 = all); `lru_crawler sleep|tocrawl` change them at run time (CrawlerState).
    public var lruCrawlerSleep: Int = 100
    public var lruCrawlerToCrawl: UInt32 = 0
    /// memcached's LRU maintainer thread and segmented LRU (`-o lru_maintainer` / `no_lru_maintainer`,
    /// `lru mode`), with its tuning (`-o hot_lru_pct …`, `lru tune`) and TEMP LRU (`-o temporary_ttl`).
    public var lruMaintainerThread = true
    public var lruSegmented = true
    public var hotLRUPct = 20
    public var warmLRUPct = 40
    public var hotMaxFactor = 0.2
    public var warmMaxFactor = 2.0
    public var tempLRU = false
    public var temporaryTTL = 61
    public var hashAlgorithm = "murmur3"
    /// `-o lru_policy=segmented|s3fifo` (Cachet only; CacheStore's LRUPolicyKind).
    public var lruPolicy: LRUPolicyKind = .segmented

    /// `-Z` and `-o ssl_*`.
    public var tls = TLSSettings()

    /// `-o metrics_port=<port>` (Cachet only): the Prometheus page's plain HTTP listener; nil = off.
    public var metricsPort: Int? = nil
    /// `-o metrics_addr=<addr>` (Cachet only): where that listener binds; loopback unless said otherwise.
    public var metricsAddr: String = "127.0.0.1"

    /// Non-fatal messages memcached prints while parsing (e.g. the `-t > 64` warning); the caller
    /// writes them to stderr before starting.
    public var startupWarnings: [String] = []

    public init() {}

    /// memcached: one worker per UDP port when `-l` lists several interfaces.
    public var numThreadsPerUDP: Int {
        if let inter, inter.contains(",") { return 1 }
        return numThreads
    }

    /// The `-l` entries, parsed; empty when `-l` was not given or does not parse (the server learns
    /// why from `ListenerSpec.validate(_:)`, which it calls before binding).
    public var listenEntries: [ListenerSpec] {
        (try? ListenerSpec.parseList(self).get()) ?? []
    }

    public var storeConfig: StoreConfig {
        var c = StoreConfig()
        c.memoryLimit = Int(clamping: maxBytes)
        c.chunkSize = chunkSize
        c.growthFactor = growthFactor
        c.itemSizeMax = itemSizeMax
        c.slabPageSize = slabPageSize
        c.slabChunkMax = slabChunkMax
        c.casEnabled = casEnabled
        c.evictionsEnabled = evictionsEnabled
        c.lruSegmented = lruSegmented
        c.lruPolicyKind = lruPolicy
        c.hotLRUPct = hotLRUPct
        c.warmLRUPct = warmLRUPct
        c.hotMaxFactor = hotMaxFactor
        c.warmMaxFactor = warmMaxFactor
        c.tempLRU = tempLRU
        c.temporaryTTL = temporaryTTL
        c.hashPowerInitial = hashPowerInit == 0 ? 16 : hashPowerInit
        c.hashExpand = hashExpand
        c.slabSizes = slabSizes
        c.hashAlgorithm = HashAlgorithm(rawValue: hashAlgorithm) ?? .murmur3
        c.preallocate = largePages
        c.workerThreads = numThreads
        return c
    }
}
