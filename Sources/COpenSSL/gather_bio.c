/* A write-side socket BIO that can gather several TLS records into one write(2).
 *
 * Why: OpenSSL hands every record (at most 16 KB) to its write BIO separately, so a 1 MB reply is 64+
 * write(2) calls, and on loopback each call costs a TCP segment's worth of kernel work on top of the copy.
 * While gathering is on (the connection has more than one SSL_write's worth queued), records are copied
 * into a buffer of `cap` bytes and written out together; off, each record goes straight to the socket,
 * exactly like OpenSSL's socket BIO (no copy on the small-reply path).
 *
 * Invariants: bytes accepted from OpenSSL are either written to the fd or held in buf[off, off+len) in
 * order; nothing is ever accepted that cannot be held (the BIO says "retry" instead, and OpenSSL keeps
 * the record itself). buf is malloc'ed lazily and freed only when empty. Used by one thread at a time
 * (the worker owning the connection), like the SSL above it. */
#include "COpenSSL.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

struct gather {
    int fd;
    size_t cap;      /* gather up to this many bytes; 0 = pass-through */
    char *buf;
    size_t bufcap;   /* allocated size of buf */
    size_t off, len; /* pending bytes: buf[off, off+len) */
    size_t room;     /* what the socket can still take in this burst (estimate; see set_cap) */
};

static BIO_METHOD *gather_method;
static pthread_once_t gather_once = PTHREAD_ONCE_INIT;

static int would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

/* Writes pending bytes. 1 = all written, 0 = the socket is full (some may remain), -1 = error (errno). */
static int drain(struct gather *g) {
    while (g->len > 0) {
        ssize_t n = write(g->fd, g->buf + g->off, g->len);
        if (n < 0) return would_block(errno) ? 0 : -1;
        g->off += (size_t)n;
        g->len -= (size_t)n;
        g->room = g->room > (size_t)n ? g->room - (size_t)n : 0;
    }
    g->off = 0;
    return 1;
}

static int direct(BIO *b, struct gather *g, const char *in, int inl) {
    ssize_t n = write(g->fd, in, (size_t)inl);
    if (n < 0 && would_block(errno)) BIO_set_retry_write(b);
    return (int)n;
}

static int gather_write(BIO *b, const char *in, int inl) {
    struct gather *g = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (inl <= 0) return 0;
    size_t n = (size_t)inl;
    /* The socket would not take more than what is gathered: stop gathering. What is gathered is sent
       below, then records go straight to the socket and OpenSSL keeps the one that does not fit. */
    if (g->cap > 0 && g->len + n > g->room) g->cap = 0;
    if (g->len == 0 && (g->cap == 0 || n >= g->cap)) return direct(b, g, in, inl);
    if (g->len + n > g->cap || g->off + g->len + n > g->bufcap) {
        int r = drain(g);
        if (r < 0) return -1;
        if (r == 0) {
            if (g->off > 0) { memmove(g->buf, g->buf + g->off, g->len); g->off = 0; }
            if (g->len + n > g->bufcap || g->cap == 0) { BIO_set_retry_write(b); errno = EAGAIN; return -1; }
        }
        if (g->len == 0 && (g->cap == 0 || n >= g->cap)) return direct(b, g, in, inl);
    }
    if (g->buf == NULL) {
        g->buf = malloc(g->cap);
        if (g->buf == NULL) return direct(b, g, in, inl);
        g->bufcap = g->cap;
        g->off = 0;
    }
    memcpy(g->buf + g->off + g->len, in, n);
    g->len += n;
    return inl;
}

static long gather_ctrl(BIO *b, int cmd, long num, void *ptr) {
    struct gather *g = BIO_get_data(b);
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: {
        BIO_clear_retry_flags(b);
        int r = drain(g);
        if (r == 0) { BIO_set_retry_write(b); return -1; }
        return r;
    }
    case BIO_CTRL_WPENDING: return (long)g->len;
    case BIO_CTRL_PENDING: return 0;
    case BIO_C_GET_FD:
        if (ptr != NULL) *(int *)ptr = g->fd;
        return g->fd;
    case BIO_CTRL_GET_CLOSE: return BIO_NOCLOSE;
    case BIO_CTRL_SET_CLOSE: return 1;
    case BIO_CTRL_DUP: return 1;
    default: (void)num; return 0;
    }
}

static int gather_create(BIO *b) {
    struct gather *g = calloc(1, sizeof *g);
    if (g == NULL) return 0;
    g->fd = -1;
    BIO_set_data(b, g);
    BIO_set_init(b, 1);
    return 1;
}

static int gather_destroy(BIO *b) {
    struct gather *g = BIO_get_data(b);
    if (g != NULL) { free(g->buf); free(g); }
    BIO_set_data(b, NULL);
    return 1;
}

static void gather_method_init(void) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "cachet gathering socket");
    if (m == NULL) return;
    BIO_meth_set_write(m, gather_write);
    BIO_meth_set_ctrl(m, gather_ctrl);
    BIO_meth_set_create(m, gather_create);
    BIO_meth_set_destroy(m, gather_destroy);
    gather_method = m;
}

BIO *cachet_gather_bio_new(int fd) {
    pthread_once(&gather_once, gather_method_init);
    if (gather_method == NULL) return NULL;
    BIO *b = BIO_new(gather_method);
    if (b == NULL) return NULL;
    ((struct gather *)BIO_get_data(b))->fd = fd;
    return b;
}

/* Payload bytes the socket's send buffer can still take, roughly: sk_sndbuf also pays for buffer overhead
   (measured on loopback: 1.4 MB charged for 1 MB queued), so count half of it. SIZE_MAX if unknown. */
static size_t socket_room(int fd) {
    int sndbuf = 0, queued = 0;
    socklen_t len = sizeof sndbuf;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) != 0 || ioctl(fd, SIOCOUTQ, &queued) != 0)
        return SIZE_MAX;
    long room = (long)sndbuf / 2 - queued;
    return room > 0 ? (size_t)room : 0;
}

/* Gathering into less than this is not worth a copy. */
#define GATHER_MIN (32 * 1024)

void cachet_gather_bio_set_cap(BIO *b, size_t cap) {
    struct gather *g = BIO_get_data(b);
    /* Gather no more than the socket can take now: what does not fit would wait in buf, and a client that
       reads slowly would keep a full buffer allocated per connection. With little room, records go straight
       to the socket and OpenSSL holds the one that does not fit, as with its own socket BIO. */
    g->room = SIZE_MAX;
    if (cap > 0) {
        g->room = socket_room(g->fd);
        if (g->room < GATHER_MIN) cap = 0;
    }
    if (cap > g->bufcap && g->buf != NULL && g->len == 0) { free(g->buf); g->buf = NULL; g->bufcap = 0; }
    if (g->buf != NULL && cap > g->bufcap) cap = g->bufcap;   /* grows only once emptied */
    g->cap = cap;
}

int cachet_gather_bio_flush(BIO *b) {
    struct gather *g = BIO_get_data(b);
    return g->len == 0 ? 1 : drain(g);
}

size_t cachet_gather_bio_pending(BIO *b) { return ((struct gather *)BIO_get_data(b))->len; }

void cachet_gather_bio_release(BIO *b) {
    struct gather *g = BIO_get_data(b);
    if (g->len == 0 && g->buf != NULL) { free(g->buf); g->buf = NULL; g->bufcap = 0; g->off = 0; }
}
