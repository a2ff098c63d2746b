// Relaxed atomic access to one byte of slab memory: an item's flags byte, which a get updates under the
// item's hash-segment lock while eviction and the crawler read it under a slab-class lock. A relaxed byte
// load or store is a plain `mov` on x86-64 and arm64, so this costs nothing; it tells the compiler (and the
// ThreadSanitizer) that the byte is shared.
#ifndef CITEMFLAGS_H
#define CITEMFLAGS_H
#include <stdint.h>

// Acquire/release rather than relaxed for the slab mover: it reads an item's hash (written before the item
// was linked) only after it saw the linked bit, with no lock in common with the linking thread; on x86-64
// these are still plain `mov`s.
static inline uint8_t cachet_load_byte(const void *p) {
    return __atomic_load_n((const uint8_t *)p, __ATOMIC_ACQUIRE);
}

static inline void cachet_store_byte(void *p, uint8_t v) {
    __atomic_store_n((uint8_t *)p, v, __ATOMIC_RELEASE);
}

// A value chunk's pointer to its item's header (slab mover): written by the allocating thread without a
// class lock, read by the mover under one, so both sides use a relaxed atomic word (a plain mov).
static inline void *cachet_load_pointer(const void *p) {
    return __atomic_load_n((void *const *)p, __ATOMIC_RELAXED);
}

static inline void cachet_store_pointer(void *p, void *v) {
    __atomic_store_n((void **)p, v, __ATOMIC_RELAXED);
}
// An item's last-access time: a fetch refreshes it under the item's segment lock while the LRU maintainer
// reads it under a class lock (ages, max-age checks), as memcached does; a relaxed 32-bit access is a plain mov.
static inline uint32_t cachet_load_u32(const void *p) {
    return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
}

static inline void cachet_store_u32(void *p, uint32_t v) {
    __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELAXED);
}
#endif
