/*
 * maxtree.c - the parts of max-trees off the hot path: range maxima, the
 * wide trees' layout and growth, and the consistency checks (see
 * maxtree.h for the contract).
 *
 * Owns: the levels of every struct maxtree (from meta.h).
 */
#include "heap/maxtree.h"

#include <string.h>

#include "meta.h"

uint32_t maxtree_node_range_max(const uint32_t *v, uint32_t leaves, uint32_t i0, uint32_t i1)
{
    /* [lo, hi) narrowed to whole groups of four, whose parents then stand
     * for them a level up. */
    uint32_t best = 0;
    for (uint32_t lo = leaves + i0, hi = leaves + i1 + 1; lo < hi; lo >>= 2, hi >>= 2) {
        for (; (lo & 3) != 0 && lo < hi; lo++) {
            best = maxtree_max2(best, v[lo]);
        }
        for (; (hi & 3) != 0 && lo < hi; hi--) {
            best = maxtree_max2(best, v[hi - 1]);
        }
    }
    return best;
}

bool maxtree_node_consistent(const uint32_t *v, uint32_t leaves)
{
    for (uint32_t level = leaves >> 2; level >= 1; level >>= 2) {
        for (uint32_t k = level; k < 2 * level; k++) {
            if (v[k] != maxtree_node_children_max(v, k)) {
                return false;
            }
        }
    }
    return true;
}

/* The layout of a tree of `leaves` positions: each level a whole number
 * of groups, up to a level of one group.  Its entries in all. */
static uint32_t layout(struct maxtree *t, uint32_t leaves)
{
    uint32_t at = 0, n = leaves, l = 0;
    for (;; l++) {
        t->off[l] = at;
        t->size[l] = n;
        at += n;
        if (n <= MAXTREE_FAN) {
            break;
        }
        n = (n / MAXTREE_FAN + MAXTREE_FAN - 1) & ~(MAXTREE_FAN - 1);
    }
    t->top = l;
    t->leaves = leaves;
    return at;
}

/* One block: the keys, then the levels (both 16-byte aligned, as leaves
 * is a multiple of 16). */
static size_t block_bytes(const struct maxtree *t)
{
    return (size_t)t->leaves * sizeof(uint32_t) + ((size_t)t->off[t->top] + MAXTREE_FAN) * sizeof(uint16_t);
}

static bool take_block(struct maxtree *t)
{
    t->keys = meta_alloc(block_bytes(t));
    t->v = t->keys == NULL ? NULL : (uint16_t *)(void *)(t->keys + t->leaves);
    return t->keys != NULL;
}

/* Every level above the leaves, from the leaves. */
static void build(struct maxtree *t)
{
    for (uint32_t l = 1; l <= t->top; l++) {
        for (uint32_t j = 0; j < t->size[l - 1] / MAXTREE_FAN; j++) {
            t->v[t->off[l] + j] = (uint16_t)maxtree_group_max(&t->v[t->off[l - 1] + j * MAXTREE_FAN]);
        }
    }
}

bool maxtree_init(struct maxtree *t, uint32_t leaves)
{
    uint32_t n = MAXTREE_FAN;
    while (n < leaves) {
        n *= 2;
    }
    layout(t, n);
    t->memo_at = t->memo_max = 0; /* no key lies before position 0 */
    return take_block(t);
}

bool maxtree_grow(struct maxtree *t)
{
    struct maxtree g = *t;
    layout(&g, t->leaves * 2);
    if (!take_block(&g)) {
        return false;
    }
    memcpy(g.keys, t->keys, t->leaves * sizeof(uint32_t));
    memcpy(g.v, t->v, t->leaves * sizeof(uint16_t));
    build(&g);
    meta_free(t->keys, block_bytes(t));
    *t = g;
    return true;
}

void maxtree_destroy(struct maxtree *t)
{
    meta_free(t->keys, block_bytes(t));
    t->keys = NULL;
    t->v = NULL;
}

uint32_t maxtree_first_above_cap_(const struct maxtree *t, uint32_t from, uint32_t thr)
{
    uint32_t i = maxtree_first_capped_(t, from, MAXTREE_KEY_MAX);
    while (i != MAXTREE_NONE && t->keys[i] < thr) {
        i = maxtree_first_capped_(t, i + 1, MAXTREE_KEY_MAX);
    }
    return i;
}

bool maxtree_consistent(const struct maxtree *t)
{
    uint32_t below = t->memo_at < t->leaves ? t->memo_at : t->leaves;
    for (uint32_t i = 0; i < t->leaves; i++) {
        uint32_t k = maxtree_key(t, i);
        if (t->v[i] != (k < MAXTREE_KEY_MAX ? k : MAXTREE_KEY_MAX) || (i < below && k > t->memo_max)) {
            return false;
        }
    }
    for (uint32_t l = 1; l <= t->top; l++) {
        uint32_t groups = t->size[l - 1] / MAXTREE_FAN;
        for (uint32_t j = 0; j < t->size[l]; j++) {
            uint32_t want = j < groups ? maxtree_group_max_portable(&t->v[t->off[l - 1] + j * MAXTREE_FAN]) : 0;
            if (t->v[t->off[l] + j] != want) {
                return false;
            }
        }
    }
    return true;
}
