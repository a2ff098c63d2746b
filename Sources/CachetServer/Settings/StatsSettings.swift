// TEMPORARY: replaced by the full memcached-compatible `stats settings` table.
import CachetTLS
public func statsSettingsLines(_ s: Settings, verbosity: Int, oldestLive: UInt32, maxBytes: Int) -> [(String, String)] {
    [("maxbytes", String(maxBytes)), ("maxconns", String(s.maxConns)), ("tcpport", String(s.port)),
     ("verbosity", String(verbosity)), ("oldest", String(oldestLive))]
}
