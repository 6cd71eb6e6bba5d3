/*
 * occupancy.h - what a device's loader and kernel put in a process's slot
 * before and beside the program's own allocations: its image (EXE) from
 * block 1, its DLLs top-down (a RAM DLL whole, an XIP DLL's writable data
 * only) and a stack per thread, first fit from the bottom (CE 5 loader.c,
 * schedule.c: CE-SEMANTICS.md "Stacks and images").
 *
 * Owns: the choice of those occupants for a preloaded process (from the
 * program's ELF headers and the loader's list of objects), their
 * reservations through slot_occupy, and their counts for the summary.
 * The real code and stacks stay where Linux put them: an occupant is
 * accounting (blocks, and RAM for the pages a device commits).
 *
 * Invariants: only objects the program itself needs (the DT_NEEDED closure
 * of its executable, and what it loads later) are charged, never cebox's
 * own (the preload library and what it alone needs: libunwind, liblzma);
 * a library unloaded is given back at the next check; nothing here allocates
 * (tables are static), and the loader's lock (dl_iterate_phdr) is never
 * held while the slot's is taken.
 */
#ifndef CEBOX_OCCUPANCY_H
#define CEBOX_OCCUPANCY_H

#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cebox_core;

struct occupancy_stats {
    uint32_t image_blocks;       /* the EXE's (0: not placed) */
    uint32_t ram_dlls, ram_dll_blocks;
    uint32_t xip_dlls, xip_dll_blocks;
    uint32_t refused;            /* image or DLLs that found no room */
    uint32_t stack_blocks;       /* of one stack (0: stacks take nothing) */
    uint32_t stacks, peak_stacks; /* live stacks, the main thread's included */
    uint32_t threads_refused;    /* pthread_create answered EAGAIN */
};

/* Places the image, the main thread's stack and the libraries in c's slot,
 * once per process (later calls, a forked child's included, do nothing);
 * nothing when the settings say --occupy no.  Call it after the slot exists
 * and before the process heap does (the image's blocks start at block 1). */
void occupancy_start(struct cebox_core *c);

/* A new thread's stack: 0 and its base (NULL when stacks take nothing), or
 * EAGAIN when the slot has no run of blocks for it or no RAM for its top
 * page (pthread_create's error for lack of resources). */
int occupancy_stack_reserve(struct cebox_core *c, void **base);

/* Gives a stack of occupancy_stack_reserve back (NULL: nothing). */
void occupancy_stack_release(struct cebox_core *c, void *base);

/* Libraries loaded (dlopen) or unloaded (dlclose) since the last look:
 * those loaded are the program's and are placed as at the start, those
 * gone are given back.  One look at the loader's counters when nothing
 * changed; does nothing while another thread is at it.  Call it with no
 * cebox lock held. */
void occupancy_check_loaded(struct cebox_core *c);

/* Fork support: the library table's lock across fork() (taken before the
 * slot's, as occupancy_check_loaded takes them). */
void occupancy_lock(void);
void occupancy_unlock(void);

void occupancy_get_stats(struct occupancy_stats *out);

/* One occupant in place, for the event log's occupancy record. */
struct occupancy_entry {
    char kind;             /* 'E' image, 'D' DLL, 'S' stack (the slot map's letters) */
    bool xip;              /* a DLL in ROM: only its writable data is in the slot */
    uint32_t first_block, blocks, pages; /* pages: committed from the start */
    const char *name;      /* the executable's or library's path, or a description */
};

/* The image, the main thread's stack and the libraries in place now (not
 * the other threads' stacks), from the `from`th on, at most max; returns
 * how many.  Without the libraries when a check is under way (never waits:
 * a signal handler may ask). */
size_t occupancy_list(size_t from, struct occupancy_entry *out, size_t max);

/* ---- the rules, for the tests ---- */

/* Is `path` one of the system's libraries (under /lib, /usr/lib, /lib64,
 * /usr/lib64, /lib32, /usr/lib32 or a multiarch directory below them)? */
bool occupancy_system_path(const char *path);

/* The loadable extent of an object from its program headers, page-rounded
 * offsets from its lowest segment: [0, size) in all, and [w_start, w_end)
 * holding its writable segments (w_end == w_start: none).  False when it
 * has no loadable segment. */
struct occupancy_extent {
    size_t size, w_start, w_end;
};
bool occupancy_extent_of(const ElfW(Phdr) *ph, size_t n, size_t page, struct occupancy_extent *out);

#endif
