/*
 * fit.c - `cebox fit` (see fit.h).
 *
 * Each trial is this same executable's `run` with CEBOX_SLOT_SIZE or
 * CEBOX_RAM set for it (the options given to fit are already in the
 * environment, so the trial sees them too), no --out (a search's dozens of
 * runs would fill the directory), its standard output and error sent to
 * /dev/null and its standard input closed.  A trial "fits" when its exit
 * status (as a shell reports it: 128 + N for signal N) equals the
 * reference run's, made with the settings in force.
 */
#include "fit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "record/runsummary.h"

#define FIT_SLOT_MIN (1024 * 1024)  /* the option table's minimum slot */
#define FIT_SLOT_STEP (64 * 1024)
#define FIT_RAM_MIN (64 * 1024)
#define FIT_RAM_STEP (4 * 1024)
#define FIT_MARGIN_TO (32u * 1024 * 1024)

/* One trial: `cebox run -- argv` with variable var = bytes (var NULL: as
 * set).  Returns the exit status, or -1 when it could not be started. */
static int trial(char **argv, const char *var, uint64_t bytes)
{
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        if (var != NULL) {
            char v[32];
            snprintf(v, sizeof v, "%llu", (unsigned long long)bytes);
            setenv(var, v, 1);
        }
        unsetenv("CEBOX_OUT");
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        size_t n = 0;
        while (argv[n] != NULL) {
            n++;
        }
        char **args = calloc(n + 4, sizeof *args);
        if (args == NULL) {
            _exit(127);
        }
        args[0] = "cebox";
        args[1] = "run";
        args[2] = "--";
        for (size_t i = 0; i <= n; i++) {
            args[3 + i] = argv[i];
        }
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The smallest multiple of step in [lo, hi] at which the program exits
 * with `want`, given that it does at hi: bisection, O(log((hi-lo)/step))
 * trials. */
static uint64_t smallest(char **argv, const char *var, uint64_t lo, uint64_t hi, uint64_t step, int want)
{
    if (trial(argv, var, lo) == want) {
        return lo;
    }
    /* lo does not fit, hi does. */
    while (hi - lo > step) {
        uint64_t mid = lo + (hi - lo) / 2 / step * step;
        if (trial(argv, var, mid) == want) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    return hi;
}

static void text_line(const char *what, uint64_t bytes, uint64_t unit, const char *units)
{
    char a[32], b[32];
    uint64_t margin = bytes < FIT_MARGIN_TO ? FIT_MARGIN_TO - bytes : 0;
    printf("smallest %s: %s (%llu %s), margin to 32 MB: %s%s\n", what, run_summary_bytes(a, sizeof a, bytes),
           (unsigned long long)(bytes / unit), units, bytes > FIT_MARGIN_TO ? "-" : "",
           run_summary_bytes(b, sizeof b, bytes > FIT_MARGIN_TO ? bytes - FIT_MARGIN_TO : margin));
}

int fit_main(const struct cebox_settings *s, char **argv, bool json)
{
    int want = trial(argv, NULL, 0);
    if (want < 0 || want == 127) {
        fprintf(stderr, "cebox fit: %s could not be run (status %d)\n", argv[0], want);
        return 1;
    }
    uint64_t slot = smallest(argv, "CEBOX_SLOT_SIZE", FIT_SLOT_MIN, s->slot_size, FIT_SLOT_STEP, want);
    uint64_t ram = smallest(argv, "CEBOX_RAM", FIT_RAM_MIN, s->ram, FIT_RAM_STEP, want);
    if (json) {
        printf("{\"slot_size\": %llu, \"ram\": %llu, \"status\": %d}\n", (unsigned long long)slot,
               (unsigned long long)ram, want);
        return 0;
    }
    char a[32], b[32];
    printf("%s exits with status %d with room to spare (slot %s, RAM %s)\n", argv[0], want,
           run_summary_bytes(a, sizeof a, s->slot_size), run_summary_bytes(b, sizeof b, s->ram));
    text_line("slot", slot, FIT_SLOT_STEP, "blocks of 64 KB");
    text_line("RAM", ram, FIT_RAM_STEP, "pages of 4 KB");
    return 0;
}
