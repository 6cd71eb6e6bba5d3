/*
 * summary.h - what the preload library tells the user at exit.
 *
 * Owns: the process-wide counters of bad and foreign frees and of memory
 * mapped outside the slot, and the exit summary (its text comes from
 * runsummary.c; failed allocations are counted and recorded by eventlog.c,
 * through summary_note_failure).  Counters are atomic (any thread, no lock); the
 * writers use write(2) and a stack buffer only (no stdio, no heap), so they
 * are safe inside the allocator and at exit.
 */
#ifndef CEBOX_SUMMARY_H
#define CEBOX_SUMMARY_H

#include <stddef.h>

struct cebox_core;

enum summary_api { SUMMARY_API_MALLOC, SUMMARY_API_MMAP, SUMMARY_API_COUNT };

/* A request of the malloc or mmap family failed: call right after the
 * failing heap or slot call, holding no cebox lock, with the recursion
 * guard still set (see eventlog_failure). */
void summary_note_failure(enum summary_api api, size_t size);
/* free() of a pointer outside the slot (from before the take-over): ignored. */
void summary_note_foreign_free(void);
/* free() or realloc() of a pointer inside the slot that is no live block
 * (why: enum heap_bad_kind): one line on stderr for the first few, counted
 * always. */
void summary_note_bad_free(const void *p, int why);
/* Mappings left to the kernel (files, shared memory, thread stacks). */
void summary_note_outside_map(size_t len);
void summary_note_outside_unmap(size_t len);

/* Records the process start (pid, command line) once the core exists. */
void summary_started(struct cebox_core *core);
/* In a forked child: the counters start again for the new process. */
void summary_forked(void);
/* At exit: the summary on stderr unless quiet, and in the out directory. */
void summary_exit(struct cebox_core *core);
/* Writes the summary to fd. */
void summary_write(int fd, struct cebox_core *core);

#endif
