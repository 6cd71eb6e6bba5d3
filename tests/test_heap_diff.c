/*
 * test_heap_diff.c - the CE 5 heap against its reference model.
 *
 * Long random sequences of HeapAlloc / HeapReAlloc / HeapFree / HeapCompact
 * (mixed sizes: tiny to region-sized, large items, requests the slot cannot
 * hold, invalid pointers) drive the real heap, through the public API, and
 * the model of tests/heapmodel.c.  After every step: the same offsets in the
 * slot, the same HeapSize, the same failures and last errors, the same
 * committed pages and free blocks in the slot, and the same CE state in every
 * region (rover, pitLast, end marker, cbMaxFree with its estimate bit).  Every
 * few hundred steps the free space of every region is compared too.
 *
 * Built with ./configure --enable-debug (CEBOX_DEBUG), every step also
 * validates the whole heap (HeapValidate with no block: the granule maps
 * against their summaries and run trees, the items, CE's per-region state,
 * the cached keys against the region trees, the block table and the
 * statistics), not only every few hundred steps.
 *
 * Each scenario runs in a fresh core (core_reset); the model gets a fresh
 * fake slot of the same 512 blocks and starts its own process heap first, as
 * the real API does.
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
#include "heapmodel.h"

#define PAGE 4096u
#define SENTINEL 0xC0FFEEu

#ifdef CEBOX_DEBUG
#define VALIDATE_EVERY_STEP true
#else
#define VALIDATE_EVERY_STEP false
#endif
#define MAX_LIVE 4096

struct block {
    uint32_t off;
    size_t n;
    unsigned char tag;
};

struct heapctx {
    HANDLE real;
    struct hm_heap *model;
    struct block live[MAX_LIVE];
    size_t nlive;
    uint32_t freed[64]; /* recently freed offsets, for double frees */
    size_t nfreed;
};

/* What the sequences exercised (printed with HEAPDIFF_VERBOSE=1). */
static struct {
    unsigned long allocs, alloc_fail, alloc_fail_noerr, large, reallocs, realloc_moved,
        realloc_inplace_fail, frees, compacts, bad, regions_max, wraps;
} cov;

struct world {
    struct hm_slot *ms;
    struct hm_heap *mprocess;
    struct heapdiff hd;
};

/* Request sizes: mostly small, some region-sized (near the large threshold
 * too), some large items, a few the slot cannot hold. */
static size_t some_size(struct world *w)
{
    static const struct heapdiff_band bands[] = {
        {550, 0, 129},
        {800, 129, 900},
        {900, 1024, 8192},
        {950, 8192, 90000},
        {965, 0x17FE0, 16}, /* both sides of 98,280 */
        {995, 98280, 600000},
        {998, 0x1FEFFE0, 64}, /* a reserve reaching 32 MB */
        {1000, 0x40000000u, 2}, /* exactly 1 GB, just above */
    };
    return heapdiff_size(&w->hd, bands);
}

/* The last error after a failed call, in the model's terms (0: none set). */
static DWORD real_error(void)
{
    DWORD e = GetLastError();
    return e == SENTINEL ? 0 : e;
}

static void expect_errors(const struct world *w, const char *what, uint32_t merr)
{
    same(w, what, real_error(), merr == SENTINEL ? 0 : merr);
}

/* ---- state comparison ---- */

struct runs {
    uint32_t hdr[20000], bytes[20000];
    size_t n;
};

static void model_run(void *ctx, uint32_t hdr, uint32_t bytes)
{
    struct runs *r = ctx;
    if (r->n < 20000) {
        r->hdr[r->n] = hdr;
        r->bytes[r->n] = bytes;
    }
    r->n++;
}

struct walkctx {
    struct runs runs;
    size_t region; /* index of the region being compared, counted from 1 */
    size_t want;
    uintptr_t base;
};

static bool real_run(void *ctx, const struct heap_walk_entry *e)
{
    struct walkctx *c = ctx;
    if (e->kind == HEAP_WALK_REGION) {
        c->region++;
    } else if (e->kind == HEAP_WALK_ITEM && !e->busy && c->region == c->want + 1) {
        model_run(&c->runs, (uint32_t)(e->addr - 8 - c->base), (uint32_t)(e->size + 8));
    }
    return true;
}

static void compare_heap(struct world *w, struct heapctx *hc, bool runs)
{
    struct heap *h = heap_lookup(hc->real);
    assert_non_null(h);
    size_t nm = hm_region_count(hc->model), i = 0;
    struct heap_ce5_region_state rs;
    for (; heap_ce5_region_state(h, i, &rs); i++) {
        if (i >= nm) {
            fail_at(w, "region count", i + 1, nm);
        }
        struct hm_region_state ms;
        hm_region_state(hc->model, i, &ms);
        same(w, "region base", rs.base, ms.base);
        same(w, "region reserve", rs.reserved, ms.reserved);
        same(w, "region committed", rs.committed, ms.committed);
        same(w, "region end marker", rs.end, ms.end);
        same(w, "region rover", rs.rover, ms.rover);
        same(w, "region pitLast", rs.last, ms.last);
        same(w, "region cbMaxFree", rs.max_free, ms.max_free);
        if (runs) {
            static struct walkctx real;
            static struct runs model;
            memset(&real, 0, sizeof real);
            real.want = i;
            real.base = w->hd.base;
            h->ops->walk(h, real_run, &real);
            model.n = 0;
            hm_free_runs(hc->model, i, model_run, &model);
            same(w, "free run count", real.runs.n, model.n);
            heapdiff_check_free_figures(&w->hd, hc->real, 8, PAGE);
            for (size_t k = 0; k < model.n && k < 20000; k++) {
                same(w, "free run start", real.runs.hdr[k], model.hdr[k]);
                same(w, "free run size", real.runs.bytes[k], model.bytes[k]);
            }
        }
    }
    same(w, "region count", i, nm);
    if (i > cov.regions_max) {
        cov.regions_max = i;
    }
    if (runs || VALIDATE_EVERY_STEP) {
        assert_true(HeapValidate(hc->real, 0, NULL));
    }
}

static void compare_slot(struct world *w)
{
    same(w, "committed pages", slot_committed_bytes() / PAGE, hm_slot_committed_pages(w->ms));
    same(w, "free blocks", slot_free_blocks(), hm_slot_free_blocks(w->ms));
}

/* ---- operations ---- */

static void remember_freed(struct heapctx *hc, uint32_t off)
{
    hc->freed[hc->nfreed++ % 64] = off;
}

static void drop_live(struct heapctx *hc, size_t i)
{
    hc->live[i] = hc->live[--hc->nlive];
}

static void fill(struct world *w, const struct block *b)
{
    heapdiff_fill(&w->hd, b->off, b->n, b->tag);
}

static void check_fill(struct world *w, const struct block *b, size_t upto)
{
    heapdiff_check_fill(&w->hd, "block contents after realloc", b->off, upto, b->tag);
}

static void check_size(struct world *w, struct heapctx *hc, uint32_t off)
{
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    SIZE_T rs = HeapSize(hc->real, 0, ptr_of(w, off));
    uint32_t ms = hm_size(hc->model, 0, off, &merr);
    same(w, "HeapSize", rs == (SIZE_T)-1 ? HM_NONE : rs, ms);
    if (ms == HM_NONE) {
        expect_errors(w, "HeapSize error", merr);
    }
}

static void op_alloc(struct world *w, struct heapctx *hc)
{
    size_t n = some_size(w);
    DWORD flags = below(w, 4) == 0 ? HEAP_ZERO_MEMORY : 0;
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    void *p = HeapAlloc(hc->real, flags, n);
    uint32_t m = hm_alloc(hc->model, flags, n, &merr);
    same(w, "HeapAlloc offset", off_of(w, p), m);
    cov.allocs++;
    if (m == 0) {
        expect_errors(w, "HeapAlloc error", merr);
        cov.alloc_fail++;
        cov.alloc_fail_noerr += merr == 0;
        return;
    }
    cov.large += HeapSize(hc->real, 0, p) >= 98280;
    if (flags & HEAP_ZERO_MEMORY) {
        heapdiff_check_zeroed(&w->hd, "HEAP_ZERO_MEMORY", p, n);
    }
    check_size(w, hc, m);
    if (hc->nlive < MAX_LIVE) {
        struct block b = {m, n, (unsigned char)(1 + below(w, 250))};
        hc->live[hc->nlive++] = b;
        fill(w, &b);
    } else {
        uint32_t e = SENTINEL;
        assert_true(HeapFree(hc->real, 0, p));
        assert_true(hm_free(hc->model, 0, m, &e));
    }
}

static void op_free(struct world *w, struct heapctx *hc)
{
    if (hc->nlive == 0) {
        return;
    }
    size_t i = below(w, hc->nlive);
    uint32_t off = hc->live[i].off, merr = SENTINEL;
    SetLastError(SENTINEL);
    BOOL ok = HeapFree(hc->real, 0, ptr_of(w, off));
    bool mok = hm_free(hc->model, 0, off, &merr);
    same(w, "HeapFree result", ok, mok);
    assert_true(mok);
    cov.frees++;
    drop_live(hc, i);
    remember_freed(hc, off);
}

static void op_realloc(struct world *w, struct heapctx *hc)
{
    if (hc->nlive == 0) {
        return;
    }
    size_t i = below(w, hc->nlive);
    struct block *b = &hc->live[i];
    size_t n;
    switch (below(w, 4)) {
    case 0: n = b->n / 2; break;
    case 1: n = b->n + below(w, 64); break;
    case 2: n = b->n * 2 + below(w, 5000); break;
    default: n = some_size(w); break;
    }
    DWORD flags = 0;
    if (below(w, 3) == 0) {
        flags |= HEAP_REALLOC_IN_PLACE_ONLY;
    }
    if (below(w, 4) == 0) {
        flags |= HEAP_ZERO_MEMORY;
    }
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    void *p = HeapReAlloc(hc->real, flags, ptr_of(w, b->off), n);
    uint32_t m = hm_realloc(hc->model, flags, b->off, n, &merr);
    same(w, "HeapReAlloc offset", off_of(w, p), m);
    cov.reallocs++;
    cov.realloc_moved += m != 0 && m != b->off;
    cov.realloc_inplace_fail += m == 0 && (flags & HEAP_REALLOC_IN_PLACE_ONLY);
    if (m == 0) {
        expect_errors(w, "HeapReAlloc error", merr);
        check_fill(w, b, b->n); /* the block is untouched */
        return;
    }
    size_t keep = n < b->n ? n : b->n;
    struct block nb = *b;
    nb.off = m;
    check_fill(w, &nb, keep);
    if (m != b->off) {
        remember_freed(hc, b->off);
    }
    nb.n = n;
    *b = nb;
    fill(w, b);
    check_size(w, hc, m);
}

static void op_compact(struct world *w, struct heapctx *hc)
{
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    UINT r = HeapCompact(hc->real, 0);
    uint32_t m = hm_compact(hc->model, 0, &merr);
    same(w, "HeapCompact", r, m);
    cov.compacts++;
    same(w, "HeapCompact error", real_error(), 0);
}

/* Invalid pointers: double frees, interior pointers, freed blocks. */
static void op_bad(struct world *w, struct heapctx *hc)
{
    uint32_t off = 0;
    unsigned k = (unsigned)below(w, 4);
    if (k == 0 && hc->nfreed > 0) {
        off = hc->freed[below(w, hc->nfreed < 64 ? hc->nfreed : 64)];
    } else if (hc->nlive > 0) {
        off = hc->live[below(w, hc->nlive)].off + (k == 1 ? 16 : k == 2 ? 8 : 4);
    } else {
        return;
    }
    /* A freed offset may have been handed out again: skip live ones. */
    for (size_t i = 0; i < hc->nlive; i++) {
        if (hc->live[i].off == off) {
            return;
        }
    }
    check_size(w, hc, off);
    cov.bad++;
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    BOOL ok = HeapFree(hc->real, 0, ptr_of(w, off));
    bool mok = hm_free(hc->model, 0, off, &merr);
    same(w, "HeapFree of a bad pointer", ok, mok);
    if (mok) {
        fail_at(w, "bad pointer accepted", off, 0);
    }
    expect_errors(w, "HeapFree error", merr);
    merr = SENTINEL;
    SetLastError(SENTINEL);
    void *p = HeapReAlloc(hc->real, 0, ptr_of(w, off), 10);
    uint32_t m = hm_realloc(hc->model, 0, off, 10, &merr);
    same(w, "HeapReAlloc of a bad pointer", off_of(w, p), m);
    expect_errors(w, "HeapReAlloc error", merr);
}

static void step(struct world *w, struct heapctx *hc, unsigned target_live)
{
    unsigned k = (unsigned)below(w, 1000);
    bool grow = hc->nlive < target_live;
    if (k < (grow ? 560u : 380u)) {
        op_alloc(w, hc);
    } else if (k < 880) {
        op_free(w, hc);
    } else if (k < 985) {
        op_realloc(w, hc);
    } else if (k < 990) {
        op_compact(w, hc);
    } else {
        op_bad(w, hc);
    }
}

static void world_start(struct world *w, const char *scenario, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    /* RAM never binds: the slot does */
    size_t blocks =
        heapdiff_start(&w->hd, scenario, seed * 0x9E3779B97F4A7C15ull + 1, "ce5", "1G", NULL);
    w->ms = hm_slot_new(blocks);
    uint32_t err = 0;
    w->mprocess = hm_create(w->ms, 0, 0, 0, &err);
    assert_non_null(w->mprocess);
    /* The real process heap appears at the first heap call. */
    same(w, "process heap", off_of(w, GetProcessHeap()), hm_handle(w->mprocess));
}

static void world_end(struct world *w)
{
    hm_destroy(w->mprocess);
    hm_slot_free(w->ms);
}

static void heapctx_for_process(struct world *w, struct heapctx *hc)
{
    memset(hc, 0, sizeof *hc);
    hc->real = GetProcessHeap();
    hc->model = w->mprocess;
}

static void heapctx_create(struct world *w, struct heapctx *hc, size_t initial, size_t max)
{
    memset(hc, 0, sizeof *hc);
    uint32_t merr = SENTINEL;
    SetLastError(SENTINEL);
    hc->real = HeapCreate(0, initial, max);
    hc->model = hm_create(w->ms, 0, initial, max, &merr);
    same(w, "HeapCreate", off_of(w, hc->real), hc->model ? hm_handle(hc->model) : 0);
    assert_non_null(hc->real);
}

static void heapctx_destroy(struct world *w, struct heapctx *hc)
{
    assert_true(HeapDestroy(hc->real));
    hm_destroy(hc->model);
    compare_slot(w);
}

/* ---- scenarios ---- */

static void run_process_heap(uint64_t seed, unsigned steps, unsigned target)
{
    static struct heapctx hc;
    struct world w;
    world_start(&w, "process heap", seed);
    heapctx_for_process(&w, &hc);
    for (w.hd.step = 0; w.hd.step < steps; w.hd.step++) {
        step(&w, &hc, target);
        compare_slot(&w);
        compare_heap(&w, &hc, w.hd.step % 256 == 0);
    }
    compare_heap(&w, &hc, true);
    world_end(&w);
}

static void test_process_heap_matches_model(void **state)
{
    (void)state;
    run_process_heap(1, 10000, 300);
    run_process_heap(2, 10000, 1500);
    run_process_heap(3, 8000, 3000); /* fills the slot: failures */
}

static void test_two_heaps_interleaved_match_model(void **state)
{
    (void)state;
    static struct heapctx a, b;
    struct world w;
    world_start(&w, "two heaps", 7);
    heapctx_for_process(&w, &a);
    heapctx_create(&w, &b, 0, 0);
    for (w.hd.step = 0; w.hd.step < 12000; w.hd.step++) {
        step(&w, below(&w, 2) ? &a : &b, 800);
        compare_slot(&w);
        compare_heap(&w, &a, w.hd.step % 512 == 0);
        compare_heap(&w, &b, w.hd.step % 512 == 256);
    }
    heapctx_destroy(&w, &b);
    world_end(&w);
}

static void test_fixed_heaps_match_model(void **state)
{
    (void)state;
    /* up to 24 MB: a region whose summaries need their second level; 100 KB
     * and 400 KB: regions whose run tree starts right after their summaries */
    static const size_t max[] = {0x10000, 0x19000, 0x2F000, 200000, 0x64000, 1 << 20, 24 << 20};
    for (size_t i = 0; i < sizeof max / sizeof max[0]; i++) {
        static struct heapctx hc;
        struct world w;
        world_start(&w, "fixed heap", 11 + i);
        heapctx_create(&w, &hc, i * 5000, max[i]);
        for (w.hd.step = 0; w.hd.step < 3000; w.hd.step++) {
            step(&w, &hc, 400);
            compare_slot(&w);
            compare_heap(&w, &hc, w.hd.step % 128 == 0);
        }
        heapctx_destroy(&w, &hc);
        world_end(&w);
    }
}

static void test_small_only_fragmentation_matches_model(void **state)
{
    (void)state;
    /* Many small blocks, frees in random order: long scans, wraps and
     * merges, the case where the index and CE's scan could part. */
    static struct heapctx hc;
    struct world w;
    world_start(&w, "small blocks", 21);
    heapctx_for_process(&w, &hc);
    for (w.hd.step = 0; w.hd.step < 20000; w.hd.step++) {
        unsigned k = (unsigned)below(&w, 100);
        if (k < 52 || hc.nlive == 0) {
            size_t n = below(&w, 4) == 0 ? below(&w, 700) : below(&w, 60);
            uint32_t merr = SENTINEL;
            void *p = HeapAlloc(hc.real, 0, n);
            uint32_t m = hm_alloc(hc.model, 0, n, &merr);
            same(&w, "HeapAlloc offset", off_of(&w, p), m);
            if (m != 0 && hc.nlive < MAX_LIVE) {
                hc.live[hc.nlive++] = (struct block){m, n, 1};
                fill(&w, &hc.live[hc.nlive - 1]);
            }
        } else if (k < 97) {
            op_free(&w, &hc);
        } else if (k < 99) {
            op_realloc(&w, &hc);
        } else {
            op_compact(&w, &hc);
        }
        compare_slot(&w);
        compare_heap(&w, &hc, w.hd.step % 1000 == 0);
    }
    world_end(&w);
}

static int report(void **state)
{
    (void)state;
    if (heapdiff_verbose()) {
        printf("allocs %lu (failed %lu, %lu without error), large %lu, reallocs %lu (moved %lu, "
               "in-place-only failures %lu), frees %lu, compacts %lu, bad pointers %lu, "
               "most regions in a heap %lu\n",
               cov.allocs, cov.alloc_fail, cov.alloc_fail_noerr, cov.large, cov.reallocs,
               cov.realloc_moved, cov.realloc_inplace_fail, cov.frees, cov.compacts, cov.bad,
               cov.regions_max);
    }
    return 0;
}

/* ---- scripted sequences, compared step by step ---- */

enum sop { S_ALLOC, S_FREE, S_REALLOC, S_COMPACT, S_END };

struct sstep {
    enum sop op;
    size_t arg;  /* S_ALLOC/S_REALLOC: bytes; S_FREE: index of the block */
    size_t idx;  /* S_REALLOC: index of the block */
    DWORD flags; /* S_REALLOC */
};

static void run_script(const char *name, const struct sstep *script)
{
    static struct heapctx hc;
    struct world w;
    world_start(&w, name, 1);
    heapctx_for_process(&w, &hc);
    uint32_t blocks[64] = {0};
    size_t nb = 0;
    for (w.hd.step = 0; script[w.hd.step].op != S_END; w.hd.step++) {
        const struct sstep *st = &script[w.hd.step];
        uint32_t merr = SENTINEL, m = 0;
        void *p = NULL;
        SetLastError(SENTINEL);
        switch (st->op) {
        case S_ALLOC:
            p = HeapAlloc(hc.real, 0, st->arg);
            m = hm_alloc(hc.model, 0, st->arg, &merr);
            same(&w, "HeapAlloc offset", off_of(&w, p), m);
            if (m == 0) {
                expect_errors(&w, "HeapAlloc error", merr);
            }
            blocks[nb++] = m;
            break;
        case S_FREE:
            same(&w, "HeapFree", HeapFree(hc.real, 0, ptr_of(&w, blocks[st->arg])),
                 hm_free(hc.model, 0, blocks[st->arg], &merr));
            break;
        case S_REALLOC:
            p = HeapReAlloc(hc.real, st->flags, ptr_of(&w, blocks[st->idx]), st->arg);
            m = hm_realloc(hc.model, st->flags, blocks[st->idx], st->arg, &merr);
            same(&w, "HeapReAlloc offset", off_of(&w, p), m);
            if (m != 0) {
                blocks[st->idx] = m;
            } else {
                expect_errors(&w, "HeapReAlloc error", merr);
            }
            break;
        case S_COMPACT:
            same(&w, "HeapCompact", HeapCompact(hc.real, 0), hm_compact(hc.model, 0, &merr));
            break;
        case S_END:
            break;
        }
        compare_slot(&w);
        compare_heap(&w, &hc, true);
    }
    world_end(&w);
}

static void test_search_raises_hint_from_runs_it_passes(void **state)
{
    (void)state;
    /* Ten blocks of 64 and a filler that ends exactly at the committed end;
     * a compaction makes the hint exact (0); frees of 3,4 and 6,7,8 leave
     * two runs of 128 and 192 that no free merged (the hint only saw 64),
     * and freeing 1 puts the rover in front of them.  A request of 192 is
     * then searched in pass 2 (hint 65 < 192): it passes the run of 128
     * before taking the run of 192, and CE raises the hint to 128. */
    static const struct sstep script[] = {
        {S_ALLOC, 56, 0, 0}, {S_ALLOC, 56, 0, 0}, {S_ALLOC, 56, 0, 0}, {S_ALLOC, 56, 0, 0},
        {S_ALLOC, 56, 0, 0}, {S_ALLOC, 56, 0, 0}, {S_ALLOC, 56, 0, 0}, {S_ALLOC, 56, 0, 0},
        {S_ALLOC, 56, 0, 0}, {S_ALLOC, 56, 0, 0}, {S_ALLOC, 4000 - 640 - 8, 0, 0},
        {S_COMPACT, 0, 0, 0},
        {S_FREE, 2, 0, 0}, {S_FREE, 3, 0, 0}, {S_FREE, 5, 0, 0}, {S_FREE, 6, 0, 0}, {S_FREE, 7, 0, 0},
        {S_FREE, 0, 0, 0},
        {S_ALLOC, 184, 0, 0},
        {S_ALLOC, 8, 0, 0}, {S_ALLOC, 300, 0, 0}, {S_REALLOC, 100, 1, 0}, {S_ALLOC, 40, 0, 0},
        {S_END, 0, 0, 0},
    };
    run_script("hint raised by a pass-2 search", script);
}

static void test_rover_on_the_end_marker(void **state)
{
    (void)state;
    /* Block 0 grows to fill the first page exactly: the rover lands on the
     * end marker.  Shrinking it leaves a free run before the end marker that
     * pitLast does not know about (pitLast stays the end marker).  A grow
     * that cannot happen in place, in-place-only, still merges and moves
     * the rover and pitLast.  The next search starts at the first item. */
    static const struct sstep script[] = {
        {S_ALLOC, 1, 0, 0},
        {S_REALLOC, 0xF98, 0, 0},
        {S_REALLOC, 8, 0, 0},
        {S_ALLOC, 8, 0, 0},
        {S_REALLOC, 0xF98 - 16, 0, 0},
        {S_REALLOC, 8, 0, 0},
        {S_REALLOC, 300000, 0, HEAP_REALLOC_IN_PLACE_ONLY},
        {S_ALLOC, 24, 0, 0},
        {S_REALLOC, 0x2F000, 2, HEAP_REALLOC_IN_PLACE_ONLY},
        {S_REALLOC, 0x2E000, 2, HEAP_REALLOC_IN_PLACE_ONLY},
        {S_COMPACT, 0, 0, 0},
        {S_ALLOC, 8, 0, 0},
        {S_END, 0, 0, 0},
    };
    run_script("rover on the end marker", script);
}

static void test_new_region_commit_rounding(void **state)
{
    (void)state;
    /* The spec's two 0x17FE0 requests, then requests whose cbSeek + 0x30 is
     * exactly a page multiple: a new region commits PAGEUP(cbSeek + 0x30). */
    static const struct sstep script[] = {
        {S_ALLOC, 0x17FE0, 0, 0},
        {S_ALLOC, 0x17FE0, 0, 0},
        {S_ALLOC, 0x17FC8, 0, 0},
        {S_ALLOC, 0xFC8, 0, 0},
        {S_ALLOC, 0x17FC8, 0, 0},
        {S_FREE, 3, 0, 0},
        {S_ALLOC, 0x17FC8, 0, 0},
        {S_END, 0, 0, 0},
    };
    run_script("new region commit", script);
}

static void test_medium_blocks_many_regions_match_model(void **state)
{
    (void)state;
    /* Medium sizes over several regions: pass 2 searches regions whose hint
     * is an estimate, past runs that grew without the hint seeing it. */
    for (uint64_t seed = 31; seed < 34; seed++) {
        static struct heapctx hc;
        struct world w;
        world_start(&w, "medium blocks", seed);
        heapctx_for_process(&w, &hc);
        for (w.hd.step = 0; w.hd.step < 15000; w.hd.step++) {
            unsigned k = (unsigned)below(&w, 100);
            if (k < 50 || hc.nlive < 200) {
                size_t n = 16 + below(&w, below(&w, 3) == 0 ? 30000 : 3000);
                uint32_t merr = SENTINEL;
                SetLastError(SENTINEL);
                void *p = HeapAlloc(hc.real, 0, n);
                uint32_t m = hm_alloc(hc.model, 0, n, &merr);
                same(&w, "HeapAlloc offset", off_of(&w, p), m);
                if (m != 0 && hc.nlive < MAX_LIVE) {
                    hc.live[hc.nlive++] = (struct block){m, n, 2};
                    fill(&w, &hc.live[hc.nlive - 1]);
                } else if (m == 0) {
                    expect_errors(&w, "HeapAlloc error", merr);
                }
            } else if (k < 96) {
                op_free(&w, &hc);
            } else if (k < 99) {
                op_realloc(&w, &hc);
            } else if (below(&w, 4) == 0) {
                op_compact(&w, &hc);
            }
            compare_slot(&w);
            compare_heap(&w, &hc, w.hd.step % 1000 == 0);
        }
        world_end(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_heap_matches_model),
        cmocka_unit_test(test_two_heaps_interleaved_match_model),
        cmocka_unit_test(test_fixed_heaps_match_model),
        cmocka_unit_test(test_small_only_fragmentation_matches_model),
        cmocka_unit_test(test_medium_blocks_many_regions_match_model),
        cmocka_unit_test(test_search_raises_hint_from_runs_it_passes),
        cmocka_unit_test(test_rover_on_the_end_marker),
        cmocka_unit_test(test_new_region_commit_rounding),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}
