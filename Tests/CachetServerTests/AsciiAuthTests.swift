// `-Y`: the auth file's format and the login phase of a session, without a socket (the integration suite
// compares the same replies with memcached 1.6.18's).
import Testing
@testable import CachetServer

@Suite struct AsciiAuthTests {
    private func entries(_ s: String) -> [String]? {
        guard case .success(let list) = AuthFile.parse(Array(s.utf8)) else { return nil }
        return list.map { String(decoding: $0.user, as: UTF8.self) + "=" + String(decoding: $0.password, as: UTF8.self) }
    }

    @Test func fileFormat() {
        #expect(entries("a:b\nc:d:e\r\nf:\n") == ["a=b", "c=d:e", "f="])
        #expect(entries("last:line-without-newline") == ["last=line-without-newline"])
        #expect(entries("") == [])
        #expect(entries(String(repeating: "u:p\n", count: 20))?.count == 20)   // memcached keeps only 8
        if case .failure(let e) = AuthFile.parse(Array("a:b\n\nc:d\n".utf8)) {
            #expect(e == .malformed(line: 2))
        } else {
            Issue.record("an empty line before the last is malformed")
        }
        if case .failure(let e) = AuthFile.parse(Array("nocolon".utf8)) { #expect(e == .malformed(line: 1)) }
    }

    @Test func loginPhase() throws {
        let h = try SessionHarness()
        h.server.authFile = AuthFile(path: "users", entries: [.init(user: Array("alice".utf8), password: Array("s3".utf8))])
        let s = h.session()
        #expect(!s.authenticated)
        #expect(s.roundTrip("get a\r\n") == "CLIENT_ERROR unauthenticated\r\n")
        #expect(s.roundTrip("set k 0 0 8\r\nalice s4\r\n") == "CLIENT_ERROR authentication failure\r\n")
        #expect(s.receive("set k 0 0 8\r\nalice") == .needMore)
        #expect(s.roundTrip(" s3\r\nget a\r\n") == "STORED\r\nEND\r\n")
        #expect(s.authenticated)
        var totals = StatsTotals()
        s.stats.accumulate(into: &totals.v)
        #expect(totals[.authCmds] == 2 && totals[.authErrors] == 1)
        // Replies of one batch replace each other until memcached would have transmitted.
        let t = h.session()
        #expect(t.roundTrip("get a\r\nversion\r\nquit\r\n") == "CLIENT_ERROR unauthenticated\r\n")
        #expect(t.roundTrip("set k 0 0 4000\r\n") == "CLIENT_ERROR auth token too long\r\n")
        #expect(t.closeAfterWrite)
    }
}
