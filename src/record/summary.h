/*
 * summary.h - the process's exit summary, in both libraries: the preload
 * library prints it (stderr, CEBOX_OUT/cebox-PID.summary) and logs it; a
 * program linked with libcebox logs it when it has a log.
 *
 * Owns: the process-wide counters of failed requests by entry point
 * (counted by entry_fail), of bad and foreign frees and of memory mapped
 * outside the slot; the numbers of the summary (struct run_summary, from
 * these, the slot, the process heap and the log) and the one exit
 * destructor (and its twin for _exit).  The text comes from runsummary.c.
 *
 * Counters are atomic (any thread, no lock) and start again in a forked
 * child.  The writers use write(2) and a stack buffer only (no stdio, no
 * heap), so they are safe inside the allocator and at exit.
 */
#ifndef CEBOX_SUMMARY_H
#define CEBOX_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "record/logformat.h"

struct cebox_core;

/* The preload library serves this process: at exit the summary is printed
 * (stderr unless --quiet, and CEBOX_OUT/cebox-PID.summary) as well as
 * logged, and it reports what glibc's own malloc holds (code that escaped
 * cebox).  Without this call only the log gets it, when there is one.
 * settle, when not NULL, runs first at exit, outside the recursion guard:
 * the preload finishes there the frees and unmaps that signal handlers
 * queued, so the summary counts what the program really holds. */
void summary_start_preloaded(void (*settle)(void));

/* 0 once the preload library's constructor left the process out of the
 * box (--only): it has nothing to say at exit, and its destructor returns
 * at once.  A word in .data (its initial 1 puts it there), on the page
 * the loader's relocations write anyway: the exit of a process left out
 * no longer faults in summary.c's code and a page of .bss only to find
 * that out.  Written directly (not through a function in summary.c's
 * text, which the start would fault in). */
extern int summary_exit_wanted __attribute__((visibility("hidden")));

/* One failed request through api (entry_fail's count). */
void summary_count_failure(enum log_api api);
/* One of them was failed on purpose (LOG_REASON_INJECTED: fault.c). */
void summary_count_injected(void);
/* Failed requests through api in this process (since its fork). */
uint64_t summary_failures(enum log_api api);

/* free() of a pointer outside the slot (from before the take-over): ignored. */
void summary_note_foreign_free(void);
/* free() or realloc() of a pointer inside the slot that is no live block
 * (why: enum heap_bad_kind): one line on stderr for the first few, counted
 * always. */
void summary_note_bad_free(const void *p, int why);
/* Mappings left to the kernel (files, shared memory, thread stacks). */
void summary_note_outside_map(size_t len);
void summary_note_outside_unmap(size_t len);
/* Mappings cebox made for itself outside meta.c (while inside: the
 * unwinder's, the loader's): its overhead, never the program's. */
void summary_note_own_map(size_t len);
void summary_note_own_unmap(size_t len);

/* Writes the summary, as it stands, to fd (malloc_stats). */
void summary_write(int fd, struct cebox_core *core);

/* The status the program exits with (exit's argument, or what main
 * returned), seen by the preload library; the ending says "unknown"
 * without it. */
void summary_note_exit_status(int status);

/* The program calls _exit or _Exit, which skip the destructors: the
 * summary is written now, as the destructor would have (a preloaded
 * process only, and not a vfork child, whose memory is its parent's). */
void summary_quick_exit(int status);

struct eventlog_ending;
struct leak_roots;

/* The end of the process, once: at exit (the destructor) or from the
 * fatal-signal handler (in_signal: no lock is waited for, nothing is
 * symbolized).  With --leaks, the live blocks are classified (the
 * calling thread's roots: leaks.h) and written first; then the summary
 * (record, stderr, file) and the ending record. */
void summary_finish(const struct eventlog_ending *how, bool in_signal, const struct leak_roots *roots);

#endif
