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

/* A change of memory state, with the process whose charge caused it. */
struct ram_transition {
    uint64_t time_ns;   /* CLOCK_MONOTONIC */
    uint64_t free_bytes;
    int32_t pid;
    int32_t from, to;   /* enum memstate */
    int32_t unused;
};
#define RAM_TRANSITIONS 64

/* What a hibernate round needs to know of a member. */
struct ram_member_info {
    int32_t pid;
    size_t committed_bytes;
    uint64_t last_active_ns; /* its last charge; 0 if none */
};

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

/* ---- hibernate notices (cebox run is the device's shell) ---- */

/* Hibernate notices sent to this process so far (a cheap, lock-free read). */
uint32_t ram_notices(const struct ram *r);
/* The live members other than the caller, dead ones reclaimed first. */
size_t ram_members(struct ram *r, struct ram_member_info *out, size_t max);
/* Bytes committed by member pid now (0 once it is gone). */
size_t ram_member_committed(struct ram *r, int32_t pid);
/* Counts one more notice for member pid. */
void ram_send_notice(struct ram *r, int32_t pid);
/* Copies the transitions recorded since number `since` (at most max, the
 * ring keeps the last RAM_TRANSITIONS); returns how many. */
uint32_t ram_transitions(struct ram *r, uint32_t since, struct ram_transition *out, uint32_t max);
/* Free RAM under which hibernate notices go out (the table's level). */
size_t ram_hibernate_threshold(const struct ram *r);

/* True when process pid no longer exists or is a zombie. */
bool ram_process_gone(int32_t pid);

/* Forces the state of the session file at path (for `cebox state`).
 * Returns 0 or an errno value. */
int ram_session_force(const char *path, enum memstate s);

#endif
