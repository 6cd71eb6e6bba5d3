/*
 * test_memstate.c - the state tables at their exact thresholds and the CE 5
 * commit rule in low and critical memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "memstate.h"

#define KB ((size_t)1024)
#define PAGE (4 * KB)

static void expect_thresholds(const char *name, size_t limited, size_t low, size_t critical)
{
    const struct memstate_table *t = memstate_table(name);
    assert_non_null(t);
    if (limited != 0) {
        assert_int_equal(memstate_of(t, limited), MEMSTATE_NORMAL);
        assert_int_equal(memstate_of(t, limited - 1), MEMSTATE_LIMITED);
    }
    assert_int_equal(memstate_of(t, low), limited ? MEMSTATE_LIMITED : MEMSTATE_NORMAL);
    assert_int_equal(memstate_of(t, low - 1), MEMSTATE_LOW);
    assert_int_equal(memstate_of(t, critical), MEMSTATE_LOW);
    assert_int_equal(memstate_of(t, critical - 1), MEMSTATE_CRITICAL);
    assert_int_equal(memstate_of(t, 0), MEMSTATE_CRITICAL);
    assert_int_equal(memstate_of(t, 64 * 1024 * KB), MEMSTATE_NORMAL);
}

static void test_tables_at_their_thresholds(void **state)
{
    (void)state;
    expect_thresholds("hpc", 160 * KB, 96 * KB, 48 * KB);
    expect_thresholds("ppc", 160 * KB, 96 * KB, 48 * KB);
    expect_thresholds("ce5", 0, 128 * KB, 80 * KB);
    expect_thresholds("hpc1k", 128 * KB, 64 * KB, 16 * KB);
    assert_null(memstate_table("wince"));
    assert_int_equal(memstate_table("ppc")->hibernate, 224 * KB);
}

static void test_names(void **state)
{
    (void)state;
    for (int s = 0; s < MEMSTATE_COUNT; s++) {
        assert_int_equal(memstate_parse(memstate_name((enum memstate)s)), s);
    }
    assert_int_equal(memstate_parse("panic"), MEMSTATE_COUNT);
}

static void test_pinned_free_lands_in_the_state(void **state)
{
    (void)state;
    for (int i = 0; i < MEMSTATE_TABLE_COUNT; i++) {
        const struct memstate_table *t = memstate_table_by_id((enum memstate_table_id)i);
        for (int s = MEMSTATE_LIMITED; s < MEMSTATE_COUNT; s++) {
            size_t f = memstate_pinned_free(t, (enum memstate)s, 32 * 1024 * KB, PAGE);
            enum memstate want = (s == MEMSTATE_LIMITED && t->limited == 0) ? MEMSTATE_LOW : (enum memstate)s;
            assert_int_equal(memstate_of(t, f), want);
        }
        assert_int_equal(memstate_pinned_free(t, MEMSTATE_NORMAL, 1000 * PAGE, PAGE), 1000 * PAGE);
    }
}

/* The examples: in low state a 20 KB commit fails while 4 KB ones
 * succeed; in critical state 12 KB fails. */
static void test_caps_in_low_and_critical(void **state)
{
    (void)state;
    const struct memstate_table *t = memstate_table("ppc");
    size_t low_free = (96 * KB - PAGE) / PAGE;      /* 23 pages: low */
    assert_int_equal(memstate_commit_rule(t, PAGE, 5, low_free), COMMIT_STATE_CAP);
    assert_int_equal(memstate_commit_rule(t, PAGE, 4, low_free), COMMIT_OK);
    assert_int_equal(memstate_commit_rule(t, PAGE, 1, low_free), COMMIT_OK);
    size_t crit_free = (48 * KB - PAGE) / PAGE;     /* 11 pages: critical */
    assert_int_equal(memstate_commit_rule(t, PAGE, 3, crit_free), COMMIT_STATE_CAP);
    /* Even one page must leave the kernel's 15-page stack reserve. */
    assert_int_equal(memstate_commit_rule(t, PAGE, 1, crit_free), COMMIT_STATE_CAP);
    assert_int_equal(memstate_commit_rule(t, PAGE, 1, 16), COMMIT_OK);
    /* Plenty of RAM: anything that fits. */
    assert_int_equal(memstate_commit_rule(t, PAGE, 1000, 2000), COMMIT_OK);
    assert_int_equal(memstate_commit_rule(t, PAGE, 2001, 2000), COMMIT_NO_RAM);
    /* A big commit that would cross into low is refused before RAM runs out. */
    assert_int_equal(memstate_commit_rule(t, PAGE, 100, 110), COMMIT_STATE_CAP);
}

/* The worked examples of the CE 5 kernel with its GWES defaults. */
static void test_ce5_defaults(void **state)
{
    (void)state;
    const struct memstate_table *t = memstate_table("ce5");
    assert_int_equal(memstate_commit_rule(t, PAGE, 4, 40), COMMIT_OK);
    assert_int_equal(memstate_commit_rule(t, PAGE, 9, 40), COMMIT_STATE_CAP);
    assert_int_equal(memstate_commit_rule(t, PAGE, 4, 30), COMMIT_OK);
    assert_int_equal(memstate_commit_rule(t, PAGE, 5, 30), COMMIT_STATE_CAP);
    assert_int_equal(memstate_commit_rule(t, PAGE, 3, 22), COMMIT_STATE_CAP);
    assert_int_equal(memstate_commit_rule(t, PAGE, 2, 22), COMMIT_OK);
    assert_int_equal(memstate_commit_rule(t, PAGE, 0, 10), COMMIT_STATE_CAP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_at_their_thresholds),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_pinned_free_lands_in_the_state),
        cmocka_unit_test(test_caps_in_low_and_critical),
        cmocka_unit_test(test_ce5_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
