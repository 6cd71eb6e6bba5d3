/*
 * crash_after_oom.c - a program that trusts malloc: it writes through
 * what malloc returned without checking it, so an injected failure
 * (cebox run --fail-nth 1) makes it die of SIGSEGV in format_sample.
 * "crash" as the argument writes through NULL with no failure before
 * (a crash that no failed allocation explains).  The markers are what
 * tests/triage.sh looks for; it prints nothing before the crash, so its
 * first malloc is the program's first call.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* no_sanitize_undefined: a UBSan build must still die of SIGSEGV here, as the test expects */
__attribute__((noinline, no_sanitize_undefined)) static char *format_sample(size_t n)
{
    char *buf = malloc(n); /* SITE:malloc */
    buf[0] = 'x';          /* SITE:crash */
    buf[n - 1] = '\0';
    return buf;
}

__attribute__((noinline, no_sanitize_undefined)) static void plain_crash(volatile int *p)
{
    *p = 1; /* SITE:null */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "crash") == 0) {
        plain_crash((volatile int *)(uintptr_t)(argc - 2)); /* NULL; from argc, so not cloned */
        return 0;
    }
    char *s = format_sample((size_t)argc * 48); /* 48; from argc, so not cloned */
    free(s);
    return 0;
}
