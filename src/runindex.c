/*
 * runindex.c - segment tree of free block runs (see runindex.h).
 *
 * Nodes are numbered as in a heap (1 the root, 2i and 2i + 1 the children
 * of i), and stored in tiles so that the path from a leaf to the root
 * (every change of a block and every search, which reads a node's two
 * children at each step) stays on few pages.  From the leaves up, the
 * levels are cut into groups of GROUP_LEVELS; the levels left above them
 * (one to GROUP_LEVELS) form the top tile, stored in heap order.  A tile
 * of a lower group belongs to one node of the level just above the group
 * and holds the subtrees of its two children down to the group's bottom,
 * each as a little heap: 2 x 255 nodes of 8 bytes, one aligned page.  So
 * a path touches the top tile and one page per lower group: two for ce6's
 * 32 768 blocks (its top tile of eight levels shares the header's page),
 * where the plain heap layout touched one per level below the top ten (a
 * start faulted nine in), and 16-byte nodes in groups of seven levels
 * three.  A bit per lower tile says
 * whether it was ever written: a search that reaches a tile never written
 * computes its nodes without reading the page (a read would map the zero
 * page, and the first write then fault a second time).
 */
#include "runindex.h"

#include "invariant.h"

#include <stdbool.h>
#include <stdint.h>

/* A node as stored: each count plus one, so that a node never written
 * (zero, as the caller's memory comes) is told apart from a used one.
 * Such a node still holds what init would have written (blocks
 * [0, nblocks) free): it is computed from its position when read, so a
 * slot of 32 768 blocks starts without writing its tree. */
/* Counts fit 16 bits: at most RUNINDEX_MAX_BLOCKS, plus one. */
struct node {
    uint16_t prefix;  /* free blocks at the node's low end */
    uint16_t suffix;  /* free blocks at its high end */
    uint16_t longest; /* longest free run within */
    uint16_t unused;  /* 8 bytes: a tile of 512 is a page */
};

#define GROUP_LEVELS 8u
#define TILE_SLOTS 512u /* two heaps of 2^8 slots (their slot 0 unused) */
#define TILE_BYTES ((size_t)TILE_SLOTS * sizeof(struct node))
#define MAX_LEVELS 17u  /* 2^16 leaves */
_Static_assert(TILE_BYTES == 4096, "a tile is a page");

static inline __attribute__((always_inline)) struct node make_node(uint32_t prefix, uint32_t suffix, uint32_t longest)
{
    return (struct node){(uint16_t)prefix, (uint16_t)suffix, (uint16_t)longest, 0};
}

struct runindex {
    uint32_t nblocks;
    uint32_t leaves;     /* power of two >= nblocks */
    uint32_t top_levels; /* the levels of the top tile */
    uint32_t lower_off;  /* bytes from the index to its first lower tile (page-aligned) */
    uint32_t written_off; /* bytes from the index to its bitmap of lower tiles ever written */
    /* Per level below the top tile: its level within its group, and the
     * group's first tile (a table, not a division, on every node's way). */
    uint32_t level_in[MAX_LEVELS];
    uint32_t group_tile[MAX_LEVELS];
    struct node top[];   /* the top tile, heap order (slot 0 unused) */
};

static uint32_t leaves_for(uint32_t nblocks)
{
    uint32_t n = 1;
    while (n < nblocks) {
        n <<= 1;
    }
    return n;
}

static uint32_t levels_of(uint32_t leaves)
{
    return 32u - (uint32_t)__builtin_clz(leaves);
}

static uint32_t lower_groups(uint32_t levels)
{
    return (levels - 1) / GROUP_LEVELS;
}

/* Tiles of lower groups before group g: one per node of the level above
 * each of them. */
static size_t tiles_before(uint32_t top_levels, uint32_t g)
{
    size_t tiles = 0;
    for (uint32_t k = 0; k < g; k++) {
        tiles += (size_t)1 << (top_levels + k * GROUP_LEVELS - 1);
    }
    return tiles;
}

/* The index's header, top tile and bitmap of the lower tiles ever
 * written (a bit per tile, so that a search reads no page of a tile still
 * pristine: reading it first would map the zero page, and the first write
 * fault on it again); the lower tiles start at the next page boundary. */
static size_t bitmap_bytes(size_t tiles)
{
    return (tiles + 63) / 64 * sizeof(uint64_t);
}

/* The header and the top tile, up to the bitmap: rounded up to the
 * bitmap's words (the header's 156 bytes and 8-byte nodes would leave it
 * 4 bytes off). */
static size_t top_bytes(uint32_t top_levels)
{
    size_t bytes = sizeof(struct runindex) + ((size_t)1 << top_levels) * sizeof(struct node);
    return (bytes + _Alignof(uint64_t) - 1) & ~(size_t)(_Alignof(uint64_t) - 1);
}

static size_t head_bytes(uint32_t top_levels, size_t tiles)
{
    return top_bytes(top_levels) + bitmap_bytes(tiles);
}

size_t runindex_bytes(uint32_t nblocks)
{
    uint32_t levels = levels_of(leaves_for(nblocks)), groups = lower_groups(levels);
    uint32_t top = levels - groups * GROUP_LEVELS;
    size_t tiles = tiles_before(top, groups);
    return head_bytes(top, tiles) + TILE_BYTES + tiles * TILE_BYTES;
}

static uint64_t *written_map(const struct runindex *ri)
{
    return (uint64_t *)(void *)((char *)ri + ri->written_off);
}

/* The depth of heap node i (the root's is 0) and its place in its level. */
static inline __attribute__((always_inline)) uint32_t depth_of(uint32_t i)
{
    return 31u - (uint32_t)__builtin_clz(i);
}

/* Where the node at (depth, pos) is stored in the lower tiles: its tile,
 * and its slot in it; *sibling: slots from it (a left child) to its right
 * sibling (side by side, or the same slot of the tile's other half when
 * they start a group). */
static inline __attribute__((always_inline)) size_t lower_place(const struct runindex *ri, uint32_t depth,
                                                                 uint32_t pos, uint32_t *local, uint32_t *sibling)
{
    uint32_t in = ri->level_in[depth];
    uint32_t half = (pos >> in) & 1;
    *local = half * (TILE_SLOTS / 2) + ((1u << in) | (pos & ((1u << in) - 1)));
    *sibling = in == 0 ? TILE_SLOTS / 2 : 1;
    return (size_t)ri->group_tile[depth] + (pos >> (in + 1));
}

static inline __attribute__((always_inline)) struct node *lower_node(const struct runindex *ri, size_t tile,
                                                                      uint32_t local)
{
    struct node *lower = (struct node *)(void *)((char *)ri + ri->lower_off);
    return lower + tile * TILE_SLOTS + local;
}

/* Has the lower tile ever been written? */
static inline __attribute__((always_inline)) bool tile_written(const struct runindex *ri, size_t tile)
{
    return (written_map(ri)[tile / 64] >> (tile % 64) & 1) != 0;
}

static uint32_t max3(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* The node at (depth, pos) as init leaves it: the blocks it spans that lie
 * below nblocks are free, and they are its low end. */
static inline __attribute__((always_inline)) struct node pristine(const struct runindex *ri, uint32_t depth,
                                                                   uint32_t pos)
{
    uint32_t span = ri->leaves >> depth, lo = pos * span;
    uint32_t left = lo < ri->nblocks ? ri->nblocks - lo : 0;
    uint32_t len = left < span ? left : span;
    return make_node(len, len == span ? span : 0, len);
}

/* A node as stored (longest 0: never written) made the node it stands for. */
static inline __attribute__((always_inline)) struct node decoded(const struct runindex *ri, uint32_t depth,
                                                                  uint32_t pos, struct node n)
{
    if (n.longest == 0) {
        return pristine(ri, depth, pos);
    }
    return make_node(n.prefix - 1u, n.suffix - 1u, n.longest - 1u);
}

/* Nodes 2i and 2i + 1, which share a tile: read from one place, and not
 * at all from a lower tile never written. */
static void get_children(const struct runindex *ri, uint32_t i, struct node *l, struct node *r)
{
    uint32_t depth = depth_of(i) + 1, pos = 2 * i - (1u << depth);
    const struct node *n;
    uint32_t sibling = 1;
    if (depth < ri->top_levels) {
        n = &ri->top[2 * i];
    } else {
        uint32_t local;
        size_t tile = lower_place(ri, depth, pos, &local, &sibling);
        if (!tile_written(ri, tile)) {
            *l = pristine(ri, depth, pos);
            *r = pristine(ri, depth, pos + 1);
            return;
        }
        n = lower_node(ri, tile, local);
    }
    *l = decoded(ri, depth, pos, n[0]);
    *r = decoded(ri, depth, pos + 1, n[sibling]);
}

static struct node get(const struct runindex *ri, uint32_t i)
{
    uint32_t depth = depth_of(i), pos = i - (1u << depth);
    if (depth < ri->top_levels) {
        return decoded(ri, depth, pos, ri->top[i]);
    }
    uint32_t local, sibling;
    size_t tile = lower_place(ri, depth, pos, &local, &sibling);
    return tile_written(ri, tile) ? decoded(ri, depth, pos, *lower_node(ri, tile, local)) : pristine(ri, depth, pos);
}

static void put(struct runindex *ri, uint32_t i, struct node n)
{
    uint32_t depth = depth_of(i);
    struct node *at = &ri->top[i];
    if (depth >= ri->top_levels) {
        uint32_t local, sibling;
        size_t tile = lower_place(ri, depth, i - (1u << depth), &local, &sibling);
        written_map(ri)[tile / 64] |= (uint64_t)1 << (tile % 64);
        at = lower_node(ri, tile, local);
    }
    *at = make_node(n.prefix + 1u, n.suffix + 1u, n.longest + 1u);
}

/* A node from its two children, each spanning `half` blocks. */
static struct node combine(struct node l, struct node r, uint32_t half)
{
    return make_node(l.prefix == half ? half + r.prefix : l.prefix, r.suffix == half ? half + l.suffix : r.suffix,
                     max3(l.longest, r.longest, (uint32_t)l.suffix + r.prefix));
}

static void set_leaf(struct runindex *ri, uint32_t b, uint32_t is_free)
{
    put(ri, ri->leaves + b, make_node(is_free, is_free, is_free));
}

struct runindex *runindex_init(void *mem, uint32_t nblocks)
{
    INVARIANT(nblocks <= RUNINDEX_MAX_BLOCKS, "a free-run index counts in 16 bits");
    struct runindex *ri = mem;
    ri->nblocks = nblocks;
    ri->leaves = leaves_for(nblocks);
    uint32_t levels = levels_of(ri->leaves), groups = lower_groups(levels);
    ri->top_levels = levels - groups * GROUP_LEVELS;
    ri->written_off = (uint32_t)top_bytes(ri->top_levels);
    INVARIANT(((uintptr_t)mem + ri->written_off) % _Alignof(uint64_t) == 0, "the tiles' bitmap is word-aligned");
    uintptr_t after = (uintptr_t)mem + head_bytes(ri->top_levels, tiles_before(ri->top_levels, groups));
    ri->lower_off = (uint32_t)(((after + TILE_BYTES - 1) & ~(uintptr_t)(TILE_BYTES - 1)) - (uintptr_t)mem);
    for (uint32_t d = ri->top_levels; d < levels; d++) {
        uint32_t g = (d - ri->top_levels) / GROUP_LEVELS;
        ri->level_in[d] = (d - ri->top_levels) % GROUP_LEVELS;
        ri->group_tile[d] = (uint32_t)tiles_before(ri->top_levels, g);
    }
    return ri; /* every node pristine */
}

/* Node i's new value, its children spanning `half` blocks each, once
 * [first, end) was set: whole when all its blocks lie in the range (its
 * children unread), else from its children. */
static struct node refreshed(const struct runindex *ri, uint32_t i, uint32_t half, uint32_t first, uint32_t end,
                             uint32_t is_free)
{
    uint64_t span = 2 * (uint64_t)half, from = (uint64_t)i * span - ri->leaves; /* the node's first block */
    if (from >= first && from + span <= end) {
        uint32_t len = is_free ? (uint32_t)span : 0;
        return make_node(len, len, len);
    }
    struct node l, r;
    get_children(ri, i, &l, &r);
    return combine(l, r, half);
}

/* The leaves first, then each level's ancestors of the range once (a
 * large reservation is tens of blocks: O(count + log blocks) node writes,
 * not a climb to the root per block).  Once a level holds one ancestor,
 * the climb carries its value up and reads only its sibling. */
static void set_range(struct runindex *ri, uint32_t first, uint32_t count, uint32_t is_free)
{
    if (first >= ri->nblocks || count == 0) {
        return;
    }
    uint32_t end = count < ri->nblocks - first ? first + count : ri->nblocks;
    for (uint32_t b = first; b < end; b++) {
        set_leaf(ri, b, is_free);
    }
    uint32_t i = ri->leaves + first, last = ri->leaves + end - 1, half = 1;
    struct node n = make_node(is_free, is_free, is_free); /* the one node of the level, when there is one */
    for (; i != last; half <<= 1) {
        i >>= 1, last >>= 1;
        for (uint32_t k = i; k <= last; k++) {
            n = refreshed(ri, k, half, first, end, is_free);
            put(ri, k, n);
        }
    }
    for (; i > 1; half <<= 1) {
        struct node sibling = get(ri, i ^ 1);
        n = (i & 1) != 0 ? combine(sibling, n, half) : combine(n, sibling, half);
        i >>= 1;
        put(ri, i, n);
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
        struct node l, r;
        get_children(ri, i, &l, &r);
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
        struct node l, r;
        get_children(ri, i, &l, &r);
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
