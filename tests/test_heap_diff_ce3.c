/*
 * test_heap_diff_ce3.c - the CE 3.0 heap (src/heap/ce3.c) against its
 * reference model (tests/heapmodel_ce3.c).
 *
 * Long random sequences of HeapAlloc / HeapReAlloc / HeapFree / HeapSize,
 * double frees and HeapCreate / HeapDestroy drive the real heap through the
 * public API (profile ce3) and the model, over two heaps: the process heap
 * and one created heap.  After every step: the same offsets in the slot,
 * the same HeapSize, the same failures and last errors, the same committed
 * pages in the slot, and the same CE fields (pMem, pHigh, pCur, dwCommitted,
 * dwFree, dwMaxLeft, dwLastCompact) of every struct heap of both chains.
 * Every few hundred steps HeapValidate checks the real heap's bookkeeping.
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
#include "core.h"
#include "heap/heap.h"
#include "heapdiff.h"
#include "testutil.h"
#include "heapmodel_ce3.h"

#define PAGE 4096u
#define MAX_LIVE 2048
#define STEPS 20000u
#define SEEDS 10u

struct block {
    uint32_t off;
    bool process; /* in the process heap */
};

struct world {
    struct m3_slot *ms;
    struct m3_heap *mproc, *mh;
    HANDLE rproc, rh;
    struct heapdiff hd;
    struct block live[MAX_LIVE];
    size_t nlive;
    uint32_t freed[32];
    bool freed_proc[32];
    size_t nfreed;
};

/* What the sequences exercised (printed with HEAPDIFF_VERBOSE=1). */
static struct {
    unsigned long allocs, alloc_fail, reallocs, realloc_fail, frees, double_frees, regions_max,
        recreates;
} cov;

/* Mostly small; some a page or more; some near and above the large
 * threshold (rounded 0x30000); a few no heap can hold. */
static size_t some_size(struct world *w)
{
    static const struct heapdiff_band bands[] = {
        {600, 0, 200},      {850, 200, 3000},       {950, 4000, 60000},
        {970, 0x2FFF0, 16}, {997, 0x30000, 400000}, {1000, 0x80000000u, 2},
    };
    return heapdiff_size(&w->hd, bands);
}

static void compare_chain(struct world *w, HANDLE real, struct m3_heap *model, const char *name)
{
    struct heap *h = heap_lookup(real);
    assert_non_null(h);
    for (size_t i = 0;; i++) {
        struct heap_ce3_region_state rs;
        struct m3_state ms;
        bool r = heap_ce3_region_state(h, i, &rs);
        bool m = m3_region_state(model, i, &ms);
        same(w, name, r, m);
        if (!r) {
            if (i > cov.regions_max) {
                cov.regions_max = i;
            }
            break;
        }
        same(w, "pMem", rs.base, ms.base);
        if (ms.base == 0) {
            continue;
        }
        same(w, "pHigh", rs.high, ms.high);
        same(w, "pCur", rs.cur, ms.cur);
        same(w, "dwCommitted", rs.committed, ms.committed);
        same(w, "dwFree", rs.free, ms.free);
        same(w, "dwMaxLeft", rs.max_left, ms.max_left);
        same(w, "dwLastCompact", rs.last_compact, ms.last_compact);
    }
}

static void compare_all(struct world *w)
{
    same(w, "committed pages", slot_committed_bytes() / PAGE, m3_slot_committed_pages(w->ms));
    compare_chain(w, w->rproc, w->mproc, "process chain length");
    compare_chain(w, w->rh, w->mh, "heap chain length");
    if (w->hd.step % 500 == 0) {
        assert_true(HeapValidate(w->rproc, 0, NULL));
        assert_true(HeapValidate(w->rh, 0, NULL));
    }
}

static void remember_freed(struct world *w, uint32_t off, bool process)
{
    w->freed[w->nfreed % 32] = off;
    w->freed_proc[w->nfreed % 32] = process;
    w->nfreed++;
}

static void do_alloc(struct world *w)
{
    bool process = below(w, 4) == 0;
    size_t n = some_size(w);
    DWORD flags = below(w, 8) == 0 ? HEAP_ZERO_MEMORY : 0;
    uint32_t merr = 0;
    SetLastError(0);
    void *p = HeapAlloc(process ? w->rproc : w->rh, flags, n);
    uint32_t m = m3_alloc(process ? w->mproc : w->mh, flags, n, &merr);
    same(w, "HeapAlloc", off_of(w, p), m);
    same(w, "HeapAlloc error", GetLastError(), merr);
    cov.allocs++;
    cov.alloc_fail += p == NULL;
    if (p != NULL && w->nlive < MAX_LIVE) {
        w->live[w->nlive++] = (struct block){m, process};
    } else if (p != NULL) {
        HeapFree(process ? w->rproc : w->rh, 0, p);
        m3_free(process ? w->mproc : w->mh, 0, m, &merr);
    }
}

static void do_free(struct world *w)
{
    size_t i = below(w, w->nlive);
    struct block b = w->live[i];
    w->live[i] = w->live[--w->nlive];
    uint32_t merr = 0;
    SetLastError(0);
    BOOL r = HeapFree(b.process ? w->rproc : w->rh, 0, ptr_of(w, b.off));
    bool m = m3_free(b.process ? w->mproc : w->mh, 0, b.off, &merr);
    same(w, "HeapFree", r != FALSE, m);
    same(w, "HeapFree error", GetLastError(), merr);
    cov.frees++;
    remember_freed(w, b.off, b.process);
}

static void do_realloc(struct world *w)
{
    size_t i = below(w, w->nlive);
    struct block *b = &w->live[i];
    size_t n = below(w, 3) == 0 ? some_size(w) : below(w, 600);
    DWORD flags = (below(w, 3) == 0 ? HEAP_REALLOC_IN_PLACE_ONLY : 0) |
                  (below(w, 6) == 0 ? HEAP_ZERO_MEMORY : 0);
    uint32_t merr = 0;
    SetLastError(0);
    void *p = HeapReAlloc(b->process ? w->rproc : w->rh, flags, ptr_of(w, b->off), n);
    uint32_t m = m3_realloc(b->process ? w->mproc : w->mh, flags, b->off, n, &merr);
    same(w, "HeapReAlloc", off_of(w, p), m);
    same(w, "HeapReAlloc error", GetLastError(), merr);
    cov.reallocs++;
    cov.realloc_fail += p == NULL;
    if (p != NULL) {
        b->off = m;
    }
}

static void do_size_or_double_free(struct world *w)
{
    bool dbl = w->nfreed != 0 && below(w, 2) == 0;
    uint32_t off;
    bool process;
    if (dbl) {
        size_t k = below(w, w->nfreed < 32 ? w->nfreed : 32);
        off = w->freed[k];
        process = w->freed_proc[k];
        if (m3_is_internal(process ? w->mproc : w->mh, off)) {
            return; /* now CE's own record or descriptor: cebox refuses it */
        }
    } else {
        struct block b = w->live[below(w, w->nlive)];
        off = b.off;
        process = b.process;
    }
    uint32_t merr = 0;
    SetLastError(0);
    SIZE_T r = HeapSize(process ? w->rproc : w->rh, 0, ptr_of(w, off));
    uint32_t m = m3_size(process ? w->mproc : w->mh, 0, off, &merr);
    same(w, "HeapSize", r == (SIZE_T)-1 ? M3_NONE : r, m);
    same(w, "HeapSize error", GetLastError(), merr);
    if (dbl && m == M3_NONE) {
        /* Still freed (not carved again as an item start): a double free. */
        SetLastError(0);
        BOOL fr = HeapFree(process ? w->rproc : w->rh, 0, ptr_of(w, off));
        bool fm = m3_free(process ? w->mproc : w->mh, 0, off, &merr);
        same(w, "double HeapFree", fr != FALSE, fm);
        same(w, "double HeapFree error", GetLastError(), merr);
        cov.double_frees++;
    }
}

/* Destroys the created heap (its descriptor goes back to the process heap)
 * and makes a new one. */
static void do_recreate(struct world *w)
{
    size_t j = 0;
    for (size_t i = 0; i < w->nlive; i++) {
        if (w->live[i].process) {
            w->live[j++] = w->live[i];
        }
    }
    w->nlive = j;
    w->nfreed = 0;
    cov.recreates++;
    assert_true(HeapDestroy(w->rh));
    m3_destroy(w->mh);
    uint32_t merr = 0;
    w->rh = HeapCreate(0, 0, 0);
    w->mh = m3_create(w->mproc, 0, &merr);
    assert_non_null(w->rh);
    assert_non_null(w->mh);
    same(w, "HeapCreate", off_of(w, w->rh), m3_handle(w->mh));
}

static void run_seed(uint64_t seed)
{
    static struct world w;
    memset(&w, 0, sizeof w);
    size_t blocks = heapdiff_start(&w.hd, "random sequence", seed * 0x9E3779B97F4A7C15ull + 1,
                                   "ce3", "256M", NULL);
    w.ms = m3_slot_new(blocks);
    w.rproc = GetProcessHeap();
    w.mproc = m3_process_heap(w.ms);
    uint32_t merr = 0;
    w.rh = HeapCreate(0, 0, 0);
    w.mh = m3_create(w.mproc, 0, &merr);
    same(&w, "HeapCreate", off_of(&w, w.rh), m3_handle(w.mh));
    for (w.hd.step = 1; w.hd.step <= STEPS; w.hd.step++) {
        unsigned k = (unsigned)below(&w, 100);
        if (w.nlive == 0 || k < 45) {
            do_alloc(&w);
        } else if (k < 78) {
            do_free(&w);
        } else if (k < 92) {
            do_realloc(&w);
        } else if (k < 99) {
            do_size_or_double_free(&w);
        } else {
            do_recreate(&w);
        }
        compare_all(&w);
    }
    m3_destroy(w.mh);
    m3_destroy(w.mproc);
    m3_slot_free(w.ms);
}

static void test_random_sequences(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run_seed(seed);
    }
    if (heapdiff_verbose()) {
        fprintf(stderr,
                "allocs %lu (failed %lu), reallocs %lu (failed %lu), frees %lu, double frees %lu, "
                "longest chain %lu, heaps recreated %lu\n",
                cov.allocs, cov.alloc_fail, cov.reallocs, cov.realloc_fail, cov.frees,
                cov.double_frees, cov.regions_max, cov.recreates);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
