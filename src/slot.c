/*
 * slot.c - the emulated CE process slot (see slot.h for what it owns).
 *
 * Layout of the bookkeeping (one block from meta.c, outside the slot).  A
 * start's few reservations (the image at block 1, the libraries at the
 * top) touch both ends of each table, and a table's end shares its page
 * with the next one's start, so the order in memory (struct slot,
 * cell_chunks, cell, blk, page, runindex, peak_epoch, peak_cell) and one
 * record per block (owner and reservation together) keep the pages a
 * start faults in few:
 *   blk[block]        owner: base block of the reservation holding the
 *                     block, or NO_OWNER when the block is free; res: at a
 *                     reservation's base block, its usable pages,
 *                     committed pages and tag;
 *   page[page]        state and protection of each page of the slot, and
 *                     PG_STALE on a page decommitted (or released) whose
 *                     host memory is kept, inaccessible, to be zeroed
 *                     when it is committed again (bounded: STALE_PAGES_MAX);
 *                     PG_AHEAD on a reserved page of a heap region, or
 *                     of a heap's large item grown in place, that the
 *                     host maps read/write ahead of its commit
 *                     (commit_ahead), and on the unusable pages past such
 *                     a reservation's end once its last usable page has
 *                     it;
 *   runindex          free runs of blocks, for first fit and top-down;
 *   cell[block]       the block's character in the slot map, the first
 *                     block of a reservation a capital, its others lower
 *                     case (slot_map_marked), 0 for a free block ('.'
 *                     when read: the zeroed bookkeeping and the session's
 *                     untouched map already hold it, so nothing is written
 *                     for free blocks at the start); kept where a block
 *                     changes state, and published to the session
 *                     (ram_map_*);
 *   cell_chunks       a bit per 64 cells, set once one of them is not
 *                     free (never cleared): a whole map is published by
 *                     reading only those chunks, not the slot's every cell
 *                     (ce6's 32 768: eight pages a forked child would fault
 *                     in to read zeros);
 *   peak_cell[block], peak_epoch[block]
 *                     the map at the peak, copy on write: epoch counts the
 *                     times the slot reached its peak of reserved blocks;
 *                     the first change of a block while the slot is below
 *                     its peak saves the block's old cell with the epoch,
 *                     so the peak map is peak_cell where peak_epoch is the
 *                     epoch and cell elsewhere: O(1) per change, nothing
 *                     copied when the peak is reached, read at exit.
 * A Large Memory Area reservation carries the same per-page array in a
 * meta.c block of its own, linked from lma_list.
 *
 * A "region" below is one reservation seen through struct region: its base,
 * pages and counters, whether it lies in the slot or in the LMA, so commit,
 * decommit, protect and query have one implementation for both.
 *
 * A request refused for lack of room (blocks, a run, RAM, a state cap) or
 * for its size (the slot's or more) notes why for entry_fail
 * (entry_note_reason); argument errors note nothing.
 */
#include "slot.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "entry.h"
#include "invariant.h"
#include "meta.h"
#include "os.h"
#include "ram.h"
#include "runindex.h"

/* 0: block 0 is never handed out, so no reservation has it for its base,
 * and the zero-filled table starts with every block free without a write
 * (a 2 GB slot's table is 128 KB). */
#define NO_OWNER 0u

/* Page word: protection (PAGE_* incl. modifiers) in the low bits, state on top. */
#define PG_PROT_MASK 0x03FFu
/* The page's block has what CE calls a MEMBLOCK: the reservation's first
 * block, its partial last block, and every block a commit has touched (CE
 * keeps the MEMBLOCK until the release).  VirtualQuery's Type depends on it. */
#define PG_MEMBLOCK 0x1000u
#define PG_AHEAD 0x0400u    /* not committed; the host maps it read/write (read-ahead) */
#define PG_STALE 0x0800u    /* not committed; the host still holds its old contents */
#define PG_UNMAPPED 0x2000u /* reserved page the program unmapped (munmap) */
#define PG_RESERVED 0x4000u
#define PG_COMMITTED 0x8000u
#define PG_STATE_MASK (PG_RESERVED | PG_COMMITTED)
/* Bits that are no part of a page's state and protection. */
#define PG_BOOKKEEPING (PG_MEMBLOCK | PG_UNMAPPED | PG_STALE | PG_AHEAD)

#define PAGE_MODIFIERS (PAGE_GUARD | PAGE_NOCACHE)

/* CE's pager type of a reservation (MB_PAGER_*), which VirtualQuery reports
 * as its Type. */
enum pager { PAGER_NONE = 0, PAGER_LOADER, PAGER_MAPPER };

/* What the summary splits committed pages by (enum slot_tag, grouped). */
enum kind { KIND_MAPPED = 0, KIND_HEAP, KIND_IMAGE, KIND_STACK, KINDS };

/* Decommitted pages whose host memory is kept (PG_STALE) at most: 32 MB of
 * 4 KB pages, the default slot's size, so that a program that frees and
 * maps again most of its slot (python's 1 MB arenas, 15 MB of them in its
 * workload's rounds) finds its memory kept (with 8 MB its workload under
 * ce5 faulted 9 100 times, with 32 MB 5 700).  Past it a decommit hands
 * its pages back to the host. */
#define STALE_PAGES_MAX 8192u

struct res_info {
    uint32_t pages;     /* usable pages from the base */
    uint32_t committed; /* committed pages */
    uint32_t unmapped;  /* pages given up by munmap; all of them: released */
    uint8_t tag;
    uint8_t pager;      /* enum pager */
    uint8_t auto_commit; /* MEM_AUTO_COMMIT: a page is committed when first touched */
};

struct lma_res {
    struct lma_res *next;
    uintptr_t base;
    size_t map_bytes;   /* size of this record's own meta.c block */
    struct res_info info;
    uint16_t page[];
};

/* What the slot keeps per block (layout above). */
struct block_rec {
    uint32_t owner;
    struct res_info res;
};

struct slot {
    pthread_mutex_t lock;
    uintptr_t base;
    size_t size, gran, page_size;
    uint32_t nblocks, pages_per_block;
    bool lma_enabled, release_mixed, top_down, alloc_prot_error_87, ce3_checks;
    bool auto_commit; /* MEM_AUTO_COMMIT accepted (slot_set_auto_commit) */
    uint32_t commit_ahead; /* pages a heap region's commit maps read/write ahead (0: none) */
    size_t lma_min;
    struct ram *ram;

    struct block_rec *blk;
    uint16_t *page;
    struct runindex *free;
    struct lma_res *lma_list;
    size_t meta_bytes;

    uint32_t reserved_blocks, peak_reserved_blocks;
    uint32_t min_largest_free_run; /* the smallest longest free run so far (the timeline) */
    uint32_t largest_free_run;     /* the longest free run now (a copy of the index's root) */
    size_t committed_pages, peak_committed_pages, lma_bytes;
    /* Of committed_pages, those of each kind of reservation (the heap's,
     * the occupants', the rest mapped by the program itself); and their
     * shares at the peak. */
    size_t kind_pages[KINDS], kind_at_peak[KINDS];
    size_t stale_pages;     /* pages marked PG_STALE, in the slot and the LMA */
    size_t fail_exhausted, fail_fragmented, fail_ram, fail_cap;

    char *cell, *peak_cell;  /* the map now, and the saved cells of the peak's */
    uint64_t *cell_chunks;   /* bit c of word w: cells [64 (64 w + c), +64) may not all be free */
    uint32_t *peak_epoch;
    uint32_t epoch;          /* bumped each time reserved_blocks reaches its peak */
    uint64_t peak_ns;        /* CLOCK_MONOTONIC when it last did (0 unless peak_times) */
    bool peak_times;
};

/* One reservation, in the slot or in the LMA. */
struct region {
    uint32_t block; /* its base block; NO_OWNER for the LMA */
    uintptr_t base;
    uint32_t npages;
    uint16_t *page;
    struct res_info *info;
};

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static bool is_pow2(size_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* ---- protections ---- */

static bool is_base_protection(DWORD p)
{
    switch (p) {
    case PAGE_NOACCESS: case PAGE_READONLY: case PAGE_READWRITE:
    case PAGE_EXECUTE: case PAGE_EXECUTE_READ: case PAGE_EXECUTE_READWRITE:
        return true;
    default:
        return false;
    }
}

/* CE's checks on a protection argument. */
static DWORD check_protection(DWORD prot)
{
    DWORD base = prot & ~(DWORD)PAGE_MODIFIERS;
    if (base == PAGE_WRITECOPY || base == PAGE_EXECUTE_WRITECOPY) {
        return ERROR_NOT_SUPPORTED;
    }
    if (!is_base_protection(base)) {
        return ERROR_INVALID_PARAMETER;
    }
    if (base == PAGE_NOACCESS && (prot & PAGE_MODIFIERS) != 0) {
        return ERROR_INVALID_PARAMETER;
    }
    return 0;
}

static int host_protection(DWORD prot)
{
    if (prot & PAGE_GUARD) {
        return OS_PROT_NONE;
    }
    switch (prot & ~(DWORD)PAGE_MODIFIERS) {
    case PAGE_READONLY: return OS_PROT_READ;
    case PAGE_READWRITE: return OS_PROT_READ | OS_PROT_WRITE;
    case PAGE_EXECUTE: case PAGE_EXECUTE_READ: return OS_PROT_READ | OS_PROT_EXEC;
    case PAGE_EXECUTE_READWRITE: return OS_PROT_READ | OS_PROT_WRITE | OS_PROT_EXEC;
    default: return OS_PROT_NONE;
    }
}

/* ---- creation ---- */

/* Cells per bit of cell_chunks. */
#define CELL_CHUNK 64u

static bool config_ok(const struct slot_config *c)
{
    return is_pow2(c->granularity) && is_pow2(c->page_size) && c->page_size == os_page_size() &&
           c->granularity >= c->page_size && c->size >= 2 * c->granularity &&
           c->size % c->granularity == 0 && c->size / c->granularity <= RUNINDEX_MAX_BLOCKS && c->ram != NULL;
}

static void publish_locked(struct slot *s);
static void publish_map_locked(struct slot *s);
static void publish_first_map_locked(struct slot *s);
static void committed_changed_locked(struct slot *s, const struct region *r, bool was_committed);

/* The time of a peak now, when the slot keeps them. */
static void time_peak(struct slot *s)
{
    if (s->peak_times) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->peak_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
}

/* The words of the cell chunks' bitmap. */
static size_t chunk_words(uint32_t nblocks)
{
    return ((size_t)nblocks + CELL_CHUNK * 64 - 1) / (CELL_CHUNK * 64);
}

/* The bookkeeping's bytes after struct slot (the layout above). */
static size_t bookkeeping_bytes(uint32_t nblocks, uint32_t pages_per_block)
{
    return align_up(chunk_words(nblocks) * sizeof(uint64_t), 16) + align_up(nblocks, 16) +
           align_up(nblocks * sizeof(struct block_rec), 16) +
           align_up((size_t)nblocks * pages_per_block * sizeof(uint16_t), 16) +
           align_up(runindex_bytes(nblocks), 16) + align_up(nblocks * sizeof(uint32_t), 16) +
           align_up(nblocks, 16);
}

static void lay_out_bookkeeping(struct slot *s, char *mem)
{
    size_t npages = (size_t)s->nblocks * s->pages_per_block;
    s->cell_chunks = (uint64_t *)mem; /* first: on the page of struct slot itself, which every call touches */
    mem += align_up(chunk_words(s->nblocks) * sizeof(uint64_t), 16);
    s->cell = mem;
    mem += align_up(s->nblocks, 16);
    s->blk = (struct block_rec *)mem;
    mem += align_up(s->nblocks * sizeof(struct block_rec), 16);
    s->page = (uint16_t *)mem;
    mem += align_up(npages * sizeof(uint16_t), 16);
    s->free = runindex_init(mem, s->nblocks); /* blk[] and peak_epoch[]: all 0 (NO_OWNER), as meta_alloc zeroes */
    mem += align_up(runindex_bytes(s->nblocks), 16);
    s->peak_epoch = (uint32_t *)mem;
    mem += align_up(s->nblocks * sizeof(uint32_t), 16);
    s->peak_cell = mem;
    s->cell[0] = '-'; /* the others free: 0, as meta_alloc zeroes */
    s->cell_chunks[0] = 1;
    /* Block 0's record and page words never change: written here all the
     * same (as what they hold, zero), so that their pages, which block 1's
     * (the image's) share, are mapped for writing at once; the image's
     * reservation reads them first, and a first read maps the zero page,
     * which its writes then fault out again. */
    s->blk[0] = (struct block_rec){.owner = NO_OWNER};
    s->page[0] = 0;
    s->epoch = 1;
    time_peak(s);
    /* Block 0 is never handed out: it is simply never free in the index. */
    runindex_set_used(s->free, 0, 1);
    s->min_largest_free_run = s->largest_free_run = runindex_longest(s->free);
}

/* Where a CE .NET device has a process slot: 32 MB apart from 0x02000000
 * (slot 1 holds the XIP DLLs, so processes start at slot 2), all below
 * 2 GB, so pointers fit in 31 bits as ported code may assume and
 * MAP_32BIT requests served in the slot hold.  The first free one from
 * slot 11 (0x16000000), a later process's: the lowest slots' addresses
 * are byte patterns libc's tables are full of (0x04040404, 0x06060601),
 * which the conservative leak scan would take for pointers into the slot
 * and call a lost block "possibly lost". */
#define DEVICE_SLOT_STRIDE ((uintptr_t)0x02000000)
#define DEVICE_SLOT_FIRST (11 * DEVICE_SLOT_STRIDE)
#define DEVICE_SPACE_END ((uintptr_t)0x80000000)

static int place_at_device_slot(size_t size, size_t align, void **base)
{
    uintptr_t step = align > DEVICE_SLOT_STRIDE ? align : DEVICE_SLOT_STRIDE;
    uintptr_t a = (DEVICE_SLOT_FIRST + step - 1) & ~(step - 1);
    for (; a < DEVICE_SPACE_END && size <= DEVICE_SPACE_END - a; a += step) {
        if (os_reserve_at((void *)a, size) == 0) {
            *base = (void *)a;
            return 0;
        }
    }
    return -1;
}

/* The slot's range: a device's when free, else anywhere aligned to its own
 * size (rounded up to a power of two), like a CE slot: first just under
 * `below`, the slot's bookkeeping mapped a moment before. */
static int place_slot(const struct slot_config *cfg, const void *below, void **base)
{
    size_t align = cfg->granularity;
    while (align < cfg->size) {
        align <<= 1;
    }
    if (place_at_device_slot(cfg->size, align, base) == 0) {
        return 0;
    }
    return os_reserve_aligned_below(below, cfg->size, align, base);
}

DWORD slot_create(const struct slot_config *cfg, struct slot **out)
{
    if (!config_ok(cfg)) {
        return ERROR_INVALID_PARAMETER;
    }
    uint32_t nblocks = (uint32_t)(cfg->size / cfg->granularity);
    uint32_t ppb = (uint32_t)(cfg->granularity / cfg->page_size);
    size_t meta = align_up(align_up(sizeof(struct slot), 16) + bookkeeping_bytes(nblocks, ppb), cfg->page_size);
    char *mem = meta_alloc(meta);
    if (mem == NULL) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    /* Its pages are faulted in as used, whatever the slot's size: a start
     * touches five of a 32 MB slot's thirteen (the free-run index reads no
     * page it has not written), and populating all of them at once cost
     * more than the faults (as much per page as a fault, on a VM). */
    struct slot *s = (struct slot *)mem;
    void *base;
    if (place_slot(cfg, mem, &base) != 0) {
        meta_free(mem, meta);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->base = (uintptr_t)base;
    s->size = cfg->size;
    s->gran = cfg->granularity;
    s->page_size = cfg->page_size;
    s->nblocks = nblocks;
    s->pages_per_block = ppb;
    s->lma_enabled = cfg->large_memory_area;
    s->lma_min = cfg->lma_min;
    s->release_mixed = cfg->release_mixed;
    s->top_down = cfg->honour_top_down;
    s->alloc_prot_error_87 = cfg->alloc_prot_error_is_invalid;
    s->ce3_checks = cfg->ce3_vm_checks;
    s->commit_ahead = cfg->commit_ahead;
    s->peak_times = cfg->peak_times;
    s->ram = cfg->ram;
    s->meta_bytes = meta;
    lay_out_bookkeeping(s, mem + align_up(sizeof(struct slot), 16));
    publish_locked(s); /* the timeline never sees a slot before its first figures */
    publish_first_map_locked(s);
    *out = s;
    return 0;
}

void slot_destroy(struct slot *s)
{
    if (s == NULL) {
        return;
    }
    ram_credit(s->ram, s->committed_pages);
    os_release((void *)s->base, s->size);
    for (struct lma_res *l = s->lma_list, *next; l != NULL; l = next) {
        next = l->next;
        os_release((void *)l->base, (size_t)l->info.pages * s->page_size);
        meta_free(l, l->map_bytes);
    }
    pthread_mutex_destroy(&s->lock);
    meta_free(s, s->meta_bytes);
}

/* ---- finding regions ---- */

bool slot_contains(const struct slot *s, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return a >= s->base && a - s->base < s->size;
}

static uint32_t block_of(const struct slot *s, uintptr_t a)
{
    return (uint32_t)((a - s->base) / s->gran);
}

static struct region slot_region(struct slot *s, uint32_t base_block)
{
    struct region r = {
        .block = base_block,
        .base = s->base + (uintptr_t)base_block * s->gran,
        .npages = s->blk[base_block].res.pages,
        .page = &s->page[(size_t)base_block * s->pages_per_block],
        .info = &s->blk[base_block].res,
    };
    return r;
}

static struct region lma_region(struct lma_res *l)
{
    struct region r = {.block = NO_OWNER, .base = l->base, .npages = l->info.pages, .page = l->page, .info = &l->info};
    return r;
}

static struct lma_res *find_lma(struct slot *s, uintptr_t a, struct lma_res ***link)
{
    struct lma_res **pp = &s->lma_list;
    for (; *pp != NULL; pp = &(*pp)->next) {
        struct lma_res *l = *pp;
        if (a >= l->base && a - l->base < (size_t)l->info.pages * s->page_size) {
            if (link != NULL) {
                *link = pp;
            }
            return l;
        }
    }
    return NULL;
}

/* The reservation holding address a, if any. */
static bool find_region(struct slot *s, uintptr_t a, struct region *out)
{
    if (slot_contains(s, (void *)a)) {
        uint32_t owner = s->blk[block_of(s, a)].owner;
        if (owner == NO_OWNER) {
            return false;
        }
        *out = slot_region(s, owner);
        return a - out->base < (size_t)out->npages * s->page_size;
    }
    struct lma_res *l = find_lma(s, a, NULL);
    if (l == NULL) {
        return false;
    }
    *out = lma_region(l);
    return true;
}

/* ---- page operations on one region (lock held) ---- */

static enum kind kind_of_tag(uint8_t tag)
{
    switch (tag) {
    case SLOT_TAG_HEAP_REGION: case SLOT_TAG_HEAP_LARGE: return KIND_HEAP;
    case SLOT_TAG_IMAGE: case SLOT_TAG_DLL: return KIND_IMAGE;
    case SLOT_TAG_STACK: return KIND_STACK;
    default: return KIND_MAPPED;
    }
}

static void note_committed_locked(struct slot *s, const struct region *r, size_t added)
{
    s->committed_pages += added;
    s->kind_pages[kind_of_tag(r->info->tag)] += added;
    if (s->committed_pages > s->peak_committed_pages) {
        s->peak_committed_pages = s->committed_pages;
        memcpy(s->kind_at_peak, s->kind_pages, sizeof s->kind_at_peak);
    }
}

/* A page of a reservation is in exactly one state, reserved or committed;
 * only a reserved page is read ahead. */
static bool page_state_valid(uint16_t word)
{
    uint16_t state = word & PG_STATE_MASK;
    return state == PG_COMMITTED ? (word & PG_AHEAD) == 0 : state == PG_RESERVED;
}

/* The committed pages of r, counted from the page array (for checks; only
 * debug builds call it). */
__attribute__((unused)) static uint32_t count_committed(const struct region *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->npages; i++) {
        n += (r->page[i] & PG_COMMITTED) != 0;
    }
    return n;
}

/* The reservation's committed count is its pages' states, and the slot's
 * total covers it.  A scan of the region: debug builds only. */
static void check_region_counts(const struct slot *s, const struct region *r)
{
    DEBUG_INVARIANT(count_committed(r) == r->info->committed,
                    "a reservation's committed count equals its committed pages");
    INVARIANT(r->info->committed <= r->npages && r->info->committed <= s->committed_pages,
              "a reservation's committed pages are at most its pages and counted in the slot's");
    (void)s;
}

/* Gives the blocks holding pages [first, first+count) of r a MEMBLOCK, as
 * CE's ScanRegion does for each block a commit reaches.  Region bases are
 * block-aligned, so blocks are runs of pages_per_block from the base. */
static void mark_memblocks(const struct slot *s, struct region *r, uint32_t first, uint32_t count)
{
    uint32_t ppb = s->pages_per_block;
    uint32_t end = (first + count + ppb - 1) / ppb * ppb;
    if (end > r->npages) {
        end = r->npages;
    }
    for (uint32_t i = first / ppb * ppb; i < end; i++) {
        r->page[i] |= PG_MEMBLOCK;
    }
}

/* The stale pages of [first, first+count) of r, unmarked and uncounted. */
static uint32_t unmark_stale_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count)
{
    uint32_t n = 0;
    for (uint32_t i = first; i < first + count; i++) {
        n += (r->page[i] & PG_STALE) != 0;
        r->page[i] &= (uint16_t)~PG_STALE;
    }
    INVARIANT(n <= s->stale_pages, "stale pages are counted");
    s->stale_pages -= n;
    return n;
}

/* Hands the memory of the range's stale pages back to the host (which
 * shows zeros there afterwards). */
static void discard_stale_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count)
{
    if (unmark_stale_locked(s, r, first, count) != 0) {
        (void)os_discard((void *)(r->base + (uintptr_t)first * s->page_size),
                         (size_t)count * s->page_size);
    }
}

/* Only a stale page in memory is worth keeping: one never touched holds
 * no memory, and zeroing it by hand would fault it in; one swapped out
 * would come back with its contents.  Such pages are discarded (one call
 * per run of them) and unmarked.  A failed mincore discards the lot.
 * One mincore asks about up to 512 pages (a 512-byte vector on the
 * stack): the decommits that keep stale pages are mostly a program's
 * munmap of its 1 MB arenas (python's) and the release of large items,
 * which 128 pages took two or more calls for. */
#define RESIDENT_CHUNK 512u
static void drop_cold_stale_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count)
{
    unsigned char vec[RESIDENT_CHUNK];
    for (uint32_t at = first; at < first + count; at += RESIDENT_CHUNK) {
        uint32_t n = first + count - at < RESIDENT_CHUNK ? first + count - at : RESIDENT_CHUNK;
        if (os_resident((void *)(r->base + (uintptr_t)at * s->page_size), (size_t)n * s->page_size,
                        vec) != 0) {
            discard_stale_locked(s, r, at, n);
            continue;
        }
        for (uint32_t i = 0; i < n;) {
            if ((r->page[at + i] & PG_STALE) == 0 || (vec[i] & 1) != 0) {
                i++;
                continue;
            }
            uint32_t run = i;
            while (run < n && (r->page[at + run] & PG_STALE) != 0 && (vec[run] & 1) == 0) {
                run++;
            }
            discard_stale_locked(s, r, at + i, run - i);
            i = run;
        }
    }
}

/* ---- the host's protection of a region's pages (lock held) ----
 *
 * The host maps a committed page with its protection, a read-ahead page
 * (PG_AHEAD) read/write and every other page inaccessible; a commit or
 * decommit makes a host call only where that changes. */

static int host_now(uint16_t word)
{
    if (word & PG_COMMITTED) {
        return host_protection(word & PG_PROT_MASK);
    }
    return (word & PG_AHEAD) ? OS_PROT_READ | OS_PROT_WRITE : OS_PROT_NONE;
}

/* The end of r's pages on the host: a slot reservation's last block may
 * hold unusable pages past its usable ones (their words follow the
 * region's in the slot's page array, and no other reservation has them). */
static uint32_t block_end(const struct slot *s, const struct region *r)
{
    if (!slot_contains(s, (void *)r->base)) {
        return r->npages;
    }
    uint32_t ppb = s->pages_per_block;
    return (r->npages + ppb - 1) / ppb * ppb;
}

/* Whether a read/write commit of r's pages may read ahead: a heap
 * region's always (a heap commits a region's pages in order as it grows),
 * a heap's large item's only when the heap grows it (slot_commit_growth:
 * in place, or the tail of its move): most large items are never grown,
 * and read-ahead pages would only cost their release a discard. */
static bool reads_ahead(const struct region *r, bool growth)
{
    enum slot_tag tag = (enum slot_tag)r->info->tag;
    return tag == SLOT_TAG_HEAP_REGION || (growth && tag == SLOT_TAG_HEAP_LARGE);
}

/* Where the host call of a commit of pages up to `end` of r with prot may
 * stop: end, or for a commit that reads ahead (reads_ahead) with
 * read-ahead on, past the next commit_ahead pages that are still
 * reserved, and at the end of the last block once that reaches the last
 * usable page, so that full regions side by side make one host mapping.
 * The reservation's next commits find their pages mapped already.  A
 * read-ahead that would leave fewer than commit_ahead pages before the
 * reservation's end takes them too: a CE 5 region (47 pages) then opens
 * with its first commit, one host call where it took two. */
static uint32_t ahead_end(const struct slot *s, const struct region *r, uint32_t end, DWORD prot,
                          bool growth)
{
    if (s->commit_ahead == 0 || prot != PAGE_READWRITE || !reads_ahead(r, growth)) {
        return end;
    }
    uint32_t stop = (uint64_t)(r->npages - end) < 2 * (uint64_t)s->commit_ahead ? r->npages : end + s->commit_ahead;
    uint32_t at = end;
    while (at < stop && (r->page[at] & (PG_STATE_MASK | PG_UNMAPPED)) == PG_RESERVED) {
        at++;
    }
    return at == r->npages ? block_end(s, r) : at;
}

/* The end of the run of read-ahead pages of r from page `from` (`from`
 * itself when it is not read ahead). */
static uint32_t ahead_run_end(const struct slot *s, const struct region *r, uint32_t from)
{
    uint32_t end = block_end(s, r), at = from;
    while (at < end && (r->page[at] & PG_AHEAD) != 0) {
        at++;
    }
    return at;
}

/* Makes the host pages [first, end) of r inaccessible (one call; none when
 * they are already) and ends their read-ahead.  A read-ahead page is
 * discarded as well: nothing was committed in it since it was opened, so
 * only a stray write can have left bytes there, which a later commit of
 * the page must not show. */
static void close_host_pages_locked(struct slot *s, struct region *r, uint32_t first, uint32_t end)
{
    bool open = false;
    for (uint32_t i = first; i < end && !open; i++) {
        open = host_now(r->page[i]) != OS_PROT_NONE;
    }
    if (!open) {
        return;
    }
    (void)os_protect((void *)(r->base + (uintptr_t)first * s->page_size),
                     (size_t)(end - first) * s->page_size, OS_PROT_NONE);
    for (uint32_t i = first; i < end;) {
        if ((r->page[i] & PG_AHEAD) == 0) {
            i++;
            continue;
        }
        uint32_t run = i;
        while (run < end && (r->page[run] & PG_AHEAD) != 0) {
            r->page[run++] &= (uint16_t)~PG_AHEAD;
        }
        unmark_stale_locked(s, r, i, run - i);
        (void)os_discard((void *)(r->base + (uintptr_t)i * s->page_size), (size_t)(run - i) * s->page_size);
        i = run;
    }
}

/* Zeroes the stale pages of a range the host now maps writable. */
static void zero_stale_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count)
{
    for (uint32_t i = first; i < first + count; i++) {
        if (r->page[i] & PG_STALE) {
            memset((void *)(r->base + (uintptr_t)i * s->page_size), 0, s->page_size);
        }
    }
    unmark_stale_locked(s, r, first, count);
}

/* Charges `pages` of device RAM; when RAM or the memory state refuses,
 * counts and notes why (for entry_fail) and returns false. */
static bool charge_locked(struct slot *s, uint32_t pages)
{
    enum ram_result rr = ram_charge(s->ram, pages);
    if (rr == RAM_OK) {
        return true;
    }
    if (rr == RAM_STATE_CAP) {
        s->fail_cap++;
        entry_note_reason(LOG_REASON_STATE_CAP);
        entry_note_state(ram_state_after(s->ram, pages));
    } else {
        s->fail_ram++;
        entry_note_reason(LOG_REASON_RAM);
    }
    return false;
}

/* How a commit is made: COMMIT_GROWTH when a heap grows a large item (see
 * reads_ahead); COMMIT_PAID when the caller has charged RAM for the
 * range's uncommitted pages already. */
enum { COMMIT_GROWTH = 1, COMMIT_PAID = 2 };

/* Commits [first, first+count) of r with prot, made as `how` says.  Only
 * pages not committed yet are charged to RAM, so a committed page holds
 * exactly one page of RAM however often it is committed again (which only
 * sets its protection). */
static DWORD commit_pages_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count,
                                 DWORD prot, unsigned how)
{
    bool growth = (how & COMMIT_GROWTH) != 0;
    int host = host_protection(prot);
    uint32_t fresh = 0, remapped = 0, changed = 0;
    for (uint32_t i = first; i < first + count; i++) {
        INVARIANT(page_state_valid(r->page[i]), "a page being committed is reserved or committed");
        fresh += (r->page[i] & PG_COMMITTED) == 0;
        remapped += (r->page[i] & PG_UNMAPPED) != 0;
        changed += host_now(r->page[i]) != host;
    }
    INVARIANT(r->info->committed + fresh <= r->npages && remapped <= r->info->unmapped,
              "a commit adds only the region's uncommitted pages");
    INVARIANT((how & COMMIT_PAID) == 0 || fresh == count, "a paid commit's pages are all uncommitted");
    if (fresh > 0 && (how & COMMIT_PAID) == 0 && !charge_locked(s, fresh)) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    void *addr = (void *)(r->base + (uintptr_t)first * s->page_size);
    uint32_t end = first + count, host_end = changed != 0 ? ahead_end(s, r, end, prot, growth) : end;
    bool zero_by_hand = host == (OS_PROT_READ | OS_PROT_WRITE);
    if (!zero_by_hand) {
        discard_stale_locked(s, r, first, count); /* zeroed by the host instead */
    }
    if (changed != 0 && os_protect(addr, (size_t)(host_end - first) * s->page_size, host) != 0) {
        ram_credit(s->ram, fresh);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    if (zero_by_hand) {
        zero_stale_locked(s, r, first, count); /* a read-ahead page too: it may have been stale */
    }
    for (uint32_t i = first; i < end; i++) {
        r->page[i] = (uint16_t)(PG_COMMITTED | (prot & PG_PROT_MASK));
    }
    for (uint32_t i = end; i < host_end; i++) {
        r->page[i] |= PG_AHEAD; /* still reserved: only the host maps it */
    }
    mark_memblocks(s, r, first, count);
    bool was_committed = r->info->committed != 0;
    r->info->committed += fresh;
    r->info->unmapped -= remapped;
    note_committed_locked(s, r, fresh);
    committed_changed_locked(s, r, was_committed);
    check_region_counts(s, r);
    return 0;
}

static DWORD commit_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count,
                           DWORD prot)
{
    return commit_pages_locked(s, r, first, count, prot, 0);
}

/* Where a decommit of r's pages up to `end` closes the host's: end, or
 * past the read-ahead pages that follow when that is the region's end
 * (its last block's unusable pages) or r is a heap's large item (one that
 * shrinks or is freed is not growing into them, and its release then
 * makes no host call). */
static uint32_t close_end(const struct slot *s, const struct region *r, uint32_t end)
{
    return end == r->npages || r->info->tag == SLOT_TAG_HEAP_LARGE ? ahead_run_end(s, r, end) : end;
}

static void decommit_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count)
{
    /* Inaccessible at once (with the read-ahead close_end takes along);
     * the memory stays with its mapping (no fault when the page is
     * committed again, no new mapping beside the old ones) unless that
     * would keep more than STALE_PAGES_MAX pages. */
    uint32_t end = first + count;
    close_host_pages_locked(s, r, first, close_end(s, r, end));
    uint32_t dropped = 0;
    for (uint32_t i = first; i < end; i++) {
        INVARIANT(page_state_valid(r->page[i]), "a page being decommitted is reserved or committed");
        bool was_committed = (r->page[i] & PG_COMMITTED) != 0;
        dropped += was_committed;
        r->page[i] = (uint16_t)(PG_RESERVED | (r->page[i] & PG_BOOKKEEPING) | (was_committed ? PG_STALE : 0));
    }
    if (dropped == 0) {
        return;
    }
    INVARIANT(dropped <= r->info->committed && dropped <= s->committed_pages,
              "a decommit gives back only pages that were counted committed");
    s->stale_pages += dropped;
    if (s->stale_pages > STALE_PAGES_MAX) {
        discard_stale_locked(s, r, first, count);
    } else {
        drop_cold_stale_locked(s, r, first, count);
    }
    r->info->committed -= dropped;
    s->committed_pages -= dropped;
    s->kind_pages[kind_of_tag(r->info->tag)] -= dropped;
    committed_changed_locked(s, r, true);
    ram_credit(s->ram, dropped);
    check_region_counts(s, r);
}

/* Page range [first, first+count) of region r covering [a, a+size), or false
 * when the range leaves the region. */
static bool pages_in_region(const struct slot *s, const struct region *r, uintptr_t a, size_t size,
                            uint32_t *first, uint32_t *count)
{
    uintptr_t start = a & ~(uintptr_t)(s->page_size - 1);
    if (size > SIZE_MAX - a) {
        return false;
    }
    uintptr_t end = align_up(a + size, s->page_size);
    if (start < r->base || end > r->base + (size_t)r->npages * s->page_size || end <= start) {
        return false;
    }
    *first = (uint32_t)((start - r->base) / s->page_size);
    *count = (uint32_t)((end - start) / s->page_size);
    return true;
}

/* ---- reservations (lock held) ---- */

/* The pages of a new reservation: all reserved; the first block has a
 * MEMBLOCK (CE's head block), and so has a partial last block when
 * `partial_tail` (VirtualAlloc gives it one to mark the pages past the end). */
static void init_reserved_pages(const struct slot *s, struct region *r, bool partial_tail)
{
    for (uint32_t i = 0; i < r->npages; i++) {
        INVARIANT((r->page[i] & PG_AHEAD) == 0, "a free page is inaccessible to the host");
        r->page[i] = (uint16_t)(PG_RESERVED | (r->page[i] & PG_STALE)); /* free pages keep PG_STALE */
    }
    mark_memblocks(s, r, 0, 1);
    if (partial_tail && r->npages % s->pages_per_block != 0) {
        mark_memblocks(s, r, r->npages - 1, 1);
    }
}

/* MEM_IMAGE and MEM_MAPPED choose the pager, as in CE's VirtualAlloc (both
 * together are refused earlier). */
static uint8_t pager_of(DWORD type)
{
    return (type & MEM_IMAGE) ? PAGER_LOADER : (type & MEM_MAPPED) ? PAGER_MAPPER : PAGER_NONE;
}

/* The timeline's slot figures (ram.h), after each claim and release: the
 * longest run is the run index's root, so this is a few loads and stores. */
static void publish_locked(struct slot *s)
{
    uint32_t longest = runindex_longest(s->free);
    if (longest < s->min_largest_free_run) {
        __atomic_store_n(&s->min_largest_free_run, longest, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&s->largest_free_run, longest, __ATOMIC_RELAXED); /* read by slot_free_runs */
    ram_publish_slot(s->ram, s->reserved_blocks, longest, s->peak_reserved_blocks, s->min_largest_free_run);
}

/* ---- the slot map's cells (lock held) ---- */

/* Blocks of the reservation based at block `first`. */
static uint32_t res_blocks(const struct slot *s, uint32_t first)
{
    return (uint32_t)(align_up((size_t)s->blk[first].res.pages * s->page_size, s->gran) / s->gran);
}

/* The map's letter of a reservation (LOG-FORMAT.md): what owns it. */
static char reservation_letter(const struct res_info *info)
{
    switch (info->tag) {
    case SLOT_TAG_HEAP_REGION: return 'H';
    case SLOT_TAG_HEAP_LARGE: return 'L';
    case SLOT_TAG_IMAGE: return 'E';
    case SLOT_TAG_DLL: return 'D';
    case SLOT_TAG_STACK: return 'S';
    default: return info->committed != 0 ? 'C' : 'R';
    }
}

/* A map cell as kept (0 for a free block) and as read ('.'). */
static char kept_cell(char c)
{
    return c == '.' ? RAM_MAP_FREE : c;
}

static char read_cell(char kept)
{
    return kept == RAM_MAP_FREE ? '.' : kept;
}

/* A block's new cell; the first change of a block while the slot is below
 * its peak keeps the old cell for the peak's map. */
static void set_cell_locked(struct slot *s, uint32_t b, char shown)
{
    char c = kept_cell(shown);
    if (s->cell[b] == c) {
        return;
    }
    if (s->reserved_blocks < s->peak_reserved_blocks && s->peak_epoch[b] != s->epoch) {
        s->peak_cell[b] = s->cell[b];
        s->peak_epoch[b] = s->epoch;
    }
    s->cell[b] = c;
    if (c != RAM_MAP_FREE) {
        s->cell_chunks[b / CELL_CHUNK / 64] |= (uint64_t)1 << (b / CELL_CHUNK % 64);
    }
    ram_map_set(s->ram, b, c);
}

/* The cells of the reservation at `first` from its tag and committed
 * count (a capital for its first block), or free cells for nblocks. */
static void refresh_cells_locked(struct slot *s, uint32_t first, uint32_t nblocks, bool reserved)
{
    char c = '.';
    if (reserved) {
        c = reservation_letter(&s->blk[first].res);
        nblocks = res_blocks(s, first);
    }
    ram_map_begin(s->ram);
    for (uint32_t b = first; b < first + nblocks; b++) {
        set_cell_locked(s, b, b == first || c == '.' ? c : (char)(c | 0x20));
    }
    ram_map_end(s->ram);
}

/* A commit or decommit that took a plain reservation's count from or to 0
 * turns its cells between R and C (base_block: NO_OWNER for the LMA). */
static void committed_changed_locked(struct slot *s, const struct region *r, bool was_committed)
{
    if (r->block != NO_OWNER && was_committed != (r->info->committed != 0) &&
        r->info->tag == SLOT_TAG_VIRTUAL) {
        refresh_cells_locked(s, r->block, 0, true);
    }
}

/* The slot reached its peak of reserved blocks (again): the map now is the
 * peak's, and so are the changes made while it stays there. */
static void note_peak_locked(struct slot *s)
{
    s->peak_reserved_blocks = s->reserved_blocks;
    if (++s->epoch == 0) { /* after 2^32 peaks: the saved epochs could match again */
        memset(s->peak_epoch, 0, s->nblocks * sizeof *s->peak_epoch);
        s->epoch = 1;
    }
    time_peak(s);
}

/* The cells of one chunk that are not free into the session's map. */
static void publish_chunk_locked(struct slot *s, uint32_t first)
{
    uint32_t end = s->nblocks - first < CELL_CHUNK ? s->nblocks : first + CELL_CHUNK;
    for (uint32_t b = first; b < end; b++) {
        if (s->cell[b] != RAM_MAP_FREE) {
            ram_map_set(s->ram, b, s->cell[b]);
        }
    }
}

/* The whole map into this member's row of the session (a forked child's
 * new row): its blocks that are not free, the row's map being all free
 * when the member takes it (ram.h); only the chunks that ever held a cell
 * that is not free are read. */
static void publish_map_locked(struct slot *s)
{
    ram_map_begin(s->ram);
    ram_map_blocks(s->ram, s->nblocks); /* first: the row's extent of cells to clear, should it die now */
    for (size_t w = 0; w < chunk_words(s->nblocks); w++) {
        for (uint64_t bits = s->cell_chunks[w]; bits != 0; bits &= bits - 1) {
            publish_chunk_locked(s, (uint32_t)((w * 64 + (size_t)__builtin_ctzll(bits)) * CELL_CHUNK));
        }
    }
    ram_map_end(s->ram);
}

/* The map of a new slot into the session: block 0 alone is not free. */
static void publish_first_map_locked(struct slot *s)
{
    ram_map_begin(s->ram);
    ram_map_blocks(s->ram, s->nblocks);
    ram_map_set(s->ram, 0, s->cell[0]);
    ram_map_end(s->ram);
}

static void claim_blocks_locked(struct slot *s, uint32_t first, uint32_t nblocks, uint32_t npages,
                                DWORD type)
{
    for (uint32_t b = first; b < first + nblocks; b++) {
        s->blk[b].owner = first;
    }
    s->blk[first].res = (struct res_info){.pages = npages, .tag = SLOT_TAG_VIRTUAL, .pager = pager_of(type)};
    struct region r = slot_region(s, first);
    init_reserved_pages(s, &r, true);
    runindex_set_used(s->free, first, nblocks);
    s->reserved_blocks += nblocks;
    if (s->reserved_blocks >= s->peak_reserved_blocks) {
        note_peak_locked(s);
    }
    refresh_cells_locked(s, first, nblocks, true);
    publish_locked(s);
}

static void release_blocks_locked(struct slot *s, uint32_t first)
{
    struct region r = slot_region(s, first);
    uint32_t nblocks = res_blocks(s, first);
    decommit_locked(s, &r, 0, r.npages);
    INVARIANT(r.info->committed == 0, "a released reservation holds no committed page");
    for (uint32_t b = first; b < first + nblocks; b++) {
        s->blk[b].owner = NO_OWNER;
    }
    for (uint32_t i = 0; i < r.npages; i++) {
        r.page[i] &= PG_STALE; /* free, its memory still kept (see decommit_locked) */
    }
    s->blk[first].res = (struct res_info){0};
    runindex_set_free(s->free, first, nblocks);
    s->reserved_blocks -= nblocks;
    refresh_cells_locked(s, first, nblocks, false);
    publish_locked(s);
}

static DWORD reserve_lma_locked(struct slot *s, size_t size, uintptr_t *out)
{
    size_t pages = align_up(size, s->page_size) / s->page_size;
    if (pages > UINT32_MAX) {
        return ERROR_OUTOFMEMORY; /* beyond the page array's index (and any host) */
    }
    uint32_t npages = (uint32_t)pages;
    size_t map_bytes = sizeof(struct lma_res) + npages * sizeof(uint16_t);
    struct lma_res *l = meta_alloc(map_bytes);
    void *base;
    if (l == NULL) {
        return ERROR_OUTOFMEMORY;
    }
    if (os_reserve_aligned((size_t)npages * s->page_size, s->gran, &base) != 0) {
        meta_free(l, map_bytes);
        return ERROR_OUTOFMEMORY;
    }
    l->base = (uintptr_t)base;
    l->map_bytes = map_bytes;
    /* The mapper's regions have its pager.  A MEMBLOCK only in the first
     * block: the head of the 32 MB mapper section a reservation opens (the
     * sections themselves are not modelled). */
    l->info = (struct res_info){.pages = npages, .tag = SLOT_TAG_VIRTUAL, .pager = PAGER_MAPPER};
    struct region r = lma_region(l);
    init_reserved_pages(s, &r, false);
    l->next = s->lma_list;
    s->lma_list = l;
    s->lma_bytes += (size_t)npages * s->page_size;
    *out = l->base;
    return 0;
}

static void release_lma_locked(struct slot *s, struct lma_res *l, struct lma_res **link)
{
    struct region r = lma_region(l);
    decommit_locked(s, &r, 0, r.npages);
    INVARIANT(l->info.committed == 0, "a released reservation holds no committed page");
    unmark_stale_locked(s, &r, 0, r.npages); /* unmapped below with the rest */
    *link = l->next;
    s->lma_bytes -= (size_t)l->info.pages * s->page_size;
    os_release((void *)l->base, (size_t)l->info.pages * s->page_size);
    meta_free(l, l->map_bytes);
}

/* CE 4.2/5 strip MEM_TOP_DOWN before the kernel sees it, so it never keeps
 * a request from the Large Memory Area; CE 3.0 honours it and tests it
 * first: a top-down request stays in the slot (VIRTMEM.C SC_VirtualAlloc). */
static bool wants_lma(const struct slot *s, uintptr_t addr, size_t size, DWORD type, DWORD prot)
{
    bool top_down = (type & MEM_TOP_DOWN) && s->top_down;
    return s->lma_enabled && addr == 0 && !top_down && (type & ~(DWORD)MEM_TOP_DOWN) == MEM_RESERVE &&
           prot == PAGE_NOACCESS && align_up(size, s->page_size) >= s->lma_min;
}

/* Finds and claims blocks for a new reservation of `size` bytes at `addr`
 * (0: anywhere).  Stores the base address. */
static DWORD reserve_locked(struct slot *s, uintptr_t addr, size_t size, DWORD type, uintptr_t *out)
{
    uint32_t first;
    size_t span;
    if (addr == 0) {
        span = align_up(size, s->page_size);
        uint32_t nblocks = (uint32_t)(align_up(span, s->gran) / s->gran);
        bool down = (type & MEM_TOP_DOWN) && s->top_down;
        first = down ? runindex_last_fit(s->free, nblocks) : runindex_first_fit(s->free, nblocks);
        if (first == UINT32_MAX) {
            /* Enough free blocks in total but no run: fragmentation. */
            uint32_t free_blocks = s->nblocks - 1 - s->reserved_blocks;
            if (free_blocks >= nblocks) {
                s->fail_fragmented++;
                entry_note_reason(LOG_REASON_FRAGMENTED);
            } else {
                s->fail_exhausted++;
                entry_note_reason(LOG_REASON_EXHAUSTED);
            }
            return ERROR_NOT_ENOUGH_MEMORY;
        }
    } else {
        uintptr_t base = addr & ~(uintptr_t)(s->gran - 1);
        if (!slot_contains(s, (void *)base)) {
            return ERROR_INVALID_PARAMETER;
        }
        if (size > s->size) {
            entry_note_reason(LOG_REASON_TOO_LARGE);
            return ERROR_INVALID_PARAMETER;
        }
        span = align_up(addr + size, s->page_size) - base;
        if (span > s->base + s->size - base) {
            return ERROR_INVALID_PARAMETER;
        }
        first = block_of(s, base);
        uint32_t nblocks = (uint32_t)(align_up(span, s->gran) / s->gran);
        for (uint32_t b = first; b < first + nblocks; b++) {
            if (b == 0 || s->blk[b].owner != NO_OWNER) {
                return ERROR_INVALID_PARAMETER;
            }
        }
    }
    claim_blocks_locked(s, first, (uint32_t)(align_up(span, s->gran) / s->gran),
                        (uint32_t)(span / s->page_size), type);
    *out = s->base + (uintptr_t)first * s->gran;
    return 0;
}

/* The slot-size limit, which only a Large Memory Area request escapes: CE
 * 4.2/5 refuse the slot's size and more with 87; CE 3.0 only more, and a
 * request of exactly the slot's size then finds no run of blocks (block 0
 * is never free): ERROR_NOT_ENOUGH_MEMORY. */
static DWORD check_size_limit(const struct slot *s, uintptr_t addr, size_t size, DWORD type, DWORD prot)
{
    if (size < s->size || wants_lma(s, addr, size, type, prot)) {
        return 0;
    }
    entry_note_reason(LOG_REASON_TOO_LARGE);
    return s->ce3_checks && size == s->size ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_PARAMETER;
}

/* Check order: size 0, then the slot-size limit and the protection (CE
 * 4.2/5 test the limit first, CE 3.0 the protection).  Unknown type bits are
 * ignored, as the kernel does. */
static DWORD check_alloc_args(const struct slot *s, uintptr_t addr, size_t size, DWORD type,
                              DWORD prot)
{
    if (size == 0) {
        return ERROR_INVALID_PARAMETER;
    }
    DWORD err = s->ce3_checks ? 0 : check_size_limit(s, addr, size, type, prot);
    if (err != 0) {
        return err;
    }
    err = check_protection(prot);
    if (err != 0) {
        return s->alloc_prot_error_87 ? ERROR_INVALID_PARAMETER : err;
    }
    err = s->ce3_checks ? check_size_limit(s, addr, size, type, prot) : 0;
    if (err != 0) {
        return err;
    }
    if ((type & (MEM_MAPPED | MEM_IMAGE)) == (MEM_MAPPED | MEM_IMAGE)) {
        return ERROR_INVALID_PARAMETER;
    }
    if ((type & MEM_AUTO_COMMIT) && !s->auto_commit) {
        return ERROR_NOT_SUPPORTED; /* commit-on-touch needs the fault handler (slot_touch) */
    }
    return 0;
}

static DWORD commit_at_locked(struct slot *s, uintptr_t addr, size_t size, DWORD prot, bool growth,
                              void **out)
{
    struct region r;
    uint32_t first, count;
    if (addr == 0 || !find_region(s, addr, &r) || !pages_in_region(s, &r, addr, size, &first, &count)) {
        return ERROR_INVALID_PARAMETER;
    }
    DWORD err = commit_pages_locked(s, &r, first, count, prot, growth ? COMMIT_GROWTH : 0);
    if (err == 0) {
        *out = (void *)(r.base + (uintptr_t)first * s->page_size);
    }
    return err;
}

static void undo_reservation_locked(struct slot *s, uintptr_t base)
{
    if (slot_contains(s, (void *)base)) {
        release_blocks_locked(s, block_of(s, base));
        return;
    }
    struct lma_res **link = NULL;
    struct lma_res *l = find_lma(s, base, &link);
    if (l != NULL) {
        release_lma_locked(s, l, link);
    }
}

DWORD slot_virtual_alloc(struct slot *s, void *addr, size_t size, DWORD type, DWORD prot, void **out)
{
    uintptr_t a = (uintptr_t)addr, base = 0;
    /* The slot's base is "no address" to a reserve: CE 5 looks at the
     * address's slot-0 alias, CE 3.0 at its bits inside the section, and
     * both are 0 there.  A commit alone still names that address. */
    uintptr_t where = a == s->base ? 0 : a;
    DWORD err = check_alloc_args(s, where, size, type, prot);
    if (err != 0) {
        return err;
    }
    /* A commit without an address is a reserve and commit. */
    bool reserve = (type & MEM_RESERVE) || (a == 0 && (type & MEM_COMMIT));
    if (!reserve && !(type & MEM_COMMIT)) {
        return ERROR_INVALID_PARAMETER;
    }
    pthread_mutex_lock(&s->lock);
    if (!reserve) {
        err = commit_at_locked(s, a, size, prot, false, out);
        pthread_mutex_unlock(&s->lock);
        return err;
    }
    if (wants_lma(s, where, size, type, prot)) {
        err = reserve_lma_locked(s, size, &base);
    } else {
        err = reserve_locked(s, where, size, type, &base);
    }
    if (err == 0 && (type & MEM_AUTO_COMMIT) && slot_contains(s, (void *)base)) {
        s->blk[block_of(s, base)].res.auto_commit = 1;
    }
    if (err == 0 && (type & MEM_COMMIT)) {
        /* The commit covers every page of the new reservation, from its
         * 64 KB-aligned base, whatever address the caller gave. */
        void *committed;
        struct region r;
        find_region(s, base, &r);
        err = commit_at_locked(s, base, (size_t)r.npages * s->page_size, prot, false, &committed);
        if (err != 0) {
            undo_reservation_locked(s, base);
        }
    }
    if (err == 0) {
        *out = (void *)base;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

DWORD slot_commit_growth(struct slot *s, void *addr, size_t size)
{
    DWORD err = check_alloc_args(s, (uintptr_t)addr, size, MEM_COMMIT, PAGE_READWRITE);
    if (err != 0) {
        return err;
    }
    void *out;
    pthread_mutex_lock(&s->lock);
    err = commit_at_locked(s, (uintptr_t)addr, size, PAGE_READWRITE, true, &out);
    pthread_mutex_unlock(&s->lock);
    return err;
}

/* Whether MEM_RELEASE at a may release region r.  In the slot any address
 * in the region's first page names it (CE checks the page, not the offset
 * inside it) and, on CE 3-5, a region partly committed and partly reserved
 * stays.  A Large Memory Area region goes to the mapper (CE 5 mapfile.c
 * CloseHugeMemoryAreas): only its exact base names it, and it is released
 * with whatever is committed. */
static bool may_release(const struct slot *s, const struct region *r, uintptr_t a)
{
    if (!slot_contains(s, (void *)r->base)) {
        return a == r->base;
    }
    bool mixed = r->info->committed != 0 && r->info->committed != r->npages;
    return a - r->base < s->page_size && (!mixed || s->release_mixed);
}

static DWORD release_locked(struct slot *s, uintptr_t a, size_t size)
{
    struct region r;
    if (size != 0 || !find_region(s, a, &r) || !may_release(s, &r, a)) {
        return ERROR_INVALID_PARAMETER;
    }
    undo_reservation_locked(s, r.base);
    return 0;
}

static DWORD decommit_range_locked(struct slot *s, uintptr_t a, size_t size)
{
    struct region r;
    uint32_t first, count;
    if (size == 0 || !find_region(s, a, &r) || !pages_in_region(s, &r, a, size, &first, &count)) {
        return ERROR_INVALID_PARAMETER;
    }
    decommit_locked(s, &r, first, count);
    return 0;
}

DWORD slot_virtual_free(struct slot *s, void *addr, size_t size, DWORD type)
{
    if (type != MEM_RELEASE && type != MEM_DECOMMIT) {
        return ERROR_INVALID_PARAMETER;
    }
    pthread_mutex_lock(&s->lock);
    DWORD err = type == MEM_RELEASE ? release_locked(s, (uintptr_t)addr, size)
                                    : decommit_range_locked(s, (uintptr_t)addr, size);
    pthread_mutex_unlock(&s->lock);
    return err;
}

/* ---- query ---- */

/* Free space: from the queried page to the end of its block, then every free
 * block after it up to the slot's end (CE counts the same way for the unusable
 * pages past a reservation's end). */
static void query_free_locked(struct slot *s, uintptr_t a, MEMORY_BASIC_INFORMATION *m)
{
    uint32_t end = block_of(s, a) + 1;
    while (end < s->nblocks && s->blk[end].owner == NO_OWNER) {
        end++;
    }
    m->AllocationBase = NULL;
    m->AllocationProtect = PAGE_NOACCESS;
    m->RegionSize = s->base + (uintptr_t)end * s->gran - (uintptr_t)m->BaseAddress;
    m->State = MEM_FREE;
    m->Protect = PAGE_NOACCESS;
    m->Type = 0;
}

/* What VirtualQuery reports for a committed page's protection, as CE on x86
 * (the processor GetSystemInfo names) keeps it: the execute bit is a
 * software bit of the page entry there, so the execute protections stay,
 * and PAGE_EXECUTE reads back as PAGE_EXECUTE_READ (MakePagePerms gives the
 * two one entry).  On ARM, which has no such bit, they would read back
 * without it. */
static DWORD reported_protection(uint16_t word)
{
    DWORD prot = word & PG_PROT_MASK;
    if ((prot & ~(DWORD)PAGE_MODIFIERS) == PAGE_EXECUTE) {
        prot = (prot & PAGE_MODIFIERS) | PAGE_EXECUTE_READ;
    }
    return prot;
}

static DWORD type_of_pager(uint8_t pager)
{
    return pager == PAGER_LOADER ? MEM_IMAGE : pager == PAGER_MAPPER ? MEM_MAPPED : MEM_PRIVATE;
}

/* CE's Type for the run [i, end) of r: the reservation's pager type once the
 * run reaches a block with a MEMBLOCK (every committed page has one), else
 * MEM_PRIVATE (CE 5 virtmem.c SC_VirtualQuery starts from MEM_PRIVATE and
 * takes the pager type from each MEMBLOCK it counts pages in). */
static DWORD run_type(const struct region *r, uint32_t i, uint32_t end)
{
    for (; i < end; i++) {
        if (r->page[i] & PG_MEMBLOCK) {
            return type_of_pager(r->info->pager);
        }
    }
    return MEM_PRIVATE;
}

/* The run of pages with the same state and protection from page i. */
static void query_region_locked(struct slot *s, const struct region *r, uint32_t i,
                                MEMORY_BASIC_INFORMATION *m)
{
    uint16_t word = r->page[i] & (uint16_t)~PG_BOOKKEEPING;
    uint32_t end = i + 1;
    while (end < r->npages && (r->page[end] & (uint16_t)~PG_BOOKKEEPING) == word) {
        end++;
    }
    bool committed = (word & PG_COMMITTED) != 0;
    m->AllocationBase = (void *)r->base;
    m->AllocationProtect = PAGE_NOACCESS;
    m->RegionSize = (size_t)(end - i) * s->page_size;
    m->State = committed ? MEM_COMMIT : MEM_RESERVE;
    m->Protect = committed ? reported_protection(word) : PAGE_NOACCESS;
    m->Type = run_type(r, i, end);
}

DWORD slot_virtual_query(struct slot *s, const void *addr, MEMORY_BASIC_INFORMATION *m)
{
    uintptr_t a = (uintptr_t)addr;
    struct region r;
    DWORD err = 0;
    pthread_mutex_lock(&s->lock);
    m->BaseAddress = (void *)(a & ~(uintptr_t)(s->page_size - 1));
    if (find_region(s, a, &r)) {
        query_region_locked(s, &r, (uint32_t)(((uintptr_t)m->BaseAddress - r.base) / s->page_size), m);
    } else if (slot_contains(s, addr)) {
        query_free_locked(s, a, m);
    } else {
        err = ERROR_INVALID_PARAMETER;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

/* ---- protection ---- */

/* CE 4.2/5 refuse to make "ROM" writable: a range touching block 0, a free
 * block or an unusable page gets ERROR_ACCESS_DENIED for a writable
 * protection (CE 3.0 has no such rule: 87 like any range outside a region). */
static bool looks_like_rom_locked(struct slot *s, uintptr_t a, size_t size)
{
    if (!slot_contains(s, (void *)a)) {
        return false;
    }
    uintptr_t end = size > s->base + s->size - a ? s->base + s->size : a + size;
    for (uintptr_t p = a & ~(uintptr_t)(s->page_size - 1); p < end; p += s->page_size) {
        struct region r;
        if (!find_region(s, p, &r)) {
            return true;
        }
    }
    return false;
}

static DWORD protect_locked(struct slot *s, uintptr_t a, size_t size, DWORD prot, DWORD *old)
{
    struct region r;
    uint32_t first, count;
    if (!s->ce3_checks && (prot & (PAGE_READWRITE | PAGE_EXECUTE_READWRITE)) &&
        looks_like_rom_locked(s, a, size)) {
        return ERROR_ACCESS_DENIED;
    }
    DWORD err = check_protection(prot);
    if (err != 0) {
        return err;
    }
    if (size == 0 || old == NULL || !find_region(s, a, &r) ||
        !pages_in_region(s, &r, a, size, &first, &count)) {
        return ERROR_INVALID_PARAMETER;
    }
    for (uint32_t i = first; i < first + count; i++) {
        if ((r.page[i] & PG_COMMITTED) == 0) {
            return ERROR_INVALID_PARAMETER;
        }
    }
    *old = reported_protection(r.page[first]);
    return commit_locked(s, &r, first, count, prot);
}

DWORD slot_virtual_protect(struct slot *s, void *addr, size_t size, DWORD prot, DWORD *old)
{
    pthread_mutex_lock(&s->lock);
    DWORD err = protect_locked(s, (uintptr_t)addr, size, prot, old);
    pthread_mutex_unlock(&s->lock);
    return err;
}

/* ---- accessors ---- */

/* Pages committed before the tag move with it (the peak's share stays as
 * it was counted). */
static void retag_locked(struct slot *s, struct region *r, enum slot_tag tag)
{
    s->kind_pages[kind_of_tag(r->info->tag)] -= r->info->committed;
    s->kind_pages[kind_of_tag((uint8_t)tag)] += r->info->committed;
    r->info->tag = (uint8_t)tag;
    if (slot_contains(s, (void *)r->base)) {
        refresh_cells_locked(s, block_of(s, r->base), 0, true); /* its letter follows its tag */
    }
}

void slot_set_tag(struct slot *s, void *base, enum slot_tag tag)
{
    struct region r;
    pthread_mutex_lock(&s->lock);
    if (find_region(s, (uintptr_t)base, &r) && r.base == (uintptr_t)base) {
        retag_locked(s, &r, tag);
    }
    pthread_mutex_unlock(&s->lock);
}

uintptr_t slot_base(const struct slot *s)
{
    return s->base;
}

size_t slot_size(const struct slot *s)
{
    return s->size;
}

void slot_free_runs(struct slot *s, uint32_t *now, uint32_t *least)
{
    *now = __atomic_load_n(&s->largest_free_run, __ATOMIC_RELAXED);
    *least = __atomic_load_n(&s->min_largest_free_run, __ATOMIC_RELAXED);
}

size_t slot_granularity(const struct slot *s)
{
    return s->gran;
}

size_t slot_page_size(const struct slot *s)
{
    return s->page_size;
}

void slot_get_stats(struct slot *s, struct slot_stats *out)
{
    pthread_mutex_lock(&s->lock);
    out->blocks = s->nblocks;
    out->free_blocks = s->nblocks - 1 - s->reserved_blocks;
    out->largest_free_run = runindex_longest(s->free);
    out->reserved_blocks = s->reserved_blocks;
    out->peak_reserved_blocks = s->peak_reserved_blocks;
    out->min_largest_free_run = s->min_largest_free_run;
    out->committed_pages = s->committed_pages;
    out->peak_committed_pages = s->peak_committed_pages;
    out->heap_pages_at_peak = s->kind_at_peak[KIND_HEAP];
    out->image_pages_at_peak = s->kind_at_peak[KIND_IMAGE];
    out->stack_pages_at_peak = s->kind_at_peak[KIND_STACK];
    out->lma_reserved_bytes = s->lma_bytes;
    out->fail_exhausted = s->fail_exhausted;
    out->fail_fragmented = s->fail_fragmented;
    out->fail_ram = s->fail_ram;
    out->fail_cap = s->fail_cap;
    pthread_mutex_unlock(&s->lock);
}

size_t slot_map(struct slot *s, char *buf, size_t len)
{
    size_t n = slot_map_marked(s, SLOT_MAP_NOW, buf, len, NULL);
    for (size_t b = 0; b < n; b++) {
        buf[b] = buf[b] >= 'a' && buf[b] <= 'z' ? (char)(buf[b] & ~0x20) : buf[b];
    }
    return n;
}

/* A block's cell from its owner and reservation, as refresh_cells_locked
 * keeps it (for checks; only debug builds call it). */
__attribute__((unused)) static char expected_cell(const struct slot *s, uint32_t b)
{
    uint32_t owner = s->blk[b].owner;
    if (b == 0 || owner == NO_OWNER) {
        return b == 0 ? '-' : '.';
    }
    char c = reservation_letter(&s->blk[owner].res);
    return b == owner ? c : (char)(c | 0x20);
}

size_t slot_map_marked(struct slot *s, enum slot_map_which which, char *buf, size_t len, uint64_t *peak_ns)
{
    pthread_mutex_lock(&s->lock);
    for (uint32_t b = 0; b < s->nblocks; b++) {
        DEBUG_INVARIANT(read_cell(s->cell[b]) == expected_cell(s, b), "a block's map cell is its reservation's state");
    }
    size_t n = s->nblocks < len ? s->nblocks : len;
    for (uint32_t b = 0; b < n; b++) {
        bool saved = which == SLOT_MAP_PEAK && s->peak_epoch[b] == s->epoch;
        buf[b] = read_cell(saved ? s->peak_cell[b] : s->cell[b]);
    }
    if (peak_ns != NULL) {
        *peak_ns = s->peak_ns;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

void slot_publish_map(struct slot *s)
{
    pthread_mutex_lock(&s->lock);
    publish_map_locked(s);
    pthread_mutex_unlock(&s->lock);
}

size_t slot_forked_committed_pages(const struct slot *s)
{
    return s->committed_pages;
}

void slot_forked_publish_map(struct slot *s)
{
    publish_map_locked(s); /* alone: see slot.h */
}

/* ---- occupants (the image, DLLs and stacks a device's loader and kernel
 * reserve; see slot.h) ----
 *
 * Kept apart from the VirtualAlloc rules: an occupant is placed by the
 * loader's rule (block 1, top-down, first fit), never by the program's
 * request, so it notes no failure reason and counts no failure. */

static bool occupant_tag(enum slot_tag tag)
{
    return tag == SLOT_TAG_IMAGE || tag == SLOT_TAG_DLL || tag == SLOT_TAG_STACK;
}

/* The first block of a free run of nblocks at the occupant's place, or
 * UINT32_MAX. */
static uint32_t occupant_block_locked(struct slot *s, const struct slot_occupant *o, uint32_t nblocks)
{
    switch (o->place) {
    case SLOT_PLACE_BOTTOM: return runindex_first_fit(s->free, nblocks);
    case SLOT_PLACE_TOP: return runindex_last_fit(s->free, nblocks);
    default: break;
    }
    if (o->offset % s->gran != 0 || o->offset >= s->size || nblocks > s->nblocks - o->offset / s->gran) {
        return UINT32_MAX;
    }
    uint32_t first = (uint32_t)(o->offset / s->gran);
    for (uint32_t b = first; b < first + nblocks; b++) {
        if (b == 0 || s->blk[b].owner != NO_OWNER) {
            return UINT32_MAX;
        }
    }
    return first;
}

/* Commits an occupant's pages one at a time, as CE's pager commits a
 * section's pages as they are touched (so a low or critical state's cap,
 * which bounds each commit, lets them through while RAM lasts); in one
 * commit when RAM takes them all at once exactly as it would one by one
 * (ram_charge_at_once: a start's usual case, spared a charge per page).
 * Inaccessible: nothing of the program lives there (its real code and
 * stack are where Linux put them), but each page holds RAM.  A refusal is
 * no failure of the program's: the counters and the pending reason stay
 * as they were.  (The occupant's pages are all fresh: just reserved.) */
static DWORD commit_paged_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count)
{
    if (count > 1 && ram_charge_at_once(s->ram, count)) {
        return commit_pages_locked(s, r, first, count, PAGE_NOACCESS, COMMIT_PAID);
    }
    size_t fail_ram = s->fail_ram, fail_cap = s->fail_cap;
    for (uint32_t i = first; i < first + count; i++) {
        if (commit_locked(s, r, i, 1, PAGE_NOACCESS) != 0) {
            s->fail_ram = fail_ram;
            s->fail_cap = fail_cap;
            entry_clear_reason();
            return ERROR_NOT_ENOUGH_MEMORY;
        }
    }
    return 0;
}

static DWORD occupy_locked(struct slot *s, const struct slot_occupant *o, uintptr_t *base)
{
    size_t span = align_up(o->bytes, s->gran);
    uintptr_t c_start = o->commit_offset & ~(uintptr_t)(s->page_size - 1);
    if (span == 0 || span > s->size || o->commit_offset > span || o->commit_bytes > span - o->commit_offset) {
        return o->bytes > s->size ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_PARAMETER;
    }
    uintptr_t c_end = align_up(o->commit_offset + o->commit_bytes, s->page_size);
    uint32_t nblocks = (uint32_t)(span / s->gran);
    uint32_t first = occupant_block_locked(s, o, nblocks);
    if (first == UINT32_MAX) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    /* The loader's pager: VirtualQuery reads an image or DLL as MEM_IMAGE. */
    claim_blocks_locked(s, first, nblocks, (uint32_t)(span / s->page_size),
                        o->tag == SLOT_TAG_STACK ? MEM_RESERVE : MEM_IMAGE);
    struct region r = slot_region(s, first);
    retag_locked(s, &r, o->tag);
    DWORD err = commit_paged_locked(s, &r, (uint32_t)(c_start / s->page_size),
                                    (uint32_t)(c_end > c_start ? (c_end - c_start) / s->page_size : 0));
    if (err != 0) {
        release_blocks_locked(s, first);
        return err;
    }
    *base = r.base;
    return 0;
}

DWORD slot_occupy(struct slot *s, const struct slot_occupant *o, void **base)
{
    if (!occupant_tag(o->tag)) {
        return ERROR_INVALID_PARAMETER;
    }
    uintptr_t b = 0;
    pthread_mutex_lock(&s->lock);
    DWORD err = occupy_locked(s, o, &b);
    pthread_mutex_unlock(&s->lock);
    if (err == 0) {
        *base = (void *)b;
    }
    return err;
}

DWORD slot_vacate(struct slot *s, void *base)
{
    struct region r;
    DWORD err = ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&s->lock);
    if (slot_contains(s, base) && find_region(s, (uintptr_t)base, &r) && r.base == (uintptr_t)base &&
        occupant_tag((enum slot_tag)r.info->tag)) {
        release_blocks_locked(s, block_of(s, r.base));
        err = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

/* ---- MEM_AUTO_COMMIT (commit on first touch; autocommit.c's fault
 * handler asks) ---- */

void slot_set_auto_commit(struct slot *s, bool on)
{
    pthread_mutex_lock(&s->lock);
    s->auto_commit = on;
    pthread_mutex_unlock(&s->lock);
}

bool slot_touch(struct slot *s, const void *addr)
{
    struct region r;
    bool committed = false;
    if (!slot_contains(s, addr)) {
        return false;
    }
    pthread_mutex_lock(&s->lock);
    if (find_region(s, (uintptr_t)addr, &r) && r.info->auto_commit) {
        uint32_t i = (uint32_t)(((uintptr_t)addr - r.base) / s->page_size);
        bool reserved = (r.page[i] & (PG_RESERVED | PG_UNMAPPED)) == PG_RESERVED;
        /* A touch with no RAM left faults, as on CE: the reason noted
         * belongs to no request. */
        committed = reserved && commit_locked(s, &r, i, 1, PAGE_READWRITE) == 0;
        entry_clear_reason();
    }
    pthread_mutex_unlock(&s->lock);
    return committed;
}

/* ---- Linux mapping calls over the slot (for the preload library) ----
 *
 * munmap, mprotect and MAP_FIXED act on page ranges that may cross several
 * reservations and free space.  Each walks the range one reservation at a
 * time with for_each_region_locked. */

typedef DWORD (*region_fn)(struct slot *s, struct region *r, uint32_t first, uint32_t count,
                           void *arg);

/* Calls fn for the part of each reservation inside [a, a+len).  Returns the
 * first error, or ERROR_INVALID_PARAMETER when `need_mapped` and some page
 * of the range belongs to no reservation. */
static DWORD for_each_region_locked(struct slot *s, uintptr_t a, size_t len, bool need_mapped,
                                    region_fn fn, void *arg)
{
    uintptr_t end = align_up(a + len, s->page_size);
    a &= ~(uintptr_t)(s->page_size - 1);
    while (a < end) {
        struct region r;
        if (!find_region(s, a, &r)) {
            if (need_mapped) {
                return ERROR_INVALID_PARAMETER;
            }
            a += s->page_size;
            continue;
        }
        uintptr_t r_end = r.base + (uintptr_t)r.npages * s->page_size;
        uintptr_t stop = end < r_end ? end : r_end;
        uint32_t first = (uint32_t)((a - r.base) / s->page_size);
        DWORD err = fn(s, &r, first, (uint32_t)((stop - a) / s->page_size), arg);
        if (err != 0) {
            return err;
        }
        a = stop;
    }
    return 0;
}

static DWORD unmap_pages_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count,
                                void *arg)
{
    (void)arg;
    decommit_locked(s, r, first, count);
    for (uint32_t i = first; i < first + count; i++) {
        if ((r->page[i] & PG_UNMAPPED) == 0) {
            r->page[i] |= PG_UNMAPPED;
            r->info->unmapped++;
        }
    }
    if (r->info->unmapped == r->npages) {
        undo_reservation_locked(s, r->base);
    }
    return 0;
}

DWORD slot_unmap(struct slot *s, void *addr, size_t len)
{
    pthread_mutex_lock(&s->lock);
    DWORD err = for_each_region_locked(s, (uintptr_t)addr, len, false, unmap_pages_locked, NULL);
    pthread_mutex_unlock(&s->lock);
    return err;
}

static DWORD mprotect_pages_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count,
                                   void *arg)
{
    DWORD prot = *(const DWORD *)arg;
    for (uint32_t i = first; i < first + count; i++) {
        if (r->page[i] & PG_UNMAPPED) {
            return ERROR_INVALID_PARAMETER;
        }
    }
    if (prot != PAGE_NOACCESS) {
        return commit_locked(s, r, first, count, prot);
    }
    /* PROT_NONE keeps committed pages (and their contents) committed, like
     * VirtualProtect(PAGE_NOACCESS); reserved pages stay reserved.  One
     * host call per run of committed pages. */
    for (uint32_t i = first; i < first + count;) {
        if ((r->page[i] & PG_COMMITTED) == 0) {
            i++;
            continue;
        }
        uint32_t end = i + 1;
        while (end < first + count && (r->page[end] & PG_COMMITTED) != 0) {
            end++;
        }
        DWORD err = commit_locked(s, r, i, end - i, PAGE_NOACCESS);
        if (err != 0) {
            return err;
        }
        i = end;
    }
    return 0;
}

DWORD slot_mprotect(struct slot *s, void *addr, size_t len, DWORD prot)
{
    pthread_mutex_lock(&s->lock);
    DWORD err = for_each_region_locked(s, (uintptr_t)addr, len, true, mprotect_pages_locked, &prot);
    pthread_mutex_unlock(&s->lock);
    return err;
}

static DWORD remap_pages_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count,
                                void *arg)
{
    DWORD prot = *(const DWORD *)arg;
    decommit_locked(s, r, first, count);
    if (prot == PAGE_NOACCESS) {
        /* A fresh PROT_NONE mapping: reserved, no longer unmapped. */
        for (uint32_t i = first; i < first + count; i++) {
            if (r->page[i] & PG_UNMAPPED) {
                r->page[i] &= (uint16_t)~PG_UNMAPPED;
                r->info->unmapped--;
            }
        }
        return 0;
    }
    return commit_locked(s, r, first, count, prot);
}

DWORD slot_map_fixed(struct slot *s, void *addr, size_t len, DWORD prot)
{
    uintptr_t a = (uintptr_t)addr;
    if (len == 0 || (a & (s->page_size - 1)) != 0) {
        return ERROR_INVALID_PARAMETER;
    }
    pthread_mutex_lock(&s->lock);
    struct region r;
    DWORD err;
    if (find_region(s, a, &r)) {
        /* Over existing reservations: fresh zero pages in each. */
        err = for_each_region_locked(s, a, len, true, remap_pages_locked, &prot);
    } else {
        /* Over free blocks: a new reservation at that address. */
        uintptr_t base;
        err = (a & (s->gran - 1)) != 0 ? ERROR_INVALID_PARAMETER
                                        : reserve_locked(s, a, len, MEM_RESERVE, &base);
        if (err == 0 && prot != PAGE_NOACCESS) {
            find_region(s, base, &r);
            err = commit_locked(s, &r, 0, r.npages, prot);
            if (err != 0) {
                undo_reservation_locked(s, base);
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

bool slot_owns(struct slot *s, const void *addr)
{
    pthread_mutex_lock(&s->lock);
    bool owned = slot_contains(s, addr) || find_lma(s, (uintptr_t)addr, NULL) != NULL;
    pthread_mutex_unlock(&s->lock);
    return owned;
}

size_t slot_region_end(struct slot *s, const void *addr)
{
    struct region r;
    size_t end = 0;
    pthread_mutex_lock(&s->lock);
    if (find_region(s, (uintptr_t)addr, &r)) {
        end = r.base + (size_t)r.npages * s->page_size;
    }
    pthread_mutex_unlock(&s->lock);
    return end;
}

bool slot_pages_mapped(struct slot *s, const void *addr, size_t len, bool mapped)
{
    struct region r;
    uint32_t first, count;
    bool all = false;
    pthread_mutex_lock(&s->lock);
    if (find_region(s, (uintptr_t)addr, &r) && pages_in_region(s, &r, (uintptr_t)addr, len, &first, &count)) {
        all = true;
        for (uint32_t i = first; i < first + count && all; i++) {
            all = ((r.page[i] & PG_UNMAPPED) == 0) == mapped;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return all;
}

void slot_lock(struct slot *s)
{
    pthread_mutex_lock(&s->lock);
}

void slot_unlock(struct slot *s)
{
    pthread_mutex_unlock(&s->lock);
}

/* ---- moving committed pages ---- */

/* Are pages [first, first+count) of r all committed read/write, with no
 * modifier (what a move may carry over as they are)? */
static bool all_read_write(const struct region *r, uint32_t first, uint32_t count)
{
    for (uint32_t i = first; i < first + count; i++) {
        if ((r->page[i] & (PG_STATE_MASK | PG_PROT_MASK)) != (PG_COMMITTED | PAGE_READWRITE)) {
            return false;
        }
    }
    return true;
}

/* Are pages [first, first+count) of r all reserved and mapped? */
static bool all_reserved(const struct region *r, uint32_t first, uint32_t count)
{
    for (uint32_t i = first; i < first + count; i++) {
        if ((r->page[i] & (PG_STATE_MASK | PG_UNMAPPED)) != PG_RESERVED) {
            return false;
        }
    }
    return true;
}

/* Pages [first, first+count) of d, all reserved, committed read/write
 * with contents written by the caller (moved in or copied): no stale
 * memory is left to zero there, and RAM was charged already. */
static void note_filled_locked(struct slot *s, struct region *d, uint32_t first, uint32_t count)
{
    (void)unmark_stale_locked(s, d, first, count);
    for (uint32_t i = first; i < first + count; i++) {
        d->page[i] = (uint16_t)(PG_COMMITTED | PAGE_READWRITE | (d->page[i] & PG_MEMBLOCK));
    }
    mark_memblocks(s, d, first, count);
    bool was_committed = d->info->committed != 0;
    d->info->committed += count;
    note_committed_locked(s, d, count); /* with the source still counted: the peak of a copy */
    committed_changed_locked(s, d, was_committed);
    check_region_counts(s, d);
}

/* Pages [first, first+count) of r, committed, whose memory the host has
 * moved away: reserved, with nothing stale to keep. */
static void note_emptied_locked(struct slot *s, struct region *r, uint32_t first, uint32_t count)
{
    for (uint32_t i = first; i < first + count; i++) {
        r->page[i] = (uint16_t)(PG_RESERVED | (r->page[i] & PG_MEMBLOCK));
    }
    r->info->committed -= count;
    s->committed_pages -= count;
    s->kind_pages[kind_of_tag(r->info->tag)] -= count;
    committed_changed_locked(s, r, true);
    check_region_counts(s, r);
}

/* Are most of pages [first, first+count) of d stale, their memory kept?
 * Then the pages are copied rather than moved: a copy into memory the
 * host holds already faults nothing, and leaves the source's memory to be
 * kept in turn when the caller frees it, where a move would leave the
 * source empty and every later commit there a fresh page fault (one
 * fault costs more than copying its page: python's workload under ce5,
 * whose growing lists move at each step into blocks earlier steps left,
 * faulted 14 700 times moving and 8 700 copying, with half the system
 * time).  A move still serves a destination the host holds no memory for:
 * there it saves the copy and as many faults as it causes. */
static bool dest_mostly_kept(const struct region *d, uint32_t first, uint32_t count)
{
    uint32_t kept = 0;
    for (uint32_t i = first; i < first + count; i++) {
        kept += (d->page[i] & PG_STALE) != 0;
    }
    return kept >= count - kept;
}

static DWORD move_committed_locked(struct slot *s, uintptr_t dst, uintptr_t src, size_t len)
{
    struct region d, r;
    uint32_t dfirst, sfirst, count, scount;
    if (len == 0 || ((dst | src | len) & (s->page_size - 1)) != 0 || !find_region(s, dst, &d) ||
        !find_region(s, src, &r) || d.base == r.base || !pages_in_region(s, &d, dst, len, &dfirst, &count) ||
        !pages_in_region(s, &r, src, len, &sfirst, &scount)) {
        return ERROR_INVALID_PARAMETER;
    }
    if (!all_read_write(&r, sfirst, count) || !all_reserved(&d, dfirst, count)) {
        return ERROR_NOT_SUPPORTED;
    }
    /* The destination is charged before the source is credited, as a copy
     * into freshly committed pages would be. */
    if (!charge_locked(s, count)) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    if (!dest_mostly_kept(&d, dfirst, count) && os_move_pages((void *)dst, (void *)src, len) == 0) {
        /* The source keeps an empty read/write mapping: inaccessible again,
         * as a decommitted page is, with the read-ahead pages that follow
         * it in the same call (discarded: the release the caller makes
         * next would otherwise have to close them). */
        close_host_pages_locked(s, &r, sfirst, ahead_run_end(s, &r, sfirst + count));
        note_filled_locked(s, &d, dfirst, count);
        note_emptied_locked(s, &r, sfirst, count);
        ram_credit(s->ram, count);
        return 0;
    }
    /* The host cannot move them: a copy, into pages not zeroed first (every
     * byte is written); the source stays committed. */
    if (os_protect((void *)dst, len, OS_PROT_READ | OS_PROT_WRITE) != 0) {
        ram_credit(s->ram, count);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    memcpy((void *)dst, (const void *)src, len);
    note_filled_locked(s, &d, dfirst, count);
    return 0;
}

DWORD slot_move_committed(struct slot *s, void *dst, void *src, size_t len)
{
    pthread_mutex_lock(&s->lock);
    DWORD err = move_committed_locked(s, (uintptr_t)dst, (uintptr_t)src, len);
    pthread_mutex_unlock(&s->lock);
    return err;
}
