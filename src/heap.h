/*
 * heap.h - the one interface every CE heap algorithm implements.
 *
 * Owns: nothing itself; it names the contract.  Each algorithm lives in a
 * file of its own (heap_ce5.c today; heap_ce3.c and heap_ce6.c can follow)
 * and fills a `struct heap_ops`; heap.c picks the profile's one.
 *
 * Contract for every implementation:
 *  - All memory a heap hands out lies in reservations it makes in the slot
 *    through slot_virtual_alloc (so RAM, the slot map and the block rules
 *    apply); it tags them SLOT_TAG_HEAP_REGION / SLOT_TAG_HEAP_LARGE.
 *  - Its bookkeeping lives outside the slot (os_map_private), never in the
 *    program's reach: a program that overruns a buffer can damage its own
 *    data, never cebox's state.  No libc malloc anywhere (inside the preload
 *    library malloc is cebox itself).
 *  - Every heap is serialized by its own lock, whatever the flags say (as
 *    on CE).
 *  - Failure reporting: functions that fail store the Win32 error code the
 *    CE function would set in *err, or 0 when CE fails *without* setting a
 *    last error (a full fixed heap, a double free).  On success *err is left
 *    alone.
 *  - Invalid pointers (not from this heap, interior, already freed) are
 *    refused and never followed or written through.
 */
#ifndef CEBOX_HEAP_H
#define CEBOX_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cebox/winmem.h"
#include "options.h"

struct slot;
struct heap;

/* Heap flags (Windows SDK values). */
#define HEAP_NO_SERIALIZE 0x00000001
#define HEAP_GENERATE_EXCEPTIONS 0x00000004
#define HEAP_ZERO_MEMORY 0x00000008
#define HEAP_REALLOC_IN_PLACE_ONLY 0x00000010

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

/* Totals kept by every heap, for summaries. */
struct heap_stats {
    size_t live_bytes, peak_live_bytes;    /* usable bytes of busy items */
    size_t live_blocks, peak_live_blocks;  /* busy items, large ones included */
    size_t committed_bytes, peak_committed_bytes; /* regions + large items */
    size_t regions, large_items;
};

struct heap_ops {
    const char *name;
    struct heap *(*create)(struct slot *s, DWORD flags, size_t initial, size_t max, DWORD *err);
    bool (*destroy)(struct heap *h, DWORD *err);
    void *(*alloc)(struct heap *h, DWORD flags, size_t n, DWORD *err);
    void *(*realloc)(struct heap *h, DWORD flags, void *p, size_t n, DWORD *err);
    bool (*free)(struct heap *h, DWORD flags, void *p, DWORD *err);
    /* Usable size of a busy item, or (size_t)-1. */
    size_t (*size)(struct heap *h, DWORD flags, const void *p, DWORD *err);
    /* HeapCompact's return value. */
    size_t (*compact)(struct heap *h, DWORD flags, DWORD *err);
    bool (*validate)(struct heap *h, DWORD flags, const void *p);
    /* True when p is the data address of a busy item of h (no error set). */
    bool (*owns)(struct heap *h, const void *p);
    void (*walk)(struct heap *h, heap_walk_fn fn, void *ctx);
    void (*stats)(struct heap *h, struct heap_stats *out);
    /* Fork support: take every lock before fork, release after. */
    void (*lock)(struct heap *h);
    void (*unlock)(struct heap *h);
};

/* The algorithm of a profile's heap kind (heap.c). */
const struct heap_ops *heap_ops_for(enum heap_kind kind);

extern const struct heap_ops heap_ce5_ops;

#endif
