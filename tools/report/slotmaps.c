/*
 * slotmaps.c - slot maps in text and JSON (see slotmaps.h).
 */
#include "report/slotmaps.h"

#include <inttypes.h>
#include <string.h>

#define LINE_BLOCKS 64

static void repeats_line(FILE *out, size_t repeats)
{
    fprintf(out, "    *         (%zu more line%s like the one above)\n", repeats, repeats == 1 ? "" : "s");
}

void slotmaps_print(FILE *out, const char *cells, uint64_t granularity)
{
    /* Repeated lines (a 2 GB ce6 box is mostly free) collapse into one "*"
     * line, as hexdump does. */
    size_t n = strlen(cells), repeats = 0;
    for (size_t i = 0; i < n; i += LINE_BLOCKS) {
        size_t len = n - i < LINE_BLOCKS ? n - i : LINE_BLOCKS;
        if (i >= LINE_BLOCKS && n - i >= LINE_BLOCKS && memcmp(cells + i, cells + i - LINE_BLOCKS, LINE_BLOCKS) == 0) {
            repeats++;
            continue;
        }
        if (repeats != 0) {
            repeats_line(out, repeats);
            repeats = 0;
        }
        fprintf(out, "    %08" PRIx64 "  %.*s\n", (uint64_t)i * granularity, (int)len, cells + i);
    }
    if (repeats != 0) {
        repeats_line(out, repeats);
    }
}

void slotmaps_legend(FILE *out, uint64_t granularity)
{
    fprintf(out, "(slot map: one character per %" PRIu64 " KB block: - block 0, . free, R reserved, C committed, "
                 "H heap region, L large heap item, E image, D DLL, S stack; a capital starts each reservation, its other blocks in "
                 "lower case: \"LllLl\" is two large items)\n",
            granularity / 1024);
}

const char *slotmaps_cause_text(unsigned cause)
{
    switch (cause) {
    case LOG_MAP_FAILURE: return "at a failure";
    case LOG_MAP_PEAK: return "at the peak of reserved blocks";
    case LOG_MAP_EXIT: return "at exit";
    case LOG_MAP_ON_DEMAND: return "on demand";
    case LOG_MAP_SAMPLE: return "at a timeline tick";
    default: return "(unknown cause)";
    }
}

void slotmaps_text(FILE *out, const struct lr_process *p)
{
    size_t shown = 0;
    for (size_t i = 0; i < p->nmaps; i++) {
        const struct lr_map *m = &p->maps[i];
        if (m->cause == LOG_MAP_FAILURE) {
            continue;
        }
        fprintf(out, "%sslot %s (%.3f s after start):\n", shown++ == 0 ? "\n" : "", slotmaps_cause_text(m->cause),
                (double)m->time_ns / 1e9);
        slotmaps_print(out, m->cells, p->granularity);
    }
    if (shown != 0) {
        slotmaps_legend(out, p->granularity);
        fputc('\n', out);
    }
    if (p->ntlmaps != 0) {
        fprintf(out, "slot maps sampled on the timeline: %zu (one at each tick that saw the map change; drawn "
                     "in --format html, listed in JSON's \"sampled_maps\")\n\n",
                p->ntlmaps);
    }
}

/* A map character, or '?' for anything else a damaged writer put there. */
static char json_cell(char c)
{
    return c != '\0' && strchr("-.RCHLESDrchlesd", c) != NULL ? c : '?';
}

/* ", \"sampled_maps\": [...]": each map's cells run-length encoded, a
 * character then its count ("-1H1h7.503"), so that a 2 GB slot's map of
 * 32768 blocks takes a few bytes per reservation, not 32 KB per sample. */
static void sampled_maps_json(FILE *out, const struct lr_process *p)
{
    fputs(", \"sampled_maps\": [", out);
    for (size_t i = 0; i < p->ntlmaps; i++) {
        const struct lr_map *m = &p->tlmaps[i];
        fprintf(out, "%s\n    {\"t\": %.6f, \"cause\": \"%s\", \"blocks\": %zu, \"runs\": \"", i ? "," : "",
                (double)m->time_ns / 1e9, log_map_cause_key(m->cause), strlen(m->cells));
        for (const char *c = m->cells; *c != '\0';) {
            const char *e = c;
            while (*e == *c) {
                e++;
            }
            fprintf(out, "%c%zu", json_cell(*c), (size_t)(e - c));
            c = e;
        }
        fputs("\"}", out);
    }
    fputs("]", out);
}

void slotmaps_json(FILE *out, const struct lr_process *p)
{
    fputs(", \"maps\": [", out);
    for (size_t i = 0; i < p->nmaps; i++) {
        const struct lr_map *m = &p->maps[i];
        fprintf(out, "%s\n    {\"t\": %.6f, \"cause\": \"%s\", \"seq\": %" PRIu32 ", \"slot_map\": \"", i ? "," : "",
                (double)m->time_ns / 1e9, log_map_cause_key(m->cause), m->seq);
        for (const char *c = m->cells; *c != '\0'; c++) {
            fputc(json_cell(*c), out);
        }
        fputs("\"}", out);
    }
    fputs("]", out);
    sampled_maps_json(out, p);
}
