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
long cachet_SSL_CTX_sess_number(SSL_CTX *ctx);
uint64_t cachet_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t op);
int cachet_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
long cachet_BIO_get_mem_data(BIO *bio, char **pp);

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
#endif
