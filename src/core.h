/*
 * core.h - the emulated CE process of this Linux process.
 *
 * Owns: the settings read once from CEBOX_* variables, the device RAM budget
 * and the slot.  Every public entry point (the Win32-named API, the preload
 * library) reaches them through core_get().
 *
 * Invariant: after core_get() returns, the settings are exactly those asked
 * for; a bad CEBOX_* value never gets this far (the process stops with one
 * line on stderr and exit status 2).
 */
#ifndef CEBOX_CORE_H
#define CEBOX_CORE_H

#include "heap/heap.h"
#include "options.h"
#include "ram.h"
#include "slot.h"

struct cebox_core {
    struct cebox_settings settings;
    struct ram ram;
    struct slot *slot;
    /* The process heap: HeapCreate(0, 0, 0) of the profile's algorithm, as
     * CE's coredll makes it at process start.  Made at its first use (see
     * core_process_heap) so that a program that never uses a heap sees a
     * bare slot; the preload library asks for it at start-up. */
    _Atomic(struct heap *) process_heap;
};

/* The process's core, created at the first call (thread-safe). */
struct cebox_core *core_get(void);

/* pthread_once on *state (CORE_ONCE_NOT_YET at first), without the futex
 * wake pthread_once makes at its first call, a system call at every
 * start: the first caller runs fn; another that comes while it runs waits
 * (yielding) until it has returned; later calls return at once.  Not for
 * a signal handler that may interrupt fn (as pthread_once). */
enum { CORE_ONCE_NOT_YET, CORE_ONCE_RUNNING, CORE_ONCE_DONE };
void core_run_once(_Atomic int *state, void (*fn)(void));

/* pthread_atfork, for this library's handlers (removed with it, should it
 * be unloaded).  The same call glibc's pthread_atfork makes, without the
 * small wrapper libc_nonshared.a links in for it: that wrapper lands at
 * the very end of the library's code, and a boxed start faulted in a 64 KB
 * window of code for it alone. */
int core_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* Is this process to be boxed?  Yes, unless CEBOX_ONLY is set and none of
 * its globs matches the executable's path or base name (a script's
 * executable is its interpreter).  Makes no core; may change errno. */
bool core_boxes_this_program(void);

/* The process heap, created at the first call (thread-safe); NULL only if
 * the slot has no room for it (three free blocks). */
struct heap *core_process_heap(struct cebox_core *c);

/* Hibernate notices (control.c): core_deliver_hibernate runs the
 * registered callbacks once per notice that this process has not
 * delivered yet (the watcher thread calls it).
 * core_restart_watcher: in a forked child, a new watcher if callbacks are
 * registered. */
void core_deliver_hibernate(struct cebox_core *c);
void core_restart_watcher(void);

/* Exit status used when the settings are refused. */
#define CORE_EXIT_BAD_SETTINGS 2

/* Tests only: throws the slot away and builds a new core from the current
 * CEBOX_* variables.  No other thread may be using cebox.  Returns 0, or -1
 * with the reason in err: refused settings keep the old core; a refused
 * reservation leaves the core without a slot. */
int core_reset(char err[OPTIONS_ERR_MAX]);

#endif
