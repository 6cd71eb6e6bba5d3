/*
 * summary.c - counters and the exit summary of the preload library
 * (see summary.h).
 */
#include "summary.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "heap.h"

#define BAD_FREE_LINES 10 /* report the first few bad frees one by one */

static atomic_size_t failures[SUMMARY_API_COUNT];
static atomic_size_t bad_frees, foreign_frees;
static atomic_size_t outside_bytes, outside_peak;
static char command[256];

void summary_note_failure(enum summary_api api, size_t size)
{
    (void)size;
    atomic_fetch_add(&failures[api], 1);
}

void summary_note_foreign_free(void)
{
    atomic_fetch_add(&foreign_frees, 1);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0) {
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
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
        write_all(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
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

/* The command line from /proc, arguments joined by spaces. */
static void read_command(void)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, command, sizeof command - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        strcpy(command, "?");
        return;
    }
    command[n] = '\0';
    for (ssize_t i = 0; i < n - 1; i++) {
        if (command[i] == '\0') {
            command[i] = ' ';
        }
    }
}

void summary_started(struct cebox_core *core)
{
    (void)core;
    read_command();
}

void summary_forked(void)
{
    for (int i = 0; i < SUMMARY_API_COUNT; i++) {
        atomic_store(&failures[i], 0);
    }
    atomic_store(&bad_frees, 0);
    atomic_store(&foreign_frees, 0);
}

/* "12.3 MB" style sizes for people. */
static const char *human(char *buf, size_t len, size_t bytes)
{
    if (bytes >= 10u * 1024 * 1024) {
        snprintf(buf, len, "%.1f MB", (double)bytes / (1024.0 * 1024.0));
    } else if (bytes >= 10u * 1024) {
        snprintf(buf, len, "%.1f KB", (double)bytes / 1024.0);
    } else {
        snprintf(buf, len, "%zu bytes", bytes);
    }
    return buf;
}

static size_t append(char *buf, size_t used, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t append(char *buf, size_t used, size_t cap, const char *fmt, ...)
{
    if (used >= cap) {
        return used;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
    return n < 0 ? used : (used + (size_t)n < cap ? used + (size_t)n : cap - 1);
}

void summary_write(int fd, struct cebox_core *core)
{
    char buf[2048], a[32], b[32], c[32];
    struct slot_stats ss;
    struct heap_stats hs;
    slot_get_stats(core->slot, &ss);
    struct heap *ph = core_process_heap(core);
    if (ph != NULL) {
        ph->ops->stats(ph, &hs);
    } else {
        memset(&hs, 0, sizeof hs); /* there was never room for it */
    }
    size_t gran = slot_granularity(core->slot), page = slot_page_size(core->slot);
    size_t fm = atomic_load(&failures[SUMMARY_API_MALLOC]), fmm = atomic_load(&failures[SUMMARY_API_MMAP]);
    size_t n = 0, cap = sizeof buf;
    n = append(buf, n, cap, "cebox: pid %d (%s), profile %s\n", (int)getpid(), command,
               core->settings.profile->name);
    n = append(buf, n, cap, "cebox:   slot: peak %u of %u blocks reserved (%s), peak %s committed\n",
               ss.peak_reserved_blocks, ss.blocks, human(a, sizeof a, (size_t)ss.peak_reserved_blocks * gran),
               human(b, sizeof b, ss.peak_committed_pages * page));
    n = append(buf, n, cap, "cebox:   heap: peak %s live, peak %zu blocks, peak %s committed\n",
               human(a, sizeof a, hs.peak_live_bytes), hs.peak_live_blocks,
               human(c, sizeof c, hs.peak_committed_bytes));
    n = append(buf, n, cap,
               "cebox:   failed allocations: %zu (malloc family %zu, mmap family %zu); slot exhausted %zu, "
               "no contiguous run %zu, RAM %zu\n",
               fm + fmm, fm, fmm, ss.fail_exhausted, ss.fail_fragmented, ss.fail_ram);
    size_t bad = atomic_load(&bad_frees), foreign = atomic_load(&foreign_frees);
    if (bad != 0 || foreign != 0) {
        n = append(buf, n, cap, "cebox:   bad frees reported %zu, frees of memory from before cebox ignored %zu\n",
                   bad, foreign);
    }
    size_t outside = atomic_load(&outside_peak);
    if (outside != 0) {
        n = append(buf, n, cap, "cebox:   outside the slot (files, shared memory, thread stacks): peak %s\n",
                   human(a, sizeof a, outside));
    }
    write_all(fd, buf, n);
}

void summary_exit(struct cebox_core *core)
{
    if (!core->settings.quiet) {
        summary_write(2, core);
    }
    if (core->settings.out_dir[0] != '\0') {
        char path[sizeof core->settings.out_dir + 48];
        snprintf(path, sizeof path, "%s/cebox-%d.summary", core->settings.out_dir, (int)getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            summary_write(fd, core);
            close(fd);
        } else if (!core->settings.quiet) {
            char line[sizeof path + 64];
            int len = snprintf(line, sizeof line, "cebox: cannot write %s\n", path);
            write_all(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
        }
    }
}
