/*
 * granmap.c - the granule map's layout, its searches past the nearby
 * words (through the summaries, bitsum.h), the lazy run tree and the
 * consistency check (see granmap.h; the functions on every operation's path
 * are inline there).
 *
 * Owns: nothing beyond the caller's block (granmap.h).
 */
#include "heap/granmap.h"

#include "heap/bitsum.h"

_Static_assert(GRANMAP_NONE == BITSUM_NONE, "the summaries' \"none\" is the map's");

static size_t round64(size_t v)
{
    return (v + 63) & ~(size_t)63;
}

/* The tree's leaves: a power of four (maxtree.h's node array). */
static uint32_t pow4_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n) {
        p <<= 2;
    }
    return p;
}

/* Where each array lies in the block. */
struct layout {
    uint32_t nwords, nsum, ntop, leaves;
    size_t off_sum, off_tree, off_list, off_dirty, bytes;
};

static struct layout layout_of(uint32_t ngran)
{
    struct layout l;
    l.nwords = (ngran + 63) / 64;
    l.nsum = (l.nwords + 63) / 64;
    l.ntop = (l.nsum + 63) / 64;
    l.leaves = pow4_at_least(l.nwords);
    l.off_sum = round64((size_t)2 * l.nwords * sizeof(uint64_t));
    l.off_tree = l.off_sum + round64((size_t)(2 * l.nsum + 2 * l.ntop) * sizeof(uint64_t));
    size_t end_tree = round64(l.off_tree + (size_t)2 * l.leaves * sizeof(uint32_t));
    /* The tree's entries [leaves / 2, leaves) lie between its two lowest
     * levels, unused (maxtree.h): the dirty list lies there when it fits,
     * else after the tree. */
    bool in_tree = l.nwords <= l.leaves / 2;
    l.off_list = in_tree ? l.off_tree + (size_t)(l.leaves / 2) * sizeof(uint32_t) : end_tree;
    l.off_dirty = in_tree ? end_tree : round64(end_tree + (size_t)l.nwords * sizeof(uint32_t));
    l.bytes = l.off_dirty + round64(l.nwords);
    return l;
}

size_t granmap_bytes(uint32_t ngran)
{
    return layout_of(ngran).bytes;
}

void granmap_init(struct granmap *m, void *mem, uint32_t ngran, uint32_t granule)
{
    struct layout l = layout_of(ngran);
    char *base = mem;
    m->words = (uint64_t *)base;
    m->sum_busy = (uint64_t *)(base + l.off_sum);
    m->sum_free = m->sum_busy + l.nsum;
    m->top_busy = m->sum_free + l.nsum;
    m->top_free = m->top_busy + l.ntop;
    m->tree = (uint32_t *)(base + l.off_tree);
    m->dirty_list = (uint32_t *)(base + l.off_list);
    m->dirty = (uint8_t *)(base + l.off_dirty);
    m->ngran = ngran;
    m->nwords = l.nwords;
    m->nsum = l.nsum;
    m->leaves = l.leaves;
    m->run_cs = m->run_ce = 0;
    m->granule = granule;
    m->ndirty = 0;
    m->scan_misses = m->scan_rest = 0;
    for (uint32_t w = 0; w < l.nwords; w++) { /* every granule starts busy */
        granmap_set_bit_(m->sum_busy, w, true);
        granmap_set_bit_(m->top_busy, w >> 6, true);
    }
}

uint32_t granmap_next_busy_after_word(const struct granmap *m, uint32_t w)
{
    uint32_t n = bitsum_next(m->sum_busy, m->top_busy, m->nsum, w + 1);
    return n == GRANMAP_NONE ? m->nwords << 6
                             : (n << 6) + (uint32_t)__builtin_ctzll(~GRANMAP_FREEW(m, n));
}

uint32_t granmap_prev_busy(const struct granmap *m, uint32_t x)
{
    uint32_t w = (x - 1) >> 6;
    uint64_t z = ~GRANMAP_FREEW(m, w) & granmap_mask(0, ((x - 1) & 63) + 1);
    if (z != 0) {
        return (w << 6) + 63 - (uint32_t)__builtin_clzll(z);
    }
    uint32_t n = bitsum_prev(m->sum_busy, m->top_busy, w);
    return n == GRANMAP_NONE ? GRANMAP_NONE
                             : (n << 6) + 63 - (uint32_t)__builtin_clzll(~GRANMAP_FREEW(m, n));
}

uint32_t granmap_next_free_after_word(const struct granmap *m, uint32_t w)
{
    uint32_t n = bitsum_next(m->sum_free, m->top_free, m->nsum, w + 1);
    return n == GRANMAP_NONE ? GRANMAP_NONE : (n << 6) + (uint32_t)__builtin_ctzll(GRANMAP_FREEW(m, n));
}

uint32_t granmap_prev_free(const struct granmap *m, uint32_t x)
{
    uint32_t w = (x - 1) >> 6;
    uint64_t z = GRANMAP_FREEW(m, w) & granmap_mask(0, ((x - 1) & 63) + 1);
    if (z == 0) {
        w = bitsum_prev(m->sum_free, m->top_free, w);
        if (w == GRANMAP_NONE) {
            return GRANMAP_NONE;
        }
        z = GRANMAP_FREEW(m, w);
    }
    return (w << 6) + 63 - (uint32_t)__builtin_clzll(z);
}

uint32_t granmap_run_start(const struct granmap *m, uint32_t x)
{
    if (x == 0) {
        return 0;
    }
    uint32_t b = granmap_prev_busy(m, x);
    return b == GRANMAP_NONE ? 0 : b + 1;
}

/* The longest whole run that starts in word w at a granule of mask `at`
 * (a contiguous range of bits).  A run's end inside the word is the k-th
 * end bit at or after the first start taken (runs do not overlap, so
 * starts and ends alternate); only a run that reaches bit 63 may go on
 * into the next words, and only it needs the map read further. */
static inline __attribute__((always_inline)) uint32_t longest_start(const struct granmap *m,
                                                                    uint32_t w, uint64_t at)
{
    uint64_t starts = granmap_run_starts_(m, w) & at;
    if (starts == 0) {
        return 0;
    }
    uint64_t f = GRANMAP_FREEW(m, w);
    uint64_t ends = f & ~(f >> 1) & ~((starts & -starts) - 1);
    uint32_t best = 0;
    for (; starts != 0; starts &= starts - 1, ends &= ends - 1) {
        uint32_t s = (uint32_t)__builtin_ctzll(starts), e = (uint32_t)__builtin_ctzll(ends);
        uint32_t len = e < 63 ? e + 1 - s : granmap_next_busy(m, (w << 6) + s) - ((w << 6) + s);
        best = maxtree_max2(best, len);
    }
    return best;
}

/* End of the free run that reaches the end of word w: the first busy
 * granule after the word, most often in the next one. */
static uint32_t run_end_past_word(const struct granmap *m, uint32_t w)
{
    if (w + 1 >= m->nwords) {
        return m->nwords << 6;
    }
    uint64_t busy = ~GRANMAP_FREEW(m, w + 1);
    if (busy != 0) {
        return ((w + 1) << 6) + (uint32_t)__builtin_ctzll(busy);
    }
    return granmap_next_busy(m, (w + 1) << 6);
}

/* Word w's leaf: the longest whole free run that starts in it.  The run
 * going on from the word below is cleared first (f & (f + 1) clears the
 * low ones); a run reaching bit 63 is measured into the next words and
 * cleared; each run left ends inside the word, and adding its lowest bit
 * to the word carries to the granule after its end. */
static uint32_t leaf_of(const struct granmap *m, uint32_t w)
{
    uint64_t f = GRANMAP_FREEW(m, w);
    if (w > 0 && (GRANMAP_FREEW(m, w - 1) >> 63) != 0) {
        f &= f + 1;
    }
    uint32_t best = 0;
    if ((f >> 63) != 0) {
        uint64_t busy = ~f;
        uint32_t s = busy == 0 ? 0 : 64 - (uint32_t)__builtin_clzll(busy);
        best = run_end_past_word(m, w) - ((w << 6) + s);
        f &= busy == 0 ? 0 : ~(uint64_t)0 >> (64 - s);
    }
    while (f != 0) {
        uint64_t after = f + (f & -f);
        best = maxtree_max2(best,
                            (uint32_t)__builtin_ctzll(after) - (uint32_t)__builtin_ctzll(f));
        f &= after;
    }
    return best;
}

/* The leaf of word w recomputed, and the nodes above it (m's tree and
 * leaves, read once by the caller). */
static inline __attribute__((always_inline)) void sync_word(const struct granmap *m, uint32_t *tree,
                                                            uint32_t leaves, uint32_t w)
{
    uint32_t k = leaves + w, v = leaf_of(m, w);
    if (tree[k] != v) {
        maxtree_node_set(tree, k, v);
    }
}

/* Each listed word's leaf, its mark cleared (a leaf depends on the free
 * bits alone, so the order does not matter).  The map's fields are
 * read once: a store to the tree or to a mark could be one to them, as
 * far as the compiler knows, and would have them read again for every
 * word. */
void granmap_sync_(struct granmap *m)
{
    uint32_t *tree = m->tree;
    const uint32_t leaves = m->leaves, n = m->ndirty;
    const uint32_t *list = m->dirty_list;
    uint8_t *dirty = m->dirty;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t w = list[k];
        dirty[w] = 0;
        sync_word(m, tree, leaves, w);
    }
    m->ndirty = 0;
}

uint32_t granmap_longest_in(struct granmap *m, uint32_t lo, uint32_t hi)
{
    if (lo >= hi) {
        return 0;
    }
    uint32_t best = granmap_free(m, lo) ? granmap_next_busy(m, lo) - lo : 0;
    uint32_t w0 = (lo + 1) >> 6, w1 = (hi - 1) >> 6;
    if (lo + 1 >= hi) {
        return best;
    }
    if (w0 == w1) {
        return maxtree_max2(best,
                            longest_start(m, w0, granmap_mask((lo + 1) & 63, ((hi - 1) & 63) + 1)));
    }
    best = maxtree_max2(best, longest_start(m, w0, ~(uint64_t)0 << ((lo + 1) & 63)));
    best = maxtree_max2(best, longest_start(m, w1, granmap_mask(0, ((hi - 1) & 63) + 1)));
    if (w1 > w0 + 1) {
        granmap_sync(m);
        best = maxtree_max2(best, maxtree_node_range_max(m->tree, m->leaves, w0 + 1, w1 - 1));
    }
    return best;
}

/* ---- the consistency check ---- */

static bool bit_of(const uint64_t *bits, uint32_t i)
{
    return (bits[i >> 6] >> (i & 63)) & 1;
}

/* The summary bits against the free bits they summarize. */
static bool summaries_consistent(const struct granmap *m)
{
    for (uint32_t w = 0; w < m->nwords; w++) {
        uint64_t f = GRANMAP_FREEW(m, w);
        if (bit_of(m->sum_busy, w) != (f != ~(uint64_t)0) || bit_of(m->sum_free, w) != (f != 0)) {
            return false;
        }
    }
    for (uint32_t i = 0; i < m->nsum; i++) {
        if (bit_of(m->top_busy, i) != (m->sum_busy[i] != 0) ||
            bit_of(m->top_free, i) != (m->sum_free[i] != 0)) {
            return false;
        }
    }
    return true;
}

/* The tree (in sync) against runs found granule by granule. */
static bool tree_consistent(const struct granmap *m)
{
    const uint32_t limit = m->nwords * 64;
    for (uint32_t w = 0; w < m->leaves; w++) {
        uint32_t best = 0;
        for (uint32_t g = w * 64; w < m->nwords && g < w * 64 + 64; g++) {
            if (granmap_free(m, g) && (g == 0 || !granmap_free(m, g - 1))) {
                uint32_t e = g;
                while (e < limit && granmap_free(m, e)) {
                    e++;
                }
                best = maxtree_max2(best, e - g);
            }
        }
        if (m->tree[m->leaves + w] != best) {
            return false;
        }
    }
    return maxtree_node_consistent(m->tree, m->leaves);
}

/* The known run is free and ends at a busy granule; no start bit on a free
 * granule. */
static bool runs_and_starts_consistent(const struct granmap *m)
{
    if (m->run_cs > m->run_ce || m->run_ce >= m->nwords * 64) {
        return false;
    }
    for (uint32_t g = m->run_cs; g < m->run_ce; g++) {
        if (!granmap_free(m, g)) {
            return false;
        }
    }
    if (m->run_cs != m->run_ce && granmap_free(m, m->run_ce)) {
        return false;
    }
    for (uint32_t w = 0; w < m->nwords; w++) {
        if (GRANMAP_FREEW(m, w) & GRANMAP_STARTW(m, w)) {
            return false;
        }
    }
    return true;
}

/* The marks, before a sync clears them: each byte 0 or 1, and the list
 * holds exactly the words marked 1, each once (a listed word's byte is
 * turned to 2 on its first visit, so a second visit, or a marked word left
 * unlisted, shows; the bytes are put back). */
static bool marks_consistent(struct granmap *m)
{
    bool ok = m->ndirty <= m->nwords;
    for (uint32_t k = 0; ok && k < m->ndirty; k++) {
        uint32_t w = m->dirty_list[k];
        ok = w < m->nwords && m->dirty[w] == 1;
        if (ok) {
            m->dirty[w] = 2;
        }
    }
    for (uint32_t w = 0; w < m->nwords; w++) {
        ok = ok && (m->dirty[w] == 0 || m->dirty[w] == 2);
        m->dirty[w] = m->dirty[w] != 0;
    }
    return ok;
}

bool granmap_consistent(struct granmap *m)
{
    if (!marks_consistent(m)) {
        return false;
    }
    granmap_sync(m);
    return summaries_consistent(m) && tree_consistent(m) && runs_and_starts_consistent(m);
}

void granmap_free_runs(const struct granmap *m, uint32_t lo, uint32_t hi, uintptr_t at0, size_t page,
                       struct granmap_runs *out)
{
    *out = (struct granmap_runs){0};
    uint32_t g = lo < hi ? granmap_next_free(m, lo) : GRANMAP_NONE;
    while (g < hi) {
        uint32_t e = granmap_next_busy(m, g);
        e = e <= g ? g + 1 : e > hi ? hi : e; /* always forward, whatever the bits say */
        out->runs++;
        out->longest = e - g > out->longest ? e - g : out->longest;
        uintptr_t from = (at0 + (uintptr_t)g * m->granule + page - 1) & ~(uintptr_t)(page - 1);
        uintptr_t to = (at0 + (uintptr_t)e * m->granule) & ~(uintptr_t)(page - 1);
        out->pages += to > from ? (to - from) / page : 0;
        g = e < hi ? granmap_next_free(m, e) : GRANMAP_NONE;
    }
}

uint32_t granmap_free_steps_(struct granmap *m, uint32_t g, uint32_t limit, uint32_t *run_end)
{
    uint32_t end = granmap_item_end(m, g, limit);
    granmap_set_start(m, g, false);
    granmap_set(m, g, end, true);
    *run_end = granmap_next_busy(m, end);
    return end;
}

uint32_t granmap_first_fit_scan(struct granmap *m, uint32_t lo, uint32_t n, uint32_t *run_end)
{
    /* When no run was that long at the last sync, the search is most often
     * in vain, and the heap then wants the longest run, which needs the
     * tree anyway: the sync comes first and answers at once, without the
     * look at the nearby words.  (Up to date, the tree's answer is exact.) */
    if (m->tree[1] < n) {
        granmap_sync(m);
        if (m->tree[1] < n) {
            return GRANMAP_NONE;
        }
    }
    uint32_t w = lo >> 6;
    /* A search from the first granule with the tree up to date (a search
     * that wraps round, after its first part synced the tree) skips this
     * and goes straight down from the root; the others look at the words
     * from lo first, unless those have been missing (scan_rest). */
    if (lo != 0 || m->ndirty != 0) {
        uint64_t at = ~(uint64_t)0 << (lo & 63);
        if (m->scan_rest != 0) {
            /* The tree at once; lo's word is read from lo on. */
            m->scan_rest--;
            granmap_sync(m);
            if (m->tree[1] < n) {
                return GRANMAP_NONE;
            }
            if (m->tree[m->leaves + w] >= n) {
                uint32_t g = granmap_fit_in_word_(m, w, at, n, run_end);
                if (g != GRANMAP_NONE) {
                    return g;
                }
            }
            w++;
        } else {
            for (uint32_t k = 0; k < GRANMAP_FIT_SCAN_WORDS && w < m->nwords; k++, w++, at = ~(uint64_t)0) {
                if (m->dirty[w] == 0 && m->tree[m->leaves + w] < n) {
                    continue; /* its leaf is up to date: no run that long starts in it */
                }
                uint32_t g = granmap_fit_in_word_(m, w, at, n, run_end);
                if (g != GRANMAP_NONE) {
                    m->scan_misses = 0;
                    return g;
                }
            }
            if (++m->scan_misses == GRANMAP_SCAN_MISSES) {
                m->scan_misses = 0;
                m->scan_rest = GRANMAP_SCAN_REST;
            }
            granmap_sync(m);
        }
    }
    w = maxtree_node_first(m->tree, m->leaves, w, n);
    return w == GRANMAP_NONE ? GRANMAP_NONE : granmap_fit_in_word_(m, w, ~(uint64_t)0, n, run_end);
}
