// epoll for cachet-bench: Swift's Glibc module does not export sys/epoll.h, and epoll_event is a
// packed struct on x86_64, so the loop uses these three flat wrappers instead.
#ifndef CBENCH_EPOLL_H
#define CBENCH_EPOLL_H
#include <stdint.h>

int cbench_epoll_create(void);
/* Registers fd edge-triggered for read, write and peer hang-up; `token` comes back from wait. */
int cbench_epoll_add(int epfd, int fd, uint64_t token);
/* Waits up to timeout_ms; writes up to max tokens; returns their count, or -1 (errno set). */
int cbench_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);
#endif
