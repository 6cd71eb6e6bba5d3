/*
 * heapmodel.h - a deliberately simple reference model of the Windows CE 5.0
 * heap, for differential tests and the benchmark.
 *
 * It shares no code with src/heap/ce5.c.  It follows the algorithm's
 * description (docs/heaps/ce5.md) line by line: item headers are kept in an
 * image of each region's memory (one int per 8 bytes), items are found by
 * walking from the first item, searches are linear.  Clarity first, speed
 * never.
 *
 * Addresses are offsets inside a fake slot of 64 KB blocks whose block 0 is
 * never handed out and whose reservations are first fit from block 1, as the
 * real slot does.  There is no RAM limit in the model.
 *
 * Error reporting mirrors the heap interface: *err receives the Win32 error
 * CE would set, or 0 when CE fails without setting one; it is untouched on
 * success.
 */
#ifndef CEBOX_HEAPMODEL_H
#define CEBOX_HEAPMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hm_slot;
struct hm_heap;

#define HM_NONE 0xFFFFFFFFu /* HeapSize's failure value */

struct hm_slot *hm_slot_new(uint32_t nblocks);
void hm_slot_free(struct hm_slot *s);
size_t hm_slot_committed_pages(const struct hm_slot *s);
uint32_t hm_slot_free_blocks(const struct hm_slot *s);

/* HeapCreate; NULL with *err on failure. */
struct hm_heap *hm_create(struct hm_slot *s, uint32_t flags, size_t initial, size_t max,
                          uint32_t *err);
/* HeapDestroy (no process-heap check: the caller's business). */
void hm_destroy(struct hm_heap *h);
/* The heap's handle: the slot offset of its first reservation. */
uint32_t hm_handle(const struct hm_heap *h);

/* Data offsets in the slot; 0 means NULL. */
uint32_t hm_alloc(struct hm_heap *h, uint32_t flags, size_t n, uint32_t *err);
uint32_t hm_realloc(struct hm_heap *h, uint32_t flags, uint32_t p, size_t n, uint32_t *err);
bool hm_free(struct hm_heap *h, uint32_t flags, uint32_t p, uint32_t *err);
uint32_t hm_size(struct hm_heap *h, uint32_t flags, uint32_t p, uint32_t *err);
uint32_t hm_compact(struct hm_heap *h, uint32_t flags, uint32_t *err);

/* CE's per-region state (slot offsets of item headers). */
struct hm_region_state {
    uint32_t base, reserved, committed;
    uint32_t rover, last, end;
    uint32_t max_free; /* raw cbMaxFree */
};
size_t hm_region_count(const struct hm_heap *h);
void hm_region_state(const struct hm_heap *h, size_t i, struct hm_region_state *out);

/* Calls fn for each maximal free run of region i (header offset, bytes), in
 * address order: the free space as it would be after every merge. */
void hm_free_runs(const struct hm_heap *h, size_t i, void (*fn)(void *ctx, uint32_t hdr, uint32_t bytes),
                  void *ctx);

#endif
