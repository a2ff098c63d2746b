// Version strings, in one place. Cachet speaks memcached's protocol as of memcachedCompatVersion
// (the `version` command replies `VERSION <memcachedCompatVersion>`); cachetVersion is Cachet's own
// release, shown by `-V`, the first line of `-h` and `STAT cachet_version`.
public let cachetVersion = "0.1.0"
public let memcachedCompatVersion = "1.6.45"

/// What `-V` prints and what `-h` prints first. memcached prints `memcached 1.6.18`; Cachet names
/// itself and the memcached version it is compatible with, so an operator reading logs can tell the
/// two apart and still knows which memcached behaviour to expect.
public let versionLine = "cachet \(cachetVersion) (memcached \(memcachedCompatVersion) compatible)"
