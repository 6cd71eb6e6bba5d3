/*
 * test_winapi.c - conformance of the VirtualAlloc family with CE, through
 * the public API (the code real programs run through).
 *
 * Each test starts from a fresh slot built from the CEBOX_* variables it
 * sets (core_reset), so tests do not see each other's reservations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <signal.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "core.h"
#include "testutil.h"

#define PAGE 4096u
#define BLOCK 0x10000u
#define MB (1024u * 1024u)

static void fresh(const char *profile, const char *ram)
{
    assert_int_equal(testutil_core_reset(profile, ram, NULL), 0);
    SetLastError(0);
}

static int setup_ce5(void **state)
{
    (void)state;
    fresh("ce5", NULL);
    return 0;
}

static int setup_ce3(void **state)
{
    (void)state;
    fresh("ce3", NULL);
    return 0;
}

static int setup_ce6(void **state)
{
    (void)state;
    fresh("ce6", NULL);
    return 0;
}

static uintptr_t slot_start(void)
{
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    return info.base;
}

static bool in_slot(const void *p)
{
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    return (uintptr_t)p >= info.base && (uintptr_t)p < info.base + info.size;
}

static size_t avail_phys(void)
{
    MEMORYSTATUS ms;
    GlobalMemoryStatus(&ms);
    return ms.dwAvailPhys;
}

/* Asserts the thread's last error (at the caller's line) and clears it. */
#define expect_error(err)                       \
    do {                                        \
        assert_int_equal(GetLastError(), err);  \
        SetLastError(0);                        \
    } while (0)

/* ---- the seeds' loops ---- */

static void test_512_one_page_allocations_run_out(void **state)
{
    (void)state;
    void *got[512];
    int n = 0;
    for (int i = 0; i < 512; i++) {
        char *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        if (p == NULL) {
            break;
        }
        assert_true(in_slot(p));
        assert_int_equal((uintptr_t)p % BLOCK, 0);
        assert_true((uintptr_t)p >= slot_start() + BLOCK); /* never block 0 */
        p[PAGE - 1] = 1;
        got[n++] = p;
    }
    assert_true(n < 512);
    assert_int_equal(n, 511); /* nothing else lives in this slot */
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    /* First fit from the lowest block: they come in address order. */
    for (int i = 1; i < n; i++) {
        assert_int_equal((uintptr_t)got[i] - (uintptr_t)got[i - 1], BLOCK);
    }
    for (int i = 0; i < n; i++) {
        assert_true(VirtualFree(got[i], 0, MEM_RELEASE));
    }
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    assert_int_equal(info.free_blocks, 511);
    assert_int_equal(info.committed_bytes, 0);
    assert_int_equal(info.peak_reserved_blocks, 511);
}

/* 512 pages are 2 MB: with PAGE_NOACCESS that reservation is a Large
 * Memory Area one on ce5, so reserve with PAGE_READWRITE to stay in the slot. */
static void reserve_then_commit_each(DWORD reserve_prot, bool expect_in_slot)
{
    char *base = VirtualAlloc(NULL, 512 * PAGE, MEM_RESERVE, reserve_prot);
    assert_non_null(base);
    assert_int_equal(in_slot(base), expect_in_slot);
    for (unsigned i = 0; i < 512; i++) {
        char *p = VirtualAlloc(base + i * PAGE, PAGE, MEM_COMMIT, PAGE_READWRITE);
        assert_ptr_equal(p, base + i * PAGE);
        p[0] = (char)i;
    }
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    assert_int_equal(info.reserved_blocks, expect_in_slot ? 32 : 0);
    assert_int_equal(info.committed_bytes, 512 * PAGE);
    assert_int_equal(base[5 * PAGE], 5);
    assert_true(VirtualFree(base, 0, MEM_RELEASE));
}

static void test_reserve_512_pages_then_commit_each(void **state)
{
    (void)state;
    reserve_then_commit_each(PAGE_READWRITE, true);
    reserve_then_commit_each(PAGE_NOACCESS, false);
}

/* ---- Large Memory Area ---- */

static void test_large_reserve_goes_outside_the_slot(void **state)
{
    (void)state;
    char *big = VirtualAlloc(NULL, 64 * MB, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(big);
    assert_false(in_slot(big));
    assert_int_equal((uintptr_t)big % BLOCK, 0);
    char *p = VirtualAlloc(big + 10 * MB, PAGE, MEM_COMMIT, PAGE_READWRITE);
    assert_ptr_equal(p, big + 10 * MB);
    p[100] = 7;
    assert_int_equal(p[100], 7);
    assert_true(access_faults(big, true)); /* still only reserved */

    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(p, &m, sizeof m), sizeof m);
    assert_ptr_equal(m.AllocationBase, big);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.RegionSize, PAGE);

    /* The slot did not lose a block to it. */
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    assert_int_equal(info.reserved_blocks, 0);

    /* Same size with MEM_COMMIT must fit in the 32 MB slot: CE refuses any
     * request of 32 MB or more outright. */
    assert_null(VirtualAlloc(NULL, 64 * MB, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Just under the slot but with no run that long: out of memory. */
    assert_null(VirtualAlloc(NULL, 32 * MB - BLOCK / 2, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);

    /* Partly committed: released all the same (the slot's mixed-state rule
     * is not the mapper's), its RAM given back. */
    assert_true(VirtualFree(big, 0, MEM_RELEASE));
    assert_int_equal(avail_phys(), 64 * MB);
    assert_int_equal(VirtualQuery(big, &m, sizeof m), 0);
    expect_error(ERROR_INVALID_PARAMETER);
}

/* CE 5 mapfile.c (CloseHugeMemoryAreas): a Large Memory Area region is
 * released only through its exact base, whatever its pages' states. */
static void test_lma_release_needs_the_exact_base(void **state)
{
    (void)state;
    size_t ram = avail_phys();
    char *big = VirtualAlloc(NULL, 4 * MB, MEM_RESERVE, PAGE_NOACCESS);
    assert_false(in_slot(big));
    assert_false(VirtualFree(big + 100, 0, MEM_RELEASE)); /* first page, not the base */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(big + MB, 0, MEM_RELEASE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(big, PAGE, MEM_RELEASE));
    expect_error(ERROR_INVALID_PARAMETER);
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(big, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_RESERVE); /* still there */
    assert_non_null(VirtualAlloc(big, PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_non_null(VirtualAlloc(big + 3 * MB, 2 * PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_int_equal(avail_phys(), ram - 3 * PAGE);
    assert_true(VirtualFree(big, 0, MEM_RELEASE));
    assert_int_equal(avail_phys(), ram);
    assert_int_equal(VirtualQuery(big, &m, sizeof m), 0);
    expect_error(ERROR_INVALID_PARAMETER);
}

static void test_lma_needs_exact_conditions(void **state)
{
    (void)state;
    /* Just under 2 MB: in the slot (32 blocks). */
    void *a = VirtualAlloc(NULL, 2 * MB - PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_true(in_slot(a));
    /* 2 MB but PAGE_READWRITE protection: in the slot. */
    void *b = VirtualAlloc(NULL, 2 * MB, MEM_RESERVE, PAGE_READWRITE);
    assert_true(in_slot(b));
    /* 2 MB reserve-only, NOACCESS: outside. */
    void *c = VirtualAlloc(NULL, 2 * MB, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(c);
    assert_false(in_slot(c));
    assert_true(VirtualFree(a, 0, MEM_RELEASE));
    assert_true(VirtualFree(b, 0, MEM_RELEASE));
    assert_true(VirtualFree(c, 0, MEM_RELEASE));
}

/* A reservation whose page count does not fit the page array's 32-bit
 * index (16 TB and more): refused as the host would refuse it, never
 * reserved at the truncated size. */
static void test_lma_beyond_the_page_index(void **state)
{
    (void)state;
    size_t huge = ((size_t)1 << 44) + 2 * MB;
    assert_null(VirtualAlloc(NULL, huge, MEM_RESERVE, PAGE_NOACCESS));
    expect_error(ERROR_OUTOFMEMORY);
    assert_null(VirtualAlloc(NULL, (size_t)1 << 44, MEM_RESERVE, PAGE_NOACCESS));
    expect_error(ERROR_OUTOFMEMORY);
}

static void test_ce6_has_no_large_memory_area(void **state)
{
    (void)state;
    void *big = VirtualAlloc(NULL, 64 * MB, MEM_RESERVE, PAGE_NOACCESS);
    assert_true(in_slot(big));
    void *both = VirtualAlloc(NULL, 64 * MB, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_true(in_slot(both));
    assert_true(VirtualFree(big, 0, MEM_RELEASE));
    assert_true(VirtualFree(both, 0, MEM_RELEASE));
}

/* ---- VirtualQuery: the seed's example scaled to 4 KB pages ---- */

static void test_virtual_query_seed_example(void **state)
{
    (void)state;
    char *base = VirtualAlloc(NULL, 16 * PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(base);
    assert_ptr_equal(VirtualAlloc(base + 2 * PAGE, 9 * PAGE, MEM_COMMIT, PAGE_READWRITE),
                     base + 2 * PAGE);
    MEMORY_BASIC_INFORMATION m;

    assert_int_equal(VirtualQuery(base + 4 * PAGE + 123, &m, sizeof m), sizeof m);
    assert_ptr_equal(m.BaseAddress, base + 4 * PAGE);
    assert_ptr_equal(m.AllocationBase, base);
    assert_int_equal(m.AllocationProtect, PAGE_NOACCESS);
    assert_int_equal(m.RegionSize, 7 * PAGE);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.Protect, PAGE_READWRITE);
    assert_int_equal(m.Type, MEM_PRIVATE);

    /* The reserved run before it ... */
    assert_int_equal(VirtualQuery(base, &m, sizeof m), sizeof m);
    assert_ptr_equal(m.BaseAddress, base);
    assert_int_equal(m.RegionSize, 2 * PAGE);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_int_equal(m.Protect, PAGE_NOACCESS);
    assert_int_equal(m.Type, MEM_PRIVATE);

    /* ... and after it, up to the end of the reservation. */
    assert_int_equal(VirtualQuery(base + 11 * PAGE, &m, sizeof m), sizeof m);
    assert_int_equal(m.RegionSize, 5 * PAGE);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_ptr_equal(m.AllocationBase, base);

    /* Free space after the reservation: the rest of the slot. */
    assert_int_equal(VirtualQuery(base + BLOCK, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_FREE);
    assert_null(m.AllocationBase);
    assert_int_equal(m.AllocationProtect, PAGE_NOACCESS);
    assert_int_equal(m.Protect, PAGE_NOACCESS);
    assert_int_equal(m.Type, 0);
    assert_int_equal((uintptr_t)m.BaseAddress + m.RegionSize, slot_start() + 32 * MB);

    /* Different protections split a committed run. */
    DWORD old;
    assert_true(VirtualProtect(base + 5 * PAGE, PAGE, PAGE_READONLY, &old));
    assert_int_equal(old, PAGE_READWRITE);
    assert_int_equal(VirtualQuery(base + 2 * PAGE, &m, sizeof m), sizeof m);
    assert_int_equal(m.RegionSize, 3 * PAGE);
    assert_int_equal(VirtualQuery(base + 5 * PAGE, &m, sizeof m), sizeof m);
    assert_int_equal(m.RegionSize, PAGE);
    assert_int_equal(m.Protect, PAGE_READONLY);

    assert_true(VirtualFree(base + 2 * PAGE, 9 * PAGE, MEM_DECOMMIT));
    assert_true(VirtualFree(base, 0, MEM_RELEASE));
}

static void test_virtual_query_errors(void **state)
{
    (void)state;
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery((void *)(slot_start() + BLOCK), &m, sizeof m - 1), 0);
    expect_error(ERROR_BAD_LENGTH);
    assert_int_equal(VirtualQuery((void *)(slot_start() + BLOCK), NULL, sizeof m), 0);
    expect_error(ERROR_BAD_LENGTH);
    assert_int_equal(VirtualQuery(&m, &m, sizeof m), 0); /* the stack: not in the slot */
    expect_error(ERROR_INVALID_PARAMETER);
    /* Pages past a reservation's end in its last block read as free, and
     * the free run goes on over the free blocks after it ... */
    char *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE, PAGE_NOACCESS);
    char *q = VirtualAlloc(NULL, PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_ptr_equal(q, p + BLOCK);
    assert_int_equal(VirtualQuery(p + PAGE, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_FREE);
    assert_null(m.AllocationBase);
    assert_int_equal(m.RegionSize, BLOCK - PAGE); /* ... up to the next reservation */
    assert_int_equal(VirtualQuery(q + 3 * PAGE + 5, &m, sizeof m), sizeof m);
    assert_int_equal((uintptr_t)m.BaseAddress + m.RegionSize, slot_start() + 32 * MB);
    /* ... yet those pages can never be committed. */
    assert_null(VirtualAlloc(p + PAGE, PAGE, MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(p, 2 * PAGE, MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Block 0 reads as free and is never handed out. */
    assert_int_equal(VirtualQuery((void *)(slot_start() + 5), &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_FREE);
    assert_int_equal(m.RegionSize, BLOCK);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    assert_true(VirtualFree(q, 0, MEM_RELEASE));
}

/* ---- argument checks ---- */

static void test_size_zero_and_bad_flags(void **state)
{
    (void)state;
    assert_null(VirtualAlloc(NULL, 0, MEM_RESERVE, PAGE_NOACCESS));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, PAGE, 0, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, PAGE, MEM_TOP_DOWN, PAGE_READWRITE)); /* neither */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_MAPPED | MEM_IMAGE, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_AUTO_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_NOT_SUPPORTED);
    assert_null(VirtualAlloc(NULL, (SIZE_T)3 << 30, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, 32 * MB, MEM_RESERVE, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Nothing was reserved by any of these. */
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    assert_int_equal(info.reserved_blocks, 0);

    /* A commit without an address is a reserve and commit. */
    char *p = VirtualAlloc(NULL, PAGE, MEM_COMMIT, PAGE_READWRITE);
    assert_true(in_slot(p));
    p[0] = 1;
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    /* Unknown type bits are ignored, as the CE kernel does. */
    p = VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_RESET, PAGE_NOACCESS);
    assert_true(in_slot(p));
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

static void test_protection_arguments(void **state)
{
    (void)state;
    /* VirtualAlloc reports WRITECOPY as 87 on CE 4.2/5 (VirtualProtect keeps 50). */
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_WRITECOPY));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_EXECUTE_WRITECOPY));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_NOACCESS | PAGE_GUARD));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE | PAGE_READONLY));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, 0));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Modifiers on an accessible protection are accepted. */
    char *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE | PAGE_NOCACHE);
    assert_non_null(p);
    p[0] = 1;
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(p, &m, sizeof m), sizeof m);
    assert_int_equal(m.Protect, PAGE_READWRITE | PAGE_NOCACHE);
    /* PAGE_EXECUTE reads back as PAGE_EXECUTE_READ. */
    DWORD old;
    assert_true(VirtualProtect(p, PAGE, PAGE_EXECUTE, &old));
    assert_int_equal(old, PAGE_READWRITE | PAGE_NOCACHE);
    assert_int_equal(VirtualQuery(p, &m, sizeof m), sizeof m);
    assert_int_equal(m.Protect, PAGE_EXECUTE_READ);
    assert_int_equal(p[0], 1);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

static void test_ce3_keeps_not_supported_for_writecopy(void **state)
{
    (void)state;
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_WRITECOPY));
    expect_error(ERROR_NOT_SUPPORTED);
}

static void test_reserve_at_an_address(void **state)
{
    (void)state;
    uintptr_t want = slot_start() + 100 * BLOCK;
    char *p = VirtualAlloc((void *)(want + 0x1234), PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_ptr_equal(p, (void *)want); /* rounded down to 64 KB */
    /* Any used block in range: refused. */
    assert_null(VirtualAlloc((void *)(want - BLOCK), 2 * BLOCK, MEM_RESERVE, PAGE_NOACCESS));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc((void *)want, PAGE, MEM_RESERVE, PAGE_NOACCESS));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Block 0 and addresses outside the slot: refused (the slot's base
     * itself means no address: test_slot_base_means_no_address). */
    assert_null(VirtualAlloc((void *)(slot_start() + PAGE), PAGE, MEM_RESERVE, PAGE_NOACCESS));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc((void *)(slot_start() + 32 * MB), PAGE, MEM_RESERVE, PAGE_NOACCESS));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc((void *)(slot_start() + 32 * MB - BLOCK), 2 * BLOCK, MEM_RESERVE,
                             PAGE_NOACCESS));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Reserve and commit at an address: the reservation starts at the 64 KB
     * boundary below it and every page from there is committed. */
    char *q = VirtualAlloc((void *)(want + 3 * BLOCK + 2 * PAGE), PAGE, MEM_RESERVE | MEM_COMMIT,
                           PAGE_READWRITE);
    assert_ptr_equal(q, (void *)(want + 3 * BLOCK));
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(q, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.RegionSize, 3 * PAGE);
    assert_int_equal(VirtualQuery(q + 3 * PAGE, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_FREE);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    assert_true(VirtualFree(q, 0, MEM_RELEASE)); /* wholly committed: released */
}

/* Only CE 3.0 honours MEM_TOP_DOWN for applications; CE 4.2/5 and 6 drop it. */
static void test_top_down_on_ce3(void **state)
{
    (void)state;
    char *low = VirtualAlloc(NULL, PAGE, MEM_RESERVE, PAGE_NOACCESS);
    char *top = VirtualAlloc(NULL, 2 * BLOCK, MEM_RESERVE | MEM_TOP_DOWN, PAGE_NOACCESS);
    assert_ptr_equal(low, (void *)(slot_start() + BLOCK));
    assert_ptr_equal(top, (void *)(slot_start() + 32 * MB - 2 * BLOCK));
    assert_true(VirtualFree(low, 0, MEM_RELEASE));
    assert_true(VirtualFree(top, 0, MEM_RELEASE));
}

/* CE 3.0 VIRTMEM.C tests MEM_TOP_DOWN before the Large Memory Area rule:
 * a top-down reserve of 2 MB or more stays in the slot, at its top. */
static void test_ce3_top_down_before_the_lma(void **state)
{
    (void)state;
    char *p = VirtualAlloc(NULL, 2 * MB, MEM_RESERVE | MEM_TOP_DOWN, PAGE_NOACCESS);
    assert_ptr_equal(p, (void *)(slot_start() + 30 * MB));
    char *q = VirtualAlloc(NULL, 2 * MB, MEM_RESERVE, PAGE_NOACCESS); /* no TOP_DOWN: the LMA */
    assert_non_null(q);
    assert_false(in_slot(q));
    /* Over the slot's size with TOP_DOWN: the size check of that path, 87. */
    assert_null(VirtualAlloc(NULL, 32 * MB + PAGE, MEM_RESERVE | MEM_TOP_DOWN, PAGE_NOACCESS));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    assert_true(VirtualFree(q, 0, MEM_RELEASE));
}

/* CE 3.0 refuses only sizes over 32 MB with 87; exactly 32 MB finds no run
 * of blocks (block 0 is never free): ERROR_NOT_ENOUGH_MEMORY.  CE 5 refuses
 * 32 MB itself (DoVirtualAlloc: cbSize >= 1 << VA_SECTION). */
static void test_exactly_the_slot_size(void **state)
{
    (void)state;
    bool ce3 = strcmp(core_get()->settings.profile->name, "ce3") == 0;
    assert_null(VirtualAlloc(NULL, 32 * MB, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
    expect_error(ce3 ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, 32 * MB, MEM_RESERVE | MEM_TOP_DOWN, PAGE_READWRITE));
    expect_error(ce3 ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc(NULL, 32 * MB + PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Reserve-only and PAGE_NOACCESS: the Large Memory Area takes it. */
    void *lma = VirtualAlloc(NULL, 32 * MB, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(lma);
    assert_false(in_slot(lma));
    assert_true(VirtualFree(lma, 0, MEM_RELEASE));
}

/* The ACCESS_DENIED rule for free space ("ROM") is CE 4.2/5's; CE 3.0's
 * VirtualProtect finds no region there: 87. */
static void test_ce3_protect_over_free_space(void **state)
{
    (void)state;
    DWORD old = 0;
    char *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_false(VirtualProtect(p + BLOCK, PAGE, PAGE_READWRITE, &old));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualProtect((void *)slot_start(), PAGE, PAGE_EXECUTE_READWRITE, &old));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualProtect(p, 2 * PAGE, PAGE_READWRITE, &old)); /* runs into free space */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_true(VirtualProtect(p, PAGE, PAGE_READONLY, &old));
    assert_int_equal(old, PAGE_READWRITE);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

/* The slot's base as lpAddress is "no address" (CE 3.0: the address has no
 * bits inside the section; CE 5: its slot-0 alias is 0): first fit, or the
 * Large Memory Area.  A commit there still names block 0: 87. */
static void test_slot_base_means_no_address(void **state)
{
    (void)state;
    void *base = (void *)slot_start();
    char *p = VirtualAlloc(base, PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_ptr_equal(p, (char *)base + BLOCK);
    char *q = VirtualAlloc(base, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_ptr_equal(q, (char *)base + 2 * BLOCK);
    q[0] = 1;
    void *lma = VirtualAlloc(base, 2 * MB, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(lma);
    assert_false(in_slot(lma));
    assert_null(VirtualAlloc(base, PAGE, MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_null(VirtualAlloc((char *)base + PAGE, PAGE, MEM_RESERVE, PAGE_NOACCESS));
    expect_error(ERROR_INVALID_PARAMETER); /* an address in block 0 is one */
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    assert_true(VirtualFree(q, 0, MEM_RELEASE));
    assert_true(VirtualFree(lma, 0, MEM_RELEASE));
}

static void test_top_down_ignored(void **state)
{
    (void)state;
    char *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_TOP_DOWN, PAGE_NOACCESS);
    assert_ptr_equal(p, (void *)(slot_start() + BLOCK));
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    /* TOP_DOWN does not stop a reserve-only request from reaching the LMA. */
    p = VirtualAlloc(NULL, 4 * MB, MEM_RESERVE | MEM_TOP_DOWN, PAGE_NOACCESS);
    assert_non_null(p);
    assert_int_equal(in_slot(p), !core_get()->settings.large_memory_area);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

/* ---- commit rules ---- */

static void test_commit_must_stay_in_one_reservation(void **state)
{
    (void)state;
    char *a = VirtualAlloc(NULL, BLOCK, MEM_RESERVE, PAGE_NOACCESS);
    char *b = VirtualAlloc(NULL, BLOCK, MEM_RESERVE, PAGE_NOACCESS);
    assert_ptr_equal(b, a + BLOCK);
    assert_null(VirtualAlloc(a + BLOCK - PAGE, 2 * PAGE, MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Commit in free space: refused. */
    assert_null(VirtualAlloc(b + BLOCK, PAGE, MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Commit rounds to pages: 2 bytes across a page boundary = 2 pages. */
    char *c = VirtualAlloc(a + PAGE - 1, 2, MEM_COMMIT, PAGE_READWRITE);
    assert_ptr_equal(c, a);
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(a, &m, sizeof m), sizeof m);
    assert_int_equal(m.RegionSize, 2 * PAGE);
    assert_true(VirtualFree(a, 2 * PAGE, MEM_DECOMMIT));
    assert_true(VirtualFree(a, 0, MEM_RELEASE));
    assert_true(VirtualFree(b, 0, MEM_RELEASE));
}

static void test_commits_read_zero_and_recommit_keeps_data(void **state)
{
    (void)state;
    unsigned char *p = VirtualAlloc(NULL, 4 * PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_true(all_zero(p, 4 * PAGE));
    memset(p, 0xAB, 4 * PAGE);
    /* Re-committing a committed page keeps its data and sets protection. */
    assert_ptr_equal(VirtualAlloc(p, PAGE, MEM_COMMIT, PAGE_READONLY), p);
    assert_int_equal(p[10], 0xAB);
    assert_true(access_faults((char *)p, true));
    assert_false(access_faults((char *)p + PAGE, true));
    /* Decommit then commit again: zeros. */
    assert_true(VirtualFree(p + PAGE, 2 * PAGE, MEM_DECOMMIT));
    assert_true(access_faults((char *)p + PAGE, false));
    assert_ptr_equal(VirtualAlloc(p + PAGE, 2 * PAGE, MEM_COMMIT, PAGE_READWRITE), p + PAGE);
    assert_true(all_zero(p + PAGE, 2 * PAGE));
    assert_int_equal(p[3 * PAGE], 0xAB);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    assert_true(access_faults((char *)p + 3 * PAGE, false));
}

static void test_reserved_pages_fault(void **state)
{
    (void)state;
    char *p = VirtualAlloc(NULL, 2 * PAGE, MEM_RESERVE, PAGE_READWRITE);
    assert_true(access_faults(p, true));
    assert_true(access_faults(p, false));
    assert_ptr_equal(VirtualAlloc(p, PAGE, MEM_COMMIT, PAGE_READWRITE), p);
    assert_false(access_faults(p, true));
    assert_true(access_faults(p + PAGE, true));
    assert_true(VirtualFree(p, PAGE, MEM_DECOMMIT));
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

/* ---- VirtualFree rules ---- */

static void test_release_rules(void **state)
{
    (void)state;
    char *p = VirtualAlloc(NULL, 4 * PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_false(VirtualFree(p, PAGE, MEM_RELEASE)); /* size must be 0 */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(p + PAGE, 0, MEM_RELEASE)); /* not the first page */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(NULL, 0, MEM_RELEASE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(p, 0, MEM_RELEASE | MEM_DECOMMIT));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(p, 0, 0));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(p, 0, MEM_DECOMMIT)); /* decommit needs a size */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(p, 5 * PAGE, MEM_DECOMMIT)); /* beyond the region */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_true(VirtualFree(p, 4 * PAGE, MEM_DECOMMIT)); /* nothing committed: fine */

    /* Partly committed: refused on ce5; wholly committed: released. */
    assert_non_null(VirtualAlloc(p, PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_false(VirtualFree(p, 0, MEM_RELEASE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_non_null(VirtualAlloc(p, 4 * PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_true(VirtualFree(p + 100, 0, MEM_RELEASE)); /* any address in the first page */
    /* Released: a second release and a decommit fail. */
    assert_false(VirtualFree(p, 0, MEM_RELEASE));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(p, PAGE, MEM_DECOMMIT));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualFree(&p, 0, MEM_RELEASE)); /* not cebox memory */
    expect_error(ERROR_INVALID_PARAMETER);
}

static void test_ce6_releases_mixed_regions(void **state)
{
    (void)state;
    char *p = VirtualAlloc(NULL, 4 * PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(VirtualAlloc(p, PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    assert_int_equal(info.committed_bytes, 0);
}

/* ---- VirtualProtect ---- */

static void test_virtual_protect(void **state)
{
    (void)state;
    char *p = VirtualAlloc(NULL, 3 * PAGE, MEM_RESERVE, PAGE_NOACCESS);
    DWORD old = 0;
    assert_false(VirtualProtect(p, PAGE, PAGE_READONLY, &old)); /* not committed */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_non_null(VirtualAlloc(p, 2 * PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_false(VirtualProtect(p, 3 * PAGE, PAGE_READONLY, &old)); /* third page reserved */
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualProtect(p, PAGE, PAGE_READONLY, NULL));
    expect_error(ERROR_INVALID_PARAMETER);
    /* Writable protection on free space is "ROM": access denied; read-only: 87. */
    assert_false(VirtualProtect(p + BLOCK, PAGE, PAGE_READWRITE, &old));
    expect_error(ERROR_ACCESS_DENIED);
    assert_false(VirtualProtect(p + BLOCK, PAGE, PAGE_READONLY, &old));
    expect_error(ERROR_INVALID_PARAMETER);
    assert_false(VirtualProtect((void *)slot_start(), PAGE, PAGE_EXECUTE_READWRITE, &old));
    expect_error(ERROR_ACCESS_DENIED);
    assert_false(VirtualProtect(p, PAGE, PAGE_WRITECOPY, &old));
    expect_error(ERROR_NOT_SUPPORTED);
    assert_false(VirtualProtect(p, 0, PAGE_READONLY, &old));
    expect_error(ERROR_INVALID_PARAMETER);
    p[0] = 5;
    assert_true(VirtualProtect(p, 2 * PAGE, PAGE_READONLY, &old));
    assert_int_equal(old, PAGE_READWRITE);
    assert_int_equal(p[0], 5);
    assert_true(access_faults(p, true));
    assert_false(access_faults(p, false));
    assert_true(VirtualProtect(p, PAGE, PAGE_NOACCESS, &old));
    assert_int_equal(old, PAGE_READONLY);
    assert_true(access_faults(p, false));
    assert_true(VirtualProtect(p + PAGE, PAGE, PAGE_READWRITE | PAGE_GUARD, &old));
    assert_true(access_faults(p + PAGE, false));
    assert_true(VirtualProtect(p, 2 * PAGE, PAGE_READWRITE, &old));
    assert_int_equal(old, PAGE_NOACCESS);
    assert_int_equal(p[0], 5); /* protection changes never lose data */
    assert_true(VirtualFree(p, 2 * PAGE, MEM_DECOMMIT));
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

/* ---- RAM and status ---- */

static size_t avail_pages(void)
{
    return avail_phys() / PAGE;
}

/* A 1 MB device (256 pages) with the CE 5 table: low under 32 free pages,
 * critical under 20, caps of 4 and 2 pages, and the kernel's 15-page floor. */
static void test_commit_fails_without_ram(void **state)
{
    (void)state;
    fresh("ce5", "1M");
    char *p = VirtualAlloc(NULL, 257 * PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_null(p);
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    assert_int_equal(info.reserved_blocks, 0); /* the reservation was undone */
    /* Everything down to the low threshold in one commit: allowed. */
    p = VirtualAlloc(NULL, 224 * PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_non_null(p);
    assert_int_equal(avail_pages(), 32);
    MEMORYSTATUS ms;
    GlobalMemoryStatus(&ms);
    assert_int_equal(ms.dwMemoryLoad, 88); /* 87.5 % used: CE rounds up */
    /* Past it, a commit larger than 4 pages fails though RAM remains ... */
    char *q = VirtualAlloc(NULL, 32 * PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_null(VirtualAlloc(q, 5 * PAGE, MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    /* ... 4 pages succeed ... */
    assert_non_null(VirtualAlloc(q, 4 * PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_int_equal(avail_pages(), 28);
    /* ... and single pages go on until 15 would be left. */
    size_t got = 0;
    while (VirtualAlloc(q + (4 + got) * PAGE, PAGE, MEM_COMMIT, PAGE_READWRITE) != NULL) {
        got++;
    }
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    assert_int_equal(got, 13);
    assert_int_equal(avail_pages(), 15);
    /* Decommit gives RAM back. */
    assert_true(VirtualFree(p, PAGE, MEM_DECOMMIT));
    assert_non_null(VirtualAlloc(q + 4 * PAGE + got * PAGE, PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_int_equal(avail_pages(), 15);
    fresh("ce5", NULL);
}

/* Forcing a state pins free RAM just inside it: 20 KB fails in low while
 * 4 KB succeeds; 12 KB fails in critical. */
static void test_forced_states_cap_commits(void **state)
{
    (void)state;
    setenv("CEBOX_THRESHOLDS", "ppc", 1);
    setenv("CEBOX_STATE", "low", 1);
    fresh("ce5", NULL);
    assert_int_equal(avail_pages(), 23);
    assert_null(VirtualAlloc(NULL, 20 * 1024, MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    void *p = VirtualAlloc(NULL, 4 * 1024, MEM_COMMIT, PAGE_READWRITE);
    assert_non_null(p);
    setenv("CEBOX_STATE", "critical", 1);
    fresh("ce5", NULL);
    assert_null(VirtualAlloc(NULL, 12 * 1024, MEM_COMMIT, PAGE_READWRITE));
    expect_error(ERROR_NOT_ENOUGH_MEMORY);
    unsetenv("CEBOX_STATE");
    unsetenv("CEBOX_THRESHOLDS");
    fresh("ce5", NULL);
}

static void test_system_info_and_memory_status(void **state)
{
    (void)state;
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    assert_int_equal(si.dwPageSize, 4096);
    assert_int_equal(si.dwAllocationGranularity, 0x10000);
    assert_ptr_equal(si.lpMinimumApplicationAddress, (void *)(slot_start() + 0x10000));
    /* CE's 0x7FFFFFFF (the top of the 2 GB user space, beyond the slot), in
     * the slot's coordinates like the minimum. */
    assert_ptr_equal(si.lpMaximumApplicationAddress, (void *)(slot_start() + 0x7FFFFFFF));
    /* x86 CE keeps the execute bit in software, so what VirtualQuery reads
     * back matches what the host enforces (below). */
    assert_int_equal(si.wProcessorArchitecture, PROCESSOR_ARCHITECTURE_INTEL);
    assert_int_equal(si.dwProcessorType, PROCESSOR_INTEL_486);
    assert_int_equal(slot_start() % (32 * MB), 0); /* aligned like a CE slot */

    MEMORYSTATUS ms;
    GlobalMemoryStatus(&ms);
    assert_int_equal(ms.dwLength, sizeof ms);
    assert_int_equal(ms.dwTotalVirtual, 32 * MB);
    assert_int_equal(ms.dwAvailVirtual, 32 * MB - BLOCK);
    assert_int_equal(ms.dwTotalPhys, 64 * MB);
    assert_int_equal(ms.dwAvailPhys, 64 * MB);
    assert_int_equal(ms.dwMemoryLoad, 0);
    assert_int_equal(ms.dwTotalPageFile, 0);
    void *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    GlobalMemoryStatus(&ms);
    assert_int_equal(ms.dwAvailVirtual, 32 * MB - 2 * BLOCK);
    assert_int_equal(ms.dwAvailPhys, 64 * MB - PAGE);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

/* CE computes the load as 100 - free * 100 / total: it rounds up. */
static void test_memory_load_rounds_up(void **state)
{
    (void)state;
    MEMORYSTATUS ms;
    GlobalMemoryStatus(&ms);
    assert_int_equal(ms.dwMemoryLoad, 0);
    char *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    GlobalMemoryStatus(&ms);
    assert_int_equal(ms.dwMemoryLoad, 1); /* 1 page of 16384 used */
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    /* 8 MB of 64 MB: exactly 12.5 % -> 13 */
    p = VirtualAlloc(NULL, 8 * MB, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    GlobalMemoryStatus(&ms);
    assert_int_equal(ms.dwMemoryLoad, 13);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

/* Protections read back as the x86 kernel keeps them: the execute ones
 * stay, PAGE_EXECUTE reads as PAGE_EXECUTE_READ (MakePagePerms maps both to
 * the same entry). */
static void test_protection_read_back(void **state)
{
    (void)state;
    static const DWORD set[] = {PAGE_READONLY, PAGE_READWRITE, PAGE_EXECUTE, PAGE_EXECUTE_READ,
                                PAGE_EXECUTE_READWRITE, PAGE_READWRITE | PAGE_NOCACHE};
    static const DWORD read[] = {PAGE_READONLY, PAGE_READWRITE, PAGE_EXECUTE_READ, PAGE_EXECUTE_READ,
                                 PAGE_EXECUTE_READWRITE, PAGE_READWRITE | PAGE_NOCACHE};
    char *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE, PAGE_NOACCESS);
    MEMORY_BASIC_INFORMATION m;
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
        assert_non_null(VirtualAlloc(p, PAGE, MEM_COMMIT, set[i]));
        assert_int_equal(VirtualQuery(p, &m, sizeof m), sizeof m);
        assert_int_equal(m.Protect, read[i]);
    }
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

/* VirtualQuery's Type: the pager type the reservation was made with
 * (MEM_IMAGE, MEM_MAPPED, else MEM_PRIVATE) wherever CE has a MEMBLOCK for
 * the block: committed pages, the reservation's first block, its partial
 * last block and any block that was ever committed; a run of reserved whole
 * blocks that meets none reads MEM_PRIVATE (CE 5 virtmem.c SC_VirtualQuery). */
static void test_query_type_follows_the_reservation(void **state)
{
    (void)state;
    static const DWORD types[] = {MEM_IMAGE, MEM_MAPPED};
    MEMORY_BASIC_INFORMATION m;
    for (size_t i = 0; i < 2; i++) {
        char *p = VirtualAlloc(NULL, 4 * BLOCK, MEM_RESERVE | types[i], PAGE_NOACCESS);
        assert_non_null(p);
        assert_int_equal(VirtualQuery(p, &m, sizeof m), sizeof m);
        assert_int_equal(m.Type, types[i]); /* the head block */
        assert_int_equal(m.RegionSize, 4 * BLOCK);
        assert_int_equal(VirtualQuery(p + BLOCK, &m, sizeof m), sizeof m);
        assert_int_equal(m.Type, MEM_PRIVATE); /* whole reserved blocks only */
        assert_non_null(VirtualAlloc(p + 3 * BLOCK, PAGE, MEM_COMMIT, PAGE_READWRITE));
        assert_int_equal(VirtualQuery(p + 3 * BLOCK, &m, sizeof m), sizeof m);
        assert_int_equal(m.Type, types[i]);
        assert_int_equal(m.State, MEM_COMMIT);
        assert_int_equal(VirtualQuery(p + BLOCK, &m, sizeof m), sizeof m);
        assert_int_equal(m.Type, MEM_PRIVATE); /* the run stops at the commit ... */
        assert_int_equal(m.RegionSize, 2 * BLOCK);
        assert_true(VirtualFree(p + 3 * BLOCK, PAGE, MEM_DECOMMIT));
        assert_int_equal(VirtualQuery(p + BLOCK, &m, sizeof m), sizeof m);
        assert_int_equal(m.Type, types[i]); /* ... then reaches the block's MEMBLOCK */
        assert_int_equal(m.RegionSize, 3 * BLOCK);
        assert_true(VirtualFree(p, 0, MEM_RELEASE));
    }
    /* A partial last block has a MEMBLOCK from the start. */
    char *p = VirtualAlloc(NULL, BLOCK + PAGE, MEM_RESERVE | MEM_IMAGE, PAGE_NOACCESS);
    assert_int_equal(VirtualQuery(p + BLOCK, &m, sizeof m), sizeof m);
    assert_int_equal(m.Type, MEM_IMAGE);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    /* An ordinary reservation is MEM_PRIVATE throughout. */
    p = VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_int_equal(VirtualQuery(p, &m, sizeof m), sizeof m);
    assert_int_equal(m.Type, MEM_PRIVATE);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
    /* Committed Large Memory Area pages belong to the mapper: MEM_MAPPED. */
    char *big = VirtualAlloc(NULL, 4 * MB, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(VirtualAlloc(big + 2 * MB, PAGE, MEM_COMMIT, PAGE_READWRITE));
    assert_int_equal(VirtualQuery(big + 2 * MB, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.Type, MEM_MAPPED);
    assert_int_equal(VirtualQuery(big + MB, &m, sizeof m), sizeof m);
    assert_int_equal(m.Type, MEM_PRIVATE); /* reserved blocks with no MEMBLOCK */
    assert_true(VirtualFree(big, 0, MEM_RELEASE));
}

static void *set_error_in_thread(void *arg)
{
    (void)arg;
    SetLastError(1234);
    return (void *)(uintptr_t)GetLastError();
}

static void test_last_error_is_per_thread(void **state)
{
    (void)state;
    SetLastError(77);
    pthread_t t;
    void *ret;
    assert_int_equal(pthread_create(&t, NULL, set_error_in_thread, NULL), 0);
    pthread_join(t, &ret);
    assert_int_equal((uintptr_t)ret, 1234);
    assert_int_equal(GetLastError(), 77);
    /* Success leaves the last error alone. */
    void *p = VirtualAlloc(NULL, PAGE, MEM_RESERVE, PAGE_NOACCESS);
    assert_int_equal(GetLastError(), 77);
    assert_true(VirtualFree(p, 0, MEM_RELEASE));
}

static void test_slot_map(void **state)
{
    (void)state;
    char *r = VirtualAlloc(NULL, BLOCK, MEM_RESERVE, PAGE_NOACCESS);
    char *c = VirtualAlloc(NULL, 2 * BLOCK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    char map[600];
    size_t n = cebox_slot_map(map, sizeof map);
    assert_int_equal(n, 512);
    assert_memory_equal(map, "-RCC.", 5);
    assert_int_equal(cebox_slot_map(map, 3), 3);
    assert_true(VirtualFree(r, 0, MEM_RELEASE));
    assert_true(VirtualFree(c, 0, MEM_RELEASE));
}

/* ---- MEM_AUTO_COMMIT (cebox_auto_commit) ---- */

/* In a forked child (bounded by an alarm: a fault retried for ever ends by
 * SIGALRM): with the program's SIGSEGV action installed first, a reserved
 * page of a plain reservation still faults into it. */
static bool plain_fault_reaches_the_program(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        struct sigaction mine = {.sa_handler = fault_handler};
        sigaction(SIGSEGV, &mine, NULL);
        if (cebox_auto_commit(1) != 0) {
            _exit(3);
        }
        volatile char *plain = VirtualAlloc(NULL, PAGE, MEM_RESERVE, PAGE_READWRITE);
        if (plain != NULL) {
            plain[0] = 1;
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT;
}

static void test_auto_commit_on_first_touch(void **state)
{
    (void)state;
    if (RUNNING_ON_VALGRIND) {
        skip(); /* it reports the faulting first touch as an invalid write */
    }
    MEMORY_BASIC_INFORMATION m;
    struct sigaction before;
    sigaction(SIGSEGV, NULL, &before);
    assert_int_equal(cebox_auto_commit(1), 0);
    volatile char *p = VirtualAlloc(NULL, 4 * PAGE, MEM_RESERVE | MEM_AUTO_COMMIT, PAGE_READWRITE);
    assert_non_null(p);
    assert_int_equal(VirtualQuery((void *)p, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_RESERVE);
    size_t free_ram = cebox_free_ram();
    p[PAGE + 5] = 7; /* the first touch commits the page */
    assert_int_equal(p[PAGE + 5], 7);
    assert_int_equal(p[PAGE], 0);
    assert_int_equal(cebox_free_ram(), free_ram - PAGE);
    assert_int_equal(VirtualQuery((void *)(p + PAGE), &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.Protect, PAGE_READWRITE);
    assert_int_equal(m.RegionSize, PAGE);
    assert_int_equal(VirtualQuery((void *)p, &m, sizeof m), sizeof m);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_true(plain_fault_reaches_the_program());
    /* Given back: the flag refused again, the displaced action back. */
    assert_true(VirtualFree((void *)p, 4 * PAGE, MEM_DECOMMIT));
    assert_true(VirtualFree((void *)p, 0, MEM_RELEASE));
    assert_int_equal(cebox_auto_commit(0), 0);
    assert_null(VirtualAlloc(NULL, PAGE, MEM_RESERVE | MEM_AUTO_COMMIT, PAGE_READWRITE));
    assert_int_equal(GetLastError(), ERROR_NOT_SUPPORTED);
    struct sigaction now;
    sigaction(SIGSEGV, NULL, &now);
    assert_ptr_equal(now.sa_sigaction, before.sa_sigaction);
}

/* With no RAM left the touch faults, as on CE: the child dies of SIGSEGV
 * after the pages RAM allowed. */
static void test_auto_commit_without_ram_faults(void **state)
{
    (void)state;
    if (RUNNING_ON_VALGRIND) {
        skip();
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        signal(SIGSEGV, SIG_DFL); /* not cmocka's: the default action is the one displaced */
        alarm(10); /* a touch retried for ever ends by SIGALRM, not SIGSEGV */
        if (testutil_core_reset("ce5", "256K", NULL) != 0 || cebox_auto_commit(1) != 0) {
            _exit(3);
        }
        volatile char *p = VirtualAlloc(NULL, 128 * PAGE, MEM_RESERVE | MEM_AUTO_COMMIT, PAGE_READWRITE);
        if (p == NULL) {
            _exit(4);
        }
        for (unsigned i = 0; i < 128; i++) {
            p[(size_t)i * PAGE] = 1;
            char one = 1;
            (void)!write(fds[1], &one, 1); /* one byte per page committed */
        }
        _exit(0);
    }
    close(fds[1]);
    char buf[256];
    ssize_t n, pages = 0;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) {
        pages += n;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    /* 64 pages of RAM, 15 never given (CE's HoldPages): about 49 touched. */
    assert_true(pages >= 40 && pages < 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_512_one_page_allocations_run_out, setup_ce5),
        cmocka_unit_test_setup(test_reserve_512_pages_then_commit_each, setup_ce5),
        cmocka_unit_test_setup(test_large_reserve_goes_outside_the_slot, setup_ce5),
        cmocka_unit_test_setup(test_lma_release_needs_the_exact_base, setup_ce5),
        cmocka_unit_test_setup(test_lma_release_needs_the_exact_base, setup_ce3),
        cmocka_unit_test_setup(test_lma_needs_exact_conditions, setup_ce5),
        cmocka_unit_test_setup(test_lma_beyond_the_page_index, setup_ce5),
        cmocka_unit_test_setup(test_ce6_has_no_large_memory_area, setup_ce6),
        cmocka_unit_test_setup(test_virtual_query_seed_example, setup_ce5),
        cmocka_unit_test_setup(test_virtual_query_errors, setup_ce5),
        cmocka_unit_test_setup(test_size_zero_and_bad_flags, setup_ce5),
        cmocka_unit_test_setup(test_protection_arguments, setup_ce5),
        cmocka_unit_test_setup(test_reserve_at_an_address, setup_ce5),
        cmocka_unit_test_setup(test_top_down_on_ce3, setup_ce3),
        cmocka_unit_test_setup(test_ce3_top_down_before_the_lma, setup_ce3),
        cmocka_unit_test_setup(test_exactly_the_slot_size, setup_ce3),
        cmocka_unit_test_setup(test_exactly_the_slot_size, setup_ce5),
        cmocka_unit_test_setup(test_ce3_protect_over_free_space, setup_ce3),
        cmocka_unit_test_setup(test_slot_base_means_no_address, setup_ce3),
        cmocka_unit_test_setup(test_slot_base_means_no_address, setup_ce5),
        cmocka_unit_test_setup(test_top_down_ignored, setup_ce5),
        cmocka_unit_test_setup(test_top_down_ignored, setup_ce6),
        cmocka_unit_test_setup(test_ce3_keeps_not_supported_for_writecopy, setup_ce3),
        cmocka_unit_test_setup(test_commit_must_stay_in_one_reservation, setup_ce5),
        cmocka_unit_test_setup(test_commits_read_zero_and_recommit_keeps_data, setup_ce5),
        cmocka_unit_test_setup(test_reserved_pages_fault, setup_ce5),
        cmocka_unit_test_setup(test_release_rules, setup_ce5),
        cmocka_unit_test_setup(test_ce6_releases_mixed_regions, setup_ce6),
        cmocka_unit_test_setup(test_virtual_protect, setup_ce5),
        cmocka_unit_test_setup(test_commit_fails_without_ram, setup_ce5),
        cmocka_unit_test_setup(test_forced_states_cap_commits, setup_ce5),
        cmocka_unit_test_setup(test_system_info_and_memory_status, setup_ce5),
        cmocka_unit_test_setup(test_memory_load_rounds_up, setup_ce5),
        cmocka_unit_test_setup(test_protection_read_back, setup_ce5),
        cmocka_unit_test_setup(test_query_type_follows_the_reservation, setup_ce5),
        cmocka_unit_test_setup(test_last_error_is_per_thread, setup_ce5),
        cmocka_unit_test_setup(test_slot_map, setup_ce5),
        cmocka_unit_test_setup(test_auto_commit_on_first_touch, setup_ce5),
        cmocka_unit_test_setup(test_auto_commit_without_ram_faults, setup_ce5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
