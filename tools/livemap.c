/*
 * livemap.c - `cebox map` and `cebox status` (see livemap.h).
 *
 * Each member publishes its slot map in its row of the session (slot.c
 * writes a cell where a block changes state, under a sequence count) and
 * its timeline figures (ram.h); this reads them without disturbing it.
 */
#include "livemap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "findsession.h"
#include "memstate.h"
#include "ram.h"
#include "record/runsummary.h"
#include "record/logformat.h"
#include "report/slotmaps.h"
#include "shell.h"

#define MAX_MEMBERS 256
#define GRANULARITY (64 * 1024)

/* The member's command line, arguments joined by spaces. */
static void command_of(int pid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, out, len - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        snprintf(out, len, "?");
        return;
    }
    while (n > 0 && out[n - 1] == '\0') {
        n--;
    }
    for (ssize_t i = 0; i < n; i++) {
        out[i] = out[i] == '\0' || out[i] == '\n' ? ' ' : out[i];
    }
    out[n] = '\0';
}

/* With --out, the map goes into the process's log too (cause on-demand),
 * so that its report shows it beside the others. */
static void record_map(int32_t pid, const char *cells, size_t n)
{
    char out[PATH_MAX - 32], dir[PATH_MAX];
    if (!findsession_environ(pid, "CEBOX_OUT", out, sizeof out) || out[0] == '\0') {
        return;
    }
    /* A relative directory is the process's own (resolved at its start:
     * its directory now is the best guess from outside). */
    if (out[0] == '/') {
        snprintf(dir, sizeof dir, "%s", out);
    } else {
        snprintf(dir, sizeof dir, "/proc/%d/cwd/%s", (int)pid, out);
    }
    static unsigned char rec[LOG_HEAD_SIZE + 64 + 5 * (size_t)RAM_MAP_BLOCKS];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_MAP);
    log_put_map(&e, 0, cells, n, 0, LOG_MAP_ON_DEMAND, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    (void)shell_append_record(dir, pid, rec, log_enc_finish(&e));
}

static void print_map(const struct ram_view *v, const struct ram_view_member *m)
{
    static char cells[RAM_MAP_BLOCKS + 1];
    if (m->map_blocks == UINT32_MAX) {
        printf("  (no live map: its slot has more blocks than a session's map holds, %u)\n", RAM_MAP_BLOCKS);
        return;
    }
    size_t n = ram_view_map(v, m->s.pid, cells, RAM_MAP_BLOCKS);
    if (n == 0) {
        printf("  (no map published yet)\n");
        return;
    }
    cells[n] = '\0';
    slotmaps_print(stdout, cells, GRANULARITY);
    record_map(m->s.pid, cells, n);
}

static void print_status(const struct ram_view_member *m)
{
    const struct ram_timeline *tl = &m->s.tl;
    char a[32], b[32], c[32];
    uint64_t usable = m->map_blocks != 0 && m->map_blocks != UINT32_MAX ? m->map_blocks - 1 : 0;
    printf("  slot: %" PRIu64 " of %" PRIu64 " blocks reserved (peak %" PRIu64 "), largest free run %" PRIu64
           " blocks (smallest so far %" PRIu64 "), %s committed\n",
           tl->slot_reserved_blocks, usable, tl->peak_reserved_blocks, tl->largest_free_run_blocks,
           tl->min_largest_free_run_blocks, run_summary_bytes(a, sizeof a, m->s.committed_bytes));
    printf("  process heap: %s live, %s committed\n", run_summary_bytes(b, sizeof b, tl->heap_live_bytes),
           run_summary_bytes(c, sizeof c, tl->heap_committed_bytes));
    char leaks[16];
    if (findsession_environ(m->s.pid, "CEBOX_LEAKS", leaks, sizeof leaks) && leaks[0] != '\0' &&
        strcmp(leaks, "no") != 0 && strcmp(leaks, "0") != 0) {
        printf("  live sites (--leaks): not published while it runs; cebox report lists them after its exit\n");
    }
    printf("  slot map now:\n");
}

static void print_device(const struct ram_view *v, const char *session)
{
    uint64_t free_bytes, total;
    enum memstate state;
    ram_view_device(v, &free_bytes, &state, &total);
    char a[32], b[32];
    printf("session %s: memory state %s, device RAM %s free of %s\n", session, memstate_name(state),
           run_summary_bytes(a, sizeof a, free_bytes), run_summary_bytes(b, sizeof b, total));
}

int livemap_main(const char *target, bool status)
{
    char session[PATH_MAX];
    int boxed = 0;
    if (findsession_resolve(target, session, sizeof session, &boxed) != 0) {
        return 1;
    }
    struct ram_view v;
    int err = ram_view_open(&v, session);
    if (err != 0) {
        fprintf(stderr, "cebox: %s: %s\n", session, err == EINVAL ? "not a cebox session file" : strerror(err));
        return 1;
    }
    static struct ram_view_member members[MAX_MEMBERS];
    size_t n = ram_view_members(&v, members, MAX_MEMBERS), shown = 0;
    if (status) {
        print_device(&v, session);
    }
    for (size_t i = 0; i < n; i++) {
        const struct ram_view_member *m = &members[i];
        if ((boxed != 0 && m->s.pid != boxed) || m->map_blocks == 0) {
            continue; /* another process; or a row with no slot (cebox run's own) */
        }
        char command[512];
        command_of(m->s.pid, command, sizeof command);
        printf("%spid %d: %s\n", shown++ == 0 || !status ? "" : "\n", (int)m->s.pid, command);
        if (status) {
            print_status(m);
        }
        print_map(&v, m);
    }
    ram_view_close(&v);
    if (shown == 0 && boxed != 0) {
        fprintf(stderr, "cebox: process %d is not boxed: it is in session %s but has no slot there "
                        "(left out by --only, or not started yet)\n", boxed, session);
        return 1;
    }
    if (shown == 0) {
        fprintf(stderr, "cebox: session %s has no boxed process now\n", session);
        return 1;
    }
    slotmaps_legend(stdout, GRANULARITY);
    return 0;
}
