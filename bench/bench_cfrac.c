/*
 * bench_cfrac.c - small-block churn of bignum arithmetic, in the spirit of
 * the cfrac factoring program: every operation returns a new number on the
 * heap and its operands are soon freed, so nearly every block lives for a
 * few operations and is 12 to 64 bytes long; small arrays grow by realloc
 * one element at a time.
 *
 * Numbers are little-endian 32-bit limbs, modulo 2^(32 * MAX_LIMBS), in
 * blocks of an 8-byte header and their limbs (at most 64 bytes).  STEPS
 * times, on a pool of POOL numbers: multiply one by a random word and add
 * another (two new numbers, one temporary), or multiply two (one new
 * number), or drop some low limbs (a shorter number, so sizes keep
 * varying).  Each result whose low limb has its six low bits clear is
 * appended to a list that grows by realloc and starts over at LIST_MAX
 * entries, as cfrac collects smooth candidates.
 *
 * Deterministic: one seeded generator; prints a hash of the final pool and
 * the number of list entries; exits 1 on a failed allocation.
 *
 * Usage: bench_cfrac [STEPS]   (default 300000)
 */
#include "workload.h"

#define MAX_LIMBS 14
#define POOL 64
#define LIST_MAX 64

struct num {
    uint32_t len; /* limbs in use, 1..MAX_LIMBS; the top one may be 0 */
    uint32_t unused;
    uint32_t limb[];
};

static struct num *num_new(uint32_t len)
{
    size_t size = sizeof(struct num) + len * sizeof(uint32_t);
    struct num *n = malloc(size);
    if (n == NULL) {
        workload_fail("malloc", size);
    }
    n->len = len;
    n->unused = 0;
    return n;
}

/* The significant length of limbs L[0..len): at least 1. */
static uint32_t trimmed(const uint32_t *l, uint32_t len)
{
    while (len > 1 && l[len - 1] == 0) {
        len--;
    }
    return len;
}

static struct num *num_from(const uint32_t *l, uint32_t len)
{
    len = trimmed(l, len);
    struct num *n = num_new(len);
    memcpy(n->limb, l, len * sizeof *l);
    return n;
}

/* A * K + B, modulo 2^(32 * MAX_LIMBS). */
static struct num *num_mul_add(const struct num *a, uint32_t k, const struct num *b)
{
    uint32_t r[MAX_LIMBS] = { 0 };
    uint64_t carry = 0;
    uint32_t len = (a->len > b->len ? a->len : b->len) + 1;
    if (len > MAX_LIMBS) {
        len = MAX_LIMBS;
    }
    for (uint32_t i = 0; i < len; i++) {
        uint64_t v = carry;
        v += i < a->len ? (uint64_t)a->limb[i] * k : 0;
        v += i < b->len ? b->limb[i] : 0;
        r[i] = (uint32_t)v;
        carry = v >> 32;
    }
    return num_from(r, len);
}

/* A * B, modulo 2^(32 * MAX_LIMBS). */
static struct num *num_mul(const struct num *a, const struct num *b)
{
    uint32_t r[MAX_LIMBS] = { 0 };
    for (uint32_t i = 0; i < a->len; i++) {
        uint64_t carry = 0;
        for (uint32_t j = 0; i + j < MAX_LIMBS && j < b->len; j++) {
            uint64_t v = (uint64_t)a->limb[i] * b->limb[j] + r[i + j] + carry;
            r[i + j] = (uint32_t)v;
            carry = v >> 32;
        }
        if (i + b->len < MAX_LIMBS) {
            r[i + b->len] = (uint32_t)carry;
        }
    }
    return num_from(r, MAX_LIMBS);
}

/* A without its DROP low limbs (at least one limb is kept). */
static struct num *num_shift_down(const struct num *a, uint32_t drop)
{
    if (drop >= a->len) {
        drop = a->len - 1;
    }
    return num_from(a->limb + drop, a->len - drop);
}

struct list {
    uint32_t *v;
    size_t n;
    uint64_t appended;
};

/* Appends X, growing the array by one element (realloc in small steps). */
static void list_append(struct list *l, uint32_t x)
{
    if (l->n == LIST_MAX) {
        free(l->v);
        l->v = NULL;
        l->n = 0;
    }
    uint32_t *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (v == NULL) {
        workload_fail("realloc", (l->n + 1) * sizeof *v);
    }
    l->v = v;
    l->v[l->n++] = x;
    l->appended++;
}

static struct num *step(struct rng *rng, struct num **pool)
{
    const struct num *a = pool[rng_range(rng, 0, POOL - 1)];
    const struct num *b = pool[rng_range(rng, 0, POOL - 1)];
    switch (rng_range(rng, 0, 3)) {
    case 0: {
        struct num *t = num_mul_add(a, (uint32_t)rng_next(rng), b);
        struct num *r = num_mul_add(t, (uint32_t)rng_next(rng) | 1, a);
        free(t);
        return r;
    }
    case 1:
        return num_mul(a, b);
    case 2:
        return num_shift_down(a, (uint32_t)rng_range(rng, 1, 8));
    default:
        return num_mul_add(b, (uint32_t)rng_next(rng), a);
    }
}

int main(int argc, char **argv)
{
    unsigned long steps = workload_arg(argc, argv, 1, 300000);
    struct rng rng;
    rng_seed(&rng, 1);
    struct num *pool[POOL];
    for (unsigned i = 0; i < POOL; i++) {
        uint32_t seed[2] = { (uint32_t)rng_next(&rng) | 1, (uint32_t)rng_next(&rng) };
        pool[i] = num_from(seed, 2);
    }
    struct list smooth = { 0 };
    for (unsigned long s = 0; s < steps; s++) {
        struct num *r = step(&rng, pool);
        if ((r->limb[0] & 63) == 0) {
            list_append(&smooth, r->limb[0]);
        }
        unsigned victim = (unsigned)rng_range(&rng, 0, POOL - 1);
        free(pool[victim]);
        pool[victim] = r;
    }
    uint64_t hash = 1469598103934665603ull;
    for (unsigned i = 0; i < POOL; i++) {
        for (uint32_t j = 0; j < pool[i]->len; j++) {
            hash = (hash ^ pool[i]->limb[j]) * 1099511628211ull;
        }
        free(pool[i]);
    }
    free(smooth.v);
    printf("cfrac: %lu steps, pool hash %016llx, %llu smooth\n", steps, (unsigned long long)hash,
           (unsigned long long)smooth.appended);
    return 0;
}
