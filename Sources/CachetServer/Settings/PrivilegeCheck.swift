// memcached refuses to keep running as root unless told which user to become (main(), after
// ssl_init and the rlimit setup, before binding). Separate from `SettingsParser.parse` so tests
// (which run as root here) can parse freely, and so the server runs it at memcached's moment.

extension SettingsParser {
    /// nil when it is fine to continue; `uid`/`euid` are getuid()/geteuid().
    public static func checkRoot(settings: Settings, uid: UInt32, euid: UInt32? = nil) -> SettingsOutcome? {
        guard uid == 0 || (euid ?? uid) == 0 else { return nil }
        if let user = settings.user, !user.isEmpty { return nil }
        return SettingsError.rootWithoutUser.outcome
    }
}
