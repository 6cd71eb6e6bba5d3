/*
 * stack.h - call stacks of failed allocations (and, with --leaks, of every
 * allocation): capture, and a table that gives each distinct stack one id.
 *
 * Owns: the stack table (a uthash table keyed by the instruction pointers)
 * and all of its memory, which comes from meta.c, never from libc's
 * malloc: inside the preload library malloc is cebox itself.  A stack that
 * cannot be stored (no bookkeeping memory) leaves the table as it was.
 *
 * Capture: the fast unwinder of unwind.h (DWARF rules read by cfi.c,
 * each thread's last stack reused where it still holds), with libunwind's
 * unw_backtrace (loaded by stack_load_unwinder) for every capture it cannot
 * do; both give the same frames.
 *
 * Locking: none here.  A table is used by one thread at a time (the event
 * log's lock serializes it); stack_capture needs no lock and takes none of
 * cebox's, but the unwinders may take the dynamic loader's and may
 * allocate the first time (meta.c for the fast one; inside the preload
 * library libunwind's goes to the bootstrap arena, because the recursion
 * guard is still set).
 */
#ifndef CEBOX_STACK_H
#define CEBOX_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Captures at most `max` (at most LOG_MAX_DEPTH) return addresses of the
 * calling thread's stack, innermost first, leaving out the frames that
 * belong to the shared object holding cebox (the preload library or
 * libcebox.so): those at the top, so that the first is the program's call
 * into cebox, and those further down (the preload library's wrapper of
 * main).
 * When the core is linked into the program itself (the unit tests), only
 * stack_capture's own frame is left out.  Returns the count (0 when
 * libunwind cannot unwind). */
size_t stack_capture(uintptr_t *ips, size_t max);

/* stack_capture with the unwinder named: the fast one (unwind.h: what
 * stack_capture uses; libunwind for what it cannot do) or libunwind alone
 * (the reference the tests compare it with).  The same frames either way. */
enum stack_unwinder { STACK_UNWIND_FAST, STACK_UNWIND_LIBUNWIND };
size_t stack_capture_using(enum stack_unwinder u, uintptr_t *ips, size_t max);

/* Loads libunwind (dlopen, once; the guard set, errno kept).  It is not
 * linked in: the loader's work for it and liblzma would cost every process
 * about 100 000 instructions, 16 system calls and 9 page faults at its
 * start.  The core loads it at its start when the settings may ask for a
 * stack (--out, --leaks, a --fail-* rule), before the occupants are placed,
 * so that it stays cebox's own library and no signal handler loads it; a
 * capture that needs it and finds it not loaded loads it then (tests). */
void stack_load_unwinder(void);

struct dl_phdr_info;

/* The address range [*lo, *hi) that the loadable segments of one object
 * of dl_iterate_phdr cover (lo > hi when it has none). */
void stack_object_bounds(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi);

struct stack_entry;
struct stack_chunk;

/* What the table keeps per stack besides its frames. */
struct stack_info {
    uint32_t id;   /* 1, 2, 3, ... in order of insertion */
    uint32_t hits; /* times stack_table_intern found or added it */
    uint32_t mark; /* the caller's (the event log keeps the generation of
                      the log its record was written to) */
};

struct stack_table {
    struct stack_entry *head; /* uthash's handle on the table */
    uint32_t next_id;
    size_t count;
    struct stack_chunk *chunks; /* entries are carved from these */
};

/* An empty table (also the state of a zeroed struct). */
void stack_table_init(struct stack_table *t);

/* Gives back every mapping of the table; it is empty again afterwards. */
void stack_table_destroy(struct stack_table *t);

/* The stack ips[0..depth) (depth 0 to LOG_MAX_DEPTH), added if new (then
 * *added is true and hits 1), its hits counted otherwise.  Returns NULL
 * when a new stack cannot be stored (no memory for it). */
struct stack_info *stack_table_intern(struct stack_table *t, const uintptr_t *ips, size_t depth,
                                      bool *added);

/* The frames of a stack the table holds (si from stack_table_intern):
 * *ips points into the table, valid until it is destroyed.  Returns the
 * depth. */
size_t stack_info_frames(const struct stack_info *si, const uintptr_t **ips);

#endif
