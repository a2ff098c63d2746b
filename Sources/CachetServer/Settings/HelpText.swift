// `-h` and `-i`. The layout and wording are memcached 1.6.18's usage() and ssl_help(), line for
// line, for every option memcached lists (the extstore block says Cachet refuses it). Like memcached, the
// "(default: …)" figures show the value in effect when -h is read, so `cachet -p 0 -h` says "(default: 0)".
//
// Cachet wording differences, on purpose:
// - first line: `versionLine` (Version.swift) instead of `memcached 1.6.18`;
// - `-B`: no binary; `-i`: Cachet's license;
// - `-l`: memcached 1.6.30's text for the notls/btls/mtls prefixes (1.6.18 only knows notls);
// - `ssl_keyformat`: PEM or DER (names or 1/2); `ssl_wbuf_size`: no buffer of its own in Cachet (replies
//   already sit contiguously in the connection's output), only the cap on bytes per SSL_write that
//   memcached's per-thread buffer imposes; `ssl_ciphersuites` is Cachet's;
// - the extstore block has a line saying Cachet refuses those options;
// - Cachet-only: `--config-file` (ConfigFile.swift), the `metrics_port`/`metrics_addr` options (Metrics/) and
//   `lru_policy` (CacheStore's LRUPolicyKind).
// - `ssl_ciphers` names Cachet's secure default; `ssl_handshake_timeout`, `ssl_ticket_key_file`,
//   `ssl_auto_reload`, `ssl_verify_name`, `ssl_verify_uri`, `ssl_alt_chain_cert`, `ssl_alt_key`,
//   `ssl_handshake_share`, `ssl_handshake_threads` are Cachet's.

enum HelpText {
    static func usage(_ s: Settings) -> String {
        let minVersions = ["tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3"]
        let minVersion = minVersions.indices.contains(s.tls.minVersion) ? minVersions[s.tls.minVersion] : "unknown"
        let lines: [String] = [
            versionLine,
            "-p, --port=<num>          TCP port to listen on (default: \(s.port))",
            "-U, --udp-port=<num>      UDP port to listen on (default: \(s.udpPort), off)",
            "-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)",
            "-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: \(cFormat("%o", Int32(truncatingIfNeeded: s.unixMask))))",
            "-A, --enable-shutdown     enable ascii \"shutdown\" command",
            "-l, --listen=<addr>       interface to listen on (default: INADDR_ANY)",
            "                          if TLS/SSL is enabled, 'notls', 'btls', 'mtls' prefix can be used to",
            "                          specify for specific listeners no tls, basic tls, or peer-auth tls (i.e -l mtls:127.0.0.1:11212)",
            "-d, --daemon              run as a daemon",
            "-r, --enable-coredumps    maximize core file limit",
            "-u, --user=<user>         assume identity of <username> (only when run as root)",
            "-m, --memory-limit=<num>  item memory in megabytes (default: \(s.maxBytes / (1024 * 1024)))",
            "-M, --disable-evictions   return error on memory exhausted instead of evicting",
            "-c, --conn-limit=<num>    max simultaneous connections (default: \(s.maxConns))",
            "-k, --lock-memory         lock down all paged memory",
            "-v, --verbose             verbose (print errors/warnings while in event loop)",
            "-vv                       very verbose (also print client commands/responses)",
            "-vvv                      extremely verbose (internal state transitions)",
            "-h, --help                print this help and exit",
            "--config-file=<file>      read options from <file> first (memcached.conf format, one per line);",
            "                          must be the first argument",
            "-i, --license             print cachet license",
            "-V, --version             print version and exit",
            "-P, --pidfile=<file>      save PID in <file>, only used with -d option",
            "-f, --slab-growth-factor=<num> chunk size growth factor (default: \(cFormat("%2.2f", s.growthFactor)))",
            "-n, --slab-min-size=<bytes> min space used for key+value+flags (default: \(s.chunkSize))",
            "-L, --enable-largepages  try to use large memory pages (if available)",
            "-D <char>     Use <char> as the delimiter between key prefixes and IDs.",
            "              This is used for per-prefix stats reporting. The default is",
            "              \":\" (colon). If this option is specified, stats collection",
            "              is turned on automatically; if not, then it may be turned on",
            "              by sending the \"stats detail on\" command to the server.",
            "-t, --threads=<num>       number of threads to use (default: \(s.numThreads))",
            "-R, --max-reqs-per-event  maximum number of requests per event, limits the",
            "                          requests processed per connection to prevent ",
            "                          starvation (default: \(s.reqsPerEvent))",
            "-C, --disable-cas         disable use of CAS",
            "-b, --listen-backlog=<num> set the backlog queue limit (default: \(s.backlog))",
            "-B, --protocol=<name>     protocol - one of ascii, binary, or auto (default: \(s.bindingProtocol.rawValue))",
            "-I, --max-item-size=<num> adjusts max item size",
            "                          (default: \(s.itemSizeMax / (1024 * 1024))m, min: 1k, max: 1024m)",
            "-S, --enable-sasl         turn on Sasl authentication",
            "-F, --disable-flush-all   disable flush_all command",
            "-X, --disable-dumping     disable stats cachedump and lru_crawler metadump",
            "-W  --disable-watch       disable watch commands (live logging)",
            "-Y, --auth-file=<file>    (EXPERIMENTAL) enable ASCII protocol authentication. format:",
            "                          user:pass\\nuser2:pass2\\n",
            "-e, --memory-file=<file>  (EXPERIMENTAL) mmap a file for item memory.",
            "                          use only in ram disks or persistent memory mounts!",
            "                          enables restartable cache (stop with SIGUSR1)",
            "-Z, --enable-ssl          enable TLS/SSL",
            "-o, --extended            comma separated list of extended options",
            "                          most options have a 'no_' prefix to disable",
            "   - maxconns_fast:       immediately close new connections after limit (default: \(s.maxConnsFast ? "enabled" : "disabled"))",
            "   - hashpower:           an integer multiplier for how large the hash",
            "                          table should be. normally grows at runtime. (default starts at: \(s.hashPowerInit))",
            "                          set based on \"STAT hash_power_level\"",
            "   - tail_repair_time:    time in seconds for how long to wait before",
            "                          forcefully killing LRU tail item.",
            "                          disabled by default; very dangerous option.",
            "   - hash_algorithm:      the hash table algorithm",
            "                          default is murmur3 hash. options: jenkins, murmur3, xxh3",
            "   - no_lru_crawler:      disable LRU Crawler background thread.",
            "   - lru_crawler_sleep:   microseconds to sleep between items",
            "                          default is 100.",
            "   - lru_crawler_tocrawl: max items to crawl per slab per run",
            "                          default is 0 (unlimited)",
            "   - read_buf_mem_limit:  limit in megabytes for connection read/response buffers.",
            "                          do not adjust unless you have high (20k+) conn. limits.",
            "                          0 means unlimited (default: \(s.readBufMemLimit / (1024 * 1024)))",
            "   - no_lru_maintainer:   disable new LRU system + background thread.",
            "   - hot_lru_pct:         pct of slab memory to reserve for hot lru.",
            "                          (requires lru_maintainer, default pct: \(s.hotLRUPct))",
            "   - warm_lru_pct:        pct of slab memory to reserve for warm lru.",
            "                          (requires lru_maintainer, default pct: \(s.warmLRUPct))",
            "   - hot_max_factor:      items idle > cold lru age * drop from hot lru. (default: \(cFormat("%.2f", s.hotMaxFactor)))",
            "   - warm_max_factor:     items idle > cold lru age * this drop from warm. (default: \(cFormat("%.2f", s.warmMaxFactor)))",
            "   - temporary_ttl:       TTL's below get separate LRU, can't be evicted.",
            "                          (requires lru_maintainer, default: \(s.temporaryTTL))",
            "   - lru_policy:          segmented (memcached's, default) or s3fifo: keys nobody",
            "                          fetched while in HOT are evicted first, keys evicted",
            "                          unfetched and set again start in COLD instead of HOT",
            "   - idle_timeout:        timeout for idle connections. (default: \(s.idleTimeout), no timeout)",
            "   - slab_chunk_max:      (EXPERIMENTAL) maximum slab size in kilobytes. use extreme care. (default: \(s.slabChunkMax / 1024))",
            "   - watcher_logbuf_size: size in kilobytes of per-watcher write buffer. (default: \(s.watcherLogbufSize / 1024))",
            "   - worker_logbuf_size:  size in kilobytes of per-worker-thread buffer",
            "                          read by background thread, then written to watchers. (default: \(s.workerLogbufSize / 1024))",
            "   - track_sizes:         enable dynamic reports for 'stats sizes' command.",
            "   - no_hashexpand:       disables hash table expansion (dangerous)",
            "   - modern:              enables options which will be default in future.",
            "                          currently: nothing",
            "   - no_modern:           uses defaults of previous major version (1.4.x)",
            "   - sock_cookie_id:      attributes an ID to a socket for ip filtering/firewalls ",
            "",
            "   - External storage (ext_*) related options (see: https://memcached.org/extstore)",
            "     (not in Cachet: every item stays in memory; these options are refused)",
            "   - ext_path:            file to write to for external storage.",
            "                          ie: ext_path=/mnt/d1/extstore:1G",
            "   - ext_page_size:       size in megabytes of storage pages. (default: 64)",
            "   - ext_wbuf_size:       size in megabytes of page write buffers. (default: 4)",
            "   - ext_threads:         number of IO threads to run. (default: 1)",
            "   - ext_item_size:       store items larger than this (bytes, default 512)",
            "   - ext_item_age:        store items idle at least this long (seconds, default: no age limit)",
            "   - ext_low_ttl:         consider TTLs lower than this specially (default: 0)",
            "   - ext_drop_unread:     don't re-write unread values during compaction (default: disabled)",
            "   - ext_recache_rate:    recache an item every N accesses (default: 2000)",
            "   - ext_compact_under:   compact when fewer than this many free pages",
            "                          (default: 1/4th of the assigned storage)",
            "   - ext_drop_under:      drop COLD items when fewer than this many free pages",
            "                          (default: 1/4th of the assigned storage)",
            "   - ext_max_frag:        max page fragmentation to tolerate (default: 0.80)",
            "   - ext_max_sleep:       max sleep time of background threads in us (default: 1000000)",
            "   - slab_automove_freeratio: ratio of memory to hold free as buffer.",
            "                          (see doc/storage.txt for more info, default: 0.010)",
            "   - ssl_chain_cert:      certificate chain file in PEM format",
            "   - ssl_key:             private key, if not part of the -ssl_chain_cert",
            "   - ssl_keyformat:       private key format (PEM or DER, or 1 or 2) (default: PEM)",
            "   - ssl_verify_mode:     peer certificate verification mode, default is 0(None).",
            "                          valid values are 0(None), 1(Request), 2(Require)",
            "                          or 3(Once)",
            "   - ssl_ciphers:         specify cipher list to be used",
            "                          (default: ECDHE with AES-GCM or ChaCha20 only; DEFAULT: OpenSSL's list)",
            "   - ssl_ciphersuites:    specify TLSv1.3 ciphersuites to be used",
            "   - ssl_ca_cert:         PEM format file of acceptable client CA's",
            "   - ssl_wbuf_size:       most kilobytes of replies handed to one SSL_write",
            "                          (default: \(s.tls.wbufSize / 1024), min: 1)",
            "   - ssl_session_cache:   enable server-side SSL session cache, to support session",
            "                          resumption",
            "   - ssl_kernel_tls:      enable kernel TLS offload",
            "   - ssl_min_version:     minimum protocol version to accept (default: \(minVersion))",
            "                          valid values are 0(tlsv1.0), 1(tlsv1.1), 2(tlsv1.2), or 3(tlsv1.3).",
            "   - ssl_handshake_timeout: seconds a client may take to finish the TLS handshake",
            "                          (default: \(s.tls.handshakeTimeout), 0: no limit)",
            "   - ssl_ticket_key_file: session ticket keys, 80 bytes each (first encrypts, all",
            "                          decrypt); default: generated at start, rotated daily",
            "   - ssl_auto_reload:     seconds between checks of the certificate, key, CA and",
            "                          ticket key files, reloaded when changed (default: \(s.tls.autoReload), off)",
            "   - ssl_verify_name:     client certificate names allowed where client certificates",
            "                          are verified, name[:name...]; *.domain matches one label",
            "   - ssl_verify_uri:      a URI (e.g. SPIFFE ID) a client certificate may carry instead;",
            "                          repeat for more; a trailing * matches any rest",
            "   - ssl_alt_chain_cert:  second certificate chain of another key type (e.g. ECDSA)",
            "   - ssl_alt_key:         its private key (in ssl_keyformat)",
            "   - ssl_handshake_share: percent of a busy CPU's time TLS handshakes may take",
            "                          (default: \(s.tls.handshakeShare), 100: no limit)",
            "   - ssl_handshake_threads: threads that run TLS handshakes, handing each connection",
            "                          to its worker when done (default: one per four workers;",
            "                          0: the workers run their own)",
            "   - metrics_port:        serve Prometheus metrics over HTTP on this port (default: off)",
            "   - metrics_addr:        address of the metrics listener (default: \(s.metricsAddr))",
            "-N, --napi_ids            number of napi ids. see doc/napi_ids.txt for more details",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `-i`: memcached prints its own and libevent's licenses; Cachet prints its own.
    static let license = versionLine + "\n\n" + """
        BSD 3-Clause License

        Copyright (c) 2026, The Cachet authors

        Redistribution and use in source and binary forms, with or without
        modification, are permitted provided that the following conditions are met:

        1. Redistributions of source code must retain the above copyright notice, this
           list of conditions and the following disclaimer.

        2. Redistributions in binary form must reproduce the above copyright notice,
           this list of conditions and the following disclaimer in the documentation
           and/or other materials provided with the distribution.

        3. Neither the name of the copyright holder nor the names of its
           contributors may be used to endorse or promote products derived from
           this software without specific prior written permission.

        THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
        AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
        IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
        DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
        FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
        DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
        SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
        CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
        OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
        OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.

        """
}
