/*
 * htmlleaks.c - the leak views of a process on the HTML page (html.h):
 * the leak totals by kind and the leak sites (report.c's struct leaks,
 * suppressions applied), the sites that grew steadily with their times
 * to fill the slot and the RAM, the live set at the peak by site, and the
 * sites that pin heap regions (siteviews.h's models and the last peak and
 * pinning records); and the slot's occupants at the start, in the
 * summary.
 *
 * Every view is a plain table, one row per site with the site's stack in
 * its last cell (html_stack), so it reads without JavaScript.  Each row
 * has an id ("pN-leak-K", "pN-growth-K", "pN-peak-K", "pN-pin-K",
 * "pN-pinpeak-K": process N, row K), and a site whose stack is also a
 * failure site's (the same stack id: the same call path to the same
 * allocation call) links to that site's section ("pN-sK", html.c), which
 * links back to it: plain anchors, for the page works offline and
 * without script.  Each
 * figure's cell carries its exact value (data-field, data-value) next to
 * the rounded text, so a test can hold the page against the JSON report.
 * Invariant: as in html.c, every string from a log (the occupants' names,
 * the stacks' functions, files and modules) goes through html_escape.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "record/runsummary.h"
#include "report/html.h"
#include "report/siteviews.h"

/* ---- table pieces ---- */

#define NCOLS(cols) (sizeof(cols) / sizeof(cols)[0])

/* A table's head: its class and column names (fixed text).  Each site is
 * a row of figures (row_begin, the cells, then frames_row or stack_row)
 * and a row with its stack. */
static void table_begin(FILE *out, const char *cls, const char *const *cols, size_t ncols)
{
    fprintf(out, "<table class=\"leakview %s\">\n<thead><tr>", cls);
    for (size_t i = 0; i < ncols; i++) {
        fprintf(out, "<th>%s</th>", cols[i]);
    }
    fputs("</tr></thead>\n<tbody>\n", out);
}

static void table_end(FILE *out)
{
    fputs("</tbody>\n</table>\n", out);
}

/* ---- links between the failure sites and the views' rows ---- */

/* The views whose rows a failure site links to, with their ids' word. */
enum view { VIEW_LEAK, VIEW_GROWTH, VIEW_PEAK, VIEW_PIN, VIEW_PINPEAK, VIEWS };
static const char *const view_key[VIEWS] = {"leak", "growth", "peak", "pin", "pinpeak"};
static const char *const view_text[VIEWS] = {"leaks", "grows steadily", "is live at the peak",
                                             "pins heap at exit", "pins heap at the peak"};

/* Is the leak view shown: a process that ended with its leak records. */
static bool leaks_shown(const struct lr_process *p)
{
    return p->has_end && (p->end.flags & LOG_END_LEAKS);
}

/* The row (from 1) of a record's sites (PEAK, PINNING) holding stack id, or 0. */
static size_t sites_row(const struct lr_sites *v, bool has, uint32_t id)
{
    for (size_t i = 0; has && i < v->n; i++) {
        if (v->sites[i].stack_id == id) {
            return i + 1;
        }
    }
    return 0;
}

/* The row (from 1) of view `which` that shows stack id, or 0: counted as
 * the tables below number their rows. */
static size_t view_row(const struct html_proc *hp, enum view which, uint32_t id)
{
    const struct lr_process *p = hp->p;
    size_t row = 0, n;
    switch (which) {
    case VIEW_LEAK:
        for (size_t i = 0, shown = 0; leaks_shown(p) && hp->lk != NULL && i < hp->lk->n && row == 0; i++) {
            const struct leak_view *v = &hp->lk->v[i];
            shown += !v->suppressed;
            row = !v->suppressed && v->leak->stack_id == id ? shown : 0;
        }
        return row;
    case VIEW_GROWTH: {
        struct growth_site *g = p->ngrowth != 0 ? siteviews_growth(p, &n) : NULL;
        for (size_t i = 0; g != NULL && i < n && g[i].steady && row == 0; i++) {
            row = g[i].stack_id == id ? i + 1 : 0;
        }
        free(g);
        return row;
    }
    case VIEW_PEAK: return sites_row(&p->peak, p->has_peak, id);
    case VIEW_PIN: return sites_row(&p->pinning, p->has_pinning, id);
    case VIEW_PINPEAK: return sites_row(&p->pinning_least, p->has_pinning_least, id);
    default: return 0;
    }
}

void htmlleaks_failure_links(FILE *out, const struct html_proc *hp, uint32_t stack_id)
{
    size_t links = 0;
    for (unsigned v = 0; stack_id != 0 && v < VIEWS; v++) {
        size_t row = view_row(hp, (enum view)v, stack_id);
        if (row == 0) {
            continue;
        }
        fprintf(out, "%s<a class=\"to-view\" href=\"#p%zu-%s-%zu\">%s</a>",
                links++ == 0 ? "<p class=\"also\">The same allocation site (this call stack) also " : ", ", hp->index,
                view_key[v], row, view_text[v]);
    }
    if (links != 0) {
        fputs(".</p>\n", out);
    }
}

/* A view's row: its number, and its id for the failure sites' links. */
static void row_begin(FILE *out, const struct html_proc *hp, enum view which, size_t n)
{
    fprintf(out, "<tr class=\"site\" id=\"p%zu-%s-%zu\"><td class=\"num\">%zu</td>", hp->index, view_key[which], n,
            n);
}

/* In a view's stack row: the failure site of the same stack, if any. */
static void failure_link(FILE *out, const struct html_proc *hp, uint32_t stack_id)
{
    for (size_t k = 0; stack_id != 0 && k < hp->nsites; k++) {
        if (hp->sites[k].stack_id == stack_id) {
            fprintf(out, "<p class=\"also\">Allocations failed at this site too: <a class=\"to-failure\" "
                         "href=\"#p%zu-s%zu\">failure site %zu</a> (%zu failure%s).</p>\n",
                    hp->index, k + 1, k + 1, hp->sites[k].count, hp->sites[k].count == 1 ? "" : "s");
            return;
        }
    }
}

static void count_cell(FILE *out, const char *field, uint64_t v)
{
    fprintf(out, "<td class=\"num\" data-field=\"%s\" data-value=\"%" PRIu64 "\">%" PRIu64 "</td>", field, v, v);
}

static void bytes_cell(FILE *out, const char *field, uint64_t v)
{
    char b[32];
    fprintf(out, "<td class=\"num\" data-field=\"%s\" data-value=\"%" PRIu64 "\">%s</td>", field, v,
            run_summary_bytes(b, sizeof b, v));
}

/* A time to fill, or "-" when it is unknown (negative). */
static void duration_cell(FILE *out, const char *field, double s)
{
    char b[32];
    if (s < 0) {
        fprintf(out, "<td class=\"num\" data-field=\"%s\" data-value=\"\">-</td>", field);
    } else {
        fprintf(out, "<td class=\"num\" data-field=\"%s\" data-value=\"%.3f\">%s</td>", field, s,
                siteviews_duration_text(b, sizeof b, s));
    }
}

/* The site's stack, in a row of its own under the row of its figures,
 * across the table's ncols columns. */
static void frames_row(FILE *out, size_t ncols, const struct html_proc *hp, uint32_t stack_id,
                       const struct frame *frames, size_t n)
{
    fprintf(out, "</tr>\n<tr class=\"site-stack\"><td colspan=\"%zu\">\n", ncols);
    failure_link(out, hp, stack_id);
    html_stack(out, frames, n);
    fputs("</td></tr>\n", out);
}

/* The same for a view's site (its stack's id in the log), symbolized as
 * the leak sites' are. */
static void stack_row(FILE *out, size_t ncols, const struct html_proc *hp, uint32_t id)
{
    size_t n;
    struct frame *frames = report_symbolize_stack(hp->sym, hp->p, id, &n);
    frames_row(out, ncols, hp, id, frames, n);
    free(frames);
}

/* ---- leaks (--leaks) ---- */

static void total_row(FILE *out, const char *key, const char *text, uint64_t bytes, uint64_t blocks)
{
    fprintf(out, "<tr class=\"total\" data-kind=\"%s\"><th>%s</th>", key, text);
    bytes_cell(out, "bytes", bytes);
    count_cell(out, "blocks", blocks);
    fputs("</tr>\n", out);
}

static void leak_totals(FILE *out, const struct leaks *lk)
{
    static const char *const cols[] = {"kind", "bytes", "blocks"};
    table_begin(out, "leak-totals", cols, NCOLS(cols));
    for (unsigned k = 0; k < LEAK_KINDS; k++) {
        total_row(out, leaks_kind_key(k), leaks_kind_text(k), lk->bytes[k], lk->blocks[k]);
    }
    total_row(out, "suppressed", "suppressed", lk->suppressed[0], lk->suppressed[1]);
    table_end(out);
}

static void leak_sites(FILE *out, const struct html_proc *hp)
{
    const struct leaks *lk = hp->lk;
    static const char *const cols[] = {"#", "kind", "of", "bytes", "charged bytes", "blocks"};
    size_t shown = 0;
    for (size_t i = 0; i < lk->n; i++) {
        shown += !lk->v[i].suppressed;
    }
    if (shown == 0) {
        fputs("<p class=\"note\">No leak site (or every one suppressed).</p>\n", out);
        return;
    }
    table_begin(out, "leak-sites", cols, NCOLS(cols));
    shown = 0;
    for (size_t i = 0; i < lk->n; i++) {
        const struct leak_view *v = &lk->v[i];
        if (v->suppressed) {
            continue;
        }
        row_begin(out, hp, VIEW_LEAK, ++shown);
        bool map = v->leak->what == LOG_LEAK_MAPPINGS;
        fprintf(out, "<td data-field=\"kind\" data-value=\"%s\">%s</td>"
                     "<td data-field=\"what\" data-value=\"%s\">%s</td>",
                leaks_kind_key(v->leak->kind), leaks_kind_text(v->leak->kind), map ? "mapping" : "heap",
                map ? "mmap or VirtualAlloc" : "heap blocks");
        bytes_cell(out, "bytes", v->leak->bytes);
        bytes_cell(out, "charged_bytes", v->leak->charged);
        count_cell(out, "blocks", v->leak->blocks);
        frames_row(out, NCOLS(cols), hp, v->leak->stack_id, v->frames, v->nframes);
    }
    table_end(out);
}

static void html_leaks(FILE *out, const struct html_proc *hp)
{
    const struct lr_process *p = hp->p;
    const struct leaks *lk = hp->lk;
    if (!leaks_shown(p) || lk == NULL) {
        return;
    }
    fputs("<section class=\"leaks\">\n<h3>Leaks at exit</h3>\n<p>What the program never freed, by kind "
          "(suppressed sites counted apart), then each site not suppressed, most bytes first.</p>\n",
          out);
    leak_totals(out, lk);
    if (p->end.flags & LOG_END_UNLOCKED) {
        fputs("<p class=\"note\">The leak table was read without its lock: the signal interrupted its owner.</p>\n",
              out);
    }
    if (p->end.untracked != 0) {
        fprintf(out, "<p class=\"note\">%" PRIu64 " blocks could not be tracked: no bookkeeping memory.</p>\n",
                p->end.untracked);
    }
    leak_sites(out, hp);
    fputs("</section>\n", out);
}

/* ---- growth, the peak, pinning (siteviews.h) ---- */

static void html_growth(FILE *out, const struct html_proc *hp)
{
    const struct lr_process *p = hp->p;
    size_t n, steady = 0;
    struct growth_site *g = siteviews_growth(p, &n);
    while (steady < n && g[steady].steady) {
        steady++;
    }
    fprintf(out, "<section class=\"growth\" data-samples=\"%zu\">\n<h3>Leak growth</h3>\n<p>%zu sample%s of the "
                 "live bytes per site; %zu of the %zu sites they list grew steadily (at least %d samples, never "
                 "falling), fastest first, with the time each would take at its rate to fill what was free at "
                 "the last sample.</p>\n",
            p->ngrowth, p->ngrowth, p->ngrowth == 1 ? "" : "s", steady, n, GROWTH_MIN_POINTS);
    if (steady != 0) {
        static const char *const cols[] = {"#", "samples", "first bytes", "bytes", "blocks", "bytes/s", "over (s)",
                                           "slot free", "fills it in", "RAM free", "fills it in"};
        table_begin(out, "growth", cols, NCOLS(cols));
        for (size_t i = 0; i < steady; i++) {
            struct growth_room room;
            siteviews_room(p, &g[i], &room);
            row_begin(out, hp, VIEW_GROWTH, i + 1);
            count_cell(out, "points", g[i].points);
            bytes_cell(out, "first_bytes", g[i].first_bytes);
            bytes_cell(out, "bytes", g[i].last_bytes);
            count_cell(out, "blocks", g[i].last_blocks);
            bytes_cell(out, "bytes_per_s", siteviews_rate(&g[i]));
            fprintf(out, "<td class=\"num\">%.2f</td>", (double)(g[i].t_last_ns - g[i].t_first_ns) / 1e9);
            bytes_cell(out, "slot_free_bytes", room.slot_free_bytes);
            duration_cell(out, "slot_fill_s", room.slot_fill_s);
            bytes_cell(out, "ram_free_bytes", room.ram_free_bytes);
            duration_cell(out, "ram_fill_s", room.ram_fill_s);
            stack_row(out, NCOLS(cols), hp, g[i].stack_id);
        }
        table_end(out);
    }
    fputs("</section>\n", out);
    free(g);
}

static void html_peak(FILE *out, const struct html_proc *hp)
{
    const struct lr_sites *pk = &hp->p->peak;
    char live[32], max[32], rest[32];
    fprintf(out, "<section class=\"peak\">\n<h3>The live set at the peak</h3>\n<p>%s live in %" PRIu64
                 " blocks at %.3f s (the live set's highest: %s), by site, most bytes first",
            run_summary_bytes(live, sizeof live, pk->head[LOG_PEAK_LIVE_BYTES]), pk->head[LOG_PEAK_LIVE_BLOCKS],
            (double)pk->head[LOG_PEAK_TIME] / 1e9, run_summary_bytes(max, sizeof max, pk->head[LOG_PEAK_MAX_BYTES]));
    if (pk->head[LOG_PEAK_REST_BLOCKS] != 0) {
        fprintf(out, "; and %s in %" PRIu64 " blocks at other sites",
                run_summary_bytes(rest, sizeof rest, pk->head[LOG_PEAK_REST_BYTES]), pk->head[LOG_PEAK_REST_BLOCKS]);
    }
    fputs(".</p>\n", out);
    if (pk->n == 0) {
        fputs("</section>\n", out);
        return;
    }
    static const char *const cols[] = {"#", "bytes", "blocks"};
    table_begin(out, "peak", cols, NCOLS(cols));
    for (size_t i = 0; i < pk->n; i++) {
        row_begin(out, hp, VIEW_PEAK, i + 1);
        bytes_cell(out, "bytes", pk->sites[i].v[LOG_PEAK_BYTES]);
        count_cell(out, "blocks", pk->sites[i].v[LOG_PEAK_BLOCKS]);
        stack_row(out, NCOLS(cols), hp, pk->sites[i].stack_id);
    }
    table_end(out);
    fputs("</section>\n", out);
}

/* One pinning record as a figure of its own: what it says of the heap,
 * then its sites (a table of class cls). */
static void pinning_view(FILE *out, const struct html_proc *hp, const struct lr_sites *pn, const char *cls)
{
    bool least = pn->head[LOG_PIN_KIND] == LOG_PIN_AT_LEAST_RUN;
    fprintf(out, "<div class=\"pin-view\" data-when=\"%s\">\n<p>", least ? "least_free_run" : "exit");
    if (least) {
        fprintf(out, "At the peak (the slot's smallest largest free run, %.3f s): ", (double)pn->head[LOG_PIN_TIME] / 1e9);
    } else {
        fputs("At exit: ", out);
    }
    fprintf(out, "%" PRIu64 " heap regions with %" PRIu64 " committed pages (%" PRIu64 " holding no live byte, %" PRIu64
                 " shared by several sites; %" PRIu64 " regions shared); largest free run %" PRIu64 " blocks. %s</p>\n",
            pn->head[LOG_PIN_REGIONS], pn->head[LOG_PIN_COMMITTED_PAGES], pn->head[LOG_PIN_EMPTY_PAGES],
            pn->head[LOG_PIN_SHARED_PAGES], pn->head[LOG_PIN_SHARED_REGIONS], pn->head[LOG_PIN_LARGEST_FREE_RUN],
            pn->n != 0 ? "The sites whose blocks alone keep regions and pages committed, with the largest free run "
                         "the slot would have without their regions:"
                       : "No site pins any.");
    if (pn->n != 0) {
        static const char *const cols[] = {"#", "bytes", "regions", "pages", "largest free run without (blocks)"};
        table_begin(out, cls, cols, NCOLS(cols));
        for (size_t i = 0; i < pn->n; i++) {
            const struct lr_site_val *t = &pn->sites[i];
            row_begin(out, hp, least ? VIEW_PINPEAK : VIEW_PIN, i + 1);
            bytes_cell(out, "bytes", t->v[LOG_PIN_BYTES]);
            count_cell(out, "regions", t->v[LOG_PIN_REGIONS_PINNED]);
            count_cell(out, "pages", t->v[LOG_PIN_PAGES]);
            count_cell(out, "largest_free_run_without_blocks", t->v[LOG_PIN_FREE_RUN_WITHOUT]);
            stack_row(out, NCOLS(cols), hp, t->stack_id);
        }
        table_end(out);
    }
    fputs("</div>\n", out);
}

/* Who pins the heap: at the slot's least free run and at exit, side by
 * side (either may be missing). */
static void html_pinning(FILE *out, const struct html_proc *hp)
{
    const struct lr_process *p = hp->p;
    fputs("<section class=\"pinning\">\n<h3>Who pins the heap</h3>\n<div class=\"tables\">\n", out);
    if (p->has_pinning_least) {
        pinning_view(out, hp, &p->pinning_least, "pinning-peak");
    }
    if (p->has_pinning) {
        pinning_view(out, hp, &p->pinning, "pinning");
    }
    fputs("</div>\n</section>\n", out);
}

void htmlleaks_views(FILE *out, const struct html_proc *hp)
{
    html_leaks(out, hp);
    if (hp->p->ngrowth != 0) {
        html_growth(out, hp);
    }
    if (hp->p->has_peak) {
        html_peak(out, hp);
    }
    if (hp->p->has_pinning || hp->p->has_pinning_least) {
        html_pinning(out, hp);
    }
}

/* ---- the slot's occupants ---- */

void htmlleaks_occupants(FILE *out, const struct lr_process *p)
{
    if (p->noccupants == 0) {
        return;
    }
    fprintf(out, "<table class=\"summary occupants\">\n<thead><tr><th colspan=\"4\">the slot at the start: %zu "
                 "occupant%s</th></tr></thead>\n<tbody>\n",
            p->noccupants, p->noccupants == 1 ? "" : "s");
    for (size_t i = 0; i < p->noccupants; i++) {
        const struct lr_occupant *o = &p->occupants[i];
        const char *note = report_occupant_note(o);
        char where[48];
        fprintf(out, "<tr class=\"occupant\" data-kind=\"%s\" data-first-block=\"%u\" data-blocks=\"%u\"><th>%s</th>"
                     "<td>%s</td><td class=\"num\">%u page%s</td><td class=\"name\">",
                report_occupant_key(o), (unsigned)o->first_block, (unsigned)o->blocks,
                o->kind == 'E' ? "image" : o->kind == 'S' ? "stack" : "DLL",
                report_occupant_blocks(where, sizeof where, o), (unsigned)o->pages, o->pages == 1 ? "" : "s");
        html_escape(out, o->name);
        if (note[0] != '\0') {
            fprintf(out, " <span class=\"note\">(%s)</span>", note);
        }
        fputs("</td></tr>\n", out);
    }
    fputs("</tbody>\n</table>\n", out);
}
