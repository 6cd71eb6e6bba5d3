/*
 * model.c - the report's model (model.h): a process's failures grouped by
 * stack into sites and symbolized, shared by every output format.
 *
 * Owns: the sites' frame arrays (freed by report_free_sites).  Failure
 * behaviour: out of memory ends the report with status 2, as everywhere in
 * `cebox report`.
 */
#include "report/model.h"

#include "record/runsummary.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_FRAMES 16 /* source frames per address held on the stack; longer inline chains use the heap */

void *report_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size);
    if (p == NULL) {
        fprintf(stderr, "cebox report: out of memory\n");
        exit(2);
    }
    return p;
}

const char *report_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* ---- grouping and symbolizing ---- */

static int by_count(const void *a, const void *b)
{
    const struct site *x = a, *y = b;
    if (x->count != y->count) {
        return x->count > y->count ? -1 : 1;
    }
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Room for `more` frames after the site's nframes. */
static void reserve_frames(struct site *s, size_t *cap, size_t more)
{
    if (s->nframes + more <= *cap) {
        return;
    }
    size_t want = *cap * 2 > s->nframes + more ? *cap * 2 : s->nframes + more;
    struct frame *grown = realloc(s->frames, want * sizeof *grown);
    if (grown == NULL) {
        fprintf(stderr, "cebox report: out of memory\n");
        exit(2);
    }
    s->frames = grown;
    *cap = want;
}

/* Appends the frames of address ip, in module m (NULL: none known), to
 * the site: its whole inline chain, innermost first (on the heap when
 * longer than the buffer). */
static void add_address(struct symbolizer *sym, const struct lr_module *m, uint64_t ip, bool is_return,
                        struct site *s, size_t *cap)
{
    struct sym_frame buf[CHAIN_FRAMES] = {{NULL, NULL, 0, false}}, *sf = buf;
    size_t n = m != NULL ? symbolize(sym, m, ip, is_return, buf, CHAIN_FRAMES) : 1;
    if (n > CHAIN_FRAMES) {
        sf = report_xcalloc(n, sizeof *sf);
        size_t again = symbolize(sym, m, ip, is_return, sf, n);
        n = again < n ? again : n;
    }
    reserve_frames(s, cap, n);
    for (size_t k = 0; k < n; k++) {
        s->frames[s->nframes++] = (struct frame){
            .address = ip,
            .offset = m != NULL ? ip - m->bias : ip,
            .module = m != NULL ? report_base_name(m->path) : NULL,
            .function = sf[k].function,
            .file = sf[k].file,
            .line = sf[k].line,
            .inlined = sf[k].inlined,
        };
    }
    if (sf != buf) {
        free(sf);
    }
}

/* fault: the innermost address is the faulting instruction, not a
 * return address (a crash stack). */
static void symbolize_site(struct symbolizer *sym, const struct lr_process *p, bool fault, struct site *s)
{
    const struct lr_stack *st = s->stack_id != 0 ? logread_stack(p, s->stack_id) : NULL;
    size_t cap = 0;
    for (uint32_t i = 0; st != NULL && i < st->depth; i++) {
        const struct lr_module *m = st->module[i] >= 0 ? &p->modules[st->module[i]] : NULL;
        add_address(sym, m, st->ips[i], !(fault && i == 0), s, &cap);
    }
}

static struct frame *symbolize_stack(struct symbolizer *sym, const struct lr_process *p, uint32_t id, bool fault,
                                     size_t *nframes)
{
    struct site s = {.stack_id = id};
    symbolize_site(sym, p, fault, &s);
    *nframes = s.nframes;
    return s.frames;
}

struct frame *report_symbolize_stack(struct symbolizer *sym, const struct lr_process *p, uint32_t id,
                                     size_t *nframes)
{
    return symbolize_stack(sym, p, id, false, nframes);
}

struct frame *report_symbolize_crash(struct symbolizer *sym, const struct lr_process *p, uint32_t id,
                                     size_t *nframes)
{
    return symbolize_stack(sym, p, id, true, nframes);
}

struct frame *report_symbolize_addresses(struct symbolizer *sym, const struct lr_module *mods, size_t nmods,
                                         const uint64_t *ips, size_t depth, size_t *nframes)
{
    struct site s = {.stack_id = 0};
    size_t cap = 0;
    for (size_t i = 0; i < depth; i++) {
        const struct lr_module *m = NULL;
        for (size_t k = 0; k < nmods && m == NULL; k++) {
            m = ips[i] >= mods[k].lo && ips[i] < mods[k].hi ? &mods[k] : NULL;
        }
        add_address(sym, m, ips[i], true, &s, &cap);
    }
    *nframes = s.nframes;
    return s.frames;
}

/* A failure by its stack id, for grouping by sorting. */
struct failure_ref {
    uint32_t stack_id;
    size_t index;
};

static int by_stack(const void *a, const void *b)
{
    const struct failure_ref *x = a, *y = b;
    if (x->stack_id != y->stack_id) {
        return x->stack_id < y->stack_id ? -1 : 1;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

static void site_count(struct site *s, const struct lr_failure *f)
{
    s->count++;
    s->size_min = f->size < s->size_min ? f->size : s->size_min;
    s->size_max = f->size > s->size_max ? f->size : s->size_max;
    s->reasons[f->reason < LOG_REASON_COUNT ? f->reason : LOG_REASON_OTHER]++;
    s->apis[f->api < LOG_API_COUNT ? f->api : 0]++;
    s->states[f->state < MEMSTATE_COUNT ? f->state : MEMSTATE_COUNT]++;
}

/* The sites of p, most frequent first, symbolized.  Failures are grouped
 * by sorting them on their stack id: the ids come from the file, and a
 * table indexed by id would be as large as the largest (4 G entries for a
 * corrupt one). */
struct site *report_group(struct symbolizer *sym, const struct lr_process *p, size_t *nsites)
{
    struct site *sites = report_xcalloc(p->nfailures, sizeof *sites);
    struct failure_ref *refs = report_xcalloc(p->nfailures, sizeof *refs);
    for (size_t i = 0; i < p->nfailures; i++) {
        refs[i] = (struct failure_ref){.stack_id = p->failures[i].stack_id, .index = i};
    }
    qsort(refs, p->nfailures, sizeof *refs, by_stack);
    size_t n = 0;
    for (size_t i = 0; i < p->nfailures; i++) {
        const struct lr_failure *f = &p->failures[refs[i].index];
        if (i == 0 || refs[i].stack_id != refs[i - 1].stack_id) {
            sites[n] = (struct site){.stack_id = f->stack_id, .first = refs[i].index, .size_min = f->size};
            n++;
        }
        site_count(&sites[n - 1], f);
    }
    free(refs);
    qsort(sites, n, sizeof *sites, by_count);
    for (size_t k = 0; k < n; k++) {
        symbolize_site(sym, p, false, &sites[k]);
    }
    *nsites = n;
    return sites;
}

void report_free_sites(struct site *sites, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(sites[k].frames);
    }
    free(sites);
}

const char *report_api_text(unsigned api)
{
    return api == LOG_API_MALLOC ? "malloc family" : api == LOG_API_MMAP ? "mmap family" : log_api_name(api);
}

const char *report_state_name(size_t i)
{
    return i < MEMSTATE_COUNT ? memstate_name((enum memstate)i) : "?";
}

const char *report_size_text(char *buf, size_t len, uint64_t min, uint64_t max)
{
    char a[32], b[32];
    if (min != max) {
        snprintf(buf, len, "sizes %s to %s", run_summary_bytes(a, sizeof a, min), run_summary_bytes(b, sizeof b, max));
        return buf;
    }
    /* The exact count too, when the short form rounds it. */
    const char *text = run_summary_bytes(a, sizeof a, min);
    if (strstr(text, " bytes") != NULL) {
        snprintf(buf, len, "size %s", text);
    } else {
        snprintf(buf, len, "size %s (%" PRIu64 " bytes)", text, min);
    }
    return buf;
}

/* Writes "(sep)text (count)" for each non-zero count. */
static void write_counts(FILE *out, const size_t *counts, size_t n, const char *(*name)(size_t))
{
    const char *sep = " ";
    for (size_t i = 0; i < n; i++) {
        if (counts[i] != 0) {
            fprintf(out, "%s%s (%zu)", sep, name(i), counts[i]);
            sep = ", ";
        }
    }
}

static const char *reason_name(size_t i)
{
    return log_reason_text((unsigned)i);
}

void report_write_causes(FILE *out, const struct site *s)
{
    fputs("reason:", out);
    write_counts(out, s->reasons, LOG_REASON_COUNT, reason_name);
    fputs("; memory state:", out);
    write_counts(out, s->states, MEMSTATE_COUNT + 1, report_state_name);
}
