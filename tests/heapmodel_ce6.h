/*
 * heapmodel_ce6.h - a deliberately literal reference model of the Windows
 * Embedded CE 6.0 heap (coredll rheap), for the differential test.
 *
 * It shares no code with src/heap/ce6.c.  It keeps CE's own state: per
 * region a bitmap of 32-bit words, two bits per 32-byte block (00 free, 11
 * first block of an item, 01 continuation), and CE's counters; per heap the
 * region list, the region of the last allocation or free and the list of
 * large items.  Its functions follow rheap.cpp's word-level routines
 * (TakeBlocks, FreeBlocks, CountFreeBlocks, SkipAllocBlocks,
 * DoFindBlockInRegion, ...) one by one, as docs/heaps/ce6.md describes them.
 * Clarity first, speed never.
 *
 * Addresses are offsets in a fake slot of 64 KB blocks whose block 0 is
 * never handed out and whose reservations are first fit from block 1.
 * Errors: *err receives the Win32 error CE sets; untouched on success.
 */
#ifndef CEBOX_HEAPMODEL_CE6_H
#define CEBOX_HEAPMODEL_CE6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct m6_slot;
struct m6_heap;

struct m6_slot *m6_slot_new(uint32_t nblocks);
void m6_slot_free(struct m6_slot *s);
size_t m6_slot_committed_pages(const struct m6_slot *s);
uint32_t m6_slot_free_blocks(const struct m6_slot *s);

struct m6_heap *m6_create(struct m6_slot *s, uint32_t flags, uint32_t initial, uint32_t max,
                          uint32_t *err);
void m6_destroy(struct m6_heap *h);
uint32_t m6_handle(const struct m6_heap *h);

/* Offsets in the slot; 0 means NULL. */
uint32_t m6_alloc(struct m6_heap *h, uint32_t flags, uint32_t n, uint32_t *err);
uint32_t m6_realloc(struct m6_heap *h, uint32_t flags, uint32_t p, uint32_t n, uint32_t *err);
bool m6_free(struct m6_heap *h, uint32_t flags, uint32_t p, uint32_t *err);
uint32_t m6_size(struct m6_heap *h, uint32_t flags, uint32_t p, uint32_t *err);
uint32_t m6_compact(struct m6_heap *h, uint32_t flags, uint32_t *err);

/* CE's per-region counters, in blocks. */
struct m6_region_state {
    uint32_t base, total, commit, rover, nfree, max;
    bool current; /* prgnfree */
};
size_t m6_region_count(const struct m6_heap *h);
void m6_region_state(const struct m6_heap *h, size_t i, struct m6_region_state *out);

#endif
