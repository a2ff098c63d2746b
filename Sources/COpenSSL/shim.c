#include "COpenSSL.h"

int cachet_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) { return SSL_CTX_set_min_proto_version(ctx, version); }
int cachet_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) { return SSL_CTX_set_max_proto_version(ctx, version); }
long cachet_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
long cachet_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size) { return SSL_CTX_sess_set_cache_size(ctx, size); }
long cachet_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_session_cache_mode(ctx, mode); }
long cachet_SSL_CTX_sess_number(SSL_CTX *ctx) { return SSL_CTX_sess_number(ctx); }
uint64_t cachet_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t op) { return SSL_CTX_set_options(ctx, op); }
int cachet_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
long cachet_BIO_get_mem_data(BIO *bio, char **pp) { return BIO_get_mem_data(bio, pp); }
long cachet_SSL_CTX_select_current_cert(SSL_CTX *ctx, X509 *x509) { return SSL_CTX_select_current_cert(ctx, x509); }

const uint64_t cachet_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
#ifdef SSL_OP_ENABLE_KTLS
const uint64_t cachet_SSL_OP_ENABLE_KTLS = SSL_OP_ENABLE_KTLS;
const int cachet_has_ktls = 1;
#else
const uint64_t cachet_SSL_OP_ENABLE_KTLS = 0;
const int cachet_has_ktls = 0;
#endif
const uint64_t cachet_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
const uint64_t cachet_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;
const uint64_t cachet_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;

/* CachetTLS additions */
int cachet_SSL_set_min_proto_version(SSL *ssl, int version) { return (int)SSL_set_min_proto_version(ssl, version); }
int cachet_SSL_set_max_proto_version(SSL *ssl, int version) { return (int)SSL_set_max_proto_version(ssl, version); }
long cachet_SSL_CTX_get_tlsext_ticket_keys(SSL_CTX *ctx, void *keys, long keylen) { return SSL_CTX_get_tlsext_ticket_keys(ctx, keys, keylen); }
long cachet_SSL_CTX_set_tlsext_ticket_keys(SSL_CTX *ctx, void *keys, long keylen) { return SSL_CTX_set_tlsext_ticket_keys(ctx, keys, keylen); }
int cachet_ERR_GET_LIB(unsigned long e) { return ERR_GET_LIB(e); }
int cachet_ERR_GET_REASON(unsigned long e) { return ERR_GET_REASON(e); }
const unsigned long cachet_XN_FLAG_RFC2253 = XN_FLAG_RFC2253;
const int cachet_ERR_LIB_SSL = ERR_LIB_SSL;
#if defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#    define CACHET_SANITIZER 1
#  endif
#endif
#if (defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)) && !defined(CACHET_SANITIZER)
#  define CACHET_SANITIZER 1
#endif
#ifdef CACHET_SANITIZER
const int cachet_built_with_sanitizer = 1;
#else
const int cachet_built_with_sanitizer = 0;
#endif

long cachet_SSL_set_mode(SSL *ssl, long mode) { return SSL_set_mode(ssl, mode); }
long cachet_SSL_clear_mode(SSL *ssl, long mode) { return SSL_clear_mode(ssl, mode); }

long cachet_SSL_CTX_set1_sigalgs_list(SSL_CTX *ctx, const char *list) { return SSL_CTX_set1_sigalgs_list(ctx, list); }
long cachet_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) { return SSL_CTX_set1_groups_list(ctx, list); }
