/*
 * heapdiff.c - the harness of the differential heap tests (heapdiff.h).
 * Knows the public API and the core's reset, nothing of a heap's insides.
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
