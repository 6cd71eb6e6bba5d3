/*
 * findsession.c - the session a pid or a path names (see findsession.h).
 */
#include "findsession.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool findsession_environ(int pid, const char *name, char *out, size_t len)
{
    char path[64], env[65536];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, env, sizeof env - 1);
    close(fd);
    size_t name_len = strlen(name);
    for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(env + i) + 1) {
        env[n] = '\0';
        if (strncmp(env + i, name, name_len) == 0 && env[i + (ssize_t)name_len] == '=') {
            snprintf(out, len, "%s", env + i + name_len + 1);
            return true;
        }
    }
    return false;
}

/* Is process `pid` running the same executable as this one (cebox)? */
static bool runs_this_program(int pid)
{
    char path[64], theirs[PATH_MAX], mine[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t a = readlink(path, theirs, sizeof theirs - 1), b = readlink("/proc/self/exe", mine, sizeof mine - 1);
    if (a <= 0 || b <= 0) {
        return false;
    }
    theirs[a] = mine[b] = '\0';
    return strcmp(theirs, mine) == 0;
}

/* The session of `cebox run` itself: it sets CEBOX_SESSION after it
 * started, so its own environment lacks it, but the program it runs (one
 * of its children) has it. */
static bool session_of_shell(int pid, char *out, size_t len)
{
    if (!runs_this_program(pid)) {
        return false; /* not a cebox run: its children's sessions are not its own */
    }
    char path[64], children[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, children, sizeof children - 1);
    close(fd);
    children[n > 0 ? n : 0] = '\0';
    for (char *save = NULL, *child = strtok_r(children, " \n", &save); child != NULL;
         child = strtok_r(NULL, " \n", &save)) {
        if (findsession_environ(atoi(child), "CEBOX_SESSION", out, len)) {
            return true;
        }
    }
    return false;
}

int findsession_resolve(const char *target, char *out, size_t len, int *boxed_pid)
{
    if (boxed_pid != NULL) {
        *boxed_pid = 0;
    }
    if (target[0] == '\0' || strspn(target, "0123456789") != strlen(target)) {
        snprintf(out, len, "%s", target);
        return 0;
    }
    long pid = strtol(target, NULL, 10);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%ld", pid);
    if (pid <= 0 || pid > INT_MAX || access(proc, F_OK) != 0) {
        fprintf(stderr, "cebox: process %s: no such process\n", target);
        return 1;
    }
    if (findsession_environ((int)pid, "CEBOX_SESSION", out, len)) {
        if (boxed_pid != NULL) {
            *boxed_pid = (int)pid;
        }
        return 0;
    }
    if (session_of_shell((int)pid, out, len)) {
        return 0;
    }
    fprintf(stderr, "cebox: process %s is not running under cebox run (no CEBOX_SESSION)\n", target);
    return 1;
}
