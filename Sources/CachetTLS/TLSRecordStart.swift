// Telling a TLS client from a plaintext one by the first byte it sends, before OpenSSL sees anything.
//
// Every TLS record starts with its content type: 20 change_cipher_spec, 21 alert, 22 handshake,
// 23 application_data, 24 heartbeat. A client's first record is a handshake (a ClientHello, 22), and
// the old SSLv2-compatible ClientHello starts with a two-byte length whose first byte has its top bit
// set. A memcached command or an HTTP request starts with a printable ASCII letter, which is none of
// these, so one byte decides without guessing — and nothing the client sent is ever parsed as a command.
public enum TLSRecordStart {
    /// True when `byte` can be the first byte of something OpenSSL should read (a TLS record or an
    /// SSLv2-style hello, which OpenSSL then accepts or rejects with an alert); false for plaintext.
    public static func canBegin(_ byte: UInt8) -> Bool {
        (20...24).contains(byte) || byte & 0x80 != 0
    }

    /// The one line a plaintext client gets before the server closes the connection: a memcached
    /// client shows SERVER_ERROR text to its user, which tells them what to change.
    public static let plaintextReply = "SERVER_ERROR TLS required: this port only accepts TLS connections\r\n"
}
