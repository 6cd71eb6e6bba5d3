/*
 * runindex.c - segment tree of free block runs (see runindex.h).
 */
#include "runindex.h"

/* A node as stored: each count plus one, so that a node never written
 * (zero, as the caller's memory comes) is told apart from a used one.
 * Such a node still holds what init would have written (blocks
 * [0, nblocks) free): it is computed from its position when read, so a
 * slot of 32 768 blocks starts without writing its 768 KB tree. */
struct node {
    uint32_t prefix;  /* free blocks at the node's low end */
    uint32_t suffix;  /* free blocks at its high end */
    uint32_t longest; /* longest free run within */
};

struct runindex {
    uint32_t nblocks;
    uint32_t leaves;     /* power of two >= nblocks */
    struct node tree[];  /* 1-based heap layout, 2 * leaves nodes */
};

static uint32_t leaves_for(uint32_t nblocks)
{
    uint32_t n = 1;
    while (n < nblocks) {
        n <<= 1;
    }
    return n;
}

size_t runindex_bytes(uint32_t nblocks)
{
    return sizeof(struct runindex) + 2 * (size_t)leaves_for(nblocks) * sizeof(struct node);
}

static uint32_t max3(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* Node i as init leaves it: the blocks it spans that lie below nblocks
 * are free, and they are its low end. */
static struct node pristine(const struct runindex *ri, uint32_t i)
{
    uint32_t depth = 31u - (uint32_t)__builtin_clz(i);
    uint32_t span = ri->leaves >> depth, lo = (i - (1u << depth)) * span;
    uint32_t len = lo >= ri->nblocks ? 0 : (ri->nblocks - lo < span ? ri->nblocks - lo : span);
    struct node n = {len, len == span ? span : 0, len};
    return n;
}

static struct node get(const struct runindex *ri, uint32_t i)
{
    struct node n = ri->tree[i];
    if (n.longest == 0) {
        return pristine(ri, i);
    }
    n.prefix--, n.suffix--, n.longest--;
    return n;
}

static void put(struct runindex *ri, uint32_t i, struct node n)
{
    ri->tree[i] = (struct node){n.prefix + 1, n.suffix + 1, n.longest + 1};
}

/* Combines the two children of node i, each spanning `half` blocks. */
static void pull(struct runindex *ri, uint32_t i, uint32_t half)
{
    struct node l = get(ri, 2 * i), r = get(ri, 2 * i + 1), n;
    n.prefix = l.prefix == half ? half + r.prefix : l.prefix;
    n.suffix = r.suffix == half ? half + l.suffix : r.suffix;
    n.longest = max3(l.longest, r.longest, l.suffix + r.prefix);
    put(ri, i, n);
}

static void rebuild_up(struct runindex *ri, uint32_t leaf)
{
    uint32_t half = 1;
    for (uint32_t i = (ri->leaves + leaf) >> 1; i >= 1; i >>= 1, half <<= 1) {
        pull(ri, i, half);
    }
}

static void set_leaf(struct runindex *ri, uint32_t b, uint32_t is_free)
{
    put(ri, ri->leaves + b, (struct node){is_free, is_free, is_free});
}

struct runindex *runindex_init(void *mem, uint32_t nblocks)
{
    struct runindex *ri = mem;
    ri->nblocks = nblocks;
    ri->leaves = leaves_for(nblocks);
    return ri; /* every node pristine */
}

static void set_range(struct runindex *ri, uint32_t first, uint32_t count, uint32_t is_free)
{
    for (uint32_t b = first; b < first + count && b < ri->nblocks; b++) {
        set_leaf(ri, b, is_free);
        rebuild_up(ri, b);
    }
}

void runindex_set_used(struct runindex *ri, uint32_t first, uint32_t count)
{
    set_range(ri, first, count, 0);
}

void runindex_set_free(struct runindex *ri, uint32_t first, uint32_t count)
{
    set_range(ri, first, count, 1);
}

uint32_t runindex_longest(const struct runindex *ri)
{
    return get(ri, 1).longest;
}

uint32_t runindex_first_fit(const struct runindex *ri, uint32_t count)
{
    if (count == 0 || runindex_longest(ri) < count) {
        return UINT32_MAX;
    }
    uint32_t i = 1, lo = 0, span = ri->leaves;
    while (span > 1) {
        uint32_t half = span >> 1;
        struct node l = get(ri, 2 * i), r = get(ri, 2 * i + 1);
        if (l.longest >= count) {
            i = 2 * i;
        } else if (l.suffix + r.prefix >= count) {
            return lo + half - l.suffix;
        } else {
            i = 2 * i + 1;
            lo += half;
        }
        span = half;
    }
    return lo;
}

uint32_t runindex_last_fit(const struct runindex *ri, uint32_t count)
{
    if (count == 0 || runindex_longest(ri) < count) {
        return UINT32_MAX;
    }
    uint32_t i = 1, lo = 0, span = ri->leaves;
    while (span > 1) {
        uint32_t half = span >> 1;
        struct node l = get(ri, 2 * i), r = get(ri, 2 * i + 1);
        if (r.longest >= count) {
            i = 2 * i + 1;
            lo += half;
        } else if (l.suffix + r.prefix >= count) {
            return lo + half + r.prefix - count;
        } else {
            i = 2 * i;
        }
        span = half;
    }
    return lo;
}
