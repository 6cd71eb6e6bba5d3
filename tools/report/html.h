/*
 * html.h - `cebox report --format html`: one self-contained page
 * (tools/report/html.c), written from the report's model (model.h).
 */
#ifndef CEBOX_REPORT_HTML_H
#define CEBOX_REPORT_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report/logread.h"
#include "report/model.h"
#include "report/report.h"
#include "report/symbolize.h"

/* How a process killed by a signal died, as the text and JSON triage
 * found it (report.c): the crash view of the page. */
struct html_crash {
    char signal[32];                  /* "SIGSEGV" */
    const struct frame *stack;        /* the crash stack, innermost first */
    size_t nstack;
    bool inside_cebox;                /* its innermost frame is cebox's */
    const struct lr_failure *before;  /* the last failed allocation before it, or NULL */
    const struct frame *before_stack;
    size_t nbefore;
    double ms_before;                 /* from that failure to the crash; -1: unknown */
};

/* A process as the page lists it. */
struct html_proc {
    const struct lr_log *log;
    const struct lr_process *p;
    size_t run; /* the rank of its run, 1, 2, ... */
    const struct html_crash *crash; /* NULL unless a signal killed it */
    struct symbolizer *sym;         /* for the stacks of the leak views */
    /* Set by html_process, for the links between the failure sites and
     * the leak views: the process's rank on the page (its ids' prefix
     * "pN-"), its failure sites and its leaks as report.c grouped them. */
    size_t index;
    const struct site *sites;
    size_t nsites;
    const struct leaks *lk;
};

/* The slot maps a process's timeline links to: of the maps cebox run
 * sampled (record 13), at most HTML_TIMELINE_MAPS, evenly chosen over them
 * (the first and the last among them) and within the page's cell budget;
 * besides, the failures' maps html.c draws, and the exit's and on-demand
 * ones (the peak's is left out: it holds changes made after its time). */
#define HTML_TIMELINE_MAPS 16

struct html_tlmaps {
    const struct lr_process *p;
    size_t index;                      /* the process's, from 1: the figures' ids */
    size_t drawn[HTML_TIMELINE_MAPS];  /* indices in p->tlmaps, ascending */
    size_t ndrawn;
    size_t failures_drawn;             /* p's failures whose map is drawn, from the first */
    bool failures_sorted;              /* and those are in time order (then searched by halves) */
    size_t moments[HTML_TIMELINE_MAPS]; /* indices in p->maps of the exit's and on-demand maps */
    size_t nmoments;
};

void html_tlmaps_choose(struct html_tlmaps *t, const struct lr_process *p, size_t index);

/* The drawn figure showing the slot at time t (since the origin): the
 * latest drawn map at or before t.  Writes its fragment ("#p1-t3") into
 * href and its time into *at; *exact is false when the sampled map in
 * force at t is not among those drawn (an earlier one is shown).  False
 * when no drawn map comes before t. */
bool html_tlmaps_link(const struct html_tlmaps *t, uint64_t time, char *href, size_t len, uint64_t *at,
                      bool *exact);

/* The head of the page: title, style, and the table of contents of the
 * processes that follow (in this order). */
void html_begin(FILE *out, const char *where, const struct html_proc *procs, size_t n, size_t nruns);

/* The section of the index'th process (from 1, as in the contents), with
 * its leak sites as report.c grouped them. */
void html_process(FILE *out, const struct html_proc *hp, size_t index, const struct site *sites, size_t nsites,
                  const struct leaks *lk);

/* The leak views of a process (tools/report/htmlleaks.c): the leak totals
 * by kind and the leak sites (--leaks), then the growth, the peak and the
 * pinning tables (siteviews.h's models); nothing for a process without
 * them.  The slot's occupants at the start, as rows of the summary.
 * A view's row whose stack is a failure site's links to it, and
 * htmlleaks_failure_links writes, in a failure site's section, the links
 * to the view rows of its stack (nothing when there is none): the same
 * stack id, the same call path to the same allocation call. */
void htmlleaks_views(FILE *out, const struct html_proc *hp);
void htmlleaks_failure_links(FILE *out, const struct html_proc *hp, uint32_t stack_id);
void htmlleaks_occupants(FILE *out, const struct lr_process *p);

/* The end of the page: which logs were damaged, and where. */
void html_end(FILE *out, const struct lr_log *all, size_t nlogs);

/* A stack as a table (number, address, function with inlined levels
 * marked, source, module); a note when n is 0. */
void html_stack(FILE *out, const struct frame *frames, size_t n);

/* Writes s with every character that means something to HTML escaped, for
 * text and for attribute values alike; NULL writes nothing. */
void html_escape(FILE *out, const char *s);

#endif
