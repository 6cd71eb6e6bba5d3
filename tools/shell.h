/*
 * shell.h - what `cebox run` does while the program runs: it is the device's
 * shell (CE's GWES) for the session.
 */
#ifndef CEBOX_SHELL_H
#define CEBOX_SHELL_H

#include <sys/types.h>

#include "execwatch.h"
#include "options.h"

/* The session's lines in the --out directory. */
#define SHELL_LOG_NAME "cebox.session"

/* Waits for `child` to end, meanwhile applying the state schedule, logging
 * memory-state transitions, sending hibernate notices and (with
 * close-apps) closing background processes, and (with `watch`, or NULL)
 * watching for an exec under --no-follow.  Stores the wait status.
 * Returns 0, or -1 with errno set. */
int shell_wait(pid_t child, const struct cebox_settings *s, struct execwatch *watch, int *status);

#endif
