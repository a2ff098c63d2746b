// The store's mutexes (hash-segment / item locks and slab-class locks, CacheStore's LockArray): a lock word
// in a 64-byte slot. The LRU maintainer tries one item lock per item it moves and requests take one or two
// locks each, so the cost of a lock round trip is paid millions of times a second. See store_lock.c.
#ifndef CSTORELOCK_H
#define CSTORELOCK_H
#include <stdbool.h>

/// Bytes a lock needs (a pthread_mutex_t under ThreadSanitizer, else one 32-bit word); at most 64.
int cachet_lock_size(void);
void cachet_lock_init(void *lock);
void cachet_lock_destroy(void *lock);
void cachet_lock(void *lock);
/// False when the lock is held, also by the calling thread (the locks are not recursive).
bool cachet_trylock(void *lock);
void cachet_unlock(void *lock);
#endif
