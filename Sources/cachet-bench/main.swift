// cachet-bench: parse → run → print. Exit 0 on success, 1 on a failed run or verify error, 2 on usage.
import CachetBenchCore
#if canImport(Glibc)
import Glibc
#endif

func say(_ fd: Int32, _ s: String) { _ = s.withCString { write(fd, $0, strlen($0)) } }

let outcome: ParseOutcome
do { outcome = try parseBenchOptions(Array(CommandLine.arguments.dropFirst())) } catch {
    say(2, "cachet-bench: \(error.description)\n")
    exit(2)
}
guard case .run(let options) = outcome else { say(1, benchUsage + "\n"); exit(0) }
let result = runBenchmark(options)
let json = renderJSON(result)
if let path = options.jsonFile {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd >= 0 { say(fd, json); close(fd) } else { say(2, "cachet-bench: cannot write \(path)\n") }
}
say(1, options.json ? json : renderTable(result))
if let f = result.failure { say(2, "cachet-bench: FAILED: \(f)\n"); exit(1) }
if result.counters.verifyErrors > 0 {
    say(2, "cachet-bench: FAILED: \(result.counters.verifyErrors) GET hit(s) did not carry the last value SET\n")
    exit(1)
}
if result.counters.requests == 0 && options.hold == nil { say(2, "cachet-bench: FAILED: no request completed\n"); exit(1) }
exit(0)
