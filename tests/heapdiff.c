/*
 * heapdiff.c - the harness of the differential heap tests (heapdiff.h).
 * Knows the public API, the core's reset and the heap interface's walk and
 * free figures (heap/heap.h), nothing of a heap's insides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cebox.h"
#include "core.h"
#include "heap/heap.h"
#include "heapdiff.h"
#include "testutil.h"

size_t heapdiff_start(struct heapdiff *d, const char *scenario, uint64_t seed,
                      const char *profile, const char *ram, const char *slot)
{
    assert_int_equal(testutil_core_reset(profile, ram, slot), 0);
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    memset(d, 0, sizeof *d);
    d->base = info.base;
    d->rng = seed;
    d->scenario = scenario;
    return info.blocks;
}

uint64_t heapdiff_rnd(struct heapdiff *d)
{
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return d->rng;
}

size_t heapdiff_below(struct heapdiff *d, size_t n)
{
    return (size_t)(heapdiff_rnd(d) % n);
}

size_t heapdiff_size(struct heapdiff *d, const struct heapdiff_band *bands)
{
    size_t k = heapdiff_below(d, 1000), i = 0;
    while (k >= bands[i].upto) {
        i++;
    }
    return bands[i].from + heapdiff_below(d, bands[i].span);
}

uint32_t heapdiff_off(const struct heapdiff *d, const void *p)
{
    return p == NULL ? 0 : (uint32_t)((uintptr_t)p - d->base);
}

void *heapdiff_ptr(const struct heapdiff *d, uint32_t off)
{
    return off == 0 ? NULL : (void *)(d->base + off);
}

void heapdiff_fail(const struct heapdiff *d, const char *what, unsigned long long real,
                   unsigned long long model)
{
    fail_msg("%s, step %lu: %s differs: cebox 0x%llx, model 0x%llx", d->scenario, d->step, what,
             real, model);
}

void heapdiff_same(const struct heapdiff *d, const char *what, unsigned long long real,
                   unsigned long long model)
{
    if (real != model) {
        heapdiff_fail(d, what, real, model);
    }
}

void heapdiff_fill(const struct heapdiff *d, uint32_t off, size_t n, unsigned char tag)
{
    memset(heapdiff_ptr(d, off), tag, n < 64 ? n : 64);
}

void heapdiff_check_fill(const struct heapdiff *d, const char *what, uint32_t off, size_t upto,
                         unsigned char tag)
{
    const unsigned char *p = heapdiff_ptr(d, off);
    for (size_t i = 0; i < upto && i < 64; i++) {
        heapdiff_same(d, what, p[i], tag);
    }
}

void heapdiff_check_zeroed(const struct heapdiff *d, const char *what, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n && i < 256; i++) {
        if (c[i] != 0) {
            heapdiff_fail(d, what, i, c[i]);
        }
    }
}

unsigned long heapdiff_scale(void)
{
    const char *s = getenv("HEAPDIFF_STEPS");
    unsigned long k = s != NULL ? strtoul(s, NULL, 10) : 1;
    return k == 0 ? 1 : k;
}

bool heapdiff_verbose(void)
{
    return getenv("HEAPDIFF_VERBOSE") != NULL;
}

/* The free items of a walk, counted as the free figures count them. */
struct free_walk {
    struct heap_free_figures f;
    size_t header, page;
};

static bool count_free(void *ctx, const struct heap_walk_entry *e)
{
    struct free_walk *w = ctx;
    if (e->kind != HEAP_WALK_ITEM || e->busy) {
        return true;
    }
    w->f.free_items++;
    w->f.largest_free_bytes = e->size > w->f.largest_free_bytes ? e->size : w->f.largest_free_bytes;
    uintptr_t from = (e->addr - w->header + w->page - 1) & ~(uintptr_t)(w->page - 1);
    uintptr_t to = (e->addr + e->size) & ~(uintptr_t)(w->page - 1);
    w->f.empty_pages += to > from ? (to - from) / w->page : 0;
    return true;
}

void heapdiff_check_free_figures(const struct heapdiff *d, void *handle, size_t header, size_t page)
{
    struct heap *h = heap_lookup(handle);
    assert_non_null(h);
    struct free_walk walked = {.header = header, .page = page};
    h->ops->walk(h, count_free, &walked);
    struct heap_free_figures f;
    lock_enter(&h->lock);
    h->ops->free_figures(h, &f);
    lock_leave(&h->lock);
    heapdiff_same(d, "free figures: free items", f.free_items, walked.f.free_items);
    heapdiff_same(d, "free figures: largest free item", f.largest_free_bytes, walked.f.largest_free_bytes);
    heapdiff_same(d, "free figures: empty pages", f.empty_pages, walked.f.empty_pages);
}
