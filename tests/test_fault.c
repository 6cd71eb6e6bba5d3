/*
 * test_fault.c - the rule engine of fault injection (src/fault.c), against
 * a fake process: its clock, memory state and call stack are this file's.
 * Rules come from CEBOX_FAIL_* values through options_load, as in a run.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entry.h"
#include "fault.h"
#include "memstate.h"
#include "testutil.h"

/* ---- the fake process ---- */

static uint64_t fake_now;
static int fake_state;
static _Thread_local uintptr_t fake_ips[4];
static _Thread_local size_t fake_depth;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static int fake_device_state(void)
{
    return fake_state;
}

static size_t fake_stack(uintptr_t *ips, size_t max)
{
    size_t n = fake_depth < max ? fake_depth : max;
    memcpy(ips, fake_ips, n * sizeof *ips);
    return n;
}

static const struct fault_world fake_world = {fake_clock, fake_device_state, fake_stack};

/* ---- settings from name=value pairs ---- */

static const char *vars[2 * 8];

static const char *fake_get(const char *name)
{
    for (size_t i = 0; vars[i] != NULL; i += 2) {
        if (strcmp(vars[i], name) == 0) {
            return vars[i + 1];
        }
    }
    return NULL;
}

/* Sets the rules up from NULL-terminated name, value pairs; false when
 * none is given. */
static bool rules(const char *first, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, first);
    for (const char *s = first; s != NULL && n + 2 < sizeof vars / sizeof vars[0]; s = va_arg(ap, const char *)) {
        vars[n++] = s;
    }
    va_end(ap);
    vars[n] = NULL;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    assert_int_equal(options_load(fake_get, &s, err), 0);
    struct fault_rules r;
    bool on = fault_rules_from(&s, &r);
    fake_now = 0;
    fake_state = MEMSTATE_NORMAL;
    fault_setup(&r, &fake_world);
    return on;
}

static bool fails(size_t size)
{
    return fault_decide(LOG_API_MALLOC, size) == LOG_REASON_INJECTED;
}

/* Which of the first n calls (of size 16) fail, as "3,5" */
static const char *failed_calls(int n)
{
    static char buf[512];
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 1; i <= n; i++) {
        if (fails(16)) {
            used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%d", used ? "," : "", i);
        }
    }
    return buf;
}

/* ---- tests ---- */

static void no_rule_no_hook(void **state)
{
    (void)state;
    assert_false(rules("CEBOX_SEED", "5", "CEBOX_OUT", "/tmp", NULL));
    assert_true(rules("CEBOX_FAIL_STATE", "normal", NULL)); /* given: a rule, whatever the value */
}

/* fault_start registers the entry hook only when a rule is given. */
static void hook_only_with_a_rule(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    vars[0] = "CEBOX_SEED";
    vars[1] = "3";
    vars[2] = NULL;
    assert_int_equal(options_load(fake_get, &s, err), 0);
    entry_set_hook(NULL);
    assert_int_equal(fault_start(&s, err), 0);
    assert_null(atomic_load(&entry_hook));
    vars[0] = "CEBOX_FAIL_NTH";
    vars[1] = "1000000000";
    assert_int_equal(options_load(fake_get, &s, err), 0);
    assert_int_equal(fault_start(&s, err), 0);
    assert_true(atomic_load(&entry_hook) == fault_decide);
    entry_set_hook(NULL);
    /* A file that cannot be opened: refused, no hook. */
    vars[0] = "CEBOX_FAIL_ONCE_PER_STACK";
    vars[1] = "/nonexistent-dir/stacks";
    assert_int_equal(options_load(fake_get, &s, err), 0);
    assert_int_equal(fault_start(&s, err), -1);
    assert_non_null(strstr(err, "cannot open /nonexistent-dir/stacks: No such file or directory"));
    assert_null(atomic_load(&entry_hook));
}

static void every_call_is_counted(void **state)
{
    (void)state;
    rules("CEBOX_FAIL_NTH", "1000", NULL);
    assert_string_equal(failed_calls(10), "");
    assert_int_equal(fault_counted(), 10);
}

static void nth_fails_exactly_the_listed_calls(void **state)
{
    (void)state;
    rules("CEBOX_FAIL_NTH", "3", NULL);
    assert_string_equal(failed_calls(10), "3");
    rules("CEBOX_FAIL_NTH", "1,4,5,9", NULL);
    assert_string_equal(failed_calls(12), "1,4,5,9");
}

static void every_fails_each_multiple(void **state)
{
    (void)state;
    rules("CEBOX_FAIL_EVERY", "3", NULL);
    assert_string_equal(failed_calls(10), "3,6,9");
    rules("CEBOX_FAIL_EVERY", "1", NULL);
    assert_string_equal(failed_calls(3), "1,2,3");
}

static void probability_is_reproducible_and_about_right(void **state)
{
    (void)state;
    char first[512];
    rules("CEBOX_FAIL_PROBABILITY", "0.25", "CEBOX_SEED", "7", NULL);
    snprintf(first, sizeof first, "%s", failed_calls(100));
    rules("CEBOX_FAIL_PROBABILITY", "0.25", "CEBOX_SEED", "7", NULL);
    assert_string_equal(failed_calls(100), first);
    rules("CEBOX_FAIL_PROBABILITY", "0.25", "CEBOX_SEED", "8", NULL);
    assert_string_not_equal(failed_calls(100), first);

    rules("CEBOX_FAIL_PROBABILITY", "0.25", "CEBOX_SEED", "7", NULL);
    int n = 0;
    for (int i = 0; i < 20000; i++) {
        n += fails(16);
    }
    assert_in_range(n, 4600, 5400); /* 5000 expected, sd about 61 */
    rules("CEBOX_FAIL_PROBABILITY", "0", NULL);
    assert_string_equal(failed_calls(200), "");
    rules("CEBOX_FAIL_PROBABILITY", "1", NULL);
    assert_string_equal(failed_calls(3), "1,2,3");
}

static void size_window_is_inclusive(void **state)
{
    (void)state;
    rules("CEBOX_FAIL_SIZE_MIN", "100", "CEBOX_FAIL_SIZE_MAX", "200", NULL);
    assert_false(fails(99));
    assert_true(fails(100));
    assert_true(fails(200));
    assert_false(fails(201));
    rules("CEBOX_FAIL_SIZE_MIN", "1K", NULL);
    assert_false(fails(1023));
    assert_true(fails((size_t)1 << 30));
}

static void time_window_from_the_start(void **state)
{
    (void)state;
    rules("CEBOX_FAIL_AFTER", "1", "CEBOX_FAIL_UNTIL", "2.5", NULL);
    fake_now = 999999999;
    assert_false(fails(16));
    fake_now = 1000000000;
    assert_true(fails(16));
    fake_now = 2499999999;
    assert_true(fails(16));
    fake_now = 2500000000;
    assert_false(fails(16));
    /* The clock starts at setup, not at 0. */
    fake_now = 5000000000;
    struct fault_rules r;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    vars[0] = "CEBOX_FAIL_AFTER";
    vars[1] = "1";
    vars[2] = NULL;
    assert_int_equal(options_load(fake_get, &s, err), 0);
    fault_rules_from(&s, &r);
    fault_setup(&r, &fake_world);
    fake_now = 5500000000;
    assert_false(fails(16));
    fake_now = 6000000000;
    assert_true(fails(16));
}

static void state_at_least(void **state)
{
    (void)state;
    rules("CEBOX_FAIL_STATE", "low", NULL);
    fake_state = MEMSTATE_NORMAL;
    assert_false(fails(16));
    fake_state = MEMSTATE_LIMITED;
    assert_false(fails(16));
    fake_state = MEMSTATE_LOW;
    assert_true(fails(16));
    fake_state = MEMSTATE_CRITICAL;
    assert_true(fails(16));
}

static void counting_rules_count_what_the_filters_let_through(void **state)
{
    (void)state;
    rules("CEBOX_FAIL_SIZE_MIN", "1000", "CEBOX_FAIL_EVERY", "2", NULL);
    assert_false(fails(5000)); /* 1st big one */
    assert_false(fails(10));
    assert_false(fails(10));
    assert_true(fails(5000)); /* 2nd */
    assert_false(fails(5000));
    assert_false(fails(999));
    assert_true(fails(1000)); /* 4th */
    assert_int_equal(fault_counted(), 4);
    /* Every rule must hold. */
    rules("CEBOX_FAIL_NTH", "2,3", "CEBOX_FAIL_EVERY", "3", NULL);
    assert_string_equal(failed_calls(9), "3");
}

static void glob(void **state)
{
    (void)state;
    assert_true(fault_glob("parse_*", "parse_config"));
    assert_true(fault_glob("*config", "parse_config"));
    assert_true(fault_glob("p?rse*g", "parse_config"));
    assert_true(fault_glob("*", ""));
    assert_true(fault_glob("libc.so*", "libc.so.6"));
    assert_false(fault_glob("parse", "parse_config"));
    assert_false(fault_glob("*x*", "parse_config"));
    assert_false(fault_glob("?", ""));
}

static void fail_in_matches_symbols_and_modules(void **state)
{
    (void)state;
    void *sym = dlsym(RTLD_DEFAULT, "fprintf");
    assert_non_null(sym);
    fake_ips[0] = (uintptr_t)sym + 1; /* a return address just inside fprintf */
    fake_depth = 1;
    rules("CEBOX_FAIL_IN", "*fprint?", NULL); /* glibc may name it _IO_fprintf */
    assert_true(fails(16));
    /* The module's file name (libc.so.6; libasan's under AddressSanitizer,
     * which intercepts fprintf), as a glob of its first letters. */
    Dl_info info;
    assert_int_not_equal(dladdr(sym, &info), 0);
    const char *slash = strrchr(info.dli_fname, '/');
    char module[64];
    snprintf(module, sizeof module, "%.5s*", slash != NULL ? slash + 1 : info.dli_fname);
    rules("CEBOX_FAIL_IN", module, NULL);
    assert_true(fails(16));
    rules("CEBOX_FAIL_IN", "parse_config", NULL);
    assert_false(fails(16));
    assert_int_equal(fault_counted(), 0); /* a call --fail-in refuses is not counted */
    fake_depth = 0;
}

/* What was cached of a return address goes when its module does. */
static void fail_in_forgets_an_unloaded_module(void **state)
{
    (void)state;
    void *lib = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        skip(); /* no zlib on this machine */
    }
    void *sym = dlsym(lib, "zlibVersion");
    assert_non_null(sym);
    fake_ips[0] = (uintptr_t)sym + 1;
    fake_depth = 1;
    rules("CEBOX_FAIL_IN", "libz.so*", NULL);
    assert_true(fails(16));
    assert_true(fails(16)); /* from the cache */
    assert_int_equal(dlclose(lib), 0);
    assert_false(fails(16)); /* nothing is there now */
    fake_depth = 0;
}

static void once_per_stack_across_runs(void **state)
{
    (void)state;
    char path[PATH_MAX];
    assert_int_equal(testutil_temp_file(path, sizeof path, "fault"), 0);
    uintptr_t a = 0x1000, b = 0x2000, c = 0x3000;
    fake_depth = 1;
    rules("CEBOX_FAIL_ONCE_PER_STACK", path, NULL);
    fake_ips[0] = a;
    assert_true(fails(16));
    assert_false(fails(16));
    fake_ips[0] = b;
    assert_true(fails(16));
    assert_false(fails(16));
    /* The next run reads what this one failed. */
    rules("CEBOX_FAIL_ONCE_PER_STACK", path, NULL);
    fake_ips[0] = a;
    assert_false(fails(16));
    fake_ips[0] = b;
    assert_false(fails(16));
    fake_ips[0] = c;
    assert_true(fails(16));
    /* One line per stack failed. */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) {
        lines += ch == '\n';
    }
    fclose(f);
    assert_int_equal(lines, 3);
    /* With a count rule, a stack is remembered only when it fails. */
    unlink(path);
    rules("CEBOX_FAIL_ONCE_PER_STACK", path, "CEBOX_FAIL_NTH", "2", NULL);
    fake_ips[0] = a;
    assert_false(fails(16)); /* 1st call */
    assert_true(fails(16));  /* 2nd: a fails for the first time */
    unlink(path);
    fake_depth = 0;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    int lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) {
        lines += ch == '\n';
    }
    fclose(f);
    return lines;
}

/* --record-stacks notes each distinct stack once and fails nothing; the
 * hashes it writes are what --fail-stack takes, and --fail-stack with
 * --fail-nth 1 fails exactly the first call with that stack. */
static void record_stacks_then_fail_one(void **state)
{
    (void)state;
    char path[PATH_MAX];
    assert_int_equal(testutil_temp_file(path, sizeof path, "fault"), 0);
    fake_depth = 1;
    rules("CEBOX_RECORD_STACKS", path, NULL);
    static const uintptr_t sites[] = {0x1000, 0x2000, 0x1000, 0x3000, 0x2000};
    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++) {
        fake_ips[0] = sites[i];
        assert_false(fails(16));
    }
    assert_int_equal(fault_counted(), 5);
    assert_int_equal(count_lines(path), 3);
    char line[32] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f)); /* 0x1000's */
    assert_non_null(fgets(line, sizeof line, f)); /* 0x2000's */
    fclose(f);
    line[16] = '\0';
    uintptr_t second = 0x2000;
    assert_int_equal(strtoull(line, NULL, 16), fault_stack_hash(&second, 1));
    rules("CEBOX_FAIL_STACK", line, "CEBOX_FAIL_NTH", "1", NULL);
    char got[64] = ""; /* the indexes of the calls that failed, in order */
    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++) {
        fake_ips[0] = sites[i];
        size_t len = strlen(got);
        if (fails(16) && len + 1 < sizeof got) {
            got[len] = (char)('0' + i % 10);
            got[len + 1] = '\0';
        }
    }
    assert_string_equal(got, "1"); /* the first 0x2000 call only */
    /* Alone, --fail-stack fails every call with the stack. */
    rules("CEBOX_FAIL_STACK", line, NULL);
    fake_ips[0] = 0x2000;
    assert_true(fails(16));
    assert_true(fails(16));
    fake_ips[0] = 0x3000;
    assert_false(fails(16));
    unlink(path);
    fake_depth = 0;
}

enum { RACERS = 4, RACE_CALLS = 6000, RACE_STACKS = 3000 }; /* the set grows while they race */

/* Every racer goes over the same stacks; returns how many calls failed. */
static void *race(void *arg)
{
    (void)arg;
    uintptr_t failed = 0;
    fake_depth = 1;
    for (int i = 0; i < RACE_CALLS; i++) {
        fake_ips[0] = 0x10000 + 0x100 * (uintptr_t)(i % RACE_STACKS);
        failed += fails(16);
    }
    return (void *)failed;
}

static void once_per_stack_in_threads(void **state)
{
    (void)state;
    char path[PATH_MAX];
    assert_int_equal(testutil_temp_file(path, sizeof path, "fault"), 0);
    rules("CEBOX_FAIL_ONCE_PER_STACK", path, NULL);
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, race, NULL), 0);
    }
    uintptr_t total = 0;
    for (int i = 0; i < RACERS; i++) {
        void *n;
        assert_int_equal(pthread_join(t[i], &n), 0);
        total += (uintptr_t)n;
    }
    assert_int_equal(total, RACE_STACKS);
    unlink(path);
}

static void stack_hash_is_module_relative(void **state)
{
    (void)state;
    void *sym = dlsym(RTLD_DEFAULT, "fprintf");
    Dl_info info;
    assert_int_not_equal(dladdr(sym, &info), 0);
    uintptr_t ips[2] = {(uintptr_t)sym + 1, (uintptr_t)sym + 9};
    uint64_t h = fault_stack_hash(ips, 2);
    assert_int_equal(h, fault_stack_hash(ips, 2));
    uintptr_t other[2] = {(uintptr_t)sym + 9, (uintptr_t)sym + 1};
    assert_int_not_equal(h, fault_stack_hash(other, 2));
}

static void bad_values_are_refused(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"CEBOX_FAIL_NTH", "0"}, {"CEBOX_FAIL_NTH", "3,3"}, {"CEBOX_FAIL_NTH", "5,2"}, {"CEBOX_FAIL_NTH", "3,"},
        {"CEBOX_FAIL_NTH", "x"}, {"CEBOX_FAIL_NTH", ""}, {"CEBOX_FAIL_EVERY", "0"}, {"CEBOX_FAIL_EVERY", "-1"},
        {"CEBOX_FAIL_PROBABILITY", "1.5"}, {"CEBOX_FAIL_PROBABILITY", "0.1234567891"},
        {"CEBOX_FAIL_PROBABILITY", ".5"}, {"CEBOX_FAIL_PROBABILITY", "0,5"}, {"CEBOX_SEED", "x"},
        {"CEBOX_FAIL_SIZE_MIN", "1X"}, {"CEBOX_FAIL_SIZE_MAX", "-3"}, {"CEBOX_FAIL_AFTER", "86401"},
        {"CEBOX_FAIL_UNTIL", "1."}, {"CEBOX_FAIL_IN", ""}, {"CEBOX_FAIL_STATE", "dire"},
        {"CEBOX_FAIL_ONCE_PER_STACK", ""}, {"CEBOX_FAIL_STACK", "0000000000000000"},
        {"CEBOX_FAIL_STACK", "12345"}, {"CEBOX_FAIL_STACK", "0123456789abcdefg"}, {"CEBOX_FAIL_STACK", "x123456789abcdef"},
        {"CEBOX_RECORD_STACKS", ""},
    };
    char err[OPTIONS_ERR_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (options_check(bad[i][0], bad[i][1], err) != -1 || strstr(err, bad[i][0]) == NULL) {
            fail_msg("%s=%s was not refused (%s)", bad[i][0], bad[i][1], err);
        }
    }
    assert_int_equal(options_check("CEBOX_FAIL_PROBABILITY", "0.000000001", err), 0);
    assert_int_equal(options_check("CEBOX_FAIL_NTH", "1,2,999999999999999999", err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_rule_no_hook),
        cmocka_unit_test(hook_only_with_a_rule),
        cmocka_unit_test(every_call_is_counted),
        cmocka_unit_test(nth_fails_exactly_the_listed_calls),
        cmocka_unit_test(every_fails_each_multiple),
        cmocka_unit_test(probability_is_reproducible_and_about_right),
        cmocka_unit_test(size_window_is_inclusive),
        cmocka_unit_test(time_window_from_the_start),
        cmocka_unit_test(state_at_least),
        cmocka_unit_test(counting_rules_count_what_the_filters_let_through),
        cmocka_unit_test(glob),
        cmocka_unit_test(fail_in_matches_symbols_and_modules),
        cmocka_unit_test(fail_in_forgets_an_unloaded_module),
        cmocka_unit_test(once_per_stack_across_runs),
        cmocka_unit_test(once_per_stack_in_threads),
        cmocka_unit_test(record_stacks_then_fail_one),
        cmocka_unit_test(stack_hash_is_module_relative),
        cmocka_unit_test(bad_values_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
