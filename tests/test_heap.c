/*
 * test_heap.c - the CE 5 heap through the public API: the sizes, addresses
 * and errors a CE 5.0 device gives (the worked examples of the heap spec),
 * the Local* family, invalid pointers, heap destruction, threads.
 *
 * Each test starts from a fresh core (core_reset), so the process heap is
 * the first reservation of the slot: H = slot + 64 KB.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "core.h"
#include "heap/heap.h"
#include "forbid_syscall.h"
#include "meta.h"
#include "testutil.h"

#define PAGE 4096u
#define BLOCK 0x10000u
#define SENTINEL 0xC0FFEEu

static int setup(void **state)
{
    (void)state;
    assert_int_equal(testutil_core_reset("ce5", NULL, NULL), 0);
    heap_set_bad_pointer_hook(NULL);
    SetLastError(SENTINEL);
    return 0;
}

static uintptr_t slot_start(void)
{
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    return info.base;
}

/* Offset of p from the process heap's handle. */
static uintptr_t hoff(const void *p)
{
    return (uintptr_t)p - (uintptr_t)GetProcessHeap();
}

static void expect_error(DWORD err)
{
    assert_int_equal(GetLastError(), err);
    SetLastError(SENTINEL);
}

/* ---- sizes and places ---- */

static void test_sizes_of_small_items(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    assert_int_equal((uintptr_t)h - slot_start(), BLOCK); /* first free run of 3 blocks */
    void *p1 = HeapAlloc(h, 0, 1);
    void *p9 = HeapAlloc(h, 0, 9);
    void *p0 = HeapAlloc(h, 0, 0);
    assert_int_equal(HeapSize(h, 0, p1), 8);
    assert_int_equal(HeapSize(h, 0, p9), 24);
    assert_int_equal(HeapSize(h, 0, p0), 8); /* HeapAlloc(0) is a real block */
    assert_int_equal(HeapSize(h, 0, HeapAlloc(h, 0, 100)), 104);
    assert_int_equal(HeapSize(h, 0, HeapAlloc(h, 0, 5000)), 5000);
    assert_int_equal(HeapSize(h, 0, HeapAlloc(h, 0, 10000)), 10008);
    /* The interface states the alignment every block has: CE 5's 16. */
    assert_int_equal(heap_ops_for(HEAP_KIND_CE5)->align, 16);
    assert_int_equal((uintptr_t)p1 % 16, 0);
    assert_int_equal((uintptr_t)p9 % 16, 0);
    assert_int_equal(hoff(p1), 0x60);
    assert_int_equal(GetLastError(), SENTINEL); /* success sets nothing */
}

static void test_large_item_at_block_boundary_plus_0x20(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *p = HeapAlloc(h, 0, 100000);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % BLOCK, 0x20);
    assert_int_equal((uintptr_t)p - 0x20, (uintptr_t)h + 3 * BLOCK); /* first free 2-block run */
    assert_int_equal(HeapSize(h, 0, p), 102368);
    p[102367] = 1;
    /* 98,279 bytes still go into a region; 98,280 is a large item. */
    void *a = HeapAlloc(h, 0, 98279);
    void *b = HeapAlloc(h, 0, 98280);
    assert_int_equal(HeapSize(h, 0, a), 98280);
    assert_int_equal(HeapSize(h, 0, b), 102368);
    assert_int_not_equal((uintptr_t)a % BLOCK, 0x20);
    assert_int_equal((uintptr_t)b % BLOCK, 0x20);
    char map[512];
    cebox_slot_map(map, sizeof map);
    assert_int_equal(map[1], 'H');
    assert_int_equal(map[4], 'L');
    assert_true(HeapFree(h, 0, p));
    assert_true(HeapFree(h, 0, b));
    cebox_slot_map(map, sizeof map);
    assert_int_equal(map[4], '.'); /* a large item's blocks go back at once */
}

/* The worked examples of the CE 5 heap spec, section 10, in order. */
static void test_spec_worked_examples(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    assert_int_equal(slot_committed_bytes(), PAGE);
    char *a = HeapAlloc(h, 0, 1);
    char *b = HeapAlloc(h, 0, 9);
    char *c = HeapAlloc(h, 0, 100);
    assert_int_equal(hoff(a), 0x60);
    assert_int_equal(hoff(b), 0x70);
    assert_int_equal(hoff(c), 0x90);
    char *l = HeapAlloc(h, 0, 100000);
    assert_int_equal((uintptr_t)l - (uintptr_t)h, 0x30000 + 0x20);
    assert_int_equal(slot_committed_bytes(), PAGE + 0x19000);
    char *d = HeapAlloc(h, 0, 5000); /* pass 2: the tail, one more page */
    assert_int_equal(hoff(d), 0x100);
    assert_int_equal(slot_committed_bytes(), 2 * PAGE + 0x19000);
    assert_true(HeapFree(h, 0, b));
    assert_int_equal(hoff(HeapAlloc(h, 0, 20)), 0x70);   /* from the rover, exact fit */
    assert_int_equal(hoff(HeapAlloc(h, 0, 20)), 0x1490); /* rover onward: the tail run */
    char *a2 = HeapReAlloc(h, 0, a, 40); /* next item busy: moves */
    assert_int_equal(hoff(a2), 0x14B0);
    assert_ptr_equal(HeapReAlloc(h, 0, d, 100), d); /* shrink in place */
    assert_int_equal(HeapSize(h, 0, d), 104);
    assert_int_equal(GetLastError(), SENTINEL);
}

static void test_rover_decides_not_the_lowest_address(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *a = HeapAlloc(h, 0, 16);
    char *b = HeapAlloc(h, 0, 16);
    char *c = HeapAlloc(h, 0, 16);
    assert_int_equal(hoff(a), 0x60);
    assert_int_equal(b - a, 32);
    assert_int_equal(c - b, 32);
    assert_true(HeapFree(h, 0, a));
    /* A 48-byte item does not fit a's hole: the search goes on to the tail
     * and leaves the rover there. */
    char *d = HeapAlloc(h, 0, 40);
    assert_ptr_equal(d, c + 32);
    /* So a 32-byte item that would fit at a (the lowest free address) is
     * placed after d, where the rover is. */
    char *e = HeapAlloc(h, 0, 16);
    assert_ptr_equal(e, d + 48);
    assert_ptr_not_equal(e, a);
    /* Right after a free, the rover is the freed item: it is reused. */
    assert_true(HeapFree(h, 0, b));
    assert_ptr_equal(HeapAlloc(h, 0, 16), b);
}

static void test_grow_in_place_at_region_end(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *p = HeapAlloc(h, 0, 1);
    p[0] = 42;
    assert_ptr_equal(HeapReAlloc(h, 0, p, 10000), p);
    assert_int_equal(HeapSize(h, 0, p), 10008);
    assert_int_equal(slot_committed_bytes(), 3 * PAGE);
    assert_int_equal(p[0], 42);
    p[10007] = 1;
}

static void test_new_region_when_nothing_fits(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *a = HeapAlloc(h, 0, 0x17FE0);
    char *b = HeapAlloc(h, 0, 0x17FE0);
    assert_int_equal(hoff(a), 0x60);
    /* A new region: the next free run of three blocks, data at +0x30. */
    assert_int_equal(hoff(b), 3 * BLOCK + 0x30);
    assert_int_equal(slot_committed_bytes(), 2 * 0x19000);
    char map[512];
    cebox_slot_map(map, sizeof map);
    assert_memory_equal(map, "-HHHHHH.", 8);
}

/* A region's known longest free run (ce5.c, region.longest): pass 2's
 * failed search of a region freed into reads it instead of the run tree,
 * so it must follow every free and carve.  HeapValidate compares it with a
 * walk of the items after each step; the placements are CE's. */
static void test_known_longest_run_follows_frees_and_carves(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    enum { N = 600, ITEM = 1008 }; /* 1000 bytes: items of 63 granules, four regions */
    char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = HeapAlloc(h, 0, 1000);
        assert_non_null(p[i]);
    }
    assert_int_equal(p[11] - p[10], ITEM);
    /* A run of one item in the first region, then a request above every
     * hint: pass 2 searches the first region (its hint an estimate), which
     * fails, and makes its longest run known (63 granules). */
    assert_true(HeapFree(h, 0, p[10]));
    assert_non_null(HeapAlloc(h, 0, 8000));
    assert_true(HeapValidate(h, 0, NULL));
    /* A free that joins the run before it: two items long now. */
    assert_true(HeapFree(h, 0, p[11]));
    assert_true(HeapValidate(h, 0, NULL));
    assert_non_null(HeapAlloc(h, 0, 8000)); /* pass 2 again: 126 granules known */
    assert_true(HeapValidate(h, 0, NULL));
    /* The first region's hint, exact, admits 2000 bytes: the carve takes
     * the longest run whole. */
    assert_ptr_equal(HeapAlloc(h, 0, 2000), p[10]);
    assert_true(HeapValidate(h, 0, NULL));
    /* Frees that each start a run, in address order, keep the hint at one
     * item: pass 1 passes the region by for 6000 bytes, pass 2 searches it
     * and finds the seven freed items merged, before the rover. */
    assert_non_null(HeapAlloc(h, 0, 8000));
    for (int i = 40; i < 47; i++) {
        assert_true(HeapFree(h, 0, p[i]));
        assert_true(HeapValidate(h, 0, NULL));
    }
    assert_ptr_equal(HeapAlloc(h, 0, 6000), p[40]);
    assert_true(HeapValidate(h, 0, NULL));
    assert_true(HeapDestroy(h));
}

static void test_compact_gives_the_tail_back(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    size_t before = slot_committed_bytes();
    void *p = HeapAlloc(h, 0, 10000);
    assert_int_equal(slot_committed_bytes(), before + 2 * PAGE);
    assert_true(HeapFree(h, 0, p));
    assert_int_equal(slot_committed_bytes(), before + 2 * PAGE); /* free never decommits */
    assert_int_equal(HeapCompact(h, 0), 0xFA0);
    assert_int_equal(slot_committed_bytes(), before);
    assert_int_equal((uintptr_t)HeapAlloc(h, 0, 1) - (uintptr_t)h, 0x60);
    assert_true(HeapDestroy(h));
}

static void test_create_sizes(void **state)
{
    (void)state;
    GetProcessHeap(); /* made at the first heap call */
    size_t before = slot_committed_bytes();
    unsigned fb = slot_free_blocks();
    HANDLE h = HeapCreate(0, 1 << 20, 0); /* only the region is committed */
    assert_int_equal(slot_committed_bytes(), before + 0x2F000);
    assert_int_equal(slot_free_blocks(), fb - 3);
    assert_true(HeapDestroy(h));
    h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0x10000); /* fixed: one block */
    assert_non_null(h);
    assert_int_equal(slot_free_blocks(), fb - 1);
    assert_int_equal(slot_committed_bytes(), before + PAGE);
    /* 0xFF88 is the largest request that fits; it commits the rest. */
    assert_null(HeapAlloc(h, 0, 0xFF89));
    assert_int_equal(GetLastError(), SENTINEL); /* a full fixed heap sets nothing */
    char *p = HeapAlloc(h, 0, 0xFF88);
    assert_non_null(p);
    assert_int_equal(slot_committed_bytes(), before + BLOCK);
    assert_null(HeapAlloc(h, 0, 9)); /* a 16-byte free item is left at the end */
    assert_int_equal(GetLastError(), SENTINEL);
    assert_int_equal((char *)HeapAlloc(h, 0, 0) - (char *)h, 0x10000 - 16); /* end marker at 0xFFF8 */
    assert_true(HeapFree(h, 0, p));
    /* a fixed heap never makes large items */
    p = HeapAlloc(h, 0, 0xFF88);
    assert_int_not_equal((uintptr_t)p % BLOCK, 0x20);
    assert_true(HeapDestroy(h));
    assert_int_equal(slot_free_blocks(), fb);
    /* a maximum of 32 MB cannot be reserved */
    assert_null(HeapCreate(0, 0, 32u << 20));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    /* a maximum near 4 GB wraps to 0: growable */
    h = HeapCreate(0, 0, 0xFFFFF001u);
    assert_non_null(h);
    assert_int_equal(HeapSize(h, 0, HeapAlloc(h, 0, 200000)), ((200000 + 32 + 4095) & ~4095u) - 32);
    assert_true(HeapDestroy(h));
}

/* ---- flags and errors ---- */

static void test_flag_validation(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    assert_null(HeapCreate(0x2, 0, 0));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(HeapAlloc(h, HEAP_GENERATE_EXCEPTIONS, 10));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(HeapAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, 10));
    expect_error(ERROR_INVALID_PARAMETER);
    void *p = HeapAlloc(h, HEAP_NO_SERIALIZE | HEAP_ZERO_MEMORY, 10);
    assert_non_null(p);
    assert_null(HeapReAlloc(h, HEAP_GENERATE_EXCEPTIONS, p, 20));
    expect_error(ERROR_NOT_SUPPORTED);
    assert_null(HeapReAlloc(h, 0x100, p, 20));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapFree(h, HEAP_ZERO_MEMORY, p));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_int_equal(HeapSize(h, 0x2, p), (SIZE_T)-1);
    expect_error(ERROR_INVALID_PARAMETER);
    assert_int_equal(HeapCompact(h, 0x8), 0);
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapValidate(h, 0x8, p));
    assert_int_equal(GetLastError(), SENTINEL); /* HeapValidate never sets one */
    /* sizes: over 1 GB fails; exactly 1 GB is a large item whose 64 KB-
     * rounded reservation reaches the slot size: VirtualAlloc's 87. */
    assert_null(HeapAlloc(h, 0, 0x40000001));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    assert_null(HeapAlloc(h, 0, 0x40000000));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(HeapAlloc(h, 0, 0x1FEFFE1));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(HeapReAlloc(h, 0, p, 0x40000001));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    /* unknown handles */
    assert_null(HeapAlloc(NULL, 0, 1));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(HeapAlloc((HANDLE)p, 0, 1));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(HeapReAlloc((HANDLE)p, 0, p, 8));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapFree((HANDLE)p, 0, p));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_int_equal(HeapSize((HANDLE)p, 0, p), (SIZE_T)-1);
    expect_error(ERROR_INVALID_PARAMETER);
    assert_int_equal(HeapCompact((HANDLE)p, 0), 0);
    expect_error(ERROR_INVALID_PARAMETER);
    assert_true(HeapValidate(h, 0, p)); /* and p is still a live block */
    assert_false(HeapValidate(NULL, 0, NULL));
}

static void test_destroy(void **state)
{
    (void)state;
    HANDLE ph = GetProcessHeap();
    unsigned fb = slot_free_blocks();
    size_t before = slot_committed_bytes();
    HANDLE h = HeapCreate(0, 0, 0);
    for (int i = 0; i < 20; i++) {
        assert_non_null(HeapAlloc(h, 0, 40000)); /* several regions */
    }
    assert_non_null(HeapAlloc(h, 0, 500000)); /* and large items */
    assert_non_null(HeapAlloc(h, 0, 200000));
    assert_true(slot_free_blocks() < fb - 10);
    assert_true(HeapDestroy(h));
    assert_int_equal(slot_free_blocks(), fb);
    assert_int_equal(slot_committed_bytes(), before);
    /* the handle is gone */
    assert_null(HeapAlloc(h, 0, 1));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapDestroy(h));
    expect_error(ERROR_INVALID_PARAMETER);
    /* the process heap cannot be destroyed */
    assert_false(HeapDestroy(ph));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_non_null(HeapAlloc(ph, 0, 10));
}

/* The process heap, its figures published to the timeline from now on. */
static struct heap *published_process_heap(struct cebox_core *core)
{
    struct heap *ph = core_process_heap(core);
    ph->ops->publish(ph, &core->ram);
    return ph;
}

/* The timeline's free figures of the process heap: computed at the end of
 * the first heap call after a request, exact then; a reset (which destroys
 * every heap) with a request pending computes nothing over freed regions. */
static void test_timeline_free_figures(void **state)
{
    (void)state;
    struct cebox_core *core = core_get();
    (void)published_process_heap(core);
    HANDLE h = GetProcessHeap();
    void *p[10];
    for (int i = 0; i < 10; i++) {
        assert_non_null(p[i] = HeapAlloc(h, 0, 10000));
    }
    for (int i = 1; i < 10; i += 2) {
        assert_true(HeapFree(h, 0, p[i])); /* 5 holes, none next to another */
    }
    struct ram_timeline tl;
    ram_want_free_figures(&core->ram, (int32_t)getpid());
    ram_own_timeline(&core->ram, &tl);
    assert_int_equal(tl.figures_answered, 0);
    assert_true(HeapSize(h, 0, p[0]) >= 10000); /* the next heap call answers */
    ram_own_timeline(&core->ram, &tl);
    assert_int_equal(tl.figures_answered, 1);
    assert_true(ram_free_figures_fresh(&tl));
    /* the holes, the last running on into the rest of the region */
    assert_int_equal(tl.heap_free_items, 5);
    assert_true(tl.heap_largest_free_bytes >= 10000);
    /* each 10008-byte hole holds at least one whole page, the rest more */
    assert_true(tl.heap_empty_pages >= 5);
    size_t holes_pages = tl.heap_empty_pages;
    assert_true(HeapFree(h, 0, p[2])); /* three holes become one */
    ram_own_timeline(&core->ram, &tl);
    assert_false(ram_free_figures_fresh(&tl) && tl.heap_dirty == 0);
    ram_want_free_figures(&core->ram, (int32_t)getpid());
    assert_true(HeapSize(h, 0, p[0]) >= 10000);
    ram_own_timeline(&core->ram, &tl);
    assert_int_equal(tl.heap_free_items, 4);
    assert_true(tl.heap_empty_pages >= holes_pages);
    ram_want_free_figures(&core->ram, (int32_t)getpid());
    assert_int_equal(testutil_core_reset("ce5", NULL, NULL), 0);
}

/* The timeline's totals of the process heap are the heap's own after
 * every call that changes them: small and large items made, resized and
 * freed. */
static void expect_totals_published(struct cebox_core *core, struct heap *ph)
{
    struct heap_stats st;
    struct ram_timeline tl;
    ph->ops->stats(ph, &st);
    ram_own_timeline(&core->ram, &tl);
    assert_int_equal(tl.heap_live_bytes, st.live_bytes);
    assert_int_equal(tl.heap_committed_bytes, st.committed_bytes);
}

static void test_timeline_totals(void **state)
{
    (void)state;
    struct cebox_core *core = core_get();
    struct heap *ph = published_process_heap(core);
    HANDLE h = GetProcessHeap();
    void *p[8];
    for (int i = 0; i < 8; i++) {
        assert_non_null(p[i] = HeapAlloc(h, 0, i == 5 ? 0x20000 : 24 + 100 * (size_t)i));
        expect_totals_published(core, ph);
    }
    assert_non_null(p[2] = HeapReAlloc(h, 0, p[2], 3000));
    expect_totals_published(core, ph);
    for (int i = 7; i >= 0; i -= 2) {
        assert_true(HeapFree(h, 0, p[i]));
        expect_totals_published(core, ph);
    }
    for (int i = 0; i < 8; i += 2) {
        assert_true(HeapFree(h, 0, p[i]));
        expect_totals_published(core, ph);
    }
    assert_int_equal(testutil_core_reset("ce5", NULL, NULL), 0);
}

static void test_in_place_only_realloc(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *a = HeapAlloc(h, 0, 24);
    char *b = HeapAlloc(h, 0, 24);
    memset(a, 7, 24);
    assert_null(HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, a, 100));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    assert_int_equal(HeapSize(h, 0, a), 24);
    assert_int_equal(a[23], 7);
    /* shrinking in place is always possible */
    assert_ptr_equal(HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, a, 8), a);
    assert_int_equal(HeapSize(h, 0, a), 8);
    /* LocalReAlloc without LMEM_MOVEABLE: in place only */
    char *c = LocalAlloc(LMEM_FIXED, 24);
    char *d = LocalAlloc(LMEM_FIXED, 24);
    assert_ptr_equal(d, c + 32);
    assert_null(LocalReAlloc(c, 100, LMEM_FIXED));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    char *c2 = LocalReAlloc(c, 100, LMEM_MOVEABLE | LMEM_ZEROINIT);
    assert_non_null(c2);
    assert_ptr_not_equal(c2, c);
    assert_true(all_zero((unsigned char *)c2 + 24, 100 - 24));
    assert_int_equal(LocalSize(c2), 104);
    /* growing in place into the free block after it */
    assert_null(LocalFree(c2));
    (void)b;
    char *e = LocalAlloc(LPTR, 40);
    char *f = LocalAlloc(LPTR, 40);
    char *g = LocalAlloc(LPTR, 40);
    assert_ptr_equal(f, e + 48);
    assert_ptr_equal(g, f + 48);
    assert_null(LocalFree(f));
    assert_ptr_equal(LocalReAlloc(e, 80, LMEM_FIXED), e);
    assert_int_equal(LocalSize(e), 88);
    assert_null(LocalReAlloc(e, 200, LMEM_FIXED)); /* g is in the way */
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
}

static void test_large_item_realloc(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *p = HeapAlloc(h, 0, 100000);
    p[0] = 5;
    assert_ptr_equal(HeapReAlloc(h, 0, p, 1000), p); /* never shrinks */
    assert_int_equal(HeapSize(h, 0, p), 102368);
    assert_ptr_equal(HeapReAlloc(h, 0, p, 102368), p); /* still its pages */
    assert_null(HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 102369));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    char *q = HeapReAlloc(h, HEAP_ZERO_MEMORY, p, 150000);
    assert_non_null(q);
    assert_ptr_not_equal(q, p);
    assert_int_equal(q[0], 5);
    assert_int_equal(HeapSize(h, 0, q), 151520);
    assert_true(all_zero((unsigned char *)q + 102368, 151520 - 102368));
    /* a small item grows into a large one by moving */
    char *s = HeapAlloc(h, 0, 100);
    char *t = HeapAlloc(h, 0, 100);
    (void)t;
    char *s2 = HeapReAlloc(h, 0, s, 200000);
    assert_int_equal((uintptr_t)s2 % BLOCK, 0x20);
}

/* Grows a large item step by step and checks every move (CE never grows
 * one in place): every byte comes along, the old pages are given back, the
 * new item's tail reads as zero, and a block the program made read-only,
 * wholly or half, still moves into a writable one.  Returns NULL when all
 * is well, else what went wrong: it also runs in a child process, where
 * cmocka's asserts cannot be used. */
static const char *check_large_moves(char *why, size_t len)
{
    HANDLE h = GetProcessHeap();
    struct cebox_slot_info before, after;
    size_t n = 100000;
    unsigned char *p = HeapAlloc(h, 0, n);
    if (p == NULL) {
        return "the first large item failed";
    }
    for (size_t i = 0; i < HeapSize(h, 0, p); i++) {
        p[i] = (unsigned char)(i * 7 + 3);
    }
    for (int round = 0; round < 4; round++) {
        size_t old = HeapSize(h, 0, p);
        cebox_slot_info(&before);
        n *= 2;
        unsigned char *q = HeapReAlloc(h, 0, p, n);
        if (q == NULL || q == p || (uintptr_t)q % BLOCK != 0x20) {
            snprintf(why, len, "round %d: moved to %p from %p", round, (void *)q, (void *)p);
            return why;
        }
        for (size_t i = 0; i < old; i++) {
            if (q[i] != (unsigned char)(i * 7 + 3)) {
                snprintf(why, len, "round %d: byte %zu lost", round, i);
                return why;
            }
        }
        if (!all_zero(q + old, HeapSize(h, 0, q) - old)) {
            return "the grown part is not zero";
        }
        cebox_slot_info(&after);
        /* committed: the old item's pages (old + 0x20) out, the new ones in */
        if (after.committed_bytes + old + 0x20 != before.committed_bytes + HeapSize(h, 0, q) + 0x20) {
            snprintf(why, len, "round %d: committed %zu -> %zu", round, before.committed_bytes,
                     after.committed_bytes);
            return why;
        }
        for (size_t i = old; i < HeapSize(h, 0, q); i++) {
            q[i] = (unsigned char)(i * 7 + 3);
        }
        p = q;
    }
    DWORD was;
    uintptr_t first_page = (uintptr_t)p & ~(uintptr_t)0xFFF;
    if (!VirtualProtect((void *)first_page, HeapSize(h, 0, p) + 0x20, PAGE_READONLY, &was)) {
        return "VirtualProtect of the item failed";
    }
    size_t old = HeapSize(h, 0, p);
    unsigned char *q = HeapReAlloc(h, 0, p, old * 2);
    if (q == NULL || q[old - 1] != (unsigned char)((old - 1) * 7 + 3)) {
        return "the read-only item did not move whole";
    }
    q[0] = 1;
    q[old * 2 - 1] = 2;
    /* Half of it read-only: two host mappings.  Older kernels will not
     * move them in one piece and the bytes are copied; newer ones move
     * both.  Either way every byte arrives and all of the block is
     * writable. */
    size_t qn = HeapSize(h, 0, q);
    for (size_t i = 0; i < qn; i++) {
        q[i] = (unsigned char)(i * 5 + 1);
    }
    uintptr_t q_page = (uintptr_t)q & ~(uintptr_t)0xFFF;
    if (!VirtualProtect((void *)q_page, (qn + 0x20) / 2 & ~(size_t)0xFFF, PAGE_READONLY, &was)) {
        return "VirtualProtect of half the item failed";
    }
    unsigned char *c = HeapReAlloc(h, 0, q, qn * 2);
    if (c == NULL) {
        return "the half read-only item did not move";
    }
    for (size_t i = 0; i < qn; i++) {
        if (c[i] != (unsigned char)(i * 5 + 1)) {
            snprintf(why, len, "half read-only move: byte %zu lost", i);
            return why;
        }
    }
    c[0] = 3;
    c[qn / 4] = 3;
    return HeapFree(h, 0, c) ? NULL : "HeapFree of the moved item failed";
}

static void test_large_item_moves_keep_every_byte(void **state)
{
    (void)state;
    char why[160];
    const char *problem = check_large_moves(why, sizeof why);
    if (problem != NULL) {
        fail_msg("%s", problem);
    }
}

/* Makes every mremap of this process fail with EPERM, as a kernel without
 * MREMAP_DONTUNMAP (before 5.7) or a sandbox does. */
static bool forbid_mremap(void)
{
    return forbid_syscall(__NR_mremap);
}

/* The same moves where the kernel refuses to move pages: the heap copies
 * the bytes instead, with the same results.  (In a child, since a filter
 * cannot be taken back.) */
static void test_large_item_moves_without_mremap(void **state)
{
    (void)state;
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
        skip(); /* under valgrind, whose own mremap calls would meet the filter */
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char why[160] = "";
        const char *problem = "cannot install the seccomp filter";
        if (forbid_mremap()) {
            char *probe = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            problem = mremap(probe, 8192, 4096, 0) == MAP_FAILED && errno == EPERM
                          ? check_large_moves(why, sizeof why)
                          : "mremap still works under the filter";
        }
        if (problem != NULL) {
            (void)!write(fds[1], problem, strlen(problem));
        }
        _exit(problem == NULL ? 0 : 1);
    }
    close(fds[1]);
    char msg[160] = "";
    ssize_t got = read(fds[0], msg, sizeof msg - 1);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("child: %s (status 0x%x)", got > 0 ? msg : "no message", status);
    }
}

static void test_zeroing(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *p = HeapAlloc(h, 0, 64);
    memset(p, 0xAB, 64);
    assert_true(HeapFree(h, 0, p));
    char *q = HeapAlloc(h, HEAP_ZERO_MEMORY, 60);
    assert_ptr_equal(q, p);
    assert_true(all_zero((unsigned char *)q, 72));
    memset(q, 0xAB, 72);
    assert_true(HeapFree(h, 0, q));
    /* without the flag, only the slack after the request is cleared */
    char *r = HeapAlloc(h, 0, 50);
    assert_ptr_equal(r, p);
    assert_int_equal((unsigned char)r[0], 0xAB);
    assert_int_equal(HeapSize(h, 0, r), 56);
    assert_int_equal((unsigned char)r[49], 0xAB);
    assert_true(all_zero((unsigned char *)r + 50, 56 - 50));
    assert_true(HeapFree(h, 0, r));
    /* every slack length, 15 bytes down to none */
    for (size_t n = 41; n <= 56; n++) {
        unsigned char *a = HeapAlloc(h, 0, 56);
        memset(a, 0xAB, 56);
        assert_true(HeapFree(h, 0, a));
        unsigned char *b = HeapAlloc(h, 0, n);
        assert_ptr_equal(b, a);
        assert_int_equal(b[n - 1], 0xAB);
        assert_true(all_zero(b + n, 56 - n));
        assert_true(HeapFree(h, 0, b));
    }
    char *z = LocalAlloc(LPTR, 5000);
    assert_true(all_zero((unsigned char *)z, 5000));
}

/* ---- invalid pointers ---- */

static int bad_count[3];

static void count_bad(const char *op, const void *handle, const void *p, enum heap_bad_kind why)
{
    (void)op;
    (void)handle;
    (void)p;
    bad_count[why]++;
}

static void test_invalid_pointers_are_refused(void **state)
{
    (void)state;
    memset(bad_count, 0, sizeof bad_count);
    heap_set_bad_pointer_hook(count_bad);
    HANDLE h = GetProcessHeap();
    char *a = HeapAlloc(h, 0, 40);
    char *b = HeapAlloc(h, 0, 40);
    char *big = HeapAlloc(h, 0, 200000);
    int local = 0;
    /* not from this heap */
    assert_false(HeapFree(h, 0, NULL));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapFree(h, 0, &local));
    expect_error(ERROR_INVALID_PARAMETER);
    /* another heap's item: CE 5 fails without an error (heap.c's
     * Int_HeapFree and Int_HeapSize compare the item's owner) */
    HANDLE other = HeapCreate(0, 0, 0);
    char *o = HeapAlloc(other, 0, 10);
    char *obig = HeapAlloc(other, 0, 200000);
    assert_false(HeapFree(h, 0, o));
    assert_int_equal(GetLastError(), SENTINEL);
    assert_int_equal(HeapSize(h, 0, o), (SIZE_T)-1);
    assert_int_equal(GetLastError(), SENTINEL);
    assert_false(HeapFree(h, 0, obig));
    assert_int_equal(GetLastError(), SENTINEL);
    assert_int_equal(HeapSize(h, 0, obig), (SIZE_T)-1);
    assert_int_equal(GetLastError(), SENTINEL);
    assert_false(HeapFree(other, 0, a)); /* the process heap's item, the other way */
    assert_int_equal(GetLastError(), SENTINEL);
    assert_int_equal(HeapSize(other, 0, o), 24); /* untouched by the refusals */
    assert_true(HeapFree(other, 0, o));
    assert_true(HeapFree(other, 0, obig));
    /* interior */
    assert_false(HeapFree(h, 0, a + 16));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapFree(h, 0, a + 1));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapFree(h, 0, big + 4096));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(HeapReAlloc(h, 0, b + 8, 100));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapFree(h, 0, (char *)h));
    expect_error(ERROR_INVALID_PARAMETER);
    /* already freed: CE fails without an error, except HeapReAlloc */
    assert_true(HeapFree(h, 0, a));
    assert_false(HeapFree(h, 0, a));
    assert_int_equal(GetLastError(), SENTINEL);
    assert_int_equal(HeapSize(h, 0, a), (SIZE_T)-1);
    assert_int_equal(GetLastError(), SENTINEL);
    assert_null(HeapReAlloc(h, 0, a, 10));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(HeapValidate(h, 0, a));
    assert_true(HeapValidate(h, 0, b));
    assert_true(HeapValidate(h, 0, big));
    assert_true(HeapFree(h, 0, big));
    assert_false(HeapFree(h, 0, big)); /* its reservation is gone: foreign */
    expect_error(ERROR_INVALID_PARAMETER);
    /* LocalFree reports every failure with 87, LocalSize gives 0 */
    assert_ptr_equal(LocalFree(a), a);
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(LocalFree(NULL));
    assert_int_equal(GetLastError(), SENTINEL);
    assert_int_equal(LocalSize(a), 0);
    assert_int_equal(GetLastError(), SENTINEL);
    assert_int_equal(LocalSize(&local), 0);
    expect_error(ERROR_INVALID_PARAMETER);
    assert_true(bad_count[HEAP_BAD_FOREIGN] >= 5);
    assert_true(bad_count[HEAP_BAD_INTERIOR] >= 5);
    assert_true(bad_count[HEAP_BAD_FREED] >= 4);
    struct heap_stats st;
    struct heap *ph = heap_lookup(h);
    ph->ops->stats(ph, &st);
    assert_true(st.bad_pointers >= 14);
    assert_true(HeapValidate(h, 0, NULL));
    heap_set_bad_pointer_hook(NULL);
    assert_true(HeapDestroy(other));
}

static void test_overrun_cannot_corrupt_the_heap(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *a = HeapAlloc(h, 0, 8);
    char *b = HeapAlloc(h, 0, 8);
    char *c = HeapAlloc(h, 0, 8);
    /* On a device this would overwrite b's header; here bookkeeping is
     * elsewhere. */
    memset(a, 0xFF, 48);
    assert_int_equal(HeapSize(h, 0, b), 8);
    assert_true(HeapFree(h, 0, b));
    assert_true(HeapFree(h, 0, c));
    assert_true(HeapFree(h, 0, a));
    assert_true(HeapValidate(h, 0, NULL));
    assert_ptr_equal(HeapAlloc(h, 0, 40), a);
}

/* ---- Local* ---- */

static void test_local_flags(void **state)
{
    (void)state;
    void *p = LocalAlloc(LHND | LMEM_NOCOMPACT | LMEM_NODISCARD | LMEM_DISCARDABLE, 10);
    assert_non_null(p); /* accepted, ignored: a plain pointer */
    assert_int_equal(hoff(p), 0x60);
    assert_null(LocalAlloc(LMEM_MODIFY, 10));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(LocalAlloc(0x1000, 10));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(LocalReAlloc(p, 20, 0x1000));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(LocalReAlloc(p, 20, LMEM_DISCARDABLE | LMEM_MOVEABLE));
    expect_error(ERROR_INVALID_PARAMETER);
    /* LMEM_MODIFY does not skip the resize */
    assert_ptr_equal(LocalReAlloc(p, 8, LMEM_MODIFY | LMEM_DISCARDABLE), p);
    assert_int_equal(LocalSize(p), 8);
    assert_null(LocalFree(p));
}

/* ---- out of RAM ---- */

static void test_commit_failures(void **state)
{
    (void)state;
    /* 32 pages of device RAM: less than a region */
    assert_int_equal(testutil_core_reset("ce5", "128K", NULL), 0);
    HANDLE h = GetProcessHeap();
    char *p = HeapAlloc(h, 0, 100);
    assert_non_null(p);
    /* Grow p in place at the region's end until a commit is refused: CE 5
     * then fails without moving the block. */
    size_t n = 100;
    char *q;
    while ((q = HeapReAlloc(h, 0, p, n + 4096)) != NULL) {
        assert_ptr_equal(q, p);
        n += 4096;
    }
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    assert_int_equal(HeapSize(h, 0, p), ((n + 8 + 15) & ~(size_t)15) - 8);
    /* Allocations that need a commit fail the same way; the heap is intact. */
    while (HeapAlloc(h, 0, 2000) != NULL) {
    }
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    assert_null(HeapAlloc(h, 0, 200000)); /* a large item's commit */
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    assert_true(HeapValidate(h, 0, NULL));
    assert_true(HeapFree(h, 0, p));
    assert_non_null(HeapAlloc(h, 0, 100)); /* free space needs no commit */
    unsetenv("CEBOX_RAM");
}

/* ---- bookkeeping failures ---- */

/* What a failed operation must leave as it was. */
struct snapshot {
    size_t committed, meta;
    unsigned free_blocks;
};

/* (The process heap is made first, so that its own bookkeeping is not
 * among the allocations a test makes fail.) */
static struct snapshot snap(void)
{
    assert_non_null(GetProcessHeap());
    struct snapshot s = {slot_committed_bytes(), meta_bytes_in_use(), slot_free_blocks()};
    return s;
}

/* The operation failed as CE's out-of-memory does and changed nothing: no
 * page, block or bookkeeping byte more, and the heap still valid. */
static void expect_clean_failure(HANDLE h, const struct snapshot *before)
{
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    struct snapshot now = snap();
    assert_int_equal(now.committed, before->committed);
    assert_int_equal(now.free_blocks, before->free_blocks);
    assert_int_equal(now.meta, before->meta);
    if (h != NULL) {
        assert_true(HeapValidate(h, 0, NULL));
    }
}

static void test_create_survives_bookkeeping_failures(void **state)
{
    (void)state;
    struct snapshot before = snap();
    HANDLE h = NULL;
    unsigned long n = 1;
    for (; h == NULL; n++) {
        meta_fail_after(n);
        h = HeapCreate(0, 0, 0);
        if (h == NULL) {
            expect_clean_failure(NULL, &before);
        }
    }
    meta_fail_after(0);
    assert_true(n > 2); /* the heap and its first region each need bookkeeping */
    assert_non_null(HeapAlloc(h, 0, 100));
    assert_true(HeapValidate(h, 0, NULL));
    assert_true(HeapDestroy(h));
    assert_int_equal(meta_bytes_in_use(), before.meta);
}

/* Every bookkeeping allocation a new region needs (its map, and from the
 * fifth region on the heap's region trees) can fail; each failure leaves
 * the heap valid, and the next growth works. */
static void test_growth_survives_bookkeeping_failures(void **state)
{
    (void)state;
    size_t meta0 = snap().meta;
    HANDLE h = HeapCreate(0, 0, 0);
    assert_non_null(h);
    void *blocks[12];
    blocks[0] = HeapAlloc(h, 0, 0x17FE0); /* fills the first region */
    unsigned kept_growth = 0;
    for (int i = 1; i < 12; i++) {
        unsigned long failures = 0;
        for (unsigned long n = 1;; n++) {
            struct snapshot before = snap();
            meta_fail_after(n);
            blocks[i] = HeapAlloc(h, 0, 0x17FE0); /* a region each */
            meta_fail_after(0);
            if (blocks[i] != NULL) {
                break;
            }
            /* A region tree that did grow keeps its room (the fifth and the
             * ninth region double them): only then may bookkeeping grow. */
            struct snapshot now = snap();
            if (now.meta != before.meta) {
                kept_growth++;
                before.meta = now.meta;
            }
            expect_clean_failure(h, &before);
            failures++;
        }
        assert_true(failures >= 1);
        assert_true(HeapValidate(h, 0, NULL));
    }
    assert_true(kept_growth <= 2);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(HeapSize(h, 0, blocks[i]), 0x17FE8);
        assert_true(HeapFree(h, 0, blocks[i]));
    }
    assert_true(HeapValidate(h, 0, NULL));
    assert_true(HeapDestroy(h));
    assert_int_equal(meta_bytes_in_use(), meta0);
}

/* A large item's record and a move into a new region fail cleanly too. */
static void test_large_and_move_survive_bookkeeping_failures(void **state)
{
    (void)state;
    assert_non_null(GetProcessHeap());
    HANDLE h = HeapCreate(0, 0, 0);
    struct snapshot before = snap();
    meta_fail_after(1);
    assert_null(HeapAlloc(h, 0, 200000));
    meta_fail_after(0);
    expect_clean_failure(h, &before);
    char *p = HeapAlloc(h, 0, 0x10000);
    memset(p, 0x5A, 0x10000);
    assert_non_null(HeapAlloc(h, 0, 0x10000)); /* p cannot grow in place */
    before = snap();
    meta_fail_after(1); /* the new region the move needs */
    assert_null(HeapReAlloc(h, 0, p, 0x17FE0));
    meta_fail_after(0);
    expect_clean_failure(h, &before);
    assert_int_equal(HeapSize(h, 0, p), 0x10008);
    for (size_t i = 0; i < 0x10000; i++) {
        assert_int_equal((unsigned char)p[i], 0x5A);
    }
    assert_non_null(HeapReAlloc(h, 0, p, 0x17FE0));
    assert_true(HeapDestroy(h));
}

/* ---- walk ---- */

struct walk_totals {
    size_t regions, items, busy, large, reserved, committed, busy_bytes, free_bytes;
};

static bool tally(void *ctx, const struct heap_walk_entry *e)
{
    struct walk_totals *t = ctx;
    switch (e->kind) {
    case HEAP_WALK_REGION:
        t->regions++;
        t->reserved += e->size;
        t->committed += e->committed;
        break;
    case HEAP_WALK_ITEM:
        t->items++;
        t->busy += e->busy;
        if (e->busy) {
            t->busy_bytes += e->size;
        } else {
            t->free_bytes += e->size + 8;
        }
        break;
    case HEAP_WALK_LARGE:
        t->large++;
        t->committed += e->committed;
        break;
    }
    return true;
}

static void test_walk_and_stats(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    void *p[5];
    for (int i = 0; i < 5; i++) {
        p[i] = HeapAlloc(h, 0, 1000);
    }
    HeapFree(h, 0, p[1]);
    HeapFree(h, 0, p[2]);
    HeapAlloc(h, 0, 300000);
    struct heap *hp = heap_lookup(h);
    struct walk_totals t = {0};
    hp->ops->walk(hp, tally, &t);
    assert_int_equal(t.regions, 1);
    assert_int_equal(t.reserved, 0x2F000);
    assert_int_equal(t.busy, 3);
    assert_int_equal(t.busy_bytes, 3 * 1000);
    assert_int_equal(t.items, 5); /* busy, free run of two, busy, busy, tail */
    assert_int_equal(t.large, 1);
    assert_int_equal(t.committed, slot_committed_bytes());
    struct heap_stats st;
    hp->ops->stats(hp, &st);
    assert_int_equal(st.live_blocks, 4);
    assert_int_equal(st.live_bytes, 3000 + 303072);
    assert_int_equal(st.committed_bytes, slot_committed_bytes());
    assert_int_equal(st.regions, 1);
    assert_int_equal(st.large_items, 1);
    assert_true(HeapValidate(h, 0, NULL));
}

/* ---- the host's read-ahead of a region's commits (--commit-ahead) ---- */

#define AHEAD_STEPS 40

/* What CE's books say after each step of one allocation sequence. */
struct books {
    struct testutil_books step[AHEAD_STEPS]; /* commit_end: of the step's item */
};

/* A fresh core with --commit-ahead `pages`; a heap of its own grows one
 * item of a page or so per step, and the books are read after each.
 * Returns the last item's committed end, checked to be inside its region
 * and followed by a reserved page. */
static char *grow_heap_with_ahead(const char *pages, struct books *b, HANDLE *heap)
{
    setenv("CEBOX_COMMIT_AHEAD", pages, 1);
    assert_int_equal(testutil_core_reset("ce5", NULL, NULL), 0);
    unsetenv("CEBOX_COMMIT_AHEAD");
    *heap = HeapCreate(0, 0, 0);
    assert_non_null(*heap);
    MEMORY_BASIC_INFORMATION m;
    for (unsigned i = 0; i < AHEAD_STEPS; i++) {
        char *p = HeapAlloc(*heap, 0, 3000 + 37 * i);
        assert_non_null(p);
        memset(p, 0x5A, 3000 + 37 * i);
        assert_true(testutil_read_books(&b->step[i], p));
    }
    char *end = (char *)b->step[AHEAD_STEPS - 1].commit_end;
    assert_int_equal(VirtualQuery(end, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_RESERVE);
    return end;
}

/* The read-ahead changes no figure of CE's books: committed bytes, free
 * RAM, the slot map and VirtualQuery's committed runs are step for step
 * those of the exact mode.  Only the host differs: in the exact mode a
 * touch of the heap's first uncommitted page faults, with read-ahead it
 * does not (the documented loss), and once the heap is destroyed it
 * faults again in both. */
static void test_commit_ahead_keeps_the_books(void **state)
{
    (void)state;
    static struct books exact, ahead;
    HANDLE h;
    char *end = grow_heap_with_ahead("0", &exact, &h);
    assert_true(access_faults(end, false));
    assert_true(access_faults(end, true));
    assert_true(HeapDestroy(h));
    char *end2 = grow_heap_with_ahead("32", &ahead, &h);
    assert_ptr_equal(end2, end);
    assert_memory_equal(&ahead, &exact, sizeof exact);
    assert_false(access_faults(end, true));
    assert_true(HeapDestroy(h));
    assert_true(access_faults(end, false));
    /* A stray write into a read-ahead page never shows in a later commit:
     * the pages the next reservation there commits read as zeros. */
    char *again = grow_heap_with_ahead("32", &ahead, &h);
    again[8] = 1;
    assert_true(HeapDestroy(h));
    char *v = VirtualAlloc(NULL, 3 * BLOCK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_non_null(v);
    assert_true((uintptr_t)again >= (uintptr_t)v && (uintptr_t)again < (uintptr_t)v + 3 * BLOCK);
    assert_true(all_zero((unsigned char *)again, PAGE));
    assert_true(VirtualFree(v, 0, MEM_RELEASE));
    assert_int_equal(testutil_core_reset("ce5", NULL, NULL), 0);
}

/* ---- threads ---- */

struct worker {
    HANDLE h;
    unsigned seed;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char *mine[64] = {0};
    unsigned s = w->seed;
    for (int i = 0; i < 20000; i++) {
        s = s * 1103515245u + 12345u;
        int k = (int)((s >> 8) % 64);
        if (mine[k] != NULL) {
            if (mine[k][0] != (char)k || !HeapFree(w->h, 0, mine[k])) {
                w->failures++;
            }
            mine[k] = NULL;
        } else {
            size_t n = 1 + (s >> 16) % 600;
            mine[k] = HeapAlloc(w->h, 0, n);
            if (mine[k] == NULL) {
                w->failures++;
            } else {
                memset(mine[k], k, n);
            }
        }
    }
    for (int k = 0; k < 64; k++) {
        if (mine[k] != NULL && !HeapFree(w->h, 0, mine[k])) {
            w->failures++;
        }
    }
    return NULL;
}

static void test_threads_are_serialized(void **state)
{
    (void)state;
    HANDLE shared = HeapCreate(0, 0, 0);
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){i % 2 ? shared : GetProcessHeap(), (unsigned)i + 1, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_true(HeapValidate(shared, 0, NULL));
    assert_true(HeapValidate(GetProcessHeap(), 0, NULL));
    struct heap_stats st;
    struct heap *hp = heap_lookup(shared);
    hp->ops->stats(hp, &st);
    assert_int_equal(st.live_blocks, 0);
    heap_lock_all(); /* what a fork handler does */
    heap_unlock_all();
    assert_true(HeapDestroy(shared));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sizes_of_small_items, setup),
        cmocka_unit_test_setup(test_large_item_at_block_boundary_plus_0x20, setup),
        cmocka_unit_test_setup(test_spec_worked_examples, setup),
        cmocka_unit_test_setup(test_rover_decides_not_the_lowest_address, setup),
        cmocka_unit_test_setup(test_grow_in_place_at_region_end, setup),
        cmocka_unit_test_setup(test_new_region_when_nothing_fits, setup),
        cmocka_unit_test_setup(test_compact_gives_the_tail_back, setup),
        cmocka_unit_test_setup(test_create_sizes, setup),
        cmocka_unit_test_setup(test_flag_validation, setup),
        cmocka_unit_test_setup(test_destroy, setup),
        cmocka_unit_test_setup(test_timeline_free_figures, setup),
        cmocka_unit_test_setup(test_timeline_totals, setup),
        cmocka_unit_test_setup(test_in_place_only_realloc, setup),
        cmocka_unit_test_setup(test_large_item_realloc, setup),
        cmocka_unit_test_setup(test_large_item_moves_keep_every_byte, setup),
        cmocka_unit_test_setup(test_large_item_moves_without_mremap, setup),
        cmocka_unit_test_setup(test_zeroing, setup),
        cmocka_unit_test_setup(test_invalid_pointers_are_refused, setup),
        cmocka_unit_test_setup(test_overrun_cannot_corrupt_the_heap, setup),
        cmocka_unit_test_setup(test_local_flags, setup),
        cmocka_unit_test_setup(test_commit_failures, setup),
        cmocka_unit_test_setup(test_create_survives_bookkeeping_failures, setup),
        cmocka_unit_test_setup(test_growth_survives_bookkeeping_failures, setup),
        cmocka_unit_test_setup(test_large_and_move_survive_bookkeeping_failures, setup),
        cmocka_unit_test_setup(test_walk_and_stats, setup),
        cmocka_unit_test_setup(test_threads_are_serialized, setup),
        cmocka_unit_test_setup(test_commit_ahead_keeps_the_books, setup),
        cmocka_unit_test_setup(test_known_longest_run_follows_frees_and_carves, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
