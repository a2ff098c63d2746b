// memcached's base64.c (Jouni Malinen's codec) for meta keys given with the `b` flag. Its decoder is
// lenient in one specific way that is visible on the wire: bytes outside the alphabet are skipped, so
// `a!2s=` decodes like `a2s=`; a count of alphabet bytes that is 0 or not a multiple of 4, or more than
// two `=`, is a failure (0).

public enum Base64 {
    @usableFromInline static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    @inline(__always) static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        case UInt8(ascii: "="): return 0
        default: return nil
        }
    }

    /// Decodes `src` into `out` (which must hold `src.count` bytes); returns the decoded length, 0 on failure.
    public static func decode(_ src: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        var count = 0
        for c in src where value(c) != nil { count += 1 }
        if count == 0 || count % 4 != 0 || count / 4 * 3 > out.count { return 0 }
        var pos = 0
        var block: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        var n = 0
        var pad = 0
        for c in src {
            guard let v = value(c) else { continue }
            if c == UInt8(ascii: "=") { pad += 1 }
            switch n {
            case 0: block.0 = v
            case 1: block.1 = v
            case 2: block.2 = v
            default: block.3 = v
            }
            n += 1
            if n == 4 {
                out[pos] = (block.0 << 2) | (block.1 >> 4)
                out[pos + 1] = (block.1 << 4) | (block.2 >> 2)
                out[pos + 2] = (block.2 << 6) | block.3
                pos += 3
                n = 0
                if pad > 0 {
                    if pad == 1 { pos -= 1 } else if pad == 2 { pos -= 2 } else { return 0 }
                    break
                }
            }
        }
        return pos
    }

    /// Appends the padded base64 encoding of `src` to `out` (memcached base64_encode).
    public static func encode(_ src: UnsafeRawBufferPointer, to out: ByteBuffer) {
        let table = alphabet.utf8Start
        out.reserve((src.count + 2) / 3 * 4)
        var i = 0
        let n = src.count
        while n - i >= 3 {
            out.append(table[Int(src[i] >> 2)])
            out.append(table[Int(((src[i] & 0x03) << 4) | (src[i + 1] >> 4))])
            out.append(table[Int(((src[i + 1] & 0x0f) << 2) | (src[i + 2] >> 6))])
            out.append(table[Int(src[i + 2] & 0x3f)])
            i += 3
        }
        if n - i > 0 {
            out.append(table[Int(src[i] >> 2)])
            if n - i == 1 {
                out.append(table[Int((src[i] & 0x03) << 4)])
                out.append(UInt8(ascii: "="))
            } else {
                out.append(table[Int(((src[i] & 0x03) << 4) | (src[i + 1] >> 4))])
                out.append(table[Int((src[i + 1] & 0x0f) << 2)])
            }
            out.append(UInt8(ascii: "="))
        }
    }
}
