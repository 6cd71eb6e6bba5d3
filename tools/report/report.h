/*
 * report.h - `cebox report` (tools/report/report.c).
 */
#ifndef CEBOX_REPORT_H
#define CEBOX_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct frame;
struct lr_process;

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

#endif
