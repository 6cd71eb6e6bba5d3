/*
 * test_runindex.c - the free-run index against a brute-force scan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runindex.h"

#define MAXB 65534

static bool used[MAXB];

static uint32_t brute_first(uint32_t n, uint32_t count)
{
    for (uint32_t b = 0; b + count <= n; b++) {
        uint32_t k = 0;
        while (k < count && !used[b + k]) {
            k++;
        }
        if (k == count) {
            return b;
        }
    }
    return UINT32_MAX;
}

static uint32_t brute_last(uint32_t n, uint32_t count)
{
    for (uint32_t e = n; e >= count; e--) {
        uint32_t k = 0;
        while (k < count && !used[e - 1 - k]) {
            k++;
        }
        if (k == count) {
            return e - count;
        }
    }
    return UINT32_MAX;
}

static uint32_t brute_longest(uint32_t n)
{
    uint32_t best = 0, run = 0;
    for (uint32_t b = 0; b < n; b++) {
        run = used[b] ? 0 : run + 1;
        best = run > best ? run : best;
    }
    return best;
}

static void check_random_runs(uint32_t n, unsigned seed, uint32_t max_count)
{
    void *mem = calloc(1, runindex_bytes(n));
    struct runindex *ri = runindex_init(mem, n);
    srand(seed);
    for (uint32_t b = 0; b < n; b++) {
        used[b] = false;
    }
    for (int step = 0; step < 4000; step++) {
        uint32_t first = (uint32_t)rand() % n;
        uint32_t count = 1 + (uint32_t)rand() % max_count;
        if (first + count > n) {
            count = n - first;
        }
        bool make_used = rand() % 2;
        for (uint32_t b = first; b < first + count; b++) {
            used[b] = make_used;
        }
        if (make_used) {
            runindex_set_used(ri, first, count);
        } else {
            runindex_set_free(ri, first, count);
        }
        uint32_t want = 1 + (uint32_t)rand() % 12;
        assert_int_equal(runindex_first_fit(ri, want), brute_first(n, want));
        assert_int_equal(runindex_last_fit(ri, want), brute_last(n, want));
        assert_int_equal(runindex_longest(ri), brute_longest(n));
    }
    free(mem);
}

static void check_random(uint32_t n, unsigned seed)
{
    check_random_runs(n, seed, 8);
}

static void test_matches_brute_force_512(void **state)
{
    (void)state;
    check_random(512, 1);
}

static void test_matches_brute_force_odd_sizes(void **state)
{
    (void)state;
    check_random(37, 2);
    check_random(1, 3);
    check_random(600, 4);
    check_random(65534, 5); /* the most blocks: three groups of levels (one in the top tile) */
}

/* Runs of hundreds of blocks: their inner ancestors are written whole,
 * without reading their children (runindex.c's set_range). */
static void test_matches_brute_force_long_runs(void **state)
{
    (void)state;
    check_random_runs(512, 6, 300);
    check_random_runs(1000, 7, 700);
    check_random_runs(65534, 8, 5000);
}

static void test_empty_and_zero_requests(void **state)
{
    (void)state;
    void *mem = calloc(1, runindex_bytes(8));
    struct runindex *ri = runindex_init(mem, 8);
    assert_int_equal(runindex_first_fit(ri, 0), UINT32_MAX);
    assert_int_equal(runindex_first_fit(ri, 8), 0);
    assert_int_equal(runindex_first_fit(ri, 9), UINT32_MAX);
    assert_int_equal(runindex_last_fit(ri, 3), 5);
    runindex_set_used(ri, 0, 8);
    assert_int_equal(runindex_first_fit(ri, 1), UINT32_MAX);
    assert_int_equal(runindex_last_fit(ri, 1), UINT32_MAX);
    assert_int_equal(runindex_longest(ri), 0);
    free(mem);
}

/* A fresh index writes nothing (its nodes are computed from their place
 * until first changed): queries over an untouched tree of a size that is
 * no power of two, then right after the first change. */
static void test_untouched_tree(void **state)
{
    (void)state;
    const uint32_t n = 1000;
    void *mem = calloc(1, runindex_bytes(n));
    struct runindex *ri = runindex_init(mem, n);
    assert_int_equal(runindex_longest(ri), n);
    assert_int_equal(runindex_first_fit(ri, n), 0);
    assert_int_equal(runindex_first_fit(ri, n + 1), UINT32_MAX);
    assert_int_equal(runindex_last_fit(ri, 1), n - 1);
    assert_int_equal(runindex_last_fit(ri, 24), n - 24);
    assert_int_equal(runindex_last_fit(ri, n), 0);
    runindex_set_used(ri, 0, 1);
    assert_int_equal(runindex_longest(ri), n - 1);
    assert_int_equal(runindex_first_fit(ri, n - 1), 1);
    assert_int_equal(runindex_first_fit(ri, 3), 1);
    assert_int_equal(runindex_last_fit(ri, 5), n - 5);
    runindex_set_used(ri, 700, 1);
    assert_int_equal(runindex_longest(ri), 699);
    assert_int_equal(runindex_first_fit(ri, 300), 1);
    assert_int_equal(runindex_last_fit(ri, 299), 701);
    assert_int_equal(runindex_last_fit(ri, 300), 400);
    free(mem);
}

/* An index of n blocks in fresh pages of its own (none in memory yet). */
struct fresh_index {
    void *mem;
    size_t bytes;
    struct runindex *ri;
};

static struct fresh_index index_in_fresh_pages(uint32_t n)
{
    struct fresh_index f = {NULL, runindex_bytes(n), NULL};
    f.mem = mmap(NULL, f.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(f.mem != MAP_FAILED);
    f.ri = runindex_init(f.mem, n);
    return f;
}

/* Its pages in memory; *first: whether the first (the header's) is. */
static size_t resident_pages(const struct fresh_index *f, bool *first)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = (f->bytes + page - 1) / page, resident = 0;
    unsigned char *vec = malloc(pages);
    assert_non_null(vec);
    assert_int_equal(mincore(f->mem, f->bytes, vec), 0);
    for (size_t i = 0; i < pages; i++) {
        resident += vec[i] & 1;
    }
    *first = (vec[0] & 1) != 0;
    free(vec);
    return resident;
}

#define CE6_BLOCKS 32768u

/* A change and the searches that follow touch one page per group of
 * levels (runindex.c), not one per level: on ce6's 32 768 blocks, block 1
 * and the last block marked used (as a start places its image and a
 * library) then searched next to fill the page of the header and top
 * tile and one tile for each, and no other page of its 512 KB (the plain
 * heap layout filled 16, tiles of 16-byte nodes 5). */
static void test_a_path_is_a_page_per_group(void **state)
{
    (void)state;
    struct fresh_index f = index_in_fresh_pages(CE6_BLOCKS);
    bool first;
    runindex_set_used(f.ri, 1, 1);
    runindex_set_used(f.ri, CE6_BLOCKS - 1, 1);
    assert_int_equal(runindex_first_fit(f.ri, 3), 2);
    assert_int_equal(runindex_last_fit(f.ri, 3), CE6_BLOCKS - 4);
    assert_true(resident_pages(&f, &first) <= 3);
    munmap(f.mem, f.bytes);
}

/* Searching a fresh tree reads no tile of it (a bit per tile says it is
 * pristine): only the header's page is in memory after a search to each
 * end, and a change then faults in only the tiles it writes. */
static void test_a_search_reads_no_pristine_tile(void **state)
{
    (void)state;
    struct fresh_index f = index_in_fresh_pages(CE6_BLOCKS);
    bool first;
    assert_int_equal(runindex_last_fit(f.ri, 3), CE6_BLOCKS - 3);
    assert_int_equal(runindex_first_fit(f.ri, 3), 0);
    assert_int_equal(resident_pages(&f, &first), 1);
    assert_true(first);
    munmap(f.mem, f.bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_brute_force_512),
        cmocka_unit_test(test_matches_brute_force_odd_sizes),
        cmocka_unit_test(test_empty_and_zero_requests),
        cmocka_unit_test(test_untouched_tree),
        cmocka_unit_test(test_a_path_is_a_page_per_group),
        cmocka_unit_test(test_matches_brute_force_long_runs),
        cmocka_unit_test(test_a_search_reads_no_pristine_tile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
