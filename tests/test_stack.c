/*
 * test_stack.c - the table of distinct stacks (ids, hits, growth past
 * uthash's bucket expansions, marks, destroy) and libunwind capture.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "record/logformat.h"
#include "record/stack.h"

static void same_stack_same_id(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    uintptr_t a[3] = {0x1000, 0x2000, 0x3000}, b[3] = {0x1000, 0x2000, 0x3001};
    bool added;
    struct stack_info *x = stack_table_intern(&t, a, 3, &added);
    assert_non_null(x);
    assert_true(added);
    assert_int_equal(x->id, 1);
    assert_int_equal(x->hits, 1);
    struct stack_info *y = stack_table_intern(&t, b, 3, &added);
    assert_non_null(y);
    assert_true(added);
    assert_int_equal(y->id, 2);
    uintptr_t again[3] = {0x1000, 0x2000, 0x3000}; /* equal content, other memory */
    struct stack_info *z = stack_table_intern(&t, again, 3, &added);
    assert_ptr_equal(z, x);
    assert_false(added);
    assert_int_equal(z->hits, 2);
    assert_int_equal(t.count, 2);
    stack_table_destroy(&t);
    assert_int_equal(t.count, 0);
    assert_null(t.head);
}

/* A prefix is another stack: the depth is part of the key. */
static void prefix_is_distinct(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    uintptr_t a[4] = {1, 2, 3, 4};
    bool added;
    uint32_t full = stack_table_intern(&t, a, 4, &added)->id;
    uint32_t shorter = stack_table_intern(&t, a, 3, &added)->id;
    assert_true(added);
    assert_int_not_equal(full, shorter);
    assert_int_equal(stack_table_intern(&t, a, 4, &added)->id, full);
    stack_table_destroy(&t);
}

/* Many stacks: uthash doubles its buckets (uthash_malloc/uthash_free over
 * private mappings) and entries span several chunks; every id stays
 * findable and distinct, marks stay put. */
static void many_stacks(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    enum { N = 20000 };
    bool added;
    for (uintptr_t i = 0; i < N; i++) {
        uintptr_t ips[LOG_MAX_DEPTH];
        size_t depth = 1 + i % LOG_MAX_DEPTH;
        for (size_t k = 0; k < depth; k++) {
            ips[k] = i * 131 + k;
        }
        struct stack_info *si = stack_table_intern(&t, ips, depth, &added);
        assert_non_null(si);
        assert_true(added);
        assert_int_equal(si->id, i + 1);
        si->mark = (uint32_t)i;
    }
    assert_int_equal(t.count, N);
    for (uintptr_t i = 0; i < N; i += 97) {
        uintptr_t ips[LOG_MAX_DEPTH];
        size_t depth = 1 + i % LOG_MAX_DEPTH;
        for (size_t k = 0; k < depth; k++) {
            ips[k] = i * 131 + k;
        }
        struct stack_info *si = stack_table_intern(&t, ips, depth, &added);
        assert_false(added);
        assert_int_equal(si->id, i + 1);
        assert_int_equal(si->mark, i);
        assert_int_equal(si->hits, 2);
    }
    stack_table_destroy(&t);
    /* Usable again after destroy. */
    uintptr_t one = 42;
    assert_int_equal(stack_table_intern(&t, &one, 1, &added)->id, 1);
    stack_table_destroy(&t);
}

/* Deeper than LOG_MAX_DEPTH is cut there. */
static void depth_is_bounded(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    uintptr_t ips[LOG_MAX_DEPTH + 10];
    for (size_t k = 0; k < LOG_MAX_DEPTH + 10; k++) {
        ips[k] = k + 1;
    }
    bool added;
    uint32_t a = stack_table_intern(&t, ips, LOG_MAX_DEPTH + 10, &added)->id;
    uint32_t b = stack_table_intern(&t, ips, LOG_MAX_DEPTH, &added)->id;
    assert_int_equal(a, b);
    stack_table_destroy(&t);
}

/* ---- capture ---- */

static void *returns[3];
static size_t captured;
static uintptr_t frames[LOG_MAX_DEPTH];

__attribute__((noinline)) static void capture_here(size_t max)
{
    returns[0] = __builtin_return_address(0);
    captured = stack_capture(frames, max);
    __asm__ volatile("" ::: "memory"); /* no tail call */
}

__attribute__((noinline)) static void capture_level1(size_t max)
{
    capture_here(max);
    returns[1] = __builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

static bool captured_has(const void *ip)
{
    for (size_t i = 0; i < captured; i++) {
        if (frames[i] == (uintptr_t)ip) {
            return true;
        }
    }
    return false;
}

/* The capture holds the callers' return addresses, innermost first, and
 * keeps to the depth asked for. */
static void capture_sees_callers(void **state)
{
    (void)state;
    capture_level1(32);
    assert_true(captured >= 3);
    assert_true(captured_has(returns[0]));
    assert_true(captured_has(returns[1]));
    size_t at0 = 0, at1 = 0;
    for (size_t i = 0; i < captured; i++) {
        at0 = frames[i] == (uintptr_t)returns[0] ? i : at0;
        at1 = frames[i] == (uintptr_t)returns[1] ? i : at1;
    }
    assert_true(at0 < at1);
    capture_level1(2);
    assert_int_equal(captured, 2);
    capture_level1(LOG_MAX_DEPTH + 50); /* clamped */
    assert_true(captured <= LOG_MAX_DEPTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_stack_same_id),
        cmocka_unit_test(prefix_is_distinct),
        cmocka_unit_test(many_stacks),
        cmocka_unit_test(depth_is_bounded),
        cmocka_unit_test(capture_sees_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
