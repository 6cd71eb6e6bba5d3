/*
 * siteviews.h - the views of a process's live set by allocation site in
 * `cebox report` (--leaks with --out; records 10-12 of docs/LOG-FORMAT.md):
 * leak growth, the peak view and the pinning sites, in text, JSON and
 * folded stacks (tools/report/siteviews.c).
 *
 * Growth: a site's points are the growth samples that list it (each lists
 * the sites with most live bytes then).  A site grows steadily when it has
 * at least GROWTH_MIN_POINTS points, its bytes never fall from one to the
 * next and the last is above the first; its rate is (last - first bytes)
 * / (last - first time).  At that rate it fills the slot's free blocks and
 * the device's free RAM of the process's last timeline sample.
 */
#ifndef CEBOX_REPORT_SITEVIEWS_H
#define CEBOX_REPORT_SITEVIEWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report/logread.h"
#include "report/symbolize.h"

#define GROWTH_MIN_POINTS 3

/* One site's growth over the samples that list it. */
struct growth_site {
    uint32_t stack_id;
    size_t points;
    uint64_t t_first_ns, t_last_ns;
    uint64_t first_bytes, last_bytes, last_blocks;
    bool steady;
    double bytes_per_s; /* (last - first) / (t_last - t_first); 0 unless steady */
};

/* The growth of every site of p's samples, steady ones first (fastest
 * first), then by last bytes; *n sites; the caller frees the array. */
struct growth_site *siteviews_growth(const struct lr_process *p, size_t *n);

/* What a steadily growing site would fill, from p's last timeline sample:
 * the slot's free blocks (bytes) and the device's free RAM; 0 when
 * unknown.  Seconds to fill each at the site's rate (negative: unknown). */
struct growth_room {
    uint64_t slot_free_bytes, ram_free_bytes;
    double slot_fill_s, ram_fill_s;
};
void siteviews_room(const struct lr_process *p, const struct growth_site *g, struct growth_room *out);
/* A site's rate in whole bytes a second, rounded; a rate past 2^64 (a
 * damaged log's nanosecond between samples) reads as UINT64_MAX. */
uint64_t siteviews_rate(const struct growth_site *g);

/* A time to fill as text into buf ("3.2 s", "51 min", "2 h 5 min", "4
 * days"); returns buf. */
const char *siteviews_duration_text(char *buf, size_t cap, double s);

/* Text: the growth figures, the peak view, the pinning sites (nothing
 * for a process without those records). */
void siteviews_text(FILE *out, struct symbolizer *sym, const struct lr_process *p);

/* JSON: `, "growth": ..., "peak": ..., "pinning": ...` (null when absent). */
void siteviews_json(FILE *out, struct symbolizer *sym, const struct lr_process *p);

/* What `--format folded` folds (`--folded-of`). */
enum siteviews_folded {
    SITEVIEWS_FOLD_FAILURES, /* failures per stack (the default) */
    SITEVIEWS_FOLD_LEAKS,    /* bytes never freed per stack, suppressions applied */
    SITEVIEWS_FOLD_PEAK,     /* bytes live at the peak per stack */
    SITEVIEWS_FOLD_PINNING,  /* bytes pinned per stack */
};

/* The peak view's or the pinning sites' folded lines of p. */
void siteviews_folded(FILE *out, struct symbolizer *sym, const struct lr_process *p, enum siteviews_folded which);

#endif
