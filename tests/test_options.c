/*
 * test_options.c - the option table: profiles, overrides, every refusal.
 */
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cstr.h"
#include "options.h"

/* A fake environment of at most 8 variables. */
static const char *fake_names[8], *fake_values[8];
static size_t fake_count;

static void fake_clear(void)
{
    fake_count = 0;
}

static void fake_set(const char *name, const char *value)
{
    fake_names[fake_count] = name;
    fake_values[fake_count] = value;
    fake_count++;
}

static const char *fake_get(const char *name)
{
    for (size_t i = 0; i < fake_count; i++) {
        if (strcmp(fake_names[i], name) == 0) {
            return fake_values[i];
        }
    }
    return NULL;
}

static int load(struct cebox_settings *s, char *err)
{
    return options_load(fake_get, s, err);
}

static void test_defaults_are_ce5(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    fake_clear();
    assert_int_equal(load(&s, err), 0);
    assert_string_equal(s.profile->name, "ce5");
    assert_int_equal(s.slot_size, 32u << 20);
    assert_int_equal(s.ram, 64u << 20);
    assert_true(s.large_memory_area);
    assert_int_equal(s.profile->granularity, 0x10000);
    assert_int_equal(s.profile->page_size, 4096);
    assert_int_equal(s.profile->heap, HEAP_KIND_CE5);
    assert_int_equal(s.profile->lma_min, 2u << 20);
    assert_false(s.profile->release_mixed);
}

static void test_profiles_set_their_numbers(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    fake_clear();
    fake_set("CEBOX_PROFILE", "ce6");
    assert_int_equal(load(&s, err), 0);
    assert_string_equal(s.profile->name, "ce6");
    assert_int_equal(s.slot_size, (size_t)2 << 30);
    assert_false(s.large_memory_area);
    assert_true(s.profile->release_mixed);
    assert_false(s.profile->honour_top_down);

    fake_clear();
    fake_set("CEBOX_PROFILE", "ce3");
    assert_int_equal(load(&s, err), 0);
    assert_int_equal(s.profile->heap, HEAP_KIND_CE3);
    assert_int_equal(s.ram, 32u << 20);
}

static void test_options_override_profile(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    fake_clear();
    fake_set("CEBOX_PROFILE", "ce3");
    fake_set("CEBOX_SLOT_SIZE", "16M");
    fake_set("CEBOX_RAM", "1g");
    fake_set("CEBOX_LARGE_MEMORY_AREA", "no");
    assert_int_equal(load(&s, err), 0);
    assert_string_equal(s.profile->name, "ce3");
    assert_int_equal(s.slot_size, 16u << 20);
    assert_int_equal(s.ram, 1u << 30);
    assert_false(s.large_memory_area);
}

static void test_sizes_and_booleans(void **state)
{
    (void)state;
    size_t v;
    assert_int_equal(options_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(options_parse_size("65536", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(options_parse_size("64k", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(options_parse_size("3M", &v), 0);
    assert_int_equal(v, 3u << 20);
    assert_int_equal(options_parse_size("2G", &v), 0);
    assert_int_equal(v, (size_t)2 << 30);
    const char *bad[] = {"", "M", "-1", "1.5M", "12 M", "1MB", "1T", "0x10", "99999999999999999999",
                         "99999999999G", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        assert_int_equal(options_parse_size(bad[i], &v), -1);
    }
    assert_int_equal(options_parse_size(NULL, &v), -1);

    char err[OPTIONS_ERR_MAX];
    const char *yes[] = {"yes", "YES", "yEs", "1", "no", "No", "nO", "0", NULL};
    for (size_t i = 0; yes[i] != NULL; i++) {
        assert_int_equal(options_check("CEBOX_LARGE_MEMORY_AREA", yes[i], err), 0);
    }
}

/* Each refused value names the variable, the value and what is accepted. */
static void expect_refused(const char *var, const char *value, const char *accepted_part)
{
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX], want[128];
    fake_clear();
    fake_set(var, value);
    assert_int_equal(load(&s, err), -1);
    snprintf(want, sizeof want, "%s='%s' is not valid; accepted: ", var, value);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, accepted_part));
    assert_null(strchr(err, '\n'));
    /* The front end's check gives the same answer. */
    char err2[OPTIONS_ERR_MAX];
    assert_int_equal(options_check(var, value, err2), -1);
    assert_string_equal(err, err2);
}

static void test_every_bad_value_is_refused(void **state)
{
    (void)state;
    expect_refused("CEBOX_PROFILE", "ce4", "ce3, ce5 or ce6");
    expect_refused("CEBOX_PROFILE", "", "ce3, ce5 or ce6");
    expect_refused("CEBOX_PROFILE", "CE5", "ce3, ce5 or ce6");
    expect_refused("CEBOX_SLOT_SIZE", "33x", "from 1M to 2G, a multiple of 64K");
    expect_refused("CEBOX_SLOT_SIZE", "", "from 1M to 2G");
    expect_refused("CEBOX_SLOT_SIZE", "512K", "from 1M to 2G");
    expect_refused("CEBOX_SLOT_SIZE", "3G", "from 1M to 2G");
    expect_refused("CEBOX_SLOT_SIZE", "1100K", "a multiple of 64K");
    expect_refused("CEBOX_SLOT_SIZE", "99999999999999999999999", "from 1M to 2G");
    expect_refused("CEBOX_RAM", "-5", "from 64K to 64G");
    expect_refused("CEBOX_RAM", "60K", "from 64K to 64G");
    expect_refused("CEBOX_RAM", "65537", "a multiple of 4K");
    expect_refused("CEBOX_LARGE_MEMORY_AREA", "maybe", "yes, no, 1 or 0");
    expect_refused("CEBOX_LARGE_MEMORY_AREA", "true", "yes, no, 1 or 0");
    expect_refused("CEBOX_LARGE_MEMORY_AREA", "ye", "yes, no, 1 or 0");
    expect_refused("CEBOX_LARGE_MEMORY_AREA", "yess", "yes, no, 1 or 0");
    expect_refused("CEBOX_LARGE_MEMORY_AREA", "n", "yes, no, 1 or 0");
    expect_refused("CEBOX_LARGE_MEMORY_AREA", "1 ", "yes, no, 1 or 0");
    char err[OPTIONS_ERR_MAX];
    assert_int_equal(options_check("CEBOX_FAIL_EVERY", "999999999", err), 0);
    assert_int_equal(options_check("CEBOX_FAIL_EVERY", "000000007", err), 0);
    assert_int_not_equal(options_check("CEBOX_FAIL_EVERY", "0000000007", err), 0); /* ten digits */
    assert_int_not_equal(options_check("CEBOX_FAIL_EVERY", "9999999999", err), 0);
    assert_int_not_equal(options_check("CEBOX_FAIL_EVERY", "12x", err), 0);
    assert_int_not_equal(options_check("CEBOX_FAIL_EVERY", "", err), 0);
    assert_int_not_equal(options_check("CEBOX_FAIL_EVERY", "0", err), 0); /* below its minimum */
    uint64_t counts[4];
    assert_int_equal(options_parse_counts("3,17,999999999999999999", counts, 4), 3);
    assert_true(counts[0] == 3 && counts[1] == 17 && counts[2] == 999999999999999999ull);
    assert_int_equal(options_parse_counts("1,1000000000000000000", counts, 4), -1); /* 19 digits */
    assert_int_equal(options_parse_counts("5,4", counts, 4), -1);                   /* not increasing */
    assert_int_equal(options_parse_counts("0", counts, 4), -1);
    assert_int_equal(options_parse_counts("1,", counts, 4), -1);
    assert_int_equal(options_parse_counts("1;2", counts, 4), -1);
}

static void test_bad_override_refused_even_with_good_profile(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    fake_clear();
    fake_set("CEBOX_PROFILE", "ce6");
    fake_set("CEBOX_RAM", "lots");
    assert_int_equal(load(&s, err), -1);
    assert_non_null(strstr(err, "CEBOX_RAM='lots'"));
}

static void test_unknown_variable_in_check(void **state)
{
    (void)state;
    char err[OPTIONS_ERR_MAX];
    assert_int_equal(options_check("CEBOX_NOPE", "1", err), -1);
    assert_string_equal(err, "CEBOX_NOPE is not a cebox setting");
}

static size_t read_pipe(int fd, char *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;
    while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0) {
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

static void test_print_effective_settings(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX], out[2048];
    int fds[2];
    fake_clear();
    fake_set("CEBOX_SLOT_SIZE", "8M");
    assert_int_equal(load(&s, err), 0);
    assert_int_equal(pipe(fds), 0);
    options_print(fds[1], &s);
    close(fds[1]);
    read_pipe(fds[0], out, sizeof out);
    close(fds[0]);
    assert_non_null(strstr(out, "CEBOX_PROFILE=ce5\t(default)\n"));
    assert_non_null(strstr(out, "CEBOX_SLOT_SIZE=8M\t(set)\n"));
    assert_non_null(strstr(out, "CEBOX_RAM=64M\t(profile)\n"));
    assert_non_null(strstr(out, "CEBOX_LARGE_MEMORY_AREA=yes\t(profile)\n"));
}

/* "1s:critical,2s:critical,...,16s:critical": 16 steps, 198 bytes. */
static void sixteen_steps(char *buf, size_t len)
{
    size_t used = 0;
    for (int i = 1; i <= SCHEDULE_MAX; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%ds:critical", i == 1 ? "" : ",", i);
    }
}

static void test_sixteen_step_schedule_round_trips(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX], schedule[256];
    sixteen_steps(schedule, sizeof schedule);
    assert_int_equal(strlen(schedule), 198);
    fake_clear();
    fake_set("CEBOX_STATE_SCHEDULE", schedule);
    fake_set("CEBOX_OUT", "/tmp/out");
    assert_int_equal(load(&s, err), 0);
    assert_string_equal(s.schedule, schedule);
    assert_string_equal(s.session, "");
    assert_string_equal(s.out_dir, "/tmp/out");
    assert_int_equal(s.hibernate_signal, 0);
    assert_false(s.close_apps);
    assert_int_equal(s.stack_depth, 32);
    struct schedule_step steps[SCHEDULE_MAX];
    assert_int_equal(options_parse_schedule(s.schedule, steps, SCHEDULE_MAX), SCHEDULE_MAX);
    assert_int_equal(steps[15].ms, 16000);
    assert_int_equal(steps[15].state, 3);
}

/* A path of n bytes: "/aaa...". */
static char *long_path(size_t n)
{
    static char buf[8192];
    assert_true(n < sizeof buf);
    memset(buf, 'a', n);
    buf[0] = '/';
    buf[n] = '\0';
    return buf;
}

/* Refused by options_load and options_check with the same single line,
 * naming the variable and what is accepted, never cut short. */
static void expect_too_long(const char *var, const char *value, const char *accepted)
{
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX], err2[OPTIONS_ERR_MAX], want[64];
    fake_clear();
    fake_set(var, value);
    assert_int_equal(load(&s, err), -1);
    snprintf(want, sizeof want, "%s='%.8s", var, value);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "is not valid; accepted: "));
    assert_non_null(strstr(err, accepted));
    assert_null(strchr(err, '\n'));
    assert_true(strlen(err) < OPTIONS_ERR_MAX - 1);
    assert_int_equal(options_check(var, value, err2), -1);
    assert_string_equal(err, err2);
}

static void test_string_capacity_boundaries(void **state)
{
    (void)state;
    const char *vars[] = {"CEBOX_OUT", "CEBOX_SESSION"};
    for (size_t i = 0; i < 2; i++) {
        struct cebox_settings s;
        char err[OPTIONS_ERR_MAX];
        fake_clear();
        fake_set(vars[i], long_path(255));
        assert_int_equal(load(&s, err), 0);
        assert_string_equal(i == 0 ? s.out_dir : s.session, long_path(255));
        assert_int_equal(options_check(vars[i], long_path(255), err), 0);
        expect_too_long(vars[i], long_path(256), "a path of 1 to 255 bytes");
        expect_too_long(vars[i], long_path(5000), "a path of 1 to 255 bytes");
    }
}

/* The longest schedule in its plainest spelling: 16 steps of
 * "863NN.999s:critical", 319 bytes; a leading zero makes it 320. */
static void test_longest_schedule_fits(void **state)
{
    (void)state;
    char schedule[400];
    size_t used = 0;
    for (int i = 0; i < SCHEDULE_MAX; i++) {
        used += (size_t)snprintf(schedule + used, sizeof schedule - used, "%s%d.999s:critical", i == 0 ? "" : ",",
                                 86400 - SCHEDULE_MAX + i);
    }
    assert_int_equal(strlen(schedule), 319);
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    fake_clear();
    fake_set("CEBOX_STATE_SCHEDULE", schedule);
    assert_int_equal(load(&s, err), 0);
    assert_string_equal(s.schedule, schedule);
    assert_string_equal(s.session, "");

    char padded[401];
    snprintf(padded, sizeof padded, "0%s", schedule);
    assert_int_equal(options_parse_schedule(padded, NULL, 0), SCHEDULE_MAX);
    expect_too_long("CEBOX_STATE_SCHEDULE", padded, "319 bytes");
}

/* Schedule times to the millisecond: fractions are natural ("0.5s"); what
 * is finer, malformed or not increasing is refused. */
static void test_schedule_fractions(void **state)
{
    (void)state;
    struct schedule_step steps[SCHEDULE_MAX];
    assert_int_equal(options_parse_schedule("0.5s:low,1.25s:critical,2s:normal,2.001s:low", steps, SCHEDULE_MAX), 4);
    assert_int_equal(steps[0].ms, 500);
    assert_int_equal(steps[1].ms, 1250);
    assert_int_equal(steps[2].ms, 2000);
    assert_int_equal(steps[3].ms, 2001);
    assert_int_equal(options_parse_schedule("86400.000s:low", steps, SCHEDULE_MAX), 1);
    assert_int_equal(steps[0].ms, 86400000);
    const char *bad[] = {"0.0005s:low", "2.s:low", ".5s:low", "86400.001s:low", "1.5s:low,1.500s:normal",
                         "1,5s:low", "0.5:low", "-0.5s:low"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(options_parse_schedule(bad[i], NULL, 0), -1);
    }
}

/* Every option refuses a huge value with the whole message. */
static void test_huge_values_keep_the_message_whole(void **state)
{
    (void)state;
    char *huge = long_path(5000);
    for (size_t i = 0; i < options_count(); i++) {
        char err[OPTIONS_ERR_MAX];
        assert_int_equal(options_check(options_var(i), huge, err), -1);
        assert_non_null(strstr(err, options_var(i)));
        assert_non_null(strstr(err, "accepted: "));
        assert_true(strlen(err) < OPTIONS_ERR_MAX - 1);
    }
}

/* A getter that answers only its first question about each variable. */
static unsigned once_calls[64];
static const char *once_get(const char *name)
{
    static const char *const names[] = {"CEBOX_SLOT_SIZE", "CEBOX_QUIET", "CEBOX_OUT", NULL};
    static const char *const values[] = {"8M", "yes", "/tmp/x"};
    for (size_t i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], name) == 0) {
            return once_calls[i]++ == 0 ? values[i] : NULL;
        }
    }
    return NULL;
}

/* The reference for options_load_environ: getenv's answer from the same
 * array (the first entry of the name). */
static char *const *ref_env;

static const char *ref_get(const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = ref_env; *e != NULL; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
            return *e + n + 1;
        }
    }
    return NULL;
}

/* Both loads of env agree: the same answer, the same refusal or the same
 * settings (their printed form and which variables were given). */
static void assert_loads_agree(char *const *env)
{
    struct cebox_settings a, b;
    char err_a[OPTIONS_ERR_MAX], err_b[OPTIONS_ERR_MAX], text_a[4096], text_b[4096];
    ref_env = env;
    int rc_a = options_load(ref_get, &a, err_a), rc_b = options_load_environ(env, &b, err_b);
    assert_int_equal(rc_a, rc_b);
    if (rc_a != 0) {
        assert_string_equal(err_a, err_b);
        return;
    }
    options_format(&a, text_a, sizeof text_a);
    options_format(&b, text_b, sizeof text_b);
    assert_string_equal(text_a, text_b);
    assert_true(a.set == b.set);
}

/* One pass over the environment finds every option as getenv does: each
 * row's variable, the first of two entries, nothing for a near name. */
static void test_environ_load_is_getenvs(void **state)
{
    (void)state;
    static const char *const values[] = {"yes", "1", "ce6", "8M", ""};
    char first[128], second[128];
    for (size_t i = 0; i < options_count(); i++) {
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            snprintf(first, sizeof first, "%s=%s", options_var(i), values[v]);
            snprintf(second, sizeof second, "%s=no", options_var(i));
            char *env[] = {"PATH=/bin", "CEBOX_=1", "CEBOXQUIET=yes", "CEBOX_QUIE=yes", "NO_EQUALS",
                           first, second, "CEBOX_NOT_AN_OPTION=1", NULL};
            assert_loads_agree(env);
        }
    }
    char *none[] = {NULL};
    assert_loads_agree(none);
    char *several[] = {"CEBOX_PROFILE=ce6", "HOME=/", "CEBOX_QUIET=yes", "CEBOX_SLOT_SIZE=8M",
                       "CEBOX_PROFILE=ce3", NULL};
    assert_loads_agree(several);
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    assert_int_equal(options_load_environ(several, &s, err), 0);
    assert_string_equal(s.profile->name, "ce6");
    assert_true(s.quiet);
    assert_int_equal(s.slot_size, 8u << 20);
}

/* options_given names a row exactly: the given ones, none of the others,
 * no near name. */
static void test_given_names_a_row(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    char *env[] = {"CEBOX_QUIET=yes", "CEBOX_FAIL_NTH=3", NULL};
    assert_int_equal(options_load_environ(env, &s, err), 0);
    assert_true(options_given(&s, "CEBOX_QUIET"));
    assert_true(options_given(&s, "CEBOX_FAIL_NTH"));
    for (size_t i = 0; i < options_count(); i++) {
        const char *var = options_var(i);
        assert_int_equal(options_given(&s, var), strcmp(var, "CEBOX_QUIET") == 0 || strcmp(var, "CEBOX_FAIL_NTH") == 0);
    }
    static const char *const near[] = {"CEBOX_QUIE", "CEBOX_QUIETER", "CEBOX_", "CEBOX", "", "X", "cebox_quiet"};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        assert_false(options_given(&s, near[i]));
    }
}

/* options_given_with_prefix: a family of names given, or not; an
 * environment whose entries only look like cebox's gives none. */
static void test_given_with_prefix(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX];
    char *env[] = {"CEBOX_QUIET=yes", "CEBOX_FAIL_EVERY=3", NULL};
    assert_int_equal(options_load_environ(env, &s, err), 0);
    assert_true(options_given_with_prefix(&s, "CEBOX_FAIL_"));
    assert_true(options_given_with_prefix(&s, "CEBOX_QU"));
    assert_false(options_given_with_prefix(&s, "CEBOX_FAIL_N"));
    assert_false(options_given_with_prefix(&s, "CEBOX_RECORD"));
    char *none[] = {"CEBOX_QUIET=yes", "XCEBOX_FAIL_NTH=1", "cebox_fail_nth=1", "CEBOX_FAIL_NOSUCH=1", "C=1", NULL};
    assert_int_equal(options_load_environ(none, &s, err), 0);
    assert_false(options_given_with_prefix(&s, "CEBOX_FAIL_"));
    assert_true(options_given(&s, "CEBOX_QUIET"));
}

/* --only's globs: a list that is only separators names no program and is
 * refused; any glob in it is taken. */
static void test_only_needs_a_glob(void **state)
{
    (void)state;
    char err[OPTIONS_ERR_MAX];
    assert_int_not_equal(options_check("CEBOX_ONLY", "", err), 0);
    assert_int_not_equal(options_check("CEBOX_ONLY", ":", err), 0);
    assert_int_not_equal(options_check("CEBOX_ONLY", ":::", err), 0);
    assert_int_equal(options_check("CEBOX_ONLY", "true", err), 0);
    assert_int_equal(options_check("CEBOX_ONLY", "::true:", err), 0);
    assert_int_equal(options_check("CEBOX_ONLY", "x", err), 0);
}

/* --only's matching is fnmatch(3)'s without flags, glob by glob: every
 * glob of a set (plain ones, which cebox matches itself, and brackets,
 * escapes and bytes past ASCII, which go to fnmatch) against every name,
 * alone and inside a ':' list. */
static void test_globs_match_as_fnmatch(void **state)
{
    (void)state;
    static const char *const globs[] = {"true", "*", "?", "t*", "*e", "*u*", "t?ue", "tr*e", "*r*u*", "**",
                                        "*?", "?*?", "t*x", "*.sh", ".*", "*/true", "/usr/*/true", "a*b*c",
                                        "a*b*c*", "*ab", "aab*", "tru", "truee", "[tx]rue", "\\true",
                                        "t\\*", "tr[!a]e", "caf\xc3\xa9", "?af*", "*\xa9"};
    static const char *const names[] = {"true", "", "t", ".hidden", "run.sh", "/usr/bin/true", "/bin/true",
                                        "abc", "aabbcc", "acb", "aab", "xab", "tx", "trxe", "t*",
                                        "caf\xc3\xa9", "ab/c", "trueee", "ttrue"};
    char list[OPTIONS_LIST_MAX];
    for (size_t g = 0; g < sizeof globs / sizeof globs[0]; g++) {
        for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
            bool want = fnmatch(globs[g], names[n], 0) == 0;
            assert_int_equal(options_matches_glob(globs[g], names[n]), want);
            snprintf(list, sizeof list, "::nomatch\x01:%s:", globs[g]);
            assert_int_equal(options_matches_glob(list, names[n]), want);
        }
    }
    assert_false(options_matches_glob("", "true"));
    assert_false(options_matches_glob(":::", ""));
}

static void test_sources_come_from_the_load(void **state)
{
    (void)state;
    struct cebox_settings s;
    char err[OPTIONS_ERR_MAX], out[4096], buf[4096];
    int fds[2];
    memset(once_calls, 0, sizeof once_calls);
    assert_int_equal(options_load(once_get, &s, err), 0);
    assert_int_equal(pipe(fds), 0);
    options_print(fds[1], &s);
    close(fds[1]);
    read_pipe(fds[0], out, sizeof out);
    close(fds[0]);
    options_format(&s, buf, sizeof buf);
    assert_string_equal(out, buf);
    assert_non_null(strstr(out, "CEBOX_PROFILE=ce5\t(default)\n"));
    assert_non_null(strstr(out, "CEBOX_SLOT_SIZE=8M\t(set)\n"));
    assert_non_null(strstr(out, "CEBOX_RAM=64M\t(profile)\n"));
    assert_non_null(strstr(out, "CEBOX_THRESHOLDS=ce5\t(profile)\n"));
    assert_non_null(strstr(out, "CEBOX_QUIET=yes\t(set)\n"));
    assert_non_null(strstr(out, "CEBOX_OUT=/tmp/x\t(set)\n"));
    assert_non_null(strstr(out, "CEBOX_FOLLOW=yes\t(default)\n"));
    assert_non_null(strstr(out, "CEBOX_SESSION=(none)\t(default)\n"));
    assert_non_null(strstr(out, "CEBOX_LOG_LIMIT=64M\t(default)\n"));
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(once_calls[i], 1); /* each variable read once, by the load */
    }
}

/* A refused value with a newline still gives one line. */
static void test_refusal_stays_one_line(void **state)
{
    (void)state;
    char err[OPTIONS_ERR_MAX];
    assert_int_equal(options_check("CEBOX_RAM", "1\n2", err), -1);
    assert_null(strchr(err, '\n'));
    assert_non_null(strstr(err, "CEBOX_RAM='1?2' is not valid; accepted: a size"));

    /* Abbreviated on a character boundary: "é" straddles byte 40. */
    char value[160], want[128];
    memset(value, 'a', 39);
    memcpy(value + 39, "\xc3\xa9", 2);
    memset(value + 41, 'b', 100);
    value[141] = '\0';
    assert_int_equal(options_check("CEBOX_RAM", value, err), -1);
    snprintf(want, sizeof want, "CEBOX_RAM='%.39s...' (141 bytes) is not valid", value);
    assert_non_null(strstr(err, want));
}

static void test_markdown_lists_every_row(void **state)
{
    (void)state;
    char out[16384]; /* the whole table */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    options_print_markdown(fds[1]);
    close(fds[1]);
    read_pipe(fds[0], out, sizeof out);
    close(fds[0]);
    for (size_t i = 0; i < options_count(); i++) {
        char cell[64];
        snprintf(cell, sizeof cell, "| `%s` | `--%s` |", options_var(i), options_flag(i));
        assert_non_null(strstr(out, cell));
    }
    assert_null(options_var(options_count()));
}

/* cstr.h's loops (the start's string work, without libc) answer as
 * libc's string functions do, on every pair of a few telling strings. */
static void test_cstr_answers_as_libc(void **state)
{
    (void)state;
    static const char *const texts[] = {"", "/", "a", "ab", "abc", "CEBOX_", "CEBOX_ONLY", "CEBOX_ONLY=x",
                                        "/lib/", "/lib/libc.so.6", "/usr/lib/a/b", "libc.so.6", "a/b/"};
    size_t n = sizeof texts / sizeof texts[0];
    for (size_t i = 0; i < n; i++) {
        const char *a = texts[i];
        assert_int_equal(cstr_len(a), strlen(a));
        assert_int_equal(cstr_span_before(a, '='), strcspn(a, "="));
        assert_ptr_equal(cstr_find(a, '/'), strchr(a, '/'));
        assert_ptr_equal(cstr_find_last(a, '/'), strrchr(a, '/'));
        for (size_t j = 0; j < n; j++) {
            const char *b = texts[j];
            assert_int_equal(cstr_equal(a, b), strcmp(a, b) == 0);
            assert_int_equal(cstr_has_prefix(a, b), strncmp(a, b, strlen(b)) == 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_ce5),
        cmocka_unit_test(test_profiles_set_their_numbers),
        cmocka_unit_test(test_options_override_profile),
        cmocka_unit_test(test_sizes_and_booleans),
        cmocka_unit_test(test_every_bad_value_is_refused),
        cmocka_unit_test(test_bad_override_refused_even_with_good_profile),
        cmocka_unit_test(test_unknown_variable_in_check),
        cmocka_unit_test(test_print_effective_settings),
        cmocka_unit_test(test_markdown_lists_every_row),
        cmocka_unit_test(test_sixteen_step_schedule_round_trips),
        cmocka_unit_test(test_string_capacity_boundaries),
        cmocka_unit_test(test_longest_schedule_fits),
        cmocka_unit_test(test_schedule_fractions),
        cmocka_unit_test(test_huge_values_keep_the_message_whole),
        cmocka_unit_test(test_sources_come_from_the_load),
        cmocka_unit_test(test_environ_load_is_getenvs),
        cmocka_unit_test(test_given_names_a_row),
        cmocka_unit_test(test_given_with_prefix),
        cmocka_unit_test(test_only_needs_a_glob),
        cmocka_unit_test(test_refusal_stays_one_line),
        cmocka_unit_test(test_globs_match_as_fnmatch),
        cmocka_unit_test(test_cstr_answers_as_libc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
