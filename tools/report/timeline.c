/*
 * timeline.c - the timeline of one process in `cebox report` (see
 * timeline.h).
 *
 * The samples come from two writers (cebox run's tick, the target at each
 * failure and at exit) and logread keeps them in time order.  The text
 * shows at most TABLE_ROWS rows, spread evenly over the samples (the first,
 * the last, every failure's own sample always among them), then one
 * sparkline per measure, each scaled from 0 to its own maximum.
 */
#include "report/timeline.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "memstate.h"
#include "record/runsummary.h"

#define TABLE_ROWS 12
#define SPARK_WIDTH 48

static const char *kind_name(unsigned k)
{
    static const char *const names[] = {"tick", "failure", "exit", "state", "peak"};
    return k < sizeof names / sizeof names[0] ? names[k] : "tick";
}

static const char *state_text(unsigned s)
{
    return s < MEMSTATE_COUNT ? memstate_name((enum memstate)s) : "?";
}

void timeline_headroom(const struct lr_process *p, struct timeline_headroom *out)
{
    memset(out, 0, sizeof *out);
    out->blocks = (uint32_t)(p->granularity != 0 ? p->slot_size / p->granularity : 0);
    if (p->nsamples == 0) {
        return;
    }
    out->known = true;
    out->min_largest_free_run_blocks = UINT32_MAX;
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct log_sample *s = &p->samples[i];
        /* The running figures catch a moment between two samples. */
        uint32_t low = s->min_largest_free_run_blocks < s->largest_free_run_blocks ? s->min_largest_free_run_blocks
                                                                                    : s->largest_free_run_blocks;
        if (low < out->min_largest_free_run_blocks) {
            out->min_largest_free_run_blocks = low;
            out->min_at_ns = s->time_ns;
        }
        uint32_t peak = s->peak_reserved_blocks > s->slot_reserved_blocks ? s->peak_reserved_blocks
                                                                           : s->slot_reserved_blocks;
        if (peak > out->peak_reserved_blocks) {
            out->peak_reserved_blocks = peak;
        }
    }
}

size_t timeline_map_at(const struct lr_process *p, uint64_t t)
{
    size_t lo = 0, hi = p->ntlmaps; /* the first map after t is in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->tlmaps[mid].time_ns <= t) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? TIMELINE_NO_MAP : lo - 1;
}

/* ---- text ---- */

static bool row_wanted(const struct lr_process *p, size_t i)
{
    size_t n = p->nsamples;
    if (n <= TABLE_ROWS || i == 0 || i == n - 1 || p->samples[i].kind == LOG_SAMPLE_FAILURE) {
        return true;
    }
    size_t step = (n + TABLE_ROWS - 3) / (TABLE_ROWS - 2);
    return i % step == 0;
}

static uint64_t measure(const struct log_sample *s, int m)
{
    switch (m) {
    case 0: return s->slot_reserved_blocks;
    case 1: return s->slot_committed_bytes;
    case 2: return s->largest_free_run_blocks;
    case 3: return s->heap_live_bytes;
    case 4: return s->heap_committed_bytes;
    default: return s->ram_free_bytes;
    }
}

static const char *const measure_names[] = {"slot reserved (blocks)", "slot committed", "largest free run (blocks)",
                                            "heap live", "heap committed", "device RAM free"};
#define MEASURES 6

static void text_value(FILE *out, int m, uint64_t v)
{
    char b[32];
    if (m == 0 || m == 2) {
        fprintf(out, "%" PRIu64, v);
    } else {
        fputs(run_summary_bytes(b, sizeof b, v), out);
    }
}

/* One line: the measure over time, each character the lowest value of its
 * share of the samples (so a dip is never averaged away). */
static void sparkline(FILE *out, const struct lr_process *p, int m)
{
    static const char *const bars[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
    size_t n = p->nsamples, width = n < SPARK_WIDTH ? n : SPARK_WIDTH;
    uint64_t max = 0, min = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = measure(&p->samples[i], m);
        max = v > max ? v : max;
        min = v < min ? v : min;
    }
    fprintf(out, "  %-26s ", measure_names[m]);
    for (size_t c = 0; c < width; c++) {
        size_t from = c * n / width, to = (c + 1) * n / width;
        uint64_t low = UINT64_MAX;
        for (size_t i = from; i < to; i++) {
            uint64_t v = measure(&p->samples[i], m);
            low = v < low ? v : low;
        }
        fputs(bars[max == 0 ? 0 : (size_t)(low * 7 / max)], out);
    }
    fputs("  ", out);
    text_value(out, m, measure(&p->samples[0], m));
    fputs(" -> ", out);
    text_value(out, m, measure(&p->samples[n - 1], m));
    fputs(" (min ", out);
    text_value(out, m, min);
    fputs(", max ", out);
    text_value(out, m, max);
    fputs(")\n", out);
}

void timeline_text(FILE *out, const struct lr_process *p)
{
    if (p->nsamples == 0) {
        return;
    }
    struct timeline_headroom h;
    timeline_headroom(p, &h);
    const struct log_sample *last = &p->samples[p->nsamples - 1];
    char a[32];
    fprintf(out, "timeline: %zu samples over %.3f s\n", p->nsamples, (double)last->time_ns / 1e9);
    fprintf(out, "  %8s %-7s %8s %10s %8s %10s %10s %6s %10s %6s %10s %s\n", "t (s)", "sample", "reserved",
            "committed", "largest", "heap live", "heap comm.", "free", "largest", "empty", "RAM free", "state");
    for (size_t i = 0; i < p->nsamples; i++) {
        if (!row_wanted(p, i)) {
            continue;
        }
        const struct log_sample *s = &p->samples[i];
        char c[32], l[32], hc[32], r[32], fi[32] = "-", lf[32] = "-", ep[32] = "-";
        if (s->has_free) {
            snprintf(fi, sizeof fi, "%" PRIu64, s->heap_free_items);
            run_summary_bytes(lf, sizeof lf, s->heap_largest_free_bytes);
            snprintf(ep, sizeof ep, "%" PRIu64, s->heap_empty_pages);
        }
        fprintf(out, "  %8.3f %-7s %8" PRIu32 " %10s %8" PRIu32 " %10s %10s %6s %10s %6s %10s %s\n",
                (double)s->time_ns / 1e9, kind_name(s->kind), s->slot_reserved_blocks,
                run_summary_bytes(c, sizeof c, s->slot_committed_bytes), s->largest_free_run_blocks,
                run_summary_bytes(l, sizeof l, s->heap_live_bytes),
                run_summary_bytes(hc, sizeof hc, s->heap_committed_bytes), fi, lf, ep,
                run_summary_bytes(r, sizeof r, s->ram_free_bytes), state_text(s->state));
    }
    fputs("  (free, largest, empty: the process heap's free items, the largest one, its committed pages with no "
          "live byte)\n",
          out);
    for (int m = 0; m < MEASURES; m++) {
        sparkline(out, p, m);
    }
    fprintf(out, "worst moment: largest free run %" PRIu32 " blocks (%s) at %.3f s; peak slot use %" PRIu32
                 " of %" PRIu32 " blocks reserved\n",
            h.min_largest_free_run_blocks,
            run_summary_bytes(a, sizeof a, (uint64_t)h.min_largest_free_run_blocks * p->granularity),
            (double)h.min_at_ns / 1e9, h.peak_reserved_blocks, h.blocks);
}

/* ---- JSON ---- */

void timeline_json(FILE *out, const struct lr_process *p)
{
    fputs(", \"timeline\": [", out);
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct log_sample *s = &p->samples[i];
        fprintf(out,
                "%s\n    {\"t\": %.6f, \"sample\": \"%s\", \"slot_reserved_blocks\": %" PRIu32
                ", \"slot_committed_bytes\": %" PRIu64 ", \"largest_free_run_blocks\": %" PRIu32
                ", \"heap_live_bytes\": %" PRIu64 ", \"heap_committed_bytes\": %" PRIu64,
                i ? "," : "", (double)s->time_ns / 1e9, kind_name(s->kind), s->slot_reserved_blocks,
                s->slot_committed_bytes, s->largest_free_run_blocks, s->heap_live_bytes, s->heap_committed_bytes);
        if (s->has_free) {
            fprintf(out,
                    ", \"heap_free_items\": %" PRIu64 ", \"heap_largest_free_bytes\": %" PRIu64
                    ", \"empty_committed_pages\": %" PRIu64,
                    s->heap_free_items, s->heap_largest_free_bytes, s->heap_empty_pages);
        } else {
            fputs(", \"heap_free_items\": null, \"heap_largest_free_bytes\": null, \"empty_committed_pages\": null", out);
        }
        fprintf(out, ", \"ram_free_bytes\": %" PRIu64 ", \"state\": \"%s\"", s->ram_free_bytes, state_text(s->state));
        size_t map = timeline_map_at(p, s->time_ns);
        if (map == TIMELINE_NO_MAP) {
            fputs(", \"map\": null}", out);
        } else {
            fprintf(out, ", \"map\": %zu}", map);
        }
    }
    fputs("], \"headroom\": ", out);
    struct timeline_headroom h;
    timeline_headroom(p, &h);
    if (!h.known) {
        fputs("null", out);
        return;
    }
    fprintf(out,
            "{\"min_largest_free_run_blocks\": %" PRIu32 ", \"min_largest_free_run_t\": %.6f"
            ", \"peak_reserved_blocks\": %" PRIu32 ", \"blocks\": %" PRIu32 "}",
            h.min_largest_free_run_blocks, (double)h.min_at_ns / 1e9, h.peak_reserved_blocks, h.blocks);
}
