/*
 * memstate.h - the CE memory states and the rules that follow from them.
 *
 * Owns: the threshold tables (Boling's H/PC and Pocket PC tables, CE 5's
 * SetOOMEvent defaults), the state computed from free RAM, and the kernel's
 * commit rule in low and critical memory.  Pure functions: the RAM budget
 * (ram.c) supplies free pages and applies the verdicts.
 */
#ifndef CEBOX_MEMSTATE_H
#define CEBOX_MEMSTATE_H

#include <stdbool.h>
#include <stddef.h>

enum memstate { MEMSTATE_NORMAL, MEMSTATE_LIMITED, MEMSTATE_LOW, MEMSTATE_CRITICAL, MEMSTATE_COUNT };

enum memstate_table_id {
    MEMSTATE_TABLE_HPC, MEMSTATE_TABLE_PPC, MEMSTATE_TABLE_CE5, MEMSTATE_TABLE_HPC1K, MEMSTATE_TABLE_COUNT
};

/* All sizes in bytes; the rule works in pages of the profile. */
struct memstate_table {
    const char *name;       /* "hpc", "ppc", "ce5" */
    size_t hibernate;       /* free RAM under which hibernate notices go out */
    size_t limited;         /* 0: the table has no limited state */
    size_t low, critical;
    size_t low_block, critical_block; /* largest commit in low / critical */
};

/* The table by name; NULL if there is none. */
const struct memstate_table *memstate_table(const char *name);
const struct memstate_table *memstate_table_by_id(enum memstate_table_id id);

/* A NULL table means a device without memory states: always normal, and
 * a commit fails only when RAM is short.  (Unit tests of other modules.) */

/* The state for `free_bytes` of free RAM. */
enum memstate memstate_of(const struct memstate_table *t, size_t free_bytes);

/* "normal", "limited", "low", "critical". */
const char *memstate_name(enum memstate s);
/* Parses a state name; returns MEMSTATE_COUNT when unknown. */
enum memstate memstate_parse(const char *name);

/* Free RAM that puts a session just inside state s (one page under its
 * threshold; for normal, the total). */
size_t memstate_pinned_free(const struct memstate_table *t, enum memstate s, size_t total, size_t page);

enum commit_verdict { COMMIT_OK, COMMIT_NO_RAM, COMMIT_STATE_CAP };

/* The CE 5 kernel's rule for committing `n` pages with `free_pages` free:
 * fine while it leaves the low threshold; past it, a commit larger than the
 * low (critical) block size fails when it would leave less than the low
 * (critical) threshold; otherwise it must leave 15 pages (the kernel's
 * stack reserve).  A refusal of a request that plain arithmetic would allow
 * is COMMIT_STATE_CAP. */
enum commit_verdict memstate_commit_rule(const struct memstate_table *t, size_t page, size_t n,
                                         size_t free_pages);

#endif
