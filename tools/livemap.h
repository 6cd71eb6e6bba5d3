/*
 * livemap.h - `cebox map` and `cebox status`: the live view of a running
 * program, read from outside.
 *
 * Owns: reading a session's members through a read-only mapping of the
 * session file (ram_view_*: no row taken, no lock, nothing asked of the
 * program: it runs no thread and takes no signal for this) and printing
 * each boxed process's slot map now (map) or its state, device RAM, slot
 * use, largest free run, process heap and map (status).
 */
#ifndef CEBOX_LIVEMAP_H
#define CEBOX_LIVEMAP_H

#include <stdbool.h>

/* TARGET as findsession_resolve takes it; a boxed process's pid shows that
 * process, a session or cebox run's pid every member.  Returns the exit
 * status: 0, or 1 after printing why. */
int livemap_main(const char *target, bool status);

#endif
