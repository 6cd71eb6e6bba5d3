/*
 * heapdiff.h - the harness shared by the differential heap tests
 * (test_heap_diff.c for CE 5, test_heap_diff_ce3.c, test_heap_diff_ce6.c):
 * a fresh core for a profile, the random sequence, offsets in the slot, the
 * real-against-model comparison that fails with the scenario and step, block
 * contents, and the environment knobs HEAPDIFF_STEPS and HEAPDIFF_VERBOSE.
 *
 * Only the tests share this: each model (tests/heapmodel*.c) stays apart
 * from the heaps of src/heap/ and from this harness, so that a model never
 * agrees with a heap for having been written from the same code.
 *
 * A test's struct world has a member `struct heapdiff hd`; the shorthands at
 * the end take the world.
 */
#ifndef CEBOX_HEAPDIFF_H
#define CEBOX_HEAPDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct heapdiff {
    uintptr_t base;       /* the slot's base: offsets count from here */
    uint64_t rng;         /* xorshift state, never 0 */
    unsigned long step;   /* reported on a difference */
    const char *scenario; /* reported on a difference */
};

/* Resets the core with CEBOX_PROFILE=profile, CEBOX_RAM=ram and
 * CEBOX_SLOT_SIZE=slot (NULL: the default), no large memory area; starts d
 * (step 0) at that slot with the random state seed.  Returns the slot's
 * blocks, for the model's own slot. */
size_t heapdiff_start(struct heapdiff *d, const char *scenario, uint64_t seed,
                      const char *profile, const char *ram, const char *slot);

uint64_t heapdiff_rnd(struct heapdiff *d);
/* A random number in [0, n). */
size_t heapdiff_below(struct heapdiff *d, size_t n);

/* A request size drawn from bands: band i is picked when a draw k in
 * [0, 1000) is below its upto (the last band's upto is 1000), and gives
 * from + a draw in [0, span). */
struct heapdiff_band {
    unsigned upto;
    size_t from, span;
};
size_t heapdiff_size(struct heapdiff *d, const struct heapdiff_band *bands);

/* Offset in the slot of p (0 for NULL), and back. */
uint32_t heapdiff_off(const struct heapdiff *d, const void *p);
void *heapdiff_ptr(const struct heapdiff *d, uint32_t off);

/* Fails the test, naming the scenario, step and what differs. */
void heapdiff_fail(const struct heapdiff *d, const char *what, unsigned long long real,
                   unsigned long long model);
/* Fails unless real == model. */
void heapdiff_same(const struct heapdiff *d, const char *what, unsigned long long real,
                   unsigned long long model);

/* A block's first (at most 64) bytes set to its tag, and checked to still
 * hold it for its first upto bytes (the part a move kept). */
void heapdiff_fill(const struct heapdiff *d, uint32_t off, size_t n, unsigned char tag);
void heapdiff_check_fill(const struct heapdiff *d, const char *what, uint32_t off, size_t upto,
                         unsigned char tag);
/* The first (at most 256) bytes of a HEAP_ZERO_MEMORY block are zero. */
void heapdiff_check_zeroed(const struct heapdiff *d, const char *what, const void *p, size_t n);

/* Fails unless the timeline's free figures of the heap `handle` (ce5,
 * ce6) are what its walk shows: as many free items, the largest of them,
 * and the whole pages of `page` bytes inside their runs (a free item's run
 * starts `header` bytes before the address the walk gives). */
void heapdiff_check_free_figures(const struct heapdiff *d, void *handle, size_t header, size_t page);

/* HEAPDIFF_STEPS=k multiplies the sequences' lengths (default and 0: 1). */
unsigned long heapdiff_scale(void);
/* HEAPDIFF_VERBOSE set: print what the sequences exercised. */
bool heapdiff_verbose(void);

/* Shorthands for a world w with a member hd. */
#define below(w, n) heapdiff_below(&(w)->hd, (n))
#define off_of(w, p) heapdiff_off(&(w)->hd, (p))
#define ptr_of(w, off) heapdiff_ptr(&(w)->hd, (off))
#define same(w, what, real, model) heapdiff_same(&(w)->hd, (what), (real), (model))
#define fail_at(w, what, real, model) heapdiff_fail(&(w)->hd, (what), (real), (model))

#endif
