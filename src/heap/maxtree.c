/*
 * maxtree.c - the parts of max-trees off the hot path: range maxima,
 * growth, and the consistency checks (see maxtree.h for the contract).
 *
 * Owns: the node arrays of every struct maxtree (from meta.h).
 */
#include "heap/maxtree.h"

#include <string.h>

#include "meta.h"

uint32_t maxtree_node_range_max(const uint32_t *v, uint32_t leaves, uint32_t i0, uint32_t i1)
{
    uint32_t best = 0;
    for (uint32_t lo = leaves + i0, hi = leaves + i1 + 1; lo < hi; lo >>= 1, hi >>= 1) {
        if (lo & 1) {
            best = maxtree_max2(best, v[lo++]);
        }
        if (hi & 1) {
            best = maxtree_max2(best, v[--hi]);
        }
    }
    return best;
}

bool maxtree_node_consistent(const uint32_t *v, uint32_t leaves)
{
    for (uint32_t k = 1; k < leaves; k++) {
        if (v[k] != maxtree_max2(v[2 * k], v[2 * k + 1])) {
            return false;
        }
    }
    return true;
}

static size_t array_bytes(uint32_t leaves)
{
    return (size_t)2 * leaves * sizeof(uint32_t);
}

bool maxtree_init(struct maxtree *t, uint32_t leaves)
{
    t->leaves = leaves;
    t->memo_at = t->memo_max = 0; /* no key lies before position 0 */
    t->v = meta_alloc(array_bytes(leaves));
    return t->v != NULL;
}

bool maxtree_grow(struct maxtree *t)
{
    uint32_t leaves = t->leaves * 2;
    uint32_t *v = meta_alloc(array_bytes(leaves));
    if (v == NULL) {
        return false;
    }
    memcpy(&v[leaves], &t->v[t->leaves], t->leaves * sizeof(uint32_t));
    for (uint32_t k = leaves - 1; k >= 1; k--) {
        v[k] = maxtree_max2(v[2 * k], v[2 * k + 1]);
    }
    meta_free(t->v, array_bytes(t->leaves));
    t->leaves = leaves;
    t->v = v;
    return true;
}

void maxtree_destroy(struct maxtree *t)
{
    meta_free(t->v, array_bytes(t->leaves));
    t->v = NULL;
}

bool maxtree_consistent(const struct maxtree *t)
{
    uint32_t below = t->memo_at < t->leaves ? t->memo_at : t->leaves;
    for (uint32_t i = 0; i < below; i++) {
        if (maxtree_key(t, i) > t->memo_max) {
            return false;
        }
    }
    return maxtree_node_consistent(t->v, t->leaves);
}
