/*
 * dropexec.c - gives up root, then execs, as setpriv, su and apt's methods
 * do: `dropexec [--hold KB] [--close-all] [--stale FILE] PROGRAM [ARGS...]`
 * becomes uid and gid 65534 (nobody) with no supplementary groups and
 * execs PROGRAM.  --hold KB first allocates and touches KB kilobytes (the
 * image that execs holds them); --close-all closes every descriptor above 2
 * (close_range, as Python's subprocess and apt do before they exec);
 * --stale FILE opens FILE read-write on the descriptor CEBOX_SESSION_FD
 * names, so that the number the program inherits names another file.
 * Exit 126 when a step fails.
 */
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void close_above_stderr(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) {
        return;
    }
#endif
    for (long fd = 3, max = sysconf(_SC_OPEN_MAX); fd < max; fd++) {
        close((int)fd);
    }
}

static int put_on_session_fd(const char *file)
{
    const char *num = getenv("CEBOX_SESSION_FD");
    int fd = open(file, O_RDWR);
    if (num == NULL || fd < 0 || dup2(fd, atoi(num)) < 0) {
        perror("dropexec: --stale");
        return -1;
    }
    close(fd);
    return 0;
}

/* Memory the image holds when it execs (touched, so it is committed). */
static void hold(const char *kb)
{
    size_t len = (size_t)atoi(kb) * 1024;
    char *p = malloc(len);
    if (p != NULL) {
        memset(p, 1, len);
    }
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--close-all") == 0) {
            close_above_stderr();
        } else if (strcmp(argv[i], "--stale") == 0 && i + 1 < argc) {
            if (put_on_session_fd(argv[++i]) != 0) {
                return 126;
            }
        } else if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc) {
            hold(argv[++i]);
        } else {
            break;
        }
    }
    if (argc <= i) {
        fprintf(stderr, "usage: dropexec [--hold KB] [--close-all] [--stale FILE] PROGRAM [ARGS...]\n");
        return 126;
    }
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
        perror("dropexec: giving up root");
        return 126;
    }
    execv(argv[i], argv + i);
    perror("dropexec: exec");
    return 126;
}
