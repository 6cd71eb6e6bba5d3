/*
 * ce56.h - what the CE 5 and CE 6 heaps (ce5.c, ce6.c) do alike: a large
 * item's pages in the slot and its place in the heap's list and block map,
 * and the timeline's free figures of a region's granule map.
 *
 * Owns nothing: each heap keeps its own large-item records (their fields
 * differ: CE 6 keeps the requested size, a record in the process heap, a
 * pin), and decides the sizes, the order of its steps and what it counts;
 * these helpers are the steps.  All run with the heap's lock held.
 *
 * Invariants: a large item's blocks are tagged as a heap's large item
 * before any of its pages is committed (the peak's share of them is the
 * heap's); a failed map leaves nothing reserved; placement is the slot's
 * (first fit of the reservation), so both heaps place exactly as before.
 */
#ifndef CEBOX_HEAP_CE56_H
#define CEBOX_HEAP_CE56_H

#include "heap/blockmap.h"
#include "heap/granmap.h"
#include "heap/heap.h"
#include "slot.h"

/* Reserves `reserve` bytes anywhere in h's slot for a large item and
 * commits (and counts) its first `committed` (none for 0).  0 with *base,
 * or the slot's error with nothing left reserved. */
static inline DWORD heap_large_map(struct heap *h, size_t reserve, size_t committed, void **base)
{
    DWORD e = slot_virtual_alloc(h->slot, NULL, reserve, MEM_RESERVE, PAGE_READWRITE, base);
    if (e != 0) {
        return e;
    }
    slot_set_tag(h->slot, *base, SLOT_TAG_HEAP_LARGE);
    e = committed == 0 ? 0 : heap_slot_commit(h, (uintptr_t)*base, committed);
    if (e != 0) {
        slot_virtual_free(h->slot, *base, 0, MEM_RELEASE);
    }
    return e;
}

/* A moving large item's pages: the new reservation at base commits its
 * tail past `head` bytes (committed in all; as a growth, reading ahead,
 * where the heap grows its large items in place), then takes the old
 * item's first `head` committed bytes at old_base over
 * (heap_slot_take_pages).  0, or the error with the new tail decommitted
 * and the old item as it was. */
static inline DWORD heap_large_take_pages(struct heap *h, uintptr_t base, size_t committed, uintptr_t old_base,
                                          size_t head, bool grows)
{
    DWORD e = grows ? heap_slot_commit_growth(h, base + head, committed - head)
                    : heap_slot_commit(h, base + head, committed - head);
    if (e == 0) {
        e = heap_slot_take_pages(h, base, old_base, head);
        if (e != 0) {
            heap_slot_decommit(h, base + head, committed - head);
        }
    }
    return e;
}

/* Links a large item's record onto *head (heap_large_push) and tags the
 * blocks of its reservation [base, base + reserve) in m with it. */
static inline void heap_large_enter(struct heap *h, struct heap_blockmap *m, struct heap_large_link **head,
                                    struct heap_large_link *l, uintptr_t base, size_t reserve)
{
    heap_large_push(h, head, l);
    heap_blockmap_set(m, base, reserve, (uintptr_t)l | HEAP_BLOCKMAP_LARGE);
}

/* The reverse of heap_large_enter. */
static inline void heap_large_leave(struct heap *h, struct heap_blockmap *m, struct heap_large_link **head,
                                    struct heap_large_link *l, uintptr_t base, size_t reserve)
{
    heap_large_unlink(h, head, l);
    heap_blockmap_set(m, base, reserve, 0);
}

/* Adds one region to the timeline's free figures: the free runs of map
 * granules [lo, hi) (granule lo at address at0), each an item of `unit`
 * bytes a granule less `header`, its empty pages, and the pass's work. */
static inline void heap_free_figures_add(struct heap_free_figures *out, const struct granmap *map, uint32_t lo,
                                         uint32_t hi, uintptr_t at0, size_t page, size_t unit, size_t header)
{
    struct granmap_runs runs;
    granmap_free_runs(map, lo, hi, at0, page, &runs);
    size_t largest = runs.longest > 0 ? (size_t)runs.longest * unit - header : 0;
    out->free_items += runs.runs;
    out->largest_free_bytes = largest > out->largest_free_bytes ? largest : out->largest_free_bytes;
    out->empty_pages += runs.pages;
    out->work += runs.runs + 1;
}

#endif
