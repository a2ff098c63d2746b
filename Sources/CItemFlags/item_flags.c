// The functions are static inline in include/CItemFlags.h; this file gives the target a source.
