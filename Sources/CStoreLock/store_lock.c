// The store's mutex: the same algorithm as glibc's default (non-recursive, non-adaptive) pthread mutex —
// a compare-and-swap to take a free lock, a futex wait when it is held, a wake on release only when someone
// may be waiting — without the owner, user-count and kind bookkeeping glibc does on every call. In callgrind
// a pthread trylock + unlock pair costs about 60 instructions; this one, with the uncontended paths inlined
// from the header, about 6 (a lock cmpxchg, an xchg and their tests), which matters for the LRU maintainer
// (one item-lock try per item it moves) and for every request (its key's lock).
//
// Under ThreadSanitizer the functions are plain pthread mutexes instead, so that TSan still sees every lock
// as a lock (lock-order inversions, double unlocks), which it cannot do for a hand-made one; the header's
// inline fast paths (compiled into Swift code, which may not know about the sanitizer) are then unused:
// cachet_lock_uses_pthread() tells the caller.
#include "CStoreLock.h"
#include <pthread.h>
#include <stdint.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CACHET_LOCK_PTHREAD 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CACHET_LOCK_PTHREAD 1
#endif

#ifdef CACHET_LOCK_PTHREAD

bool cachet_lock_uses_pthread(void) { return true; }
int cachet_lock_size(void) { return (int)sizeof(pthread_mutex_t); }
void cachet_lock_init(void *lock) { pthread_mutex_init(lock, NULL); }
void cachet_lock_destroy(void *lock) { pthread_mutex_destroy(lock); }
void cachet_lock(void *lock) { pthread_mutex_lock(lock); }
bool cachet_trylock(void *lock) { return pthread_mutex_trylock(lock) == 0; }
void cachet_unlock(void *lock) { pthread_mutex_unlock(lock); }
// Never called in this build (the caller checks cachet_lock_uses_pthread()).
void cachet_lock_word_wait(void *lock) { pthread_mutex_lock(lock); }
void cachet_lock_word_wake(void *lock) { (void)lock; }

#else

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

// The word: 0 free, 1 held, 2 held and a thread may be sleeping on it.
enum { FREE = 0, HELD = 1, CONTENDED = 2 };

bool cachet_lock_uses_pthread(void) { return false; }

int cachet_lock_size(void) { return (int)sizeof(uint32_t); }

void cachet_lock_init(void *lock) { __atomic_store_n((uint32_t *)lock, FREE, __ATOMIC_RELAXED); }

void cachet_lock_destroy(void *lock) { (void)lock; }

bool cachet_trylock(void *lock) { return cachet_lock_word_try(lock); }

void cachet_lock_word_wait(void *lock) {
    uint32_t *word = lock;
    // Mark the lock contended and sleep until it was free when marked; a thread woken this way holds it
    // as CONTENDED, so its own release wakes the next sleeper (possibly none: a spare wake, never a lost one).
    while (__atomic_exchange_n(word, CONTENDED, __ATOMIC_ACQUIRE) != FREE) {
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, CONTENDED, NULL, NULL, 0);
    }
}

void cachet_lock_word_wake(void *lock) { syscall(SYS_futex, (uint32_t *)lock, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

void cachet_lock(void *lock) {
    if (__builtin_expect(!cachet_lock_word_try(lock), 0)) cachet_lock_word_wait(lock);
}

void cachet_unlock(void *lock) {
    if (cachet_lock_word_release(lock)) cachet_lock_word_wake(lock);
}

#endif
