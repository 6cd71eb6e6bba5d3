/*
 * slot.h - the emulated CE process slot: blocks, pages and the VirtualAlloc
 * family's rules.
 *
 * Owns: one real, size-aligned PROT_NONE reservation of the host address
 * space (the slot), its per-block and per-page state, and the Large Memory
 * Area reservations made outside it.  Every byte cebox hands to a program
 * lies in one of these.
 *
 * Invariants (under the slot's lock):
 *  - block 0 is never handed out;
 *  - a block is either free or belongs to exactly one reservation, whose base
 *    block records its length in pages and its committed page count;
 *  - the host maps a committed page with its protection, and each committed
 *    page holds one page of device RAM; an uncommitted page is inaccessible
 *    to the host, except the read-ahead pages of a heap region or of a
 *    heap's large item grown in place (commit_ahead below): reserved in
 *    every count, mapped read/write;
 *  - the bookkeeping lives in meta.c blocks, never in the slot and never
 *    charged to device RAM; when it cannot be had, the request fails with
 *    its documented error and leaves every state as it was.
 *
 * Functions return 0 or a Win32 error code (ERROR_*); they never touch errno
 * or the thread's last error (winapi.c does), and note the reason of a
 * refusal for lack of room or for the request's size (entry.h).  All take
 * the slot's lock.
 */
#ifndef CEBOX_SLOT_H
#define CEBOX_SLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cebox/winmem.h"

struct ram;

struct slot_config {
    size_t size;          /* bytes, a multiple of granularity */
    size_t granularity;   /* 64 KB */
    size_t page_size;     /* must equal the host page size */
    bool large_memory_area;
    size_t lma_min;
    bool release_mixed;
    bool honour_top_down;
    bool alloc_prot_error_is_invalid; /* VirtualAlloc reports a bad protection as 87 */
    /* CE 3.0's checks: VirtualAlloc tests the protection before the size and
     * refuses only sizes over the slot's with 87 (exactly the slot's finds
     * no room: 8); VirtualProtect has no ERROR_ACCESS_DENIED rule. */
    bool ce3_vm_checks;
    struct ram *ram;      /* charged for every committed page */
    /* Read-ahead of host protection: when a commit of a heap region's pages
     * read/write needs a host call, that call also maps up to this many of
     * the region's next reserved pages read/write (and, once it reaches
     * the region's last usable page, the unusable rest of its last block),
     * so that the region's next commits need none (the same for a large
     * item's growth, slot_commit_growth).  They stay reserved in
     * every count (RAM, committed pages, map, VirtualQuery); only a stray
     * touch of them does not fault.  0: exact (the host maps a page
     * accessible only while it is committed). */
    uint32_t commit_ahead;
    /* Keep the time of each peak of reserved blocks (slot_map_marked's
     * *peak_ns), which only an event log reads: without one, no peak
     * reads the clock, and a start touches none of its pages. */
    bool peak_times;
};

/* What a reservation is used for (for maps and reports).  The last three
 * are occupants (slot_occupy): what a device's loader and kernel put in
 * the slot, the program's image, its DLLs and its threads' stacks. */
enum slot_tag {
    SLOT_TAG_VIRTUAL = 0, SLOT_TAG_HEAP_REGION, SLOT_TAG_HEAP_LARGE,
    SLOT_TAG_IMAGE, SLOT_TAG_DLL, SLOT_TAG_STACK
};

struct slot_stats {
    uint32_t blocks;          /* blocks in the slot, block 0 included */
    uint32_t free_blocks;     /* block 0 is not free */
    uint32_t largest_free_run;
    uint32_t reserved_blocks, peak_reserved_blocks;
    uint32_t min_largest_free_run; /* the smallest largest_free_run reached */
    size_t committed_pages, peak_committed_pages; /* slot and LMA */
    /* The heap's reservations' share of peak_committed_pages (the rest:
     * anonymous mappings and VirtualAlloc). */
    size_t heap_pages_at_peak;
    /* The occupants' share of it: image and DLLs, stacks (slot_occupy). */
    size_t image_pages_at_peak, stack_pages_at_peak;
    size_t lma_reserved_bytes;
    /* Failed requests by reason: no free run and too few free blocks; no
     * free run although enough blocks are free (fragmentation); no RAM;
     * refused by the low/critical memory-state cap although RAM remained. */
    size_t fail_exhausted, fail_fragmented, fail_ram, fail_cap;
};

struct slot;

/* Reserves the slot.  Returns 0, or ERROR_INVALID_PARAMETER for a bad
 * configuration, or ERROR_NOT_ENOUGH_MEMORY when the host refuses. */
DWORD slot_create(const struct slot_config *cfg, struct slot **out);

/* Unmaps the slot, its LMA reservations and the bookkeeping, and gives all
 * committed RAM back.  Pointers into it become invalid. */
void slot_destroy(struct slot *s);

/* The VirtualAlloc family; see include/cebox/winmem.h for the semantics. */
DWORD slot_virtual_alloc(struct slot *s, void *addr, size_t size, DWORD type, DWORD prot,
                         void **out);
DWORD slot_virtual_free(struct slot *s, void *addr, size_t size, DWORD type);
DWORD slot_virtual_query(struct slot *s, const void *addr, MEMORY_BASIC_INFORMATION *out);

/* Commits [addr, addr + size) read/write for a heap's large item (tag
 * SLOT_TAG_HEAP_LARGE) that grows, in place or by a move, as a MEM_COMMIT of
 * slot_virtual_alloc does (the same errors), and reads ahead as a heap
 * region's commit does (commit_ahead): a host call it needs also opens the
 * reservation's next reserved pages, so the item's next growth steps need
 * none.  Any other reservation is committed exactly. */
DWORD slot_commit_growth(struct slot *s, void *addr, size_t size);
DWORD slot_virtual_protect(struct slot *s, void *addr, size_t size, DWORD prot, DWORD *old);

/* Moves the len bytes of committed pages at src (all read/write) onto the
 * reserved pages at dst, in another reservation: the host hands the pages
 * over (one mremap, or where MREMAP_DONTUNMAP is refused a plain mremap
 * and a PROT_NONE mapping of src again: os_move_pages) and src becomes
 * reserved; where most of dst's pages are stale (their memory kept, so a
 * copy faults nothing) or the host cannot move them (a sandbox refusing
 * mremap) they are copied, without
 * zeroing dst first, and src stays committed.  Either way dst is committed
 * read/write with src's contents, and the caller releases src.  RAM is
 * charged for dst before src is credited, so the peak and a refusal are
 * those of a copy.  0; ERROR_NOT_ENOUGH_MEMORY when RAM or the memory
 * state refuses (reason noted) or the host will not map dst;
 * ERROR_NOT_SUPPORTED when the pages are not in those states (the caller
 * commits and copies); nothing changes on failure. */
DWORD slot_move_committed(struct slot *s, void *dst, void *src, size_t len);

/* Marks the reservation whose base is `base` with a tag. */
void slot_set_tag(struct slot *s, void *base, enum slot_tag tag);

/* True when p lies in the slot. */
bool slot_contains(const struct slot *s, const void *p);

uintptr_t slot_base(const struct slot *s);
size_t slot_size(const struct slot *s);
size_t slot_granularity(const struct slot *s);
size_t slot_page_size(const struct slot *s);

void slot_get_stats(struct slot *s, struct slot_stats *out);

/* The slot's largest free run now and the smallest it has been, in
 * blocks, without the lock (two relaxed loads: the leak tracker looks at
 * them on every free; each figure is one moment's, the pair may straddle
 * a claim or a release). */
void slot_free_runs(struct slot *s, uint32_t *now, uint32_t *least);

/* Writes one character per block (at most len) and returns how many:
 *   '-' block 0 (never handed out)   '.' free
 *   'R' reserved, nothing committed  'C' reserved with committed pages
 *   'H' heap region                  'L' large heap item
 *   'E' the program's image (EXE)    'D' a DLL (a RAM DLL, or an XIP DLL's data)
 *   'S' a thread's stack
 * Large Memory Area reservations are outside the slot and not shown. */
size_t slot_map(struct slot *s, char *buf, size_t len);

/* The same with each reservation told apart from its neighbours: its first
 * block a capital, its other blocks in lower case ('h', 'l', 'r', 'c').
 * SLOT_MAP_PEAK gives the map of the last moment the slot held its peak
 * of reserved blocks (the changes made while it stayed there included),
 * and *peak_ns (if not NULL) when it reached it (CLOCK_MONOTONIC; 0
 * unless the slot keeps peak_times). */
enum slot_map_which { SLOT_MAP_NOW, SLOT_MAP_PEAK };
size_t slot_map_marked(struct slot *s, enum slot_map_which which, char *buf, size_t len, uint64_t *peak_ns);

/* Copies the whole map into this process's row of the session (a forked
 * child's new row starts empty). */
void slot_publish_map(struct slot *s);

/* The same two for a forked child's fork handler, without the slot's
 * lock: the child's one thread, once the handlers released what the fork
 * held (a signal handler's calls are the bootstrap arena's then, never the
 * slot's), so the page of the lock's word is not copied for them before
 * an exec.  The pages committed, and the map published. */
size_t slot_forked_committed_pages(const struct slot *s);
void slot_forked_publish_map(struct slot *s);
/* ---- occupants: what a device's loader and kernel reserve in the slot
 * (the image at block 1, DLLs top-down, stacks first fit from the bottom).
 * The host's real code and stacks stay where Linux put them: an occupant
 * is accounting, blocks and RAM, with pages committed inaccessible to
 * nobody's use. */

enum slot_place {
    SLOT_PLACE_AT,     /* at `offset` bytes from the slot's base (64 KB-aligned) */
    SLOT_PLACE_BOTTOM, /* first fit from the lowest free block (CE's "no address") */
    SLOT_PLACE_TOP     /* the highest free run (CE's loader puts DLLs there) */
};

struct slot_occupant {
    enum slot_tag tag;      /* SLOT_TAG_IMAGE, SLOT_TAG_DLL or SLOT_TAG_STACK */
    enum slot_place place;
    size_t offset;          /* SLOT_PLACE_AT only */
    size_t bytes;           /* reserved: rounded up to whole blocks */
    /* The pages committed (charged to RAM) from the start: [commit_offset,
     * commit_offset + commit_bytes) of the reservation, page-rounded. */
    size_t commit_offset, commit_bytes;
};

/* Reserves and commits an occupant.  Returns 0 and its base, or
 * ERROR_NOT_ENOUGH_MEMORY (no room at that place, or no RAM for its
 * pages), ERROR_INVALID_PARAMETER (a bad tag or range).  On failure
 * nothing is reserved.  Notes no entry reason: no program request failed. */
DWORD slot_occupy(struct slot *s, const struct slot_occupant *o, void **base);

/* Releases the occupant whose base is `base` with its committed pages.
 * ERROR_INVALID_PARAMETER when no occupant starts there. */
DWORD slot_vacate(struct slot *s, void *base);

/* ---- MEM_AUTO_COMMIT ---- */

/* Whether VirtualAlloc accepts MEM_AUTO_COMMIT (else ERROR_NOT_SUPPORTED):
 * only while a fault handler calls slot_touch (autocommit.c). */
void slot_set_auto_commit(struct slot *s, bool on);

/* A fault at addr: when it is a reserved page of a MEM_AUTO_COMMIT
 * reservation, commits it read/write (charging RAM) and returns true (the
 * access may be retried); false otherwise, and when no RAM is left (the
 * access faults, as on CE).  Takes the slot's lock: never call it from a
 * fault raised while this thread holds it (cebox itself never touches
 * such a page). */
bool slot_touch(struct slot *s, const void *addr);

/* ---- Linux mapping calls over the slot (the preload library's mmap family).
 * Same return convention; ranges are page-rounded. */

/* munmap: pages in [addr, addr+len) are decommitted and given up; a
 * reservation all of whose pages were given up is released.  Ranges in free
 * space are ignored. */
DWORD slot_unmap(struct slot *s, void *addr, size_t len);

/* mprotect: a protection other than PAGE_NOACCESS commits the pages (RAM is
 * charged for new ones) and sets it; PAGE_NOACCESS keeps committed pages
 * committed and their contents intact.  ERROR_INVALID_PARAMETER when some
 * page is not in a reservation or was unmapped. */
DWORD slot_mprotect(struct slot *s, void *addr, size_t len, DWORD prot);

/* mmap(MAP_FIXED): fresh zero-filled pages with `prot` over [addr,
 * addr+len), inside existing reservations, or as a new reservation when
 * addr is a free 64 KB-aligned block. */
DWORD slot_map_fixed(struct slot *s, void *addr, size_t len, DWORD prot);

/* True when addr is in the slot or in one of its Large Memory Area
 * reservations. */
bool slot_owns(struct slot *s, const void *addr);

/* End of the usable pages of the reservation holding addr, or 0. */
size_t slot_region_end(struct slot *s, const void *addr);

/* True when every page of [addr, addr+len) lies in one reservation's usable
 * pages and is mapped (committed, or reserved by a PROT_NONE mapping), or,
 * with mapped false, every one was given up by slot_unmap. */
bool slot_pages_mapped(struct slot *s, const void *addr, size_t len, bool mapped);

/* Fork support: hold the slot's lock across fork(). */
void slot_lock(struct slot *s);
void slot_unlock(struct slot *s);

#endif
