/*
 * charts.c - the timeline charts and the crash view of `cebox report
 * --format html` (see charts.h).
 *
 * Owns: drawing a process's samples (log record 9) as inline SVG, one
 * chart per measure, all on the time axis of the whole process (from the
 * run's origin, as every time in the report): the measure as a path
 * through its samples, a background band per memory state from one sample
 * to the next (a state sample starts its band at the change itself), a
 * red line at each recorded failure and a dark one at the crash; the
 * samples again as a table, each point and row a link to the slot map of
 * its moment (html_tlmaps_link); and the crash view, from what report.c's
 * triage found.
 *
 * Invariant: like html.c, nothing from a log is written unescaped: the
 * only strings here are fixed text, numbers and frames that go through
 * html_stack (html_escape).  No script: the charts are static pictures,
 * the values on hover come from <title> elements.
 */
#include "report/charts.h"

#include <inttypes.h>
#include <string.h>

#include "memstate.h"
#include "record/runsummary.h"

#define CHART_W 760 /* px: the whole chart */
#define CHART_H 150
#define PLOT_X 86 /* the plot area inside it */
#define PLOT_Y 8
#define PLOT_W 650
#define PLOT_H 112

/* One measure of a sample and how its values read. */
struct measure {
    const char *key, *title;
    bool blocks; /* a count of slot blocks, else bytes */
    uint64_t (*get)(const struct log_sample *s);
};

static uint64_t get_committed(const struct log_sample *s) { return s->slot_committed_bytes; }
static uint64_t get_live(const struct log_sample *s) { return s->heap_live_bytes; }
static uint64_t get_run(const struct log_sample *s) { return s->largest_free_run_blocks; }
static uint64_t get_ram(const struct log_sample *s) { return s->ram_free_bytes; }

static const struct measure measures[] = {
    {"committed", "Slot committed (slot and Large Memory Area)", false, get_committed},
    {"live", "Process heap live", false, get_live},
    {"largest-free-run", "Largest free run of the slot (blocks)", true, get_run},
    {"ram-free", "Device RAM free", false, get_ram},
};

/* Fills of the state bands, by enum memstate; normal has none. */
static const char *const state_fill[MEMSTATE_COUNT] = {NULL, "#fff3c4", "#ffd9a8", "#f7b5b0"};

static const char *state_name(unsigned s)
{
    return s < MEMSTATE_COUNT ? memstate_name((enum memstate)s) : "unknown";
}

static const char *sample_kind(unsigned k)
{
    static const char *const names[] = {"tick", "failure", "exit", "state", "peak"};
    return k < sizeof names / sizeof names[0] ? names[k] : "tick";
}

static void value_text(char *buf, size_t cap, const struct measure *m, uint64_t v)
{
    if (m->blocks) {
        snprintf(buf, cap, "%" PRIu64 " blocks", v);
    } else {
        run_summary_bytes(buf, cap, v);
    }
}

/* The time axis: from 0 to the last thing drawn (sample, failure, crash). */
static uint64_t time_end(const struct lr_process *p)
{
    uint64_t end = p->samples[p->nsamples - 1].time_ns;
    for (size_t i = 0; i < p->nfailures; i++) {
        end = p->failures[i].time_ns > end ? p->failures[i].time_ns : end;
    }
    if (p->has_summary && p->exit_ns > end) {
        end = p->exit_ns;
    }
    return end > 0 ? end : 1;
}

static double x_of(uint64_t t, uint64_t end)
{
    return PLOT_X + (double)t / (double)end * PLOT_W;
}

static double y_of(uint64_t v, uint64_t max)
{
    return PLOT_Y + PLOT_H - (max == 0 ? 0.0 : (double)v / (double)max * PLOT_H);
}

/* A band per run of samples in one state other than normal, from its
 * first sample to the next sample in another state (or the axis' end). */
static void state_bands(FILE *out, const struct lr_process *p, uint64_t end)
{
    for (size_t i = 0; i < p->nsamples;) {
        unsigned st = p->samples[i].state;
        size_t j = i + 1;
        while (j < p->nsamples && p->samples[j].state == st) {
            j++;
        }
        uint64_t from = p->samples[i].time_ns, to = j < p->nsamples ? p->samples[j].time_ns : end;
        if (st < MEMSTATE_COUNT && state_fill[st] != NULL) {
            double x0 = x_of(from, end), x1 = x_of(to, end);
            fprintf(out,
                    "<rect class=\"state-band\" data-state=\"%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                    "fill=\"%s\"><title>%s from %.3f s to %.3f s</title></rect>\n",
                    state_name(st), x0, PLOT_Y, x1 - x0 < 1 ? 1.0 : x1 - x0, PLOT_H, state_fill[st], state_name(st),
                    (double)from / 1e9, (double)to / 1e9);
        }
        i = j;
    }
}

static void markers(FILE *out, const struct lr_process *p, uint64_t end)
{
    for (size_t i = 0; i < p->nfailures; i++) {
        const struct lr_failure *f = &p->failures[i];
        double x = x_of(f->time_ns, end);
        char size[32];
        fprintf(out,
                "<line class=\"failure-marker\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#d62728\" "
                "stroke-width=\"1.5\"><title>failure %u at %.3f s: %s(%s), %s</title></line>\n",
                x, PLOT_Y, x, PLOT_Y + PLOT_H, (unsigned)f->seq, (double)f->time_ns / 1e9, log_api_name(f->api),
                run_summary_bytes(size, sizeof size, f->size), log_reason_text(f->reason));
    }
    if (p->has_end && p->end.how == LOG_END_SIGNAL && p->has_summary) {
        double x = x_of(p->exit_ns, end);
        fprintf(out,
                "<line class=\"crash-marker\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#222\" "
                "stroke-width=\"2\" stroke-dasharray=\"4 2\"><title>killed by signal %d at %.3f s</title></line>\n",
                x, PLOT_Y, x, PLOT_Y + PLOT_H, p->end.value, (double)p->exit_ns / 1e9);
    }
}

static void axes(FILE *out, const struct measure *m, uint64_t max, uint64_t end)
{
    char top[32];
    value_text(top, sizeof top, m, max);
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#99a\"/>\n"
            "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">%s</text>\n"
            "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">0</text>\n"
            "<text x=\"%d\" y=\"%d\" font-size=\"11\">0 s</text>\n"
            "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">%.3f s</text>\n",
            PLOT_X, PLOT_Y, PLOT_W, PLOT_H, PLOT_X - 4, PLOT_Y + 10, top, PLOT_X - 4, PLOT_Y + PLOT_H, PLOT_X,
            PLOT_Y + PLOT_H + 14, PLOT_X + PLOT_W, PLOT_Y + PLOT_H + 14, (double)end / 1e9);
}

/* Sample s's link to the slot map of its moment (href empty when no map
 * is drawn before it), with that map's time and whether it is the one in
 * force then. */
struct sample_link {
    char href[48];
    uint64_t at;
    bool exact;
};

static struct sample_link link_of(const struct html_tlmaps *maps, const struct log_sample *s)
{
    struct sample_link l = {.href = ""};
    if (!html_tlmaps_link(maps, s->time_ns, l.href, sizeof l.href, &l.at, &l.exact)) {
        l.href[0] = '\0';
    }
    return l;
}

/* The measure's path through the samples, a dot at each (a link to the
 * slot then, when one is drawn). */
static void series(FILE *out, const struct lr_process *p, const struct measure *m, uint64_t max, uint64_t end,
                   const struct html_tlmaps *maps)
{
    char first[32], last[32];
    value_text(first, sizeof first, m, m->get(&p->samples[0]));
    value_text(last, sizeof last, m, m->get(&p->samples[p->nsamples - 1]));
    fputs("<path class=\"series\" fill=\"none\" stroke=\"#2a62a8\" stroke-width=\"1.8\" d=\"", out);
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct log_sample *s = &p->samples[i];
        fprintf(out, "%s%.1f %.1f", i ? " L" : "M", x_of(s->time_ns, end), y_of(m->get(s), max));
    }
    fprintf(out, "\"><title>%s: %s at the first sample, %s at the last</title></path>\n", m->title, first, last);
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct log_sample *s = &p->samples[i];
        char v[32];
        value_text(v, sizeof v, m, m->get(s));
        struct sample_link l = link_of(maps, s);
        if (l.href[0] != '\0') {
            fprintf(out, "<a class=\"point-map\" href=\"%s\">", l.href);
        }
        fprintf(out,
                "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"#2a62a8\"><title>%.3f s (%s): %s, "
                "%s</title></circle>",
                x_of(s->time_ns, end), y_of(m->get(s), max), (double)s->time_ns / 1e9, sample_kind(s->kind), v,
                state_name(s->state));
        fputs(l.href[0] != '\0' ? "</a>\n" : "\n", out);
    }
}

static void chart(FILE *out, const struct lr_process *p, const struct measure *m, uint64_t end,
                  const struct html_tlmaps *maps)
{
    uint64_t max = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        uint64_t v = m->get(&p->samples[i]);
        max = v > max ? v : max;
    }
    fprintf(out,
            "<figure class=\"timeline-chart\" data-measure=\"%s\">\n<figcaption>%s</figcaption>\n"
            "<svg class=\"timeline\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "aria-label=\"%s over time\">\n",
            m->key, m->title, CHART_W, CHART_H, CHART_W, CHART_H, m->title);
    state_bands(out, p, end);
    axes(out, m, max, end);
    markers(out, p, end);
    series(out, p, m, max, end, maps);
    fputs("</svg>\n</figure>\n", out);
}

/* The states that have a band, and the markers, as a legend. */
static void legend(FILE *out, const struct lr_process *p)
{
    bool seen[MEMSTATE_COUNT] = {false};
    for (size_t i = 0; i < p->nsamples; i++) {
        seen[p->samples[i].state < MEMSTATE_COUNT ? p->samples[i].state : 0] = true;
    }
    fputs("<ul class=\"legend timeline-legend\">\n", out);
    for (unsigned st = 0; st < MEMSTATE_COUNT; st++) {
        if (seen[st] && state_fill[st] != NULL) {
            fprintf(out,
                    "<li><svg width=\"14\" height=\"14\"><rect width=\"13\" height=\"13\" fill=\"%s\"/></svg>"
                    "memory state %s</li>\n",
                    state_fill[st], state_name(st));
        }
    }
    if (p->nfailures != 0) {
        fputs("<li><svg width=\"14\" height=\"14\"><rect x=\"6\" width=\"2\" height=\"13\" fill=\"#d62728\"/></svg>"
              "a failed allocation</li>\n",
              out);
    }
    if (p->has_end && p->end.how == LOG_END_SIGNAL && p->has_summary) {
        fputs("<li><svg width=\"14\" height=\"14\"><rect x=\"6\" width=\"2\" height=\"13\" fill=\"#222\"/></svg>"
              "the crash</li>\n",
              out);
    }
    fputs("</ul>\n", out);
}

static void free_cells(FILE *out, const struct log_sample *s)
{
    char b[32];
    if (!s->has_free) {
        fputs("<td class=\"num\">-</td><td class=\"num\">-</td><td class=\"num\">-</td>", out);
        return;
    }
    fprintf(out, "<td class=\"num\">%" PRIu64 "</td><td class=\"num\">%s</td><td class=\"num\">%" PRIu64 "</td>",
            s->heap_free_items, run_summary_bytes(b, sizeof b, s->heap_largest_free_bytes), s->heap_empty_pages);
}

/* The row's last cell: a link to the slot map of its moment, named by
 * that map's time (marked when it is an earlier map than the one in
 * force, which is not drawn). */
static void map_cell(FILE *out, const struct html_tlmaps *maps, const struct log_sample *s)
{
    struct sample_link l = link_of(maps, s);
    if (l.href[0] == '\0') {
        fputs("<td>-</td>", out);
        return;
    }
    fprintf(out, "<td><a class=\"sample-map\" href=\"%s\">%s%.3f s</a></td>", l.href, l.exact ? "" : "&#8776; ",
            (double)l.at / 1e9);
}

static void samples_table(FILE *out, const struct lr_process *p, const struct html_tlmaps *maps)
{
    fprintf(out,
            "<details class=\"samples\"><summary>the samples (%zu)</summary>\n<table class=\"samples\">\n"
            "<thead><tr><th>t (s)</th><th>sample</th><th>reserved blocks</th><th>committed</th>"
            "<th>largest free run</th><th>heap live</th><th>heap committed</th><th>heap free items</th>"
            "<th>largest free item</th><th>empty committed pages</th><th>RAM free</th><th>state</th><th>slot map</th>"
            "</tr></thead>\n"
            "<tbody>\n",
            p->nsamples);
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct log_sample *s = &p->samples[i];
        char c[32], l[32], hc[32], r[32];
        fprintf(out,
                "<tr><td class=\"num\">%.3f</td><td>%s</td><td class=\"num\">%" PRIu32 "</td><td class=\"num\">%s</td>"
                "<td class=\"num\">%" PRIu32 "</td><td class=\"num\">%s</td><td class=\"num\">%s</td>",
                (double)s->time_ns / 1e9, sample_kind(s->kind), s->slot_reserved_blocks,
                run_summary_bytes(c, sizeof c, s->slot_committed_bytes), s->largest_free_run_blocks,
                run_summary_bytes(l, sizeof l, s->heap_live_bytes),
                run_summary_bytes(hc, sizeof hc, s->heap_committed_bytes));
        free_cells(out, s);
        fprintf(out, "<td class=\"num\">%s</td><td>%s</td>", run_summary_bytes(r, sizeof r, s->ram_free_bytes),
                state_name(s->state));
        map_cell(out, maps, s);
        fputs("</tr>\n", out);
    }
    fputs("</tbody>\n</table>\n</details>\n", out);
}

void charts_timeline(FILE *out, const struct lr_process *p, const struct html_tlmaps *maps)
{
    if (p->nsamples == 0) {
        return;
    }
    uint64_t end = time_end(p);
    fprintf(out, "<div class=\"timeline\" data-samples=\"%zu\">\n<h4>Timeline: %zu sample%s over %.3f s</h4>\n",
            p->nsamples, p->nsamples, p->nsamples == 1 ? "" : "s", (double)end / 1e9);
    legend(out, p);
    for (size_t m = 0; m < sizeof measures / sizeof measures[0]; m++) {
        chart(out, p, &measures[m], end, maps);
    }
    samples_table(out, p, maps);
    fputs("</div>\n", out);
}

/* ---- the crash ---- */

/* " at FUNCTION (FILE:LINE)" of a stack's innermost frame, escaped. */
static void where(FILE *out, const struct frame *f, size_t n)
{
    if (n == 0) {
        fputs(" (no stack recorded)", out);
        return;
    }
    fputs(" at <code>", out);
    html_escape(out, f[0].function != NULL ? f[0].function : "?");
    fputs("</code>", out);
    if (f[0].file != NULL) {
        fputs(" (", out);
        html_escape(out, f[0].file);
        fprintf(out, ":%d)", f[0].line);
    } else if (f[0].module != NULL) {
        fputs(" (", out);
        html_escape(out, f[0].module);
        fprintf(out, "+0x%" PRIx64 ")", f[0].offset);
    }
}

void charts_crash(FILE *out, const struct html_proc *hp)
{
    const struct html_crash *c = hp->crash;
    const struct lr_process *p = hp->p;
    if (c == NULL) {
        return;
    }
    fprintf(out, "<section class=\"crash\" data-signal=\"%s\">\n<h3>Crash</h3>\n<p class=\"where\">Died of %s",
            c->signal, c->signal);
    where(out, c->stack, c->nstack);
    if (p->end.fault_addr != 0) {
        fprintf(out, ", fault address 0x%" PRIx64, p->end.fault_addr);
    }
    if (p->has_summary) {
        fprintf(out, ", at %.3f s", (double)p->exit_ns / 1e9);
    }
    fputs(".</p>\n", out);
    if (c->inside_cebox) {
        fputs("<p class=\"damaged\">The crash is inside cebox: a bug of cebox's, never the program's "
              "(please report it).</p>\n",
              out);
    }
    fputs("<h4>Crash stack</h4>\n", out);
    html_stack(out, c->stack, c->nstack);
    const struct lr_failure *f = c->before;
    if (f == NULL) {
        fputs("<p class=\"note\">No failed allocation was recorded before it.</p>\n</section>\n", out);
        return;
    }
    char size[32];
    fprintf(out, "<h4 class=\"before\">The failure before it</h4>\n<p class=\"before\">");
    if (c->ms_before >= 0) {
        fprintf(out, "%.2f ms before the crash, ", c->ms_before);
    }
    fprintf(out, "the %s failure of <code>%s</code>(%s) at %.3f s, thread %u",
            f->reason == LOG_REASON_INJECTED ? "injected" : "last", log_api_name(f->api),
            run_summary_bytes(size, sizeof size, f->size), (double)f->time_ns / 1e9, (unsigned)f->tid);
    where(out, c->before_stack, c->nbefore);
    fprintf(out, ": %s.</p>\n", log_reason_text(f->reason));
    html_stack(out, c->before_stack, c->nbefore);
    fputs("</section>\n", out);
}
