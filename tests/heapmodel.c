/*
 * heapmodel.c - reference model of the Windows CE 5.0 heap (see heapmodel.h).
 *
 * Written from the algorithm's description for clarity, not speed: item
 * headers live in an image of each region's memory, every lookup walks the
 * items from the first, every search is CE's linear scan.  Nothing here is
 * shared with src/heap/ce5.c.
 */
#include "heapmodel.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define P 4096u
#define BLOCK 0x10000u
#define REGION 0x2F000u
#define ALIGN16(x) (((x) + 15u) & ~15u)
#define PAGEUP(x) (((x) + P - 1) & ~(P - 1))
#define UP64K(x) (((x) + BLOCK - 1) & ~(BLOCK - 1))

#define ERR_NOMEM 8u
#define ERR_PARAM 87u
#define ERR_NOTSUP 50u

#define F_NO_SERIALIZE 0x1u
#define F_GENERATE_EXCEPTIONS 0x4u
#define F_ZERO 0x8u
#define F_IN_PLACE 0x10u

/* ---- the fake slot ---- */

struct hm_slot {
    uint32_t nblocks;
    bool *used;
    size_t committed_pages;
};

struct hm_slot *hm_slot_new(uint32_t nblocks)
{
    struct hm_slot *s = calloc(1, sizeof *s);
    s->nblocks = nblocks;
    s->used = calloc(nblocks, sizeof(bool));
    s->used[0] = true; /* block 0 is never handed out */
    return s;
}

void hm_slot_free(struct hm_slot *s)
{
    free(s->used);
    free(s);
}

size_t hm_slot_committed_pages(const struct hm_slot *s)
{
    return s->committed_pages;
}

uint32_t hm_slot_free_blocks(const struct hm_slot *s)
{
    uint32_t n = 0;
    for (uint32_t b = 0; b < s->nblocks; b++) {
        n += !s->used[b];
    }
    return n;
}

/* VirtualAlloc(NULL, bytes, MEM_RESERVE, PAGE_READWRITE): first fit. */
static uint32_t slot_reserve(struct hm_slot *s, uint64_t bytes, uint32_t *err)
{
    if (bytes >= (uint64_t)s->nblocks * BLOCK) {
        *err = ERR_PARAM; /* the slot-size limit */
        return 0;
    }
    uint32_t want = (uint32_t)(UP64K(bytes) / BLOCK);
    for (uint32_t b = 1; b + want <= s->nblocks; b++) {
        uint32_t k = 0;
        while (k < want && !s->used[b + k]) {
            k++;
        }
        if (k == want) {
            for (k = 0; k < want; k++) {
                s->used[b + k] = true;
            }
            return b * BLOCK;
        }
        b += k;
    }
    *err = ERR_NOMEM;
    return 0;
}

static void slot_release(struct hm_slot *s, uint32_t base, uint32_t bytes)
{
    for (uint32_t b = base / BLOCK; b < (base + UP64K(bytes)) / BLOCK; b++) {
        s->used[b] = false;
    }
}

/* ---- heaps ---- */

struct region {
    uint32_t base, cbRegion;
    uint32_t first;     /* header of the first item */
    uint32_t pitFree;   /* the rover */
    uint32_t pitLast;
    int32_t cbMaxFree;
    uint32_t cbTail;    /* the end marker's field */
    uint32_t end;       /* the end marker's header (CE finds it by walking; kept for speed of the checks) */
    int32_t *mem;       /* the size field at each 8-byte position of the region */
    struct region *next;
};

struct large {
    uint32_t base, committed, reserve;
    struct large *next;
};

struct hm_heap {
    struct hm_slot *slot;
    uint32_t cbMaximum;
    struct region *regions;
    struct large *larges;
};

static int32_t *at(const struct region *r, uint32_t item)
{
    assert(item >= r->base && item < r->base + r->cbRegion && item % 8 == 0);
    return &r->mem[(item - r->base) / 8];
}

static int32_t size_of(const struct region *r, uint32_t item)
{
    return *at(r, item);
}

static uint32_t absize(const struct region *r, uint32_t item)
{
    int32_t s = size_of(r, item);
    return (uint32_t)(s < 0 ? -s : s);
}

static uint32_t end_marker(const struct region *r)
{
    return r->end;
}

static uint32_t committed_of(const struct region *r)
{
    return end_marker(r) + 8 - r->base;
}

static bool commit(struct hm_heap *h, uint32_t bytes)
{
    h->slot->committed_pages += bytes / P;
    return true;
}

static void decommit(struct hm_heap *h, uint32_t bytes)
{
    h->slot->committed_pages -= bytes / P;
}

/* A region of cbRegion bytes whose first item header is `first_off` from
 * its base, with `initial` bytes committed. */
static struct region *new_region(struct hm_heap *h, uint32_t cbRegion, uint32_t first_off,
                                 uint32_t initial, uint32_t *err)
{
    uint32_t e = 0;
    uint32_t base = slot_reserve(h->slot, cbRegion, &e);
    if (base == 0) {
        *err = ERR_NOMEM;
        return NULL;
    }
    commit(h, initial);
    struct region *r = calloc(1, sizeof *r);
    r->base = base;
    r->cbRegion = cbRegion;
    r->mem = calloc(cbRegion / 8, sizeof(int32_t));
    r->first = base + first_off;
    uint32_t fsize = (initial - first_off - 8) & ~15u;
    *at(r, r->first) = -(int32_t)fsize;
    *at(r, r->first + fsize) = 0; /* the end marker */
    r->end = r->first + fsize;
    r->cbTail = cbRegion - initial;
    r->pitFree = r->pitLast = r->first;
    r->cbMaxFree = (int32_t)fsize;
    return r;
}

struct hm_heap *hm_create(struct hm_slot *s, uint32_t flags, size_t initial, size_t max,
                          uint32_t *err)
{
    if (flags & ~F_NO_SERIALIZE) {
        *err = ERR_PARAM;
        return NULL;
    }
    uint32_t ini = initial > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)initial;
    uint32_t mx = max > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)max;
    ini = PAGEUP(ini); /* 32-bit arithmetic: wraps near 4 GB */
    mx = PAGEUP(mx);
    uint32_t cbRegion = mx ? mx : REGION;
    ini = ini == 0 ? P : (ini < cbRegion ? ini : cbRegion);
    struct hm_heap *h = calloc(1, sizeof *h);
    h->slot = s;
    h->cbMaximum = mx;
    /* heap header 0x30 bytes + embedded region 0x20 + padding: header at 0x58 */
    h->regions = new_region(h, cbRegion, 0x58, ini, err);
    if (h->regions == NULL) {
        free(h);
        *err = ERR_NOMEM;
        return NULL;
    }
    return h;
}

uint32_t hm_handle(const struct hm_heap *h)
{
    return h->regions->base;
}

static void free_large(struct hm_heap *h, struct large *l)
{
    struct large **pp = &h->larges;
    while (*pp != l) {
        pp = &(*pp)->next;
    }
    *pp = l->next;
    decommit(h, l->committed);
    slot_release(h->slot, l->base, l->reserve);
    free(l);
}

void hm_destroy(struct hm_heap *h)
{
    while (h->larges != NULL) {
        free_large(h, h->larges);
    }
    for (struct region *r = h->regions, *next; r != NULL; r = next) {
        next = r->next;
        decommit(h, committed_of(r));
        slot_release(h->slot, r->base, r->cbRegion);
        free(r->mem);
        free(r);
    }
    free(h);
}

/* ---- CE's algorithm ---- */

/* MergeFreeItems: X absorbs the free items right after it; the rover moves
 * to X; pitLast follows if the run reaches the end marker.  Returns the
 * item after the run. */
static uint32_t merge(struct region *r, uint32_t x)
{
    if (size_of(r, x) >= 0) {
        return x;
    }
    uint32_t total = absize(r, x);
    uint32_t q = x + total;
    while (size_of(r, q) < 0) {
        total += absize(r, q);
        q = x + total;
    }
    *at(r, x) = -(int32_t)total;
    if (size_of(r, q) == 0) {
        r->pitLast = x;
    }
    r->pitFree = x;
    return q;
}

/* FindFreeItemInRegion. */
static uint32_t search(struct region *r, uint32_t cbSeek)
{
    uint32_t start = r->pitFree;
    if (size_of(r, start) == 0) {
        start = r->first;
    }
    uint32_t p = start, cand = 0, recordedTail = 0;
    int32_t cbMax = 0;
    bool wrapped = false, found = false;
    do {
        while (size_of(r, p) > 0) {
            p += absize(r, p);
        }
        cand = p;
        p = merge(r, cand);
        int32_t f = -size_of(r, cand);
        if (size_of(r, cand) == 0) {
            f = 0;
        }
        if (f >= (int32_t)cbSeek) {
            if (f - (int32_t)cbSeek > cbMax) {
                cbMax = f - (int32_t)cbSeek;
            }
            found = true;
            break;
        }
        if (f > cbMax) {
            cbMax = f;
        }
        if (wrapped && p >= start) {
            break;
        }
        if (size_of(r, p) == 0) {
            assert(!wrapped);
            wrapped = true;
            recordedTail = cand;
            p = r->first;
        }
    } while (!wrapped || p < start);

    uint32_t result = cand;
    if (!found) {
        uint32_t t = size_of(r, p) == 0 ? cand : recordedTail;
        result = (r->cbTail + absize(r, t) < cbSeek + 8) ? 0 : t;
        r->cbMaxFree = 0;
    }
    if (cbMax > r->cbMaxFree) {
        r->cbMaxFree = cbMax | (r->cbMaxFree & 1);
    }
    return result;
}

/* CarveItem: cbSeek bytes from item x (free, or the end marker).  With
 * grow != 0, the busy item grow (just before x) takes them.  Returns false
 * if the commit failed. */
static bool carve(struct hm_heap *h, struct region *r, uint32_t x, uint32_t cbSeek, uint32_t grow)
{
    uint32_t f = size_of(r, x) == 0 ? 0 : absize(r, x);
    if (f < cbSeek) {
        uint32_t cbEx = PAGEUP(cbSeek - f + 8);
        uint32_t end = x + f;
        assert(end == r->end); /* x must lie next to the end marker */
        if (!commit(h, cbEx)) {
            return false;
        }
        *at(r, end + cbEx) = 0;
        r->end = end + cbEx;
        r->cbTail -= cbEx;
        *at(r, x) = -(int32_t)(f + cbEx);
        f += cbEx;
        if ((int32_t)(f - cbSeek) > r->cbMaxFree) {
            r->cbMaxFree = (int32_t)(f - cbSeek) | (r->cbMaxFree & 1);
        }
    }
    if (f <= cbSeek + 8) {
        cbSeek = f;
    }
    if (f > cbSeek) {
        *at(r, x + cbSeek) = -(int32_t)(f - cbSeek);
    }
    if (grow != 0) {
        *at(r, grow) += (int32_t)cbSeek;
    } else {
        *at(r, x) = (int32_t)cbSeek;
    }
    uint32_t n = x + cbSeek;
    if (size_of(r, n) <= 0) {
        if (r->pitFree > n) {
            r->pitFree = n;
        }
        if (size_of(r, n + absize(r, n)) == 0) {
            r->pitLast = n;
        }
    }
    return true;
}

static struct region *last_region(struct hm_heap *h)
{
    struct region *r = h->regions;
    while (r->next != NULL) {
        r = r->next;
    }
    return r;
}

static uint32_t alloc_large(struct hm_heap *h, size_t n, uint32_t *err)
{
    uint32_t committed = PAGEUP((uint32_t)n + 32);
    uint32_t reserve = UP64K(committed);
    uint32_t e = 0;
    uint32_t base = slot_reserve(h->slot, reserve, &e);
    if (base == 0) {
        *err = e;
        return 0;
    }
    commit(h, committed);
    struct large *l = calloc(1, sizeof *l);
    l->base = base;
    l->committed = committed;
    l->reserve = reserve;
    l->next = h->larges;
    h->larges = l;
    return base + 0x20;
}

/* HeapAlloc without the argument checks. */
static uint32_t do_alloc(struct hm_heap *h, size_t n, uint32_t *err)
{
    if (h->cbMaximum == 0 && n + 24 >= 0x18000) {
        return alloc_large(h, n, err);
    }
    uint32_t cbSeek = ALIGN16((uint32_t)n + 8);
    struct region *r = NULL;
    uint32_t x = 0;
    for (r = h->regions; r != NULL; r = r->next) { /* pass 1 */
        if (r->cbMaxFree >= (int32_t)cbSeek) {
            x = search(r, cbSeek);
            if (x != 0) {
                break;
            }
        }
    }
    if (x == 0) { /* pass 2 */
        for (r = h->regions; r != NULL; r = r->next) {
            if (r->cbMaxFree & 1) {
                x = search(r, cbSeek);
                if (x != 0) {
                    break;
                }
            } else {
                uint32_t last = r->pitLast;
                uint32_t lsize = size_of(r, last) == 0 ? 0 : absize(r, last);
                if (r->cbTail + lsize > cbSeek) {
                    x = last;
                    break;
                }
            }
        }
    }
    if (x == 0) {
        if (h->cbMaximum != 0) {
            *err = 0;
            return 0;
        }
        uint32_t c = PAGEUP(cbSeek + 0x30);
        r = new_region(h, REGION, 0x28, c, err);
        if (r == NULL) {
            return 0;
        }
        last_region(h)->next = r;
        x = r->first;
    }
    if (!carve(h, r, x, cbSeek, 0)) {
        *err = ERR_NOMEM;
        return 0;
    }
    return x + 8;
}

uint32_t hm_alloc(struct hm_heap *h, uint32_t flags, size_t n, uint32_t *err)
{
    if (flags & ~(F_NO_SERIALIZE | F_ZERO)) {
        *err = ERR_PARAM;
        return 0;
    }
    if (n > 0x40000000u) {
        *err = ERR_NOMEM;
        return 0;
    }
    return do_alloc(h, n, err);
}

/* ---- pointers ---- */

enum kind { K_FOREIGN, K_INTERIOR, K_FREED, K_BUSY, K_LARGE };

/* What p is for this heap, by walking the items of its region. */
static enum kind classify(struct hm_heap *h, uint32_t p, struct region **rp, struct large **lp)
{
    for (struct large *l = h->larges; l != NULL; l = l->next) {
        if (p >= l->base && p < l->base + l->reserve) {
            *lp = l;
            return p == l->base + 0x20 ? K_LARGE : K_INTERIOR;
        }
    }
    for (struct region *r = h->regions; r != NULL; r = r->next) {
        if (p < r->base || p >= r->base + UP64K(r->cbRegion)) {
            continue;
        }
        *rp = r;
        if (p < r->first + 8 || (p - r->first - 8) % 16 != 0) {
            return K_INTERIOR;
        }
        for (uint32_t it = r->first; size_of(r, it) != 0; it += absize(r, it)) {
            if (p - 8 == it) {
                return size_of(r, it) > 0 ? K_BUSY : K_FREED;
            }
            if (p - 8 > it && p - 8 < it + absize(r, it)) {
                /* inside an item: a stale header in free space counts as freed */
                return size_of(r, it) < 0 ? K_FREED : K_INTERIOR;
            }
        }
        return K_INTERIOR; /* the end marker or beyond */
    }
    return K_FOREIGN;
}

static void free_small(struct region *r, uint32_t item)
{
    *at(r, item) = -size_of(r, item);
    merge(r, item);
    int32_t merged = -size_of(r, item);
    if (r->cbMaxFree < merged) {
        r->cbMaxFree = merged;
    }
    r->cbMaxFree |= 1;
}

bool hm_free(struct hm_heap *h, uint32_t flags, uint32_t p, uint32_t *err)
{
    if (flags & ~F_NO_SERIALIZE) {
        *err = ERR_PARAM;
        return false;
    }
    struct region *r = NULL;
    struct large *l = NULL;
    switch (classify(h, p, &r, &l)) {
    case K_BUSY:
        free_small(r, p - 8);
        return true;
    case K_LARGE:
        free_large(h, l);
        return true;
    case K_FREED:
        *err = 0;
        return false;
    default:
        *err = ERR_PARAM;
        return false;
    }
}

uint32_t hm_size(struct hm_heap *h, uint32_t flags, uint32_t p, uint32_t *err)
{
    if (flags & ~F_NO_SERIALIZE) {
        *err = ERR_PARAM;
        return HM_NONE;
    }
    struct region *r = NULL;
    struct large *l = NULL;
    switch (classify(h, p, &r, &l)) {
    case K_BUSY:
        return (uint32_t)size_of(r, p - 8) - 8;
    case K_LARGE:
        return l->committed - 32;
    case K_FREED:
        *err = 0;
        return HM_NONE;
    default:
        *err = ERR_PARAM;
        return HM_NONE;
    }
}

uint32_t hm_realloc(struct hm_heap *h, uint32_t flags, uint32_t p, size_t n, uint32_t *err)
{
    if (flags & ~(F_NO_SERIALIZE | F_GENERATE_EXCEPTIONS | F_ZERO | F_IN_PLACE)) {
        *err = ERR_PARAM;
        return 0;
    }
    if (flags & F_GENERATE_EXCEPTIONS) {
        *err = ERR_NOTSUP;
        return 0;
    }
    struct region *r = NULL;
    struct large *l = NULL;
    enum kind k = classify(h, p, &r, &l);
    if (k != K_BUSY && k != K_LARGE) {
        *err = ERR_PARAM;
        return 0;
    }
    if (n > 0x40000000u) {
        *err = ERR_NOMEM;
        return 0;
    }
    if (k == K_LARGE) {
        if (PAGEUP((uint32_t)n + 32) <= l->committed) {
            return p;
        }
    } else {
        uint32_t item = p - 8;
        uint32_t cbSeek = ALIGN16((uint32_t)n + 8);
        uint32_t cur = (uint32_t)size_of(r, item);
        if (cbSeek <= cur) {
            if (cur > cbSeek + 8) {
                *at(r, item + cbSeek) = -(int32_t)(cur - cbSeek);
                *at(r, item) = (int32_t)cbSeek;
                if (r->cbMaxFree < (int32_t)(cur - cbSeek)) {
                    r->cbMaxFree = (int32_t)(cur - cbSeek) | (r->cbMaxFree & 1);
                }
            }
            return p;
        }
        uint32_t next = item + cur;
        if (size_of(r, next) <= 0) {
            uint32_t after = merge(r, next);
            uint32_t g = size_of(r, next) == 0 ? 0 : absize(r, next);
            bool can = cur + g >= cbSeek ||
                       (size_of(r, after) == 0 && cur + g + r->cbTail > cbSeek);
            if (can) {
                if (!carve(h, r, next, cbSeek - cur, item)) {
                    *err = ERR_NOMEM;
                    return 0;
                }
                if (r->pitFree > item) {
                    r->pitFree = item + (uint32_t)size_of(r, item);
                }
                return p;
            }
        }
    }
    if (flags & F_IN_PLACE) {
        *err = ERR_NOMEM;
        return 0;
    }
    uint32_t q = do_alloc(h, n, err);
    if (q == 0) {
        return 0;
    }
    if (k == K_LARGE) {
        free_large(h, l);
    } else {
        free_small(r, p - 8);
    }
    return q;
}

uint32_t hm_compact(struct hm_heap *h, uint32_t flags, uint32_t *err)
{
    if (flags & ~F_NO_SERIALIZE) {
        *err = ERR_PARAM;
        return 0;
    }
    int32_t best = 0;
    for (struct region *r = h->regions; r != NULL; r = r->next) {
        uint32_t p = r->first;
        while (size_of(r, p) != 0) {
            if (size_of(r, p) > 0) {
                p += absize(r, p);
                continue;
            }
            uint32_t run = p;
            p = merge(r, run);
            uint32_t size = absize(r, run);
            if (size_of(r, p) == 0 && size >= P) {
                uint32_t head = P - (run & (P - 1)) - 8;
                uint32_t cbEx = (size - head) & ~(P - 1);
                *at(r, run) = -(int32_t)head;
                *at(r, run + head) = 0;
                r->end = run + head;
                r->cbTail += cbEx;
                r->pitLast = run;
                decommit(h, cbEx);
                p = run + head;
            }
        }
        /* The exact largest free item after trimming. */
        int32_t m = 0;
        for (uint32_t it = r->first; size_of(r, it) != 0; it += absize(r, it)) {
            if (-size_of(r, it) > m) {
                m = -size_of(r, it);
            }
        }
        r->cbMaxFree = m;
        if (m > best) {
            best = m;
        }
    }
    return (uint32_t)best;
}

/* ---- introspection ---- */

size_t hm_region_count(const struct hm_heap *h)
{
    size_t n = 0;
    for (const struct region *r = h->regions; r != NULL; r = r->next) {
        n++;
    }
    return n;
}

static const struct region *region_at(const struct hm_heap *h, size_t i)
{
    const struct region *r = h->regions;
    while (i-- > 0) {
        r = r->next;
    }
    return r;
}

void hm_region_state(const struct hm_heap *h, size_t i, struct hm_region_state *out)
{
    const struct region *r = region_at(h, i);
    out->base = r->base;
    out->reserved = r->cbRegion;
    out->committed = committed_of(r);
    out->rover = r->pitFree;
    out->last = r->pitLast;
    out->end = end_marker(r);
    out->max_free = (uint32_t)r->cbMaxFree;
}

void hm_free_runs(const struct hm_heap *h, size_t i, void (*fn)(void *ctx, uint32_t hdr, uint32_t bytes),
                  void *ctx)
{
    const struct region *r = region_at(h, i);
    uint32_t it = r->first;
    while (size_of(r, it) != 0) {
        if (size_of(r, it) > 0) {
            it += absize(r, it);
            continue;
        }
        uint32_t start = it, bytes = 0;
        while (size_of(r, it) < 0) {
            bytes += absize(r, it);
            it += absize(r, it);
        }
        fn(ctx, start, bytes);
    }
}
