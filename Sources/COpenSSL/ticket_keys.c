/* Session-ticket keys the server controls (instead of the random key OpenSSL makes per SSL_CTX), so that
 * several servers sharing a key file resume each other's sessions and keys can rotate.
 *
 * Each key is 80 bytes, nginx's layout: a 16-byte name (sent in the clear in every ticket, to find the key
 * again), a 32-byte HMAC-SHA256 secret and a 32-byte AES-256-CBC key. The first key encrypts new tickets,
 * every key decrypts; a ticket made with any but the first is accepted and replaced by a new one.
 * The key set hangs off the SSL_CTX's ex_data and is freed (and wiped) with it. The mutex makes rotation
 * safe while worker threads are in handshakes on the same context. */
#include "COpenSSL.h"
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct cachet_keyset {
    pthread_mutex_t lock;
    size_t count;
    unsigned char *keys; /* count * CACHET_TICKET_KEY_BYTES */
};

static int keyset_index = -1;
static pthread_once_t keyset_once = PTHREAD_ONCE_INIT;

static void keyset_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    struct cachet_keyset *ks = ptr;
    if (ks == NULL) return;
    if (ks->keys) {
        OPENSSL_cleanse(ks->keys, ks->count * CACHET_TICKET_KEY_BYTES);
        free(ks->keys);
    }
    pthread_mutex_destroy(&ks->lock);
    free(ks);
}

static void keyset_index_init(void) {
    keyset_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, keyset_free);
}

static struct cachet_keyset *keyset_of(SSL_CTX *ctx) {
    pthread_once(&keyset_once, keyset_index_init);
    if (keyset_index < 0) return NULL;
    return SSL_CTX_get_ex_data(ctx, keyset_index);
}

static int ticket_key_cb(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                         EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int enc) {
    struct cachet_keyset *ks = keyset_of(SSL_get_SSL_CTX(s));
    if (ks == NULL) return -1;
    unsigned char key[CACHET_TICKET_KEY_BYTES];
    long which = -1;
    pthread_mutex_lock(&ks->lock);
    if (enc) {
        if (ks->count > 0) { memcpy(key, ks->keys, sizeof key); which = 0; }
    } else {
        for (size_t i = 0; i < ks->count; i++) {
            if (memcmp(ks->keys + i * CACHET_TICKET_KEY_BYTES, key_name, 16) == 0) {
                memcpy(key, ks->keys + i * CACHET_TICKET_KEY_BYTES, sizeof key);
                which = (long)i;
                break;
            }
        }
    }
    pthread_mutex_unlock(&ks->lock);
    if (which < 0) return enc ? -1 : 0; /* unknown key name: no resumption, a full handshake */
    int ok;
    if (enc) {
        memcpy(key_name, key, 16);
        ok = RAND_bytes(iv, 16) == 1 && EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key + 48, iv) == 1;
    } else {
        ok = EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key + 48, iv) == 1;
    }
    if (ok) {
        OSSL_PARAM params[3];
        params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key + 16, 32);
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
        params[2] = OSSL_PARAM_construct_end();
        ok = EVP_MAC_CTX_set_params(mac, params) == 1;
    }
    OPENSSL_cleanse(key, sizeof key);
    if (!ok) return -1;
    return (enc || which == 0) ? 1 : 2;
}

int cachet_ticket_keys_install(SSL_CTX *ctx, const unsigned char *keys, size_t count) {
    if (count == 0 || keyset_of(ctx) != NULL) return 0;
    struct cachet_keyset *ks = calloc(1, sizeof *ks);
    if (ks == NULL) return 0;
    ks->keys = malloc(count * CACHET_TICKET_KEY_BYTES);
    if (ks->keys == NULL) { free(ks); return 0; }
    memcpy(ks->keys, keys, count * CACHET_TICKET_KEY_BYTES);
    ks->count = count;
    pthread_mutex_init(&ks->lock, NULL);
    if (SSL_CTX_set_ex_data(ctx, keyset_index, ks) != 1) {
        keyset_free(NULL, ks, NULL, 0, 0, NULL);
        return 0;
    }
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) == 1;
}

size_t cachet_ticket_keys_copy(SSL_CTX *ctx, unsigned char *out, size_t cap) {
    struct cachet_keyset *ks = keyset_of(ctx);
    if (ks == NULL) return 0;
    pthread_mutex_lock(&ks->lock);
    size_t n = ks->count < cap ? ks->count : cap;
    memcpy(out, ks->keys, n * CACHET_TICKET_KEY_BYTES);
    pthread_mutex_unlock(&ks->lock);
    return n;
}

int cachet_ticket_keys_rotate(SSL_CTX *ctx, size_t keep) {
    struct cachet_keyset *ks = keyset_of(ctx);
    if (ks == NULL || keep == 0) return 0;
    unsigned char fresh[CACHET_TICKET_KEY_BYTES];
    if (RAND_bytes(fresh, sizeof fresh) != 1) return 0;
    pthread_mutex_lock(&ks->lock);
    size_t n = ks->count + 1 < keep ? ks->count + 1 : keep;
    unsigned char *keys = malloc(n * CACHET_TICKET_KEY_BYTES);
    if (keys == NULL) { pthread_mutex_unlock(&ks->lock); OPENSSL_cleanse(fresh, sizeof fresh); return 0; }
    memcpy(keys, fresh, CACHET_TICKET_KEY_BYTES);
    memcpy(keys + CACHET_TICKET_KEY_BYTES, ks->keys, (n - 1) * CACHET_TICKET_KEY_BYTES);
    OPENSSL_cleanse(ks->keys, ks->count * CACHET_TICKET_KEY_BYTES);
    free(ks->keys);
    ks->keys = keys;
    ks->count = n;
    pthread_mutex_unlock(&ks->lock);
    OPENSSL_cleanse(fresh, sizeof fresh);
    return 1;
}

int cachet_random_bytes(unsigned char *out, int n) { return RAND_bytes(out, n); }
