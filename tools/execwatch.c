/*
 * execwatch.c - the watching side of the --no-follow exec watch
 * (execwatch.h; the boxed side is src/preload/execnote.c).
 *
 * Owns: the read end of a pipe whose write end the boxed program holds
 * close-on-exec.  A byte before the end means the program exited; the end
 * with no byte while the process still runs means it exec'd: its new image
 * is /proc/PID/exe, sampled again at every check (a shim may exec more than
 * once).  When the process was already gone (a program that exec'd and
 * ended at once, or one that crashed or called _exit), the name the kernel
 * gives at exec (/proc/PID/comm, still there for a zombie) tells whether a
 * different program ran.
 *
 * Invariants: nothing is said unless the pipe closed without the byte and
 * the last image under the pid has another name or executable than the
 * program cebox started (a binary that closes every descriptor, or re-execs
 * itself, is not taken for a wrapper); checked before the process is
 * reaped; the read end is never inherited (O_CLOEXEC).
 */
#include "execwatch.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMM_MAX 15 /* the kernel's TASK_COMM_LEN, less the NUL */

int execwatch_open(struct execwatch *w)
{
    int fds[2];
    memset(w, 0, sizeof *w);
    w->read_fd = w->write_fd = -1;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    w->read_fd = fds[0];
    w->write_fd = fds[1];
    return 0;
}

void execwatch_child(struct execwatch *w)
{
    if (w->write_fd < 0) {
        return;
    }
    int fd = fcntl(w->write_fd, F_DUPFD, 3); /* without close-on-exec: the program gets it */
    if (fd >= 0) {
        char value[16];
        snprintf(value, sizeof value, "%d", fd);
        setenv("CEBOX_WATCH_FD", value, 1);
    }
}

/* The name the kernel gives a process that exec'd `path`. */
static void comm_of_path(const char *path, char out[16])
{
    const char *slash = strrchr(path, '/');
    snprintf(out, 16, "%.*s", COMM_MAX, slash != NULL ? slash + 1 : path);
}

void execwatch_parent(struct execwatch *w, pid_t pid, const char *path)
{
    if (w->write_fd >= 0) {
        close(w->write_fd);
        w->write_fd = -1;
    }
    w->pid = pid;
    comm_of_path(path, w->started);
    if (realpath(path, w->started_path) == NULL) {
        snprintf(w->started_path, sizeof w->started_path, "%s", path);
    }
}

int execwatch_fd(const struct execwatch *w)
{
    return w->exec_seen || w->exited ? -1 : w->read_fd;
}

static bool read_proc(pid_t pid, const char *what, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    if (strcmp(what, "exe") == 0) {
        ssize_t n = readlink(path, out, len - 1);
        out[n > 0 ? n : 0] = '\0';
        return n > 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, out, len - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    out[n > 0 ? n : 0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return n > 0;
}

void execwatch_check(struct execwatch *w)
{
    if (w->read_fd < 0 || w->exited) {
        return;
    }
    if (!w->exec_seen) {
        char byte;
        ssize_t n = read(w->read_fd, &byte, 1);
        if (n != 0) {
            w->exited = n > 0; /* else EAGAIN: nothing yet */
            return;
        }
        w->exec_seen = true; /* the end, and no byte */
    }
    char exe[PATH_MAX];
    if (read_proc(w->pid, "exe", exe, sizeof exe)) {
        memcpy(w->program, exe, sizeof exe);
    }
    read_proc(w->pid, "comm", w->name, sizeof w->name);
}

void execwatch_report(struct execwatch *w, bool quiet)
{
    char named[16] = "";
    if (w->program[0] != '\0') {
        comm_of_path(w->program, named);
    }
    /* The last image's name: the kernel's, else that of the last program
     * seen (the kernel's is that of the path exec'd, maybe a symlink).  A
     * shim may exec a program of its own name: then the program tells. */
    const char *last = w->name[0] != '\0' ? w->name : named;
    bool other = (last[0] != '\0' && strcmp(last, w->started) != 0) ||
                 (w->program[0] != '\0' && strcmp(w->program, w->started_path) != 0);
    if (w->exec_seen && other && !quiet) {
        fprintf(stderr, "cebox: pid %d exec'd %s, which ran outside the box (--no-follow boxes only the first "
                        "program; --only PATTERN boxes the programs that match)\n",
                (int)w->pid, w->program[0] != '\0' ? w->program : last);
    }
    if (w->read_fd >= 0) {
        close(w->read_fd);
        w->read_fd = -1;
    }
}
