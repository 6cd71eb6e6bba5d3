/*
 * ce3.c - the Windows CE 3.0 heap (coredll's LMEM heap, FIXHEAP.C), item by
 * item as CE 3.0 walks it.
 *
 * Owns: the heaps of the ce3 algorithm, their regions and large items in the
 * slot, their bookkeeping (meta.h, outside the slot) and the CE 3.0
 * parameters (8-byte rounding, 0x60000 regions, 0x30000 large threshold).
 *
 * What CE 3.0 does is docs/heaps/ce3.md ("spec §N" below).  A heap is a
 * chain of regions (the heap's own, then the growth regions, newest first,
 * §2); every region is a sequence of items with an 8-byte header holding the
 * data size and two flags, free and dead (§3); allocation runs three passes
 * over the chain and then makes a growth region (§5-§8); a free merges
 * forward and may compact the region, decommitting whole free pages as dead
 * blocks (§9, §10); rounded sizes from 0x30000 get their own reservation
 * (§11).
 *
 * How: CE's item headers live in a shadow image of each region (one word
 * per 8-byte granule, outside the slot, so a program overrunning a block
 * cannot damage them); a word is non-zero exactly at an item's first
 * granule.  The passes walk the items linearly, as CE does: CE 3.0's
 * lazily merged items, its dwFree/dwMaxLeft bookkeeping and the stale
 * pNexttolast are reproduced literally, so placement, sizes and committed
 * pages are CE's by construction (tests/test_heap_diff_ce3.c holds this
 * file to the independent model tests/heapmodel_ce3.c).  The cost of an
 * allocation is therefore CE's too: linear in the items of the regions
 * searched.
 *
 * Invariants (under the heap's lock; ce3_consistent checks them), per region
 * with memory: the items tile [0, high); `free` is the sum of the free
 * items' sizes; `committed` is high minus the dead items' sizes; every page
 * holding a header or a free or busy byte is committed; cur is an item.
 * Per heap: the statistics are the sums over the items and large items.
 */
#include "heap/heap.h"

#include <pthread.h>
#include <string.h>

#include "core.h"
#include "entry.h"
#include "lock.h"
#include "meta.h"
#include "ram.h"
#include "slot.h"

/* CE 3.0's parameters (HEAP.H, FIXHEAP.C, LMEM.C; spec §2, §3, §11). */
#define G 8u                  /* ALIGNMASK + 1: rounding, header size */
#define HDR 8u                /* heaphdr: size + unused word (8-byte alignment) */
#define REGION_MAX 0x60000u   /* CE_FIXED_HEAP_MAXSIZE */
#define LARGE_MIN 0x30000u    /* CE_VALLOC_MINSIZE, compared with the rounded size */
#define DESC_BYTES 52u        /* sizeof(heap): a heap or growth descriptor */
#define VREC_BYTES 12u        /* sizeof(vaheapalloc): a large item's record */
#define NGRAN (REGION_MAX / G)
#define MAX_PAGES (REGION_MAX / 4096u)
#define LOW_RAM (2u * 1024 * 1024) /* compaction threshold drops below this */
#define ERROR_CALL_NOT_IMPLEMENTED 120u /* a missing export (HeapCompact, spec §14) */

/* Shadow header words: CE's size word, plus "this is an item" and "cebox
 * made it for CE's own structures" (a descriptor or record, never the
 * program's). */
#define W_FREE 1u     /* H_FREEBLOCK */
#define W_DEAD 2u     /* H_DEADBLOCK: no backing store */
#define W_INTERNAL 4u /* CE sizes are multiples of 8: bit 2 is spare */
#define W_SIZE 0x7FFFFFF8u
#define W_START 0x80000000u

#define ALLOC_FLAGS (HEAP_NO_SERIALIZE | HEAP_ZERO_MEMORY)
#define REALLOC_FLAGS \
    (HEAP_NO_SERIALIZE | HEAP_GENERATE_EXCEPTIONS | HEAP_ZERO_MEMORY | HEAP_REALLOC_IN_PLACE_ONLY)

/* One struct heap of CE's chain: the heap's own region or a growth region. */
struct region {
    uintptr_t base; /* pMem; 0 while the region has no memory */
    uint32_t high;  /* pHigh - pMem */
    uint32_t cur;   /* pCur - pMem */
    uint32_t nexttolast;
    uint32_t committed, free, last_compact, max_left;
    uint32_t npages;              /* pages really committed */
    uint8_t page[MAX_PAGES];      /* which pages are committed */
    uint32_t w[NGRAN];            /* shadow headers */
};

struct large {
    struct large *next;
    uintptr_t base;  /* pBase: the block itself */
    uint32_t size;   /* dwSize: the rounded request, page-rounded */
    uintptr_t rec;   /* data address of its vaheapalloc record in the heap */
};

struct ce3_heap {
    struct heap common; /* handle: the descriptor's data address */
    struct slot *slot;
    uint32_t page;
    struct ce3_heap *process; /* the process heap; NULL for itself */
    struct region **regs;     /* the chain: own region first, then newest growth */
    size_t nregs, cap;
    struct large *large;      /* pVallocs, newest first */
};

/* A chain to allocate from: the heap's, or a new region alone (HEAP_IS_NEW:
 * it may not grow). */
struct chain {
    struct region **r;
    size_t n;
    bool is_new;
};

static pthread_mutex_t process_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ce3_heap *process_heaps[4]; /* one per live slot */

static struct ce3_heap *ce3(struct heap *h)
{
    return (struct ce3_heap *)h;
}

/* ---- shadow headers ---- */

static uint32_t isize(const struct region *r, uint32_t o)
{
    return r->w[o / G] & W_SIZE;
}

static bool is_free(const struct region *r, uint32_t o)
{
    return (r->w[o / G] & W_FREE) != 0;
}

static bool is_dead(const struct region *r, uint32_t o)
{
    return (r->w[o / G] & W_DEAD) != 0;
}

static bool in_use(const struct region *r, uint32_t o)
{
    return (r->w[o / G] & (W_FREE | W_DEAD)) == 0;
}

static void put(struct region *r, uint32_t o, uint32_t size, uint32_t flags)
{
    r->w[o / G] = W_START | (size & W_SIZE) | flags;
}

static void unput(struct region *r, uint32_t o)
{
    r->w[o / G] = 0;
}

/* NEXTBLOCK: the following item, or the first after the last. */
static uint32_t next_item(const struct region *r, uint32_t o)
{
    uint32_t n = o + HDR + isize(r, o);
    return n >= r->high ? 0 : n;
}

static void raise_max(struct region *r, uint32_t size)
{
    if (r->max_left != 0 && r->max_left < size) {
        r->max_left = size;
    }
}

static uint32_t pagedown(const struct ce3_heap *h, uint32_t o)
{
    return o & ~(h->page - 1);
}

static uint32_t pageup(const struct ce3_heap *h, uint32_t o)
{
    return (o + h->page - 1) & ~(h->page - 1);
}

/* ---- pages ---- */

static bool commit(struct ce3_heap *h, struct region *r, uint32_t from, uint32_t to)
{
    from = pagedown(h, from);
    to = pageup(h, to);
    if (to <= from) {
        return true;
    }
    void *out;
    if (slot_virtual_alloc(h->slot, (void *)(r->base + from), to - from, MEM_COMMIT,
                           PAGE_READWRITE, &out) != 0) {
        return false;
    }
    size_t added = 0;
    for (uint32_t p = from / h->page; p < to / h->page; p++) {
        if (!r->page[p]) {
            r->page[p] = 1;
            r->npages++;
            added += h->page;
        }
    }
    heap_stats_commit(&h->common, added);
    return true;
}

/* Decommits the whole pages of [from, to) (both page-aligned). */
static void decommit(struct ce3_heap *h, struct region *r, uint32_t from, uint32_t to)
{
    if (to <= from || slot_virtual_free(h->slot, (void *)(r->base + from), to - from,
                                        MEM_DECOMMIT) != 0) {
        return;
    }
    for (uint32_t p = from / h->page; p < to / h->page; p++) {
        if (r->page[p]) {
            r->page[p] = 0;
            r->npages--;
            heap_stats_decommit(&h->common, h->page);
        }
    }
}

/* Gives a region back as CE does: decommit, then release (the slot, like
 * CE, refuses to release a partly committed reservation). */
static void region_release(struct slot *s, uintptr_t base)
{
    slot_virtual_free(s, (void *)base, REGION_MAX, MEM_DECOMMIT);
    slot_virtual_free(s, (void *)base, 0, MEM_RELEASE);
}

static void region_forget(struct ce3_heap *h, struct region *r)
{
    heap_stats_decommit(&h->common, (size_t)r->npages * h->page);
    region_release(h->slot, r->base);
    h->common.st.regions--;
    uint32_t granules = r->high / G;
    memset(r->w, 0, granules * sizeof r->w[0]);
    memset(r->page, 0, sizeof r->page);
    r->npages = 0;
    r->base = 0;
    r->high = r->cur = r->committed = r->free = r->max_left = 0;
}

/* SetupFixedHeap (spec §2): reserve the region, commit its first page,
 * one free item over it. */
static bool region_setup(struct ce3_heap *h, struct region *r)
{
    void *base;
    if (slot_virtual_alloc(h->slot, NULL, REGION_MAX, MEM_RESERVE, PAGE_NOACCESS, &base) != 0) {
        return false;
    }
    slot_set_tag(h->slot, base, SLOT_TAG_HEAP_REGION);
    r->base = (uintptr_t)base;
    h->common.st.regions++;
    if (!commit(h, r, 0, h->page)) {
        region_forget(h, r);
        return false;
    }
    r->committed = h->page;
    r->free = h->page - HDR;
    r->high = h->page;
    put(r, 0, r->free, W_FREE);
    r->cur = 0;
    r->max_left = r->free;
    return true;
}

/* ---- CE's item operations (FIXHEAP.C) ---- */

/* GrowFree (spec §4): merge the free items that follow, never across the
 * wrap nor through a dead item. */
static void grow_free(struct region *r, uint32_t o)
{
    uint32_t growth = 0, pieces = 0;
    uint32_t n = next_item(r, o);
    while (n > o && is_free(r, n)) {
        growth += isize(r, n) + HDR;
        pieces++;
        uint32_t after = next_item(r, n);
        unput(r, n);
        n = after;
    }
    if (growth != 0) {
        r->w[o / G] += growth;
        r->free += HDR * pieces;
    }
    raise_max(r, isize(r, o));
}

/* Clears the headers of the items in (o, end), o's own kept. */
static void unput_after(struct region *r, uint32_t o, uint32_t end)
{
    uint32_t q = o + HDR + isize(r, o);
    while (q < end) {
        uint32_t after = q + HDR + isize(r, q);
        unput(r, q);
        q = after;
    }
}

/* MakePotentialSize (spec §6): join the non-busy items from o until they
 * hold `size`, committing their pages; a dead tail of a page or more beyond
 * the need stays dead. */
static bool make_potential(struct ce3_heap *h, struct region *r, uint32_t o, uint32_t size)
{
    uint32_t p2 = o, dead = 0, pieces = 0, dead_size = 0;
    bool last_dead, max_hit = false;
    do {
        pieces++;
        last_dead = is_dead(r, p2);
        if (last_dead) {
            max_hit = isize(r, p2) == r->max_left;
            dead += isize(r, p2);
        }
        p2 = next_item(r, p2);
    } while (p2 != 0 && !in_use(r, p2) && p2 < o + size + HDR);
    uint32_t end = p2 == 0 ? r->high : p2;
    if (o + HDR + size > end) {
        return false;
    }
    uint32_t stop = end;
    if (last_dead) {
        uint32_t t1 = pageup(h, o + HDR + size + HDR);
        uint32_t t2 = pagedown(h, end);
        if (t1 < t2) {
            dead -= end - t1;
            dead_size = end - t1;
            stop = t1 - HDR;
        } else {
            last_dead = false;
        }
    }
    if (!commit(h, r, o, stop)) {
        return false;
    }
    unput_after(r, o, end);
    if (last_dead) {
        put(r, stop, dead_size, W_DEAD);
        pieces--;
        if (r->max_left != 0 && r->max_left < dead_size) {
            r->max_left = dead_size;
        } else if (max_hit) {
            r->max_left = 0;
        }
    }
    put(r, o, stop - o - HDR, W_FREE);
    pieces--;
    r->committed += dead;
    r->free += dead + pieces * HDR;
    raise_max(r, isize(r, o));
    return true;
}

/* SplitFreeBlock: the rest of a free item becomes a free item when it is
 * more than a header. */
static void split_free(struct region *r, uint32_t o, uint32_t size)
{
    uint32_t cur = isize(r, o);
    if (r->max_left == cur) {
        r->max_left = 0;
    }
    if (cur - size > HDR) {
        uint32_t o2 = o + HDR + size;
        put(r, o, size, W_FREE);
        put(r, o2, cur - size - HDR, W_FREE);
        raise_max(r, isize(r, o2));
        r->free -= HDR;
    }
}

/* ShrinkBlock: the same for a busy item (realloc). */
static void shrink_busy(struct region *r, uint32_t o, uint32_t size)
{
    uint32_t cur = isize(r, o);
    if (cur - size > HDR) {
        uint32_t o2 = o + HDR + size;
        r->w[o / G] = (r->w[o / G] & ~W_SIZE) | size;
        put(r, o2, cur - size - HDR, W_FREE);
        raise_max(r, isize(r, o2));
        r->free += cur - size - HDR;
    }
}

/* The totals (heap.h): one busy item more (add) or fewer. */
static void note_live(struct ce3_heap *h, size_t bytes, bool add)
{
    if (add) {
        heap_stats_live(&h->common, bytes, 1);
    } else {
        heap_stats_dead(&h->common, bytes, 1);
    }
}

/* FoundBlock: carve `size` from the free item o and make it busy. */
static uintptr_t take(struct ce3_heap *h, struct region *r, uint32_t o, uint32_t size, bool zero,
                      bool internal)
{
    split_free(r, o, size);
    uint32_t got = isize(r, o);
    r->free -= got;
    if (r->max_left == got) {
        r->max_left = 0;
    }
    put(r, o, got, internal ? W_INTERNAL : 0);
    r->cur = next_item(r, o);
    if (!internal) {
        note_live(h, got, true);
    }
    void *data = (void *)(r->base + o + HDR);
    if (zero) {
        memset(data, 0, got);
    }
    return (uintptr_t)data;
}

/* Pass 1 over one region (spec §5): circular walk from the rover. */
static bool pass1(struct region *r, uint32_t size, uint32_t *found)
{
    if (!((r->max_left == 0 && size <= r->free) || size <= r->max_left)) {
        return false;
    }
    uint32_t o = r->cur, best = 0;
    do {
        if (!in_use(r, o)) {
            if (is_free(r, o)) {
                grow_free(r, o);
                if (isize(r, o) >= size) {
                    *found = o;
                    return true;
                }
            }
            if (isize(r, o) > best) {
                best = isize(r, o);
            }
        }
        o = next_item(r, o);
    } while (o > r->cur || o + isize(r, o) < r->cur);
    r->max_left = best;
    return false;
}

/* Pass 2 over one region (spec §6): from the start, join non-busy items. */
static bool pass2(struct ce3_heap *h, struct region *r, uint32_t size, uint32_t *found)
{
    if (size > r->free + REGION_MAX - r->committed) {
        return false;
    }
    uint32_t o = 0;
    do {
        if (!in_use(r, o) && make_potential(h, r, o, size)) {
            *found = o;
            return true;
        }
        r->nexttolast = o;
        o = next_item(r, o);
    } while (o != 0);
    return false;
}

enum pass3 { P3_SKIP, P3_FOUND, P3_REFUSED };

/* Pass 3 over one region (spec §7): commit at the end, joining a free last
 * item.  A refused commit ends the allocation (CE goes to FoundBlock with
 * nothing). */
static enum pass3 pass3(struct ce3_heap *h, struct region *r, uint32_t size, uint32_t *found)
{
    if (size > r->free + (REGION_MAX - r->high)) {
        return P3_SKIP;
    }
    uint32_t o, pre;
    if (!is_free(r, r->nexttolast) || is_dead(r, r->nexttolast)) {
        o = r->high;
        pre = 0;
    } else {
        o = r->nexttolast;
        pre = isize(r, o) + HDR;
    }
    uint32_t increase = (size - pre + HDR + h->page - 1) & ~(h->page - 1);
    if ((uint64_t)r->high + increase > REGION_MAX) {
        return P3_SKIP;
    }
    if (!commit(h, r, r->high, r->high + increase)) {
        return P3_REFUSED;
    }
    r->high += increase;
    r->committed += increase;
    r->free += increase;
    if (pre == 0) {
        r->free -= HDR;
    }
    put(r, o, increase - HDR + pre, W_FREE);
    raise_max(r, isize(r, o));
    *found = o;
    return P3_FOUND;
}

static uintptr_t chain_alloc(struct ce3_heap *h, struct chain c, uint32_t n, bool zero, bool internal);

/* A growth region (spec §8): the item first, then the region's own
 * descriptor; inserted right after the heap's own region. */
static uintptr_t grow_chain(struct ce3_heap *h, uint32_t size, bool zero, bool internal)
{
    if (h->nregs == h->cap) {
        size_t ncap = h->cap * 2;
        struct region **nr = meta_grow(h->regs, h->cap * sizeof *nr, ncap * sizeof *nr);
        if (nr == NULL) {
            return 0;
        }
        h->regs = nr;
        h->cap = ncap;
    }
    struct region *r = meta_alloc(sizeof *r);
    if (r == NULL) {
        return 0;
    }
    memset(r, 0, sizeof *r);
    struct chain alone = {&r, 1, true};
    uintptr_t p = chain_alloc(h, alone, size, zero, internal);
    if (p != 0 && chain_alloc(h, alone, DESC_BYTES, false, true) != 0) {
        memmove(&h->regs[2], &h->regs[1], (h->nregs - 1) * sizeof h->regs[0]);
        h->regs[1] = r;
        h->nregs++;
        return p;
    }
    if (p != 0 && !internal) {
        note_live(h, isize(r, (uint32_t)(p - r->base - HDR)), false);
    }
    if (r->base != 0) {
        region_forget(h, r);
    }
    meta_free(r, sizeof *r);
    return 0;
}

static uintptr_t large_alloc(struct ce3_heap *h, uint32_t size);

/* FixedHeapAlloc (spec §5-§8, §11); size not yet rounded.  0 on failure. */
static uintptr_t chain_alloc(struct ce3_heap *h, struct chain c, uint32_t n, bool zero, bool internal)
{
    if (n & 0x80000000u) {
        return 0;
    }
    uint32_t size = (n + G - 1) & ~(G - 1);
    if (size >= LARGE_MIN) {
        return large_alloc(h, size);
    }
    uint32_t o;
    for (size_t i = 0; i < c.n; i++) {
        struct region *r = c.r[i];
        if (r->base == 0 && !region_setup(h, r)) {
            return 0;
        }
        if (pass1(r, size, &o)) {
            return take(h, r, o, size, zero, internal);
        }
        r->cur = 0;
    }
    for (size_t i = 0; i < c.n; i++) {
        if (pass2(h, c.r[i], size, &o)) {
            return take(h, c.r[i], o, size, zero, internal);
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        switch (pass3(h, c.r[i], size, &o)) {
        case P3_FOUND:
            return take(h, c.r[i], o, size, zero, internal);
        case P3_REFUSED:
            c.r[i]->cur = 0;
            return 0;
        case P3_SKIP:
            break;
        }
    }
    return c.is_new ? 0 : grow_chain(h, size, zero, internal);
}

static struct chain heap_chain(struct ce3_heap *h)
{
    return (struct chain){h->regs, h->nregs, false};
}

/* A large item (spec §11): its own reservation, plus a record in the heap. */
static uintptr_t large_alloc(struct ce3_heap *h, uint32_t size)
{
    struct large *l = meta_alloc(sizeof *l);
    if (l == NULL) {
        return 0;
    }
    void *base;
    size_t commit_bytes = pageup(h, size);
    /* FixedHeapAlloc makes one read-write reserve-and-commit: never a
     * reserve-only PAGE_NOACCESS request, which from 2 MB would go to the
     * Large Memory Area, outside the slot.  Reserved read-write, tagged, then
     * committed: the same placement and failures, and the peak's share of
     * its pages is the heap's. */
    if (slot_virtual_alloc(h->slot, NULL, size, MEM_RESERVE, PAGE_READWRITE, &base) != 0) {
        meta_free(l, sizeof *l);
        return 0;
    }
    slot_set_tag(h->slot, base, SLOT_TAG_HEAP_LARGE);
    void *out;
    if (slot_virtual_alloc(h->slot, base, commit_bytes, MEM_COMMIT, PAGE_READWRITE, &out) != 0) {
        slot_virtual_free(h->slot, base, 0, MEM_RELEASE);
        meta_free(l, sizeof *l);
        return 0;
    }
    uintptr_t rec = chain_alloc(h, heap_chain(h), VREC_BYTES, false, true);
    if (rec == 0) {
        slot_virtual_free(h->slot, base, 0, MEM_RELEASE);
        meta_free(l, sizeof *l);
        return 0;
    }
    l->base = (uintptr_t)base;
    l->size = (uint32_t)commit_bytes;
    l->rec = rec;
    l->next = h->large;
    h->large = l;
    h->common.st.large_items++;
    heap_stats_commit(&h->common, commit_bytes);
    note_live(h, l->size, true);
    return l->base;
}

/* ---- compaction (FixedHeapCompact, spec §10) ---- */

/* A run of non-busy items from o followed by the busy item at end. */
static void compact_inner_run(struct ce3_heap *h, struct region *r, uint32_t o, uint32_t end,
                              int32_t pieces, int32_t dead)
{
    if (pageup(h, o + HDR) < pagedown(h, end)) {
        uint32_t head = h->page - (o & (h->page - 1));
        if (head > 2 * HDR) { /* more than two headers (CE: HDRSIZE + TLRSIZE + HDRSIZE) */
            put(r, o, head - 2 * HDR, W_FREE);
            raise_max(r, isize(r, o));
            o += head - HDR;
            pieces++;
        }
        uint32_t size = end - o;
        if ((end & (h->page - 1)) >= HDR) {
            size -= end & (h->page - 1);
        }
        put(r, o, size - HDR, W_DEAD);
        raise_max(r, isize(r, o));
        pieces++;
        decommit(h, r, pageup(h, o + HDR), pagedown(h, end));
        dead += (int32_t)(size - HDR);
        o += size;
    }
    if (o != end) {
        put(r, o, end - o - HDR, W_FREE);
        raise_max(r, isize(r, o));
        pieces++;
    }
    r->cur = 0;
    r->committed -= (uint32_t)dead;
    r->free -= (uint32_t)(dead + pieces * (int32_t)HDR);
}

/* The run from o reaches the region's end. */
static void compact_tail_run(struct ce3_heap *h, struct region *r, uint32_t o, int32_t pieces,
                             int32_t dead)
{
    if (o & (h->page - 1)) {
        uint32_t size = h->page - (o & (h->page - 1));
        if (size < HDR) {
            size += h->page;
        }
        put(r, o, size - HDR, W_FREE);
        raise_max(r, isize(r, o));
        pieces++;
        o += size;
    }
    if (o != r->high) {
        uint32_t gone = r->high - o;
        decommit(h, r, o, r->high);
        dead += (int32_t)gone;
        r->high = o;
    }
    r->cur = 0;
    r->committed -= (uint32_t)dead;
    r->free -= (uint32_t)(dead + pieces * (int32_t)HDR);
}

static void compact_region(struct ce3_heap *h, struct region *r)
{
    if (r->base == 0) {
        return;
    }
    uint32_t o = 0;
    do {
        if (in_use(r, o)) {
            o = next_item(r, o);
            continue;
        }
        int32_t pieces = 0, dead = 0;
        uint32_t p2 = o;
        do {
            pieces--;
            if (isize(r, p2) == r->max_left) {
                r->max_left = 0;
            }
            if (is_dead(r, p2)) {
                dead -= (int32_t)isize(r, p2);
            }
            uint32_t after = next_item(r, p2);
            unput(r, p2);
            p2 = after;
        } while (p2 != 0 && !in_use(r, p2));
        if (p2 != 0) {
            compact_inner_run(h, r, o, p2, pieces, dead);
            o = next_item(r, p2);
        } else if (o == 0) {
            r->high = 0; /* every header is cleared already */
            region_forget(h, r);
            break;
        } else {
            compact_tail_run(h, r, o, pieces, dead);
            break;
        }
    } while (o != 0);
    r->last_compact = r->free;
}

static bool should_compact(const struct ce3_heap *h, const struct region *r)
{
    uint32_t six = h->page * 6, two = h->page * 2;
    if (r->free <= r->committed >> 3) {
        return false;
    }
    if (r->free > r->last_compact + six) {
        return true;
    }
    uint64_t free_ram = (uint64_t)ram_free_pages(&core_get()->ram) * h->page;
    return free_ram < LOW_RAM && r->free > r->last_compact + two;
}

/* ---- locating pointers ---- */

struct where {
    struct region *r;
    uint32_t o;        /* header offset */
    struct large *l, *lprev;
    enum heap_bad_kind why;
};

/* Finds the busy item (or, internal true, CE's own record) whose data is p. */
static bool locate(struct ce3_heap *h, uintptr_t p, bool internal, struct where *w)
{
    memset(w, 0, sizeof *w);
    w->why = HEAP_BAD_FOREIGN;
    for (size_t i = 0; i < h->nregs; i++) {
        struct region *r = h->regs[i];
        if (r->base == 0 || p < r->base + HDR || p >= r->base + r->high) {
            continue;
        }
        uint32_t o = (uint32_t)(p - r->base - HDR);
        w->why = HEAP_BAD_INTERIOR;
        if (o % G != 0 || r->w[o / G] == 0) {
            return false;
        }
        if (!in_use(r, o)) {
            w->why = HEAP_BAD_FREED;
            return false;
        }
        if (((r->w[o / G] & W_INTERNAL) != 0) != internal) {
            w->why = HEAP_BAD_FOREIGN;
            return false;
        }
        w->r = r;
        w->o = o;
        return true;
    }
    for (struct large *l = h->large, *prev = NULL; l != NULL; prev = l, l = l->next) {
        if (l->base == p && !internal) {
            w->l = l;
            w->lprev = prev;
            return true;
        }
    }
    return false;
}

/* FixedHeapFree of a located region item (spec §9). */
static void free_item(struct ce3_heap *h, struct region *r, uint32_t o)
{
    uint32_t size = isize(r, o);
    if ((r->w[o / G] & W_INTERNAL) == 0) {
        note_live(h, size, false);
    }
    r->free += size;
    put(r, o, size, W_FREE);
    grow_free(r, o);
    r->cur = o;
    if (should_compact(h, r)) {
        compact_region(h, r);
    }
}

static void free_internal(struct ce3_heap *h, uintptr_t p)
{
    struct where w;
    if (locate(h, p, true, &w)) {
        free_item(h, w.r, w.o);
    }
}

/* A large item's release, then its record's free (spec §11). */
static void free_large(struct ce3_heap *h, struct large *l, struct large *prev)
{
    if (prev == NULL) {
        h->large = l->next;
    } else {
        prev->next = l->next;
    }
    slot_virtual_free(h->slot, (void *)l->base, 0, MEM_RELEASE);
    heap_stats_decommit(&h->common, l->size);
    h->common.st.large_items--;
    note_live(h, l->size, false);
    uintptr_t rec = l->rec;
    meta_free(l, sizeof *l);
    free_internal(h, rec);
}

/* ---- the interface ---- */

static bool ensure_regs(struct ce3_heap *h)
{
    h->cap = 8;
    h->regs = meta_alloc(h->cap * sizeof h->regs[0]);
    if (h->regs == NULL) {
        return false;
    }
    h->regs[0] = meta_alloc(sizeof(struct region));
    if (h->regs[0] == NULL) {
        meta_free(h->regs, h->cap * sizeof h->regs[0]);
        return false;
    }
    memset(h->regs[0], 0, sizeof(struct region));
    h->nregs = 1;
    return true;
}

static struct ce3_heap **process_entry(const struct slot *s, bool empty)
{
    for (size_t i = 0; i < sizeof process_heaps / sizeof process_heaps[0]; i++) {
        if (empty ? process_heaps[i] == NULL
                  : process_heaps[i] != NULL && process_heaps[i]->slot == s) {
            return &process_heaps[i];
        }
    }
    return NULL;
}

/* HeapCreate (spec §12): the first heap of a slot is its process heap;
 * every other heap's descriptor is an item of the process heap, and its
 * handle that item.  Sizes are ignored: every heap grows. */
static struct heap *ce3_create(struct slot *s, DWORD flags, size_t initial, size_t max, DWORD *err)
{
    (void)initial;
    (void)max;
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    struct ce3_heap *h = meta_alloc(sizeof *h);
    if (h == NULL) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    memset(h, 0, sizeof *h);
    h->common.ops = &heap_ce3_ops;
    h->common.slot = s;
    h->slot = s;
    h->page = (uint32_t)slot_page_size(s);
    if (!ensure_regs(h)) {
        meta_free(h, sizeof *h);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    pthread_mutex_lock(&process_lock);
    struct ce3_heap **slot_entry = process_entry(s, false);
    struct ce3_heap *proc = slot_entry != NULL ? *slot_entry : NULL;
    pthread_mutex_unlock(&process_lock);
    if (proc == NULL) {
        pthread_mutex_lock(&process_lock);
        struct ce3_heap **e = process_entry(s, true);
        if (e != NULL) {
            *e = h;
        }
        pthread_mutex_unlock(&process_lock);
        if (e == NULL) {
            meta_free(h->regs[0], sizeof(struct region));
            meta_free(h->regs, h->cap * sizeof h->regs[0]);
            meta_free(h, sizeof *h);
            *err = ERROR_NOT_ENOUGH_MEMORY;
            return NULL;
        }
        h->common.handle = (uintptr_t)h; /* &ProcessHeap: outside the slot, as in coredll */
        return &h->common;
    }
    lock_enter(&proc->common.lock);
    h->common.handle = chain_alloc(proc, heap_chain(proc), DESC_BYTES, false, true);
    lock_leave(&proc->common.lock);
    h->process = proc;
    if (h->common.handle == 0) {
        meta_free(h->regs[0], sizeof(struct region));
        meta_free(h->regs, h->cap * sizeof h->regs[0]);
        meta_free(h, sizeof *h);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    return &h->common;
}

static bool ce3_destroy(struct heap *hh, DWORD *err)
{
    (void)err;
    struct ce3_heap *h = ce3(hh);
    lock_enter(&h->common.lock);
    while (h->large != NULL) {
        struct large *l = h->large;
        h->large = l->next;
        slot_virtual_free(h->slot, (void *)l->base, 0, MEM_RELEASE);
        meta_free(l, sizeof *l);
    }
    for (size_t i = 0; i < h->nregs; i++) {
        if (h->regs[i]->base != 0) {
            region_release(h->slot, h->regs[i]->base);
        }
        meta_free(h->regs[i], sizeof(struct region));
    }
    meta_free(h->regs, h->cap * sizeof h->regs[0]);
    lock_leave(&h->common.lock); /* no figures of a heap that is gone */
    struct ce3_heap *proc = h->process;
    if (proc != NULL) {
        lock_enter(&proc->common.lock);
        free_internal(proc, h->common.handle); /* LocalFree(pHeap) */
        lock_leave(&proc->common.lock);
    } else {
        pthread_mutex_lock(&process_lock);
        struct ce3_heap **e = process_entry(h->slot, false);
        if (e != NULL && *e == h) {
            *e = NULL;
        }
        pthread_mutex_unlock(&process_lock);
    }
    meta_free(h, sizeof *h);
    return true;
}

static void *ce3_alloc(struct heap *hh, DWORD flags, size_t n, DWORD *err)
{
    struct ce3_heap *h = ce3(hh);
    if (flags & ~(DWORD)ALLOC_FLAGS) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    if (n > 0x7FFFFFFFu) {
        entry_note_reason(LOG_REASON_TOO_LARGE);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    lock_enter(&h->common.lock);
    uintptr_t p = chain_alloc(h, heap_chain(h), (uint32_t)n, (flags & HEAP_ZERO_MEMORY) != 0, false);
    heap_leave(&h->common);
    if (p == 0) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
    }
    return (void *)p;
}

static bool ce3_free(struct heap *hh, DWORD flags, void *p, DWORD *err)
{
    struct ce3_heap *h = ce3(hh);
    if ((flags & ~(DWORD)HEAP_NO_SERIALIZE) || p == NULL) {
        *err = ERROR_INVALID_PARAMETER;
        return false;
    }
    struct where w;
    lock_enter(&h->common.lock);
    bool ok = locate(h, (uintptr_t)p, false, &w);
    if (ok && w.l != NULL) {
        free_large(h, w.l, w.lprev);
    } else if (ok) {
        free_item(h, w.r, w.o);
    }
    heap_leave(&h->common);
    if (!ok) {
        heap_report_bad_pointer("HeapFree", (void *)h->common.handle, p, w.why);
        *err = ERROR_INVALID_PARAMETER;
    }
    return ok;
}

static size_t ce3_size(struct heap *hh, DWORD flags, const void *p, DWORD *err)
{
    struct ce3_heap *h = ce3(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return (size_t)-1;
    }
    struct where w;
    size_t n = (size_t)-1;
    lock_enter(&h->common.lock);
    if (locate(h, (uintptr_t)p, false, &w)) {
        n = w.l != NULL ? w.l->size : isize(w.r, w.o);
    }
    heap_leave(&h->common);
    if (n == (size_t)-1 && p != NULL) {
        heap_report_bad_pointer("HeapSize", (void *)h->common.handle, p, w.why);
    }
    if (n == (size_t)-1) {
        *err = 0; /* FixedHeapSize sets no error */
    }
    return n;
}

/* A large item resized (FixedHeapReAlloc's pVallocs branch, spec §13). */
static uintptr_t realloc_large(struct ce3_heap *h, struct where *w, uint32_t n, bool zero, bool move)
{
    struct large *l = w->l;
    uintptr_t np;
    if (n <= l->size) {
        if (!move) {
            return l->base;
        }
        np = chain_alloc(h, heap_chain(h), n, false, false);
        if (np == 0) {
            return l->base;
        }
        memcpy((void *)np, (void *)l->base, n);
    } else {
        if (!move) {
            return 0;
        }
        np = chain_alloc(h, heap_chain(h), n, false, false);
        if (np == 0) {
            return 0;
        }
        memcpy((void *)np, (void *)l->base, l->size);
        if (zero) {
            memset((char *)np + l->size, 0, n - l->size);
        }
    }
    struct large *prev = NULL;
    for (struct large *q = h->large; q != l; q = q->next) {
        prev = q;
    }
    free_large(h, l, prev);
    return np;
}

/* Usable bytes of the busy item or large item at p (FixedHeapSize). */
static uint32_t usable_of(struct ce3_heap *h, uintptr_t p)
{
    struct where w;
    if (!locate(h, p, false, &w)) {
        return 0;
    }
    return w.l != NULL ? w.l->size : isize(w.r, w.o);
}

/* A region item resized (spec §13). */
static uintptr_t realloc_item(struct ce3_heap *h, struct where *w, uint32_t size, bool zero, bool move)
{
    struct region *r = w->r;
    uint32_t o = w->o, old = isize(r, o);
    uintptr_t np = 0;
    if (size <= old) {
        shrink_busy(r, o, size);
        note_live(h, old, false);
        note_live(h, isize(r, o), true);
        r->cur = next_item(r, o);
        return r->base + o + HDR;
    }
    uint32_t nx = next_item(r, o);
    if (nx > o && is_free(r, nx)) {
        grow_free(r, nx);
        uint32_t nsize = isize(r, nx);
        if (nsize + HDR + old >= size) {
            r->free -= nsize;
            if (r->max_left == nsize) {
                r->max_left = 0;
            }
            unput(r, nx);
            put(r, o, old + nsize + HDR, 0);
            shrink_busy(r, o, size);
            note_live(h, old, false);
            note_live(h, isize(r, o), true);
            r->cur = next_item(r, o);
            np = r->base + o + HDR;
        } else {
            r->cur = nx;
        }
    }
    if (np == 0 && move) {
        np = chain_alloc(h, heap_chain(h), size, false, false);
        if (np != 0) {
            memcpy((void *)np, (void *)(r->base + o + HDR), old);
            free_item(h, r, o);
        }
    }
    if (np != 0 && zero) {
        memset((char *)np + old, 0, usable_of(h, np) - old);
    }
    return np;
}

static void *ce3_realloc(struct heap *hh, DWORD flags, void *p, size_t n, DWORD *err)
{
    struct ce3_heap *h = ce3(hh);
    if (flags & ~(DWORD)REALLOC_FLAGS) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    if (flags & HEAP_GENERATE_EXCEPTIONS) {
        *err = ERROR_NOT_SUPPORTED;
        return NULL;
    }
    if (p == NULL) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    bool zero = (flags & HEAP_ZERO_MEMORY) != 0;
    bool move = (flags & HEAP_REALLOC_IN_PLACE_ONLY) == 0;
    struct where w;
    uintptr_t np = 0;
    lock_enter(&h->common.lock);
    bool found = locate(h, (uintptr_t)p, false, &w);
    if (found && w.l != NULL && n <= 0xFFFFFFFFu) {
        np = realloc_large(h, &w, (uint32_t)n, zero, move);
    } else if (found && w.r != NULL && n <= 0x7FFFFFFFu) {
        np = realloc_item(h, &w, ((uint32_t)n + G - 1) & ~(G - 1), zero, move);
    }
    heap_leave(&h->common);
    if (!found) {
        heap_report_bad_pointer("HeapReAlloc", (void *)h->common.handle, p, w.why);
    } else if (n > 0x7FFFFFFFu) {
        entry_note_reason(LOG_REASON_TOO_LARGE);
    } else if (np == 0 && !move) {
        entry_note_reason(LOG_REASON_IN_PLACE);
    }
    if (np == 0) {
        *err = ERROR_NOT_ENOUGH_MEMORY; /* HeapReAlloc: every failure */
    }
    return (void *)np;
}

/* CE 3.0 exports no HeapCompact (spec §14): the call answers as a missing
 * function would (0, ERROR_CALL_NOT_IMPLEMENTED), after doing what the
 * system's CompactAllHeaps does to this heap, so malloc_trim still gives
 * pages back. */
static size_t ce3_compact(struct heap *hh, DWORD flags, DWORD *err)
{
    struct ce3_heap *h = ce3(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return 0;
    }
    lock_enter(&h->common.lock);
    for (size_t i = 0; i < h->nregs; i++) {
        compact_region(h, h->regs[i]);
    }
    heap_leave(&h->common);
    *err = ERROR_CALL_NOT_IMPLEMENTED;
    return 0;
}

/* One region's items against the invariants of the file header. */
static bool region_consistent(const struct ce3_heap *h, const struct region *r, size_t *live,
                              size_t *blocks)
{
    if (r->base == 0) {
        return r->high == 0 && r->npages == 0;
    }
    uint32_t o = 0, free = 0, dead = 0;
    bool cur_seen = false;
    while (o < r->high) {
        uint32_t wd = r->w[o / G];
        if (!(wd & W_START)) {
            return false;
        }
        cur_seen |= o == r->cur;
        uint32_t s = wd & W_SIZE;
        for (uint32_t g = o / G + 1; g < (o + HDR + s) / G && g < NGRAN; g++) {
            if (r->w[g] != 0) {
                return false;
            }
        }
        if (wd & W_FREE) {
            free += s;
        } else if (wd & W_DEAD) {
            dead += s;
        } else if (!(wd & W_INTERNAL)) {
            *live += s;
            ++*blocks;
        }
        if (!(wd & W_DEAD) && !r->page[o / h->page]) {
            return false;
        }
        o += HDR + s;
    }
    return o == r->high && cur_seen && free == r->free && r->committed == r->high - dead &&
           r->high <= REGION_MAX;
}

static bool heap_consistent(const struct ce3_heap *h)
{
    size_t live = 0, blocks = 0, committed = 0, regions = 0, large = 0;
    for (size_t i = 0; i < h->nregs; i++) {
        const struct region *r = h->regs[i];
        if (!region_consistent(h, r, &live, &blocks)) {
            return false;
        }
        regions += r->base != 0;
        committed += (size_t)r->npages * h->page;
    }
    for (const struct large *l = h->large; l != NULL; l = l->next) {
        live += l->size;
        blocks++;
        committed += l->size;
        large++;
    }
    return live == h->common.st.live_bytes && blocks == h->common.st.live_blocks &&
           committed == h->common.st.committed_bytes && regions == h->common.st.regions &&
           large == h->common.st.large_items;
}

static bool ce3_busy_item(struct heap *hh, const void *p)
{
    struct where w;
    return locate(ce3(hh), (uintptr_t)p, false, &w);
}

static bool ce3_consistent(struct heap *hh)
{
    return heap_consistent(ce3(hh));
}

/* Regions with their items (dead items as free; CE's own descriptors and
 * records are not reported), then the large items. */
static void ce3_walk(struct heap *hh, heap_walk_fn fn, void *ctx)
{
    struct ce3_heap *h = ce3(hh);
    lock_enter(&h->common.lock);
    bool go = true;
    for (size_t i = 0; i < h->nregs && go; i++) {
        const struct region *r = h->regs[i];
        if (r->base == 0) {
            continue;
        }
        struct heap_walk_entry e = {HEAP_WALK_REGION, r->base, REGION_MAX,
                                    (size_t)r->npages * h->page, false};
        go = fn(ctx, &e);
        for (uint32_t o = 0; go && o < r->high; o += HDR + isize(r, o)) {
            if (r->w[o / G] & W_INTERNAL) {
                continue;
            }
            e = (struct heap_walk_entry){HEAP_WALK_ITEM, r->base + o + HDR, isize(r, o), 0,
                                         in_use(r, o)};
            go = fn(ctx, &e);
        }
    }
    for (const struct large *l = h->large; l != NULL && go; l = l->next) {
        struct heap_walk_entry e = {HEAP_WALK_LARGE, l->base, l->size, l->size, true};
        go = fn(ctx, &e);
    }
    heap_leave(&h->common);
}

/* One maximal free run [from, to) of a region into the free figures. */
static void add_free_run(const struct ce3_heap *h, uintptr_t from, uintptr_t to, struct heap_free_figures *out)
{
    uintptr_t mask = ~(uintptr_t)(h->page - 1);
    uintptr_t first = (from + h->page - 1) & mask, last = to & mask;
    size_t usable = (size_t)(to - from) - HDR;
    out->free_items++;
    out->largest_free_bytes = usable > out->largest_free_bytes ? usable : out->largest_free_bytes;
    out->empty_pages += last > first ? (last - first) / h->page : 0;
}

/* The timeline's free figures, from a walk of the items (CE 3's heap has
 * no index).  Free items next to each other (CE 3 merges them only when a
 * search passes) count as one, as in the other heaps; dead items have no
 * backing store, so they end a run and hold no committed page. */
static void ce3_free_figures(struct heap *hh, struct heap_free_figures *out)
{
    struct ce3_heap *h = ce3(hh);
    *out = (struct heap_free_figures){0};
    for (size_t i = 0; i < h->nregs; i++) {
        const struct region *r = h->regs[i];
        if (r->base == 0) {
            continue;
        }
        uint32_t run = UINT32_MAX; /* offset where the current free run began */
        for (uint32_t o = 0; o < r->high; o += HDR + isize(r, o)) {
            out->work++;
            if (is_free(r, o)) {
                run = run == UINT32_MAX ? o : run;
            } else if (run != UINT32_MAX) {
                add_free_run(h, r->base + run, r->base + o, out);
                run = UINT32_MAX;
            }
        }
        if (run != UINT32_MAX) {
            add_free_run(h, r->base + run, r->base + r->high, out);
        }
    }
}

bool heap_ce3_region_state(struct heap *hh, size_t i, struct heap_ce3_region_state *out)
{
    struct ce3_heap *h = ce3(hh);
    lock_enter(&h->common.lock);
    bool ok = i < h->nregs;
    if (ok) {
        const struct region *r = h->regs[i];
        uintptr_t sb = slot_base(h->slot);
        out->base = r->base != 0 ? r->base - sb : 0;
        out->high = r->high;
        out->cur = r->cur;
        out->committed = r->committed;
        out->free = r->free;
        out->max_left = r->max_left;
        out->last_compact = r->last_compact;
        out->pages = r->npages;
    }
    heap_leave(&h->common);
    return ok;
}

HEAP_OPS_DEFINE(ce3, G);
