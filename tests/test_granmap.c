/*
 * test_granmap.c - the heap index structures on their own, against plain
 * arrays: the granule map (src/heap/granmap.h) and the max-trees
 * (src/heap/maxtree.h), which every heap algorithm may reuse.
 *
 * Random changes (free and busy ranges, item starts, known runs) are made
 * to a map and to an array of granule states; after each, every query of
 * the map is compared with a linear scan of the array, and the map's own
 * consistency check must hold.  The max-trees get random keys and are
 * compared with a scan of the keys, across growth and with the memo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "heap/bitsum.h"
#include "heap/granmap.h"
#include "heap/maxtree.h"
#include "meta.h"

#define NONE GRANMAP_NONE

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* ---- the reference: one byte per granule ---- */

struct ref {
    uint32_t n, end; /* granules [end, n) stay busy, as past a heap's end */
    unsigned char free[12100], start[12100];
};

static uint32_t ref_next_busy(const struct ref *r, uint32_t x)
{
    while (x < r->n && r->free[x]) {
        x++;
    }
    return x;
}

static uint32_t ref_next_free(const struct ref *r, uint32_t x)
{
    for (; x < r->n; x++) {
        if (r->free[x]) {
            return x;
        }
    }
    return NONE;
}

static uint32_t ref_prev(const struct ref *r, uint32_t x, bool want_free)
{
    while (x-- > 0) {
        if ((bool)r->free[x] == want_free) {
            return x;
        }
    }
    return NONE;
}

static uint32_t ref_run_start(const struct ref *r, uint32_t x)
{
    while (x > 0 && r->free[x - 1]) {
        x--;
    }
    return x;
}

/* First run of at least len starting at or after lo (a run starts where the
 * granule before it is busy). */
static uint32_t ref_first_fit(const struct ref *r, uint32_t lo, uint32_t len, uint32_t *end)
{
    for (uint32_t g = lo; g < r->n; g++) {
        if (r->free[g] && (g == 0 || !r->free[g - 1])) {
            uint32_t e = ref_next_busy(r, g);
            if (e - g >= len) {
                *end = e;
                return g;
            }
        }
    }
    return NONE;
}

static uint32_t ref_longest_in(const struct ref *r, uint32_t lo, uint32_t hi)
{
    uint32_t best = lo < hi && r->free[lo] ? ref_next_busy(r, lo) - lo : 0;
    for (uint32_t g = lo + 1; g < hi; g++) {
        if (r->free[g] && !r->free[g - 1]) {
            uint32_t len = ref_next_busy(r, g) - g;
            best = len > best ? len : best;
        }
    }
    return best;
}

static uint32_t ref_item_end(const struct ref *r, uint32_t g, uint32_t limit)
{
    for (uint32_t x = g + 1; x < limit; x++) {
        if (r->free[x] || r->start[x]) {
            return x;
        }
    }
    return limit;
}

/* ---- the map under test ---- */

struct fixture {
    struct granmap m;
    void *mem;
    size_t bytes;
    struct ref r;
};

static void fixture_start(struct fixture *f, uint32_t ngran)
{
    f->bytes = granmap_bytes(ngran);
    f->mem = meta_alloc(f->bytes);
    assert_non_null(f->mem);
    granmap_init(&f->m, f->mem, ngran, 16);
    memset(&f->r, 0, sizeof f->r);
    f->r.n = f->m.nwords * 64;
    f->r.end = ngran - 1;
}

static void fixture_end(struct fixture *f)
{
    meta_free(f->mem, f->bytes);
}

/* One random change, to both. */
static void change(struct fixture *f)
{
    struct ref *r = &f->r;
    uint32_t g0 = rnd(r->end), len = 1 + rnd(rnd(4) == 0 ? 300 : 20);
    uint32_t g1 = g0 + len > r->end ? r->end : g0 + len;
    switch (rnd(4)) {
    case 0: /* a busy item of [g0, g1): carved from free space as a heap does, or over anything */
        if (ref_next_busy(r, g0) >= g1) {
            if (rnd(2) == 0) {
                granmap_take(&f->m, g0, g1 - g0, true);
            } else {
                granmap_take_inline(&f->m, g0, g1 - g0, true); /* the same, two words inline */
            }
            for (uint32_t g = g0; g < g1; g++) { /* the item's start, and no other */
                assert_int_equal(granmap_start(&f->m, g), g == g0);
            }
        } else {
            granmap_set(&f->m, g0, g1, false);
        }
        for (uint32_t g = g0; g < g1; g++) {
            granmap_set_start(&f->m, g, g == g0);
            r->free[g] = 0;
            r->start[g] = g == g0;
        }
        if (g1 < r->end && !r->free[g1]) {
            granmap_set_start(&f->m, g1, true); /* what followed stays an item */
            r->start[g1] = 1;
        }
        break;
    case 1: /* freed */
        for (uint32_t g = g0; g < g1; g++) {
            granmap_set_start(&f->m, g, false);
            r->free[g] = 1;
            r->start[g] = 0;
        }
        granmap_set(&f->m, g0, g1, true);
        if (g1 < r->end && !r->free[g1]) {
            granmap_set_start(&f->m, g1, true);
            r->start[g1] = 1;
        }
        break;
    case 2: { /* the first item from g0 on freed whole, as a heap frees one */
        uint32_t g = g0;
        while (g < r->end && !r->start[g]) {
            g++;
        }
        if (g == r->end) {
            break;
        }
        uint32_t end = ref_item_end(r, g, r->end), run_end = 0;
        for (uint32_t x = g; x < end; x++) {
            r->free[x] = 1;
        }
        r->start[g] = 0;
        assert_int_equal(granmap_free_item(&f->m, g, r->end, &run_end), end);
        assert_int_equal(run_end, ref_next_busy(r, end));
        break;
    }
    default: { /* the heap learns a run whole */
        uint32_t x = ref_next_free(r, g0);
        if (x != NONE) {
            uint32_t cs = ref_run_start(r, x);
            granmap_remember_run(&f->m, cs, ref_next_busy(r, cs));
        }
        break;
    }
    }
}

/* Every query at a few random places. */
static void compare(struct fixture *f)
{
    const struct ref *r = &f->r;
    assert_true(granmap_consistent(&f->m));
    for (int k = 0; k < 8; k++) {
        uint32_t x = rnd(r->end + 1), y = 1 + rnd(r->end);
        assert_int_equal(granmap_free(&f->m, x), r->free[x]);
        assert_int_equal(granmap_next_busy(&f->m, x), ref_next_busy(r, x));
        assert_int_equal(granmap_next_free(&f->m, x), ref_next_free(r, x));
        assert_int_equal(granmap_prev_busy(&f->m, y), ref_prev(r, y, false));
        assert_int_equal(granmap_prev_free(&f->m, y), ref_prev(r, y, true));
        assert_int_equal(granmap_none_free(&f->m, x, y), ref_next_free(r, x) >= y || x >= y);
        assert_int_equal(granmap_all_free(&f->m, x, y), ref_next_busy(r, x) >= y || x >= y);
        uint32_t near = x + rnd(r->end - x < 130 ? r->end - x + 1 : 130); /* one to three words */
        assert_int_equal(granmap_all_free(&f->m, x, near), ref_next_busy(r, x) >= near || x >= near);
        if (r->free[x]) {
            assert_int_equal(granmap_run_start(&f->m, x), ref_run_start(r, x));
        }
        if (r->start[x]) {
            assert_int_equal(granmap_item_end(&f->m, x, r->end), ref_item_end(r, x, r->end));
        }
        /* first_fit wants lo at a run's start or after a busy granule */
        uint32_t lo = r->free[x] ? ref_run_start(r, x) : x, len = 1 + rnd(k < 4 ? 8 : 400);
        uint32_t e_map = 0, e_ref = 0;
        uint32_t fit = granmap_first_fit(&f->m, lo, len, &e_map);
        assert_int_equal(fit, ref_first_fit(r, lo, len, &e_ref));
        if (fit != NONE) {
            assert_int_equal(e_map, e_ref);
        }
        uint32_t hi = x + rnd(r->end + 1 - x);
        bool crosses = hi > 0 && r->free[hi] && r->free[hi - 1]; /* not allowed */
        if (!crosses) {
            assert_int_equal(granmap_longest_in(&f->m, x, hi), ref_longest_in(r, x, hi));
        }
    }
    assert_int_equal(granmap_longest(&f->m), ref_longest_in(r, 0, r->n));
}

/* The longest run in a range, checked when the range may not cross a run. */
static void check_longest_in(struct fixture *f)
{
    const struct ref *r = &f->r;
    uint32_t x = rnd(r->end + 1), hi = x + rnd(r->end + 1 - x);
    if (!(hi > 0 && r->free[hi] && r->free[hi - 1])) {
        assert_int_equal(granmap_longest_in(&f->m, x, hi), ref_longest_in(r, x, hi));
    }
}

/* Queries asked before anything syncs the tree, `synced` being the
 * longest run at the last sync (what the tree then held): first fits for
 * more than that (the changes since may have made a run that long, or
 * not), for at most that (the nearby words may answer before the tree is
 * synced) and longest runs in ranges.  The first query of each batch, the
 * one that meets the tree as the changes left it, is any of the three. */
static void search_the_stale_tree(struct fixture *f, uint32_t synced)
{
    const struct ref *r = &f->r;
    uint32_t first = rnd(3);
    if (first == 2) {
        check_longest_in(f);
    }
    for (uint32_t k = 0; k < 5; k++) {
        bool above = first == 0 ? k == 0 : k == 4;
        uint32_t x = rnd(r->end + 1), lo = r->free[x] ? ref_run_start(r, x) : x;
        uint32_t len = above ? synced + 1 + rnd(16) : 1 + rnd(synced > 0 ? synced : 1);
        uint32_t e_map = 0, e_ref = 0;
        uint32_t fit = granmap_first_fit(&f->m, lo, len, &e_map);
        assert_int_equal(fit, ref_first_fit(r, lo, len, &e_ref));
        if (fit != NONE) {
            assert_int_equal(e_map, e_ref);
        }
    }
    check_longest_in(f);
}

/* `steps` random changes to a map of ngran granules, compared after every
 * one (batch 1) or after up to `batch` of them, so that one sync finds
 * many marked words, in several blocks of marks; with `stale`, searches
 * of the tree as the changes left it come first. */
static void run_map_searching(uint32_t ngran, unsigned steps, uint64_t seed, uint32_t batch, bool stale)
{
    static struct fixture f;
    rng_state = seed;
    fixture_start(&f, ngran);
    compare(&f); /* all busy */
    granmap_set(&f.m, 0, f.r.end, true); /* a fresh region: one free run */
    memset(f.r.free, 1, f.r.end);
    compare(&f);
    for (unsigned i = 0; i < steps;) {
        uint32_t synced = ref_longest_in(&f.r, 0, f.r.n); /* compare synced the tree */
        for (uint32_t k = 1 + rnd(batch); k > 0 && i < steps; k--, i++) {
            change(&f);
        }
        if (stale) {
            search_the_stale_tree(&f, synced);
        }
        compare(&f);
    }
    fixture_end(&f);
}

static void run_map(uint32_t ngran, unsigned steps, uint64_t seed, uint32_t batch)
{
    run_map_searching(ngran, steps, seed, batch, false);
}

static void test_map_matches_a_scan(void **state)
{
    (void)state;
    run_map(3000, 3000, 0x9E3779B97F4A7C15ull, 1); /* CE 5's 0x2F000 region is 12 000 granules */
    run_map(64 * 3 + 1, 2000, 42, 1);              /* word boundaries everywhere */
    run_map(4990, 1500, 7, 1);
    run_map(60, 400, 8, 1);          /* one word: its leaf is the tree's root */
    run_map(64 * 9 + 30, 1500, 9, 1); /* ten words, a tree of 16 leaves */
}

/* A region of CE 5's size: 188 words, three blocks of dirty marks; many
 * changes between two searches. */
static void test_map_matches_a_scan_in_batches(void **state)
{
    (void)state;
    run_map(12000, 3000, 99, 40);
    run_map(64 * 128 + 5, 600, 3, 300); /* a last block of one word */
}

/* Searches with the changes since the last sync not yet synced: the
 * answers come from the map as it is now. */
static void test_first_fit_on_a_stale_tree(void **state)
{
    (void)state;
    run_map_searching(12000, 3000, 5, 6, true);
    run_map_searching(64 * 3 + 1, 2000, 11, 2, true);
}

/* The longest run that starts in word w, from the reference: the leaf
 * the tree must hold for it once synced. */
static uint32_t ref_leaf(const struct ref *r, uint32_t w)
{
    uint32_t best = 0;
    for (uint32_t g = w * 64; g < w * 64 + 64 && g < r->n; g++) {
        if (r->free[g] && (g == 0 || !r->free[g - 1])) {
            uint32_t len = ref_next_busy(r, g) - g;
            best = len > best ? len : best;
        }
    }
    return best;
}

/* The dirty list against a scan of the marks and of the leaves, before a
 * sync: each listed word once and marked, every marked word listed, and
 * every word whose leaf is stale among them; after the sync, no mark and
 * every leaf right. */
static void check_dirty_list(struct fixture *f)
{
    const struct granmap *m = &f->m;
    static unsigned char seen[12100 / 64 + 1];
    memset(seen, 0, sizeof seen);
    assert_true(m->ndirty <= m->nwords);
    for (uint32_t k = 0; k < m->ndirty; k++) {
        uint32_t w = m->dirty_list[k];
        assert_true(w < m->nwords);
        assert_int_equal(seen[w], 0);
        assert_int_equal(m->dirty[w], 1);
        seen[w] = 1;
    }
    for (uint32_t w = 0; w < m->nwords; w++) {
        assert_int_equal(m->dirty[w], seen[w]);
        if (m->tree[m->leaves + w] != ref_leaf(&f->r, w)) {
            assert_int_equal(seen[w], 1); /* a stale leaf the sync would miss */
        }
    }
    granmap_sync(&f->m);
    assert_int_equal(m->ndirty, 0);
    for (uint32_t w = 0; w < m->nwords; w++) {
        assert_int_equal(m->dirty[w], 0);
        assert_int_equal(m->tree[m->leaves + w], ref_leaf(&f->r, w));
    }
}

/* The dirty list, on maps whose list lies inside the tree (at most half
 * its leaves in words) and after it: batches of changes, up to every word
 * of the map marked between two syncs. */
static void test_dirty_list_matches_a_scan(void **state)
{
    (void)state;
    static struct fixture f;
    const uint32_t sizes[] = {12000, 64 * 30, 64 * 3 + 1, 64 * 2, 60};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        rng_state = 1234 + s;
        fixture_start(&f, sizes[s]);
        granmap_set(&f.m, 0, f.r.end, true);
        memset(f.r.free, 1, f.r.end);
        check_dirty_list(&f);
        for (int round = 0; round < 300; round++) {
            for (uint32_t k = 1 + rnd(round % 10 == 0 ? 400 : 8); k > 0; k--) {
                change(&f);
            }
            check_dirty_list(&f);
        }
        fixture_end(&f);
    }
}

/* A planted stale summary is caught by the consistency check. */
static void test_consistency_check_catches_a_stale_summary(void **state)
{
    (void)state;
    static struct fixture f;
    fixture_start(&f, 1000);
    granmap_set(&f.m, 0, 500, true);
    assert_true(granmap_consistent(&f.m));
    f.m.sum_free[0] = 0; /* word 0 holds free granules: the summary must say so */
    assert_false(granmap_consistent(&f.m));
    fixture_end(&f);
}

/* ---- the summarized bitset (bitsum.h) ---- */

/* Random sets and clears (bitsum_clear among them, of set bits and of
 * clear ones) against a plain array of bits: the summary stays true, and
 * the next and previous set bits are a scan's. */
static void test_bitsum_matches_a_scan(void **state)
{
    (void)state;
    enum { WORDS = 70, BITS = WORDS * 64 };
    static uint64_t bits[WORDS], top[(WORDS + 63) / 64];
    static unsigned char ref[BITS];
    memset(bits, 0, sizeof bits);
    memset(top, 0, sizeof top);
    memset(ref, 0, sizeof ref);
    rng_state = 4242;
    for (int step = 0; step < 20000; step++) {
        /* Few positions per word, so that words often fill and empty. */
        uint32_t i = rnd(BITS);
        if (rnd(4) != 0) {
            i = (i & ~63u) | (i % 3) * 31;
        }
        switch (rnd(3)) {
        case 0:
            bitsum_set(bits, top, i, true);
            ref[i] = 1;
            break;
        case 1:
            bitsum_set(bits, top, i, false);
            ref[i] = 0;
            break;
        default:
            bitsum_clear(bits, top, i);
            ref[i] = 0;
            break;
        }
        assert_true(bitsum_consistent(bits, top, WORDS));
        uint32_t x = rnd(BITS + 1), next = BITSUM_NONE, prev = BITSUM_NONE;
        for (uint32_t k = x; k < BITS; k++) {
            if (ref[k]) {
                next = k;
                break;
            }
        }
        for (uint32_t k = x; k-- > 0;) {
            if (ref[k]) {
                prev = k;
                break;
            }
        }
        assert_int_equal(bitsum_next(bits, top, WORDS, x), next);
        assert_int_equal(bitsum_prev(bits, top, x), prev);
    }
}

/* ---- max-trees ---- */

static uint32_t ref_first(const uint32_t *keys, uint32_t n, uint32_t from, uint32_t thr)
{
    for (uint32_t i = from; i < n; i++) {
        if (keys[i] >= thr) {
            return i;
        }
    }
    return MAXTREE_NONE;
}

static void test_maxtree_matches_a_scan(void **state)
{
    (void)state;
    rng_state = 12345;
    struct maxtree t;
    assert_true(maxtree_init(&t, 4));
    static uint32_t keys[1024], nodes[2 * 1024];
    memset(keys, 0, sizeof keys);
    memset(nodes, 0, sizeof nodes);
    uint32_t n = 0;
    for (int step = 0; step < 40000; step++) {
        if (n < 1000 && rnd(20) == 0) { /* a new position, as a new region */
            if (n >= t.leaves) {
                uint32_t before = t.leaves;
                assert_true(maxtree_grow(&t));
                assert_int_equal(t.leaves, 2 * before);
                assert_true(maxtree_consistent(&t));
            }
            n++;
        }
        if (n == 0) {
            continue;
        }
        /* Keys around the levels' cap (kept whole beside them), and runs
         * of equal ones (a lowering stops where another key of a group
         * holds the old maximum). */
        uint32_t i = rnd(n), v = rnd(4) == 0 ? MAXTREE_KEY_MAX - 2 + rnd(5) : rnd(64);
        v = rnd(8) == 0 ? rnd(0x30000) : v;
        maxtree_set(&t, i, v);
        maxtree_node_set(nodes, 1024 + i, v);
        keys[i] = v;
        uint32_t thr = rnd(3) == 0 ? MAXTREE_KEY_MAX - 2 + rnd(5) : rnd(80), from = rnd(n + 20);
        thr = rnd(8) == 0 ? rnd(0x30000) : thr;
        assert_int_equal(maxtree_first(&t, thr), ref_first(keys, n, 0, thr));
        assert_int_equal(maxtree_first(&t, thr), ref_first(keys, n, 0, thr)); /* from the memo */
        if (rnd(3) == 0) { /* a first position found by the caller's own search */
            uint32_t nthr = 1 + rnd(80);
            maxtree_note_first(&t, nthr, ref_first(keys, n, 0, nthr));
            assert_true(maxtree_consistent(&t));
            uint32_t q = nthr + rnd(3) - 1;
            assert_int_equal(maxtree_first(&t, q), ref_first(keys, n, 0, q));
        }
        /* Positions past the last key hold 0 (a threshold of 0 finds one). */
        assert_int_equal(maxtree_first_after(&t, from, thr), ref_first(keys, t.leaves, from, thr));
        from = from < n ? from : n - 1;
        uint32_t j = from + rnd(n - from), best = 0;
        for (uint32_t k = from; k <= j; k++) {
            best = keys[k] > best ? keys[k] : best;
        }
        assert_int_equal(maxtree_node_range_max(nodes, 1024, from, j), best);
        if (step % 512 == 0) {
            assert_true(maxtree_consistent(&t));
            assert_true(maxtree_node_consistent(nodes, 1024));
        }
    }
    maxtree_destroy(&t);
}

/* The SSE2 group tests agree with the portable ones, lane by lane, for
 * every threshold around each key (the portable ones run where SSE2 is
 * missing). */
static void test_maxtree_group_tests_agree(void **state)
{
    (void)state;
    rng_state = 777;
    static uint16_t g[MAXTREE_FAN] __attribute__((aligned(32)));
    for (int round = 0; round < 2000; round++) {
        for (uint32_t j = 0; j < MAXTREE_FAN; j++) {
            g[j] = (uint16_t)(rnd(3) == 0 ? rnd(MAXTREE_KEY_MAX + 1) : rnd(40));
        }
        assert_int_equal(maxtree_group_max(g), maxtree_group_max_portable(g));
        for (uint32_t j = 0; j < MAXTREE_FAN; j++) {
            for (int d = -1; d <= 1; d++) {
                int32_t b = (int32_t)g[j] + d;
                if (b >= -1 && b < (int32_t)MAXTREE_KEY_MAX) {
                    assert_int_equal(maxtree_group_above(g, (int16_t)b),
                                     maxtree_group_above_portable(g, (int16_t)b));
                }
            }
        }
    }
}

/* The node array (fan-out 4) at each size a map gives it, from a lone
 * leaf that is its own root to 1 024 leaves: random keys (runs of equal
 * ones, so a lowering meets a sibling holding the old maximum), and after
 * each change the first key from a random position, a range's maximum and
 * the node invariant against a scan of the keys. */
static void test_node_tree_matches_a_scan(void **state)
{
    (void)state;
    rng_state = 777;
    static uint32_t keys[1024], nodes[2 * 1024];
    for (uint32_t leaves = 1; leaves <= 1024; leaves *= 4) {
        memset(keys, 0, sizeof keys);
        memset(nodes, 0, sizeof nodes);
        for (int step = 0; step < 6000; step++) {
            uint32_t i = rnd(leaves), v = rnd(6) == 0 ? rnd(5000) : rnd(12);
            maxtree_node_set(nodes, leaves + i, v);
            keys[i] = v;
            uint32_t from = rnd(leaves + 2), thr = rnd(4) == 0 ? rnd(5200) : rnd(14);
            assert_int_equal(maxtree_node_first(nodes, leaves, from, thr), ref_first(keys, leaves, from, thr));
            from = from < leaves ? from : leaves - 1;
            uint32_t j = from + rnd(leaves - from), best = 0;
            for (uint32_t k = from; k <= j; k++) {
                best = keys[k] > best ? keys[k] : best;
            }
            assert_int_equal(maxtree_node_range_max(nodes, leaves, from, j), best);
            assert_true(maxtree_node_consistent(nodes, leaves));
            uint32_t top = 0;
            for (uint32_t k = 0; k < leaves; k++) {
                top = keys[k] > top ? keys[k] : top;
            }
            assert_int_equal(nodes[1], top); /* the root, which granmap_longest reads */
        }
        /* A planted stale inner node is caught. */
        if (leaves > 1) {
            maxtree_node_set(nodes, leaves, 6000);
            nodes[leaves >> 2] = 5999;
            assert_false(maxtree_node_consistent(nodes, leaves));
        }
    }
}

/* A corrupt entry is caught: the check is not vacuous. */
static void test_maxtree_consistency_catches_a_stale_entry(void **state)
{
    (void)state;
    struct maxtree t;
    assert_true(maxtree_init(&t, 300));
    maxtree_set(&t, 200, 7);
    assert_true(maxtree_consistent(&t));
    t.v[t.off[1] + 200 / MAXTREE_FAN] = 6;
    assert_false(maxtree_consistent(&t));
    maxtree_destroy(&t);
}

/* A failed growth leaves the tree as it was. */
static void test_maxtree_growth_failure_keeps_the_tree(void **state)
{
    (void)state;
    struct maxtree t;
    assert_true(maxtree_init(&t, 4));
    for (uint32_t i = 0; i < 4; i++) {
        maxtree_set(&t, i, 10 * (i + 1));
    }
    meta_fail_after(1);
    assert_false(maxtree_grow(&t));
    meta_fail_after(0);
    assert_int_equal(t.leaves, MAXTREE_FAN);
    assert_true(maxtree_consistent(&t));
    assert_int_equal(maxtree_first(&t, 25), 2);
    assert_true(maxtree_grow(&t));
    assert_int_equal(t.leaves, 2 * MAXTREE_FAN);
    assert_int_equal(maxtree_first(&t, 25), 2);
    assert_int_equal(maxtree_first(&t, 41), MAXTREE_NONE);
    maxtree_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_matches_a_scan),
        cmocka_unit_test(test_map_matches_a_scan_in_batches),
        cmocka_unit_test(test_first_fit_on_a_stale_tree),
        cmocka_unit_test(test_dirty_list_matches_a_scan),
        cmocka_unit_test(test_bitsum_matches_a_scan),
        cmocka_unit_test(test_consistency_check_catches_a_stale_summary),
        cmocka_unit_test(test_maxtree_matches_a_scan),
        cmocka_unit_test(test_maxtree_growth_failure_keeps_the_tree),
        cmocka_unit_test(test_maxtree_group_tests_agree),
        cmocka_unit_test(test_maxtree_consistency_catches_a_stale_entry),
        cmocka_unit_test(test_node_tree_matches_a_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
