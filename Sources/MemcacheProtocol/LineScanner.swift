// Finding the next command line in a connection's read buffer (memcached try_read_command_ascii):
// a line ends at '\n'; a '\r' before it is dropped only when the line is longer than one byte; with no
// '\n' in more than 2048 bytes the connection is closed unless it looks like a large multi-get.
import Glibc

public enum LineScan: Equatable {
    /// The command line is `[start, lineEnd)`; the next command starts at `next`.
    case line(lineEnd: Int, next: Int)
    case needMore
    /// No newline within 2048 bytes and not a get/gets: close silently.
    case close
}

public enum LineScanner {
    public static let maxLineWithoutNewline = 2048
    /// memcached reads at most its 16 KB read buffer before looking for the newline: a line whose
    /// newline lies further out was never seen whole, so it is closed like one without a newline.
    public static let readBufferSize = 16384
    /// Upper bound for a multi-get line that keeps growing (memcached has none; we stop at this).
    public static let maxMultigetLine = 8 << 20

    @inline(__always)
    public static func scan(_ buf: UnsafeRawBufferPointer) -> LineScan {
        let n = buf.count
        guard n > 0 else { return .needMore }
        if let nl = memchr(buf.baseAddress!, 0x0a, n) {
            let idx = UnsafeRawPointer(nl) - buf.baseAddress!
            if idx >= readBufferSize && !keepsReading(buf) { return .close }
            var end = idx
            if idx > 1 && buf[idx - 1] == 0x0d { end = idx - 1 }
            return .line(lineEnd: end, next: idx + 1)
        }
        if n > maxLineWithoutNewline && (!keepsReading(buf) || n > maxMultigetLine) { return .close }
        return .needMore
    }

    /// A long line memcached keeps reading: at most 100 leading spaces, then `get ` or `gets `.
    @inline(__always)
    static func keepsReading(_ buf: UnsafeRawBufferPointer) -> Bool {
        let n = buf.count
        var p = 0
        while p < n && buf[p] == 0x20 { p += 1 }
        if p > 100 { return false }
        return hasPrefix(buf, p, "get ") || hasPrefix(buf, p, "gets ")
    }

    @inline(__always)
    static func hasPrefix(_ buf: UnsafeRawBufferPointer, _ at: Int, _ s: StaticString) -> Bool {
        let m = s.utf8CodeUnitCount
        guard buf.count - at >= m else { return false }
        for i in 0..<m where buf[at + i] != s.utf8Start[i] { return false }
        return true
    }
}
