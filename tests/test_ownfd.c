/*
 * test_ownfd.c - cebox's own descriptors: high and close-on-exec, below a
 * low RLIMIT_NOFILE, never written or closed once the program closed them
 * or put its own file on their number, opened again by path without losing
 * a byte, a file replaced at the path never written, errno kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "record/ownfd.h"

static char dir[] = "/tmp/cebox-test-ownfd-XXXXXX";
static char path[sizeof dir + 16], other[sizeof dir + 16];

static size_t file_size(const char *p)
{
    char buf[4096];
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0 ? (size_t)n : 0;
}

static void write_ok(struct ownfd *f, const char *text)
{
    size_t written = 0;
    errno = 1234;
    assert_int_equal(ownfd_write(f, text, strlen(text), &written), 0);
    assert_int_equal(written, strlen(text));
    assert_int_equal(errno, 1234);
}

static void base_follows_the_limit(void **state)
{
    (void)state;
    assert_int_equal(ownfd_base(1024), 768);
    assert_int_equal(ownfd_base(1 << 20), 768); /* no huge descriptor table */
    assert_int_equal(ownfd_base(-1), 768);      /* limit unknown */
    assert_int_equal(ownfd_base(64), 48);
    assert_int_equal(ownfd_base(16), 12);
    assert_true(ownfd_base(4) < 4);
}

static void high_and_close_on_exec(void **state)
{
    (void)state;
    struct ownfd f;
    assert_int_equal(ownfd_open(&f, path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644), 0);
    assert_true(f.fd >= ownfd_base(1024));
    assert_true(fcntl(f.fd, F_GETFD) & FD_CLOEXEC);
    write_ok(&f, "one\n");
    ownfd_close(&f);
    assert_int_equal(f.fd, -1);
    assert_int_equal(file_size(path), 4);
}

static void below_a_low_limit(void **state)
{
    (void)state;
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 16;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct ownfd f;
    int err = ownfd_open(&f, path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    int fd = f.fd;
    if (err == 0) {
        write_ok(&f, "low\n");
        ownfd_close(&f);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(err, 0);
    assert_true(fd >= ownfd_base(16) && fd < 16);
}

/* The program closes the number, then dup2s its own file onto it: cebox's
 * bytes still reach cebox's file, none reach the program's, and closing
 * leaves the program's descriptor open. */
static void closed_or_replaced_number(void **state)
{
    (void)state;
    struct ownfd f;
    assert_int_equal(ownfd_open(&f, path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644), 0);
    int first = f.fd;
    close(first);
    write_ok(&f, "after close\n");
    int mine = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(mine >= 0);
    assert_int_equal(dup2(mine, f.fd), f.fd);
    close(mine);
    int taken = f.fd;
    write_ok(&f, "after dup2\n");
    assert_int_not_equal(f.fd, taken);
    assert_int_equal(ownfd_ensure(&f, false), OWNFD_SAME);
    ownfd_close(&f);
    assert_int_equal(file_size(path), strlen("after close\nafter dup2\n"));
    assert_int_equal(file_size(other), 0);
    assert_int_equal(write(taken, "x", 1), 1); /* still the program's, still open */
    close(taken);
    assert_int_equal(file_size(other), 1);
}

/* The file is removed and another made at the path: never written through
 * ownfd_write (the caller must start it properly), adopted by ownfd_ensure. */
static void replaced_file(void **state)
{
    (void)state;
    struct ownfd f;
    assert_int_equal(ownfd_open(&f, path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644), 0);
    int keep = open(path, O_RDONLY); /* the old inode stays allocated: never reused by the new file */
    assert_true(keep >= 0);
    close(f.fd);
    assert_int_equal(unlink(path), 0);
    size_t written = 7;
    assert_int_equal(ownfd_write(&f, "x", 1, &written), ENOENT);
    assert_int_equal(written, 0);
    assert_int_equal(ownfd_ensure(&f, false), OWNFD_LOST);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ownfd_write(&f, "x", 1, &written), ESTALE);
    assert_int_equal(file_size(path), 0);
    assert_int_equal(ownfd_ensure(&f, true), OWNFD_NEW);
    write_ok(&f, "new\n");
    assert_int_equal(ownfd_ensure(&f, true), OWNFD_SAME);
    ownfd_close(&f);
    close(keep);
    assert_int_equal(file_size(path), 4);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    snprintf(path, sizeof path, "%s/log", dir);
    snprintf(other, sizeof other, "%s/mine", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base_follows_the_limit),
        cmocka_unit_test(high_and_close_on_exec),
        cmocka_unit_test(below_a_low_limit),
        cmocka_unit_test(closed_or_replaced_number),
        cmocka_unit_test(replaced_file),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    unlink(other);
    rmdir(dir);
    return failed;
}
