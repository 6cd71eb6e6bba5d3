/*
 * heapmodel_ce6.c - the literal model of the CE 6.0 heap (see
 * heapmodel_ce6.h).  Each function is named after the CE routine it stands
 * for and works on the 2-bit bitmap words as that routine does.
 */
#include "heapmodel_ce6.h"

#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define GRAN 0x10000u
#define BLK 32u
#define RGN_BYTES 0xF000u     /* CE_FIXED_HEAP_MAXSIZE */
#define HEAP_HDR_BYTES 596u   /* RHEAP (116) + 120 bitmap words */
#define RGN_HDR_BYTES 528u    /* RHRGN (48) + 120 bitmap words */
#define VA_BLOCKS 512u        /* RHEAP_VA_BLOCK_CNT */
#define MAX_ALLOC 0x40000000u /* HEAP_MAX_ALLOC */
#define ALL_CONT 0x55555555u
#define NO_IDX 0xFFFFFFFFu

#define F_NO_SERIALIZE 0x01u
#define F_GENERATE_EXCEPTIONS 0x04u
#define F_ZERO_MEMORY 0x08u
#define F_IN_PLACE_ONLY 0x10u
#define E_NOT_ENOUGH_MEMORY 8u
#define E_NOT_SUPPORTED 50u
#define E_INVALID_PARAMETER 87u

/* ---------------- the fake slot ---------------- */

struct m6_slot {
    uint32_t nblocks;
    uint32_t *res_blocks; /* at a reservation's first block: its length */
    bool *used;           /* block reserved */
    bool *committed;      /* per page */
    struct m6_heap *process; /* the first heap made on it */
};

struct m6_slot *m6_slot_new(uint32_t nblocks)
{
    struct m6_slot *s = calloc(1, sizeof *s);
    s->nblocks = nblocks;
    s->res_blocks = calloc(nblocks, sizeof *s->res_blocks);
    s->used = calloc(nblocks, sizeof *s->used);
    s->committed = calloc((size_t)nblocks * (GRAN / PAGE), sizeof *s->committed);
    return s;
}

void m6_slot_free(struct m6_slot *s)
{
    free(s->res_blocks);
    free(s->used);
    free(s->committed);
    free(s);
}

size_t m6_slot_committed_pages(const struct m6_slot *s)
{
    size_t n = 0;
    for (size_t i = 0; i < (size_t)s->nblocks * (GRAN / PAGE); i++) {
        n += s->committed[i];
    }
    return n;
}

uint32_t m6_slot_free_blocks(const struct m6_slot *s)
{
    uint32_t n = 0;
    for (uint32_t b = 1; b < s->nblocks; b++) {
        n += !s->used[b];
    }
    return n;
}

/* First fit from block 1; 0 when no run is long enough. */
static uint32_t slot_reserve(struct m6_slot *s, uint32_t bytes)
{
    uint32_t need = (bytes + GRAN - 1) / GRAN;
    for (uint32_t b = 1; b + need <= s->nblocks; b++) {
        uint32_t k = 0;
        while (k < need && !s->used[b + k]) {
            k++;
        }
        if (k == need) {
            for (k = 0; k < need; k++) {
                s->used[b + k] = true;
            }
            s->res_blocks[b] = need;
            return b * GRAN;
        }
        b += k;
    }
    return 0;
}

static void slot_commit(struct m6_slot *s, uint32_t off, uint32_t bytes)
{
    for (uint32_t p = off / PAGE; p < (off + bytes + PAGE - 1) / PAGE; p++) {
        s->committed[p] = true;
    }
}

static void slot_decommit(struct m6_slot *s, uint32_t off, uint32_t bytes)
{
    for (uint32_t p = off / PAGE; p < (off + bytes) / PAGE; p++) {
        s->committed[p] = false;
    }
}

static void slot_release(struct m6_slot *s, uint32_t off)
{
    uint32_t b = off / GRAN, n = s->res_blocks[b];
    slot_decommit(s, off, n * GRAN);
    for (uint32_t k = 0; k < n; k++) {
        s->used[b + k] = false;
    }
    s->res_blocks[b] = 0;
}

/* ---------------- CE's structures ---------------- */

struct rgn {
    struct rgn *next;
    uint32_t base;                /* pLocalBase */
    uint32_t numBlkFree, numBlkTotal, idxBlkFree, idxBlkCommit, maxBlkFree;
    uint32_t *allocMap;
    bool *pinned; /* blocks holding a large item's record (cebox refuses them to the program) */
};

struct vaitem {
    struct vaitem *next;
    uint32_t base, cbSize, cbReserve;
    uint32_t record; /* its own 32 bytes in the process heap */
    bool pinned;     /* itself a record (of a fixed heap) */
};

struct m6_heap {
    struct m6_slot *slot;
    uint32_t cbMaximum;
    bool embedded;
    struct rgn *rgn;      /* the first region */
    struct rgn *prgnLast;
    struct rgn *prgnfree;
    struct vaitem *pvaList;
    uint32_t record; /* a fixed heap's structure in the process heap */
};

static void record_free(struct m6_heap *process, uint32_t rec);
static uint32_t record_alloc(struct m6_heap *process, uint32_t n);

static uint32_t page_up(uint32_t v)
{
    return (v + PAGE - 1) & ~(PAGE - 1);
}

static uint32_t blk_cnt(uint32_t bytes)
{
    return (bytes + BLK - 1) / BLK;
}

/* CE's tables, computed: alcMasks[k] = the first k blocks of a word;
 * alcValHead[s] = an item starting at s and running to the word's end;
 * alcValTail[k] = continuation blocks 0..k-1. */
static uint32_t masks(uint32_t k)
{
    return k >= 16 ? 0xFFFFFFFFu : (1u << (2 * k)) - 1;
}

static uint32_t val_head(uint32_t s)
{
    return (3u << (2 * s)) | (ALL_CONT & ~masks(s + 1));
}

static uint32_t val_tail(uint32_t k)
{
    return ALL_CONT & masks(k);
}

static void take_blocks(struct rgn *r, uint32_t idx, uint32_t n)
{
    uint32_t w = idx >> 4, sub = idx & 15, mask = val_head(sub);
    r->numBlkFree -= n;
    r->idxBlkFree = idx + n;
    if (n + sub < 16) {
        mask &= masks(n + sub);
        n = 0;
    } else {
        n -= 16 - sub;
    }
    r->allocMap[w] |= mask;
    while (n >= 16) {
        r->allocMap[++w] = ALL_CONT;
        n -= 16;
    }
    if (n) {
        r->allocMap[++w] |= val_tail(n);
    }
    if (r->idxBlkFree == r->idxBlkCommit) {
        r->idxBlkFree = 0;
    }
}

static void free_blocks(struct rgn *r, uint32_t idx, uint32_t n)
{
    uint32_t w = idx >> 4, sub = idx & 15, mask = masks(sub), k = w;
    r->numBlkFree += n;
    r->maxBlkFree = r->numBlkFree;
    if (n + sub < 16) {
        mask |= ~masks(n + sub);
        n = 0;
    } else {
        n -= 16 - sub;
    }
    r->allocMap[k] &= mask;
    while (n >= 16) {
        r->allocMap[++k] = 0;
        n -= 16;
    }
    if (n) {
        r->allocMap[++k] &= ~masks(n);
    }
    r->idxBlkFree = r->allocMap[w] ? idx : w << 4;
}

static bool commit_blocks(struct m6_heap *h, struct rgn *r, uint32_t idx)
{
    if (idx > r->idxBlkCommit) {
        uint32_t bytes = page_up((idx - r->idxBlkCommit) * BLK);
        slot_commit(h->slot, r->base + r->idxBlkCommit * BLK, bytes);
        r->idxBlkCommit += bytes / BLK;
    }
    return true; /* the model has no RAM limit */
}

static uint32_t count_free_blocks(const struct rgn *r, uint32_t idx, uint32_t need)
{
    uint32_t found = 0, w = idx >> 4, sub = idx & 15, bits = r->allocMap[w];
    if (!(bits & ~masks(sub))) {
        uint32_t last = r->idxBlkCommit >> 4;
        found = 16 - sub;
        while (found < need && ++w < last && !(bits = r->allocMap[w])) {
            found += 16;
        }
        if (w == last) {
            return found;
        }
        sub = 0;
    } else if (sub) {
        bits >>= sub << 1;
    }
    if ((int32_t)(need -= found) > 0) {
        if (need < 16 && !(masks(need) & bits)) {
            found += need;
        } else {
            while (sub < 16 && !(3u & bits)) {
                sub++;
                found++;
                bits >>= 2;
            }
        }
    }
    return found;
}

static uint32_t count_alloc_blocks(const struct rgn *r, uint32_t idx)
{
    uint32_t n = 0;
    if (idx < r->idxBlkCommit) {
        uint32_t w = idx >> 4, sub = idx & 15, bits = r->allocMap[w];
        if ((bits & ~masks(sub)) == val_head(sub)) {
            uint32_t last = r->idxBlkCommit >> 4;
            n = 16 - sub;
            while (++w < last && (bits = r->allocMap[w]) == ALL_CONT) {
                n += 16;
            }
            if (w == last) {
                return n;
            }
            sub = 0;
        } else {
            bits >>= sub << 1;
            if ((bits & 3u) != 3u) {
                return 0;
            }
            n = 1;
            sub++;
            bits >>= 2;
        }
        while (sub < 16 && (bits & 3u) == 1u) {
            sub++;
            n++;
            bits >>= 2;
        }
    }
    return n;
}

static uint32_t skip_alloc_blocks(const struct rgn *r, uint32_t idx)
{
    uint32_t n = 0, w = idx >> 4, sub = idx & 15, bits = r->allocMap[w] & ALL_CONT;
    if ((bits & ~masks(sub)) == (val_head(sub) & ALL_CONT)) {
        uint32_t last = r->idxBlkCommit >> 4;
        n = 16 - sub;
        while (++w < last && ((bits = r->allocMap[w]) & ALL_CONT) == ALL_CONT) {
            n += 16;
        }
        if (w == last) {
            return n;
        }
        sub = 0;
    } else if (sub) {
        bits >>= sub << 1;
    }
    while (sub < 16 && (bits & 1u)) {
        sub++;
        n++;
        bits >>= 2;
    }
    return n;
}

static uint32_t do_find(struct rgn *r, uint32_t n, uint32_t idx, uint32_t limit)
{
    uint32_t maxf = 0, found = 0;
    while (idx < limit) {
        found = count_free_blocks(r, idx, n);
        if (found >= n) {
            return idx;
        }
        if (maxf < found) {
            maxf = found;
        }
        if (idx + found >= limit) {
            break;
        }
        idx += found;
        idx += skip_alloc_blocks(r, idx);
        found = 0;
    }
    if (idx + found >= r->idxBlkCommit) {
        found = r->numBlkTotal - idx;
        if (maxf < found) {
            maxf = found;
        }
    }
    if (r->maxBlkFree < maxf) {
        r->maxBlkFree = maxf;
    }
    return found >= n ? idx : NO_IDX;
}

static uint32_t find_block_in_region(struct m6_heap *h, struct rgn *r, uint32_t n)
{
    uint32_t old = r->maxBlkFree, ret;
    r->maxBlkFree = 0;
    ret = do_find(r, n, r->idxBlkFree, r->idxBlkCommit);
    if (ret == NO_IDX || ret + n > r->idxBlkCommit) {
        if (r->idxBlkFree) {
            uint32_t i2 = do_find(r, n, 0, r->idxBlkFree);
            if (i2 != NO_IDX) {
                ret = i2;
            }
        }
    }
    if (ret != NO_IDX) {
        if (!commit_blocks(h, r, ret + n)) {
            ret = NO_IDX;
        } else {
            take_blocks(r, ret, n);
            r->maxBlkFree = old <= r->numBlkFree ? old : r->numBlkFree;
        }
    }
    return ret;
}

/* InitRegion with the reservation already made. */
static struct rgn *init_region(uint32_t base, uint32_t cbInit, uint32_t cbMax)
{
    struct rgn *r = calloc(1, sizeof *r);
    r->base = base;
    r->idxBlkCommit = cbInit / BLK;
    r->numBlkFree = r->maxBlkFree = r->numBlkTotal = cbMax / BLK;
    r->allocMap = calloc(r->numBlkTotal / 16 + 1, sizeof(uint32_t));
    r->pinned = calloc(r->numBlkTotal, sizeof(bool));
    return r;
}

static struct rgn *grow_new_region(struct m6_heap *h, uint32_t n, uint32_t *idx)
{
    uint32_t hdr = blk_cnt(RGN_HDR_BYTES);
    uint32_t cbInit = page_up((n + hdr) * BLK);
    uint32_t base = slot_reserve(h->slot, RGN_BYTES);
    if (base == 0) {
        return NULL;
    }
    slot_commit(h->slot, base, cbInit);
    struct rgn *r = init_region(base, cbInit, RGN_BYTES);
    h->prgnLast->next = r;
    h->prgnLast = r;
    take_blocks(r, 0, hdr);
    take_blocks(r, hdr, n);
    r->maxBlkFree = r->numBlkFree;
    *idx = hdr;
    return r;
}

/* FindRegionByPtr: the region whose blocks hold p. */
static struct rgn *find_region(struct m6_heap *h, uint32_t p)
{
    for (struct rgn *r = h->rgn; r != NULL; r = r->next) {
        if (p - r->base < (h->embedded ? GRAN : r->numBlkTotal * BLK)) {
            return r;
        }
    }
    return NULL;
}

static struct vaitem *find_va(struct m6_heap *h, uint32_t p)
{
    for (struct vaitem *v = h->pvaList; v != NULL; v = v->next) {
        if (v->base == p) {
            return v;
        }
    }
    return NULL;
}

/* ---------------- the API ---------------- */

struct m6_heap *m6_create(struct m6_slot *s, uint32_t flags, uint32_t initial, uint32_t max,
                          uint32_t *err)
{
    if ((flags & ~F_NO_SERIALIZE) || max > MAX_ALLOC) {
        *err = E_INVALID_PARAMETER;
        return NULL;
    }
    uint32_t cbMax, cbInit, hdr = 0;
    if (max) {
        cbMax = page_up(max);
        cbInit = initial > MAX_ALLOC ? MAX_ALLOC + PAGE : page_up(initial);
        if (cbInit > cbMax) {
            *err = E_INVALID_PARAMETER;
            return NULL;
        }
    } else {
        cbMax = RGN_BYTES;
        cbInit = page_up(HEAP_HDR_BYTES);
        hdr = blk_cnt(HEAP_HDR_BYTES);
    }
    uint32_t rec = 0;
    if (max && s->process != NULL) {
        /* The RHEAP structure and its bitmap, from the process heap first. */
        rec = record_alloc(s->process, 116 + cbMax / BLK / 16 * 4);
        if (rec == 0) {
            *err = E_NOT_ENOUGH_MEMORY;
            return NULL;
        }
    }
    uint32_t base = slot_reserve(s, cbMax);
    if (base == 0) {
        if (rec) {
            record_free(s->process, rec);
        }
        *err = E_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    slot_commit(s, base, cbInit);
    struct m6_heap *h = calloc(1, sizeof *h);
    h->slot = s;
    h->cbMaximum = max ? cbMax : 0;
    h->embedded = max == 0;
    h->rgn = h->prgnLast = h->prgnfree = init_region(base, cbInit, cbMax);
    h->record = rec;
    if (s->process == NULL) {
        s->process = h;
    }
    if (hdr) {
        take_blocks(h->rgn, 0, hdr);
        h->rgn->maxBlkFree = h->rgn->numBlkFree;
    }
    return h;
}

void m6_destroy(struct m6_heap *h)
{
    while (h->pvaList != NULL) {
        struct vaitem *v = h->pvaList;
        h->pvaList = v->next;
        slot_release(h->slot, v->base);
        record_free(h->slot->process, v->record);
        free(v);
    }
    while (h->rgn != NULL) {
        struct rgn *r = h->rgn;
        h->rgn = r->next;
        slot_release(h->slot, r->base);
        free(r->allocMap);
        free(r->pinned);
        free(r);
    }
    if (h->record) {
        record_free(h->slot->process, h->record);
    }
    if (h->slot->process == h) {
        h->slot->process = NULL;
    }
    free(h);
}

uint32_t m6_handle(const struct m6_heap *h)
{
    return h->record ? h->record : h->rgn->base;
}

static uint32_t rheap_alloc(struct m6_heap *h, uint32_t n, uint32_t *err);
static struct vaitem *find_va(struct m6_heap *h, uint32_t p);

/* RHeapFree(g_hProcessHeap, record): a region item or a large one. */
static void record_free(struct m6_heap *process, uint32_t rec)
{
    struct rgn *r = find_region(process, rec);
    if (r != NULL) {
        uint32_t idx = (rec - r->base) / BLK;
        process->prgnfree = r;
        r->pinned[idx] = false;
        free_blocks(r, idx, count_alloc_blocks(r, idx));
        return;
    }
    for (struct vaitem **pp = &process->pvaList; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->base == rec) {
            struct vaitem *v = *pp;
            *pp = v->next;
            slot_release(process->slot, v->base);
            record_free(process, v->record);
            free(v);
            return;
        }
    }
    abort(); /* the model lost a record */
}

/* RHeapAlloc(g_hProcessHeap, n) for CE's own use, pinned. */
static uint32_t record_alloc(struct m6_heap *process, uint32_t n)
{
    uint32_t ignored, rec = rheap_alloc(process, n, &ignored);
    if (rec != 0) {
        struct rgn *r = find_region(process, rec);
        if (r != NULL) {
            r->pinned[(rec - r->base) / BLK] = true;
        } else {
            find_va(process, rec)->pinned = true;
        }
    }
    return rec;
}

/* DoRHeapVMAlloc: the record first, from the process heap. */
static uint32_t va_alloc(struct m6_heap *h, uint32_t n)
{
    struct m6_heap *process = h->slot->process;
    uint32_t rec = record_alloc(process, 32);
    if (rec == 0) {
        return 0;
    }
    uint32_t reserve = (n + GRAN - 1) & ~(GRAN - 1);
    uint32_t base = slot_reserve(h->slot, reserve);
    if (base == 0) {
        record_free(process, rec);
        return 0;
    }
    slot_commit(h->slot, base, n);
    struct vaitem *v = calloc(1, sizeof *v);
    v->base = base;
    v->cbSize = n;
    v->cbReserve = reserve;
    v->record = rec;
    v->next = h->pvaList;
    h->pvaList = v;
    return base;
}

/* RHeapAlloc, after HeapAlloc's checks. */
static uint32_t rheap_alloc(struct m6_heap *h, uint32_t n, uint32_t *err)
{
    uint32_t nb = blk_cnt(n), p = 0;
    if (!h->cbMaximum && nb > VA_BLOCKS) {
        p = va_alloc(h, n);
    } else {
        uint32_t idx = NO_IDX;
        struct rgn *r = h->prgnfree;
        do {
            if (r->maxBlkFree >= nb) {
                idx = find_block_in_region(h, r, nb);
                if (idx != NO_IDX) {
                    break;
                }
            }
            r = r->next != NULL ? r->next : h->rgn;
        } while (r != h->prgnfree);
        if (idx == NO_IDX && !h->cbMaximum) {
            r = grow_new_region(h, nb, &idx);
        }
        if (idx != NO_IDX) {
            h->prgnfree = r;
            p = r->base + idx * BLK;
        }
    }
    if (p == 0) {
        *err = E_NOT_ENOUGH_MEMORY;
    }
    return p;
}

uint32_t m6_alloc(struct m6_heap *h, uint32_t flags, uint32_t n, uint32_t *err)
{
    if ((flags & ~(F_NO_SERIALIZE | F_ZERO_MEMORY)) || n > MAX_ALLOC) {
        *err = E_INVALID_PARAMETER;
        return 0;
    }
    return rheap_alloc(h, n ? n : 1, err);
}

/* RHeapFree. */
static bool rheap_free(struct m6_heap *h, uint32_t p)
{
    struct rgn *r = find_region(h, p);
    if (r != NULL) {
        h->prgnfree = r;
        uint32_t idx = blk_cnt(p - r->base);
        uint32_t nb = (p - r->base) % BLK ? 0 : count_alloc_blocks(r, idx); /* cebox refuses interior pointers */
        if (nb && !r->pinned[idx] &&
            (!h->embedded || idx >= blk_cnt(r == h->rgn ? HEAP_HDR_BYTES : RGN_HDR_BYTES))) {
            free_blocks(r, idx, nb);
            return true;
        }
        return false;
    }
    for (struct vaitem **pp = &h->pvaList; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->base == p && !(*pp)->pinned) {
            struct vaitem *v = *pp;
            *pp = v->next;
            slot_release(h->slot, v->base);
            record_free(h->slot->process, v->record);
            free(v);
            return true;
        }
    }
    return false;
}

bool m6_free(struct m6_heap *h, uint32_t flags, uint32_t p, uint32_t *err)
{
    if ((flags & ~F_NO_SERIALIZE) || p < 0x10000 || !rheap_free(h, p)) {
        *err = E_INVALID_PARAMETER;
        return false;
    }
    return true;
}

/* The blocks of the item at p, 0 if p is not the start of one (header
 * blocks excluded, as cebox refuses them). */
static uint32_t item_at(struct m6_heap *h, struct rgn *r, uint32_t p)
{
    if ((p - r->base) % BLK) {
        return 0;
    }
    uint32_t idx = (p - r->base) / BLK;
    if (h->embedded && idx < blk_cnt(r == h->rgn ? HEAP_HDR_BYTES : RGN_HDR_BYTES)) {
        return 0;
    }
    return idx < r->numBlkTotal && r->pinned[idx] ? 0 : count_alloc_blocks(r, idx);
}

uint32_t m6_size(struct m6_heap *h, uint32_t flags, uint32_t p, uint32_t *err)
{
    uint32_t ret = 0xFFFFFFFFu;
    if (!(flags & ~F_NO_SERIALIZE) && p >= 0x10000) {
        struct rgn *r = find_region(h, p);
        struct vaitem *v;
        if (r != NULL) {
            uint32_t nb = item_at(h, r, p);
            if (nb) {
                ret = nb * BLK;
            }
        } else if ((v = find_va(h, p)) != NULL && !v->pinned) {
            ret = v->cbSize;
        }
    }
    if (ret == 0xFFFFFFFFu) {
        *err = E_INVALID_PARAMETER;
    }
    return ret;
}

uint32_t m6_realloc(struct m6_heap *h, uint32_t flags, uint32_t p, uint32_t n, uint32_t *err)
{
    if ((flags & ~(F_GENERATE_EXCEPTIONS | F_NO_SERIALIZE | F_IN_PLACE_ONLY | F_ZERO_MEMORY)) ||
        n > MAX_ALLOC) {
        *err = E_INVALID_PARAMETER;
        return 0;
    }
    if (flags & F_GENERATE_EXCEPTIONS) {
        *err = E_NOT_SUPPORTED;
        return 0;
    }
    n = n ? n : 1;
    uint32_t ret = 0, mem = p, e = E_INVALID_PARAMETER;
    struct rgn *r = find_region(h, p);
    struct vaitem *v;
    if (r != NULL) {
        uint32_t nb = item_at(h, r, p);
        if (nb) {
            uint32_t idx = (p - r->base) / BLK + nb;
            int32_t more = (int32_t)blk_cnt(n) - (int32_t)nb;
            ret = p;
            if (more > 0) {
                uint32_t got = idx < r->idxBlkCommit ? count_free_blocks(r, idx, (uint32_t)more) : 0;
                if (idx + got >= r->idxBlkCommit) {
                    got += r->numBlkTotal - r->idxBlkCommit;
                }
                if (got < (uint32_t)more) {
                    mem = 0;
                } else if (commit_blocks(h, r, idx + (uint32_t)more)) {
                    take_blocks(r, idx, (uint32_t)more);
                    r->allocMap[idx >> 4] &= ~(2u << ((idx & 15) << 1)); /* head -> continuation */
                    if (r->maxBlkFree > r->numBlkFree) {
                        r->maxBlkFree = r->numBlkFree;
                    }
                }
            } else if (more < 0) {
                free_blocks(r, idx - (uint32_t)-more, (uint32_t)-more);
            }
        }
    } else if ((v = find_va(h, p)) != NULL && !v->pinned) {
        uint32_t need = page_up(n), have = page_up(v->cbSize);
        ret = p;
        if (need < have) {
            slot_decommit(h->slot, v->base + need, have - need);
        } else if (need > have) {
            if (need > v->cbReserve) {
                mem = 0;
            } else {
                slot_commit(h->slot, v->base + have, need - have);
            }
        }
        if (mem) {
            v->cbSize = n;
        }
    }
    if (ret && !mem) {
        /* Cannot grow in place: move unless told not to. */
        e = E_NOT_ENOUGH_MEMORY;
        if (flags & F_IN_PLACE_ONLY) {
            ret = 0;
        } else {
            uint32_t dummy;
            ret = rheap_alloc(h, n, &dummy);
            if (ret) {
                rheap_free(h, p);
            }
        }
    }
    if (!ret) {
        *err = e;
    }
    return ret;
}

/* EnumerateRegionItems with EnumCountSize: returns the largest free run in
 * bytes and resets the rover and maxBlkFree. */
static uint32_t enumerate_region(struct rgn *r)
{
    uint32_t maxb = 0, first = r->idxBlkCommit, lastfree = r->idxBlkCommit, idx, nb, big = 0;
    for (idx = 0; idx < r->idxBlkCommit; idx += nb) {
        if ((nb = count_alloc_blocks(r, idx)) != 0) {
            lastfree = r->idxBlkCommit;
        } else if ((nb = count_free_blocks(r, idx, r->numBlkFree)) != 0) {
            if (first > idx) {
                first = idx;
            }
            if (maxb < nb) {
                maxb = nb;
            }
            lastfree = idx;
            if (big < nb * BLK) {
                big = nb * BLK;
            }
        } else {
            abort(); /* a bad block: the model is broken */
        }
    }
    if (maxb < r->numBlkTotal - lastfree) {
        maxb = r->numBlkTotal - lastfree;
    }
    r->idxBlkFree = first;
    r->maxBlkFree = maxb;
    return big;
}

static uint32_t compact_region(struct m6_heap *h, struct rgn *r)
{
    uint32_t w = r->idxBlkCommit >> 4;
    while (w && !r->allocMap[w - 1]) {
        w--;
    }
    uint32_t keep = blk_cnt(page_up(w * 16 * BLK));
    if (keep < r->idxBlkCommit) {
        slot_decommit(h->slot, r->base + keep * BLK, (r->idxBlkCommit - keep) * BLK);
        r->idxBlkCommit = keep;
        if (r->idxBlkFree >= keep) {
            r->idxBlkFree = 0;
        }
    }
    return enumerate_region(r);
}

uint32_t m6_compact(struct m6_heap *h, uint32_t flags, uint32_t *err)
{
    if (flags & ~F_NO_SERIALIZE) {
        *err = E_INVALID_PARAMETER;
        return 0;
    }
    uint32_t dflt = h->embedded ? blk_cnt(RGN_HDR_BYTES) : 0;
    h->prgnfree = h->rgn;
    uint32_t best = compact_region(h, h->rgn);
    struct rgn *prev = h->rgn, *r;
    while ((r = prev->next) != NULL) {
        if (r->numBlkTotal == r->numBlkFree + dflt) {
            prev->next = r->next;
            if (h->prgnLast == r) {
                h->prgnLast = prev;
            }
            slot_release(h->slot, r->base);
            free(r->allocMap);
            free(r->pinned);
            free(r);
        } else {
            uint32_t m = compact_region(h, r);
            if (best < m) {
                best = m;
            }
            prev = r;
        }
    }
    return best;
}

size_t m6_region_count(const struct m6_heap *h)
{
    size_t n = 0;
    for (const struct rgn *r = h->rgn; r != NULL; r = r->next) {
        n++;
    }
    return n;
}

void m6_region_state(const struct m6_heap *h, size_t i, struct m6_region_state *out)
{
    const struct rgn *r = h->rgn;
    while (i-- > 0) {
        r = r->next;
    }
    out->base = r->base;
    out->total = r->numBlkTotal;
    out->commit = r->idxBlkCommit;
    out->rover = r->idxBlkFree;
    out->nfree = r->numBlkFree;
    out->max = r->maxBlkFree;
    out->current = r == h->prgnfree;
}
