/*
 * siteviews.c - programs whose live set by allocation site is known at
 * every moment, for tests/siteviews.sh (the growth samples, the peak view
 * and the pinning sites of --leaks with --out):
 *
 *   grow STEPS   each step allocates and frees 2048 blocks of 64 bytes at
 *                churn_block (so the tracker reads its clock twice a step)
 *                and loses one of 1000 bytes at slow_leak, then sleeps
 *                20 ms: slow_leak grows by 1000 bytes a step, steadily
 *   peak         10 blocks of 3000 bytes at peak_a and 5 of 2000 at peak_b
 *                (the peak: 40 000 bytes), then frees peak_a's and makes
 *                20 of 1000 bytes at after_peak (30 000 live at exit)
 *   pin ROUNDS [BIG SMALL]  fragments the heap on purpose: each round a
 *                short-lived buffer of BIG bytes (big_buffer, 90 000) and
 *                a long-lived block of SMALL (keep_small, 7000), kept in a
 *                global; then every buffer is freed: the heap's regions
 *                hold only keep_small's blocks, which pin them
 *   pinfree ROUNDS CHURN  pin ROUNDS, then CHURN blocks at churn_block
 *                (allocated and freed at once: frees enough for the view
 *                at the slot's least free run to be taken again), then
 *                frees keep_small's blocks too: nothing is live at exit,
 *                while at the least free run keep_small pinned every region
 *   maps         reservations: 3 blocks (map_kept) kept in a global, 1
 *                block (map_lost) whose address is dropped, 2 blocks
 *                (map_gone) unmapped in two calls, 4 blocks (map_part) of which only the
 *                first page is unmapped: at exit the program still holds
 *                map_kept's (reachable), map_lost's (definitely lost) and
 *                map_part's (possibly lost: only a pointer into it is left)
 *
 * Nothing is printed before the end (stdio's buffer is a block of its
 * own).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define NOINLINE __attribute__((noinline))
#define MAX_ROUNDS 256

void *volatile kept[MAX_ROUNDS];
void *volatile lost; /* written, never read: the leak is still reachable when last */

static void pause_ms(long ms)
{
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

static NOINLINE void churn_block(void)
{
    void *volatile p = malloc(64);
    free(p);
}

static NOINLINE void slow_leak(void)
{
    char *p = malloc(1000);
    if (p != NULL) { /* a failure injected here is survived */
        memset(p, 1, 1000);
        lost = p;
    }
}

static void grow(int steps)
{
    for (int i = 0; i < steps; i++) {
        for (int k = 0; k < 2048; k++) {
            churn_block();
        }
        slow_leak();
        pause_ms(20);
    }
}

static NOINLINE void *peak_a(void)
{
    return malloc(3000);
}

static NOINLINE void *peak_b(void)
{
    return malloc(2000);
}

static NOINLINE void *after_peak(void)
{
    return malloc(1000);
}

static void peak(void)
{
    void *a[10];
    for (int i = 0; i < 10; i++) {
        a[i] = peak_a();
    }
    for (int i = 0; i < 5; i++) {
        kept[i] = peak_b();
    }
    for (int i = 0; i < 10; i++) {
        free(a[i]);
    }
    for (int i = 0; i < 20; i++) {
        kept[5 + i] = after_peak();
    }
}

static NOINLINE void *big_buffer(size_t n)
{
    return malloc(n);
}

static NOINLINE void *keep_small(size_t n)
{
    char *p = malloc(n);
    if (p != NULL) {
        p[0] = 's'; /* a body of its own: identical functions would be folded into one */
    }
    return p;
}

static void pin(int rounds, size_t big_bytes, size_t small_bytes)
{
    void *big[MAX_ROUNDS];
    rounds = rounds < MAX_ROUNDS ? rounds : MAX_ROUNDS;
    for (int i = 0; i < rounds; i++) {
        big[i] = big_buffer(big_bytes);
        kept[i] = keep_small(small_bytes);
    }
    for (int i = 0; i < rounds; i++) {
        free(big[i]);
    }
}

static void pin_then_free(int rounds, int churn)
{
    pin(rounds, 90000, 7000);
    for (int i = 0; i < churn; i++) {
        churn_block();
    }
    for (int i = 0; i < rounds && i < MAX_ROUNDS; i++) {
        free(kept[i]);
        kept[i] = NULL;
    }
}

#define BLOCK (64 * 1024)

static void *map_blocks(size_t n)
{
    return mmap(NULL, n * BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static NOINLINE void *map_kept(void)
{
    return map_blocks(3);
}

static NOINLINE void map_lost(void)
{
    char *p = map_blocks(1);
    p[0] = 1; /* its address is forgotten on return */
}

static NOINLINE void map_gone(void)
{
    char *p = map_blocks(2);
    p[1] = 2;
    munmap(p, 4096); /* its first page, then the rest: the second call does not start at its base */
    munmap(p + 4096, 2 * BLOCK - 4096);
}

static NOINLINE void *map_part(void)
{
    char *p = map_blocks(4);
    munmap(p, 4096);
    return p + 4096;
}

static void maps(void)
{
    kept[0] = map_kept();
    map_lost();
    kept[1] = map_part();
    map_gone(); /* last: no later reservation takes its address */
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int n = argc > 2 ? atoi(argv[2]) : 10;
    if (strcmp(mode, "grow") == 0) {
        grow(n);
    } else if (strcmp(mode, "peak") == 0) {
        peak();
    } else if (strcmp(mode, "maps") == 0) {
        maps();
    } else if (strcmp(mode, "pin") == 0) {
        pin(n, argc > 3 ? (size_t)atol(argv[3]) : 90000, argc > 4 ? (size_t)atol(argv[4]) : 7000);
    } else if (strcmp(mode, "pinfree") == 0) {
        pin_then_free(n, argc > 3 ? atoi(argv[3]) : 20000);
    } else {
        fprintf(stderr, "usage: siteviews grow STEPS | peak | maps | pin ROUNDS [BIG SMALL] | pinfree ROUNDS [CHURN]\n");
        return 2;
    }
    return 0;
}
