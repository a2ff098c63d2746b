// The same argv to Cachet's parser and to the real memcached 1.6.18: stderr (program name
// normalised) and exit code must match; `stats settings` must list the same names, order and values.
import Foundation
import Testing
@testable import CachetServer

@Suite(.serialized) struct SettingsDifferentialTests {
    @Test(arguments: sharedFailures)
    func sameFailureAsMemcached(_ c: ([String], Int32, String)) throws {
        let argv = ["-u", "root"] + c.0
        let theirs = try #require(try MemcachedOracle.run(argv), "memcached accepted \(argv)")
        let ours = try #require(outcomeTriple(SettingsParser.parse(argv)), "cachet accepted \(argv)")
        #expect(ours.0 == theirs.code, "\(argv)")
        #expect(ours.2 == MemcachedOracle.normalise(theirs.stderr), "\(argv)")
        #expect(ours.2 == c.2, "\(argv)")
    }

    @Test func rootCheckMatchesMemcached() throws {
        let argv = ["-p", "0", "-U", "0"]
        guard case .run(let s) = SettingsParser.parse(argv) else { Issue.record("parse"); return }
        let ours = SettingsParser.checkRoot(settings: s, uid: getuid(), euid: geteuid())
        if getuid() == 0 || geteuid() == 0 {
            let theirs = try #require(try MemcachedOracle.run(argv))
            #expect(outcomeTriple(try #require(ours))?.0 == theirs.code)
            #expect(outcomeTriple(try #require(ours))?.2 == theirs.stderr)
        } else {
            #expect(ours == nil)
        }
    }

    /// 1.6.18 knows `notls:` and the host/port syntax; `btls:`/`mtls:` are a later memcached's.
    @Test(arguments: ["notls:127.0.0.1:1", "x:y", "[::1", "127.0.0.1,notls:127.0.0.1"])
    func sameListenerErrorAsMemcached(_ list: String) throws {
        let argv = ["-u", "root", "-p", String(MemcachedOracle.freePort()), "-l", list]
        let theirs = try #require(try MemcachedOracle.run(argv), "memcached accepted \(argv)")
        guard case .run(let s) = SettingsParser.parse(argv) else { Issue.record("parse \(argv)"); return }
        let ours = try #require(ListenerSpec.validate(s))
        #expect(outcomeTriple(ours)?.0 == theirs.code)
        #expect(outcomeTriple(ours)?.2 == theirs.stderr)
    }

    func compareStatsSettings(_ extra: [String], queryPort: Int? = nil, port: Int) throws {
        let argv = ["-u", "root", "-p", String(port)] + extra
        guard case .run(let s) = SettingsParser.parse(argv) else { Issue.record("cachet refused \(argv)"); return }
        let theirs = try #require(try MemcachedOracle.statsSettings(argv, queryPort: queryPort ?? port),
                                  "no stats settings from memcached \(argv)")
        var ours = statsSettingsLines(s, verbosity: s.verbosity, oldestLive: 0,
                                      maxBytes: Int(truncatingIfNeeded: s.maxBytes))
        // Cachet's own lines come last: drop them before comparing.
        let cachetOnly = ["ssl_ciphersuites", "ssl_handshake_timeout", "ssl_ticket_key_file", "ssl_auto_reload",
                          "ssl_verify_name", "ssl_verify_uri", "ssl_alt_chain_cert", "ssl_alt_key",
                          "ssl_handshake_share", "ssl_handshake_threads", "lru_policy"]
        #expect(Array(ours.suffix(cachetOnly.count).map(\.0)) == cachetOnly)
        ours.removeLast(cachetOnly.count)
        #expect(ours.map(\.0) == theirs.map(\.0), "names/order for \(argv)")
        for (a, b) in zip(ours, theirs) where a.0 == b.0 {
            #expect(a.1 == b.1, "\(a.0) for \(argv)")
        }
    }

    @Test func statsSettingsDefaults() throws {
        try compareStatsSettings(["-U", "0"], port: MemcachedOracle.freePort())
    }

    /// udpport and num_threads_per_udp (one worker per socket when -l lists several addresses).
    @Test func statsSettingsUDP() throws {
        try compareStatsSettings(["-U", String(MemcachedOracle.freePort()), "-l", "127.0.0.1"],
                                 port: MemcachedOracle.freePort())
        try compareStatsSettings(["-U", String(MemcachedOracle.freePort()), "-t", "3",
                                  "-l", "127.0.0.1,127.0.0.1:\(MemcachedOracle.freePort())"],
                                 port: MemcachedOracle.freePort())
    }

    @Test func statsSettingsLRUOptions() throws {
        try compareStatsSettings(["-o", "no_modern"], port: MemcachedOracle.freePort())
        try compareStatsSettings(["-o", "hot_lru_pct=30,warm_lru_pct=30,hot_max_factor=0.5,warm_max_factor=3",
                                  "-o", "temporary_ttl=10"], port: MemcachedOracle.freePort())
        try compareStatsSettings(["-o", "slab_chunk_max=262144,no_modern"], port: MemcachedOracle.freePort())
        try compareStatsSettings(["-o", "watcher_logbuf_size=512,track_sizes"], port: MemcachedOracle.freePort())
        try compareStatsSettings(["-o", "watcher_logbuf_size=0"], port: MemcachedOracle.freePort())
    }

    /// The options memcached 1.6.18 takes that only show in `stats settings` (and what their values do
    /// elsewhere is tested in Tests/integration/test_ops_options.py). Not `-N`: memcached crashes printing it.
    @Test func statsSettingsBufferAndHashOptions() throws {
        try compareStatsSettings(["-o", "worker_logbuf_size=128,read_buf_mem_limit=3,tail_repair_time=20",
                                  "-o", "hash_algorithm=xxh3,no_hashexpand,drop_privileges,sock_cookie_id=5"],
                                 port: MemcachedOracle.freePort())
        try compareStatsSettings(["-o", "hash_algorithm=jenkins,slab_sizes=100-200,read_buf_mem_limit=4096"],
                                 port: MemcachedOracle.freePort())
    }

    @Test func statsSettingsNumbersAndFlags() throws {
        try compareStatsSettings(["-m", "100", "-I", "4m", "-f", "1.123456", "-a", "755", "-b", "abc", "-vv",
                                  "-c", "500", "-t", "2", "-R", "5", "-C", "-M", "-A", "-F", "-X", "-W", "-n", "64",
                                  "-o", "idle_timeout=10,hashpower=20,no_maxconns_fast,no_lru_crawler",
                                  "-o", "no_lru_maintainer,slab_chunk_max=262144,no_slab_reassign,slab_automove=2",
                                  "-o", "modern,ssl_keyformat=2,ssl_verify_mode=1,ssl_wbuf_size=1"],
                                 port: MemcachedOracle.freePort())
        try compareStatsSettings(["-B", "ascii", "-o", "no_chunked_items,ssl_key=,ssl_verify_mode=3",
                                  "-l", "127.0.0.1", "-l", "127.0.0.1"], port: MemcachedOracle.freePort())
    }

    @Test func statsSettingsDelimiterAndCrawler() throws {
        try compareStatsSettings(["-D", "#", "-o", "lru_crawler_sleep=12abc,lru_crawler_tocrawl=4294967295"],
                                 port: MemcachedOracle.freePort())
        try compareStatsSettings(["-D", "ab", "-D", "|", "-o", "lru_crawler_tocrawl=4294967296,lru_crawler_sleep=0"],
                                 port: MemcachedOracle.freePort())
    }

    @Test func statsSettingsTLS() throws {
        let (cert, key) = try MemcachedOracle.makeCertificate()
        let port = MemcachedOracle.freePort(), plain = MemcachedOracle.freePort()
        try compareStatsSettings(["-Z", "-l", "127.0.0.1,notls:127.0.0.1:\(plain)",
                                  "-o", "ssl_chain_cert=\(cert),ssl_key=\(key),ssl_verify_mode=2,ssl_ciphers=HIGH",
                                  "-o", "ssl_ca_cert=\(cert),ssl_wbuf_size=64,ssl_session_cache,ssl_kernel_tls,ssl_min_version=3"],
                                 queryPort: plain, port: port)
    }
}

@Suite struct HelpTextDifferentialTests {
    /// Lines Cachet words differently on purpose (HelpText.swift's header says why).
    static let cachetWording: Set<String> = [
        "                          if TLS/SSL is enabled, 'notls', 'btls', 'mtls' prefix can be used to",
        "                          specify for specific listeners no tls, basic tls, or peer-auth tls (i.e -l mtls:127.0.0.1:11212)",
        "-i, --license             print cachet license",
        "-B, --protocol=<name>     protocol - one of ascii or auto (default: auto-negotiate)",
        "   - ssl_keyformat:       private key format (PEM or DER, or 1 or 2) (default: PEM)",
        "   - ssl_ciphersuites:    specify TLSv1.3 ciphersuites to be used",
        "   - ssl_wbuf_size:       most kilobytes of replies handed to one SSL_write",
        "                          (default: 16, min: 1)",
        "     (not in Cachet: every item stays in memory; these options are refused)",
        // Cachet-only options: the config file and the metrics endpoint.
        "--config-file=<file>      read options from <file> first (memcached.conf format, one per line);",
        "                          must be the first argument",
        "   - metrics_port:        serve Prometheus metrics over HTTP on this port (default: off)",
        "   - metrics_addr:        address of the metrics listener (default: 127.0.0.1)",
        "                          (default: ECDHE with AES-GCM or ChaCha20 only; DEFAULT: OpenSSL's list)",
        "   - ssl_handshake_timeout: seconds a client may take to finish the TLS handshake",
        "                          (default: 10, 0: no limit)",
        "   - ssl_ticket_key_file: session ticket keys, 80 bytes each (first encrypts, all",
        "                          decrypt); default: generated at start, rotated daily",
        "   - ssl_auto_reload:     seconds between checks of the certificate, key, CA and",
        "                          ticket key files, reloaded when changed (default: 0, off)",
        "   - ssl_verify_name:     client certificate names allowed where client certificates",
        "                          are verified, name[:name...]; *.domain matches one label",
        "   - ssl_verify_uri:      a URI (e.g. SPIFFE ID) a client certificate may carry instead;",
        "                          repeat for more; a trailing * matches any rest",
        "   - ssl_alt_chain_cert:  second certificate chain of another key type (e.g. ECDSA)",
        "   - ssl_alt_key:         its private key (in ssl_keyformat)",
        "   - lru_policy:          segmented (memcached's, default) or s3fifo: keys nobody",
        "                          fetched while in HOT are evicted first, keys evicted",
        "                          unfetched and set again start in COLD instead of HOT",
        "   - ssl_handshake_share: percent of a busy CPU's time TLS handshakes may take",
        "                          (default: 40, 100: no limit)",
        "   - ssl_handshake_threads: threads that run TLS handshakes, handing each connection",
        "                          to its worker when done (default: one per four workers;",
        "                          0: the workers run their own)",
    ]

    @Test func everyOtherLineIsMemcachedsVerbatim() throws {
        let theirs = try #require(try MemcachedOracle.run(["-h"]))
        let memcachedLines = Set(theirs.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        guard case .exit(0, let ours, _) = SettingsParser.parse(["-h"]) else { Issue.record("-h"); return }
        let lines = ours.split(separator: "\n").map(String.init)
        #expect(lines.first == versionLine)
        for line in lines.dropFirst() where !Self.cachetWording.contains(line) {
            #expect(memcachedLines.contains(line), "not in memcached -h: \(line)")
        }
    }
}
