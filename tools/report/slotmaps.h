/*
 * slotmaps.h - slot maps in text and JSON: a process's maps at its
 * failures, peak and exit in `cebox report`, and the live map of
 * `cebox map` and `cebox status`.
 *
 * Owns: the text form of a map (64 blocks a line with the offset of the
 * first, repeated lines collapsed as hexdump does, the legend) and the JSON
 * member "maps" of a process ({"t", "cause", "seq", "slot_map"}; names
 * stable, fields only ever added) and "sampled_maps", the maps cebox run
 * copied at its ticks ({"t", "cause": "sample", "blocks", "runs"}, the
 * cells run-length encoded: kept apart, so that "maps" stays as it was and
 * a long run of a 2 GB slot stays small).  A map's cells are logread.h's: each
 * reservation's first block a capital, its other blocks in lower case.
 */
#ifndef CEBOX_SLOTMAPS_H
#define CEBOX_SLOTMAPS_H

#include <stdint.h>
#include <stdio.h>

#include "report/logread.h"

/* The cells, 64 a line, each line indented and led by its offset. */
void slotmaps_print(FILE *out, const char *cells, uint64_t granularity);

/* The line that says what each character means. */
void slotmaps_legend(FILE *out, uint64_t granularity);

/* The maps that follow no failure (peak, exit, on demand), each with its
 * cause and time, and how many were sampled on the timeline; nothing when
 * there are none. */
void slotmaps_text(FILE *out, const struct lr_process *p);

/* `, "maps": [...]`: every map of the process, failures' included; then
 * `, "sampled_maps": [...]`. */
void slotmaps_json(FILE *out, const struct lr_process *p);

/* "at the peak", "at exit", ... for a cause (enum log_map_cause). */
const char *slotmaps_cause_text(unsigned cause);

#endif
