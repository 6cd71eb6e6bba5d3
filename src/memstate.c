/*
 * memstate.c - CE memory states and the low-memory commit rule
 * (see memstate.h).  Numbers: CE-SEMANTICS.md, "Memory states", and the
 * CE 5.0 kernel's HoldPages.
 */
#include "memstate.h"

#include <string.h>

#include "layout.h"

#define KB ((size_t)1024)

static const struct memstate_table tables[MEMSTATE_TABLE_COUNT] = {
    /* Boling, H/PC with 4 KB pages: no separate hibernate level. */
    [MEMSTATE_TABLE_HPC] = {"hpc", 160 * KB, 160 * KB, 96 * KB, 48 * KB, 16 * KB, 8 * KB},
    /* Pocket PC, 4 KB pages: hibernate notices start at 224 KB. */
    [MEMSTATE_TABLE_PPC] = {"ppc", 224 * KB, 160 * KB, 96 * KB, 48 * KB, 16 * KB, 8 * KB},
    /* CE 5 SetOOMEvent defaults: low 32 pages, critical 20, blocks 4 and 2
     * pages; no limited level, so notices go out on entering low. */
    [MEMSTATE_TABLE_CE5] = {"ce5", 128 * KB, 0, 128 * KB, 80 * KB, 16 * KB, 8 * KB},
    /* Boling, H/PC with 1 KB pages (CE 3 CPUs such as the SH3).  cebox's
     * pages are 4 KB, so its critical level lies under the kernel's 15-page
     * floor and commits never get there; forcing the state reaches it. */
    [MEMSTATE_TABLE_HPC1K] = {"hpc1k", 128 * KB, 128 * KB, 64 * KB, 16 * KB, 16 * KB, 8 * KB},
};

#define STACK_RESERVE_PAGES 15

const struct memstate_table *memstate_table(const char *name)
{
    for (int i = 0; i < MEMSTATE_TABLE_COUNT; i++) {
        if (strcmp(tables[i].name, name) == 0) {
            return &tables[i];
        }
    }
    return NULL;
}

/* With the start's code (layout.h): the settings' check calls it in every
 * process, boxed or not, and it would fault in a window of code of its own. */
CEBOX_START_CODE const struct memstate_table *memstate_table_by_id(enum memstate_table_id id)
{
    return &tables[id];
}

enum memstate memstate_of(const struct memstate_table *t, size_t free_bytes)
{
    if (t == NULL) {
        return MEMSTATE_NORMAL;
    }
    if (free_bytes < t->critical) {
        return MEMSTATE_CRITICAL;
    }
    if (free_bytes < t->low) {
        return MEMSTATE_LOW;
    }
    if (free_bytes < t->limited) {
        return MEMSTATE_LIMITED;
    }
    return MEMSTATE_NORMAL;
}

static const char *const names[MEMSTATE_COUNT] = {"normal", "limited", "low", "critical"};

const char *memstate_name(enum memstate s)
{
    return s < MEMSTATE_COUNT ? names[s] : "?";
}

enum memstate memstate_parse(const char *name)
{
    for (int i = 0; i < MEMSTATE_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            return (enum memstate)i;
        }
    }
    return MEMSTATE_COUNT;
}

size_t memstate_pinned_free(const struct memstate_table *t, enum memstate s, size_t total, size_t page)
{
    if (t == NULL) {
        return total;
    }
    size_t threshold = s == MEMSTATE_CRITICAL ? t->critical
                       : s == MEMSTATE_LOW    ? t->low
                       : s == MEMSTATE_LIMITED ? (t->limited ? t->limited : t->low)
                                               : 0;
    if (threshold == 0 || threshold > total) {
        return total;
    }
    return threshold - page;
}

enum commit_verdict memstate_commit_rule(const struct memstate_table *t, size_t page, size_t n,
                                         size_t free_pages)
{
    if (t == NULL) {
        return n <= free_pages ? COMMIT_OK : COMMIT_NO_RAM;
    }
    size_t low = t->low / page, crit = t->critical / page;
    size_t low_blk = t->low_block / page, crit_blk = t->critical_block / page;
    if (n <= free_pages && free_pages - n >= low) {
        return COMMIT_OK;
    }
    if (n > free_pages) {
        return COMMIT_NO_RAM;
    }
    if (n > low_blk || (n > crit_blk && free_pages - n < crit)) {
        return COMMIT_STATE_CAP;
    }
    return free_pages - n >= STACK_RESERVE_PAGES ? COMMIT_OK : COMMIT_STATE_CAP;
}
