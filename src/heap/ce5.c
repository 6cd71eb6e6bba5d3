/*
 * ce5.c - the Windows CE 4.2 / 5.0 heap (coredll's LMEM heap), with
 * CE's placement and an index that keeps every operation's cost flat.
 *
 * Owns: the heaps of the ce5 algorithm, their regions and large items in
 * the slot, all of their bookkeeping (from meta.h, outside the slot), and
 * the CE 5 parameters (region size, header, rounding, large threshold).
 *
 * What CE does is docs/heaps/ce5.md ("spec §N" below): a heap is a list of
 * regions of 0x2F000 reserved bytes (§2); items carry an 8-byte header and
 * are multiples of 16 bytes (§3); each region has a rover where the next
 * search starts and a pitLast (§4) and caches its largest free size,
 * cbMaxFree, bit 0 = "estimate" (§5); a search goes from the rover to the
 * end of the region and wraps around, merging free items forward as it
 * passes them (§6); pass 1 searches regions whose hint admits the request,
 * pass 2 offers space that must be committed at a region's end, then a new
 * region is appended (§7); requests with n + 24 >= 0x18000 get a
 * reservation of their own (§11).
 *
 * How cebox does it without CE's linear scans.  Per region, a granule map
 * (granmap.h): free and item-start bits per 16-byte granule with summaries
 * and a lazily synced run tree, so "next busy", "first run of at least n
 * from p" and "longest run" cost a few word reads or O(log words).
 * Granules from the end marker on are busy, so the end marker acts like a
 * busy item.  Per heap: two max-trees over the regions in list order
 * (maxtree.h), one keyed by cbMaxFree without its estimate bit (pass 1: the
 * first region whose hint admits the request) and one by the pass-2 tail
 * capacity (cbTail + size of pitLast), with the set of regions whose hint
 * is an estimate beside it (bitsum.h: pass 2 searches those whatever their
 * tail); and a table from slot block to region / large item, so a pointer
 * is resolved in O(1).  The estimate bit is set by nearly every free and
 * cleared by every failed search, the tail capacity changes only where
 * pitLast moves: so the bit costs a word, not a climb of the tree; and the
 * tail tree takes a region's new capacity only when pass 2 reads it.  A
 * raised pass-1 key (nearly every free raises one) waits for the tree while
 * it is the only one waiting: pass 1 reads that region's own key beside
 * the tree (pass1_first).  Each index is updated where the one field it
 * depends on changes (set_last, hint_raise, hint_estimate; reindex after
 * cbMaxFree is set outright), so an operation compares no other keys.
 *
 * Why this is CE's placement exactly: CE's merging is lazy, so CE may hold
 * several adjacent free items where the bitmap shows one free run.  Every
 * decision of CE's code depends only on the maximal free runs (a search
 * merges each run before testing it, a free merges forward to the run's
 * end), on the rover and pitLast (kept here as explicit granule positions)
 * and on cbMaxFree (kept with CE's exact update rules).  The one place where
 * a run is seen only partly is a search that starts at a rover inside a run:
 * CE then tests the run from the rover on, and sees the whole run only when
 * the wrap comes back to it; region_search() does the same.  The differential
 * test (tests/test_heap_diff.c) checks this against a literal item-list model
 * of CE's code after every step.  Walks report each free run as one item.
 * Where cebox departs from CE on purpose: spec §17.
 *
 * The common allocation skips the search: where region_search is known to
 * take the map's known run at once (the rover at its start after a free,
 * or on the item carved just before it in a run of allocations), it goes
 * straight to that run (alloc_known_run) with the same effects.
 *
 * Invariants (under the heap's lock; heap_consistent checks them all), per
 * region:
 *  - granules [0, end) are items; free bits are 1 exactly for free granules;
 *    start bits are 1 exactly at the first granule of each busy item;
 *  - rover and last lie in [0, end]; last is end (the end marker) or a free
 *    granule whose run reaches end;
 *  - committed bytes = data_off + 16 * end, a multiple of the page size;
 *  - k_hint holds the region's pass-1 key (hint_key), except that the one
 *    region named by hint_pending may hold a lower one there (hint_flush);
 *    k_tail holds its pass-2 capacity (tail_capacity) unless tail_stale
 *    (the stale ones are listed: tail_sync); the estimate set holds its
 *    estimate bit;
 *  - longest is NONE or its longest free run (region_longest).
 * Per heap: the statistics are the sums over the items, and the block
 * table maps exactly the blocks of the regions and large items.
 */
#include "heap/heap.h"

#include <string.h>

#include "entry.h"
#include "heap/bitsum.h"
#include "heap/blockmap.h"
#include "heap/ce56.h"
#include "heap/granmap.h"
#include "heap/maxtree.h"
#include "invariant.h"
#include "lock.h"
#include "meta.h"
#include "os.h"
#include "ram.h"
#include "slot.h"

/* CE 5's parameters (spec §2, §3, §5, §11, §15). */
#define GRAN 16u              /* item size unit and data alignment (§3) */
#define HDR 8u                /* item header on a 32-bit device (§3) */
#define REGION_RESERVE 0x2F000u /* CE_FIXED_HEAP_MAXSIZE (§2) */
#define FIRST_DATA 0x60u      /* first region: heap header + region + item header */
#define LATER_DATA 0x30u      /* later regions: region structure + item header */
#define LARGE_DATA 0x20u      /* large item: link structure ending in the header */
#define LARGE_OVERHEAD 24u    /* large item threshold: n + 24 >= LARGE_LIMIT (§11) */
#define LARGE_LIMIT 0x18000u  /* CE_VALLOC_MINSIZE */
#define MAX_REQUEST 0x40000000u /* HEAP_MAX_ALLOC (§15) */
#define NEW_REGION_EXTRA 0x30u /* commit = PAGEUP(cbSeek + 0x30) (§2) */
#define ESTIMATE 1u           /* cbMaxFree bit 0 (§5) */
#define NONE GRANMAP_NONE
#define HOT static inline __attribute__((always_inline)) /* small, on every operation */
/* Off the common path: kept out of line so that the hot code around its
 * call keeps its values in registers. */
#define COLD static __attribute__((noinline, cold))
/* Off the common path of a small heap, but taken on most allocations of a
 * large one (searches of regions whose hint admits a request they cannot
 * serve): out of line, yet optimized for speed, not size. */
#define SLOW static __attribute__((noinline))

#define HEAP_ALLOC_FLAGS (HEAP_NO_SERIALIZE | HEAP_ZERO_MEMORY)
#define HEAP_REALLOC_FLAGS \
    (HEAP_NO_SERIALIZE | HEAP_GENERATE_EXCEPTIONS | HEAP_ZERO_MEMORY | HEAP_REALLOC_IN_PLACE_ONLY)

struct region {
    struct ce5_heap *heap;
    uintptr_t base;     /* reservation base (64 KB aligned) */
    uint32_t reserve;   /* cbRegion */
    uint32_t data_off;  /* data of granule 0 = base + data_off */
    uintptr_t data;     /* base + data_off: the address of granule 0 */
    uint32_t end;       /* granule of the end marker */
    uint32_t rover;     /* pitFree, a granule (end = the end marker) */
    uint32_t last;      /* pitLast, a granule (end = the end marker) */
    uint32_t max_free;  /* cbMaxFree, raw */
    uint32_t index;     /* position in the region list */
    /* Which granules are free and where busy items start, with the
     * indexes over them (granmap.h).  Granules from the end marker on are
     * busy, so the end marker acts like a busy item and runs end there. */
    struct granmap map;
    /* k_tail does not hold this region's capacity yet: it is listed in
     * the heap's tail_stale (see tail_sync). */
    bool tail_stale;
    /* The longest free run in granules when known without the map's run
     * tree, else NONE (region_longest, region_search_pass2).  Read from the tree, it stays true
     * through frees that start a run (a free only makes the run it starts
     * or joins longer: longest_freed), and is dropped by every other change
     * (carves, commits, in-place resizes).  Pass 2's estimated regions have
     * mostly only been freed into since their last search, so their failed
     * searches need no sync of the run tree, whose marked words then wait
     * for a search that needs the tree: a word that a free and then a
     * carve change is synced once, not twice. */
    uint32_t longest;
    size_t meta_bytes; /* this structure and its map: one meta_alloc */
};

struct large {
    struct heap_large_link link; /* first: a link is its record */
    uintptr_t base;
    size_t committed, reserve;
};

struct ce5_heap {
    struct heap common; /* handle: base of the first region (the heap header) */
    struct slot *slot;
    size_t page, gran;
    uint32_t maximum;      /* cbMaximum: 0 = growable */
    struct region **regions;
    uint32_t nregions, cap;
    /* Max-trees over the regions in list order (maxtree.h): k_hint holds
     * each region's cbMaxFree without the estimate bit (pass 1: the first
     * region whose hint admits the request), k_tail its pass-2 capacity
     * (tail_capacity).  estimated (est_words words, summarized by
     * estimated_top: bitsum.h) holds the regions whose cbMaxFree is an
     * estimate. */
    struct maxtree k_hint, k_tail;
    uint64_t *estimated, *estimated_top;
    uint32_t est_words;
    /* The regions whose key_tail k_tail does not hold yet: the tree is read
     * only by pass 2, so each change of a tail key (most allocations at a
     * region's end make one) is carried to it only then (tail_sync). */
    uint32_t *tail_stale, ntail_stale;
    /* The region whose raised pass-1 key k_hint may not hold yet (NONE:
     * none).  A raise (nearly every free, some searches) is carried to
     * the tree only when another region's raise or the rest of pass 1
     * needs it (hint_flush); pass 1's first look checks this one region's
     * own key beside the tree (pass1_first), which gives the same answer
     * as an exact tree, since the tree holds every other key exactly and a
     * lower one for this region. */
    uint32_t hint_pending;
    struct heap_blockmap blocks; /* slot block -> region, or large item | 1 */
    struct heap_large_link *large_head;
    struct heap_pool large_pool; /* records of struct large */
    size_t map_bytes;
};

/* What a pointer is, for this heap. */
enum loc { LOC_FOREIGN, LOC_INTERIOR, LOC_FREED, LOC_BUSY, LOC_LARGE };

struct where {
    enum loc loc;
    struct region *r;
    uint32_t g;
    struct large *l;
};

static struct ce5_heap *ce5(struct heap *h)
{
    return (struct ce5_heap *)h;
}

static uint32_t max2(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Size in granules of the busy item at g. */
HOT uint32_t item_size(const struct region *r, uint32_t g)
{
    return granmap_item_end(&r->map, g, r->end) - g;
}

/* ======================================================================
 * Regions
 * ====================================================================== */

static uint32_t committed_of(const struct region *r)
{
    return r->data_off + r->end * GRAN;
}

static uint32_t tail_of(const struct region *r)
{
    return r->reserve - committed_of(r);
}

static uintptr_t data_addr(const struct region *r, uint32_t g)
{
    return r->data + (uintptr_t)g * GRAN;
}

/* The pass-2 capacity (spec §7) in granules: what a region whose hint is
 * exact offers, pitLast plus the uncommitted bytes (a region whose hint is
 * an estimate is searched instead): cbTail + (end - pitLast) granules,
 * which is everything reserved from pitLast on, so it moves with pitLast
 * alone. */
HOT uint32_t tail_capacity(const struct region *r)
{
    return (r->reserve - r->data_off) / GRAN - r->last;
}

/* pitLast's rule (spec "Regions"): the end marker, or a free granule whose
 * run reaches it.  For DEBUG_INVARIANT. */
static bool last_is_tail(const struct region *r)
{
    return r->last == r->end ||
           (r->last < r->end && granmap_free(&r->map, r->last) &&
            granmap_next_busy(&r->map, r->last) == r->end);
}

/* The pass-1 key: cbMaxFree without its estimate bit, in granules (the
 * trees hold keys of 15 bits: maxtree.h).  Sizes are multiples of the
 * granule and so is every request, so "cbMaxFree >= cbSeek" (spec §7, bit
 * included) has the same answer either way, and a free that only sets the
 * bit leaves the tree alone. */
HOT uint32_t hint_key(const struct region *r)
{
    return r->max_free / GRAN;
}

/* The region's longest free run in granules (region.longest, or the run
 * tree synced). */
HOT uint32_t region_longest(struct region *r)
{
    if (r->longest == NONE) {
        r->longest = granmap_longest(&r->map);
    }
    return r->longest;
}

/* A carve: the run it takes from may have been the only longest one.
 * (Keeping the figure when the run was shorter, and measuring the run a
 * free joins, cost more where regions are few than the syncs they save.) */
HOT void longest_carved(struct region *r)
{
    r->longest = NONE;
}

/* A free of the item [g, item_end) made the free run [g, e) (the item
 * merged forward): when the granule before g is busy that is a whole run,
 * which the known longest run follows; else it joined the run before, not
 * measured.  An item that ends where the known run starts (granmap.h: the
 * last run freed) drops the figure too, though it could follow it: a
 * program that frees a region's items from the last one back (lua's
 * collector) then pays one load and test for each free after the first,
 * not the look at the granule before. */
HOT void longest_freed(struct region *r, uint32_t g, uint32_t item_end, uint32_t e)
{
    if (r->longest != NONE) {
        r->longest = item_end == r->map.run_cs || (g > 0 && granmap_free(&r->map, g - 1))
                         ? NONE
                         : max2(r->longest, e - g);
    }
}

/* Where CE's per-region state changes, the heap's indexes follow at once
 * (or are marked to follow): each index depends on one field, so a path
 * updates only what it changed instead of comparing every key. */

/* The region's bit in the heap's estimate set. */
static bool estimate_listed(const struct ce5_heap *h, uint32_t i)
{
    return (h->estimated[i >> 6] >> (i & 63)) & 1;
}

/* pitLast moves to g: the pass-2 capacity moves with it (tail_capacity),
 * and k_tail takes it when pass 2 next reads the tree (tail_sync). */
HOT void set_last(struct ce5_heap *h, struct region *r, uint32_t g)
{
    r->last = g;
    if (!r->tail_stale) {
        r->tail_stale = true;
        h->tail_stale[h->ntail_stale++] = r->index;
    }
}

/* Brings k_tail up to date with the regions' capacities, before it is read. */
static void tail_sync(struct ce5_heap *h)
{
    for (uint32_t k = 0; k < h->ntail_stale; k++) {
        struct region *r = h->regions[h->tail_stale[k]];
        maxtree_set(&h->k_tail, r->index, tail_capacity(r));
        r->tail_stale = false;
    }
    h->ntail_stale = 0;
}

/* Carries the pending raise of a pass-1 key (hint_pending) to k_hint. */
static void hint_flush(struct ce5_heap *h)
{
    uint32_t p = h->hint_pending;
    if (p != NONE) {
        h->hint_pending = NONE;
        maxtree_set(&h->k_hint, p, hint_key(h->regions[p]));
    }
}

/* Region r's pass-1 key was raised: it becomes the pending one, the
 * previous pending raise going to the tree. */
static void hint_defer(struct ce5_heap *h, struct region *r)
{
    hint_flush(h);
    h->hint_pending = r->index;
}

/* cbMaxFree rises to `bytes` (more than it was; spec §5), its estimate
 * bit kept.  Only raises are deferred: the tree then holds a lower key for
 * the pending region, which pass1_first corrects. */
HOT void hint_raise(struct ce5_heap *h, struct region *r, uint32_t bytes)
{
    r->max_free = bytes | (r->max_free & ESTIMATE);
    if (h->hint_pending != r->index) {
        hint_defer(h, r);
    }
}

/* A free makes cbMaxFree an estimate (spec §5, §9). */
HOT void hint_estimate(struct ce5_heap *h, struct region *r)
{
    if (!(r->max_free & ESTIMATE)) {
        r->max_free |= ESTIMATE;
        bitsum_set(h->estimated, h->estimated_top, r->index, true);
    }
}

/* After cbMaxFree was set outright (a failed search makes it exact, and so
 * do HeapCompact and a region's creation; it may fall): the pass-1 key and
 * the estimate bit follow it. */
static void reindex(struct ce5_heap *h, struct region *r)
{
    DEBUG_INVARIANT(r->rover <= r->end && last_is_tail(r), "rover and pitLast inside the region");
    uint32_t i = r->index, hint = hint_key(r);
    if (maxtree_key(&h->k_hint, i) != hint) {
        maxtree_set(&h->k_hint, i, hint);
    }
    bool estimate = (r->max_free & ESTIMATE) != 0;
    if (estimate_listed(h, i) != estimate) {
        bitsum_set(h->estimated, h->estimated_top, i, estimate);
    }
}

/* reindex after a failed search, which made cbMaxFree exact (no estimate
 * bit): the key, and the region out of the estimate set if it was in,
 * unless the caller takes it out (unlist false: pass 2, a word of the set
 * at a time, see unlist_estimates). */
static void reindex_exact(struct ce5_heap *h, struct region *r, bool unlist)
{
    DEBUG_INVARIANT(!(r->max_free & ESTIMATE), "a failed search makes the hint exact");
    uint32_t i = r->index, hint = hint_key(r);
    if (maxtree_key(&h->k_hint, i) != hint) {
        maxtree_set(&h->k_hint, i, hint);
    }
    if (unlist) {
        bitsum_clear(h->estimated, h->estimated_top, i);
    }
}

/* Takes the regions of `done` (bits of word w of the estimate set) out of
 * the set at once, keeping bitsum.h's invariant (a word's top bit is set
 * exactly when the word is nonzero) by hand: one store for a word of
 * pass 2's searches instead of one clear each. */
HOT void unlist_estimates(struct ce5_heap *h, uint32_t w, uint64_t done)
{
    uint64_t word = h->estimated[w] & ~done;
    h->estimated[w] = word;
    if (word == 0) {
        h->estimated_top[w >> 6] &= ~((uint64_t)1 << (w & 63));
    }
}

/* Pass 1's first region (spec §7): the first whose key admits `need`
 * granules.  k_hint is exact but for the pending region, which it may hold
 * lower: that region's own key settles whether it comes first. */
HOT uint32_t pass1_first(struct ce5_heap *h, uint32_t need)
{
    uint32_t i = maxtree_first(&h->k_hint, need);
    uint32_t p = h->hint_pending;
    if (p < i && h->regions[p]->max_free >= need * GRAN) {
        i = p;
    }
    return i;
}

/* Pass 1's next region after region i, whose search failed (k_hint exact:
 * hint_flush).  No key up to i admits `need`: those before i did not when
 * i was found, and i's search set its own to its longest run
 * (region_search_wrap), shorter than the request.  So the answer is also
 * the first from the start, which the tree's memo takes: the next
 * allocation's pass 1 (pass1_first), for as much or a little more, most
 * often starts there. */
static uint32_t pass1_next(struct ce5_heap *h, uint32_t need, uint32_t i)
{
    DEBUG_INVARIANT(hint_key(h->regions[i]) < need, "a failed search lowered its region's key");
    uint32_t next = maxtree_first_after(&h->k_hint, i + 1, need);
    maxtree_note_first(&h->k_hint, need, next);
    return next;
}

/* The totals (heap.h), one item at a time; the timeline takes them at the
 * end of the operation (every one ends in heap_leave_counted). */
static void note_live(struct ce5_heap *h, size_t bytes)
{
    heap_count_live(&h->common, bytes, 1);
}

static void note_dead(struct ce5_heap *h, size_t bytes)
{
    heap_count_dead(&h->common, bytes, 1);
}

static void note_resize(struct ce5_heap *h, size_t old_bytes, size_t new_bytes)
{
    heap_stats_resize(&h->common, old_bytes, new_bytes);
}

/* The bookkeeping of a region of `reserve` bytes, from meta_alloc: the
 * structure, then its granule map (one granule more than the data, for the
 * end marker of a full region).  NULL on failure. */
static struct region *region_map(uint32_t reserve, uint32_t data_off)
{
    uint32_t ngran = (reserve - data_off) / GRAN + 1;
    size_t off_map = align_up(sizeof(struct region), 64);
    size_t bytes = off_map + granmap_bytes(ngran);
    char *mem = meta_alloc(bytes);
    if (mem == NULL) {
        return NULL;
    }
    struct region *r = (struct region *)mem;
    r->reserve = reserve;
    r->data_off = data_off;
    granmap_init(&r->map, mem + off_map, ngran, GRAN);
    r->meta_bytes = bytes;
    return r;
}

/* Reserves and commits a region (spec §2) and its bookkeeping; on failure nothing is
 * left behind and the result is ERROR_NOT_ENOUGH_MEMORY, as CE sets. */
static DWORD region_create(struct ce5_heap *h, uint32_t reserve, uint32_t data_off, uint32_t commit,
                           struct region **out)
{
    if (h->nregions >= h->cap) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    /* Each tree grows on its own: when the second fails, the first keeps
     * its (harmless) extra room and the next try grows only the second. */
    if ((h->nregions >= h->k_hint.leaves && !maxtree_grow(&h->k_hint)) ||
        (h->nregions >= h->k_tail.leaves && !maxtree_grow(&h->k_tail))) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    struct region *r = region_map(reserve, data_off);
    if (r == NULL) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    void *base;
    if (slot_virtual_alloc(h->slot, NULL, reserve, MEM_RESERVE, PAGE_READWRITE, &base) != 0) {
        meta_free(r, r->meta_bytes);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    r->base = (uintptr_t)base;
    r->data = r->base + data_off;
    slot_set_tag(h->slot, base, SLOT_TAG_HEAP_REGION); /* before its pages: the peak's share is the heap's */
    if (heap_slot_commit(&h->common, r->base, commit) != 0) {
        slot_virtual_free(h->slot, base, 0, MEM_RELEASE);
        meta_free(r, r->meta_bytes);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    r->heap = h;
    r->end = (commit - data_off) / GRAN;
    r->rover = 0;
    r->max_free = commit - data_off;
    granmap_set(&r->map, 0, r->end, true);
    r->longest = r->end;
    r->index = h->nregions;
    set_last(h, r, 0);
    h->regions[h->nregions++] = r;
    h->common.st.regions = h->nregions;
    heap_blockmap_set(&h->blocks, r->base, reserve, (uintptr_t)r);
    reindex(h, r);
    *out = r;
    return 0;
}

/* ======================================================================
 * CE's algorithm: carve, search, allocate
 * ====================================================================== */

/* The commit of CarveItem when the item at the region's end (f granules
 * free, *f updated) is too small: the missing pages, and the hint when the
 * leftover beats it.  0 or the slot's error (nothing changed then). */
COLD DWORD carve_commit(struct ce5_heap *h, struct region *r, uint32_t need, uint32_t *f)
{
    uint32_t ex = (uint32_t)align_up((size_t)(need - *f) * GRAN + HDR, h->page);
    DWORD err = heap_slot_commit(&h->common, r->base + committed_of(r), ex);
    if (err != 0) {
        return err;
    }
    uint32_t old = r->end;
    r->end += ex / GRAN;
    granmap_set(&r->map, old, r->end, true);
    r->longest = NONE;
    *f += ex / GRAN;
    if ((*f - need) * GRAN > r->max_free) {
        hint_raise(h, r, (*f - need) * GRAN);
    }
    return 0;
}

/* CarveItem (spec §8): make `need` granules at item x busy.  x is a merged free run,
 * which ends at xend, or the end marker (x = xend = end); when it is too
 * small it lies at the region's end and the missing pages are committed.
 * With grow != NONE, the busy item `grow` (which ends at x) is enlarged
 * instead of a new item being made (realloc).  Returns 0 or the slot's
 * error (nothing changed then). */
HOT DWORD carve(struct ce5_heap *h, struct region *r, uint32_t x, uint32_t need, uint32_t grow,
                   uint32_t xend)
{
    DEBUG_INVARIANT(x == r->end ? xend == x : x < r->end && granmap_free(&r->map, x) &&
                                                  xend == granmap_next_busy(&r->map, x),
                    "carving a free item");
    uint32_t f = xend - x;
    if (f < need) {
        DWORD err = carve_commit(h, r, need, &f);
        if (err != 0) {
            return err;
        }
    }
    DEBUG_INVARIANT(f >= need, "carve has room after committing");
    if (f <= need) {
        need = f; /* only an exact fit takes all: leftovers of 16 are split */
    }
    longest_carved(r);
    granmap_take_inline(&r->map, x, need, grow == NONE); /* a grown item keeps its own start */
    if (f > need) {
        granmap_remember_run(&r->map, x + need, x + f);
    }
    uint32_t nx = x + need;
    /* nx is free exactly when a leftover was split off (f > need): the run
     * [x, x + f) was free and x + f is busy or the end. */
    if (nx == r->end || f > need) {
        if (r->rover > nx) {
            r->rover = nx;
        }
        if (x + f == r->end) {
            set_last(h, r, nx);
        }
    }
    return 0;
}

/* Sets cbMaxFree after a search that found a block (CE only raises it;
 * spec §5). */
HOT void hint_found(struct ce5_heap *h, struct region *r, uint32_t cbmax)
{
    if (cbmax * GRAN > r->max_free) {
        hint_raise(h, r, cbmax * GRAN);
    }
}

/* The end of a search that found the run [pos, e) of at least `need`
 * granules, cbmax the largest run it merged before (spec §5, §6): CE's
 * rover, pitLast and cbMaxFree.  The carve that follows every found run
 * moves pitLast on whenever this sets it (the run reaches the end marker),
 * and lists the region for k_tail then (set_last): so this only assigns. */
HOT uint32_t search_found(struct ce5_heap *h, struct region *r, uint32_t pos, uint32_t e, uint32_t need,
                          uint32_t cbmax, uint32_t *xend)
{
    r->rover = pos;
    if (e == r->end) {
        r->last = pos;
    }
    hint_found(h, r, max2(cbmax, e - pos - need));
    *xend = e;
    return pos;
}

/* The start of the free run before the end marker (granule end - 1 is
 * free): pitLast when it starts that run, as it mostly does (pitLast is the
 * end marker or a granule of that run), else found from the end. */
HOT uint32_t tail_run_start(const struct region *r)
{
    uint32_t l = r->last;
    if (l < r->end && (l == 0 || !granmap_free(&r->map, l - 1))) {
        return l;
    }
    return granmap_run_start(&r->map, r->end - 1);
}

/* set_last for the wrap, which most often finds pitLast where it was: the
 * tail capacity is then unchanged, and k_tail needs no update for it. */
static void wrap_set_last(struct ce5_heap *h, struct region *r, uint32_t g)
{
    if (r->last != g) {
        set_last(h, r, g);
    }
}

/* The end of a search of region r from s (s < end) that finds no run of
 * `need` granules (the longest run is shorter): CE's moves of the rover
 * and pitLast as its scan reaches the end marker and wraps back to s, the
 * hint made exact, and the tail offer (spec §7): the item to carve, the
 * free run before the end marker or the end marker itself, when committing
 * behind it makes room (*xend the end marker), else NONE.  Most searches of
 * a heap of many regions end here (pass 1's regions whose hint admits a
 * request that no run fits, pass 2's estimated regions), so it is a
 * function of its own with only what a failure needs.  unlist: as
 * reindex_exact. */
SLOW uint32_t region_search_fail(struct ce5_heap *h, struct region *r, uint32_t need, uint32_t s, uint32_t *xend,
                                 bool unlist)
{
    const uint32_t end = r->end;
    DEBUG_INVARIANT(s < end && granmap_longest(&r->map) < need, "a search that fails");
    /* The end marker is reached: what the scan merged so far.  pitLast
     * moves (at most once: a run holding s - 1 that reaches the end
     * starts the tail run, see below) only when the tail is free. */
    uint32_t tail = end;
    if (granmap_free(&r->map, end - 1)) {
        tail = max2(tail_run_start(r), s);
        r->rover = tail;
    } else if (s == 0) {
        /* (From a rover past the first item the wrap below moves the rover
         * again whenever any granule is free, so only a search from the
         * first item keeps this one.) */
        uint32_t q = granmap_prev_free(&r->map, end);
        if (q != NONE) {
            r->rover = granmap_run_start(&r->map, q);
        }
    }
    /* Wrap: from the first item back to the rover, no run fitting. */
    if (s > 0) {
        if (granmap_free(&r->map, s - 1)) {
            /* The last run before s is the last candidate, whether it ends at
             * s or runs on past it. */
            uint32_t r0 = granmap_run_start(&r->map, s - 1);
            r->rover = r0;
            if (granmap_next_busy(&r->map, s - 1) == end) {
                tail = r0;
            }
        } else {
            /* After the last run before s, the scan steps over busy items to
             * the first free item at or after s (already tested), if any. */
            uint32_t q = granmap_next_free(&r->map, s);
            if (q != NONE) {
                r->rover = q;
            } else {
                q = granmap_prev_free(&r->map, s);
                if (q != NONE) {
                    r->rover = granmap_run_start(&r->map, q);
                }
            }
        }
    }
    if (tail != end) {
        wrap_set_last(h, r, tail);
    }
    /* Every run has been merged, so the hint becomes exact. */
    r->max_free = region_longest(r) * GRAN;
    reindex_exact(h, r, unlist);
    if (tail_of(r) + (end - tail) * GRAN < need * GRAN + HDR) {
        return NONE;
    }
    *xend = end; /* the tail is the end marker or a run that reaches it */
    return tail;
}

/* The rest of region_search once the scan from the rover s has reached
 * the end marker with no fit: CE's moves of the rover and pitLast there,
 * then the wrap from the first item back to s.  Every run from s on was
 * too small, so when a run somewhere fits, the first fit from 0 is a run
 * that starts before s (the one holding s - 1 is seen whole this time);
 * region_search has sent the searches that fail to region_search_fail. */
SLOW uint32_t region_search_wrap(struct ce5_heap *h, struct region *r, uint32_t need, uint32_t s, bool hint_low,
                                 uint32_t *xend)
{
    const uint32_t end = r->end;
    DEBUG_INVARIANT(s > 0 && s < end, "a run that fits lies before the rover");
    if (granmap_free(&r->map, end - 1)) {
        wrap_set_last(h, r, max2(tail_run_start(r), s)); /* the rover moves on below */
    }
    uint32_t e = NONE;
    uint32_t pos = granmap_first_fit(&r->map, 0, need, &e);
    DEBUG_INVARIANT(pos < s, "the first fit lies before the rover");
    uint32_t m = 0;
    if (hint_low) {
        m = max2(granmap_longest_in(&r->map, s, end), granmap_longest_in(&r->map, 0, pos));
    }
    return search_found(h, r, pos, e, need, m, xend);
}

/* FindFreeItemInRegion (spec §6): CE's circular search from the rover, merging as it
 * goes.  Returns the item to carve: a free run of at least `need` granules,
 * or the run next to the end marker (or the end marker) when committing
 * behind it makes room; NONE otherwise.  *xend is where that item's free
 * run ends (the end marker for the end marker itself).  Moves the rover and
 * pitLast and updates cbMaxFree exactly as CE's scan does. */
HOT uint32_t region_search(struct ce5_heap *h, struct region *r, uint32_t need, uint32_t *xend)
{
    const uint32_t end = r->end;
    const uint32_t s = r->rover >= end ? 0 : r->rover;
    /* Runs passed before the found one are shorter than the request, so
     * they can raise the hint only when it is below the request. */
    const bool hint_low = r->max_free < need * GRAN;
    uint32_t p = s, cbmax = 0;

    /* The first candidate is the rover's own item, seen from the rover on. */
    if (s < end && granmap_free(&r->map, s)) {
        uint32_t e = granmap_next_busy(&r->map, s);
        if (e - s >= need) {
            return search_found(h, r, s, e, need, 0, xend);
        }
        cbmax = e - s;
        p = e;
    }
    /* Then every run up to the end marker. */
    uint32_t e = NONE;
    uint32_t pos = granmap_first_fit(&r->map, p, need, &e);
    if (pos != NONE) {
        if (hint_low) {
            cbmax = max2(cbmax, granmap_longest_in(&r->map, p, pos));
        }
        return search_found(h, r, pos, e, need, cbmax, xend);
    }
    if (region_longest(r) < need) {
        return region_search_fail(h, r, need, s, xend, true);
    }
    return region_search_wrap(h, r, need, s, hint_low, xend);
}

/* region_search for pass 2's regions whose hint is an estimate: below the
 * request (else pass 1 searched them), so most hold no run that long, and
 * pass 2 goes through them until one offers its tail.  The longest run
 * (region_longest: mostly known, else the run tree synced) says so at
 * once; such a search only moves the rover and pitLast as CE's scan does
 * and makes the hint exact (region_search_fail), without looking at the
 * rover's run or the words after it first, and leaves the region in the
 * estimate set for pass2 to take out.  (Pass 1's regions are not taken
 * this way: a free raised their hint, and most hold a run that fits near
 * the rover, found without the sync.  Even pass 1's first region, whose
 * search fails nearly always in a heap of a million blocks when the known
 * run does not serve it, succeeds there in cfrac's, which paid 6% more
 * instructions for the syncs.) */
static uint32_t region_search_pass2(struct ce5_heap *h, struct region *r, uint32_t need, uint32_t *xend)
{
    if (region_longest(r) < need) {
        return region_search_fail(h, r, need, r->rover >= r->end ? 0 : r->rover, xend, false);
    }
    return region_search(h, r, need, xend);
}

/* CarveItem (§8) of the item found, and the heap's figures: the data
 * address, or 0 with *err. */
HOT uintptr_t alloc_carve(struct ce5_heap *h, struct region *r, uint32_t x, uint32_t need, uint32_t xend,
                          DWORD *err)
{
    DWORD e = carve(h, r, x, need, NONE, xend);
    DEBUG_INVARIANT(r->rover <= r->end && last_is_tail(r), "rover and pitLast inside the region");
    if (e != 0) {
        *err = e;
        return 0;
    }
    note_live(h, (size_t)need * GRAN - HDR); /* only exact fits absorb a leftover */
    return data_addr(r, x);
}

/* Pass 2 (spec §7) for `need` granules: in list order, a region whose hint
 * is exact offers its tail when that is long enough (tail_capacity: the
 * item to carve is pitLast, whose run reaches the end marker), one whose
 * hint is an estimate is searched (region_search_pass2).  The region and,
 * in *x and *xend, the item to carve and its run's end; NULL if none.
 *
 * t is the first region whose tail offers room (k_tail is synced first,
 * and pass 2 changes no key in it: its changes wait in the stale list),
 * looked up again only once passed.  Most regions pass 2 looks at are
 * estimated ones whose search fails (pass 1 found no hint admitting the
 * request), so the estimate set is read a word at a time: its regions up
 * to t are searched in turn, and those whose hint became exact leave the
 * set together at the end of their word (no search puts a region in it,
 * so the word read first stays true meanwhile). */
static struct region *pass2(struct ce5_heap *h, uint32_t need, uint32_t *x, uint32_t *xend)
{
    tail_sync(h);
    uint32_t t = maxtree_first(&h->k_tail, need + 1);
    uint32_t from = 0;
    for (;;) {
        uint32_t i = bitsum_next(h->estimated, h->estimated_top, h->est_words, from);
        if (i > t || i == NONE) {
            /* t is not in the estimate set: its hint is exact. */
            if (t == NONE) {
                return NULL;
            }
            struct region *r = h->regions[t];
            DEBUG_INVARIANT(!(r->max_free & ESTIMATE), "an unlisted region's hint is exact");
            *x = r->last;
            *xend = r->end;
            return r;
        }
        const uint32_t w = i >> 6;
        uint64_t bits = h->estimated[w] & (~(uint64_t)0 << (i & 63)), done = 0;
        from = (w + 1) << 6;
        for (; bits != 0; bits &= bits - 1) {
            uint32_t j = (w << 6) + (uint32_t)__builtin_ctzll(bits);
            if (j > t) {
                from = j; /* t comes first */
                break;
            }
            struct region *r = h->regions[j];
            DEBUG_INVARIANT(r->max_free & ESTIMATE, "a listed region's hint is an estimate");
            *x = region_search_pass2(h, r, need, xend);
            if (!(r->max_free & ESTIMATE)) {
                done |= bits & -bits;
            }
            if (*x != NONE) {
                unlist_estimates(h, w, done);
                return r;
            }
            if (j == t) {
                t = maxtree_first_after(&h->k_tail, t + 1, need + 1);
            }
        }
        unlist_estimates(h, w, done);
    }
}

/* FindFreeItem (spec §7) past pass 1's first candidate `first` (NONE: pass
 * 1 had none), which did not fit: the rest of pass 1, pass 2, then a new
 * region.  As alloc_small_locked. */
COLD uintptr_t alloc_small_slow(struct ce5_heap *h, uint32_t need, uint32_t first, DWORD *err)
{
    const uint32_t cb = need * GRAN;
    struct region *r = NULL;
    uint32_t x = NONE, xend;
    hint_flush(h); /* the rest of pass 1 reads the tree alone */
    for (uint32_t i = first == NONE ? NONE : pass1_next(h, need, first); i != NONE; i = pass1_next(h, need, i)) {
        r = h->regions[i];
        x = region_search(h, r, need, &xend);
        if (x != NONE) {
            return alloc_carve(h, r, x, need, xend, err);
        }
    }
    r = pass2(h, need, &x, &xend);
    if (r != NULL) {
        return alloc_carve(h, r, x, need, xend, err);
    }
    if (h->maximum != 0) {
        *err = 0; /* a full fixed heap: CE sets no error */
        entry_note_reason(LOG_REASON_HEAP_FULL);
        return 0;
    }
    uint32_t commit = (uint32_t)align_up(cb + NEW_REGION_EXTRA, h->page);
    DWORD e = region_create(h, REGION_RESERVE, LATER_DATA, commit, &r);
    if (e != 0) {
        *err = e;
        return 0;
    }
    return alloc_carve(h, r, 0, need, r->end, err); /* a new region is one free item */
}

/* A search of region r whose first fit is the known run [cs, ce)
 * (granmap.h), as region_search finds it at once in the two common cases
 * (see alloc_small_locked): what search_found (cbmax 0) and then carve
 * do, in one.  The rover ends on the new item; pitLast follows the run's
 * end when the run reaches the end marker (to the leftover, or to the end
 * marker after an exact fit).  at_rover: the run starts at the rover,
 * maybe inside a longer run. */
HOT uintptr_t alloc_known_run(struct ce5_heap *h, struct region *r, uint32_t need, bool at_rover)
{
    const uint32_t cs = r->map.run_cs, ce = r->map.run_ce;
    r->rover = cs;
    hint_found(h, r, ce - cs - need);
    longest_carved(r);
    granmap_take_run_head(&r->map, need, at_rover);
    if (ce == r->end) {
        set_last(h, r, cs + need);
    }
    note_live(h, (size_t)need * GRAN - HDR);
    DEBUG_INVARIANT(last_is_tail(r), "pitLast inside the region");
    return data_addr(r, cs);
}

/* The small-item path of HeapAlloc, lock held: FindFreeItem (pass 1, pass
 * 2, new region: spec §7) and CarveItem (§8).  Returns the data address, or
 * 0 with *err (0 when CE sets no error).  Inline: pass 1's first region,
 * where nearly every request is served.
 *
 * Two cases where region_search would take the known run (granmap.h) at
 * once, if it is long enough, go straight to it (cbmax stays 0 in both):
 * the rover is the run's start (a free just made it the known run and
 * moved the rover there: the search's first candidate, seen from the
 * rover on), or the rover's item is busy and no granule from it up to the
 * run is free (a run of allocations: the last carve left the rover at the
 * item it made and its leftover as the known run), so the search passes
 * that item, merges nothing and comes to the run first. */
HOT uintptr_t alloc_small_locked(struct ce5_heap *h, uint32_t need, DWORD *err)
{
    uint32_t i = pass1_first(h, need);
    if (i != NONE) {
        struct region *r = h->regions[i];
        const uint32_t s = r->rover, cs = r->map.run_cs;
        if (r->map.run_ce - cs >= need) {
            if (s < cs && granmap_none_free(&r->map, s, cs)) {
                return alloc_known_run(h, r, need, false);
            }
            if (s == cs) {
                return alloc_known_run(h, r, need, true);
            }
        }
        uint32_t xend;
        uint32_t x = region_search(h, r, need, &xend);
        if (x != NONE) {
            return alloc_carve(h, r, x, need, xend, err);
        }
    }
    return alloc_small_slow(h, need, i, err);
}

/* ======================================================================
 * Large items (spec §11)
 * ====================================================================== */

static struct large *large_record(struct ce5_heap *h)
{
    return heap_pool_take(&h->large_pool, sizeof(struct large), _Alignof(struct large));
}

/* A large item's reservation and record, nothing committed yet: NULL with
 * *err (VirtualAlloc's error: HeapAlloc sets none itself). */
static struct large *large_reserve(struct ce5_heap *h, size_t n, DWORD *err)
{
    size_t committed = align_up(n + LARGE_DATA, h->page);
    size_t reserve = align_up(committed, h->gran);
    void *base;
    DWORD e = heap_large_map(&h->common, reserve, 0, &base);
    if (e != 0) {
        *err = e;
        return NULL;
    }
    struct large *l = large_record(h);
    if (l == NULL) {
        slot_virtual_free(h->slot, base, 0, MEM_RELEASE);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    l->base = (uintptr_t)base;
    l->committed = committed;
    l->reserve = reserve;
    return l;
}

/* Gives back what large_reserve took (its pages decommitted already). */
static void large_unreserve(struct ce5_heap *h, struct large *l)
{
    slot_virtual_free(h->slot, (void *)l->base, 0, MEM_RELEASE);
    heap_pool_give(&h->large_pool, l);
}

/* Makes a reserved and committed large item live; its data address. */
static uintptr_t large_publish(struct ce5_heap *h, struct large *l)
{
    heap_large_enter(&h->common, &h->blocks, &h->large_head, &l->link, l->base, l->reserve);
    note_live(h, l->committed - LARGE_DATA);
    return l->base + LARGE_DATA;
}

static uintptr_t alloc_large_locked(struct ce5_heap *h, size_t n, DWORD *err)
{
    struct large *l = large_reserve(h, n, err);
    if (l == NULL) {
        return 0;
    }
    DWORD e = heap_slot_commit(&h->common, l->base, l->committed);
    if (e != 0) {
        large_unreserve(h, l);
        *err = e;
        return 0;
    }
    return large_publish(h, l);
}

static void free_large_locked(struct ce5_heap *h, struct large *l)
{
    heap_large_leave(&h->common, &h->blocks, &h->large_head, &l->link, l->base, l->reserve);
    note_dead(h, l->committed - LARGE_DATA);
    heap_slot_decommit(&h->common, l->base, l->committed);
    large_unreserve(h, l);
}

/* HeapReAlloc's move of large item `old` to a new one of n bytes (larger:
 * large items never shrink), lock held: CE allocates the new item, copies
 * the old one's usable bytes and frees it.  Here the old pages move into
 * the new item and only its tail is committed.  The new data address, or
 * 0 with *err, the old item unchanged. */
static uintptr_t move_large_locked(struct ce5_heap *h, struct large *old, size_t n, DWORD *err)
{
    struct large *l = large_reserve(h, n, err);
    if (l == NULL) {
        return 0;
    }
    size_t head = old->committed;
    DEBUG_INVARIANT(head < l->committed, "a moved large item grows");
    DWORD e = heap_large_take_pages(&h->common, l->base, l->committed, old->base, head, false);
    if (e != 0) {
        large_unreserve(h, l);
        *err = e;
        return 0;
    }
    uintptr_t q = large_publish(h, l);
    free_large_locked(h, old);
    return q;
}

/* ======================================================================
 * Pointers
 * ====================================================================== */

HOT struct where locate(const struct ce5_heap *h, const void *p)
{
    struct where w = {LOC_FOREIGN, NULL, 0, NULL};
    uintptr_t a = (uintptr_t)p;
    uintptr_t tag = heap_blockmap_get(&h->blocks, a);
    if (tag == 0) {
        return w;
    }
    if (tag & HEAP_BLOCKMAP_LARGE) {
        w.l = (struct large *)(tag & ~HEAP_BLOCKMAP_LARGE);
        w.loc = a == w.l->base + LARGE_DATA ? LOC_LARGE : LOC_INTERIOR;
        return w;
    }
    struct region *r = (struct region *)tag;
    w.r = r;
    w.loc = LOC_INTERIOR;
    /* (An address before the data wraps round to a huge offset.) */
    uintptr_t off = a - r->data;
    if (off % GRAN != 0 || off / GRAN >= r->end) {
        return w;
    }
    uint32_t g = (uint32_t)(off / GRAN);
    w.g = g;
    if (granmap_start(&r->map, g)) {
        w.loc = LOC_BUSY;
    } else if (granmap_free(&r->map, g)) {
        w.loc = LOC_FREED;
    }
    return w;
}

static enum heap_bad_kind bad_kind(enum loc loc)
{
    return loc == LOC_FOREIGN ? HEAP_BAD_FOREIGN : loc == LOC_FREED ? HEAP_BAD_FREED : HEAP_BAD_INTERIOR;
}

/* Counts a refused pointer (lock held); the caller reports it after unlocking. */
static void count_bad(struct ce5_heap *h)
{
    h->common.st.bad_pointers++;
}

/* The error of a refused pointer (lock not held).  CE 5's Int_HeapFree and
 * Int_HeapSize set none for freed space, nor for another heap's item: they
 * read the owner from the item's header and simply fail when it is not this
 * heap.  Anything else would be CE's "p < 0x10000" parameter check or a
 * fault: ERROR_INVALID_PARAMETER. */
static DWORD refusal_error(const struct ce5_heap *h, enum loc loc, const void *p)
{
    if (loc == LOC_FREED || (loc == LOC_FOREIGN && heap_item_of_another(&h->common, p))) {
        return 0;
    }
    return ERROR_INVALID_PARAMETER;
}

static void zero(uintptr_t from, uintptr_t to)
{
    if (to > from) {
        memset((void *)from, 0, to - from);
    }
}

/* The slack of a carve (under 16 bytes, as items are multiples of 16):
 * two overlapping stores instead of a call, on every allocation (a loop
 * over the bytes of a short one would be made a call of memset). */
HOT void zero_slack(uintptr_t from, uintptr_t to)
{
    size_t len = to - from;
    static const uint64_t z8 = 0;
    static const uint32_t z4 = 0;
    static const uint16_t z2 = 0;
    if (len >= 8) {
        memcpy((void *)from, &z8, 8);
        memcpy((void *)(to - 8), &z8, 8);
    } else if (len >= 4) {
        memcpy((void *)from, &z4, 4);
        memcpy((void *)(to - 4), &z4, 4);
    } else if (len >= 2) {
        memcpy((void *)from, &z2, 2);
        memcpy((void *)(to - 2), &z2, 2);
    } else if (len == 1) {
        *(unsigned char *)from = 0;
    }
}

/* ======================================================================
 * The operations
 * ====================================================================== */

/* HeapCreate (spec §14); flags as spec §15. */
static struct heap *ce5_create(struct slot *s, DWORD flags, size_t initial, size_t max, DWORD *err)
{
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    const uint32_t page = (uint32_t)slot_page_size(s);
    /* CE's 32-bit arithmetic: a size near 4 GB rounds up to 0. */
    uint32_t ini = initial > UINT32_MAX ? UINT32_MAX : (uint32_t)initial;
    uint32_t mx = max > UINT32_MAX ? UINT32_MAX : (uint32_t)max;
    ini = (ini + page - 1) & ~(page - 1);
    mx = (mx + page - 1) & ~(page - 1);
    uint32_t reserve = mx != 0 ? mx : REGION_RESERVE;
    ini = ini == 0 ? page : (ini < reserve ? ini : reserve);

    size_t gran = slot_granularity(s);
    size_t nblocks = slot_size(s) / gran;
    uint32_t cap = mx != 0 ? 1 : (uint32_t)(nblocks / 3 + 1);
    size_t off_regions = align_up(sizeof(struct ce5_heap), 64);
    uint32_t est_words = (cap + 63) / 64;
    size_t off_estimated = off_regions + align_up((size_t)cap * sizeof(struct region *), 64);
    size_t est_bytes = (size_t)(est_words + (est_words + 63) / 64) * sizeof(uint64_t);
    size_t off_stale = off_estimated + align_up(est_bytes, 64);
    size_t off_blocks = off_stale + align_up((size_t)cap * sizeof(uint32_t), 64);
    size_t bytes = align_up(off_blocks + heap_blockmap_bytes(slot_size(s), gran), os_page_size());
    char *mem = meta_alloc(bytes);
    if (mem == NULL) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    struct ce5_heap *h = (struct ce5_heap *)mem;
    h->common.ops = &heap_ce5_ops;
    h->common.slot = s;
    h->slot = s;
    h->page = page;
    h->gran = gran;
    h->maximum = mx;
    h->regions = (struct region **)(mem + off_regions);
    h->tail_stale = (uint32_t *)(mem + off_stale);
    h->hint_pending = NONE;
    h->cap = cap;
    h->estimated = (uint64_t *)(mem + off_estimated);
    h->estimated_top = h->estimated + est_words;
    h->est_words = est_words;
    heap_blockmap_init(&h->blocks, slot_base(s), slot_size(s), gran, (uintptr_t *)(mem + off_blocks));
    h->map_bytes = bytes;
    struct region *r;
    DWORD e = ERROR_NOT_ENOUGH_MEMORY;
    if (maxtree_init(&h->k_hint, 4) && maxtree_init(&h->k_tail, 4)) {
        e = region_create(h, reserve, FIRST_DATA, ini, &r);
    }
    if (e != 0) {
        maxtree_destroy(&h->k_hint);
        maxtree_destroy(&h->k_tail);
        meta_free(mem, bytes);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    h->common.handle = r->base;
    return &h->common;
}

static bool ce5_destroy(struct heap *hh, DWORD *err)
{
    (void)err;
    struct ce5_heap *h = ce5(hh);
    lock_enter(&h->common.lock);
    while (h->large_head != NULL) {
        free_large_locked(h, (struct large *)h->large_head);
    }
    for (uint32_t i = h->nregions; i-- > 0;) {
        struct region *r = h->regions[i];
        heap_slot_decommit(&h->common, r->base, r->reserve);
        slot_virtual_free(h->slot, (void *)r->base, 0, MEM_RELEASE);
        meta_free(r, r->meta_bytes);
    }
    heap_pool_destroy(&h->large_pool);
    maxtree_destroy(&h->k_hint);
    maxtree_destroy(&h->k_tail);
    lock_leave(&h->common.lock); /* no figures of a heap that is gone */
    meta_free(h, h->map_bytes);
    return true;
}

/* HeapAlloc's small items (§7-§8) under the lock, then CE's zeroing. */
HOT void *alloc_small(struct ce5_heap *h, DWORD flags, size_t n, DWORD *err)
{
    lock_enter(&h->common.lock);
    /* Only an exact fit absorbs its leftover, so the item is always cbSeek. */
    size_t cbseek = align_up(n + HDR, GRAN);
    uintptr_t p = alloc_small_locked(h, (uint32_t)(cbseek / GRAN), err);
    heap_leave_counted(&h->common);
    if (p != 0) {
        /* CE zeroes the slack after the request on every carve. */
        if (flags & HEAP_ZERO_MEMORY) {
            zero(p, p + cbseek - HDR);
        } else {
            zero_slack(p + n, p + cbseek - HDR);
        }
    }
    return (void *)p;
}

/* HeapAlloc of a request at or above the large threshold: too large (spec
 * §15), a large item (§11), or in a fixed heap a small one. */
COLD void *alloc_big(struct ce5_heap *h, DWORD flags, size_t n, DWORD *err)
{
    if (n > MAX_REQUEST) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
        entry_note_reason(LOG_REASON_TOO_LARGE);
        return NULL;
    }
    if (h->maximum != 0) {
        return alloc_small(h, flags, n, err);
    }
    lock_enter(&h->common.lock);
    uintptr_t p = alloc_large_locked(h, n, err);
    heap_leave_counted(&h->common);
    return (void *)p; /* fresh pages are zero: HEAP_ZERO_MEMORY has nothing to do */
}

/* HeapAlloc: large items (spec §11), else §7-§8; errors as spec §15.  One
 * test sends every request that is not small to alloc_big (MAX_REQUEST
 * lies above the large threshold). */
static void *ce5_alloc(struct heap *hh, DWORD flags, size_t n, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_ALLOC_FLAGS) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    if (__builtin_expect(n >= LARGE_LIMIT - LARGE_OVERHEAD, 0)) {
        return alloc_big(h, flags, n, err);
    }
    return alloc_small(h, flags, n, err);
}

/* HeapFree of a busy small item, lock held (spec §9). */
HOT void free_small_locked(struct ce5_heap *h, struct region *r, uint32_t g)
{
    DEBUG_INVARIANT(g < r->end && granmap_start(&r->map, g), "freeing a busy item");
    uint32_t e;
    uint32_t sz = granmap_free_item(&r->map, g, r->end, &e) - g;
    note_dead(h, (size_t)sz * GRAN - HDR);
    longest_freed(r, g, g + sz, e); /* (before the known run moves to this one) */
    granmap_remember_run(&r->map, g, e);
    uint32_t merged = (e - g) * GRAN;
    r->rover = g;
    if (e == r->end) {
        set_last(h, r, g);
    }
    hint_estimate(h, r);
    if (r->max_free < merged) {
        hint_raise(h, r, merged);
    }
    DEBUG_INVARIANT(r->rover <= r->end && last_is_tail(r), "rover and pitLast inside the region");
}

/* HeapFree (spec §9); pointers that are not busy blocks: spec §17. */
static bool ce5_free(struct heap *hh, DWORD flags, void *p, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return false;
    }
    lock_enter(&h->common.lock);
    struct where w = locate(h, p);
    if (w.loc == LOC_BUSY) {
        free_small_locked(h, w.r, w.g);
    } else if (w.loc == LOC_LARGE) {
        free_large_locked(h, w.l);
    } else {
        count_bad(h);
    }
    heap_leave_counted(&h->common);
    if (w.loc == LOC_BUSY || w.loc == LOC_LARGE) {
        return true;
    }
    *err = refusal_error(h, w.loc, p);
    heap_report_bad_pointer("HeapFree", (void *)h->common.handle, p, bad_kind(w.loc));
    return false;
}

/* HeapSize (spec §12). */
static size_t ce5_size(struct heap *hh, DWORD flags, const void *p, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return (size_t)-1;
    }
    size_t n = (size_t)-1;
    lock_enter(&h->common.lock);
    struct where w = locate(h, p);
    if (w.loc == LOC_BUSY) {
        n = (size_t)item_size(w.r, w.g) * GRAN - HDR;
    } else if (w.loc == LOC_LARGE) {
        n = w.l->committed - LARGE_DATA;
    } else {
        count_bad(h);
    }
    heap_leave_counted(&h->common);
    if (n == (size_t)-1) {
        *err = refusal_error(h, w.loc, p);
        heap_report_bad_pointer("HeapSize", (void *)h->common.handle, p, bad_kind(w.loc));
    }
    return n;
}

enum in_place { IP_DONE, IP_MOVE, IP_FAILED };

/* In-place resize of a busy small item to `need` granules (CE's rules,
 * spec §10.1-10.3), lock held.  IP_FAILED: the commit at the region's end failed,
 * and CE 5 then gives up without moving.  On IP_DONE, [*zfrom, *zto) must
 * be zeroed (after unlocking). */
static enum in_place realloc_in_place_locked(struct ce5_heap *h, struct region *r, uint32_t g,
                                             uint32_t need, size_t n, DWORD flags,
                                             uintptr_t *zfrom, uintptr_t *zto)
{
    uint32_t cur = item_size(r, g);
    uintptr_t data = data_addr(r, g);
    if (need <= cur) {
        if (cur > need) { /* a difference of 16 bytes or more is split off, */
            /* not merged, rover and pitLast unchanged */
            granmap_set(&r->map, g + need, g + cur, true);
            r->longest = NONE;
            note_resize(h, (size_t)cur * GRAN, (size_t)need * GRAN);
            uint32_t split = (cur - need) * GRAN;
            if (r->max_free < split) {
                hint_raise(h, r, split);
            }
        }
        return IP_DONE;
    }
    uint32_t nx = g + cur;
    if (nx < r->end && !granmap_free(&r->map, nx)) {
        return IP_MOVE; /* next item busy: nothing changes */
    }
    uint32_t free_g = 0;
    bool at_end = true;
    if (nx < r->end) {
        uint32_t e = granmap_next_busy(&r->map, nx);
        r->rover = nx; /* Merge(N) moves the rover even if the grow fails */
        if (e == r->end) {
            set_last(h, r, nx);
        }
        free_g = e - nx;
        at_end = e == r->end;
    }
    bool fits = cur + free_g >= need ||
                (at_end && (size_t)(cur + free_g) * GRAN + tail_of(r) > (size_t)need * GRAN);
    if (!fits) {
        return IP_MOVE;
    }
    if (carve(h, r, nx, need - cur, g, nx + free_g) != 0) {
        return IP_FAILED;
    }
    uint32_t grown = item_size(r, g);
    if (r->rover > g) {
        r->rover = g + grown;
    }
    note_resize(h, (size_t)cur * GRAN, (size_t)grown * GRAN);
    /* Carving zeroes the slack after n; HEAP_ZERO_MEMORY the whole new part. */
    *zfrom = (flags & HEAP_ZERO_MEMORY) ? data + (size_t)cur * GRAN - HDR : data + n;
    *zto = data + (size_t)grown * GRAN - HDR;
    return IP_DONE;
}

/* HeapReAlloc (spec §10). */
static void *ce5_realloc(struct heap *hh, DWORD flags, void *p, size_t n, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_REALLOC_FLAGS) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    if (flags & HEAP_GENERATE_EXCEPTIONS) {
        *err = ERROR_NOT_SUPPORTED;
        return NULL;
    }
    lock_enter(&h->common.lock);
    struct where w = locate(h, p);
    if (w.loc != LOC_BUSY && w.loc != LOC_LARGE) {
        count_bad(h);
        heap_leave_counted(&h->common);
        *err = ERROR_INVALID_PARAMETER; /* freed blocks too: header size <= 0 */
        heap_report_bad_pointer("HeapReAlloc", (void *)h->common.handle, p, bad_kind(w.loc));
        return NULL;
    }
    if (n > MAX_REQUEST) {
        heap_leave_counted(&h->common);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        entry_note_reason(LOG_REASON_TOO_LARGE);
        return NULL;
    }
    size_t old_usable;
    uintptr_t zfrom = 0, zto = 0;
    if (w.loc == LOC_LARGE) {
        /* Large items never shrink and never grow in place. */
        if (align_up(n + LARGE_DATA, h->page) <= w.l->committed) {
            heap_leave_counted(&h->common);
            return p;
        }
        old_usable = w.l->committed - LARGE_DATA;
    } else {
        uint32_t need = (uint32_t)(align_up(n + HDR, GRAN) / GRAN);
        old_usable = (size_t)item_size(w.r, w.g) * GRAN - HDR;
        enum in_place ip = realloc_in_place_locked(h, w.r, w.g, need, n, flags, &zfrom, &zto);
        if (ip != IP_MOVE) {
            heap_leave_counted(&h->common);
            if (ip == IP_FAILED) {
                *err = ERROR_NOT_ENOUGH_MEMORY;
                return NULL;
            }
            zero(zfrom, zto);
            return p;
        }
    }
    if (flags & HEAP_REALLOC_IN_PLACE_ONLY) {
        heap_leave_counted(&h->common);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        entry_note_reason(LOG_REASON_IN_PLACE);
        return NULL;
    }
    if (w.loc == LOC_LARGE) {
        uintptr_t q = move_large_locked(h, w.l, n, err);
        heap_leave_counted(&h->common);
        return (void *)q;
    }
    /* Move of a small item: allocate first (so the old place cannot be
     * reused), copy the old usable size, free the old item. */
    uintptr_t q;
    if (h->maximum == 0 && n + LARGE_OVERHEAD >= LARGE_LIMIT) {
        q = alloc_large_locked(h, n, err);
    } else {
        q = alloc_small_locked(h, (uint32_t)(align_up(n + HDR, GRAN) / GRAN), err);
    }
    if (q == 0) {
        heap_leave_counted(&h->common);
        return NULL;
    }
    struct where nw = locate(h, (void *)q);
    size_t new_usable = nw.loc == LOC_LARGE ? nw.l->committed - LARGE_DATA
                                            : (size_t)item_size(nw.r, nw.g) * GRAN - HDR;
    memcpy((void *)q, p, old_usable);
    if (nw.loc == LOC_BUSY) {
        /* The carve's slack zeroing, then the flag's. */
        zero(q + ((flags & HEAP_ZERO_MEMORY) ? old_usable : (n > old_usable ? n : old_usable)),
             q + new_usable);
    }
    free_small_locked(h, w.r, w.g);
    heap_leave_counted(&h->common);
    return (void *)q;
}

/* HeapCompact (spec §13). */
static size_t ce5_compact(struct heap *hh, DWORD flags, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return 0;
    }
    uint32_t best = 0;
    lock_enter(&h->common.lock);
    for (uint32_t i = 0; i < h->nregions; i++) {
        struct region *r = h->regions[i];
        uint32_t q = r->end > 0 ? granmap_prev_free(&r->map, r->end) : NONE;
        if (q != NONE) {
            /* Every run is merged; the rover ends at the last one. */
            uint32_t t = granmap_run_start(&r->map, q);
            r->rover = t;
            if (q == r->end - 1) {
                set_last(h, r, t);
                uint32_t size = (r->end - t) * GRAN;
                if (size >= h->page) {
                    uintptr_t hdr = data_addr(r, t) - HDR;
                    uint32_t head = (uint32_t)(h->page - (hdr & (h->page - 1)) - HDR);
                    uint32_t ex = (size - head) & ~(uint32_t)(h->page - 1);
                    uint32_t old_end = r->end;
                    r->end = t + head / GRAN;
                    granmap_set(&r->map, r->end, old_end, false);
                    r->longest = NONE;
                    heap_slot_decommit(&h->common, hdr + head + HDR, ex);
                }
            }
        }
        r->max_free = region_longest(r) * GRAN;
        reindex(h, r);
        best = max2(best, r->max_free);
    }
    heap_leave_counted(&h->common);
    return best;
}

/* ======================================================================
 * Consistency: HeapValidate(heap, 0, NULL), and after every step of the
 * differential test in a debug build.  Each check reads the structures
 * granule by granule, as if nothing were cached, and compares.
 * ====================================================================== */

/* The items tile [0, end): a busy item starts with a start bit and runs to
 * the next start or free granule; free granules carry no start bit; nothing
 * from the end marker on is free or starts an item; the known longest free
 * run (region.longest), if any, is the longest the walk finds.  Adds up
 * the busy items' usable bytes and count. */
static bool items_consistent(const struct region *r, size_t *live_bytes, size_t *live_blocks)
{
    uint32_t g = 0, longest = 0;
    while (g < r->end) {
        if (granmap_start(&r->map, g)) {
            uint32_t e = granmap_item_end(&r->map, g, r->end);
            *live_bytes += (size_t)(e - g) * GRAN - HDR;
            ++*live_blocks;
            g = e;
        } else if (granmap_free(&r->map, g)) {
            uint32_t e = granmap_next_busy(&r->map, g);
            longest = max2(longest, e - g);
            g = e;
        } else {
            return false; /* a busy granule outside any item */
        }
    }
    if (r->longest != NONE && r->longest != longest) {
        return false; /* the known longest run is not the walk's */
    }
    for (uint32_t k = r->end; k < r->map.nwords * 64; k++) {
        if (granmap_free(&r->map, k) || granmap_start(&r->map, k)) {
            return false;
        }
    }
    return true;
}

/* CE's own per-region state: rover and pitLast in range, pitLast on the end
 * marker or in the run before it (CE's items may split a run, so not
 * necessarily at the run's start), committed pages whole, cbMaxFree a
 * multiple of the granule apart from its estimate bit. */
static bool ce_state_consistent(const struct ce5_heap *h, const struct region *r)
{
    return r->rover <= r->end && last_is_tail(r) && r->end < r->map.ngran &&
           committed_of(r) % h->page == 0 && committed_of(r) <= r->reserve &&
           r->map.run_ce <= r->end && ((r->max_free & ~ESTIMATE) % GRAN) == 0 &&
           (r->max_free & ~ESTIMATE) <= r->reserve;
}

/* Region i's keys in the heap's region trees and its estimate set against
 * its state (once the deferred keys are in the trees). */
static bool keys_consistent(const struct ce5_heap *h, uint32_t i, const struct region *r)
{
    return r->index == i && r->heap == h && !r->tail_stale && maxtree_key(&h->k_hint, i) == hint_key(r) &&
           maxtree_key(&h->k_tail, i) == tail_capacity(r) &&
           estimate_listed(h, i) == ((r->max_free & ESTIMATE) != 0);
}

/* A region tree: consistent, large enough, and 0 past the last region. */
static bool tree_consistent(const struct maxtree *t, uint32_t nregions)
{
    if (!maxtree_consistent(t) || t->leaves < nregions) {
        return false;
    }
    for (uint32_t i = nregions; i < t->leaves; i++) {
        if (maxtree_key(t, i) != 0) {
            return false;
        }
    }
    return true;
}

/* The whole heap, lock held: every region's map and items, CE's state, the
 * cached keys and trees, the block table, the large-item list and the
 * totals of the statistics. */
static bool heap_consistent(struct ce5_heap *h)
{
    size_t live_bytes = 0, live_blocks = 0, committed = 0, tagged = 0;
    tail_sync(h);
    uint32_t p = h->hint_pending;
    if (p != NONE && (p >= h->nregions || maxtree_key(&h->k_hint, p) > hint_key(h->regions[p]))) {
        return false; /* the tree may hold a pending key too low, never too high */
    }
    hint_flush(h);
    if (h->nregions == 0 || h->nregions > h->cap || !tree_consistent(&h->k_hint, h->nregions) ||
        !tree_consistent(&h->k_tail, h->nregions) ||
        !bitsum_consistent(h->estimated, h->estimated_top, h->est_words) ||
        bitsum_next(h->estimated, h->estimated_top, h->est_words, h->nregions) != BITSUM_NONE) {
        return false;
    }
    for (uint32_t i = 0; i < h->nregions; i++) {
        struct region *r = h->regions[i];
        if (!granmap_consistent(&r->map) || !items_consistent(r, &live_bytes, &live_blocks) ||
            !ce_state_consistent(h, r) || !keys_consistent(h, i, r) ||
            !heap_blockmap_tagged(&h->blocks, r->base, r->reserve, (uintptr_t)r, &tagged)) {
            return false;
        }
        committed += committed_of(r);
    }
    size_t nlarge = 0;
    for (const struct heap_large_link *k = h->large_head, *prev = NULL; k != NULL;
         prev = k, k = k->next) {
        const struct large *l = (const struct large *)k;
        if (k->prev != prev || l->committed > l->reserve ||
            !heap_blockmap_tagged(&h->blocks, l->base, l->reserve, (uintptr_t)l | HEAP_BLOCKMAP_LARGE,
                                  &tagged)) {
            return false;
        }
        live_bytes += l->committed - LARGE_DATA;
        live_blocks++;
        committed += l->committed;
        nlarge++;
    }
    return heap_blockmap_used(&h->blocks) == tagged && live_bytes == h->common.st.live_bytes &&
           live_blocks == h->common.st.live_blocks && committed == h->common.st.committed_bytes &&
           h->common.st.regions == h->nregions && h->common.st.large_items == nlarge;
}

static bool ce5_busy_item(struct heap *hh, const void *p)
{
    enum loc loc = locate(ce5(hh), p).loc;
    return loc == LOC_BUSY || loc == LOC_LARGE;
}

static bool ce5_consistent(struct heap *hh)
{
    return heap_consistent(ce5(hh));
}

static void ce5_walk(struct heap *hh, heap_walk_fn fn, void *ctx)
{
    struct ce5_heap *h = ce5(hh);
    lock_enter(&h->common.lock);
    bool go = true;
    for (uint32_t i = 0; go && i < h->nregions; i++) {
        const struct region *r = h->regions[i];
        struct heap_walk_entry e = {HEAP_WALK_REGION, r->base, r->reserve, committed_of(r), true};
        go = fn(ctx, &e);
        for (uint32_t g = 0; go && g < r->end;) {
            bool busy = granmap_start(&r->map, g);
            uint32_t next =
                busy ? granmap_item_end(&r->map, g, r->end) : granmap_next_busy(&r->map, g);
            struct heap_walk_entry it = {HEAP_WALK_ITEM, data_addr(r, g),
                                         (size_t)(next - g) * GRAN - HDR, 0, busy};
            go = fn(ctx, &it);
            g = next;
        }
    }
    for (const struct large *l = (struct large *)h->large_head; go && l != NULL;
         l = (struct large *)l->link.next) {
        struct heap_walk_entry e = {HEAP_WALK_LARGE, l->base + LARGE_DATA, l->committed - LARGE_DATA,
                                    l->committed, true};
        go = fn(ctx, &e);
    }
    heap_leave_counted(&h->common);
}

/* The timeline's free figures: a free item is a maximal free run of a
 * region (as the walk reports it), its usable bytes the run less a header;
 * the region's header lies before granule 0, so no empty page holds it. */
static void ce5_free_figures(struct heap *hh, struct heap_free_figures *out)
{
    struct ce5_heap *h = ce5(hh);
    *out = (struct heap_free_figures){0};
    for (uint32_t i = 0; i < h->nregions; i++) {
        const struct region *r = h->regions[i];
        heap_free_figures_add(out, &r->map, 0, r->end, data_addr(r, 0) - HDR, h->page, GRAN, HDR);
    }
}

bool heap_ce5_region_state(struct heap *hh, size_t i, struct heap_ce5_region_state *out)
{
    struct ce5_heap *h = ce5(hh);
    lock_enter(&h->common.lock);
    bool ok = i < h->nregions;
    if (ok) {
        const struct region *r = h->regions[i];
        uintptr_t hdr0 = r->base + r->data_off - HDR - h->blocks.base;
        out->base = r->base - h->blocks.base;
        out->reserved = r->reserve;
        out->committed = committed_of(r);
        out->rover = hdr0 + (uintptr_t)r->rover * GRAN;
        out->last = hdr0 + (uintptr_t)r->last * GRAN;
        out->end = hdr0 + (uintptr_t)r->end * GRAN;
        out->max_free = r->max_free;
    }
    heap_leave_counted(&h->common);
    return ok;
}

HEAP_OPS_DEFINE(ce5, GRAN);
