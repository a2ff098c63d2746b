// `stats settings`: memcached 1.6.18's process_stat_settings() — the same names, order and printf
// formats (captured from a running 1.6.18, see StatsSettingsDifferentialTests). Lines for features
// Cachet does not have (SASL/ASCII auth, extstore `ext_*`, NAPI ids, memory file, LRU tuning) are
// printed with memcached's defaults so clients see the same set of keys.
// Cachet-only lines come last, before END: `ssl_ciphersuites <list>|NULL`, `ssl_handshake_timeout <s>`,
// `ssl_ticket_key_file <file>|NULL`, `ssl_auto_reload <s>`, `ssl_verify_name <names>|NULL`,
// `ssl_alt_chain_cert`/`ssl_alt_key <file>|NULL`, `ssl_handshake_share <percent>`, `ssl_handshake_threads <n>`.
//
// Every other line is what the server does, except the few memcached machinery Cachet does not have
// (worker log buffers, extstore): those echo memcached's defaults. Run-time changes (`slabs automove`,
// `lru tune|mode|temp_ttl`, `lru_crawler …`) are read live by StatsCommands.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// C printf, so `%.2f`/`%o` round and pad exactly as memcached's APPEND_STAT does.
func cFormat(_ format: String, _ args: CVarArg...) -> String {
    withVaList(args) { va in
        var buffer = [CChar](repeating: 0, count: 512)
        let n = Int(vsnprintf(&buffer, buffer.count, format, va))
        let bytes = buffer.prefix(max(0, min(n, buffer.count - 1))).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// OpenSSL's SSL_VERIFY_* bitmask for memcached's 0..3 input: memcached stores and prints the
/// bitmask (NONE 0, PEER 1, |FAIL_IF_NO_PEER_CERT 2, |CLIENT_ONCE 4), as memcached prints it.
func sslVerifyBitmask(_ mode: Int) -> Int {
    switch mode {
    case 1: return 1
    case 2: return 3
    case 3: return 7
    default: return 0
    }
}

/// `verbosity`, `oldestLive` and `maxBytes` change at run time (`verbosity`, `flush_all`,
/// `cache_memlimit`), so the caller passes their current values.
public func statsSettingsLines(_ s: Settings, verbosity: Int, oldestLive: UInt32,
                               maxBytes: Int) -> [(String, String)] {
    func yesNo(_ b: Bool) -> String { b ? "yes" : "no" }
    let t = s.tls
    let minVersions = ["tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3"]
    return [
        ("maxbytes", String(UInt64(bitPattern: Int64(maxBytes)))),
        ("maxconns", String(s.maxConns)),
        ("tcpport", String(s.port)),
        ("udpport", String(s.udpPort)),
        ("inter", s.inter ?? "NULL"),
        // `-vv` prints the slab class table at startup; at run time verbosity only adds "Too many open
        // connections" when accept runs out of fds (no per-command logging).
        ("verbosity", String(verbosity)),
        ("oldest", String(oldestLive)),
        ("evictions", s.evictionsEnabled ? "on" : "off"),
        ("domain_socket", s.socketPath ?? "NULL"),
        ("umask", cFormat("%o", Int32(truncatingIfNeeded: s.unixMask))),
        ("shutdown_command", yesNo(s.shutdownEnabled)),
        ("growth_factor", cFormat("%.2f", s.growthFactor)),
        ("chunk_size", String(s.chunkSize)),
        ("num_threads", String(s.numThreads)),
        // Workers that read each UDP socket: all of them, or one when `-l` lists several addresses.
        ("num_threads_per_udp", String(s.numThreadsPerUDP)),
        // One byte, as memcached's "%c" (the server writes it raw: see StatsCommands).
        ("stat_key_prefix", String(UnicodeScalar(s.prefixDelimiter))),
        ("detail_enabled", yesNo(s.detailEnabled)),
        ("reqs_per_event", String(s.reqsPerEvent)),
        ("cas_enabled", yesNo(s.casEnabled)),
        ("tcp_backlog", String(s.backlog)),
        // `auto-negotiate` is memcached's default; Cachet speaks ASCII only, so a binary request gets what
        // memcached -B ascii gives it (no reply until a line ends).
        ("binding_protocol", s.bindingProtocol.rawValue),
        ("auth_enabled_sasl", s.saslEnabled ? "yes" : "no"),
        ("auth_enabled_ascii", s.authFile ?? "no"),
        ("item_size_max", String(s.itemSizeMax)),
        ("maxconns_fast", yesNo(s.maxConnsFast)),
        ("hashpower_init", String(s.hashPowerInit)),
        ("slab_reassign", yesNo(s.slabReassign)),
        ("slab_automove", String(s.slabAutomove)),
        ("slab_automove_ratio", cFormat("%.2f", s.slabAutomoveRatio)),
        ("slab_automove_window", String(s.slabAutomoveWindow)),
        ("slab_chunk_max", String(s.slabChunkMax)),
        // The crawler runs when asked (`lru_crawler crawl|metadump`); there are no automatic crawls.
        ("lru_crawler", yesNo(s.lruCrawler)),
        ("lru_crawler_sleep", String(s.lruCrawlerSleep)),
        ("lru_crawler_tocrawl", String(s.lruCrawlerToCrawl)),
        ("tail_repair_time", String(s.tailRepairTime)),
        ("flush_enabled", yesNo(s.flushEnabled)),
        ("dump_enabled", yesNo(s.dumpEnabled)),
        ("hash_algorithm", s.hashAlgorithm),
        // The LRU lines show the start-up values; `lru mode|tune|temp_ttl` change them (StatsCommands).
        ("lru_maintainer_thread", yesNo(s.lruMaintainerThread)),
        ("lru_segmented", yesNo(s.lruSegmented)),
        ("hot_lru_pct", String(s.hotLRUPct)),
        ("warm_lru_pct", String(s.warmLRUPct)),
        ("hot_max_factor", cFormat("%.2f", s.hotMaxFactor)),
        ("warm_max_factor", cFormat("%.2f", s.warmMaxFactor)),
        ("temp_lru", yesNo(s.tempLRU)),
        ("temporary_ttl", String(s.temporaryTTL)),
        ("idle_timeout", String(s.idleTimeout)),
        ("watcher_logbuf_size", String(s.watcherLogbufSize)),
        // Reported only: workers write log lines straight into the watchers' buffers (WatchLog).
        ("worker_logbuf_size", String(s.workerLogbufSize)),
        ("read_buf_mem_limit", String(s.readBufMemLimit)),
        ("track_sizes", s.trackSizes && s.casEnabled ? "yes" : "no"),
        ("inline_ascii_response", "no"),
        // No extstore: memcached's defaults, inactive.
        ("ext_item_size", "512"),
        ("ext_item_age", "4294967295"),
        ("ext_low_ttl", "0"),
        ("ext_recache_rate", "2000"),
        ("ext_wbuf_size", "4194304"),
        ("ext_compact_under", "0"),
        ("ext_drop_under", "0"),
        ("ext_max_sleep", "1000000"),
        ("ext_max_frag", "0.80"),
        ("slab_automove_freeratio", "0.010"),
        ("ext_drop_unread", "no"),
        ("ssl_enabled", yesNo(t.enabled)),
        // glibc prints a NULL %s as "(null)"; memcached prints these two that way…
        ("ssl_chain_cert", t.chainCert ?? "(null)"),
        ("ssl_key", t.key ?? "(null)"),
        ("ssl_verify_mode", String(sslVerifyBitmask(t.verifyMode))),
        ("ssl_keyformat", String(t.keyFormat)),
        // …and substitutes the word NULL for these two.
        ("ssl_ciphers", t.ciphers ?? "NULL"),
        ("ssl_ca_cert", t.caCert ?? "NULL"),
        ("ssl_wbuf_size", String(t.wbufSize)),
        ("ssl_session_cache", yesNo(t.sessionCache)),
        ("ssl_kernel_tls", yesNo(t.kernelTLS)),
        ("ssl_min_version", minVersions.indices.contains(t.minVersion) ? minVersions[t.minVersion] : "unknown"),
        // memcached 1.6.18 prints the int with %s: "(null)" for 0, and a crash for any -N.
        ("num_napi_ids", s.napiIds == 0 ? "(null)" : String(s.napiIds)),
        ("memory_file", s.memoryFile ?? "(null)"),
        // Cachet only.
        ("ssl_ciphersuites", t.ciphersuites ?? "NULL"),
        ("ssl_handshake_timeout", String(t.handshakeTimeout)),
        ("ssl_ticket_key_file", t.ticketKeyFile ?? "NULL"),
        ("ssl_auto_reload", String(t.autoReload)),
        ("ssl_verify_name", t.verifyNames.isEmpty ? "NULL" : t.verifyNames.joined(separator: ":")),
        ("ssl_verify_uri", t.verifyURIs.isEmpty ? "NULL" : t.verifyURIs.joined(separator: " ")),
        ("ssl_alt_chain_cert", t.altChainCert ?? "NULL"),
        ("ssl_alt_key", t.altKey ?? "NULL"),
        ("ssl_handshake_share", String(t.handshakeShare)),
        ("ssl_handshake_threads", String(t.handshakeThreadCount(workers: s.numThreads))),
        ("lru_policy", s.lruPolicy.rawValue),
    ]
}
