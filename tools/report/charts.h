/*
 * charts.h - the pieces of `cebox report --format html` drawn from a
 * process's timeline and ending (tools/report/charts.c): the timeline
 * charts and the crash view.
 */
#ifndef CEBOX_REPORT_CHARTS_H
#define CEBOX_REPORT_CHARTS_H

#include <stdio.h>

#include "report/html.h"
#include "report/logread.h"

/* The timeline of p as inline SVG charts (slot committed, heap live,
 * largest free run, device RAM free), each over the same time axis, with a
 * background band per memory state and a marker at each failure (and at
 * the crash), then the samples as a table (inside <details>, readable
 * without JavaScript); each point and row links to the slot map maps
 * shows for its moment.  Nothing when p has no sample. */
void charts_timeline(FILE *out, const struct lr_process *p, const struct html_tlmaps *maps);

/* The crash view of hp (hp->crash): the signal, where it died (its stack),
 * and the failed allocation before it with its stack.  Nothing when the
 * process was not killed by a signal. */
void charts_crash(FILE *out, const struct html_proc *hp);

#endif
