// `-o opt[=value],opt…` — memcached's getsubopt() loop over subopts_tokens (memcached.c 1.6.18),
// with tls.c's ssl_* options and Cachet's additions. One `-o` may carry several options; `-o` may
// be repeated. Errors stop at the first bad option (exit 1 for memcached's parse errors).
//
// What Cachet does with each memcached 1.6.18 `-o` option:
//
// | option                                   | Cachet                                                    |
// |------------------------------------------|-----------------------------------------------------------|
// | maxconns_fast, no_maxconns_fast          | implemented (maxConnsFast)                                |
// | hashpower=N                              | implemented (store's initial hash power); 12..32 checked  |
// | idle_timeout=N                           | implemented (atoi, as memcached)                          |
// | slab_chunk_max=N                         | implemented (bytes, as 1.6.18 really treats it)           |
// | no_chunked_items                         | implemented (slab_chunk_max = page size)                  |
// | ssl_chain_cert, ssl_key, ssl_keyformat,  | implemented (TLSSettings); see differences below          |
// |  ssl_verify_mode, ssl_ciphers,           |                                                           |
// |  ssl_ca_cert, ssl_wbuf_size,             |                                                           |
// |  ssl_session_cache, ssl_kernel_tls,      |                                                           |
// |  ssl_min_version                         |                                                           |
// | ssl_ciphersuites=<TLS1.3 suites>         | Cachet only (SSL_CTX_set_ciphersuites)                    |
// | ssl_handshake_timeout=<s>                | Cachet only: close unfinished handshakes (default 10, 0 off)|
// | ssl_ticket_key_file=<file>               | Cachet only: shared session-ticket keys (TLSTicketKeys)   |
// | ssl_auto_reload=<s>                      | Cachet only: reload TLS files when they change (0 = off)  |
// | ssl_verify_name=<name>[:<name>…]         | Cachet only: client certificate names allowed             |
// | ssl_alt_chain_cert, ssl_alt_key          | Cachet only: a second certificate (e.g. ECDSA next to RSA)|
// | ssl_handshake_share=<1..100>             | Cachet only: busy CPU's time for handshakes (def. 40)     |
// | ssl_handshake_threads=<0..64>            | Cachet only: threads running TLS handshakes (def. t/4, ≥1)|
// | metrics_port=<1..65535>, metrics_addr=<a>| Cachet only: Prometheus page (Metrics/), off by default   |
// | slab_reassign, no_slab_reassign          | implemented (`slabs reassign` allowed or refused)         |
// | slab_automove[=0..2], no_slab_automove   | implemented (SlabAutomove / eviction hook), range checked |
// | slab_automove_ratio=R, slab_automove_window=N | implemented; memcached's range checks             |
// | lru_crawler, no_lru_crawler              | implemented (`lru_crawler crawl/metadump` on or off)      |
// | lru_crawler_sleep=N                      | implemented (µs between crawl batches, 0..1000000)        |
// | lru_crawler_tocrawl=N                    | implemented (items checked per class per crawl, 0 = all)  |
// | lru_maintainer, no_lru_maintainer        | implemented: the LRU maintainer thread + segmented LRU    |
// | hot_lru_pct, warm_lru_pct,               | implemented (segmented LRU tuning, memcached's checks)    |
// |  hot_max_factor, warm_max_factor         |                                                           |
// | temporary_ttl=N                          | implemented (TEMP LRU for TTLs ≤ N; needs the maintainer) |
// | no_modern                                | implemented: memcached's pre-1.5 defaults (flat LRU, no   |
// |                                          |  maintainer/crawler/page mover, 1 MB chunks, jenkins hash)|
// | hash_algorithm=murmur3|jenkins|xxh3       | implemented (CacheStore/HashAlgorithm.swift)              |
// | no_hashexpand                            | implemented (the hash table keeps its start size)         |
// | slab_sizes=a-b-…                         | implemented; parsed after all options (SlabSizesOption)   |
// | worker_logbuf_size=KB                    | recorded; 1.6.18 also reads the value as slab_sizes, kept |
// | read_buf_mem_limit=MB                    | implemented: per-worker read buffers (ReadBufferBudget)   |
// | sock_cookie_id=N                         | implemented: SO_MARK on listening sockets                 |
// | tail_repair_time=S                       | checked and recorded (Cachet pins cannot leak)            |
// | resp_obj_mem_limit                       | memcached's DEPRECATED line, no effect                    |
// | modern, inline_ascii_resp,               | accepted, no effect (memcached 1.6.18 ignores them too)   |
// |  no_inline_ascii_resp                    |                                                           |
// | drop_privileges, no_drop_privileges      | accepted, no effect (Debian's memcached has no seccomp)   |
// | watcher_logbuf_size=KB                   | implemented: each watcher's buffer of unsent lines        |
// | track_sizes                              | implemented: `stats sizes` tracked from the start         |
// | ext_*, slab_automove_freeratio (extstore)| `cachet: option -o <name> is not supported (extstore…)`   |
//
// Differences from memcached 1.6.18:
// - `ssl_wbuf_size=0` → "ssl_wbuf_size must be at least 1 (kilobytes)", exit 1 (memcached accepts
//   it and never writes a response); a size whose bytes overflow 32 bits → "could not
//   parse argument to ssl_wbuf_size" (memcached wraps).
// - `ssl_keyformat` also takes `PEM`/`DER` (any case), stored as 1/2 (memcached: integers only,
//   though its help says "PEM, DER or ENGINE").
// - `slab_chunk_max` with no value or a non-number exits 1 after memcached's message (memcached
//   prints it, carries on and crashes with SIGSEGV/SIGFPE); 0 or negative is "could not parse".
// - `mtls:`/`btls:` listener prefixes exist (memcached ≥ 1.6.30), see ListenerSpec.swift.

import CacheStore
import CachetTLS

enum ExtendedOptions {
    /// extstore (storage_read_config in 1.6.18): Cachet keeps every item in memory.
    static let extstore: Set<String> = [
        "ext_path", "ext_page_size", "ext_wbuf_size", "ext_threads", "ext_io_depth", "ext_item_size",
        "ext_item_age", "ext_low_ttl", "ext_recache_rate", "ext_compact_under", "ext_drop_under",
        "ext_max_sleep", "ext_max_frag", "ext_drop_unread", "slab_automove_freeratio",
    ]

    /// getsubopt(3): tokens end at ',', the value starts after the first '=' (`opt=` gives "",
    /// plain `opt` gives nil); an empty token (`,x`) is an unknown option named "".
    static func suboptions(_ text: String) -> [(token: String, name: String, value: String?)] {
        var result: [(String, String, String?)] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let end = rest.firstIndex(of: ",") ?? rest.endIndex
            let token = rest[..<end]
            rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
            if let eq = token.firstIndex(of: "=") {
                result.append((String(token), String(token[..<eq]), String(token[token.index(after: eq)...])))
            } else {
                result.append((String(token), String(token), nil))
            }
        }
        return result
    }

    static func apply(_ text: String, to s: inout Settings, slabChunkChanged: inout Bool) throws {
        for (token, name, value) in suboptions(text) {
            try applyOne(token: token, name: name, value: value, &s, &slabChunkChanged)
        }
    }

    private static func required(_ value: String?, _ name: String) throws -> String {
        guard let value else { throw SettingsError.missingArgument(name) }
        return value
    }

    /// A size given in KB or MB, read with safe_strtoul and multiplied in 32 unsigned bits, as memcached does
    /// (so a huge value wraps the same way).
    private static func scaledSize(_ value: String?, _ name: String, unit: UInt64) throws -> UInt32 {
        guard let n = CNumeric.safeStrtoul(try required(value, name)) else { throw SettingsError.couldNotParse(name) }
        return UInt32(truncatingIfNeeded: UInt64(n) &* unit)
    }

    private static func applyOne(token: String, name: String, value: String?, _ s: inout Settings,
                                 _ slabChunkChanged: inout Bool) throws {
        switch name {
        case "maxconns_fast": s.maxConnsFast = true
        case "no_maxconns_fast": s.maxConnsFast = false
        case "hashpower":
            guard let value else { throw SettingsError.missingNumericArgument("hashpower") }
            let n = Int(CNumeric.atoi(value))
            if n < 12 { throw SettingsError.hashpowerTooLow(n) }
            if n > 32 { throw SettingsError.hashpowerTooHigh(n) }
            s.hashPowerInit = n
        case "watcher_logbuf_size":
            s.watcherLogbufSize = Int(try scaledSize(value, "watcher_logbuf_size", unit: 1024))
        case "worker_logbuf_size":
            s.workerLogbufSize = Int(try scaledSize(value, "worker_logbuf_size", unit: 1024))
            // memcached 1.6.18 has no `break` here: the same value is read as slab_sizes too (so
            // `worker_logbuf_size=32` stops with "slab size 32 is out of valid range"). Kept, for the same
            // slab classes and the same start-up errors; a later slab_sizes overrides it.
            s.slabSizesText = value
            s.slabSizesFromWorkerLogbuf = true
        case "slab_sizes":
            // memcached strdup()s a missing value and crashes; here it is an error.
            s.slabSizesText = try required(value, "slab_sizes")
            s.slabSizesFromWorkerLogbuf = false
        case "read_buf_mem_limit":
            s.readBufMemLimit = try scaledSize(value, "read_buf_mem_limit", unit: 1024 * 1024)
        case "tail_repair_time":
            guard let value else { throw SettingsError.missingNumericArgument("tail_repair_time") }
            let n = Int(CNumeric.atoi(value))
            if n < 10 { throw SettingsError.tailRepairTimeTooLow }
            s.tailRepairTime = n
        case "no_hashexpand": s.hashExpand = false
        case "resp_obj_mem_limit":
            s.startupWarnings.append("DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,\n")
        case "sock_cookie_id":
            // memcached reads a missing value through a NULL pointer and crashes.
            s.sockCookieId = UInt32(bitPattern: CNumeric.atoi(try required(value, "sock_cookie_id")))
        case "track_sizes": s.trackSizes = true
        case "idle_timeout":
            guard let value else { throw SettingsError.missingNumericArgument("idle_timeout") }
            s.idleTimeout = Int(CNumeric.atoi(value))
        case "slab_chunk_max":
            let v = try required(value, "slab_chunk_max")
            guard let n = CNumeric.safeStrtol(v), n > 0 else { throw SettingsError.couldNotParse("slab_chunk_max") }
            s.slabChunkMax = Int(n)
            slabChunkChanged = true
        case "no_chunked_items": s.slabChunkMax = s.slabPageSize
        case "slab_reassign": s.slabReassign = true
        case "no_slab_reassign": s.slabReassign = false
        case "slab_automove":
            guard let value else { s.slabAutomove = 1; break }
            let n = Int(CNumeric.atoi(value))
            if n < 0 || n > 2 { throw SettingsError.slabAutomoveRange }
            s.slabAutomove = n
        case "no_slab_automove": s.slabAutomove = 0
        case "slab_automove_ratio":
            guard let value else { throw SettingsError.missingArgument("slab_automove_ratio") }
            let r = CNumeric.atof(value)
            if r <= 0 || r > 1 { throw SettingsError.slabAutomoveRatioRange }
            s.slabAutomoveRatio = r
        case "slab_automove_window":
            guard let value else { throw SettingsError.missingArgument("slab_automove_window") }
            let n = Int(CNumeric.atoi(value))
            if n < 3 { throw SettingsError.slabAutomoveWindowRange }
            s.slabAutomoveWindow = n
        case "lru_crawler": s.lruCrawler = true
        case "no_lru_crawler": s.lruCrawler = false
        case "lru_crawler_sleep":
            guard let value else { throw SettingsError.missingValue("lru_crawler_sleep") }
            let n = Int(CNumeric.atoi(value))
            if n < 0 || n > 1_000_000 { throw SettingsError.crawlerSleepRange }
            s.lruCrawlerSleep = n
        case "lru_crawler_tocrawl":
            guard let value else { throw SettingsError.missingValue("lru_crawler_tocrawl") }
            guard let n = CNumeric.safeStrtoul(value) else { throw SettingsError.tocrawlNot32Bit }
            s.lruCrawlerToCrawl = n
        case "lru_maintainer": s.lruMaintainerThread = true; s.lruSegmented = true
        case "no_lru_maintainer": s.lruMaintainerThread = false; s.lruSegmented = false
        case "hot_lru_pct", "warm_lru_pct":
            guard let value else { throw SettingsError.missingArgument(name) }
            let n = Int(CNumeric.atoi(value))
            if n < 1 || n >= 80 { throw SettingsError.lruPctRange(name) }
            if name == "hot_lru_pct" { s.hotLRUPct = n } else { s.warmLRUPct = n }
        case "hot_max_factor", "warm_max_factor":
            guard let value else { throw SettingsError.missingArgument(name) }
            let f = CNumeric.atof(value)
            if f <= 0 { throw SettingsError.lruFactorNotPositive(name) }
            if name == "hot_max_factor" { s.hotMaxFactor = f } else { s.warmMaxFactor = f }
        case "temporary_ttl":
            guard let value else { throw SettingsError.missingArgument(name) }
            s.tempLRU = true
            s.temporaryTTL = Int(CNumeric.atoi(value))
        case "lru_policy":
            guard let value else { throw SettingsError.missingArgument(name) }
            guard let p = LRUPolicyKind(rawValue: value) else { throw SettingsError.unknownLRUPolicy }
            s.lruPolicy = p
        case "no_modern":
            // memcached 1.6.18's pre-"modern" defaults, option by option.
            if !slabChunkChanged { s.slabChunkMax = s.slabPageSize }
            s.slabReassign = false
            s.slabAutomove = 0
            s.maxConnsFast = false
            s.lruSegmented = false
            s.lruMaintainerThread = false
            s.lruCrawler = false
            s.hashAlgorithm = "jenkins"
        case "hash_algorithm":
            guard let value else { throw SettingsError.missingArgument("hash_algorithm") }
            guard HashAlgorithm(rawValue: value) != nil else { throw SettingsError.unknownHashAlgorithm }
            s.hashAlgorithm = value
        case "modern", "inline_ascii_resp", "no_inline_ascii_resp", "no_drop_privileges", "drop_privileges": break
        case "metrics_port":
            let v = try required(value, name)
            guard let n = CNumeric.safeStrtol(v), (1...65535).contains(n) else { throw SettingsError.couldNotParse(name) }
            s.metricsPort = Int(n)
        case "metrics_addr":
            let v = try required(value, name)
            if v.isEmpty { throw SettingsError.couldNotParse(name) }
            s.metricsAddr = v
        case let n where n.hasPrefix("ssl_"):
            try applyTLS(token: token, name: name, value: value, &s.tls)
        case let n where extstore.contains(n):
            throw SettingsError.unsupported(option: "-o \(n)",
                                            reason: "extstore: Cachet keeps every item in memory, there is no external storage")
        default:
            throw SettingsError.illegalSuboption(token)
        }
    }

    /// tls.c / memcached.c's SSL_* cases.
    private static func applyTLS(token: String, name: String, value: String?, _ t: inout TLSSettings) throws {
        switch name {
        case "ssl_chain_cert": t.chainCert = try required(value, name)
        case "ssl_key": t.key = try required(value, name)
        case "ssl_keyformat":
            let v = try required(value, name)
            switch v.uppercased() {
            case "PEM": t.keyFormat = 1
            case "DER", "ASN1": t.keyFormat = 2
            default:
                guard let n = CNumeric.safeStrtol(v) else { throw SettingsError.couldNotParse(name) }
                t.keyFormat = n
            }
        case "ssl_verify_mode":
            let v = try required(value, name)
            guard let n = CNumeric.safeStrtol(v) else { throw SettingsError.couldNotParse(name) }
            guard (0...3).contains(n) else { throw SettingsError.invalidChoice(name) }
            t.verifyMode = Int(n)
        case "ssl_ciphers": t.ciphers = try required(value, name)
        case "ssl_ciphersuites": t.ciphersuites = try required(value, name)
        case "ssl_ca_cert": t.caCert = try required(value, name)
        case "ssl_wbuf_size":
            let v = try required(value, name)
            guard let kb = CNumeric.safeStrtoul(v), kb <= UInt32.max / 1024 else {
                throw SettingsError.couldNotParse(name)
            }
            if kb == 0 { throw SettingsError.sslWbufSizeZero }
            t.wbufSize = Int(kb) * 1024
        case "ssl_session_cache": t.sessionCache = true
        case "ssl_kernel_tls": t.kernelTLS = true
        case "ssl_min_version":
            let v = try required(value, name)
            guard let n = CNumeric.safeStrtol(v) else { throw SettingsError.couldNotParse(name) }
            guard (0...3).contains(n) else { throw SettingsError.invalidChoice(name) }
            t.minVersion = Int(n)
        // Cachet's TLS hardening options (issue 14).
        case "ssl_handshake_timeout":
            // Whole seconds, 0 = none; a negative or non-numeric value is memcached's parse error.
            let v = try required(value, name)
            guard let n = CNumeric.safeStrtoul(v) else { throw SettingsError.couldNotParse(name) }
            t.handshakeTimeout = Int(n)
        case "ssl_ticket_key_file": t.ticketKeyFile = try required(value, name)   // read with the certificate
        case "ssl_auto_reload":
            // Whole seconds between looks at the TLS files, 0 = off.
            let v = try required(value, name)
            guard let n = CNumeric.safeStrtoul(v) else { throw SettingsError.couldNotParse(name) }
            t.autoReload = Int(n)
        case "ssl_verify_name":
            // name[:name…]; an empty element, or a `*` anywhere but a leading `*.` before a label, is refused
            // rather than read as "anything".
            let v = try required(value, name)
            let names = v.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            for n in names {
                let rest = n.hasPrefix("*.") ? String(n.dropFirst(2)) : n
                if rest.isEmpty || rest.contains("*") || rest.hasPrefix(".") || rest.hasSuffix(".") || rest.contains("..") {
                    throw SettingsError.couldNotParse(name)
                }
            }
            t.verifyNames = names
        case "ssl_verify_uri":
            // One URI per occurrence (URIs contain ':' and '/', so they cannot share ssl_verify_name's list);
            // a `*` only as the last byte, after a scheme (a lone `*` would accept any certificate).
            let v = try required(value, name)
            let star = v.firstIndex(of: "*")
            guard v.contains("://"), star == nil || star == v.index(before: v.endIndex),
                  !(v.hasSuffix("*") && v.hasSuffix("://*")) else { throw SettingsError.couldNotParse(name) }
            t.verifyURIs.append(v)
        case "ssl_alt_chain_cert": t.altChainCert = try required(value, name)
        case "ssl_alt_key": t.altKey = try required(value, name)
        case "ssl_handshake_share":
            // Percent, 1..100 (100 = no bound); 0 would never answer a ClientHello on a busy worker.
            let v = try required(value, name)
            guard let n = CNumeric.safeStrtoul(v) else { throw SettingsError.couldNotParse(name) }
            guard (1...100).contains(n) else { throw SettingsError.invalidChoice(name) }
            t.handshakeShare = Int(n)
        case "ssl_handshake_threads":
            let v = try required(value, name)
            guard let n = CNumeric.safeStrtoul(v) else { throw SettingsError.couldNotParse(name) }
            guard n <= 64 else { throw SettingsError.invalidChoice(name) }
            t.handshakeThreads = Int(n)
        default:
            throw SettingsError.illegalSuboption(token)
        }
    }
}
