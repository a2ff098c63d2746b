// Settings parsing without a socket: every message and exit code, Cachet's differences, defaults,
// getopt behaviour and `-l` parsing.
import Testing
@testable import CachetServer

func outcomeTriple(_ o: SettingsOutcome) -> (Int32, String, String)? {
    if case .exit(let code, let out, let err) = o { return (code, out, err) }
    return nil
}

func settings(_ argv: [String]) -> Settings? {
    if case .run(let s) = SettingsParser.parse(argv) { return s }
    return nil
}

/// (argv, exit code, stderr) that Cachet shares with memcached 1.6.18 (program name normalised);
/// SettingsDifferentialTests replays each against the real memcached.
let sharedFailures: [([String], Int32, String)] = [
    (["-q"], 1, "cachet: invalid option -- 'q'\nIllegal argument \"?\"\n"),
    (["-vq"], 1, "cachet: invalid option -- 'q'\nIllegal argument \"?\"\n"),
    (["--foo=1"], 1, "cachet: unrecognized option '--foo=1'\nIllegal argument \"?\"\n"),
    (["--mem"], 1, "cachet: option '--mem' is ambiguous; possibilities: '--memory-limit' '--memory-file'\nIllegal argument \"?\"\n"),
    (["--ver=3"], 1, "cachet: option '--ver=3' is ambiguous; possibilities: '--version' '--verbose'\nIllegal argument \"?\"\n"),
    (["--en"], 1, "cachet: option '--en' is ambiguous; possibilities: '--enable-shutdown' '--enable-ssl' '--enable-coredumps' '--enable-largepages' '--enable-sasl'\nIllegal argument \"?\"\n"),
    (["-p"], 1, "cachet: option requires an argument -- 'p'\nIllegal argument \"?\"\n"),
    (["--port"], 1, "cachet: option '--port' requires an argument\nIllegal argument \"?\"\n"),
    (["--thr"], 1, "cachet: option '--threads' requires an argument\nIllegal argument \"?\"\n"),
    (["--disable-cas=1"], 1, "cachet: option '--disable-cas' doesn't allow an argument\nIllegal argument \"?\"\n"),
    (["-p", "70000"], 64, "ERROR: Invalid port number 70000.\n"),
    (["--port=65536"], 64, "ERROR: Invalid port number 65536.\n"),
    (["-p", "0", "-Z"], 64, "ERROR: You cannot enable SSL without a TCP port.\n"),
    (["-Y", "/dev/null", "-U", "11311"], 64, "Cannot use UDP with ascii authentication enabled (-U 0 to disable)\n"),
    (["-Y", "/dev/null", "-B", "auto"], 64,
     "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.\n"),
    (["-p", "abc", "-Z"], 64, "ERROR: You cannot enable SSL without a TCP port.\n"),
    (["-t", "0"], 1, "Number of threads must be greater than 0\n"),
    (["-t", "abc", "-p", "70000"], 1, "Number of threads must be greater than 0\n"),
    (["-c", "0"], 1, "Maximum connections must be greater than 0\n"),
    (["-c", "-5"], 1, "Maximum connections must be greater than 0\n"),
    (["-f", "1"], 1, "Factor must be greater than 1\n"),
    (["-f", "abc"], 1, "Factor must be greater than 1\n"),
    (["-n", "0"], 1, "Chunk size must be greater than 0\n"),
    (["-R", "0"], 1, "Number of requests per event must be greater than 0\n"),
    (["-I", "512"], 64, "Item max size cannot be less than 1024 bytes.\n"),
    (["-I", "512", "-p", "70000"], 64, "Item max size cannot be less than 1024 bytes.\n"),
    (["-m", "1", "-I", "1m"], 64, "Cannot set item size limit higher than 1/2 of memory max.\n"),
    (["-m", "0"], 64, "Cannot set item size limit higher than 1/2 of memory max.\n"),
    (["-m", "1g"], 64, "Cannot set item size limit higher than 1/2 of memory max.\n"),
    (["-I", "2000m", "-m", "5000"], 64, "Cannot set item size limit higher than a gigabyte.\n"),
    (["-I", "2k"], 64, "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 2048)\n"),
    (["-I", "1025"], 64, "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 1025)\n"),
    (["-o", "slab_chunk_max=3000"], 64, "-I (item_size_max: 1048576) must be evenly divisible by slab_chunk_max (bytes: 3000)\n"),
    (["-B", "binary2"], 64, "Invalid value for binding protocol: binary2\n -- should be one of auto, binary, or ascii\n"),
    (["-o", "foo=bar,x"], 1, "Illegal suboption \"foo=bar\"\n"),
    (["-o", "a,,b"], 1, "Illegal suboption \"a\"\n"),
    (["-o", ",x"], 1, "Illegal suboption \"\"\n"),
    (["--ex=x"], 1, "Illegal suboption \"x\"\n"),
    (["-o", "foo", "-q"], 1, "Illegal suboption \"foo\"\n"),
    (["-o", "ssl_chain_cert"], 1, "Missing ssl_chain_cert argument\n"),
    (["-o", "ssl_key"], 1, "Missing ssl_key argument\n"),
    (["-o", "ssl_keyformat"], 1, "Missing ssl_keyformat argument\n"),
    (["-o", "ssl_keyformat=ENGINE"], 1, "could not parse argument to ssl_keyformat\n"),
    (["-o", "ssl_verify_mode"], 1, "Missing ssl_verify_mode argument\n"),
    (["-o", "ssl_verify_mode="], 1, "could not parse argument to ssl_verify_mode\n"),
    (["-o", "ssl_verify_mode=2x"], 1, "could not parse argument to ssl_verify_mode\n"),
    (["-o", "ssl_verify_mode=4"], 1, "Invalid ssl_verify_mode. Use help to see valid options.\n"),
    (["-o", "ssl_verify_mode=-1"], 1, "Invalid ssl_verify_mode. Use help to see valid options.\n"),
    (["-o", "ssl_ciphers"], 1, "Missing ssl_ciphers argument\n"),
    (["-o", "ssl_ca_cert"], 1, "Missing ssl_ca_cert argument\n"),
    (["-o", "ssl_wbuf_size"], 1, "Missing ssl_wbuf_size argument\n"),
    (["-o", "ssl_wbuf_size=16k"], 1, "could not parse argument to ssl_wbuf_size\n"),
    (["-o", "ssl_wbuf_size=-1"], 1, "could not parse argument to ssl_wbuf_size\n"),
    (["-o", "ssl_wbuf_size=abc"], 1, "could not parse argument to ssl_wbuf_size\n"),
    (["-o", "ssl_min_version"], 1, "Missing ssl_min_version argument\n"),
    (["-o", "ssl_min_version=abc"], 1, "could not parse argument to ssl_min_version\n"),
    (["-o", "ssl_min_version=4"], 1, "Invalid ssl_min_version. Use help to see valid options.\n"),
    (["-o", "hashpower=5"], 1, "Initial hashtable multiplier of 5 is too low\n"),
    (["-o", "hashpower=abc"], 1, "Initial hashtable multiplier of 0 is too low\n"),
    (["-o", "hashpower=33"], 1, "Initial hashtable multiplier of 33 is too high\nChoose a value based on \"STAT hash_power_level\" from a running instance\n"),
    (["-o", "hashpower"], 1, "Missing numeric argument for hashpower\n"),
    (["-o", "idle_timeout"], 1, "Missing numeric argument for idle_timeout\n"),
    (["-o", "slab_automove=3"], 1, "slab_automove must be between 0 and 2\n"),
    (["-o", "hash_algorithm=foo"], 1, "Unknown hash_algorithm option (jenkins, murmur3, xxh3)\n"),
    (["-o", "hash_algorithm"], 1, "Missing hash_algorithm argument\n"),
    (["-D"], 1, "cachet: option requires an argument -- 'D'\nIllegal argument \"?\"\n"),
    (["-D", ""], 1, "No delimiter specified\n"),
    (["--D=x"], 1, "cachet: unrecognized option '--D=x'\nIllegal argument \"?\"\n"),
    (["-o", "lru_crawler_tocrawl"], 1, "Missing lru_crawler_tocrawl value\n"),
    (["-o", "lru_crawler_tocrawl="], 1, "lru_crawler_tocrawl takes a numeric 32bit value\n"),
    (["-o", "lru_crawler_tocrawl=x"], 1, "lru_crawler_tocrawl takes a numeric 32bit value\n"),
    (["-o", "lru_crawler_tocrawl=12abc"], 1, "lru_crawler_tocrawl takes a numeric 32bit value\n"),
    (["-o", "lru_crawler_tocrawl=-1"], 1, "lru_crawler_tocrawl takes a numeric 32bit value\n"),
    (["-o", "lru_crawler_sleep"], 1, "Missing lru_crawler_sleep value\n"),
    (["-o", "lru_crawler_sleep=-1"], 1, "LRU crawler sleep must be between 0 and 1 second\n"),
    (["-o", "lru_crawler_sleep=1000001"], 1, "LRU crawler sleep must be between 0 and 1 second\n"),
    (["-o", "hot_lru_pct"], 1, "Missing hot_lru_pct argument\n"),
    (["-o", "hot_lru_pct=0"], 1, "hot_lru_pct must be > 1 and < 80\n"),
    (["-o", "warm_lru_pct=80"], 1, "warm_lru_pct must be > 1 and < 80\n"),
    (["-o", "warm_lru_pct=abc"], 1, "warm_lru_pct must be > 1 and < 80\n"),
    (["-o", "hot_max_factor"], 1, "Missing hot_max_factor argument\n"),
    (["-o", "hot_max_factor=0"], 1, "hot_max_factor must be > 0\n"),
    (["-o", "warm_max_factor=-1"], 1, "warm_max_factor must be > 0\n"),
    (["-o", "temporary_ttl"], 1, "Missing temporary_ttl argument\n"),
    (["-o", "hot_lru_pct=79"], 64, "hot_lru_pct + warm_lru_pct cannot be more than 80% combined\n"),
    (["-o", "hot_lru_pct=50,warm_lru_pct=31"], 64, "hot_lru_pct + warm_lru_pct cannot be more than 80% combined\n"),
    (["-o", "temporary_ttl=5,no_lru_maintainer"], 64, "temporary_ttl requires lru_maintainer to be enabled\n"),
    (["-o", "no_modern,temporary_ttl=5"], 64, "temporary_ttl requires lru_maintainer to be enabled\n"),
    // -o slab_sizes, parsed after every other option (its errors come after -I's, before the LRU checks).
    (["-o", "slab_sizes=100-50"], 64, "slab size 50 cannot be lower than or equal to a previous class size\n"),
    (["-o", "slab_sizes=x"], 64, "slab size 0 is out of valid range\n"),
    (["-o", "slab_sizes=100-x"], 64, "slab size 0 is out of valid range\n"),
    (["-o", "slab_sizes="], 64, ""),
    (["-o", "slab_sizes=49-50"], 64, "slab size 50 must be at least 8 bytes larger than previous class\n"),
    (["-o", "slab_sizes=100-524289"], 64, "slab size 524289 is out of valid range\n"),
    (["-n", "100", "-o", "slab_sizes=99"], 64, "slab size 99 is out of valid range\n"),
    (["-o", "slab_sizes=10", "-I", "10"], 64, "Item max size cannot be less than 1024 bytes.\n"),
    (["-o", "slab_sizes=10,hot_lru_pct=50,warm_lru_pct=40"], 64, "slab size 10 is out of valid range\n"),
    (["-o", "read_buf_mem_limit=-1"], 1, "could not parse argument to read_buf_mem_limit\n"),
    (["-o", "read_buf_mem_limit"], 1, "Missing read_buf_mem_limit argument\n"),
    (["-o", "tail_repair_time=5"], 1, "Cannot set tail_repair_time to less than 10 seconds\n"),
    (["-o", "tail_repair_time=x"], 1, "Cannot set tail_repair_time to less than 10 seconds\n"),
    (["-o", "tail_repair_time"], 1, "Missing numeric argument for tail_repair_time\n"),
    (["-o", "worker_logbuf_size"], 1, "Missing worker_logbuf_size argument\n"),
    (["-o", "worker_logbuf_size=x"], 1, "could not parse argument to worker_logbuf_size\n"),
    (["-N", "0"], 1, "Maximum number of NAPI IDs must be greater than 0\n"),
    (["-N", "x"], 1, "Maximum number of NAPI IDs must be greater than 0\n"),
    (["-N", "5"], 64, "Number of napi_ids(5) cannot be greater than number of threads(4)\n"),
    (["-N", "5", "-I", "10"], 64, "Number of napi_ids(5) cannot be greater than number of threads(4)\n"),
]

/// (argv, exit code, stderr) where Cachet deliberately differs from memcached 1.6.18.
let cachetOnlyFailures: [([String], Int32, String)] = [
    // -o lru_policy is Cachet's: memcached's wording for an unknown choice (as hash_algorithm's), exit 1.
    (["-o", "lru_policy=lfu"], 1, "Unknown lru_policy option (segmented, s3fifo)\n"),
    (["-o", "lru_policy=S3FIFO"], 1, "Unknown lru_policy option (segmented, s3fifo)\n"),
    (["-o", "lru_policy="], 1, "Unknown lru_policy option (segmented, s3fifo)\n"),
    (["-o", "lru_policy"], 1, "Missing lru_policy argument\n"),
    (["-o", "ssl_wbuf_size=0"], 1, "ssl_wbuf_size must be at least 1 (kilobytes)\n"),
    (["-o", "ssl_wbuf_size=5000000"], 1, "could not parse argument to ssl_wbuf_size\n"),
    (["-o", "slab_chunk_max"], 1, "Missing slab_chunk_max argument\n"),
    (["-o", "slab_chunk_max=abc"], 1, "could not parse argument to slab_chunk_max\n"),
    (["-o", "slab_chunk_max=0"], 1, "could not parse argument to slab_chunk_max\n"),
    (["-o", "ssl_ciphersuites"], 1, "Missing ssl_ciphersuites argument\n"),
    (["-o", "ssl_handshake_timeout"], 1, "Missing ssl_handshake_timeout argument\n"),
    (["-o", "ssl_handshake_timeout="], 1, "could not parse argument to ssl_handshake_timeout\n"),
    (["-o", "ssl_handshake_timeout=-1"], 1, "could not parse argument to ssl_handshake_timeout\n"),
    (["-o", "ssl_handshake_timeout=10s"], 1, "could not parse argument to ssl_handshake_timeout\n"),
    (["-o", "ssl_ticket_key_file"], 1, "Missing ssl_ticket_key_file argument\n"),
    (["-o", "ssl_auto_reload"], 1, "Missing ssl_auto_reload argument\n"),
    (["-o", "ssl_auto_reload=-5"], 1, "could not parse argument to ssl_auto_reload\n"),
    (["-o", "ssl_auto_reload=1m"], 1, "could not parse argument to ssl_auto_reload\n"),
    (["-o", "ssl_verify_name="], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=a::b"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=a:"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "watcher_logbuf_size=-1"], 1, "could not parse argument to watcher_logbuf_size\n"),
    (["-o", "watcher_logbuf_size"], 1, "Missing watcher_logbuf_size argument\n"),
    (["-o", "ssl_verify_uri="], 1, "could not parse argument to ssl_verify_uri\n"),
    (["-o", "ssl_verify_uri=spiffe://*"], 1, "could not parse argument to ssl_verify_uri\n"),
    (["-o", "ssl_verify_uri=*"], 1, "could not parse argument to ssl_verify_uri\n"),
    (["-o", "ssl_verify_uri=spiffe://a/*/b"], 1, "could not parse argument to ssl_verify_uri\n"),
    (["-o", "ssl_verify_name=:a"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=*"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=*."], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=a.*.b"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=**.b"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=*a.b"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=a..b"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name=.a"], 1, "could not parse argument to ssl_verify_name\n"),
    (["-o", "ssl_verify_name"], 1, "Missing ssl_verify_name argument\n"),
    (["-o", "ssl_alt_chain_cert"], 1, "Missing ssl_alt_chain_cert argument\n"),
    (["-o", "ssl_alt_key"], 1, "Missing ssl_alt_key argument\n"),
    (["-o", "ssl_handshake_share"], 1, "Missing ssl_handshake_share argument\n"),
    (["-o", "ssl_handshake_share=0"], 1, "Invalid ssl_handshake_share. Use help to see valid options.\n"),
    (["-o", "ssl_handshake_share=101"], 1, "Invalid ssl_handshake_share. Use help to see valid options.\n"),
    (["-o", "ssl_handshake_share=half"], 1, "could not parse argument to ssl_handshake_share\n"),
    (["-o", "ssl_handshake_threads"], 1, "Missing ssl_handshake_threads argument\n"),
    (["-o", "ssl_handshake_threads=65"], 1, "Invalid ssl_handshake_threads. Use help to see valid options.\n"),
    (["-o", "ssl_handshake_threads=two"], 1, "could not parse argument to ssl_handshake_threads\n"),
    (["-p", "-2"], 64, "ERROR: Invalid port number -2.\n"),
    (["-U", "-2"], 64, "ERROR: Invalid port number -2.\n"),
    (["-U", "70000"], 64, "ERROR: Invalid port number 70000.\n"),
    (["-R", "-1"], 1, "Number of requests per event must be greater than 0\n"),
    (["-n", "-5"], 1, "Chunk size must be greater than 0\n"),
    (["-S", "-B", "ascii"], 64, "ERROR: You cannot allow the ASCII protocol while using SASL.\n"),
    (["-S", "-B", "auto"], 64, "ERROR: You cannot allow the ASCII protocol while using SASL.\n"),
    (["-o", "ext_path=/tmp/x:64m"], 64,
     "cachet: option -o ext_path is not supported (extstore: Cachet keeps every item in memory, there is no external storage)\n"),
    (["-o", "slab_automove_freeratio=0.5"], 64,
     "cachet: option -o slab_automove_freeratio is not supported (extstore: Cachet keeps every item in memory, there is no external storage)\n"),
    // memcached crashes on these (a NULL value read); Cachet names what is missing.
    (["-o", "slab_sizes"], 1, "Missing slab_sizes argument\n"),
    (["-o", "sock_cookie_id"], 1, "Missing sock_cookie_id argument\n"),
    // memcached prints only the first line; the hint says why a log buffer size is a slab size.
    (["-o", "worker_logbuf_size=32"], 64, "slab size 32 is out of valid range\n"
        + "cachet: hint: memcached 1.6.18 also reads the value of -o worker_logbuf_size as slab_sizes, and so does "
        + "Cachet; give a value of at least -n (48) kilobytes, or a slab_sizes option after it\n"),
]

@Suite struct SettingsParserTests {
    @Test(arguments: sharedFailures + cachetOnlyFailures)
    func failureTextAndExitCode(_ c: ([String], Int32, String)) {
        let got = outcomeTriple(SettingsParser.parse(c.0))
        #expect(got?.0 == c.1, "\(c.0)")
        #expect(got?.1 == "", "\(c.0)")
        #expect(got?.2 == c.2, "\(c.0)")
    }

    /// memcached: `-U <port>` without `-p` moves TCP to that port too; `-p` alone leaves UDP off; -1 asks
    /// the kernel for a port.
    @Test func udpPortRules() throws {
        let both = try #require(settings(["-U", "5000"]))
        #expect(both.port == 5000 && both.udpPort == 5000)
        let tcpOnly = try #require(settings(["-p", "6000"]))
        #expect(tcpOnly.port == 6000 && tcpOnly.udpPort == 0)
        let apart = try #require(settings(["-U", "5000", "-p", "6000"]))
        #expect(apart.port == 6000 && apart.udpPort == 5000)
        let off = try #require(settings(["-U", "0"]))
        #expect(off.port == 11211 && off.udpPort == 0)
        let ephemeral = try #require(settings(["-p", "-1", "-U", "-1"]))
        #expect(ephemeral.port == -1 && ephemeral.udpPort == -1)
        let noTCP = try #require(settings(["-p", "0", "-U", "5000"]))
        #expect(noTCP.port == 0 && noTCP.udpPort == 5000)
    }

    /// The UDP sockets follow the `-l` entries (an entry's port wins over `-U`), with any TLS prefix.
    @Test func udpListFollowsListen() throws {
        let s = try #require(settings(["-Z", "-l", "127.0.0.1,notls:127.0.0.2:7000", "-U", "5000", "-p", "6000"]))
        let udp = try ListenerSpec.udpList(s).get()
        #expect(udp.map(\.host) == ["127.0.0.1", "127.0.0.2"])
        #expect(udp.map(\.port) == [5000, 7000])
        #expect(s.numThreadsPerUDP == 1)
        #expect(try ListenerSpec.udpList(try #require(settings(["-U", "0", "-l", "127.0.0.1:7000"]))).get().isEmpty)
        #expect(try ListenerSpec.udpList(try #require(settings(["-U", "5000", "-s", "/tmp/x"]))).get().isEmpty)
    }

    @Test func defaultsAreMemcached() throws {
        let s = try #require(settings([]))
        #expect(s.port == 11211 && s.udpPort == 0 && s.inter == nil && s.unixMask == 0o700)
        #expect(s.maxBytes == 64 << 20 && s.maxConns == 1024 && s.numThreads == 4 && s.reqsPerEvent == 20)
        #expect(s.backlog == 1024 && s.itemSizeMax == 1 << 20 && s.slabChunkMax == 1 << 19)
        #expect(s.growthFactor == 1.25 && s.chunkSize == 48 && s.casEnabled && s.evictionsEnabled)
        #expect(s.bindingProtocol == .negotiating && s.maxConnsFast && s.idleTimeout == 0)
        #expect(!s.tls.enabled && s.tls.wbufSize == 16384 && s.tls.minVersion == 2)
        #expect(s.storeConfig.hashPowerInitial == 16 && s.storeConfig.memoryLimit == 64 << 20)
    }

    @Test func getoptForms() throws {
        let s = try #require(settings(["-p11300", "-vv", "--threads=2", "--conn-limit", "50", "stray",
                                       "-v", "--verbose=3", "-ZA", "-o", "ssl_chain_cert=a"]))
        #expect(s.port == 11300 && s.verbosity == 4 && s.numThreads == 2 && s.maxConns == 50)
        #expect(s.tls.enabled && s.shutdownEnabled && s.tls.chainCert == "a")
        // "--" ends the options; what follows is ignored, as getopt leaves it to the program.
        #expect(settings(["--", "-q"]) != nil)
        // An argument is taken even when it looks like an option.
        #expect(settings(["-u", "-p"])?.user == "-p")
    }

    @Test func numericQuirksFollowC() throws {
        #expect(settings(["-m", "64m"])?.maxBytes == 64 << 20)
        #expect(settings(["-a", "abc"])?.unixMask == 0)
        #expect(settings(["-a", "755"])?.unixMask == 0o755)
        #expect(settings(["-b", "abc"])?.backlog == 0)
        #expect(settings(["-I", "1.5m"])?.itemSizeMax == 1 << 20)
        #expect(settings(["-I", "4m", "-m", "100"])?.itemSizeMax == 4 << 20)
        #expect(settings(["-p", "4294978507"])?.port == 11211)
        #expect(settings(["-o", "idle_timeout=abc"])?.idleTimeout == 0)
        let t = try #require(settings(["-t", "100"]))
        #expect(t.startupWarnings.count == 1)
    }

    @Test func prefixDelimiterAndCrawlerOptions() throws {
        let d = try #require(settings(["-D", "#"]))
        #expect(d.prefixDelimiter == UInt8(ascii: "#") && d.detailEnabled)
        // getopt forms: attached argument, first byte only, the last -D wins, an argument that looks like an option.
        #expect(settings(["-D:"])?.prefixDelimiter == UInt8(ascii: ":"))
        #expect(settings(["-D", "ab"])?.prefixDelimiter == UInt8(ascii: "a"))
        #expect(settings(["-D", "a", "-D", "b"])?.prefixDelimiter == UInt8(ascii: "b"))
        #expect(settings(["-D", "-V"])?.prefixDelimiter == UInt8(ascii: "-"))
        #expect(settings(["-D", "é"])?.prefixDelimiter == 0xC3)
        let plain = try #require(settings([]))
        #expect(plain.prefixDelimiter == UInt8(ascii: ":") && !plain.detailEnabled)
        #expect(plain.lruCrawlerSleep == 100 && plain.lruCrawlerToCrawl == 0)
        let c = try #require(settings(["-o", "lru_crawler_sleep=12abc,lru_crawler_tocrawl= 7"]))
        #expect(c.lruCrawlerSleep == 12 && c.lruCrawlerToCrawl == 7)
        #expect(settings(["-o", "lru_crawler_sleep=x"])?.lruCrawlerSleep == 0)
        #expect(settings(["-o", "lru_crawler_tocrawl=4294967296"])?.lruCrawlerToCrawl == 0)
        #expect(settings(["-o", "lru_crawler_tocrawl=4294967295"])?.lruCrawlerToCrawl == UInt32.max)
    }

    @Test func listAccumulatesLikeMemcached() {
        #expect(settings(["-l", "127.0.0.1", "-l", "127.0.0.1"])?.inter == "127.0.0.1")
        #expect(settings(["-l", "127.0.0.1", "-l", "::1"])?.inter == "127.0.0.1,::1")
    }

    @Test func extendedOptionsRecorded() throws {
        let s = try #require(settings(["-o", "no_lru_crawler,no_lru_maintainer,no_slab_reassign,slab_automove=2",
                                       "-o", "modern,hash_algorithm=murmur3,no_maxconns_fast,hashpower=20,no_chunked_items",
                                       "-o", "ssl_keyformat=DER,ssl_verify_mode=3,ssl_wbuf_size=64,ssl_session_cache=5",
                                       "-o", "ssl_ciphersuites=TLS_AES_128_GCM_SHA256"]))
        #expect(!s.lruCrawler && !s.lruMaintainerThread && !s.lruSegmented && !s.slabReassign)
        #expect(s.slabAutomove == 2 && !s.maxConnsFast && s.hashPowerInit == 20 && s.slabChunkMax == 1 << 20)
        #expect(s.tls.keyFormat == 2 && s.tls.verifyMode == 3 && s.tls.wbufSize == 65536 && s.tls.sessionCache)
        #expect(s.tls.ciphersuites == "TLS_AES_128_GCM_SHA256")
        #expect(settings(["-o", "ssl_keyformat=pem"])?.tls.keyFormat == 1)
        #expect(s.tls.handshakeTimeout == 10)
        #expect(s.lruPolicy.rawValue == "segmented" && s.storeConfig.lruPolicyKind.rawValue == "segmented")
        let p = try #require(settings(["-o", "lru_policy=s3fifo"]))
        #expect(p.lruPolicy.rawValue == "s3fifo" && p.storeConfig.lruPolicyKind.rawValue == "s3fifo")
        #expect(statsSettingsLines(p, verbosity: 0, oldestLive: 0, maxBytes: 64 << 20).last! == ("lru_policy", "s3fifo"))
        #expect(settings(["-o", "ssl_verify_name=a.example:*.cache.example"])?.tls.verifyNames == ["a.example", "*.cache.example"])
        #expect(settings(["-o", "ssl_handshake_timeout=0"])?.tls.handshakeTimeout == 0)
        #expect(settings(["-o", "ssl_handshake_timeout=3"])?.tls.handshakeTimeout == 3)
    }

    @Test func helpVersionLicense() throws {
        let v = try #require(outcomeTriple(SettingsParser.parse(["-V"])))
        #expect(v.0 == 0 && v.1 == "cachet \(cachetVersion) (memcached \(memcachedCompatVersion) compatible)\n")
        let h = try #require(outcomeTriple(SettingsParser.parse(["-p", "0", "-h", "-t", "0"])))
        #expect(h.0 == 0 && h.1.hasPrefix(versionLine + "\n-p, --port=<num>          TCP port to listen on (default: 0)\n"))
        #expect(h.1.contains("   - ssl_ciphersuites:"))
        let i = try #require(outcomeTriple(SettingsParser.parse(["-i"])))
        #expect(i.0 == 0 && i.1.contains("BSD 3-Clause License"))
        // -h is acted on where it appears: an earlier error wins.
        #expect(outcomeTriple(SettingsParser.parse(["-t", "0", "-h"]))?.0 == 1)
    }

    @Test func rootCheck() throws {
        let s = try #require(settings([]))
        let root = try #require(SettingsParser.checkRoot(settings: s, uid: 0))
        let e = try #require(outcomeTriple(root))
        #expect(e.0 == 64 && e.2 == "can't run as root without the -u switch\n")
        #expect(SettingsParser.checkRoot(settings: s, uid: 1000) == nil)
        #expect(SettingsParser.checkRoot(settings: s, uid: 1000, euid: 0) != nil)
        let u = try #require(settings(["-u", "nobody"]))
        #expect(SettingsParser.checkRoot(settings: u, uid: 0) == nil)
        let empty = try #require(settings(["-u", ""]))
        #expect(SettingsParser.checkRoot(settings: empty, uid: 0) != nil)
    }
}

extension SettingsOutcome: Equatable {
    public static func == (a: SettingsOutcome, b: SettingsOutcome) -> Bool {
        switch (a, b) {
        case (.exit(let c1, let o1, let e1), .exit(let c2, let o2, let e2)): return c1 == c2 && o1 == o2 && e1 == e2
        case (.run, .run): return true
        default: return false
        }
    }
}
