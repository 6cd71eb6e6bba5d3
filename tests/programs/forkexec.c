/*
 * forkexec.c - a fork+exec chain: each level allocates, reports whether it
 * runs inside cebox and where its block lies, forks, and the child execs the
 * next level.  `forkexec N` runs N levels.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box.h"

int main(int argc, char **argv)
{
    int level = argc > 1 ? atoi(argv[1]) : 3;
    char *p = malloc(1000);
    strcpy(p, "level");
    printf("level %d: %s\n", level, in_box(p) ? "in the box" : "outside the box");
    fflush(stdout);
    if (level <= 1) {
        free(p);
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* The forked child inherits the slot: its pointers are still good. */
        char *q = malloc(10);
        if (strcmp(p, "level") != 0 || (box_present() && !in_box(q))) {
            _exit(3);
        }
        char next[16];
        snprintf(next, sizeof next, "%d", level - 1);
        execl("/proc/self/exe", argv[0], next, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    free(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}
