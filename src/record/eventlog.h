/*
 * eventlog.h - the recording path of failed allocations, and the only
 * writer of the event log (format: logformat.h, docs/LOG-FORMAT.md).
 *
 * Owns: the per-process log file CEBOX_OUT/cebox-PID.log (failures, and at
 * the end of a process its leak sites, summary and ending), the table of
 * distinct stacks (stack.c), the list of modules already written, and the
 * count of failures past the log's size limit.
 *
 * Invariants:
 *  - nothing is written unless CEBOX_OUT is set, and the success path of
 *    every allocation never reaches this file;
 *  - each record is one write(2) on a file opened with O_APPEND, written
 *    when the event happens: a process that dies right after a failure has
 *    already recorded it.  No stdio, nothing from the program's heap: the
 *    buffers are meta.c blocks, and an event for which they cannot be had
 *    is counted but not written (the next event tries again);
 *  - the log's descriptor is cebox's alone (ownfd.h): high, close-on-exec,
 *    and checked (statx) before each write; a program that closes it or
 *    dup2s its own file onto it loses nothing and gets none of cebox's
 *    bytes: the log is opened again by path;
 *  - a stack record, and the module records its addresses need, precede the
 *    first failure record that refers to it in the same file;
 *  - a log never mixes two processes' records without a header record
 *    between them (a forked child starts its own file at its first event;
 *    an exec'd program appends a new header to the file of its pid).
 *
 * Locking: one lock serializes the writers; it is taken after the stack is
 * captured and before the slot's lock (slot map), and held across fork().
 */
#ifndef CEBOX_EVENTLOG_H
#define CEBOX_EVENTLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "cebox/winmem.h"
#include "memstate.h"
#include "record/logformat.h"
#include "record/runsummary.h"

struct cebox_core;

/* At process start (the preload library): opens the log now when CEBOX_OUT
 * is set, so it begins with the header and the module map.  Without this
 * call (a program linked with libcebox) the log is opened at the first
 * failure. */
void eventlog_start(struct cebox_core *core);

/* Records a failed request for `size` bytes through `api` when CEBOX_OUT
 * is set: its reason, memory state, slot state, call stack and slot map;
 * nothing otherwise.  err is the Win32 error the entry point fails with (0
 * when CE sets none, as for a full fixed-size heap).  Only entry_fail
 * calls it (entry.h says when and from where); errno is left as it was.
 * met: the state the request met when worse than the device's now (a
 * commit the cap refused), MEMSTATE_NORMAL otherwise: the worse is
 * recorded. */
void eventlog_failure(enum log_api api, size_t size, DWORD err, enum log_reason reason, enum memstate met);

/* Failures counted but not recorded in this process (since its fork): the
 * log had reached CEBOX_LOG_LIMIT. */
uint64_t eventlog_unrecorded(void);

/* The command line of process `pid` (the caller's, as getpid says),
 * arguments joined by spaces, truncated to cap - 1 bytes and
 * NUL-terminated: what /proc/self/cmdline gives, read from memory when
 * eventlog_note_arguments was told where the arguments are, else from that
 * file.  locks_free false (a signal handler that may have interrupted
 * cebox): read all the same without a log, which takes no lock for it;
 * with one, the log's copy if it holds one, else "?". */
void eventlog_command(char *out, size_t cap, int pid, bool locks_free);

/* The program's arguments as __libc_start_main receives them (the
 * environment follows argv's NULL), so that the command line is read
 * without /proc.  Not thread-safe: the preload library calls it once,
 * before main. */
void eventlog_note_arguments(int argc, char **argv);

/* At exit: appends the exit sample, the slot maps at the peak and at exit
 * (each with its cause and time) and the summary record (opening the log
 * first if this process has not written one yet) when CEBOX_OUT is set.
 * in_signal (the end of a process killed by a signal): the log's lock is
 * only tried, and the sample and maps, which need the slot's lock, are left
 * out. */
void eventlog_exit(const struct run_summary *s, bool in_signal);

/* How the process ends, for eventlog_end. */
struct eventlog_ending {
    enum log_end_how how;
    int value;                     /* exit status or signal number */
    uintptr_t fault_addr;          /* si_addr of a crash signal, else 0 */
    const uintptr_t *crash_ips;    /* the crash stack (innermost first), or NULL */
    size_t crash_depth;
    uint32_t flags;                /* LOG_END_* */
    uint64_t untracked;            /* blocks --leaks could not track */
    uint64_t calls;                /* the calls fault injection counted (fault_counted) */
};

struct leak_report;

/* At the end of a process run with --leaks (before eventlog_exit): one
 * LEAK record per site of the report, each after its stack.  in_signal:
 * the log's lock is only tried (a thread the signal interrupted may hold
 * it); nothing is written when it is held. */
void eventlog_leaks(const struct leak_report *r, bool in_signal);

/* One site of a GROWTH, PEAK or PINNING record: its stack (the frames
 * are written as a stack record before the first record that uses it)
 * and its fields (enum log_growth_field, log_peak_field, log_pin_field). */
struct eventlog_site {
    const uintptr_t *ips;
    size_t depth;
    uint64_t v[LOG_SITES_MAX_FIELDS];
};

#define EVENTLOG_SITES_MAX 256 /* sites per record; more are left out */

/* With --out: one record of type 10, 11 or 12 (logformat.h): the head
 * fields, then the sites (at most EVENTLOG_SITES_MAX).  periodic: a sample taken on the allocation
 * path, dropped once the log has reached CEBOX_LOG_LIMIT (those at a
 * failure or the end always go in).  in_signal: the log's lock is only
 * tried.  Takes the log's lock; call it holding no other cebox lock. */
void eventlog_sites(unsigned type, const uint64_t *head, size_t nhead, const struct eventlog_site *sites,
                    size_t n, size_t nfields, bool periodic, bool in_signal);

/* The last record of a process: how it ended (with --out only). */
void eventlog_end(const struct eventlog_ending *end, bool in_signal);

/* Tests only: closes this process's log and gives back all of the log's
 * bookkeeping (buffers, module list, stack table), as if no event had
 * happened; the next one starts a new file.  No other thread may be
 * recording. */
void eventlog_forget(void);

/* CEBOX_OUT as it was made absolute at the start (a program may change
 * its directory since), or as set when this process has not resolved it. */
const char *eventlog_dir(void);

/* The path of this process's log, or "" when it writes none. */
const char *eventlog_path(void);

#endif
