// Fuzz target: the binary protocol's packet framing. The input is read as a stream of request headers
// (each followed by the extras, key and value it declares, as far as the input goes): parsing must
// never trap, re-encoding a parsed header must give back its 24 bytes, the lengths must add up, and a
// response header written for it must parse back to the same fields. (Whole binary streams through a
// real connection are FuzzRequest's: an input starting with 0x80 is a binary client there.)
import Glibc
import MemcacheProtocol

@inline(__always)
private func check(_ ok: Bool, _ what: StaticString) {
    if !ok {
        "invariant broken: \(what)\n".withCString { _ = write(2, $0, strlen($0)) }
        abort()
    }
}

nonisolated(unsafe) private let out = ByteBuffer(capacity: 64)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBinaryPacket(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let all = UnsafeRawBufferPointer(start: data, count: size)
    var at = 0
    while at < size {
        let rest = UnsafeRawBufferPointer(rebasing: all[at...])
        guard let h = BinaryRequestHeader(rest) else {
            check(rest.count < BinaryRequestHeader.size, "a whole header did not parse")
            break
        }
        check(h.encoded().elementsEqual(rest.prefix(BinaryRequestHeader.size)), "header re-encoding differs")
        check(h.fixedLength == 24 + h.extrasLength + h.keyLength, "fixed length")
        check(h.keyLength <= 0xffff && h.extrasLength <= 0xff && h.bodyLength <= 0xffff_ffff, "field ranges")
        let v = h.validation
        if v == .run && !h.lengthsDisagree {
            check(h.bodyLength >= h.keyLength + h.extrasLength, "a runnable request's body holds extras and key")
        }
        if h.isQuiet { check(v != .unknownCommand, "every quiet form is a known opcode") }
        let status = BinaryStatus(rawValue: UInt16(h.vbucket & 0xff)) ?? .success
        out.reset()
        BinaryResponseHeader(opcode: h.opcode, status: status, keyLength: h.keyLength, extrasLength: h.extrasLength,
                             bodyLength: h.bodyLength, opaque: h.opaque, cas: h.cas).write(to: out)
        check(out.count == BinaryRequestHeader.size, "response header size")
        let back = BinaryResponseHeader(parsing: out.readable)
        check(back?.opcode == h.opcode && back?.status == status && back?.keyLength == h.keyLength
              && back?.extrasLength == h.extrasLength && back?.bodyLength == h.bodyLength
              && back?.opaque == h.opaque && back?.cas == h.cas, "response header round trip")
        // The next packet starts after this one's body (or the input ends).
        let next = at + BinaryRequestHeader.size + h.bodyLength
        if next <= at { break }
        at = next
    }
    return 0
}
