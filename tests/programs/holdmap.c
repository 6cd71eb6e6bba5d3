/*
 * holdmap.c - a known slot layout, held while a test looks at it:
 * `holdmap [hold [fork]]` allocates two 1 MB blocks one after the other
 * (two large heap items, side by side in the slot) and one 4-block
 * mapping, prints "ready PID", and with "hold" waits for its standard
 * input to close (at most 30 s).  With "fork" it first forks a child (a
 * copy of that slot) that prints "child PID" and waits the same way.  Then
 * it frees the second block and the mapping (so its exit's map differs
 * from its peak's) and exits 0 (the parent after its child).
 *
 * With "sites" instead of "fork" it also holds blocks from two sites of
 * its own, 12 blocks of 1000 bytes from hold_rows and 3 of 70000 bytes
 * from hold_tables (for `cebox status` under --leaks), and one of 333
 * bytes from hold_deep 20 calls deep (a stack deeper than a session row
 * keeps), then allocates and frees 4096 small blocks, after which their
 * figures are published.
 */
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB (1024 * 1024)

static void *rows[12], *tables[3], *deep;

static __attribute__((noinline)) void hold_rows(void)
{
    for (int i = 0; i < 12; i++) {
        rows[i] = malloc(1000);
    }
}

static __attribute__((noinline)) void hold_tables(void)
{
    volatile int n = 3; /* a loop the compiler keeps: one call site, one stack */
    for (int i = 0; i < n; i++) {
        tables[i] = malloc(70000);
    }
}

/* A frame of its own per level: a volatile local read after each call
 * keeps the compiler from making the recursion a loop. */
static __attribute__((noipa)) int hold_deep(int n)
{
    volatile int level = n;
    if (n == 0) {
        deep = malloc(333);
        return 0;
    }
    int below = hold_deep(n - 1);
    return below + (level != 0);
}

static __attribute__((noinline)) void churn(void)
{
    for (int i = 0; i < 4096; i++) {
        void *volatile p = malloc(16);
        free(p);
    }
}

/* Frees both sites' blocks (free(NULL) when they were never taken). */
static void release_sites(void)
{
    for (int i = 0; i < 12; i++) {
        free(rows[i]);
    }
    for (int i = 0; i < 3; i++) {
        free(tables[i]);
    }
    free(deep);
}

int main(int argc, char **argv)
{
    char *a = malloc(MB), *b = malloc(MB);
    void *m = mmap(NULL, 4 * 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == NULL || b == NULL || m == MAP_FAILED) {
        return 1;
    }
    memset(a, 1, MB);
    memset(b, 2, MB);
    bool sites = argc > 2 && strcmp(argv[2], "sites") == 0;
    if (sites) {
        hold_rows();
        hold_tables();
        if (hold_deep(20) != 20) {
            return 1;
        }
        churn();
    }
    pid_t child = argc > 2 && strcmp(argv[2], "fork") == 0 ? fork() : -1;
    printf(child == 0 ? "child %d\n" : "ready %d\n", (int)getpid());
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "hold") == 0) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        char c;
        while (poll(&p, 1, 30000) == 1 && read(0, &c, 1) == 1) {
        }
    }
    free(b);
    munmap(m, 4 * 65536);
    free(a);
    release_sites();
    int status = 0;
    if (child > 0 && (waitpid(child, &status, 0) != child || status != 0)) {
        return 1;
    }
    return 0;
}
