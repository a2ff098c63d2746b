// Binary packets through a CommandSession without a socket: negotiation on the first byte, replies with
// CAS and opaque, quiet batching, the swallowed body of an unknown opcode, closes. (test_binary.py
// byte-compares the same behaviour with memcached 1.6.18 over sockets.)
import MemcacheProtocol
import Testing
@testable import CachetServer

private func packet(_ op: UInt8, key: String = "", extras: [UInt8] = [], value: String = "", opaque: UInt32 = 0,
                    cas: UInt64 = 0) -> [UInt8] {
    let k = Array(key.utf8), v = Array(value.utf8)
    return BinaryRequestHeader(opcode: op, keyLength: k.count, extrasLength: extras.count,
                               bodyLength: extras.count + k.count + v.count, opaque: opaque, cas: cas).encoded()
        + extras + k + v
}

private let setExtras: [UInt8] = [0, 0, 0, 7, 0, 0, 0, 0]   // flags 7, no expiry

private struct Reply: Equatable {
    let opcode: UInt8, status: BinaryStatus, opaque: UInt32, cas: UInt64
    let extras: [UInt8], key: String, value: String
}

extension CommandSession {
    @discardableResult
    fileprivate func receive(bytes: [UInt8]) -> Step {
        bytes.withUnsafeBytes { rbuf.append($0) }
        while true {
            let s = step()
            if s != .done || closeAfterWrite { return s }
        }
    }

    fileprivate func replies() -> [Reply] {
        var out: [UInt8] = []
        while true {
            let run = output.nextRun()
            if run.isEmpty { break }
            out.append(contentsOf: run)
            output.consume(run.count)
        }
        output.markTransmitted()
        var list: [Reply] = []
        var i = 0
        while i + 24 <= out.count {
            let h = Array(out[i..<(i + 24)]).withUnsafeBytes { BinaryResponseHeader(parsing: $0) }!
            let body = Array(out[(i + 24)..<(i + 24 + h.bodyLength)])
            list.append(Reply(opcode: h.opcode, status: h.status, opaque: h.opaque, cas: h.cas,
                              extras: Array(body[0..<h.extrasLength]),
                              key: String(decoding: body[h.extrasLength..<(h.extrasLength + h.keyLength)], as: UTF8.self),
                              value: String(decoding: body[(h.extrasLength + h.keyLength)...], as: UTF8.self)))
            i += 24 + h.bodyLength
        }
        return list
    }
}

@Suite struct BinarySessionTests {
    @Test func setThenGetWithCasAndOpaque() throws {
        let s = try SessionHarness().session()
        s.receive(bytes: packet(BinaryOpcode.set, key: "k", extras: setExtras, value: "hello", opaque: 11))
        let stored = s.replies()
        #expect(stored.count == 1 && stored[0].status == .success && stored[0].opaque == 11)
        #expect(stored[0].cas != 0, "a store answers with the new item's CAS")
        #expect(s.wireProtocol == .binary, "-B auto: the first byte 0x80 chose binary")
        s.receive(bytes: packet(BinaryOpcode.getk, key: "k", opaque: 12))
        #expect(s.replies() == [Reply(opcode: BinaryOpcode.getk, status: .success, opaque: 12, cas: stored[0].cas,
                                      extras: [0, 0, 0, 7], key: "k", value: "hello")])
        s.receive(bytes: packet(BinaryOpcode.set, key: "k", extras: setExtras, value: "x", cas: stored[0].cas + 1))
        #expect(s.replies().map { $0.value } == ["Data exists for key."])
    }

    @Test func quietMissesAnswerNothingAndNoopEndsTheBatch() throws {
        let s = try SessionHarness().session()
        s.receive(bytes: packet(BinaryOpcode.getq, key: "none") + packet(BinaryOpcode.setq, key: "a", extras: setExtras,
                                                                         value: "1"))
        #expect(s.replies().isEmpty)
        s.receive(bytes: packet(BinaryOpcode.getkq, key: "a") + packet(BinaryOpcode.addq, key: "a", extras: setExtras)
                  + packet(BinaryOpcode.noop, opaque: 3))
        let r = s.replies()
        #expect(r.map { $0.opcode } == [BinaryOpcode.getkq, BinaryOpcode.addq, BinaryOpcode.noop])
        #expect(r[1].status == .keyExists, "quiet forms still answer their errors")
        #expect(r[2].opaque == 3)
    }

    @Test func incrementCreatesWithTheInitialValue() throws {
        let s = try SessionHarness().session()
        let extras: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 5] + [0, 0, 0, 0, 0, 0, 0, 42] + [0, 0, 0, 0]
        s.receive(bytes: packet(BinaryOpcode.increment, key: "n", extras: extras))
        s.receive(bytes: packet(BinaryOpcode.increment, key: "n", extras: extras))
        let values = s.replies().map { Array($0.value.utf8) }
        #expect(values == [[0, 0, 0, 0, 0, 0, 0, 42], [0, 0, 0, 0, 0, 0, 0, 47]])
        let noCreate: [UInt8] = Array(extras[0..<16]) + [0xff, 0xff, 0xff, 0xff]
        s.receive(bytes: packet(BinaryOpcode.decrement, key: "m", extras: noCreate))
        #expect(s.replies().map { $0.status } == [.keyNotFound])
    }

    @Test func unknownOpcodeSwallowsItsBodyFromTheKeysEnd() throws {
        let s = try SessionHarness().session()
        // body 5 = key "k" + 4 value bytes; memcached discards 5 bytes after the key: the value and one more
        #expect(s.receive(bytes: packet(0x50, key: "k", value: "abcd")) == .discarding)
        #expect(s.holdsOutput, "nothing is written while the body is discarded")
        s.receive(bytes: [0] + packet(BinaryOpcode.version))
        let r = s.replies()
        #expect(r.map { $0.status } == [.unknownCommand, .success])
        #expect(r[0].value == "Unknown command" && r[1].value == memcachedCompatVersion)
    }

    @Test func badPacketsClose() throws {
        let h = try SessionHarness()
        let s = h.session()
        s.receive(bytes: packet(BinaryOpcode.set, key: "a", extras: setExtras, value: "1"))
        // wrong magic: closes at once, the set's reply not written yet is dropped
        #expect(s.receive(bytes: [0x81] + packet(BinaryOpcode.noop).dropFirst()) == .close)
        #expect(s.replies().isEmpty)
        let t = h.session()
        t.receive(bytes: packet(BinaryOpcode.get, key: String(repeating: "k", count: 251)))
        #expect(t.closeAfterWrite)
        #expect(t.replies().map { $0.value } == ["Invalid arguments"])
    }

    @Test func bindingProtocolBinaryRefusesText() throws {
        let s = try SessionHarness(["-B", "binary"]).session()
        #expect(s.receive(bytes: Array("get some_key_long_enough_for_24\r\n".utf8)) == .close)
        let a = try SessionHarness(["-B", "ascii"]).session()
        a.receive(bytes: packet(BinaryOpcode.noop) + Array("\r\n".utf8))
        #expect(a.wireProtocol == .ascii)
    }

    @Test func statSettingsShowsTheBinding() throws {
        let s = try SessionHarness(["-B", "binary"]).session()
        s.receive(bytes: packet(BinaryOpcode.stat, key: "settings"))
        let r = s.replies()
        #expect(r.last?.key == "" && r.last?.value == "", "an empty packet ends the stats")
        #expect(r.first { $0.key == "binding_protocol" }?.value == "binary")
    }
}
