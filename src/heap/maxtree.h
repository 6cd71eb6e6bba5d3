/*
 * maxtree.h - max-trees: "the first key of at least t from position i on"
 * and "the largest key in [i, j]" in O(log n), for any heap algorithm.
 *
 * Owns: two forms of one structure.
 *  - The node array (maxtree_node_*): a 1-based array of 2 * leaves uint32
 *    values, leaves at [leaves, 2 * leaves), each inner node the maximum of
 *    its two children; `leaves` is a power of two.  The caller owns the
 *    memory (granmap.h keeps one per region inside its own block).
 *  - struct maxtree: such an array sized for the keys that exist, taken
 *    from meta.h and doubled as keys are added (so its height follows the
 *    number of keys, not a bound), with a memo of the last answer from
 *    position 0.  A heap keeps one per region property (CE 5: cbMaxFree,
 *    the pass-2 tail) to find the first region in list order that admits a
 *    request.
 *
 * Invariants: every inner node is the maximum of its children; for a
 * struct maxtree, every key at a position below memo_at is at most
 * memo_max, and the key at memo_at (if memo_at < leaves) was the answer for
 * some threshold above memo_max.  Not thread-safe: the owner's lock
 * serializes it.
 */
#ifndef CEBOX_HEAP_MAXTREE_H
#define CEBOX_HEAP_MAXTREE_H

#include <stdbool.h>
#include <stdint.h>

#include "invariant.h"

#define MAXTREE_NONE UINT32_MAX /* "no such position" */

static inline uint32_t maxtree_max2(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

/* Sets node k (a leaf: leaves + position) to val and the nodes above it
 * that change.  A raised value only needs to be carried up while it is the
 * larger one; a lowered one stops where a node keeps its maximum. */
static inline void maxtree_node_set(uint32_t *v, uint32_t k, uint32_t val)
{
    uint32_t old = v[k];
    v[k] = val;
    if (val >= old) {
        for (k >>= 1; k >= 1 && v[k] < val; k >>= 1) {
            v[k] = val;
        }
        return;
    }
    for (k >>= 1; k >= 1; k >>= 1) {
        uint32_t m = maxtree_max2(v[2 * k], v[2 * k + 1]);
        if (v[k] == m) {
            break;
        }
        v[k] = m;
    }
}

/* The first position at or after `from` whose key is at least thr, or
 * MAXTREE_NONE.  From 0 straight down from the root; otherwise up from
 * `from` and down again, so a near answer costs little. */
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
        for (;;) {
            if ((k & 1) == 0 && v[k + 1] >= thr) {
                k++;
                break;
            }
            k >>= 1;
            if (k <= 1) {
                return MAXTREE_NONE;
            }
        }
    }
    while (k < leaves) {
        k <<= 1;
        if (v[k] < thr) {
            k++;
        }
    }
    return k - leaves;
}

/* The largest key at positions [i0, i1] (i0 <= i1 < leaves). */
uint32_t maxtree_node_range_max(const uint32_t *v, uint32_t leaves, uint32_t i0, uint32_t i1);

/* Every inner node is the maximum of its children. */
bool maxtree_node_consistent(const uint32_t *v, uint32_t leaves);

/* ---- growable, with a memo ---- */

struct maxtree {
    uint32_t leaves;
    uint32_t *v; /* node array of 2 * leaves values, from meta_alloc */
    /* The last answer from position 0 and a bound on the keys before it:
     * every key at a position below memo_at is at most memo_max (leaves and
     * the root's value when the answer was "none").  Allocations ask the
     * same question over and over with similar sizes; this answers most of
     * them with two reads. */
    uint32_t memo_at, memo_max;
};

/* An all-zero tree of `leaves` positions (a power of two); false when
 * meta_alloc fails (t then holds nothing to free). */
bool maxtree_init(struct maxtree *t, uint32_t leaves);

/* Doubles the positions; false when meta_alloc fails, and t is unchanged. */
bool maxtree_grow(struct maxtree *t);

/* Frees the array (a tree whose init failed too). */
void maxtree_destroy(struct maxtree *t);

/* Position i's key. */
static inline uint32_t maxtree_key(const struct maxtree *t, uint32_t i)
{
    return t->v[t->leaves + i];
}

/* Sets position i's key; most operations leave it as it was. */
static inline void maxtree_set(struct maxtree *t, uint32_t i, uint32_t val)
{
    DEBUG_INVARIANT(i < t->leaves, "a key inside the tree");
    uint32_t k = t->leaves + i;
    if (t->v[k] != val) {
        maxtree_node_set(t->v, k, val);
        if (i < t->memo_at && val > t->memo_max) {
            t->memo_max = val; /* keeps the bound true */
        }
    }
}

/* First position >= from whose key is >= thr, or MAXTREE_NONE. */
static inline uint32_t maxtree_first_after(const struct maxtree *t, uint32_t from, uint32_t thr)
{
    return maxtree_node_first(t->v, t->leaves, from, thr);
}

/* First position whose key is >= thr, or MAXTREE_NONE: from the memo when
 * it settles the question, otherwise down from the root, noting the
 * largest key of the subtrees passed on the left (the keys before the
 * answer). */
static inline uint32_t maxtree_first(struct maxtree *t, uint32_t thr)
{
    if (t->memo_max < thr && (t->memo_at >= t->leaves || t->v[t->leaves + t->memo_at] >= thr)) {
        return t->memo_at >= t->leaves ? MAXTREE_NONE : t->memo_at;
    }
    const uint32_t *v = t->v;
    uint32_t k = 1, left = 0;
    if (v[1] < thr) {
        t->memo_at = t->leaves;
        t->memo_max = v[1];
        return MAXTREE_NONE;
    }
    while (k < t->leaves) {
        k <<= 1;
        if (v[k] < thr) {
            left = maxtree_max2(left, v[k]);
            k++;
        }
    }
    t->memo_at = k - t->leaves;
    t->memo_max = left;
    return t->memo_at;
}

/* The tree's nodes and its memo bound are true (for validation). */
bool maxtree_consistent(const struct maxtree *t);

#endif
