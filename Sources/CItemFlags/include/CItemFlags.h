// Relaxed atomic access to one byte of slab memory: an item's flags byte, which a get updates under the
// item's hash-segment lock while eviction and the crawler read it under a slab-class lock. A relaxed byte
// load or store is a plain `mov` on x86-64 and arm64, so this costs nothing; it tells the compiler (and the
// ThreadSanitizer) that the byte is shared.
#ifndef CITEMFLAGS_H
#define CITEMFLAGS_H
#include <stdint.h>

static inline uint8_t cachet_load_byte(const void *p) {
    return __atomic_load_n((const uint8_t *)p, __ATOMIC_RELAXED);
}

static inline void cachet_store_byte(void *p, uint8_t v) {
    __atomic_store_n((uint8_t *)p, v, __ATOMIC_RELAXED);
}
#endif
