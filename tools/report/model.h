/*
 * model.h - what `cebox report` shows of a process, whatever the format:
 * its failures grouped by distinct stack into sites, most frequent first,
 * each stack symbolized into source frames (tools/report/model.c).  The
 * writers (report.c: text, JSON, folded; html.c: HTML) only format it.
 *
 * Invariant: a site's frames are its stack's addresses, innermost first,
 * each expanded to its whole inline chain (several frames per address).
 */
#ifndef CEBOX_REPORT_MODEL_H
#define CEBOX_REPORT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memstate.h"
#include "report/logread.h"
#include "report/symbolize.h"

/* One displayed frame of a site's stack. */
struct frame {
    uint64_t address, offset;
    const char *module;   /* base name of the object, or NULL when unknown */
    const char *function; /* NULL when unknown */
    const char *file;
    int line;
    bool inlined;
};

/* The failures of one process that share a stack. */
struct site {
    uint32_t stack_id;
    size_t count, first; /* failures, index of the first */
    uint64_t size_min, size_max;
    size_t reasons[LOG_REASON_COUNT];
    size_t apis[LOG_API_COUNT];
    size_t states[MEMSTATE_COUNT + 1];
    struct frame *frames;
    size_t nframes;
};

/* The sites of p, most frequent first, symbolized; free with
 * report_free_sites. */
struct site *report_group(struct symbolizer *sym, const struct lr_process *p, size_t *nsites);
void report_free_sites(struct site *sites, size_t n);

/* The frames of stack `id` of p (none for 0 or an unknown id), each
 * address expanded into its whole inline chain; the caller frees them. */
struct frame *report_symbolize_stack(struct symbolizer *sym, const struct lr_process *p, uint32_t id,
                                     size_t *nframes);

/* The same for a crash stack, whose innermost address is the faulting
 * instruction itself (the others are return addresses). */
struct frame *report_symbolize_crash(struct symbolizer *sym, const struct lr_process *p, uint32_t id,
                                     size_t *nframes);

/* The frames of return addresses taken outside a log (a running
 * process's, for cebox status): each address's module is the one of mods
 * whose range holds it (none: module+offset stays unknown). */
struct frame *report_symbolize_addresses(struct symbolizer *sym, const struct lr_module *mods, size_t nmods,
                                         const uint64_t *ips, size_t depth, size_t *nframes);

/* calloc that never returns NULL: out of memory ends the report (exit 2). */
void *report_xcalloc(size_t n, size_t size);

const char *report_base_name(const char *path);
/* "malloc family", "mmap family", or the entry point's name. */
const char *report_api_text(unsigned api);
/* The memory state's name, "?" past the known ones (site.states' last slot). */
const char *report_state_name(size_t i);

/* "size 900.0 KB (921600 bytes)", or "sizes A to B" when they differ,
 * into buf; returns buf. */
const char *report_size_text(char *buf, size_t len, uint64_t min, uint64_t max);

/* "reason: slot exhausted (3), fragmentation (1); memory state: normal
 * (4)": the site's counts by reason, then by memory state (fixed text). */
void report_write_causes(FILE *out, const struct site *s);

#endif
