/* Client identity (`-o ssl_verify_name`): on listeners that verify client certificates, the client's
 * certificate must name one of the configured names — its DNS subjectAltNames, or its subject CN when it
 * has no DNS names (the rule TLS clients apply to servers). A configured name may start with "*." to stand
 * for exactly one leading label ("*.cache.example" matches "a.cache.example", not "cache.example" nor
 * "a.b.cache.example"); names in the certificate are compared literally, case-insensitively.
 *
 * The check runs inside OpenSSL's verification (the verify callback, at depth 0, only when the chain
 * itself verified), so a mismatch fails the handshake with an alert like any bad certificate, and a
 * resumed session — which skips verification — can only have come from a certificate that passed it on
 * a listener of the same kind (sessions are scoped per listener kind). */
#include "COpenSSL.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cachet_names {
    size_t count;
    char **names;
};

static int names_index = -1, failed_index = -1;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    struct cachet_names *n = ptr;
    if (n == NULL) return;
    for (size_t i = 0; i < n->count; i++) free(n->names[i]);
    free(n->names);
    free(n);
}

static void names_index_init(void) {
    names_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, names_free);
    failed_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static struct cachet_names *names_of(SSL_CTX *ctx) {
    pthread_once(&names_once, names_index_init);
    return names_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, names_index);
}

int cachet_verify_names_install(SSL_CTX *ctx, const char *const *names, size_t count) {
    if (count == 0 || names_of(ctx) != NULL || names_index < 0) return 0;
    struct cachet_names *n = calloc(1, sizeof *n);
    if (n == NULL) return 0;
    n->names = calloc(count, sizeof(char *));
    if (n->names == NULL) { free(n); return 0; }
    for (size_t i = 0; i < count; i++) {
        n->names[i] = strdup(names[i]);
        if (n->names[i] == NULL) { n->count = i; names_free(NULL, n, NULL, 0, 0, NULL); return 0; }
    }
    n->count = count;
    if (SSL_CTX_set_ex_data(ctx, names_index, n) != 1) { names_free(NULL, n, NULL, 0, 0, NULL); return 0; }
    return 1;
}

/* Does the certificate's name `got` (len bytes, not NUL-terminated) satisfy configured name `want`? */
static int name_matches(const char *want, const unsigned char *got, size_t len) {
    if (memchr(got, 0, len) != NULL) return 0; /* an embedded NUL is never a name */
    size_t wl = strlen(want);
    if (wl >= 2 && want[0] == '*' && want[1] == '.') {
        const char *suffix = want + 1; /* ".cache.example" */
        size_t sl = wl - 1;
        if (len <= sl) return 0;
        size_t label = len - sl; /* the one label the star stands for */
        if (strncasecmp((const char *)got + label, suffix, sl) != 0) return 0;
        return memchr(got, '.', label) == NULL && memchr(got, '*', label) == NULL;
    }
    return wl == len && strncasecmp(want, (const char *)got, len) == 0;
}

/* Looks for a configured name among the certificate's DNS names, or its CN if it has none. Returns the
 * matching configured name's index+1 (0 = no match) and writes the certificate's matching name to out
 * (NUL-terminated, truncated to cap) when out != NULL. */
static size_t match_certificate(X509 *cert, const struct cachet_names *n, char *out, size_t cap) {
    size_t found = 0;
    int had_dns = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS) continue;
        had_dns = 1;
        const unsigned char *data = ASN1_STRING_get0_data(g->d.dNSName);
        size_t len = (size_t)ASN1_STRING_length(g->d.dNSName);
        for (size_t k = 0; k < n->count && !found; k++) {
            if (name_matches(n->names[k], data, len)) {
                found = k + 1;
                if (out != NULL && cap > 0) {
                    size_t m = len < cap - 1 ? len : cap - 1;
                    memcpy(out, data, m);
                    out[m] = 0;
                }
            }
        }
    }
    GENERAL_NAMES_free(gens);
    if (had_dns || found) return found;
    X509_NAME *subject = X509_get_subject_name(cert);
    int at = subject == NULL ? -1 : X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at < 0) return 0;
    unsigned char *cn = NULL;
    int len = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
    if (len < 0) return 0;
    for (size_t k = 0; k < n->count && !found; k++) {
        if (name_matches(n->names[k], cn, (size_t)len)) {
            found = k + 1;
            if (out != NULL && cap > 0) {
                size_t m = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
                memcpy(out, cn, m);
                out[m] = 0;
            }
        }
    }
    OPENSSL_free(cn);
    return found;
}

int cachet_verify_callback(int ok, X509_STORE_CTX *store) {
    if (!ok || X509_STORE_CTX_get_error_depth(store) != 0) return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl == NULL) return ok;
    struct cachet_names *n = names_of(SSL_get_SSL_CTX(ssl));
    if (n == NULL) return ok;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    if (cert != NULL && match_certificate(cert, n, NULL, 0)) return 1;
    SSL_set_ex_data(ssl, failed_index, (void *)1);
    X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
    return 0;
}

int cachet_verify_name_failed(SSL *ssl) {
    pthread_once(&names_once, names_index_init);
    return failed_index >= 0 && SSL_get_ex_data(ssl, failed_index) != NULL;
}

int cachet_peer_matching_name(SSL *ssl, char *out, size_t cap) {
    struct cachet_names *n = names_of(SSL_get_SSL_CTX(ssl));
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (n == NULL || cert == NULL || cap == 0) return 0;
    return match_certificate(cert, n, out, cap) != 0;
}
