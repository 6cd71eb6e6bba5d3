/*
 * test_entry.c - the one entry point (src/entry.c): a registered hook fails
 * calls of the malloc family, the mmap family and the Win32-named API with
 * each one's documented error, and each failure is counted and logged with
 * the hook's reason; entry_fail sets errno or the last error as each kind
 * of API does, counts, logs, and takes the reason the slot or the heap
 * noted; the heap tells "too large" itself; a registered tracker is told of
 * every block handed out and taken back (a failed realloc's block again,
 * a destroyed heap's items), and none is told without one; a free made
 * inside cebox waits in the queue until the next plain free, and an
 * over-aligned block's free gives back its base; calloc zeroes a reused
 * block.
 *
 * The program is linked with the preload library's source, so its malloc
 * and mmap families are cebox's, as in a preloaded process (no
 * LD_PRELOAD, no exported setter for the hook).  Settings are read at
 * start, so main() runs itself again with CEBOX_OUT, a small slot and
 * --quiet set.
 */
#include <limits.h>
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cebox/winmem.h"
#include "entry.h"
#include "record/eventlog.h"
#include "record/summary.h"
#include "report/logread.h"
#include "testutil.h"

#define SLOT_BYTES ((size_t)8 << 20)

/* The hook fails requests of exactly this size (cmocka's own allocations
 * go through too, and must succeed). */
static size_t doomed_size;
static int hook_calls;
static enum log_api hook_last_api;

static enum log_reason fail_doomed(enum log_api api, size_t size)
{
    if (size != doomed_size) {
        return LOG_REASON_NONE;
    }
    hook_calls++;
    hook_last_api = api;
    return LOG_REASON_INJECTED;
}

static void doom(size_t size)
{
    doomed_size = size;
    hook_calls = 0;
    entry_set_hook(fail_doomed);
}

static int unhook(void **state)
{
    (void)state;
    entry_set_hook(NULL);
    return 0;
}

/* Failures of this process's log through api for `size` bytes; the reason
 * and error of the last one. */
static size_t logged(enum log_api api, uint64_t size, unsigned *reason, uint32_t *error)
{
    struct lr_log log;
    char err[256];
    assert_true(eventlog_path()[0] != '\0');
    assert_int_equal(logread_file(eventlog_path(), &log, err, sizeof err), 0);
    assert_false(log.damaged);
    size_t n = 0;
    for (size_t p = 0; p < log.nprocs; p++) {
        for (size_t i = 0; i < log.procs[p].nfailures; i++) {
            const struct lr_failure *f = &log.procs[p].failures[i];
            if (f->api == (unsigned)api && f->size == size) {
                n++;
                *reason = f->reason;
                *error = f->error;
            }
        }
    }
    logread_free(&log);
    return n;
}

static void assert_logged(enum log_api api, uint64_t size, size_t count, unsigned reason, uint32_t error)
{
    unsigned r = 0;
    uint32_t e = 0;
    assert_int_equal(logged(api, size, &r, &e), count);
    assert_int_equal(r, reason);
    assert_int_equal(e, error);
}

static void hook_fails_the_malloc_family(void **state)
{
    (void)state;
    const size_t n = 77777;
    uint64_t before = summary_failures(LOG_API_MALLOC);
    char *keep = malloc(16);
    assert_non_null(keep);
    strcpy(keep, "kept");
    doom(n);
    errno = 0;
    assert_null(malloc(n));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(calloc(1, n));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(realloc(keep, n));
    assert_int_equal(errno, ENOMEM);
    assert_string_equal(keep, "kept"); /* a failed realloc leaves the block */
    errno = 0;
    assert_null(memalign(64, n));
    assert_int_equal(errno, ENOMEM);
    void *q = NULL;
    errno = 1234;
    assert_int_equal(posix_memalign(&q, 64, n), ENOMEM);
    assert_int_equal(errno, 1234); /* posix_memalign reports in its result */
    assert_int_equal(hook_calls, 5);
    assert_int_equal(hook_last_api, LOG_API_MALLOC);
    entry_set_hook(NULL);
    void *ok = malloc(n);
    assert_non_null(ok);
    free(ok);
    free(keep);
    assert_int_equal(summary_failures(LOG_API_MALLOC), before + 5);
    assert_logged(LOG_API_MALLOC, n, 5, LOG_REASON_INJECTED, ERROR_NOT_ENOUGH_MEMORY);
}

static void hook_fails_the_mmap_family(void **state)
{
    (void)state;
    const size_t n = 7 * 4096;
    uint64_t before = summary_failures(LOG_API_MMAP);
    char *p = mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    doom(n);
    errno = 0;
    assert_true(mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_int_equal(mprotect(p, n, PROT_READ | PROT_WRITE), -1);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_true(mremap(p, 4096, n, MREMAP_MAYMOVE) == MAP_FAILED);
    assert_int_equal(errno, ENOMEM);
    entry_set_hook(NULL);
    assert_int_equal(hook_calls, 3);
    assert_int_equal(mprotect(p, n, PROT_READ | PROT_WRITE), 0);
    p[n - 1] = 1;
    assert_int_equal(munmap(p, n), 0);
    assert_int_equal(summary_failures(LOG_API_MMAP), before + 3);
    assert_logged(LOG_API_MMAP, n, 3, LOG_REASON_INJECTED, ERROR_NOT_ENOUGH_MEMORY);
}

/* One Win32-named call failed by the hook: NULL, the last error, errno
 * untouched, counted and logged under its own name. */
static void check_win32_refusal(enum log_api api, void *result, size_t n, uint64_t before)
{
    assert_null(result);
    assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
    assert_int_equal(errno, 1234);
    assert_int_equal(hook_last_api, api);
    assert_int_equal(summary_failures(api), before + 1);
    assert_logged(api, n, 1, LOG_REASON_INJECTED, ERROR_NOT_ENOUGH_MEMORY);
}

static void hook_fails_the_win32_names(void **state)
{
    (void)state;
    const size_t n = 55555;
    void *block = HeapAlloc(GetProcessHeap(), 0, 100);
    assert_non_null(block);
    static const enum log_api apis[] = {LOG_API_VIRTUALALLOC, LOG_API_HEAPALLOC, LOG_API_HEAPREALLOC,
                                        LOG_API_LOCALALLOC, LOG_API_LOCALREALLOC, LOG_API_HEAPCREATE};
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++) {
        uint64_t before = summary_failures(apis[i]);
        doom(n);
        SetLastError(0);
        errno = 1234;
        void *r = NULL;
        switch (apis[i]) {
        case LOG_API_VIRTUALALLOC: r = VirtualAlloc(NULL, n, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE); break;
        case LOG_API_HEAPALLOC: r = HeapAlloc(GetProcessHeap(), 0, n); break;
        case LOG_API_HEAPREALLOC: r = HeapReAlloc(GetProcessHeap(), 0, block, n); break;
        case LOG_API_LOCALALLOC: r = LocalAlloc(LMEM_FIXED, n); break;
        case LOG_API_LOCALREALLOC: r = LocalReAlloc(block, n, LMEM_MOVEABLE); break;
        default: r = HeapCreate(0, n, 0); break;
        }
        entry_set_hook(NULL);
        assert_int_equal(hook_calls, 1);
        check_win32_refusal(apis[i], r, n, before);
    }
    assert_true(HeapFree(GetProcessHeap(), 0, block));
}

static void entry_fail_reports_as_each_api_does(void **state)
{
    (void)state;
    const size_t n = 33333;
    /* The malloc and mmap families: errno, and the noted reason. */
    for (enum log_api api = LOG_API_MALLOC; api <= LOG_API_MMAP; api++) {
        uint64_t before = summary_failures(api);
        SetLastError(5);
        errno = 1234;
        entry_note_reason(LOG_REASON_RAM);
        entry_fail(api, n, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_NONE);
        assert_int_equal(errno, ENOMEM);
        assert_int_equal(GetLastError(), 5);
        assert_int_equal(summary_failures(api), before + 1);
        assert_logged(api, n, 1, LOG_REASON_RAM, ERROR_NOT_ENOUGH_MEMORY);
    }
    /* The Win32 names: the last error (none for a full fixed heap), errno
     * untouched; nothing noted: "other". */
    const struct {
        enum log_api api;
        DWORD err, last;
    } win[] = {
        {LOG_API_VIRTUALALLOC, ERROR_NOT_ENOUGH_MEMORY, ERROR_NOT_ENOUGH_MEMORY},
        {LOG_API_HEAPALLOC, 0, 5},
        {LOG_API_LOCALREALLOC, ERROR_INVALID_PARAMETER, ERROR_INVALID_PARAMETER},
    };
    for (size_t i = 0; i < sizeof win / sizeof win[0]; i++) {
        uint64_t before = summary_failures(win[i].api);
        SetLastError(5);
        errno = 1234;
        entry_fail(win[i].api, n, win[i].err, LOG_REASON_NONE);
        assert_int_equal(errno, 1234);
        assert_int_equal(GetLastError(), win[i].last);
        assert_int_equal(summary_failures(win[i].api), before + 1);
        assert_logged(win[i].api, n, 1, LOG_REASON_OTHER, win[i].err);
    }
    /* A given reason wins over the noted one, which is used up either way. */
    entry_note_reason(LOG_REASON_FRAGMENTED);
    entry_fail(LOG_API_HEAPCREATE, n, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_INJECTED);
    assert_logged(LOG_API_HEAPCREATE, n, 1, LOG_REASON_INJECTED, ERROR_NOT_ENOUGH_MEMORY);
    entry_fail(LOG_API_HEAPCREATE, n + 1, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_NONE);
    assert_logged(LOG_API_HEAPCREATE, n + 1, 1, LOG_REASON_OTHER, ERROR_NOT_ENOUGH_MEMORY);
}

/* "Too large" comes from the heap (and the slot under it), not from
 * arithmetic in the API layer: a malloc past the heap's largest request,
 * one of the slot's size, and HeapAlloc / HeapReAlloc of the slot's size
 * (which CE refuses with 87). */
static void the_heap_tells_too_large(void **state)
{
    (void)state;
    const size_t huge = (size_t)3 << 30, slot = SLOT_BYTES;
    errno = 0;
    assert_null(malloc(huge));
    assert_int_equal(errno, ENOMEM);
    assert_logged(LOG_API_MALLOC, huge, 1, LOG_REASON_TOO_LARGE, ERROR_NOT_ENOUGH_MEMORY);
    assert_null(malloc(slot));
    assert_logged(LOG_API_MALLOC, slot, 1, LOG_REASON_TOO_LARGE, ERROR_NOT_ENOUGH_MEMORY);
    errno = 0;
    assert_null(calloc(3, (size_t)1 << 30));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(realloc(NULL, huge));
    assert_int_equal(errno, ENOMEM);
    char *small = malloc(100);
    assert_non_null(small);
    strcpy(small, "kept");
    errno = 0;
    assert_null(realloc(small, huge));
    assert_int_equal(errno, ENOMEM);
    assert_string_equal(small, "kept");
    free(small);
    assert_logged(LOG_API_MALLOC, huge, 4, LOG_REASON_TOO_LARGE, ERROR_NOT_ENOUGH_MEMORY);
    assert_null(HeapAlloc(GetProcessHeap(), 0, slot));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    assert_logged(LOG_API_HEAPALLOC, slot, 1, LOG_REASON_TOO_LARGE, ERROR_INVALID_PARAMETER);
    void *block = HeapAlloc(GetProcessHeap(), 0, 100);
    assert_null(HeapReAlloc(GetProcessHeap(), 0, block, slot));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    assert_logged(LOG_API_HEAPREALLOC, slot, 1, LOG_REASON_TOO_LARGE, ERROR_INVALID_PARAMETER);
    /* A bad argument is the caller's mistake, not a failed allocation. */
    assert_null(HeapAlloc(GetProcessHeap(), 0x40000000, 64));
    assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
    unsigned r;
    uint32_t e;
    assert_int_equal(logged(LOG_API_HEAPALLOC, 64, &r, &e), 0);
    assert_true(HeapFree(GetProcessHeap(), 0, block));
}

/* Runs the tests in a fresh image of this program with the settings set:
 * the preload code reads them before main. */
/* ---- the tracker: every block handed out and taken back ---- */

struct seen {
    bool done;
    enum log_api api;
    void *p;
    size_t size;
};

/* volatile, and read after a compiler barrier: libc declares malloc and
 * friends leaf functions (they never call back into this file), so the
 * compiler would otherwise keep these in registers across the calls that
 * reach note_done through the tracker. */
static struct seen seen[256];
static volatile size_t nseen;

static void note_done(enum log_api api, void *p, size_t size)
{
    if (nseen < 256) {
        seen[nseen++] = (struct seen){true, api, p, size};
    }
}

static void note_freed(enum log_api api, void *p)
{
    if (nseen < 256) {
        seen[nseen++] = (struct seen){false, api, p, 0};
    }
}

static const struct entry_tracker test_tracker = {note_done, note_freed};

/* Was (done or freed, api, p[, size]) told, at or after event `from`?
 * Returns its index + 1, or 0. */
static size_t told(size_t from, bool done, enum log_api api, const void *p, size_t size)
{
    __asm__ volatile("" ::: "memory");
    for (size_t i = from; i < nseen; i++) {
        if (seen[i].done == done && seen[i].api == api && seen[i].p == p && (!done || seen[i].size == size)) {
            return i + 1;
        }
    }
    return 0;
}

static void tracker_sees_every_block(void **state)
{
    (void)state;
    nseen = 0;
    entry_set_tracker(&test_tracker);
    assert_true(entry_tracking());
    char *p = malloc(100);
    char *c = calloc(3, 10);
    void *a = memalign(64, 200);
    assert_true(told(0, true, LOG_API_MALLOC, p, 100) && told(0, true, LOG_API_MALLOC, c, 30));
    assert_true(told(0, true, LOG_API_MALLOC, a, 200)); /* the aligned pointer, as the program has it */
    strcpy(p, "moved");
    size_t mark = nseen;
    char *q = realloc(p, 5000);
    size_t f = told(mark, false, LOG_API_MALLOC, p, 0);
    assert_true(f != 0 && told(f, true, LOG_API_MALLOC, q, 5000)); /* taken back first, then handed out */
    mark = nseen;
    errno = 0;
    assert_null(realloc(q, (size_t)64 << 20)); /* larger than the slot: fails in the heap */
    f = told(mark, false, LOG_API_MALLOC, q, 0);
    assert_true(f != 0 && told(f, true, LOG_API_MALLOC, q, malloc_usable_size(q))); /* still the program's */
    mark = nseen;
    free(q);
    free(c);
    free(a);
    assert_true(told(mark, false, LOG_API_MALLOC, q, 0) && told(mark, false, LOG_API_MALLOC, c, 0));
    assert_true(told(mark, false, LOG_API_MALLOC, a, 0));
    void *h = HeapAlloc(GetProcessHeap(), 0, 50);
    void *l = LocalAlloc(LMEM_FIXED, 60);
    assert_true(told(mark, true, LOG_API_HEAPALLOC, h, 50) && told(mark, true, LOG_API_LOCALALLOC, l, 60));
    HeapFree(GetProcessHeap(), 0, h);
    LocalFree(l);
    assert_true(told(mark, false, LOG_API_HEAPALLOC, h, 0) && told(mark, false, LOG_API_HEAPALLOC, l, 0));
    HANDLE own = HeapCreate(0, 0, 0);
    void *i1 = HeapAlloc(own, 0, 24), *i2 = HeapAlloc(own, 0, 24);
    mark = nseen;
    assert_true(HeapDestroy(own));
    assert_true(told(mark, false, LOG_API_HEAPALLOC, i1, 0) && told(mark, false, LOG_API_HEAPALLOC, i2, 0));
    entry_set_tracker(NULL);
    assert_false(entry_tracking());
    mark = nseen;
    free(malloc(10));
    assert_int_equal(nseen, mark); /* none registered: nothing told */
}

/* The process heap's live blocks. */
static size_t live_blocks(void)
{
    return mallinfo2().ordblks;
}

/* A free made inside cebox (as a signal handler's, re-entered) waits in
 * the queue, and the next plain free gives the block back: with no
 * over-aligned block live (free's fast path) and with one (its general
 * path).  An over-aligned block's free gives back the block it was cut
 * from, also while it is the only one live (the first one's free), and
 * when it is less aligned than the ones before. */
static void queued_frees_wait_for_the_next_plain_free(void **state)
{
    (void)state;
    for (int with_aligned = 0; with_aligned < 2; with_aligned++) {
        void *a = with_aligned ? memalign(4096, 100) : NULL;
        size_t before = live_blocks();
        void *p = malloc(100);
        assert_non_null(p);
        entry_inside = 1;
        free(p); /* re-entered: cannot take the heap's lock, so queued */
        entry_inside = 0;
        assert_int_equal(live_blocks(), before + 1);
        void *q = malloc(24);
        assert_int_equal(live_blocks(), before + 2); /* malloc leaves the queue alone */
        free(q);
        assert_int_equal(live_blocks(), before);
        free(a);
    }
    /* Alignments falling, so that each one's blocks are less aligned
     * than every one made before. */
    static const size_t aligns[] = {4096, 64, 32};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        size_t before = live_blocks();
        void *aligned[4];
        for (size_t i = 0; i < 4; i++) { /* one at least is cut from inside a block */
            aligned[i] = memalign(aligns[a], 100 + 16 * i);
            assert_non_null(aligned[i]);
            assert_int_equal((uintptr_t)aligned[i] % aligns[a], 0);
        }
        assert_int_equal(live_blocks(), before + 4);
        for (size_t i = 0; i < 4; i++) {
            free(aligned[i]);
            assert_int_equal(live_blocks(), before + 3 - i);
        }
    }
}

/* calloc zeroes a block the heap hands out again (it was written before
 * its free), and keeps errno. */
static void calloc_zeroes_a_reused_block(void **state)
{
    (void)state;
    unsigned char *dirty = malloc(64);
    assert_non_null(dirty);
    memset(dirty, 0xAB, 64);
    uintptr_t was = (uintptr_t)dirty;
    free(dirty);
    errno = 1234;
    unsigned char *zeroed = calloc(8, 8);
    assert_int_equal(errno, 1234);
    assert_non_null(zeroed);
    assert_int_equal((uintptr_t)zeroed, was); /* the same block: the test means something */
    for (size_t i = 0; i < 64; i++) {
        assert_int_equal(zeroed[i], 0);
    }
    free(zeroed);
}

static int run_again_with_settings(char **argv, char *dir)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    setenv("CEBOX_OUT", dir, 1);
    setenv("CEBOX_SLOT_SIZE", "8M", 1);
    setenv("CEBOX_QUIET", "yes", 1);
    execv(strchr(argv[0], '/') != NULL ? argv[0] : "/proc/self/exe", argv);
    perror("execv");
    return 1;
}

int main(int argc, char **argv)
{
    (void)argc;
    static char dir[PATH_MAX];
    const char *out = getenv("CEBOX_OUT");
    if (out == NULL || strstr(out, "/cebox-test-entry-") == NULL) { /* not yet re-run with the settings */
        if (testutil_temp_template(dir, sizeof dir, "entry") != 0) {
            fputs("test_entry: TMPDIR is too long\n", stderr);
            return 1;
        }
        return run_again_with_settings(argv, dir);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(hook_fails_the_malloc_family, unhook),
        cmocka_unit_test_teardown(hook_fails_the_mmap_family, unhook),
        cmocka_unit_test_teardown(hook_fails_the_win32_names, unhook),
        cmocka_unit_test(entry_fail_reports_as_each_api_does),
        cmocka_unit_test(the_heap_tells_too_large),
        cmocka_unit_test(tracker_sees_every_block),
        cmocka_unit_test(queued_frees_wait_for_the_next_plain_free),
        cmocka_unit_test(calloc_zeroes_a_reused_block),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    if (system(cmd) != 0) {
        failed = 1;
    }
    return failed;
}
