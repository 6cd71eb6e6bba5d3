/*
 * granmap.h - the granule map: which granules of a heap region are free and
 * where busy items start, with the indexes that make "next busy", "next
 * free", "first free run of at least n" and "longest free run" a few word
 * reads instead of a walk of the items.
 *
 * Owns: nothing but the struct granmap it is handed; its arrays live in one
 * block the caller provides (sized by granmap_bytes), so a heap keeps a
 * region's bookkeeping in one allocation.
 *
 * A granule is the unit a heap rounds its items to (CE 5: 16 bytes); the
 * map counts granules only and knows no item rule: the heap says which
 * granules are free (granmap_set) and where its busy items start
 * (granmap_set_start).  It keeps, per 64 granules:
 *  - free bits (1 = free) and start bits (1 = the first granule of a busy
 *    item), interleaved word by word so that one cache line holds both;
 *  - two summary levels over the free bits: which words hold a busy
 *    granule / a free granule, and above each, which summary words are not
 *    zero;
 *  - a max-tree (maxtree.h) over the words whose leaf w is the longest
 *    whole free run that starts in word w, synced lazily: a change marks
 *    the words whose leaf may change (a dirty byte per word, and a list
 *    of the words whose byte went from 0 to 1), and granmap_sync
 *    recomputes the listed words before the tree is read: a map read
 *    seldom (one of a large heap's many regions) has a few marks among
 *    hundreds of words, and its sync reads those alone;
 *  - one free run known whole (run_cs, run_ce), set by the heap after a
 *    carve or a free and dropped by granmap_set when a change breaks it: the
 *    next search usually asks for that run's end.
 *
 * Invariants (checked by granmap_consistent): the summaries agree with the
 * free bits; each dirty byte is 0 or 1, and the list holds each word whose
 * byte is 1 once (ndirty of them); after granmap_sync, every leaf is the longest run starting in
 * its word and every node the maximum of its children; [run_cs, run_ce) is
 * free and run_ce is busy (or the run is empty); a start bit is never set
 * on a free granule.  A fresh map is all busy.  Granules past the end of a
 * heap's items must stay busy, so runs end there.  Not thread-safe: the
 * heap's lock serializes it.
 */
#ifndef CEBOX_HEAP_GRANMAP_H
#define CEBOX_HEAP_GRANMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/maxtree.h"
#include "invariant.h"

#define GRANMAP_NONE UINT32_MAX /* "no such granule" */

struct granmap {
    uint64_t *words; /* per 64 granules: free bits, then start bits */
    uint64_t *sum_busy, *sum_free, *top_busy, *top_free;
    uint8_t *dirty;  /* per word: 1 when its tree leaf may be stale */
    uint32_t *tree;  /* node array, leaves at [leaves, 2 * leaves) */
    uint32_t ngran, nwords, nsum, leaves;
    uint32_t run_cs, run_ce; /* the known run (none when equal) */
    uint32_t granule;        /* bytes a granule stands for (the heap's unit) */
    /* The words whose dirty byte is 1: how many, and each of them, in
     * the order they were marked (room for nwords: a word is listed only
     * when its byte goes from 0 to 1). */
    uint32_t ndirty;
    uint32_t *dirty_list;
    /* granmap_first_fit_scan's look at the nearby words: misses in a row,
     * and searches left that go to the tree at once after too many. */
    uint16_t scan_misses, scan_rest;
};

/* Bytes of the block that granmap_init needs for ngran granules. */
size_t granmap_bytes(uint32_t ngran);

/* Lays the map out in `mem` (64-byte aligned, zero-filled, granmap_bytes
 * long): every granule busy, no item start. */
void granmap_init(struct granmap *m, void *mem, uint32_t ngran, uint32_t granule);

/* Checks the invariants above (syncs the tree first). */
bool granmap_consistent(struct granmap *m);

/* ---- reading single granules ---- */

#define GRANMAP_FREEW(m, w) ((m)->words[2 * (size_t)(w)])
#define GRANMAP_STARTW(m, w) ((m)->words[2 * (size_t)(w) + 1])

static inline __attribute__((always_inline)) bool granmap_free(const struct granmap *m,
                                                               uint32_t g)
{
    return (GRANMAP_FREEW(m, g >> 6) >> (g & 63)) & 1;
}

static inline __attribute__((always_inline)) bool granmap_start(const struct granmap *m,
                                                                uint32_t g)
{
    return (GRANMAP_STARTW(m, g >> 6) >> (g & 63)) & 1;
}

static inline __attribute__((always_inline)) void granmap_set_start(struct granmap *m, uint32_t g,
                                                                    bool v)
{
    DEBUG_INVARIANT(!v || !granmap_free(m, g), "an item starts on a busy granule");
    uint64_t bit = (uint64_t)1 << (g & 63);
    uint64_t *w = &GRANMAP_STARTW(m, g >> 6);
    *w = v ? (*w | bit) : (*w & ~bit);
}

/* Bits [b0, b1) of a word, for b0 < b1 <= 64. */
static inline __attribute__((always_inline)) uint64_t granmap_mask(uint32_t b0, uint32_t b1)
{
    return (~(uint64_t)0 >> (64 - b1)) & (~(uint64_t)0 << b0);
}

/* End of the busy item that starts at g: the next granule below `limit`
 * that starts an item or is free, else `limit`.  One word for all but big
 * items. */
static inline __attribute__((always_inline)) uint32_t
granmap_item_end(const struct granmap *m, uint32_t g, uint32_t limit)
{
    uint32_t x = g + 1, w = x >> 6;
    uint64_t mask = ~(uint64_t)0 << (x & 63);
    for (; (w << 6) < limit; w++, mask = ~(uint64_t)0) {
        uint64_t bits = (GRANMAP_FREEW(m, w) | GRANMAP_STARTW(m, w)) & mask;
        if (bits != 0) {
            uint32_t e = (w << 6) + (uint32_t)__builtin_ctzll(bits);
            return e < limit ? e : limit;
        }
    }
    return limit;
}

/* ---- next and previous ---- */

/* The summary-level half of granmap_next_busy (word w + 1 on). */
uint32_t granmap_next_busy_after_word(const struct granmap *m, uint32_t w);

/* First busy granule at or after x; x must be at most a busy granule (the
 * heap's end), so this never runs off the map. */
static inline __attribute__((always_inline)) uint32_t granmap_next_busy(const struct granmap *m,
                                                                        uint32_t x)
{
    uint32_t w = x >> 6;
    uint64_t z = ~GRANMAP_FREEW(m, w) & (~(uint64_t)0 << (x & 63));
    if (z != 0) {
        return (w << 6) + (uint32_t)__builtin_ctzll(z);
    }
    if (x - m->run_cs < m->run_ce - m->run_cs) { /* run_cs <= x < run_ce */
        return m->run_ce;
    }
    return granmap_next_busy_after_word(m, w);
}

/* Last busy granule before x (x > 0), or GRANMAP_NONE. */
uint32_t granmap_prev_busy(const struct granmap *m, uint32_t x);

/* The summary-level half of granmap_next_free (word w + 1 on). */
uint32_t granmap_next_free_after_word(const struct granmap *m, uint32_t w);

/* First free granule at or after x, or GRANMAP_NONE: most often in x's own
 * word (a heap's next free item is near). */
static inline __attribute__((always_inline)) uint32_t granmap_next_free(const struct granmap *m,
                                                                        uint32_t x)
{
    uint32_t w = x >> 6;
    if (w >= m->nwords) {
        return GRANMAP_NONE;
    }
    uint64_t z = GRANMAP_FREEW(m, w) & (~(uint64_t)0 << (x & 63));
    if (z != 0) {
        return (w << 6) + (uint32_t)__builtin_ctzll(z);
    }
    return granmap_next_free_after_word(m, w);
}

/* Last free granule before x (x > 0), or GRANMAP_NONE. */
uint32_t granmap_prev_free(const struct granmap *m, uint32_t x);

/* First granule of the free run holding free granule x. */
uint32_t granmap_run_start(const struct granmap *m, uint32_t x);

/* For lo < hi within one or two words: 1 when no free bit of [lo, hi)
 * differs from `flip`'s (0: none free, all ones: none busy), 0 when one
 * does, -1 when the range is longer (the caller searches then). */
static inline __attribute__((always_inline)) int granmap_near_same_(const struct granmap *m,
                                                                   uint32_t lo, uint32_t hi,
                                                                   uint64_t flip)
{
    /* The range's bits shifted down to bit 0 of the first word and, past
     * its end, out of the top of the last word. */
    uint32_t w0 = lo >> 6, b = lo & 63, len = hi - lo;
    uint64_t first = (GRANMAP_FREEW(m, w0) ^ flip) >> b;
    if (b + len <= 64) {
        return (first << (64 - len)) == 0;
    }
    if (b + len <= 128) {
        return first == 0 && ((GRANMAP_FREEW(m, w0 + 1) ^ flip) << (128 - b - len)) == 0;
    }
    return -1;
}

/* Is no granule of [lo, hi) free?  Inline for one or two words, the usual
 * distance from a heap's rover to the run after it. */
static inline __attribute__((always_inline)) bool granmap_none_free(const struct granmap *m,
                                                                    uint32_t lo, uint32_t hi)
{
    if (lo >= hi) {
        return true;
    }
    int near = granmap_near_same_(m, lo, hi, 0);
    return near >= 0 ? near == 1 : granmap_next_free(m, lo) >= hi;
}

/* Is every granule of [lo, hi) free (hi at most the map's end)?  Inline
 * for one or two words (a request from the heap's rover), where the run's
 * whole length would cost a search of the summaries when it reaches past
 * them. */
static inline __attribute__((always_inline)) bool granmap_all_free(const struct granmap *m,
                                                                   uint32_t lo, uint32_t hi)
{
    if (lo >= hi) {
        return true;
    }
    int near = granmap_near_same_(m, lo, hi, ~(uint64_t)0);
    return near >= 0 ? near == 1 : granmap_next_busy(m, lo) >= hi;
}

/* ---- changing the free bits ---- */

/* Words are marked on every change.  A program that never reads the tree
 * marks the same words over and over: a load and a test then; one that
 * reads it often makes mostly new marks, listed at once. */
static inline __attribute__((always_inline)) void granmap_mark_dirty_(struct granmap *m,
                                                                      uint32_t w)
{
    if (m->dirty[w] == 0) {
        m->dirty[w] = 1;
        m->dirty_list[m->ndirty++] = w;
    }
}

static inline __attribute__((always_inline)) void granmap_set_bit_(uint64_t *bits, uint32_t i,
                                                                   bool v)
{
    uint64_t bit = (uint64_t)1 << (i & 63);
    bits[i >> 6] = (bits[i >> 6] & ~bit) | (v ? bit : 0);
}

/* Sets (v) or clears word w's bit in a summary and keeps the level above
 * it: a set bit sets its summary word's bit there; a cleared one clears
 * it only when it was the summary word's last. */
static inline __attribute__((always_inline)) void granmap_summary_bit_(uint64_t *sum, uint64_t *top, uint32_t w,
                                                                       bool v)
{
    uint32_t i = w >> 6;
    uint64_t bit = (uint64_t)1 << (w & 63), top_bit = (uint64_t)1 << (i & 63);
    if (v) {
        sum[i] |= bit;
        top[i >> 6] |= top_bit;
    } else if ((sum[i] &= ~bit) == 0) {
        top[i >> 6] &= ~top_bit;
    }
}

/* Keeps both summary levels when free word w went from old to word.  They
 * change only when the word becomes or stops being all free or all busy:
 * one test (v + 1 < 2 for 0 and all ones) for the common case where
 * neither word is either. */
static inline __attribute__((always_inline)) void granmap_summarize_(struct granmap *m, uint32_t w,
                                                                     uint64_t old, uint64_t word)
{
    if (__builtin_expect(old + 1 < 2 || word + 1 < 2, 0)) {
        if ((old == ~(uint64_t)0) != (word == ~(uint64_t)0)) {
            granmap_summary_bit_(m->sum_busy, m->top_busy, w, word != ~(uint64_t)0);
        }
        if ((old == 0) != (word == 0)) {
            granmap_summary_bit_(m->sum_free, m->top_free, w, word != 0);
        }
    }
}

/* granmap_summarize_ for a change that made free granules busy only (old
 * had a free granule, word has a busy one): the word may have stopped
 * being all free or become all busy, and nothing else. */
static inline __attribute__((always_inline)) void granmap_summarize_taken_(struct granmap *m, uint32_t w,
                                                                           uint64_t old, uint64_t word)
{
    DEBUG_INVARIANT(old != 0 && word != ~(uint64_t)0 && (word & ~old) == 0, "granules taken");
    if (__builtin_expect(old == ~(uint64_t)0, 0)) {
        granmap_summary_bit_(m->sum_busy, m->top_busy, w, true);
    }
    if (__builtin_expect(word == 0, 0)) {
        granmap_summary_bit_(m->sum_free, m->top_free, w, false);
    }
}

/* granmap_summarize_ for a change that made busy granules free only (old
 * had a busy granule, word has a free one): the word may have stopped
 * being all busy or become all free, and nothing else. */
static inline __attribute__((always_inline)) void granmap_summarize_freed_(struct granmap *m, uint32_t w,
                                                                           uint64_t old, uint64_t word)
{
    DEBUG_INVARIANT(old != ~(uint64_t)0 && word != 0 && (old & ~word) == 0, "granules freed");
    if (__builtin_expect(old == 0, 0)) {
        granmap_summary_bit_(m->sum_free, m->top_free, w, true);
    }
    if (__builtin_expect(word == ~(uint64_t)0, 0)) {
        granmap_summary_bit_(m->sum_busy, m->top_busy, w, false);
    }
}

/* Applies mask `bits` to free word w (set when v, cleared otherwise),
 * keeps both summary levels, and marks the word for the lazy tree. */
static inline __attribute__((always_inline)) void granmap_word_set_(struct granmap *m, uint32_t w,
                                                                    uint64_t bits, bool v)
{
    uint64_t old = GRANMAP_FREEW(m, w), word = v ? (old | bits) : (old & ~bits);
    GRANMAP_FREEW(m, w) = word;
    granmap_mark_dirty_(m, w);
    granmap_summarize_(m, w, old, word);
}

/* The word where the free run holding granule x starts, when no busy
 * granule lies below x in x's own word: found from the word before, or
 * (a run longer than a word) by the summaries. */
static inline __attribute__((always_inline)) uint32_t granmap_run_word_below_(const struct granmap *m,
                                                                              uint32_t x)
{
    uint32_t w = x >> 6;
    if (w == 0) {
        return 0;
    }
    uint64_t busy = ~GRANMAP_FREEW(m, w - 1);
    if (busy != 0) { /* the run starts after the word's last busy granule */
        return ((w - 1) * 64 + 64 - (uint32_t)__builtin_clzll(busy)) >> 6;
    }
    return granmap_run_start(m, x) >> 6;
}

/* Marks the word where the free run holding granule x starts, unless it
 * is word `marked` (done already).  When a busy granule lies below x in
 * x's own word, the run starts in that word: the common case needs no
 * search of the summaries. */
static inline __attribute__((always_inline)) void granmap_mark_run_of_(struct granmap *m, uint32_t x,
                                                                       uint32_t marked)
{
    uint32_t w = x >> 6;
    if ((~GRANMAP_FREEW(m, w) & granmap_mask(0, (x & 63) + 1)) == 0) {
        w = granmap_run_word_below_(m, x);
    }
    if (w != marked) {
        granmap_mark_dirty_(m, w);
    }
}

/* Marks granules [g0, g1) free (v) or busy.  Besides the words changed,
 * the words where a run now starts or ends its length are marked for the
 * tree: the word of g1 when g1 is free (a run may start there now, or no
 * longer; a busy g1 starts none either way) and the word where the run
 * reaching g0 from below starts. */
static inline __attribute__((always_inline)) void granmap_set(struct granmap *m, uint32_t g0,
                                                              uint32_t g1, bool v)
{
    if (g0 >= g1) {
        return;
    }
    DEBUG_INVARIANT(g1 <= m->ngran, "granules inside the map");
    /* The known run stays true unless a granule of it turns busy or its
     * busy end turns free. */
    if (v ? (g0 <= m->run_ce && m->run_ce < g1) : (g0 < m->run_ce && m->run_cs < g1)) {
        m->run_cs = m->run_ce = 0;
    }
    uint32_t w0 = g0 >> 6, w1 = (g1 - 1) >> 6;
    if (w0 == w1) { /* most items lie in one word */
        granmap_word_set_(m, w0, granmap_mask(g0 & 63, ((g1 - 1) & 63) + 1), v);
    } else {
        granmap_word_set_(m, w0, ~(uint64_t)0 << (g0 & 63), v);
        for (uint32_t w = w0 + 1; w < w1; w++) {
            granmap_word_set_(m, w, ~(uint64_t)0, v);
        }
        granmap_word_set_(m, w1, granmap_mask(0, ((g1 - 1) & 63) + 1), v);
    }
    if ((g1 >> 6) != w1 && (g1 >> 6) < m->nwords && granmap_free(m, g1)) { /* word_set marked w0 to w1 */
        granmap_mark_dirty_(m, g1 >> 6);
    }
    if (g0 > 0 && granmap_free(m, g0 - 1)) {
        granmap_mark_run_of_(m, g0 - 1, w0);
    }
}

/* Records that [cs, ce) is free and ce busy: a run known whole. */
static inline __attribute__((always_inline)) void granmap_remember_run(struct granmap *m,
                                                                       uint32_t cs, uint32_t ce)
{
    m->run_cs = cs;
    m->run_ce = ce;
}

/* Is granule g - 1 free?  `word` is g's free word, before or after a
 * change that starts at g (its bits below g are the same either way): the
 * usual g - 1 lies in it. */
static inline __attribute__((always_inline)) bool granmap_free_below_(const struct granmap *m, uint32_t g,
                                                                      uint64_t word)
{
    if ((g & 63) != 0) {
        return (word >> ((g & 63) - 1)) & 1;
    }
    return g > 0 && granmap_free(m, g - 1);
}

/* Bits [b, b1) of free word w (b < b1 <= 64) become busy and, when
 * `start`, b starts an item; the summaries are kept and the word marked,
 * and the next one when b1 ends the word and its first granule is free
 * (the rest of the run starts there now).  Returns the word as it was. */
static inline __attribute__((always_inline)) uint64_t granmap_take_in_word_(struct granmap *m, uint32_t w, uint32_t b,
                                                                           uint32_t b1, bool start)
{
    uint64_t old = GRANMAP_FREEW(m, w), word = old & ~granmap_mask(b, b1);
    GRANMAP_FREEW(m, w) = word;
    if (start) {
        GRANMAP_STARTW(m, w) |= (uint64_t)1 << b;
    }
    granmap_mark_dirty_(m, w);
    granmap_summarize_taken_(m, w, old, word);
    if (b1 == 64 && w + 1 < m->nwords && (GRANMAP_FREEW(m, w + 1) & 1) != 0) {
        granmap_mark_dirty_(m, w + 1); /* the rest of the run starts there now */
    }
    return old;
}

/* granmap_take of an item that crosses one word boundary (64 < (g & 63)
 * + n <= 128): the top bits of g's word and the low bits of the next are
 * written as granmap_take_in_word_ writes one word.  g's word is marked,
 * and the word where the run reaching g from below starts; the word of
 * g + n only when g + n is free (the rest of the run starts there now):
 * no run started inside the item, so the words it covers past g's keep
 * their leaves. */
static inline __attribute__((always_inline)) void granmap_take_two_(struct granmap *m, uint32_t g, uint32_t n,
                                                                    bool start)
{
    uint32_t w = g >> 6, b = g & 63, b1 = b + n, g1 = g + n;
    DEBUG_INVARIANT(b1 > 64 && b1 <= 128 && g1 <= m->ngran, "an item over two words");
    if (g < m->run_ce && m->run_cs < g1) { /* granmap_set's rule: a granule of the run turns busy */
        m->run_cs = m->run_ce = 0;
    }
    uint64_t old = GRANMAP_FREEW(m, w), word = old & ~(~(uint64_t)0 << b);
    uint64_t old1 = GRANMAP_FREEW(m, w + 1), word1 = old1 & ~granmap_mask(0, b1 - 64);
    GRANMAP_FREEW(m, w) = word;
    GRANMAP_FREEW(m, w + 1) = word1;
    if (start) {
        GRANMAP_STARTW(m, w) |= (uint64_t)1 << b;
    }
    granmap_mark_dirty_(m, w);
    granmap_summarize_taken_(m, w, old, word);
    granmap_summarize_taken_(m, w + 1, old1, word1);
    if ((g1 >> 6) < m->nwords && granmap_free(m, g1)) {
        granmap_mark_dirty_(m, g1 >> 6);
    }
    if (granmap_free_below_(m, g, old)) {
        granmap_mark_run_of_(m, g - 1, w);
    }
}

/* granmap_take of an item that crosses a word boundary: out of line, so
 * that the code of the usual item, inlined in the heap's hot paths, keeps
 * its values in registers.  An item of up to 64 granules crosses one
 * boundary (granmap_take_two_); a longer one is granmap_set's. */
static __attribute__((noinline, cold, unused)) void granmap_take_across_(struct granmap *m, uint32_t g, uint32_t n,
                                                                          bool start)
{
    if ((g & 63) + n > 128) {
        granmap_set(m, g, g + n, false);
        if (start) {
            granmap_set_start(m, g, true);
        }
        return;
    }
    granmap_take_two_(m, g, n, start);
}

/* Granules [g, g + n) become busy (n > 0) and, when `start`, g starts an
 * item: granmap_set(m, g, g + n, false) and granmap_set_start(m, g, true)
 * at once, one read and write of the word for the usual item, which lies
 * in g's word. */
static inline __attribute__((always_inline)) void granmap_take_(struct granmap *m, uint32_t g, uint32_t n,
                                                                bool start, bool two_inline)
{
    uint32_t w = g >> 6, b = g & 63, b1 = b + n;
    if (__builtin_expect(b1 > 64, 0)) {
        if (two_inline && b1 <= 128) {
            granmap_take_two_(m, g, n, start);
        } else {
            granmap_take_across_(m, g, n, start);
        }
        return;
    }
    DEBUG_INVARIANT(n > 0 && g + n <= m->ngran, "granules inside the map");
    if (g < m->run_ce && m->run_cs < g + n) { /* granmap_set's rule: a granule of the run turns busy */
        m->run_cs = m->run_ce = 0;
    }
    uint64_t old = granmap_take_in_word_(m, w, b, b1, start);
    if (granmap_free_below_(m, g, old)) {
        granmap_mark_run_of_(m, g - 1, w);
    }
}

static inline __attribute__((always_inline)) void granmap_take(struct granmap *m, uint32_t g, uint32_t n,
                                                               bool start)
{
    granmap_take_(m, g, n, start, false);
}

/* granmap_take with an item over two words taken inline too, for a
 * caller whose items often cross a word and whose code around the call
 * has the registers to spare: CE 5's carve and CE 6's take_blocks (larson,
 * items of 1 to 63 granules, takes half its items over two words).  The
 * known run's head (CE 5's most common take) and the frees lost more to
 * the larger code than they gained, so they call out. */
static inline __attribute__((always_inline)) void granmap_take_inline(struct granmap *m, uint32_t g, uint32_t n,
                                                                      bool start)
{
    granmap_take_(m, g, n, start, true);
}

/* The first n granules of the known run (n at most its length) become a
 * busy item: granmap_take(m, run_cs, n, true), with the rest of the run
 * known.  Unless `below_free` (the granule before the run may be free: the
 * known run need not start a run), that granule is busy, so no run below
 * the item changes and only the item's words are marked. */
static inline __attribute__((always_inline)) void granmap_take_run_head(struct granmap *m, uint32_t n,
                                                                        bool below_free)
{
    const uint32_t g = m->run_cs, ce = m->run_ce, w = g >> 6, b = g & 63;
    DEBUG_INVARIANT(n > 0 && n <= ce - g && (below_free || g == 0 || !granmap_free(m, g - 1)),
                    "the head of the known run");
    if (__builtin_expect(b + n > 64, 0)) {
        granmap_take(m, g, n, true);
    } else {
        uint64_t old = granmap_take_in_word_(m, w, b, b + n, true);
        if (below_free && granmap_free_below_(m, g, old)) {
            granmap_mark_run_of_(m, g - 1, w);
        }
    }
    /* (Taken whole, the run is none: granmap_take's rule.) */
    m->run_cs = g + n < ce ? g + n : 0;
    m->run_ce = g + n < ce ? ce : 0;
}

/* The steps of granmap_free_item, for any item. */
uint32_t granmap_free_steps_(struct granmap *m, uint32_t g, uint32_t limit, uint32_t *run_end);

/* The end of free word w's run from bit `from` on (its bits from there
 * free), given the word after the change: the first busy granule after
 * it, the known run's end when the change ends at the known run (`end`,
 * items freed from the last one made back), else found past the word. */
static inline __attribute__((always_inline)) uint32_t granmap_freed_run_end_(const struct granmap *m, uint32_t w,
                                                                            uint64_t word, uint32_t from,
                                                                            uint32_t end)
{
    uint64_t busy_after = from < 64 ? ~word & (~(uint64_t)0 << from) : 0;
    if (busy_after != 0) {
        return (w << 6) + (uint32_t)__builtin_ctzll(busy_after);
    }
    if (end == m->run_cs && m->run_cs != m->run_ce) {
        return m->run_ce;
    }
    return granmap_next_busy(m, (w + 1) << 6);
}

/* granmap_free_item of an item that ends in the word after g's, before
 * limit: both words are read and written once.  g's word is marked, and
 * the word where the run reaching g from below starts; the next word only
 * when a run started at the item's end (it is part of the longer run
 * now): no run started inside the item, so the words it covers past g's
 * keep their leaves.
 * GRANMAP_NONE (nothing changed) for any other item. */
static inline __attribute__((always_inline)) uint32_t granmap_free_two_(struct granmap *m, uint32_t g,
                                                                       uint32_t limit, uint32_t *run_end)
{
    uint32_t w = g >> 6, b = g & 63, base = w << 6, w1 = w + 1;
    uint64_t f = GRANMAP_FREEW(m, w), st = GRANMAP_STARTW(m, w);
    if ((b < 63 && ((f | st) >> (b + 1)) != 0) || w1 >= m->nwords) {
        return GRANMAP_NONE; /* the item ends in g's word, or g's word is the last */
    }
    uint64_t f1 = GRANMAP_FREEW(m, w1), ends = f1 | GRANMAP_STARTW(m, w1);
    uint32_t ie = ends != 0 ? (uint32_t)__builtin_ctzll(ends) : 64, end = base + 64 + ie;
    if (ends == 0 || end > limit) {
        return GRANMAP_NONE;
    }
    if (g <= m->run_ce && m->run_ce < end) { /* granmap_set's rule: the run's busy end turns free */
        m->run_cs = m->run_ce = 0;
    }
    uint64_t word = f | (~(uint64_t)0 << b), word1 = ie > 0 ? f1 | granmap_mask(0, ie) : f1;
    GRANMAP_FREEW(m, w) = word;
    GRANMAP_STARTW(m, w) = st & ~((uint64_t)1 << b);
    granmap_mark_dirty_(m, w);
    granmap_summarize_freed_(m, w, f, word);
    GRANMAP_FREEW(m, w1) = word1;
    if (ie > 0) { /* (the item may end where the word starts) */
        granmap_summarize_freed_(m, w1, f1, word1);
    }
    if ((f1 >> ie) & 1) { /* a run started at end: it is part of the longer one now */
        granmap_mark_dirty_(m, w1);
    }
    if (granmap_free_below_(m, g, f)) {
        granmap_mark_run_of_(m, g - 1, w);
    }
    *run_end = granmap_freed_run_end_(m, w1, word1, ie, end);
    return end;
}

/* granmap_free_item of an item that does not end in its first word (or
 * ends at limit): out of line, as granmap_take_across_; the usual one ends
 * in the next word (granmap_free_two_), any other takes the steps. */
static __attribute__((noinline, cold, unused)) uint32_t granmap_free_across_(struct granmap *m, uint32_t g,
                                                                              uint32_t limit, uint32_t *run_end)
{
    uint32_t end = granmap_free_two_(m, g, limit, run_end);
    return end != GRANMAP_NONE ? end : granmap_free_steps_(m, g, limit, run_end);
}

/* Frees the busy item that starts at g (its granules free, its start bit
 * cleared), as granmap_item_end(m, g, limit), granmap_set_start(m, g,
 * false), granmap_set(m, g, end, true) and granmap_next_busy(m, end)
 * would: returns the item's end, with the first busy granule after it in
 * *run_end.  The usual item lies in g's word, which is then read and
 * written once; a longer one takes those steps. */
static inline __attribute__((always_inline)) uint32_t granmap_free_item(struct granmap *m, uint32_t g,
                                                                        uint32_t limit, uint32_t *run_end)
{
    uint32_t w = g >> 6, b = g & 63, base = w << 6;
    uint64_t f = GRANMAP_FREEW(m, w), st = GRANMAP_STARTW(m, w);
    /* (b < 63: the item may end in the word; its end is the next free or
     * start bit.) */
    uint64_t ends = b < 63 ? (f | st) & (~(uint64_t)0 << (b + 1)) : 0;
    uint32_t ie = ends != 0 ? (uint32_t)__builtin_ctzll(ends) : 64;
    uint64_t word = f | granmap_mask(b, ie < 64 ? ie : 63);
    if (__builtin_expect(ie == 64 || base + ie > limit, 0)) {
        return granmap_free_across_(m, g, limit, run_end);
    }
    uint32_t end = base + ie;
    if (g <= m->run_ce && m->run_ce < end) { /* granmap_set's rule: the run's busy end turns free */
        m->run_cs = m->run_ce = 0;
    }
    GRANMAP_FREEW(m, w) = word;
    GRANMAP_STARTW(m, w) = st & ~((uint64_t)1 << b);
    granmap_mark_dirty_(m, w);
    granmap_summarize_freed_(m, w, f, word);
    if (granmap_free_below_(m, g, f)) {
        granmap_mark_run_of_(m, g - 1, w);
    }
    /* The run goes on past the word when no busy granule follows in it
     * (then the heap's end lies beyond the word).  An item freed just
     * before the known run (items freed from the last one made back)
     * joins it: its end is known without reading the next word. */
    *run_end = granmap_freed_run_end_(m, w, word, ie, end);
    return end;
}

/* ---- free runs ---- */

/* Brings the tree up to date with the words marked dirty. */
void granmap_sync_(struct granmap *m);

static inline __attribute__((always_inline)) void granmap_sync(struct granmap *m)
{
    if (m->ndirty != 0) {
        granmap_sync_(m);
    }
}

/* The maximal free runs in [lo, hi) (a run is cut at hi): how many, the
 * longest in granules, and how many whole pages of `page` bytes (a power
 * of two) lie inside them, granule 0 being at address at0.  Reads only:
 * O(runs) plus the summaries' skips over busy words. */
struct granmap_runs {
    uint32_t runs, longest;
    size_t pages;
};
void granmap_free_runs(const struct granmap *m, uint32_t lo, uint32_t hi, uintptr_t at0, size_t page,
                       struct granmap_runs *out);

/* The longest free run anywhere in the map. */
static inline uint32_t granmap_longest(struct granmap *m)
{
    granmap_sync(m);
    return m->tree[1];
}

/* The granules of word w where a free run starts. */
static inline __attribute__((always_inline)) uint64_t granmap_run_starts_(const struct granmap *m,
                                                                          uint32_t w)
{
    uint64_t f = GRANMAP_FREEW(m, w);
    uint64_t below = w > 0 ? GRANMAP_FREEW(m, w - 1) >> 63 : 0;
    return f & ~((f << 1) | below);
}

/* The first run of at least n granules starting in word w at a granule of
 * mask `at`; its start, with its end in *run_end, or GRANMAP_NONE. */
static inline __attribute__((always_inline)) uint32_t
granmap_fit_in_word_(const struct granmap *m, uint32_t w, uint64_t at, uint32_t n,
                     uint32_t *run_end)
{
    for (uint64_t s = granmap_run_starts_(m, w) & at; s != 0; s &= s - 1) {
        uint32_t g = (w << 6) + (uint32_t)__builtin_ctzll(s);
        uint32_t e = granmap_next_busy(m, g);
        if (e - g >= n) {
            *run_end = e;
            return g;
        }
    }
    return GRANMAP_NONE;
}

/* Words looked at directly before the tree is brought in: a fit is most
 * often that near.  Where it mostly is not (GRANMAP_SCAN_MISSES misses in
 * a row), the next GRANMAP_SCAN_REST searches bring the tree in at once:
 * the look costs little, but nearly every search paid it and the sync. */
#define GRANMAP_FIT_SCAN_WORDS 2u
#define GRANMAP_SCAN_MISSES 6u
#define GRANMAP_SCAN_REST 128u

/* granmap_first_fit past the known run: when no run was long enough at
 * the tree's last sync, the sync first (such a search is mostly in vain)
 * and none if it says so; else the words from lo, then the tree, or the
 * tree at once while the words have missed (GRANMAP_SCAN_MISSES; out of
 * line: the known run answers most searches). */
uint32_t granmap_first_fit_scan(struct granmap *m, uint32_t lo, uint32_t n, uint32_t *run_end);

/* Start of the first free run of at least n granules that starts at or
 * after lo, where granule lo - 1 is busy (or lo is 0), with its end in
 * *run_end; GRANMAP_NONE if none.  Runs are seen whole. */
static inline __attribute__((always_inline)) uint32_t
granmap_first_fit(struct granmap *m, uint32_t lo, uint32_t n, uint32_t *run_end)
{
    /* The known run, when it is the first one from lo on: no granule
     * before it is free (so it starts a run), and it is long enough. */
    if (m->run_cs >= lo && m->run_ce - m->run_cs >= n && granmap_none_free(m, lo, m->run_cs)) {
        *run_end = m->run_ce;
        return m->run_cs;
    }
    return granmap_first_fit_scan(m, lo, n, run_end);
}

/* The longest free run seen from lo: the run holding lo counted from lo
 * on, and every run that starts in (lo, hi).  No run may cross hi (pass
 * the heap's end, or the start of a run). */
uint32_t granmap_longest_in(struct granmap *m, uint32_t lo, uint32_t hi);

#endif
