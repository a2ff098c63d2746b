// Session-ticket keys: read from `-o ssl_ticket_key_file` (shared by every instance behind one name, so
// a client's ticket resumes on any of them), or generated at start and rotated daily.
//
// The file holds one or more 80-byte keys back to back, nginx's layout: a 16-byte name, a 32-byte HMAC
// secret, a 32-byte AES key (nginx's 48-byte AES-128 keys are refused with a hint). The first key encrypts new tickets; every key in the file decrypts, so keys
// rotate by prepending a new one (and dropping the oldest once its tickets have expired). The file is
// read when a context is built: at start, `refresh_certs`, SIGHUP — a file that is missing, empty, not a
// whole number of keys (e.g. caught mid-write) fails the build, so the serving context keeps its keys.
//
// Without a file every context carries the keys of the one it replaces, and the store puts a fresh key
// first once a day, keeping the previous one for another day (ticket_keys.c does the crypto).
import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

public enum TLSTicketKeys {
    public static let keyBytes = Int(CACHET_TICKET_KEY_BYTES)
    /// nginx's other key size (16-byte HMAC secret, AES-128). Not read: one size per file keeps a file's
    /// meaning unambiguous (240 bytes would be 3 keys of one size or 5 of the other), so such a file gets
    /// an error that says what to do instead of being mistaken for a torn file.
    static let shortKeyBytes = 48
    /// More keys than anyone rotates through; a bigger file is a mistake (or not a key file).
    public static let maxKeys = 64
    /// Generated keys: a new one first every `rotationSeconds`; the one before it still decrypts.
    public static let rotationSeconds: Int64 = 86400
    static let generatedKeysKept = 2

    /// Reads and checks a key file; throws the startup / `refresh_certs` error.
    static func read(_ path: String) throws(TLSContextError) -> [UInt8] {
        func fail(_ reason: String) -> TLSContextError {
            TLSContextError(kind: .ticketKeys, message: memcachedTruncated("Error loading the ticket key file: \(path) : \(reason)"))
        }
        guard let f = fopen(path, "rb") else { throw fail(String(cString: strerror(errno))) }
        defer { fclose(f) }
        let limit = maxKeys * keyBytes
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        let n = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if ferror(f) != 0 { throw fail(String(cString: strerror(errno))) }
        defer { wipe(&bytes) }
        if n == 0 { throw fail("the file is empty") }
        if n > limit { throw fail("more than \(maxKeys) keys") }
        if n % keyBytes != 0 && n % shortKeyBytes == 0 {
            throw fail("\(n) bytes: \(shortKeyBytes)-byte keys (AES-128) are not read, make \(keyBytes)-byte ones (openssl rand \(keyBytes))")
        }
        if n % keyBytes != 0 { throw fail("\(n) bytes is not a whole number of \(keyBytes)-byte keys") }
        return Array(bytes[0..<n])
    }

    /// Gives a freshly built context its keys: the file's, else the previous context's, else a new one.
    static func install(on ctx: OpaquePointer, file: String?, previous: TLSContext?) throws(TLSContextError) {
        var keys: [UInt8]
        if let file {
            keys = try read(file)
        } else if let previous, case let carried = copy(from: previous.sslContext), !carried.isEmpty {
            keys = carried
        } else {
            keys = [UInt8](repeating: 0, count: keyBytes)
            guard keys.withUnsafeMutableBufferPointer({ cachet_random_bytes($0.baseAddress, Int32(keyBytes)) }) == 1 else {
                throw TLSContextError(kind: .ticketKeys, message: "Error generating a session ticket key")
            }
        }
        defer { wipe(&keys) }
        let ok = keys.withUnsafeBufferPointer { cachet_ticket_keys_install(ctx, $0.baseAddress, $0.count / keyBytes) }
        if ok != 1 {
            OpenSSLErrorQueue.clear()
            throw TLSContextError(kind: .ticketKeys, message: "Error installing the session ticket keys")
        }
    }

    /// The context's keys, encrypting key first.
    static func copy(from ctx: OpaquePointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: maxKeys * keyBytes)
        let n = out.withUnsafeMutableBufferPointer { cachet_ticket_keys_copy(ctx, $0.baseAddress, maxKeys) }
        let keys = Array(out[0..<(n * keyBytes)])
        wipe(&out)
        return keys
    }

    /// Names (first 16 bytes) of the context's keys, for tests and diagnostics.
    public static func names(of context: TLSContext) -> [[UInt8]] {
        var keys = copy(from: context.sslContext)
        defer { wipe(&keys) }
        return stride(from: 0, to: keys.count, by: keyBytes).map { Array(keys[$0..<($0 + 16)]) }
    }

    /// Generated keys only: a fresh key first, the previous one kept for decrypting.
    static func rotate(_ context: TLSContext) -> Bool {
        cachet_ticket_keys_rotate(context.sslContext, generatedKeysKept) == 1
    }

    /// Key bytes are not left behind in freed memory.
    static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }
}
