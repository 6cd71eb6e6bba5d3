/*
 * leaks.h - leak tracking (`--leaks`): the allocation stack of every live
 * heap block, and at the end of the process the blocks never freed,
 * classified as memcheck does and grouped by stack.
 *
 * Owns: the table of live blocks (address -> stack id, requested size;
 * 12-byte entries in an open-addressed table kept between 3/8 and 3/4
 * full, so 16 to 32 bytes per live block), the table of the program's
 * reservations (mmap family, VirtualAlloc: base -> stack id, length), its
 * own table of distinct stacks (stack.c) with the per-stack live figures
 * of the views (40 bytes per stack), and the classification at exit.  All of it is meta.c
 * memory: nothing in the slot, nothing charged to device RAM, nothing from
 * libc's malloc.
 *
 * Invariants:
 *  - without --leaks nothing here runs: no tracker is registered, and
 *    entry_done/entry_freed (entry.h) cost one load and one branch;
 *  - a block is in the table from the moment its allocation returns until
 *    its free begins (entry_freed runs before the heap takes it back);
 *  - a block that cannot be tracked (no bookkeeping memory) is counted
 *    (`untracked`), never a failure of the program's request;
 *  - the classification never faults: every read of the program's memory
 *    goes through process_vm_readv, which stops at an unmapped page.
 *
 * Locking: one mutex over both tables, taken after the stack is captured
 * (outside it) and never around a call out of cebox; held across fork().
 * At the end of a process killed by a signal it is only tried: when the
 * thread the signal interrupted holds it, the table is read without it
 * (the report says so: `unlocked`).
 */
#ifndef CEBOX_LEAKS_H
#define CEBOX_LEAKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/logformat.h"

struct cebox_core;

/* One live block as the end-of-process passes see it (a copy of the
 * table): address, bytes requested, stack id, the classification's mark,
 * and whether it is a reservation of the program's (mmap, VirtualAlloc)
 * rather than a heap block. */
struct leak_block {
    uintptr_t addr;
    uint32_t size, stack;
    uint8_t mark;
    bool map;
};

/* The log's codes of the kinds (docs/LOG-FORMAT.md): only ever added. */
enum leak_kind {
    LEAK_DEFINITE,  /* no pointer to the block anywhere */
    LEAK_INDIRECT,  /* pointed to only from lost blocks */
    LEAK_POSSIBLE,  /* pointed to only in its interior */
    LEAK_REACHABLE, /* a pointer to its start from a root, or a reachable block */
    LEAK_KINDS
};

/* "definite", "indirect", "possible", "reachable" (the JSON's words); "?". */
const char *leaks_kind_key(unsigned kind);
/* "definitely lost", "indirectly lost", "possibly lost", "still reachable". */
const char *leaks_kind_text(unsigned kind);

/* The blocks of one kind allocated at one stack. */
struct leak_site {
    uint32_t stack;          /* id in the leak table's own stack table (0: none) */
    uint8_t kind;            /* enum leak_kind */
    bool map;                /* reservations (mmap family, VirtualAlloc), not heap blocks */
    uint64_t bytes;          /* requested */
    uint64_t charged;        /* as the CE heap charges them (leaks_charged); a reservation: its 64 KB blocks */
    uint64_t blocks;
    const uintptr_t *ips;    /* the stack's frames (the table's memory) */
    size_t depth;
};

struct leak_report {
    struct leak_site *sites; /* meta.c memory; by kind, then stack id */
    size_t nsites, sites_cap;
    uint64_t bytes[LEAK_KINDS], charged[LEAK_KINDS], blocks[LEAK_KINDS];
    size_t top[LEAK_KINDS];  /* index of the site with most bytes, or SIZE_MAX */
    uint64_t untracked;      /* blocks that could not be tracked */
    size_t threads, threads_missed; /* other threads scanned, and not answering */
    bool unlocked;           /* the table was read without its lock */
    bool incomplete;         /* no memory to classify: nothing in sites */
};

/* At the start of a preloaded process: registers the tracker when the
 * settings ask for --leaks (nothing otherwise). */
void leaks_start(struct cebox_core *core);

/* Is the tracker registered in this process? */
bool leaks_active(void);

/* CE's charge for an item of n requested bytes in a growable heap: the
 * item with its 8-byte header in 16-byte granules, or a large item's
 * pages (with its 32-byte link and header). */
uint64_t leaks_charged(uint64_t n, uint64_t page);

/* Where the calling thread's roots are. */
struct leak_roots {
    uintptr_t stack_from; /* its stack is scanned from here to the end of its mapping:
                           * the frame where cebox was entered, or the stack pointer
                           * a signal interrupted (cebox's own frames and the dead
                           * words below the program's stack pointer are no roots) */
    const void *regs;     /* the registers a signal interrupted, or NULL */
    size_t regs_len;
    bool slot_unlocked;   /* the slot's lock may be taken: the program's own mappings in
                           * the slot are roots too (not when a signal interrupted cebox) */
    bool stop_threads;    /* the other threads are stopped (stopthreads.h) and their stacks
                           * and registers are roots too (at exit, not in a signal handler) */
};

/* At the end of the process (exit, or a fatal signal when in_signal):
 * classifies every live block and groups them by kind and stack.  Roots:
 * the writable segments of every loaded object but cebox's own, the
 * program's own mappings in the slot (mmap, VirtualAlloc), the calling
 * thread's stack and registers (roots), its static TLS and thread control
 * block, and with roots->stop_threads the other threads' stacks and
 * registers (they are stopped for it).  Returns false (and *r with incomplete set) when there was
 * no memory for it. */
bool leaks_classify(struct leak_report *r, bool in_signal, const struct leak_roots *roots);

/* Gives back the report's memory. */
void leaks_report_free(struct leak_report *r);

/* ---- the views (with --out as well: docs/LOG-FORMAT.md, records 10-12) ----
 *
 * The tracker keeps, per stack, the bytes and blocks live now (two adds
 * per allocation and free) and a copy of them at the heap's peak (taken
 * when a free is about to lower a live total that passed the last copy
 * by 1/32: O(log peak) copies, each a pass over the distinct stacks).
 * Growth samples: the GROWTH_TOP sites with most live bytes, written at
 * every failure, at the end, and every --sample-interval (the clock is
 * read once per 1024 allocations; no timer, no signal).  The pinning view
 * at the slot's least free run: computed on a free (after the block left
 * the table, with no lock held, the slot's taken inside), the first at
 * once, each later one when the frees since the last paid for it (8 per
 * live block, per 16 table entries, plus 512), and only its compact
 * result kept (meta.c memory).  None of it runs without --out.
 *
 * The live sites (with a session row, under `cebox run`, --out or not):
 * the per-stack figures kept as for the views, and the 8 stacks with most
 * live bytes published into the row (ram_publish_live_sites) from each
 * growth sample's pass, else once every max(1024, distinct stacks)
 * allocations: at most one stack visited per allocation. */

/* A growth sample now (LOG_SAMPLE_FAILURE from the event log, right after
 * a failure's records; LOG_SAMPLE_TICK from the tracker).  Takes the
 * table's lock, then the log's; hold neither. */
void leaks_sample(enum log_sample_kind kind);

/* At the end of a process (after leaks_classify): the last growth sample,
 * the peak record, the kept pinning view at the least free run (no walk
 * from then on) and, when slot_unlocked (the slot's lock may be taken),
 * the pinning record of the end (record/pinning.h). */
void leaks_write_views(bool in_signal, bool slot_unlocked);

#endif
