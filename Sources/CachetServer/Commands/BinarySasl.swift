// `-S`: SASL authentication of binary-protocol clients with Cyrus SASL, as memcached 1.6.18 does it
// (its configuration directory from SASL_CONF_PATH, application name "memcached", the host name as
// the server's name): list mechanisms, auth (start) and step, "Authenticated" on success, an auth
// continue packet carrying the server's challenge, "Auth failure." otherwise (counted in auth_cmds and
// auth_errors). Until a client has authenticated, anything but the SASL opcodes and version is answered
// "Auth failure." and the connection closed.
import CacheStore
import CSasl
import Glibc
import MemcacheProtocol

enum SaslServer {
    /// memcached's init_sasl: called once at start-up with -S. Nil, or the failure text (exit 1).
    static func initialize(verbose: Bool) -> String? {
        if cachet_sasl_server_init(verbose ? 1 : 0) != SASL_OK { return "Error initializing sasl.\n" }
        if verbose { writeStderr("Initialized SASL.\n") }
        return nil
    }

    /// The server name SASL realms default to (memcached passes its host name).
    static let hostname: String = {
        var buf = [CChar](repeating: 0, count: 256)
        return gethostname(&buf, 255) == 0 ? String(cString: buf) : ""
    }()
}

/// One client's SASL exchange. Invariant: used by its session's thread only; the connection object is
/// disposed of with it.
final class SaslSession {
    private(set) var conn: OpaquePointer?
    var started = false
    var authenticated = false

    init() {
        let name = SaslServer.hostname
        let rc = name.isEmpty
            ? sasl_server_new("memcached", nil, nil, nil, nil, nil, 0, &conn)
            : sasl_server_new("memcached", name, nil, nil, nil, nil, 0, &conn)
        if rc != SASL_OK { conn = nil }
    }

    deinit {
        if conn != nil { sasl_dispose(&conn) }
    }
}

extension CommandSession {
    /// The longest mechanism name memcached accepts.
    static let saslMechanismMax = 32

    /// Whether an unauthenticated client may send this opcode (only with -S).
    func saslAllows(_ opcode: UInt8) -> Bool {
        switch opcode {
        case BinaryOpcode.saslListMechs, BinaryOpcode.saslAuth, BinaryOpcode.saslStep, BinaryOpcode.version:
            return true
        default:
            return sasl?.authenticated ?? false
        }
    }

    /// memcached's init_sasl_conn: the exchange state, made on first use; every list or auth starts
    /// the client over as unauthenticated.
    private func restartSasl() -> SaslSession {
        let s = sasl ?? SaslSession()
        sasl = s
        s.authenticated = false
        return s
    }

    func binarySaslList(_ h: BinaryRequestHeader) {
        let s = restartSasl()
        var result: UnsafePointer<CChar>? = nil
        var length: UInt32 = 0
        guard let conn = s.conn, sasl_listmech(conn, nil, "", " ", "", &result, &length, nil) == SASL_OK,
              let list = result else {
            binaryError(h, .authError)
            return
        }
        binaryHeader(h, body: Int(length))
        wbuf.append(UnsafeRawBufferPointer(start: list, count: Int(length)))
    }

    /// auth / step: the key is the mechanism, the value the client's data (read whole first).
    func binarySaslAuth(_ h: BinaryRequestHeader, _ buf: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) -> Step {
        let fixed = h.fixedLength
        let vlen = h.bodyLength - h.keyLength
        if key.count > CommandSession.saslMechanismMax {
            binaryError(h, .invalidArguments, swallow: vlen)
            rbuf.consume(fixed)
            return .done
        }
        // memcached reads the data into an item: what no item can hold is out of memory.
        if CacheStore.itemTotalSize(keyLength: key.count, valueLength: vlen, casEnabled: store.config.casEnabled)
            > store.config.itemSizeMax {
            binaryError(h, .outOfMemory, swallow: vlen)
            rbuf.consume(fixed)
            return .done
        }
        guard dataBlockBuffered(end: fixed + vlen) else { return .needMore }
        let s = restartSasl()
        let mechanism = String(decoding: key, as: UTF8.self)
        let data = vlen == 0 ? nil : (buf.baseAddress! + fixed).assumingMemoryBound(to: CChar.self)
        var out: UnsafePointer<CChar>? = nil
        var outLength: UInt32 = 0
        var result: Int32 = -1
        if let conn = s.conn {
            if h.opcode == BinaryOpcode.saslAuth {
                result = sasl_server_start(conn, mechanism, data, UInt32(vlen), &out, &outLength)
                s.started = result == SASL_OK || result == SASL_CONTINUE
            } else if s.started {
                result = sasl_server_step(conn, data, UInt32(vlen), &out, &outLength)
            }
        }
        switch result {
        case SASL_OK:
            s.authenticated = true
            let text: StaticString = "Authenticated"
            binaryHeader(h, body: text.utf8CodeUnitCount)
            wbuf.append(text)
            stats.add(.authCmds)
        case SASL_CONTINUE:
            binaryHeader(h, .authContinue, body: Int(outLength))
            if let out, outLength > 0 { wbuf.append(UnsafeRawBufferPointer(start: out, count: Int(outLength))) }
            output.transmitPoint = true
        default:
            binaryError(h, .authError)
            stats.add(.authCmds)
            stats.add(.authErrors)
        }
        rbuf.consume(fixed + vlen)
        return .done
    }
}
