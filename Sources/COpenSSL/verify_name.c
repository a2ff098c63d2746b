/* Client identity (`-o ssl_verify_name`, `-o ssl_verify_uri`): on listeners that verify client
 * certificates, the client's certificate must name one of the configured names — its DNS subjectAltNames,
 * or its subject CN when it has no DNS names (the rule TLS clients apply to servers) — or carry one of the
 * configured URIs as a URI subjectAltName (SPIFFE IDs such as spiffe://prod.example/ns/web/sa/app; a
 * configured URI ending in '*' matches every URI that starts with what precedes the '*', compared byte for
 * byte). With only URIs configured, DNS names and the CN are not looked at. A configured name may start with "*." to stand
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
    size_t uri_count;
    char **uris;
};

static int names_index = -1, failed_index = -1;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    struct cachet_names *n = ptr;
    if (n == NULL) return;
    for (size_t i = 0; i < n->count; i++) free(n->names[i]);
    free(n->names);
    for (size_t i = 0; i < n->uri_count; i++) free(n->uris[i]);
    free(n->uris);
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

/* Copies `count` strings into a new array at *out, counting the copies made in *made (all on success). */
static int copy_strings(char ***out, size_t *made, const char *const *src, size_t count) {
    *made = 0;
    *out = calloc(count == 0 ? 1 : count, sizeof(char *));
    if (*out == NULL) return 0;
    for (size_t i = 0; i < count; i++) {
        (*out)[i] = strdup(src[i]);
        if ((*out)[i] == NULL) return 0;
        *made = i + 1;
    }
    return 1;
}

int cachet_verify_names_install(SSL_CTX *ctx, const char *const *names, size_t count,
                                const char *const *uris, size_t uri_count) {
    if (count + uri_count == 0 || names_of(ctx) != NULL || names_index < 0) return 0;
    struct cachet_names *n = calloc(1, sizeof *n);
    if (n == NULL) return 0;
    if (!copy_strings(&n->names, &n->count, names, count) || !copy_strings(&n->uris, &n->uri_count, uris, uri_count)) {
        names_free(NULL, n, NULL, 0, 0, NULL);
        return 0;
    }
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
/* Does the certificate's URI `got` (len bytes) satisfy configured URI `want` (exact, or a prefix before a
 * final '*')? */
static int uri_matches(const char *want, const unsigned char *got, size_t len) {
    if (memchr(got, 0, len) != NULL) return 0;
    size_t wl = strlen(want);
    if (wl > 0 && want[wl - 1] == '*') return len >= wl - 1 && memcmp(want, got, wl - 1) == 0;
    return wl == len && memcmp(want, got, len) == 0;
}

static void copy_out(char *out, size_t cap, const unsigned char *data, size_t len) {
    if (out == NULL || cap == 0) return;
    size_t m = len < cap - 1 ? len : cap - 1;
    memcpy(out, data, m);
    out[m] = 0;
}

static size_t match_certificate(X509 *cert, const struct cachet_names *n, char *out, size_t cap) {
    size_t found = 0;
    int had_dns = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI) continue;
        const unsigned char *data = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        size_t len = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
        for (size_t k = 0; k < n->uri_count && !found; k++) {
            if (uri_matches(n->uris[k], data, len)) {
                found = n->count + k + 1;
                copy_out(out, cap, data, len);
            }
        }
    }
    if (found || n->count == 0) {
        GENERAL_NAMES_free(gens);
        return found;
    }
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS) continue;
        had_dns = 1;
        const unsigned char *data = ASN1_STRING_get0_data(g->d.dNSName);
        size_t len = (size_t)ASN1_STRING_length(g->d.dNSName);
        for (size_t k = 0; k < n->count && !found; k++) {
            if (name_matches(n->names[k], data, len)) {
                found = k + 1;
                copy_out(out, cap, data, len);
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
            copy_out(out, cap, cn, (size_t)len);
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
