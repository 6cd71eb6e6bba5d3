/*
 * siteviews.c - leak growth, the peak view and the pinning sites of one
 * process in `cebox report` (see siteviews.h for the rules).
 *
 * Each view is read from its records as written (logread.c keeps the
 * growth samples in file order, the target's own order, and the last peak
 * and pinning record); the stacks are the log's, symbolized as the leak
 * sites are (model.c).  Text shows at most TEXT_SITES sites per view,
 * JSON every site the records hold.
 */
#include "report/siteviews.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "record/runsummary.h"
#include "report/model.h"
#include "report/report.h"

#define TEXT_SITES 5

/* ---- growth ---- */

static struct growth_site *site_of(struct growth_site **v, size_t *n, size_t *cap, uint32_t id)
{
    for (size_t i = 0; i < *n; i++) {
        if ((*v)[i].stack_id == id) {
            return &(*v)[i];
        }
    }
    if (*n == *cap) {
        *cap = *cap != 0 ? *cap * 2 : 16;
        struct growth_site *grown = realloc(*v, *cap * sizeof **v);
        if (grown == NULL) {
            fprintf(stderr, "cebox report: out of memory\n");
            exit(2);
        }
        *v = grown;
    }
    struct growth_site *g = &(*v)[(*n)++];
    *g = (struct growth_site){.stack_id = id, .steady = true};
    return g;
}

static int by_growth(const void *a, const void *b)
{
    const struct growth_site *x = a, *y = b;
    if (x->steady != y->steady) {
        return x->steady ? -1 : 1;
    }
    if (x->bytes_per_s != y->bytes_per_s) {
        return x->bytes_per_s > y->bytes_per_s ? -1 : 1;
    }
    if (x->last_bytes != y->last_bytes) {
        return x->last_bytes > y->last_bytes ? -1 : 1;
    }
    return x->stack_id < y->stack_id ? -1 : x->stack_id > y->stack_id;
}

struct growth_site *siteviews_growth(const struct lr_process *p, size_t *n)
{
    struct growth_site *v = NULL;
    size_t cap = 0;
    *n = 0;
    for (size_t s = 0; s < p->ngrowth; s++) {
        const struct lr_sites *smp = &p->growth[s];
        for (size_t k = 0; k < smp->n; k++) {
            const struct lr_site_val *t = &smp->sites[k];
            struct growth_site *g = site_of(&v, n, &cap, t->stack_id);
            uint64_t bytes = t->v[LOG_GROWTH_BYTES];
            if (g->points == 0) {
                g->t_first_ns = smp->head[LOG_GROWTH_TIME];
                g->first_bytes = bytes;
            } else if (bytes < g->last_bytes) {
                g->steady = false;
            }
            g->points++;
            g->t_last_ns = smp->head[LOG_GROWTH_TIME];
            g->last_bytes = bytes;
            g->last_blocks = t->v[LOG_GROWTH_BLOCKS];
        }
    }
    for (size_t i = 0; i < *n; i++) {
        struct growth_site *g = &v[i];
        g->steady = g->steady && g->points >= GROWTH_MIN_POINTS && g->last_bytes > g->first_bytes &&
                    g->t_last_ns > g->t_first_ns;
        g->bytes_per_s = g->steady ? (double)(g->last_bytes - g->first_bytes) * 1e9 /
                                         (double)(g->t_last_ns - g->t_first_ns)
                                   : 0;
    }
    if (*n > 1) {
        qsort(v, *n, sizeof *v, by_growth);
    }
    return v;
}

void siteviews_room(const struct lr_process *p, const struct growth_site *g, struct growth_room *out)
{
    memset(out, 0, sizeof *out);
    out->slot_fill_s = out->ram_fill_s = -1;
    if (p->nsamples == 0 || p->granularity == 0) {
        return;
    }
    const struct log_sample *last = &p->samples[p->nsamples - 1];
    uint64_t blocks = p->slot_size / p->granularity;
    uint64_t used = (uint64_t)last->slot_reserved_blocks + 1; /* block 0 is never handed out */
    out->slot_free_bytes = blocks > used ? (blocks - used) * p->granularity : 0;
    out->ram_free_bytes = last->ram_free_bytes;
    if (g->steady && g->bytes_per_s > 0) {
        out->slot_fill_s = (double)out->slot_free_bytes / g->bytes_per_s;
        out->ram_fill_s = (double)out->ram_free_bytes / g->bytes_per_s;
    }
}

uint64_t siteviews_rate(const struct growth_site *g)
{
    double r = g->bytes_per_s + 0.5;
    return r >= 18446744073709551616.0 ? UINT64_MAX : r > 0 ? (uint64_t)r : 0;
}

const char *siteviews_duration_text(char *buf, size_t cap, double s)
{
    if (s < 60) {
        snprintf(buf, cap, "%.1f s", s);
    } else if (s < 3600) {
        snprintf(buf, cap, "%.0f min", s / 60);
    } else if (s < 48 * 3600) {
        long h = (long)(s / 3600);
        snprintf(buf, cap, "%ld h %ld min", h, (long)((s - 3600.0 * (double)h) / 60));
    } else {
        snprintf(buf, cap, "%.0f days", s / 86400);
    }
    return buf;
}

static void text_stack(FILE *out, struct symbolizer *sym, const struct lr_process *p, uint32_t id)
{
    size_t nframes;
    struct frame *frames = report_symbolize_stack(sym, p, id, &nframes);
    if (nframes == 0) {
        fprintf(out, "    (no stack recorded)\n");
    }
    for (size_t i = 0; i < nframes; i++) {
        report_text_frame(out, i, &frames[i]);
    }
    free(frames);
}

static void json_stack(FILE *out, struct symbolizer *sym, const struct lr_process *p, uint32_t id)
{
    size_t nframes;
    struct frame *frames = report_symbolize_stack(sym, p, id, &nframes);
    report_json_frames(out, frames, nframes);
    free(frames);
}

static void text_growth(FILE *out, struct symbolizer *sym, const struct lr_process *p)
{
    size_t n;
    struct growth_site *g = siteviews_growth(p, &n);
    double span = p->ngrowth > 1 ? (double)(p->growth[p->ngrowth - 1].head[LOG_GROWTH_TIME] -
                                            p->growth[0].head[LOG_GROWTH_TIME]) / 1e9
                                 : 0;
    fprintf(out, "leak growth: %zu sample%s of the live bytes per site over %.2f s", p->ngrowth,
            p->ngrowth == 1 ? "" : "s", span);
    size_t steady = 0;
    while (steady < n && g[steady].steady) {
        steady++;
    }
    if (steady == 0) {
        fprintf(out, "; no site grew steadily\n");
    } else {
        fprintf(out, "; %zu site%s grew steadily, fastest first:\n", steady, steady == 1 ? "" : "s");
    }
    for (size_t i = 0; i < steady && i < TEXT_SITES; i++) {
        struct growth_room room;
        siteviews_room(p, &g[i], &room);
        char rate[32], slot[32], ram[32], grown[32], a[32], b[32];
        fprintf(out, "\ngrowing site %zu: +%s in %.2f s (%" PRIu64 " blocks now), at %s/s", i + 1,
                run_summary_bytes(grown, sizeof grown, g[i].last_bytes - g[i].first_bytes),
                (double)(g[i].t_last_ns - g[i].t_first_ns) / 1e9, g[i].last_blocks,
                run_summary_bytes(rate, sizeof rate, siteviews_rate(&g[i])));
        if (room.slot_fill_s >= 0) {
            fprintf(out, " this site fills the remaining %s of the slot in %s and the %s of free device RAM in %s",
                    run_summary_bytes(slot, sizeof slot, room.slot_free_bytes),
                    siteviews_duration_text(a, sizeof a, room.slot_fill_s),
                    run_summary_bytes(ram, sizeof ram, room.ram_free_bytes),
                    siteviews_duration_text(b, sizeof b, room.ram_fill_s));
        }
        fputc('\n', out);
        text_stack(out, sym, p, g[i].stack_id);
    }
    fputc('\n', out);
    free(g);
}

static void json_growth(FILE *out, struct symbolizer *sym, const struct lr_process *p)
{
    fputs(", \"growth\": ", out);
    if (p->ngrowth == 0) {
        fputs("null", out);
        return;
    }
    size_t n;
    struct growth_site *g = siteviews_growth(p, &n);
    fprintf(out, "{\"samples\": %zu, \"series\": [", p->ngrowth);
    for (size_t i = 0; i < p->ngrowth; i++) {
        const uint64_t *h = p->growth[i].head;
        unsigned kind = (unsigned)h[LOG_GROWTH_KIND];
        fprintf(out, "%s{\"t\": %.6f, \"sample\": \"%s\", \"live_bytes\": %" PRIu64 ", \"live_blocks\": %" PRIu64
                     ", \"sites\": %" PRIu64 "}",
                i ? ", " : "", (double)h[LOG_GROWTH_TIME] / 1e9,
                kind == LOG_SAMPLE_FAILURE ? "failure" : kind == LOG_SAMPLE_EXIT ? "exit" : "tick",
                h[LOG_GROWTH_LIVE_BYTES], h[LOG_GROWTH_LIVE_BLOCKS], h[LOG_GROWTH_SITES]);
    }
    fputs("], \"sites\": [", out);
    for (size_t i = 0; i < n; i++) {
        struct growth_room room;
        siteviews_room(p, &g[i], &room);
        fprintf(out, "%s\n    {\"steady\": %s, \"points\": %zu, \"t_first\": %.6f, \"t_last\": %.6f, "
                     "\"first_bytes\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64
                     ", \"bytes_per_s\": %.3f, \"slot_free_bytes\": %" PRIu64 ", \"ram_free_bytes\": %" PRIu64,
                i ? "," : "", g[i].steady ? "true" : "false", g[i].points, (double)g[i].t_first_ns / 1e9,
                (double)g[i].t_last_ns / 1e9, g[i].first_bytes, g[i].last_bytes, g[i].last_blocks,
                g[i].bytes_per_s, room.slot_free_bytes, room.ram_free_bytes);
        if (room.slot_fill_s >= 0) {
            fprintf(out, ", \"slot_fill_s\": %.3f, \"ram_fill_s\": %.3f", room.slot_fill_s, room.ram_fill_s);
        } else {
            fputs(", \"slot_fill_s\": null, \"ram_fill_s\": null", out);
        }
        fputs(", \"stack\": ", out);
        json_stack(out, sym, p, g[i].stack_id);
        fputc('}', out);
    }
    fputs("]}", out);
    free(g);
}

/* ---- the peak ---- */

static void text_peak(FILE *out, struct symbolizer *sym, const struct lr_process *p)
{
    const struct lr_sites *pk = &p->peak;
    char live[32], max[32], rest[32];
    fprintf(out, "peak view: %s live in %" PRIu64 " blocks at %.3f s (the live set's highest: %s), by site:\n",
            run_summary_bytes(live, sizeof live, pk->head[LOG_PEAK_LIVE_BYTES]), pk->head[LOG_PEAK_LIVE_BLOCKS],
            (double)pk->head[LOG_PEAK_TIME] / 1e9, run_summary_bytes(max, sizeof max, pk->head[LOG_PEAK_MAX_BYTES]));
    for (size_t i = 0; i < pk->n && i < TEXT_SITES; i++) {
        char b[32];
        fprintf(out, "\npeak site %zu: %s in %" PRIu64 " block%s\n", i + 1,
                run_summary_bytes(b, sizeof b, pk->sites[i].v[LOG_PEAK_BYTES]), pk->sites[i].v[LOG_PEAK_BLOCKS],
                pk->sites[i].v[LOG_PEAK_BLOCKS] == 1 ? "" : "s");
        text_stack(out, sym, p, pk->sites[i].stack_id);
    }
    if (pk->head[LOG_PEAK_REST_BLOCKS] != 0) {
        fprintf(out, "(and %s in %" PRIu64 " blocks at other sites)\n",
                run_summary_bytes(rest, sizeof rest, pk->head[LOG_PEAK_REST_BYTES]), pk->head[LOG_PEAK_REST_BLOCKS]);
    }
    fputc('\n', out);
}

static void json_peak(FILE *out, struct symbolizer *sym, const struct lr_process *p)
{
    fputs(", \"peak\": ", out);
    if (!p->has_peak) {
        fputs("null", out);
        return;
    }
    const struct lr_sites *pk = &p->peak;
    fprintf(out, "{\"t\": %.6f, \"live_bytes\": %" PRIu64 ", \"live_blocks\": %" PRIu64
                 ", \"max_live_bytes\": %" PRIu64 ", \"other_bytes\": %" PRIu64 ", \"other_blocks\": %" PRIu64
                 ", \"sites\": [",
            (double)pk->head[LOG_PEAK_TIME] / 1e9, pk->head[LOG_PEAK_LIVE_BYTES], pk->head[LOG_PEAK_LIVE_BLOCKS],
            pk->head[LOG_PEAK_MAX_BYTES], pk->head[LOG_PEAK_REST_BYTES], pk->head[LOG_PEAK_REST_BLOCKS]);
    for (size_t i = 0; i < pk->n; i++) {
        fprintf(out, "%s\n    {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 ", \"stack\": ", i ? "," : "",
                pk->sites[i].v[LOG_PEAK_BYTES], pk->sites[i].v[LOG_PEAK_BLOCKS]);
        json_stack(out, sym, p, pk->sites[i].stack_id);
        fputc('}', out);
    }
    fputs("]}", out);
}

/* ---- pinning ---- */

/* One pinning record: at exit, or at the slot's least free run ("at the
 * peak", with its time). */
static void text_pinning(FILE *out, struct symbolizer *sym, const struct lr_process *p, const struct lr_sites *pn)
{
    if (pn->head[LOG_PIN_KIND] == LOG_PIN_AT_LEAST_RUN) {
        fprintf(out, "pinning at the peak (the slot's smallest largest free run, at %.3f s): ",
                (double)pn->head[LOG_PIN_TIME] / 1e9);
    } else {
        fputs("pinning at exit: ", out);
    }
    fprintf(out, "%" PRIu64 " heap regions with %" PRIu64 " committed pages (%" PRIu64
                 " holding no live byte, %" PRIu64 " shared by several sites; %" PRIu64
                 " regions shared); largest free run %" PRIu64 " blocks",
            pn->head[LOG_PIN_REGIONS], pn->head[LOG_PIN_COMMITTED_PAGES], pn->head[LOG_PIN_EMPTY_PAGES],
            pn->head[LOG_PIN_SHARED_PAGES], pn->head[LOG_PIN_SHARED_REGIONS], pn->head[LOG_PIN_LARGEST_FREE_RUN]);
    fputs(pn->n != 0 ? "; the sites whose blocks alone keep regions and pages committed:\n" : "; no site pins any\n",
          out);
    for (size_t i = 0; i < pn->n && i < TEXT_SITES; i++) {
        const struct lr_site_val *t = &pn->sites[i];
        char b[32];
        fprintf(out, "\npinning site %zu: %s committed and free kept by its blocks: %" PRIu64 " region%s, %" PRIu64
                     " page%s",
                i + 1, run_summary_bytes(b, sizeof b, t->v[LOG_PIN_BYTES]), t->v[LOG_PIN_REGIONS_PINNED],
                t->v[LOG_PIN_REGIONS_PINNED] == 1 ? "" : "s", t->v[LOG_PIN_PAGES], t->v[LOG_PIN_PAGES] == 1 ? "" : "s");
        if (t->v[LOG_PIN_FREE_RUN_WITHOUT] > pn->head[LOG_PIN_LARGEST_FREE_RUN]) {
            fprintf(out, "; it splits the slot's free space: without its regions the largest free run would be %" PRIu64
                         " blocks",
                    t->v[LOG_PIN_FREE_RUN_WITHOUT]);
        }
        fputc('\n', out);
        text_stack(out, sym, p, t->stack_id);
    }
    fputc('\n', out);
}

/* `, "KEY": {...}` of one pinning record, or null without it; the one at
 * the least free run says so ("when"). */
static void json_pinning(FILE *out, struct symbolizer *sym, const struct lr_process *p, const char *key,
                         const struct lr_sites *pn, bool has)
{
    fprintf(out, ", \"%s\": ", key);
    if (!has) {
        fputs("null", out);
        return;
    }
    fprintf(out, "{\"when\": \"%s\", ", pn->head[LOG_PIN_KIND] == LOG_PIN_AT_LEAST_RUN ? "least_free_run" : "exit");
    fprintf(out, "\"t\": %.6f, \"regions\": %" PRIu64 ", \"committed_pages\": %" PRIu64 ", \"empty_pages\": %" PRIu64
                 ", \"shared_pages\": %" PRIu64 ", \"shared_regions\": %" PRIu64
                 ", \"largest_free_run_blocks\": %" PRIu64 ", \"sites\": [",
            (double)pn->head[LOG_PIN_TIME] / 1e9, pn->head[LOG_PIN_REGIONS], pn->head[LOG_PIN_COMMITTED_PAGES],
            pn->head[LOG_PIN_EMPTY_PAGES], pn->head[LOG_PIN_SHARED_PAGES], pn->head[LOG_PIN_SHARED_REGIONS],
            pn->head[LOG_PIN_LARGEST_FREE_RUN]);
    for (size_t i = 0; i < pn->n; i++) {
        const struct lr_site_val *t = &pn->sites[i];
        fprintf(out, "%s\n    {\"bytes\": %" PRIu64 ", \"regions\": %" PRIu64 ", \"pages\": %" PRIu64
                     ", \"largest_free_run_without_blocks\": %" PRIu64 ", \"stack\": ",
                i ? "," : "", t->v[LOG_PIN_BYTES], t->v[LOG_PIN_REGIONS_PINNED], t->v[LOG_PIN_PAGES],
                t->v[LOG_PIN_FREE_RUN_WITHOUT]);
        json_stack(out, sym, p, t->stack_id);
        fputc('}', out);
    }
    fputs("]}", out);
}

/* ---- the three together ---- */

void siteviews_text(FILE *out, struct symbolizer *sym, const struct lr_process *p)
{
    if (p->ngrowth != 0) {
        text_growth(out, sym, p);
    }
    if (p->has_peak) {
        text_peak(out, sym, p);
    }
    if (p->has_pinning_least) {
        text_pinning(out, sym, p, &p->pinning_least);
    }
    if (p->has_pinning) {
        text_pinning(out, sym, p, &p->pinning);
    }
}

void siteviews_json(FILE *out, struct symbolizer *sym, const struct lr_process *p)
{
    json_growth(out, sym, p);
    json_peak(out, sym, p);
    json_pinning(out, sym, p, "pinning", &p->pinning, p->has_pinning);
    json_pinning(out, sym, p, "pinning_peak", &p->pinning_least, p->has_pinning_least);
}

void siteviews_folded(FILE *out, struct symbolizer *sym, const struct lr_process *p, enum siteviews_folded which)
{
    const struct lr_sites *v = which == SITEVIEWS_FOLD_PEAK ? &p->peak : &p->pinning;
    bool has = which == SITEVIEWS_FOLD_PEAK ? p->has_peak : p->has_pinning;
    for (size_t i = 0; has && i < v->n; i++) {
        size_t nframes;
        struct frame *frames = report_symbolize_stack(sym, p, v->sites[i].stack_id, &nframes);
        report_folded_line(out, p, frames, nframes, v->sites[i].v[0]); /* bytes: field 0 of both */
        free(frames);
    }
}
