// The binary packet framing: header fields in network order, the lengths each opcode accepts (memcached
// 1.6.18's dispatch_bin_command), and response headers byte for byte.
import MemcacheProtocol
import Testing

private func header(_ bytes: [UInt8]) -> BinaryRequestHeader? {
    bytes.withUnsafeBytes { BinaryRequestHeader($0) }
}

private func request(_ op: UInt8, key: Int = 0, extras: Int = 0, body: Int? = nil) -> BinaryRequestHeader {
    BinaryRequestHeader(opcode: op, keyLength: key, extrasLength: extras, bodyLength: body ?? key + extras)
}

@Suite struct BinaryPacketTests {
    @Test func parsesEveryFieldBigEndian() throws {
        let bytes: [UInt8] = [0x80, 0x01, 0x01, 0x02, 0x08, 0x00, 0xab, 0xcd, 0xff, 0xff, 0xff, 0xff,
                              0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0x12, 0x34] + [UInt8](repeating: 0, count: 3)
        let h = try #require(header(bytes))
        #expect(h.magic == 0x80 && h.opcode == BinaryOpcode.set)
        #expect(h.keyLength == 258 && h.extrasLength == 8 && h.vbucket == 0xabcd)
        #expect(h.bodyLength == 0xffff_ffff, "a 2^32-1 body length is kept as it is")
        #expect(h.opaque == 0xdead_beef && h.cas == 0x1234)
        #expect(h.fixedLength == 24 + 8 + 258)
        #expect(h.encoded() == Array(bytes[0..<24]))
    }

    @Test func needsAWholeHeader() {
        #expect(header([UInt8](repeating: 0x80, count: 23)) == nil)
        #expect(header([UInt8](repeating: 0x80, count: 24)) != nil)
    }

    @Test func lengthsThatDisagree() {
        #expect(request(BinaryOpcode.get, key: 3, body: 2).lengthsDisagree)
        #expect(request(BinaryOpcode.set, key: 3, extras: 8, body: 10).lengthsDisagree)
        #expect(!request(BinaryOpcode.set, key: 3, extras: 8, body: 11).lengthsDisagree)
    }

    @Test func lengthsEachOpcodeAccepts() {
        #expect(request(BinaryOpcode.get, key: 1).validation == .run)
        #expect(request(BinaryOpcode.get).validation == .protocolError)                 // no key
        #expect(request(BinaryOpcode.getq, key: 1, extras: 4).validation == .protocolError)
        #expect(request(BinaryOpcode.set, key: 1, extras: 8, body: 100).validation == .run)
        #expect(request(BinaryOpcode.setq, key: 1, extras: 4, body: 100).validation == .protocolError)
        #expect(request(BinaryOpcode.increment, key: 1, extras: 20).validation == .run)
        #expect(request(BinaryOpcode.decrementq, key: 1, extras: 20, body: 22).validation == .protocolError)
        #expect(request(BinaryOpcode.append, key: 1, body: 9).validation == .run)
        #expect(request(BinaryOpcode.flush, extras: 4).validation == .run)
        #expect(request(BinaryOpcode.flushq, extras: 2).validation == .protocolError)
        #expect(request(BinaryOpcode.noop, body: 1).validation == .protocolError)
        #expect(request(BinaryOpcode.stat, key: 5, body: 9).validation == .run)
        #expect(request(BinaryOpcode.gatkq, key: 1, extras: 4).validation == .run)
        #expect(request(BinaryOpcode.touch, key: 1).validation == .protocolError)
        #expect(request(BinaryOpcode.saslAuth, key: 5, body: 20).validation == .run)
        #expect(request(BinaryOpcode.verbosity, extras: 4).validation == .unknownCommand)
        #expect(request(0x50).validation == .unknownCommand)
    }

    @Test func quietForms() {
        let quiet = [BinaryOpcode.getq, BinaryOpcode.getkq, BinaryOpcode.setq, BinaryOpcode.addq, BinaryOpcode.replaceq,
                     BinaryOpcode.deleteq, BinaryOpcode.incrementq, BinaryOpcode.decrementq, BinaryOpcode.quitq,
                     BinaryOpcode.flushq, BinaryOpcode.appendq, BinaryOpcode.prependq, BinaryOpcode.gatq,
                     BinaryOpcode.gatkq]
        for op in UInt8(0)...0x30 {
            #expect(request(op).isQuiet == quiet.contains(op), "opcode \(op)")
        }
    }

    @Test func responseHeaderBytes() throws {
        let out = ByteBuffer(capacity: 64)
        BinaryResponseHeader(opcode: BinaryOpcode.getk, status: .keyNotFound, keyLength: 3, extrasLength: 4,
                             bodyLength: 0x0102_0304, opaque: 0xdead_beef, cas: 0x0a0b).write(to: out)
        let bytes = [UInt8](out.readable)
        #expect(bytes == [0x81, 0x0c, 0x00, 0x03, 0x04, 0x00, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04,
                          0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0x0a, 0x0b])
        let back = try #require(bytes.withUnsafeBytes { BinaryResponseHeader(parsing: $0) })
        #expect(back.status == .keyNotFound && back.bodyLength == 0x0102_0304 && back.cas == 0x0a0b)
    }

    @Test func errorTextsAreMemcachedsOwn() {
        #expect(BinaryStatus.keyNotFound.message.description == "Not found")
        #expect(BinaryStatus.tooLarge.message.description == "Too large.")
        #expect(BinaryStatus.unknownCommand.message.description == "Unknown command")
        #expect(BinaryStatus.authError.message.description == "Auth failure.")
    }
}
