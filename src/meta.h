/*
 * meta.h - the one allocator for cebox's own bookkeeping.
 *
 * Owns: every piece of memory cebox keeps for itself outside the slot: the
 * slot's block and page tables, the heap's bitmaps and trees, the stack
 * table, the event log's buffers, the alignment table.  None of it is in the
 * slot, none of it is charged to device RAM, and none of it comes from libc's
 * malloc (which, in the preload library, is cebox itself).
 *
 * Contract:
 * - meta_alloc(n) returns n zero-filled bytes, aligned to at least 16 bytes,
 *   or NULL (the errno of the mapping is not stored anywhere: callers turn
 *   NULL into their own documented failure).  n == 0 returns NULL.
 * - meta_free(p, n) takes back what meta_alloc(n) or meta_grow(.., n)
 *   returned, with the same n; meta_free(NULL, n) does nothing.
 * - meta_grow(p, old, new) returns a block of `new` bytes whose first `old`
 *   bytes are those of p and the rest zero, and frees p; on failure it
 *   returns NULL and p is untouched and still owned by the caller.
 * - Thread-safe, async-signal-safe and fork-safe: it takes no lock and keeps
 *   no state but atomic counters and the start's mapping (meta.c), from
 *   which a process's first blocks are cut.
 * - Test switch: after meta_fail_after(n) with n >= 1, the n-th allocation
 *   from then on (meta_alloc or meta_grow) fails, and every one after it
 *   succeeds again; meta_fail_after(0) turns the switch off.  An
 *   out-of-memory sweep raises n until an operation succeeds.
 */
#ifndef CEBOX_META_H
#define CEBOX_META_H

#include <stddef.h>

void *meta_alloc(size_t size);
void meta_free(void *p, size_t size);
void *meta_grow(void *p, size_t old_size, size_t new_size);

/* Test only (see above).  Not for production paths. */
void meta_fail_after(unsigned long n);

/* Bytes currently handed out by meta_alloc/meta_grow (page-rounded), for
 * tests that check nothing is leaked and for cebox's overhead figure. */
size_t meta_bytes_in_use(void);

#endif
