// `--config-file <path>`: options read from a file in the format of Debian's /etc/memcached.conf, read the
// way Debian's systemd-memcached-wrapper reads it, so a memcached.conf copied to /etc/cachet.conf works
// unchanged:
//   - one option per line (`-m 64`, `-l 127.0.0.1`, `-o ssl_chain_cert=/etc/cachet/chain.pem`);
//   - `#` starts a comment (`\#` is a literal `#`); blank lines are skipped;
//   - `-d` and `-h` lines are skipped: under a service manager the process stays in the foreground (the
//     wrapper drops them for the same reason);
//   - `logfile <path>` is accepted and ignored (start-memcached's directive; the journal/stderr gets the
//     output instead, as with the wrapper);
//   - a line's words are split as a shell would split them (the wrapper hands the joined lines to
//     /bin/sh): whitespace, '…', "…", backslash escapes. Expansions (`$`, backquotes) are refused, not
//     half-emulated.
// Unlike the wrapper, which silently ignores what it does not understand, any other line is an error
// naming the file and line, and so is an option that would fail on the command line (each line is parsed
// on its own first, so the error can say where it is). The file's options come first; options after
// `--config-file <path>` on the command line follow them (later `-m`, `-p`… win, `-l` adds a listener).
//
// Why an option instead of a wrapper script: one binary for `make install`, the .deb and the units; errors
// with the file and line number; no perl or shell at start.
import Glibc

enum ConfigFile {
    /// memcached's EX_USAGE for a line that is not an option; EX_NOINPUT when the file cannot be read.
    static let malformedExitCode: Int32 = 64
    static let unreadableExitCode: Int32 = 66

    /// `--config-file` must come first so that it can never be an option's argument (`-P --config-file`).
    /// Returns the arguments with the file's options spliced in, or the exit outcome for a bad file.
    static func expand(_ arguments: [String]) -> Result<[String], ConfigFileFailure> {
        guard let first = arguments.first else { return .success(arguments) }
        let path: String
        let rest: ArraySlice<String>
        if first == "--config-file" {
            guard arguments.count >= 2 else {
                return .failure(ConfigFileFailure(code: malformedExitCode,
                                                  message: "cachet: option '--config-file' requires an argument\n"))
            }
            path = arguments[1]
            rest = arguments.dropFirst(2)
        } else if first.hasPrefix("--config-file=") {
            path = String(first.dropFirst("--config-file=".count))
            rest = arguments.dropFirst()
        } else {
            return .success(arguments)
        }
        if rest.contains(where: { $0 == "--config-file" || $0.hasPrefix("--config-file=") }) {
            return .failure(ConfigFileFailure(code: malformedExitCode,
                                              message: "cachet: --config-file may be given once, as the first argument\n"))
        }
        switch read(path) {
        case .failure(let f): return .failure(f)
        case .success(let text):
            switch options(text, path: path) {
            case .failure(let f): return .failure(f)
            case .success(let lines): return .success(lines.flatMap { $0.words } + rest)
            }
        }
    }

    /// A regular file of at most 1 MB. Opened non-blocking and checked with fstat first, so a FIFO, a
    /// terminal or a device named by mistake is refused instead of waited on.
    static func read(_ path: String) -> Result<String, ConfigFileFailure> {
        func failure(_ why: String, _ code: Int32 = unreadableExitCode) -> Result<String, ConfigFileFailure> {
            .failure(ConfigFileFailure(code: code, message: "cachet: cannot read the config file \(path): \(why)\n"))
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return failure(String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return failure("not a regular file") }
        guard st.st_size <= 1 << 20 else { return failure("larger than 1 MB, not a config file", malformedExitCode) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return failure(String(cString: strerror(errno))) }
            if n == 0 { break }
            got += n
        }
        return .success(String(decoding: bytes[0..<got], as: UTF8.self))
    }

    struct Line: Equatable { let number: Int; let words: [String] }

    /// The option lines of a file, each already checked on its own (see the header).
    static func options(_ text: String, path: String) -> Result<[Line], ConfigFileFailure> {
        var out: [Line] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = i + 1
            func fail(_ why: String, code: Int32 = malformedExitCode) -> Result<[Line], ConfigFileFailure> {
                .failure(ConfigFileFailure(code: code, message: "cachet: \(path):\(number): \(why)\n"))
            }
            let line = stripComment(Substring(raw)).trimmingSpaces()
            if line.isEmpty { continue }
            if line.hasPrefix("-d") || line.hasPrefix("-h") { continue }
            let words: [String]
            switch shellWords(line) {
            case .failure(let why): return fail(why.text)
            case .success(let w): words = w
            }
            if !line.hasPrefix("-") {
                if words.first == "logfile" && words.count == 2 { continue }
                return fail("not an option (lines start with '-', e.g. `-m 64`; `#` starts a comment): \(line)")
            }
            if case .exit(let code, _, let err)? = SettingsParser.check(words) {
                if code == 0 { return fail("\(line): prints something and exits; not for a config file") }
                let first = err.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
                return fail("\(line): \(first.hasPrefix("cachet: ") ? String(first.dropFirst(8)) : first)", code: code)
            }
            out.append(Line(number: number, words: words))
        }
        return .success(out)
    }

    /// The wrapper's comment rule: from the first `#` not preceded by a backslash; `\#` then means `#`.
    static func stripComment(_ s: Substring) -> String {
        var out = ""
        var prev: Character? = nil
        for c in s {
            if c == "#" && prev != "\\" { break }
            if c == "#" && prev == "\\" { out.removeLast() }
            out.append(c)
            prev = c
        }
        return out
    }

    struct WordError: Error { let text: String }

    /// POSIX shell word splitting without expansions.
    static func shellWords(_ s: String) -> Result<[String], WordError> {
        var words: [String] = []
        var cur = ""
        var inWord = false
        var it = Array(s)
        var i = 0
        func refuse(_ c: Character) -> WordError {
            WordError(text: "shell expansion (\(c)) is not supported in a config file: \(s)")
        }
        while i < it.count {
            let c = it[i]
            switch c {
            case " ", "\t", "\r":
                if inWord { words.append(cur); cur = ""; inWord = false }
            case "'":
                inWord = true
                guard let end = it[(i + 1)...].firstIndex(of: "'") else { return .failure(WordError(text: "unterminated ' quote: \(s)")) }
                cur += String(it[(i + 1)..<end])
                i = end
            case "\"":
                inWord = true
                i += 1
                var closed = false
                while i < it.count {
                    let d = it[i]
                    if d == "\"" { closed = true; break }
                    if d == "$" || d == "`" { return .failure(refuse(d)) }
                    if d == "\\", i + 1 < it.count, "$`\"\\".contains(it[i + 1]) { i += 1; cur.append(it[i]) } else { cur.append(d) }
                    i += 1
                }
                if !closed { return .failure(WordError(text: "unterminated \" quote: \(s)")) }
            case "\\":
                inWord = true
                if i + 1 < it.count { i += 1; cur.append(it[i]) }
            case "$", "`", ";", "|", "&", "<", ">", "(", ")":
                return .failure(refuse(c))
            default:
                inWord = true
                cur.append(c)
            }
            i += 1
        }
        if inWord { words.append(cur) }
        it.removeAll()
        return .success(words)
    }
}

struct ConfigFileFailure: Error {
    let code: Int32
    let message: String
}

extension String {
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
