/*
 * test_heap_ce6.c - the CE 6.0 heap (profile ce6) through the public API:
 * the layouts, sizes and errors that CE 6.0's coredll heap (LMEM rheap.cpp,
 * heap.h, heap.c) gives, worked out from the source (docs/heaps/ce6.md).
 *
 * Each test starts from a fresh ce6 core, so the process heap is made at
 * the first call and H = GetProcessHeap() is its first region's base.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "core.h"
#include "heap/heap.h"
#include "meta.h"
#include "oomutil.h"
#include "os.h"
#include "testutil.h"

#define PAGE 4096u
#define BLOCK 0x10000u
#define SENTINEL 0xC0FFEEu

static int setup(void **state)
{
    (void)state;
    assert_int_equal(testutil_core_reset("ce6", NULL, "32M"), 0);
    heap_set_bad_pointer_hook(NULL);
    SetLastError(SENTINEL);
    return 0;
}

static uintptr_t off(HANDLE h, const void *p)
{
    return (uintptr_t)p - (uintptr_t)h;
}

/* The first item of a growable heap follows the 19 header blocks (heap
 * structure and bitmap, 596 bytes); sizes are whole 32-byte blocks, 0 and
 * 1 byte take one block; items follow each other with no header. */
static void test_first_item_and_block_sizes(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    assert_non_null(h);
    assert_int_equal((uintptr_t)h % BLOCK, 0);
    void *a = HeapAlloc(h, 0, 1);
    void *b = HeapAlloc(h, 0, 0);
    void *c = HeapAlloc(h, 0, 33);
    void *d = HeapAlloc(h, 0, 100);
    assert_int_equal(off(h, a), 0x260);
    assert_int_equal(off(h, b), 0x280);
    assert_int_equal(off(h, c), 0x2A0);
    assert_int_equal(off(h, d), 0x2E0);
    assert_int_equal(HeapSize(h, 0, a), 32);
    assert_int_equal(HeapSize(h, 0, b), 32);
    assert_int_equal(HeapSize(h, 0, c), 64);
    assert_int_equal(HeapSize(h, 0, d), 128);
    assert_int_equal(GetLastError(), SENTINEL);
}

/* A fresh growable heap commits one page; HeapCompact returns the largest
 * committed free run: 4096 - 19 * 32 = 3488 bytes. */
static void test_fresh_heap_commit_and_compact(void **state)
{
    (void)state;
    GetProcessHeap();
    size_t before = slot_committed_bytes();
    unsigned blocks = slot_free_blocks();
    HANDLE h = HeapCreate(0, 0x20000, 0); /* the initial size is ignored */
    assert_non_null(h);
    assert_int_equal(slot_committed_bytes() - before, PAGE);
    assert_int_equal(blocks - slot_free_blocks(), 1);
    assert_int_equal(HeapCompact(h, 0), 3488);
    assert_int_equal(HeapCompact(h, 1 << 5), 0);
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    assert_true(HeapDestroy(h));
}

/* The search runs from the rover (the block after the last item taken)
 * to the committed end before it looks below the rover: a freed hole
 * below the rover is passed over while room remains above it. */
static void test_rover_passes_over_a_hole_below_it(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    void *a = HeapAlloc(h, 0, 32);
    void *b = HeapAlloc(h, 0, 32);
    void *c = HeapAlloc(h, 0, 32);
    assert_int_equal(off(h, c), 0x260 + 64);
    assert_true(HeapFree(h, 0, a)); /* rover = a */
    void *d = HeapAlloc(h, 0, 64);  /* a's block is too short: after c */
    assert_int_equal(off(h, d), 0x260 + 96);
    void *e = HeapAlloc(h, 0, 32); /* rover after d: not back to a */
    assert_int_equal(off(h, e), 0x260 + 160);
    (void)b;
    assert_true(HeapDestroy(h));
}

/* Items of more than 16 KB get a reservation of their own: the pointer is
 * its base, HeapSize the requested byte count, the pages of the request
 * committed; 16 KB exactly stays in a region. */
static void test_over_16k_gets_its_own_reservation(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    size_t c0 = slot_committed_bytes();
    unsigned b0 = slot_free_blocks();
    void *big = HeapAlloc(h, 0, 16385);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % BLOCK, 0);
    assert_int_equal(HeapSize(h, 0, big), 16385);
    assert_int_equal(slot_committed_bytes() - c0, 5 * PAGE);
    assert_int_equal(b0 - slot_free_blocks(), 1);
    void *in = HeapAlloc(h, 0, 16384);
    assert_int_equal(off(h, in), 0x260);
    assert_int_equal(HeapSize(h, 0, in), 16384);
    /* Resizing inside the reservation keeps the base; HeapSize follows. */
    assert_ptr_equal(HeapReAlloc(h, 0, big, 20000), big);
    assert_int_equal(HeapSize(h, 0, big), 20000);
    assert_ptr_equal(HeapReAlloc(h, 0, big, 5000), big);
    assert_int_equal(HeapSize(h, 0, big), 5000);
    assert_null(HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, big, 70000));
    assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
    assert_true(HeapFree(h, 0, big));
    assert_int_equal(b0 - slot_free_blocks(), 0);
    assert_true(HeapDestroy(h));
}

/* Host pages of [p, p + n pages) that are resident. */
static unsigned resident_pages(const void *p, unsigned n)
{
    unsigned char v[64];
    assert_true(n <= sizeof v);
    assert_int_equal(mincore((void *)p, (size_t)n * PAGE, v), 0);
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        k += v[i] & 1;
    }
    return k;
}

/* A large item that grows past its reservation moves: its bytes up to
 * cbSize arrive, the rest of its last page reads as zero (CE copies cbSize
 * bytes into fresh pages), and where the host can move pages the old ones
 * go along instead of being copied (the old range then holds no memory). */
static void test_large_item_moves_its_pages(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    unsigned char *big = HeapAlloc(h, 0, 60000);
    assert_non_null(big);
    memset(big, 0x5A, 15 * PAGE); /* past cbSize, inside its last page */
    size_t c0 = slot_committed_bytes();
    unsigned char *moved = HeapReAlloc(h, 0, big, 100000);
    assert_non_null(moved);
    assert_ptr_not_equal(moved, big);
    for (size_t i = 0; i < 60000; i++) {
        assert_int_equal(moved[i], 0x5A);
    }
    assert_true(all_zero(moved + 60000, 25 * PAGE - 60000));
    assert_int_equal(slot_committed_bytes() - c0, 25 * PAGE - 15 * PAGE);
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(big, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_FREE);
    int moves = testutil_host_moves_pages();
    assert_true(moves >= 0);
    if (moves) {
        assert_int_equal(resident_pages(big, 15), 0);
    }
    assert_true(HeapFree(h, 0, moved));
    assert_true(HeapDestroy(h));
}

/* A large item's 32-byte record is an item of the process heap, which
 * moves the process heap's next placements; the program cannot free it. */
static void test_large_item_record_in_process_heap(void **state)
{
    (void)state;
    HANDLE ph = GetProcessHeap();
    void *a = HeapAlloc(ph, 0, 32);
    assert_int_equal(off(ph, a), 0x260);
    HANDLE h = HeapCreate(0, 0, 0);
    void *big = HeapAlloc(h, 0, 20000);
    assert_non_null(big);
    void *b = HeapAlloc(ph, 0, 32);
    assert_int_equal(off(ph, b), 0x2A0); /* the record took 0x280 */
    assert_false(HeapFree(ph, 0, (char *)ph + 0x280));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    assert_true(HeapFree(h, 0, big)); /* frees the record: the rover goes there */
    void *c = HeapAlloc(ph, 0, 32);
    assert_int_equal(off(ph, c), 0x280);
    assert_true(HeapDestroy(h));
}

/* A second region carries a 17-block header: its first item is at +0x220. */
static void test_later_region_header(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    /* 1901 free blocks in the first region: 3 items of 512 and one of 365. */
    for (int i = 0; i < 3; i++) {
        assert_non_null(HeapAlloc(h, 0, 16384));
    }
    void *last = HeapAlloc(h, 0, 365 * 32);
    assert_int_equal(off(h, last), 0x260 + 3 * 16384);
    unsigned b0 = slot_free_blocks();
    void *next = HeapAlloc(h, 0, 32);
    assert_int_equal(b0 - slot_free_blocks(), 1);
    assert_int_equal((uintptr_t)next % BLOCK, 0x220);
    /* Freed, the region is wholly free: HeapCompact releases it. */
    assert_true(HeapFree(h, 0, next));
    HeapCompact(h, 0);
    assert_int_equal(slot_free_blocks(), b0);
    assert_true(HeapDestroy(h));
}

/* The regions of a growable heap (three 16 KB items fill one) in list
 * order, through the core's view of heap h. */
static size_t regions_of(HANDLE h)
{
    struct heap_ce6_region_state st;
    size_t n = 0;
    while (heap_ce6_region_state(heap_lookup(h), n, &st)) {
        n++;
    }
    return n;
}

static void fill_regions(HANDLE h, void **items, size_t first, size_t count)
{
    for (size_t i = first; i < first + count; i++) {
        items[i] = HeapAlloc(h, 0, 16384);
        assert_non_null(items[i]);
    }
}

/* The bookkeeping of a growable heap's regions shares cebox's mappings: a
 * region's record is about a third of a page, 150 regions cost well under
 * half a page each; one released by HeapCompact hands its record on to
 * the next region made (nothing more is taken), and HeapDestroy gives all
 * of it back. */
static void test_region_records_are_pooled(void **state)
{
    (void)state;
    enum { REGIONS = 150, PER_REGION = 3 };
    static void *items[REGIONS * PER_REGION];
    GetProcessHeap();
    size_t meta0 = meta_bytes_in_use();
    HANDLE h = HeapCreate(0, 0, 0);
    fill_regions(h, items, 0, REGIONS * PER_REGION);
    assert_int_equal(regions_of(h), REGIONS);
    assert_true(meta_bytes_in_use() - meta0 < (size_t)REGIONS * PAGE / 2);
    for (size_t i = PER_REGION; i < REGIONS * PER_REGION; i++) {
        assert_true(HeapFree(h, 0, items[i]));
    }
    HeapCompact(h, 0);
    assert_int_equal(regions_of(h), 1);
    size_t kept = meta_bytes_in_use();
    fill_regions(h, items, PER_REGION, (REGIONS - 1) * PER_REGION);
    assert_int_equal(regions_of(h), REGIONS);
    assert_int_equal(meta_bytes_in_use(), kept);
    assert_true(HeapDestroy(h));
    assert_int_equal(meta_bytes_in_use(), meta0);
}

static int cmp_addr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* The record pool (heap.c) that holds the regions' records: its chunks
 * double from a page, so 400 records of a region's size come from a few
 * mappings, not one per three records; records are zeroed, aligned and
 * apart; given back they serve the next takes with nothing more mapped,
 * and heap_pool_destroy frees every chunk. */
static void test_record_pool_chunks_double(void **state)
{
    (void)state;
    enum { RECORDS = 400, SIZE = 1344, ALIGN = 64 };
    static uintptr_t rec[RECORDS];
    struct heap_pool pool = {0};
    size_t meta0 = meta_bytes_in_use();
    for (int i = 0; i < RECORDS; i++) {
        unsigned char *r = heap_pool_take(&pool, SIZE, ALIGN);
        assert_non_null(r);
        assert_int_equal((uintptr_t)r % ALIGN, 0);
        assert_int_equal(r[0] | r[SIZE - 1], 0);
        memset(r, 0xAB, SIZE);
        rec[i] = (uintptr_t)r;
    }
    size_t mapped = meta_bytes_in_use();
    for (int i = 0; i < RECORDS; i++) {
        heap_pool_give(&pool, (void *)rec[i]);
    }
    for (int i = 0; i < RECORDS; i++) {
        unsigned char *r = heap_pool_take(&pool, SIZE, ALIGN);
        assert_int_equal(r[0] | r[SIZE - 1], 0);
        rec[i] = (uintptr_t)r;
    }
    assert_int_equal(meta_bytes_in_use(), mapped);
    qsort(rec, RECORDS, sizeof rec[0], cmp_addr);
    unsigned chunks = 1;
    for (int i = 1; i < RECORDS; i++) {
        assert_true(rec[i] >= rec[i - 1] + SIZE);
        chunks += rec[i] != rec[i - 1] + SIZE;
    }
    assert_true(chunks <= 9); /* 1, 2, 4 ... 64 pages: 7 chunks hold 385 */
    heap_pool_destroy(&pool);
    assert_int_equal(meta_bytes_in_use(), meta0);
}

/* A growable heap whose first region finds no free block in the slot is
 * not made, and leaves none of its bookkeeping behind (the region's record
 * chunk included); with a block free again it is. */
static void test_heap_create_in_a_full_slot(void **state)
{
    (void)state;
    enum { MAX_RESERVATIONS = 4096 };
    static void *res[MAX_RESERVATIONS];
    GetProcessHeap();
    size_t n = 0;
    while (n < MAX_RESERVATIONS && (res[n] = VirtualAlloc(NULL, BLOCK, MEM_RESERVE, PAGE_NOACCESS)) != NULL) {
        n++;
    }
    assert_true(n > 0 && n < MAX_RESERVATIONS);
    size_t meta0 = meta_bytes_in_use();
    assert_null(HeapCreate(0, 0, 0));
    assert_int_equal(meta_bytes_in_use(), meta0);
    assert_true(VirtualFree(res[--n], 0, MEM_RELEASE));
    HANDLE h = HeapCreate(0, 0, 0);
    assert_non_null(h);
    assert_true(HeapDestroy(h));
    assert_int_equal(meta_bytes_in_use(), meta0);
    while (n > 0) {
        assert_true(VirtualFree(res[--n], 0, MEM_RELEASE));
    }
}

/* HeapCompact decommits the pages above the last bitmap word (16 blocks)
 * that holds a busy block. */
static void test_compact_decommits_above_last_busy_word(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    size_t c0 = slot_committed_bytes();
    void *p[5];
    for (int i = 0; i < 5; i++) {
        p[i] = HeapAlloc(h, 0, 4000); /* 125 blocks each */
    }
    assert_int_equal(slot_committed_bytes() - c0, 5 * PAGE); /* blocks up to 644: 6 pages */
    for (int i = 4; i >= 1; i--) {
        assert_true(HeapFree(h, 0, p[i]));
    }
    /* p[0] ends at block 144: word 8 is the last busy one, so blocks from
     * 256 (page 2) on are decommitted; the largest free run is 256 - 144. */
    assert_int_equal(HeapCompact(h, 0), (256 - 144) * 32);
    assert_int_equal(slot_committed_bytes() - c0, 1 * PAGE);
    assert_true(HeapFree(h, 0, p[0]));
    assert_int_equal(HeapCompact(h, 0), 3488);
    assert_int_equal(slot_committed_bytes() - c0, 0);
    assert_true(HeapDestroy(h));
}

/* A fixed heap's structure (116 bytes + a bitmap word per 16 blocks) is an
 * item of the process heap, and is its handle; its region has no header
 * (first item at its base), commits nothing beyond its initial size, never
 * grows, keeps big items inside, and a full one fails with
 * ERROR_NOT_ENOUGH_MEMORY. */
static void test_fixed_heap(void **state)
{
    (void)state;
    HANDLE ph = GetProcessHeap();
    size_t c0 = slot_committed_bytes();
    HANDLE h = HeapCreate(0, 0, 40000);
    assert_non_null(h);
    assert_int_equal(off(ph, h), 0x260); /* 116 + 80 * 4 = 436 bytes: 14 blocks */
    assert_int_equal(off(ph, HeapAlloc(ph, 0, 1)), 0x260 + 14 * 32);
    assert_false(HeapFree(ph, 0, h)); /* not the program's */
    assert_int_equal(slot_committed_bytes(), c0);
    void *a = HeapAlloc(h, 0, 20000);
    assert_int_equal((uintptr_t)a % BLOCK, 0);
    assert_int_equal(HeapSize(h, 0, a), 20000); /* 625 blocks */
    assert_int_equal(slot_committed_bytes() - c0, 5 * PAGE);
    void *b = HeapAlloc(h, 0, 21000); /* 657 blocks, 655 left */
    assert_null(b);
    assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
    assert_true(HeapDestroy(h));
    assert_null(HeapCreate(0, 3 * PAGE, 2 * PAGE));
}

/* HeapReAlloc grows into the free blocks after the item and shrinks by
 * freeing its tail; it moves only when the blocks after it are busy. */
static void test_realloc_in_place(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    char *a = HeapAlloc(h, 0, 64);
    memset(a, 7, 64);
    char *g = HeapReAlloc(h, HEAP_ZERO_MEMORY, a, 200);
    assert_ptr_equal(g, a);
    assert_int_equal(HeapSize(h, 0, a), 224);
    assert_int_equal(a[63], 7);
    assert_int_equal(a[64], 0);
    assert_int_equal(a[223], 0);
    assert_ptr_equal(HeapReAlloc(h, 0, a, 40), a);
    assert_int_equal(HeapSize(h, 0, a), 64);
    void *b = HeapAlloc(h, 0, 32); /* right after a (the rover is there) */
    assert_int_equal(off(h, b), 0x260 + 64);
    assert_null(HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, a, 100));
    assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
    char *m = HeapReAlloc(h, 0, a, 100);
    assert_ptr_not_equal(m, a);
    assert_int_equal(m[0], 7);
    assert_int_equal(HeapSize(h, 0, m), 128);
    assert_true(HeapDestroy(h));
}

/* CE 6's errors: bad pointers and double frees are ERROR_INVALID_PARAMETER,
 * so is a request over 1 GB; HEAP_GENERATE_EXCEPTIONS on HeapReAlloc is
 * ERROR_NOT_SUPPORTED; LocalSize of a bad pointer is 0 with 87. */
static void test_errors(void **state)
{
    (void)state;
    HANDLE h = GetProcessHeap();
    char *a = HeapAlloc(h, 0, 100);
    assert_false(HeapFree(h, 0, a + 32));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    assert_true(HeapFree(h, 0, a));
    SetLastError(SENTINEL);
    assert_false(HeapFree(h, 0, a));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    SetLastError(SENTINEL);
    assert_int_equal(HeapSize(h, 0, a), (SIZE_T)-1);
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    SetLastError(SENTINEL);
    assert_int_equal(LocalSize(a), 0);
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    SetLastError(SENTINEL);
    assert_null(HeapAlloc(h, 0, 0x40000001u));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    SetLastError(SENTINEL);
    assert_null(HeapAlloc(h, HEAP_GENERATE_EXCEPTIONS, 10));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    void *b = HeapAlloc(h, 0, 10); /* the rover is on a's block: a again */
    assert_ptr_equal(b, a);
    assert_null(HeapReAlloc(h, HEAP_GENERATE_EXCEPTIONS, b, 20));
    assert_int_equal(GetLastError(), ERROR_NOT_SUPPORTED);
    assert_null(HeapCreate(0, 0, 0x40001000u));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    assert_false(HeapDestroy(h));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    assert_true(HeapValidate(h, 0, NULL));
    assert_true(HeapValidate(h, 0, b));
    assert_false(HeapValidate(h, 0, a + 32));
}

/* A heap of `regions` regions, each holding three items of 512 blocks, so
 * that the next such item needs a new region. */
static HANDLE heap_of_full_regions(int regions)
{
    HANDLE h = HeapCreate(0, 0, 0);
    assert_non_null(h);
    for (int i = 0; i < 3 * regions; i++) {
        assert_non_null(HeapAlloc(h, 0, 16384));
    }
    return h;
}

/* What a sweep attempts: HeapAlloc(n_bytes) on a fresh
 * heap_of_full_regions(regions), or (create) HeapCreate(0, 0, max). */
struct swept {
    bool create;
    int regions;
    size_t n_bytes, max;
};

/* The operation with the n-th bookkeeping allocation failing, for n = 1,
 * 2, ... until it succeeds: each failure is NULL with
 * ERROR_NOT_ENOUGH_MEMORY and leaves the heap valid and the slot as it
 * was; once the heap is destroyed nothing is left behind. */
static void sweep(const char *what, struct swept op)
{
    size_t meta0 = meta_bytes_in_use();
    unsigned fails = 0;
    for (unsigned long n = 1; n < 100; n++) {
        HANDLE h = op.create ? NULL : heap_of_full_regions(op.regions);
        size_t c0 = slot_committed_bytes();
        unsigned b0 = slot_free_blocks();
        SetLastError(SENTINEL);
        meta_fail_after(n);
        void *p = op.create ? HeapCreate(0, 0, op.max) : HeapAlloc(h, 0, op.n_bytes);
        bool landed = failure_landed(n);
        if (p == NULL) {
            assert_true(landed);
            assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
            assert_int_equal(slot_committed_bytes(), c0);
            assert_int_equal(slot_free_blocks(), b0);
            fails++;
        }
        if (op.create) {
            h = p;
        } else {
            assert_true(HeapValidate(h, 0, NULL));
        }
        assert_true(h == NULL || HeapDestroy(h));
        assert_int_equal(meta_bytes_in_use(), meta0);
        if (!landed) {
            assert_non_null(p);
            printf("%-28s %u clean failures\n", what, fails);
            return;
        }
    }
    fail_msg("%s: never succeeded", what);
}

static void test_bookkeeping_failures_are_clean(void **state)
{
    (void)state;
    GetProcessHeap();
    /* A region's record comes from the heap's pool: the second region's
     * from the first chunk (no allocation), the fourth's from a new one. */
    sweep("new region (spare record)", (struct swept){.regions = 1, .n_bytes = 16384});
    sweep("new region (record chunk)", (struct swept){.regions = 3, .n_bytes = 16384});
    sweep("fifth region (tree grows)", (struct swept){.regions = 4, .n_bytes = 16384});
    sweep("large item record", (struct swept){.regions = 0, .n_bytes = 100000});
    /* HeapCreate itself, growable and fixed. */
    for (size_t max = 0; max <= 65536; max += 65536) {
        char what[32];
        snprintf(what, sizeof what, "HeapCreate (max %-6zu)      ", max);
        sweep(what, (struct swept){.create = true, .max = max});
    }
}

/* ---- the host's read-ahead of a large item's growth (--commit-ahead) ---- */

#define GROW_STEPS 40
#define GROW_FROM 20000u
#define GROW_BY 3000u /* under a page: a step commits a page or none */

/* What CE's books say after each step of a large item's growth. */
struct grow_books {
    uintptr_t item[GROW_STEPS];
    struct testutil_books step[GROW_STEPS];
};

/* A fresh ce6 core with --commit-ahead `pages`; a heap of its own grows
 * one large item by GROW_BY bytes a step (in place inside its
 * reservation, moving past its end), each step's bytes written, and the
 * books are read after each.  Returns the item. */
static unsigned char *grow_large_with_ahead(const char *pages, struct grow_books *b, HANDLE *heap)
{
    setenv("CEBOX_COMMIT_AHEAD", pages, 1);
    assert_int_equal(testutil_core_reset("ce6", NULL, "32M"), 0);
    unsetenv("CEBOX_COMMIT_AHEAD");
    *heap = HeapCreate(0, 0, 0);
    assert_non_null(*heap);
    unsigned char *p = HeapAlloc(*heap, 0, GROW_FROM);
    assert_non_null(p);
    for (unsigned i = 0; i < GROW_STEPS; i++) {
        size_t n = GROW_FROM + (size_t)GROW_BY * (i + 1);
        p = HeapReAlloc(*heap, 0, p, n);
        assert_non_null(p);
        memset(p + n - GROW_BY, (int)i, GROW_BY);
        b->item[i] = (uintptr_t)p;
        assert_true(testutil_read_books(&b->step[i], p));
    }
    return p;
}

/* The read-ahead of a growing large item changes no figure of CE's books:
 * committed bytes, free RAM, the slot map, the item's place and its
 * committed run are step for step those of the exact mode, through moves
 * and steps in place, and its bytes arrive.  Only the host differs: in
 * the exact mode a touch of the page after the committed end faults, with
 * read-ahead it does not (the documented loss), and once the heap is
 * destroyed it faults again. */
static void test_commit_ahead_keeps_the_books_of_a_large_item(void **state)
{
    (void)state;
    static struct grow_books exact, ahead;
    HANDLE h;
    unsigned char *p = grow_large_with_ahead("0", &exact, &h);
    char *end = (char *)exact.step[GROW_STEPS - 1].commit_end;
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(end, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_true(access_faults(end, false));
    assert_true(access_faults(end, true));
    unsigned moves = 0;
    for (unsigned i = 1; i < GROW_STEPS; i++) {
        moves += exact.item[i] != exact.item[i - 1];
    }
    assert_true(moves >= 2 && moves <= GROW_STEPS / 8);
    assert_true(HeapDestroy(h));
    unsigned char *q = grow_large_with_ahead("32", &ahead, &h);
    assert_ptr_equal(q, p);
    assert_memory_equal(&ahead, &exact, sizeof exact);
    assert_false(access_faults(end, true));
    for (unsigned i = 0; i < GROW_STEPS; i++) {
        assert_int_equal(q[GROW_FROM + GROW_BY * i], i);
        assert_int_equal(q[GROW_FROM + GROW_BY * (i + 1) - 1], i);
    }
    assert_true(HeapDestroy(h));
    assert_true(access_faults(end, false));
}

/* Writes a stray byte into the first read-ahead page of a large item just
 * grown in place to `n` bytes (open to the host, uncommitted). */
static void write_past_committed_end(unsigned char *p, size_t n)
{
    char *past = (char *)p + (n + PAGE - 1) / PAGE * PAGE + 8;
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(past, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_false(access_faults(past, true));
    *past = 0x77;
}

/* A fresh reservation at the block of p reads as zeros. */
static void expect_zeros_at(const unsigned char *p)
{
    void *v = VirtualAlloc((void *)p, BLOCK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_ptr_equal(v, p);
    assert_true(all_zero(v, BLOCK));
    assert_true(VirtualFree(v, 0, MEM_RELEASE));
}

/* A stray write into a large item's read-ahead page never shows in a later
 * allocation there, whether the item was freed or moved away. */
static void test_commit_ahead_stray_writes_of_a_large_item_vanish(void **state)
{
    (void)state;
    setenv("CEBOX_COMMIT_AHEAD", "32", 1);
    assert_int_equal(testutil_core_reset("ce6", NULL, "32M"), 0);
    unsetenv("CEBOX_COMMIT_AHEAD");
    HANDLE h = HeapCreate(0, 0, 0);
    unsigned char *freed = HeapAlloc(h, 0, GROW_FROM);
    assert_ptr_equal(HeapReAlloc(h, 0, freed, GROW_FROM + GROW_BY), freed);
    write_past_committed_end(freed, GROW_FROM + GROW_BY);
    assert_true(HeapFree(h, 0, freed));
    expect_zeros_at(freed);
    unsigned char *moved = HeapAlloc(h, 0, GROW_FROM);
    assert_ptr_equal(HeapReAlloc(h, 0, moved, GROW_FROM + GROW_BY), moved);
    write_past_committed_end(moved, GROW_FROM + GROW_BY);
    unsigned char *to = HeapReAlloc(h, 0, moved, 2 * BLOCK);
    assert_non_null(to);
    assert_ptr_not_equal(to, moved);
    expect_zeros_at(moved);
    assert_true(HeapFree(h, 0, to));
    assert_true(HeapDestroy(h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_first_item_and_block_sizes, setup),
        cmocka_unit_test_setup(test_fresh_heap_commit_and_compact, setup),
        cmocka_unit_test_setup(test_rover_passes_over_a_hole_below_it, setup),
        cmocka_unit_test_setup(test_over_16k_gets_its_own_reservation, setup),
        cmocka_unit_test_setup(test_large_item_moves_its_pages, setup),
        cmocka_unit_test_setup(test_large_item_record_in_process_heap, setup),
        cmocka_unit_test_setup(test_later_region_header, setup),
        cmocka_unit_test_setup(test_region_records_are_pooled, setup),
        cmocka_unit_test_setup(test_record_pool_chunks_double, setup),
        cmocka_unit_test_setup(test_heap_create_in_a_full_slot, setup),
        cmocka_unit_test_setup(test_compact_decommits_above_last_busy_word, setup),
        cmocka_unit_test_setup(test_fixed_heap, setup),
        cmocka_unit_test_setup(test_realloc_in_place, setup),
        cmocka_unit_test_setup(test_errors, setup),
        cmocka_unit_test_setup(test_bookkeeping_failures_are_clean, setup),
        cmocka_unit_test_setup(test_commit_ahead_keeps_the_books_of_a_large_item, setup),
        cmocka_unit_test_setup(test_commit_ahead_stray_writes_of_a_large_item_vanish, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
