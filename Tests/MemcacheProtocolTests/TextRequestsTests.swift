// The typed requests of the classic key commands: what each malformed line is refused with, and whether
// noreply silences the refusal (memcached 1.6.18's classification; the differential suite checks the
// replies on the wire against a running memcached).
import MemcacheProtocol
import Testing

/// Parses `line` with `parse` after tokenizing it as the server does.
private func parsed<R>(_ line: String, _ parse: (UnsafeRawBufferPointer, TokenList) -> Result<R, TextRequestFailure>)
    -> Result<R, TextRequestFailure> {
    let bytes = Array(line.utf8)
    let t = TokenList()
    return bytes.withUnsafeBytes { raw in
        t.tokenize(raw)
        return parse(raw, t)
    }
}

private func failure<R>(_ r: Result<R, TextRequestFailure>) -> (TextRequestError, Bool)? {
    if case .failure(let f) = r { return (f.error, f.noreply) }
    return nil
}

@Suite struct TextRequestsTests {
    @Test func storageLines() throws {
        let ok = try parsed("set k 7 -1 5 noreply") { StorageRequest.parse($0, $1, isCas: false) }.get()
        #expect(ok.flags == 7 && ok.exptime == -1 && ok.valueLength == 5 && ok.noreply && ok.casUnique == 0)
        #expect(positiveExptime(ok.exptime) == 2_592_001)
        let cas = try parsed("cas k 0 0 5 42") { StorageRequest.parse($0, $1, isCas: true) }.get()
        #expect(cas.casUnique == 42 && !cas.noreply)
        // memcached's safe_strtoul stores an unsigned long into 32 bits: 2^32 + 1 is flags 1.
        #expect(try parsed("set k 4294967297 0 5") { StorageRequest.parse($0, $1, isCas: false) }.get().flags == 1)
        for bad in ["set k x 0 5", "set k 0 0 -1", "set k 0 0 2147483646", "set k 0 soon 5",
                    "set " + String(repeating: "k", count: 251) + " 0 0 5"] {
            let f = failure(parsed(bad) { StorageRequest.parse($0, $1, isCas: false) })
            #expect(f?.0 == .badFormat && f?.1 == false, "\(bad)")
        }
        let silenced = failure(parsed("set k x 0 5 noreply") { StorageRequest.parse($0, $1, isCas: false) })
        #expect(silenced?.0 == .badFormat && silenced?.1 == true)
        #expect(failure(parsed("cas k 0 0 5 x") { StorageRequest.parse($0, $1, isCas: true) })?.0 == .badFormat)
    }

    @Test func deleteLines() throws {
        #expect(try parsed("delete k") { DeleteRequest.parse($0, $1) }.get().noreply == false)
        #expect(try parsed("delete k 0 noreply") { DeleteRequest.parse($0, $1) }.get().noreply)
        #expect(try parsed("delete k noreply") { DeleteRequest.parse($0, $1) }.get().noreply)
        let usage = failure(parsed("delete k 5") { DeleteRequest.parse($0, $1) })
        #expect(usage?.0 == .deleteUsage && usage?.1 == false)
        let long = failure(parsed("delete " + String(repeating: "k", count: 251)) { DeleteRequest.parse($0, $1) })
        #expect(long?.0 == .badFormat)
    }

    @Test func arithmeticAndTouchLines() throws {
        #expect(try parsed("incr k 18446744073709551615") { ArithmeticRequest.parse($0, $1) }.get().delta == .max)
        let delta = failure(parsed("incr k -1 noreply") { ArithmeticRequest.parse($0, $1) })
        #expect(delta?.0 == .invalidDelta && delta?.1 == true)
        #expect(try parsed("touch k -5") { TouchRequest.parse($0, $1) }.get().exptime == -5)
        #expect(failure(parsed("touch k soon") { TouchRequest.parse($0, $1) })?.0 == .invalidExptime)
    }
}
