/*
 * shell.c - the device's shell during `cebox run` (see shell.h).
 *
 * Owns: the session's event lines (memory-state transitions, hibernate
 * notices, closed processes), on stderr unless --quiet and in
 * OUT/cebox.session with --out (not named like the processes' cebox-PID.log,
 * so that `cebox report` given OUT/STAR.log reads only those), which begins with the
 * session file's path.
 *
 * A tick every 20 ms (or at once when the child ends):
 *  - the state schedule's next step, when due;
 *  - new state transitions from the session's ring, logged with the time,
 *    free RAM and the process whose charge caused them;
 *  - hibernate: when free RAM falls under the table's hibernate level, the
 *    session's processes get a notice one at a time, least recently active
 *    first (the most recent, the "foreground" one, last), each followed by
 *    a window (up to 1 s, over as soon as free RAM is back over the level)
 *    in which what it released is measured; the round stops as
 *    soon as free RAM is back over the level, and the next round needs free
 *    RAM to go over the level and under it again (once per entry, as CE);
 *  - the timeline (with --out, every --sample-interval): each member's
 *    published figures (ram.h) with the device's free RAM and state, one
 *    sample record appended to the member's own DIR/cebox-PID.log once
 *    the process has begun it (O_APPEND, one write: the process's own
 *    records are never split); nothing is read from the process itself;
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
#include <stdlib.h>
#include <string.h>
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

struct shell {
    const struct cebox_settings *s;
    struct ram ram;
    int log_fd;
    uint64_t start_ns;
    uint32_t transitions_seen;
    /* hibernate round */
    bool armed;             /* free RAM went over the level since the last round */
    struct ram_member_info queue[MAX_MEMBERS];
    size_t queued, next;
    int32_t noticed_pid;    /* waiting for its window to end, or 0 */
    size_t noticed_before;
    uint64_t window_end;
    /* close-apps */
    int32_t closing_pid;
    uint64_t kill_at;
    /* the timeline */
    uint64_t next_sample;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void event(struct shell *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void event(struct shell *sh, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "cebox: [%7.3f s] ", (double)(now_ns() - sh->start_ns) / 1e9);
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

static void log_transitions(struct shell *sh)
{
    struct ram_transition t[16];
    uint32_t n;
    while ((n = ram_transitions(&sh->ram, sh->transitions_seen, t, 16)) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            event(sh, "memory state %s -> %s, free RAM %llu KB, caused by pid %d",
                  memstate_name((enum memstate)t[i].from), memstate_name((enum memstate)t[i].to),
                  (unsigned long long)(t[i].free_bytes / 1024), (int)t[i].pid);
        }
        sh->transitions_seen += n;
    }
}

static int by_activity(const void *a, const void *b)
{
    const struct ram_member_info *x = a, *y = b;
    return x->last_active_ns < y->last_active_ns ? -1 : x->last_active_ns > y->last_active_ns;
}

static void start_round(struct shell *sh, size_t free_now)
{
    sh->queued = ram_members(&sh->ram, sh->queue, MAX_MEMBERS);
    qsort(sh->queue, sh->queued, sizeof sh->queue[0], by_activity);
    sh->next = 0;
    sh->armed = false;
    event(sh, "free RAM %zu KB is under the hibernate level (%zu KB): notices to %zu process(es), "
              "least recently active first",
          free_now / 1024, ram_hibernate_threshold(&sh->ram) / 1024, sh->queued);
}

static void send_next_notice(struct shell *sh, uint64_t now)
{
    int32_t pid = sh->queue[sh->next++].pid;
    sh->noticed_before = ram_member_committed(&sh->ram, pid);
    ram_send_notice(&sh->ram, pid);
    if (sh->s->hibernate_signal != 0) {
        kill(pid, sh->s->hibernate_signal);
    }
    sh->noticed_pid = pid;
    sh->window_end = now + NOTICE_WINDOW_NS;
}

static void end_notice_window(struct shell *sh, uint64_t now)
{
    size_t after = ram_member_committed(&sh->ram, sh->noticed_pid);
    size_t released = sh->noticed_before > after ? sh->noticed_before - after : 0;
    uint64_t waited = now - (sh->window_end - (uint64_t)NOTICE_WINDOW_NS);
    event(sh, "hibernate notice to pid %d: released %zu KB in %llu ms (free RAM now %zu KB)",
          (int)sh->noticed_pid, released / 1024, (unsigned long long)(waited / 1000000), free_bytes(sh) / 1024);
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
        rc = write(fd, rec, len) == (ssize_t)len ? 0 : -1;
    }
    close(fd);
    return rc;
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

/* One timeline point for every member but the shell itself. */
static void sample_members(struct shell *sh, uint64_t now)
{
    struct ram_member_sample m[MAX_MEMBERS];
    size_t n = ram_sample_members(&sh->ram, m, MAX_MEMBERS);
    uint64_t ram_free = free_bytes(sh);
    unsigned state = (unsigned)ram_state(&sh->ram);
    for (size_t i = 0; i < n; i++) {
        if (m[i].pid == (int32_t)getpid()) {
            continue;
        }
        struct log_sample smp = {
            .time_ns = now,
            .kind = LOG_SAMPLE_TICK,
            .slot_reserved_blocks = (uint32_t)m[i].tl.slot_reserved_blocks,
            .largest_free_run_blocks = (uint32_t)m[i].tl.largest_free_run_blocks,
            .peak_reserved_blocks = (uint32_t)m[i].tl.peak_reserved_blocks,
            .min_largest_free_run_blocks = (uint32_t)m[i].tl.min_largest_free_run_blocks,
            .slot_committed_bytes = m[i].committed_bytes,
            .heap_live_bytes = m[i].tl.heap_live_bytes,
            .heap_committed_bytes = m[i].tl.heap_committed_bytes,
            .ram_free_bytes = ram_free,
            .state = state,
        };
        append_sample(sh, m[i].pid, &smp);
    }
}

static void tick(struct shell *sh)
{
    uint64_t now = now_ns();
    log_transitions(sh);
    unsigned interval = sh->s->sample_interval_ms;
    if (sh->s->out_dir[0] != '\0' && interval > 0 && now >= sh->next_sample) {
        sample_members(sh, now);
        sh->next_sample = now + (uint64_t)interval * 1000000u;
    }
    size_t level = ram_hibernate_threshold(&sh->ram), f = free_bytes(sh);
    if (sh->noticed_pid != 0 && (now >= sh->window_end || f >= level)) {
        end_notice_window(sh, now);
    }
    if (f >= level) {
        sh->armed = true;
        sh->next = sh->queued; /* back over the level: the round is over */
    } else if (sh->armed && sh->noticed_pid == 0) {
        start_round(sh, f);
    }
    if (sh->noticed_pid == 0 && sh->next < sh->queued && f < level) {
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

static int open_log(const struct cebox_settings *s)
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

/* Waits one tick, or less when the child ends first: a pidfd becomes
 * readable when its process exits, so a short program is not kept waiting
 * for the rest of a tick; the exec watch's pipe (-1: none) wakes it at an
 * exec, while the new image can still be looked at.  Without pidfds
 * (kernels before 5.3) and watch it sleeps. */
static void wait_tick(int pidfd, int watch_fd)
{
    struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = watch_fd, .events = POLLIN}};
    if (pidfd >= 0 || watch_fd >= 0) {
        (void)poll(p, 2, TICK_MS); /* a negative descriptor is ignored */
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

int shell_wait(pid_t child, const struct cebox_settings *s, struct execwatch *watch, int *status)
{
    struct shell sh = {.s = s, .log_fd = open_log(s), .start_ns = now_ns(), .armed = true};
    bool shell_on = ram_session_join(&sh.ram, s->session) == 0;
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
        wait_tick(pidfd, watch != NULL ? execwatch_fd(watch) : -1);
    }
    if (pidfd >= 0) {
        close(pidfd);
    }
    if (shell_on) {
        if (sh.noticed_pid != 0) {
            end_notice_window(&sh, now_ns()); /* what it released before it ended */
        }
        log_transitions(&sh);
        ram_release(&sh.ram);
    }
    if (sh.log_fd >= 0) {
        close(sh.log_fd);
    }
    return result;
}
