/* quickexit.c - ends without exit's handlers: `quickexit _exit N` and
 * `quickexit _Exit N` leave one block allocated and end by that call with
 * status N; `quickexit vfork` has a vfork child end by _exit at once (in
 * its parent's memory) and then exits normally itself, with two blocks
 * allocated; `quickexit signal` ends by _exit(9) in a SIGALRM handler
 * that interrupts its allocation loop (inside cebox, as often as not)
 * while four other threads allocate and free. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *more; /* still allocated at exit, reachable */

static void *churn(void *arg)
{
    (void)arg;
    for (;;) {
        free(malloc(64));
    }
    return NULL;
}

static void end_now(int sig)
{
    (void)sig;
    _exit(9);
}

/* Threads churning, and the main thread too until the alarm ends it. */
static int end_in_signal_handler(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        if (pthread_create(&t[i], NULL, churn, NULL) != 0) {
            return 5;
        }
    }
    signal(SIGALRM, end_now);
    alarm(1);
    for (;;) {
        free(malloc(100));
    }
}

int main(int argc, char **argv)
{
    char *kept = malloc(1000);
    if (kept == NULL) {
        return 1;
    }
    memset(kept, 1, 1000);
    int status = argc > 2 ? atoi(argv[2]) : 0;
    if (argc > 1 && strcmp(argv[1], "_exit") == 0) {
        _exit(status);
    }
    if (argc > 1 && strcmp(argv[1], "_Exit") == 0) {
        _Exit(status);
    }
    if (argc > 1 && strcmp(argv[1], "signal") == 0) {
        return end_in_signal_handler();
    }
    if (argc > 1 && strcmp(argv[1], "vfork") == 0) {
        pid_t pid = vfork();
        if (pid == 0) {
            _exit(7);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
            return 2;
        }
        more = malloc(3000); /* the parent's heap still works, its summary counts it */
        if (more == NULL) {
            return 3;
        }
        more[0] = 1;
        printf("vfork child ended with 7\n");
        return 0;
    }
    return 4;
}
