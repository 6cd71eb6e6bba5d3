/*
 * timeline.h - a process's timeline in `cebox report`: the samples of its
 * slot, process heap and device RAM (log record 9), and its worst moment.
 *
 * Owns: the text (a compact table and one sparkline per measure) and the
 * JSON members "timeline" (each sample with the index of its sampled slot
 * map, "map") and "headroom" of a process (docs/LOG-FORMAT.md
 * lists their fields; keep them stable, other outputs chart them).
 */
#ifndef CEBOX_TIMELINE_H
#define CEBOX_TIMELINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report/logread.h"

/* The worst moment of a process: the smallest largest free run reached
 * (the target's own figure, or the samples'), when the samples first saw
 * it, and the peak of reserved blocks. */
struct timeline_headroom {
    bool known;          /* some sample exists */
    uint32_t min_largest_free_run_blocks;
    uint64_t min_at_ns;  /* since the log started; the first sample showing the minimum */
    uint32_t peak_reserved_blocks;
    uint32_t blocks;     /* of the slot */
};

void timeline_headroom(const struct lr_process *p, struct timeline_headroom *out);

/* The sampled map (p->tlmaps, record 13) in force at time t: the latest
 * at or before it (cebox run writes one only when the map changed, so
 * every sample after it until the next shares it).  Its index, or
 * TIMELINE_NO_MAP when none came before t. */
#define TIMELINE_NO_MAP SIZE_MAX
size_t timeline_map_at(const struct lr_process *p, uint64_t t);

/* Nothing when the process has no sample. */
void timeline_text(FILE *out, const struct lr_process *p);

/* `, "timeline": [...], "headroom": {...}` (headroom null without samples). */
void timeline_json(FILE *out, const struct lr_process *p);

#endif
