/*
 * stress.h - `cebox stress`: fault-injection campaigns (tools/stress.c).
 *
 * Owns: the campaign's plan (a recording run, then one run per distinct
 * allocation stack, per call number or per forced memory state), the runs
 * (each a `cebox run` of this executable in a process group of its own,
 * `-j` at a time, killed whole at --timeout), each run's outcome read from
 * its event logs, the crash buckets (keyed by the crash stack's innermost
 * frames of the program, symbolized by tools/report), the confirmation
 * rerun of each bucket, the progress line and the final table or JSON.
 *
 * Exit status of stress_main: 0 when no run crashed or hung, 1 when some
 * did (or the recording run could not be made), 2 for bad usage.
 */
#ifndef CEBOX_STRESS_H
#define CEBOX_STRESS_H

#include <stdbool.h>
#include <stddef.h>

enum stress_strategy { STRESS_STACKS, STRESS_NTH, STRESS_STATES };

struct stress_options {
    enum stress_strategy strategy;
    unsigned jobs;          /* 0: the number of CPUs */
    double timeout;         /* seconds per run */
    const char *input;      /* stdin of every run; NULL: /dev/null */
    bool json;              /* --format json on stdout */
    const char *json_file;  /* --json FILE, or NULL */
    const char *out_dir;    /* --out DIR: every run's logs kept; NULL: a temporary directory */
    const char *replay;     /* --replay ID: that one run only, or NULL */
    const char *const *settings; /* the setting options given (for the replay lines), NULL-terminated */
    bool has_limited;       /* the settings' memory-state table has a limited level (ce5 has none) */
};

/* Sets the defaults of o. */
void stress_defaults(struct stress_options *o);

/* Takes one of stress's own options at argv[*i] (moving *i past its
 * value): 0, 1 when the argument is none of them, -1 after printing a
 * one-line error naming what is accepted. */
int stress_take_option(int argc, char **argv, int *i, struct stress_options *o);

/* Runs the campaign on argv (PROGRAM ARGS..., NULL-terminated) with the
 * settings already in the environment. */
int stress_main(const struct stress_options *o, char **argv);

#endif
