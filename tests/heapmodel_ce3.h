/*
 * heapmodel_ce3.h - a deliberately literal reference model of the Windows
 * CE 3.0 heap (FIXHEAP.C), for the differential test.
 *
 * It shares no code with src/heap/ce3.c.  Each region's memory is an image
 * (a byte array) holding CE's item headers where CE writes them; addresses
 * are offsets in a fake slot of 64 KB blocks whose block 0 is never handed
 * out and whose reservations are first fit from block 1.  No RAM limit (so
 * no low-memory compaction rule and no refused commit).
 *
 * *err receives the Win32 error CE 3.0's wrapper (LMEM.C) sets, or 0 when
 * it sets none; it is untouched on success.
 */
#ifndef CEBOX_HEAPMODEL_CE3_H
#define CEBOX_HEAPMODEL_CE3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct m3_slot;
struct m3_heap;

#define M3_NONE 0xFFFFFFFFu

struct m3_slot *m3_slot_new(uint32_t nblocks);
void m3_slot_free(struct m3_slot *s);
size_t m3_slot_committed_pages(const struct m3_slot *s);

/* The process heap (no memory until its first allocation). */
struct m3_heap *m3_process_heap(struct m3_slot *s);
/* HeapCreate: its descriptor is an item of the process heap. */
struct m3_heap *m3_create(struct m3_heap *process, uint32_t flags, uint32_t *err);
void m3_destroy(struct m3_heap *h);
uint32_t m3_handle(const struct m3_heap *h);

uint32_t m3_alloc(struct m3_heap *h, uint32_t flags, size_t n, uint32_t *err);
uint32_t m3_realloc(struct m3_heap *h, uint32_t flags, uint32_t p, size_t n, uint32_t *err);
bool m3_free(struct m3_heap *h, uint32_t flags, uint32_t p, uint32_t *err);
uint32_t m3_size(struct m3_heap *h, uint32_t flags, uint32_t p, uint32_t *err);

/* True when p is the data of CE's own structure: a large item's record in
 * h, or a created heap's descriptor (in the process heap).  cebox refuses
 * these as the program's blocks (docs/heaps/ce3.md §15). */
bool m3_is_internal(const struct m3_heap *h, uint32_t p);

/* CE's fields of the i-th struct heap of the chain (pMem as a slot
 * offset, 0 = none; the others relative to pMem). */
struct m3_state {
    uint32_t base, high, cur, committed, free, max_left, last_compact;
};
bool m3_region_state(const struct m3_heap *h, size_t i, struct m3_state *out);

#endif
