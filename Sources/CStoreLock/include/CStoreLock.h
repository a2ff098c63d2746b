// The store's mutexes (hash-segment / item locks and slab-class locks, CacheStore's LockArray): a lock word
// in a 64-byte slot. The LRU maintainer tries one item lock per item it moves and requests take one or two
// locks each, so the cost of a lock round trip is paid millions of times a second. See store_lock.c.
#ifndef CSTORELOCK_H
#define CSTORELOCK_H
#include <stdbool.h>
#include <stdint.h>

/// True when the locks are pthread mutexes (a ThreadSanitizer build); the inline fast paths below must
/// not be used then — only the out-of-line functions, which are pthread calls in that build.
bool cachet_lock_uses_pthread(void);
/// Bytes a lock needs (a pthread_mutex_t under ThreadSanitizer, else one 32-bit word); at most 64.
int cachet_lock_size(void);
void cachet_lock_init(void *lock);
void cachet_lock_destroy(void *lock);
void cachet_lock(void *lock);
/// False when the lock is held, also by the calling thread (the locks are not recursive).
bool cachet_trylock(void *lock);
void cachet_unlock(void *lock);

// Lock-word builds only (cachet_lock_uses_pthread() false): the uncontended paths, inlined into the
// caller. The word is 0 free, 1 held, 2 held and a thread may be sleeping on it.

/// Takes a free lock; false when it is held.
static inline bool cachet_lock_word_try(void *lock) {
    uint32_t expected = 0;
    return __atomic_compare_exchange_n((uint32_t *)lock, &expected, 1, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}
/// Sleeps until it holds a lock that `cachet_lock_word_try` found held.
void cachet_lock_word_wait(void *lock);
/// Releases the lock; true when a sleeper may be waiting, which the caller wakes with cachet_lock_word_wake.
static inline bool cachet_lock_word_release(void *lock) {
    return __atomic_exchange_n((uint32_t *)lock, 0, __ATOMIC_RELEASE) == 2;
}
void cachet_lock_word_wake(void *lock);
#endif
