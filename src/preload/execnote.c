/*
 * execnote.c - the boxed side of the --no-follow exec watch (execnote.h).
 *
 * Owns: the write end of a pipe whose read end `cebox run` polls.  The
 * kernel closes it when this image execs another program (close-on-exec)
 * or when the process ends; a normal exit writes one byte first.  So the
 * end of the pipe with no byte, while the process still runs, means an
 * exec: the program that now runs under this pid has no cebox in it.
 *
 * Invariants: only the process cebox run started holds the descriptor (a
 * forked child closes its copy, and the variable is removed so that nothing
 * later takes another descriptor for it); system calls only.
 */
#include "preload/execnote.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static int note_fd = -1;

void execnote_start(const struct cebox_settings *s)
{
    unsetenv("CEBOX_WATCH_FD");
    if (s->watch_fd == 0 || fcntl((int)s->watch_fd, F_SETFD, FD_CLOEXEC) != 0) {
        return; /* none given, or not open (the variable came from elsewhere) */
    }
    note_fd = (int)s->watch_fd;
}

void execnote_forked(void)
{
    if (note_fd >= 0) {
        close(note_fd);
        note_fd = -1;
    }
}

void execnote_exit(void)
{
    if (note_fd >= 0) {
        (void)!write(note_fd, "x", 1);
    }
}
