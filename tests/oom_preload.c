/*
 * oom_preload.c - the preload library's over-aligned blocks when the
 * alignment table cannot be had or grown.
 *
 * This program is linked with the preload library's sources, so its own
 * malloc family is cebox's, as in a preloaded program.  memalign and
 * posix_memalign are swept with meta_fail_after(N) for N = 1, 2, ...: a
 * failure must return NULL with ENOMEM (posix_memalign: ENOMEM), be counted
 * as a failed malloc, give the block it took back to the heap (same live
 * blocks, heap valid), lose no RAM page (one the heap committed for the
 * block and keeps, as CE 6 does, is the heap's), and leave every aligned
 * block made
 * before it findable (freed and measured through the table); then the
 * bookkeeping is what it was.  Both the table's first allocation and a
 * doubling (after 512 entries) are swept.  The blocks come from the
 * profile's heap, so the program runs itself once per profile (the core
 * reads CEBOX_PROFILE before main): on ce3, whose heap aligns to 8 bytes
 * only, every malloc is over-aligned and the table exists before main.
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
    size_t live_blocks, meta;
    size_t unheld_ram; /* free RAM plus what the heap holds committed */
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
    s->unheld_ram = ms.dwAvailPhys + hs.committed_bytes;
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

/* Sweeps one aligned allocation of size bytes (100 or more); returns the
 * failures seen.  The block of
 * the final success is kept in *keep (NULL: freed). */
static unsigned sweep_aligned(bool posix, size_t size, void *const *kept, size_t count, void **keep)
{
    unsigned fails = 0;
    for (unsigned long n = 1;; n++) {
        assert_true(n <= 50);
        struct state before, after;
        take(&before);
        errno = 0;
        meta_fail_after(n);
        char *p = aligned(posix, size);
        int err = errno;
        bool landed = failure_landed(n);
        take(&after);
        assert_true(HeapValidate(GetProcessHeap(), 0, NULL));
        if (p != NULL) {
            assert_int_equal((uintptr_t)p % ALIGN, 0);
            memset(p, 1, size);
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
        assert_int_equal(after.unheld_ram, before.unheld_ram);
        assert_int_equal(after.meta, before.meta);
        assert_known(kept, count);
    }
}

/* Does malloc itself go through the table (a heap aligning less than
 * max_align_t: ce3)? */
static bool malloc_uses_table(void)
{
    return core_process_heap(core_get())->ops->align < _Alignof(max_align_t);
}

/* Blocks the heap happens to align need no entry, so the table's first
 * allocation, or its doubling, comes at a block the sweep cannot name in
 * advance: aligned blocks are swept and kept until one met a failure (at
 * most `max`), memalign and posix_memalign in turn, of two sizes so that
 * the heap's addresses do not stay in step with the alignment (ce6's
 * 32-byte blocks would).  Then they are freed, and the heap holds what it
 * held before.  Returns how many were made. */
static size_t sweep_until_refused(void **kept, size_t max)
{
    struct state start;
    take(&start);
    size_t count = 0;
    unsigned fails = 0;
    for (; count < max && fails == 0; count++) {
        fails += sweep_aligned(count % 2 == 1, 100 + 32 * (count % 3 == 2), kept, count, &kept[count]);
    }
    assert_true(fails >= 1);
    for (size_t i = 0; i < count; i++) {
        free(kept[i]);
    }
    struct state end;
    take(&end);
    assert_int_equal(end.live_blocks, start.live_blocks);
    return count;
}

static void first_table(void **state)
{
    (void)state;
    if (malloc_uses_table()) {
        /* made by the first malloc, before main */
        assert_true(sweep_aligned(false, 100, NULL, 0, NULL) == 0);
        return;
    }
    void *kept[64];
    sweep_until_refused(kept, 64);
    assert_true(sweep_aligned(true, 100, NULL, 0, NULL) == 0); /* the table exists now */
}

static void table_doubling(void **state)
{
    (void)state;
    static void *kept[4 * GROWTH];
    size_t count = sweep_until_refused(kept, 4 * GROWTH);
    /* (on ce3 the program's own blocks fill the table too) */
    assert_true(malloc_uses_table() || count > GROWTH / 2);
}

/* Runs this program under each profile; 0 when every run passed. */
static int run_each_profile(char **argv)
{
    static const char *const names[] = {"ce3", "ce5", "ce6"};
    int failed = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        printf("profile %s\n", names[i]);
        fflush(stdout);
        setenv("CEBOX_PROFILE", names[i], 1);
        pid_t pid = fork();
        if (pid == 0) {
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("profile %s: failed (status %#x)\n", names[i], (unsigned)status);
            failed = 1;
        }
    }
    return failed;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (getenv("CEBOX_PROFILE") == NULL) {
        return run_each_profile(argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_table),
        cmocka_unit_test(table_doubling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
