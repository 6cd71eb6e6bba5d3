/*
 * report.h - `cebox report` (tools/report/report.c).
 */
#ifndef CEBOX_REPORT_H
#define CEBOX_REPORT_H

/* Runs `cebox report ARGS...` (argv[1] is "report").  Returns the exit
 * status: 0, 1 when a log was damaged (the rest still reported), 2 for bad
 * usage or no readable log. */
int report_main(int argc, char **argv);

#endif
