/*
 * summary.c - counters and the exit summary of the preload library
 * (see summary.h).
 */
#include "record/summary.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "record/eventlog.h"
#include "heap/heap.h"
#include "os.h"
#include "record/runsummary.h"

#define BAD_FREE_LINES 10 /* report the first few bad frees one by one */

static atomic_size_t bad_frees, foreign_frees;
static atomic_size_t outside_bytes, outside_peak;

/* The choke point of the malloc and mmap families' failures: the event log
 * counts them and, with --out, records their stacks. */
void summary_note_failure(enum summary_api api, size_t size)
{
    eventlog_failure(api == SUMMARY_API_MMAP ? LOG_API_MMAP : LOG_API_MALLOC, size, ERROR_NOT_ENOUGH_MEMORY,
                     LOG_REASON_OTHER);
}

void summary_note_foreign_free(void)
{
    atomic_fetch_add(&foreign_frees, 1);
}

void summary_note_bad_free(const void *p, int why)
{
    static const char *const reasons[] = {"not from the heap", "an interior pointer",
                                          "already freed"};
    size_t n = atomic_fetch_add(&bad_frees, 1);
    if (n < BAD_FREE_LINES) {
        char line[200];
        int len = snprintf(line, sizeof line,
                           "cebox: pid %d: free/realloc of %p, which is no live block of the heap "
                           "(%s); ignored\n",
                           (int)getpid(), p, why >= 0 && why < 3 ? reasons[why] : "invalid");
        os_write_all(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
    }
}

void summary_note_outside_map(size_t len)
{
    size_t now = atomic_fetch_add(&outside_bytes, len) + len;
    size_t peak = atomic_load(&outside_peak);
    while (now > peak && !atomic_compare_exchange_weak(&outside_peak, &peak, now)) {
    }
}

void summary_note_outside_unmap(size_t len)
{
    size_t now = atomic_load(&outside_bytes);
    while (!atomic_compare_exchange_weak(&outside_bytes, &now, now > len ? now - len : 0)) {
    }
}

void summary_started(struct cebox_core *core)
{
    eventlog_start(core);
}

void summary_forked(void)
{
    atomic_store(&bad_frees, 0);
    atomic_store(&foreign_frees, 0);
}

/* What glibc's own malloc holds from the system (its arena and its mapped
 * chunks).  Nothing, as long as every call reaches cebox: the preloaded
 * symbols come first in every lookup but one, that of a library dlopen'ed
 * with RTLD_DEEPBIND, which binds to its own dependencies (libc) first.
 * Such code runs outside the emulation, and the summary says so. */
static uint64_t libc_malloc_bytes(void)
{
    /* Looked up once: malloc_stats may ask many times, and each dlsym in
     * cebox may take bootstrap-arena memory that is never given back. */
    static void *_Atomic found;
    void *sym = atomic_load(&found);
    if (sym == NULL) {
        sym = dlsym(RTLD_NEXT, "mallinfo2");
        if (sym == NULL) {
            return 0;
        }
        atomic_store(&found, sym);
    }
    struct mallinfo2 (*libc_mallinfo2)(void);
    memcpy(&libc_mallinfo2, &sym, sizeof sym); /* object to function pointer */
    struct mallinfo2 mi = libc_mallinfo2();
    return (uint64_t)mi.arena + (uint64_t)mi.hblkhd;
}

/* The numbers of the summary: the core's (eventlog_summary) and this
 * file's counters. */
static void collect(struct cebox_core *core, struct run_summary *rs)
{
    eventlog_summary(core, rs);
    rs->bad_frees = atomic_load(&bad_frees);
    rs->foreign_frees = atomic_load(&foreign_frees);
    rs->outside_peak = atomic_load(&outside_peak);
    rs->libc_malloc_bytes = libc_malloc_bytes();
}

/* The text, with the line on call stacks: where they are, or how to get
 * them (the same function formats the summary in `cebox report`). */
static void write_summary(int fd, struct cebox_core *core, const struct run_summary *rs)
{
    char buf[2048];
    const char *log = eventlog_path();
    enum run_summary_hint hint = core->settings.out_dir[0] == '\0' ? RUN_SUMMARY_HINT_OUT
                                 : log[0] != '\0'                  ? RUN_SUMMARY_HINT_LOG
                                                                   : RUN_SUMMARY_NO_HINT;
    size_t n = run_summary_format(rs, hint, log, buf, sizeof buf);
    os_write_all(fd, buf, n);
}

void summary_write(int fd, struct cebox_core *core)
{
    struct run_summary rs;
    collect(core, &rs);
    write_summary(fd, core, &rs);
}

/* --summaries failures keeps the processes worth a look: failed
 * allocations, or heap blocks never freed. */
static bool shown_on_stderr(const struct cebox_settings *s, const struct run_summary *rs)
{
    bool worth_a_look = run_summary_failures(rs) != 0 || rs->heap_live_blocks != 0;
    return !s->quiet && (s->summaries == SUMMARIES_ALL || (s->summaries == SUMMARIES_FAILURES && worth_a_look));
}

void summary_exit(struct cebox_core *core)
{
    struct run_summary rs;
    collect(core, &rs);
    eventlog_exit(&rs); /* first: the summary names the log */
    if (shown_on_stderr(&core->settings, &rs)) {
        write_summary(2, core, &rs);
    }
    if (core->settings.out_dir[0] != '\0') {
        char path[sizeof core->settings.out_dir + 48];
        snprintf(path, sizeof path, "%s/cebox-%d.summary", core->settings.out_dir, (int)getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            write_summary(fd, core, &rs);
            close(fd);
        } else if (!core->settings.quiet) {
            char line[sizeof path + 64];
            int len = snprintf(line, sizeof line, "cebox: cannot write %s\n", path);
            os_write_all(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
        }
    }
}
