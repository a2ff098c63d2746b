// Every fixed reply string of the text protocol, exactly as memcached 1.6.18 sends it.
public enum Reply {
    public static let stored: StaticString = "STORED\r\n"
    // `-Y` ASCII authentication (a login is a `set`; STORED is its success).
    public static let unauthenticated: StaticString = "CLIENT_ERROR unauthenticated\r\n"
    public static let authenticationFailure: StaticString = "CLIENT_ERROR authentication failure\r\n"
    public static let badAuthenticationTokenFormat: StaticString = "CLIENT_ERROR bad authentication token format\r\n"
    public static let badCommandLineTermination: StaticString = "CLIENT_ERROR bad command line termination\r\n"
    public static let authTokenTooLong: StaticString = "CLIENT_ERROR auth token too long\r\n"
    public static let notStored: StaticString = "NOT_STORED\r\n"
    public static let exists: StaticString = "EXISTS\r\n"
    public static let notFound: StaticString = "NOT_FOUND\r\n"
    public static let deleted: StaticString = "DELETED\r\n"
    public static let touched: StaticString = "TOUCHED\r\n"
    public static let end: StaticString = "END\r\n"
    public static let ok: StaticString = "OK\r\n"
    public static let error: StaticString = "ERROR\r\n"
    public static let reset: StaticString = "RESET\r\n"
    public static let metaNoop: StaticString = "MN\r\n"
    public static let badFormat: StaticString = "CLIENT_ERROR bad command line format\r\n"
    public static let badDataChunk: StaticString = "CLIENT_ERROR bad data chunk\r\n"
    public static let tooLarge: StaticString = "SERVER_ERROR object too large for cache\r\n"
    public static let outOfMemoryStoring: StaticString = "SERVER_ERROR out of memory storing object\r\n"
    public static let outOfMemory: StaticString = "SERVER_ERROR out of memory\r\n"
    public static let invalidDelta: StaticString = "CLIENT_ERROR invalid numeric delta argument\r\n"
    public static let nonNumeric: StaticString = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    public static let invalidExptime: StaticString = "CLIENT_ERROR invalid exptime argument\r\n"
    public static let deleteUsage: StaticString = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    public static let flushNotAllowed: StaticString = "CLIENT_ERROR flush_all not allowed\r\n"
    public static let shutdownNotEnabled: StaticString = "ERROR: shutdown not enabled\r\n"
    public static let invalidShutdownMode: StaticString = "CLIENT_ERROR invalid shutdown mode\r\n"
    public static let memlimitTooSmall: StaticString = "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
    public static let memlimitNotBytes: StaticString = "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"
    public static let memlimitFailed: StaticString = "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n"
    public static let tooManyConnections: StaticString = "ERROR Too many open connections\r\n"
    public static let tlsNotEnabled: StaticString = "Error TLS not enabled\r\n"
    public static let statsDetailUsage: StaticString = "CLIENT_ERROR usage: stats detail on|off|dump\r\n"
    public static let watchNotAllowed: StaticString = "CLIENT_ERROR watch commands not allowed\r\n"
    public static let watchPipelined: StaticString = "ERROR cannot pipeline other commands before watch\r\n"
    public static let watcherTooMany: StaticString = "WATCHER_TOO_MANY log watcher limit reached\r\n"
    public static let cachedumpNotAllowed: StaticString = "CLIENT_ERROR stats cachedump not allowed\r\n"
    public static let badCommandLine: StaticString = "CLIENT_ERROR bad command line\r\n"
    public static let illegalSlabId: StaticString = "CLIENT_ERROR Illegal slab id\r\n"
    public static let metadumpNotAllowed: StaticString = "ERROR metadump not allowed\r\n"
    public static let metadumpPipelined: StaticString = "ERROR cannot pipeline other commands before metadump\r\n"
    public static let crawlerDisabled: StaticString = "CLIENT_ERROR lru crawler disabled\r\n"
    public static let slabsReassignDisabled: StaticString = "CLIENT_ERROR slab reassignment disabled\r\n"
    public static let slabsReassignSame: StaticString = "SAME src and dst class are identical\r\n"
    public static let slabsReassignBadClass: StaticString = "BADCLASS invalid src or dst class id\r\n"
    public static let slabsReassignNoSpare: StaticString = "NOSPARE source class has no spare pages\r\n"
    public static let slabsReassignBusy: StaticString = "BUSY currently processing reassign request\r\n"
    public static let lruPctTooLarge: StaticString = "ERROR hot and warm pcts must not exceed 80\r\n"
    public static let lruFactorNotPositive: StaticString = "ERROR hot/warm age factors must be greater than 0\r\n"
    public static let crawlerBusy: StaticString = "BUSY currently processing crawler request\r\n"
    public static let crawlerBadClass: StaticString = "BADCLASS invalid class id\r\n"
    public static let crawlerUnknownError: StaticString = "ERROR an unknown error happened\r\n"
    public static let crawlerSleepTooLong: StaticString = "CLIENT_ERROR sleep must be one second or less\r\n"
    public static let crawlerStartFailed: StaticString = "ERROR failed to start lru crawler thread\r\n"
    public static let value: StaticString = "VALUE "
    public static let crlf: StaticString = "\r\n"
    public static let stat: StaticString = "STAT "
}

/// Meta protocol replies, exactly as memcached 1.6.18 sends them. Status codes are two bytes,
/// followed by the return flags (each with its leading space) and CRLF.
public enum MetaReply {
    public static let hd: StaticString = "HD"
    public static let va: StaticString = "VA "
    public static let en: StaticString = "EN"
    public static let nf: StaticString = "NF"
    public static let ns: StaticString = "NS"
    public static let ex: StaticString = "EX"
    public static let me: StaticString = "ME "
    public static let duplicateFlag: StaticString = "CLIENT_ERROR duplicate flag\r\n"
    public static let invalidFlag: StaticString = "CLIENT_ERROR invalid flag\r\n"
    public static let badToken: StaticString = "CLIENT_ERROR bad token in command line format\r\n"
    public static let incorrectMLength: StaticString = "CLIENT_ERROR incorrect length for M token\r\n"
    public static let invalidInitial: StaticString = "CLIENT_ERROR invalid numeric initial value\r\n"
    public static let invalidDelta: StaticString = "CLIENT_ERROR invalid numeric delta value\r\n"
    public static let decodingKey: StaticString = "CLIENT_ERROR error decoding key\r\n"
    /// md and ma print this for every flag error (memcached ignores the preparse message there).
    public static let invalidOrDuplicateFlag: StaticString = "CLIENT_ERROR invalid or duplicate flag\r\n"
    public static let invalidSetMode: StaticString = "CLIENT_ERROR invalid mode for ms M token\r\n"
    public static let invalidArithmeticMode: StaticString = "CLIENT_ERROR invalid mode for ma M token\r\n"
    public static let opaqueTooLong: StaticString = "CLIENT_ERROR opaque token too long\r\n"
    /// mg's wording; ms, md and ma say it without "are".
    public static let getFlagsTooLong: StaticString = "CLIENT_ERROR options flags are too long\r\n"
    public static let flagsTooLong: StaticString = "CLIENT_ERROR options flags too long\r\n"
    public static let vivifyOutOfMemory: StaticString = "SERVER_ERROR Out of memory allocating new item\r\n"

    /// The text memcached's mg/ms print for a preparse failure.
    public static func message(for e: MetaParseError) -> StaticString {
        switch e {
        case .duplicateFlag: return duplicateFlag
        case .invalidFlag: return invalidFlag
        case .badFormat: return Reply.badFormat
        case .badToken: return badToken
        case .incorrectMLength: return incorrectMLength
        case .invalidInitial: return invalidInitial
        case .invalidDelta: return invalidDelta
        case .decodingKey: return decodingKey
        }
    }
}
