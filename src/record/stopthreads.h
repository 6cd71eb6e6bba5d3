/*
 * stopthreads.h - the other threads of the process, held still for a
 * moment so that their stacks and registers can be read (leak
 * classification at exit), as conservative collectors do.
 *
 * Owns: the stop signal's handler while it is installed, and the table
 * where each stopped thread leaves its registers and stack pointer (static:
 * a thread that answers late never writes into freed memory).
 *
 * How: every thread listed in /proc/self/task but the caller is sent the
 * stop signal (SIGRTMAX, with cebox's handler for the moment); its handler
 * saves the interrupted registers, then waits until released.  A thread
 * that has not answered within STOP_WAIT_MS (it blocks the signal, or is
 * stuck in the kernel) is left out and counted.  Afterwards the signal is
 * set to be ignored (which discards one still pending) and the program's
 * own action put back.
 *
 * Use only where no lock a stopped thread may hold is needed while they
 * are stopped: the callback reads memory with process_vm_readv and takes
 * no lock; the dynamic loader's lock is never taken in between.
 */
#ifndef CEBOX_STOPTHREADS_H
#define CEBOX_STOPTHREADS_H

#include <stddef.h>
#include <stdint.h>

/* Called for each stopped thread: its saved registers (regs_len bytes)
 * and its stack from the interrupted stack pointer to its end. */
typedef void (*stopthreads_fn)(void *ctx, const void *regs, size_t regs_len, uintptr_t sp,
                               uintptr_t stack_end);

/* Stops the other threads, calls fn for each that stopped, releases them.
 * Returns how many stopped; *missed: how many did not answer in time. */
size_t stopthreads_visit(stopthreads_fn fn, void *ctx, size_t *missed);

#endif
