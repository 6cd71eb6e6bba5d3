/*
 * test_heap_ce3.c - the CE 3.0 heap (profile ce3) on scenarios read from
 * CE 3.0's FIXHEAP.C and LMEM.C (docs/heaps/ce3.md), through the public API.
 *
 * Each test starts from a fresh ce3 core (core_reset).  Offsets are checked
 * from a region's base, which is the first item's data address minus the
 * 8-byte header; committed pages through VirtualQuery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "core.h"
#include "testutil.h"

#define PAGE 4096u
#define REGION 0x60000u

static void fresh(const char *ram)
{
    assert_int_equal(testutil_core_reset("ce3", ram, NULL), 0);
    SetLastError(0);
}

static int setup(void **state)
{
    (void)state;
    fresh(NULL);
    return 0;
}

/* A device with less than 2 MB of free RAM. */
static int setup_low_ram(void **state)
{
    (void)state;
    fresh("2M");
    return 0;
}

/* Committed bytes from base on (one VirtualQuery run). */
static size_t committed_at(uintptr_t base)
{
    MEMORY_BASIC_INFORMATION mbi;
    assert_int_not_equal(VirtualQuery((void *)base, &mbi, sizeof mbi), 0);
    return mbi.State == MEM_COMMIT ? mbi.RegionSize : 0;
}

static DWORD state_at(uintptr_t addr)
{
    MEMORY_BASIC_INFORMATION mbi;
    assert_int_not_equal(VirtualQuery((void *)addr, &mbi, sizeof mbi), 0);
    return mbi.State;
}

/* Sizes round to 8; HeapCreate reserves nothing; the first allocation
 * reserves a region whose first item is at +8 (SetupFixedHeap). */
static void test_sizes_and_first_region(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0x10000, 0);
    assert_non_null(h);
    void *a = HeapAlloc(h, 0, 1);
    uintptr_t base = (uintptr_t)a - 8;
    assert_int_equal(base % 0x10000, 0);
    assert_int_equal(committed_at(base), PAGE); /* one page, not the initial size */
    assert_int_equal(HeapSize(h, 0, a), 8);
    void *b = HeapAlloc(h, 0, 9);
    assert_ptr_equal(b, (char *)a + 16);
    assert_int_equal(HeapSize(h, 0, b), 16);
    void *c = HeapAlloc(h, 0, 100);
    assert_ptr_equal(c, (char *)b + 24);
    assert_int_equal(HeapSize(h, 0, c), 104);
    void *z = HeapAlloc(h, 0, 0);
    assert_ptr_equal(z, (char *)c + 112);
    assert_int_equal(HeapSize(h, 0, z), 0);
    assert_true(HeapDestroy(h));
}

/* 100000 bytes stay in the region: pass 3 commits behind the free last
 * item, PAGEUP(100000 - 4096 + 8) more: 25 pages in all. */
static void test_pass3_commit(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    void *p = HeapAlloc(h, 0, 100000);
    assert_non_null(p);
    assert_int_equal(HeapSize(h, 0, p), 100000);
    assert_int_equal(committed_at((uintptr_t)p - 8), 25 * PAGE);
    HeapDestroy(h);
}

/* Rounded sizes from 0x30000 get their own reservation (no header),
 * HeapSize = the rounded size page-rounded; 0x2FFF8 stays in a region. */
static void test_large_items(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    void *small = HeapAlloc(h, 0, 0x2FFF8);
    assert_non_null(small);
    assert_int_not_equal((uintptr_t)small % 0x10000, 0);
    void *big = HeapAlloc(h, 0, 0x2FFF9); /* rounds to 0x30000 */
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 0x10000, 0);
    assert_int_equal(HeapSize(h, 0, big), 0x30000);
    void *odd = HeapAlloc(h, 0, 0x30001);
    assert_int_equal(HeapSize(h, 0, odd), 0x31000);
    assert_true(HeapFree(h, 0, big));
    assert_int_equal(state_at((uintptr_t)big), MEM_FREE);
    HeapDestroy(h);
}

/* A large item is one VirtualAlloc(MEM_RESERVE|MEM_COMMIT, PAGE_READWRITE)
 * (FIXHEAP.C's FixedHeapAlloc): never a reserve-only PAGE_NOACCESS request,
 * so one of 2 MB or more stays in the slot instead of going to the Large
 * Memory Area, and freeing it releases its blocks. */
static void test_large_item_stays_in_slot(void **state)
{
    (void)state;
    struct cebox_slot_info before, during;
    void *small = HeapAlloc(GetProcessHeap(), 0, 8); /* the region the record goes to */
    assert_non_null(small);
    cebox_slot_info(&before);
    void *big = HeapAlloc(GetProcessHeap(), 0, 6u << 20);
    assert_non_null(big);
    cebox_slot_info(&during);
    assert_true((uintptr_t)big - during.base < during.size);
    assert_int_equal(during.reserved_blocks, before.reserved_blocks + (6u << 20) / 0x10000);
    assert_int_equal(HeapSize(GetProcessHeap(), 0, big), 6u << 20);
    assert_true(HeapFree(GetProcessHeap(), 0, big));
    assert_int_equal(state_at((uintptr_t)big), MEM_FREE);
}

/* HeapFree of a freed block: FALSE with ERROR_INVALID_PARAMETER; HeapSize
 * of it: -1 without an error. */
static void test_double_free(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    void *p = HeapAlloc(h, 0, 40);
    HeapAlloc(h, 0, 40);
    assert_true(HeapFree(h, 0, p));
    SetLastError(0);
    assert_false(HeapFree(h, 0, p));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    SetLastError(0);
    assert_int_equal(HeapSize(h, 0, p), (SIZE_T)-1);
    assert_int_equal(GetLastError(), 0);
    HeapDestroy(h);
}

/* Every HeapReAlloc failure sets ERROR_NOT_ENOUGH_MEMORY, a bad pointer
 * included; a grow only takes the free items that follow. */
static void test_realloc_rules(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    char *a = HeapAlloc(h, 0, 16);
    char *b = HeapAlloc(h, 0, 16);
    SetLastError(0);
    assert_null(HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, a, 64));
    assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
    SetLastError(0);
    assert_null(HeapReAlloc(h, 0, a + 8, 8));
    assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
    assert_true(HeapFree(h, 0, b));
    /* b's item and the free tail behind it follow a: grow in place. */
    assert_ptr_equal(HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, a, 64), a);
    assert_int_equal(HeapSize(h, 0, a), 64);
    /* Shrink in place: the rest (more than a header) is split off. */
    assert_ptr_equal(HeapReAlloc(h, 0, a, 8), a);
    assert_int_equal(HeapSize(h, 0, a), 8);
    SetLastError(0);
    assert_null(HeapReAlloc(h, HEAP_GENERATE_EXCEPTIONS, a, 8));
    assert_int_equal(GetLastError(), ERROR_NOT_SUPPORTED);
    HeapDestroy(h);
}

/* A fresh heap holding, in its first region, an 8-byte item a, one of
 * middle bytes b and another 8-byte item c; base is the region's start. */
struct sandwich {
    HANDLE h;
    char *a, *b, *c;
    uintptr_t base;
};

static struct sandwich sandwich_of(size_t middle)
{
    struct sandwich s;
    s.h = HeapCreate(0, 0, 0);
    s.a = HeapAlloc(s.h, 0, 8);
    s.b = HeapAlloc(s.h, 0, middle);
    s.c = HeapAlloc(s.h, 0, 8);
    assert_non_null(s.c);
    s.base = (uintptr_t)s.a - 8;
    return s;
}

/* Freeing more than an eighth of the committed bytes (and six pages more
 * than at the last compaction) compacts the region: a free run followed by
 * a busy item keeps its partial pages and becomes a dead item over its
 * whole pages, decommitted; pass 2 commits them again. */
static void test_compaction_dead_block(void **state)
{
    (void)state;
    struct sandwich s = sandwich_of(100000);
    assert_int_equal(committed_at(s.base), 25 * PAGE);
    assert_true(HeapFree(s.h, 0, s.b));
    assert_int_equal(committed_at(s.base), PAGE); /* the dead pages follow */
    assert_int_equal(state_at(s.base + PAGE), MEM_RESERVE);
    assert_int_equal(HeapSize(s.h, 0, s.c), 8);
    assert_ptr_equal(HeapAlloc(s.h, 0, 50000), s.b); /* pass 2 joins free + dead */
    assert_true(HeapValidate(s.h, 0, NULL));
    HeapDestroy(s.h);
}

/* Freeing about three pages compacts only when the device has less than
 * 2 MB of free RAM (two pages more than at the last compaction instead of
 * six). */
static void free_three_pages(bool expect_compacted)
{
    struct sandwich s = sandwich_of(14000);
    assert_int_equal(committed_at(s.base), 4 * PAGE);
    assert_true(HeapFree(s.h, 0, s.b));
    assert_int_equal(committed_at(s.base), expect_compacted ? PAGE : 4 * PAGE);
    HeapDestroy(s.h);
}

static void test_compaction_threshold_normal_ram(void **state)
{
    (void)state;
    free_three_pages(false);
}

static void test_compaction_threshold_low_ram(void **state)
{
    (void)state;
    free_three_pages(true);
}

/* A run reaching the region's start and end: the region is released, and
 * the next allocation reserves one again. */
static void test_compaction_releases_region(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    char *b = HeapAlloc(h, 0, 100000);
    uintptr_t base = (uintptr_t)b - 8;
    assert_true(HeapFree(h, 0, b));
    assert_int_equal(state_at(base), MEM_FREE);
    assert_ptr_equal(HeapAlloc(h, 0, 8), b);
    assert_int_equal(committed_at(base), PAGE);
    assert_true(HeapValidate(h, 0, NULL));
    HeapDestroy(h);
}

/* A full region: a growth region holds the item first, its descriptor
 * second. */
static void test_growth_region(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    void *first = HeapAlloc(h, 0, 0x2F000);
    void *second = HeapAlloc(h, 0, 0x2F000);
    assert_non_null(first);
    assert_non_null(second);
    assert_ptr_equal(second, (char *)first + 0x2F008);
    void *third = HeapAlloc(h, 0, 0x2F000);
    assert_non_null(third);
    assert_int_equal(((uintptr_t)third - 8) % 0x10000, 0); /* first item of a new region */
    void *next = HeapAlloc(h, 0, 8); /* the descriptor took +0x2F008 */
    assert_true(HeapValidate(h, 0, NULL));
    assert_non_null(next);
    HeapDestroy(h);
}

/* No HeapCompact in CE 3.0: 0 and ERROR_CALL_NOT_IMPLEMENTED. */
static void test_no_heap_compact(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    HeapAlloc(h, 0, 10);
    SetLastError(0);
    assert_int_equal(HeapCompact(h, 0), 0);
    assert_int_equal(GetLastError(), 120);
    HeapDestroy(h);
}

/* HeapCreate's descriptor is a 52-byte item of the process heap: its
 * handle lies in the process heap's region, 56 bytes and a header per heap. */
static void test_descriptor_in_process_heap(void **state)
{
    (void)state;
    HANDLE h1 = HeapCreate(0, 0, 0);
    HANDLE h2 = HeapCreate(HEAP_NO_SERIALIZE, 0, 0x1000);
    assert_ptr_equal((char *)h2, (char *)h1 + 64);
    assert_int_equal(((uintptr_t)h1 - 8) % 0x10000, 0);
    SetLastError(0);
    assert_null(HeapCreate(HEAP_ZERO_MEMORY, 0, 0));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    /* A maximum size is ignored: the heap grows past it. */
    assert_non_null(HeapAlloc(h2, 0, 0x8000));
    assert_true(HeapDestroy(h1));
    assert_true(HeapDestroy(h2));
}

/* CE's own structures are not the program's blocks: a created heap's
 * descriptor (an item of the process heap) and a large item's record are
 * refused (CE would free them and corrupt the heap; docs/heaps/ce3.md §17). */
static void test_descriptors_are_not_blocks(void **state)
{
    (void)state;
    HANDLE h = HeapCreate(0, 0, 0);
    SetLastError(0);
    assert_false(HeapFree(GetProcessHeap(), 0, h));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    assert_int_equal(HeapSize(GetProcessHeap(), 0, h), (SIZE_T)-1);
    char *small = HeapAlloc(h, 0, 8);
    void *big = HeapAlloc(h, 0, 0x40000);
    assert_non_null(big);
    char *record = small + 16; /* the next item: the large item's record */
    assert_false(HeapFree(h, 0, record));
    assert_non_null(HeapAlloc(h, 0, 8));
    assert_true(HeapFree(h, 0, big));
    assert_true(HeapValidate(h, 0, NULL));
    assert_true(HeapValidate(GetProcessHeap(), 0, NULL));
    assert_true(HeapDestroy(h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sizes_and_first_region, setup),
        cmocka_unit_test_setup(test_pass3_commit, setup),
        cmocka_unit_test_setup(test_large_items, setup),
        cmocka_unit_test_setup(test_large_item_stays_in_slot, setup),
        cmocka_unit_test_setup(test_double_free, setup),
        cmocka_unit_test_setup(test_realloc_rules, setup),
        cmocka_unit_test_setup(test_compaction_dead_block, setup),
        cmocka_unit_test_setup(test_compaction_releases_region, setup),
        cmocka_unit_test_setup(test_compaction_threshold_normal_ram, setup),
        cmocka_unit_test_setup(test_compaction_threshold_low_ram, setup_low_ram),
        cmocka_unit_test_setup(test_growth_region, setup),
        cmocka_unit_test_setup(test_no_heap_compact, setup),
        cmocka_unit_test_setup(test_descriptor_in_process_heap, setup),
        cmocka_unit_test_setup(test_descriptors_are_not_blocks, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
