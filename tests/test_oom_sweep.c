/*
 * test_oom_sweep.c - every public operation fails cleanly when cebox's own
 * bookkeeping memory runs out.
 *
 * For each operation the sweep sets meta_fail_after(N) for N = 1, 2, ...
 * and runs it until it succeeds.  Each failure must be clean: the
 * operation returns its documented error (NULL or FALSE and the CE last
 * error), a failed allocation is counted by the event log under its entry
 * point, every heap still validates, no device RAM page, committed page or
 * slot block is lost (compared with the state before the operation), and
 * once the operation's set-up is taken down the bookkeeping in use is what
 * it was before (nothing leaked, on the failure path or the success path).
 *
 * Whether the N-th allocation happened inside the operation is seen by
 * probing right after it (failure_landed): the sweep ends at the first N
 * the operation did not reach, where it must have succeeded.  An operation
 * may also survive a failure it met (the event log's module list, for
 * one); the checks of what it left behind hold all the same.  Besides the Win32-named API the
 * sweep drives the core's start (the slot and the device RAM), the stack
 * table's insert and the event log's recording of a failure with CEBOX_OUT.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "core.h"
#include "meta.h"
#include "oomutil.h"
#include "record/eventlog.h"
#include "record/summary.h"
#include "record/stack.h"
#include "report/logread.h"

#define PAGE 4096u
#define BLOCK 0x10000u
#define MB (1024u * 1024u)
#define MAX_N 200 /* no operation makes this many allocations */

/* ---- the profile under the sweep ----
 *
 * Every test but the stack table's runs once per profile; what differs is
 * the heap's geometry, which the heap operations are sized by. */

struct profile {
    const char *name;
    size_t large;       /* an item with a reservation of its own */
    size_t medium;      /* an item still inside a region, for the resizes */
    size_t region_item; /* per_region of these fill a region: one more needs a new one */
    unsigned per_region;
    unsigned index_regions; /* regions the heap's per-region index holds before it grows */
    bool lma;               /* has a Large Memory Area */
};

static const struct profile profiles[] = {
    /* 0x60000-byte regions, 8-byte headers; large items from 0x30000 */
    {"ce3", 200000, 20000, 0x8000, 11, 8, true},
    /* 0x2F000-byte regions, 8-byte headers; large items from 98,280 bytes */
    {"ce5", 100000, 20000, 0x8000, 5, 4, true},
    /* 60 KB regions of 32-byte blocks (19 of them the heap's header);
     * large items from 513 blocks */
    {"ce6", 100000, 8000, 0x2000, 7, 4, false},
};

static const struct profile *prof; /* the one the current test runs */

#define LARGE_ITEM (prof->large)

/* ---- the box and what "nothing lost" compares ---- */

static void fresh(const char *profile)
{
    char err[OPTIONS_ERR_MAX];
    setenv("CEBOX_PROFILE", profile, 1);
    setenv("CEBOX_RAM", "16M", 1);
    unsetenv("CEBOX_SLOT_SIZE");
    unsetenv("CEBOX_LARGE_MEMORY_AREA");
    unsetenv("CEBOX_OUT");
    assert_int_equal(core_reset(err), 0);
    assert_non_null(GetProcessHeap()); /* made at start, as on CE */
    SetLastError(0);
}

/* A new core with the same settings. */
static void new_core(void)
{
    char err[OPTIONS_ERR_MAX];
    assert_int_equal(core_reset(err), 0);
    assert_non_null(GetProcessHeap());
}

struct snapshot {
    size_t free_ram, committed;
    unsigned free_blocks;
};

static void take(struct snapshot *s)
{
    MEMORYSTATUS ms;
    struct cebox_slot_info info;
    GlobalMemoryStatus(&ms);
    cebox_slot_info(&info);
    s->free_ram = ms.dwAvailPhys;
    s->committed = info.committed_bytes;
    s->free_blocks = info.free_blocks;
}

static void assert_same(const struct snapshot *a, const struct snapshot *b, const char *op,
                        unsigned long n)
{
    if (a->free_ram != b->free_ram || a->committed != b->committed || a->free_blocks != b->free_blocks) {
        fail_msg("%s, N=%lu: free RAM %zu -> %zu, committed %zu -> %zu, free blocks %u -> %u", op, n,
                 a->free_ram, b->free_ram, a->committed, b->committed, a->free_blocks, b->free_blocks);
    }
}

/* ---- one operation under the sweep ----
 *
 * prepare() builds what the operation needs (no failures injected), run()
 * is the operation (true when it succeeded; on failure it asserts the
 * documented error itself), undo() gives back what a success made, and
 * teardown() what prepare() made. */

struct fixture {
    HANDLE heap;
    char *p, *q;
    void *v;
    MEMORY_BASIC_INFORMATION mbi;
};

struct op {
    const char *name;
    enum log_api api;   /* counted on failure; LOG_API_COUNT: not an allocation */
    DWORD error;        /* the documented last error of a failure */
    unsigned min_fails; /* failures the sweep must see at least */
    void (*prepare)(struct fixture *);
    bool (*run)(struct fixture *);
    void (*undo)(struct fixture *);
    void (*teardown)(struct fixture *);
    /* On the process heap, which may keep what it grew (a table of large
     * items) for later calls: each attempt runs on a new core, and what is
     * compared is the bookkeeping of a new core after it. */
    bool process_heap;
};

static void nothing(struct fixture *f)
{
    (void)f;
}

static bool heaps_valid(const struct fixture *f)
{
    return HeapValidate(GetProcessHeap(), 0, NULL) && (f->heap == NULL || HeapValidate(f->heap, 0, NULL));
}

/* Sweeps one operation; returns how many N made it fail. */
static unsigned sweep(const struct op *op)
{
    unsigned fails = 0;
    for (unsigned long n = 1;; n++) {
        if (n > MAX_N) {
            fail_msg("%s: still allocating at N=%d", op->name, MAX_N);
        }
        struct fixture f = {0};
        if (op->process_heap) {
            new_core();
        }
        size_t meta_before = meta_bytes_in_use();
        op->prepare(&f);
        struct snapshot before, after;
        take(&before);
        uint64_t counted = op->api < LOG_API_COUNT ? summary_failures(op->api) : 0;
        SetLastError(0);
        meta_fail_after(n);
        bool ok = op->run(&f);
        bool landed = failure_landed(n);
        if (!landed && !ok) {
            fail_msg("%s, N=%lu: failed with no bookkeeping failure (error %u)", op->name, n,
                     (unsigned)GetLastError());
        }
        if (!heaps_valid(&f)) {
            fail_msg("%s, N=%lu: a heap no longer validates", op->name, n);
        }
        if (ok) {
            op->undo(&f);
        } else {
            fails++;
            if (GetLastError() != op->error) {
                fail_msg("%s, N=%lu: last error %u, expected %u", op->name, n, (unsigned)GetLastError(),
                         (unsigned)op->error);
            }
            if (op->api < LOG_API_COUNT && summary_failures(op->api) != counted + 1) {
                fail_msg("%s, N=%lu: the failure was not counted", op->name, n);
            }
            take(&after);
            assert_same(&before, &after, op->name, n);
            /* Nothing half done stays behind to trip the next call: the
             * same operation now succeeds, and the heaps still hold. */
            if (!op->run(&f)) {
                fail_msg("%s, N=%lu: fails again with memory back (error %u)", op->name, n,
                         (unsigned)GetLastError());
            }
            if (!heaps_valid(&f)) {
                fail_msg("%s, N=%lu: a heap no longer validates after the retry", op->name, n);
            }
            op->undo(&f);
        }
        op->teardown(&f);
        if (op->process_heap) {
            new_core();
        }
        if (meta_bytes_in_use() != meta_before) {
            fail_msg("%s, N=%lu (%s): bookkeeping %zu bytes before, %zu after", op->name, n,
                     ok ? "succeeded" : "failed", meta_before, meta_bytes_in_use());
        }
        if (!landed) {
            if (fails < op->min_fails) {
                fail_msg("%s: %u failures, expected at least %u", op->name, fails, op->min_fails);
            }
            print_message("%-30s %lu bookkeeping allocations, %u clean failures\n", op->name, n - 1,
                          fails);
            return fails;
        }
    }
}

/* ---- the VirtualAlloc family ---- */

static bool alloc_result(struct fixture *f, void *p)
{
    f->v = p;
    return p != NULL;
}

static bool run_reserve(struct fixture *f)
{
    return alloc_result(f, VirtualAlloc(NULL, 5 * BLOCK, MEM_RESERVE, PAGE_READWRITE));
}

static bool run_reserve_commit(struct fixture *f)
{
    return alloc_result(f, VirtualAlloc(NULL, 3 * BLOCK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
}

static bool run_top_down(struct fixture *f)
{
    return alloc_result(f, VirtualAlloc(NULL, 2 * BLOCK, MEM_RESERVE | MEM_COMMIT | MEM_TOP_DOWN,
                                        PAGE_READWRITE));
}

/* A Large Memory Area reservation: outside the slot, with its own page
 * array in the bookkeeping. */
static bool run_lma_reserve(struct fixture *f)
{
    return alloc_result(f, VirtualAlloc(NULL, 4 * MB, MEM_RESERVE, PAGE_NOACCESS));
}

static void release_v(struct fixture *f)
{
    if (f->v != NULL) {
        assert_true(VirtualFree(f->v, 0, MEM_RELEASE));
        f->v = NULL;
    }
}

static void prepare_reserved(struct fixture *f)
{
    f->p = VirtualAlloc(NULL, 4 * BLOCK, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(f->p);
}

static void prepare_committed(struct fixture *f)
{
    f->p = VirtualAlloc(NULL, 4 * BLOCK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_non_null(f->p);
    memset(f->p, 0x5A, 4 * BLOCK);
}

static void prepare_lma(struct fixture *f)
{
    f->p = VirtualAlloc(NULL, 4 * MB, MEM_RESERVE, PAGE_NOACCESS);
    assert_non_null(f->p);
    assert_false((uintptr_t)f->p - slot_base(core_get()->slot) < slot_size(core_get()->slot));
}

static void release_p(struct fixture *f)
{
    if (f->p != NULL) {
        assert_true(VirtualFree(f->p, 0, MEM_RELEASE));
    }
}

static bool run_commit(struct fixture *f)
{
    void *v = VirtualAlloc(f->p + PAGE, 3 * PAGE, MEM_COMMIT, PAGE_READWRITE);
    if (v != NULL) {
        assert_ptr_equal(v, f->p + PAGE);
    }
    return v != NULL;
}

static void decommit_p(struct fixture *f)
{
    assert_true(VirtualFree(f->p, 4 * BLOCK, MEM_DECOMMIT));
}

static bool run_decommit(struct fixture *f)
{
    return VirtualFree(f->p + PAGE, 2 * PAGE, MEM_DECOMMIT);
}

static bool run_release(struct fixture *f)
{
    bool ok = VirtualFree(f->p, 0, MEM_RELEASE);
    if (ok) {
        f->p = NULL;
    }
    return ok;
}

static bool run_protect(struct fixture *f)
{
    DWORD old = 0;
    bool ok = VirtualProtect(f->p, 2 * PAGE, PAGE_READONLY, &old);
    if (ok) {
        assert_int_equal(old, PAGE_READWRITE);
    }
    return ok;
}

static void protect_back(struct fixture *f)
{
    DWORD old;
    assert_true(VirtualProtect(f->p, 2 * PAGE, PAGE_READWRITE, &old));
}

static bool run_query(struct fixture *f)
{
    return VirtualQuery(f->p + PAGE, &f->mbi, sizeof f->mbi) == sizeof f->mbi;
}

static const struct op virtual_ops[] = {
    {"VirtualAlloc reserve", LOG_API_VIRTUALALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, nothing, run_reserve,
     release_v, nothing, false},
    {"VirtualAlloc commit", LOG_API_VIRTUALALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_reserved,
     run_commit, decommit_p, release_p, false},
    {"VirtualAlloc reserve+commit", LOG_API_VIRTUALALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, nothing,
     run_reserve_commit, release_v, nothing, false},
    {"VirtualAlloc MEM_TOP_DOWN", LOG_API_VIRTUALALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, nothing,
     run_top_down, release_v, nothing, false},
    /* (undone by decommitting the rest: CE 3-5 refuse to release a region
     * partly committed) */
    {"VirtualFree decommit", LOG_API_COUNT, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_committed, run_decommit,
     decommit_p, release_p, false},
    {"VirtualFree release", LOG_API_COUNT, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_committed, run_release,
     nothing, release_p, false},
    {"VirtualProtect", LOG_API_COUNT, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_committed, run_protect,
     protect_back, release_p, false},
    {"VirtualQuery", LOG_API_COUNT, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_committed, run_query, nothing,
     release_p, false},
};

/* Under the profiles with a Large Memory Area (not ce6). */
static const struct op lma_ops[] = {
    /* The LMA page array is the one piece of bookkeeping a reservation
     * needs: CE fails that request with ERROR_OUTOFMEMORY. */
    {"Large Memory Area reserve", LOG_API_VIRTUALALLOC, ERROR_OUTOFMEMORY, 1, nothing, run_lma_reserve,
     release_v, nothing, false},
    {"Large Memory Area commit", LOG_API_VIRTUALALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_lma,
     run_commit, decommit_p, release_p, false},
};

#define COUNT(a) (sizeof(a) / sizeof(a)[0])

/* A fresh core under the profile of the test (`state`, set by
 * PER_PROFILE). */
static void begin_profile(void **state)
{
    prof = *state;
    fresh(prof->name);
    print_message("profile %s\n", prof->name);
}

static void sweep_all(const struct op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sweep(&ops[i]);
    }
}

/* (ce3 honours MEM_TOP_DOWN; ce6 has no Large Memory Area and a 2 GB
 * slot) */
static void virtual_memory(void **state)
{
    begin_profile(state);
    sweep_all(virtual_ops, COUNT(virtual_ops));
    if (prof->lma) {
        sweep_all(lma_ops, COUNT(lma_ops));
    }
}

/* ---- the heap family ---- */

static void prepare_heap(struct fixture *f)
{
    f->heap = HeapCreate(0, 0, 0);
    assert_non_null(f->heap);
}

static void destroy_heap(struct fixture *f)
{
    if (f->heap != NULL) {
        assert_true(HeapDestroy(f->heap));
    }
}

static bool run_heap_create(struct fixture *f)
{
    f->v = HeapCreate(0, 0, 0);
    return f->v != NULL;
}

static bool run_heap_create_fixed(struct fixture *f)
{
    f->v = HeapCreate(0, 0x10000, 0x40000);
    return f->v != NULL;
}

static void destroy_v(struct fixture *f)
{
    assert_true(HeapDestroy(f->v));
}

static bool heap_alloc_into(struct fixture *f, size_t n)
{
    f->q = HeapAlloc(f->heap, HEAP_ZERO_MEMORY, n);
    if (f->q != NULL) {
        assert_int_equal(HeapSize(f->heap, 0, f->q) >= n, 1);
        memset(f->q, 0x33, n);
    }
    return f->q != NULL;
}

static bool run_heap_alloc_small(struct fixture *f)
{
    return heap_alloc_into(f, 100);
}

static bool run_heap_alloc_large(struct fixture *f)
{
    return heap_alloc_into(f, LARGE_ITEM);
}

static void *reservation_of(const void *p)
{
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(VirtualQuery(p, &m, sizeof m), sizeof m);
    return m.AllocationBase;
}

/* A heap with `regions` full regions: each holds per_region items, the
 * next needs a new region (checked, so that the geometry above stays
 * true). */
static void fill_regions(struct fixture *f, unsigned regions)
{
    prepare_heap(f);
    void *first = NULL;
    for (unsigned i = 0; i < regions * prof->per_region; i++) {
        void *p = HeapAlloc(f->heap, 0, prof->region_item);
        assert_non_null(p);
        if (i % prof->per_region == 0) {
            assert_true(first == NULL || reservation_of(p) != reservation_of(first));
            first = p;
        } else if (reservation_of(p) != reservation_of(first)) {
            fail_msg("%s: item %u of a region went to another one", prof->name, i % prof->per_region);
        }
    }
    f->p = first; /* an item of the last full region */
}

static void prepare_full_region(struct fixture *f)
{
    fill_regions(f, 1);
}

/* As many full regions as the heap's per-region index starts with room
 * for (the max-trees of ce5 and ce6: four, ce3's chain: eight): the next
 * one outgrows it. */
static void prepare_full_index(struct fixture *f)
{
    fill_regions(f, prof->index_regions);
}

static bool run_heap_alloc_region(struct fixture *f)
{
    if (!heap_alloc_into(f, prof->region_item)) {
        return false;
    }
    if (reservation_of(f->q) == reservation_of(f->p)) {
        fail_msg("%s: item %u went into the full region", prof->name, prof->per_region + 1);
    }
    return true;
}

/* The new region is then used like any other: it takes the rest of a
 * region's items (on ce5 committing its tail, pass 2), not yet another
 * region.  (A heap whose per-region index was left half grown by a failure
 * loses sight of it.) */
static bool run_heap_alloc_past_index(struct fixture *f)
{
    if (!run_heap_alloc_region(f)) {
        return false;
    }
    void *next[16];
    unsigned rest = prof->per_region - 1;
    assert_true(rest <= sizeof next / sizeof next[0]);
    for (unsigned i = 0; i < rest; i++) {
        next[i] = HeapAlloc(f->heap, 0, prof->region_item);
        assert_non_null(next[i]);
        if (reservation_of(next[i]) != reservation_of(f->q)) {
            fail_msg("HeapAlloc past the index: item %u after it went to another region", i + 2);
        }
    }
    for (unsigned i = 0; i < rest; i++) {
        assert_true(HeapFree(f->heap, 0, next[i]));
    }
    return true;
}

static void free_q(struct fixture *f)
{
    assert_true(HeapFree(f->heap, 0, f->q));
}

/* Two blocks, the second stopping the first from growing in place. */
static void two_blocks(struct fixture *f, HANDLE heap, size_t n)
{
    f->p = HeapAlloc(heap, 0, n);
    f->q = HeapAlloc(heap, 0, 16);
    assert_non_null(f->p);
    assert_non_null(f->q);
    memset(f->p, 0x77, n);
}

static void prepare_two(struct fixture *f, size_t n)
{
    prepare_heap(f);
    two_blocks(f, f->heap, n);
}

static void prepare_two_small(struct fixture *f)
{
    prepare_two(f, 100);
}

static void prepare_two_large(struct fixture *f)
{
    prepare_two(f, LARGE_ITEM);
}

/* After a resize of f->p's `from` bytes to r (NULL: failed): the bytes are
 * intact where they now live, which f->p then names. */
static bool resized(struct fixture *f, char *r, size_t from)
{
    const char *keep = r != NULL ? r : f->p;
    for (size_t i = 0; i < from; i++) {
        if (keep[i] != 0x77) {
            fail_msg("resize of %zu bytes (%s): byte %zu changed", from, r != NULL ? "moved" : "failed", i);
        }
    }
    if (r != NULL) {
        f->p = r;
    }
    return r != NULL;
}

static bool realloc_p(struct fixture *f, size_t from, size_t to)
{
    return resized(f, HeapReAlloc(f->heap, 0, f->p, to), from);
}

/* One block and free committed space after it: it grows in place (CE 3
 * never grows into a region's uncommitted tail). */
static void prepare_one(struct fixture *f)
{
    prepare_heap(f);
    f->p = HeapAlloc(f->heap, 0, 100);
    void *room = HeapAlloc(f->heap, 0, prof->medium);
    assert_non_null(f->p);
    assert_non_null(room);
    assert_true(HeapFree(f->heap, 0, room));
    memset(f->p, 0x77, 100);
}

static bool run_realloc_in_place(struct fixture *f)
{
    char *before = f->p;
    bool ok = realloc_p(f, 100, prof->medium);
    if (ok) {
        assert_ptr_equal(f->p, before);
    }
    return ok;
}

static bool run_realloc_move(struct fixture *f)
{
    return realloc_p(f, 100, prof->medium);
}

static bool run_realloc_to_large(struct fixture *f)
{
    return realloc_p(f, 100, LARGE_ITEM);
}

static bool run_realloc_large(struct fixture *f)
{
    return realloc_p(f, LARGE_ITEM, 2 * LARGE_ITEM);
}

static bool run_heap_free(struct fixture *f)
{
    bool ok = HeapFree(f->heap, 0, f->p);
    if (ok) {
        f->p = NULL;
    }
    return ok;
}

static bool run_local_alloc(struct fixture *f)
{
    f->q = LocalAlloc(LMEM_ZEROINIT, 300);
    return f->q != NULL;
}

static bool run_local_alloc_large(struct fixture *f)
{
    f->q = LocalAlloc(LMEM_FIXED, LARGE_ITEM);
    return f->q != NULL;
}

static void local_free_q(struct fixture *f)
{
    assert_null(LocalFree(f->q));
}

/* (LocalAlloc is HeapAlloc on the process heap) */
static void prepare_local_two(struct fixture *f)
{
    two_blocks(f, GetProcessHeap(), 100);
}

static bool run_local_realloc(struct fixture *f)
{
    return resized(f, LocalReAlloc(f->p, prof->medium, LMEM_MOVEABLE), 100);
}

static void local_free_both(struct fixture *f)
{
    assert_null(LocalFree(f->p));
    assert_null(LocalFree(f->q));
}

static const struct op heap_ops[] = {
    {"HeapCreate growable", LOG_API_HEAPCREATE, ERROR_NOT_ENOUGH_MEMORY, 0, nothing, run_heap_create,
     destroy_v, nothing, false},
    {"HeapCreate fixed", LOG_API_HEAPCREATE, ERROR_NOT_ENOUGH_MEMORY, 0, nothing, run_heap_create_fixed,
     destroy_v, nothing, false},
    {"HeapAlloc small", LOG_API_HEAPALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_heap, run_heap_alloc_small,
     free_q, destroy_heap, false},
    {"HeapAlloc new region", LOG_API_HEAPALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_full_region,
     run_heap_alloc_region, free_q, destroy_heap, false},
    {"HeapAlloc past the index", LOG_API_HEAPALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_full_index,
     run_heap_alloc_past_index, free_q, destroy_heap, false},
    {"HeapAlloc large", LOG_API_HEAPALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_heap, run_heap_alloc_large,
     free_q, destroy_heap, false},
    {"HeapReAlloc grow in place", LOG_API_HEAPREALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_one,
     run_realloc_in_place, nothing, destroy_heap, false},
    {"HeapReAlloc move", LOG_API_HEAPREALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_two_small,
     run_realloc_move, nothing, destroy_heap, false},
    {"HeapReAlloc to a large item", LOG_API_HEAPREALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_two_small,
     run_realloc_to_large, nothing, destroy_heap, false},
    {"HeapReAlloc large item", LOG_API_HEAPREALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_two_large,
     run_realloc_large, nothing, destroy_heap, false},
    {"HeapFree", LOG_API_COUNT, ERROR_INVALID_PARAMETER, 0, prepare_two_small, run_heap_free, nothing,
     destroy_heap, false},
    {"HeapFree large", LOG_API_COUNT, ERROR_INVALID_PARAMETER, 0, prepare_two_large, run_heap_free,
     nothing, destroy_heap, false},
    {"LocalAlloc", LOG_API_LOCALALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, nothing, run_local_alloc, local_free_q,
     nothing, true},
    {"LocalAlloc large", LOG_API_LOCALALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, nothing, run_local_alloc_large,
     local_free_q, nothing, true},
    {"LocalReAlloc", LOG_API_LOCALREALLOC, ERROR_NOT_ENOUGH_MEMORY, 0, prepare_local_two,
     run_local_realloc, nothing, local_free_both, true},
};

static void heaps(void **state)
{
    begin_profile(state);
    sweep_all(heap_ops, COUNT(heap_ops));
}

/* ---- the core's start: device RAM, slot and process heap ---- */

static void process_start(void **state)
{
    begin_profile(state);
    char err[OPTIONS_ERR_MAX];
    size_t meta_before = meta_bytes_in_use(); /* one whole core */
    size_t meta_failed = SIZE_MAX;            /* what a failed start leaves: always the same */
    unsigned fails = 0;
    for (unsigned long n = 1;; n++) {
        assert_true(n <= MAX_N);
        meta_fail_after(n);
        int rc = core_reset(err);
        HANDLE ph = rc == 0 ? GetProcessHeap() : NULL;
        if (!failure_landed(n)) {
            assert_int_equal(rc, 0);
            assert_non_null(ph);
            assert_true(HeapValidate(ph, 0, NULL));
            assert_int_equal(meta_bytes_in_use(), meta_before);
            break;
        }
        fails++;
        if (rc != 0) {
            /* Documented: a refused reservation leaves the core without a slot,
             * and nothing half built stays. */
            assert_non_null(strstr(err, "slot"));
            assert_null(core_get()->slot);
            if (meta_failed == SIZE_MAX) {
                meta_failed = meta_bytes_in_use();
            }
            if (meta_bytes_in_use() != meta_failed) {
                fail_msg("core start, N=%lu: a failed start holds %zu bytes of bookkeeping, another %zu",
                         n, meta_bytes_in_use(), meta_failed);
            }
        }
        /* Whatever was built is given back with the next core. */
        assert_int_equal(core_reset(err), 0);
        assert_non_null(GetProcessHeap());
        if (meta_bytes_in_use() != meta_before) {
            fail_msg("core start, N=%lu: bookkeeping %zu bytes before, %zu after", n, meta_before,
                     meta_bytes_in_use());
        }
        struct cebox_slot_info info;
        cebox_slot_info(&info);
        MEMORYSTATUS ms;
        GlobalMemoryStatus(&ms);
        assert_int_equal(ms.dwAvailPhys + info.committed_bytes, ms.dwTotalPhys);
    }
    assert_true(fails >= 2); /* the device RAM and the slot's tables */
    print_message("%-30s %u clean failures (%s)\n", "core start", fails, prof->name);
}

/* ---- the stack table ---- */

static void fake_stack(uintptr_t *ips, size_t depth, unsigned k)
{
    for (size_t i = 0; i < depth; i++) {
        ips[i] = 0x400000u + (uintptr_t)k * 64 + i;
    }
}

#define STACKS 1500
#define DEPTH 6

static void stack_table_insert(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    size_t meta_start = meta_bytes_in_use();
    unsigned failing_inserts = 0;
    uintptr_t ips[DEPTH];
    for (unsigned k = 0; k < STACKS; k++) {
        fake_stack(ips, DEPTH, k);
        bool failed = false;
        for (unsigned long n = 1;; n++) {
            assert_true(n <= MAX_N);
            size_t count = t.count, bytes = meta_bytes_in_use();
            bool added;
            meta_fail_after(n);
            struct stack_info *si = stack_table_intern(&t, ips, DEPTH, &added);
            bool landed = failure_landed(n);
            if (si != NULL) {
                assert_true(added);
                assert_int_equal(si->id, k + 1);
                break;
            }
            assert_true(landed);
            failed = true;
            /* The table is as it was: same entries, same memory. */
            assert_false(added);
            assert_int_equal(t.count, count);
            assert_int_equal(meta_bytes_in_use(), bytes);
            for (unsigned j = 0; j < k; j++) {
                uintptr_t old[DEPTH];
                fake_stack(old, DEPTH, j);
                struct stack_info *o = stack_table_intern(&t, old, DEPTH, &added);
                assert_non_null(o);
                assert_false(added);
                assert_int_equal(o->id, j + 1);
            }
        }
        failing_inserts += failed;
    }
    /* The first insert (table, buckets, chunk), new chunks and the bucket
     * array's doublings. */
    assert_true(failing_inserts >= 4);
    print_message("%-30s %u of %d inserts met a failure\n", "stack table insert", failing_inserts, STACKS);
    assert_int_equal(t.count, STACKS);
    stack_table_destroy(&t);
    assert_int_equal(meta_bytes_in_use(), meta_start);
}

/* ---- the event log's recording of a failure (CEBOX_OUT) ---- */

static char top[] = "/tmp/cebox-test-oom-XXXXXX";

/* A failed VirtualAlloc (the slot is full) from a call chain `depth`
 * frames deep, so that each depth is a new stack. */
__attribute__((noinline)) static void *fail_from(int depth)
{
    if (depth > 0) {
        void *p = fail_from(depth - 1);
        __asm__ volatile("" ::: "memory");
        return p;
    }
    return VirtualAlloc(NULL, 8 * BLOCK, MEM_RESERVE, PAGE_READWRITE);
}

static void log_box(unsigned long n)
{
    char dir[sizeof top + 32], err[OPTIONS_ERR_MAX];
    snprintf(dir, sizeof dir, "%s/%lu", top, n);
    assert_int_equal(mkdir(dir, 0755), 0);
    setenv("CEBOX_OUT", dir, 1);
    setenv("CEBOX_SLOT_SIZE", "1M", 1);
    setenv("CEBOX_STACK_DEPTH", "32", 1);
    assert_int_equal(core_reset(err), 0);
    assert_non_null(VirtualAlloc(NULL, 10 * BLOCK, MEM_RESERVE, PAGE_READWRITE));
}

/* The failures of this process's log, which must read back undamaged; 0
 * when there is no log yet.  *whole: the last failure has its stack and
 * its slot map. */
static uint32_t logged_failures(unsigned long n, bool *whole)
{
    char path[sizeof top + 64], err[512];
    snprintf(path, sizeof path, "%s/%lu/cebox-%d.log", top, n, (int)getpid());
    *whole = false;
    if (access(path, F_OK) != 0) {
        return 0;
    }
    struct lr_log log;
    assert_int_equal(logread_file(path, &log, err, sizeof err), 0);
    assert_false(log.damaged);
    assert_int_equal(log.nprocs, 1);
    const struct lr_process *p = &log.procs[0];
    uint32_t count = (uint32_t)p->nfailures;
    for (uint32_t i = 0; i < count; i++) {
        const struct lr_failure *f = &p->failures[i];
        assert_int_equal(f->api, LOG_API_VIRTUALALLOC);
        /* A stack id is 0 (not stored) or a stack written before. */
        assert_true(f->stack_id == 0 || logread_stack(p, f->stack_id) != NULL);
        *whole = f->stack_id != 0 && f->map != NULL && p->nmodules >= 1;
    }
    logread_free(&log);
    return count;
}

static void event_log(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(top));
    eventlog_forget();
    /* The unwinder's caches are made by a thread's first capture and kept
     * (unwind.h): made here, they are not the log's. */
    uintptr_t warm[4];
    (void)stack_capture(warm, 4);
    unsigned fails = 0;
    for (unsigned long n = 1;; n++) {
        assert_true(n <= MAX_N);
        log_box(n);
        eventlog_forget();
        size_t meta_before = meta_bytes_in_use();
        uint64_t counted = summary_failures(LOG_API_VIRTUALALLOC);
        errno = 1234;
        meta_fail_after(n);
        void *p = fail_from(0);
        bool landed = failure_landed(n);
        /* The failure itself is the slot's, whatever the log could do. */
        assert_null(p);
        assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
        assert_int_equal(errno, 1234);
        assert_int_equal(summary_failures(LOG_API_VIRTUALALLOC), counted + 1);
        bool whole;
        uint32_t logged = logged_failures(n, &whole);
        assert_true(logged <= 1);
        if (!landed) {
            assert_true(whole);
            assert_int_equal(logged, 1);
            eventlog_forget();
            assert_int_equal(meta_bytes_in_use(), meta_before);
            print_message("%-30s %lu bookkeeping allocations, %u recorded in part\n", "event log failure",
                          n - 1, fails);
            break;
        }
        fails += !whole;
        /* The log is not given up: the next failure is recorded whole. */
        assert_null(fail_from(20));
        uint32_t again = logged_failures(n, &whole);
        assert_int_equal(again, logged + 1);
        assert_true(whole);
        eventlog_forget();
        if (meta_bytes_in_use() != meta_before) {
            fail_msg("event log, N=%lu: bookkeeping %zu bytes before, %zu after", n, meta_before,
                     meta_bytes_in_use());
        }
    }
    /* Record buffer, map buffer, stack chunk, table, buckets (a failure of
     * the module list costs nothing but a module written twice). */
    assert_true(fails >= 5);
    unsetenv("CEBOX_OUT");
    unsetenv("CEBOX_SLOT_SIZE");
    unsetenv("CEBOX_STACK_DEPTH");
}

/* One test per profile, its state the profile (named so in profiles[]). */
#define ON_PROFILE(f, i) {#f " ce" #i, f, NULL, NULL, (void *)&profiles[i == 3 ? 0 : i == 5 ? 1 : 2]}
#define PER_PROFILE(f) ON_PROFILE(f, 3), ON_PROFILE(f, 5), ON_PROFILE(f, 6)

int main(void)
{
    _Static_assert(COUNT(profiles) == 3, "PER_PROFILE names every profile");
    const struct CMUnitTest tests[] = {
        PER_PROFILE(virtual_memory),
        PER_PROFILE(heaps),
        PER_PROFILE(process_start),
        cmocka_unit_test(stack_table_insert),
        cmocka_unit_test(event_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
