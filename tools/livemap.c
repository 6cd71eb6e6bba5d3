/*
 * livemap.c - `cebox map` and `cebox status` (see livemap.h).
 *
 * Each member publishes its slot map in its row of the session (slot.c
 * writes a cell where a block changes state, under a sequence count) and
 * its timeline figures (ram.h), and under --leaks its top live sites
 * (record/leaks.c); this reads them without disturbing it.  The sites'
 * return addresses are the member's: they are symbolized against the
 * objects it maps now (procmodules.h), as `cebox report` symbolizes a
 * log's, and printed with its frame lines.
 */
#include "livemap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "findsession.h"
#include "memstate.h"
#include "procmodules.h"
#include "ram.h"
#include "record/runsummary.h"
#include "record/logformat.h"
#include "report/model.h"
#include "report/report.h"
#include "report/slotmaps.h"
#include "report/symbolize.h"
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
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    (void)shell_append_map(dir, pid, LOG_REC_MAP, LOG_MAP_ON_DEMAND, cells, n,
                           (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, UINT64_MAX);
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

static uint64_t mono_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One site: its figures, then its stack as `cebox report` prints a leak's. */
static void print_live_site(size_t n, const struct ram_live_site *site, struct symbolizer *sym,
                            const struct lr_module *mods, size_t nmods)
{
    char a[32];
    uint64_t ips[RAM_LIVE_DEPTH];
    size_t depth = site->depth < RAM_LIVE_DEPTH ? site->depth : RAM_LIVE_DEPTH, nframes = 0;
    for (size_t i = 0; i < depth; i++) {
        ips[i] = site->ips[i];
    }
    printf("\n  live site %zu: %s in %" PRIu64 " block%s (%" PRIu64 " bytes)\n", n,
           run_summary_bytes(a, sizeof a, site->bytes), site->blocks, site->blocks == 1 ? "" : "s", site->bytes);
    struct frame *frames = report_symbolize_addresses(sym, mods, nmods, ips, depth, &nframes);
    if (nframes == 0) {
        printf("    (no stack recorded)\n");
    }
    for (size_t i = 0; i < nframes; i++) {
        report_text_frame(stdout, i, &frames[i]);
    }
    if (site->full_depth > depth) {
        printf("    (%" PRIu32 " outer frames not published)\n", site->full_depth - (uint32_t)depth);
    }
    free(frames);
}

/* The member's top live sites (--leaks), as it last published them. */
static void print_live_sites(const struct ram_view *v, int32_t pid)
{
    struct ram_live_sites ls;
    if (!ram_view_live_sites(v, pid, &ls) || ls.tracking == 0) {
        printf("  live sites: not tracked (run it with --leaks to see them here)\n");
        return;
    }
    char a[32];
    uint64_t now = mono_now_ns(), age = now > ls.time_ns ? now - ls.time_ns : 0;
    if (ls.count == 0) {
        printf("  live sites (--leaks): none at its last publication, %.1f s ago after %" PRIu64 " allocations\n",
               (double)age / 1e9, ls.allocations);
        return;
    }
    printf("  live sites (--leaks): %s in %" PRIu64 " blocks from %" PRIu64 " stack%s, published %.1f s ago "
           "after %" PRIu64 " allocations; the %u with most bytes:\n",
           run_summary_bytes(a, sizeof a, ls.live_bytes), ls.live_blocks, ls.sites, ls.sites == 1 ? "" : "s",
           (double)age / 1e9, ls.allocations, ls.count);
    struct symbolizer *sym = symbolizer_new(); /* never NULL: out of memory ends the command */
    struct lr_module *mods = NULL;
    size_t nmods = procmodules_read(pid, &mods);
    for (uint32_t i = 0; i < ls.count; i++) {
        print_live_site(i + 1, &ls.site[i], sym, mods, nmods);
    }
    symbolizer_warnings(sym, stdout);
    symbolizer_free(sym);
    procmodules_free(mods, nmods);
    printf("\n");
}

static void print_status(const struct ram_view *v, const struct ram_view_member *m)
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
    print_live_sites(v, m->s.pid);
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
            print_status(&v, m);
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
