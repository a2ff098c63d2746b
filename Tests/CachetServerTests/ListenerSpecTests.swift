import Testing
@testable import CachetServer

@Suite struct ListenerSpecTests {
    func specs(_ argv: [String]) -> Result<[ListenerSpec], ListenerError>? {
        guard case .run(let s) = SettingsParser.parse(argv) else { return nil }
        return ListenerSpec.parseList(s)
    }

    @Test func entries() throws {
        let r = try #require(specs(["-Z", "-p", "11300", "-l", "127.0.0.1,notls:127.0.0.1:21002;btls:*:3,mtls:[::1]:4,[::1],::1,host"]))
        #expect(try r.get() == [
            ListenerSpec(host: "127.0.0.1", port: 11300, tls: .inherit),
            ListenerSpec(host: "127.0.0.1", port: 21002, tls: .plaintext),
            ListenerSpec(host: nil, port: 3, tls: .basic),
            ListenerSpec(host: "::1", port: 4, tls: .mutual),
            ListenerSpec(host: "::1", port: 11300, tls: .inherit),
            ListenerSpec(host: "::1", port: 11300, tls: .inherit),
            ListenerSpec(host: "host", port: 11300, tls: .inherit),
        ])
    }

    @Test func noTCPListeners() throws {
        #expect(try specs(["-p", "0", "-l", "notls:x"])?.get() == [])
        #expect(try specs(["-s", "/tmp/sock", "-l", "x"])?.get() == [])
        #expect(try specs([])?.get() == [ListenerSpec(host: nil, port: 11211, tls: .inherit)])
    }

    @Test(arguments: [
        ("notls:127.0.0.1:21001", "'notls' option is valid only when SSL is enabled\nfailed to listen on one of interface(s) notls:127.0.0.1:21001: Success\n"),
        ("btls:127.0.0.1:21001", "'btls' option is valid only when SSL is enabled\nfailed to listen on one of interface(s) btls:127.0.0.1:21001: Success\n"),
        ("mtls:127.0.0.1:21001", "'otls' option is valid only when SSL is enabled\nfailed to listen on one of interface(s) mtls:127.0.0.1:21001: Success\n"),
        ("x:y", "Invalid port number: \"y\"\nfailed to listen on one of interface(s) x:y: Success\n"),
        ("[::1", "Invalid IPV6 address: \"[::1\"failed to listen on one of interface(s) [::1: Success\n"),
    ])
    func prefixErrors(_ c: (String, String)) throws {
        guard case .run(let s) = SettingsParser.parse(["-l", c.0]) else { Issue.record("parse"); return }
        let o = try #require(ListenerSpec.validate(s))
        #expect(outcomeTriple(o)?.0 == 71)
        #expect(outcomeTriple(o)?.2 == c.1)
    }
}
