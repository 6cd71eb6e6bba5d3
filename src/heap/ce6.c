/*
 * ce6.c - the Windows Embedded CE 6.0 heap (coredll's "rheap"): 32-byte
 * blocks in 64 KB regions, a bitmap instead of item headers.
 *
 * Owns: the heaps of the ce6 algorithm, their regions and large items in
 * the slot, all of their bookkeeping (from meta.h, outside the slot), and
 * the CE 6 parameters (block size, region size, header sizes, large
 * threshold).
 *
 * What CE does is docs/heaps/ce6.md ("spec §N" below).  In short: a region
 * is one reservation of 60 KB (1920 blocks of 32 bytes, §2); each block is
 * free, the first block of an item or a continuation (§3); a growable heap's
 * first region starts with the heap structure and the bitmap (19 blocks),
 * later ones with a region structure (17 blocks); a fixed heap has one region
 * of its maximum size and no header (§2).  Per region CE keeps a rover
 * (idxBlkFree), the committed end (idxBlkCommit), the free count
 * (numBlkFree, uncommitted blocks included) and a cached largest run
 * (maxBlkFree), and per heap the region of the last allocation or free
 * (prgnfree), where the next search starts (§4-§6).  Items of more than 512
 * blocks in a growable heap get their own reservation (§7).  CE's own
 * records (a large item's RHVAITEM, a fixed heap's structure, which is its
 * handle) are pinned items of the process heap, as on CE (§11).
 *
 * How cebox keeps it: per region a granule map (granmap.h) of 32-byte
 * granules, free bits = committed free blocks (uncommitted blocks read as
 * busy, so every run ends at the committed end, as CE's counting does), start
 * bits = first blocks of items; per heap a max-tree (maxtree.h) over the
 * regions in list order keyed by maxBlkFree, so the circular region walk
 * skips the regions CE skips without visiting them; a table from slot block
 * to region / large item resolves a pointer in O(1).  The search inside a
 * region gives the answer of CE's run-by-run walk (DoFindBlockInRegion):
 * the map's first fit finds the run CE would stop at, and the runs it would
 * have passed are measured (for maxBlkFree) only when no run wins; a
 * region that cannot win (its map's longest run, the run reaching the
 * committed end counted to the region's end, is below n) is measured at
 * once, which is what both of CE's passes leave in maxBlkFree.  The
 * differential test (tests/test_heap_diff_ce6.c) checks this against a
 * literal model of CE's word-level code (tests/heapmodel_ce6.c).
 *
 * Invariants (under the heap's lock; heap_consistent checks them): per
 * region, free bits are set exactly on committed free blocks, start bits
 * exactly on the first block of each item (the header counts as one item,
 * at block 0), blocks from `commit` on are busy and start nothing; commit
 * is a multiple of the blocks of a page; rover <= commit; nfree = free
 * committed blocks + (total - commit); npinned counts the pinned bits.
 * Per heap: the max-tree's key i is region i's maxBlkFree, but for the
 * region `hot` (the last one changed), whose key is written only when
 * another region changes or the tree is read past it (nearly every call
 * works in the region of the last one, and each key change would climb the
 * tree); the block table maps exactly the blocks of the regions and large
 * items.
 */
#include "heap/heap.h"

#include <string.h>

#include "entry.h"
#include "heap/blockmap.h"
#include "heap/ce56.h"
#include "heap/granmap.h"
#include "heap/maxtree.h"
#include "invariant.h"
#include "lock.h"
#include "meta.h"
#include "os.h"
#include "slot.h"

/* CE 6's parameters (heap.h of LMEM, spec §2, §7). */
#define BLK 32u                 /* RHEAP_BLOCK_SIZE */
#define REGION_RESERVE 0xF000u  /* CE_FIXED_HEAP_MAXSIZE: 15 pages */
#define FIRST_HDR 19u           /* heap structure + bitmap: 596 bytes */
#define LATER_HDR 17u           /* region structure + bitmap: 528 bytes */
#define FIRST_COMMIT 4096u      /* PAGEALIGN_UP(596) */
#define LARGE_BLOCKS 512u       /* RHEAP_VA_BLOCK_CNT: more goes to VirtualAlloc */
#define WORD_BLOCKS 16u         /* blocks per bitmap DWORD */
#define FIXED_STRUCT 116u       /* sizeof(RHEAP) on a 32-bit device */
#define MAX_REQUEST 0x40000000u /* HEAP_MAX_ALLOC */
#define NONE GRANMAP_NONE

/* The functions on the path of every HeapAlloc and HeapFree, inlined into
 * their callers: no call, and a struct where stays in registers (perl's
 * s///g made 8 % fewer instructions under ce6 so). */
#define HOT static inline __attribute__((always_inline))

#define HEAP_ALLOC_FLAGS (HEAP_NO_SERIALIZE | HEAP_ZERO_MEMORY)
#define HEAP_REALLOC_FLAGS \
    (HEAP_NO_SERIALIZE | HEAP_GENERATE_EXCEPTIONS | HEAP_ZERO_MEMORY | HEAP_REALLOC_IN_PLACE_ONLY)

struct region {
    uintptr_t base;    /* reservation base (64 KB aligned) */
    size_t reserve;    /* bytes reserved */
    uint32_t total;    /* numBlkTotal */
    uint32_t commit;   /* idxBlkCommit */
    uint32_t rover;    /* idxBlkFree */
    uint32_t nfree;    /* numBlkFree (uncommitted included) */
    uint32_t max;      /* maxBlkFree */
    uint32_t hdr;      /* header blocks: 19, 17 or 0 */
    uint32_t index;    /* position in the region list */
    /* Bits set in pinned: 0 in nearly every region, one test per free.
     * (Here it fills the hole before map: a region's record stays six
     * cache lines.) */
    uint32_t npinned;
    struct granmap map;
    /* Blocks holding a large item's record (process heap only): CE's, not
     * the program's, so refused to HeapFree and left out of walks. */
    uint64_t pinned[REGION_RESERVE / BLK / 64];
    size_t meta_bytes; /* this structure and its map; 0: a record of the heap's region_pool */
};

struct large {
    struct heap_large_link link; /* first: a link is its record */
    uintptr_t base;
    size_t size;      /* cbSize: the requested bytes */
    size_t committed; /* page-rounded size */
    size_t reserve;   /* cbReserve */
    uintptr_t record; /* its RHVAITEM's block in the process heap */
    bool pinned;      /* itself a record (of a fixed heap), not the program's */
};

struct ce6_heap {
    struct heap common; /* handle: the first region's base, or a fixed heap's record */
    struct slot *slot;
    size_t page, gran;
    uint32_t maximum; /* cbMaximum: 0 = growable */
    struct region **regions;
    uint32_t nregions, cap;
    uint32_t cur;           /* prgnfree, as a list position */
    struct maxtree k_max;   /* region i -> maxBlkFree (but hot's, see reindex) */
    uint32_t hot;           /* the region whose key may be stale, or NONE */
    struct heap_blockmap blocks; /* slot block -> region, or large item | 1 */
    struct heap_large_link *large_head;
    struct heap_pool large_pool; /* records of struct large */
    struct heap_pool region_pool; /* records of the 60 KB regions (region_map) */
    size_t meta_bytes;
    /* The process heap, where CE keeps every heap's large-item records;
     * NULL in the process heap itself. */
    struct ce6_heap *process;
    uintptr_t record; /* a fixed heap's structure in the process heap */
};

/* The process heap of the core: the first ce6 heap made (the core makes it
 * before any other, as CE's LMemInit does), until it is destroyed (last). */
static struct ce6_heap *_Atomic process_heap;

enum loc { LOC_FOREIGN, LOC_INTERIOR, LOC_FREED, LOC_BUSY, LOC_LARGE };

struct where {
    enum loc loc;
    struct region *r;
    uint32_t g;
    struct large *l;
};

static struct ce6_heap *ce6(struct heap *h)
{
    return (struct ce6_heap *)h;
}

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static uint32_t blocks_of(size_t bytes)
{
    return (uint32_t)((bytes + BLK - 1) / BLK);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

/* ======================================================================
 * Accounting and the slot
 * ====================================================================== */

/* The totals (heap.h). */
static void note_live(struct ce6_heap *h, size_t bytes, long items)
{
    heap_stats_live(&h->common, bytes, items);
}

static void note_dead(struct ce6_heap *h, size_t bytes, long items)
{
    heap_stats_dead(&h->common, bytes, items);
}

/* An empty range commits nothing (a region or large item grown by no
 * page), where the slot would refuse a zero-byte commit. */
static DWORD commit_range(struct ce6_heap *h, uintptr_t addr, size_t bytes)
{
    return bytes == 0 ? 0 : heap_slot_commit(&h->common, addr, bytes);
}

/* ======================================================================
 * A region's blocks (TakeBlocks, FreeBlocks, CommitBlocks: spec §3-§5)
 * ====================================================================== */

/* Writes the hot region's key: the tree is then exact. */
static void flush_key(struct ce6_heap *h)
{
    if (h->hot != NONE) {
        maxtree_set(&h->k_max, h->hot, h->regions[h->hot]->max);
        h->hot = NONE;
    }
}

/* r's maxBlkFree changed: its key is written when another region changes
 * or the tree is read (flush_key), so that a run of calls in one region
 * climbs the tree once. */
static void reindex(struct ce6_heap *h, struct region *r)
{
    if (h->hot != r->index) {
        flush_key(h);
        h->hot = r->index;
    }
}

/* The first region from `from` on whose maxBlkFree admits n blocks, or
 * MAXTREE_NONE (maxtree_first_after of the exact tree): the hot region
 * answers for itself without the tree being written. */
static inline uint32_t first_region_after(struct ce6_heap *h, uint32_t from, uint32_t n)
{
    if (from == h->hot && h->regions[from]->max >= n) {
        return from;
    }
    flush_key(h);
    return maxtree_first_after(&h->k_max, from, n);
}

static uint32_t item_blocks(const struct region *r, uint32_t g)
{
    return granmap_item_end(&r->map, g, r->commit) - g;
}

static bool pinned(const struct region *r, uint32_t g)
{
    return r->npinned != 0 && g < r->total && g < 64 * (sizeof r->pinned / sizeof r->pinned[0]) &&
           ((r->pinned[g >> 6] >> (g & 63)) & 1);
}

static void set_pinned(struct region *r, uint32_t g, bool v)
{
    uint64_t bit = (uint64_t)1 << (g & 63);
    if (((r->pinned[g >> 6] & bit) != 0) != v) {
        r->npinned = v ? r->npinned + 1 : r->npinned - 1;
    }
    r->pinned[g >> 6] = v ? (r->pinned[g >> 6] | bit) : (r->pinned[g >> 6] & ~bit);
}

/* Length of the free run from g (0 if g is busy), ending at the committed
 * end at the latest. */
static uint32_t free_run_from(const struct region *r, uint32_t g)
{
    return g < r->commit && granmap_free(&r->map, g) ? granmap_next_busy(&r->map, g) - g : 0;
}

/* TakeBlocks: n blocks from g become busy; the rover moves after them
 * (to 0 when that is the committed end).  `start` says whether g begins
 * an item (false when an item grows into them). */
HOT void take_blocks(struct region *r, uint32_t g, uint32_t n, bool start)
{
    DEBUG_INVARIANT(g + n <= r->commit && r->nfree >= n, "taking committed free blocks");
    granmap_take_inline(&r->map, g, n, start);
    r->nfree -= n;
    r->rover = g + n == r->commit ? 0 : g + n;
}

/* Is every block of g's bitmap word free?  Its 16 blocks are 16 bits of
 * one free word of the map (16 divides 64), read directly: this runs on
 * every free. */
_Static_assert(64 % WORD_BLOCKS == 0, "a bitmap word lies in one word of the map");
static bool word_all_free(const struct region *r, uint32_t g)
{
    const uint64_t word_mask = ((uint64_t)1 << WORD_BLOCKS) - 1;
    return ((GRANMAP_FREEW(&r->map, g >> 6) >> (g & (63 & ~(WORD_BLOCKS - 1)))) & word_mask) == word_mask;
}

/* FreeBlocks' counting, once the n blocks from g are free in the map: CE
 * assumes all free blocks are one run (maxBlkFree = numBlkFree) and puts
 * the rover on g, or on the start of g's bitmap word when that word is now
 * wholly free. */
static void note_freed(struct region *r, uint32_t g, uint32_t n)
{
    r->nfree += n;
    r->max = r->nfree;
    r->rover = word_all_free(r, g) ? (g & ~(WORD_BLOCKS - 1)) : g;
}

/* FreeBlocks: n blocks from g become free (the tail of a shrunk item). */
static void free_blocks(struct region *r, uint32_t g, uint32_t n)
{
    granmap_set_start(&r->map, g, false);
    granmap_set(&r->map, g, g + n, true);
    note_freed(r, g, n);
}

/* FreeBlocks of the whole item at g (HeapFree), which it returns the
 * blocks of: its end found and its blocks freed in one pass over the map,
 * one read and write of a word for the usual item. */
HOT uint32_t free_item(struct region *r, uint32_t g)
{
    uint32_t run_end;
    uint32_t n = granmap_free_item(&r->map, g, r->commit, &run_end) - g;
    note_freed(r, g, n);
    return n;
}

/* CommitBlocks past the committed end (commit_blocks). */
static DWORD commit_more_blocks(struct ce6_heap *h, struct region *r, uint32_t upto)
{
    size_t bytes = align_up((size_t)(upto - r->commit) * BLK, h->page);
    DWORD err = commit_range(h, r->base + (size_t)r->commit * BLK, bytes);
    if (err != 0) {
        return err;
    }
    uint32_t old = r->commit;
    r->commit += (uint32_t)(bytes / BLK);
    granmap_set(&r->map, old, r->commit, true);
    return 0;
}

/* CommitBlocks: commit pages so that blocks [0, upto) are committed (the
 * usual block lies below the committed end already: no call). */
static inline DWORD commit_blocks(struct ce6_heap *h, struct region *r, uint32_t upto)
{
    return upto <= r->commit ? 0 : commit_more_blocks(h, r, upto);
}

/* ======================================================================
 * The search (DoFindBlockInRegion, FindBlockInRegion: spec §5)
 * ====================================================================== */

/* One pass of CE's walk from block `from` while the blocks examined start
 * before `limit`: each free run (the first seen from `from` on, clipped at
 * the committed end) is tested; the first of at least n blocks wins.  When
 * none does and the last run examined reaches the committed end (or the
 * walk stepped over busy blocks up to it), that run counts the uncommitted
 * blocks after it.  Raises r->max to the longest run rejected, as CE does
 * at the end of its walk.  CE steps run by run; here the map's first fit
 * finds the winner, and the runs passed are measured only when none wins. */
static uint32_t find_pass(struct region *r, uint32_t n, uint32_t from, uint32_t limit)
{
    uint32_t g = from, found = 0, longest = 0;
    if (from < limit) {
        found = free_run_from(r, from);
        if (found >= n) {
            return from;
        }
        longest = found;
        if (from + found < limit) {
            uint32_t p = from + found; /* busy: runs after it are seen whole */
            uint32_t e, pos = granmap_first_fit(&r->map, p, n, &e);
            if (pos != NONE && pos < limit) {
                return pos;
            }
            /* No winner: the last run starting before limit ends the walk. */
            uint32_t x = granmap_prev_free(&r->map, limit);
            uint32_t after = p;
            if (x != NONE && x > p) {
                g = granmap_run_start(&r->map, x);
                found = granmap_next_busy(&r->map, g) - g;
                after = g + found;
                longest = max_u32(longest, granmap_longest_in(&r->map, p, after));
            }
            if (after < limit) {
                uint32_t nf = granmap_next_free(&r->map, after);
                g = nf == NONE || nf > r->commit ? r->commit : nf;
                found = 0;
            }
        }
    }
    if (g + found >= r->commit) {
        found = r->total - g;
        longest = max_u32(longest, found);
    }
    r->max = max_u32(r->max, longest);
    return found >= n ? g : NONE;
}

/* The usual answer of the first pass: the n blocks from the rover are
 * committed and free (find_pass's first test, without measuring the whole
 * run, which CE does not use then either). */
static bool rover_fits(const struct region *r, uint32_t n)
{
    return r->rover + n <= r->commit && granmap_all_free(&r->map, r->rover, r->rover + n);
}

/* What FindBlockInRegion's two passes leave in maxBlkFree when neither
 * wins: between them they measure every free run whole (the run holding
 * the rover, clipped in the first pass, is seen whole by the second, which
 * runs when the rover is not 0), and the run reaching the committed end
 * (or none: busy blocks up to it) counts the uncommitted blocks after it.
 * So the map's longest run, or the blocks from that last run's start to
 * the region's end.  Neither pass wins exactly when this is below n. */
static uint32_t longest_seen(struct region *r)
{
    uint32_t longest = granmap_longest(&r->map);
    uint32_t tail_from = r->commit;
    if (r->commit != 0 && granmap_free(&r->map, r->commit - 1)) {
        tail_from = granmap_run_start(&r->map, r->commit - 1);
    }
    return max_u32(longest, r->total - tail_from);
}

/* A region the passes could not win in, passed with their maxBlkFree
 * (longest_seen) and without their reading: true when it is below n. */
static inline bool passed_as_too_short(struct ce6_heap *h, struct region *r, uint32_t n)
{
    uint32_t longest = longest_seen(r);
    if (longest >= n) {
        return false;
    }
    r->max = longest;
    reindex(h, r);
    return true;
}

/* The end of FindBlockInRegion's success: the n blocks from g taken, and
 * maxBlkFree back to what it was before the search (old_max) unless fewer
 * blocks are left free. */
HOT void take_found(struct region *r, uint32_t g, uint32_t n, uint32_t old_max)
{
    take_blocks(r, g, n, true);
    r->max = min_u32(old_max, r->nfree);
}

/* FindBlockInRegion: from the rover to the committed end first; when that
 * fails or needs committing, from block 0 to the rover (taken only if it
 * found something).  Commits what the winner needs and takes its blocks.
 * Returns the first block, or NONE (with *err the slot's error when the
 * commit failed).  rover_missed: take_at_rover has just seen that the n
 * blocks from the rover do not fit, so the test is not made twice. */
static uint32_t find_in_region(struct ce6_heap *h, struct region *r, uint32_t n, bool rover_missed,
                               DWORD *err)
{
    uint32_t old_max = r->max;
    if (r->index != h->cur && !rover_fits(r, n)) {
        /* A region past prgnfree, which the walk reaches because its
         * maxBlkFree is overstated since a free, is most often passed:
         * measured at once, without the passes' run-by-run reading around
         * the rover.  (In prgnfree the passes mostly win, and the
         * measure would be lost.) */
        if (passed_as_too_short(h, r, n)) {
            return NONE;
        }
        rover_missed = true;
    }
    r->max = 0;
    uint32_t g = !rover_missed && rover_fits(r, n) ? r->rover : find_pass(r, n, r->rover, r->commit);
    if (g == NONE && r->rover != 0 && r->map.ndirty == 0) {
        /* The first pass failed, and its search left the map's tree up to
         * date: the measure of both passes is cheap now, and when it is
         * below n the second pass would fail too.  (Were the tree stale,
         * its update would often be lost: the second pass mostly wins
         * then, from the words near block 0.) */
        if (passed_as_too_short(h, r, n)) {
            return NONE;
        }
    }
    if ((g == NONE || g + n > r->commit) && r->rover != 0) {
        uint32_t g2 = find_pass(r, n, 0, r->rover);
        if (g2 != NONE) {
            g = g2;
        }
    }
    if (g != NONE) {
        DWORD e = commit_blocks(h, r, g + n);
        if (e != 0) {
            *err = e;
            g = NONE;
        } else {
            take_found(r, g, n, old_max);
        }
    }
    reindex(h, r);
    return g;
}

/* The walk's answer for the usual HeapAlloc, without the walk: prgnfree r
 * is the walk's first region when its maxBlkFree admits n (the tree's key
 * for it is exactly that, or r is the hot region), and FindBlockInRegion
 * takes the n blocks from its rover without a search when they are
 * committed and free.  Their first block, or NONE (nothing changed). */
HOT uint32_t take_at_rover(struct ce6_heap *h, struct region *r, uint32_t n)
{
    if (r->max < n || !rover_fits(r, n)) {
        return NONE;
    }
    uint32_t g = r->rover;
    take_found(r, g, n, r->max);
    reindex(h, r);
    return g;
}

/* ======================================================================
 * Regions
 * ====================================================================== */

/* A region's bookkeeping: the structure, then its map of `total` blocks
 * (all busy: nothing committed yet).  A 60 KB region's (every region of a
 * growable heap, of which a program may make thousands) is a record of the
 * heap's region_pool, about a third of a page, so that a new region costs
 * no mapping of its own; a fixed heap's one region has a meta.c block. */
static struct region *region_map(struct ce6_heap *h, uint32_t total)
{
    size_t off_map = align_up(sizeof(struct region), 64);
    size_t bytes = off_map + granmap_bytes(total);
    bool pooled = total == REGION_RESERVE / BLK;
    char *mem = pooled ? heap_pool_take(&h->region_pool, bytes, 64) : meta_alloc(bytes);
    if (mem == NULL) {
        return NULL;
    }
    struct region *r = (struct region *)mem;
    r->total = total;
    granmap_init(&r->map, mem + off_map, total, BLK);
    r->meta_bytes = pooled ? 0 : bytes;
    return r;
}

/* Gives back what region_map took. */
static void region_unmap(struct ce6_heap *h, struct region *r)
{
    if (r->meta_bytes == 0) {
        heap_pool_give(&h->region_pool, r);
    } else {
        meta_free(r, r->meta_bytes);
    }
}

/* Reserves `reserve` bytes, commits `commit` bytes, and appends the region
 * (InitRegion): all blocks free, the rover at 0.  On failure nothing is
 * left behind. */
static DWORD region_create(struct ce6_heap *h, size_t reserve, size_t commit, struct region **out)
{
    if (h->nregions >= h->cap ||
        (h->nregions >= h->k_max.leaves && !maxtree_grow(&h->k_max))) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    struct region *r = region_map(h, (uint32_t)(reserve / BLK));
    if (r == NULL) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    void *base;
    DWORD e = slot_virtual_alloc(h->slot, NULL, reserve, MEM_RESERVE, PAGE_READWRITE, &base);
    if (e == 0) {
        r->base = (uintptr_t)base;
        slot_set_tag(h->slot, base, SLOT_TAG_HEAP_REGION); /* before its pages: the peak's share is the heap's */
        e = commit_range(h, r->base, commit);
        if (e != 0) {
            slot_virtual_free(h->slot, base, 0, MEM_RELEASE);
        }
    }
    if (e != 0) {
        region_unmap(h, r);
        return e;
    }
    r->reserve = reserve;
    r->commit = (uint32_t)(commit / BLK);
    granmap_set(&r->map, 0, r->commit, true);
    r->nfree = r->max = r->total;
    r->index = h->nregions;
    h->regions[h->nregions++] = r;
    h->common.st.regions = h->nregions;
    heap_blockmap_set(&h->blocks, r->base, reserve, (uintptr_t)r);
    *out = r;
    return 0;
}

/* Takes the header blocks of an embedded region (an item of the bitmap,
 * never one of the program's). */
static void region_take_header(struct ce6_heap *h, struct region *r, uint32_t hdr)
{
    r->hdr = hdr;
    take_blocks(r, 0, hdr, true);
    r->max = r->nfree;
    reindex(h, r);
}

/* Drops region i from the list (HeapCompact of a wholly free one). */
static void region_release(struct ce6_heap *h, uint32_t i)
{
    struct region *r = h->regions[i];
    flush_key(h); /* the positions move: every key exact first */
    heap_blockmap_set(&h->blocks, r->base, r->reserve, 0);
    heap_slot_decommit(&h->common, r->base, (size_t)r->commit * BLK);
    slot_virtual_free(h->slot, (void *)r->base, 0, MEM_RELEASE);
    region_unmap(h, r);
    for (uint32_t k = i; k + 1 < h->nregions; k++) {
        h->regions[k] = h->regions[k + 1];
        h->regions[k]->index = k;
        maxtree_set(&h->k_max, k, h->regions[k]->max);
    }
    h->nregions--;
    maxtree_set(&h->k_max, h->nregions, 0);
    h->common.st.regions = h->nregions;
}

/* RHeapGrowNewRegion: a new 60 KB region with its 17 header blocks and the
 * item of n blocks right after them. */
static uint32_t region_grow(struct ce6_heap *h, uint32_t n, struct region **out, DWORD *err)
{
    struct region *r;
    size_t commit = align_up((size_t)(n + LATER_HDR) * BLK, h->page);
    DWORD e = region_create(h, REGION_RESERVE, commit, &r);
    if (e != 0) {
        *err = e;
        return NONE;
    }
    region_take_header(h, r, LATER_HDR);
    take_blocks(r, LATER_HDR, n, true);
    r->max = r->nfree;
    reindex(h, r);
    *out = r;
    return LATER_HDR;
}

/* ======================================================================
 * Large items (DoRHeapVMAlloc / DoRHeapVMFree: spec §7)
 * ====================================================================== */

static struct large *large_record(struct ce6_heap *h)
{
    return heap_pool_take(&h->large_pool, sizeof(struct large), _Alignof(struct large));
}

static uintptr_t alloc_small_locked(struct ce6_heap *h, uint32_t n, DWORD *err);
HOT struct where locate(const struct ce6_heap *h, const void *p);
static void reindex(struct ce6_heap *h, struct region *r);

HOT uintptr_t alloc_locked(struct ce6_heap *h, size_t n, DWORD *err);
HOT struct where locate_any(const struct ce6_heap *h, const void *p);
HOT void free_item_locked(struct ce6_heap *h, const struct where *w);

/* CE allocates its own records from the process heap: a large item's
 * RHVAITEM (32 bytes) and a fixed heap's structure.  They move the process
 * heap's placements as on the device; cebox pins them: the program never
 * got them and may not free them, and they count as no item of its.  The
 * process heap's lock is taken after h's (never the other way round). */
static uintptr_t record_alloc(struct ce6_heap *h, size_t bytes)
{
    struct ce6_heap *p = h->process != NULL ? h->process : h;
    DWORD ignored = 0;
    if (p != h) {
        lock_enter(&p->common.lock);
    }
    uintptr_t a = alloc_locked(p, bytes, &ignored);
    if (a != 0) {
        struct where w = locate_any(p, (void *)a);
        if (w.loc == LOC_LARGE) {
            w.l->pinned = true;
            note_dead(p, w.l->size, 1);
        } else {
            set_pinned(w.r, w.g, true);
            note_dead(p, (size_t)item_blocks(w.r, w.g) * BLK, 1);
        }
    }
    if (p != h) {
        lock_leave(&p->common.lock);
    }
    return a;
}

/* RHeapFree of a record (its region becomes the process heap's prgnfree). */
static void record_free(struct ce6_heap *h, uintptr_t a)
{
    struct ce6_heap *p = h->process != NULL ? h->process : h;
    if (p != h) {
        lock_enter(&p->common.lock);
    }
    struct where w = locate_any(p, (void *)a);
    if (w.loc == LOC_LARGE) {
        DEBUG_INVARIANT(w.l->pinned, "a record is pinned");
        w.l->pinned = false;
        note_live(p, w.l->size, 1);
    } else {
        DEBUG_INVARIANT(w.loc == LOC_BUSY && pinned(w.r, w.g), "a record is pinned");
        set_pinned(w.r, w.g, false);
        note_live(p, (size_t)item_blocks(w.r, w.g) * BLK, 1);
        p->cur = w.r->index;
    }
    free_item_locked(p, &w);
    if (p != h) {
        lock_leave(&p->common.lock);
    }
}

/* A large item's record, RHVAITEM and reservation, nothing committed: NULL
 * with *err. */
static struct large *large_reserve(struct ce6_heap *h, size_t n, DWORD *err)
{
    struct large *l = large_record(h);
    uintptr_t rec = l != NULL ? record_alloc(h, 32) : 0;
    if (rec == 0) {
        if (l != NULL) {
            heap_pool_give(&h->large_pool, l);
        }
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    size_t reserve = align_up(n, h->gran);
    void *base;
    DWORD e = heap_large_map(&h->common, reserve, 0, &base);
    if (e != 0) {
        record_free(h, rec);
        heap_pool_give(&h->large_pool, l);
        *err = e;
        return NULL;
    }
    l->record = rec;
    l->base = (uintptr_t)base;
    l->size = n;
    l->committed = align_up(n, h->page);
    l->reserve = reserve;
    return l;
}

/* Gives back what large_reserve took (its pages decommitted already). */
static void large_unreserve(struct ce6_heap *h, struct large *l)
{
    slot_virtual_free(h->slot, (void *)l->base, 0, MEM_RELEASE);
    record_free(h, l->record);
    heap_pool_give(&h->large_pool, l);
}

/* Makes a reserved and committed large item live; its address. */
static uintptr_t large_publish(struct ce6_heap *h, struct large *l)
{
    heap_large_enter(&h->common, &h->blocks, &h->large_head, &l->link, l->base, l->reserve);
    note_live(h, l->size, 1);
    return l->base;
}

static uintptr_t alloc_large_locked(struct ce6_heap *h, size_t n, DWORD *err)
{
    struct large *l = large_reserve(h, n, err);
    if (l == NULL) {
        return 0;
    }
    DWORD e = commit_range(h, l->base, l->committed);
    if (e != 0) {
        large_unreserve(h, l);
        *err = e;
        return 0;
    }
    return large_publish(h, l);
}

static void free_large_locked(struct ce6_heap *h, struct large *l)
{
    heap_large_leave(&h->common, &h->blocks, &h->large_head, &l->link, l->base, l->reserve);
    note_dead(h, l->size, 1);
    heap_slot_decommit(&h->common, l->base, l->committed);
    large_unreserve(h, l);
}

/* HeapReAlloc's move of large item `old` beyond its reservation to a new
 * one of n bytes, lock held: CE allocates the new item, copies the old
 * one's cbSize bytes into it and frees it.  Here the old pages move into
 * the new item, the bytes of its last page past cbSize are zeroed as the
 * fresh page of a copy would hold them, and only the tail is committed,
 * as a growth (an item that moved is growing: the slot may read ahead).
 * The new address, or 0 with *err, the old item unchanged. */
static uintptr_t move_large_locked(struct ce6_heap *h, struct large *old, size_t n, DWORD *err)
{
    struct large *l = large_reserve(h, n, err);
    if (l == NULL) {
        return 0;
    }
    size_t head = old->committed;
    DEBUG_INVARIANT(head < l->committed, "a moved large item grows");
    DWORD e = heap_large_take_pages(&h->common, l->base, l->committed, old->base, head, true);
    if (e != 0) {
        large_unreserve(h, l);
        *err = e;
        return 0;
    }
    memset((void *)(l->base + old->size), 0, head - old->size);
    uintptr_t q = large_publish(h, l);
    free_large_locked(h, old);
    return q;
}

/* ======================================================================
 * Pointers
 * ====================================================================== */

/* What p is, pinned records included. */
HOT struct where locate_any(const struct ce6_heap *h, const void *p)
{
    struct where w = {LOC_FOREIGN, NULL, 0, NULL};
    uintptr_t a = (uintptr_t)p;
    uintptr_t tag = heap_blockmap_get(&h->blocks, a);
    if (tag == 0) {
        return w;
    }
    if (tag & HEAP_BLOCKMAP_LARGE) {
        w.l = (struct large *)(tag & ~HEAP_BLOCKMAP_LARGE);
        w.loc = a == w.l->base ? LOC_LARGE : LOC_FOREIGN; /* CE looks only at bases */
        return w;
    }
    struct region *r = (struct region *)tag;
    w.r = r;
    w.loc = LOC_INTERIOR;
    if ((a - r->base) % BLK != 0) {
        return w;
    }
    uint32_t g = (uint32_t)((a - r->base) / BLK);
    if (g < r->hdr || g >= r->commit) {
        return w;
    }
    w.g = g;
    if (granmap_start(&r->map, g)) {
        w.loc = LOC_BUSY;
    } else if (granmap_free(&r->map, g)) {
        w.loc = LOC_FREED;
    }
    return w;
}

/* What p is for the program: a record is no item of its. */
HOT struct where locate(const struct ce6_heap *h, const void *p)
{
    struct where w = locate_any(h, p);
    if ((w.loc == LOC_BUSY && pinned(w.r, w.g)) || (w.loc == LOC_LARGE && w.l->pinned)) {
        w.loc = LOC_INTERIOR;
    }
    return w;
}

static enum heap_bad_kind bad_kind(enum loc loc)
{
    return loc == LOC_FOREIGN ? HEAP_BAD_FOREIGN : loc == LOC_FREED ? HEAP_BAD_FREED : HEAP_BAD_INTERIOR;
}

static void zero(uintptr_t from, uintptr_t to)
{
    if (to > from) {
        memset((void *)from, 0, to - from);
    }
}

/* ======================================================================
 * The operations
 * ====================================================================== */

/* The small-item path of RHeapAlloc, lock held: the regions from prgnfree
 * on, wrapping, those whose maxBlkFree admits n; then a new region.  The
 * usual call is served at prgnfree's rover (take_at_rover) without the
 * walk. */
static uintptr_t alloc_small_locked(struct ce6_heap *h, uint32_t n, DWORD *err)
{
    struct region *r = h->regions[h->cur];
    uint32_t g = take_at_rover(h, r, n);
    if (g != NONE) {
        note_live(h, (size_t)n * BLK, 1);
        return r->base + (size_t)g * BLK; /* prgnfree stays */
    }
    /* take_at_rover changed nothing: when r's maxBlkFree admits n, its
     * rover test failed, and the walk's first search (in r) need not
     * repeat it. */
    bool rover_missed = r->max >= n;
    DWORD e = 0;
    const uint32_t start = h->cur;
    for (int lap = 0; lap < 2 && g == NONE; lap++) {
        uint32_t i = lap == 0 ? first_region_after(h, start, n) : first_region_after(h, 0, n);
        while (i != MAXTREE_NONE && i < h->nregions && (lap == 0 || i < start)) {
            r = h->regions[i];
            g = find_in_region(h, r, n, rover_missed && i == start, &e);
            rover_missed = false;
            if (g != NONE) {
                break;
            }
            i = i + 1 < h->k_max.leaves ? first_region_after(h, i + 1, n) : MAXTREE_NONE;
        }
    }
    if (g == NONE && h->maximum == 0) {
        e = 0;
        g = region_grow(h, n, &r, &e);
    } else if (g == NONE) {
        entry_note_reason(LOG_REASON_HEAP_FULL);
    }
    if (g == NONE) {
        *err = ERROR_NOT_ENOUGH_MEMORY; /* RHeapAlloc sets it for every failure */
        return 0;
    }
    h->cur = r->index;
    note_live(h, (size_t)n * BLK, 1);
    return r->base + (size_t)g * BLK;
}

HOT uintptr_t alloc_locked(struct ce6_heap *h, size_t n, DWORD *err)
{
    uint32_t nb = blocks_of(n);
    if (h->maximum == 0 && nb > LARGE_BLOCKS) {
        uintptr_t p = alloc_large_locked(h, n, err);
        if (p == 0) {
            *err = ERROR_NOT_ENOUGH_MEMORY;
        }
        return p;
    }
    return alloc_small_locked(h, nb, err);
}

/* HeapCreate (spec §2, §9). */
static struct heap *ce6_create(struct slot *s, DWORD flags, size_t initial, size_t max, DWORD *err)
{
    if ((flags & ~(DWORD)HEAP_NO_SERIALIZE) || max > MAX_REQUEST) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    const size_t page = slot_page_size(s);
    size_t mx = align_up(max, page);
    size_t ini = align_up(initial > MAX_REQUEST ? MAX_REQUEST + page : initial, page);
    if (mx != 0 && ini > mx) {
        *err = ERROR_INVALID_PARAMETER; /* the commit lies outside the reservation */
        return NULL;
    }
    size_t gran = slot_granularity(s);
    size_t nblocks = slot_size(s) / gran;
    uint32_t cap = mx != 0 ? 1 : (uint32_t)nblocks;
    size_t off_regions = align_up(sizeof(struct ce6_heap), 64);
    size_t off_blocks = off_regions + align_up((size_t)cap * sizeof(struct region *), 64);
    size_t bytes = align_up(off_blocks + heap_blockmap_bytes(slot_size(s), gran), os_page_size());
    char *mem = meta_alloc(bytes);
    if (mem == NULL) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    struct ce6_heap *h = (struct ce6_heap *)mem;
    h->common.ops = &heap_ce6_ops;
    h->common.slot = s;
    h->slot = s;
    h->page = page;
    h->gran = gran;
    h->maximum = (uint32_t)mx;
    h->regions = (struct region **)(mem + off_regions);
    h->cap = cap;
    h->hot = NONE;
    heap_blockmap_init(&h->blocks, slot_base(s), slot_size(s), gran, (uintptr_t *)(mem + off_blocks));
    h->meta_bytes = bytes;
    struct region *r = NULL;
    DWORD e = ERROR_NOT_ENOUGH_MEMORY;
    h->process = process_heap;
    if (mx != 0 && process_heap != NULL) {
        /* The RHEAP structure and its bitmap, from the process heap first. */
        h->record = record_alloc(h, FIXED_STRUCT + mx / BLK / WORD_BLOCKS * 4);
    }
    if (maxtree_init(&h->k_max, 4) && (mx == 0 || process_heap == NULL || h->record != 0)) {
        e = mx != 0 ? region_create(h, mx, ini, &r) : region_create(h, REGION_RESERVE, FIRST_COMMIT, &r);
    }
    if (e != 0) {
        if (h->record != 0) {
            record_free(h, h->record);
        }
        heap_pool_destroy(&h->region_pool); /* the failed first region's chunk */
        maxtree_destroy(&h->k_max);
        meta_free(mem, bytes);
        *err = e;
        return NULL;
    }
    if (mx == 0) {
        region_take_header(h, r, FIRST_HDR);
    } else {
        reindex(h, r);
    }
    h->common.handle = h->record != 0 ? h->record : r->base;
    if (process_heap == NULL) {
        process_heap = h;
    }
    return &h->common;
}

static bool ce6_destroy(struct heap *hh, DWORD *err)
{
    (void)err;
    struct ce6_heap *h = ce6(hh);
    lock_enter(&h->common.lock);
    while (h->large_head != NULL) {
        free_large_locked(h, (struct large *)h->large_head);
    }
    for (uint32_t i = h->nregions; i-- > 0;) {
        struct region *r = h->regions[i];
        heap_slot_decommit(&h->common, r->base, (size_t)r->commit * BLK);
        slot_virtual_free(h->slot, (void *)r->base, 0, MEM_RELEASE);
        region_unmap(h, r);
    }
    heap_pool_destroy(&h->region_pool);
    heap_pool_destroy(&h->large_pool);
    maxtree_destroy(&h->k_max);
    if (h->record != 0) {
        record_free(h, h->record); /* CE frees the structure last */
    }
    lock_leave(&h->common.lock); /* no figures of a heap that is gone */
    if (process_heap == h) {
        process_heap = NULL;
    }
    meta_free(h, h->meta_bytes);
    return true;
}

/* HeapAlloc (spec §6, §7, §9). */
static void *ce6_alloc(struct heap *hh, DWORD flags, size_t n, DWORD *err)
{
    struct ce6_heap *h = ce6(hh);
    if ((flags & ~(DWORD)HEAP_ALLOC_FLAGS) || n > MAX_REQUEST) {
        *err = ERROR_INVALID_PARAMETER; /* SanitizeSize: over 1 GB is a bad parameter */
        if (n > MAX_REQUEST) {
            entry_note_reason(LOG_REASON_TOO_LARGE);
        }
        return NULL;
    }
    n = n == 0 ? 1 : n;
    lock_enter(&h->common.lock);
    uintptr_t p = alloc_locked(h, n, err);
    heap_leave(&h->common);
    if (p != 0 && (flags & HEAP_ZERO_MEMORY) && !(h->maximum == 0 && blocks_of(n) > LARGE_BLOCKS)) {
        zero(p, p + (size_t)blocks_of(n) * BLK); /* fresh large pages are zero already */
    }
    return (void *)p;
}

/* A pointer refused by HeapFree, HeapSize or HeapReAlloc (lock held). */
static void count_bad(struct ce6_heap *h)
{
    h->common.st.bad_pointers++;
}

HOT void free_item_locked(struct ce6_heap *h, const struct where *w)
{
    if (w->loc == LOC_LARGE) {
        free_large_locked(h, w->l);
        return;
    }
    uint32_t nb = free_item(w->r, w->g);
    reindex(h, w->r);
    note_dead(h, (size_t)nb * BLK, 1);
}

/* HeapFree (spec §8): every refusal is ERROR_INVALID_PARAMETER. */
static bool ce6_free(struct heap *hh, DWORD flags, void *p, DWORD *err)
{
    struct ce6_heap *h = ce6(hh);
    if ((flags & ~(DWORD)HEAP_NO_SERIALIZE) || (uintptr_t)p < 0x10000) {
        *err = ERROR_INVALID_PARAMETER;
        return false;
    }
    lock_enter(&h->common.lock);
    struct where w = locate(h, p);
    if (w.r != NULL) {
        h->cur = w.r->index; /* prgnfree moves once the region is found */
    }
    bool ok = w.loc == LOC_BUSY || w.loc == LOC_LARGE;
    if (ok) {
        free_item_locked(h, &w);
    } else {
        count_bad(h);
    }
    heap_leave(&h->common);
    if (!ok) {
        *err = ERROR_INVALID_PARAMETER;
        heap_report_bad_pointer("HeapFree", (void *)h->common.handle, p, bad_kind(w.loc));
    }
    return ok;
}

static size_t usable_of(const struct where *w)
{
    return w->loc == LOC_LARGE ? w->l->size : (size_t)item_blocks(w->r, w->g) * BLK;
}

/* HeapSize (spec §8). */
static size_t ce6_size(struct heap *hh, DWORD flags, const void *p, DWORD *err)
{
    struct ce6_heap *h = ce6(hh);
    if ((flags & ~(DWORD)HEAP_NO_SERIALIZE) || (uintptr_t)p < 0x10000) {
        *err = ERROR_INVALID_PARAMETER;
        return (size_t)-1;
    }
    lock_enter(&h->common.lock);
    struct where w = locate(h, p);
    size_t n = (size_t)-1;
    if (w.loc == LOC_BUSY || w.loc == LOC_LARGE) {
        n = usable_of(&w);
    } else {
        count_bad(h);
    }
    heap_leave(&h->common);
    if (n == (size_t)-1) {
        *err = ERROR_INVALID_PARAMETER;
        heap_report_bad_pointer("HeapSize", (void *)h->common.handle, p, bad_kind(w.loc));
    }
    return n;
}

enum in_place { IP_DONE, IP_MOVE, IP_FAILED };

/* RHeapReAlloc's in-place part for a region item: shrink frees the tail;
 * grow takes the free blocks after it, counting the uncommitted ones when
 * the run reaches the committed end. */
static enum in_place realloc_region_locked(struct ce6_heap *h, const struct where *w, size_t n,
                                           size_t *old, size_t *now)
{
    struct region *r = w->r;
    uint32_t cur = item_blocks(r, w->g), need = blocks_of(n);
    uint32_t after = w->g + cur;
    *old = *now = (size_t)cur * BLK;
    if (need < cur) {
        free_blocks(r, w->g + need, cur - need);
        reindex(h, r);
        note_dead(h, (size_t)(cur - need) * BLK, 0);
        *now = (size_t)need * BLK;
        return IP_DONE;
    }
    if (need == cur) {
        return IP_DONE;
    }
    uint32_t delta = need - cur;
    uint32_t avail = free_run_from(r, after);
    if (after + avail >= r->commit) {
        avail += r->total - r->commit;
    }
    if (avail < delta) {
        return IP_MOVE;
    }
    if (commit_blocks(h, r, after + delta) != 0) {
        return IP_FAILED;
    }
    take_blocks(r, after, delta, false);
    r->max = min_u32(r->max, r->nfree);
    reindex(h, r);
    note_live(h, (size_t)delta * BLK, 0);
    *now = (size_t)need * BLK;
    return IP_DONE;
}

/* The same for a large item: pages decommitted or committed inside its
 * reservation (a commit as a growth: the slot may read ahead, so that the
 * next steps of a string grown by small reallocs make no host call);
 * HeapSize becomes the new request. */
static enum in_place realloc_large_locked(struct ce6_heap *h, struct large *l, size_t n,
                                          size_t *old, size_t *now)
{
    size_t need = align_up(n, h->page);
    *old = l->size;
    if (need < l->committed) {
        heap_slot_decommit(&h->common, l->base + need, l->committed - need);
        l->committed = need;
    } else if (need > l->committed) {
        if (need > l->reserve) {
            return IP_MOVE;
        }
        if (heap_slot_commit_growth(&h->common, l->base + l->committed, need - l->committed) != 0) {
            return IP_FAILED;
        }
        l->committed = need;
    }
    heap_stats_resize(&h->common, l->size, n);
    l->size = n;
    *now = n;
    return IP_DONE;
}

/* HeapReAlloc (spec §8). */
static void *ce6_realloc(struct heap *hh, DWORD flags, void *p, size_t n, DWORD *err)
{
    struct ce6_heap *h = ce6(hh);
    if ((flags & ~(DWORD)HEAP_REALLOC_FLAGS) || n > MAX_REQUEST) {
        *err = ERROR_INVALID_PARAMETER;
        return NULL;
    }
    if (flags & HEAP_GENERATE_EXCEPTIONS) {
        *err = ERROR_NOT_SUPPORTED;
        return NULL;
    }
    n = n == 0 ? 1 : n;
    lock_enter(&h->common.lock);
    struct where w = locate(h, p);
    if (w.loc != LOC_BUSY && w.loc != LOC_LARGE) {
        count_bad(h);
        heap_leave(&h->common);
        *err = ERROR_INVALID_PARAMETER;
        heap_report_bad_pointer("HeapReAlloc", (void *)h->common.handle, p, bad_kind(w.loc));
        return NULL;
    }
    size_t old, now;
    enum in_place ip = w.loc == LOC_LARGE ? realloc_large_locked(h, w.l, n, &old, &now)
                                          : realloc_region_locked(h, &w, n, &old, &now);
    if (ip != IP_MOVE) {
        heap_leave(&h->common);
        if (ip == IP_FAILED) {
            *err = ERROR_NOT_ENOUGH_MEMORY;
            return NULL;
        }
        if ((flags & HEAP_ZERO_MEMORY) && now > old) {
            zero((uintptr_t)p + old, (uintptr_t)p + now);
        }
        return p;
    }
    if (flags & HEAP_REALLOC_IN_PLACE_ONLY) {
        heap_leave(&h->common);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        entry_note_reason(LOG_REASON_IN_PLACE);
        return NULL;
    }
    if (w.loc == LOC_LARGE && h->maximum == 0 && blocks_of(n) > LARGE_BLOCKS) {
        uintptr_t q = move_large_locked(h, w.l, n, err);
        heap_leave(&h->common);
        if (q == 0) {
            *err = ERROR_NOT_ENOUGH_MEMORY;
        }
        return (void *)q;
    }
    /* Move: allocate (HEAP_ZERO_MEMORY zeroes it all), copy, free the old
     * item, which makes the old item's region prgnfree. */
    uintptr_t q = alloc_locked(h, n, err);
    if (q == 0) {
        heap_leave(&h->common);
        *err = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    if ((flags & HEAP_ZERO_MEMORY) && !(h->maximum == 0 && blocks_of(n) > LARGE_BLOCKS)) {
        zero(q, q + (size_t)blocks_of(n) * BLK);
    }
    memcpy((void *)q, p, old);
    if (w.r != NULL) {
        h->cur = w.r->index;
    }
    free_item_locked(h, &w);
    heap_leave(&h->common);
    return (void *)q;
}

/* EnumerateRegionItems' side effects: the rover goes to the first free
 * block (the committed end if none), maxBlkFree becomes the longest run,
 * or the blocks from the last run's start to the region's end when the
 * region ends free.  Returns the longest committed free run. */
static uint32_t region_enumerate(struct ce6_heap *h, struct region *r)
{
    uint32_t longest = 0, first = r->commit, last = r->commit;
    for (uint32_t g = 0; g < r->commit;) {
        if (granmap_free(&r->map, g)) {
            uint32_t e = granmap_next_busy(&r->map, g);
            first = min_u32(first, g);
            longest = max_u32(longest, e - g);
            last = g;
            g = e;
        } else {
            g += item_blocks(r, g);
            last = r->commit;
        }
    }
    r->rover = first;
    r->max = max_u32(longest, r->total - last);
    reindex(h, r);
    return longest;
}

/* DoRHeapCompactRegion: decommits the pages above the last bitmap word
 * that holds a busy block. */
static uint32_t region_compact(struct ce6_heap *h, struct region *r)
{
    uint32_t w = r->commit / WORD_BLOCKS;
    while (w > 0 && word_all_free(r, (w - 1) * WORD_BLOCKS)) {
        w--;
    }
    uint32_t page_blocks = (uint32_t)(h->page / BLK);
    uint32_t keep = (uint32_t)align_up((size_t)w * WORD_BLOCKS, page_blocks);
    if (keep < r->commit) {
        heap_slot_decommit(&h->common, r->base + (size_t)keep * BLK, (size_t)(r->commit - keep) * BLK);
        granmap_set(&r->map, keep, r->commit, false);
        r->commit = keep;
        if (r->rover >= keep) {
            r->rover = 0;
        }
    }
    return region_enumerate(h, r);
}

/* HeapCompact (spec §10). */
static size_t ce6_compact(struct heap *hh, DWORD flags, DWORD *err)
{
    struct ce6_heap *h = ce6(hh);
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        *err = ERROR_INVALID_PARAMETER;
        return 0;
    }
    lock_enter(&h->common.lock);
    h->cur = 0;
    uint32_t best = region_compact(h, h->regions[0]);
    uint32_t dflt = h->maximum == 0 ? LATER_HDR : 0;
    for (uint32_t i = 1; i < h->nregions;) {
        struct region *r = h->regions[i];
        if (r->total == r->nfree + dflt) {
            region_release(h, i);
        } else {
            best = max_u32(best, region_compact(h, r));
            i++;
        }
    }
    heap_leave(&h->common);
    return (size_t)best * BLK;
}

/* ======================================================================
 * Consistency (HeapValidate(heap, 0, NULL))
 * ====================================================================== */

/* Items tile [0, commit); counts free blocks and the program's items. */
static bool region_consistent(const struct ce6_heap *h, uint32_t i, struct region *r,
                              size_t *live_bytes, size_t *live_items)
{
    uint32_t free_blocks_seen = 0;
    if (r->index != i || r->commit > r->total || r->rover > r->commit ||
        r->commit % (h->page / BLK) != 0 || !granmap_consistent(&r->map) ||
        maxtree_key(&h->k_max, i) != r->max) {
        return false;
    }
    uint32_t pinned_bits = 0;
    for (size_t k = 0; k < sizeof r->pinned / sizeof r->pinned[0]; k++) {
        pinned_bits += (uint32_t)__builtin_popcountll(r->pinned[k]);
    }
    if (pinned_bits != r->npinned) {
        return false;
    }
    for (uint32_t g = 0; g < r->commit;) {
        if (granmap_free(&r->map, g)) {
            if (granmap_start(&r->map, g)) {
                return false;
            }
            uint32_t e = granmap_next_busy(&r->map, g);
            free_blocks_seen += e - g;
            g = e;
        } else if (granmap_start(&r->map, g)) {
            uint32_t e = granmap_item_end(&r->map, g, r->commit);
            if (g >= r->hdr && pinned(r, g)) {
                /* a record: CE's item, not the program's */
            } else if (g >= r->hdr) {
                *live_bytes += (size_t)(e - g) * BLK;
                ++*live_items;
            } else if (g != 0 || e != r->hdr) {
                return false;
            }
            g = e;
        } else {
            return false;
        }
    }
    for (uint32_t g = r->commit; g < r->total; g++) {
        if (granmap_free(&r->map, g) || granmap_start(&r->map, g)) {
            return false;
        }
    }
    return r->nfree == free_blocks_seen + (r->total - r->commit);
}

static bool heap_consistent(struct ce6_heap *h)
{
    size_t live_bytes = 0, live_items = 0, committed = 0;
    flush_key(h); /* then every key is its region's maxBlkFree */
    if (h->nregions == 0 || h->cur >= h->nregions || !maxtree_consistent(&h->k_max)) {
        return false;
    }
    for (uint32_t i = 0; i < h->nregions; i++) {
        struct region *r = h->regions[i];
        if (!region_consistent(h, i, r, &live_bytes, &live_items)) {
            return false;
        }
        committed += (size_t)r->commit * BLK;
    }
    size_t nlarge = 0;
    for (const struct large *l = (struct large *)h->large_head; l != NULL;
         l = (struct large *)l->link.next) {
        live_bytes += l->pinned ? 0 : l->size;
        live_items += !l->pinned;
        committed += l->committed;
        nlarge++;
    }
    return live_bytes == h->common.st.live_bytes && live_items == h->common.st.live_blocks &&
           committed == h->common.st.committed_bytes && nlarge == h->common.st.large_items &&
           h->common.st.regions == h->nregions;
}

static bool ce6_busy_item(struct heap *hh, const void *p)
{
    enum loc loc = locate(ce6(hh), p).loc;
    return loc == LOC_BUSY || loc == LOC_LARGE;
}

static bool ce6_consistent(struct heap *hh)
{
    return heap_consistent(ce6(hh));
}

static void ce6_walk(struct heap *hh, heap_walk_fn fn, void *ctx)
{
    struct ce6_heap *h = ce6(hh);
    lock_enter(&h->common.lock);
    bool go = true;
    for (uint32_t i = 0; go && i < h->nregions; i++) {
        struct region *r = h->regions[i];
        struct heap_walk_entry e = {HEAP_WALK_REGION, r->base, r->reserve, (size_t)r->commit * BLK, true};
        go = fn(ctx, &e);
        for (uint32_t g = r->hdr; go && g < r->commit;) {
            bool busy = granmap_start(&r->map, g);
            uint32_t next = busy ? granmap_item_end(&r->map, g, r->commit) : granmap_next_busy(&r->map, g);
            struct heap_walk_entry it = {HEAP_WALK_ITEM, r->base + (size_t)g * BLK,
                                         (size_t)(next - g) * BLK, 0, busy};
            if (!busy || !pinned(r, g)) {
                go = fn(ctx, &it);
            }
            g = next;
        }
    }
    for (const struct large *l = (struct large *)h->large_head; go && l != NULL;
         l = (struct large *)l->link.next) {
        struct heap_walk_entry e = {HEAP_WALK_LARGE, l->base, l->size, l->committed, true};
        go = l->pinned || fn(ctx, &e);
    }
    heap_leave(&h->common);
}

/* The timeline's free figures: a free item is a maximal free run of
 * blocks of a region (as the walk reports it), from its header's blocks to
 * its committed end. */
static void ce6_free_figures(struct heap *hh, struct heap_free_figures *out)
{
    struct ce6_heap *h = ce6(hh);
    *out = (struct heap_free_figures){0};
    for (uint32_t i = 0; i < h->nregions; i++) {
        const struct region *r = h->regions[i];
        heap_free_figures_add(out, &r->map, r->hdr, r->commit, r->base, h->page, BLK, 0);
    }
}

bool heap_ce6_region_state(struct heap *hh, size_t i, struct heap_ce6_region_state *out)
{
    struct ce6_heap *h = ce6(hh);
    lock_enter(&h->common.lock);
    bool ok = i < h->nregions;
    if (ok) {
        const struct region *r = h->regions[i];
        out->base = r->base - h->blocks.base;
        out->total = r->total;
        out->commit = r->commit;
        out->rover = r->rover;
        out->nfree = r->nfree;
        out->max = r->max;
        out->current = i == h->cur;
    }
    heap_leave(&h->common);
    return ok;
}

HEAP_OPS_DEFINE(ce6, BLK);
