// memcached's uriencode (util.c): how keys appear in `lru_crawler metadump` and `watch` lines — RFC 3986
// unreserved bytes (A-Z a-z 0-9 - . _ ~) as they are, every other byte as %XX in upper-case hex.

public enum URIEncode {
    @inline(__always) static func unreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
             UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Appends the encoded key to `out`.
    public static func append(_ key: UnsafeRawBufferPointer, to out: ByteBuffer) {
        let hex: StaticString = "0123456789ABCDEF"
        for b in key {
            if unreserved(b) {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex.utf8Start[Int(b >> 4)])
                out.append(hex.utf8Start[Int(b & 15)])
            }
        }
    }

    /// The encoded key as a String (for log lines, built only while someone watches).
    public static func string(_ key: UnsafeRawBufferPointer) -> String {
        var s = ""
        s.reserveCapacity(key.count)
        let hex = Array("0123456789ABCDEF".unicodeScalars)
        for b in key {
            if unreserved(b) {
                s.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                s.unicodeScalars.append("%")
                s.unicodeScalars.append(hex[Int(b >> 4)])
                s.unicodeScalars.append(hex[Int(b & 15)])
            }
        }
        return s
    }
}
