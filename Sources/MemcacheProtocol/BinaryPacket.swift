// memcached's binary protocol framing: the 24-byte request header (magic 0x80), the response header
// (magic 0x81) and which lengths each opcode accepts. Pure: it reads and writes bytes and knows no
// store. All multi-byte fields are big-endian; the opaque is echoed as it came.

/// The opcodes memcached 1.6.18 knows. The quiet forms (…Q) answer only errors (and get hits).
public enum BinaryOpcode {
    public static let get: UInt8 = 0x00
    public static let set: UInt8 = 0x01
    public static let add: UInt8 = 0x02
    public static let replace: UInt8 = 0x03
    public static let delete: UInt8 = 0x04
    public static let increment: UInt8 = 0x05
    public static let decrement: UInt8 = 0x06
    public static let quit: UInt8 = 0x07
    public static let flush: UInt8 = 0x08
    public static let getq: UInt8 = 0x09
    public static let noop: UInt8 = 0x0a
    public static let version: UInt8 = 0x0b
    public static let getk: UInt8 = 0x0c
    public static let getkq: UInt8 = 0x0d
    public static let append: UInt8 = 0x0e
    public static let prepend: UInt8 = 0x0f
    public static let stat: UInt8 = 0x10
    public static let setq: UInt8 = 0x11
    public static let addq: UInt8 = 0x12
    public static let replaceq: UInt8 = 0x13
    public static let deleteq: UInt8 = 0x14
    public static let incrementq: UInt8 = 0x15
    public static let decrementq: UInt8 = 0x16
    public static let quitq: UInt8 = 0x17
    public static let flushq: UInt8 = 0x18
    public static let appendq: UInt8 = 0x19
    public static let prependq: UInt8 = 0x1a
    /// Defined by the protocol, but memcached 1.6.18 answers it as an unknown command.
    public static let verbosity: UInt8 = 0x1b
    public static let touch: UInt8 = 0x1c
    public static let gat: UInt8 = 0x1d
    public static let gatq: UInt8 = 0x1e
    public static let saslListMechs: UInt8 = 0x20
    public static let saslAuth: UInt8 = 0x21
    public static let saslStep: UInt8 = 0x22
    public static let gatk: UInt8 = 0x23
    public static let gatkq: UInt8 = 0x24
}

/// Response status codes, with the body text memcached sends for each error.
public enum BinaryStatus: UInt16, Sendable {
    case success = 0x00
    case keyNotFound = 0x01
    case keyExists = 0x02
    case tooLarge = 0x03
    case invalidArguments = 0x04
    case notStored = 0x05
    case deltaBadValue = 0x06
    case authError = 0x20
    case authContinue = 0x21
    case unknownCommand = 0x81
    case outOfMemory = 0x82

    public var message: StaticString {
        switch self {
        case .success, .authContinue: return ""
        case .keyNotFound: return "Not found"
        case .keyExists: return "Data exists for key."
        case .tooLarge: return "Too large."
        case .invalidArguments: return "Invalid arguments"
        case .notStored: return "Not stored."
        case .deltaBadValue: return "Non-numeric server-side value for incr or decr"
        case .authError: return "Auth failure."
        case .unknownCommand: return "Unknown command"
        case .outOfMemory: return "Out of memory"
        }
    }
}

public struct BinaryRequestHeader: Sendable, Equatable {
    public static let size = 24
    public static let requestMagic: UInt8 = 0x80
    public static let responseMagic: UInt8 = 0x81

    public var magic: UInt8
    public var opcode: UInt8
    public var keyLength: Int
    public var extrasLength: Int
    public var dataType: UInt8
    public var vbucket: UInt16
    /// Extras + key + value, as the client declared it (up to 2^32-1).
    public var bodyLength: Int
    public var opaque: UInt32
    public var cas: UInt64

    public init(magic: UInt8 = requestMagic, opcode: UInt8, keyLength: Int = 0, extrasLength: Int = 0,
                dataType: UInt8 = 0, vbucket: UInt16 = 0, bodyLength: Int = 0, opaque: UInt32 = 0, cas: UInt64 = 0) {
        self.magic = magic; self.opcode = opcode; self.keyLength = keyLength; self.extrasLength = extrasLength
        self.dataType = dataType; self.vbucket = vbucket; self.bodyLength = bodyLength
        self.opaque = opaque; self.cas = cas
    }

    /// The header at the start of `buf`; nil when fewer than 24 bytes are there.
    public init?(_ buf: UnsafeRawBufferPointer) {
        guard buf.count >= BinaryRequestHeader.size else { return nil }
        magic = buf[0]
        opcode = buf[1]
        keyLength = Int(Binary.u16(buf, 2))
        extrasLength = Int(buf[4])
        dataType = buf[5]
        vbucket = Binary.u16(buf, 6)
        bodyLength = Int(Binary.u32(buf, 8))
        opaque = Binary.u32(buf, 12)
        cas = Binary.u64(buf, 16)
    }

    /// Header, extras and key: what memcached reads before it looks at the command.
    public var fixedLength: Int { BinaryRequestHeader.size + extrasLength + keyLength }

    /// The lengths disagree (a key or extras longer than the body): memcached answers "Unknown command"
    /// and closes.
    public var lengthsDisagree: Bool { keyLength > bodyLength || keyLength + extrasLength > bodyLength }

    /// The request as bytes (tests, fuzz seeds, clients).
    public func encoded() -> [UInt8] {
        var b: [UInt8] = [magic, opcode]
        Binary.put16(&b, UInt16(truncatingIfNeeded: keyLength))
        b.append(UInt8(truncatingIfNeeded: extrasLength))
        b.append(dataType)
        Binary.put16(&b, vbucket)
        Binary.put32(&b, UInt32(truncatingIfNeeded: bodyLength))
        Binary.put32(&b, opaque)
        Binary.put64(&b, cas)
        return b
    }
}

/// What memcached does with a request whose header it has read, before running it.
public enum BinaryValidation: Equatable, Sendable {
    /// Lengths fit the opcode: run it.
    case run
    /// A known opcode with lengths it does not accept: "Invalid arguments", then close.
    case protocolError
    /// An opcode memcached does not handle: "Unknown command", and the next `bodyLength` bytes after
    /// the key are discarded (memcached counts them from the end of the key, not of the header).
    case unknownCommand
}

extension BinaryRequestHeader {
    /// memcached's per-opcode length checks (dispatch_bin_command); lengths that disagree and keys over
    /// 250 bytes are refused before this.
    public var validation: BinaryValidation {
        let ext = extrasLength, key = keyLength, body = bodyLength
        func check(_ ok: Bool) -> BinaryValidation { ok ? .run : .protocolError }
        switch opcode {
        case BinaryOpcode.version, BinaryOpcode.noop, BinaryOpcode.quit, BinaryOpcode.quitq,
             BinaryOpcode.saslListMechs:
            return check(ext == 0 && key == 0 && body == 0)
        case BinaryOpcode.flush, BinaryOpcode.flushq:
            return check(key == 0 && body == ext && (ext == 0 || ext == 4))
        case BinaryOpcode.set, BinaryOpcode.setq, BinaryOpcode.add, BinaryOpcode.addq,
             BinaryOpcode.replace, BinaryOpcode.replaceq:
            return check(ext == 8 && key != 0 && body >= key + 8)
        case BinaryOpcode.get, BinaryOpcode.getq, BinaryOpcode.getk, BinaryOpcode.getkq,
             BinaryOpcode.delete, BinaryOpcode.deleteq:
            return check(ext == 0 && key > 0 && body == key)
        case BinaryOpcode.increment, BinaryOpcode.incrementq, BinaryOpcode.decrement, BinaryOpcode.decrementq:
            return check(key > 0 && ext == 20 && body == key + ext)
        case BinaryOpcode.append, BinaryOpcode.appendq, BinaryOpcode.prepend, BinaryOpcode.prependq:
            return check(key > 0 && ext == 0)
        case BinaryOpcode.stat:
            return check(ext == 0)
        case BinaryOpcode.saslAuth, BinaryOpcode.saslStep:
            return check(ext == 0 && key != 0)
        case BinaryOpcode.touch, BinaryOpcode.gat, BinaryOpcode.gatq, BinaryOpcode.gatk, BinaryOpcode.gatkq:
            return check(ext == 4 && key != 0)
        default:
            return .unknownCommand
        }
    }

    /// The quiet forms: success replies are left out (errors and get hits are still sent).
    public var isQuiet: Bool {
        switch opcode {
        case BinaryOpcode.getq, BinaryOpcode.getkq, BinaryOpcode.setq, BinaryOpcode.addq, BinaryOpcode.replaceq,
             BinaryOpcode.deleteq, BinaryOpcode.incrementq, BinaryOpcode.decrementq, BinaryOpcode.quitq,
             BinaryOpcode.flushq, BinaryOpcode.appendq, BinaryOpcode.prependq, BinaryOpcode.gatq,
             BinaryOpcode.gatkq:
            return true
        default:
            return false
        }
    }
}

/// The response header. The opcode and opaque are the request's (the quiet opcode, not its loud form).
public struct BinaryResponseHeader: Sendable, Equatable {
    public var opcode: UInt8
    public var status: BinaryStatus
    public var keyLength: Int
    public var extrasLength: Int
    public var bodyLength: Int
    public var opaque: UInt32
    public var cas: UInt64

    public init(opcode: UInt8, status: BinaryStatus = .success, keyLength: Int = 0, extrasLength: Int = 0,
                bodyLength: Int = 0, opaque: UInt32, cas: UInt64 = 0) {
        self.opcode = opcode; self.status = status; self.keyLength = keyLength; self.extrasLength = extrasLength
        self.bodyLength = bodyLength; self.opaque = opaque; self.cas = cas
    }

    public func write(to out: ByteBuffer) {
        out.reserve(BinaryRequestHeader.size)
        let p = out.writePointer
        p.storeBytes(of: BinaryRequestHeader.responseMagic, as: UInt8.self)
        p.storeBytes(of: opcode, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: UInt16(truncatingIfNeeded: keyLength).bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: UInt8(truncatingIfNeeded: extrasLength), toByteOffset: 4, as: UInt8.self)
        p.storeBytes(of: 0, toByteOffset: 5, as: UInt8.self)   // datatype: raw bytes
        p.storeBytes(of: status.rawValue.bigEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: bodyLength).bigEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: opaque.bigEndian, toByteOffset: 12, as: UInt32.self)
        p.storeBytes(of: cas.bigEndian, toByteOffset: 16, as: UInt64.self)
        out.commit(BinaryRequestHeader.size)
    }

    /// The header at the start of `buf` (tests and clients); nil when short or not a response.
    public init?(parsing buf: UnsafeRawBufferPointer) {
        guard buf.count >= BinaryRequestHeader.size, buf[0] == BinaryRequestHeader.responseMagic,
              let status = BinaryStatus(rawValue: Binary.u16(buf, 6)) else { return nil }
        self.init(opcode: buf[1], status: status, keyLength: Int(Binary.u16(buf, 2)), extrasLength: Int(buf[4]),
                  bodyLength: Int(Binary.u32(buf, 8)), opaque: Binary.u32(buf, 12), cas: Binary.u64(buf, 16))
    }
}

/// Big-endian field access.
public enum Binary {
    @inline(__always) public static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(b[at]) << 8 | UInt16(b[at + 1])
    }

    @inline(__always) public static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(u16(b, at)) << 16 | UInt32(u16(b, at + 2))
    }

    @inline(__always) public static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(u32(b, at)) << 32 | UInt64(u32(b, at + 4))
    }

    public static func put16(_ b: inout [UInt8], _ v: UInt16) { b.append(UInt8(v >> 8)); b.append(UInt8(v & 0xff)) }
    public static func put32(_ b: inout [UInt8], _ v: UInt32) { put16(&b, UInt16(v >> 16)); put16(&b, UInt16(v & 0xffff)) }
    public static func put64(_ b: inout [UInt8], _ v: UInt64) { put32(&b, UInt32(v >> 32)); put32(&b, UInt32(v & 0xffffffff)) }

    /// Appends `v` big-endian.
    @inline(__always) public static func append32(_ out: ByteBuffer, _ v: UInt32) {
        out.reserve(4)
        out.writePointer.storeBytes(of: v.bigEndian, as: UInt32.self)
        out.commit(4)
    }

    @inline(__always) public static func append64(_ out: ByteBuffer, _ v: UInt64) {
        out.reserve(8)
        out.writePointer.storeBytes(of: v.bigEndian, as: UInt64.self)
        out.commit(8)
    }
}
