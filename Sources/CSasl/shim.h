// Cyrus SASL (libsasl2) for Swift, for `-S`: the server-side calls memcached makes, and the start-up
// with the one callback memcached registers — where the SASL configuration lives (SASL_CONF_PATH).
#include <stdio.h>
#include <stdlib.h>
#include <sasl/sasl.h>

// The configuration directory comes from SASL_CONF_PATH only; without it, initialising fails (as
// memcached's does), so a server never silently reads a system-wide configuration.
static inline int cachet_sasl_getconfpath(void *context, char **path) {
    *path = getenv("SASL_CONF_PATH");
    if (context != NULL) {
        fprintf(stderr, "Reading configuration from: <%s>\n", *path ? *path : "(null)");
    }
    return *path != NULL ? SASL_OK : SASL_FAIL;
}

/// sasl_server_init for the application "memcached"; `verbose` makes the callback say which directory
/// it reads. Returns SASL_OK or an error.
static inline int cachet_sasl_server_init(int verbose) {
    static sasl_callback_t callbacks[2];
    callbacks[0].id = SASL_CB_GETCONFPATH;
    callbacks[0].proc = (int (*)(void))cachet_sasl_getconfpath;
    callbacks[0].context = verbose ? (void *)1 : NULL;
    callbacks[1].id = SASL_CB_LIST_END;
    callbacks[1].proc = NULL;
    callbacks[1].context = NULL;
    return sasl_server_init(callbacks, "memcached");
}
