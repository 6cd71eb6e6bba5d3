/*
 * workload.h - what the allocation workloads of bench/ (bench_larson,
 * bench_xmalloc, bench_mstress, bench_cfrac) share: a seeded random number
 * generator, the size argument, and tagged blocks.
 *
 * Invariants: every workload is deterministic: its random numbers come from
 * a generator with a fixed seed per thread, so the sizes it asks for, and
 * so the checksum it prints, are the same on every run and under every
 * allocator (its output is compared across allocators).  A tagged block
 * starts with its own size and ends with a byte derived from it; each
 * workload checks the tag before it frees the block, so an allocator that
 * hands out overlapping or clobbered memory makes the run fail (exit 1)
 * instead of producing a timing.
 *
 * These are benchmark programs, not part of cebox: they use libc (the
 * allocator under test) freely.
 */
#ifndef BENCH_WORKLOAD_H
#define BENCH_WORKLOAD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKLOAD_SEED 0x9E3779B97F4A7C15ull

/* xorshift64*: fast, good enough for picking sizes and slots. */
struct rng {
    uint64_t s;
};

static inline void rng_seed(struct rng *r, uint64_t stream)
{
    r->s = WORKLOAD_SEED ^ (stream * 0xD1B54A32D192ED03ull);
    if (r->s == 0) {
        r->s = 1;
    }
}

static inline uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(struct rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* Argument I of argv as a positive count, or DEFAULT when absent; exits 2
 * on a malformed one. */
static inline unsigned long workload_arg(int argc, char **argv, int i, unsigned long def)
{
    if (argc <= i) {
        return def;
    }
    char *end;
    unsigned long v = strtoul(argv[i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0' || v == 0) {
        fprintf(stderr, "%s: argument %d: a positive number, not '%s'\n", argv[0], i, argv[i]);
        exit(2);
    }
    return v;
}

static inline void workload_fail(const char *what, size_t size)
{
    fprintf(stderr, "workload: %s of %zu bytes failed\n", what, size);
    exit(1);
}

/* The smallest tagged block: the size word and the end byte. */
#define TAG_MIN (sizeof(size_t) + 1)

static inline unsigned char tag_end_byte(size_t size)
{
    return (unsigned char)(size * 131u + 7u);
}

/* A new tagged block of SIZE (at least TAG_MIN) bytes; exits 1 when the
 * allocator has none. */
static inline void *tag_alloc(size_t size)
{
    unsigned char *p = malloc(size);
    if (p == NULL) {
        workload_fail("malloc", size);
    }
    memcpy(p, &size, sizeof size);
    p[size - 1] = tag_end_byte(size);
    return p;
}

/* Checks P's tag (exit 1 when damaged), frees it and returns its size. */
static inline size_t tag_free(void *p)
{
    unsigned char *b = p;
    size_t size;
    memcpy(&size, b, sizeof size);
    if (size < TAG_MIN || b[size - 1] != tag_end_byte(size)) {
        fprintf(stderr, "workload: block %p damaged (size word %zu)\n", p, size);
        exit(1);
    }
    free(p);
    return size;
}

#endif
