// `-Y <file>` (memcached's authfile.c): the users and passwords of ASCII authentication, one `user:password`
// per line. Read at start (a failure stops the server with memcached's text and exit code) and again on
// SIGHUP (memcached 1.6.40+; a failure keeps the previous list and is logged). Shared by every worker:
// `check` runs on worker threads while a reload swaps the list on the main thread.
//
// Format, as 1.6.18 reads it: the user is everything before the first ':', the password everything after
// it up to the end of the line (a '\r' ends it too). A line without ':' — including an empty line before the
// last one — makes the file malformed. Differences, on purpose: every line counts (1.6.18 silently ignores
// entries after the eighth and splits lines longer than 255 bytes), and a last line without a newline is an
// entry (memcached fixed its handling of that case in 1.6.32).
import Glibc
import Synchronization

final class AuthFile: Sendable {
    struct Entry: Sendable {
        let user: [UInt8]
        let password: [UInt8]
    }

    enum LoadError: Error, Equatable {
        /// errno of the failed open/read.
        case unreadable(Int32)
        /// 1-based line number of the first line without ':'.
        case malformed(line: Int)
    }

    let path: String
    private let entries: Mutex<[Entry]>

    init(path: String, entries: [Entry]) {
        self.path = path
        self.entries = Mutex(entries)
    }

    /// Reads and parses the file.
    static func read(_ path: String) -> Result<[Entry], LoadError> {
        guard let f = fopen(path, "r") else { return .failure(.unreadable(errno)) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, 4096, f) }
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < 4096 {
                if ferror(f) != 0 { return .failure(.unreadable(errno)) }
                break
            }
        }
        return parse(bytes)
    }

    static func parse(_ bytes: [UInt8]) -> Result<[Entry], LoadError> {
        var out: [Entry] = []
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // The newline that ends the last line does not start another one.
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (i, line) in lines.enumerated() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .failure(.malformed(line: i + 1)) }
            let rest = line[(colon + 1)...]
            let end = rest.firstIndex(where: { $0 == 0x0d || $0 == 0 }) ?? rest.endIndex
            out.append(Entry(user: Array(line[line.startIndex..<colon]), password: Array(rest[rest.startIndex..<end])))
        }
        return .success(out)
    }

    /// memcached's wording for a file that cannot be used at start (stderr), and its exit code (1).
    static func startupMessage(_ e: LoadError, path: String) -> String {
        switch e {
        case .unreadable(let err):
            let why = String(cString: strerror(err))
            return "Could not open authfile [\(path)] for reading, error \(why): \(why)\n"
        case .malformed(let line):
            // memcached's text has no newline and does not say where; the hint line does.
            return "Authfile [\(path)] has a malformed entry. Should be 'user:password'\n"
                + "cachet: line \(line) has no ':' (an empty line counts as an entry too)\n"
        }
    }

    /// SIGHUP: the new list replaces the old one only when the whole file was read.
    func reload() -> LoadError? {
        switch AuthFile.read(path) {
        case .success(let new):
            entries.withLock { $0 = new }
            return nil
        case .failure(let e):
            return e
        }
    }

    /// Is this user with this password in the file? Every entry is compared in full, so the time taken
    /// does not tell how much of a user or password matched.
    func check(user: UnsafeRawBufferPointer, password: UnsafeRawBufferPointer) -> Bool {
        entries.withLock { list in
            var found = false
            for e in list {
                let u = AuthFile.equal(e.user, user), p = AuthFile.equal(e.password, password)
                found = found || (u && p)
            }
            return found
        }
    }

    /// Byte equality whose time depends only on the lengths.
    private static func equal(_ a: [UInt8], _ b: UnsafeRawBufferPointer) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        let n = min(a.count, b.count)
        for i in 0..<n { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
