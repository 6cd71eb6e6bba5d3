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
 *   pin ROUNDS   fragments the heap on purpose: each round a short-lived
 *                buffer of 60 000 bytes (big_buffer) and a long-lived
 *                block of 100 bytes (keep_small), kept in a global; then
 *                every buffer is freed: the heap's regions hold only
 *                keep_small's blocks, which pin them
 *
 * Nothing is printed before the end (stdio's buffer is a block of its
 * own).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    memset(p, 1, 1000);
    lost = p;
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

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int n = argc > 2 ? atoi(argv[2]) : 10;
    if (strcmp(mode, "grow") == 0) {
        grow(n);
    } else if (strcmp(mode, "peak") == 0) {
        peak();
    } else if (strcmp(mode, "pin") == 0) {
        pin(n, argc > 3 ? (size_t)atol(argv[3]) : 90000, argc > 4 ? (size_t)atol(argv[4]) : 7000);
    } else {
        fprintf(stderr, "usage: siteviews grow STEPS | peak | pin ROUNDS\n");
        return 2;
    }
    return 0;
}
