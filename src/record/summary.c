/*
 * summary.c - the counters and the exit summary of both libraries (see
 * summary.h).
 */
#include "record/summary.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "entry.h"
#include "fault.h"
#include "record/ownfd.h"
#include "heap/heap.h"
#include "meta.h"
#include "occupancy.h"
#include "os.h"
#include "record/eventlog.h"
#include "record/leaks.h"
#include "record/runsummary.h"

#define BAD_FREE_LINES 10 /* report the first few bad frees one by one */

static atomic_bool preloaded;
int summary_exit_wanted = 1;
static void (*settle_at_exit)(void);
static atomic_uint_fast64_t failures[LOG_API_COUNT];
static atomic_size_t bad_frees, foreign_frees;
static atomic_uint_fast64_t injected;
/* Bytes mapped and their peak: the program's outside the slot, and
 * cebox's own (made while it is inside: the unwinder's, the loader's). */
struct mapped {
    atomic_size_t now, peak;
};
static struct mapped outside, own;
static _Atomic int fork_reset_once = CORE_ONCE_NOT_YET; /* core_run_once's */

/* A forked child is a new process: its summary counts its own events. */
/* Where the slot is and what the image, DLLs and stacks took (occupancy.c). */
static void note_occupancy(struct run_summary *out, struct cebox_core *core, const struct slot_stats *ss)
{
    struct occupancy_stats os;
    occupancy_get_stats(&os);
    out->occupancy_known = true;
    out->slot_base = slot_base(core->slot);
    out->peak_committed_image_pages = ss->image_pages_at_peak;
    out->peak_committed_stack_pages = ss->stack_pages_at_peak;
    out->image_blocks = os.image_blocks;
    out->xip_dlls = os.xip_dlls;
    out->xip_dll_blocks = os.xip_dll_blocks;
    out->ram_dlls = os.ram_dlls;
    out->ram_dll_blocks = os.ram_dll_blocks;
    out->stack_blocks = os.peak_stacks != 0 ? os.stack_blocks : 0;
    out->peak_stacks = os.peak_stacks;
    out->threads_refused = os.threads_refused;
    out->occupants_refused = os.refused;
}

/* Zeroes a counter that is not zero already: a child that forks straight
 * into an exec copies no page for its counters. */
static void reset_counter(atomic_uint_fast64_t *c)
{
    if (atomic_load_explicit(c, memory_order_relaxed) != 0) {
        atomic_store(c, 0);
    }
}

static void reset_count(atomic_size_t *c)
{
    if (atomic_load_explicit(c, memory_order_relaxed) != 0) {
        atomic_store(c, 0);
    }
}

static void forked_child(void)
{
    for (int i = 0; i < LOG_API_COUNT; i++) {
        reset_counter(&failures[i]);
    }
    reset_count(&bad_frees);
    reset_count(&foreign_frees);
    reset_counter(&injected);
}

static void register_fork_reset(void)
{
    core_atfork(NULL, NULL, forked_child);
}

void summary_start_preloaded(void (*settle)(void))
{
    settle_at_exit = settle;
    core_run_once(&fork_reset_once, register_fork_reset);
    atomic_store(&preloaded, true);
}

void summary_count_failure(enum log_api api)
{
    core_run_once(&fork_reset_once, register_fork_reset);
    if ((unsigned)api < LOG_API_COUNT) {
        atomic_fetch_add(&failures[api], 1);
    }
}

void summary_count_injected(void)
{
    atomic_fetch_add(&injected, 1);
}

uint64_t summary_failures(enum log_api api)
{
    return (unsigned)api < LOG_API_COUNT ? atomic_load(&failures[api]) : 0;
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
                           (int)os_getpid(), p, why >= 0 && why < 3 ? reasons[why] : "invalid");
        os_write_stderr(line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
    }
}

static void mapped_add(struct mapped *m, size_t len)
{
    size_t now = atomic_fetch_add(&m->now, len) + len;
    size_t peak = atomic_load(&m->peak);
    while (now > peak && !atomic_compare_exchange_weak(&m->peak, &peak, now)) {
    }
}

static void mapped_remove(struct mapped *m, size_t len)
{
    size_t now = atomic_load(&m->now);
    while (!atomic_compare_exchange_weak(&m->now, &now, now > len ? now - len : 0)) {
    }
}

void summary_note_outside_map(size_t len)
{
    mapped_add(&outside, len);
}

void summary_note_outside_unmap(size_t len)
{
    mapped_remove(&outside, len);
}

void summary_note_own_map(size_t len)
{
    mapped_add(&own, len);
}

void summary_note_own_unmap(size_t len)
{
    mapped_remove(&own, len);
}

/* glibc's program break, NULL until the process's first sbrk (or brk
 * through glibc); weak, for a libc that has none. */
extern void *__curbrk __attribute__((weak));

/* Has glibc's own malloc ever run in this process?  Its first call, from
 * whichever thread, sets up the main arena from sbrk (the thread cache is
 * that arena's first chunk), and sbrk reads the break first, which sets
 * __curbrk even when the break cannot grow: so while __curbrk is NULL,
 * glibc's malloc has never run and holds nothing.  Asking mallinfo2 would
 * initialize it (a getrandom system call and its pages) at every exit. */
static bool libc_malloc_may_hold(void)
{
    return &__curbrk == NULL || __curbrk != NULL;
}

/* What glibc's own malloc holds from the system (its arena and its mapped
 * chunks).  Nothing, as long as every call reaches cebox: the preloaded
 * symbols come first in every lookup but one, that of a library dlopen'ed
 * with RTLD_DEEPBIND, which binds to its own dependencies (libc) first.
 * Such code runs outside the emulation, and the summary says so. */
static uint64_t libc_malloc_bytes(void)
{
    if (!libc_malloc_may_hold()) {
        return 0;
    }
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

/* What fits of text into buf (cap bytes), ended: snprintf's "%s" without
 * printf, which the summary of every process no longer calls. */
static void copy_text(char *buf, size_t cap, const char *text)
{
    size_t n = strnlen(text, cap - 1);
    memcpy(buf, text, n);
    buf[n] = '\0';
}

/* The summary's command line: read only for a summary that is shown or
 * written (collect_command). */
static void collect_command(struct run_summary *out, bool locks_free)
{
    eventlog_command(out->command, sizeof out->command, (int)out->pid, locks_free);
}

/* The numbers of the summary of process `pid` (the caller's, asked once
 * per ending: each getpid is a system call): the slot's, the process
 * heap's, the log's and this file's counters; not yet the command line
 * (collect_command). */
static void collect(struct cebox_core *core, struct run_summary *out, bool locks_free, int pid)
{
    memset(out, 0, sizeof *out);
    out->pid = (uint32_t)pid;
    copy_text(out->profile, sizeof out->profile, core->settings.profile->name);
    copy_text(out->private_device, sizeof out->private_device, ram_private_reason(&core->ram));
    if (core->slot != NULL && locks_free) {
        struct slot_stats ss;
        slot_get_stats(core->slot, &ss);
        out->granularity = slot_granularity(core->slot);
        out->page_size = slot_page_size(core->slot);
        out->blocks = ss.blocks;
        out->peak_reserved_blocks = ss.peak_reserved_blocks;
        out->headroom_known = true;
        out->min_largest_free_run = ss.min_largest_free_run;
        out->peak_committed_pages = ss.peak_committed_pages;
        out->kinds_known = true;
        out->peak_committed_heap_pages = ss.heap_pages_at_peak;
        note_occupancy(out, core, &ss);
        out->fail_exhausted = ss.fail_exhausted;
        out->fail_fragmented = ss.fail_fragmented;
        out->fail_ram = ss.fail_ram;
        out->fail_cap = ss.fail_cap;
    }
    struct heap *ph = atomic_load(&core->process_heap);
    if (ph != NULL && locks_free) {
        struct heap_stats hs;
        ph->ops->stats(ph, &hs);
        out->heap_peak_live_bytes = hs.peak_live_bytes;
        out->heap_peak_live_blocks = hs.peak_live_blocks;
        out->heap_peak_committed_bytes = hs.peak_committed_bytes;
        out->heap_live_bytes = hs.live_bytes;
        out->heap_live_blocks = hs.live_blocks;
    }
    for (int i = 0; i < LOG_API_COUNT; i++) {
        out->failures[i] = atomic_load(&failures[i]);
    }
    out->unrecorded_failures = eventlog_unrecorded();
    out->fail_injected = atomic_load(&injected);
    out->bad_frees = atomic_load(&bad_frees);
    out->foreign_frees = atomic_load(&foreign_frees);
    out->outside_peak = atomic_load(&outside.peak);
    out->own_known = true;
    out->own_meta_bytes = meta_bytes_in_use();
    out->own_mapped_peak = atomic_load(&own.peak);
    /* Linked (not preloaded), glibc's malloc is the program's own. */
    out->libc_malloc_bytes = atomic_load(&preloaded) ? libc_malloc_bytes() : 0;
}

#define SUMMARY_TEXT_MAX 4096
#define SUMMARY_PATH_MAX (4096 + 48) /* eventlog_dir() is at most 4095 bytes */

/* The text, with the line on call stacks: where they are, or how to get
 * them (the same function formats the summary in `cebox report`).
 * Returns its length; buf holds SUMMARY_TEXT_MAX bytes. */
static size_t format_summary(char *buf, struct cebox_core *core, const struct run_summary *rs)
{
    const char *log = eventlog_path();
    enum run_summary_hint hint = core->settings.out_dir[0] == '\0' ? RUN_SUMMARY_HINT_OUT
                                 : log[0] != '\0'                  ? RUN_SUMMARY_HINT_LOG
                                                                   : RUN_SUMMARY_NO_HINT;
    return run_summary_format(rs, hint, log, buf, SUMMARY_TEXT_MAX);
}

void summary_write(int fd, struct cebox_core *core)
{
    struct run_summary rs;
    char buf[SUMMARY_TEXT_MAX];
    collect(core, &rs, true, (int)os_getpid());
    collect_command(&rs, true);
    os_write_all(fd, buf, format_summary(buf, core, &rs));
}

/* DIR/cebox-PID.summary, in the directory made absolute at the start (the
 * program may have changed its own since), through a descriptor of cebox's
 * own (ownfd.h): a program thread that closes or dup2s descriptors at exit
 * never gets these bytes in its file.  Not inlined: its 8 KB of paths stay
 * out of summary_finish's frame, on the stack only with --out. */
static __attribute__((noinline)) void write_summary_file(const char *text, size_t len, int pid)
{
    char path[SUMMARY_PATH_MAX];
    snprintf(path, sizeof path, "%s/cebox-%d.summary", eventlog_dir(), pid);
    struct ownfd f;
    size_t written;
    int err = ownfd_open(&f, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err == 0) {
        err = ownfd_write(&f, text, len, &written);
        ownfd_close(&f);
    }
    if (err != 0 && !core_get()->settings.quiet) {
        char line[sizeof path + 64];
        int n = snprintf(line, sizeof line, "cebox: cannot write %s\n", path);
        os_write_stderr(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
}

/* --summaries failures keeps the processes worth a look: failed
 * allocations, or heap blocks never freed. */
static bool shown_on_stderr(const struct cebox_settings *s, const struct run_summary *rs)
{
    bool worth_a_look = run_summary_failures(rs) != 0 || rs->heap_live_blocks != 0;
    return !s->quiet && (s->summaries == SUMMARIES_ALL || (s->summaries == SUMMARIES_FAILURES && worth_a_look));
}

/* The base name of a module's path. */
static const char *base_name(const char *path)
{
    const char *base = strrchr(path, '/');
    return base != NULL ? base + 1 : path;
}

/* "func (module+0xoff)" for an address of the program, as dladdr finds
 * it: the exported names only, a static function's address reads
 * "module+0xoff" (cebox report symbolizes every frame from the log, with
 * the static names, files and lines); the bare address in a signal
 * handler, where the loader's lock may be held.  *named: a name was
 * found. */
static const char *describe_ip(char *buf, size_t cap, uintptr_t ip, bool in_signal, bool *named)
{
    Dl_info di;
    *named = false;
    if (in_signal || dladdr((void *)(ip - 1), &di) == 0 || di.dli_fname == NULL) {
        snprintf(buf, cap, "%#lx", (unsigned long)ip);
        return buf;
    }
    const char *base = base_name(di.dli_fname);
    *named = di.dli_sname != NULL;
    if (*named) {
        snprintf(buf, cap, "%s (%s+%#lx)", di.dli_sname, base, (unsigned long)(ip - (uintptr_t)di.dli_fbase));
    } else {
        snprintf(buf, cap, "%s+%#lx", base, (unsigned long)(ip - (uintptr_t)di.dli_fbase));
    }
    return buf;
}

/* Does one of the default suppressions (the ones cebox report applies)
 * take the site?  Its innermost frame as dladdr names it, so only libc's
 * exported functions and ld.so's module are seen; in a signal handler,
 * nothing is. */
static bool suppressed_by_default(const struct leak_site *t, bool in_signal)
{
    Dl_info di;
    if (in_signal || t->depth == 0 || dladdr((void *)(t->ips[0] - 1), &di) == 0 || di.dli_fname == NULL) {
        return false;
    }
    return run_summary_default_suppressed(di.dli_sname, base_name(di.dli_fname));
}

static size_t append_line(char *buf, size_t len, size_t cap, const char *line)
{
    len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s", line);
    return len < cap ? len : cap - 1;
}

/* The sites left once the default suppressions took theirs. */
struct leak_tally {
    uint64_t bytes[LEAK_KINDS], blocks[LEAK_KINDS];
    uint64_t suppressed[2]; /* bytes, blocks */
    const struct leak_site *top[LEAK_KINDS]; /* most bytes of each kind, or NULL */
};

static void tally_sites(const struct leak_report *r, bool in_signal, struct leak_tally *y)
{
    memset(y, 0, sizeof *y);
    for (size_t i = 0; i < r->nsites; i++) {
        const struct leak_site *t = &r->sites[i];
        if (suppressed_by_default(t, in_signal)) {
            y->suppressed[0] += t->bytes;
            y->suppressed[1] += t->blocks;
            continue;
        }
        y->bytes[t->kind] += t->bytes;
        y->blocks[t->kind] += t->blocks;
        if (y->top[t->kind] == NULL || t->bytes > y->top[t->kind]->bytes) {
            y->top[t->kind] = t;
        }
    }
}

/* The leak lines of the printed summary: the sites the default
 * suppressions take are counted as suppressed, as cebox report counts
 * them, and the rest by kind with the top site of each; `log`: the event
 * log the leak records went to ("": none). */
static size_t format_leaks(const struct leak_report *r, bool in_signal, const char *log, char *buf, size_t len,
                           size_t cap)
{
    struct leak_tally y;
    tally_sites(r, in_signal, &y);
    char tops[LEAK_KINDS][160];
    const char *top[LEAK_KINDS] = {NULL};
    bool all_named = true;
    for (int k = 0; k < LEAK_KINDS; k++) {
        const struct leak_site *t = y.top[k];
        if (t != NULL && t->depth != 0) {
            bool named;
            top[k] = describe_ip(tops[k], sizeof tops[k], t->ips[0], in_signal, &named);
            all_named = all_named && named;
        }
    }
    len = run_summary_leaks(y.bytes, y.blocks, top, y.suppressed, buf, len, cap);
    if (y.blocks[LEAK_DEFINITE] + y.blocks[LEAK_INDIRECT] + y.blocks[LEAK_POSSIBLE] + y.blocks[LEAK_REACHABLE] == 0) {
        len = append_line(buf, len, cap, "cebox:   leaks: none\n");
    } else if (!all_named && log[0] != '\0') {
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0,
                                "cebox:   leak stacks in full (static functions, files and lines): cebox report %s\n",
                                log);
        len = len < cap ? len : cap - 1;
    } else if (!all_named) {
        len = append_line(buf, len, cap, "cebox:   leak stacks in full: run with --out DIR, then: cebox report DIR\n");
    }
    if (r->incomplete) {
        len = append_line(buf, len, cap, "cebox:   leaks: no memory left to classify the live blocks\n");
    }
    return len;
}

/* A preloaded process with nothing to print (--quiet, --summaries none),
 * no --out to write or log to and no --leaks: its ending reads no counter
 * and makes no system call (a shell's every command, under --quiet). */
static bool nothing_to_say(const struct cebox_settings *s)
{
    return (s->quiet || s->summaries == SUMMARIES_NONE) && s->out_dir[0] == '\0' && !s->leaks;
}

static atomic_int exit_status = -1; /* -1: not seen (main returned or exit called) */
static atomic_int finished_pid;     /* the process whose ending is written */

void summary_note_exit_status(int status)
{
    atomic_store(&exit_status, status & 0xff);
}

/* The ending of the process: the leak records and the summary record in
 * the log (first: the printed summary names the log), the printed summary
 * (preloaded), and the record of how it ended.  Once per process.  A
 * linked program without a log or --leaks has nothing to say (and its
 * core may not even exist: none is made now); with --leaks it starts its
 * log now. */
void summary_finish(const struct eventlog_ending *how, bool in_signal, const struct leak_roots *roots)
{
    bool printed = atomic_load(&preloaded);
    if (!printed && eventlog_path()[0] == '\0' && !leaks_active()) {
        return;
    }
    if (printed && nothing_to_say(&core_get()->settings)) {
        if (settle_at_exit != NULL && !in_signal) {
            settle_at_exit(); /* --no-follow's exec watch still hears of the exit */
        }
        return;
    }
    int pid = (int)os_getpid();
    if (atomic_exchange(&finished_pid, pid) == pid) {
        return;
    }
    if (printed && settle_at_exit != NULL && !in_signal) {
        settle_at_exit(); /* it takes cebox's locks: never from a signal handler */
    }
    int was_inside = entry_inside;
    entry_inside = 1; /* what cebox may allocate now is not the program's */
    /* A signal that interrupted cebox itself: its thread may hold the
     * heap's, the slot's or the log's lock, so nothing waits for them. */
    bool locks_free = !(in_signal && was_inside);
    struct cebox_core *core = core_get();
    struct eventlog_ending end = *how;
    end.calls = fault_counted();
    struct leak_report lr;
    bool leaks = leaks_active();
    if (leaks) {
        struct leak_roots r = *roots;
        r.slot_unlocked = r.slot_unlocked && locks_free;
        leaks_classify(&lr, in_signal, &r);
        eventlog_leaks(&lr, in_signal);
        leaks_write_views(in_signal, r.slot_unlocked);
        end.flags |= LOG_END_LEAKS | (lr.unlocked ? LOG_END_UNLOCKED : 0u) |
                     (lr.incomplete ? LOG_END_INCOMPLETE : 0u);
        end.untracked = lr.untracked;
    }
    struct run_summary rs;
    collect(core, &rs, locks_free, pid);
    /* The text only for stderr or --out (where the log's summary record
     * goes too): a quiet process without --out neither formats it nor
     * reads its command line. */
    bool shown = printed && shown_on_stderr(&core->settings, &rs);
    bool written = core->settings.out_dir[0] != '\0';
    if (shown || written) {
        collect_command(&rs, locks_free);
    }
    eventlog_exit(&rs, in_signal);
    char text[SUMMARY_TEXT_MAX];
    size_t len = 0;
    if (printed && (shown || written)) {
        len = format_summary(text, core, &rs);
        if (leaks) {
            len = format_leaks(&lr, in_signal, eventlog_path(), text, len, sizeof text);
        }
        if (end.how == LOG_END_SIGNAL) {
            len = run_summary_ending(end.how, end.value, end.fault_addr, text, len, sizeof text);
        }
    }
    if (shown) {
        os_write_stderr(text, len);
    }
    if (printed && written) {
        write_summary_file(text, len, pid);
    }
    eventlog_end(&end, in_signal);
    if (leaks) {
        leaks_report_free(&lr);
    }
    entry_inside = was_inside; /* later destructors still get a working heap */
}

/* The ending of a process that exits (exit, main's return, _exit): its
 * status if one was seen.  in_signal: it may run in a signal handler
 * that interrupted cebox itself (summary_finish then waits for no lock). */
static __attribute__((noinline)) void finish_exit(bool in_signal)
{
    int status = atomic_load(&exit_status);
    struct eventlog_ending end = {.how = status >= 0 ? LOG_END_EXIT : LOG_END_UNKNOWN,
                                  .value = status >= 0 ? status : 0};
    struct leak_roots roots = {
        .stack_from = (uintptr_t)__builtin_frame_address(0), .slot_unlocked = true, .stop_threads = true};
    summary_finish(&end, in_signal, &roots);
}

__attribute__((destructor)) static void summary_end(void)
{
    if (__atomic_load_n(&summary_exit_wanted, __ATOMIC_RELAXED) == 0) {
        return;
    }
    finish_exit(false);
}

void summary_quick_exit(int status)
{
    if (__atomic_load_n(&summary_exit_wanted, __ATOMIC_RELAXED) == 0 || !atomic_load(&preloaded)) {
        return;
    }
    /* A vfork child runs in its parent's memory, with no fork handler
     * run: what it wrote here would be its parent's summary and log. */
    if (ram_member_pid(&core_get()->ram) != (int32_t)os_getpid()) {
        return;
    }
    summary_note_exit_status(status);
    /* A signal handler may call _exit (it is async-signal-safe): one
     * that interrupted cebox on this thread finds its locks held. */
    finish_exit(entry_inside != 0);
}
