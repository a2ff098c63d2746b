// Every message the settings layer can stop on, with memcached 1.6.18's exact text and exit code,
// in one place. Texts were captured from Debian's memcached 1.6.18 (`memcached -u root -p 0 <bad
// option>; echo $?`); the differential tests in SettingsDifferentialTests.swift re-check them.
// Exit codes: 1 = memcached's `return 1` from main (getopt and `-o` errors), 64 = EX_USAGE,
// 71 = EX_OSERR (listener errors, ListenerSpec.swift).

public enum SettingsError: Error, Equatable, Sendable {
    /// A glibc getopt_long diagnostic (`cachet: invalid option -- 'q'` …); memcached then prints
    /// `Illegal argument "?"` from its `default:` case.
    case getopt(String)
    case threadsNotPositive
    case maxConnsNotPositive
    case reqsPerEventNotPositive
    case factorNotAboveOne
    case chunkSizeZero
    case invalidBindingProtocol(String)
    case asciiWithSasl
    case itemSizeBelowMinimum
    case itemSizeAboveHalfMemory
    case itemSizeAboveGigabyte
    case slabChunkAboveItemSize(chunk: Int, item: Int)
    case itemSizeNotMultipleOfChunk(item: Int, chunk: Int)
    case pageNotMultipleOfChunk(chunk: Int, page: Int)
    case invalidPort(Int)
    case sslWithoutTCPPort
    case binaryWithAsciiAuth
    case udpWithAsciiAuth
    case rootWithoutUser
    // `-o`
    case illegalSuboption(String)
    case missingArgument(String)
    case missingNumericArgument(String)
    case couldNotParse(String)
    case invalidChoice(String)
    case hashpowerTooLow(Int)
    case hashpowerTooHigh(Int)
    case slabAutomoveRange
    case slabAutomoveRatioRange
    case slabAutomoveWindowRange
    case unknownHashAlgorithm
    case unknownLRUPolicy
    case missingValue(String)
    case tocrawlNot32Bit
    case crawlerSleepRange
    /// `hot_lru_pct` / `warm_lru_pct` outside 1..79, `hot_max_factor` / `warm_max_factor` not above 0.
    case lruPctRange(String)
    case lruFactorNotPositive(String)
    /// Checked after all options: the two LRU shares together, TEMP LRU without the maintainer.
    case lruPctCombined
    case temporaryTTLWithoutMaintainer
    /// `-D ''`
    case noDelimiter
    // Cachet-only
    /// An option memcached has and Cachet does not implement; never silently ignored.
    case unsupported(option: String, reason: String?)
    /// memcached accepts `ssl_wbuf_size=0` and then never writes a response.
    case sslWbufSizeZero
    case tailRepairTimeTooLow
    case napiIdsNotPositive
    case napiIdsAboveThreads(napi: Int, threads: Int)
    case largePagesUnavailable
    /// `-o slab_sizes` refused: memcached's line (empty for an empty value, where it says nothing), and
    /// whether the value came from worker_logbuf_size (1.6.18 reads it as slab_sizes too).
    case slabSizes(String, fromWorkerLogbuf: Bool)

    public var message: String {
        switch self {
        case .getopt(let line): return line + "\nIllegal argument \"?\"\n"
        case .threadsNotPositive: return "Number of threads must be greater than 0\n"
        case .maxConnsNotPositive: return "Maximum connections must be greater than 0\n"
        case .reqsPerEventNotPositive: return "Number of requests per event must be greater than 0\n"
        case .factorNotAboveOne: return "Factor must be greater than 1\n"
        case .chunkSizeZero: return "Chunk size must be greater than 0\n"
        case .asciiWithSasl: return "ERROR: You cannot allow the ASCII protocol while using SASL.\n"
        case .invalidBindingProtocol(let p):
            return "Invalid value for binding protocol: \(p)\n -- should be one of auto, binary, or ascii\n"
        case .itemSizeBelowMinimum: return "Item max size cannot be less than 1024 bytes.\n"
        case .itemSizeAboveHalfMemory: return "Cannot set item size limit higher than 1/2 of memory max.\n"
        case .itemSizeAboveGigabyte: return "Cannot set item size limit higher than a gigabyte.\n"
        case .slabChunkAboveItemSize(let chunk, let item):
            return "slab_chunk_max (bytes: \(chunk)) cannot be larger than -I (item_size_max \(item))\n"
        case .itemSizeNotMultipleOfChunk(let item, let chunk):
            return "-I (item_size_max: \(item)) must be evenly divisible by slab_chunk_max (bytes: \(chunk))\n"
        case .pageNotMultipleOfChunk(let chunk, let page):
            return "slab_chunk_max (bytes: \(chunk)) must divide evenly into \(page) (slab_page_size)\n"
        case .invalidPort(let p): return "ERROR: Invalid port number \(p).\n"
        case .sslWithoutTCPPort: return "ERROR: You cannot enable SSL without a TCP port.\n"
        case .udpWithAsciiAuth: return "Cannot use UDP with ascii authentication enabled (-U 0 to disable)\n"
        case .binaryWithAsciiAuth:
            return "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.\n"
        case .rootWithoutUser: return "can't run as root without the -u switch\n"
        case .illegalSuboption(let s): return "Illegal suboption \"\(s)\"\n"
        case .missingArgument(let o): return "Missing \(o) argument\n"
        case .missingNumericArgument(let o): return "Missing numeric argument for \(o)\n"
        case .couldNotParse(let o): return "could not parse argument to \(o)\n"
        case .invalidChoice(let o): return "Invalid \(o). Use help to see valid options.\n"
        case .hashpowerTooLow(let n): return "Initial hashtable multiplier of \(n) is too low\n"
        case .hashpowerTooHigh(let n):
            return "Initial hashtable multiplier of \(n) is too high\n"
                + "Choose a value based on \"STAT hash_power_level\" from a running instance\n"
        case .slabAutomoveRange: return "slab_automove must be between 0 and 2\n"
        case .slabAutomoveRatioRange: return "slab_automove_ratio must be > 0 and < 1\n"
        case .slabAutomoveWindowRange: return "slab_automove_window must be > 2\n"
        case .unknownHashAlgorithm: return "Unknown hash_algorithm option (jenkins, murmur3, xxh3)\n"
        case .unknownLRUPolicy: return "Unknown lru_policy option (segmented, s3fifo)\n"
        case .missingValue(let o): return "Missing \(o) value\n"
        case .tocrawlNot32Bit: return "lru_crawler_tocrawl takes a numeric 32bit value\n"
        case .crawlerSleepRange: return "LRU crawler sleep must be between 0 and 1 second\n"
        case .lruPctRange(let o): return "\(o) must be > 1 and < 80\n"
        case .lruFactorNotPositive(let o): return "\(o) must be > 0\n"
        case .lruPctCombined: return "hot_lru_pct + warm_lru_pct cannot be more than 80% combined\n"
        case .temporaryTTLWithoutMaintainer: return "temporary_ttl requires lru_maintainer to be enabled\n"
        case .noDelimiter: return "No delimiter specified\n"
        case .unsupported(let option, let reason):
            return "cachet: option \(option) is not supported" + (reason.map { " (\($0))" } ?? "") + "\n"
        case .sslWbufSizeZero: return "ssl_wbuf_size must be at least 1 (kilobytes)\n"
        case .tailRepairTimeTooLow: return "Cannot set tail_repair_time to less than 10 seconds\n"
        case .napiIdsNotPositive: return "Maximum number of NAPI IDs must be greater than 0\n"
        case .napiIdsAboveThreads(let n, let t):
            return "Number of napi_ids(\(n)) cannot be greater than number of threads(\(t))\n"
        case .largePagesUnavailable:
            return "Transparent huge pages support not detected.\nWill use default page size.\n"
                + "Cannot enable large pages on this system\n(There is no support as of this version)\n"
        case .slabSizes(let line, let fromWorkerLogbuf):
            return line + (fromWorkerLogbuf
                ? "cachet: hint: memcached 1.6.18 also reads the value of -o worker_logbuf_size as slab_sizes, and so "
                  + "does Cachet; give a value of at least -n (48) kilobytes, or a slab_sizes option after it\n"
                : "")
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .getopt, .threadsNotPositive, .maxConnsNotPositive, .reqsPerEventNotPositive,
             .factorNotAboveOne, .chunkSizeZero, .illegalSuboption, .missingArgument,
             .missingNumericArgument, .couldNotParse, .invalidChoice, .hashpowerTooLow,
             .hashpowerTooHigh, .slabAutomoveRange, .slabAutomoveRatioRange, .slabAutomoveWindowRange,
             .unknownHashAlgorithm, .unknownLRUPolicy, .sslWbufSizeZero, .missingValue, .tocrawlNot32Bit,
             .crawlerSleepRange, .noDelimiter, .lruPctRange, .lruFactorNotPositive, .tailRepairTimeTooLow,
             .napiIdsNotPositive, .largePagesUnavailable:
            return 1
        case .invalidBindingProtocol, .asciiWithSasl, .itemSizeBelowMinimum, .itemSizeAboveHalfMemory,
             .itemSizeAboveGigabyte, .slabChunkAboveItemSize, .itemSizeNotMultipleOfChunk,
             .pageNotMultipleOfChunk, .invalidPort, .sslWithoutTCPPort, .binaryWithAsciiAuth, .udpWithAsciiAuth, .rootWithoutUser, .unsupported,
             .lruPctCombined, .temporaryTTLWithoutMaintainer, .napiIdsAboveThreads, .slabSizes:
            return 64
        }
    }

    public var outcome: SettingsOutcome { .exit(code: exitCode, stdout: "", stderr: message) }
}
