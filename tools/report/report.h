/*
 * report.h - `cebox report` (tools/report/report.c).
 */
#ifndef CEBOX_REPORT_H
#define CEBOX_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "record/leaks.h"
#include "report/logread.h"
#include "report/model.h"

/* The leaks of one process as every format shows them (report.c groups
 * them, html.c lays them out): its LEAK records (--leaks) symbolized, the
 * suppressions applied, the totals by kind; and, for a process killed by
 * a signal, its crash triage. */
/* One LEAK record of a process, symbolized, and whether a suppression
 * matched it. */
struct leak_view {
    const struct lr_leak *leak;
    struct frame *frames;
    size_t nframes;
    bool suppressed;
};

struct leaks {
    struct leak_view *v; /* by bytes, most first */
    size_t n;
    uint64_t bytes[LEAK_KINDS], blocks[LEAK_KINDS]; /* not suppressed */
    uint64_t suppressed[2];                         /* bytes, blocks */
    struct frame *crash;                            /* the crash stack */
    size_t ncrash;
    const struct lr_failure *before;                /* the last failure before a crash, or NULL */
    struct frame *before_frames;                    /* its stack */
    size_t nbefore;
    bool inside_cebox;                              /* the crash's innermost frame is cebox's */
};


/* Runs `cebox report ARGS...` (argv[1] is "report").  Returns the exit
 * status: 0, 1 when a log was damaged (the rest still reported), 2 for bad
 * usage or no readable log. */
int report_main(int argc, char **argv);

/* For `cebox run --error-exitcode`: reads the logs of dir and applies the
 * default suppressions and the files given.  Returns 1 when some process
 * has definitely or indirectly lost bytes that no suppression matched, 0
 * when none has, -1 when a log or a suppressions file cannot be read (the
 * reason printed). */
int report_leaks_found(const char *dir, const char *const *suppressions, size_t n);

/* The shared pieces of the formats (report.c), for the other writers:
 * one text frame line ("    #N 0xADDR  function at file:line"), a JSON
 * string (escaped, or null), a stack as JSON frames, and one folded line
 * (the process as "name[pid]", then the frames outermost first, then the
 * value). */
void report_text_frame(FILE *out, size_t n, const struct frame *f);
void report_json_str(FILE *out, const char *s);
void report_json_frames(FILE *out, const struct frame *frames, size_t nframes);
void report_folded_line(FILE *out, const struct lr_process *p, const struct frame *frames, size_t nframes,
                        uint64_t value);

/* A process killed by a signal, triaged as `cebox report` does: where it
 * died, the last failed allocation before it (pointing into p's failures)
 * and whether the fault is in cebox's own library.  For cebox stress. */
struct report_crash {
    int signal;
    struct frame *stack; /* the crash stack, innermost first */
    size_t nstack;
    const struct lr_failure *before; /* or NULL */
    struct frame *before_frames;
    size_t nbefore;
    bool inside_cebox;
};

/* Fills out and returns true when p died of a signal; free with
 * report_crash_free.  The frames' strings live as long as sym and p. */
bool report_crash_of(struct symbolizer *sym, const struct lr_process *p, struct report_crash *out);
void report_crash_free(struct report_crash *c);

/* An OCCUPANT record's blocks ("blocks 3-9", "block 3") into buf (returns
 * buf), what its kind leaves unsaid ("XIP: its writable data", "RAM DLL"
 * or ""), and its kind's JSON key ("image", "stack", "xip-dll",
 * "ram-dll"). */
const char *report_occupant_blocks(char *buf, size_t cap, const struct lr_occupant *o);
const char *report_occupant_note(const struct lr_occupant *o);
const char *report_occupant_key(const struct lr_occupant *o);

/* A signal's name ("SIGSEGV"). */
const char *report_signal_text(char *buf, size_t cap, int sig);

#endif
