/*
 * fatal.h - the end of a process killed by a signal: its summary, its
 * leaks and the way it ended are recorded before it dies as it would have.
 *
 * Owns: cebox's handler for SIGTERM, SIGINT, SIGHUP, SIGQUIT (killed) and
 * SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL (crashed), installed at the start
 * of a preloaded process only when --out or --leaks needs it, and the
 * program's own actions for those signals (what it had at the start and
 * whatever it sets since: the preload library routes the program's
 * sigaction and signal calls for them here, so cebox's handler stays first
 * whenever the program installs its own).
 *
 * Invariants:
 *  - the program sees its own actions: sigaction and signal return what it
 *    set (or had), and its handler runs as it asked (SA_SIGINFO or not, its
 *    mask, SA_RESETHAND), with nothing of cebox's done first;
 *  - only a signal whose action is the default one ends the process here:
 *    the ending is recorded once (summary.c), then the default action is
 *    restored and the signal raised again, so the process dies of it (a
 *    crash with its core dump) exactly as without cebox;
 *  - no lock the interrupted thread may hold is waited for: the log's is
 *    never held with a kill signal deliverable (fatal_hold_kills), and is
 *    waited for a bounded time; the leak table's is only tried; and when
 *    the signal interrupted cebox itself (entry_inside set) the heap and
 *    slot numbers, which need their locks, are left out of the summary.
 */
#ifndef CEBOX_FATAL_H
#define CEBOX_FATAL_H

#include <signal.h>
#include <stdbool.h>

struct cebox_core;

typedef int (*fatal_sigaction_fn)(int, const struct sigaction *, struct sigaction *);

/* At the start of a preloaded process: installs the handler when the
 * settings have --out or --leaks.  next is libc's sigaction. */
void fatal_start(struct cebox_core *core, fatal_sigaction_fn next);

/* Is sig one whose action cebox keeps for the program? */
bool fatal_owns(int sig);

/* The program's sigaction for a signal fatal_owns: reports and replaces
 * the program's own action, leaving cebox's handler installed. */
int fatal_sigaction(int sig, const struct sigaction *act, struct sigaction *old);

/* The kill signals (SIGTERM, SIGINT, SIGHUP, SIGQUIT) blocked in the
 * calling thread, its mask before in *before; fatal_unhold_kills puts it
 * back.  The event log's lock is held so: the handler must write the
 * ending under that lock, and it cannot when the thread it interrupted is
 * the holder, so a kill is then delivered to another thread or once the
 * lock is given back, never to its holder.  Crash signals stay unblocked
 * (a fault with them blocked would kill the process unrecorded). */
void fatal_hold_kills(sigset_t *before);
void fatal_unhold_kills(const sigset_t *before);

#endif
