/*
 * blockmap.h - a heap's table from slot block to what holds it, for any heap
 * algorithm that keeps regions and large items in whole slot blocks.
 *
 * Owns: struct heap_blockmap, one tag per block of the slot: 0 (not the
 * heap's), the address of a region structure, or the address of a large-item
 * record with bit 0 set (HEAP_BLOCKMAP_LARGE).  The tag array itself is the
 * caller's memory (each heap keeps it in its own meta_alloc block, sized by
 * heap_blockmap_bytes); what the addresses point to is the algorithm's own.
 *
 * Invariants: a block is tagged exactly while a region or large item of the
 * heap covers it; records are aligned, so bit 0 of a region's tag is 0.  Not
 * thread-safe: the heap's lock serializes it.  Everything is inline: the
 * lookup runs on every free and size.
 */
#ifndef CEBOX_HEAP_BLOCKMAP_H
#define CEBOX_HEAP_BLOCKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAP_BLOCKMAP_LARGE ((uintptr_t)1)

struct heap_blockmap {
    uintptr_t base;  /* the slot's first address */
    size_t size;     /* the slot's bytes */
    unsigned shift;  /* log2 of the block size */
    uintptr_t *tags; /* size >> shift tags */
};

/* The bytes of the tag array for a slot of slot_size bytes in blocks of
 * `block` bytes (a power of two). */
static inline size_t heap_blockmap_bytes(size_t slot_size, size_t block)
{
    return slot_size / block * sizeof(uintptr_t);
}

/* m over the slot [base, base + size) in blocks of `block` bytes, with the
 * zeroed array `tags` of heap_blockmap_bytes(size, block) bytes. */
static inline void heap_blockmap_init(struct heap_blockmap *m, uintptr_t base, size_t size,
                                      size_t block, uintptr_t *tags)
{
    m->base = base;
    m->size = size;
    m->shift = (unsigned)__builtin_ctzll(block);
    m->tags = tags;
}

/* Tags every block of [base, base + bytes) (base a block's start) with tag. */
static inline void heap_blockmap_set(struct heap_blockmap *m, uintptr_t base, size_t bytes,
                                     uintptr_t tag)
{
    size_t block = (size_t)1 << m->shift;
    size_t first = (base - m->base) >> m->shift;
    size_t count = (bytes + block - 1) >> m->shift;
    for (size_t b = first; b < first + count; b++) {
        m->tags[b] = tag;
    }
}

/* The tag of the block holding address a: 0 outside the slot. */
static inline __attribute__((always_inline)) uintptr_t heap_blockmap_get(const struct heap_blockmap *m,
                                                                         uintptr_t a)
{
    if (a - m->base >= m->size) {
        return 0;
    }
    return m->tags[(a - m->base) >> m->shift];
}

/* Every block of [base, base + bytes) has `tag`; adds their number to
 * *count (for the heaps' consistency checks). */
static inline bool heap_blockmap_tagged(const struct heap_blockmap *m, uintptr_t base, size_t bytes,
                                        uintptr_t tag, size_t *count)
{
    size_t block = (size_t)1 << m->shift;
    size_t first = (base - m->base) >> m->shift;
    size_t n = (bytes + block - 1) >> m->shift;
    for (size_t b = first; b < first + n; b++) {
        if (m->tags[b] != tag) {
            return false;
        }
    }
    *count += n;
    return true;
}

/* How many blocks of the slot carry a tag. */
static inline size_t heap_blockmap_used(const struct heap_blockmap *m)
{
    size_t used = 0;
    for (size_t b = 0; b < m->size >> m->shift; b++) {
        used += m->tags[b] != 0;
    }
    return used;
}

#endif
