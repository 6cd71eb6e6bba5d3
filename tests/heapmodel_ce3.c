/*
 * heapmodel_ce3.c - the CE 3.0 heap, transcribed as simply as possible
 * (see heapmodel_ce3.h; the algorithm: docs/heaps/ce3.md).
 *
 * Addresses are slot offsets (uint32_t) exactly as CE's pointers are used:
 * a header is the 32-bit word at an address inside a region's image.
 */
#include "heapmodel_ce3.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK 0x10000u
#define PAGE 4096u
#define PMASK (PAGE - 1)
#define RMAX 0x60000u
#define VMIN 0x30000u
#define HS 8u
#define FREEB 1u
#define DEADB 2u
#define SMASK 0xFFFFFFFCu

struct m3_slot {
    uint32_t nblocks;
    uint8_t *used;   /* per block: reserved */
    uint8_t *commit; /* per page: committed */
};

struct m3_region {
    struct m3_region *growth;
    uint32_t mem, high, cur, nexttolast, committed, free, lastcompact, maxleft;
    bool is_new;
    uint8_t img[RMAX];
};

struct m3_va {
    struct m3_va *next;
    uint32_t base, size, blocks, rec;
};

struct m3_heap {
    struct m3_slot *s;
    uint32_t descs[64]; /* process heap: the descriptors of created heaps */
    size_t ndescs;
    struct m3_heap *process;
    uint32_t handle;
    struct m3_va *vallocs;
    struct m3_region *first;
};

/* ---- the fake slot ---- */

struct m3_slot *m3_slot_new(uint32_t nblocks)
{
    struct m3_slot *s = calloc(1, sizeof *s);
    s->nblocks = nblocks;
    s->used = calloc(nblocks, 1);
    s->commit = calloc((size_t)nblocks * (BLOCK / PAGE), 1);
    s->used[0] = 1;
    return s;
}

void m3_slot_free(struct m3_slot *s)
{
    free(s->used);
    free(s->commit);
    free(s);
}

size_t m3_slot_committed_pages(const struct m3_slot *s)
{
    size_t n = 0;
    for (size_t i = 0; i < (size_t)s->nblocks * (BLOCK / PAGE); i++) {
        n += s->commit[i];
    }
    return n;
}

static uint32_t reserve(struct m3_slot *s, uint32_t bytes)
{
    uint32_t need = (bytes + BLOCK - 1) / BLOCK;
    for (uint32_t b = 1; b + need <= s->nblocks; b++) {
        uint32_t k = 0;
        while (k < need && !s->used[b + k]) {
            k++;
        }
        if (k == need) {
            memset(s->used + b, 1, need);
            return b * BLOCK;
        }
        b += k;
    }
    return 0;
}

static void commit_pages(struct m3_slot *s, uint32_t a, uint32_t n)
{
    for (uint32_t p = a / PAGE; p < (a + n + PMASK) / PAGE; p++) {
        s->commit[p] = 1;
    }
}

static void decommit_pages(struct m3_slot *s, uint32_t a, uint32_t n)
{
    for (uint32_t p = a / PAGE; p < (a + n) / PAGE; p++) {
        s->commit[p] = 0;
    }
}

static void release(struct m3_slot *s, uint32_t a, uint32_t bytes)
{
    decommit_pages(s, a, (bytes + BLOCK - 1) / BLOCK * BLOCK);
    memset(s->used + a / BLOCK, 0, (bytes + BLOCK - 1) / BLOCK);
}

/* ---- headers ---- */

/* The header word of the item at p.  CE reads it wherever p points, so
 * p need not be aligned: read and written with memcpy. */
static uint32_t H(struct m3_region *r, uint32_t p)
{
    uint32_t v;
    memcpy(&v, r->img + (p - r->mem), sizeof v);
    return v;
}

static void set_H(struct m3_region *r, uint32_t p, uint32_t v)
{
    memcpy(r->img + (p - r->mem), &v, sizeof v);
}

#define SIZE(r, p) (H(r, p) & SMASK)
#define ISFREE(r, p) (H(r, p) & FREEB)
#define ISDEAD(r, p) (H(r, p) & DEADB)
#define INUSE(r, p) (!(H(r, p) & (FREEB | DEADB)))

static uint32_t NEXT(struct m3_region *r, uint32_t p)
{
    uint32_t p2 = p + HS + SIZE(r, p);
    return p2 >= r->high ? r->mem : p2;
}

static void initfree(struct m3_region *r, uint32_t p, uint32_t size)
{
    set_H(r, p, (size & SMASK) | FREEB);
}

static void initused(struct m3_region *r, uint32_t p, uint32_t size)
{
    set_H(r, p, size & SMASK);
}

static void initdead(struct m3_region *r, uint32_t p, uint32_t size)
{
    set_H(r, p, (size & SMASK) | DEADB);
}

/* Our stricter IsSigValid: p must be an item start, busy. */
static bool sigvalid(struct m3_region *r, uint32_t p)
{
    if (!r->mem || p < r->mem || p > r->high - HS) {
        return false;
    }
    uint32_t q = r->mem;
    do {
        if (q == p) {
            return INUSE(r, p);
        }
        q = NEXT(r, q);
    } while (q != r->mem);
    return false;
}

/* ---- FIXHEAP.C ---- */

static void growfree(struct m3_region *r, uint32_t p)
{
    uint32_t growth = 0, numnew = 0, n = NEXT(r, p);
    while (n > p && ISFREE(r, n)) {
        growth += SIZE(r, n) + HS;
        numnew++;
        n = NEXT(r, n);
    }
    if (growth) {
        set_H(r, p, H(r, p) + growth);
        r->free += HS * numnew;
    }
    if (r->maxleft && r->maxleft < SIZE(r, p)) {
        r->maxleft = SIZE(r, p);
    }
}

static bool makepotential(struct m3_slot *s, struct m3_region *r, uint32_t p, uint32_t size)
{
    uint32_t p2 = p;
    int deadbytes = 0, numpieces = 0, lastdead = 0, size2 = 0, maxhit = 0;
    do {
        numpieces++;
        if ((lastdead = ISDEAD(r, p2))) {
            maxhit = SIZE(r, p2) == r->maxleft;
            deadbytes += SIZE(r, p2);
        }
        p2 = NEXT(r, p2);
    } while (p2 != r->mem && !INUSE(r, p2) && p2 < p + size + HS);
    if (p2 == r->mem) {
        p2 = r->high;
    }
    if (p + HS + size > p2) {
        return false;
    }
    if (lastdead) {
        uint32_t t1 = (p + HS + size + HS + PMASK) & ~PMASK;
        uint32_t t2 = p2 & ~PMASK;
        if (t1 < t2) {
            deadbytes -= p2 - t1;
            size2 = p2 - t1;
            p2 = t1 - HS;
        } else {
            lastdead = 0;
        }
    }
    commit_pages(s, p & ~PMASK, p2 - (p & ~PMASK));
    if (lastdead) {
        initdead(r, p2, size2);
        numpieces--;
        if (r->maxleft && r->maxleft < SIZE(r, p2)) {
            r->maxleft = SIZE(r, p2);
        } else if (maxhit) {
            r->maxleft = 0;
        }
    }
    initfree(r, p, p2 - p - HS);
    numpieces--;
    r->committed += deadbytes;
    r->free += deadbytes;
    r->free += numpieces * HS;
    if (r->maxleft && r->maxleft < SIZE(r, p)) {
        r->maxleft = SIZE(r, p);
    }
    return true;
}

static void splitfree(struct m3_region *r, uint32_t p, uint32_t size)
{
    uint32_t cur = SIZE(r, p);
    if (r->maxleft == cur) {
        r->maxleft = 0;
    }
    if (cur - size > HS) {
        uint32_t p2 = p + HS + size;
        initfree(r, p, size);
        initfree(r, p2, cur - size - HS);
        if (r->maxleft && r->maxleft < SIZE(r, p2)) {
            r->maxleft = SIZE(r, p2);
        }
        r->free -= HS;
    }
}

static void shrinkblock(struct m3_region *r, uint32_t p, uint32_t size)
{
    uint32_t cur = SIZE(r, p);
    if (cur - size > HS) {
        uint32_t p2 = p + HS + size;
        set_H(r, p, size);
        initfree(r, p2, cur - size - HS);
        if (r->maxleft && r->maxleft < SIZE(r, p2)) {
            r->maxleft = SIZE(r, p2);
        }
        r->free += cur - size - HS;
    }
}

static bool setup(struct m3_slot *s, struct m3_region *r)
{
    uint32_t mem = reserve(s, RMAX);
    if (!mem) {
        return false;
    }
    commit_pages(s, mem, PAGE);
    r->committed = PAGE;
    r->free = PAGE - HS;
    r->mem = mem;
    r->high = mem + PAGE;
    initfree(r, mem, r->free);
    r->cur = mem;
    r->maxleft = SIZE(r, r->cur);
    return true;
}

static void compact(struct m3_slot *s, struct m3_region *r)
{
    uint32_t p, p2;
    int numpieces, deadbytes, size, size2;
    if (!(p = r->mem)) {
        return;
    }
    do {
        if (INUSE(r, p)) {
            p = NEXT(r, p);
            continue;
        }
        numpieces = deadbytes = 0;
        p2 = p;
        do {
            numpieces--;
            if (SIZE(r, p2) == r->maxleft) {
                r->maxleft = 0;
            }
            if (ISDEAD(r, p2)) {
                deadbytes -= SIZE(r, p2);
            }
        } while ((p2 = NEXT(r, p2)) != r->mem && !INUSE(r, p2));
        if (p2 != r->mem) {
            if (((p + HS + PMASK) & ~PMASK) < (p2 & ~PMASK)) {
                size = PAGE - (p & PMASK);
                if (size > (int)(HS + HS)) {
                    initfree(r, p, size - HS - HS);
                    if (r->maxleft && r->maxleft < SIZE(r, p)) {
                        r->maxleft = SIZE(r, p);
                    }
                    p += size - HS;
                    numpieces++;
                }
                size = p2 - p;
                if ((p2 & PMASK) >= HS) {
                    size -= p2 & PMASK;
                }
                initdead(r, p, size - HS);
                if (r->maxleft && r->maxleft < SIZE(r, p)) {
                    r->maxleft = SIZE(r, p);
                }
                numpieces++;
                size2 = (p2 & ~PMASK) - ((p + HS + PMASK) & ~PMASK);
                decommit_pages(s, (p + HS + PMASK) & ~PMASK, size2);
                deadbytes += size - HS;
                p += size;
            }
            if (p != p2) {
                initfree(r, p, p2 - p - HS);
                if (r->maxleft && r->maxleft < SIZE(r, p)) {
                    r->maxleft = SIZE(r, p);
                }
                numpieces++;
            }
            r->cur = r->mem;
            r->committed -= deadbytes;
            r->free -= deadbytes + numpieces * (int)HS;
            p = NEXT(r, p2);
        } else {
            if (p == r->mem) {
                release(s, r->mem, RMAX);
                memset(r->img, 0, r->high - r->mem);
                r->mem = r->high = r->cur = 0;
                r->committed = r->free = r->maxleft = 0;
            } else {
                if (p & PMASK) {
                    size = PAGE - (p & PMASK);
                    if (size < (int)HS) {
                        size += PAGE;
                    }
                    initfree(r, p, size - HS);
                    if (r->maxleft && r->maxleft < SIZE(r, p)) {
                        r->maxleft = SIZE(r, p);
                    }
                    numpieces++;
                    p = p + size;
                }
                if (p != r->high) {
                    size2 = r->high - p;
                    decommit_pages(s, p, size2);
                    deadbytes += size2;
                    r->high = p;
                }
                r->cur = r->mem;
                r->committed -= deadbytes;
                r->free -= deadbytes + numpieces * (int)HS;
            }
            break;
        }
    } while (p != r->mem);
    r->lastcompact = r->free;
}

static bool heapfree(struct m3_heap *h, uint32_t ptr);

static uint32_t found(struct m3_region *r, uint32_t p, uint32_t size)
{
    splitfree(r, p, size);
    r->free -= SIZE(r, p);
    if (r->maxleft == SIZE(r, p)) {
        r->maxleft = 0;
    }
    initused(r, p, SIZE(r, p));
    r->cur = NEXT(r, p);
    return p + HS;
}

static uint32_t heapalloc(struct m3_heap *h, struct m3_region *first, uint32_t size)
{
    struct m3_slot *s = h->s;
    struct m3_region *r;
    uint32_t p;
    if (size & 0x80000000u) {
        return 0;
    }
    size = (size + 7) & ~7u;
    if (size >= VMIN) {
        uint32_t base = reserve(s, size);
        if (!base) {
            return 0;
        }
        commit_pages(s, base, size);
        uint32_t rec = heapalloc(h, h->first, 12);
        if (!rec) {
            release(s, base, size);
            return 0;
        }
        struct m3_va *va = calloc(1, sizeof *va);
        va->base = base;
        va->size = (size + PMASK) & ~PMASK;
        va->blocks = size;
        va->rec = rec;
        va->next = h->vallocs;
        h->vallocs = va;
        return base;
    }
    for (r = first; r; r = r->growth) {
        if (!r->mem && !setup(s, r)) {
            return 0;
        }
        if ((!r->maxleft && size <= r->free) || size <= r->maxleft) {
            uint32_t maxleft = 0;
            p = r->cur;
            do {
                if (!INUSE(r, p)) {
                    if (ISFREE(r, p)) {
                        growfree(r, p);
                        if (SIZE(r, p) >= size) {
                            return found(r, p, size);
                        }
                    }
                    if (SIZE(r, p) > maxleft) {
                        maxleft = SIZE(r, p);
                    }
                }
                p = NEXT(r, p);
            } while (p > r->cur || p + SIZE(r, p) < r->cur);
            r->maxleft = maxleft;
        }
        r->cur = r->mem;
    }
    for (r = first; r; r = r->growth) {
        p = r->mem;
        if (size <= r->free + RMAX - r->committed) {
            do {
                if (!INUSE(r, p) && makepotential(s, r, p, size)) {
                    return found(r, p, size);
                }
                r->nexttolast = p;
                p = NEXT(r, p);
            } while (p != r->mem);
        }
    }
    for (r = first; r; r = r->growth) {
        if (size <= r->free + (r->mem + RMAX - r->high)) {
            uint32_t presize;
            if (!ISFREE(r, r->nexttolast) || ISDEAD(r, r->nexttolast)) {
                p = r->high;
                presize = 0;
            } else {
                p = r->nexttolast;
                presize = SIZE(r, r->nexttolast) + HS;
            }
            uint32_t increase = (size - presize + HS + PMASK) & ~PMASK;
            if (r->high + increase <= r->mem + RMAX) {
                commit_pages(s, r->high, increase);
                r->high += increase;
                r->committed += increase;
                r->free += increase;
                if (!presize) {
                    r->free -= HS;
                }
                initfree(r, p, increase - HS + presize);
                if (r->maxleft && SIZE(r, p) > r->maxleft) {
                    r->maxleft = SIZE(r, p);
                }
                return found(r, p, size);
            }
        }
    }
    if (first->is_new) {
        return 0;
    }
    struct m3_region *nr = calloc(1, sizeof *nr);
    nr->is_new = true;
    uint32_t got = heapalloc(h, nr, size);
    if (got && heapalloc(h, nr, 52)) {
        nr->growth = first->growth;
        first->growth = nr;
        nr->is_new = false;
        return got;
    }
    if (nr->mem) {
        release(s, nr->mem, RMAX);
    }
    free(nr);
    return 0;
}

static bool heapfree(struct m3_heap *h, uint32_t ptr)
{
    uint32_t p2 = ptr - HS;
    for (struct m3_region *r = h->first; r; r = r->growth) {
        if (r->mem && sigvalid(r, p2)) {
            r->free += SIZE(r, p2);
            initfree(r, p2, SIZE(r, p2));
            growfree(r, p2);
            r->cur = p2;
            if (r->free > (r->committed >> 3) && r->free > r->lastcompact + PAGE * 6) {
                compact(h->s, r);
            }
            return true;
        }
    }
    struct m3_va *prev = NULL;
    for (struct m3_va *va = h->vallocs; va; prev = va, va = va->next) {
        if (va->base == ptr) {
            if (!prev) {
                h->vallocs = va->next;
            } else {
                prev->next = va->next;
            }
            release(h->s, va->base, va->blocks);
            uint32_t rec = va->rec;
            free(va);
            heapfree(h, rec); /* FixedHeapFree(pHeap, pva) */
            return true;
        }
    }
    return false;
}

static uint32_t usable(struct m3_heap *h, uint32_t ptr)
{
    for (struct m3_region *r = h->first; r; r = r->growth) {
        if (r->mem && sigvalid(r, ptr - HS)) {
            return SIZE(r, ptr - HS);
        }
    }
    for (struct m3_va *va = h->vallocs; va; va = va->next) {
        if (va->base == ptr) {
            return va->size;
        }
    }
    return M3_NONE;
}

static uint32_t heaprealloc(struct m3_heap *h, uint32_t ptr, uint32_t size, bool move)
{
    uint32_t np;
    for (struct m3_va *va = h->vallocs; va; va = va->next) {
        if (va->base == ptr) {
            if (size <= va->size) {
                if (!move) {
                    return ptr;
                }
                if (!(np = heapalloc(h, h->first, size))) {
                    return ptr;
                }
            } else {
                if (!move) {
                    return 0;
                }
                if (!(np = heapalloc(h, h->first, size))) {
                    return 0;
                }
            }
            heapfree(h, ptr);
            return np;
        }
    }
    if (size & 0x80000000u) {
        return 0;
    }
    size = (size + 7) & ~7u;
    uint32_t p = ptr - HS;
    for (struct m3_region *r = h->first; r; r = r->growth) {
        if (r->mem && sigvalid(r, p)) {
            uint32_t old = SIZE(r, p);
            if (size <= old) {
                shrinkblock(r, p, size);
                r->cur = NEXT(r, p);
                return ptr;
            }
            uint32_t n = NEXT(r, p);
            if (n > p && ISFREE(r, n)) {
                growfree(r, n);
                if (SIZE(r, n) + HS + old >= size) {
                    r->free -= SIZE(r, n);
                    if (r->maxleft == SIZE(r, n)) {
                        r->maxleft = 0;
                    }
                    initused(r, p, old + SIZE(r, n) + HS);
                    shrinkblock(r, p, size);
                    r->cur = NEXT(r, p);
                    return ptr;
                }
                r->cur = n;
            }
            if (move && (np = heapalloc(h, h->first, size))) {
                heapfree(h, ptr);
                return np;
            }
            return 0;
        }
    }
    return 0;
}

/* ---- LMEM.C ---- */

struct m3_heap *m3_process_heap(struct m3_slot *s)
{
    struct m3_heap *h = calloc(1, sizeof *h);
    h->s = s;
    h->first = calloc(1, sizeof *h->first);
    return h;
}

struct m3_heap *m3_create(struct m3_heap *process, uint32_t flags, uint32_t *err)
{
    if (flags & ~1u) {
        *err = 87;
        return NULL;
    }
    uint32_t d = heapalloc(process, process->first, 52);
    if (!d) {
        *err = 8;
        return NULL;
    }
    struct m3_heap *h = m3_process_heap(process->s);
    if (process->ndescs < 64) {
        process->descs[process->ndescs++] = d;
    }
    h->process = process;
    h->handle = d;
    return h;
}

void m3_destroy(struct m3_heap *h)
{
    while (h->vallocs) {
        struct m3_va *va = h->vallocs;
        h->vallocs = va->next;
        release(h->s, va->base, va->blocks);
        free(va);
    }
    for (struct m3_region *r = h->first, *n; r; r = n) {
        n = r->growth;
        if (r->mem) {
            release(h->s, r->mem, RMAX);
        }
        free(r);
    }
    if (h->process) {
        struct m3_heap *p = h->process;
        for (size_t i = 0; i < p->ndescs; i++) {
            if (p->descs[i] == h->handle) {
                p->descs[i] = p->descs[--p->ndescs];
                break;
            }
        }
        heapfree(p, h->handle);
    }
    free(h);
}

uint32_t m3_handle(const struct m3_heap *h)
{
    return h->handle;
}

uint32_t m3_alloc(struct m3_heap *h, uint32_t flags, size_t n, uint32_t *err)
{
    if (flags & ~(1u | 8u)) {
        *err = 87;
        return 0;
    }
    uint32_t p = n > 0x7FFFFFFFu ? 0 : heapalloc(h, h->first, (uint32_t)n);
    if (!p) {
        *err = 8;
    }
    return p;
}

uint32_t m3_realloc(struct m3_heap *h, uint32_t flags, uint32_t p, size_t n, uint32_t *err)
{
    if (flags & ~(1u | 4u | 8u | 0x10u)) {
        *err = 87;
        return 0;
    }
    if (flags & 4u) {
        *err = 50;
        return 0;
    }
    if (!p) {
        *err = 87;
        return 0;
    }
    uint32_t q = n > 0x7FFFFFFFu ? 0 : heaprealloc(h, p, (uint32_t)n, !(flags & 0x10u));
    if (!q) {
        *err = 8;
    }
    return q;
}

bool m3_free(struct m3_heap *h, uint32_t flags, uint32_t p, uint32_t *err)
{
    if ((flags & ~1u) || !p || !heapfree(h, p)) {
        *err = 87;
        return false;
    }
    return true;
}

uint32_t m3_size(struct m3_heap *h, uint32_t flags, uint32_t p, uint32_t *err)
{
    if (flags & ~1u) {
        *err = 87;
        return M3_NONE;
    }
    return usable(h, p);
}

bool m3_region_state(const struct m3_heap *h, size_t i, struct m3_state *out)
{
    const struct m3_region *r = h->first;
    while (r && i--) {
        r = r->growth;
    }
    if (!r) {
        return false;
    }
    out->base = r->mem;
    out->high = r->mem ? r->high - r->mem : 0;
    out->cur = r->mem ? r->cur - r->mem : 0;
    out->committed = r->committed;
    out->free = r->free;
    out->max_left = r->maxleft;
    out->last_compact = r->lastcompact;
    return true;
}

bool m3_is_internal(const struct m3_heap *h, uint32_t p)
{
    for (size_t i = 0; i < h->ndescs; i++) {
        if (h->descs[i] == p) {
            return true;
        }
    }
    for (const struct m3_va *va = h->vallocs; va; va = va->next) {
        if (va->rec == p) {
            return true;
        }
    }
    return false;
}
