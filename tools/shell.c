/*
 * shell.c - the device's shell during `cebox run` (see shell.h).
 *
 * Owns: the session's event lines (memory-state transitions, hibernate
 * notices, closed processes), on stderr unless --quiet and in
 * OUT/cebox.session with --out (not named like the processes' cebox-PID.log,
 * so that `cebox report` given OUT/STAR.log reads only those), which begins with the
 * session file's path.
 *
 * A tick every 20 ms, at once when the child ends, and at once when free
 * RAM crosses the hibernate level or a process joins the session under it (a thread
 * of the shell sleeps on the session's wake word, a futex the crossing
 * charge wakes, and passes the wake on through an eventfd the tick's poll
 * includes):
 *  - the state schedule's next step, when due;
 *  - new state transitions from the session's ring, logged with the time,
 *    free RAM and the process whose charge caused them;
 *  - hibernate: when free RAM falls under the table's hibernate level, the
 *    session's processes get a notice one at a time, least recently active
 *    first (the most recent, the "foreground" one, last), each followed by
 *    a window (up to 1 s, over as soon as free RAM is back over the level)
 *    in which what it released is measured (when it released nothing
 *    while its heap holds freed pages still committed, the line says so:
 *    only HeapCompact or malloc_trim gives those back); a process that
 *    joins during the round (one started under the level, as with --state
 *    low) is queued too, so none is missed; the round stops as
 *    soon as free RAM is back over the level, and the next round needs free
 *    RAM to go over the level and under it again (once per entry, as CE);
 *  - the timeline (with --out, every --sample-interval): each member's
 *    published figures (ram.h) with the device's free RAM and state, one
 *    sample record appended to the member's own DIR/cebox-PID.log once
 *    the process has begun it (O_APPEND, one write: the process's own
 *    records are never split), and before it the member's published slot
 *    map when it changed since the last one written (record 13, not past
 *    --log-limit; a peak sample's map is copied at the tick of the peak);
 *    nothing is read from the process itself;
 *  - close-apps (Pocket PC): while free RAM stays under the limited level
 *    after the notices, the least recently active process other than the
 *    most recent one gets SIGTERM, and SIGKILL 8 s later if it is still
 *    there.
 */
#include "shell.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memstate.h"
#include "ram.h"
#include "record/logformat.h"

#define TICK_MS 20
#define NOTICE_WINDOW_NS (1000 * 1000 * 1000L) /* at most; it ends early once RAM is back */
#define CLOSE_GRACE_NS (8 * 1000 * 1000 * 1000LL)
#define MAX_MEMBERS 256
/* Freed heap pages still committed worth a word when a notice released
 * nothing: a 64 KB block's worth (less is the heap's own overhead). */
#define FREE_COMMITTED_WORTH_SAYING (64 * 1024)

/* What the timeline keeps of a member: its highest committed memory seen
 * at a tick (pending: not yet in its log), against the highest its log's
 * samples of cebox run show; the ticks to let pass before it is asked for
 * its free figures again. */
struct member_watch {
    int32_t pid;
    bool has_pending;
    uint64_t written;
    struct log_sample pending;
    uint64_t wait;
    uint32_t map_seq;  /* the sequence count of its map at the last copy (MAP_NONE: none yet) */
    char *last_map;    /* the cells last written to its log (RAM_MAP_BLOCKS bytes once needed) */
    size_t last_map_blocks; /* 0: none written */
    char *pending_map; /* its map at the pending peak (RAM_MAP_BLOCKS bytes once needed; NULL: none) */
    size_t pending_map_blocks; /* 0: no copy */
    uint32_t pending_map_seq;
};

/* A map's sequence count is even when whole: this one is never seen. */
#define MAP_NONE UINT32_MAX

/* The free figures' pass may visit this many runs or items per tick of
 * the member's: a longer one is asked for less often (a CE 3 heap of
 * 100 000 items every 24 ticks), so it never costs the program more than
 * a few hundred thousand instructions a second. */
#define FIGURES_WORK_PER_TICK 4096

struct shell {
    const struct cebox_settings *s;
    struct ram ram;
    int log_fd;
    uint64_t start_ns;
    uint32_t transitions_seen;
    /* hibernate round */
    bool armed;             /* free RAM went over the level since the last round */
    bool in_round;
    bool none_to_notify;    /* under the level, but no process to notify yet */
    uint32_t joins_seen;    /* the session's join count when the queue was last filled */
    struct ram_member_info queue[MAX_MEMBERS]; /* this round's members; [0, next) noticed */
    size_t queued, next;
    int32_t noticed_pid;    /* waiting for its window to end, or 0 */
    size_t noticed_before;
    uint64_t window_end;
    /* close-apps */
    int32_t closing_pid;
    uint64_t kill_at;
    /* the timeline */
    uint64_t next_sample;
    /* the crossing waker */
    int wake_fd;            /* eventfd the waker thread writes to, or -1 */
    pthread_t waker;
    atomic_bool stop_waker;
    struct member_watch peaks[MAX_MEMBERS];
    size_t npeaks;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void event_at(struct shell *sh, uint64_t when, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define event(sh, ...) event_at((sh), now_ns(), __VA_ARGS__)

/* One line at time `when` (CLOCK_MONOTONIC), counted from the run's start:
 * the origin `cebox report` counts every time of the run's processes from. */
static void event_at(struct shell *sh, uint64_t when, const char *fmt, ...)
{
    char line[512];
    double t = when > sh->start_ns ? (double)(when - sh->start_ns) / 1e9 : 0.0;
    int n = snprintf(line, sizeof line, "cebox: [%7.3f s] ", t);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) {
        n = (int)sizeof line - 2;
    }
    line[n++] = '\n';
    if (!sh->s->quiet) {
        (void)!write(2, line, (size_t)n);
    }
    if (sh->log_fd >= 0) {
        (void)!write(sh->log_fd, line, (size_t)n);
    }
}

static size_t free_bytes(struct shell *sh)
{
    return ram_free_pages(&sh->ram) * sh->ram.page;
}

static void sample_members(struct shell *sh, uint64_t when, unsigned kind, uint64_t ram_free, unsigned state);

static bool timeline_on(const struct shell *sh)
{
    return sh->s->out_dir[0] != '\0' && sh->s->sample_interval_ms > 0;
}

/* Each transition is a line, and with the timeline a sample of every
 * member at its time, in the state it entered. */
static void log_transitions(struct shell *sh)
{
    struct ram_transition t[16];
    uint32_t n;
    while ((n = ram_transitions(&sh->ram, sh->transitions_seen, t, 16)) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            if (timeline_on(sh)) {
                sample_members(sh, t[i].time_ns, LOG_SAMPLE_STATE, t[i].free_bytes, (unsigned)t[i].to);
            }
            event_at(sh, t[i].time_ns, "memory state %s -> %s, free RAM %llu KB, caused by pid %d",
                  memstate_name((enum memstate)t[i].from), memstate_name((enum memstate)t[i].to),
                  (unsigned long long)(t[i].free_bytes / 1024), (int)t[i].pid);
        }
        sh->transitions_seen += n;
    }
}

static int by_activity(const void *a, const void *b)
{
    const struct ram_member_info *x = a, *y = b;
    return x->last_active < y->last_active ? -1 : x->last_active > y->last_active;
}

static bool queued_already(const struct shell *sh, int32_t pid)
{
    for (size_t i = 0; i < sh->queued; i++) {
        if (sh->queue[i].pid == pid) {
            return true;
        }
    }
    return false;
}

/* Adds the members not yet in this round's queue, and orders the part not
 * yet noticed least recently active first.  Returns how many it added. */
static size_t queue_new_members(struct shell *sh)
{
    struct ram_member_info m[MAX_MEMBERS];
    sh->joins_seen = ram_joins(&sh->ram); /* before the scan: a later join is seen next time */
    size_t n = ram_members(&sh->ram, m, MAX_MEMBERS), added = 0;
    for (size_t i = 0; i < n && sh->queued < MAX_MEMBERS; i++) {
        if (!queued_already(sh, m[i].pid)) {
            sh->queue[sh->queued++] = m[i];
            added++;
        }
    }
    qsort(sh->queue + sh->next, sh->queued - sh->next, sizeof sh->queue[0], by_activity);
    return added;
}

/* A round begins once there is a process to notify: the program may not
 * have joined yet when free RAM is already under the level (--state low
 * from the start). */
static void start_round(struct shell *sh, size_t free_now)
{
    if (sh->none_to_notify && ram_joins(&sh->ram) == sh->joins_seen) {
        return; /* nobody new since the last look */
    }
    sh->queued = sh->next = 0;
    sh->none_to_notify = queue_new_members(sh) == 0;
    if (sh->none_to_notify) {
        return;
    }
    sh->armed = false;
    sh->in_round = true;
    event(sh, "free RAM %zu KB is under the hibernate level (%zu KB): notices to %zu process(es), "
              "least recently active first",
          free_now / 1024, ram_hibernate_threshold(&sh->ram) / 1024, sh->queued);
}

static void end_round(struct shell *sh)
{
    sh->armed = true;
    sh->in_round = false;
    sh->none_to_notify = false;
    sh->queued = sh->next = 0;
}

/* The next queued process that is still a member gets its notice. */
static void send_next_notice(struct shell *sh, uint64_t now)
{
    while (sh->next < sh->queued) {
        int32_t pid = sh->queue[sh->next++].pid;
        size_t before = ram_member_committed(&sh->ram, pid);
        if (!ram_send_notice(&sh->ram, pid)) {
            continue; /* it left the session meanwhile */
        }
        if (sh->s->hibernate_signal != 0) {
            kill(pid, sh->s->hibernate_signal);
        }
        sh->noticed_before = before;
        sh->noticed_pid = pid;
        sh->window_end = now + NOTICE_WINDOW_NS;
        return;
    }
}

/* "7.0 MB" or "512 KB". */
static void format_size(char *out, size_t len, uint64_t bytes)
{
    if (bytes >= 1024 * 1024) {
        snprintf(out, len, "%.1f MB", (double)bytes / (1024.0 * 1024.0));
    } else {
        snprintf(out, len, "%llu KB", (unsigned long long)(bytes / 1024));
    }
}

/* Why a notice released nothing, when the reason is the CE lesson: freed
 * heap items leave their pages committed until the heap is compacted.
 * "" when the member's heap holds no such pages (or publishes nothing). */
static void why_nothing_released(struct shell *sh, int32_t pid, char *out, size_t len)
{
    struct ram_member_sample m[MAX_MEMBERS];
    size_t n = ram_sample_members(&sh->ram, m, MAX_MEMBERS);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        uint64_t live = m[i].tl.heap_live_bytes, committed = m[i].tl.heap_committed_bytes;
        if (m[i].pid == pid && committed > live && committed - live >= FREE_COMMITTED_WORTH_SAYING) {
            char size[32];
            format_size(size, sizeof size, committed - live);
            snprintf(out, len, ": the heap holds %s free but committed; HeapCompact (malloc_trim) returns it", size);
        }
    }
}

static void end_notice_window(struct shell *sh, uint64_t now)
{
    size_t after = ram_member_committed(&sh->ram, sh->noticed_pid);
    size_t released = sh->noticed_before > after ? sh->noticed_before - after : 0;
    uint64_t waited = now - (sh->window_end - (uint64_t)NOTICE_WINDOW_NS);
    char why[160] = "";
    if (released == 0) {
        why_nothing_released(sh, sh->noticed_pid, why, sizeof why);
    }
    event(sh, "hibernate notice to pid %d: released %zu KB in %llu ms (free RAM now %zu KB)%s",
          (int)sh->noticed_pid, released / 1024, (unsigned long long)(waited / 1000000), free_bytes(sh) / 1024,
          why);
    sh->noticed_pid = 0;
}

/* Pocket PC: close the least recently active process but the most recent. */
static void close_background(struct shell *sh, uint64_t now)
{
    struct ram_member_info m[MAX_MEMBERS];
    size_t n = ram_members(&sh->ram, m, MAX_MEMBERS);
    if (n < 2) {
        return;
    }
    qsort(m, n, sizeof m[0], by_activity);
    sh->closing_pid = m[0].pid;
    sh->kill_at = now + (uint64_t)CLOSE_GRACE_NS;
    kill(sh->closing_pid, SIGTERM);
    event(sh, "limited memory: asked background pid %d to close (SIGTERM)", (int)sh->closing_pid);
}

static void check_closing(struct shell *sh, uint64_t now)
{
    if (ram_process_gone(sh->closing_pid)) {
        event(sh, "pid %d closed", (int)sh->closing_pid);
        sh->closing_pid = 0;
    } else if (now >= sh->kill_at) {
        kill(sh->closing_pid, SIGKILL);
        event(sh, "pid %d did not close within 8 s: killed", (int)sh->closing_pid);
        sh->closing_pid = 0;
    }
}

int shell_append_record(const char *dir, int32_t pid, const unsigned char *rec, size_t len)
{
    return shell_append_record_within(dir, pid, rec, len, UINT64_MAX) == 0 ? 0 : -1;
}

int shell_append_record_within(const char *dir, int32_t pid, const unsigned char *rec, size_t len, uint64_t limit)
{
    char path[PATH_MAX];
    if (len == 0 || snprintf(path, sizeof path, "%s/cebox-%d.log", dir, (int)pid) >= (int)sizeof path) {
        return -1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        rc = (uint64_t)st.st_size + len > limit ? 1 : write(fd, rec, len) == (ssize_t)len ? 0 : -1;
    }
    close(fd);
    return rc;
}

int shell_append_map(const char *dir, int32_t pid, unsigned type, unsigned cause, const char *cells, size_t n,
                     uint64_t when, uint64_t limit)
{
    static unsigned char rec[LOG_HEAD_SIZE + 64 + 5 * (size_t)RAM_MAP_BLOCKS];
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, (uint16_t)type);
    log_put_map(&e, 0, cells, n, 0, (enum log_map_cause)cause, when);
    return shell_append_record_within(dir, pid, rec, log_enc_finish(&e), limit);
}

/* Appends one sample to the member's log. */
static void append_sample(struct shell *sh, int32_t pid, const struct log_sample *smp)
{
    unsigned char buf[LOG_HEAD_SIZE + 128];
    struct log_enc e;
    log_enc_begin(&e, buf, sizeof buf, LOG_REC_SAMPLE);
    log_put_sample(&e, smp);
    (void)shell_append_record(sh->s->out_dir, pid, buf, log_enc_finish(&e));
}

static struct log_sample member_sample(const struct ram_member_sample *m, uint64_t when, unsigned kind,
                                       uint64_t ram_free, unsigned state)
{
    return (struct log_sample){
        .time_ns = when,
        .kind = kind,
        .slot_reserved_blocks = (uint32_t)m->tl.slot_reserved_blocks,
        .largest_free_run_blocks = (uint32_t)m->tl.largest_free_run_blocks,
        .peak_reserved_blocks = (uint32_t)m->tl.peak_reserved_blocks,
        .min_largest_free_run_blocks = (uint32_t)m->tl.min_largest_free_run_blocks,
        .slot_committed_bytes = m->committed_bytes,
        .heap_live_bytes = m->tl.heap_live_bytes,
        .heap_committed_bytes = m->tl.heap_committed_bytes,
        .ram_free_bytes = ram_free,
        .state = state,
        .has_free = ram_free_figures_fresh(&m->tl), /* else stale: the log says nothing of them */
        .heap_free_items = m->tl.heap_free_items,
        .heap_largest_free_bytes = m->tl.heap_largest_free_bytes,
        .heap_empty_pages = m->tl.heap_empty_pages,
    };
}

/* What the timeline keeps of member pid (NULL when the table is full). */
static struct member_watch *watch_of(struct shell *sh, int32_t pid)
{
    for (size_t i = 0; i < sh->npeaks; i++) {
        if (sh->peaks[i].pid == pid) {
            return &sh->peaks[i];
        }
    }
    if (sh->npeaks == MAX_MEMBERS) {
        return NULL;
    }
    sh->peaks[sh->npeaks] = (struct member_watch){.pid = pid, .map_seq = MAP_NONE};
    return &sh->peaks[sh->npeaks++];
}

static void append_watched(struct shell *sh, int32_t pid, const struct log_sample *smp)
{
    struct member_watch *w = watch_of(sh, pid);
    if (w != NULL && smp->slot_committed_bytes >= w->written) {
        w->written = smp->slot_committed_bytes;
        w->has_pending = false; /* this sample shows as much */
    }
    append_sample(sh, pid, smp);
}

/* Writes a member's map (n cells copied under sequence count seq) into
 * its log as record 13 at time `when`, unless its cells are the last
 * written (a batch may leave them as they were: compared whole, a memcmp)
 * or --log-limit keeps it out: then, as once written, the count is taken
 * as seen, so only a change of the map tries again (a log not begun yet:
 * the next tick).  Without memory for the copy, every change is written. */
static void write_map(struct shell *sh, struct member_watch *w, const char *cells, size_t n, uint32_t seq,
                      uint64_t when)
{
    if (n == w->last_map_blocks && memcmp(cells, w->last_map, n) == 0) {
        w->map_seq = seq;
        return;
    }
    int rc = shell_append_map(sh->s->out_dir, w->pid, LOG_REC_TIMELINE_MAP, LOG_MAP_SAMPLE, cells, n, when,
                              sh->s->log_limit);
    if (rc >= 0) {
        w->map_seq = seq;
    }
    if (rc == 0 && w->last_map == NULL) {
        w->last_map = malloc(RAM_MAP_BLOCKS);
    }
    if (rc == 0 && w->last_map != NULL) {
        memcpy(w->last_map, cells, n);
        w->last_map_blocks = n;
    }
}

/* A tick sample's slot map: the member's published map, copied (from the
 * session file: nothing is asked of the member) only when its sequence
 * count moved since the last copy, so a steady program adds nothing; its
 * samples refer to the latest map before them. */
static void append_map(struct shell *sh, int32_t pid, uint64_t when)
{
    static char cells[RAM_MAP_BLOCKS];
    struct member_watch *w = watch_of(sh, pid);
    uint32_t seq = w != NULL ? w->map_seq : MAP_NONE;
    size_t n = w != NULL ? ram_member_map(&sh->ram, pid, &seq, cells, sizeof cells) : 0;
    if (n != 0) { /* else unchanged, none published (a private device, a slot past the map's size), or busy */
        write_map(sh, w, cells, n, seq, when);
    }
}

/* The map at a pending peak, kept to go in before the peak's sample (a
 * copy per pending peak; cebox run's own memory, none of the member's). */
static void keep_peak_map(struct shell *sh, struct member_watch *w)
{
    if (w->pending_map == NULL) {
        w->pending_map = malloc(RAM_MAP_BLOCKS);
    }
    uint32_t seq = MAP_NONE;
    w->pending_map_blocks =
        w->pending_map != NULL ? ram_member_map(&sh->ram, w->pid, &seq, w->pending_map, RAM_MAP_BLOCKS) : 0;
    w->pending_map_seq = seq;
}

/* One timeline point for every member but the shell itself and those
 * that have ended (a zombie's row stays until it is reaped: its log ends
 * with its exit sample); at a tick, with its slot map when it changed. */
static void sample_members(struct shell *sh, uint64_t when, unsigned kind, uint64_t ram_free, unsigned state)
{
    struct ram_member_sample m[MAX_MEMBERS];
    size_t n = ram_sample_members(&sh->ram, m, MAX_MEMBERS);
    for (size_t i = 0; i < n; i++) {
        if (m[i].pid != (int32_t)getpid() && !ram_process_gone(m[i].pid)) {
            if (kind == LOG_SAMPLE_TICK) {
                append_map(sh, m[i].pid, when);
            }
            struct log_sample smp = member_sample(&m[i], when, kind, ram_free, state);
            append_watched(sh, m[i].pid, &smp);
        }
    }
}

/* At a tick that takes no sample: a member above everything its log shows
 * is remembered, to be written as a peak sample before the next one. */
static void watch_peaks(struct shell *sh, uint64_t now)
{
    struct ram_member_sample m[MAX_MEMBERS];
    size_t n = ram_sample_members(&sh->ram, m, MAX_MEMBERS);
    for (size_t i = 0; i < n; i++) {
        struct member_watch *w = m[i].pid != (int32_t)getpid() ? watch_of(sh, m[i].pid) : NULL;
        uint64_t c = m[i].committed_bytes;
        if (w != NULL && c > w->written && (!w->has_pending || c > w->pending.slot_committed_bytes)) {
            w->pending = member_sample(&m[i], now, LOG_SAMPLE_PEAK, free_bytes(sh), (unsigned)ram_state(&sh->ram));
            w->has_pending = true;
            keep_peak_map(sh, w);
        }
    }
}

/* The peaks seen since the last samples, into their logs (a member gone
 * since is written too: the reader orders its samples by time). */
static void flush_peaks(struct shell *sh)
{
    for (size_t i = 0; i < sh->npeaks; i++) {
        struct member_watch *w = &sh->peaks[i];
        if (w->has_pending) {
            struct log_sample smp = w->pending;
            if (w->pending_map_blocks != 0) {
                write_map(sh, w, w->pending_map, w->pending_map_blocks, w->pending_map_seq, smp.time_ns);
            }
            append_watched(sh, w->pid, &smp);
        }
    }
}

/* Asks a member for its free figures, unless its last pass was long
 * enough to wait a few ticks (or the watch table is full). */
static void ask_free_figures(struct shell *sh, const struct ram_member_sample *m)
{
    struct member_watch *w = m->pid != (int32_t)getpid() ? watch_of(sh, m->pid) : NULL;
    if (w == NULL) {
        return;
    }
    if (w->wait > 0) {
        w->wait--;
        return;
    }
    ram_want_free_figures(&sh->ram, m->pid);
    w->wait = m->tl.figures_work / FIGURES_WORK_PER_TICK;
}

/* The free figures (a pass over the heap's index) are asked for at every
 * tick (every few ticks after a long pass): a member computes them at the
 * end of its first heap call after the request, so a sample shows them at
 * most a tick old (or the few ticks), or exact when the heap has not
 * changed since (member_sample leaves out stale ones). */
static void timeline_tick(struct shell *sh, uint64_t now)
{
    if (now >= sh->next_sample) {
        flush_peaks(sh);
        sample_members(sh, now, LOG_SAMPLE_TICK, free_bytes(sh), (unsigned)ram_state(&sh->ram));
        sh->next_sample = now + (uint64_t)sh->s->sample_interval_ms * 1000000u;
    } else {
        watch_peaks(sh, now);
    }
    struct ram_member_sample m[MAX_MEMBERS];
    size_t n = ram_sample_members(&sh->ram, m, MAX_MEMBERS);
    for (size_t i = 0; i < n; i++) {
        ask_free_figures(sh, &m[i]);
    }
}

static void tick(struct shell *sh)
{
    uint64_t now = now_ns();
    log_transitions(sh);
    if (timeline_on(sh)) {
        timeline_tick(sh, now);
    }
    size_t level = ram_hibernate_threshold(&sh->ram), f = free_bytes(sh);
    if (sh->noticed_pid != 0 && (now >= sh->window_end || f >= level)) {
        end_notice_window(sh, now);
    }
    if (f >= level) {
        end_round(sh); /* back over the level */
    } else if (sh->armed && sh->noticed_pid == 0) {
        start_round(sh, f);
    } else if (sh->in_round && ram_joins(&sh->ram) != sh->joins_seen) {
        queue_new_members(sh); /* joined under the level: owed a notice too */
    }
    if (sh->in_round && sh->noticed_pid == 0 && sh->next < sh->queued && f < level) {
        send_next_notice(sh, now);
    }
    const struct memstate_table *t = sh->ram.table;
    bool limited = t != NULL && memstate_of(t, f) != MEMSTATE_NORMAL;
    if (sh->closing_pid != 0) {
        check_closing(sh, now);
    } else if (sh->s->close_apps && limited && sh->noticed_pid == 0 && sh->next >= sh->queued) {
        close_background(sh, now);
    }
}

int shell_open_log(const struct cebox_settings *s)
{
    if (s->out_dir[0] == '\0') {
        return -1;
    }
    char path[sizeof s->out_dir + 32];
    snprintf(path, sizeof path, "%s/" SHELL_LOG_NAME, s->out_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        char line[sizeof s->session + 64];
        int n = snprintf(line, sizeof line, "cebox: session %s (cebox run pid %d)\n", s->session, (int)getpid());
        (void)!write(fd, line, n > 0 && (size_t)n < sizeof line ? (size_t)n : 0);
    }
    return fd;
}

/* The waker thread: sleeps on the session's wake word and passes every
 * change on to the tick's poll (the futex cannot be polled itself). */
static void *wake_on_crossing(void *arg)
{
    struct shell *sh = arg;
    uint32_t seen = ram_shell_word(&sh->ram);
    while (!atomic_load(&sh->stop_waker)) {
        ram_wait_shell(&sh->ram, seen, 1000);
        uint32_t now = ram_shell_word(&sh->ram);
        if (now != seen) {
            seen = now;
            uint64_t one = 1;
            (void)!write(sh->wake_fd, &one, sizeof one);
        }
    }
    return NULL;
}

/* Starts the waker, every signal blocked in it (the signals cebox run
 * forwards to the program are still taken by the main thread, as before);
 * without it (no eventfd, no thread) the shell still ticks every 20 ms. */
static void start_waker(struct shell *sh)
{
    sigset_t all, old;
    sigfillset(&all);
    sh->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sh->wake_fd < 0) {
        return;
    }
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&sh->waker, NULL, wake_on_crossing, sh);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        close(sh->wake_fd);
        sh->wake_fd = -1;
    }
}

static void stop_waker(struct shell *sh)
{
    if (sh->wake_fd < 0) {
        return;
    }
    atomic_store(&sh->stop_waker, true);
    ram_wake_shell(&sh->ram);
    pthread_join(sh->waker, NULL);
    close(sh->wake_fd);
    sh->wake_fd = -1;
}

/* Waits one tick, or less when the child ends first: a pidfd becomes
 * readable when its process exits, so a short program is not kept waiting
 * for the rest of a tick; the exec watch's pipe (-1: none) wakes it at an
 * exec, while the new image can still be looked at; the waker's eventfd
 * (-1: none) at a crossing of the hibernate level or a join.  With none of
 * them (kernels before 5.3 have no pidfds) it sleeps. */
static void wait_tick(int pidfd, int watch_fd, int wake_fd)
{
    struct pollfd p[3] = {{.fd = pidfd, .events = POLLIN}, {.fd = watch_fd, .events = POLLIN},
                          {.fd = wake_fd, .events = POLLIN}};
    if (pidfd >= 0 || watch_fd >= 0 || wake_fd >= 0) {
        (void)poll(p, 3, TICK_MS); /* a negative descriptor is ignored */
        uint64_t count;
        if (wake_fd >= 0 && (p[2].revents & POLLIN) != 0) {
            (void)!read(wake_fd, &count, sizeof count);
        }
        return;
    }
    struct timespec pause = {0, TICK_MS * 1000 * 1000L};
    nanosleep(&pause, NULL);
}

/* Has the child ended?  Reaps it then (status stored), after a last look
 * at it for the exec watch: until it is reaped, a zombie keeps its name.
 * Returns 1, 0 while it runs, -1 on error. */
static int child_ended(pid_t child, struct execwatch *watch, int *status)
{
    siginfo_t info;
    info.si_pid = 0;
    if (waitid(P_PID, (id_t)child, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        return errno == EINTR ? 0 : -1;
    }
    if (watch != NULL) {
        execwatch_check(watch);
    }
    if (info.si_pid != child) {
        return 0;
    }
    pid_t r;
    while ((r = waitpid(child, status, 0)) < 0 && errno == EINTR) {
    }
    return r == child ? 1 : -1;
}

int shell_wait(pid_t child, const struct cebox_settings *s, int log_fd, struct execwatch *watch, int *status)
{
    struct shell sh = {.s = s, .log_fd = log_fd, .start_ns = now_ns(), .armed = true, .wake_fd = -1};
    bool shell_on = ram_session_join(&sh.ram, s->session) == 0;
    if (shell_on) {
        start_waker(&sh);
        sh.start_ns = ram_start_ns(&sh.ram); /* the run's origin, as in every process's log */
    }
    struct schedule_step steps[SCHEDULE_MAX];
    int nsteps = s->schedule[0] ? options_parse_schedule(s->schedule, steps, SCHEDULE_MAX) : 0;
    int next_step = 0, result = 0;
#ifdef SYS_pidfd_open
    int pidfd = (int)syscall(SYS_pidfd_open, (long)child, 0L);
#else
    int pidfd = -1;
#endif
    for (;;) {
        int ended = child_ended(child, watch, status);
        if (ended != 0) {
            result = ended > 0 ? 0 : -1;
            break;
        }
        if (next_step < nsteps && (now_ns() - sh.start_ns) / 1000000u >= steps[next_step].ms) {
            ram_force_state(&sh.ram, (enum memstate)steps[next_step].state);
            event(&sh, "schedule: state %s", memstate_name((enum memstate)steps[next_step].state));
            next_step++;
        }
        if (shell_on) {
            tick(&sh);
        }
        wait_tick(pidfd, watch != NULL ? execwatch_fd(watch) : -1, sh.wake_fd);
    }
    if (pidfd >= 0) {
        close(pidfd);
    }
    if (shell_on) {
        stop_waker(&sh);
        if (sh.noticed_pid != 0) {
            end_notice_window(&sh, now_ns()); /* what it released before it ended */
        }
        log_transitions(&sh);
        flush_peaks(&sh);
        ram_release(&sh.ram);
    }
    for (size_t i = 0; i < sh.npeaks; i++) {
        free(sh.peaks[i].pending_map);
        free(sh.peaks[i].last_map);
    }
    if (sh.log_fd >= 0) {
        close(sh.log_fd);
    }
    return result;
}
