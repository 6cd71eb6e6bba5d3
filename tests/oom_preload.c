/*
 * oom_preload.c - the preload library's over-aligned blocks when the
 * alignment table cannot be had or grown.
 *
 * This program is linked with the preload library's sources, so its own
 * malloc family is cebox's, as in a preloaded program.  memalign and
 * posix_memalign are swept with meta_fail_after(N) for N = 1, 2, ...: a
 * failure must return NULL with ENOMEM (posix_memalign: ENOMEM), be counted
 * as a failed malloc, give the block it took back to the heap (same live
 * blocks, heap valid), lose no RAM page, and leave every aligned block made
 * before it findable (freed and measured through the table); then the
 * bookkeeping is what it was.  Both the table's first allocation and a
 * doubling (after 512 entries) are swept.
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "core.h"
#include "meta.h"
#include "oomutil.h"
#include "record/eventlog.h"
#include "record/summary.h"

#define ALIGN 64
#define GROWTH 512 /* entries (and tombstones) at which the first table doubles */

struct state {
    size_t live_blocks, free_ram, meta;
    uint64_t failures;
};

static void take(struct state *s)
{
    struct heap *h = core_process_heap(core_get());
    struct heap_stats hs;
    h->ops->stats(h, &hs);
    MEMORYSTATUS ms;
    GlobalMemoryStatus(&ms);
    s->live_blocks = hs.live_blocks;
    s->free_ram = ms.dwAvailPhys;
    s->meta = meta_bytes_in_use();
    s->failures = summary_failures(LOG_API_MALLOC);
}

static void *aligned(bool posix, size_t n)
{
    if (!posix) {
        return memalign(ALIGN, n);
    }
    void *p = NULL;
    int rc = posix_memalign(&p, ALIGN, n);
    assert_true(rc == 0 || rc == ENOMEM);
    assert_true((rc == 0) == (p != NULL));
    if (rc != 0) {
        errno = rc;
    }
    return p;
}

/* Every block in kept[] is still known to the table. */
static void assert_known(void *const *kept, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        assert_true(malloc_usable_size(kept[i]) >= 100);
    }
}

/* Sweeps one aligned allocation; returns the failures seen.  The block of
 * the final success is kept in *keep (NULL: freed). */
static unsigned sweep_aligned(bool posix, void *const *kept, size_t count, void **keep)
{
    unsigned fails = 0;
    for (unsigned long n = 1;; n++) {
        assert_true(n <= 50);
        struct state before, after;
        take(&before);
        errno = 0;
        meta_fail_after(n);
        char *p = aligned(posix, 100);
        int err = errno;
        bool landed = failure_landed(n);
        take(&after);
        assert_true(HeapValidate(GetProcessHeap(), 0, NULL));
        if (p != NULL) {
            assert_int_equal((uintptr_t)p % ALIGN, 0);
            memset(p, 1, 100);
            if (landed) {
                assert_known(kept, count);
            }
            if (!landed && keep != NULL) {
                *keep = p;
                return fails;
            }
            free(p);
            take(&after);
            assert_int_equal(after.live_blocks, before.live_blocks);
            if (!landed) {
                return fails;
            }
            continue;
        }
        fails++;
        assert_true(landed);
        assert_int_equal(err, ENOMEM);
        assert_int_equal(after.failures, before.failures + 1);
        assert_int_equal(after.live_blocks, before.live_blocks); /* the base went back */
        assert_int_equal(after.free_ram, before.free_ram);
        assert_int_equal(after.meta, before.meta);
        assert_known(kept, count);
    }
}

static void first_table(void **state)
{
    (void)state;
    assert_true(sweep_aligned(false, NULL, 0, NULL) >= 1);
    assert_true(sweep_aligned(true, NULL, 0, NULL) == 0); /* the table exists now */
}

static void table_doubling(void **state)
{
    (void)state;
    static void *kept[4 * GROWTH];
    struct state start;
    take(&start);
    /* Blocks the heap happens to align need no entry, so the table's
     * doubling comes somewhere after GROWTH blocks: every one is swept. */
    size_t count = 0;
    unsigned fails = 0;
    for (; count < 4 * GROWTH && fails == 0; count++) {
        fails += sweep_aligned(count % 2 == 1, kept, count, &kept[count]);
    }
    assert_true(fails >= 1); /* a doubling was refused at least once */
    assert_true(count > GROWTH / 2);
    for (size_t i = 0; i < count; i++) {
        free(kept[i]);
    }
    struct state end;
    take(&end);
    assert_int_equal(end.live_blocks, start.live_blocks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_table),
        cmocka_unit_test(table_doubling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
