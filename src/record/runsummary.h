/*
 * runsummary.h - the numbers of a process's exit summary and the one
 * function that turns them into text.
 *
 * The preload library prints the summary at exit (summary.c), the event
 * log stores the same numbers (eventlog.c), and `cebox report` prints them
 * back (tools/report/report.c): all three go through run_summary_format, so the
 * report shows exactly what the run showed.
 *
 * No allocation, no I/O: the formatter writes into the caller's buffer.
 */
#ifndef CEBOX_RUNSUMMARY_H
#define CEBOX_RUNSUMMARY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/logformat.h"

struct run_summary {
    uint32_t pid;
    char command[256];  /* arguments joined by spaces */
    char profile[16];
    uint64_t granularity, page_size;
    uint32_t blocks, peak_reserved_blocks;
    uint64_t peak_committed_pages;
    uint64_t heap_peak_live_bytes, heap_peak_live_blocks, heap_peak_committed_bytes;
    uint64_t failures[LOG_API_COUNT]; /* failed requests by entry point */
    uint64_t fail_exhausted, fail_fragmented, fail_ram, fail_cap; /* the slot's, by reason */
    uint64_t bad_frees, foreign_frees;
    uint64_t outside_peak; /* bytes mapped outside the slot, at the peak */
    /* Bytes glibc's own malloc held at exit: 0 unless some code reached it
     * around cebox (a library dlopen'ed with RTLD_DEEPBIND). */
    uint64_t libc_malloc_bytes;
    /* Failures counted but not recorded: the log had reached its limit. */
    uint64_t unrecorded_failures;
    /* The heap's blocks still allocated when the summary was made: at exit,
     * what the program never freed (the first lead when hunting leaks). */
    uint64_t heap_live_bytes, heap_live_blocks;
    /* Why the process ran on a device of its own although it was to join
     * the run's session ("" when it joined, or there was none). */
    char private_device[320];
    /* Failures injected on purpose (--fail-*), among `failures`. */
    uint64_t fail_injected;
    /* The slot's worst moment: the smallest largest free run (blocks) it
     * reached; printed when known (at exit, not from an old log). */
    bool headroom_known;
    uint32_t min_largest_free_run;
    /* The process heap's share of peak_committed_pages (the rest: anonymous
     * mappings and VirtualAlloc); printed when known (absent from older
     * logs, read as 0 there). */
    bool kinds_known;
    uint64_t peak_committed_heap_pages;
    /* cebox's own memory: its bookkeeping (meta.c) at exit and the peak of
     * what it mapped besides (the unwinder's); never the program's.  Known
     * at exit and from logs that hold it. */
    bool own_known;
    uint64_t own_meta_bytes, own_mapped_peak;
    /* Where the slot is and what the process's occupants took in it
     * (occupancy.c): its image, DLLs and stacks, their share of
     * peak_committed_pages, threads refused for want of a stack block.
     * Known at exit and from logs that hold it. */
    bool occupancy_known;
    uint64_t slot_base;
    uint64_t peak_committed_image_pages, peak_committed_stack_pages;
    uint32_t image_blocks, xip_dlls, xip_dll_blocks, ram_dlls, ram_dll_blocks;
    uint32_t stack_blocks, peak_stacks, threads_refused, occupants_refused;
};

/* What the summary says after the numbers about the call stacks. */
enum run_summary_hint {
    RUN_SUMMARY_NO_HINT,   /* nothing (cebox report) */
    RUN_SUMMARY_HINT_OUT,  /* failures, no --out: how to record their stacks */
    RUN_SUMMARY_HINT_LOG,  /* failures recorded in `log`: how to read them */
};

/* Writes the summary, lines starting with "cebox: ", into buf (at most
 * cap bytes, NUL-terminated).  Returns the length written. */
size_t run_summary_format(const struct run_summary *s, enum run_summary_hint hint, const char *log,
                          char *buf, size_t cap);

/* A byte count for people, the one way cebox prints one (the summary, at
 * exit and in `cebox report`, and the report's own lines): exact below
 * 10 KB ("4088 bytes"), then KB below 10 MB ("900.0 KB"), then MB ("40.0
 * MB"), one decimal.  Writes into buf (len bytes) and returns it. */
const char *run_summary_bytes(char *buf, size_t len, uint64_t bytes);
/* Pages committed at the peak that are neither the heap's nor the
 * occupants' (image, DLLs, stacks): the program's mappings and VirtualAlloc.
 * The one place every writer (text, JSON, HTML) takes that figure from. */
uint64_t run_summary_mapped_peak_pages(const struct run_summary *s);

/* vsnprintf of fmt at buf + used (cap bytes in all, the text ended
 * there), as the summary's lines are written: their conversions (%s, %u,
 * %d, %llu, %#llx, %%) without libc's printf, any other through it.
 * Returns the new length (what fits before buf[cap - 1]). */
size_t run_summary_vappend(char *buf, size_t used, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* The same with the arguments given in the call. */
size_t run_summary_append(char *buf, size_t used, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The total of s->failures. */
uint64_t run_summary_failures(const struct run_summary *s);

/* The leak lines of the summary (--leaks): one per kind that has blocks,
 * in the order definite, indirect, possible, reachable (enum leak_kind),
 * each with its bytes, blocks and top site (top[k]: text, or NULL), then
 * `suppressed` when it is not 0 (cebox report knows it).  Appended to buf
 * (cap bytes, NUL-terminated); returns the new length. */
size_t run_summary_leaks(const uint64_t bytes[4], const uint64_t blocks[4], const char *const top[4],
                         const uint64_t *suppressed, char *buf, size_t len, size_t cap);

/* The suppressions every leak report applies by default, the one list
 * both the exit summary and `cebox report` use: libc's and ld.so's own
 * intentional allocations (stdio buffers, locale data, the loader's objects
 * and dynamic TLS).  True when a site whose innermost frame is `function`
 * in `module` (a file's base name; either may be NULL, unknown) is
 * suppressed by them.  Pure: allocates nothing, takes no lock. */
bool run_summary_default_suppressed(const char *function, const char *module);

/* The line saying how the process ended (enum log_end_how, its value).
 * Appended as run_summary_leaks does. */
size_t run_summary_ending(unsigned how, int value, uint64_t fault_addr, char *buf, size_t len, size_t cap);

#endif
