/*
 * runindex.h - which blocks of a slot are free, answering "where is the
 * lowest (or highest) run of n free blocks" in O(log blocks).
 *
 * Owns: a segment tree over the blocks.  Each node keeps the length of the
 * free run touching its left end, the one touching its right end, and the
 * longest run inside it.  Marking k blocks costs O(k + log blocks).
 *
 * Invariants: leaves beyond `nblocks` (padding to a power of two) are used
 * forever; the caller serializes access (the slot's lock).
 */
#ifndef CEBOX_RUNINDEX_H
#define CEBOX_RUNINDEX_H

#include <stddef.h>
#include <stdint.h>

struct runindex;

/* The most blocks an index takes (its counts are 16-bit): a 2 GB slot of
 * 64 KB blocks has 32 768. */
#define RUNINDEX_MAX_BLOCKS 65534u

/* Storage needed for `nblocks` blocks (at most RUNINDEX_MAX_BLOCKS); the
 * caller provides it zero-filled. */
size_t runindex_bytes(uint32_t nblocks);

/* Lays the index over `mem` (zero-filled), all blocks free.  Writes
 * nothing there: a node is computed from its place until it first changes,
 * so a large slot starts without touching its tree's pages. */
struct runindex *runindex_init(void *mem, uint32_t nblocks);

void runindex_set_used(struct runindex *ri, uint32_t first, uint32_t count);
void runindex_set_free(struct runindex *ri, uint32_t first, uint32_t count);

/* First block of the lowest run of `count` free blocks, or UINT32_MAX. */
uint32_t runindex_first_fit(const struct runindex *ri, uint32_t count);

/* First block of the highest-placed `count` free blocks, or UINT32_MAX. */
uint32_t runindex_last_fit(const struct runindex *ri, uint32_t count);

/* Length of the longest free run. */
uint32_t runindex_longest(const struct runindex *ri);

#endif
