/*
 * shell.h - what `cebox run` does while the program runs: it is the device's
 * shell (CE's GWES) for the session.
 */
#ifndef CEBOX_SHELL_H
#define CEBOX_SHELL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "execwatch.h"
#include "options.h"

/* The session's lines in the --out directory. */
#define SHELL_LOG_NAME "cebox.session"

/* Opens OUT/cebox.session (with --out; else, or when it cannot, -1) and
 * writes its first line, the session file's path: before the program
 * starts, so that whoever the program tells it is ready finds the line. */
int shell_open_log(const struct cebox_settings *s);

/* Appends one whole record (len bytes, one write(2), O_APPEND) to
 * DIR/cebox-PID.log, if the process has begun it: a file without its
 * header would not be a log.  Returns 0, or -1 when nothing was written.
 * `cebox run`'s samples and `cebox map`'s maps go in so. */
int shell_append_record(const char *dir, int32_t pid, const unsigned char *rec, size_t len);
/* The same, unless the file would then be larger than limit bytes
 * (--log-limit).  Returns 0 when written, 1 when the limit kept it out,
 * -1 when nothing was written otherwise. */
int shell_append_record_within(const char *dir, int32_t pid, const unsigned char *rec, size_t len, uint64_t limit);
/* A slot map of n cells (record type LOG_REC_MAP or LOG_REC_TIMELINE_MAP,
 * cause enum log_map_cause, CLOCK_MONOTONIC time `when`) appended so, run-
 * length encoded; returns as shell_append_record_within.  One buffer of
 * the largest map's size, static: the caller is cebox's only thread that
 * writes maps. */
int shell_append_map(const char *dir, int32_t pid, unsigned type, unsigned cause, const char *cells, size_t n,
                     uint64_t when, uint64_t limit);

/* Waits for `child` to end, meanwhile applying the state schedule, logging
 * memory-state transitions (to log_fd, from shell_open_log, too), sending
 * hibernate notices and (with close-apps) closing background processes,
 * and (with `watch`, or NULL) watching for an exec under --no-follow.
 * Stores the wait status.  Returns 0, or -1 with errno set. */
int shell_wait(pid_t child, const struct cebox_settings *s, int log_fd, struct execwatch *watch, int *status);

#endif
