/*
 * testutil.h - helpers shared by the cmocka tests.
 */
#ifndef CEBOX_TESTUTIL_H
#define CEBOX_TESTUTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAULT_EXIT 42

static void fault_handler(int sig)
{
    (void)sig;
    _exit(FAULT_EXIT);
}

/* Runs access(p) in a forked child; true when the access faulted. */
static inline bool access_faults(volatile char *p, bool write)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = fault_handler};
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        if (write) {
            *p = 1;
        } else {
            (void)*p;
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT;
}

/* True when every byte of [p, p+n) is zero. */
static inline bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

#endif
