// memcached's command line: the getopt loop of main() in memcached.c (1.6.18) and the checks that
// follow it, in the same order, with the same texts and exit codes (SettingsError.swift).
// Three things memcached does later are separate so the server runs them at the same point:
//   ssl_init (CachetTLS), `checkRoot(settings:uid:)` (PrivilegeCheck.swift) and the listener
//   checks (`ListenerSpec.validate`).
//
// Cachet differences (also in the README "Differences" table):
// - Options Cachet does not implement stop with `cachet: option X is not supported`, exit 64,
//   instead of being half-honoured: -L (large pages), -N (NAPI ids), and the `-o` options listed in
//   ExtendedOptions.swift.
// - `-p`/`-U` below -1 are refused like `-p 70000` (memcached fails to bind them), and so is `-U` above
//   65535 (memcached starts with no UDP socket); `-R` and `-n`
//   below 0 get memcached's "must be greater than 0" texts (memcached refuses only 0, then spins
//   forever with `-R -1` and prints `chunk_size -5` with `-n -5`).
// - Diagnostics name the program "cachet" (GetoptLong.swift).
// - `-h` never stops half-way with "Default value of [x] has changed …" (memcached's self-check
//   in usage() when -U/-o idle_timeout were given before -h): Cachet prints the whole text.
// - `-t` above 64 prints memcached's warning via `Settings.startupWarnings` (the caller writes it).

import CachetTLS
import Glibc

public enum SettingsOutcome: Sendable {
    case run(Settings)
    case exit(code: Int32, stdout: String, stderr: String)
}

public enum SettingsParser {
    /// memcached 1.6.18's optstring, unchanged: the same letters take arguments, so `-Lt 2` and
    /// `-D:` split the way they do there (even though Cachet refuses -L afterwards).
    static let optstring = "a:AZp:s:U:m:Mc:khiVrvdl:u:P:f:n:t:D:LR:Cb:B:I:SFXWY:e:o:N:"

    /// memcached 1.6.18's longopts, in its order (the order of the "ambiguous; possibilities" list).
    static let longOptions: [GetoptLong.LongOption] = [
        .init(name: "unix-mask", argument: .required, short: "a"),
        .init(name: "enable-shutdown", argument: .none, short: "A"),
        .init(name: "enable-ssl", argument: .none, short: "Z"),
        .init(name: "port", argument: .required, short: "p"),
        .init(name: "unix-socket", argument: .required, short: "s"),
        .init(name: "udp-port", argument: .required, short: "U"),
        .init(name: "memory-limit", argument: .required, short: "m"),
        .init(name: "disable-evictions", argument: .none, short: "M"),
        .init(name: "conn-limit", argument: .required, short: "c"),
        .init(name: "lock-memory", argument: .none, short: "k"),
        .init(name: "help", argument: .none, short: "h"),
        .init(name: "license", argument: .none, short: "i"),
        .init(name: "version", argument: .none, short: "V"),
        .init(name: "enable-coredumps", argument: .none, short: "r"),
        .init(name: "verbose", argument: .optional, short: "v"),
        .init(name: "daemon", argument: .none, short: "d"),
        .init(name: "listen", argument: .required, short: "l"),
        .init(name: "user", argument: .required, short: "u"),
        .init(name: "pidfile", argument: .required, short: "P"),
        .init(name: "slab-growth-factor", argument: .required, short: "f"),
        .init(name: "slab-min-size", argument: .required, short: "n"),
        .init(name: "threads", argument: .required, short: "t"),
        .init(name: "enable-largepages", argument: .none, short: "L"),
        .init(name: "max-reqs-per-event", argument: .required, short: "R"),
        .init(name: "disable-cas", argument: .none, short: "C"),
        .init(name: "listen-backlog", argument: .required, short: "b"),
        .init(name: "protocol", argument: .required, short: "B"),
        .init(name: "max-item-size", argument: .required, short: "I"),
        .init(name: "enable-sasl", argument: .none, short: "S"),
        .init(name: "disable-flush-all", argument: .none, short: "F"),
        .init(name: "disable-dumping", argument: .none, short: "X"),
        .init(name: "disable-watch", argument: .none, short: "W"),
        .init(name: "auth-file", argument: .required, short: "Y"),
        .init(name: "memory-file", argument: .required, short: "e"),
        .init(name: "extended", argument: .required, short: "o"),
        .init(name: "napi-ids", argument: .required, short: "N"),
    ]

    static let itemSizeMaxLowerLimit = 1024
    static let itemSizeMaxUpperLimit = 1024 * 1024 * 1024

    /// `arguments` excludes argv[0]. A leading `--config-file <path>` splices in the file's options
    /// (ConfigFile.swift).
    public static func parse(_ arguments: [String]) -> SettingsOutcome {
        switch ConfigFile.expand(arguments) {
        case .failure(let f): return .exit(code: f.code, stdout: "", stderr: f.message)
        case .success(let args): return parseOptions(args)
        }
    }

    /// One config-file line's options on their own: getopt and each option's checks, not the checks
    /// that relate several options (those run once the whole command line is known). nil = fine.
    static func check(_ arguments: [String]) -> SettingsOutcome? {
        var s = Settings()
        var slabChunkChanged = false
        return applyAll(arguments, &s, &slabChunkChanged)
    }

    private static func parseOptions(_ arguments: [String]) -> SettingsOutcome {
        var s = Settings()
        var slabChunkChanged = false
        if let done = applyAll(arguments, &s, &slabChunkChanged) { return done }
        if s.saslEnabled {
            // SASL authenticates binary clients only: -S means binary, and refuses any -B that lets text in.
            if !s.bindingProtocolGiven { s.bindingProtocol = .binary }
            if s.bindingProtocol != .binary { return SettingsError.asciiWithSasl.outcome }
        }
        // memcached: a UDP port given without a TCP port moves TCP there too (`-U 5000` serves both).
        if s.udpPortGiven && s.udpPort != 0 && !s.portGiven { s.port = s.udpPort }
        if let error = validate(&s) { return error.outcome }
        // memcached: -Y without -B speaks ASCII only (validate refused any other -B).
        if s.authFile != nil { s.bindingProtocol = .ascii }
        if let warning = tlsOptionsWithoutTLS(s) { s.startupWarnings.append(warning) }
        if s.metricsPort == nil && s.metricsAddr != Settings().metricsAddr {
            s.startupWarnings.append("cachet: warning: -o metrics_addr has no effect without -o metrics_port (metrics are off)\n")
        }
        return .run(s)
    }

    private static func applyAll(_ arguments: [String], _ s: inout Settings,
                                 _ slabChunkChanged: inout Bool) -> SettingsOutcome? {
        let getopt = GetoptLong(programName: "cachet", optstring: optstring, longOptions: longOptions)
        for event in getopt.parse(arguments) {
            switch event {
            case .error(let line):
                return SettingsError.getopt(line).outcome
            case .option(let c, let arg):
                do {
                    if let done = try apply(c, arg ?? "", &s, &slabChunkChanged) { return done }
                } catch let e as SettingsError {
                    return e.outcome
                } catch {
                    return .exit(code: 1, stdout: "", stderr: "\(error)\n")
                }
            }
        }
        return nil
    }

    /// One getopt result; returns an outcome for -h/-V/-i, throws SettingsError to stop.
    private static func apply(_ c: Character, _ arg: String, _ s: inout Settings,
                              _ slabChunkChanged: inout Bool) throws -> SettingsOutcome? {
        switch c {
        case "a": s.unixMask = Int(CNumeric.octal(arg))
        case "A": s.shutdownEnabled = true
        case "Z": s.tls.enabled = true
        case "p": s.port = Int(CNumeric.atoi(arg)); s.portGiven = true
        case "s": s.socketPath = arg
        case "U":
            s.udpPort = Int(CNumeric.atoi(arg))
            s.udpPortGiven = true
        case "m":
            // (size_t)atoi(optarg) * 1024 * 1024: a negative value wraps, as in memcached.
            s.maxBytes = UInt64(bitPattern: Int64(CNumeric.atoi(arg))) &* 1024 &* 1024
        case "M": s.evictionsEnabled = false
        case "c":
            s.maxConns = Int(CNumeric.atoi(arg))
            if s.maxConns <= 0 { throw SettingsError.maxConnsNotPositive }
        case "k": s.lockMemory = true
        case "h": return .exit(code: 0, stdout: HelpText.usage(s), stderr: "")
        case "i": return .exit(code: 0, stdout: HelpText.license, stderr: "")
        case "V": return .exit(code: 0, stdout: versionLine + "\n", stderr: "")
        case "r": s.maxCore = true
        case "v": s.verbosity += 1
        case "d": s.daemonize = true
        case "l":
            // memcached appends with ',' unless the new text already occurs in the list.
            if let inter = s.inter {
                if !inter.contains(arg) { s.inter = inter + "," + arg }
            } else {
                s.inter = arg
            }
        case "u": s.user = arg
        case "P": s.pidFile = arg
        case "f":
            s.growthFactor = CNumeric.atof(arg)
            if !(s.growthFactor > 1.0) { throw SettingsError.factorNotAboveOne }
        case "n":
            s.chunkSize = Int(CNumeric.atoi(arg))
            // memcached only refuses 0 and would build slab classes from a negative size.
            if s.chunkSize <= 0 { throw SettingsError.chunkSizeZero }
        case "t":
            s.numThreads = Int(CNumeric.atoi(arg))
            if s.numThreads <= 0 { throw SettingsError.threadsNotPositive }
            if s.numThreads > 64 {
                s.startupWarnings.append("WARNING: Setting a high number of workerthreads is not recommended.\n"
                    + " Set this value to the number of cores in your machine or less.\n")
            }
        case "R":
            s.reqsPerEvent = Int(CNumeric.atoi(arg))
            // memcached only refuses 0; a negative value makes its worker loop spin forever.
            if s.reqsPerEvent <= 0 { throw SettingsError.reqsPerEventNotPositive }
        case "C": s.casEnabled = false
        case "b": s.backlog = Int(CNumeric.atoi(arg))
        case "B":
            s.bindingProtocolGiven = true
            switch arg {
            case "auto": s.bindingProtocol = .negotiating
            case "ascii": s.bindingProtocol = .ascii
            case "binary": s.bindingProtocol = .binary
            default: throw SettingsError.invalidBindingProtocol(arg)
            }
        case "I": s.itemSizeMax = itemSize(arg)
        case "F": s.flushEnabled = false
        case "X": s.dumpEnabled = false
        case "W": s.watchEnabled = false
        case "o": try ExtendedOptions.apply(arg, to: &s, slabChunkChanged: &slabChunkChanged)
        case "S": s.saslEnabled = true
        case "Y": s.authFile = arg
        case "e": s.memoryFile = arg
        case "L":
            // memcached on Linux: transparent huge pages must exist (madvise), else it stops.
            var st = stat()
            guard stat("/sys/kernel/mm/transparent_hugepage/enabled", &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                throw SettingsError.largePagesUnavailable
            }
            s.largePages = true
        case "D":
            // memcached keeps optarg[0] and turns stats detail on.
            guard let first = arg.utf8.first else { throw SettingsError.noDelimiter }
            s.prefixDelimiter = first
            s.detailEnabled = true
        case "N":
            s.napiIds = Int(CNumeric.atoi(arg))
            if s.napiIds <= 0 { throw SettingsError.napiIdsNotPositive }
        default: throw SettingsError.getopt("cachet: invalid option -- '\(c)'")
        }
        return nil
    }

    /// `-I`: a k/m/K/M suffix multiplies atoi of the rest, in int arithmetic (so `-I 2048m` wraps
    /// negative and is then "less than 1024 bytes", as in memcached).
    static func itemSize(_ arg: String) -> Int {
        guard let unit = arg.last else { return 0 }
        let number = CNumeric.atoi(String(arg.dropLast()))
        switch unit {
        case "k", "K": return Int(number &* 1024)
        case "m", "M": return Int(number &* 1024 &* 1024)
        default: return Int(CNumeric.atoi(arg))
        }
    }

    /// The checks main() runs after the getopt loop, in its order, up to (not including) ssl_init.
    static func validate(_ s: inout Settings) -> SettingsError? {
        if s.napiIds > s.numThreads { return .napiIdsAboveThreads(napi: s.napiIds, threads: s.numThreads) }
        if s.itemSizeMax < itemSizeMaxLowerLimit { return .itemSizeBelowMinimum }
        // int vs size_t: memcached compares unsigned.
        if UInt64(s.itemSizeMax) > s.maxBytes / 2 { return .itemSizeAboveHalfMemory }
        if s.itemSizeMax > itemSizeMaxUpperLimit { return .itemSizeAboveGigabyte }
        if s.slabChunkMax > s.itemSizeMax {
            return .slabChunkAboveItemSize(chunk: s.slabChunkMax, item: s.itemSizeMax)
        }
        if s.itemSizeMax % s.slabChunkMax != 0 {
            return .itemSizeNotMultipleOfChunk(item: s.itemSizeMax, chunk: s.slabChunkMax)
        }
        if s.slabPageSize % s.slabChunkMax != 0 {
            return .pageNotMultipleOfChunk(chunk: s.slabChunkMax, page: s.slabPageSize)
        }
        if let text = s.slabSizesText {
            switch SlabSizesOption.parse(text, chunkSize: s.chunkSize, slabChunkMax: s.slabChunkMax) {
            case .success(let sizes): s.slabSizes = sizes
            case .failure(let line): return .slabSizes(line.message, fromWorkerLogbuf: s.slabSizesFromWorkerLogbuf)
            }
        }
        if s.hotLRUPct + s.warmLRUPct > 80 { return .lruPctCombined }
        if s.tempLRU && !s.lruMaintainerThread { return .temporaryTTLWithoutMaintainer }
        // -1: a port the kernel picks (memcached's convention for test harnesses, with MEMCACHED_PORT_FILENAME).
        if s.port > 65535 || s.port < -1 { return .invalidPort(s.port) }
        if s.udpPort > 65535 || s.udpPort < -1 { return .invalidPort(s.udpPort) }
        if s.tls.enabled && s.port == 0 { return .sslWithoutTCPPort }
        if s.authFile != nil && s.bindingProtocolGiven && s.bindingProtocol != .ascii { return .binaryWithAsciiAuth }
        // memcached checks this where it reads the auth file; both stop before anything is bound.
        if s.authFile != nil && s.udpPort != 0 { return .udpWithAsciiAuth }
        return nil
    }

    /// memcached 1.6.18 takes `-o ssl_*` without `-Z` silently and serves plaintext; an operator who
    /// forgot `-Z` deserves to hear it.
    static func tlsOptionsWithoutTLS(_ s: Settings) -> String? {
        let t = s.tls
        guard !t.enabled else { return nil }
        let defaults = TLSSettings()
        guard t.chainCert != nil || t.key != nil || t.caCert != nil || t.ciphers != nil || t.ciphersuites != nil
            || t.keyFormat != defaults.keyFormat || t.verifyMode != defaults.verifyMode || t.wbufSize != defaults.wbufSize
            || t.sessionCache || t.kernelTLS || t.minVersion != defaults.minVersion
        else { return nil }
        return "cachet: warning: -o ssl_* options have no effect without -Z (TLS is off; every listener is plaintext)\n"
    }
}
