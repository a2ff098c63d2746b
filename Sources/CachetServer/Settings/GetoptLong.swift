// glibc's getopt_long as memcached calls it: `getopt_long(argc, argv, shortopts, longopts, &idx)`.
// Reproduced rather than called because memcached's observable behaviour (and so Cachet's contract)
// *is* glibc's: argument permutation (non-options anywhere are skipped), `-vv` clusters,
// `-p11211` attached values, `--name=value` / `--name value`, unambiguous abbreviations
// (`--mem` is ambiguous, `--thr 2` is `--threads 2`), and the exact diagnostics.
//
// Program name: glibc prints argv[0]; Cachet always prints "cachet" so the text does not depend on
// how the binary was invoked (memcached's reads `memcached: …` when run by name). The tests
// normalise memcached's prefix to compare.
// Not reproduced: POSIXLY_CORRECT (glibc would stop at the first non-option when it is set).

struct GetoptLong {
    enum Argument { case none, required, optional }

    struct LongOption {
        let name: String
        let argument: Argument
        let short: Character
    }

    enum Event: Equatable {
        case option(Character, String?)
        /// The glibc diagnostic line (without newline). Parsing stops after it, as memcached's
        /// `default:` case returns on the '?' getopt_long hands back.
        case error(String)
    }

    let programName: String
    let shortOptions: [Character: Argument]
    let longOptions: [LongOption]

    /// `optstring` in getopt syntax ("a:AZp:…"); `x:` takes an argument.
    init(programName: String, optstring: String, longOptions: [LongOption]) {
        self.programName = programName
        var table: [Character: Argument] = [:]
        let chars = Array(optstring)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if i + 1 < chars.count, chars[i + 1] == ":" {
                table[c] = .required
                i += 2
            } else {
                table[c] = Argument.none
                i += 1
            }
        }
        shortOptions = table
        self.longOptions = longOptions
    }

    /// All options in command-line order, ending early at the first error.
    func parse(_ args: [String]) -> [Event] {
        var events: [Event] = []
        var i = 0
        while i < args.count {
            let arg = args[i]
            if arg == "--" { break }
            if !arg.hasPrefix("-") || arg == "-" {
                i += 1  // a non-option; glibc permutes it to the end and memcached never reads it
                continue
            }
            if arg.hasPrefix("--") {
                i += 1
                if let event = longOption(String(arg.dropFirst(2)), args, &i) {
                    events.append(event)
                    if case .error = event { return events }
                }
                continue
            }
            i += 1
            let cluster = Array(arg.dropFirst())
            var j = 0
            while j < cluster.count {
                let c = cluster[j]
                guard c != ":", let kind = shortOptions[c] else {
                    events.append(.error("\(programName): invalid option -- '\(c)'"))
                    return events
                }
                if kind == .required {
                    let rest = String(cluster[(j + 1)...])
                    if !rest.isEmpty {
                        events.append(.option(c, rest))
                    } else if i < args.count {
                        events.append(.option(c, args[i]))
                        i += 1
                    } else {
                        events.append(.error("\(programName): option requires an argument -- '\(c)'"))
                        return events
                    }
                    break
                }
                events.append(.option(c, nil))
                j += 1
            }
        }
        return events
    }

    /// `body` is the text after "--"; `i` already points past it.
    private func longOption(_ body: String, _ args: [String], _ i: inout Int) -> Event? {
        let name: Substring
        let value: String?
        if let eq = body.firstIndex(of: "=") {
            name = body[..<eq]
            value = String(body[body.index(after: eq)...])
        } else {
            name = body[...]
            value = nil
        }
        var found = longOptions.firstIndex { $0.name == name }
        if found == nil {
            // Abbreviations: glibc marks the first prefix match and every later one that differs
            // from it (has_arg/val); more than one marked = ambiguous, listed in table order.
            var first: Int? = nil
            var ambiguous: [Int] = []
            for (index, option) in longOptions.enumerated() where option.name.hasPrefix(name) {
                guard let f = first else { first = index; continue }
                if option.argument != longOptions[f].argument || option.short != longOptions[f].short {
                    if ambiguous.isEmpty { ambiguous.append(f) }
                    ambiguous.append(index)
                }
            }
            if !ambiguous.isEmpty {
                let list = ambiguous.map { " '--\(longOptions[$0].name)'" }.joined()
                return .error("\(programName): option '--\(body)' is ambiguous; possibilities:\(list)")
            }
            found = first
        }
        guard let index = found else {
            return .error("\(programName): unrecognized option '--\(body)'")
        }
        let option = longOptions[index]
        switch option.argument {
        case .none:
            if value != nil {
                return .error("\(programName): option '--\(option.name)' doesn't allow an argument")
            }
            return .option(option.short, nil)
        case .optional:
            return .option(option.short, value)
        case .required:
            if let value { return .option(option.short, value) }
            guard i < args.count else {
                return .error("\(programName): option '--\(option.name)' requires an argument")
            }
            i += 1
            return .option(option.short, args[i - 1])
        }
    }
}
