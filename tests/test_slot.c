/*
 * test_slot.c - the slot module directly: configurations, RAM accounting,
 * bookkeeping, and slots of other sizes than the profiles'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forbid_syscall.h"
#include "os.h"
#include "memstate.h"
#include "ram.h"
#include "runindex.h"
#include "slot.h"
#include "testutil.h"

#define PAGE 4096u
#define BLOCK 0x10000u
#define MB (1024u * 1024u)

static struct slot_config config(size_t size, struct ram *ram)
{
    struct slot_config c = {
        .size = size, .granularity = BLOCK, .page_size = PAGE,
        .large_memory_area = true, .lma_min = 2 * MB,
        .release_mixed = false, .honour_top_down = false,
        .alloc_prot_error_is_invalid = true, .ram = ram,
    };
    return c;
}

static struct slot *new_slot(struct ram *ram)
{
    struct slot *s;
    struct slot_config c = config(32 * MB, ram);
    assert_int_equal(slot_create(&c, &s), 0);
    return s;
}

/* A 32 MB slot over *ram, made fresh with `pages` free pages. */
static struct slot *new_slot_with_ram(struct ram *ram, size_t pages)
{
    ram_init(ram, pages, PAGE, NULL);
    return new_slot(ram);
}

/* A new reservation of `bytes` anywhere in s, no access; must succeed. */
static void *reserve_new(struct slot *s, size_t bytes)
{
    void *p;
    assert_int_equal(slot_virtual_alloc(s, NULL, bytes, MEM_RESERVE, PAGE_NOACCESS, &p), 0);
    return p;
}

/* A new read-write commitment of `bytes` anywhere in s; must succeed. */
static void *commit_new(struct slot *s, size_t bytes)
{
    void *p;
    assert_int_equal(slot_virtual_alloc(s, NULL, bytes, MEM_COMMIT, PAGE_READWRITE, &p), 0);
    return p;
}

/* Commits [p, p + bytes) of a reservation with prot; must succeed. */
static void commit_at(struct slot *s, void *p, size_t bytes, DWORD prot)
{
    void *out;
    assert_int_equal(slot_virtual_alloc(s, p, bytes, MEM_COMMIT, prot, &out), 0);
}

/* Decommits [p, p + bytes); must succeed. */
static void decommit_at(struct slot *s, void *p, size_t bytes)
{
    assert_int_equal(slot_virtual_free(s, p, bytes, MEM_DECOMMIT), 0);
}

static void test_bad_configurations_are_refused(void **state)
{
    (void)state;
    struct ram ram;
    ram_init(&ram, 100, PAGE, NULL);
    struct slot *s = NULL;
    struct slot_config c = config(32 * MB, &ram);
    c.page_size = 1024; /* not the host's page size */
    assert_int_equal(slot_create(&c, &s), ERROR_INVALID_PARAMETER);
    c = config(32 * MB, &ram);
    c.granularity = 3 * PAGE;
    assert_int_equal(slot_create(&c, &s), ERROR_INVALID_PARAMETER);
    c = config(32 * MB + PAGE, &ram);
    assert_int_equal(slot_create(&c, &s), ERROR_INVALID_PARAMETER);
    c = config(BLOCK, &ram); /* block 0 only */
    assert_int_equal(slot_create(&c, &s), ERROR_INVALID_PARAMETER);
    c = config(32 * MB, NULL);
    assert_int_equal(slot_create(&c, &s), ERROR_INVALID_PARAMETER);
    c = config((size_t)(RUNINDEX_MAX_BLOCKS + 1) * BLOCK, &ram); /* more blocks than the free-run index counts */
    assert_int_equal(slot_create(&c, &s), ERROR_INVALID_PARAMETER);
    assert_null(s);
}

static void test_odd_sized_slot_is_aligned_and_bounded(void **state)
{
    (void)state;
    struct ram ram;
    ram_init(&ram, 1000, PAGE, NULL);
    struct slot *s;
    struct slot_config c = config(3 * MB, &ram); /* 48 blocks */
    assert_int_equal(slot_create(&c, &s), 0);
    assert_int_equal(slot_base(s) % (4 * MB), 0);
    void *p;
    int n = 0;
    while (slot_virtual_alloc(s, NULL, PAGE, MEM_RESERVE, PAGE_NOACCESS, &p) == 0) {
        assert_true(slot_contains(s, p));
        n++;
    }
    assert_int_equal(n, 47);
    struct slot_stats st;
    slot_get_stats(s, &st);
    assert_int_equal(st.blocks, 48);
    assert_int_equal(st.free_blocks, 0);
    assert_int_equal(st.largest_free_run, 0);
    slot_destroy(s);
}

static void test_ram_is_charged_and_given_back(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 10);
    void *a, *b;
    a = commit_new(s, 8 * PAGE);
    assert_int_equal(ram_free_pages(&ram), 2);
    /* Three more pages do not fit; the failed call takes nothing. */
    assert_int_equal(slot_virtual_alloc(s, NULL, 3 * PAGE, MEM_COMMIT, PAGE_READWRITE, &b),
                     ERROR_NOT_ENOUGH_MEMORY);
    assert_int_equal(ram_free_pages(&ram), 2);
    /* Re-committing committed pages costs nothing. */
    assert_int_equal(slot_virtual_alloc(s, a, 8 * PAGE, MEM_COMMIT, PAGE_READONLY, &b), 0);
    assert_int_equal(ram_free_pages(&ram), 2);
    /* A committed PAGE_NOACCESS page still holds RAM, as on CE. */
    DWORD old;
    assert_int_equal(slot_virtual_protect(s, a, PAGE, PAGE_NOACCESS, &old), 0);
    assert_int_equal(ram_free_pages(&ram), 2);
    decommit_at(s, a, 4 * PAGE);
    assert_int_equal(ram_free_pages(&ram), 6);
    /* LMA commits are charged too. */
    void *big, *page;
    big = reserve_new(s, 4 * MB);
    assert_false(slot_contains(s, big));
    assert_int_equal(slot_virtual_alloc(s, big, 6 * PAGE, MEM_COMMIT, PAGE_READWRITE, &page), 0);
    assert_int_equal(ram_free_pages(&ram), 0);
    struct slot_stats st;
    slot_get_stats(s, &st);
    assert_int_equal(st.committed_pages, 10);
    assert_int_equal(st.peak_committed_pages, 10);
    assert_int_equal(st.lma_reserved_bytes, 4 * MB);
    /* Destroying the slot gives everything back. */
    slot_destroy(s);
    assert_int_equal(ram_free_pages(&ram), 10);
}

static void test_ram_charge_is_exact(void **state)
{
    (void)state;
    struct ram ram;
    ram_init(&ram, 3, PAGE, NULL);
    assert_int_equal(ram_charge(&ram, 3), RAM_OK);
    assert_int_equal(ram_charge(&ram, 1), RAM_NO_RAM);
    ram_credit(&ram, 2);
    assert_int_equal(ram_charge(&ram, 3), RAM_NO_RAM);
    assert_int_equal(ram_charge(&ram, 2), RAM_OK);
    assert_int_equal(ram_free_pages(&ram), 0);
}

static void test_bookkeeping_is_outside_the_slot(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 100);
    assert_false(slot_contains(s, s));
    /* Nothing in the slot is accessible before a commit. */
    assert_true(access_faults((char *)slot_base(s) + BLOCK, false));
    assert_true(access_faults((char *)slot_base(s), false));
    slot_destroy(s);
}

static void test_release_of_lma_and_unknown_addresses(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 100);
    void *a, *b;
    a = reserve_new(s, 2 * MB);
    b = reserve_new(s, 3 * MB);
    assert_int_equal(slot_virtual_free(s, (char *)a + PAGE, 0, MEM_RELEASE), ERROR_INVALID_PARAMETER);
    assert_int_equal(slot_virtual_free(s, a, 0, MEM_RELEASE), 0);
    assert_int_equal(slot_virtual_free(s, a, 0, MEM_RELEASE), ERROR_INVALID_PARAMETER);
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(slot_virtual_query(s, (char *)b + 3 * MB - 1, &m), 0);
    assert_int_equal(m.RegionSize, PAGE);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_int_equal(slot_virtual_query(s, (char *)b + 3 * MB, &m), ERROR_INVALID_PARAMETER);
    slot_destroy(s);
}

/* The MEMBLOCK a commit leaves in its block outlives the decommit, however
 * the pages were committed and given up (mprotect, munmap): VirtualQuery's
 * Type and run stay CE's. */
static void test_query_type_after_mprotect_and_munmap(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 100);
    char *lma = reserve_new(s, 2 * MB);
    assert_false(slot_contains(s, lma));
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(slot_virtual_query(s, lma + MB, &m), 0);
    assert_int_equal(m.Type, MEM_PRIVATE);
    assert_int_equal(m.RegionSize, MB);
    assert_int_equal(slot_mprotect(s, lma + MB, BLOCK, PAGE_READWRITE), 0); /* a whole block */
    assert_int_equal(slot_virtual_query(s, lma + MB + PAGE, &m), 0);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.Type, MEM_MAPPED);
    assert_int_equal(m.RegionSize, BLOCK - PAGE);
    assert_int_equal(slot_unmap(s, lma + MB, BLOCK), 0);
    assert_int_equal(slot_virtual_query(s, lma + MB, &m), 0);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_int_equal(m.RegionSize, MB); /* one run again, unmapped page included */
    assert_int_equal(m.Type, MEM_MAPPED); /* the run meets the block's MEMBLOCK */
    assert_int_equal(slot_virtual_query(s, lma + MB + BLOCK, &m), 0);
    assert_int_equal(m.Type, MEM_PRIVATE); /* from the next block on: none */
    assert_int_equal(slot_virtual_free(s, lma, 0, MEM_RELEASE), 0);
    assert_int_equal(ram_free_pages(&ram), 100);
    slot_destroy(s);
}

static void test_munmap_in_pieces_releases_at_the_end(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 1000);
    char *p = commit_new(s, 8 * PAGE);
    p[7 * PAGE] = 1;
    /* Unmap the head: those pages fault, the rest keeps its data. */
    assert_int_equal(slot_unmap(s, p, 3 * PAGE), 0);
    assert_true(access_faults(p, false));
    assert_int_equal(p[7 * PAGE], 1);
    assert_int_equal(ram_free_pages(&ram), 1000 - 5);
    /* mprotect over an unmapped page is refused, as Linux does (ENOMEM). */
    assert_int_equal(slot_mprotect(s, p, PAGE, PAGE_READONLY), ERROR_INVALID_PARAMETER);
    struct slot_stats st;
    slot_get_stats(s, &st);
    assert_int_equal(st.reserved_blocks, 1);
    /* Unmapping the rest (over the edge, into free space) releases the block. */
    assert_int_equal(slot_unmap(s, p + 3 * PAGE, 2 * BLOCK), 0);
    slot_get_stats(s, &st);
    assert_int_equal(st.reserved_blocks, 0);
    assert_int_equal(ram_free_pages(&ram), 1000);
    /* Unmapping free space is harmless. */
    assert_int_equal(slot_unmap(s, p, BLOCK), 0);
    slot_destroy(s);
}

static void test_mprotect_commits_and_keeps_contents(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 1000);
    char *p = reserve_new(s, 4 * PAGE);
    assert_int_equal(slot_mprotect(s, p, 2 * PAGE, PAGE_READWRITE), 0);
    assert_int_equal(ram_free_pages(&ram), 998);
    p[PAGE] = 42;
    assert_int_equal(slot_mprotect(s, p, 4 * PAGE, PAGE_NOACCESS), 0);
    assert_true(access_faults(p + PAGE, false));
    assert_int_equal(ram_free_pages(&ram), 998); /* still committed */
    assert_int_equal(slot_mprotect(s, p, 2 * PAGE, PAGE_READONLY), 0);
    assert_int_equal(p[PAGE], 42);
    assert_true(access_faults(p + PAGE, true));
    /* A range that leaves the reservation is refused. */
    assert_int_equal(slot_mprotect(s, p, BLOCK + PAGE, PAGE_READWRITE), ERROR_INVALID_PARAMETER);
    slot_destroy(s);
}

/* mprotect(PROT_NONE) over runs of committed pages split by reserved ones
 * keeps each page's state, contents and RAM (one host call per run). */
static void test_mprotect_none_keeps_runs_and_gaps(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 1000);
    char *p = reserve_new(s, 8 * PAGE);
    commit_at(s, p, 3 * PAGE, PAGE_READWRITE);
    commit_at(s, p + 4 * PAGE, 2 * PAGE, PAGE_READWRITE);
    p[2 * PAGE] = 7;
    p[5 * PAGE] = 9;
    assert_int_equal(slot_mprotect(s, p, 8 * PAGE, PAGE_NOACCESS), 0);
    assert_int_equal(ram_free_pages(&ram), 995);
    MEMORY_BASIC_INFORMATION m;
    static const struct { unsigned page, pages; DWORD state; } runs[] = {
        {0, 3, MEM_COMMIT}, {3, 1, MEM_RESERVE}, {4, 2, MEM_COMMIT}, {6, 2, MEM_RESERVE},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        assert_int_equal(slot_virtual_query(s, p + runs[i].page * PAGE, &m), 0);
        assert_int_equal(m.State, runs[i].state);
        assert_int_equal(m.RegionSize, runs[i].pages * PAGE);
    }
    assert_true(access_faults(p + 5 * PAGE, false));
    assert_int_equal(slot_mprotect(s, p, 3 * PAGE, PAGE_READONLY), 0);
    assert_int_equal(slot_mprotect(s, p + 4 * PAGE, 2 * PAGE, PAGE_READONLY), 0);
    assert_int_equal(p[2 * PAGE], 7);
    assert_int_equal(p[5 * PAGE], 9);
    assert_int_equal(ram_free_pages(&ram), 995);
    slot_destroy(s);
}

static void test_map_fixed(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 1000);
    char *p = commit_new(s, 4 * PAGE);
    p[PAGE] = 9;
    p[2 * PAGE] = 9;
    /* Over a reservation: fresh zero pages. */
    assert_int_equal(slot_map_fixed(s, p + PAGE, PAGE, PAGE_READWRITE), 0);
    assert_int_equal(p[PAGE], 0);
    assert_int_equal(p[2 * PAGE], 9);
    /* Over an unmapped page: mapped again. */
    assert_int_equal(slot_unmap(s, p + 3 * PAGE, PAGE), 0);
    assert_int_equal(slot_map_fixed(s, p + 3 * PAGE, PAGE, PAGE_READWRITE), 0);
    p[3 * PAGE] = 1;
    /* Over free blocks: a new reservation there, if 64 KB aligned. */
    char *q = p + 10 * BLOCK;
    assert_int_equal(slot_map_fixed(s, q, PAGE, PAGE_READWRITE), 0);
    q[0] = 1;
    assert_int_equal(slot_map_fixed(s, q + 3 * BLOCK + PAGE, PAGE, PAGE_READWRITE), ERROR_INVALID_PARAMETER);
    assert_int_equal(slot_map_fixed(s, q + 3 * BLOCK, 0, PAGE_READWRITE), ERROR_INVALID_PARAMETER);
    struct slot_stats st;
    slot_get_stats(s, &st);
    assert_int_equal(st.reserved_blocks, 2);
    assert_int_equal(st.committed_pages, 5);
    slot_destroy(s);
}

/* Host pages of [p, p+n pages) that are resident (mincore). */
static unsigned resident_pages(void *p, unsigned n)
{
    unsigned char v[64];
    assert_true(n <= sizeof v);
    assert_int_equal(mincore(p, (size_t)n * PAGE, v), 0);
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        k += v[i] & 1;
    }
    return k;
}

/* A decommitted page gives its RAM back and reads as zeros when it is
 * committed again (in the same reservation, after a release in a new one,
 * and with a protection that cannot be zeroed by hand), while the host
 * keeps its memory: committed again it does not fault in anew. */
static void test_decommit_then_recommit_reads_zeros(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 64);
    unsigned char *a = reserve_new(s, 8 * PAGE);
    commit_at(s, a, 4 * PAGE, PAGE_READWRITE);
    memset(a, 0xA5, 4 * PAGE);
    assert_int_equal(ram_free_pages(&ram), 60);
    decommit_at(s, a, 4 * PAGE);
    assert_int_equal(ram_free_pages(&ram), 64);
    assert_int_equal(resident_pages(a, 4), 4); /* kept by the host, inaccessible */
    /* One reserved run in VirtualQuery, pages decommitted or never committed. */
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(slot_virtual_query(s, a, &m), 0);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_int_equal(m.RegionSize, 8 * PAGE);
    commit_at(s, a, 6 * PAGE, PAGE_READWRITE);
    assert_int_equal(ram_free_pages(&ram), 58);
    assert_true(all_zero(a, 6 * PAGE));
    memset(a, 0x5A, 6 * PAGE);
    /* A read-only commit cannot be zeroed by writing: the host zeroes it. */
    decommit_at(s, a, 2 * PAGE);
    commit_at(s, a, 2 * PAGE, PAGE_READONLY);
    assert_true(all_zero(a, 2 * PAGE));
    /* Released with contents, reserved again at the same place: zeros. */
    decommit_at(s, a, 8 * PAGE);
    assert_int_equal(slot_virtual_free(s, a, 0, MEM_RELEASE), 0);
    assert_int_equal(ram_free_pages(&ram), 64);
    unsigned char *b;
    assert_int_equal(slot_virtual_alloc(s, a, 8 * PAGE, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE,
                                        (void **)&b), 0);
    assert_ptr_equal(b, a);
    assert_int_equal(ram_free_pages(&ram), 56);
    assert_true(all_zero(b, 8 * PAGE));
    struct slot_stats st;
    slot_get_stats(s, &st);
    assert_int_equal(st.committed_pages, 8);
    slot_destroy(s);
    assert_int_equal(ram_free_pages(&ram), 64);
}

/* Committed pages moved to another reservation (a heap's large item that
 * moves), in a fresh slot: the contents arrive; the source is reserved and
 * holds no memory when the host moved the pages, still committed with its
 * bytes when it copied them (`moved` says which is expected); RAM is
 * charged for both at once (the peak of a copy); a move RAM cannot hold,
 * or of pages in other states, changes nothing.  NULL, or what went wrong
 * (it also runs in a child, where cmocka's asserts cannot be used). */
static const char *check_move_committed(bool moved)
{
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 64);
    unsigned char *a = reserve_new(s, 8 * PAGE), *b = reserve_new(s, 8 * PAGE);
    commit_at(s, a, 4 * PAGE, PAGE_READWRITE);
    for (unsigned i = 0; i < 4 * PAGE; i++) {
        a[i] = (unsigned char)(i * 7 + 1);
    }
    if (slot_move_committed(s, b, a, 4 * PAGE) != 0) {
        return "the move failed";
    }
    for (unsigned i = 0; i < 4 * PAGE; i++) {
        if (b[i] != (unsigned char)(i * 7 + 1)) {
            return "a byte did not arrive";
        }
    }
    MEMORY_BASIC_INFORMATION m;
    struct slot_stats st;
    slot_get_stats(s, &st);
    if (slot_virtual_query(s, b, &m) != 0 || m.State != MEM_COMMIT || m.Protect != PAGE_READWRITE ||
        m.RegionSize != 4 * PAGE || st.peak_committed_pages != 8) {
        return "the destination is not committed read/write, or the peak is not both copies";
    }
    if (slot_virtual_query(s, a, &m) != 0) {
        return "no query of the source";
    }
    if (moved) {
        if (m.State != MEM_RESERVE || m.RegionSize != 8 * PAGE || st.committed_pages != 4 ||
            ram_free_pages(&ram) != 60 || resident_pages(a, 4) != 0) {
            return "moved: the source is not reserved and empty, or the counts are off";
        }
        commit_at(s, a, 4 * PAGE, PAGE_READWRITE);
        if (!all_zero(a, 4 * PAGE)) {
            return "moved: the source committed again is not zero";
        }
    } else if (m.State != MEM_COMMIT || a[4 * PAGE - 1] != (unsigned char)((4 * PAGE - 1) * 7 + 1) ||
               st.committed_pages != 8 || ram_free_pages(&ram) != 56) {
        return "copied: the source did not stay committed with its bytes";
    }
    decommit_at(s, a, 4 * PAGE);
    /* Refused: RAM for both copies (60 free, 40 + 40 needed), a source page
     * not read/write, a destination page committed, the same reservation. */
    unsigned char *c = reserve_new(s, 48 * PAGE), *d = reserve_new(s, 48 * PAGE);
    commit_at(s, c, 40 * PAGE, PAGE_READWRITE);
    c[0] = 9;
    DWORD was;
    if (slot_move_committed(s, d, c, 40 * PAGE) != ERROR_NOT_ENOUGH_MEMORY || c[0] != 9 ||
        ram_free_pages(&ram) != 20 || slot_virtual_query(s, d, &m) != 0 || m.State != MEM_RESERVE ||
        slot_virtual_protect(s, c + PAGE, PAGE, PAGE_READONLY, &was) != 0 ||
        slot_move_committed(s, d, c, 4 * PAGE) != ERROR_NOT_SUPPORTED) {
        return "a move RAM cannot hold, or of a read-only page, was not refused";
    }
    commit_at(s, d + 2 * PAGE, PAGE, PAGE_READWRITE);
    if (slot_move_committed(s, d, c + 2 * PAGE, 4 * PAGE) != ERROR_NOT_SUPPORTED ||
        slot_move_committed(s, c + 8 * PAGE, c + 2 * PAGE, 4 * PAGE) != ERROR_INVALID_PARAMETER ||
        ram_free_pages(&ram) != 19) {
        return "a move onto a committed page, or inside one reservation, was not refused";
    }
    slot_destroy(s);
    return ram_free_pages(&ram) == 64 ? NULL : "RAM not all given back";
}

static void test_move_committed_hands_pages_over(void **state)
{
    (void)state;
    int moves = testutil_host_moves_pages();
    assert_true(moves >= 0);
    const char *problem = check_move_committed(moves == 1);
    if (problem != NULL) {
        fail_msg("%s", problem);
    }
}

/* The same where the host refuses mremap (a seccomp filter, in a child):
 * the pages are copied. */
static void test_move_committed_copies_without_mremap(void **state)
{
    (void)state;
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
        skip(); /* under valgrind, whose own mremap calls would meet the filter */
    }
    (void)testutil_host_moves_pages(); /* the probe's answer, before the filter */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        const char *problem = forbid_syscall(__NR_mremap) ? check_move_committed(false) : "no filter";
        if (problem != NULL) {
            (void)!write(2, problem, strlen(problem));
        }
        _exit(problem == NULL ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A destination whose memory the host kept (its pages written, then
 * decommitted: stale) is copied into rather than moved onto: the source
 * stays committed with its bytes, to be kept in turn when it is freed,
 * and the destination faults nothing. */
static void test_move_committed_copies_into_kept_pages(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 64);
    unsigned char *a = reserve_new(s, 8 * PAGE), *b = reserve_new(s, 8 * PAGE);
    commit_at(s, b, 4 * PAGE, PAGE_READWRITE);
    memset(b, 0xEE, 4 * PAGE);
    decommit_at(s, b, 4 * PAGE);
    commit_at(s, a, 4 * PAGE, PAGE_READWRITE);
    for (unsigned i = 0; i < 4 * PAGE; i++) {
        a[i] = (unsigned char)(i * 5 + 3);
    }
    assert_int_equal(slot_move_committed(s, b, a, 4 * PAGE), 0);
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(slot_virtual_query(s, a, &m), 0);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(resident_pages(b, 4), 4);
    for (unsigned i = 0; i < 4 * PAGE; i++) {
        assert_int_equal(a[i], (unsigned char)(i * 5 + 3));
        assert_int_equal(b[i], (unsigned char)(i * 5 + 3));
    }
    assert_int_equal(ram_free_pages(&ram), 56);
    slot_destroy(s);
    ram_release(&ram);
}

/* mremap refused with MREMAP_DONTUNMAP only (args[3], its flags), as
 * under valgrind or before Linux 5.7. */
static bool forbid_mremap_dontunmap(void)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mremap, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 4 /* MREMAP_DONTUNMAP */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EINVAL & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    return install_syscall_filter(code, sizeof code / sizeof code[0]);
}

/* Where the host refuses MREMAP_DONTUNMAP (a filter, in a child), the
 * pages still move: a plain move and the source mapped again,
 * inaccessible, so that committed again it reads as zero. */
static void test_move_committed_moves_without_dontunmap(void **state)
{
    (void)state;
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
        skip(); /* under valgrind, whose own mremap calls would meet the filter */
    }
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        const char *problem = "no filter";
        if (forbid_mremap_dontunmap()) {
            os_move_probe_again();
            problem = testutil_host_moves_pages() == 1 ? check_move_committed(true) : "no move";
        }
        if (problem != NULL) {
            (void)!write(2, problem, strlen(problem));
        }
        _exit(problem == NULL ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Past the bound on kept pages, a decommit hands its pages to the host:
 * they are no longer resident, still read as zeros, and RAM is exact. */
static void test_decommit_past_the_bound_gives_pages_back(void **state)
{
    (void)state;
    const unsigned big = 9000; /* more pages than the slot keeps (8192) */
    struct ram ram;
    ram_init(&ram, big + 64, PAGE, NULL);
    struct slot_config c = config(64 * MB, &ram);
    struct slot *s;
    assert_int_equal(slot_create(&c, &s), 0);
    unsigned char *a = commit_new(s, (size_t)big * PAGE);
    memset(a, 0xC3, (size_t)big * PAGE);
    decommit_at(s, a, (size_t)big * PAGE);
    assert_int_equal(ram_free_pages(&ram), big + 64);
    assert_int_equal(resident_pages(a, 64), 0);
    commit_at(s, a, (size_t)big * PAGE, PAGE_READWRITE);
    assert_true(all_zero(a, (size_t)big * PAGE));
    assert_int_equal(ram_free_pages(&ram), 64);
    slot_destroy(s);
    assert_int_equal(ram_free_pages(&ram), big + 64);
}

/* A committed page never touched holds no host memory: decommitted and
 * committed again it is not faulted in by the zeroing. */
static void test_recommit_does_not_touch_untouched_pages(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 64);
    unsigned char *a = commit_new(s, 4 * PAGE);
    memset(a, 0x11, 2 * PAGE);
    decommit_at(s, a, 4 * PAGE);
    commit_at(s, a, 4 * PAGE, PAGE_READWRITE);
    assert_int_equal(resident_pages(a, 4), 2);
    assert_true(all_zero(a, 4 * PAGE));
    assert_int_equal(ram_free_pages(&ram), 60);
    slot_destroy(s);
}

static void test_failure_reasons_are_counted(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 4);
    void *blocks[511];
    for (int i = 0; i < 511; i++) {
        assert_int_equal(slot_virtual_alloc(s, NULL, PAGE, MEM_RESERVE, PAGE_NOACCESS, &blocks[i]), 0);
    }
    /* Free every other block: 255 free, none adjacent. */
    for (int i = 0; i < 511; i += 2) {
        assert_int_equal(slot_virtual_free(s, blocks[i], 0, MEM_RELEASE), 0);
    }
    void *p;
    assert_int_equal(slot_virtual_alloc(s, NULL, 2 * BLOCK, MEM_RESERVE, PAGE_NOACCESS, &p),
                     ERROR_NOT_ENOUGH_MEMORY);
    assert_int_equal(slot_virtual_alloc(s, NULL, 300 * BLOCK, MEM_RESERVE, PAGE_READWRITE, &p),
                     ERROR_NOT_ENOUGH_MEMORY);
    assert_int_equal(slot_virtual_alloc(s, NULL, 5 * PAGE, MEM_COMMIT, PAGE_READWRITE, &p),
                     ERROR_NOT_ENOUGH_MEMORY);
    struct slot_stats st;
    slot_get_stats(s, &st);
    assert_int_equal(st.fail_fragmented, 1);
    assert_int_equal(st.fail_exhausted, 1);
    assert_int_equal(st.fail_ram, 1);
    assert_int_equal(st.largest_free_run, 1);
    slot_destroy(s);
}

/* The map's cells: a capital for each reservation's first block; and the
 * peak's map, kept copy-on-write: the last moment the slot held its peak
 * of reserved blocks, with the changes made while it stayed there. */
static void test_map_marks_reservations_and_keeps_the_peak(void **state)
{
    (void)state;
    struct ram ram;
    ram_init(&ram, 4096, PAGE, NULL);
    struct slot *s;
    struct slot_config c = config(MB, &ram);
    c.peak_times = true;
    assert_int_equal(slot_create(&c, &s), 0);
    char now[17] = {0}, peak[17] = {0};
    uint64_t t0 = 0, t1 = 0;
    char *a = reserve_new(s, 2 * BLOCK), *b = reserve_new(s, 2 * BLOCK);
    commit_at(s, a, PAGE, PAGE_READWRITE);
    slot_set_tag(s, b, SLOT_TAG_HEAP_LARGE);
    char *c3 = reserve_new(s, 3 * BLOCK);
    commit_at(s, c3, PAGE, PAGE_READWRITE); /* at the peak: part of its map */
    assert_int_equal(slot_map_marked(s, SLOT_MAP_NOW, now, 16, NULL), 16);
    assert_string_equal(now, "-CcLlCcc........");
    slot_map(s, now, 16);
    assert_string_equal(now, "-CCLLCCC........"); /* cebox_slot_map's form, unchanged */
    slot_map_marked(s, SLOT_MAP_PEAK, peak, 16, &t0);
    assert_string_equal(peak, "-CcLlCcc........");
    assert_true(t0 != 0);
    assert_int_equal(slot_virtual_free(s, b, 0, MEM_RELEASE), 0);
    decommit_at(s, a, PAGE);
    slot_map_marked(s, SLOT_MAP_NOW, now, 16, NULL);
    assert_string_equal(now, "-Rr..Ccc........");
    slot_map_marked(s, SLOT_MAP_PEAK, peak, 16, &t1);
    assert_string_equal(peak, "-CcLlCcc........");
    assert_int_equal(t1, t0);
    /* Two reservations side by side stay two; the slot is at its peak
     * again, so the map now is the peak's. */
    reserve_new(s, BLOCK);
    reserve_new(s, BLOCK);
    slot_map_marked(s, SLOT_MAP_PEAK, peak, 16, &t1);
    assert_string_equal(peak, "-RrRRCcc........");
    assert_true(t1 >= t0);
    slot_destroy(s);
    /* Without peak_times (no log to read them) the peaks go untimed. */
    c.peak_times = false;
    assert_int_equal(slot_create(&c, &s), 0);
    reserve_new(s, BLOCK);
    slot_map_marked(s, SLOT_MAP_PEAK, peak, 16, &t1);
    assert_string_equal(peak, "-R..............");
    assert_int_equal(t1, 0);
    slot_destroy(s);
    ram_release(&ram);
}

/* A slot of `bytes` whose RAM is a new session file of `pages` pages,
 * /dev/shm/cebox-test-NAME-PID (its path in path[cap]; the caller
 * unlinks it). */
static struct slot *new_slot_in_session(char *path, size_t cap, const char *name, size_t pages, size_t bytes,
                                        struct ram *ram)
{
    snprintf(path, cap, "/dev/shm/cebox-test-%s-%d", name, (int)getpid());
    unlink(path);
    assert_int_equal(ram_session_create(path, pages, PAGE, MEMSTATE_TABLE_CE5, MEMSTATE_COUNT, NULL), 0);
    assert_int_equal(ram_session_join(ram, path), 0);
    struct slot *s;
    struct slot_config c = config(bytes, ram);
    assert_int_equal(slot_create(&c, &s), 0);
    return s;
}

/* In a session, the map is published in the member's row: a reader of the
 * file (cebox map) copies what slot_map_marked gives. */
static void test_map_is_published_to_the_session(void **state)
{
    (void)state;
    char path[64];
    struct ram ram;
    struct slot *s = new_slot_in_session(path, sizeof path, "slot", 4096, MB, &ram);
    char *a = reserve_new(s, 3 * BLOCK);
    commit_new(s, BLOCK);
    assert_int_equal(slot_virtual_free(s, a, 0, MEM_RELEASE), 0);
    reserve_new(s, 2 * BLOCK);
    char mine[17] = {0}, seen[17] = {0};
    slot_map_marked(s, SLOT_MAP_NOW, mine, 16, NULL);
    struct ram_view v;
    assert_int_equal(ram_view_open(&v, path), 0);
    struct ram_view_member m[4];
    assert_int_equal(ram_view_members(&v, m, 4), 1);
    assert_int_equal(m[0].s.pid, getpid());
    assert_int_equal(m[0].map_blocks, 16);
    assert_int_equal(ram_view_map(&v, getpid(), seen, 16), 16);
    assert_string_equal(seen, mine);
    assert_string_equal(seen, "-Rr.C...........");
    assert_int_equal(ram_view_map(&v, getpid() + 1, seen, 16), 0); /* no such member */
    ram_view_close(&v);
    slot_destroy(s);
    ram_release(&ram);
    unlink(path);
}

static void *occupy_ok(struct slot *s, enum slot_tag tag, enum slot_place place, size_t offset, size_t bytes,
                       size_t c_off, size_t c_bytes)
{
    struct slot_occupant o = {.tag = tag, .place = place, .offset = offset, .bytes = bytes,
                              .commit_offset = c_off, .commit_bytes = c_bytes};
    void *base = NULL;
    assert_int_equal(slot_occupy(s, &o, &base), 0);
    return base;
}

/* os_reserve_aligned_below: an aligned reservation just under a mapping
 * made a moment before, in one call when that room is free, elsewhere
 * (still aligned, nothing overlapped) when it is not.  The free room is
 * one the kernel has just given and taken back (under valgrind, whose
 * own mappings sit where the kernel's would, no other is sure to be). */
static void test_reserve_aligned_below(void **state)
{
    (void)state;
    const size_t size = 64 * MB;
    void *room = NULL;
    assert_int_equal(os_reserve_aligned(size, size, &room), 0);
    assert_int_equal(os_release(room, size), 0);
    uintptr_t hint = (uintptr_t)room;
    char *below = (char *)room + size + PAGE; /* rounded down to the room itself */
    void *a = NULL;
    assert_int_equal(os_reserve_aligned_below(below, size, size, &a), 0);
    assert_ptr_equal(a, (void *)hint);
    assert_int_equal(os_release(a, size), 0);
    /* The room taken: the reservation goes elsewhere, clear of it. */
    assert_int_equal(os_reserve_at((void *)(hint + size - PAGE), PAGE), 0);
    assert_int_equal(os_reserve_aligned_below(below, size, size, &a), 0);
    assert_int_equal((uintptr_t)a % size, 0);
    assert_true((uintptr_t)a + size <= hint + size - PAGE || (uintptr_t)a >= hint + size);
    assert_int_equal(os_release(a, size), 0);
    assert_int_equal(os_release((void *)(hint + size - PAGE), PAGE), 0);
}

/* Is the page of p this process's alone (pagemap's "exclusively mapped"
 * bit), rather than still shared with the parent it was forked from? */
static bool page_exclusive(const void *p)
{
    uint64_t entry = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    bool read_ok = fd >= 0 && pread(fd, &entry, sizeof entry, (off_t)((uintptr_t)p / PAGE * sizeof entry)) ==
                                  (ssize_t)sizeof entry;
    if (fd >= 0) {
        close(fd);
    }
    return !read_ok || (entry >> 56 & 1) != 0;
}

/* A forked child's new row gets the whole map again, as the preload
 * library's fork handler publishes it (slot_forked_*: without the slot's
 * lock): reservations far apart, in chunks of cells other than the first,
 * the top block's included, read back from the session as they are in the
 * slot; and the page of the slot's own structure (its lock's) is still
 * the parent's, not copied for the handler. */
static void test_forked_child_publishes_the_whole_map(void **state)
{
    (void)state;
    char path[64];
    struct ram ram;
    struct slot *s = new_slot_in_session(path, sizeof path, "slotfork", 8192, 32 * MB, &ram);
    uintptr_t base = slot_base(s);
    const unsigned at[] = {70, 200, 300};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        void *want = (void *)(base + (uintptr_t)at[i] * BLOCK), *got = NULL;
        assert_int_equal(slot_virtual_alloc(s, want, 2 * BLOCK, MEM_RESERVE, PAGE_NOACCESS, &got), 0);
        assert_ptr_equal(got, want);
    }
    char *top = occupy_ok(s, SLOT_TAG_DLL, SLOT_PLACE_TOP, 0, PAGE, 0, PAGE);
    assert_ptr_equal(top, (char *)base + 511 * BLOCK);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        ram_forked(&ram, slot_forked_committed_pages(s));
        slot_forked_publish_map(s);
        bool shared_after = !page_exclusive(s);
        static char mine[512], seen[512];
        struct ram_view v;
        slot_map_marked(s, SLOT_MAP_NOW, mine, sizeof mine, NULL);
        bool same = ram_view_open(&v, path) == 0 &&
                    ram_view_map(&v, getpid(), seen, sizeof seen) == 512 && memcmp(mine, seen, 512) == 0 &&
                    mine[70] == 'R' && mine[301] == 'r' && mine[511] == 'D';
        _exit(!same ? 1 : !shared_after ? 2 : 0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    slot_destroy(s);
    ram_release(&ram);
    unlink(path);
}

static void test_occupants_take_their_places(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 4096);
    uintptr_t base = slot_base(s);
    /* The image at block 1 (70 KB: two blocks, its last page committed),
     * a stack first fit from the bottom, a DLL at the top. */
    char *image = occupy_ok(s, SLOT_TAG_IMAGE, SLOT_PLACE_AT, BLOCK, 70 * 1024, 68 * 1024, 2 * 1024);
    char *stack = occupy_ok(s, SLOT_TAG_STACK, SLOT_PLACE_BOTTOM, 0, BLOCK, BLOCK - PAGE, PAGE);
    char *dll = occupy_ok(s, SLOT_TAG_DLL, SLOT_PLACE_TOP, 0, 3 * PAGE, 0, 3 * PAGE);
    assert_ptr_equal(image, (char *)base + BLOCK);
    assert_ptr_equal(stack, (char *)base + 3 * BLOCK);
    assert_ptr_equal(dll, (char *)base + 511 * BLOCK);
    char map[512];
    assert_int_equal(slot_map(s, map, sizeof map), 512);
    assert_memory_equal(map, "-EES.", 5);
    assert_int_equal(map[511], 'D');
    assert_int_equal(ram_free_pages(&ram), 4096 - 1 - 1 - 3);
    /* Committed where asked, inaccessible; an image reads MEM_IMAGE. */
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(slot_virtual_query(s, image + 68 * 1024, &m), 0);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.Protect, PAGE_NOACCESS);
    assert_int_equal(m.Type, MEM_IMAGE);
    assert_int_equal(slot_virtual_query(s, image, &m), 0);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_int_equal(slot_virtual_query(s, stack + BLOCK - PAGE, &m), 0);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.Type, MEM_PRIVATE);
    /* The kinds of the peak. */
    struct slot_stats st;
    slot_get_stats(s, &st);
    assert_int_equal(st.image_pages_at_peak, 4);
    assert_int_equal(st.stack_pages_at_peak, 1);
    assert_int_equal(st.heap_pages_at_peak, 0);
    /* Block 1 is taken: a second image there finds no room. */
    struct slot_occupant again = {.tag = SLOT_TAG_IMAGE, .place = SLOT_PLACE_AT, .offset = BLOCK, .bytes = PAGE};
    void *p;
    assert_int_equal(slot_occupy(s, &again, &p), ERROR_NOT_ENOUGH_MEMORY);
    /* A stack goes back with its page; the next one takes its block. */
    assert_int_equal(slot_vacate(s, stack), 0);
    assert_int_equal(ram_free_pages(&ram), 4096 - 1 - 3);
    assert_int_equal(slot_vacate(s, stack), ERROR_INVALID_PARAMETER);
    assert_ptr_equal(occupy_ok(s, SLOT_TAG_STACK, SLOT_PLACE_BOTTOM, 0, BLOCK, BLOCK - PAGE, PAGE), stack);
    /* The program's own reservation is no occupant. */
    void *mine = reserve_new(s, PAGE);
    assert_int_equal(slot_vacate(s, mine), ERROR_INVALID_PARAMETER);
    slot_destroy(s);
    ram_release(&ram);
}

static void test_occupants_refused_cleanly(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s = new_slot_with_ram(&ram, 2);
    void *p = NULL;
    struct slot_occupant bad_tag = {.tag = SLOT_TAG_VIRTUAL, .place = SLOT_PLACE_BOTTOM, .bytes = PAGE};
    assert_int_equal(slot_occupy(s, &bad_tag, &p), ERROR_INVALID_PARAMETER);
    struct slot_occupant outside = {.tag = SLOT_TAG_DLL, .place = SLOT_PLACE_BOTTOM, .bytes = PAGE,
                                    .commit_offset = BLOCK, .commit_bytes = PAGE};
    assert_int_equal(slot_occupy(s, &outside, &p), ERROR_INVALID_PARAMETER);
    /* No RAM for its pages: nothing stays reserved. */
    struct slot_occupant big = {.tag = SLOT_TAG_STACK, .place = SLOT_PLACE_BOTTOM, .bytes = BLOCK,
                                .commit_bytes = 3 * PAGE};
    assert_int_equal(slot_occupy(s, &big, &p), ERROR_NOT_ENOUGH_MEMORY);
    struct slot_stats st;
    slot_get_stats(s, &st);
    assert_int_equal(st.reserved_blocks, 0);
    assert_int_equal(st.fail_ram + st.fail_exhausted, 0); /* no request of the program failed */
    /* No run of blocks. */
    struct slot_occupant huge = {.tag = SLOT_TAG_DLL, .place = SLOT_PLACE_TOP, .bytes = 512 * BLOCK};
    assert_int_equal(slot_occupy(s, &huge, &p), ERROR_NOT_ENOUGH_MEMORY);
    struct slot_occupant past_end = {.tag = SLOT_TAG_IMAGE, .place = SLOT_PLACE_AT, .offset = 511 * BLOCK,
                                     .bytes = 2 * BLOCK};
    assert_int_equal(slot_occupy(s, &past_end, &p), ERROR_NOT_ENOUGH_MEMORY);
    slot_destroy(s);
    ram_release(&ram);
}

/* Host mappings (lines of /proc/self/maps) that overlap [p, p + len). */
static unsigned host_mappings(const void *p, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long lo, hi;
    unsigned n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        n += sscanf(line, "%lx-%lx", &lo, &hi) == 2 && hi > (uintptr_t)p && lo < (uintptr_t)p + len;
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

#define REGION_BYTES 0x2F000u /* a CE 5 heap region: 47 pages in 3 blocks */

/* A slot with --commit-ahead `ahead` and a reservation of `bytes` in it
 * tagged `tag` (a heap's). */
static char *new_heap_reservation(struct slot **s, struct ram *ram, uint32_t ahead, size_t bytes,
                                  enum slot_tag tag)
{
    ram_init(ram, 1000, PAGE, NULL);
    struct slot_config c = config(32 * MB, ram);
    c.commit_ahead = ahead;
    assert_int_equal(slot_create(&c, s), 0);
    char *r;
    assert_int_equal(slot_virtual_alloc(*s, NULL, bytes, MEM_RESERVE, PAGE_READWRITE, (void **)&r), 0);
    slot_set_tag(*s, r, tag);
    return r;
}

/* A slot with --commit-ahead `ahead` and a heap region in it. */
static char *new_heap_region(struct slot **s, struct ram *ram, uint32_t ahead)
{
    return new_heap_reservation(s, ram, ahead, REGION_BYTES, SLOT_TAG_HEAP_REGION);
}

/* Grows the large item at l of s by `pages` pages from page `at`. */
static void grow_at(struct slot *s, char *l, unsigned at, unsigned pages)
{
    assert_int_equal(slot_commit_growth(s, l + (size_t)at * PAGE, (size_t)pages * PAGE), 0);
}

/* With read-ahead, a heap region's commit that needs a host call opens
 * the next pages too, uncommitted in the books; a decommit closes them
 * (even with no committed page in its range); once the region's last
 * usable page is open its block's unusable page is too, so full regions
 * side by side are one host mapping; a release closes everything.  The
 * exact mode and other reservations open nothing ahead. */
static void test_commit_ahead_opens_only_the_host(void **state)
{
    (void)state;
    struct ram ram, ram0;
    struct slot *s, *s0;
    char *r = new_heap_region(&s, &ram, 4), *r0 = new_heap_region(&s0, &ram0, 0);
    commit_at(s, r, PAGE, PAGE_READWRITE);
    commit_at(s0, r0, PAGE, PAGE_READWRITE);
    assert_false(access_faults(r + 4 * PAGE, true));
    assert_true(access_faults(r + 5 * PAGE, false));
    assert_true(access_faults(r0 + PAGE, false));
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(slot_virtual_query(s, r + PAGE, &m), 0);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_int_equal(m.RegionSize, REGION_BYTES - PAGE);
    assert_int_equal(ram_free_pages(&ram), 999);
    /* Commits inside the open window; one past it opens the next. */
    commit_at(s, r + PAGE, 4 * PAGE, PAGE_READWRITE);
    assert_true(access_faults(r + 5 * PAGE, false));
    commit_at(s, r + 5 * PAGE, PAGE, PAGE_READWRITE);
    assert_false(access_faults(r + 9 * PAGE, true));
    assert_true(access_faults(r + 10 * PAGE, false));
    /* A decommit of reserved pages only closes the open ones. */
    decommit_at(s, r + 6 * PAGE, 10 * PAGE);
    assert_true(access_faults(r + 6 * PAGE, false));
    assert_int_equal(ram_free_pages(&ram), 994);
    /* Two full regions side by side: one host mapping with read-ahead. */
    char *r2, *q2;
    assert_int_equal(slot_virtual_alloc(s, NULL, REGION_BYTES, MEM_RESERVE, PAGE_READWRITE, (void **)&r2), 0);
    assert_int_equal(slot_virtual_alloc(s0, NULL, REGION_BYTES, MEM_RESERVE, PAGE_READWRITE, (void **)&q2), 0);
    assert_ptr_equal(r2, r + 3 * BLOCK);
    slot_set_tag(s, r2, SLOT_TAG_HEAP_REGION);
    slot_set_tag(s0, q2, SLOT_TAG_HEAP_REGION);
    commit_at(s, r, REGION_BYTES, PAGE_READWRITE);
    commit_at(s, r2, REGION_BYTES, PAGE_READWRITE);
    commit_at(s0, r0, REGION_BYTES, PAGE_READWRITE);
    commit_at(s0, q2, REGION_BYTES, PAGE_READWRITE);
    assert_int_equal(host_mappings(r, 6 * BLOCK), 1);
    assert_int_equal(host_mappings(r0, 6 * BLOCK), 4);
    assert_int_equal(ram_free_pages(&ram), ram_free_pages(&ram0));
    /* Released: the unusable page closes with the rest. */
    assert_int_equal(slot_virtual_free(s, r, 0, MEM_RELEASE), 0);
    assert_true(access_faults(r + REGION_BYTES, false));
    assert_true(access_faults(r, false));
    /* A reservation of the program's own reads nothing ahead. */
    char *v = reserve_new(s, 4 * PAGE);
    commit_at(s, v, PAGE, PAGE_READWRITE);
    assert_true(access_faults(v + PAGE, false));
    slot_destroy(s);
    slot_destroy(s0);
    ram_release(&ram);
    ram_release(&ram0);
}

/* A read-ahead that would leave fewer than --commit-ahead pages before
 * the region's end opens them too, with the unusable rest of its last
 * block; one that leaves more opens only --commit-ahead pages. */
static void test_commit_ahead_takes_a_short_rest_along(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s;
    char *r = new_heap_region(&s, &ram, 4);
    commit_at(s, r + 20 * PAGE, PAGE, PAGE_READWRITE); /* 26 pages left after it */
    assert_false(access_faults(r + 24 * PAGE, true));
    assert_true(access_faults(r + 25 * PAGE, false));
    commit_at(s, r + 40 * PAGE, PAGE, PAGE_READWRITE); /* 6 left: fewer than 8 */
    assert_false(access_faults(r + 46 * PAGE, true));
    assert_false(access_faults(r + REGION_BYTES, true));
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(slot_virtual_query(s, r + 41 * PAGE, &m), 0);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_int_equal(ram_free_pages(&ram), 998);
    slot_destroy(s);
    ram_release(&ram);
}

/* A heap's large item reads ahead only as it grows in place
 * (slot_commit_growth), never at its first commit; its read-ahead pages
 * are reserved in the books (RAM, VirtualQuery: those of the exact mode),
 * stop at its reservation's end, and a decommit of its tail (a shrink)
 * closes and discards them: a stray write there reads as zero once the
 * item grows over it.  The exact mode, and a growth of a reservation that
 * is no large item, open nothing ahead. */
static void test_commit_ahead_grows_large_items(void **state)
{
    (void)state;
    struct ram ram, ram0;
    struct slot *s, *s0;
    char *l = new_heap_reservation(&s, &ram, 4, BLOCK, SLOT_TAG_HEAP_LARGE);
    char *l0 = new_heap_reservation(&s0, &ram0, 0, BLOCK, SLOT_TAG_HEAP_LARGE);
    commit_at(s, l, PAGE, PAGE_READWRITE);
    commit_at(s0, l0, PAGE, PAGE_READWRITE);
    assert_true(access_faults(l + PAGE, false));
    grow_at(s, l, 1, 1);
    grow_at(s0, l0, 1, 1);
    assert_false(access_faults(l + 5 * PAGE, true));
    assert_true(access_faults(l + 6 * PAGE, false));
    assert_true(access_faults(l0 + 2 * PAGE, false));
    MEMORY_BASIC_INFORMATION m, m0;
    assert_int_equal(slot_virtual_query(s, l + 2 * PAGE, &m), 0);
    assert_int_equal(slot_virtual_query(s0, l0 + 2 * PAGE, &m0), 0);
    assert_int_equal(m.State, MEM_RESERVE);
    assert_int_equal(m.RegionSize, m0.RegionSize);
    assert_int_equal(ram_free_pages(&ram), 998);
    assert_int_equal(ram_free_pages(&ram0), 998);
    /* Steps inside the open window open nothing; the next one does. */
    grow_at(s, l, 2, 4);
    assert_true(access_faults(l + 6 * PAGE, false));
    grow_at(s, l, 6, 1);
    assert_false(access_faults(l + 10 * PAGE, true));
    assert_true(access_faults(l + 11 * PAGE, false));
    /* A shrink closes the read-ahead above it, and what a stray write
     * left there is gone when the item grows over it again. */
    l[8 * PAGE] = 0x77;
    decommit_at(s, l + 4 * PAGE, 3 * PAGE);
    assert_true(access_faults(l + 8 * PAGE, false));
    grow_at(s, l, 4, 5);
    assert_int_equal(l[8 * PAGE], 0);
    /* The read-ahead stops at the reservation's end. */
    grow_at(s, l, 9, 5);
    assert_false(access_faults(l + 15 * PAGE, true));
    assert_true(access_faults(l + BLOCK, false));
    assert_int_equal(ram_free_pages(&ram), 1000 - 14);
    /* Freed (decommitted, then released): nothing stays open. */
    decommit_at(s, l, 14 * PAGE);
    assert_true(access_faults(l + 15 * PAGE, false));
    assert_int_equal(slot_virtual_free(s, l, 0, MEM_RELEASE), 0);
    /* A growth of a reservation of the program's own reads nothing ahead. */
    char *v = reserve_new(s, 4 * PAGE);
    commit_at(s, v, PAGE, PAGE_READWRITE);
    grow_at(s, v, 1, 1);
    assert_true(access_faults(v + 2 * PAGE, false));
    slot_destroy(s);
    slot_destroy(s0);
    ram_release(&ram);
    ram_release(&ram0);
}

/* A large item that moves (slot_move_committed) takes no read-ahead
 * along: the old item's read-ahead pages close with the move, and a stray
 * write into them reads as zero in the next reservation there. */
static void test_commit_ahead_closes_with_a_move(void **state)
{
    (void)state;
    struct ram ram;
    struct slot *s;
    char *l = new_heap_reservation(&s, &ram, 4, BLOCK, SLOT_TAG_HEAP_LARGE);
    commit_at(s, l, PAGE, PAGE_READWRITE);
    grow_at(s, l, 1, 1);
    memset(l, 0x5A, 2 * PAGE);
    assert_false(access_faults(l + 3 * PAGE, true));
    l[3 * PAGE] = 0x77;
    char *d;
    assert_int_equal(slot_virtual_alloc(s, NULL, 2 * BLOCK, MEM_RESERVE, PAGE_READWRITE, (void **)&d), 0);
    slot_set_tag(s, d, SLOT_TAG_HEAP_LARGE);
    grow_at(s, d, 2, 1);
    assert_int_equal(slot_move_committed(s, d, l, 2 * PAGE), 0);
    MEMORY_BASIC_INFORMATION m;
    assert_int_equal(slot_virtual_query(s, l, &m), 0);
    if (m.State == MEM_RESERVE) { /* the host moved the pages */
        assert_true(access_faults(l + 3 * PAGE, false));
    }
    assert_int_equal(d[2 * PAGE - 1], 0x5A);
    /* As the heap frees the old item: decommitted (a copy, where the host
     * cannot move pages, leaves them committed), then released. */
    assert_int_equal(slot_virtual_free(s, l, 2 * PAGE, MEM_DECOMMIT), 0);
    assert_int_equal(slot_virtual_free(s, l, 0, MEM_RELEASE), 0);
    char *again;
    assert_int_equal(slot_virtual_alloc(s, l, BLOCK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE, (void **)&again), 0);
    assert_ptr_equal(again, l);
    assert_true(all_zero((unsigned char *)l, BLOCK));
    slot_destroy(s);
    ram_release(&ram);
}

/* Where a device has its slot: 32 MB-aligned below 2 GB, the first free
 * one from 0x04000000; a second slot takes the next. */
static void test_slot_is_placed_as_on_a_device(void **state)
{
    (void)state;
    struct ram ram;
    ram_init(&ram, 64, PAGE, NULL);
    struct slot *a = new_slot(&ram), *b = new_slot(&ram);
    assert_true(slot_base(a) >= 0x16000000u && slot_base(a) + 32 * MB <= 0x80000000u);
    assert_int_equal(slot_base(a) % (32 * MB), 0);
    assert_int_equal(slot_base(b) % (32 * MB), 0);
    assert_true(slot_base(b) < 0x80000000u);
    assert_true(slot_base(b) != slot_base(a));
    /* Something mapped where the first one was: the next free place. */
    uintptr_t first = slot_base(a);
    slot_destroy(a);
    void *blocker = mmap((void *)first, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    assert_ptr_equal(blocker, (void *)first);
    a = new_slot(&ram);
    assert_true(slot_base(a) != first && slot_base(a) % (32 * MB) == 0);
    munmap(blocker, PAGE);
    slot_destroy(a);
    slot_destroy(b);
    ram_release(&ram);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_configurations_are_refused),
        cmocka_unit_test(test_odd_sized_slot_is_aligned_and_bounded),
        cmocka_unit_test(test_ram_is_charged_and_given_back),
        cmocka_unit_test(test_ram_charge_is_exact),
        cmocka_unit_test(test_bookkeeping_is_outside_the_slot),
        cmocka_unit_test(test_release_of_lma_and_unknown_addresses),
        cmocka_unit_test(test_query_type_after_mprotect_and_munmap),
        cmocka_unit_test(test_munmap_in_pieces_releases_at_the_end),
        cmocka_unit_test(test_mprotect_commits_and_keeps_contents),
        cmocka_unit_test(test_mprotect_none_keeps_runs_and_gaps),
        cmocka_unit_test(test_map_fixed),
        cmocka_unit_test(test_failure_reasons_are_counted),
        cmocka_unit_test(test_decommit_then_recommit_reads_zeros),
        cmocka_unit_test(test_decommit_past_the_bound_gives_pages_back),
        cmocka_unit_test(test_recommit_does_not_touch_untouched_pages),
        cmocka_unit_test(test_map_marks_reservations_and_keeps_the_peak),
        cmocka_unit_test(test_map_is_published_to_the_session),
        cmocka_unit_test(test_occupants_take_their_places),
        cmocka_unit_test(test_occupants_refused_cleanly),
        cmocka_unit_test(test_slot_is_placed_as_on_a_device),
        cmocka_unit_test(test_commit_ahead_opens_only_the_host),
        cmocka_unit_test(test_commit_ahead_grows_large_items),
        cmocka_unit_test(test_commit_ahead_closes_with_a_move),
        cmocka_unit_test(test_commit_ahead_takes_a_short_rest_along),
        cmocka_unit_test(test_move_committed_moves_without_dontunmap),
        cmocka_unit_test(test_move_committed_copies_into_kept_pages),
        cmocka_unit_test(test_move_committed_hands_pages_over),
        cmocka_unit_test(test_move_committed_copies_without_mremap),
        cmocka_unit_test(test_forked_child_publishes_the_whole_map),
        cmocka_unit_test(test_reserve_aligned_below),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
