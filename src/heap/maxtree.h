/*
 * maxtree.h - max-trees: "the first key of at least t from position i on"
 * and "the largest key in [i, j]" in O(log n), for any heap algorithm.
 *
 * Owns: two forms of one structure.
 *  - The node array (maxtree_node_*): a 1-based array of 2 * leaves uint32
 *    values holding a tree of fan-out 4: node k's children are 4k to
 *    4k + 3, the root is node 1, leaves lie at [leaves, 2 * leaves), each
 *    inner node is the maximum of its four children, and `leaves` is a
 *    power of four (so each level of n nodes lies at [n, 2n); the entries
 *    between levels are unused, and no function here reads or writes them:
 *    granmap.h keeps its dirty list in [leaves / 2, leaves)).  Half the levels of a binary tree: an
 *    update climbs half as far, which is most of a lazy tree's sync.  The
 *    caller owns the memory (granmap.h keeps one per region inside its
 *    own block).
 *  - struct maxtree: a tree of fan-out 16 over uint32 keys (a heap's
 *    region property, counted in its units: CE 5's granules, CE 6's
 *    blocks), whose levels hold the keys capped at 15 bits (every region
 *    of a growable heap fits), sized for the keys that exist, taken from
 *    meta.h and doubled as keys are added, with a memo of the last answer
 *    from position 0.  A heap keeps one per region property (CE 5:
 *    cbMaxFree, the pass-2 tail; CE 6: maxBlkFree) to find the first
 *    region in list order that admits a request.  Its levels lie one after
 *    the other in one block, leaves first, each a whole number of 16-key
 *    groups (32 bytes): entry j of level l + 1 is the maximum of group j
 *    of level l, and the top level is one group.  A group is tested with
 *    two SSE2 compares (a loop without SSE2), so a search reads one group
 *    per level: 4 levels for 4 200 regions (8 192 positions) where a
 *    binary tree has 13, and an update climbs as many.  A threshold above
 *    the cap (a fixed heap's one large region) checks the candidates' own
 *    keys.
 *
 * Invariants: every inner node (entry) is the maximum of its children (its
 * group), entries past the last group's are 0; for a struct maxtree, leaf
 * i is key i capped at MAXTREE_KEY_MAX, every key at a position below
 * memo_at is at most memo_max, and the key at memo_at (if memo_at <
 * leaves) was the answer for some threshold above memo_max.  Not
 * thread-safe: the owner's lock serializes it.
 */
#ifndef CEBOX_HEAP_MAXTREE_H
#define CEBOX_HEAP_MAXTREE_H

#include <stdbool.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "invariant.h"

#define MAXTREE_NONE UINT32_MAX /* "no such position" */

static inline uint32_t maxtree_max2(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

/* The largest of the four children of node k. */
static inline uint32_t maxtree_node_children_max(const uint32_t *v, uint32_t k)
{
    const uint32_t *c = v + 4 * (size_t)k;
    return maxtree_max2(maxtree_max2(c[0], c[1]), maxtree_max2(c[2], c[3]));
}

/* Sets node k (a leaf: leaves + position) to val and the nodes above it
 * that change.  A raised value only needs to be carried up while it is the
 * larger one; a lowered one stops where a node keeps its maximum. */
static inline void maxtree_node_set(uint32_t *v, uint32_t k, uint32_t val)
{
    uint32_t old = v[k];
    v[k] = val;
    if (val >= old) {
        for (k >>= 2; k >= 1 && v[k] < val; k >>= 2) {
            v[k] = val;
        }
        return;
    }
    /* A node held the old value (or its climb stops: a larger child holds
     * its maximum, one read); its children decide its new one. */
    for (k >>= 2; k >= 1 && v[k] == old; k >>= 2) {
        uint32_t m = maxtree_node_children_max(v, k);
        if (m == old) {
            break; /* another child holds the old value too */
        }
        v[k] = m;
    }
}

/* The first position at or after `from` whose key is at least thr, or
 * MAXTREE_NONE.  From 0 straight down from the root; otherwise up from
 * `from` (each node's siblings to its right first) and down again, so a
 * near answer costs little. */
static inline uint32_t maxtree_node_first(const uint32_t *v, uint32_t leaves, uint32_t from,
                                          uint32_t thr)
{
    if (from >= leaves || v[1] < thr) {
        return MAXTREE_NONE;
    }
    uint32_t k = leaves + from;
    if (v[k] >= thr) {
        return from;
    }
    if (from == 0) {
        k = 1;
    } else {
        /* Up: the siblings right of k are read only when their parent
         * says one of its children is large enough. */
        for (;; k >>= 2) {
            if (k <= 1) {
                return MAXTREE_NONE;
            }
            if (v[k >> 2] >= thr) {
                uint32_t j = k;
                while ((++j & 3) != 0 && v[j] < thr) {
                }
                if ((j & 3) != 0) {
                    k = j; /* a sibling to the right holds one */
                    break;
                }
            }
        }
    }
    while (k < leaves) {
        for (k <<= 2; v[k] < thr; k++) {
        }
    }
    return k - leaves;
}

/* The largest key at positions [i0, i1] (i0 <= i1 < leaves). */
uint32_t maxtree_node_range_max(const uint32_t *v, uint32_t leaves, uint32_t i0, uint32_t i1);

/* Every inner node is the maximum of its children. */
bool maxtree_node_consistent(const uint32_t *v, uint32_t leaves);

/* The group tests without SSE2, and the reference for them (as
 * maxtree_group_above and maxtree_group_max). */
static inline uint32_t maxtree_group_above_portable(const uint16_t *g, int16_t below)
{
    uint32_t m = 0;
    for (uint32_t j = 0; j < 16; j++) {
        m |= (uint32_t)((int16_t)g[j] > below) << j;
    }
    return m;
}

static inline uint32_t maxtree_group_max_portable(const uint16_t *g)
{
    uint32_t m = 0;
    for (uint32_t j = 0; j < 16; j++) {
        m = maxtree_max2(m, g[j]);
    }
    return m;
}

/* ---- growable, fan-out 16, with a memo ---- */

#define MAXTREE_FAN 16u         /* keys per group: two SSE2 registers of 8 */
#define MAXTREE_KEY_MAX 0x7FFFu /* the levels' ceiling: they compare signed 16-bit lanes */
#define MAXTREE_LEVELS 8        /* 16^8 = 2^32 positions at most */

struct maxtree {
    uint32_t leaves;               /* positions: a power of two, at least MAXTREE_FAN */
    uint32_t top;                  /* the top level, one group */
    uint32_t off[MAXTREE_LEVELS];  /* level l starts at v + off[l] (off[0] = 0) */
    uint32_t size[MAXTREE_LEVELS]; /* entries of level l, a multiple of MAXTREE_FAN */
    uint16_t *v;                   /* every level, after keys in the same block */
    uint32_t *keys;                /* the keys themselves; level 0 holds them capped */
    /* The last answer from position 0 and a bound on the keys before it:
     * every key at a position below memo_at is at most memo_max (memo_at =
     * leaves when the answer was "none").  Allocations ask the same
     * question over and over with similar sizes; this answers many of them
     * with two reads. */
    uint32_t memo_at, memo_max;
};

/* A mask of the keys of group g (16 keys, 16-byte aligned) that exceed
 * `below`, bit j for key j. */
static inline __attribute__((always_inline)) uint32_t maxtree_group_above(const uint16_t *g,
                                                                          int16_t below)
{
#if defined(__SSE2__)
    const __m128i *q = (const __m128i *)(const void *)g;
    __m128i t = _mm_set1_epi16(below);
    __m128i lo = _mm_cmpgt_epi16(_mm_load_si128(q), t), hi = _mm_cmpgt_epi16(_mm_load_si128(q + 1), t);
    return (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(lo, hi));
#else
    return maxtree_group_above_portable(g, below);
#endif
}

/* The largest key of group g. */
static inline __attribute__((always_inline)) uint32_t maxtree_group_max(const uint16_t *g)
{
#if defined(__SSE2__)
    const __m128i *q = (const __m128i *)(const void *)g;
    __m128i m = _mm_max_epi16(_mm_load_si128(q), _mm_load_si128(q + 1));
    m = _mm_max_epi16(m, _mm_shuffle_epi32(m, 0x4E));   /* halves */
    m = _mm_max_epi16(m, _mm_shuffle_epi32(m, 0xB1));   /* 32-bit lanes */
    m = _mm_max_epi16(m, _mm_shufflelo_epi16(m, 0xB1)); /* 16-bit lanes */
    return (uint16_t)_mm_extract_epi16(m, 0);
#else
    return maxtree_group_max_portable(g);
#endif
}

/* An all-zero tree of at least `leaves` positions; false when meta_alloc
 * fails (t then holds nothing to free). */
bool maxtree_init(struct maxtree *t, uint32_t leaves);

/* Doubles the positions; false when meta_alloc fails, and t is unchanged. */
bool maxtree_grow(struct maxtree *t);

/* Frees the levels (a tree whose init failed too). */
void maxtree_destroy(struct maxtree *t);

/* Position i's key. */
static inline uint32_t maxtree_key(const struct maxtree *t, uint32_t i)
{
    return t->keys[i];
}

/* The entries above a lowered leaf: an entry changes only while it held
 * the old value, and then becomes its group's new maximum. */
static inline void maxtree_lower_(struct maxtree *t, uint32_t i, uint32_t old)
{
    for (uint32_t l = 1; l <= t->top; l++) {
        uint16_t *up = &t->v[t->off[l] + (i >> 4)];
        if (*up != old) {
            return;
        }
        uint32_t m = maxtree_group_max(&t->v[t->off[l - 1] + (i & ~(MAXTREE_FAN - 1))]);
        if (m == old) {
            return; /* another entry of the group holds it too */
        }
        *up = (uint16_t)m;
        i >>= 4;
    }
}

/* Sets position i's key; most operations leave it as it was.  A raised
 * leaf is carried up while it is the larger one. */
static inline void maxtree_set(struct maxtree *t, uint32_t i, uint32_t val)
{
    DEBUG_INVARIANT(i < t->leaves, "a key inside the tree");
    t->keys[i] = val;
    if (i < t->memo_at && val > t->memo_max) {
        t->memo_max = val; /* keeps the bound true */
    }
    uint32_t old = t->v[i], capped = val < MAXTREE_KEY_MAX ? val : MAXTREE_KEY_MAX;
    if (capped == old) {
        return;
    }
    t->v[i] = (uint16_t)capped;
    if (capped < old) {
        maxtree_lower_(t, i, old);
        return;
    }
    for (uint32_t l = 1, k = i >> 4; l <= t->top; l++, k >>= 4) {
        uint16_t *up = &t->v[t->off[l] + k];
        if (*up >= capped) {
            return;
        }
        *up = (uint16_t)capped;
    }
}

/* The first position under entry i of level l whose leaf exceeds `below`
 * (entry i's does): one group per level down. */
static inline uint32_t maxtree_down_(const struct maxtree *t, uint32_t l, uint32_t i, int16_t below)
{
    while (l > 0) {
        l--;
        i = i * MAXTREE_FAN +
            (uint32_t)__builtin_ctz(maxtree_group_above(&t->v[t->off[l] + i * MAXTREE_FAN], below));
    }
    return i;
}

/* First position >= from whose leaf (a capped key) is >= thr (at most
 * MAXTREE_KEY_MAX), or MAXTREE_NONE: up from `from`'s group until a group
 * holds a larger entry to the right, then down, so a near answer costs
 * little. */
static inline uint32_t maxtree_first_capped_(const struct maxtree *t, uint32_t from, uint32_t thr)
{
    if (from >= t->leaves) {
        return MAXTREE_NONE;
    }
    const int16_t below = (int16_t)((int32_t)thr - 1);
    uint32_t i = from;
    for (uint32_t l = 0;; l++) {
        uint32_t g = i & ~(MAXTREE_FAN - 1);
        uint32_t m = maxtree_group_above(&t->v[t->off[l] + g], below) & (~0u << (i & 15));
        if (m != 0) {
            return maxtree_down_(t, l, g + (uint32_t)__builtin_ctz(m), below);
        }
        i = (i >> 4) + 1; /* the entries after this group's, one level up */
        if (l == t->top || i >= t->size[l + 1]) {
            return MAXTREE_NONE;
        }
    }
}

/* maxtree_first_after for a threshold above the levels' ceiling: the
 * capped leaves give the candidates, the keys decide. */
uint32_t maxtree_first_above_cap_(const struct maxtree *t, uint32_t from, uint32_t thr);

/* First position >= from whose key is >= thr, or MAXTREE_NONE.  The key
 * at `from` itself is read first: a heap that starts at its last region
 * (CE 6) most often stops there. */
static inline uint32_t maxtree_first_after(const struct maxtree *t, uint32_t from, uint32_t thr)
{
    if (from < t->leaves && t->keys[from] >= thr) {
        return from;
    }
    if (__builtin_expect(thr > MAXTREE_KEY_MAX, 0)) {
        return maxtree_first_above_cap_(t, from, thr);
    }
    return maxtree_first_capped_(t, from, thr);
}

/* First position whose key is >= thr, or MAXTREE_NONE: from the memo when
 * it settles the question (a capped leaf answers for a threshold up to
 * the cap), otherwise down from the top group.  The keys before an answer
 * for thr are below thr, so thr - 1 bounds them. */
static inline __attribute__((always_inline)) uint32_t maxtree_first(struct maxtree *t, uint32_t thr)
{
    if (t->memo_max < thr && (t->memo_at >= t->leaves || t->v[t->memo_at] >= thr)) {
        return t->memo_at >= t->leaves ? MAXTREE_NONE : t->memo_at;
    }
    uint32_t i;
    if (__builtin_expect(thr == 0 || thr > MAXTREE_KEY_MAX, 0)) {
        i = maxtree_first_after(t, 0, thr);
    } else {
        const int16_t below = (int16_t)(thr - 1);
        uint32_t m = maxtree_group_above(&t->v[t->off[t->top]], below);
        i = m == 0 ? MAXTREE_NONE : maxtree_down_(t, t->top, (uint32_t)__builtin_ctz(m), below);
    }
    t->memo_at = i == MAXTREE_NONE ? t->leaves : i;
    t->memo_max = thr == 0 ? 0 : thr - 1;
    return i;
}

/* Records that position i (MAXTREE_NONE: none) is the first whose key is
 * at least thr, which the caller knows from a search of its own
 * (maxtree_first_after from a position before which no key reaches thr):
 * the memo then answers the next maxtree_first for thr or more, up to key
 * i, at once. */
static inline void maxtree_note_first(struct maxtree *t, uint32_t thr, uint32_t i)
{
    DEBUG_INVARIANT(thr > 0 && (i == MAXTREE_NONE || (i < t->leaves && t->keys[i] >= thr)),
                    "a noted first position admits the threshold");
    t->memo_at = i == MAXTREE_NONE ? t->leaves : i;
    t->memo_max = thr - 1;
}

/* The tree's entries and its memo bound are true (for validation). */
bool maxtree_consistent(const struct maxtree *t);

#endif
