/*
 * eventlog.h - the recording path of failed allocations, and the only
 * writer of the event log (format: logformat.h, docs/LOG-FORMAT.md).
 *
 * Owns: the per-process log file CEBOX_OUT/cebox-PID.log, the table of
 * distinct stacks (stack.c), the list of modules already written, and the
 * failure counters by entry point.
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

#include <stdint.h>

#include "cebox/winmem.h"
#include "record/logformat.h"
#include "record/runsummary.h"

struct cebox_core;

/* At process start (the preload library): opens the log now when CEBOX_OUT
 * is set, so it begins with the header and the module map, and leaves the
 * exit summary record to eventlog_exit.  Without this call (a program
 * linked with libcebox) the log is opened at the first failure and gets a
 * summary of the slot and heap at exit. */
void eventlog_start(struct cebox_core *core);

/* A failed request for `size` bytes through `api`: counted, and with
 * CEBOX_OUT set recorded with its reason, memory state, slot state, call
 * stack and slot map.  err is the Win32 error the entry point fails with
 * (0 when CE sets none, as for a full fixed-size heap); hint is the reason
 * when the slot recorded none (LOG_REASON_OTHER: unknown).  Call it in the
 * thread that made the request, right after it failed, holding no cebox
 * lock (inside the preload library with the recursion guard still set, so
 * that an allocation by libunwind goes to the bootstrap arena).  Reads and
 * clears the thread's slot failure reason. */
void eventlog_failure(enum log_api api, size_t size, DWORD err, enum log_reason hint);

/* Failed requests through `api` in this process (since its fork). */
uint64_t eventlog_failures(enum log_api api);

/* Fills the parts of an exit summary the core knows: pid, command,
 * profile, slot and heap peaks, failures by entry point and by reason. */
void eventlog_summary(struct cebox_core *core, struct run_summary *out);

/* At exit: appends the summary record (opening the log first if this
 * process has not written one yet) when CEBOX_OUT is set. */
void eventlog_exit(const struct run_summary *s);

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
