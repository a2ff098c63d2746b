// The `/metrics` page: Prometheus text exposition (format 0.0.4) of what `stats`, `stats settings`,
// `stats slabs` and `stats items` report, read from the same sources those commands read (the summed
// per-worker counters, the store's snapshot, the connection counters, the TLS store) — never keys or values.
// Cost: O(slab classes + workers), independent of the number of items.
//
// Naming: `cachet_` + memcached's stat name; counters end in `_total`, times in `_seconds`, sizes in
// `_bytes`; per-class values carry a `class` label, LRU segments a `segment` label, `stats settings` is one
// `cachet_settings_info` gauge whose labels are the settings.
import CacheStore
import CLibevent
import Glibc

struct MetricsPage {
    private(set) var text = ""

    enum Kind: String { case counter, gauge }

    /// One metric family: HELP, TYPE, then its samples (label sets already formatted).
    mutating func family(_ name: String, _ kind: Kind, _ help: String, _ samples: [(labels: String, value: String)]) {
        guard !samples.isEmpty else { return }
        let full = "cachet_" + name
        text += "# HELP \(full) \(help)\n# TYPE \(full) \(kind.rawValue)\n"
        for s in samples {
            text += full + (s.labels.isEmpty ? "" : "{\(s.labels)}") + " " + s.value + "\n"
        }
    }

    mutating func one(_ name: String, _ kind: Kind, _ help: String, _ value: some BinaryInteger) {
        family(name, kind, help, [("", String(value))])
    }

    mutating func one(_ name: String, _ kind: Kind, _ help: String, _ value: Double) {
        family(name, kind, help, [("", Self.number(value))])
    }

    static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        return cFormat("%.6f", v)
    }

    /// A label value: backslash, double quote and newline escaped, as the text format requires.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

extension MetricsPage {
    /// Builds the whole page from the server's current state (main thread; workers keep running).
    static func render(_ server: ServerContext) -> String {
        var p = MetricsPage()
        let totals = server.sumThreadStats()
        let store = server.store
        let s = store.statsSnapshot()
        let now = server.clock.currentTime
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let listeners = server.listenerCount.load(ordering: .relaxed)

        p.family("build_info", .gauge, "Cachet's version and the memcached version it answers as.",
                 [("version=\"\(escape(cachetVersion))\",memcached_version=\"\(escape(memcachedCompatVersion))\",libevent=\"\(escape(String(cString: event_get_version())))\"", "1")])
        p.one("uptime_seconds", .gauge, "Seconds since the server started (stats uptime).", Int(now) - 60)
        p.one("process_start_time_seconds", .gauge, "Unix time the server started.", server.clock.processStarted + 60)
        p.one("cpu_user_seconds_total", .counter, "User CPU time of the process (stats rusage_user).",
              Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6)
        p.one("cpu_system_seconds_total", .counter, "System CPU time of the process (stats rusage_system).",
              Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6)

        // Connections.
        p.one("max_connections", .gauge, "Connection limit (-c).", server.settings.maxConns)
        p.one("curr_connections", .gauge, "Open client connections (stats curr_connections).",
              server.currConns.load(ordering: .relaxed) + listeners - 1)
        p.one("connections_total", .counter, "Connections accepted (stats total_connections).",
              server.totalConns.load(ordering: .relaxed) + listeners)
        p.one("rejected_connections_total", .counter, "Connections closed at once at the -c limit.",
              server.rejectedConns.load(ordering: .relaxed))
        p.one("connection_structures", .gauge, "Connection structures allocated (stats connection_structures).",
              server.peakConns.load(ordering: .relaxed) + listeners)
        p.one("accepting_conns", .gauge, "1 while the listeners accept, 0 while paused at the -c limit.",
              server.acceptingConns.load(ordering: .relaxed) ? 1 : 0)
        p.one("listen_disabled_total", .counter, "Times the listeners paused at the -c limit (stats listen_disabled_num).",
              server.listenDisabledNum.load(ordering: .relaxed))
        p.one("conn_yields_total", .counter, "Times a connection gave way after -R requests in one event.", totals[.connYields])
        if server.settings.idleTimeout > 0 {
            p.one("idle_kicks_total", .counter, "Connections closed by idle_timeout.", totals[.idleKicks])
        }
        p.one("threads", .gauge, "Worker threads (-t).", server.settings.numThreads)

        // Commands, by command and outcome (stats cmd_*, *_hits, *_misses).
        p.family("commands_total", .counter, "Commands received (stats cmd_get, cmd_set, cmd_flush, cmd_touch, cmd_meta).", [
            ("command=\"get\"", String(totals[.getCmds])), ("command=\"set\"", String(totals.slabTotal(.setCmds))),
            ("command=\"flush\"", String(totals[.flushCmds])), ("command=\"touch\"", String(totals[.touchCmds])),
            ("command=\"meta\"", String(totals[.metaCmds])),
        ])
        p.family("command_results_total", .counter, "Outcomes of key commands (stats <command>_hits, _misses, cas_badval, get_expired, get_flushed).", [
            ("command=\"get\",result=\"hit\"", String(totals.slabTotal(.getHits))),
            ("command=\"get\",result=\"miss\"", String(totals[.getMisses])),
            ("command=\"get\",result=\"expired\"", String(totals[.getExpired])),
            ("command=\"get\",result=\"flushed\"", String(totals[.getFlushed])),
            ("command=\"delete\",result=\"hit\"", String(totals.slabTotal(.deleteHits))),
            ("command=\"delete\",result=\"miss\"", String(totals[.deleteMisses])),
            ("command=\"incr\",result=\"hit\"", String(totals.slabTotal(.incrHits))),
            ("command=\"incr\",result=\"miss\"", String(totals[.incrMisses])),
            ("command=\"decr\",result=\"hit\"", String(totals.slabTotal(.decrHits))),
            ("command=\"decr\",result=\"miss\"", String(totals[.decrMisses])),
            ("command=\"cas\",result=\"hit\"", String(totals.slabTotal(.casHits))),
            ("command=\"cas\",result=\"miss\"", String(totals[.casMisses])),
            ("command=\"cas\",result=\"badval\"", String(totals.slabTotal(.casBadval))),
            ("command=\"touch\",result=\"hit\"", String(totals.slabTotal(.touchHits))),
            ("command=\"touch\",result=\"miss\"", String(totals[.touchMisses])),
        ])
        p.one("store_too_large_total", .counter, "Stores refused because the item exceeds -I.", totals[.storeTooLarge])
        p.one("store_no_memory_total", .counter, "Stores refused for lack of memory (-M).", totals[.storeNoMemory])
        p.one("auth_commands_total", .counter, "Authentication commands (stats auth_cmds).", totals[.authCmds])
        p.one("auth_errors_total", .counter, "Failed authentications (stats auth_errors).", totals[.authErrors])
        p.one("read_bytes_total", .counter, "Bytes read from clients (stats bytes_read).", totals[.bytesRead])
        p.one("written_bytes_total", .counter, "Bytes written to clients (stats bytes_written).", totals[.bytesWritten])

        // Memory and items.
        p.one("limit_bytes", .gauge, "Item memory limit (-m, cache_memlimit).", server.maxBytes.load(ordering: .relaxed))
        p.one("bytes", .gauge, "Bytes used by items (stats bytes).", s.bytes)
        p.one("items", .gauge, "Items stored now (stats curr_items).", s.currItems)
        p.one("items_total", .counter, "Items stored since start (stats total_items).", s.totalItems)
        if server.settings.memoryFile != nil {
            p.one("restored_items", .gauge, "Items a warm restart (-e) put back at start (stats restored_items).",
                  server.restoredItems)
        }
        p.one("evictions_total", .counter, "Items evicted to make room (stats evictions).", s.evictions)
        p.one("evicted_unfetched_total", .counter, "Evicted items that were never read.", s.evictedUnfetched)
        p.one("expired_unfetched_total", .counter, "Expired items that were never read.", s.expiredUnfetched)
        p.one("reclaimed_total", .counter, "Expired items whose memory was reused (stats reclaimed).", s.reclaimed)
        p.one("crawler_reclaimed_total", .counter, "Items reclaimed by the LRU crawler.", s.crawlerReclaimed)
        p.one("crawler_items_checked_total", .counter, "Items the LRU crawler looked at.", s.crawlerItemsChecked)
        p.one("malloc_fails_total", .counter, "Failed memory allocations.", s.mallocFails)
        p.one("total_malloced_bytes", .gauge, "Slab memory allocated (stats slabs total_malloced).", s.totalMalloced)
        p.one("hash_power_level", .gauge, "Hash table size as a power of two.", s.hashPowerLevel)
        p.one("hash_bytes", .gauge, "Bytes used by the hash table.", s.hashBytes)
        p.one("hash_is_expanding", .gauge, "1 while the hash table grows.", s.hashIsExpanding ? 1 : 0)
        if server.settings.lruCrawler {
            p.one("lru_crawler_running", .gauge, "1 while an LRU crawl runs.", store.isCrawling ? 1 : 0)
            p.one("lru_crawler_starts_total", .counter, "LRU crawls started.", server.crawler.starts.load(ordering: .relaxed))
        }
        let log = server.watchLog
        p.one("log_watchers", .gauge, "Connections running `watch`.", log.count.load(ordering: .relaxed))
        p.one("log_watcher_sent_total", .counter, "Log lines sent to watchers.", log.sent.load(ordering: .relaxed))
        p.one("log_watcher_skipped_total", .counter, "Log lines watchers were too slow to take.",
              log.skippedTotal.load(ordering: .relaxed))

        classMetrics(&p, s, totals)

        // TLS (absent without -Z).
        if let tls = server.tls {
            p.one("ssl_handshake_errors_total", .counter, "TLS handshakes that failed.", tls.handshakeErrors)
            p.one("ssl_proto_errors_total", .counter, "TLS protocol errors after the handshake.", tls.protoErrors)
            p.one("ssl_handshakes_total", .counter, "TLS handshakes completed.", tls.handshakes)
            p.one("ssl_resumed_handshakes_total", .counter, "Completed TLS handshakes that resumed a session.",
                  tls.resumedHandshakes)
            p.one("ssl_handshake_timeouts_total", .counter, "TLS connections closed by ssl_handshake_timeout.",
                  tls.handshakeTimeouts)
            p.one("ssl_plaintext_rejected_total", .counter, "Plaintext clients refused on a TLS port.", tls.plaintextRejected)
            p.one("ssl_verify_name_failures_total", .counter, "Client certificates refused by ssl_verify_name.",
                  tls.verifyNameFailures)
            p.one("ssl_handshakes_deferred_total", .counter, "ClientHellos deferred by ssl_handshake_share.",
                  tls.handshakesDeferred)
            if server.settings.tls.sessionCache {
                p.one("ssl_new_sessions_total", .counter, "TLS sessions added to the server session cache.", tls.newSessions)
            }
            p.one("ssl_cert_reload_failures_total", .counter, "Certificate reloads (refresh_certs, SIGHUP) that failed and kept the old certificate.",
                  tls.reloadFailures)
            p.one("ssl_time_since_cert_refresh_seconds", .gauge, "Seconds since the certificate was last loaded.",
                  Int(now &- server.certRefreshRel.load(ordering: .relaxed)))
            let serving = tls.currentContext()
            p.family("ssl_cert_info", .gauge, "The serving certificate's serial (hex) and subject; the value is always 1.",
                     [("serial=\"\(escape(serving.certSerial ?? ""))\",subject=\"\(escape(serving.certSubject ?? ""))\"", "1")])
            if let notAfter = tls.certNotAfter {
                p.one("ssl_cert_not_after_timestamp_seconds", .gauge, "Expiry (notAfter) of the serving certificate, unix time.", Int(notAfter))
            }
        }

        // `stats settings`, one info gauge.
        let settings = statsSettingsLines(server.settings, verbosity: server.verbosity.load(ordering: .relaxed),
                                          oldestLive: store.oldestLive, maxBytes: server.maxBytes.load(ordering: .relaxed))
        let labels = settings.filter { isLabelName($0.0) }.map { k, v -> String in
            let value = k == "stat_key_prefix" ? String(decoding: [server.prefixStats.delimiter], as: UTF8.self) : v
            return "\(k)=\"\(escape(value))\""
        }
        p.family("settings_info", .gauge, "The server's settings (stats settings) as labels; the value is always 1.",
                 [(labels.joined(separator: ","), "1")])
        return p.text
    }

    /// `stats slabs` and `stats items` per slab class, labelled by class id.
    private static func classMetrics(_ p: inout MetricsPage, _ s: StoreStats, _ totals: StatsTotals) {
        let withPages = s.classes.filter { $0.totalPages > 0 }
        let withItems = s.classes.filter { $0.number > 0 || $0.evicted > 0 }
        func per(_ list: [ClassStats], _ f: (ClassStats) -> Int) -> [(labels: String, value: String)] {
            list.map { ("class=\"\($0.id)\"", String(f($0))) }
        }
        p.family("slab_chunk_size_bytes", .gauge, "Chunk size of the slab class.", per(withPages) { $0.chunkSize })
        p.family("slab_chunks_per_page", .gauge, "Chunks in one page of the class.", per(withPages) { $0.perSlab })
        p.family("slab_pages", .gauge, "Pages assigned to the class (stats slabs total_pages).", per(withPages) { $0.totalPages })
        p.family("slab_chunks", .gauge, "Chunks of the class by state (stats slabs used_chunks, free_chunks, free_chunks_end).",
                 withPages.flatMap { c in [("class=\"\(c.id)\",state=\"used\"", String(c.usedChunks)),
                                           ("class=\"\(c.id)\",state=\"free\"", String(c.freeChunks)),
                                           ("class=\"\(c.id)\",state=\"free_end\"", String(c.freeChunksEnd))] })
        let slabCounters: [(String, SlabCounter)] = [("get_hits", .getHits), ("cmd_set", .setCmds), ("delete_hits", .deleteHits),
                                                      ("incr_hits", .incrHits), ("decr_hits", .decrHits), ("cas_hits", .casHits),
                                                      ("cas_badval", .casBadval), ("touch_hits", .touchHits)]
        p.family("slab_commands_total", .counter, "Per-class command counters (stats slabs get_hits, cmd_set, delete_hits, …).",
                 withPages.flatMap { c in slabCounters.map { ("class=\"\(c.id)\",counter=\"\($0.0)\"", String(totals.slab(c.id, $0.1))) } })
        p.family("class_items", .gauge, "Items in the class (stats items number).", per(withItems) { $0.number })
        p.family("class_lru_items", .gauge,
                 "Items in the class by LRU segment (stats items number_hot, number_warm, number_cold, number_temp).",
                 withItems.flatMap { c in [("hot", c.numberHot), ("warm", c.numberWarm), ("cold", c.numberCold),
                                           ("temp", c.numberTemp)].map { ("class=\"\(c.id)\",segment=\"\($0.0)\"", String($0.1)) } })
        p.family("class_lru_moves_total", .counter,
                 "Items the segmented LRU moved (stats items moves_to_cold, moves_to_warm, moves_within_lru).",
                 withItems.flatMap { c in [("to_cold", c.movesToCold), ("to_warm", c.movesToWarm), ("within_lru", c.movesWithinLRU)]
                     .map { ("class=\"\(c.id)\",move=\"\($0.0)\"", String($0.1)) } })
        p.family("class_age_seconds", .gauge, "Seconds since the oldest item of the class was last accessed (stats items age).",
                 per(withItems) { $0.number > 0 ? Int($0.age) : 0 })
        p.family("class_requested_bytes", .gauge, "Bytes the class's items asked for (stats items mem_requested).", per(withItems) { $0.memRequested })
        p.family("class_evicted_total", .counter, "Items evicted from the class.", per(withItems) { $0.evicted })
        p.family("class_evicted_nonzero_total", .counter, "Evicted items that had an expiry time.", per(withItems) { $0.evictedNonzero })
        p.family("class_evicted_time_seconds", .gauge, "Seconds since the last evicted item was accessed.", per(withItems) { Int($0.evictedTime) })
        p.family("class_outofmemory_total", .counter, "Stores the class could not take memory for.", per(withItems) { $0.outOfMemory })
        p.family("class_reclaimed_total", .counter, "Expired items of the class whose memory was reused.", per(withItems) { $0.reclaimed })
        p.family("class_expired_unfetched_total", .counter, "Expired items of the class never read.", per(withItems) { $0.expiredUnfetched })
        p.family("class_evicted_unfetched_total", .counter, "Evicted items of the class never read.", per(withItems) { $0.evictedUnfetched })
        p.family("class_crawler_reclaimed_total", .counter, "Items of the class reclaimed by the LRU crawler.", per(withItems) { $0.crawlerReclaimed })
    }

    private static func isLabelName(_ s: String) -> Bool {
        guard let f = s.utf8.first, f == UInt8(ascii: "_") || (f | 0x20 >= UInt8(ascii: "a") && f | 0x20 <= UInt8(ascii: "z")) else { return false }
        return !s.hasPrefix("__") && s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "z")) || ($0 >= 48 && $0 <= 57) }
    }
}
