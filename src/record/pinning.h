/*
 * pinning.h - who pins the slot (--leaks with --out): the allocation sites
 * whose live blocks keep heap regions and committed pages that would
 * otherwise hold nothing, and how far the slot's largest free run would
 * grow without them.
 *
 * Owns: the computation over one copy of the live blocks and the slot's
 * map and page states at that moment; nothing kept between calls.
 *
 * The rule, per heap region (a reservation the slot maps as 'H'; large
 * items, which hold one block each, are left out): a region whose live
 * blocks all come from one site is pinned by that site; so is, in any
 * other region, a committed page whose live bytes all come from one site.
 * A region or page that holds blocks of several sites is counted as
 * shared, one that holds none as empty: neither is any one site's.  A
 * site's bytes are the committed bytes it pins that hold no live byte (its
 * regions' committed bytes and its pages' bytes, minus its own blocks'):
 * what moving its blocks to a heap of their own would give back.
 *
 * Invariants: allocates only meta.c memory; takes the slot's lock (through
 * slot_map and slot_virtual_query), no other; reads none of the program's
 * memory.
 */
#ifndef CEBOX_PINNING_H
#define CEBOX_PINNING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/leaks.h"

struct slot;

#define PIN_TOP 64 /* sites reported, most bytes first */

struct pin_site {
    uint32_t stack;            /* the tracker's stack id */
    uint64_t bytes;            /* committed bytes holding no live byte that it pins */
    uint32_t regions, pages;   /* heap regions and committed pages it pins */
    uint32_t free_run_without; /* the slot's largest free run (blocks) were its regions released */
};

struct pin_report {
    struct pin_site *sites; /* most bytes first (meta.c memory) */
    size_t n;
    uint32_t regions, committed_pages;   /* heap regions, and their committed pages */
    uint32_t empty_pages, shared_pages;  /* committed pages with no live byte, with several sites' */
    uint32_t shared_regions;             /* regions with several sites' blocks */
    uint32_t largest_free_run;           /* blocks, now */
};

/* Computes the report from the live blocks b[0..n) (sorted by address,
 * stack ids below nids).  False (and nothing to free) when there is no
 * memory for it. */
bool pinning_compute(struct slot *s, const struct leak_block *b, size_t n, size_t nids, struct pin_report *r);

void pinning_free(struct pin_report *r);

#endif
