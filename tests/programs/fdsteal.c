/*
 * fdsteal.c - a program that treats cebox's event log descriptor as its
 * own, as test suites and daemons do: run with `cebox run --slot-size 1M
 * --out DIR fdsteal FILE`.
 *
 * It records a failed allocation, then puts FILE on the number of cebox's
 * log (found in /proc/self/fd: the link to cebox-PID.log) with dup2, forks
 * a child that writes to that number and records a failure of its own,
 * records a failure, writes to the number again, closes every descriptor
 * above 2 (close_range), and records two more failures.  Then it makes a
 * pipe of its own (on the lowest numbers, where libunwind's pipe was before
 * close_range), writes to it, records a failure in a new thread (whose
 * unwind checks addresses through libunwind's pipe) and reads the pipe
 * back: it must hold exactly what the program wrote.  FILE must end up
 * holding exactly its own three lines, and every failure must be in the
 * logs (tests/report.sh checks both).  Prints "failed N", what it saw of
 * cebox's descriptor and of its pipe; exits 1 when one of its own steps
 * failed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOO_LARGE ((size_t)64 << 20) /* larger than a 1 MB slot: always refused */

static int failed;

static void fail_once(void)
{
    void *volatile p = malloc(TOO_LARGE);
    if (p == NULL) {
        failed++;
    }
    free(p);
}

/* The descriptor whose link ends in /cebox-PID.log, or -1. */
static int find_log_fd(void)
{
    char want[64];
    snprintf(want, sizeof want, "/cebox-%d.log", (int)getpid());
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return -1;
    }
    int found = -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) {
            continue;
        }
        target[n] = '\0';
        size_t len = strlen(target), wlen = strlen(want);
        if (len >= wlen && strcmp(target + len - wlen, want) == 0) {
            found = atoi(e->d_name);
        }
    }
    closedir(d);
    return found;
}

static void *fail_in_thread(void *arg)
{
    (void)arg;
    fail_once();
    return NULL;
}

/* A pipe of the program's own across a failure in a new thread: "pipe
 * intact" when it reads back exactly what was written. */
static void own_pipe_across_failure(void)
{
    int p[2];
    char back[16] = {0};
    pthread_t t;
    if (pipe(p) != 0 || write(p[1], "data", 4) != 4 || pthread_create(&t, NULL, fail_in_thread, NULL) != 0) {
        perror("fdsteal: pipe");
        exit(1);
    }
    pthread_join(t, NULL);
    close(p[1]);
    ssize_t n = read(p[0], back, sizeof back - 1);
    printf("pipe %d,%d %s\n", p[0], p[1], n == 4 && memcmp(back, "data", 4) == 0 ? "intact" : "damaged");
    close(p[0]);
}

static int say(int fd, const char *line)
{
    return write(fd, line, strlen(line)) == (ssize_t)strlen(line) ? 0 : -1;
}

static int close_above_2(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0) {
        return 0;
    }
#endif
    for (int fd = 3; fd < 65536; fd++) {
        close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fdsteal FILE\n");
        return 2;
    }
    fail_once();
    int logfd = find_log_fd();
    int flags = logfd >= 0 ? fcntl(logfd, F_GETFD) : -1;
    printf("log fd %s, %s\n", logfd >= 10 ? "high" : logfd >= 0 ? "low" : "missing",
           flags >= 0 && (flags & FD_CLOEXEC) ? "close-on-exec" : "inherited by exec");
    int mine = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (logfd < 0 || mine < 0 || dup2(mine, logfd) != logfd || close(mine) != 0) {
        perror("fdsteal: taking the log's number");
        return 1;
    }
    /* The child inherits the number, now the program's file: cebox must
     * leave it open there, and give the child a log of its own. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = say(logfd, "child\n");
        fail_once();
        ok |= say(logfd, "child again\n");
        _exit(ok == 0 && failed == 2 ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fdsteal: the child could not use its descriptor (status %d)\n", status);
        return 1;
    }
    fail_once();
    if (say(logfd, "parent\n") != 0) {
        perror("fdsteal: writing to its own file");
        return 1;
    }
    close_above_2();
    fail_once();
    fail_once();
    own_pipe_across_failure();
    printf("failed %d\n", failed);
    return 0;
}
