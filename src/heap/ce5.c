/*
 * ce5.c - the Windows CE 4.2 / 5.0 heap (coredll's LMEM heap), with
 * CE's placement and an index that keeps every operation's cost flat.
 *
 * Owns: the heaps of the ce5 algorithm, their regions and large items in
 * the slot, and all of their bookkeeping (outside the slot).
 *
 * What CE does (see /tmp/cebox-notes/heap-ce5-spec.md for the full story):
 * a heap is a list of regions of 0x2F000 reserved bytes; items carry an
 * 8-byte header (on a 32-bit device), sizes are multiples of 16 and data is
 * 16-aligned; each region has a rover where the next search starts; a search
 * goes from the rover to the end of the region and wraps around, merging free
 * items forward as it passes them and moving the rover to each merged run; a
 * region caches its largest free size (cbMaxFree, bit 0 = "estimate"); pass 2
 * takes space that must be committed at a region's end; new regions are
 * appended; requests with bytes + 24 >= 0x18000 get a reservation of their
 * own.
 *
 * How cebox does it without CE's linear scans.  Per region, out of band:
 *  - free bits: one bit per 16-byte granule, 1 = free.  Granules from the
 *    end marker on are 0, so the end marker acts like a busy item.
 *  - start bits, beside the free bits word by word: 1 at the first granule
 *    of each busy item (its size is the distance to the next start or free
 *    granule).
 *  - two summary levels over the free bits (which words hold a busy / a
 *    free granule, and which summary words are not zero), so the next or
 *    previous busy or free granule is a few word reads.
 *  - a max-tree over the words whose leaf w is the longest whole free run
 *    that starts in word w, answering "first run of at least n granules
 *    from position p on" and "longest run in the region" in O(log words).
 *    A change of the bits touches one leaf path, and only when the tree is
 *    read (it is synced lazily).
 * Per heap: two max-trees over the regions in list order, one keyed by
 * cbMaxFree (pass 1: first region whose hint admits the request) and one by
 * the pass-2 tail capacity (cbTail + size of pitLast, or "always" while the
 * hint is an estimate), and a table from slot block to region / large item,
 * so a pointer is resolved in O(1).
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
 *
 * Invariants (under the heap's lock), per region:
 *  - granules [0, end) are items; free bits are 1 exactly for free granules;
 *    start bits are 1 exactly at the first granule of each busy item;
 *  - rover and last lie in [0, end]; last is end (the end marker) or a free
 *    granule whose run reaches end;
 *  - committed bytes = data_off + 16 * end, a multiple of the page size.
 */
#include "heap/heap.h"

#include <string.h>

#include "entry.h"
#include "lock.h"
#include "os.h"
#include "slot.h"

#define GRAN 16u              /* item size unit and data alignment */
#define HDR 8u                /* item header on a 32-bit device */
#define REGION_RESERVE 0x2F000u
#define FIRST_DATA 0x60u      /* first region: heap header + region + item header */
#define LATER_DATA 0x30u      /* later regions: region structure + item header */
#define LARGE_DATA 0x20u      /* large item: link structure ending in the header */
#define LARGE_OVERHEAD 24u    /* large item threshold: n + 24 >= LARGE_LIMIT */
#define LARGE_LIMIT 0x18000u
#define MAX_REQUEST 0x40000000u
#define NEW_REGION_EXTRA 0x30u /* commit = PAGEUP(cbSeek + 0x30) */
#define ESTIMATE 1u           /* cbMaxFree bit 0 */
#define NONE UINT32_MAX
#define HOT static inline __attribute__((always_inline)) /* small, on every operation */

#define HEAP_ALLOC_FLAGS (HEAP_NO_SERIALIZE | HEAP_ZERO_MEMORY)
#define HEAP_REALLOC_FLAGS \
    (HEAP_NO_SERIALIZE | HEAP_GENERATE_EXCEPTIONS | HEAP_ZERO_MEMORY | HEAP_REALLOC_IN_PLACE_ONLY)

struct region {
    struct ce5_heap *heap;
    uintptr_t base;     /* reservation base (64 KB aligned) */
    uint32_t reserve;   /* cbRegion */
    uint32_t data_off;  /* data of granule 0 = base + data_off */
    uint32_t end;       /* granule of the end marker */
    uint32_t rover;     /* pitFree, a granule (end = the end marker) */
    uint32_t last;      /* pitLast, a granule (end = the end marker) */
    uint32_t max_free;  /* cbMaxFree, raw */
    uint32_t index;     /* position in the region list */
    uint32_t ngran, nwords, leaves;
    uint64_t *words;    /* per 64 granules: free bits, then start bits */
    /* Summaries of the free bits, one bit per word: the word holds a busy
     * granule / a free granule; and above each, one bit per summary word
     * that is not zero.  Next/previous busy or free granule is then a few
     * word reads in any region. */
    uint64_t *sum_busy, *sum_free, *top_busy, *top_free;
    uint32_t nsum;
    /* A max-tree over the words, 1-based, leaves at [leaves, 2 * leaves):
     * leaf w is the longest free run (whole, wherever it ends) that starts
     * in word w.  It is brought up to date lazily: bits_set marks the
     * words whose leaf may have changed, tree_sync() recomputes them before
     * the tree is read (most allocations find their fit near the rover and
     * never read it). */
    uint32_t *tree;
    uint64_t *dirty;
    bool dirty_any;
    /* One free run known whole: granules [run_cs, run_ce) are free and
     * run_ce is busy (none when equal).  Set after a carve (the leftover)
     * and a free (the merged run), dropped by bits_set when a change breaks
     * it; the next search or free usually asks for this run's end, and a
     * long run's end otherwise costs a summary scan. */
    uint32_t run_cs, run_ce;
    /* This region's keys as the heap's region trees hold them (both 0 in
     * a fresh mapping, as in the trees), so reindex compares locally. */
    uint32_t key_hint, key_tail;
    size_t map_bytes;
};

/* The free bits and the busy-item start bits of granules [64w, 64w + 64),
 * side by side so that one cache line holds both. */
#define FREEW(r, w) ((r)->words[2 * (size_t)(w)])
#define STARTW(r, w) ((r)->words[2 * (size_t)(w) + 1])

struct large {
    struct large *next, *prev;
    uintptr_t base;
    size_t committed, reserve;
};

struct large_chunk {
    struct large_chunk *next;
    size_t bytes;
};

/* Max-tree over region indexes, sized for the regions that exist (it
 * doubles as regions are added, so its height follows the heap, not the
 * slot). */
struct rtree {
    uint32_t leaves;
    uint32_t *v; /* 1-based; its own mapping of 2 * leaves values */
    /* The last answer from index 0 and a bound on the keys before it:
     * every key at an index below memo_at is at most memo_max (leaves and
     * the root's value when the answer was "none").  Allocations ask the
     * same question over and over with similar sizes; this answers most of
     * them with two reads. */
    uint32_t memo_at, memo_max;
};

struct ce5_heap {
    struct heap common;
    struct lock lock; /* serializes everything below, as CE does */
    struct slot *slot;
    uintptr_t sbase;
    size_t ssize, page, gran;
    unsigned gran_shift;
    uintptr_t handle;      /* base of the first region (the heap header) */
    uint32_t maximum;      /* cbMaximum: 0 = growable */
    struct region **regions;
    uint32_t nregions, cap;
    struct rtree k_hint, k_tail;
    uintptr_t *by_block;   /* slot block -> region, or large item | 1 */
    struct large *large_head, *large_spare;
    struct large_chunk *chunks;
    struct heap_stats st;
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

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

/* ======================================================================
 * Max-trees: 1-based arrays, leaves at [leaves, 2 * leaves), each node the
 * maximum of its two children.  The regions' word trees and the heap's
 * region trees are both of this kind.
 * ====================================================================== */

/* Sets leaf position k to val and the nodes above it that change.  A
 * raised value (every free raises its region's hint) only needs to be
 * carried up while it is the larger one. */
static void maxtree_set(uint32_t *v, uint32_t k, uint32_t val)
{
    uint32_t old = v[k];
    v[k] = val;
    if (val >= old) {
        for (k >>= 1; k >= 1 && v[k] < val; k >>= 1) {
            v[k] = val;
        }
        return;
    }
    for (k >>= 1; k >= 1; k >>= 1) {
        uint32_t m = max2(v[2 * k], v[2 * k + 1]);
        if (v[k] == m) {
            break;
        }
        v[k] = m;
    }
}

/* The first leaf at or after `from` whose value is at least thr, or NONE.
 * From 0 (every allocation's first question) straight down from the root;
 * otherwise up from `from` and down again, so a near answer costs little. */
static uint32_t maxtree_first(const uint32_t *v, uint32_t leaves, uint32_t from, uint32_t thr)
{
    if (from >= leaves || v[1] < thr) {
        return NONE;
    }
    uint32_t k = leaves + from;
    if (v[k] >= thr) {
        return from;
    }
    if (from == 0) {
        k = 1;
    } else {
        for (;;) {
            if ((k & 1) == 0 && v[k + 1] >= thr) {
                k++;
                break;
            }
            k >>= 1;
            if (k <= 1) {
                return NONE;
            }
        }
    }
    while (k < leaves) {
        k <<= 1;
        if (v[k] < thr) {
            k++;
        }
    }
    return k - leaves;
}

/* ======================================================================
 * Per-region free-granule bitmap, its summaries and the run-length tree
 * ====================================================================== */

HOT bool gfree(const struct region *r, uint32_t g)
{
    return (FREEW(r, g >> 6) >> (g & 63)) & 1;
}

HOT bool gstart(const struct region *r, uint32_t g)
{
    return (STARTW(r, g >> 6) >> (g & 63)) & 1;
}

HOT void set_start(struct region *r, uint32_t g, bool v)
{
    uint64_t m = (uint64_t)1 << (g & 63);
    STARTW(r, g >> 6) = v ? (STARTW(r, g >> 6) | m) : (STARTW(r, g >> 6) & ~m);
}

/* End of the busy item that starts at g: the next granule that starts an
 * item or is free, or the end marker.  (A scan of the item's words: one
 * word for all but big items.) */
HOT uint32_t item_end(const struct region *r, uint32_t g)
{
    uint32_t x = g + 1, w = x >> 6;
    uint64_t mask = ~(uint64_t)0 << (x & 63);
    for (; (w << 6) < r->end; w++, mask = ~(uint64_t)0) {
        uint64_t m = (FREEW(r, w) | STARTW(r, w)) & mask;
        if (m != 0) {
            uint32_t e = (w << 6) + (uint32_t)__builtin_ctzll(m);
            return e < r->end ? e : r->end;
        }
    }
    return r->end;
}

/* Size in granules of the busy item at g. */
HOT uint32_t item_size(const struct region *r, uint32_t g)
{
    return item_end(r, g) - g;
}

/* Bits [b0, b1) of a word, for b0 < b1 <= 64 (every caller's b1 is a
 * bit number plus one, so it is never 0). */
HOT uint64_t bit_mask(uint32_t b0, uint32_t b1)
{
    return (~(uint64_t)0 >> (64 - b1)) & (~(uint64_t)0 << b0);
}

HOT void set_bit(uint64_t *bits, uint32_t i, bool v)
{
    uint64_t m = (uint64_t)1 << (i & 63);
    bits[i >> 6] = (bits[i >> 6] & ~m) | (v ? m : 0);
}

/* First set bit at or after x in a bitset of n words whose nonzero words
 * are marked in `top`, or NONE.  At most one word of each level and a scan
 * of `top` (8 words for the biggest fixed region) are read. */
static uint32_t bits_next(const uint64_t *bits, const uint64_t *top, uint32_t n, uint32_t x)
{
    uint32_t i = x >> 6;
    if (i >= n) {
        return NONE;
    }
    uint64_t m = bits[i] & (~(uint64_t)0 << (x & 63));
    if (m == 0) {
        uint32_t j = i + 1, k = j >> 6, ntop = (n + 63) / 64;
        if (j >= n) {
            return NONE;
        }
        uint64_t t = top[k] & (~(uint64_t)0 << (j & 63));
        while (t == 0) {
            if (++k >= ntop) {
                return NONE;
            }
            t = top[k];
        }
        i = (k << 6) + (uint32_t)__builtin_ctzll(t);
        m = bits[i];
    }
    return (i << 6) + (uint32_t)__builtin_ctzll(m);
}

/* Last set bit before x in such a bitset, or NONE. */
static uint32_t bits_prev(const uint64_t *bits, const uint64_t *top, uint32_t x)
{
    if (x == 0) {
        return NONE;
    }
    uint32_t i = (x - 1) >> 6;
    uint64_t m = bits[i] & bit_mask(0, ((x - 1) & 63) + 1);
    if (m == 0) {
        if (i == 0) {
            return NONE;
        }
        uint32_t j = i - 1, k = j >> 6;
        uint64_t t = top[k] & bit_mask(0, (j & 63) + 1);
        while (t == 0) {
            if (k == 0) {
                return NONE;
            }
            t = top[--k];
        }
        i = (k << 6) + 63 - (uint32_t)__builtin_clzll(t);
        m = bits[i];
    }
    return (i << 6) + 63 - (uint32_t)__builtin_clzll(m);
}

HOT void mark_dirty(struct region *r, uint32_t w)
{
    r->dirty[w >> 6] |= (uint64_t)1 << (w & 63);
    r->dirty_any = true;
}

/* Applies mask m to free word w (set when v, cleared otherwise), keeps both
 * summary levels, and marks the word for the lazy tree. */
HOT void word_set(struct region *r, uint32_t w, uint64_t m, bool v)
{
    uint64_t old = FREEW(r, w), word = v ? (old | m) : (old & ~m);
    FREEW(r, w) = word;
    mark_dirty(r, w);
    /* The summaries change only when the word becomes or stops being all
     * free or all busy. */
    uint32_t i = w >> 6;
    if ((old == ~(uint64_t)0) != (word == ~(uint64_t)0)) {
        set_bit(r->sum_busy, w, word != ~(uint64_t)0);
        set_bit(r->top_busy, i, r->sum_busy[i] != 0);
    }
    if ((old == 0) != (word == 0)) {
        set_bit(r->sum_free, w, word != 0);
        set_bit(r->top_free, i, r->sum_free[i] != 0);
    }
}

/* First busy granule at or after x.  Granule `end` is always busy, so this
 * never runs off the region when x <= end. */
HOT uint32_t next_busy(const struct region *r, uint32_t x)
{
    uint32_t w = x >> 6;
    uint64_t z = ~FREEW(r, w) & (~(uint64_t)0 << (x & 63));
    if (z != 0) {
        return (w << 6) + (uint32_t)__builtin_ctzll(z);
    }
    if (x - r->run_cs < r->run_ce - r->run_cs) { /* run_cs <= x < run_ce */
        return r->run_ce;
    }
    uint32_t n = bits_next(r->sum_busy, r->top_busy, r->nwords, w + 1);
    return n == NONE ? r->nwords << 6 : (n << 6) + (uint32_t)__builtin_ctzll(~FREEW(r, n));
}

/* Last busy granule before x (x > 0), or NONE. */
static uint32_t prev_busy(const struct region *r, uint32_t x)
{
    uint32_t w = (x - 1) >> 6;
    uint64_t z = ~FREEW(r, w) & bit_mask(0, ((x - 1) & 63) + 1);
    if (z != 0) {
        return (w << 6) + 63 - (uint32_t)__builtin_clzll(z);
    }
    uint32_t n = bits_prev(r->sum_busy, r->top_busy, w);
    return n == NONE ? NONE : (n << 6) + 63 - (uint32_t)__builtin_clzll(~FREEW(r, n));
}

/* First free granule in [x, end), or NONE. */
static uint32_t next_free(const struct region *r, uint32_t x)
{
    if (x >= r->end) {
        return NONE;
    }
    uint32_t w = x >> 6;
    uint64_t z = FREEW(r, w) & (~(uint64_t)0 << (x & 63));
    if (z == 0) {
        w = bits_next(r->sum_free, r->top_free, r->nwords, w + 1);
        if (w == NONE) {
            return NONE;
        }
        z = FREEW(r, w);
    }
    uint32_t g = (w << 6) + (uint32_t)__builtin_ctzll(z);
    return g < r->end ? g : NONE;
}

/* Last free granule before x (x > 0), or NONE. */
static uint32_t prev_free(const struct region *r, uint32_t x)
{
    uint32_t w = (x - 1) >> 6;
    uint64_t z = FREEW(r, w) & bit_mask(0, ((x - 1) & 63) + 1);
    if (z == 0) {
        w = bits_prev(r->sum_free, r->top_free, w);
        if (w == NONE) {
            return NONE;
        }
        z = FREEW(r, w);
    }
    return (w << 6) + 63 - (uint32_t)__builtin_clzll(z);
}

/* Is no granule of [lo, hi) free (hi <= end)?  Inline for a range of one
 * or two words, the usual distance from the rover to the run after it. */
HOT bool none_free(const struct region *r, uint32_t lo, uint32_t hi)
{
    if (lo >= hi) {
        return true;
    }
    uint32_t w0 = lo >> 6, w1 = (hi - 1) >> 6;
    uint64_t first = FREEW(r, w0) & (~(uint64_t)0 << (lo & 63));
    uint64_t last_mask = bit_mask(0, ((hi - 1) & 63) + 1);
    if (w0 == w1) {
        return (first & last_mask) == 0;
    }
    if (w1 == w0 + 1) {
        return first == 0 && (FREEW(r, w1) & last_mask) == 0;
    }
    return next_free(r, lo) >= hi;
}

/* First granule of the free run holding granule x. */
static uint32_t run_start(const struct region *r, uint32_t x)
{
    if (x == 0) {
        return 0;
    }
    uint32_t b = prev_busy(r, x);
    return b == NONE ? 0 : b + 1;
}

/* Marks granules [g0, g1) free (v) or busy.  Besides the words changed,
 * the words where a run now starts or ends its length are marked for the
 * tree: the word of g1 (a run may start there now, or no longer) and the
 * word where the run reaching g0 from below starts. */
HOT void bits_set(struct region *r, uint32_t g0, uint32_t g1, bool v)
{
    if (g0 >= g1) {
        return;
    }
    /* The known run stays true unless a granule of it turns busy or its
     * busy end turns free. */
    if (v ? (g0 <= r->run_ce && r->run_ce < g1) : (g0 < r->run_ce && r->run_cs < g1)) {
        r->run_cs = r->run_ce = 0;
    }
    uint32_t w0 = g0 >> 6, w1 = (g1 - 1) >> 6;
    if (w0 == w1) { /* most items lie in one word */
        word_set(r, w0, bit_mask(g0 & 63, ((g1 - 1) & 63) + 1), v);
    } else {
        word_set(r, w0, ~(uint64_t)0 << (g0 & 63), v);
        for (uint32_t w = w0 + 1; w < w1; w++) {
            word_set(r, w, ~(uint64_t)0, v);
        }
        word_set(r, w1, bit_mask(0, ((g1 - 1) & 63) + 1), v);
    }
    if ((g1 >> 6) != w1 && (g1 >> 6) < r->nwords) { /* word_set marked w0 to w1 */
        mark_dirty(r, g1 >> 6);
    }
    if (g0 > 0 && gfree(r, g0 - 1)) {
        mark_dirty(r, run_start(r, g0 - 1) >> 6);
    }
}

static void remember_run(struct region *r, uint32_t cs, uint32_t ce)
{
    r->run_cs = cs;
    r->run_ce = ce;
}

/* The granules of word w where a free run starts. */
HOT uint64_t run_starts(const struct region *r, uint32_t w)
{
    uint64_t f = FREEW(r, w);
    uint64_t below = w > 0 ? FREEW(r, w - 1) >> 63 : 0;
    return f & ~((f << 1) | below);
}

/* The longest whole run that starts in word w at a granule of mask m. */
static uint32_t longest_start(const struct region *r, uint32_t w, uint64_t m)
{
    uint32_t best = 0;
    for (uint64_t s = run_starts(r, w) & m; s != 0; s &= s - 1) {
        uint32_t g = (w << 6) + (uint32_t)__builtin_ctzll(s);
        best = max2(best, next_busy(r, g) - g);
    }
    return best;
}

/* Brings the tree (leaf w = the longest run starting in word w; each node
 * the maximum of its children) up to date with the words marked dirty. */
static void tree_sync(struct region *r)
{
    if (!r->dirty_any) {
        return;
    }
    for (uint32_t i = 0; i < r->nsum; i++) {
        for (uint64_t m = r->dirty[i]; m != 0; m &= m - 1) {
            uint32_t w = (i << 6) + (uint32_t)__builtin_ctzll(m);
            uint32_t k = r->leaves + w, v = longest_start(r, w, ~(uint64_t)0);
            if (r->tree[k] != v) {
                maxtree_set(r->tree, k, v);
            }
        }
        r->dirty[i] = 0;
    }
    r->dirty_any = false;
}

/* The longest free run anywhere in the region. */
static uint32_t region_longest(struct region *r)
{
    tree_sync(r);
    return r->tree[1];
}

/* First word at or after w where a run of at least n granules starts, or
 * NONE (tree in sync).  Bottom-up from w, so a near answer costs little. */
static uint32_t tree_first(const struct region *r, uint32_t w, uint32_t n)
{
    return maxtree_first(r->tree, r->leaves, w, n);
}

/* The longest run starting in words [w0, w1] (tree in sync). */
static uint32_t tree_range_max(const struct region *r, uint32_t w0, uint32_t w1)
{
    uint32_t best = 0;
    for (uint32_t lo = r->leaves + w0, hi = r->leaves + w1 + 1; lo < hi; lo >>= 1, hi >>= 1) {
        if (lo & 1) {
            best = max2(best, r->tree[lo++]);
        }
        if (hi & 1) {
            best = max2(best, r->tree[--hi]);
        }
    }
    return best;
}

/* The first run of at least n granules starting in word w at a granule of
 * mask m; its start, with its end in *run_end, or NONE. */
HOT uint32_t fit_in_word(const struct region *r, uint32_t w, uint64_t m, uint32_t n,
                            uint32_t *run_end)
{
    for (uint64_t s = run_starts(r, w) & m; s != 0; s &= s - 1) {
        uint32_t g = (w << 6) + (uint32_t)__builtin_ctzll(s);
        uint32_t e = next_busy(r, g);
        if (e - g >= n) {
            *run_end = e;
            return g;
        }
    }
    return NONE;
}

/* Words looked at directly before the tree is brought in: the fit is most
 * often that near. */
#define FIT_SCAN_WORDS 2u

/* Start of the first free run of at least n granules that starts at or
 * after lo, where granule lo - 1 is busy (or lo is 0); NONE if none.  Runs
 * are seen whole (the end marker bounds them). */
HOT uint32_t first_fit(struct region *r, uint32_t lo, uint32_t n, uint32_t *run_end)
{
    /* The remembered run, when it is the first one from lo on: no granule
     * before it is free (so it starts a run), and it is long enough. */
    if (r->run_cs >= lo && r->run_ce - r->run_cs >= n && none_free(r, lo, r->run_cs)) {
        *run_end = r->run_ce;
        return r->run_cs;
    }
    uint32_t w = lo >> 6;
    uint64_t m = ~(uint64_t)0 << (lo & 63);
    for (uint32_t k = 0; k < FIT_SCAN_WORDS && w < r->nwords; k++, w++, m = ~(uint64_t)0) {
        uint32_t g = fit_in_word(r, w, m, n, run_end);
        if (g != NONE) {
            return g;
        }
    }
    tree_sync(r);
    w = tree_first(r, w, n);
    return w == NONE ? NONE : fit_in_word(r, w, ~(uint64_t)0, n, run_end);
}

/* The longest free run seen from lo: the run holding lo counted from lo on,
 * and every run that starts in (lo, hi).  Callers pass an hi that no run
 * crosses (the end marker, or the start of a run). */
static uint32_t max_run(struct region *r, uint32_t lo, uint32_t hi)
{
    if (lo >= hi) {
        return 0;
    }
    uint32_t best = gfree(r, lo) ? next_busy(r, lo) - lo : 0;
    uint32_t w0 = (lo + 1) >> 6, w1 = (hi - 1) >> 6;
    if (lo + 1 >= hi) {
        return best;
    }
    if (w0 == w1) {
        return max2(best, longest_start(r, w0, bit_mask((lo + 1) & 63, ((hi - 1) & 63) + 1)));
    }
    best = max2(best, longest_start(r, w0, ~(uint64_t)0 << ((lo + 1) & 63)));
    best = max2(best, longest_start(r, w1, bit_mask(0, ((hi - 1) & 63) + 1)));
    if (w1 > w0 + 1) {
        tree_sync(r);
        best = max2(best, tree_range_max(r, w0 + 1, w1 - 1));
    }
    return best;
}

/* ======================================================================
 * Region max-trees
 * ====================================================================== */


/* Sets region i's key; most operations leave it as it was. */
HOT void rtree_set(struct rtree *t, uint32_t i, uint32_t v)
{
    uint32_t k = t->leaves + i;
    if (t->v[k] != v) {
        maxtree_set(t->v, k, v);
        if (i < t->memo_at && v > t->memo_max) {
            t->memo_max = v; /* keeps the bound true */
        }
    }
}

/* First region index >= from whose key is >= thr, or NONE. */
static uint32_t rtree_first(const struct rtree *t, uint32_t from, uint32_t thr)
{
    return maxtree_first(t->v, t->leaves, from, thr);
}

/* First region index whose key is >= thr, or NONE: from the memo when it
 * settles the question, otherwise down from the root, noting the largest
 * key of the subtrees passed on the left (the keys before the answer). */
HOT uint32_t rtree_first_from0(struct rtree *t, uint32_t thr)
{
    if (t->memo_max < thr && (t->memo_at >= t->leaves || t->v[t->leaves + t->memo_at] >= thr)) {
        return t->memo_at >= t->leaves ? NONE : t->memo_at;
    }
    const uint32_t *v = t->v;
    uint32_t k = 1, left = 0;
    if (v[1] < thr) {
        t->memo_at = t->leaves;
        t->memo_max = v[1];
        return NONE;
    }
    while (k < t->leaves) {
        k <<= 1;
        if (v[k] < thr) {
            left = max2(left, v[k]);
            k++;
        }
    }
    t->memo_at = k - t->leaves;
    t->memo_max = left;
    return t->memo_at;
}

/* Makes room for index `leaves` (doubling); false when out of memory. */
static bool rtree_grow(struct rtree *t)
{
    uint32_t leaves = t->leaves * 2;
    uint32_t *v = os_map_private(align_up((size_t)2 * leaves * sizeof(uint32_t), os_page_size()));
    if (v == NULL) {
        return false;
    }
    memcpy(&v[leaves], &t->v[t->leaves], t->leaves * sizeof(uint32_t));
    for (uint32_t k = leaves - 1; k >= 1; k--) {
        v[k] = max2(v[2 * k], v[2 * k + 1]);
    }
    os_release(t->v, align_up((size_t)2 * t->leaves * sizeof(uint32_t), os_page_size()));
    t->leaves = leaves;
    t->v = v;
    return true;
}

static bool rtree_init(struct rtree *t, uint32_t leaves)
{
    t->leaves = leaves;
    t->memo_at = t->memo_max = 0; /* no key lies before index 0 */
    t->v = os_map_private(align_up((size_t)2 * leaves * sizeof(uint32_t), os_page_size()));
    return t->v != NULL;
}

static void rtree_free(struct rtree *t)
{
    if (t->v != NULL) {
        os_release(t->v, align_up((size_t)2 * t->leaves * sizeof(uint32_t), os_page_size()));
    }
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
    return r->base + r->data_off + (uintptr_t)g * GRAN;
}

/* The pass-2 key: a region whose hint is an estimate is always searched;
 * otherwise only its tail (pitLast plus the uncommitted bytes) is tried. */
HOT uint32_t tail_key(const struct region *r)
{
    if (r->max_free & ESTIMATE) {
        return UINT32_MAX;
    }
    return tail_of(r) + (r->end - r->last) * GRAN;
}

HOT void reindex(struct ce5_heap *h, struct region *r)
{
    if (r->key_hint != r->max_free) {
        r->key_hint = r->max_free;
        rtree_set(&h->k_hint, r->index, r->key_hint);
    }
    uint32_t tail = tail_key(r);
    if (r->key_tail != tail) {
        r->key_tail = tail;
        rtree_set(&h->k_tail, r->index, tail);
    }
}

static void note_committed(struct ce5_heap *h, size_t added)
{
    h->st.committed_bytes += added;
    if (h->st.committed_bytes > h->st.peak_committed_bytes) {
        h->st.peak_committed_bytes = h->st.committed_bytes;
    }
}

static void note_live(struct ce5_heap *h, size_t bytes)
{
    h->st.live_bytes += bytes;
    h->st.live_blocks++;
    if (h->st.live_bytes > h->st.peak_live_bytes) {
        h->st.peak_live_bytes = h->st.live_bytes;
    }
    if (h->st.live_blocks > h->st.peak_live_blocks) {
        h->st.peak_live_blocks = h->st.live_blocks;
    }
}

static void note_dead(struct ce5_heap *h, size_t bytes)
{
    h->st.live_bytes -= bytes;
    h->st.live_blocks--;
}

static void note_resize(struct ce5_heap *h, size_t old_bytes, size_t new_bytes)
{
    h->st.live_bytes = h->st.live_bytes - old_bytes + new_bytes;
    if (h->st.live_bytes > h->st.peak_live_bytes) {
        h->st.peak_live_bytes = h->st.live_bytes;
    }
}

static DWORD commit_range(struct ce5_heap *h, uintptr_t addr, size_t bytes)
{
    void *out;
    DWORD err = slot_virtual_alloc(h->slot, (void *)addr, bytes, MEM_COMMIT, PAGE_READWRITE, &out);
    if (err == 0) {
        note_committed(h, bytes);
    }
    return err;
}

static void decommit_range(struct ce5_heap *h, uintptr_t addr, size_t bytes)
{
    if (bytes != 0 && slot_virtual_free(h->slot, (void *)addr, bytes, MEM_DECOMMIT) == 0) {
        h->st.committed_bytes -= bytes;
    }
}

static void set_blocks(struct ce5_heap *h, uintptr_t base, size_t bytes, uintptr_t tag)
{
    size_t first = (base - h->sbase) >> h->gran_shift;
    size_t count = align_up(bytes, h->gran) >> h->gran_shift;
    for (size_t b = first; b < first + count; b++) {
        h->by_block[b] = tag;
    }
}

/* Maps the bookkeeping of a region of `reserve` bytes; NULL on failure. */
static struct region *region_map(uint32_t reserve, uint32_t data_off)
{
    uint32_t ngran = (reserve - data_off) / GRAN + 1;
    uint32_t nwords = (ngran + 63) / 64;
    uint32_t leaves = pow2_at_least(nwords);
    size_t off_words = align_up(sizeof(struct region), 64);
    uint32_t nsum = (nwords + 63) / 64, ntop = (nsum + 63) / 64;
    size_t off_sum = off_words + align_up((size_t)2 * nwords * sizeof(uint64_t), 64);
    size_t off_tree = off_sum + align_up((size_t)(3 * nsum + 2 * ntop) * sizeof(uint64_t), 64);
    size_t bytes = align_up(off_tree + (size_t)2 * leaves * sizeof(uint32_t), os_page_size());
    char *mem = os_map_private(bytes);
    if (mem == NULL) {
        return NULL;
    }
    struct region *r = (struct region *)mem;
    r->reserve = reserve;
    r->data_off = data_off;
    r->ngran = ngran;
    r->nwords = nwords;
    r->leaves = leaves;
    r->words = (uint64_t *)(mem + off_words);
    r->tree = (uint32_t *)(mem + off_tree);
    r->sum_busy = (uint64_t *)(mem + off_sum);
    r->sum_free = r->sum_busy + nsum;
    r->dirty = r->sum_free + nsum;
    r->top_busy = r->dirty + nsum;
    r->top_free = r->top_busy + ntop;
    r->nsum = nsum;
    for (uint32_t w = 0; w < nwords; w++) { /* every granule starts busy */
        set_bit(r->sum_busy, w, true);
        set_bit(r->top_busy, w >> 6, true);
    }
    r->map_bytes = bytes;
    return r;
}

/* Reserves and commits a region (and its bookkeeping); on failure nothing is
 * left behind and the result is ERROR_NOT_ENOUGH_MEMORY, as CE sets. */
static DWORD region_create(struct ce5_heap *h, uint32_t reserve, uint32_t data_off, uint32_t commit,
                           struct region **out)
{
    if (h->nregions >= h->cap) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    if (h->nregions >= h->k_hint.leaves &&
        (!rtree_grow(&h->k_hint) || !rtree_grow(&h->k_tail))) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    struct region *r = region_map(reserve, data_off);
    if (r == NULL) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    void *base;
    if (slot_virtual_alloc(h->slot, NULL, reserve, MEM_RESERVE, PAGE_READWRITE, &base) != 0) {
        os_release(r, r->map_bytes);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    r->base = (uintptr_t)base;
    if (commit_range(h, r->base, commit) != 0) {
        slot_virtual_free(h->slot, base, 0, MEM_RELEASE);
        os_release(r, r->map_bytes);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    slot_set_tag(h->slot, base, SLOT_TAG_HEAP_REGION);
    r->heap = h;
    r->end = (commit - data_off) / GRAN;
    r->rover = r->last = 0;
    r->max_free = commit - data_off;
    bits_set(r, 0, r->end, true);
    r->index = h->nregions;
    h->regions[h->nregions++] = r;
    h->st.regions = h->nregions;
    set_blocks(h, r->base, reserve, (uintptr_t)r);
    reindex(h, r);
    *out = r;
    return 0;
}

/* ======================================================================
 * CE's algorithm: carve, search, allocate
 * ====================================================================== */

/* CarveItem: make `need` granules at item x busy.  x is a merged free run or
 * the end marker; when it is too small it lies at the region's end and the
 * missing pages are committed.  With grow != NONE, the busy item `grow`
 * (which ends at x) is enlarged instead of a new item being made (realloc).
 * Returns 0 or the slot's error (nothing changed then). */
HOT DWORD carve(struct ce5_heap *h, struct region *r, uint32_t x, uint32_t need, uint32_t grow,
                   uint32_t xend)
{
    uint32_t f = x >= r->end ? 0 : (xend != NONE ? xend : next_busy(r, x)) - x;
    if (f < need) {
        uint32_t ex = (uint32_t)align_up((size_t)(need - f) * GRAN + HDR, h->page);
        DWORD err = commit_range(h, r->base + committed_of(r), ex);
        if (err != 0) {
            return err;
        }
        uint32_t old = r->end;
        r->end += ex / GRAN;
        bits_set(r, old, r->end, true);
        f += ex / GRAN;
        if ((f - need) * GRAN > r->max_free) {
            r->max_free = ((f - need) * GRAN) | (r->max_free & ESTIMATE);
        }
    }
    if (f <= need) {
        need = f; /* only an exact fit takes all: leftovers of 16 are split */
    }
    bits_set(r, x, x + need, false);
    if (f > need) {
        remember_run(r, x + need, x + f);
    }
    if (grow == NONE) {
        set_start(r, x, true); /* a grown item keeps its own start */
    }
    uint32_t nx = x + need;
    if (nx == r->end || gfree(r, nx)) {
        if (r->rover > nx) {
            r->rover = nx;
        }
        if (x + f == r->end) {
            r->last = nx;
        }
    }
    return 0;
}

/* Sets cbMaxFree after a search that found a block (CE only raises it). */
static void hint_found(struct region *r, uint32_t cbmax)
{
    if (cbmax * GRAN > r->max_free) {
        r->max_free = (cbmax * GRAN) | (r->max_free & ESTIMATE);
    }
}

/* FindFreeItemInRegion: CE's circular search from the rover, merging as it
 * goes.  Returns the item to carve: a free run of at least `need` granules,
 * or the run next to the end marker (or the end marker) when committing
 * behind it makes room; NONE otherwise.  Moves the rover and pitLast and
 * updates cbMaxFree exactly as CE's scan does. */
HOT uint32_t region_search(struct region *r, uint32_t need, uint32_t *xend)
{
    *xend = NONE; /* known only when a free run is found */
    const uint32_t end = r->end;
    const uint32_t s = r->rover >= end ? 0 : r->rover;
    /* Runs passed before the found one are shorter than the request, so
     * they can raise the hint only when it is below the request. */
    const bool hint_low = r->max_free < need * GRAN;
    uint32_t p = s, cbmax = 0;

    /* The first candidate is the rover's own item, seen from the rover on. */
    if (s < end && gfree(r, s)) {
        uint32_t e = next_busy(r, s);
        if (e - s >= need) {
            r->rover = s;
            if (e == end) {
                r->last = s;
            }
            hint_found(r, e - s - need);
            *xend = e;
            return s;
        }
        cbmax = e - s;
        p = e;
    }
    /* Then every run up to the end marker. */
    uint32_t e = NONE;
    uint32_t pos = first_fit(r, p, need, &e);
    if (pos != NONE) {
        r->rover = pos;
        if (e == end) {
            r->last = pos;
        }
        if (hint_low) {
            cbmax = max2(cbmax, max_run(r, p, pos));
        }
        hint_found(r, max2(cbmax, e - pos - need));
        *xend = e;
        return pos;
    }
    /* The end marker is reached: what the scan merged so far. */
    uint32_t tail = end;
    if (end > s && gfree(r, end - 1)) {
        tail = max2(run_start(r, end - 1), s);
        r->last = tail;
        r->rover = tail;
    } else if (end > s) {
        uint32_t q = prev_free(r, end);
        if (q != NONE && q >= s) {
            r->rover = max2(run_start(r, q), s);
        }
    }
    /* Wrap: from the first item back to the rover.  Every run from s on was
     * too small, so the first fit from 0 is either a run that starts before
     * s (the one holding s - 1 is seen whole this time) or none. */
    /* When no run anywhere is long enough (a search that will fail), the
     * wrap needs no looking, only CE's rover and pitLast moves. */
    const bool fits_somewhere = region_longest(r) >= need;
    if (s > 0) {
        pos = fits_somewhere ? first_fit(r, 0, need, &e) : NONE;
        if (pos != NONE && pos < s) {
            r->rover = pos;
            if (e == end) {
                r->last = pos;
            }
            uint32_t m = 0;
            if (hint_low) {
                m = max2(max_run(r, s, end), max_run(r, 0, pos));
            }
            hint_found(r, max2(m, e - pos - need));
            *xend = e;
            return pos;
        }
        if (gfree(r, s - 1)) {
            /* The last run before s is the last candidate, whether it ends at
             * s or runs on past it. */
            uint32_t r0 = run_start(r, s - 1);
            r->rover = r0;
            if (next_busy(r, s - 1) == end) {
                r->last = r0;
                tail = r0;
            }
        } else {
            /* After the last run before s, the scan steps over busy items to
             * the first free item at or after s (already tested), if any. */
            uint32_t q = next_free(r, s);
            if (q != NONE) {
                r->rover = q;
            } else {
                q = prev_free(r, s);
                if (q != NONE) {
                    r->rover = run_start(r, q);
                }
            }
        }
    }
    /* Not found: every run has been merged, so the hint becomes exact. */
    r->max_free = region_longest(r) * GRAN;
    if (tail_of(r) + (end - tail) * GRAN < need * GRAN + HDR) {
        return NONE;
    }
    return tail;
}

/* The small-item path of HeapAlloc, lock held: FindFreeItem (pass 1, pass
 * 2, new region) and CarveItem.  Returns the data address, or 0 with *err
 * (0 when CE sets no error). */
HOT uintptr_t alloc_small_locked(struct ce5_heap *h, uint32_t need, DWORD *err)
{
    const uint32_t cb = need * GRAN;
    struct region *r = NULL;
    uint32_t x = NONE, xend = NONE;
    /* Pass 1: regions whose hint admits the request, in list order. */
    for (uint32_t i = rtree_first_from0(&h->k_hint, cb); i != NONE;
         i = rtree_first(&h->k_hint, i + 1, cb)) {
        r = h->regions[i];
        x = region_search(r, need, &xend);
        if (x != NONE) {
            break;
        }
        reindex(h, r);
    }
    /* Pass 2: exact regions offer their tail, estimated ones are searched. */
    if (x == NONE) {
        for (uint32_t i = rtree_first_from0(&h->k_tail, cb + 1); i != NONE;
             i = rtree_first(&h->k_tail, i + 1, cb + 1)) {
            r = h->regions[i];
            if (!(r->max_free & ESTIMATE)) {
                x = r->last;
                xend = NONE;
                break;
            }
            x = region_search(r, need, &xend);
            if (x != NONE) {
                break;
            }
            reindex(h, r);
        }
    }
    if (x == NONE) {
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
        x = 0;
        xend = NONE;
    }
    DWORD e = carve(h, r, x, need, NONE, xend);
    reindex(h, r);
    if (e != 0) {
        *err = e;
        return 0;
    }
    note_live(h, (size_t)need * GRAN - HDR); /* only exact fits absorb a leftover */
    return data_addr(r, x);
}

/* ======================================================================
 * Large items
 * ====================================================================== */

static struct large *large_record(struct ce5_heap *h)
{
    if (h->large_spare == NULL) {
        size_t bytes = os_page_size();
        struct large_chunk *c = os_map_private(bytes);
        if (c == NULL) {
            return NULL;
        }
        c->bytes = bytes;
        c->next = h->chunks;
        h->chunks = c;
        struct large *rec = (struct large *)align_up((uintptr_t)(c + 1), _Alignof(struct large));
        for (; (uintptr_t)(rec + 1) <= (uintptr_t)c + bytes; rec++) {
            rec->next = h->large_spare;
            h->large_spare = rec;
        }
    }
    struct large *l = h->large_spare;
    h->large_spare = l->next;
    memset(l, 0, sizeof *l);
    return l;
}

static uintptr_t alloc_large_locked(struct ce5_heap *h, size_t n, DWORD *err)
{
    size_t committed = align_up(n + LARGE_DATA, h->page);
    size_t reserve = align_up(committed, h->gran);
    void *base;
    DWORD e = slot_virtual_alloc(h->slot, NULL, reserve, MEM_RESERVE, PAGE_READWRITE, &base);
    if (e != 0) {
        *err = e; /* VirtualAlloc's error: HeapAlloc sets none itself */
        return 0;
    }
    struct large *l = large_record(h);
    if (l == NULL) {
        e = ERROR_NOT_ENOUGH_MEMORY;
    } else {
        e = commit_range(h, (uintptr_t)base, committed);
    }
    if (e != 0) {
        if (l != NULL) {
            l->next = h->large_spare;
            h->large_spare = l;
        }
        slot_virtual_free(h->slot, base, 0, MEM_RELEASE);
        *err = e;
        return 0;
    }
    slot_set_tag(h->slot, base, SLOT_TAG_HEAP_LARGE);
    l->base = (uintptr_t)base;
    l->committed = committed;
    l->reserve = reserve;
    l->next = h->large_head;
    if (h->large_head != NULL) {
        h->large_head->prev = l;
    }
    h->large_head = l;
    h->st.large_items++;
    set_blocks(h, l->base, reserve, (uintptr_t)l | 1);
    note_live(h, committed - LARGE_DATA);
    return l->base + LARGE_DATA;
}

static void free_large_locked(struct ce5_heap *h, struct large *l)
{
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        h->large_head = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    set_blocks(h, l->base, l->reserve, 0);
    note_dead(h, l->committed - LARGE_DATA);
    h->st.large_items--;
    decommit_range(h, l->base, l->committed);
    slot_virtual_free(h->slot, (void *)l->base, 0, MEM_RELEASE);
    l->next = h->large_spare;
    h->large_spare = l;
}

/* ======================================================================
 * Pointers
 * ====================================================================== */

HOT struct where locate(const struct ce5_heap *h, const void *p)
{
    struct where w = {LOC_FOREIGN, NULL, 0, NULL};
    uintptr_t a = (uintptr_t)p;
    if (a - h->sbase >= h->ssize) {
        return w;
    }
    uintptr_t tag = h->by_block[(a - h->sbase) >> h->gran_shift];
    if (tag == 0) {
        return w;
    }
    if (tag & 1) {
        w.l = (struct large *)(tag & ~(uintptr_t)1);
        w.loc = a == w.l->base + LARGE_DATA ? LOC_LARGE : LOC_INTERIOR;
        return w;
    }
    struct region *r = (struct region *)tag;
    w.r = r;
    w.loc = LOC_INTERIOR;
    if (a < r->base + r->data_off || (a - r->base - r->data_off) % GRAN != 0) {
        return w;
    }
    uint32_t g = (uint32_t)((a - r->base - r->data_off) / GRAN);
    if (g >= r->end) {
        return w;
    }
    w.g = g;
    if (gstart(r, g)) {
        w.loc = LOC_BUSY;
    } else if (gfree(r, g)) {
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
    h->st.bad_pointers++;
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
 * two overlapping stores instead of a call, on every allocation. */
HOT void zero_slack(uintptr_t from, uintptr_t to)
{
    size_t len = to - from;
    static const uint64_t z8 = 0;
    static const uint32_t z4 = 0;
    if (len >= 8) {
        memcpy((void *)from, &z8, 8);
        memcpy((void *)(to - 8), &z8, 8);
    } else if (len >= 4) {
        memcpy((void *)from, &z4, 4);
        memcpy((void *)(to - 4), &z4, 4);
    } else {
        for (uintptr_t a = from; a < to; a++) {
            *(unsigned char *)a = 0;
        }
    }
}

/* ======================================================================
 * The operations
 * ====================================================================== */

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
    size_t off_blocks = off_regions + align_up((size_t)cap * sizeof(struct region *), 64);
    size_t bytes = align_up(off_blocks + nblocks * sizeof(uintptr_t), os_page_size());
    char *mem = os_map_private(bytes);
    if (mem == NULL) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    struct ce5_heap *h = (struct ce5_heap *)mem;
    h->common.ops = &heap_ce5_ops;
    h->common.slot = s;
    h->slot = s;
    h->sbase = slot_base(s);
    h->ssize = slot_size(s);
    h->page = page;
    h->gran = gran;
    h->gran_shift = (unsigned)__builtin_ctzll(gran);
    h->maximum = mx;
    h->regions = (struct region **)(mem + off_regions);
    h->cap = cap;
    h->by_block = (uintptr_t *)(mem + off_blocks);
    h->map_bytes = bytes;
    struct region *r;
    DWORD e = ERROR_NOT_ENOUGH_MEMORY;
    if (rtree_init(&h->k_hint, 4) && rtree_init(&h->k_tail, 4)) {
        e = region_create(h, reserve, FIRST_DATA, ini, &r);
    }
    if (e != 0) {
        rtree_free(&h->k_hint);
        rtree_free(&h->k_tail);
        os_release(mem, bytes);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    h->handle = r->base;
    return &h->common;
}

static bool ce5_destroy(struct heap *hh, DWORD *err)
{
    (void)err;
    struct ce5_heap *h = ce5(hh);
    lock_enter(&h->lock);
    while (h->large_head != NULL) {
        free_large_locked(h, h->large_head);
    }
    for (uint32_t i = h->nregions; i-- > 0;) {
        struct region *r = h->regions[i];
        decommit_range(h, r->base, r->reserve);
        slot_virtual_free(h->slot, (void *)r->base, 0, MEM_RELEASE);
        os_release(r, r->map_bytes);
    }
    for (struct large_chunk *c = h->chunks, *next; c != NULL; c = next) {
        next = c->next;
        os_release(c, c->bytes);
    }
    rtree_free(&h->k_hint);
    rtree_free(&h->k_tail);
    lock_leave(&h->lock);
    os_release(h, h->map_bytes);
    return true;
}

static void *ce5_alloc(struct heap *hh, DWORD flags, size_t n, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_ALLOC_FLAGS) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    if (n > MAX_REQUEST) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
        entry_note_reason(LOG_REASON_TOO_LARGE);
        return NULL;
    }
    uintptr_t p;
    lock_enter(&h->lock);
    if (h->maximum == 0 && n + LARGE_OVERHEAD >= LARGE_LIMIT) {
        p = alloc_large_locked(h, n, err);
        lock_leave(&h->lock);
        return (void *)p; /* fresh pages are zero: HEAP_ZERO_MEMORY has nothing to do */
    }
    /* Only an exact fit absorbs its leftover, so the item is always cbSeek. */
    size_t cbseek = align_up(n + HDR, GRAN);
    p = alloc_small_locked(h, (uint32_t)(cbseek / GRAN), err);
    lock_leave(&h->lock);
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

/* HeapFree of a busy small item, lock held. */
HOT void free_small_locked(struct ce5_heap *h, struct region *r, uint32_t g)
{
    uint32_t sz = item_size(r, g);
    set_start(r, g, false);
    bits_set(r, g, g + sz, true);
    note_dead(h, (size_t)sz * GRAN - HDR);
    uint32_t e = next_busy(r, g + sz);
    remember_run(r, g, e);
    uint32_t merged = (e - g) * GRAN;
    r->rover = g;
    if (e == r->end) {
        r->last = g;
    }
    if (r->max_free < merged) {
        r->max_free = merged;
    }
    r->max_free |= ESTIMATE;
    reindex(h, r);
}

static bool ce5_free(struct heap *hh, DWORD flags, void *p, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return false;
    }
    lock_enter(&h->lock);
    struct where w = locate(h, p);
    if (w.loc == LOC_BUSY) {
        free_small_locked(h, w.r, w.g);
    } else if (w.loc == LOC_LARGE) {
        free_large_locked(h, w.l);
    } else {
        count_bad(h);
    }
    lock_leave(&h->lock);
    if (w.loc == LOC_BUSY || w.loc == LOC_LARGE) {
        return true;
    }
    *err = refusal_error(h, w.loc, p);
    heap_report_bad_pointer("HeapFree", (void *)h->handle, p, bad_kind(w.loc));
    return false;
}

static size_t ce5_size(struct heap *hh, DWORD flags, const void *p, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return (size_t)-1;
    }
    size_t n = (size_t)-1;
    lock_enter(&h->lock);
    struct where w = locate(h, p);
    if (w.loc == LOC_BUSY) {
        n = (size_t)item_size(w.r, w.g) * GRAN - HDR;
    } else if (w.loc == LOC_LARGE) {
        n = w.l->committed - LARGE_DATA;
    } else {
        count_bad(h);
    }
    lock_leave(&h->lock);
    if (n == (size_t)-1) {
        *err = refusal_error(h, w.loc, p);
        heap_report_bad_pointer("HeapSize", (void *)h->handle, p, bad_kind(w.loc));
    }
    return n;
}

enum in_place { IP_DONE, IP_MOVE, IP_FAILED };

/* In-place resize of a busy small item to `need` granules (CE's rules,
 * spec 6.2), lock held.  IP_FAILED: the commit at the region's end failed,
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
            bits_set(r, g + need, g + cur, true);
            note_resize(h, (size_t)cur * GRAN, (size_t)need * GRAN);
            uint32_t split = (cur - need) * GRAN;
            if (r->max_free < split) {
                r->max_free = split | (r->max_free & ESTIMATE);
            }
            reindex(h, r);
        }
        return IP_DONE;
    }
    uint32_t nx = g + cur;
    if (nx < r->end && !gfree(r, nx)) {
        return IP_MOVE; /* next item busy: nothing changes */
    }
    uint32_t free_g = 0;
    bool at_end = true;
    if (nx < r->end) {
        uint32_t e = next_busy(r, nx);
        r->rover = nx; /* Merge(N) moves the rover even if the grow fails */
        if (e == r->end) {
            r->last = nx;
        }
        free_g = e - nx;
        at_end = e == r->end;
    }
    bool fits = cur + free_g >= need ||
                (at_end && (size_t)(cur + free_g) * GRAN + tail_of(r) > (size_t)need * GRAN);
    if (!fits) {
        reindex(h, r);
        return IP_MOVE;
    }
    if (carve(h, r, nx, need - cur, g, NONE) != 0) {
        reindex(h, r);
        return IP_FAILED;
    }
    uint32_t grown = item_size(r, g);
    if (r->rover > g) {
        r->rover = g + grown;
    }
    reindex(h, r);
    note_resize(h, (size_t)cur * GRAN, (size_t)grown * GRAN);
    /* Carving zeroes the slack after n; HEAP_ZERO_MEMORY the whole new part. */
    *zfrom = (flags & HEAP_ZERO_MEMORY) ? data + (size_t)cur * GRAN - HDR : data + n;
    *zto = data + (size_t)grown * GRAN - HDR;
    return IP_DONE;
}

/* Copies the n usable bytes of a moving block.  From a large item to a
 * larger one (the data at the same offset of the first page in both) the
 * kernel moves the old pages instead: the same bytes, without copying them
 * or faulting in the new item's pages, which is what keeps a program that
 * grows a big buffer step by step from paying for every byte each time. */
static void move_contents(const struct where *from, const struct where *to, void *q,
                          const void *p, size_t n)
{
    if (from->loc == LOC_LARGE && to->loc == LOC_LARGE && from->l->committed <= to->l->committed &&
        os_move_pages((void *)to->l->base, (void *)from->l->base, from->l->committed) == 0) {
        /* The pages came with the old range's protection, which the
         * program may have changed with VirtualProtect: the new item is
         * read/write like any fresh one. */
        (void)os_protect((void *)to->l->base, from->l->committed, OS_PROT_READ | OS_PROT_WRITE);
        return;
    }
    memcpy(q, p, n);
}

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
    lock_enter(&h->lock);
    struct where w = locate(h, p);
    if (w.loc != LOC_BUSY && w.loc != LOC_LARGE) {
        count_bad(h);
        lock_leave(&h->lock);
        *err = ERROR_INVALID_PARAMETER; /* freed blocks too: header size <= 0 */
        heap_report_bad_pointer("HeapReAlloc", (void *)h->handle, p, bad_kind(w.loc));
        return NULL;
    }
    if (n > MAX_REQUEST) {
        lock_leave(&h->lock);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        entry_note_reason(LOG_REASON_TOO_LARGE);
        return NULL;
    }
    size_t old_usable;
    uintptr_t zfrom = 0, zto = 0;
    if (w.loc == LOC_LARGE) {
        /* Large items never shrink and never grow in place. */
        if (align_up(n + LARGE_DATA, h->page) <= w.l->committed) {
            lock_leave(&h->lock);
            return p;
        }
        old_usable = w.l->committed - LARGE_DATA;
    } else {
        uint32_t need = (uint32_t)(align_up(n + HDR, GRAN) / GRAN);
        old_usable = (size_t)item_size(w.r, w.g) * GRAN - HDR;
        enum in_place ip = realloc_in_place_locked(h, w.r, w.g, need, n, flags, &zfrom, &zto);
        if (ip != IP_MOVE) {
            lock_leave(&h->lock);
            if (ip == IP_FAILED) {
                *err = ERROR_NOT_ENOUGH_MEMORY;
                return NULL;
            }
            zero(zfrom, zto);
            return p;
        }
    }
    if (flags & HEAP_REALLOC_IN_PLACE_ONLY) {
        lock_leave(&h->lock);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        entry_note_reason(LOG_REASON_IN_PLACE);
        return NULL;
    }
    /* Move: allocate first (so the old place cannot be reused), copy the old
     * usable size, free the old item. */
    uintptr_t q;
    if (h->maximum == 0 && n + LARGE_OVERHEAD >= LARGE_LIMIT) {
        q = alloc_large_locked(h, n, err);
    } else {
        q = alloc_small_locked(h, (uint32_t)(align_up(n + HDR, GRAN) / GRAN), err);
    }
    if (q == 0) {
        lock_leave(&h->lock);
        return NULL;
    }
    struct where nw = locate(h, (void *)q);
    size_t new_usable = nw.loc == LOC_LARGE ? nw.l->committed - LARGE_DATA
                                            : (size_t)item_size(nw.r, nw.g) * GRAN - HDR;
    move_contents(&w, &nw, (void *)q, p, old_usable);
    if (nw.loc == LOC_BUSY) {
        /* The carve's slack zeroing, then the flag's. */
        zero(q + ((flags & HEAP_ZERO_MEMORY) ? old_usable : (n > old_usable ? n : old_usable)),
             q + new_usable);
    }
    if (w.loc == LOC_LARGE) {
        free_large_locked(h, w.l);
    } else {
        free_small_locked(h, w.r, w.g);
    }
    lock_leave(&h->lock);
    return (void *)q;
}

static size_t ce5_compact(struct heap *hh, DWORD flags, DWORD *err)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return 0;
    }
    uint32_t best = 0;
    lock_enter(&h->lock);
    for (uint32_t i = 0; i < h->nregions; i++) {
        struct region *r = h->regions[i];
        uint32_t q = r->end > 0 ? prev_free(r, r->end) : NONE;
        if (q != NONE) {
            /* Every run is merged; the rover ends at the last one. */
            uint32_t t = run_start(r, q);
            r->rover = t;
            if (q == r->end - 1) {
                r->last = t;
                uint32_t size = (r->end - t) * GRAN;
                if (size >= h->page) {
                    uintptr_t hdr = data_addr(r, t) - HDR;
                    uint32_t head = (uint32_t)(h->page - (hdr & (h->page - 1)) - HDR);
                    uint32_t ex = (size - head) & ~(uint32_t)(h->page - 1);
                    uint32_t old_end = r->end;
                    r->end = t + head / GRAN;
                    bits_set(r, r->end, old_end, false);
                    decommit_range(h, hdr + head + HDR, ex);
                }
            }
        }
        r->max_free = region_longest(r) * GRAN;
        reindex(h, r);
        best = max2(best, r->max_free);
    }
    lock_leave(&h->lock);
    return best;
}

static bool summaries_consistent(const struct region *r);
static bool tree_consistent(const struct region *r);
static bool rover_last_consistent(const struct region *r); /* and the known run */

/* Checks one region's bookkeeping against itself (lock held, tree in sync). */
static bool region_consistent(const struct region *r)
{
    uint32_t g = 0;
    while (g < r->end) {
        if (gstart(r, g)) {
            if (gfree(r, g)) {
                return false;
            }
            g = item_end(r, g); /* the busy granules up to the next item */
        } else if (gfree(r, g)) {
            uint32_t e = next_busy(r, g);
            for (uint32_t k = g; k < e; k++) {
                if (gstart(r, k)) {
                    return false;
                }
            }
            g = e;
        } else {
            return false; /* a busy granule outside any item */
        }
    }
    for (uint32_t k = r->end; k < r->nwords * 64; k++) {
        if (gfree(r, k) || gstart(r, k)) {
            return false;
        }
    }
    return summaries_consistent(r) && tree_consistent(r) && rover_last_consistent(r);
}

/* The summary bits against the free bits they summarize. */
static bool summaries_consistent(const struct region *r)
{
    for (uint32_t w = 0; w < r->nwords; w++) {
        bool busy = (r->sum_busy[w >> 6] >> (w & 63)) & 1, free = (r->sum_free[w >> 6] >> (w & 63)) & 1;
        if (busy != (FREEW(r, w) != ~(uint64_t)0) || free != (FREEW(r, w) != 0)) {
            return false;
        }
    }
    for (uint32_t i = 0; i < r->nsum; i++) {
        bool busy = (r->top_busy[i >> 6] >> (i & 63)) & 1, free = (r->top_free[i >> 6] >> (i & 63)) & 1;
        if (busy != (r->sum_busy[i] != 0) || free != (r->sum_free[i] != 0)) {
            return false;
        }
    }
    return true;
}

/* The tree (in sync) against runs found granule by granule. */
static bool tree_consistent(const struct region *r)
{
    for (uint32_t w = 0; w < r->leaves; w++) {
        uint32_t best = 0;
        for (uint32_t g = w * 64; w < r->nwords && g < w * 64 + 64; g++) {
            if (gfree(r, g) && (g == 0 || !gfree(r, g - 1))) {
                uint32_t e = g;
                while (e < r->nwords * 64 && gfree(r, e)) {
                    e++;
                }
                best = max2(best, e - g);
            }
        }
        if (r->tree[r->leaves + w] != best) {
            return false;
        }
    }
    for (uint32_t k = 1; k < r->leaves; k++) {
        if (r->tree[k] != max2(r->tree[2 * k], r->tree[2 * k + 1])) {
            return false;
        }
    }
    return true;
}

static bool rover_last_consistent(const struct region *r)
{
    bool last_ok = r->last == r->end || (r->last < r->end && gfree(r, r->last) &&
                                         next_busy(r, r->last) == r->end);
    bool run_ok = r->run_cs <= r->run_ce && r->run_ce <= r->end;
    for (uint32_t g = r->run_cs; run_ok && g < r->run_ce; g++) {
        run_ok = gfree(r, g);
    }
    run_ok = run_ok && (r->run_cs == r->run_ce || !gfree(r, r->run_ce));
    return r->rover <= r->end && last_ok && run_ok && committed_of(r) % 4096 == 0;
}

static bool ce5_validate(struct heap *hh, DWORD flags, const void *p)
{
    struct ce5_heap *h = ce5(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        return false;
    }
    bool ok = true;
    lock_enter(&h->lock);
    if (p == NULL) {
        for (uint32_t i = 0; ok && i < h->nregions; i++) {
            tree_sync(h->regions[i]);
            ok = region_consistent(h->regions[i]);
        }
    } else {
        enum loc loc = locate(h, p).loc;
        ok = loc == LOC_BUSY || loc == LOC_LARGE;
    }
    lock_leave(&h->lock);
    return ok;
}

static bool ce5_owns(struct heap *hh, const void *p)
{
    struct ce5_heap *h = ce5(hh);
    lock_enter(&h->lock);
    enum loc loc = locate(h, p).loc;
    lock_leave(&h->lock);
    return loc == LOC_BUSY || loc == LOC_LARGE;
}

static void ce5_walk(struct heap *hh, heap_walk_fn fn, void *ctx)
{
    struct ce5_heap *h = ce5(hh);
    lock_enter(&h->lock);
    bool go = true;
    for (uint32_t i = 0; go && i < h->nregions; i++) {
        const struct region *r = h->regions[i];
        struct heap_walk_entry e = {HEAP_WALK_REGION, r->base, r->reserve, committed_of(r), true};
        go = fn(ctx, &e);
        for (uint32_t g = 0; go && g < r->end;) {
            bool busy = gstart(r, g);
            uint32_t next = busy ? item_end(r, g) : next_busy(r, g);
            struct heap_walk_entry it = {HEAP_WALK_ITEM, data_addr(r, g),
                                         (size_t)(next - g) * GRAN - HDR, 0, busy};
            go = fn(ctx, &it);
            g = next;
        }
    }
    for (const struct large *l = h->large_head; go && l != NULL; l = l->next) {
        struct heap_walk_entry e = {HEAP_WALK_LARGE, l->base + LARGE_DATA, l->committed - LARGE_DATA,
                                    l->committed, true};
        go = fn(ctx, &e);
    }
    lock_leave(&h->lock);
}

static void ce5_stats(struct heap *hh, struct heap_stats *out)
{
    struct ce5_heap *h = ce5(hh);
    lock_enter(&h->lock);
    *out = h->st;
    lock_leave(&h->lock);
}

static void *ce5_handle(struct heap *hh)
{
    return (void *)ce5(hh)->handle;
}

static void ce5_lock(struct heap *hh)
{
    lock_take(&ce5(hh)->lock);
}

static void ce5_unlock(struct heap *hh)
{
    lock_give(&ce5(hh)->lock);
}

bool heap_ce5_region_state(struct heap *hh, size_t i, struct heap_ce5_region_state *out)
{
    struct ce5_heap *h = ce5(hh);
    lock_enter(&h->lock);
    bool ok = i < h->nregions;
    if (ok) {
        const struct region *r = h->regions[i];
        uintptr_t hdr0 = r->base + r->data_off - HDR - h->sbase;
        out->base = r->base - h->sbase;
        out->reserved = r->reserve;
        out->committed = committed_of(r);
        out->rover = hdr0 + (uintptr_t)r->rover * GRAN;
        out->last = hdr0 + (uintptr_t)r->last * GRAN;
        out->end = hdr0 + (uintptr_t)r->end * GRAN;
        out->max_free = r->max_free;
    }
    lock_leave(&h->lock);
    return ok;
}

const struct heap_ops heap_ce5_ops = {
    .name = "ce5",
    .create = ce5_create,
    .destroy = ce5_destroy,
    .alloc = ce5_alloc,
    .realloc = ce5_realloc,
    .free = ce5_free,
    .size = ce5_size,
    .compact = ce5_compact,
    .validate = ce5_validate,
    .owns = ce5_owns,
    .walk = ce5_walk,
    .stats = ce5_stats,
    .handle = ce5_handle,
    .lock = ce5_lock,
    .unlock = ce5_unlock,
};
