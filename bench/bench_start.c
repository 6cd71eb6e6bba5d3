/*
 * bench_start.c - what a process start costs: forks and execs a program N
 * times, one after the other, and prints per start the wall time, the
 * children's minor page faults (ru_minflt) and their user and system CPU
 * time.  bench/run_start.sh runs it unboxed with boxed children
 * (`cebox run --only PROG`), so that only the started program pays cebox's
 * start and the fork is the unboxed harness's.
 *
 *   bench_start N PROGRAM [ARG...]
 *
 * Output: one line, "W us/start, F faults/start, user U sys S us/start".
 * Exit status 1 when a child cannot be started or does not exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double timeval_us(struct timeval tv)
{
    return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
}

/* One start: fork, exec, wait.  0 when the child exited 0. */
static int start_once(char **argv)
{
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    long n = argc >= 3 ? strtol(argv[1], NULL, 10) : 0;
    if (n <= 0) {
        fprintf(stderr, "usage: bench_start N PROGRAM [ARG...] (PROGRAM by its path)\n");
        return 2;
    }
    double t0 = now_us();
    for (long i = 0; i < n; i++) {
        if (start_once(argv + 2) != 0) {
            fprintf(stderr, "bench_start: %s did not start and exit 0\n", argv[2]);
            return 1;
        }
    }
    double wall = now_us() - t0;
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("%.1f us/start, %.1f faults/start, user %.1f sys %.1f us/start\n", wall / (double)n,
           (double)ru.ru_minflt / (double)n, timeval_us(ru.ru_utime) / (double)n, timeval_us(ru.ru_stime) / (double)n);
    return 0;
}
