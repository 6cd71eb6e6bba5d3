/*
 * findsession.h - which `cebox run` session a command line names: the
 * commands that act on a running program (cebox state, map, status)
 * accept a session file, the pid of a boxed process or the pid of
 * `cebox run` itself.
 *
 * Owns: that resolution and its error lines (stderr, "cebox: ...").
 */
#ifndef CEBOX_FINDSESSION_H
#define CEBOX_FINDSESSION_H

#include <stdbool.h>
#include <stddef.h>

/* The session file `target` names, copied into out.  A target of digits is
 * a pid: a process whose environment has CEBOX_SESSION (a boxed one: its
 * pid in *boxed_pid when not NULL), or cebox run (whose children have it;
 * *boxed_pid 0); anything else is taken as the session file's path
 * (*boxed_pid 0).  Returns 0, or 1 after printing why ("no such process",
 * "not running under cebox run"). */
int findsession_resolve(const char *target, char *out, size_t len, int *boxed_pid);

/* The value of variable `name` in process pid's environment (at its start),
 * copied into out: true when found. */
bool findsession_environ(int pid, const char *name, char *out, size_t len);

#endif
