/*
 * test_meta.c - the bookkeeping allocator's contract (src/meta.h): blocks
 * come zero-filled and aligned; a grow keeps the contents and zeroes the
 * tail, in place or moved; a failed grow leaves the old block as it was;
 * meta_fail_after(n) fails the n-th allocation and no other; the bytes in
 * use come back to where they started.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "meta.h"
#include "testutil.h"

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(seed + i * 7);
    }
}

static bool filled(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)(seed + i * 7)) {
            return false;
        }
    }
    return true;
}

/* A process's first blocks are cut one after the other from one mapping
 * (the start's: one mmap for them all), each its own pages: a freed one's
 * pages are not cut again, and every block is zero-filled.  (Run first:
 * the start's mapping has room for these.) */
static void first_blocks_are_cut_in_turn(void **state)
{
    (void)state;
    unsigned char *a = meta_alloc(100), *b = meta_alloc(page() + 1), *c = meta_alloc(1);
    assert_non_null(a);
    assert_ptr_equal(b, a + page());
    assert_ptr_equal(c, b + 2 * page());
    fill(a, page(), 1);
    meta_free(a, 100);
    unsigned char *d = meta_alloc(page());
    assert_ptr_equal(d, c + page()); /* a's page is not cut again */
    for (size_t i = 0; i < page(); i++) {
        assert_int_equal(d[i], 0);
    }
    meta_free(b, page() + 1);
    meta_free(c, 1);
    meta_free(d, page());
}

static void zero_filled_and_aligned(void **state)
{
    (void)state;
    size_t sizes[] = {1, 100, page() - 1, page(), page() + 1, 5 * page() + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = meta_alloc(sizes[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        assert_true(all_zero(p, sizes[i]));
        fill(p, sizes[i], 3); /* writable to the last byte */
        meta_free(p, sizes[i]);
    }
    assert_null(meta_alloc(0));
    assert_null(meta_alloc(SIZE_MAX));
    assert_null(meta_alloc(SIZE_MAX - page() + 2));
    meta_free(NULL, 100); /* nothing */
}

static void grow_keeps_contents_and_zeroes_the_tail(void **state)
{
    (void)state;
    /* In place (same pages). */
    unsigned char *p = meta_alloc(100);
    assert_non_null(p);
    fill(p, 100, 1);
    unsigned char *q = meta_grow(p, 100, 3000);
    assert_ptr_equal(q, p);
    assert_true(filled(q, 100, 1));
    assert_true(all_zero(q + 100, 3000 - 100));
    /* A shrink keeps the first bytes; growing back shows zeros where the
     * old bytes were. */
    fill(q, 3000, 2);
    q = meta_grow(q, 3000, 50);
    assert_non_null(q);
    assert_true(filled(q, 50, 2));
    q = meta_grow(q, 50, 3000);
    assert_non_null(q);
    assert_true(filled(q, 50, 2));
    assert_true(all_zero(q + 50, 3000 - 50));
    /* Moved (more pages). */
    size_t big = 3 * page() + 17;
    unsigned char *r = meta_grow(q, 3000, big);
    assert_non_null(r);
    assert_true(filled(r, 50, 2));
    assert_true(all_zero(r + 50, big - 50));
    fill(r, big, 4);
    /* Shrunk by whole pages, then grown again across them. */
    r = meta_grow(r, big, page() + 1);
    assert_non_null(r);
    assert_true(filled(r, page() + 1, 4));
    unsigned char *s = meta_grow(r, page() + 1, 4 * page());
    assert_non_null(s);
    assert_true(filled(s, page() + 1, 4));
    assert_true(all_zero(s + page() + 1, 3 * page() - 1));
    meta_free(s, 4 * page());
    /* From NULL: a plain allocation. */
    unsigned char *t = meta_grow(NULL, 0, 200);
    assert_non_null(t);
    assert_true(all_zero(t, 200));
    meta_free(t, 200);
}

static void failed_grow_leaves_the_old_block(void **state)
{
    (void)state;
    size_t start = meta_bytes_in_use();
    unsigned char *p = meta_alloc(100);
    assert_non_null(p);
    fill(p, 100, 9);
    size_t held = meta_bytes_in_use();
    /* A grow that would move, and one that would stay in place. */
    size_t to[] = {10 * page(), 200};
    for (size_t i = 0; i < 2; i++) {
        meta_fail_after(1);
        assert_null(meta_grow(p, 100, to[i]));
        assert_true(filled(p, 100, 9));
        assert_int_equal(meta_bytes_in_use(), held);
        fill(p, 100, 9); /* still the caller's, still writable */
    }
    /* Impossible sizes fail the same way, without the switch. */
    assert_null(meta_grow(p, 100, SIZE_MAX));
    assert_null(meta_grow(p, 100, 0));
    assert_true(filled(p, 100, 9));
    meta_free(p, 100);
    assert_int_equal(meta_bytes_in_use(), start);
}

/* The i-th allocation of a sequence: meta_alloc, or a grow (in place or
 * moved) of a block made before the switch was set. */
static void *allocate(int i, void *base, size_t *size)
{
    if (i % 2 == 0) {
        *size = 64;
        return meta_alloc(64);
    }
    *size = i % 4 == 1 ? 128 : 5 * page();
    return meta_grow(base, 64, *size);
}

static void fail_after_fails_exactly_the_nth(void **state)
{
    (void)state;
    size_t start = meta_bytes_in_use();
    enum { SEQ = 8 };
    for (int n = 1; n <= SEQ; n++) {
        void *base[SEQ];
        for (int i = 0; i < SEQ; i++) {
            base[i] = meta_alloc(64);
            assert_non_null(base[i]);
        }
        meta_fail_after((unsigned long)n);
        for (int i = 0; i < SEQ; i++) {
            size_t size;
            void *p = allocate(i, base[i], &size);
            if (i + 1 == n) {
                assert_null(p);
            } else {
                assert_non_null(p);
                meta_free(p, size);
            }
            if (p == NULL || i % 2 == 0) {
                meta_free(base[i], 64); /* not taken over by a grow */
            }
        }
    }
    /* Off: nothing fails; and a switch turned off before its turn never fires. */
    meta_fail_after(3);
    meta_fail_after(0);
    for (int i = 0; i < 5; i++) {
        void *p = meta_alloc(64);
        assert_non_null(p);
        meta_free(p, 64);
    }
    /* A failed allocation (an impossible size) is not counted: the next
     * is still the first. */
    meta_fail_after(1);
    assert_null(meta_alloc(0));
    assert_null(meta_alloc(64));
    void *after = meta_alloc(64);
    assert_non_null(after);
    meta_free(after, 64);
    assert_int_equal(meta_bytes_in_use(), start);
}

static void bytes_in_use_come_back(void **state)
{
    (void)state;
    size_t start = meta_bytes_in_use();
    void *a = meta_alloc(1);
    assert_int_equal(meta_bytes_in_use(), start + page());
    void *b = meta_alloc(2 * page() + 1);
    assert_int_equal(meta_bytes_in_use(), start + 4 * page());
    b = meta_grow(b, 2 * page() + 1, 7 * page());
    assert_int_equal(meta_bytes_in_use(), start + 8 * page());
    b = meta_grow(b, 7 * page(), page());
    assert_int_equal(meta_bytes_in_use(), start + 2 * page());
    a = meta_grow(a, 1, 100);
    assert_int_equal(meta_bytes_in_use(), start + 2 * page());
    meta_free(a, 100);
    meta_free(b, page());
    assert_int_equal(meta_bytes_in_use(), start);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_blocks_are_cut_in_turn),
        cmocka_unit_test(zero_filled_and_aligned),
        cmocka_unit_test(grow_keeps_contents_and_zeroes_the_tail),
        cmocka_unit_test(failed_grow_leaves_the_old_block),
        cmocka_unit_test(fail_after_fails_exactly_the_nth),
        cmocka_unit_test(bytes_in_use_come_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
