/*
 * heap.h - the one interface every CE heap algorithm implements.
 *
 * Owns: nothing itself; it names the contract.  Each algorithm lives in a
 * file of its own (ce3.c, ce5.c, ce6.c) and fills a `struct heap_ops`
 * (HEAP_OPS_DEFINE); heap.c picks the profile's one and keeps
 * the registry of live heaps (handle lookup, fork locking).
 *
 * Contract for every implementation:
 *  - A heap structure begins with `struct heap` (below): the lock, handle
 *    and stats every heap keeps, read and locked by the common operations
 *    (heap_common_*, heap.c); the rest is the algorithm's own.
 *  - All memory a heap hands out lies in reservations it makes in the slot
 *    through slot_virtual_alloc (so RAM, the slot map and the block rules
 *    apply); it tags them SLOT_TAG_HEAP_REGION / SLOT_TAG_HEAP_LARGE.
 *  - The heap's handle is an address inside the slot (on CE: the heap
 *    header at the base of the first region), so handles look and compare
 *    as on the device.
 *  - Its bookkeeping comes from meta.h (meta_alloc), outside the slot, never
 *    in the program's reach: a program that overruns a buffer can damage its own
 *    data, never cebox's state.  No libc malloc anywhere (inside the preload
 *    library malloc is cebox itself).  When meta_alloc fails, the operation
 *    fails as for lack of memory (ERROR_NOT_ENOUGH_MEMORY), nothing is
 *    leaked and the heap stays valid.
 *  - Its parameters (region sizes, thresholds, rounding) live in its own
 *    file; the profile (options.h) names only which algorithm it uses.
 *  - Every heap is serialized by its own lock, whatever the flags say (as
 *    on CE).  Heap locks may be held while calling the slot; the slot never
 *    calls a heap.
 *  - Failure reporting: functions that fail store the Win32 error code the
 *    CE function would set in *err, or 0 when CE fails *without* setting a
 *    last error (a full fixed heap, a double free).  On success *err is left
 *    alone.  alloc and realloc tell why they failed for lack of room
 *    (entry_note_reason, entry.h): a full fixed heap, a realloc that may
 *    not move, a request too large for any heap; a refusal of the slot
 *    underneath carries the slot's reason.
 *  - Invalid pointers (not from this heap, interior, already freed) are
 *    refused and never followed or written through; each refusal is passed
 *    to heap_report_bad_pointer() (after the heap's lock is released).
 */
#ifndef CEBOX_HEAP_H
#define CEBOX_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cebox/winmem.h"
#include "lock.h"
#include "options.h"
#include "ram.h"

struct slot;
struct ram;
struct heap_ops;

/* Totals kept by every heap, for summaries. */
struct heap_stats {
    size_t live_bytes, peak_live_bytes;    /* usable bytes of busy items */
    size_t live_blocks, peak_live_blocks;  /* busy items, large ones included */
    size_t committed_bytes, peak_committed_bytes; /* regions + large items */
    size_t regions, large_items;
    size_t bad_pointers;                   /* refused pointers (see below) */
};

/* A heap's free space now (the timeline's figures): its free items, each
 * maximal run of free space counted once (as the walk reports them), the
 * usable bytes of the largest, and the committed pages of its regions in
 * which no byte belongs to a busy item (or to the region's header). */
struct heap_free_figures {
    size_t free_items, largest_free_bytes, empty_pages;
    size_t work; /* what the pass visited (free runs, or items for ce3): its cost */
};

/* The common head of every implementation's heap structure: what the
 * interface needs of each heap, so that the stats, handle and fork-lock
 * operations are one piece of code (heap_common_*, heap.c). */
struct heap {
    const struct heap_ops *ops;
    struct slot *slot;                /* the slot it lives in */
    struct heap *reg_next, *reg_prev; /* registry links (heap.c) */
    struct lock lock;                 /* serializes the whole heap, as CE does */
    uintptr_t handle;                 /* what ops->handle returns (set by create) */
    struct heap_stats st;             /* the totals, under lock */
    struct ram *pub;                  /* the timeline's figures go here (ops->publish), or NULL */
    struct ram_timeline *tl;          /* and into this row of it (NULL: none) */
};

/* One thing a heap walk reports. */
enum heap_walk_kind {
    HEAP_WALK_REGION, /* a region: addr = reservation base, size = reserved bytes,
                         committed = committed bytes */
    HEAP_WALK_ITEM,   /* an item of the last region reported: addr = data
                         address, size = usable bytes, busy */
    HEAP_WALK_LARGE,  /* a large item: addr = data address, size = usable bytes,
                         committed = committed bytes of its reservation */
};

struct heap_walk_entry {
    enum heap_walk_kind kind;
    uintptr_t addr;
    size_t size;
    size_t committed;
    bool busy;
};

/* Return false to stop the walk. Called with the heap's lock held: the
 * callback must not call into the same heap. */
typedef bool (*heap_walk_fn)(void *ctx, const struct heap_walk_entry *e);


struct heap_ops {
    const char *name;
    /* The alignment of every block alloc and realloc return (a power of
     * two; CE 5: 16).  Callers that need more over-allocate; callers must
     * not assume any other figure. */
    size_t align;
    /* HeapCreate's algorithm.  Returns NULL with *err set on failure. */
    struct heap *(*create)(struct slot *s, DWORD flags, size_t initial, size_t max, DWORD *err);
    /* Gives every block back to the slot and frees the bookkeeping.  The
     * caller decides whether h may be destroyed (not the process heap). */
    bool (*destroy)(struct heap *h, DWORD *err);
    void *(*alloc)(struct heap *h, DWORD flags, size_t n, DWORD *err);
    void *(*realloc)(struct heap *h, DWORD flags, void *p, size_t n, DWORD *err);
    bool (*free)(struct heap *h, DWORD flags, void *p, DWORD *err);
    /* Usable size of a busy item, or (size_t)-1. */
    size_t (*size)(struct heap *h, DWORD flags, const void *p, DWORD *err);
    /* HeapCompact's return value. */
    size_t (*compact)(struct heap *h, DWORD flags, DWORD *err);
    /* HeapValidate: never sets an error.  With p NULL it also checks the
     * heap's own bookkeeping for consistency. */
    bool (*validate)(struct heap *h, DWORD flags, const void *p);
    /* True when p is the data address of a busy item of h (no error set). */
    bool (*owns)(struct heap *h, const void *p);
    void (*walk)(struct heap *h, heap_walk_fn fn, void *ctx);
    void (*stats)(struct heap *h, struct heap_stats *out);
    /* The heap's handle: an address in the slot (CE: the heap header). */
    void *(*handle)(struct heap *h);
    /* Fork support: take the heap's lock before fork, release after. */
    void (*lock)(struct heap *h);
    void (*unlock)(struct heap *h);
    /* The algorithm's answers behind the common validate and owns, with
     * the heap's lock held: whether p is the data address of a busy item,
     * and the full consistency check of its bookkeeping. */
    bool (*busy_item)(struct heap *h, const void *p);
    bool (*consistent)(struct heap *h);
    /* From now on, every change of live_bytes or committed_bytes goes to
     * ram_publish_heap_live and _committed(r) too (the timeline; core.c
     * asks it of the process heap only, with --out). */
    void (*publish)(struct heap *h, struct ram *r);
    /* The free figures, with the heap's lock held: a pass over the free
     * runs' index (ce5, ce6) or over the items (ce3), no allocation. */
    void (*free_figures)(struct heap *h, struct heap_free_figures *out);
};

/* The ops table `heap_PREFIX_ops` of an algorithm whose functions are
 * PREFIX_create ... PREFIX_walk, PREFIX_busy_item and PREFIX_consistent;
 * validate, owns, stats, handle, lock and unlock are the common ones. */
#define HEAP_OPS_DEFINE(prefix, alignment)                                                         \
    const struct heap_ops heap_##prefix##_ops = {                                                  \
        .name = #prefix,                                                                           \
        .align = (alignment),                                                                      \
        .create = prefix##_create,                                                                 \
        .destroy = prefix##_destroy,                                                               \
        .alloc = prefix##_alloc,                                                                   \
        .realloc = prefix##_realloc,                                                               \
        .free = prefix##_free,                                                                     \
        .size = prefix##_size,                                                                     \
        .compact = prefix##_compact,                                                               \
        .validate = heap_common_validate,                                                          \
        .owns = heap_common_owns,                                                                  \
        .walk = prefix##_walk,                                                                     \
        .stats = heap_common_stats,                                                                \
        .handle = heap_common_handle,                                                              \
        .lock = heap_common_lock,                                                                  \
        .unlock = heap_common_unlock,                                                              \
        .publish = heap_common_publish,                                                            \
        .busy_item = prefix##_busy_item,                                                           \
        .consistent = prefix##_consistent,                                                         \
        .free_figures = prefix##_free_figures,                                                     \
    }

/* ---- the totals, kept the same way by every algorithm (heap's lock held) ---- */

/* bytes more committed (regions or large items); raises its peak. */
/* The timeline's figures (the process heap with --out): a predictable
 * branch for every other heap, relaxed stores for it. */
static inline void heap_publish(struct heap *c)
{
    if (c->tl != NULL) {
        ram_timeline_heap(c->tl, c->st.live_bytes, c->st.committed_bytes);
    }
}

void heap_publish_free_figures_locked(struct heap *c);

/* The end of every operation of an algorithm (ops and their error paths;
 * destroy releases the lock itself, its regions gone):
 * for the process heap with --out, its free figures marked inexact and,
 * when `cebox run` asked for them (once per tick, not per call), computed
 * from the heap whole again; then the lock is released. */
static inline void heap_leave(struct heap *c)
{
    if (c->tl != NULL && __builtin_expect(ram_timeline_call_done(c->tl), 0)) {
        heap_publish_free_figures_locked(c);
    }
    lock_leave(&c->lock);
}

/* heap_leave for an algorithm that counts its items unpublished
 * (heap_count_live, heap_count_dead): the timeline takes the live total
 * once, at the end of the operation, with the one test of the row that
 * heap_leave makes anyway (the committed total is published where it
 * changes, heap_stats_commit and heap_stats_decommit). */
static inline void heap_leave_counted(struct heap *c)
{
    struct ram_timeline *tl = c->tl;
    if (tl != NULL) {
        ram_timeline_heap_live(tl, c->st.live_bytes);
        if (__builtin_expect(ram_timeline_call_done(tl), 0)) {
            heap_publish_free_figures_locked(c);
        }
    }
    lock_leave(&c->lock);
}

static inline void heap_stats_commit(struct heap *c, size_t bytes)
{
    struct heap_stats *st = &c->st;
    st->committed_bytes += bytes;
    if (st->committed_bytes > st->peak_committed_bytes) {
        st->peak_committed_bytes = st->committed_bytes;
    }
    heap_publish(c);
}

/* bytes fewer committed bytes. */
static inline void heap_stats_decommit(struct heap *c, size_t bytes)
{
    c->st.committed_bytes -= bytes;
    heap_publish(c);
}

/* items more busy items holding bytes more usable bytes; raises the peaks.
 * Not published: the operation ends in heap_leave_counted. */
static inline void heap_count_live(struct heap *c, size_t bytes, long items)
{
    struct heap_stats *st = &c->st;
    st->live_bytes += bytes;
    st->live_blocks += (size_t)items;
    if (st->live_bytes > st->peak_live_bytes) {
        st->peak_live_bytes = st->live_bytes;
    }
    if (st->live_blocks > st->peak_live_blocks) {
        st->peak_live_blocks = st->live_blocks;
    }
}

/* items fewer busy items, holding bytes usable bytes; not published. */
static inline void heap_count_dead(struct heap *c, size_t bytes, long items)
{
    c->st.live_bytes -= bytes;
    c->st.live_blocks -= (size_t)items;
}

/* heap_count_live and heap_count_dead, published at once. */
static inline void heap_stats_live(struct heap *c, size_t bytes, long items)
{
    heap_count_live(c, bytes, items);
    heap_publish(c);
}

static inline void heap_stats_dead(struct heap *c, size_t bytes, long items)
{
    heap_count_dead(c, bytes, items);
    heap_publish(c);
}

/* A busy item resized in place from old_bytes to new_bytes. */
static inline void heap_stats_resize(struct heap *c, size_t old_bytes, size_t new_bytes)
{
    struct heap_stats *st = &c->st;
    st->live_bytes = st->live_bytes - old_bytes + new_bytes;
    if (st->live_bytes > st->peak_live_bytes) {
        st->peak_live_bytes = st->live_bytes;
    }
    heap_publish(c);
}

/* ---- large items, linked the same way by ce5 and ce6 (heap's lock held) ---- */

/* The list links of a large item's record: its record's first member, so
 * the algorithm converts a link back to its record with a cast. */
struct heap_large_link {
    struct heap_large_link *next, *prev;
};

/* Pushes l onto the front of *head (CE pushes onto pvaList) and counts it. */
static inline void heap_large_push(struct heap *h, struct heap_large_link **head,
                                   struct heap_large_link *l)
{
    l->prev = NULL;
    l->next = *head;
    if (*head != NULL) {
        (*head)->prev = l;
    }
    *head = l;
    h->st.large_items++;
}

/* Takes l off *head and uncounts it. */
static inline void heap_large_unlink(struct heap *h, struct heap_large_link **head,
                                     struct heap_large_link *l)
{
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        *head = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    h->st.large_items--;
}

/* ---- heap.c ---- */

/* Commits [addr, addr + bytes) of h's slot read-write and counts it
 * committed; the slot's error (nothing counted) otherwise. */
DWORD heap_slot_commit(struct heap *h, uintptr_t addr, size_t bytes);

/* The same for the pages a large item grows by in place (or the tail of
 * its move): the slot may read ahead (slot_commit_growth). */
DWORD heap_slot_commit_growth(struct heap *h, uintptr_t addr, size_t bytes);

/* Decommits [addr, addr + bytes) of h's slot and uncounts it; nothing for
 * 0 bytes or when the slot refuses. */
void heap_slot_decommit(struct heap *h, uintptr_t addr, size_t bytes);

/* Fills the reserved pages [dst, dst + bytes) of a moving item with the
 * committed pages at src (whole pages, in another reservation): the slot
 * hands them over (slot_move_committed: no copy, no page fault at dst) or,
 * where it cannot, they are committed and copied.  Counts dst committed;
 * src is left reserved or as it was, to be decommitted by the caller.  0,
 * or the commit's error with nothing changed. */
DWORD heap_slot_take_pages(struct heap *h, uintptr_t dst, uintptr_t src, size_t bytes);


/* A pool of fixed-size records (the large-item records of ce5 and ce6,
 * ce6's region records) carved from meta.c chunks; a free record holds the
 * link to the next in its first word.  A chunk is a page, each new one
 * twice the last up to HEAP_POOL_CHUNK_MAX (and always room for one
 * record): a heap of many regions costs a few mappings, not one each, and
 * at most the last chunk's spare records.  Records given back stay with
 * the pool until heap_pool_destroy.  Zero-initialized is empty.  Under the
 * owning heap's lock. */
#define HEAP_POOL_CHUNK_MAX ((size_t)256 * 1024)
struct heap_pool_chunk;
struct heap_pool {
    void *spare;                    /* free records */
    struct heap_pool_chunk *chunks; /* every chunk, for heap_pool_destroy */
};

/* A zeroed record of `size` bytes (at least a pointer's) aligned to align,
 * or NULL when meta_alloc fails (the pool is unchanged then). */
void *heap_pool_take(struct heap_pool *p, size_t size, size_t align);

/* Gives rec, from heap_pool_take of p, back to p. */
void heap_pool_give(struct heap_pool *p, void *rec);

/* Frees every chunk of p: its records, given back or not, are gone. */
void heap_pool_destroy(struct heap_pool *p);


/* The algorithm of a profile's heap kind. */
const struct heap_ops *heap_ops_for(enum heap_kind kind);

/* ops->create, then adds the heap to the registry of live heaps.  Same
 * return and *err as ops->create. */
struct heap *heap_create(const struct heap_ops *ops, struct slot *s, DWORD flags, size_t initial,
                         size_t max, DWORD *err);

/* Removes h from the registry, then ops->destroy. */
bool heap_destroy(struct heap *h, DWORD *err);

/* Bumped each time a heap leaves the registry: a cached handle -> heap
 * mapping taken at generation g is valid while this still returns g. */
unsigned long heap_generation(void);

/* Destroys every registered heap of slot s (before the slot goes away). */
void heap_destroy_all_on(struct slot *s);

/* The live heap whose handle is `handle`, or NULL.  Takes the registry
 * lock; O(number of heaps). */
struct heap *heap_lookup(const void *handle);

/* True when p is the data address of a busy item of a live heap other than
 * h (ops->owns of each).  Takes the registry lock, then each heap's lock: the
 * caller holds no heap lock. */
bool heap_item_of_another(const struct heap *h, const void *p);

/* Fork support: the registry lock, then every heap's lock (in registry
 * order); heap_unlock_all releases them in reverse. */
void heap_lock_all(void);
void heap_unlock_all(void);

/* Why a pointer was refused. */
enum heap_bad_kind {
    HEAP_BAD_FOREIGN,  /* not inside this heap's regions or large items */
    HEAP_BAD_INTERIOR, /* inside the heap but not the start of an item's data */
    HEAP_BAD_FREED,    /* the start of free space: already freed */
};

/* Receives every refused pointer: the operation ("HeapFree", ...), the
 * heap's handle, the pointer and why.  Called without any heap lock held;
 * must not allocate from a CE heap.  NULL (the default) only counts them. */
typedef void (*heap_bad_pointer_fn)(const char *op, const void *handle, const void *p,
                                    enum heap_bad_kind why);
void heap_set_bad_pointer_hook(heap_bad_pointer_fn fn);

/* Called by the algorithms; forwards to the hook, if any. */
void heap_report_bad_pointer(const char *op, const void *handle, const void *p,
                             enum heap_bad_kind why);

/* The operations that only read or lock the common head, the same for every
 * algorithm: its ops tables point here. */
void heap_common_stats(struct heap *h, struct heap_stats *out);
void *heap_common_handle(struct heap *h);
void heap_common_lock(struct heap *h);
void heap_common_unlock(struct heap *h);
/* ops->publish for every heap: sets h->pub under the lock and publishes the figures now. */
void heap_common_publish(struct heap *h, struct ram *r);
/* Publishes h's free figures now, under its lock (nothing unless it publishes). */
void heap_refresh_free_figures(struct heap *h);
/* HeapValidate (flags other than HEAP_NO_SERIALIZE fail) and owns, through
 * ops->busy_item and ops->consistent under the heap's lock. */
bool heap_common_validate(struct heap *h, DWORD flags, const void *p);
bool heap_common_owns(struct heap *h, const void *p);

/* ---- ce5.c: the CE 4.2/5.0 heap (coredll LMEM) ---- */

extern const struct heap_ops heap_ce5_ops;

/* The state CE keeps per region, for tests that compare the heap with a
 * model.  Offsets are from the slot's base; rover and last (pitLast) are
 * the offsets of the item headers they point to (the end marker's header
 * when they point to it). */
struct heap_ce5_region_state {
    uintptr_t base;          /* reservation */
    size_t reserved, committed;
    uintptr_t rover, last, end;
    uint32_t max_free;       /* cbMaxFree, raw: bit 0 is the "estimate" flag */
};

/* Fills *out for region i (list order) of a ce5 heap; false past the last. */
bool heap_ce5_region_state(struct heap *h, size_t i, struct heap_ce5_region_state *out);

/* ---- ce3.c: the CE 3.0 heap (coredll LMEM, FIXHEAP.C) ---- */

extern const struct heap_ops heap_ce3_ops;

/* The state CE 3.0 keeps per struct heap of a chain (docs/heaps/ce3.md),
 * for tests that compare the heap with a model.  base is the slot offset of
 * the region (0: no memory); the other offsets are from the region's base. */
struct heap_ce3_region_state {
    uintptr_t base;
    uint32_t high, cur;                     /* pHigh, pCur */
    uint32_t committed, free, max_left;     /* dwCommitted, dwFree, dwMaxLeft */
    uint32_t last_compact;                  /* dwLastCompact */
    uint32_t pages;                         /* pages really committed */
};

/* Fills *out for region i (chain order) of a ce3 heap; false past the last. */
bool heap_ce3_region_state(struct heap *h, size_t i, struct heap_ce3_region_state *out);

/* ---- ce6.c: the Embedded CE 6.0 heap (coredll rheap) ---- */

extern const struct heap_ops heap_ce6_ops;

/* CE 6's per-region state, in blocks of 32 bytes, for tests that compare
 * the heap with a model (base: offset from the slot's base). */
struct heap_ce6_region_state {
    uintptr_t base;
    uint32_t total, commit, rover, nfree, max; /* numBlkTotal, idxBlkCommit, idxBlkFree, ... */
    bool current;                              /* the heap's prgnfree */
};

/* Fills *out for region i (list order) of a ce6 heap; false past the last. */
bool heap_ce6_region_state(struct heap *h, size_t i, struct heap_ce6_region_state *out);

#endif
