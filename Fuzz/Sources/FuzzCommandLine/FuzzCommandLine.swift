// Fuzz target: the bytes a client sends, cut into command lines the way a connection does
// (LineScanner), each line tokenized (TokenList, including the re-tokenizing of a long multi-get's
// remainder) and recognized (TextCommandParser). Besides "never crashes", it checks what the request
// path relies on: every line and token lies inside the input, tokens are non-empty, hold no space and
// never reach past a NUL, and the scanner only gives up on a line longer than it may wait for.
import Glibc
import MemcacheProtocol

/// One list for the whole process, as a worker keeps one (libFuzzer runs inputs on one thread).
nonisolated(unsafe) private let tokens = TokenList()

@inline(__always)
private func check(_ ok: Bool, _ what: StaticString) {
    if !ok {
        "invariant broken: \(what)\n".withCString { _ = write(2, $0, strlen($0)) }
        abort()
    }
}

/// Tokens of `line` starting at `from`: inside the line, before any NUL, ordered, non-empty, space-free.
private func checkTokens(_ line: UnsafeRawBufferPointer, from: Int) {
    var nul = line.count
    if let p = memchr(line.baseAddress! + from, 0, line.count - from) {
        nul = UnsafeRawPointer(p) - line.baseAddress!
    }
    check(tokens.count <= TokenList.maxTokens - 1, "at most 23 real tokens")
    var prevEnd = from
    for i in 0..<tokens.count {
        let t = tokens[i]
        check(t.length > 0, "token is not empty")
        check(t.start >= prevEnd, "tokens are ordered and do not overlap")
        check(t.start + t.length <= nul, "token ends inside the line, before a NUL")
        check(t.start == from || line[t.start - 1] == 0x20, "a token starts after a space")
        for j in t.start..<(t.start + t.length) { check(line[j] != 0x20, "no space inside a token") }
        prevEnd = t.start + t.length
    }
    if let r = tokens.remainder {
        check(tokens.count == TokenList.maxTokens - 1, "a remainder only when the list is full")
        check(r > prevEnd && r < nul, "the remainder starts after the last token, inside the line")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCommandLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    var at = 0
    while at < input.count {
        let rest = UnsafeRawBufferPointer(rebasing: input[at...])
        switch LineScanner.scan(rest) {
        case .needMore:
            check(memchr(rest.baseAddress!, 0x0a, rest.count) == nil, "needMore only without a newline")
            return 0
        case .close:
            check(rest.count > LineScanner.maxLineWithoutNewline, "close only after 2048 bytes without a newline")
            return 0
        case .line(let lineEnd, let next):
            check(next >= 1 && next <= rest.count && rest[next - 1] == 0x0a, "a line ends at its newline")
            check(lineEnd >= 0 && lineEnd < next && next - lineEnd <= 2, "the line drops at most CR LF")
            check(memchr(rest.baseAddress!, 0x0a, next - 1) == nil, "the first newline ends the line")
            let line = UnsafeRawBufferPointer(rebasing: rest[0..<lineEnd])
            tokens.tokenize(line)
            checkTokens(line, from: 0)
            let command = TextCommandParser.identify(line, tokens)
            _ = TextCommandParser.hasNoreply(line, tokens)
            if tokens.count == 0 { check(command == .error, "an empty line is an ERROR") }
            // A multi-key get goes on with the remainder, 23 tokens at a time.
            var rounds = 0
            while let r = tokens.remainder {
                rounds += 1
                check(rounds <= line.count, "the remainder moves forward")
                tokens.tokenize(line, from: r)
                checkTokens(line, from: r)
            }
            at += next
        }
    }
    return 0
}
