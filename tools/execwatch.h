/*
 * execwatch.h - `cebox run --no-follow`: does the program it started exec
 * another one (a wrapper, a shim, env), which then runs outside the box?
 */
#ifndef CEBOX_EXECWATCH_H
#define CEBOX_EXECWATCH_H

#include <stdbool.h>
#include <limits.h>
#include <sys/types.h>

struct execwatch {
    int read_fd, write_fd; /* -1 when closed */
    pid_t pid;
    char started[16];      /* the name the kernel gave the program cebox ran */
    char started_path[PATH_MAX]; /* and its path, symbolic links resolved */
    bool exited;           /* its image ended (the byte came), no exec */
    bool exec_seen;        /* the pipe closed while the process ran on */
    char program[PATH_MAX]; /* the latest program seen under the pid, "" if none */
    char name[64];         /* its name (/proc/PID/comm) at the last check */
};

/* Before fork: the pipe.  Returns 0, or -1 (then the watch is off). */
int execwatch_open(struct execwatch *w);

/* In the forked child, before it execs `path`: passes the write end on
 * (CEBOX_WATCH_FD). */
void execwatch_child(struct execwatch *w);

/* In cebox run, after fork: keeps the read end; `path` is what it exec'd. */
void execwatch_parent(struct execwatch *w, pid_t pid, const char *path);

/* The descriptor to poll (-1 when the watch is over). */
int execwatch_fd(const struct execwatch *w);

/* Takes what arrived and, once the pipe closed, looks at the process; call
 * it while the process runs and once more before reaping it (a zombie
 * still tells its name). */
void execwatch_check(struct execwatch *w);

/* Prints "cebox: pid N exec'd PROGRAM, which ran outside the box" when that
 * happened; closes the watch. */
void execwatch_report(struct execwatch *w, bool quiet);

#endif
