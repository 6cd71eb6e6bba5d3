/*
 * bench_heap.c - ns per operation of the CE 5 heap, its reference model and
 * glibc malloc, on one mixed alloc/free sequence, at 1 000, 10 000 and
 * 100 000 live blocks.  Not a test: it only reports.  Run by `make bench`.
 *
 * The sequence: fill N slots with blocks, then, many times over, free the
 * block of a random slot and allocate a new one there (so N blocks stay
 * live).  Sizes: 90% 16..512 bytes, 9% 513..4096, 1% 4097..65536 (no large
 * items: those are system calls for every allocator).  Each allocator runs
 * the same pre-generated sequence; the clock covers the steady-state part
 * only, and each figure is the best of REPEATS runs (the machine's noise
 * only ever adds time).  cebox runs through the public API (HeapAlloc/HeapFree on a heap of
 * its own, ce5 algorithm) in a 2 GB slot so that a million blocks fit; the
 * model is tests/heapmodel.c, the literal CE algorithm with linear scans.
 *
 * Usage: bench_heap [ops-per-size [only]]   (default 200000; the model runs
 * at most 40000 of them at 100 000 blocks, it is that slow; `only` = cebox,
 * model or glibc runs just that one, for profiling).  BENCH_PROFILE=ce3 or
 * ce6 runs that profile's heap instead of CE 5's (the model, CE 5's, is then
 * left out); bench/bench_heaps.sh puts the three side by side.
 * BENCH_LIVE=N runs the one size N (up to 1 000 000) instead of the three,
 * and BENCH_REPEATS=R runs each cell R times instead of 5: under callgrind
 * a fill of a million blocks is minutes of work, done once that way.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cebox/winmem.h"
#include "../tests/heapmodel.h"

#define REPEATS 5 /* default; BENCH_REPEATS=N sets it (callgrind needs only 1) */

struct op {
    uint32_t slot;
    uint32_t size;
};

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint32_t some_size(void)
{
    uint64_t k = next_rand() % 100;
    if (k < 90) {
        return 16 + (uint32_t)(next_rand() % 497);
    }
    if (k < 99) {
        return 513 + (uint32_t)(next_rand() % 3584);
    }
    return 4097 + (uint32_t)(next_rand() % 61440);
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* The sequence: fill[n] initial sizes, then ops (each op = free + alloc). */
struct sequence {
    size_t live, nops;
    uint32_t *fill;
    struct op *ops;
};

static void make_sequence(struct sequence *s, size_t live, size_t nops)
{
    s->live = live;
    s->nops = nops;
    s->fill = malloc(live * sizeof *s->fill);
    s->ops = malloc(nops * sizeof *s->ops);
    for (size_t i = 0; i < live; i++) {
        s->fill[i] = some_size();
    }
    for (size_t i = 0; i < nops; i++) {
        s->ops[i].slot = (uint32_t)(next_rand() % live);
        s->ops[i].size = some_size();
    }
}

/* Each returns ns per operation (an alloc or a free) of the steady part. */

static double run_cebox(const struct sequence *s, size_t nops)
{
    HANDLE h = HeapCreate(0, 0, 0);
    void **p = calloc(s->live, sizeof *p);
    for (size_t i = 0; i < s->live; i++) {
        p[i] = HeapAlloc(h, 0, s->fill[i]);
        if (p[i] == NULL) {
            fprintf(stderr, "cebox: fill failed at %zu (error %u)\n", i, (unsigned)GetLastError());
            exit(1);
        }
    }
    double t0 = now_ns();
    for (size_t i = 0; i < nops; i++) {
        const struct op *o = &s->ops[i];
        HeapFree(h, 0, p[o->slot]);
        p[o->slot] = HeapAlloc(h, 0, o->size);
    }
    double t = now_ns() - t0;
    for (size_t i = 0; i < s->live; i++) {
        if (p[i] == NULL) {
            fprintf(stderr, "cebox: an allocation failed\n");
            exit(1);
        }
    }
    HeapDestroy(h);
    free(p);
    return t / (2.0 * (double)nops);
}

static double run_glibc(const struct sequence *s, size_t nops)
{
    void **p = calloc(s->live, sizeof *p);
    for (size_t i = 0; i < s->live; i++) {
        p[i] = malloc(s->fill[i]);
    }
    double t0 = now_ns();
    for (size_t i = 0; i < nops; i++) {
        const struct op *o = &s->ops[i];
        free(p[o->slot]);
        p[o->slot] = malloc(o->size);
    }
    double t = now_ns() - t0;
    for (size_t i = 0; i < s->live; i++) {
        free(p[i]);
    }
    free(p);
    return t / (2.0 * (double)nops);
}

static double run_model(const struct sequence *s, size_t nops)
{
    struct hm_slot *slot = hm_slot_new(32768);
    uint32_t err = 0;
    struct hm_heap *h = hm_create(slot, 0, 0, 0, &err);
    uint32_t *p = calloc(s->live, sizeof *p);
    for (size_t i = 0; i < s->live; i++) {
        p[i] = hm_alloc(h, 0, s->fill[i], &err);
    }
    double t0 = now_ns();
    for (size_t i = 0; i < nops; i++) {
        const struct op *o = &s->ops[i];
        hm_free(h, 0, p[o->slot], &err);
        p[o->slot] = hm_alloc(h, 0, o->size, &err);
    }
    double t = now_ns() - t0;
    hm_destroy(h);
    hm_slot_free(slot);
    free(p);
    return t / (2.0 * (double)nops);
}

int main(int argc, char **argv)
{
    size_t nops = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    const char *only = argc > 2 ? argv[2] : "";
    const char *profile = getenv("BENCH_PROFILE") != NULL ? getenv("BENCH_PROFILE") : "ce5";
    if (strcmp(profile, "ce3") != 0 && strcmp(profile, "ce5") != 0 && strcmp(profile, "ce6") != 0) {
        fprintf(stderr, "bench_heap: BENCH_PROFILE '%s': accepted: ce3, ce5, ce6\n", profile);
        return 2;
    }
    bool with_model = strcmp(profile, "ce5") == 0; /* tests/heapmodel.c is CE 5's algorithm */
    bool all = only[0] == '\0';
    /* A 2 GB slot and enough RAM for a million blocks (a CEBOX_SLOT_SIZE
     * or CEBOX_RAM already set wins: BENCH_LIVE then shows what fits, as
     * the fill's failure); the profile's heap. */
    setenv("CEBOX_PROFILE", profile, 1);
    setenv("CEBOX_SLOT_SIZE", "2G", 0);
    setenv("CEBOX_RAM", "8G", 0);
    static size_t sizes[] = {1000, 10000, 100000};
    int nsizes = 3;
    if (getenv("BENCH_LIVE") != NULL) { /* one size only, for profiling */
        sizes[0] = strtoul(getenv("BENCH_LIVE"), NULL, 10);
        nsizes = 1;
    }
    int repeats = getenv("BENCH_REPEATS") != NULL ? atoi(getenv("BENCH_REPEATS")) : REPEATS;
    if (sizes[0] == 0 || repeats < 1) {
        fprintf(stderr, "bench_heap: BENCH_LIVE and BENCH_REPEATS must be positive\n");
        return 2;
    }
    double cebox[3], model[3], glibc[3];
    size_t model_ops[3];
    GetProcessHeap(); /* start cebox before the clock */
    for (int i = 0; i < nsizes; i++) {
        struct sequence s;
        make_sequence(&s, sizes[i], nops);
        model_ops[i] = sizes[i] >= 100000 && nops > 40000 ? 40000 : nops;
        /* warm both real allocators once, then measure */
        glibc[i] = cebox[i] = model[i] = 0;
        for (int r = 0; r < repeats; r++) {
            if (all || strcmp(only, "glibc") == 0) {
                double t = run_glibc(&s, nops);
                glibc[i] = r == 0 || t < glibc[i] ? t : glibc[i];
            }
            if (all || strcmp(only, "cebox") == 0) {
                double t = run_cebox(&s, nops);
                cebox[i] = r == 0 || t < cebox[i] ? t : cebox[i];
            }
        }
        if (with_model && (all || strcmp(only, "model") == 0)) {
            model[i] = run_model(&s, model_ops[i]);
        }
        free(s.fill);
        free(s.ops);
    }
    printf("mixed alloc/free, %s heap, %zu operation pairs per size (model: %zu at %zu)\n\n", profile, nops,
           model_ops[nsizes - 1], sizes[nsizes - 1]);
    printf("| live blocks | cebox heap (ns/op) | reference model (ns/op) | glibc malloc (ns/op) "
           "| cebox / glibc |\n");
    printf("|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nsizes; i++) {
        printf("| %zu | %.1f | %.1f | %.1f | %.2f |\n", sizes[i], cebox[i], model[i], glibc[i],
               cebox[i] / glibc[i]);
    }
    if (nsizes == 3) {
        printf("\ncebox at 100 000 / at 1 000 live blocks: %.2f (goal <= 2)\n", cebox[2] / cebox[0]);
    }
    double worst = 0;
    for (int i = 0; i < nsizes; i++) {
        worst = cebox[i] / glibc[i] > worst ? cebox[i] / glibc[i] : worst;
    }
    printf("cebox / glibc, worst size: %.2f (goal <= 1.5)\n", worst);
    return 0;
}
