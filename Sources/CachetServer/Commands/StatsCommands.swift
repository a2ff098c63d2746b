// The stats family: `stats` (memcached's server_stats + item totals, in memcached's order),
// `stats settings`, `stats items`, `stats slabs`, `stats sizes`, `stats reset`, `stats detail`.
import CacheStore
import CLibevent
import Glibc
import MemcacheProtocol

extension CommandSession {
    @inline(__always) func stat(_ name: StaticString, _ value: UInt64) {
        wbuf.append(Reply.stat); wbuf.append(name); wbuf.append(UInt8(ascii: " "))
        wbuf.appendDecimal(value); wbuf.append(Reply.crlf)
    }

    @inline(__always) func stat(_ name: StaticString, _ value: Int) {
        wbuf.append(Reply.stat); wbuf.append(name); wbuf.append(UInt8(ascii: " "))
        wbuf.appendDecimal(value); wbuf.append(Reply.crlf)
    }

    func stat(_ name: String, _ value: String) {
        wbuf.append(Reply.stat); wbuf.append(name); wbuf.append(UInt8(ascii: " "))
        wbuf.append(value); wbuf.append(Reply.crlf)
    }

    func processStats(_ line: UnsafeRawBufferPointer) {
        if tokens.ntokens == 2 {
            generalStats()
            wbuf.append(Reply.end)
            return
        }
        let sub = token(line, 1)
        func isSub(_ s: StaticString) -> Bool {
            sub.elementsEqual(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }
        if isSub("reset") {
            server.resetStats()
            wbuf.append(Reply.reset)
        } else if isSub("detail") {
            processStatsDetail(line)
        } else if isSub("cachedump") {
            processCachedump(line)
        } else if isSub("conns") {
            processStatsConns()
        } else if isSub("settings") {
            settingsStats()
            wbuf.append(Reply.end)
        } else if isSub("items") {
            itemStats()
            wbuf.append(Reply.end)
        } else if isSub("slabs") {
            slabStats()
            wbuf.append(Reply.end)
        } else if isSub("sizes") {
            sizeStats()
            wbuf.append(Reply.end)
        } else if isSub("sizes_enable") {
            // memcached answers these two with one STAT line and no END.
            sizesSwitchStats(enable: true)
        } else if isSub("sizes_disable") {
            sizesSwitchStats(enable: false)
        } else if isSub("extstore") {
            // A memcached built without extstore passes the name to its engine stats, which print
            // nothing for it: just the terminator.
            wbuf.append(Reply.end)
        } else {
            wbuf.append(Reply.error)
        }
    }

    /// `stats sizes_enable|sizes_disable`: switches the size histogram, and says how it went.
    func sizesSwitchStats(enable: Bool) {
        if !enable {
            store.disableSizeHistogram()
            stat("sizes_status", "disabled")
        } else if !store.config.casEnabled {
            stat("sizes_status", "error")
            stat("sizes_error", "cas_support_disabled")
        } else {
            store.enableSizeHistogram()
            stat("sizes_status", "enabled")
        }
    }

    /// `stats settings` lines (no END).
    func settingsStats() {
        for (k, v) in statsSettingsLines(server.settings, verbosity: server.verbosity.load(ordering: .relaxed),
                                         oldestLive: store.oldestLive,
                                         maxBytes: server.maxBytes.load(ordering: .relaxed)) {
            if k == "stat_key_prefix" {
                // memcached's "%c": the delimiter byte itself, whatever it is.
                wbuf.append(Reply.stat); wbuf.append(k); wbuf.append(UInt8(ascii: " "))
                wbuf.append(server.prefixStats.delimiter); wbuf.append(Reply.crlf)
            } else {
                stat(k, runtimeSetting(k) ?? v)
            }
        }
    }

    /// `stats sizes`: the histogram of item sizes in 32-byte buckets (memcached item_stats_sizes), or
    /// its status when it is off.
    func sizeStats() {
        guard let hist = store.sizeHistogram() else {
            stat("sizes_status", "disabled")
            return
        }
        for (i, n) in hist.enumerated() where n != 0 {
            stat(String(i * 32), String(n))
        }
    }

    /// `lru_crawler enable|disable|sleep|tocrawl`, `slabs automove`, `stats sizes_enable|disable` and
    /// `stats detail on|off` change what
    /// `stats settings` shows.
    private func runtimeSetting(_ name: String) -> String? {
        switch name {
        case "detail_enabled": return server.prefixStats.isOn ? "yes" : "no"
        case "track_sizes": return store.sizeHistogram() != nil ? "yes" : "no"   // stats sizes_enable|disable
        case "lru_crawler": return server.crawler.enabled.load(ordering: .relaxed) ? "yes" : "no"
        case "lru_crawler_sleep": return String(server.crawler.sleepMicros.load(ordering: .relaxed))
        case "lru_crawler_tocrawl": return String(server.crawler.toCrawl.load(ordering: .relaxed))
        case "hot_lru_pct": return String(store.lruPolicy.hotPct)
        case "warm_lru_pct": return String(store.lruPolicy.warmPct)
        case "hot_max_factor": return cFormat("%.2f", store.lruPolicy.hotMaxFactor)
        case "warm_max_factor": return cFormat("%.2f", store.lruPolicy.warmMaxFactor)
        case "lru_segmented": return store.lruPolicy.segmented ? "yes" : "no"
        case "temp_lru": return store.lruPolicy.tempLRU ? "yes" : "no"
        case "temporary_ttl": return String(store.lruPolicy.temporaryTTL)
        case "slab_automove": return String(server.slabAutomove.load(ordering: .relaxed))
        case "slab_automove_ratio":
            return cFormat("%.2f", Double(bitPattern: server.slabAutomoveRatioBits.load(ordering: .relaxed)))
        default: return nil
        }
    }

    func generalStats() {
        let totals = server.sumThreadStats()
        let s = store.statsSnapshot()
        let clock = server.clock
        let now = clock.currentTime
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let listeners = server.listenerCount.load(ordering: .relaxed)
        let curr = server.currConns.load(ordering: .relaxed) + listeners
        stat("pid", Int(getpid()))
        stat("uptime", Int(now) - 60)
        stat("time", Int(now) + clock.processStarted)
        stat("version", memcachedCompatVersion)
        stat("libevent", String(cString: event_get_version()))
        stat("pointer_size", 64)
        stat("rusage_user", formatTimeval(usage.ru_utime))
        stat("rusage_system", formatTimeval(usage.ru_stime))
        stat("max_connections", server.settings.maxConns)
        stat("curr_connections", curr - 1)
        stat("total_connections", server.totalConns.load(ordering: .relaxed) + listeners)
        if server.settings.maxConnsFast { stat("rejected_connections", server.rejectedConns.load(ordering: .relaxed)) }
        stat("connection_structures", server.peakConns.load(ordering: .relaxed) + listeners)
        stat("response_obj_oom", 0)
        stat("response_obj_count", 1)
        stat("response_obj_bytes", 16384)
        // Read buffers connections hold now, in memcached's 16 KB units; Cachet frees a buffer it no longer
        // needs instead of keeping a free list, so read_buf_bytes_free stays 0.
        let readBufs = server.workers.reduce(0) { $0 + $1.readBuffers.held.load(ordering: .relaxed) }
        stat("read_buf_count", readBufs)
        stat("read_buf_bytes", readBufs * ReadBufferBudget.bufferSize)
        stat("read_buf_bytes_free", 0)
        stat("read_buf_oom", totals[.readBufOOM])
        stat("reserved_fds", server.reservedFds)
        stat("cmd_get", totals[.getCmds])
        stat("cmd_set", totals.slabTotal(.setCmds))
        stat("cmd_flush", totals[.flushCmds])
        stat("cmd_touch", totals[.touchCmds])
        stat("cmd_meta", totals[.metaCmds])
        stat("get_hits", totals.slabTotal(.getHits))
        stat("get_misses", totals[.getMisses])
        stat("get_expired", totals[.getExpired])
        stat("get_flushed", totals[.getFlushed])
        stat("delete_misses", totals[.deleteMisses])
        stat("delete_hits", totals.slabTotal(.deleteHits))
        stat("incr_misses", totals[.incrMisses])
        stat("incr_hits", totals.slabTotal(.incrHits))
        stat("decr_misses", totals[.decrMisses])
        stat("decr_hits", totals.slabTotal(.decrHits))
        stat("cas_misses", totals[.casMisses])
        stat("cas_hits", totals.slabTotal(.casHits))
        stat("cas_badval", totals.slabTotal(.casBadval))
        stat("touch_hits", totals.slabTotal(.touchHits))
        stat("touch_misses", totals[.touchMisses])
        stat("store_too_large", totals[.storeTooLarge])
        stat("store_no_memory", totals[.storeNoMemory])
        stat("auth_cmds", totals[.authCmds])
        stat("auth_errors", totals[.authErrors])
        if server.settings.idleTimeout > 0 { stat("idle_kicks", totals[.idleKicks]) }
        stat("bytes_read", totals[.bytesRead])
        stat("bytes_written", totals[.bytesWritten])
        stat("limit_maxbytes", server.maxBytes.load(ordering: .relaxed))
        stat("accepting_conns", server.acceptingConns.load(ordering: .relaxed) ? 1 : 0)
        stat("listen_disabled_num", server.listenDisabledNum.load(ordering: .relaxed))
        stat("time_in_listen_disabled_us", 0)
        stat("threads", server.settings.numThreads)
        stat("conn_yields", totals[.connYields])
        stat("hash_power_level", s.hashPowerLevel)
        stat("hash_bytes", s.hashBytes)
        stat("hash_is_expanding", s.hashIsExpanding ? 1 : 0)
        // memcached prints the crawler/maintainer lines only when those threads are enabled.
        let mover = store.slabMoverStats
        stat("slab_reassign_rescues", mover.rescues)
        stat("slab_reassign_chunk_rescues", mover.chunkRescues)
        stat("slab_reassign_evictions_nomem", mover.evictionsNomem)
        stat("slab_reassign_inline_reclaim", mover.inlineReclaim)
        stat("slab_reassign_busy_items", mover.busyItems)
        stat("slab_reassign_busy_deletes", mover.busyDeletes)
        stat("slab_reassign_running", mover.running ? 1 : 0)
        stat("slabs_moved", mover.slabsMoved)
        if server.settings.lruCrawler {
            stat("lru_crawler_running", store.isCrawling ? 1 : 0)
            stat("lru_crawler_starts", server.crawler.starts.load(ordering: .relaxed))
        }
        if server.settings.lruMaintainerThread {
            stat("lru_maintainer_juggles", server.lruMaintainer?.juggles.load(ordering: .relaxed) ?? 0)
        }
        stat("malloc_fails", s.mallocFails)
        let log = server.watchLog
        stat("log_worker_dropped", 0)
        stat("log_worker_written", log.sent.load(ordering: .relaxed))
        stat("log_watcher_skipped", log.skippedTotal.load(ordering: .relaxed))
        stat("log_watcher_sent", log.sent.load(ordering: .relaxed))
        stat("log_watchers", log.count.load(ordering: .relaxed))
        if let tls = server.tls {
            if server.settings.tls.sessionCache { stat("ssl_new_sessions", tls.newSessions) }
            stat("ssl_handshake_errors", tls.handshakeErrors)
            stat("ssl_proto_errors", tls.protoErrors)
            stat("time_since_server_cert_refresh", Int(now &- server.certRefreshRel.load(ordering: .relaxed)))
        }
        stat("unexpected_napi_ids", server.workerChoice.unexpectedNapiIds.load(ordering: .relaxed))
        stat("round_robin_fallback", server.workerChoice.roundRobinFallback.load(ordering: .relaxed))
        stat("bytes", s.bytes)
        stat("curr_items", s.currItems)
        stat("total_items", s.totalItems)
        stat("slab_global_page_pool", store.globalPagePool)
        stat("expired_unfetched", s.expiredUnfetched)
        stat("evicted_unfetched", s.evictedUnfetched)
        let maintainer = server.settings.lruMaintainerThread
        if maintainer { stat("evicted_active", s.evictedActive) }
        stat("evictions", s.evictions)
        stat("reclaimed", s.reclaimed)
        stat("crawler_reclaimed", s.crawlerReclaimed)
        stat("crawler_items_checked", s.crawlerItemsChecked)
        stat("lrutail_reflocked", s.lrutailReflocked)
        if maintainer {
            stat("moves_to_cold", s.movesToCold)
            stat("moves_to_warm", s.movesToWarm)
            stat("moves_within_lru", s.movesWithinLRU)
            stat("direct_reclaims", s.directReclaims)
            stat("lru_bumps_dropped", 0)   // COLD hits move at once, never through a bounded queue
        }
        if let tls = server.tls {
            stat("ssl_cert_reload_failures", tls.reloadFailures)
            stat("ssl_handshake_timeouts", tls.handshakeTimeouts)
            stat("ssl_plaintext_rejected", tls.plaintextRejected)
            stat("ssl_handshakes", tls.handshakes)
            stat("ssl_resumed_handshakes", tls.resumedHandshakes)
            stat("ssl_verify_name_failures", tls.verifyNameFailures)
            stat("ssl_handshakes_deferred", tls.handshakesDeferred)
            if let notAfter = tls.certNotAfter { stat("ssl_cert_not_after", Int(notAfter)) }
        }
        stat("cachet_version", cachetVersion)
        if server.settings.memoryFile != nil { stat("restored_items", server.restoredItems) }
    }

    private func formatTimeval(_ tv: timeval) -> String {
        let us = String(tv.tv_usec)
        return "\(tv.tv_sec)." + String(repeating: "0", count: max(0, 6 - us.count)) + us
    }

    func itemStats() {
        let s = store.statsSnapshot()
        let totals = server.sumThreadStats()
        // memcached prints the segment lines and the maintainer's counters only with its maintainer thread
        // (`-o no_lru_maintainer` turns it off), number_temp only with the TEMP LRU on.
        let maintainer = server.settings.lruMaintainerThread
        let temp = store.lruPolicy.tempLRU
        for c in s.classes where c.number > 0 || c.evicted > 0 {
            let p = "items:\(c.id):"
            func put(_ n: String, _ v: Int) { stat(p + n, String(v)) }
            put("number", c.number)
            if maintainer {
                put("number_hot", c.numberHot)
                put("number_warm", c.numberWarm)
                put("number_cold", c.numberCold)
                if temp { put("number_temp", c.numberTemp) }
                put("age_hot", Int(c.ageHot))
                put("age_warm", Int(c.ageWarm))
            }
            put("age", c.number > 0 ? Int(c.age) : 0)   // seconds since the LRU tail's last access
            put("mem_requested", c.memRequested)
            put("evicted", c.evicted)
            put("evicted_nonzero", c.evictedNonzero)
            put("evicted_time", Int(c.evictedTime))
            put("outofmemory", c.outOfMemory)
            put("tailrepairs", 0)
            put("reclaimed", c.reclaimed)
            put("expired_unfetched", c.expiredUnfetched)
            put("evicted_unfetched", c.evictedUnfetched)
            if maintainer { put("evicted_active", c.evictedActive) }
            put("crawler_reclaimed", c.crawlerReclaimed)
            put("crawler_items_checked", c.crawlerItemsChecked)
            put("lrutail_reflocked", c.lrutailReflocked)
            if !maintainer { continue }
            put("moves_to_cold", c.movesToCold)
            put("moves_to_warm", c.movesToWarm)
            put("moves_within_lru", c.movesWithinLRU)
            put("direct_reclaims", c.directReclaims)
            put("hits_to_hot", Int(totals.slab(c.id, .hitsToHot)))
            put("hits_to_warm", Int(totals.slab(c.id, .hitsToWarm)))
            put("hits_to_cold", Int(totals.slab(c.id, .hitsToCold)))
            put("hits_to_temp", Int(totals.slab(c.id, .hitsToTemp)))
        }
    }

    func slabStats() {
        let s = store.statsSnapshot()
        let totals = server.sumThreadStats()
        var active = 0
        for c in s.classes where c.totalPages > 0 {
            active += 1
            let p = "\(c.id):"
            func put(_ n: String, _ v: Int) { stat(p + n, String(v)) }
            put("chunk_size", c.chunkSize)
            put("chunks_per_page", c.perSlab)
            put("total_pages", c.totalPages)
            put("total_chunks", c.totalPages * c.perSlab)
            put("used_chunks", c.usedChunks)
            put("free_chunks", c.freeChunks)
            put("free_chunks_end", c.freeChunksEnd)
            put("get_hits", Int(totals.slab(c.id, .getHits)))
            put("cmd_set", Int(totals.slab(c.id, .setCmds)))
            put("delete_hits", Int(totals.slab(c.id, .deleteHits)))
            put("incr_hits", Int(totals.slab(c.id, .incrHits)))
            put("decr_hits", Int(totals.slab(c.id, .decrHits)))
            put("cas_hits", Int(totals.slab(c.id, .casHits)))
            put("cas_badval", Int(totals.slab(c.id, .casBadval)))
            put("touch_hits", Int(totals.slab(c.id, .touchHits)))
        }
        stat("active_slabs", active)
        stat("total_malloced", s.totalMalloced)
    }
}
