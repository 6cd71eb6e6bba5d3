/*
 * pinning.c - the sites that pin heap regions and pages (see pinning.h for
 * the rule and the contract).
 *
 * One pass over the slot's map: each heap region is found by its first
 * 'H' block and bounded by VirtualQuery (its reservation), its live blocks
 * are the run of the sorted copy that falls inside it, and its committed
 * pages are visited once each with a cursor into that run, so the whole
 * is O(blocks of the slot + committed heap pages + live blocks).  Then,
 * for each reported site that pins regions, one pass over the map with
 * its regions counted as free gives the largest free run without it.
 */
#include "record/pinning.h"

#include <string.h>

#include "cebox/winmem.h"
#include "meta.h"
#include "slot.h"

enum { NO_SITE = UINT32_MAX, SEVERAL = UINT32_MAX - 1 };

struct acc {
    uint64_t bytes;
    uint32_t regions, pages;
};

/* A region pinned by one site: its blocks in the slot. */
struct pinned {
    uint32_t first, count, stack;
};

struct work {
    struct slot *slot;
    const struct leak_block *b;
    size_t n, cur; /* cur: the first block not ending before the region being scanned */
    uintptr_t base;
    size_t gran, page, nids;
    struct acc *acc;
    struct pinned *regs;
    size_t nregs, regs_cap;
    struct pin_report *r;
};

static uint32_t joined(uint32_t who, uint32_t stack)
{
    return who == NO_SITE || who == stack ? stack : SEVERAL;
}

static uintptr_t block_end(const struct leak_block *b)
{
    return b->addr + (b->size != 0 ? b->size : 1); /* a 0-byte block still sits somewhere */
}

/* The site of the live blocks that overlap [lo, hi) (NO_SITE, one stack
 * id, or SEVERAL), looking from block `from` on; *bytes: their bytes
 * inside the range. */
static uint32_t site_in(const struct work *w, size_t from, uintptr_t lo, uintptr_t hi, uint64_t *bytes)
{
    uint32_t who = NO_SITE;
    *bytes = 0;
    for (size_t k = from; k < w->n && w->b[k].addr < hi; k++) {
        const struct leak_block *b = &w->b[k];
        if (block_end(b) <= lo) {
            continue;
        }
        uintptr_t x = b->addr > lo ? b->addr : lo, end = b->addr + b->size, y = end < hi ? end : hi;
        *bytes += y > x ? y - x : 0;
        who = joined(who, b->stack < w->nids ? b->stack : 0);
    }
    return who;
}

/* The end of the usable pages of the reservation at rbase. */
static uintptr_t region_end(const struct work *w, uintptr_t rbase)
{
    uintptr_t a = rbase;
    MEMORY_BASIC_INFORMATION m;
    while (slot_virtual_query(w->slot, (void *)a, &m) == 0 && (uintptr_t)m.AllocationBase == rbase &&
           m.State != MEM_FREE && m.RegionSize != 0) {
        a = (uintptr_t)m.BaseAddress + m.RegionSize;
    }
    return a;
}

/* Each committed page of [rbase, rend): empty, shared, or one site's
 * (then counted to it; its free bytes too unless the whole region is
 * that site's, whose free bytes the caller counts).  Returns the
 * region's committed bytes. */
static uint64_t scan_pages(struct work *w, uintptr_t rbase, uintptr_t rend, uint32_t region_site)
{
    uint64_t committed = 0;
    size_t k = w->cur;
    MEMORY_BASIC_INFORMATION m;
    for (uintptr_t a = rbase; a < rend && slot_virtual_query(w->slot, (void *)a, &m) == 0 && m.RegionSize != 0;
         a = (uintptr_t)m.BaseAddress + m.RegionSize) {
        if (m.State != MEM_COMMIT) {
            continue;
        }
        uintptr_t lo = (uintptr_t)m.BaseAddress, hi = lo + m.RegionSize;
        for (uintptr_t pg = lo; pg < hi; pg += w->page) {
            while (k < w->n && block_end(&w->b[k]) <= pg) {
                k++;
            }
            uint64_t live;
            uint32_t who = site_in(w, k, pg, pg + w->page, &live);
            committed += w->page;
            w->r->committed_pages++;
            if (who == NO_SITE) {
                w->r->empty_pages++;
            } else if (who == SEVERAL) {
                w->r->shared_pages++;
            } else {
                w->acc[who].pages++;
                w->acc[who].bytes += region_site == who ? 0 : w->page - live;
            }
        }
    }
    return committed;
}

static void note_pinned(struct work *w, uintptr_t rbase, uintptr_t rend, uint32_t stack)
{
    if (w->nregs == w->regs_cap) {
        return; /* cannot happen: at most one region per block */
    }
    uint32_t first = (uint32_t)((rbase - w->base) / w->gran);
    uint32_t last = (uint32_t)((rend - w->base + w->gran - 1) / w->gran);
    w->regs[w->nregs++] = (struct pinned){first, last - first, stack};
}

/* One heap region; returns its end. */
static uintptr_t scan_region(struct work *w, uintptr_t rbase)
{
    uintptr_t rend = region_end(w, rbase);
    while (w->cur < w->n && block_end(&w->b[w->cur]) <= rbase) {
        w->cur++;
    }
    uint64_t live;
    uint32_t who = site_in(w, w->cur, rbase, rend, &live);
    uint64_t committed = scan_pages(w, rbase, rend, who);
    w->r->regions++;
    if (who == SEVERAL) {
        w->r->shared_regions++;
    } else if (who != NO_SITE) {
        w->acc[who].regions++;
        w->acc[who].bytes += committed > live ? committed - live : 0;
        note_pinned(w, rbase, rend, who);
    }
    return rend;
}

/* The longest run of free blocks in map[0..n), counting the blocks of
 * the regions pinned by `stack` as free too (NO_SITE: none). */
static uint32_t largest_run(const struct work *w, char *map, size_t n, uint32_t stack)
{
    for (size_t i = 0; i < w->nregs; i++) {
        if (w->regs[i].stack == stack) {
            memset(map + w->regs[i].first, 'f', w->regs[i].count);
        }
    }
    uint32_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        bool free_now = map[i] == '.' || map[i] == 'f';
        run = free_now ? run + 1 : 0;
        best = run > best ? run : best;
        map[i] = map[i] == 'f' ? 'H' : map[i]; /* as it was */
    }
    return best;
}

/* The sites with most bytes (then pages), at most PIN_TOP, into r. */
static void pick_sites(struct work *w)
{
    struct pin_report *r = w->r;
    for (uint32_t id = 0; id < w->nids; id++) {
        const struct acc *a = &w->acc[id];
        if (a->pages == 0 && a->regions == 0) {
            continue;
        }
        struct pin_site t = {.stack = id, .bytes = a->bytes, .regions = a->regions, .pages = a->pages};
        size_t at = r->n < PIN_TOP ? r->n++ : PIN_TOP;
        for (; at > 0 && (r->sites[at - 1].bytes < t.bytes ||
                          (r->sites[at - 1].bytes == t.bytes && r->sites[at - 1].pages < t.pages));
             at--) {
            if (at < PIN_TOP) {
                r->sites[at] = r->sites[at - 1];
            }
        }
        if (at < PIN_TOP) {
            r->sites[at] = t;
        }
    }
}

bool pinning_compute(struct slot *s, const struct leak_block *b, size_t n, size_t nids, struct pin_report *r)
{
    memset(r, 0, sizeof *r);
    struct work w = {.slot = s, .b = b, .n = n, .base = slot_base(s), .gran = slot_granularity(s),
                     .page = slot_page_size(s), .nids = nids != 0 ? nids : 1, .r = r};
    size_t blocks = slot_size(s) / w.gran;
    char *map = meta_alloc(blocks);
    w.acc = meta_alloc(w.nids * sizeof *w.acc);
    w.regs_cap = blocks;
    w.regs = meta_alloc(w.regs_cap * sizeof *w.regs);
    r->sites = meta_alloc(PIN_TOP * sizeof *r->sites);
    bool ok = map != NULL && w.acc != NULL && w.regs != NULL && r->sites != NULL;
    if (ok) {
        size_t nmap = slot_map(s, map, blocks);
        for (size_t i = 0; i < nmap;) {
            if (map[i] != 'H') {
                i++;
                continue;
            }
            MEMORY_BASIC_INFORMATION m;
            uintptr_t at = w.base + i * w.gran;
            uintptr_t rbase = slot_virtual_query(s, (void *)at, &m) == 0 && m.AllocationBase != NULL
                                  ? (uintptr_t)m.AllocationBase : at;
            uintptr_t rend = scan_region(&w, rbase);
            size_t next = (rend - w.base + w.gran - 1) / w.gran;
            i = next > i ? next : i + 1;
        }
        pick_sites(&w);
        r->largest_free_run = largest_run(&w, map, nmap, NO_SITE);
        for (size_t i = 0; i < r->n; i++) {
            r->sites[i].free_run_without =
                r->sites[i].regions != 0 ? largest_run(&w, map, nmap, r->sites[i].stack) : r->largest_free_run;
        }
    }
    meta_free(map, blocks);
    meta_free(w.acc, w.nids * sizeof *w.acc);
    meta_free(w.regs, w.regs_cap * sizeof *w.regs);
    if (!ok) {
        meta_free(r->sites, PIN_TOP * sizeof *r->sites);
        memset(r, 0, sizeof *r);
    }
    return ok;
}

void pinning_free(struct pin_report *r)
{
    meta_free(r->sites, PIN_TOP * sizeof *r->sites);
    memset(r, 0, sizeof *r);
}
