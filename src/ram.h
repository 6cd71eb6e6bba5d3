/*
 * ram.h - the device RAM that every committed page draws on, and the
 * memory state that follows from it.
 *
 * Owns: the RAM accounting of one emulated device.  On its own (a program
 * linked with libcebox, or preloaded by hand) the device serves one process
 * and lives in a private mapping.  Under `cebox run` the device is a
 * *session*: a shared-memory file (mode 0600, named by CEBOX_SESSION) that
 * every process of the run joins, so they all draw on one budget.  `cebox
 * run` also keeps the file open on an inherited descriptor (CEBOX_SESSION_FD),
 * through which a process that changed user (setpriv, su, apt's _apt) still
 * joins although it can no longer open the path; a process that can do
 * neither gets a private device, and the reason (ram_private_reason).
 *
 * Invariants:
 *  - used pages == the sum of the members' committed pages;
 *  - a member whose process died (crash, SIGKILL) or exec'd (its process
 *    no longer maps the session: the new image may be unable to join) is
 *    reclaimed: its pages return to the budget the next time anyone runs
 *    short or joins;
 *  - cebox's own bookkeeping is never charged.
 * Locking: a robust process-shared mutex in the shared area; a member that
 * dies holding it cannot block the others: the next to take it recomputes
 * the used pages from the rows and reclaims the dead.
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

/* What a member publishes of itself for the timeline `cebox run` samples
 * (relaxed stores by the member where it updates its own statistics,
 * relaxed loads by the shell: a sample may mix figures a few instructions
 * apart, never a torn one).  Zero until first published. */
struct ram_timeline {
    uint64_t slot_reserved_blocks;
    uint64_t largest_free_run_blocks;
    uint64_t peak_reserved_blocks, min_largest_free_run_blocks; /* the worst moment so far */
    uint64_t heap_live_bytes, heap_committed_bytes; /* the process heap */
    /* The process heap's free space, which takes a pass over its indexes:
     * computed only when asked, at the end of the first heap call after
     * `cebox run` cleared figures_answered (at each of its ticks), which
     * the member then sets again; heap_dirty is set at the end of every
     * heap call and cleared with each computation.  So the figures are
     * exact (dirty clear), or at most about a tick old (answered), or
     * stale (neither: the program has not called the heap since the
     * request, but had before it). */
    uint64_t heap_free_items, heap_largest_free_bytes, heap_empty_pages;
    uint64_t figures_answered, heap_dirty;
    uint64_t figures_work; /* what their last pass visited: `cebox run` asks less often after a long one */
};

/* One member's row as the shell samples it. */
struct ram_member_sample {
    int32_t pid;
    uint64_t committed_bytes; /* slot and Large Memory Area */
    struct ram_timeline tl;
};

/* What a hibernate round needs to know of a member. */
struct ram_member_info {
    int32_t pid;
    size_t committed_bytes;
    uint64_t last_active; /* when it last charged, as a count of the device's charges; 0 if never */
};

/* Room for why a process that was to join a session has a device of its
 * own: the session's path and the error. */
#define RAM_WHY_MAX 320

/* A member's slot map in the session: one byte per block (the cells of
 * slot_map_marked, RAM_MAP_FREE for a free block), for slots of up to
 * RAM_MAP_BLOCKS blocks (2 GB of 64 KB blocks, ce6's); the file is sparse
 * and a row's map is all free when a member takes the row (the cells a
 * former member left are cleared then), so a member writes only its
 * blocks that are not free and uses only the pages they fall in.  The
 * member writes it under a sequence count (odd while it writes), so a
 * reader gets a consistent copy. */
#define RAM_MAP_BLOCKS 32768u
#define RAM_MAP_FREE '\0' /* what a page of the file never written reads; '.' when read */
/* The cells of one bit of a row's dirty set (a page of the file). */
#define RAM_MAP_CHUNK 4096u

struct ram_map_row {
    uint32_t seq;    /* even: the map is whole */
    uint32_t blocks; /* the slot's blocks; 0: nothing published */
    uint32_t dirty;  /* bit c: the stored bytes [RAM_MAP_CHUNK c, +RAM_MAP_CHUNK) may hold a
                      * cell that is not free (set before such a cell is stored): what the
                      * row's next member clears */
};

/* Where block b's cell is stored in a row's map: rotated, so that a slot's
 * lowest blocks (its image) and its highest (the libraries and stacks a
 * start places top-down) fall in one page of the file, for ce6's 32 768
 * blocks and for slots up to 128 MB (ce5's 512): a start writes one page
 * of its row's map, not two. */
#define RAM_MAP_ROTATION (RAM_MAP_BLOCKS / 2 + RAM_MAP_CHUNK / 2)
static inline uint32_t ram_map_place(uint32_t block)
{
    return (block + RAM_MAP_ROTATION) % RAM_MAP_BLOCKS;
}
_Static_assert(RAM_MAP_BLOCKS / RAM_MAP_CHUNK <= 32, "a row's dirty set is one word");

/* A member's top live sites under --leaks (record/leaks.c publishes
 * them, `cebox status` shows them): the RAM_LIVE_SITES stacks with the most
 * live bytes, most first, each with its first RAM_LIVE_DEPTH return
 * addresses (in the member's address space: the reader maps them to its
 * modules), under a sequence count (odd while written) as the map is. */
#define RAM_LIVE_SITES 8u
#define RAM_LIVE_DEPTH 16u

struct ram_live_site {
    uint64_t bytes, blocks;
    uint32_t depth;      /* the addresses below */
    uint32_t full_depth; /* the stack's own (more than depth: its outer frames left out) */
    uint64_t ips[RAM_LIVE_DEPTH]; /* innermost first */
};

struct ram_live_sites {
    uint32_t seq;
    uint32_t tracking;   /* 1: --leaks is on in the member (0: the rest means nothing) */
    uint32_t count;      /* sites below */
    uint32_t unused;
    uint64_t time_ns;    /* CLOCK_MONOTONIC of the publication; 0: none yet */
    uint64_t allocations; /* the allocations tracked until then */
    uint64_t sites;      /* stacks with live blocks then (count of them are below) */
    uint64_t live_bytes, live_blocks; /* every tracked block then */
    struct ram_live_site site[RAM_LIVE_SITES];
};

struct ram {
    struct ram_shared *sh;
    struct ram_live_sites *live; /* this member's row's live sites, or NULL (kept by ram.c) */
    struct ram_map_row *map_row; /* this member's, in a session; NULL otherwise */
    unsigned char *map;          /* its RAM_MAP_BLOCKS bytes */
    size_t map_bytes;
    int member;           /* this process's row in the member table; -1: uncounted */
    size_t page;
    const struct memstate_table *table;
    bool session;
    struct ram_timeline *tl; /* this member's row's figures, or NULL (kept by ram.c) */
    char why_private[RAM_WHY_MAX]; /* "" unless a session could not be joined */
};

/* The lowest descriptor number `cebox run` keeps the session file on (when
 * the descriptor limit allows): far from the low numbers programs reuse. */
#define RAM_SESSION_FD_MIN 900

enum ram_result { RAM_OK = 0, RAM_NO_RAM, RAM_STATE_CAP };

/* A private device of `total_pages` pages of `page` bytes.  Returns 0 or -1
 * (no memory for the bookkeeping). */
int ram_init(struct ram *r, size_t total_pages, size_t page, const struct memstate_table *t);

/* Creates a session file at `path` (O_EXCL, mode 0600) for a device of
 * total_pages; `forced` is MEMSTATE_COUNT for none.  Returns 0 or an errno
 * value.  With fd != NULL the file stays open: *fd is a read-write,
 * close-on-exec descriptor at RAM_SESSION_FD_MIN or above when the limit
 * allows (never 0 to 2), or -1.  Used by `cebox run`, which hands the
 * descriptor down to the program and removes the file at the end. */
int ram_session_create(const char *path, size_t total_pages, size_t page,
                       enum memstate_table_id table, enum memstate forced, int *fd);

/* Joins the session at `path` as a member.  Returns 0 or an errno value
 * (EINVAL for a file that is not a cebox session, ENOSPC when its member
 * table is full). */
int ram_session_join(struct ram *r, const char *path);

/* Joins the session at `path` through descriptor fd, which the process
 * inherited, without opening the path (it may no longer have the right).
 * fd is used only when fstat and a read of its header show an original
 * session file, the one at path when path can be looked at; it is never
 * closed.  Returns 0, EBADF (fd is not open), ESTALE (fd names another
 * file: nothing was mapped) or ram_session_join's errors. */
int ram_session_join_fd(struct ram *r, int fd, const char *path);

/* The text for a join's error (errno values, and the ones above), with no
 * locale and no lock: safe where cebox starts, inside a program's first
 * malloc. */
const char *ram_join_strerror(int err);

/* Records why this process has a private device although it was to join
 * a session (copied, at most RAM_WHY_MAX - 1 bytes); "" when it is a
 * member, or was never asked to join. */
void ram_note_private(struct ram *r, const char *why);
const char *ram_private_reason(const struct ram *r);

/* Leaves the device: gives this member's pages back and unmaps. */
void ram_release(struct ram *r);

/* After fork(), in the child: a new member, charged with `committed` pages
 * (the child's copy of the parent's slot).  With no row left in the
 * session, the child gets a private device of the session's size instead
 * (ram_private_reason says so). */
void ram_forked(struct ram *r, size_t committed);

/* The pid this process's row was taken for (at the join, or by
 * ram_forked in a forked child); 0 when it has none.  A process whose own
 * pid differs shares the memory of the one that has the row without a
 * fork handler having run: a vfork child. */
int32_t ram_member_pid(const struct ram *r);

/* Across a fork: a private device's lock is held from before the fork
 * (ram_fork_lock) to after it in both processes (ram_fork_unlock), so the
 * child's copy is never left taken by a thread the child does not have.
 * A session's lock lives in the shared file, where its holder, in this or
 * another process, gives it back: these leave it alone. */
void ram_fork_lock(struct ram *r);
void ram_fork_unlock(struct ram *r, bool child);

/* Takes `pages` pages for this member, by the CE 5 commit rule in low and
 * critical memory.  Nothing is taken on failure. */
enum ram_result ram_charge(struct ram *r, size_t pages);

/* Takes `pages` pages at once when that is exactly what charging them one
 * page at a time with ram_charge would do: every charge allowed, and no
 * memory state or hibernate level crossed on the way (so nothing recorded,
 * nobody woken).  Otherwise takes nothing and returns false, for the
 * caller to charge them page by page.  (A start's occupants: one charge
 * for their pages rather than one each.) */
bool ram_charge_at_once(struct ram *r, size_t pages);

/* Gives back pages taken by ram_charge or ram_charge_at_once. */
void ram_credit(struct ram *r, size_t pages);

size_t ram_total_pages(const struct ram *r);
size_t ram_free_pages(const struct ram *r);
enum memstate ram_state(const struct ram *r);
/* The state a commit of `pages` more would leave the device in: the state
 * a request the cap refused met (the device's state is still the one
 * before it). */
enum memstate ram_state_after(const struct ram *r, size_t pages);

/* How a forced state is held.  PIN: free RAM is pinned just inside the
 * state whatever the programs commit or free.  BALLAST: the device takes
 * RAM as another process would, enough to put free RAM just inside the
 * state at the moment of forcing; the programs' commits then lower free RAM
 * further and their frees raise it, so a program that releases memory
 * moves the state back up (a state above the present one is not reached:
 * a ballast cannot give RAM). */
enum ram_force_mode { RAM_FORCE_PIN = 0, RAM_FORCE_BALLAST = 1 };

/* Forces the device into state s (held as the device's force mode says),
 * or back to the state its free RAM gives with MEMSTATE_NORMAL or
 * MEMSTATE_COUNT (the ballast, if any, is given back). */
void ram_force_state(struct ram *r, enum memstate s);
/* Sets how the device holds forced states from now on (the device's,
 * so every member's forcing follows it). */
void ram_set_force_mode(struct ram *r, enum ram_force_mode m);
/* The pages the ballast holds now (0 without one). */
size_t ram_ballast_pages(const struct ram *r);

/* ---- hibernate notices (cebox run is the device's shell) ---- */

/* Hibernate notices sent to this process so far (a cheap, lock-free read). */
uint32_t ram_notices(const struct ram *r);
/* Sleeps until this process's notice count is no longer `seen`, at most
 * timeout_ms (a futex on its row: ram_send_notice wakes it at once); may
 * return early.  Without a row it just sleeps. */
void ram_wait_notice(const struct ram *r, uint32_t seen, unsigned timeout_ms);
/* The shell's wake word: it changes whenever free RAM crosses the
 * hibernate level (either way), a member joins, or ram_wake_shell is
 * called.  ram_wait_shell sleeps while it still reads `seen`, at most
 * timeout_ms (may return early); the crossing charge or credit wakes it
 * once the device's lock is released, with no allocation. */
uint32_t ram_shell_word(const struct ram *r);
void ram_wait_shell(const struct ram *r, uint32_t seen, unsigned timeout_ms);
void ram_wake_shell(struct ram *r);
/* How many members took a row so far (it only grows). */
uint32_t ram_joins(const struct ram *r);
/* The live members other than the caller, dead ones reclaimed first. */
size_t ram_members(struct ram *r, struct ram_member_info *out, size_t max);
/* Bytes committed by member pid now (0 once it is gone). */
size_t ram_member_committed(struct ram *r, int32_t pid);
/* Counts one more notice for member pid and wakes its watcher; false
 * when pid is no member (any more). */
bool ram_send_notice(struct ram *r, int32_t pid);
/* Copies the transitions recorded since number `since` (at most max, the
 * ring keeps the last RAM_TRANSITIONS); returns how many. */
uint32_t ram_transitions(struct ram *r, uint32_t since, struct ram_transition *out, uint32_t max);
/* Free RAM under which hibernate notices go out (the table's level). */
size_t ram_hibernate_threshold(const struct ram *r);

/* ---- the timeline (relaxed atomics, no lock: cheap enough for every
 * change of the slot and of the process heap) ---- */

/* This member's slot figures, its process heap's: inline, a load, a test
 * and relaxed stores into its row (r may be NULL: a slot made without a
 * device, in tests). */
static inline void ram_publish_slot(struct ram *r, uint32_t reserved_blocks, uint32_t largest_free_run,
                                    uint32_t peak_reserved_blocks, uint32_t min_largest_free_run)
{
    struct ram_timeline *tl = r != NULL ? r->tl : NULL;
    if (tl != NULL) {
        __atomic_store_n(&tl->slot_reserved_blocks, reserved_blocks, __ATOMIC_RELAXED);
        __atomic_store_n(&tl->largest_free_run_blocks, largest_free_run, __ATOMIC_RELAXED);
        __atomic_store_n(&tl->peak_reserved_blocks, peak_reserved_blocks, __ATOMIC_RELAXED);
        __atomic_store_n(&tl->min_largest_free_run_blocks, min_largest_free_run, __ATOMIC_RELAXED);
    }
}

/* The process heap's figures, into its row (tl: the member's row, kept
 * by the heap so that each call costs one pointer test). */
static inline void ram_timeline_heap(struct ram_timeline *tl, size_t live_bytes, size_t committed_bytes)
{
    __atomic_store_n(&tl->heap_live_bytes, live_bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&tl->heap_committed_bytes, committed_bytes, __ATOMIC_RELAXED);
}

/* Only the live figure (the committed one has not changed). */
static inline void ram_timeline_heap_live(struct ram_timeline *tl, size_t live_bytes)
{
    __atomic_store_n(&tl->heap_live_bytes, live_bytes, __ATOMIC_RELAXED);
}

/* The end of a call of the process heap: its free figures are no longer
 * exact.  Returns whether `cebox run` asks for them.  A store and a load. */
static inline bool ram_timeline_call_done(struct ram_timeline *tl)
{
    __atomic_store_n(&tl->heap_dirty, 1, __ATOMIC_RELAXED);
    return __atomic_load_n(&tl->figures_answered, __ATOMIC_RELAXED) == 0;
}

/* The same through the device (nothing without a row). */
static inline void ram_publish_heap_live(struct ram *r, size_t live_bytes)
{
    if (r->tl != NULL) {
        __atomic_store_n(&r->tl->heap_live_bytes, live_bytes, __ATOMIC_RELAXED);
    }
}

static inline void ram_publish_heap_committed(struct ram *r, size_t committed_bytes)
{
    if (r->tl != NULL) {
        __atomic_store_n(&r->tl->heap_committed_bytes, committed_bytes, __ATOMIC_RELAXED);
    }
}

/* Whether a member's free figures can be shown with its other figures. */
static inline bool ram_free_figures_fresh(const struct ram_timeline *tl)
{
    return tl->figures_answered != 0 || tl->heap_dirty == 0;
}
/* CLOCK_MONOTONIC ns when the device was made (for a session: when
 * `cebox run` created it, the origin of every time of the run); 0 without one. */
uint64_t ram_start_ns(const struct ram *r);
/* Publishes the process heap's free figures (and answers the request). */
void ram_publish_free_figures(struct ram *r, uint64_t free_items, uint64_t largest_free_bytes,
                              uint64_t empty_pages, uint64_t work);
/* cebox run: asks member pid to compute its free figures at the end of
 * its next heap call (a relaxed store into its row; nothing for a pid with
 * none). */
void ram_want_free_figures(struct ram *r, int32_t pid);
/* The slot map's publication (slot.c, under the slot's lock: one writer
 * per member).  A store of a cell is a relaxed byte store; begin and end
 * bracket a batch of them with the sequence count. */
static inline void ram_map_begin(struct ram *r)
{
    struct ram_map_row *row = r != NULL ? r->map_row : NULL;
    if (row != NULL) {
        __atomic_store_n(&row->seq, row->seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
    }
}

static inline void ram_map_set(struct ram *r, uint32_t block, char cell)
{
    if (r != NULL && r->map_row != NULL && block < RAM_MAP_BLOCKS) {
        uint32_t at = ram_map_place(block);
        uint32_t bit = 1u << (at / RAM_MAP_CHUNK), dirty = r->map_row->dirty;
        if (cell != RAM_MAP_FREE && (dirty & bit) == 0) {
            __atomic_store_n(&r->map_row->dirty, dirty | bit, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&r->map[at], (unsigned char)cell, __ATOMIC_RELAXED);
    }
}

static inline void ram_map_end(struct ram *r)
{
    struct ram_map_row *row = r != NULL ? r->map_row : NULL;
    if (row != NULL) {
        __atomic_store_n(&row->seq, row->seq + 1, __ATOMIC_RELEASE);
    }
}

/* The slot's block count (a slot larger than the session's map publishes
 * none: its readers are told so). */
static inline void ram_map_blocks(struct ram *r, uint32_t blocks)
{
    if (r != NULL && r->map_row != NULL) {
        __atomic_store_n(&r->map_row->blocks, blocks <= RAM_MAP_BLOCKS ? blocks : UINT32_MAX, __ATOMIC_RELAXED);
    }
}

/* The live sites' publication (record/leaks.c, under its table's lock:
 * one writer per member): the whole of *in copied into the row under its
 * sequence count; nothing without a row in a session. */
void ram_publish_live_sites(struct ram *r, const struct ram_live_sites *in);

/* ---- reading a running session from outside (cebox map, cebox status):
 * the file mapped read-only, no row taken, no lock (the figures are the
 * members' relaxed stores) ---- */

struct ram_view {
    const struct ram_shared *sh;
    size_t map_bytes;
};

/* One member as a viewer sees it. */
struct ram_view_member {
    struct ram_member_sample s;
    uint32_t map_blocks;   /* 0: no map published; UINT32_MAX: its slot is larger than the map */
};

/* Opens the session at path for reading.  Returns 0 or an errno value
 * (EINVAL: not a cebox session file). */
int ram_view_open(struct ram_view *v, const char *path);
void ram_view_close(struct ram_view *v);
/* The live members (at most max), in row order; returns how many. */
size_t ram_view_members(const struct ram_view *v, struct ram_view_member *out, size_t max);
/* Copies member pid's map (at most len bytes) consistently: returns the
 * blocks copied, 0 when pid has none (not a member, or nothing published). */
size_t ram_view_map(const struct ram_view *v, int32_t pid, char *buf, size_t len);
/* Copies member pid's live sites consistently into out: false when pid
 * has no row (or it changed hands, or a writer kept it busy throughout). */
bool ram_view_live_sites(const struct ram_view *v, int32_t pid, struct ram_live_sites *out);
/* The device: free RAM in bytes, its state and its total. */
void ram_view_device(const struct ram_view *v, uint64_t *free_bytes, enum memstate *state, uint64_t *total_bytes);

/* This process's own published figures (zeros when it has no row). */
void ram_own_timeline(const struct ram *r, struct ram_timeline *out);
/* The live members' rows (the caller's included), without reclaiming:
 * returns how many were copied (at most max). */
size_t ram_sample_members(struct ram *r, struct ram_member_sample *out, size_t max);

/* cebox run's tick: member pid's map, copied (at most len bytes) as
 * ram_view_map does, only when its sequence count is no longer *seq (the
 * count of the last copy, which *seq then takes).  Returns the blocks
 * copied, 0 when unchanged, or none published, or no consistent copy. */
size_t ram_member_map(struct ram *r, int32_t pid, uint32_t *seq, char *buf, size_t len);

/* True when process pid no longer exists or is a zombie. */
bool ram_process_gone(int32_t pid);

/* Forces the state of the session file at path (for `cebox state`).
 * Returns 0 or an errno value (ENOTSUP: limited under a table without a
 * limited level, nothing changed). */
int ram_session_force(const char *path, enum memstate s);
/* Sets the force mode of the session file at path and forces state s in
 * it (cebox run, before the program starts).  Returns 0 or an errno value. */
int ram_session_force_by(const char *path, enum ram_force_mode m, enum memstate s);

/* Tests only: takes the device's lock and returns with it held and the
 * used pages off by `skew`, as a member that dies in the middle of an
 * update leaves them. */
void ram_hold_lock_for_test(struct ram *r, int64_t skew);

#endif
