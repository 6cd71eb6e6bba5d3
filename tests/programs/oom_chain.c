/*
 * oom_chain.c - a known chain of functions whose innermost allocation fails
 * in a tiny slot (run it under `cebox run --slot-size 1M`), for
 * tests/report.sh:
 *
 *   main -> chain_level1 -> chain_level2 -> chain_level3 -> malloc or mmap
 *
 *   oom_chain malloc   the chain fails 3 times through malloc (slot
 *                      exhausted), and main once more directly, asking for
 *                      more than the slot (a second site)
 *   oom_chain mmap     the chain fails twice through mmap
 *   oom_chain segv     the chain fails once, then the program crashes
 *   oom_chain threads  4 threads fail through the chain 200 times each, at
 *                      once: one site of 800 failures in an intact log
 *   oom_chain frag     64 KB mappings fill the slot, every other one is
 *                      unmapped, and the chain asks for 128 KB: enough free
 *                      blocks but no two together (fragmentation)
 *
 * The test finds the lines of the calls by their SITE and CALL markers:
 * keep each marker on the line of its call.  Built with -O1 -g, no
 * sibling calls and no unrolling, so that every function keeps its frame
 * and every loop its one call site.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NOINLINE __attribute__((noinline))
#define BIG ((size_t)900 * 1024) /* less than a 1 MB slot, more than its free blocks */

enum how { HOW_MALLOC, HOW_MMAP };

static volatile int sink;
static volatile int repeat = 3; /* read at run time: the loops stay loops */

NOINLINE static void *chain_level3(size_t n, enum how how)
{
    void *p;
    if (how == HOW_MALLOC) {
        p = malloc(n); /* SITE:malloc */
    } else {
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* SITE:mmap */
        p = p == MAP_FAILED ? NULL : p;
    }
    sink++;
    return p;
}

NOINLINE static void *chain_level2(size_t n, enum how how)
{
    void *p = chain_level3(n, how); /* CALL:level3 */
    sink++;
    return p;
}

NOINLINE static void *chain_level1(size_t n, enum how how)
{
    void *p = chain_level2(n, how); /* CALL:level2 */
    sink++;
    return p;
}

/* Fills the slot with 64 KB mappings, then unmaps every other one. */
NOINLINE static void fragment(void)
{
    static void *maps[1024];
    size_t n = 0;
    while (n < 1024) {
        void *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* SITE:fill */
        if (p == MAP_FAILED) {
            break;
        }
        maps[n++] = p;
    }
    for (size_t i = 0; i < n; i += 2) {
        munmap(maps[i], 65536);
    }
}

static void *thread_main(void *arg)
{
    (void)arg;
    intptr_t failed = 0;
    for (int i = 0; i < 200; i++) {
        failed += chain_level1(BIG, HOW_MALLOC) == NULL; /* CALL:level1-thread */
    }
    return (void *)failed;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "malloc";
    int failed = 0;
    if (strcmp(mode, "malloc") == 0) {
        for (int i = 0; i < repeat; i++) {
            failed += chain_level1(BIG, HOW_MALLOC) == NULL; /* CALL:level1 */
        }
        void *p = malloc(2 * BIG); /* SITE:main */
        failed += p == NULL;
        sink += p != NULL;
    } else if (strcmp(mode, "mmap") == 0) {
        for (int i = 0; i < repeat - 1; i++) {
            failed += chain_level1(BIG, HOW_MMAP) == NULL; /* CALL:level1-mmap */
        }
    } else if (strcmp(mode, "segv") == 0) {
        failed += chain_level1(BIG, HOW_MALLOC) == NULL; /* CALL:level1-segv */
        printf("failed %d, now crashing\n", failed);
        fflush(stdout);
        raise(SIGSEGV);
    } else if (strcmp(mode, "threads") == 0) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            pthread_create(&t[i], NULL, thread_main, NULL);
        }
        for (int i = 0; i < 4; i++) {
            void *r;
            pthread_join(t[i], &r);
            failed += (int)(intptr_t)r;
        }
    } else if (strcmp(mode, "frag") == 0) {
        fragment();
        failed += chain_level1(2 * 65536, HOW_MMAP) == NULL; /* CALL:level1-frag */
    } else {
        fprintf(stderr, "usage: oom_chain malloc|mmap|segv|threads|frag\n");
        return 2;
    }
    printf("failed %d\n", failed);
    return 0;
}
