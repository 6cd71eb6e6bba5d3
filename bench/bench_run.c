/*
 * bench_run.c - runs one command and writes what it cost: wall time, CPU
 * time and page faults of the command and every process it waited for.
 * bench/run_alloc.sh times each run of its benchmarks with it.
 *
 * Output (one line in FILE): "WALL CPU MINFLT MAJFLT", seconds and counts.
 * The clock is CLOCK_MONOTONIC around fork and wait; the CPU time and the
 * faults are getrusage(RUSAGE_CHILDREN), so they cover the whole process
 * tree as long as each parent waits for its children (cebox run, sh and
 * heaptrack all do).  The command's standard streams are ours.
 *
 * Exit status: the command's, 128+N when signal N ended it, 127 when it
 * could not be started, 2 on a usage error.
 *
 * Usage: bench_run FILE COMMAND [ARGS...]
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_run FILE COMMAND [ARGS...]\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (out == NULL) {
        fprintf(stderr, "bench_run: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    double start = now();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench_run: fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        fclose(out);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "bench_run: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "bench_run: waitpid: %s\n", strerror(errno));
            return 127;
        }
    }
    double wall = now() - start;
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    fprintf(out, "%.4f %.4f %ld %ld\n", wall, seconds(ru.ru_utime) + seconds(ru.ru_stime),
            ru.ru_minflt, ru.ru_majflt);
    if (fclose(out) != 0) {
        fprintf(stderr, "bench_run: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
