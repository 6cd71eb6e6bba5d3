/*
 * report.h - `cebox report` (tools/report/report.c).
 */
#ifndef CEBOX_REPORT_H
#define CEBOX_REPORT_H

#include <stddef.h>

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

#endif
