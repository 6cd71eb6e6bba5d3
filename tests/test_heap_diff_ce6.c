/*
 * test_heap_diff_ce6.c - the CE 6.0 heap against its literal model.
 *
 * Long random sequences of HeapAlloc / HeapReAlloc / HeapFree / HeapSize /
 * HeapCompact (sizes from one byte to several hundred KB, both sides of the
 * 16 KB threshold, requests the slot cannot hold, over 1 GB, invalid and
 * freed pointers) drive the real heap through the public API (profile ce6,
 * a 32 MB slot, 8 MB for the one that fills it) and the model of tests/heapmodel_ce6.c.  After every step:
 * the same offsets, HeapSize, failures and last errors, the same committed
 * pages and free blocks in the slot, and the same CE counters in every region
 * (base, blocks, committed end, rover, free count, maxBlkFree, which region
 * is prgnfree).  Block contents are checked across moves.
 *
 * HEAPDIFF_STEPS=n multiplies the lengths (default 1).
 *
 * The core set-up, random draws and comparisons are the shared harness
 * (tests/heapdiff.h); this file keeps what is particular to its heap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "config.h"
#include "core.h"
#include "heap/heap.h"
#include "heapdiff.h"
#include "testutil.h"
#include "heapmodel_ce6.h"

#ifdef CEBOX_DEBUG
#define VALIDATE_EVERY_STEP true /* --enable-debug: HeapValidate after every step */
#else
#define VALIDATE_EVERY_STEP false
#endif
#define PAGE 4096u
#define SENTINEL 0xC0FFEEu
#define MAX_LIVE 24000

struct item {
    uint32_t off;
    uint32_t n;
    unsigned char tag;
};

struct pair {
    HANDLE real;
    struct m6_heap *model;
    struct item live[MAX_LIVE];
    size_t nlive;
    uint32_t freed[32];
    size_t nfreed;
};

struct world {
    struct m6_slot *ms;
    struct m6_heap *mprocess;
    struct heapdiff hd;
};

/* What the runs exercised, printed at the end. */
static struct {
    unsigned long steps, allocs, alloc_fail, large, reallocs, moved, inplace_fail, frees, bad,
        compacts, released, regions_max;
} cov;

static uint32_t some_size(struct world *w, bool small_only)
{
    static const struct heapdiff_band small[] = {{900, 0, 400}, {1000, 0, 3000}};
    static const struct heapdiff_band any[] = {
        {500, 0, 100},
        {750, 100, 1500},
        {900, 1600, 8000},
        {940, 16352, 64}, /* both sides of 512 blocks */
        {990, 16400, 200000},
        {996, 0x1F00000, 0x100000}, /* more than the slot holds */
        {1000, 0x40000000u, 2},     /* 1 GB exactly, just above */
    };
    return (uint32_t)heapdiff_size(&w->hd, small_only ? small : any);
}

static void same_error(const struct world *w, const char *what, uint32_t merr)
{
    same(w, what, GetLastError(), merr);
}

/* CE's counters of every region of one heap, cebox against the model. */
static void compare_regions(struct world *w, HANDLE real, struct m6_heap *model)
{
    struct heap *h = heap_lookup(real);
    assert_non_null(h);
    size_t nm = m6_region_count(model), i = 0;
    struct heap_ce6_region_state rs;
    for (; heap_ce6_region_state(h, i, &rs); i++) {
        if (i >= nm) {
            same(w, "region count", i + 1, nm);
        }
        struct m6_region_state ms;
        m6_region_state(model, i, &ms);
        same(w, "region base", rs.base, ms.base);
        same(w, "region blocks", rs.total, ms.total);
        same(w, "region committed end", rs.commit, ms.commit);
        same(w, "region rover", rs.rover, ms.rover);
        same(w, "region free blocks", rs.nfree, ms.nfree);
        same(w, "region maxBlkFree", rs.max, ms.max);
        same(w, "region is prgnfree", rs.current, ms.current);
    }
    same(w, "region count", i, nm);
    if (i > cov.regions_max) {
        cov.regions_max = i;
    }
}

/* The pair's heap and the process heap (which holds CE's records of the
 * others), then the slot. */
static void compare(struct world *w, struct pair *p)
{
    compare_regions(w, p->real, p->model);
    if (p->model != w->mprocess) {
        compare_regions(w, GetProcessHeap(), w->mprocess);
    }
    same(w, "committed pages", slot_committed_bytes() / PAGE, m6_slot_committed_pages(w->ms));
    same(w, "free blocks", slot_free_blocks(), m6_slot_free_blocks(w->ms));
}

static void fill(struct world *w, const struct item *it)
{
    heapdiff_fill(&w->hd, it->off, it->n, it->tag);
}

static void check_fill(struct world *w, const struct item *it, uint32_t upto)
{
    heapdiff_check_fill(&w->hd, "contents", it->off, upto, it->tag);
}

static void check_size(struct world *w, struct pair *p, uint32_t off)
{
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    SIZE_T rsz = HeapSize(p->real, 0, ptr_of(w, off));
    uint32_t msz = m6_size(p->model, 0, off, &merr);
    same(w, "HeapSize", rsz == (SIZE_T)-1 ? 0xFFFFFFFFu : rsz, msz);
    same_error(w, "HeapSize error", merr);
}

static void op_alloc(struct world *w, struct pair *p, bool small_only)
{
    uint32_t n = some_size(w, small_only);
    DWORD flags = below(w, 4) == 0 ? HEAP_ZERO_MEMORY : 0;
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    void *r = HeapAlloc(p->real, flags, n);
    uint32_t m = m6_alloc(p->model, flags, n, &merr);
    same(w, "HeapAlloc offset", off_of(w, r), m);
    same_error(w, "HeapAlloc error", merr);
    cov.allocs++;
    if (m == 0) {
        cov.alloc_fail++;
        return;
    }
    cov.large += n > 16384;
    if (flags & HEAP_ZERO_MEMORY) {
        heapdiff_check_zeroed(&w->hd, "zeroed byte", r, n);
    }
    check_size(w, p, m);
    if (p->nlive < MAX_LIVE) {
        struct item it = {m, n, (unsigned char)(1 + below(w, 250))};
        fill(w, &it);
        p->live[p->nlive++] = it;
    } else {
        uint32_t e = 0;
        assert_true(HeapFree(p->real, 0, r));
        assert_true(m6_free(p->model, 0, m, &e));
    }
}

static void op_free(struct world *w, struct pair *p)
{
    if (p->nlive == 0) {
        return;
    }
    size_t i = below(w, (uint32_t)p->nlive);
    struct item it = p->live[i];
    check_fill(w, &it, it.n);
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    BOOL r = HeapFree(p->real, 0, ptr_of(w, it.off));
    bool m = m6_free(p->model, 0, it.off, &merr);
    same(w, "HeapFree", r != FALSE, m);
    same_error(w, "HeapFree error", merr);
    p->live[i] = p->live[--p->nlive];
    p->freed[p->nfreed++ % 32] = it.off;
    cov.frees++;
}

static void op_realloc(struct world *w, struct pair *p, bool small_only)
{
    if (p->nlive == 0) {
        return;
    }
    size_t i = below(w, (uint32_t)p->nlive);
    struct item *it = &p->live[i];
    uint32_t n = below(w, 3) == 0 ? it->n / 2 : some_size(w, small_only);
    DWORD flags = (below(w, 3) == 0 ? HEAP_REALLOC_IN_PLACE_ONLY : 0) |
                  (below(w, 4) == 0 ? HEAP_ZERO_MEMORY : 0);
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    void *r = HeapReAlloc(p->real, flags, ptr_of(w, it->off), n);
    uint32_t m = m6_realloc(p->model, flags, it->off, n, &merr);
    same(w, "HeapReAlloc offset", off_of(w, r), m);
    same_error(w, "HeapReAlloc error", merr);
    cov.reallocs++;
    if (m == 0) {
        cov.inplace_fail += (flags & HEAP_REALLOC_IN_PLACE_ONLY) != 0;
        check_fill(w, it, it->n);
        return;
    }
    cov.moved += m != it->off;
    uint32_t keep = n < it->n ? n : it->n;
    it->off = m;
    check_fill(w, it, keep);
    it->n = n;
    fill(w, it);
    check_size(w, p, m);
}

static void op_compact(struct world *w, struct pair *p)
{
    size_t before = m6_region_count(p->model);
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    UINT r = HeapCompact(p->real, 0);
    uint32_t m = m6_compact(p->model, 0, &merr);
    same(w, "HeapCompact", r, m);
    cov.compacts++;
    cov.released += before - m6_region_count(p->model);
}

/* Freed, interior and foreign pointers: refused alike, and HeapSize of
 * them; a refused HeapFree still makes the region prgnfree. */
static void op_bad(struct world *w, struct pair *p)
{
    uint32_t off;
    unsigned k = below(w, 3);
    if (k == 0 && p->nfreed > 0) {
        off = p->freed[below(w, (uint32_t)(p->nfreed < 32 ? p->nfreed : 32))];
    } else if (k == 1 && p->nlive > 0) {
        off = p->live[below(w, (uint32_t)p->nlive)].off + 32 * (1 + below(w, 3));
    } else {
        off = m6_handle(p->model) + below(w, 0x10000);
    }
    check_size(w, p, off);
    /* Only free what the model refuses too, or a live item would go. */
    uint32_t merr = SENTINEL;
    uint32_t msz = m6_size(p->model, 0, off, &merr);
    if (msz == 0xFFFFFFFFu) {
        merr = SENTINEL;
        SetLastError(SENTINEL);
        BOOL r = HeapFree(p->real, 0, ptr_of(w, off));
        bool m = m6_free(p->model, 0, off, &merr);
        same(w, "bad HeapFree", r != FALSE, m);
        same_error(w, "bad HeapFree error", merr);
    }
    cov.bad++;
}

static void step(struct world *w, struct pair *p, unsigned target, bool small_only)
{
    unsigned k = below(w, 1000);
    if (k < 3) {
        op_compact(w, p);
    } else if (k < 30) {
        op_bad(w, p);
    } else if (k < 230) {
        op_realloc(w, p, small_only);
    } else if (p->nlive < target ? k < 700 : k < 450) {
        op_alloc(w, p, small_only);
    } else {
        op_free(w, p);
    }
    compare(w, p);
    if (w->hd.step % 512 == 0 || VALIDATE_EVERY_STEP) {
        assert_true(HeapValidate(p->real, 0, NULL));
    }
    if (w->hd.step % 128 == 0) {
        heapdiff_check_free_figures(&w->hd, p->real, 0, PAGE);
    }
    w->hd.step++;
    cov.steps++;
}

static void world_start_in(struct world *w, const char *scenario, uint64_t seed, const char *slot)
{
    memset(w, 0, sizeof *w);
    /* RAM never binds: the slot does */
    size_t blocks = heapdiff_start(&w->hd, scenario, seed, "ce6", "1G", slot);
    w->ms = m6_slot_new((uint32_t)blocks);
    uint32_t e = 0;
    HANDLE ph = GetProcessHeap(); /* the process heap comes first, in both */
    w->mprocess = m6_create(w->ms, 0, 0, 0, &e);
    assert_non_null(w->mprocess);
    same(w, "process heap", off_of(w, ph), m6_handle(w->mprocess));
}

static void world_start(struct world *w, const char *scenario, uint64_t seed)
{
    world_start_in(w, scenario, seed, "32M");
}

static void world_end(struct world *w)
{
    m6_destroy(w->mprocess);
    m6_slot_free(w->ms);
}

static void pair_process(struct world *w, struct pair *p)
{
    memset(p, 0, sizeof *p);
    p->real = GetProcessHeap();
    p->model = w->mprocess;
}

static void pair_create(struct world *w, struct pair *p, uint32_t initial, uint32_t max)
{
    memset(p, 0, sizeof *p);
    uint32_t e = SENTINEL;
    SetLastError(SENTINEL);
    p->real = HeapCreate(0, initial, max);
    p->model = m6_create(w->ms, 0, initial, max, &e);
    same(w, "HeapCreate", p->real != NULL, p->model != NULL);
    if (p->model != NULL) {
        same(w, "HeapCreate handle", off_of(w, p->real), m6_handle(p->model));
    } else {
        same_error(w, "HeapCreate error", e);
    }
}

static void pair_destroy(struct world *w, struct pair *p)
{
    assert_true(HeapDestroy(p->real));
    m6_destroy(p->model);
    same(w, "free blocks after HeapDestroy", slot_free_blocks(), m6_slot_free_blocks(w->ms));
}

static struct pair pa, pb;

static void test_process_heap_matches_model(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct world w;
        world_start(&w, "process heap", 0x9E3779B97F4A7C15ull * seed);
        pair_process(&w, &pa);
        for (unsigned long s = 0; s < 40000 * heapdiff_scale(); s++) {
            step(&w, &pa, 300, false);
        }
        world_end(&w);
    }
}

static void test_small_items_many_regions_match_model(void **state)
{
    (void)state;
    struct world w;
    world_start(&w, "small items", 0xD1B54A32D192ED03ull);
    pair_create(&w, &pa, 0, 0);
    for (unsigned long s = 0; s < 120000 * heapdiff_scale(); s++) {
        /* Swing the population up and down, so regions fill and empty. */
        unsigned target = (s / 6000) % 2 == 0 ? 2500 : 100;
        step(&w, &pa, target, true);
    }
    pair_destroy(&w, &pa);
    world_end(&w);
}

/* Enough small items to fill the slot with regions: new regions fail for
 * want of blocks, freed ones are released by HeapCompact. */
static void test_slot_full_of_regions_matches_model(void **state)
{
    (void)state;
    struct world w;
    world_start_in(&w, "slot full of regions", 0x8BB84B93962EACC9ull, "8M");
    pair_create(&w, &pa, 0, 0);
    for (unsigned long s = 0; s < 100000 * heapdiff_scale(); s++) {
        bool filling = (s / 30000) % 2 == 0;
        if (below(&w, 10) < 7) { /* mostly fill, or mostly empty */
            if (filling) {
                op_alloc(&w, &pa, true);
            } else {
                op_free(&w, &pa);
            }
            compare(&w, &pa);
            w.hd.step++;
            cov.steps++;
        } else {
            step(&w, &pa, filling ? MAX_LIVE : 0, true);
        }
    }
    pair_destroy(&w, &pa);
    world_end(&w);
}

static void test_two_heaps_interleaved_match_model(void **state)
{
    (void)state;
    struct world w;
    world_start(&w, "two heaps", 0x2545F4914F6CDD1Dull);
    pair_process(&w, &pa);
    pair_create(&w, &pb, 0, 0);
    for (unsigned long s = 0; s < 40000 * heapdiff_scale(); s++) {
        step(&w, below(&w, 2) ? &pa : &pb, 200, false);
    }
    pair_destroy(&w, &pb);
    world_end(&w);
}

static void test_fixed_heaps_match_model(void **state)
{
    (void)state;
    static const uint32_t shapes[][2] = {
        {0, 40000}, {8192, 65536}, {0, 300000}, {4096, 4096}, {12288, 8192},
        {0, 0x300000}, /* a structure over 16 KB: a large item of the process heap */
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        struct world w;
        world_start(&w, "fixed heap", 0xA0761D6478BD642Full + k);
        pair_create(&w, &pa, shapes[k][0], shapes[k][1]);
        if (pa.model != NULL) {
            for (unsigned long s = 0; s < 20000 * heapdiff_scale(); s++) {
                step(&w, &pa, 150, k % 2 == 0);
            }
            pair_destroy(&w, &pa);
        }
        world_end(&w);
    }
}

static int report(void **state)
{
    (void)state;
    printf("# ce6 heap diff: %lu steps, %lu allocs (%lu failed, %lu large), %lu reallocs "
           "(%lu moved, %lu in-place failures), %lu frees, %lu bad pointers, %lu compacts "
           "(%lu regions released), up to %lu regions\n",
           cov.steps, cov.allocs, cov.alloc_fail, cov.large, cov.reallocs, cov.moved,
           cov.inplace_fail, cov.frees, cov.bad, cov.compacts, cov.released, cov.regions_max);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_heap_matches_model),
        cmocka_unit_test(test_small_items_many_regions_match_model),
        cmocka_unit_test(test_slot_full_of_regions_matches_model),
        cmocka_unit_test(test_two_heaps_interleaved_match_model),
        cmocka_unit_test(test_fixed_heaps_match_model),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}
