/*
 * faults.c - a program with known allocation calls, for tests/faults.sh:
 * each call is numbered in the order it is made and the output says, one
 * line per call, "N API SIZE ok" or "N API SIZE FAIL errno". It makes no
 * other allocation call (no stdio: its lines go out with write(2)), so
 * under `cebox run` its Nth call is the process's Nth.
 *
 * Calls 7 and 8 are made by parse_config (linked with -rdynamic so that
 * its name is in the dynamic symbol table), 11 and 12 by one call site
 * in a loop (one stack, twice).  With the argument "half" only calls 1-6
 * are made; with "slow" it waits 100 ms before each call; with "fork" the
 * process makes five calls of its own (not reported), then a forked child
 * makes the twelve; with "chdir" it first goes to "/".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static char out[4096];
static size_t used;
static int calls;
static unsigned pause_us; /* "slow": between calls, so that parallel runs overlap */

static int has_arg(int argc, char **argv, const char *word)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], word) == 0) {
            return 1;
        }
    }
    return 0;
}

static void report(const char *api, size_t size, int ok, int err)
{
    calls++;
    int n = ok ? snprintf(out + used, sizeof out - used, "%d %s %zu ok\n", calls, api, size)
               : snprintf(out + used, sizeof out - used, "%d %s %zu FAIL %s\n", calls, api, size,
                          err == ENOMEM ? "ENOMEM" : "other");
    used += n > 0 ? (size_t)n : 0;
    usleep(pause_us);
}

static void *checked_malloc(size_t size)
{
    errno = 0;
    void *p = malloc(size);
    report("malloc", size, p != NULL, errno);
    return p;
}

void parse_config(void); /* exported (-rdynamic): --fail-in finds it by name */

__attribute__((noinline, visibility("default"))) void parse_config(void)
{
    void *a = checked_malloc(48);
    void *b = checked_malloc(64);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    int half = has_arg(argc, argv, "half");
    pause_us = has_arg(argc, argv, "slow") ? 100000 : 0;
    if (has_arg(argc, argv, "chdir") && chdir("/") != 0) {
        return 1;
    }
    usleep(pause_us);
    if (has_arg(argc, argv, "fork")) {
        for (int i = 0; i < 5; i++) {
            free(malloc(8));
        }
        pid_t child = fork();
        if (child > 0) {
            int status;
            return waitpid(child, &status, 0) == child && WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        }
    }
    void *p1 = checked_malloc(16);
    void *p2 = checked_malloc(32);
    errno = 0;
    void *p3 = calloc(4, 16);
    report("calloc", 64, p3 != NULL, errno);
    errno = 0;
    void *grown = realloc(p3, 4096);
    report("realloc", 4096, grown != NULL, errno);
    p3 = grown != NULL ? grown : p3;
    errno = 0;
    void *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report("mmap", 65536, m != MAP_FAILED, errno);
    void *big = checked_malloc(100000);
    if (!half) {
        parse_config();
        void *p9 = checked_malloc(24);
        void *huge = checked_malloc(200000);
        free(p9);
        free(huge);
        for (int i = 0; i < 2; i++) {
            errno = 0;
            void *same = malloc(40);
            report("malloc", 40, same != NULL, errno);
            free(same);
        }
    }
    if (m != MAP_FAILED) {
        munmap(m, 65536);
    }
    free(p1);
    free(p2);
    free(p3);
    free(big);
    (void)!write(1, out, used);
    return 0;
}
