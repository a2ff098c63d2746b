// OpenSSL for Swift: the headers plus wrappers for the macros and varargs Swift cannot import.
#ifndef COPENSSL_H
#define COPENSSL_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

int cachet_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
int cachet_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long cachet_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
long cachet_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size);
long cachet_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode);
long cachet_SSL_CTX_set1_sigalgs_list(SSL_CTX *ctx, const char *list);
long cachet_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);
long cachet_SSL_CTX_sess_number(SSL_CTX *ctx);
uint64_t cachet_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t op);
int cachet_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
long cachet_BIO_get_mem_data(BIO *bio, char **pp);
long cachet_SSL_CTX_select_current_cert(SSL_CTX *ctx, X509 *x509);

extern const uint64_t cachet_SSL_OP_NO_RENEGOTIATION;
extern const uint64_t cachet_SSL_OP_ENABLE_KTLS;
extern const uint64_t cachet_SSL_OP_NO_COMPRESSION;
extern const uint64_t cachet_SSL_OP_NO_TICKET;
extern const uint64_t cachet_SSL_OP_CIPHER_SERVER_PREFERENCE;
extern const int cachet_has_ktls;

/* CachetTLS additions */
int cachet_SSL_set_min_proto_version(SSL *ssl, int version);
int cachet_SSL_set_max_proto_version(SSL *ssl, int version);
long cachet_SSL_CTX_get_tlsext_ticket_keys(SSL_CTX *ctx, void *keys, long keylen);
long cachet_SSL_CTX_set_tlsext_ticket_keys(SSL_CTX *ctx, void *keys, long keylen);
int cachet_ERR_GET_LIB(unsigned long e);
int cachet_ERR_GET_REASON(unsigned long e);
extern const unsigned long cachet_XN_FLAG_RFC2253;
extern const int cachet_ERR_LIB_SSL;
/* 1 when this C target was compiled with Address- or ThreadSanitizer: their fopen interceptors
   crash on the NULL path memcached hands to OpenSSL (glibc itself returns EFAULT). */
extern const int cachet_built_with_sanitizer;
long cachet_SSL_set_mode(SSL *ssl, long mode);
long cachet_SSL_clear_mode(SSL *ssl, long mode);

/* gather_bio.c: a write BIO that can gather several TLS records into one write(2). */
BIO *cachet_gather_bio_new(int fd);
/* Gather up to cap bytes before writing (0 = every record straight to the socket). */
void cachet_gather_bio_set_cap(BIO *b, size_t cap);
/* Writes gathered bytes: 1 = all out, 0 = socket full (wait for writable), -1 = error (errno). */
int cachet_gather_bio_flush(BIO *b);
size_t cachet_gather_bio_pending(BIO *b);
/* Frees the gather buffer if it is empty. */
void cachet_gather_bio_release(BIO *b);

/* ticket_keys.c: session-ticket keys the server controls. A key is 80 bytes: name 16, HMAC-SHA256
   secret 32, AES-256 key 32; the first of a set encrypts, all decrypt. */
#define CACHET_TICKET_KEY_BYTES 80
/* Installs `count` keys on a context that has none yet (copied; freed with the context). 1 = done. */
int cachet_ticket_keys_install(SSL_CTX *ctx, const unsigned char *keys, size_t count);
/* Copies up to `cap` of the context's keys (first = encrypting) into out; returns how many. */
size_t cachet_ticket_keys_copy(SSL_CTX *ctx, unsigned char *out, size_t cap);
/* Puts a fresh random key first and keeps at most `keep` keys. Safe while handshakes run. 1 = done. */
int cachet_ticket_keys_rotate(SSL_CTX *ctx, size_t keep);
int cachet_random_bytes(unsigned char *out, int n);

/* verify_name.c: client identity (ssl_verify_name). */
#include <pthread.h>
/* Gives a context its allowed client names (copied; freed with it). 1 = done. */
int cachet_verify_names_install(SSL_CTX *ctx, const char *const *names, size_t count,
                                const char *const *uris, size_t uri_count);
/* The verify callback to pass to SSL_CTX_set_verify / SSL_set_verify: OpenSSL's verdict, plus the name
   check at depth 0 when the context has names. */
int cachet_verify_callback(int ok, X509_STORE_CTX *store);
/* 1 when this connection's client certificate was refused for its name. */
int cachet_verify_name_failed(SSL *ssl);
/* The name in the peer certificate that matched (NUL-terminated in out); 0 if none / no names. */
int cachet_peer_matching_name(SSL *ssl, char *out, size_t cap);
#endif
