/*
 * test_options.c - the option table: profiles, overrides, every refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
    const char *yes[] = {"yes", "YES", "1", "no", "No", "0", NULL};
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
    options_print(fds[1], &s, fake_get);
    close(fds[1]);
    read_pipe(fds[0], out, sizeof out);
    close(fds[0]);
    assert_non_null(strstr(out, "CEBOX_PROFILE=ce5\t(default)\n"));
    assert_non_null(strstr(out, "CEBOX_SLOT_SIZE=8M\t(set)\n"));
    assert_non_null(strstr(out, "CEBOX_RAM=64M\t(profile)\n"));
    assert_non_null(strstr(out, "CEBOX_LARGE_MEMORY_AREA=yes\t(profile)\n"));
}

static void test_markdown_lists_every_row(void **state)
{
    (void)state;
    char out[4096];
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
