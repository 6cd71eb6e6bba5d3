/*
 * bitsum.h - a bitset with one summary level: bit i of `top` says whether
 * word i of `bits` is nonzero, so the next or previous set bit is found by
 * reading one word of each level and scanning `top`, whatever lies between.
 *
 * Owns: nothing; the caller keeps both arrays (n words of bits, and
 * (n + 63) / 64 words of top, zeroed for an empty set).  The granule map
 * (granmap.h) keeps its summaries this way; the CE 5 heap keeps its set of
 * regions whose cbMaxFree is an estimate.
 *
 * Invariant: a top bit is set exactly when its word of `bits` is nonzero
 * (bitsum_set keeps it; bitsum_consistent checks it).  Not thread-safe.
 */
#ifndef CEBOX_HEAP_BITSUM_H
#define CEBOX_HEAP_BITSUM_H

#include <stdbool.h>
#include <stdint.h>

#define BITSUM_NONE UINT32_MAX /* "no such bit" */

/* Sets (v) or clears bit i, and its word's summary bit when the word
 * becomes or stops being zero. */
static inline __attribute__((always_inline)) void bitsum_set(uint64_t *bits, uint64_t *top,
                                                             uint32_t i, bool v)
{
    uint64_t bit = (uint64_t)1 << (i & 63);
    uint32_t w = i >> 6;
    uint64_t old = bits[w], word = v ? (old | bit) : (old & ~bit);
    bits[w] = word;
    if ((old == 0) != (word == 0)) {
        top[w >> 6] ^= (uint64_t)1 << (w & 63);
    }
}

/* Clears bit i (set or not), and its word's summary bit when the word
 * becomes zero: bitsum_set(bits, top, i, false) for a caller that only
 * clears. */
static inline __attribute__((always_inline)) void bitsum_clear(uint64_t *bits, uint64_t *top, uint32_t i)
{
    uint32_t w = i >> 6;
    uint64_t old = bits[w], word = old & ~((uint64_t)1 << (i & 63));
    if (word != old) {
        bits[w] = word;
        if (word == 0) {
            top[w >> 6] &= ~((uint64_t)1 << (w & 63));
        }
    }
}

/* First set bit at or after x in n words of bits, or BITSUM_NONE.  At most
 * one word of each level and a scan of `top` are read, and never a word
 * past either. */
static inline __attribute__((always_inline)) uint32_t bitsum_next(const uint64_t *bits,
                                                                  const uint64_t *top, uint32_t n,
                                                                  uint32_t x)
{
    uint32_t i = x >> 6;
    if (i >= n) {
        return BITSUM_NONE;
    }
    uint64_t b = bits[i] & (~(uint64_t)0 << (x & 63));
    if (b == 0) {
        uint32_t j = i + 1, k = j >> 6, ntop = (n + 63) / 64;
        if (j >= n) {
            return BITSUM_NONE;
        }
        uint64_t t = top[k] & (~(uint64_t)0 << (j & 63));
        while (t == 0) {
            if (++k >= ntop) {
                return BITSUM_NONE;
            }
            t = top[k];
        }
        i = (k << 6) + (uint32_t)__builtin_ctzll(t);
        b = bits[i];
    }
    return (i << 6) + (uint32_t)__builtin_ctzll(b);
}

/* Last set bit before x, or BITSUM_NONE. */
static inline uint32_t bitsum_prev(const uint64_t *bits, const uint64_t *top, uint32_t x)
{
    if (x == 0) {
        return BITSUM_NONE;
    }
    uint32_t i = (x - 1) >> 6;
    uint64_t b = bits[i] & (~(uint64_t)0 >> (63 - ((x - 1) & 63)));
    if (b == 0) {
        if (i == 0) {
            return BITSUM_NONE;
        }
        uint32_t j = i - 1, k = j >> 6;
        uint64_t t = top[k] & (~(uint64_t)0 >> (63 - (j & 63)));
        while (t == 0) {
            if (k == 0) {
                return BITSUM_NONE;
            }
            t = top[--k];
        }
        i = (k << 6) + 63 - (uint32_t)__builtin_clzll(t);
        b = bits[i];
    }
    return (i << 6) + 63 - (uint32_t)__builtin_clzll(b);
}

/* Every top bit of n words of bits says whether its word is nonzero. */
static inline bool bitsum_consistent(const uint64_t *bits, const uint64_t *top, uint32_t n)
{
    for (uint32_t w = 0; w < n; w++) {
        if (((top[w >> 6] >> (w & 63)) & 1) != (bits[w] != 0)) {
            return false;
        }
    }
    return true;
}

#endif
