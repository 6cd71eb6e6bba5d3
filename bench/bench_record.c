/*
 * bench_record.c - the cost of an allocation under `cebox run`, to compare
 * failure recording off (no --out) and on (--out DIR): bench_record.sh runs
 * it both ways.  Not linked with cebox.
 *
 *   bench_record ops success   a mixed malloc/free workload that never fails
 *                              (1 000 live blocks, 16 to 4096 bytes): prints
 *                              ns per malloc or free
 *   bench_record ops fail      malloc of more than the slot, which always
 *                              fails: prints ns per failed call
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE 1000

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

__attribute__((noinline)) static void *allocate(size_t n)
{
    return malloc(n);
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 1000000;
    const char *mode = argc > 2 ? argv[2] : "success";
    static void *live[LIVE];
    if (strcmp(mode, "fail") == 0) {
        double t0 = now();
        long failed = 0;
        for (long i = 0; i < ops; i++) {
            void *p = allocate((size_t)64 << 20);
            failed += p == NULL;
            free(p);
        }
        double t1 = now();
        if (failed != ops) {
            fprintf(stderr, "bench_record: %ld of %ld allocations did not fail: run it under cebox\n",
                    ops - failed, ops);
            return 1;
        }
        printf("%.1f\n", (t1 - t0) / (double)ops);
        return 0;
    }
    for (int i = 0; i < LIVE; i++) {
        live[i] = allocate(16 + next() % 512);
    }
    double t0 = now();
    for (long i = 0; i < ops; i++) {
        size_t k = next() % LIVE;
        free(live[k]);
        uint64_t r = next() % 100;
        size_t n = r < 90 ? 16 + next() % 497 : 513 + next() % 3584;
        live[k] = allocate(n);
        if (live[k] == NULL) {
            fprintf(stderr, "bench_record: an allocation failed\n");
            return 1;
        }
        memset(live[k], 1, 8);
    }
    double t1 = now();
    printf("%.1f\n", (t1 - t0) / (2.0 * (double)ops));
    return 0;
}
