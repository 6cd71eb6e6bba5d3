/*
 * html.c - `cebox report --format html`: the report as one HTML page.
 *
 * Owns: the page's layout.  It is self-contained and works offline: the
 * style is inline, there is no script, no font, image or anything else
 * fetched; charts and slot maps are inline SVG, so the tables and pictures
 * need no JavaScript.  Per process (with a table of contents when there
 * are several): what was run, the exit summary's numbers, the charts
 * (failures by reason), the failure sites with their symbolized stacks
 * (inlined levels marked), the leak views (htmlleaks.c), and the slot
 * map at each recorded failure, one cell per block coloured by what owns
 * it, the block and its address on hover (<title>); the maps sampled on
 * the timeline (record 13: at most HTML_TIMELINE_MAPS, evenly chosen),
 * each hidden until a chart's point or a sample's row links to it (CSS
 * :target), so the slot at any moment is a click away without a script.
 *
 * Invariant: every string that comes from a log (commands, paths, function
 * and file names, settings) goes through html_escape, in text and in
 * attributes alike, so a hostile log cannot add markup to the page.
 * Everything else written is fixed text or a number.
 */
#include "report/html.h"

#include <inttypes.h>
#include <string.h>

#include "record/runsummary.h"
#include "report/charts.h"
#include "report/slotmaps.h"
#include "report/timeline.h"

/* Slot-map cells drawn per process, over all its maps: a ce5 slot has 512
 * blocks, a 2 GB one 32768; maps past the budget are counted, not drawn. */
#define HTML_MAP_CELLS 65536
#define MAP_COLUMNS 64
#define MAP_PITCH 14 /* px from one cell to the next; cells are a pixel smaller */

void html_escape(FILE *out, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; c != NULL && *c != '\0'; c++) {
        switch (*c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:
            if (*c < 0x20 && *c != '\n' && *c != '\t') {
                fputs("&#xFFFD;", out); /* control characters are not allowed in HTML text */
            } else {
                fputc(*c, out);
            }
        }
    }
}

static const char style[] =
    "body{font:14px/1.4 sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;color:#222;background:#fff}\n"
    "h1{font-size:1.6em}h2{border-bottom:2px solid #567;padding-bottom:.2em;margin-top:2em}\n"
    "h3{margin-top:1.5em;color:#345}h4{margin:1.2em 0 .3em}\n"
    "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccd;padding:.15em .5em;text-align:left;"
    "vertical-align:top}\n"
    "th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "code,.stack td{font-family:monospace}.stack tr.inlined td{background:#fbf7e8}\n"
    ".inl{font-size:.8em;color:#8a6d00;border:1px solid #d9c27a;border-radius:3px;padding:0 .3em;margin-left:.4em}\n"
    "dl.info{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em}dl.info dt{font-weight:bold}\n"
    "dl.info dd{margin:0;font-family:monospace;word-break:break-all}\n"
    ".tables{display:flex;flex-wrap:wrap;gap:0 2em;align-items:flex-start}\n"
    "figure{margin:1em 0}figcaption{margin-bottom:.3em}.note{color:#555}.damaged{color:#a00}\n"
    "ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em 1.2em}\n"
    "ul.legend svg{vertical-align:middle;margin-right:.3em}\n"
    ".leakview td.num{white-space:nowrap}.leakview tr.site-stack>td{padding:.1em .5em .6em 2em;border-top:none}\n"
    ".leakview>thead th{background:#f1e4d0}.leakview tr.site>td{border-bottom:none;background:#f6f8fa}\n"
    ".crash{border-left:4px solid #c0392b;padding-left:1em}.crash .where{font-weight:bold}\n"
    /* A timeline's sampled maps: hidden until a point or a row links to
     * one (the fragment makes it the :target), so no script is needed. */
    "figure.tlmap{display:none}figure.tlmap:target{display:block;outline:2px solid #567;outline-offset:4px}\n"
    "ul.tlmaps{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.2em 1em}a.sample-map{white-space:nowrap}\n";

/* ---- page ---- */

static void process_title(FILE *out, const struct lr_process *p)
{
    fprintf(out, "process %u", (unsigned)p->pid);
    if (p->command != NULL && p->command[0] != '\0') {
        fputs(": ", out);
        html_escape(out, p->command);
    }
}

static size_t summary_failures(const struct lr_process *p)
{
    return p->has_summary ? (size_t)run_summary_failures(&p->summary) : p->nfailures;
}

void html_begin(FILE *out, const char *where, const struct html_proc *procs, size_t n, size_t nruns)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>cebox report: ",
          out);
    html_escape(out, where);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>cebox report: ", style);
    html_escape(out, where);
    fprintf(out, "</h1>\n<p>%zu process%s", n, n == 1 ? "" : "es");
    if (nruns > 1) {
        fprintf(out, " of %zu runs", nruns);
    }
    fputs(": each process's summary and timeline, its failed allocations grouped by call stack (most "
          "frequent first) with the slot at each failure, its crash, and, with --leaks, what it never freed "
          "and who pins the heap; stacks symbolized offline.</p>\n</header>\n",
          out);
    if (n > 1) {
        fputs("<nav id=\"contents\">\n<h2>Processes</h2>\n<ol>\n", out);
        for (size_t i = 0; i < n; i++) {
            size_t failed = summary_failures(procs[i].p);
            fprintf(out, "<li><a href=\"#p%zu\">", i + 1);
            process_title(out, procs[i].p);
            fprintf(out, "</a>: %zu failed allocation%s", failed, failed == 1 ? "" : "s");
            if (nruns > 1) {
                fprintf(out, " (run %zu)", procs[i].run);
            }
            fputs("</li>\n", out);
        }
        fputs("</ol>\n</nav>\n", out);
    } else if (n == 0) {
        fputs("<p>No process to report.</p>\n", out);
    }
    fputs("<main>\n", out);
}

void html_end(FILE *out, const struct lr_log *all, size_t nlogs)
{
    fputs("</main>\n<footer>\n", out);
    for (size_t i = 0; i < nlogs; i++) {
        if (all[i].damaged) {
            fputs("<p class=\"damaged\"><code>", out);
            html_escape(out, all[i].path);
            fprintf(out, "</code> is damaged at offset %" PRIu64 " (", all[i].damage_offset);
            html_escape(out, all[i].damage);
            fputs("): what follows it is lost.</p>\n", out);
        }
    }
    fputs("<p class=\"note\">Written by <code>cebox report --format html</code>.</p>\n</footer>\n</body>\n</html>\n",
          out);
}

/* ---- what was run, and the exit summary ---- */

static void info_row(FILE *out, const char *name, const char *value)
{
    fprintf(out, "<dt>%s</dt><dd>", name);
    html_escape(out, value);
    fputs("</dd>\n", out);
}

static void html_info(FILE *out, const struct html_proc *hp)
{
    const struct lr_process *p = hp->p;
    char num[64];
    fputs("<dl class=\"info\">\n", out);
    info_row(out, "command", p->command);
    info_row(out, "executable", p->exe);
    info_row(out, "profile", p->profile);
    snprintf(num, sizeof num, "%u%s", (unsigned)p->ppid, (p->flags & 1) ? " (begun in a forked child)" : "");
    info_row(out, "parent", num);
    snprintf(num, sizeof num, "%zu", hp->run);
    info_row(out, "run", num);
    info_row(out, "log", hp->log->path);
    fputs("</dl>\n", out);
}

static void number_row(FILE *out, const char *name, uint64_t value)
{
    fprintf(out, "<tr><th>%s</th><td class=\"num\">%" PRIu64 "</td></tr>\n", name, value);
}

static void bytes_row(FILE *out, const char *name, uint64_t bytes)
{
    char b[32];
    fprintf(out, "<tr><th>%s</th><td class=\"num\">%s</td></tr>\n", name, run_summary_bytes(b, sizeof b, bytes));
}

static void html_summary(FILE *out, const struct lr_process *p)
{
    fputs("<h3>Summary</h3>\n", out);
    if (!p->has_summary) {
        fputs("<p class=\"note\">No exit summary: the process exec'd another program, was killed by "
              "SIGKILL, ended by a raw exit system call, or ended under an older cebox.</p>\n",
              out);
        htmlleaks_occupants(out, p);
        return;
    }
    const struct run_summary *s = &p->summary;
    char a[32], b[32];
    fputs("<div class=\"tables\">\n<table class=\"summary\">\n", out);
    const bool slot_read = s->blocks != 0; /* see run_summary_format */
    if (slot_read) {
        fprintf(out, "<tr><th>slot</th><td class=\"num\">%u blocks of %s (%s)</td></tr>\n", (unsigned)s->blocks,
                run_summary_bytes(a, sizeof a, s->granularity),
                run_summary_bytes(b, sizeof b, (uint64_t)s->blocks * s->granularity));
        number_row(out, "peak reserved blocks", s->peak_reserved_blocks);
        bytes_row(out, "peak committed", s->peak_committed_pages * s->page_size);
        if (s->kinds_known) { /* committed slot memory at its peak, by kind */
            bytes_row(out, "&#8195;of it the heap's", s->peak_committed_heap_pages * s->page_size);
            bytes_row(out, "&#8195;mappings and VirtualAlloc", run_summary_mapped_peak_pages(s) * s->page_size);
            if (s->occupancy_known) {
                bytes_row(out, "&#8195;image and DLLs", s->peak_committed_image_pages * s->page_size);
                bytes_row(out, "&#8195;stacks", s->peak_committed_stack_pages * s->page_size);
            }
        }
        bytes_row(out, "heap peak live", s->heap_peak_live_bytes);
        number_row(out, "heap peak live blocks", s->heap_peak_live_blocks);
        bytes_row(out, "heap peak committed", s->heap_peak_committed_bytes);
        bytes_row(out, "heap live at exit", s->heap_live_bytes);
    } else {
        fputs("<tr><th>slot and heap</th><td>not read (a signal came while cebox held their locks)</td></tr>\n",
              out);
    }
    number_row(out, "bad frees", s->bad_frees);
    number_row(out, "foreign frees", s->foreign_frees);
    bytes_row(out, "mapped outside the slot, at the peak", s->outside_peak);
    bytes_row(out, "held by libc's malloc at exit", s->libc_malloc_bytes);
    if (s->own_known) { /* never the program's */
        bytes_row(out, "cebox's own: bookkeeping at exit", s->own_meta_bytes);
        bytes_row(out, "cebox's own: mappings, peak", s->own_mapped_peak);
    }
    fputs("</table>\n<table class=\"summary\">\n", out);
    number_row(out, "failed allocations", run_summary_failures(s));
    for (unsigned i = 0; i < LOG_API_COUNT; i++) {
        if (s->failures[i] != 0) {
            fprintf(out, "<tr><th>&#8195;%s</th><td class=\"num\">%" PRIu64 "</td></tr>\n", report_api_text(i),
                    s->failures[i]);
        }
    }
    if (slot_read) {
        number_row(out, "failures: slot exhausted", s->fail_exhausted);
        number_row(out, "failures: fragmentation", s->fail_fragmented);
        number_row(out, "failures: device RAM exhausted", s->fail_ram);
    }
    number_row(out, "failures: memory-state cap", s->fail_cap);
    number_row(out, "failures injected", s->fail_injected);
    number_row(out, "failures not recorded (log limit)", s->unrecorded_failures);
    fputs("</table>\n", out);
    htmlleaks_occupants(out, p);
    fputs("</div>\n", out);
    if (s->private_device[0] != '\0') {
        fputs("<p>Ran on a device of its own: ", out);
        html_escape(out, s->private_device);
        fputs("</p>\n", out);
    }
    char text[4096];
    run_summary_format(s, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    fputs("<details><summary>as printed at exit</summary>\n<pre>", out);
    html_escape(out, text);
    fputs("</pre></details>\n", out);
}

/* ---- charts ---- */

#define BAR_LABEL 300 /* px for the labels left of the bars */
#define BAR_WIDTH 400 /* px for the longest bar */
#define BAR_ROW 24

/* Failures by reason, as horizontal bars: the recorded failures (the
 * summary's counts by reason cover the slot's reasons only). */
static void chart_reasons(FILE *out, const struct lr_process *p)
{
    size_t counts[LOG_REASON_COUNT] = {0}, rows = 0, most = 0;
    for (size_t i = 0; i < p->nfailures; i++) {
        unsigned r = p->failures[i].reason;
        counts[r < LOG_REASON_COUNT ? r : LOG_REASON_OTHER]++;
    }
    for (unsigned r = 0; r < LOG_REASON_COUNT; r++) {
        rows += counts[r] != 0;
        most = counts[r] > most ? counts[r] : most;
    }
    if (rows == 0) {
        return;
    }
    fputs("<figure class=\"chart\">\n<figcaption>Recorded failures by reason</figcaption>\n", out);
    int width = BAR_LABEL + BAR_WIDTH + 60, height = (int)rows * BAR_ROW + 4;
    fprintf(out,
            "<svg class=\"bar-chart\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"recorded failures by reason\">\n",
            width, height, width, height);
    size_t row = 0;
    for (unsigned r = 0; r < LOG_REASON_COUNT; r++) {
        if (counts[r] == 0) {
            continue;
        }
        int y = (int)row++ * BAR_ROW + 2, len = (int)((double)counts[r] / (double)most * BAR_WIDTH);
        len = len < 2 ? 2 : len;
        fprintf(out,
                "<g class=\"bar\"><text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"13\">%s</text>"
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#4a78b0\"><title>%s: %zu</title></rect>"
                "<text x=\"%d\" y=\"%d\" font-size=\"13\">%zu</text></g>\n",
                BAR_LABEL - 8, y + 15, log_reason_text(r), BAR_LABEL, y, len, BAR_ROW - 6, log_reason_text(r),
                counts[r], BAR_LABEL + len + 6, y + 15, counts[r]);
    }
    fputs("</svg>\n</figure>\n", out);
}

/* The process's charts, after its summary.  Each chart is one call here,
 * and one condition in the test before them (whether it has anything to
 * draw): a chart drawn from other records of the log (a timeline of the
 * process's memory, say) belongs here too. */
static void html_charts(FILE *out, const struct html_proc *hp, const struct html_tlmaps *maps)
{
    if (hp->p->nfailures == 0 && hp->p->nsamples == 0) {
        return;
    }
    fputs("<section class=\"charts\">\n<h3>Charts</h3>\n", out);
    charts_timeline(out, hp->p, maps);
    chart_reasons(out, hp->p);
    fputs("</section>\n", out);
}

/* The run's worst moment and how much room it had, from the timeline (as
 * the text's "worst moment" line and the JSON's "headroom"): a lower bound
 * on the slot and RAM it needs, and the command that finds the exact
 * smallest (cebox fit bisects them by running the program again). */
static void html_headroom(FILE *out, const struct html_proc *hp, const struct html_tlmaps *maps)
{
    const struct lr_process *p = hp->p;
    struct timeline_headroom h;
    timeline_headroom(p, &h);
    if (!h.known) {
        return;
    }
    char b[32], href[64];
    uint64_t at;
    bool exact;
    fprintf(out, "<section class=\"headroom\" id=\"p%zu-headroom\">\n<h3>Headroom</h3>\n<table class=\"headroom\">\n",
            hp->index);
    fprintf(out, "<tr><th>smallest largest free run</th><td class=\"num\" data-value=\"%" PRIu32 "\">%" PRIu32
                 " blocks (%s)</td><td>at %.3f s",
            h.min_largest_free_run_blocks, h.min_largest_free_run_blocks,
            run_summary_bytes(b, sizeof b, (uint64_t)h.min_largest_free_run_blocks * p->granularity),
            (double)h.min_at_ns / 1e9);
    if (html_tlmaps_link(maps, h.min_at_ns, href, sizeof href, &at, &exact)) {
        fprintf(out, " (<a class=\"headroom-map\" href=\"%s\">%sthe slot then</a>)", href, exact ? "" : "&#8776; ");
    }
    fputs("</td></tr>\n", out);
    fprintf(out, "<tr><th>peak slot use</th><td class=\"num\" data-value=\"%" PRIu32 "\">%" PRIu32
                 " of %" PRIu32 " blocks</td><td>%s reserved at most: a smaller slot than that cannot hold this "
                 "run</td></tr>\n",
            h.peak_reserved_blocks, h.peak_reserved_blocks, h.blocks,
            run_summary_bytes(b, sizeof b, (uint64_t)h.peak_reserved_blocks * p->granularity));
    if (p->has_summary) {
        fprintf(out, "<tr><th>peak committed</th><td class=\"num\">%s</td><td>device RAM it needs at least, "
                     "besides the other processes'</td></tr>\n",
                run_summary_bytes(b, sizeof b, p->summary.peak_committed_pages * p->summary.page_size));
    }
    fputs("</table>\n<p>The smallest slot and the smallest device RAM in which the program still exits as it "
          "did are found by running it again: <code>cebox fit --profile ",
          out);
    html_escape(out, p->profile != NULL ? p->profile : "ce5");
    fputs(" -- ", out);
    html_escape(out, p->command != NULL ? p->command : "PROGRAM");
    fputs("</code></p>\n</section>\n", out);
}

/* How many of p's failures have their slot map drawn: in order, as long
 * as the cell budget lasts (one at least). */
static size_t maps_drawn(const struct lr_process *p)
{
    size_t cells = 0, i = 0;
    for (; i < p->nfailures; i++) {
        size_t n = p->failures[i].map != NULL ? strlen(p->failures[i].map) : 0;
        if (i > 0 && cells + n > HTML_MAP_CELLS) {
            break;
        }
        cells += n;
    }
    return i;
}

void html_tlmaps_choose(struct html_tlmaps *t, const struct lr_process *p, size_t index)
{
    *t = (struct html_tlmaps){.p = p, .index = index, .failures_drawn = maps_drawn(p), .failures_sorted = true};
    for (size_t i = 1; i < t->failures_drawn; i++) {
        t->failures_sorted = t->failures_sorted && p->failures[i - 1].time_ns <= p->failures[i].time_ns;
    }
    for (size_t i = 0; i < p->nmaps; i++) { /* the first on-demand ones, and the exit's always */
        unsigned c = p->maps[i].cause;
        if ((c == LOG_MAP_ON_DEMAND && t->nmoments < HTML_TIMELINE_MAPS) || c == LOG_MAP_EXIT) {
            t->moments[t->nmoments < HTML_TIMELINE_MAPS ? t->nmoments++ : HTML_TIMELINE_MAPS - 1] = i;
        }
    }
    size_t n = p->ntlmaps, widest = 1;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(p->tlmaps[i].cells);
        widest = len > widest ? len : widest;
    }
    size_t k = n < HTML_TIMELINE_MAPS ? n : HTML_TIMELINE_MAPS, fit = HTML_MAP_CELLS / widest;
    fit = fit < 2 ? 2 : fit; /* a 2 GB slot's maps: the first and the last still */
    k = k < fit ? k : fit;
    for (size_t j = 0; j < k; j++) {
        /* Evenly over the maps, the first and the last included: with k
         * at most n, the indices strictly increase. */
        t->drawn[j] = k == 1 ? 0 : j * (n - 1) / (k - 1);
    }
    t->ndrawn = k;
}

/* The latest map drawn at or before a moment, as html_tlmaps_link looks
 * for it: its time, and the letter and number of its figure's id. */
struct map_pick {
    bool found;
    uint64_t at;
    char kind; /* 't' sampled, 'f' a failure's, 'm' the exit's or on demand */
    size_t n;  /* from 1 */
};

static void consider(struct map_pick *pk, uint64_t at, uint64_t time, char kind, size_t n)
{
    if (at <= time && (!pk->found || at >= pk->at)) {
        *pk = (struct map_pick){.found = true, .at = at, .kind = kind, .n = n};
    }
}

/* How many of the first n failures of p came at or before time (they are
 * in time order). */
static size_t failures_until(const struct lr_process *p, size_t n, uint64_t time)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->failures[mid].time_ns <= time) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The drawn failures' maps: the latest at or before time, found by halves
 * when they are in time order (a log of many failures has as many
 * samples), else by looking at each. */
static void consider_failures(struct map_pick *pk, const struct html_tlmaps *t, uint64_t time)
{
    const struct lr_process *p = t->p;
    if (!t->failures_sorted) {
        for (size_t i = 0; i < t->failures_drawn; i++) {
            if (p->failures[i].map != NULL) {
                consider(pk, p->failures[i].time_ns, time, 'f', i + 1);
            }
        }
        return;
    }
    size_t i = failures_until(p, t->failures_drawn, time);
    while (i > 0 && p->failures[i - 1].map == NULL) {
        i--;
    }
    if (i > 0) {
        consider(pk, p->failures[i - 1].time_ns, time, 'f', i);
    }
}

bool html_tlmaps_link(const struct html_tlmaps *t, uint64_t time, char *href, size_t len, uint64_t *at,
                      bool *exact)
{
    const struct lr_process *p = t->p;
    size_t in_force = timeline_map_at(p, time);
    struct map_pick pk = {.found = false};
    for (size_t j = t->ndrawn; in_force != TIMELINE_NO_MAP && j-- > 0;) {
        if (t->drawn[j] <= in_force) {
            consider(&pk, p->tlmaps[t->drawn[j]].time_ns, time, 't', t->drawn[j] + 1);
            break;
        }
    }
    consider_failures(&pk, t, time);
    for (size_t i = 0; i < t->nmoments; i++) {
        consider(&pk, p->maps[t->moments[i]].time_ns, time, 'm', t->moments[i] + 1);
    }
    if (!pk.found) {
        return false;
    }
    snprintf(href, len, "#p%zu-%c%zu", t->index, pk.kind, pk.n);
    *at = pk.at;
    *exact = in_force == TIMELINE_NO_MAP || pk.at >= p->tlmaps[in_force].time_ns;
    return true;
}

/* ---- failure sites ---- */

static void html_frame(FILE *out, size_t n, const struct frame *f)
{
    fprintf(out, "<tr%s><td class=\"num\">%zu</td><td>0x%012" PRIx64 "</td><td>", f->inlined ? " class=\"inlined\"" : "",
            n, f->address);
    if (f->function != NULL) {
        fputs("<span class=\"fn\">", out);
        html_escape(out, f->function);
        fputs("</span>", out);
    } else {
        fputs("?", out);
    }
    if (f->inlined) {
        fputs("<span class=\"inl\">inlined</span>", out);
    }
    fputs("</td><td>", out);
    if (f->file != NULL) {
        html_escape(out, f->file);
        fprintf(out, ":%d", f->line);
    }
    fputs("</td><td>", out);
    if (f->module != NULL) {
        html_escape(out, f->module);
        fprintf(out, "+0x%" PRIx64, f->offset);
    } else {
        fputs("(in no known module)", out);
    }
    fputs("</td></tr>\n", out);
}

static void html_site(FILE *out, const struct html_proc *hp, size_t k, const struct site *s, size_t drawn)
{
    size_t index = hp->index;
    const struct lr_process *p = hp->p;
    char size[80];
    report_size_text(size, sizeof size, s->size_min, s->size_max);
    fprintf(out, "<section class=\"site\" id=\"p%zu-s%zu\">\n<h4>Site %zu: %zu failure%s", index, k + 1, k + 1,
            s->count, s->count == 1 ? "" : "s");
    for (unsigned i = 0; i < LOG_API_COUNT; i++) {
        if (s->apis[i] != 0) {
            fprintf(out, ", %s", report_api_text(i));
        }
    }
    fprintf(out, ", %s</h4>\n", size);
    fputs("<p>", out);
    report_write_causes(out, s); /* fixed text and numbers only */
    fputs("</p>\n", out);
    const struct lr_failure *f = &p->failures[s->first];
    fprintf(out, "<p>first at %.3f s, thread %u, failure %u", (double)f->time_ns / 1e9, (unsigned)f->tid,
            (unsigned)f->seq);
    if (s->first < drawn) {
        fprintf(out, ": <a href=\"#p%zu-f%zu\">the slot then</a>", index, s->first + 1);
    }
    fputs("</p>\n", out);
    htmlleaks_failure_links(out, hp, s->stack_id);
    html_stack(out, s->frames, s->nframes);
    fputs("</section>\n", out);
}

void html_stack(FILE *out, const struct frame *frames, size_t n)
{
    if (n == 0) {
        fputs("<p class=\"note\">No stack recorded.</p>\n", out);
        return;
    }
    fputs("<table class=\"stack\">\n<thead><tr><th>#</th><th>address</th><th>function</th><th>source</th>"
          "<th>module</th></tr></thead>\n<tbody>\n",
          out);
    for (size_t i = 0; i < n; i++) {
        html_frame(out, i, &frames[i]);
    }
    fputs("</tbody>\n</table>\n", out);
}

static void html_sites(FILE *out, const struct html_proc *hp)
{
    const struct lr_process *p = hp->p;
    size_t nsites = hp->nsites;
    if (nsites == 0) {
        fputs("<p class=\"note\">No failed allocation recorded.</p>\n", out);
        return;
    }
    fprintf(out, "<section class=\"sites\">\n<h3>Failure sites (%zu)</h3>\n", nsites);
    size_t drawn = maps_drawn(p);
    for (size_t k = 0; k < nsites; k++) {
        html_site(out, hp, k, &hp->sites[k], drawn);
    }
    fputs("</section>\n", out);
}

/* ---- slot maps ---- */

/* What owns a block, by its character in the slot map (LOG-FORMAT.md). */
struct kind {
    char c;
    const char *name, *fill;
};

static const struct kind kinds[] = {
    {'-', "block 0 (never handed out)", "#555555"},
    {'.', "free", "#e8ebef"},
    {'H', "heap region", "#3b7dd8"},
    {'L', "large heap item", "#e07b22"},
    {'R', "VirtualAlloc/mmap, reserved", "#b7e0b0"},
    {'C', "VirtualAlloc/mmap, committed", "#2e9a3e"},
    {'E', "the program's image", "#7a4fb5"},
    {'D', "a DLL (XIP data or RAM DLL)", "#b08cd8"},
    {'S', "a thread's stack", "#c9a227"},
};
static const struct kind unknown_kind = {'?', "unknown", "#d33c8c"};

static const struct kind *kind_of(char c)
{
    c = c >= 'a' && c <= 'z' ? (char)(c & ~0x20) : c; /* a reservation's later blocks */
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (kinds[i].c == c) {
            return &kinds[i];
        }
    }
    return &unknown_kind;
}

static void swatch(FILE *out, const struct kind *k)
{
    fprintf(out, "<li><svg width=\"12\" height=\"12\"><rect width=\"12\" height=\"12\" fill=\"%s\"/></svg>%s</li>\n",
            k->fill, k->name);
}

static void map_legend(FILE *out, uint32_t granularity)
{
    fprintf(out, "<p>One cell per %" PRIu32 " KB block, in address order, %d a row; a dark bar on a cell's "
                 "left edge marks the first block of a reservation (a heap region, a large item, a mapping); "
                 "hover a cell for its block and address.</p>\n<ul class=\"legend\">\n",
            granularity / 1024, MAP_COLUMNS);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        swatch(out, &kinds[i]);
    }
    fputs("</ul>\n", out);
}

static void map_svg(FILE *out, const struct lr_process *p, const char *map, size_t n)
{
    int rows = (int)((n + MAP_COLUMNS - 1) / MAP_COLUMNS), width = MAP_COLUMNS * MAP_PITCH, height = rows * MAP_PITCH;
    fprintf(out,
            "<svg class=\"slot-map\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" data-blocks=\"%zu\" role=\"img\" aria-label=\"slot map, %zu blocks\">\n",
            width, height, width, height, n, n);
    for (size_t i = 0; i < n; i++) {
        const struct kind *k = kind_of(map[i]);
        /* The cell's own character (lower case past a reservation's first
         * block); a first block has a dark bar on its left edge, so two
         * reservations side by side are told apart. */
        bool first = map[i] >= 'A' && map[i] <= 'Z' && k != &unknown_kind;
        int x = (int)(i % MAP_COLUMNS) * MAP_PITCH, y = (int)(i / MAP_COLUMNS) * MAP_PITCH;
        fprintf(out,
                "<rect class=\"block\" data-kind=\"%c\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                "<title>block %zu at 0x%" PRIx64 ": %s%s</title></rect>\n",
                k == &unknown_kind ? '?' : map[i], x, y, MAP_PITCH - 1, MAP_PITCH - 1, k->fill, i,
                p->slot_base + (uint64_t)i * p->granularity, k->name, first ? ", its first block" : "");
        if (first) {
            fprintf(out, "<rect class=\"start\" x=\"%d\" y=\"%d\" width=\"3\" height=\"%d\" fill=\"#1a1a1a\"/>\n",
                    x, y, MAP_PITCH - 1);
        }
    }
    fputs("</svg>\n", out);
}

static void map_figure(FILE *out, size_t index, size_t i, const struct lr_process *p)
{
    const struct lr_failure *f = &p->failures[i];
    char size[32], a[32], b[32];
    fprintf(out,
            "<figure class=\"map\" id=\"p%zu-f%zu\">\n<figcaption>Failure %u at %.3f s, thread %u: %s, %s, "
            "%s; %u of %u blocks free, largest free run %u; %s committed; %s RAM free",
            index, i + 1, (unsigned)f->seq, (double)f->time_ns / 1e9, (unsigned)f->tid,
            report_api_text(f->api < LOG_API_COUNT ? f->api : 0),
            run_summary_bytes(size, sizeof size, f->size),
            log_reason_text(f->reason < LOG_REASON_COUNT ? f->reason : LOG_REASON_OTHER), (unsigned)f->free_blocks,
            (unsigned)f->blocks, (unsigned)f->largest_free_run, run_summary_bytes(a, sizeof a, f->committed_bytes),
            run_summary_bytes(b, sizeof b, f->ram_free_bytes));
    if (f->lma_bytes != 0) {
        fprintf(out, "; %s in the Large Memory Area (outside the slot)", run_summary_bytes(a, sizeof a, f->lma_bytes));
    }
    fputs("</figcaption>\n", out);
    if (f->map != NULL) {
        map_svg(out, p, f->map, strlen(f->map));
    } else {
        fputs("<p class=\"note\">No slot map recorded.</p>\n", out);
    }
    fputs("</figure>\n", out);
}

/* The maps that follow no failure: at the peak, at exit, on demand. */
static void html_moment_maps(FILE *out, size_t index, const struct lr_process *p)
{
    bool any = false;
    for (size_t i = 0; i < p->nmaps; i++) {
        const struct lr_map *m = &p->maps[i];
        if (m->cause == LOG_MAP_FAILURE) {
            continue;
        }
        if (!any) {
            fputs("<section class=\"maps\">\n<h3>The slot at its peak and at exit</h3>\n", out);
            map_legend(out, p->granularity);
            any = true;
        }
        fprintf(out, "<figure class=\"map\" id=\"p%zu-m%zu\" data-cause=\"%s\">\n<figcaption>The slot %s, %.3f s "
                     "after start</figcaption>\n",
                index, i + 1, log_map_cause_key(m->cause), slotmaps_cause_text(m->cause), (double)m->time_ns / 1e9);
        map_svg(out, p, m->cells, strlen(m->cells));
        fputs("</figure>\n", out);
    }
    if (any) {
        fputs("</section>\n", out);
    }
}

/* One sampled map, hidden until it is the page's :target. */
static void tlmap_figure(FILE *out, const struct html_tlmaps *t, size_t i)
{
    const struct lr_process *p = t->p;
    const struct lr_map *m = &p->tlmaps[i];
    fprintf(out, "<figure class=\"map tlmap\" id=\"p%zu-t%zu\" data-cause=\"sample\" data-t=\"%.6f\">\n"
                 "<figcaption>The slot at %.3f s (copied at a timeline tick), ",
            t->index, i + 1, (double)m->time_ns / 1e9, (double)m->time_ns / 1e9);
    if (i + 1 < p->ntlmaps) {
        fprintf(out, "as it stayed until the next change seen, at %.3f s", (double)p->tlmaps[i + 1].time_ns / 1e9);
    } else {
        fputs("as it stayed to the last sample", out);
    }
    fputs("</figcaption>\n", out);
    map_svg(out, p, m->cells, strlen(m->cells));
    fputs("</figure>\n", out);
}

/* The maps cebox run sampled on the timeline: a list of the drawn ones,
 * then their figures, each shown when a point, a row or this list links
 * to it. */
static void html_timeline_maps(FILE *out, const struct html_tlmaps *t)
{
    const struct lr_process *p = t->p;
    if (t->ndrawn == 0) {
        return;
    }
    fprintf(out, "<section class=\"maps tlmaps\" data-sampled=\"%zu\" data-drawn=\"%zu\">\n"
                 "<h3>The slot on the timeline</h3>\n<p>The map cebox run copied at each tick that saw it "
                 "change: %zu; ",
            p->ntlmaps, t->ndrawn, p->ntlmaps);
    if (t->ndrawn < p->ntlmaps) {
        fprintf(out, "%zu of them are drawn, evenly spread, to keep the page small (a sample whose own map is "
                     "not drawn links to the latest drawn before it, marked &#8776;). ",
                t->ndrawn);
    }
    fputs("Choose a point of a chart, a row of the samples or a time here to see the slot then.</p>\n", out);
    map_legend(out, p->granularity);
    fputs("<ul class=\"tlmaps\">\n", out);
    for (size_t j = 0; j < t->ndrawn; j++) {
        fprintf(out, "<li><a href=\"#p%zu-t%zu\">%.3f s</a></li>\n", t->index, t->drawn[j] + 1,
                (double)p->tlmaps[t->drawn[j]].time_ns / 1e9);
    }
    fputs("</ul>\n", out);
    for (size_t j = 0; j < t->ndrawn; j++) {
        tlmap_figure(out, t, t->drawn[j]);
    }
    fputs("</section>\n", out);
}

/* The slot at each recorded failure, as many as maps_drawn allows. */
static void html_maps(FILE *out, size_t index, const struct lr_process *p, const struct html_tlmaps *t)
{
    html_timeline_maps(out, t);
    html_moment_maps(out, index, p);
    if (p->nfailures == 0) {
        return;
    }
    fputs("<section class=\"maps\">\n<h3>The slot at each failure</h3>\n", out);
    map_legend(out, p->granularity);
    size_t drawn = maps_drawn(p);
    for (size_t i = 0; i < drawn; i++) {
        map_figure(out, index, i, p);
    }
    if (drawn < p->nfailures) {
        fprintf(out, "<p class=\"note\">The slot at the %zu later failure%s is not drawn, to keep the page "
                     "small (every site is listed above).</p>\n",
                p->nfailures - drawn, p->nfailures - drawn == 1 ? "" : "s");
    }
    fputs("</section>\n", out);
}

void html_process(FILE *out, const struct html_proc *proc, size_t index, const struct site *sites, size_t nsites,
                  const struct leaks *lk)
{
    struct html_proc h = *proc;
    h.index = index;
    h.sites = sites;
    h.nsites = nsites;
    h.lk = lk;
    const struct html_proc *hp = &h;
    fprintf(out, "<section class=\"process\" id=\"p%zu\" data-pid=\"%u\">\n<h2>", index, (unsigned)hp->p->pid);
    process_title(out, hp->p);
    fputs("</h2>\n", out);
    html_info(out, hp);
    html_summary(out, hp->p);
    charts_crash(out, hp);
    struct html_tlmaps maps;
    html_tlmaps_choose(&maps, hp->p, index);
    html_charts(out, hp, &maps);
    html_headroom(out, hp, &maps);
    html_sites(out, hp);
    htmlleaks_views(out, hp);
    html_maps(out, index, hp->p, &maps);
    fputs("</section>\n", out);
}
