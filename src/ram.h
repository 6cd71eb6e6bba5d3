/*
 * ram.h - the device RAM that every committed page draws on, and the
 * memory state that follows from it.
 *
 * Owns: the RAM accounting of one emulated device.  On its own (a program
 * linked with libcebox, or preloaded by hand) the device serves one process
 * and lives in a private mapping.  Under `cebox run` the device is a
 * *session*: a shared-memory file (mode 0600, named by CEBOX_SESSION) that
 * every process of the run joins, so they all draw on one budget.
 *
 * Invariants:
 *  - used pages == the sum of the members' committed pages;
 *  - a member whose process died (crash, SIGKILL, exec) is reclaimed: its
 *    pages return to the budget the next time anyone runs short or joins;
 *  - cebox's own bookkeeping is never charged.
 * Locking: a robust process-shared mutex in the shared area; a member that
 * dies holding it cannot block the others.
 */
#ifndef CEBOX_RAM_H
#define CEBOX_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memstate.h"

struct ram_shared;

struct ram {
    struct ram_shared *sh;
    size_t map_bytes;
    int member;           /* this process's row in the member table */
    size_t page;
    const struct memstate_table *table;
    bool session;
};

enum ram_result { RAM_OK = 0, RAM_NO_RAM, RAM_STATE_CAP };

/* A private device of `total_pages` pages of `page` bytes.  Returns 0 or -1
 * (no memory for the bookkeeping). */
int ram_init(struct ram *r, size_t total_pages, size_t page, const struct memstate_table *t);

/* Creates a session file at `path` (O_EXCL, mode 0600) for a device of
 * total_pages; `forced` is MEMSTATE_COUNT for none.  Returns 0 or an errno
 * value.  Used by `cebox run`, which removes the file at the end. */
int ram_session_create(const char *path, size_t total_pages, size_t page,
                       enum memstate_table_id table, enum memstate forced);

/* Joins the session at `path` as a member.  Returns 0 or an errno value
 * (EINVAL for a file that is not a cebox session). */
int ram_session_join(struct ram *r, const char *path);

/* Leaves the device: gives this member's pages back and unmaps. */
void ram_release(struct ram *r);

/* After fork(), in the child: a new member, charged with `committed` pages
 * (the child's copy of the parent's slot). */
void ram_forked(struct ram *r, size_t committed);

/* Takes `pages` pages for this member, by the CE 5 commit rule in low and
 * critical memory.  Nothing is taken on failure. */
enum ram_result ram_charge(struct ram *r, size_t pages);

/* Gives back pages taken by ram_charge. */
void ram_credit(struct ram *r, size_t pages);

size_t ram_total_pages(const struct ram *r);
size_t ram_free_pages(const struct ram *r);
enum memstate ram_state(const struct ram *r);

/* Forces the device into state s (free RAM pinned just inside it), or back
 * to the state its free RAM gives with MEMSTATE_NORMAL or MEMSTATE_COUNT. */
void ram_force_state(struct ram *r, enum memstate s);

/* Forces the state of the session file at path (for `cebox state`).
 * Returns 0 or an errno value. */
int ram_session_force(const char *path, enum memstate s);

#endif
