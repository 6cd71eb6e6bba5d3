/*
 * report.c - `cebox report`: the event logs of a run, read offline.
 *
 * Owns: finding the logs (a directory's cebox-PID.log files, or the files
 * named), grouping each process's failures by distinct stack, its leak
 * sites (--leaks) with the suppressions (the defaults for libc's and
 * ld.so's own blocks, and LeakSanitizer-style files), and the three
 * outputs: text for people, one JSON document, folded stacks for
 * flamegraph.pl and speedscope.  Symbols come from symbolize.c; the exit
 * summary's text from the same function the preload library prints it
 * with (run_summary_format).
 *
 * Exit status: 0; 1 when some log was truncated or corrupt (everything
 * intact before the damage is still reported); 2 for bad usage or when no
 * log could be read.
 */
#include "report/report.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "report/logread.h"
#include "memstate.h"
#include "record/leaks.h"
#include "record/runsummary.h"
#include "report/symbolize.h"

enum format { FORMAT_TEXT, FORMAT_JSON, FORMAT_FOLDED };

#define MAX_FRAMES 16 /* source frames per address (inlining) */

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

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size);
    if (p == NULL) {
        fprintf(stderr, "cebox report: out of memory\n");
        exit(2);
    }
    return p;
}

static const char *base_name(const char *path)
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

/* The frames of stack `id` of p (none for 0 or an unknown id), each
 * address expanded into its inline levels. */
static struct frame *symbolize_stack(struct symbolizer *sym, const struct lr_process *p, uint32_t id,
                                     size_t *nframes)
{
    const struct lr_stack *st = id != 0 ? logread_stack(p, id) : NULL;
    *nframes = 0;
    if (st == NULL) {
        return NULL;
    }
    struct frame *frames = xcalloc((size_t)st->depth * MAX_FRAMES, sizeof *frames);
    for (uint32_t i = 0; i < st->depth; i++) {
        const struct lr_module *m = st->module[i] >= 0 ? &p->modules[st->module[i]] : NULL;
        struct sym_frame sf[MAX_FRAMES];
        size_t n = m != NULL ? symbolize(sym, m, st->ips[i], true, sf, MAX_FRAMES) : 1;
        if (m == NULL) {
            memset(&sf[0], 0, sizeof sf[0]);
        }
        for (size_t k = 0; k < n; k++) {
            frames[(*nframes)++] = (struct frame){
                .address = st->ips[i],
                .offset = m != NULL ? st->ips[i] - m->bias : st->ips[i],
                .module = m != NULL ? base_name(m->path) : NULL,
                .function = sf[k].function,
                .file = sf[k].file,
                .line = sf[k].line,
                .inlined = sf[k].inlined,
            };
        }
    }
    return frames;
}

static void symbolize_site(struct symbolizer *sym, const struct lr_process *p, struct site *s)
{
    s->frames = symbolize_stack(sym, p, s->stack_id, &s->nframes);
}

/* The sites of p, most frequent first, symbolized. */
static struct site *group(struct symbolizer *sym, const struct lr_process *p, size_t *nsites)
{
    struct site *sites = xcalloc(p->nfailures, sizeof *sites);
    size_t n = 0;
    uint32_t max_id = 0;
    for (size_t i = 0; i < p->nfailures; i++) {
        max_id = p->failures[i].stack_id > max_id ? p->failures[i].stack_id : max_id;
    }
    size_t *site_of = xcalloc((size_t)max_id + 1, sizeof *site_of); /* stack id -> site + 1 */
    for (size_t i = 0; i < p->nfailures; i++) {
        const struct lr_failure *f = &p->failures[i];
        struct site *s = site_of[f->stack_id] != 0 ? &sites[site_of[f->stack_id] - 1] : NULL;
        if (s == NULL) {
            site_of[f->stack_id] = n + 1;
            s = &sites[n++];
            s->stack_id = f->stack_id;
            s->first = i;
            s->size_min = f->size;
        }
        s->count++;
        s->size_min = f->size < s->size_min ? f->size : s->size_min;
        s->size_max = f->size > s->size_max ? f->size : s->size_max;
        s->reasons[f->reason < LOG_REASON_COUNT ? f->reason : LOG_REASON_OTHER]++;
        s->apis[f->api < LOG_API_COUNT ? f->api : 0]++;
        s->states[f->state < MEMSTATE_COUNT ? f->state : MEMSTATE_COUNT]++;
    }
    free(site_of);
    qsort(sites, n, sizeof *sites, by_count);
    for (size_t k = 0; k < n; k++) {
        symbolize_site(sym, p, &sites[k]);
    }
    *nsites = n;
    return sites;
}

static void free_sites(struct site *sites, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(sites[k].frames);
    }
    free(sites);
}

static const char *api_text(unsigned api)
{
    return api == LOG_API_MALLOC ? "malloc family" : api == LOG_API_MMAP ? "mmap family" : log_api_name(api);
}

static const char *state_name(size_t i)
{
    return i < MEMSTATE_COUNT ? memstate_name((enum memstate)i) : "?";
}

/* ---- leaks (--leaks) ---- */

/* One LEAK record of a process, symbolized, and whether a suppression
 * matched it. */
struct leak_view {
    const struct lr_leak *leak;
    struct frame *frames;
    size_t nframes;
    bool suppressed;
};

struct leaks {
    struct leak_view *v; /* by bytes, most first */
    size_t n;
    uint64_t bytes[LEAK_KINDS], blocks[LEAK_KINDS]; /* not suppressed */
    uint64_t suppressed[2];                         /* bytes, blocks */
    struct frame *crash;                            /* the crash stack */
    size_t ncrash;
};

/* Suppressions in LeakSanitizer's form: `leak:PATTERN`, matched against
 * every frame's function, source file and module; `*` matches anything,
 * `^` and `$` anchor the pattern, which otherwise matches anywhere. */
static struct {
    char **patterns;
    size_t n;
} supp;

/* What libc and ld.so allocate for themselves and keep on purpose: stdio
 * buffers, locale data, the loader's objects and dynamic TLS (a site
 * whose innermost frame is in ld.so; see is_loader_site). */
static const char *const default_suppressions[] = {
    "^_IO_file_doallocate$", "^setlocale$", "^_nl_", "^newlocale$", "^__gconv_open$", "^tzset$",
    "^__tzfile_read$", "^_dl_",
};

static void free_suppressions(void)
{
    for (size_t i = 0; i < supp.n; i++) {
        free(supp.patterns[i]);
    }
    free(supp.patterns);
    supp.patterns = NULL;
    supp.n = 0;
}

static void add_suppression(const char *pattern)
{
    char **grown = realloc(supp.patterns, (supp.n + 1) * sizeof *grown);
    char *copy = strdup(pattern);
    if (grown == NULL || copy == NULL) {
        fprintf(stderr, "cebox report: out of memory\n");
        exit(2);
    }
    supp.patterns = grown;
    supp.patterns[supp.n++] = copy;
}

/* Reads a suppressions file: `leak:PATTERN` lines, `#` comments, blank
 * lines; other kinds of LeakSanitizer's (none exist) are refused.  0, or
 * -1 with a message printed. */
static int read_suppressions(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cebox report: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, status = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *t = line + strspn(line, " \t");
        if (*t == '\0' || *t == '#') {
            continue;
        }
        if (strncmp(t, "leak:", 5) != 0 || t[5] == '\0') {
            fprintf(stderr, "cebox report: %s:%d: not a suppression (leak:PATTERN): %s\n", path, lineno, t);
            status = -1;
            continue;
        }
        add_suppression(t + 5);
    }
    fclose(f);
    return status;
}

/* Does text match an LSan pattern (unanchored unless ^ or $)? */
static bool pattern_matches(const char *pattern, const char *text)
{
    if (text == NULL) {
        return false;
    }
    char glob[1100];
    size_t len = strlen(pattern);
    bool head = pattern[0] == '^', tail = len > 0 && pattern[len - 1] == '$';
    snprintf(glob, sizeof glob, "%s%.*s%s", head ? "" : "*", (int)(len - head - tail), pattern + head,
             tail ? "" : "*");
    return fnmatch(glob, text, 0) == 0;
}

static bool frames_match(const char *pattern, const struct frame *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct frame *f = &frames[i];
        if (pattern_matches(pattern, f->function) || pattern_matches(pattern, f->file) ||
            pattern_matches(pattern, f->module)) {
            return true;
        }
    }
    return false;
}

/* Was the block allocated by the dynamic loader itself (its innermost
 * frame in ld.so: link maps, dynamic TLS and thread vectors)? */
static bool is_loader_site(const struct leak_view *v)
{
    const char *m = v->nframes != 0 ? v->frames[0].module : NULL;
    return m != NULL && strncmp(m, "ld-", 3) == 0;
}

static bool is_suppressed(const struct leak_view *v)
{
    if (is_loader_site(v)) {
        return true;
    }
    for (size_t i = 0; i < sizeof default_suppressions / sizeof default_suppressions[0]; i++) {
        if (v->nframes != 0 && pattern_matches(default_suppressions[i], v->frames[0].function)) {
            return true; /* the defaults name the innermost function only */
        }
    }
    for (size_t i = 0; i < supp.n; i++) {
        if (frames_match(supp.patterns[i], v->frames, v->nframes)) {
            return true;
        }
    }
    return false;
}

static int by_bytes(const void *a, const void *b)
{
    const struct leak_view *x = a, *y = b;
    if (x->leak->bytes != y->leak->bytes) {
        return x->leak->bytes > y->leak->bytes ? -1 : 1;
    }
    return x->leak->kind < y->leak->kind ? -1 : x->leak->kind > y->leak->kind;
}

/* The leak sites of p, symbolized, suppressions applied, most bytes first. */
static void group_leaks(struct symbolizer *sym, const struct lr_process *p, struct leaks *lk)
{
    memset(lk, 0, sizeof *lk);
    lk->v = xcalloc(p->nleaks, sizeof *lk->v);
    for (size_t i = 0; i < p->nleaks; i++) {
        struct leak_view *v = &lk->v[lk->n++];
        v->leak = &p->leaks[i];
        v->frames = symbolize_stack(sym, p, v->leak->stack_id, &v->nframes);
        v->suppressed = is_suppressed(v);
        unsigned k = v->leak->kind < LEAK_KINDS ? v->leak->kind : LEAK_DEFINITE;
        if (v->suppressed) {
            lk->suppressed[0] += v->leak->bytes;
            lk->suppressed[1] += v->leak->blocks;
        } else {
            lk->bytes[k] += v->leak->bytes;
            lk->blocks[k] += v->leak->blocks;
        }
    }
    if (lk->n > 1) {
        qsort(lk->v, lk->n, sizeof *lk->v, by_bytes);
    }
    if (p->has_end && p->end.crash_stack_id != 0) {
        lk->crash = symbolize_stack(sym, p, p->end.crash_stack_id, &lk->ncrash);
    }
}

static void free_leaks(struct leaks *lk)
{
    for (size_t i = 0; i < lk->n; i++) {
        free(lk->v[i].frames);
    }
    free(lk->v);
    free(lk->crash);
}

/* Has p unsuppressed definitely or indirectly lost bytes? */
static bool has_lost_bytes(const struct leaks *lk)
{
    return lk->bytes[LEAK_DEFINITE] + lk->bytes[LEAK_INDIRECT] != 0;
}

/* "function at file:line" or "module+0xoff" of a site's innermost frame. */
static const char *frame_text(char *buf, size_t cap, const struct frame *f)
{
    if (f->function != NULL && f->file != NULL) {
        snprintf(buf, cap, "%s at %s:%d", f->function, base_name(f->file), f->line);
    } else if (f->function != NULL) {
        snprintf(buf, cap, "%s (%s+0x%" PRIx64 ")", f->function, f->module ? f->module : "?", f->offset);
    } else {
        snprintf(buf, cap, "%s+0x%" PRIx64, f->module ? f->module : "?", f->offset);
    }
    return buf;
}

/* ---- text ---- */

static void text_frame(FILE *out, size_t n, const struct frame *f)
{
    fprintf(out, "    #%-2zu 0x%012" PRIx64 "  ", n, f->address);
    if (f->function != NULL && f->file != NULL) {
        fprintf(out, "%s at %s:%d", f->function, f->file, f->line);
    } else if (f->function != NULL) {
        fprintf(out, "%s (%s+0x%" PRIx64 ")", f->function, f->module ? f->module : "?", f->offset);
    } else if (f->module != NULL) {
        fprintf(out, "%s+0x%" PRIx64, f->module, f->offset);
    } else {
        fprintf(out, "? (in no known module)");
    }
    fprintf(out, "%s\n", f->inlined ? " (inlined)" : "");
}

static void text_map(FILE *out, const struct lr_process *p, const struct lr_failure *f)
{
    char a[32], b[32];
    fprintf(out, "  slot at the first failure (%.3f s after start, thread %u): %u of %u blocks free, "
                 "largest free run %u; %s committed; %s RAM free\n",
            (double)f->time_ns / 1e9, (unsigned)f->tid, (unsigned)f->free_blocks, (unsigned)f->blocks,
            (unsigned)f->largest_free_run, run_summary_bytes(a, sizeof a, f->committed_bytes), run_summary_bytes(b, sizeof b, f->ram_free_bytes));
    if (f->map != NULL) {
        /* 64 blocks a line; repeated lines (a 2 GB ce6 box is mostly
         * free) collapse into one "*" line, as hexdump does. */
        size_t n = strlen(f->map), repeats = 0;
        for (size_t i = 0; i < n; i += 64) {
            size_t len = n - i < 64 ? n - i : 64;
            if (i >= 64 && n - i >= 64 && memcmp(f->map + i, f->map + i - 64, 64) == 0) {
                repeats++;
                continue;
            }
            if (repeats != 0) {
                fprintf(out, "    *         (%zu more line%s like the one above)\n", repeats, repeats == 1 ? "" : "s");
                repeats = 0;
            }
            fprintf(out, "    %08" PRIx64 "  %.*s\n", (uint64_t)i * p->granularity, (int)len, f->map + i);
        }
        if (repeats != 0) {
            fprintf(out, "    *         (%zu more line%s like the one above)\n", repeats, repeats == 1 ? "" : "s");
        }
    }
    if (f->lma_bytes != 0 && p->granularity != 0) {
        uint64_t blocks = f->lma_bytes / p->granularity;
        fprintf(out, "    LMA       ");
        for (uint64_t i = 0; i < blocks && i < 256; i++) {
            fputc('A', out);
        }
        fprintf(out, "%s (Large Memory Area, outside the slot: %s)\n", blocks > 256 ? "..." : "",
                run_summary_bytes(a, sizeof a, f->lma_bytes));
    }
}

/* How p ended, and its leaks (--leaks): the summary's lines, then each
 * site not suppressed, most bytes first. */
static void text_ending(FILE *out, const struct lr_process *p, const struct leaks *lk)
{
    char buf[4096];
    size_t len = 0;
    buf[0] = '\0';
    if (p->has_end && (p->end.flags & LOG_END_LEAKS)) {
        char tops[LEAK_KINDS][512];
        const char *top[LEAK_KINDS] = {NULL};
        for (size_t i = lk->n; i-- > 0;) { /* the first (most bytes) of each kind wins */
            const struct leak_view *v = &lk->v[i];
            if (!v->suppressed && v->nframes != 0 && v->leak->kind < LEAK_KINDS) {
                top[v->leak->kind] = frame_text(tops[v->leak->kind], sizeof tops[0], &v->frames[0]);
            }
        }
        len = run_summary_leaks(lk->bytes, lk->blocks, top, lk->suppressed, buf, len, sizeof buf);
        if (lk->blocks[0] + lk->blocks[1] + lk->blocks[2] + lk->blocks[3] == 0) {
            len += (size_t)snprintf(buf + len, sizeof buf - len, "cebox:   leaks: none\n");
        }
    }
    if (p->has_end) {
        len = run_summary_ending(p->end.how, p->end.value, p->end.fault_addr, buf, len, sizeof buf);
    }
    fputs(buf, out);
    if (lk->ncrash != 0) {
        fprintf(out, "crash stack:\n");
        for (size_t i = 0; i < lk->ncrash; i++) {
            text_frame(out, i, &lk->crash[i]);
        }
    }
    if (p->has_end && (p->end.flags & LOG_END_UNLOCKED)) {
        fprintf(out, "(the leak table was read without its lock: the signal interrupted its owner)\n");
    }
    if (p->has_end && p->end.untracked != 0) {
        fprintf(out, "(%" PRIu64 " blocks could not be tracked: no bookkeeping memory)\n", p->end.untracked);
    }
    size_t shown = 0;
    for (size_t i = 0; i < lk->n; i++) {
        const struct leak_view *v = &lk->v[i];
        if (v->suppressed) {
            continue;
        }
        char a[32], b[32];
        fprintf(out, "\nleak %zu: %s, %s in %" PRIu64 " block%s (charged %s)\n", ++shown,
                leaks_kind_text(v->leak->kind), run_summary_bytes(a, sizeof a, v->leak->bytes), v->leak->blocks,
                v->leak->blocks == 1 ? "" : "s", run_summary_bytes(b, sizeof b, v->leak->charged));
        if (v->nframes == 0) {
            fprintf(out, "    (no stack recorded)\n");
        }
        for (size_t k = 0; k < v->nframes; k++) {
            text_frame(out, k, &v->frames[k]);
        }
    }
    if (shown != 0) {
        fputc('\n', out);
    }
}

static void text_process(FILE *out, const struct lr_log *log, const struct lr_process *p, struct site *sites,
                         size_t nsites, const struct leaks *lk)
{
    char when[64] = "?";
    time_t t = (time_t)(p->start_real_ns / 1000000000u);
    struct tm tm;
    if (localtime_r(&t, &tm) != NULL) {
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    }
    char command[512];
    snprintf(command, sizeof command, "%s", p->command);
    for (char *c = command; *c != '\0'; c++) {
        *c = (*c == '\n' || *c == '\t') ? ' ' : *c; /* one line per process */
    }
    fprintf(out, "== pid %u: %s (profile %s, started %s%s)\n   log %s\n", (unsigned)p->pid, command, p->profile,
            when, (p->flags & 1) ? ", forked" : "", log->path);
    if (p->has_summary) {
        char buf[4096];
        run_summary_format(&p->summary, RUN_SUMMARY_NO_HINT, NULL, buf, sizeof buf);
        fputs(buf, out);
    } else {
        fprintf(out, "(no exit summary: the process called _exit, exec'd another program, was killed by "
                     "SIGKILL, or was killed or crashed under an older cebox)\n");
    }
    text_ending(out, p, lk);
    if (p->nfailures == 0) {
        fprintf(out, "no failed allocations recorded\n\n");
        return;
    }
    fprintf(out, "%zu failed allocation%s recorded at %zu site%s (distinct stacks), most frequent first:\n",
            p->nfailures, p->nfailures == 1 ? "" : "s", nsites, nsites == 1 ? "" : "s");
    for (size_t k = 0; k < nsites; k++) {
        const struct site *s = &sites[k];
        char a[32];
        fprintf(out, "\nsite %zu: %zu failure%s", k + 1, s->count, s->count == 1 ? "" : "s");
        for (unsigned i = 0; i < LOG_API_COUNT; i++) {
            if (s->apis[i] != 0) {
                fprintf(out, ", %s", api_text(i));
            }
        }
        if (s->size_min == s->size_max) {
            /* The exact count too, when the short form rounds it. */
            const char *text = run_summary_bytes(a, sizeof a, s->size_min);
            if (strstr(text, " bytes") != NULL) {
                fprintf(out, ", size %s", text);
            } else {
                fprintf(out, ", size %s (%" PRIu64 " bytes)", text, s->size_min);
            }
        } else {
            char b[32];
            fprintf(out, ", sizes %s to %s", run_summary_bytes(a, sizeof a, s->size_min), run_summary_bytes(b, sizeof b, s->size_max));
        }
        fprintf(out, "\n  reason:");
        const char *sep = " ";
        for (unsigned i = 0; i < LOG_REASON_COUNT; i++) {
            if (s->reasons[i] != 0) {
                fprintf(out, "%s%s (%zu)", sep, log_reason_text(i), s->reasons[i]);
                sep = ", ";
            }
        }
        fprintf(out, "; memory state:");
        sep = " ";
        for (size_t i = 0; i <= MEMSTATE_COUNT; i++) {
            if (s->states[i] != 0) {
                fprintf(out, "%s%s (%zu)", sep, state_name(i), s->states[i]);
                sep = ", ";
            }
        }
        fprintf(out, "\n");
        if (s->nframes == 0) {
            fprintf(out, "    (no stack recorded)\n");
        }
        for (size_t i = 0; i < s->nframes; i++) {
            text_frame(out, i, &s->frames[i]);
        }
        text_map(out, p, &p->failures[s->first]);
    }
    fprintf(out, "\n(slot map: one character per %" PRIu32 " KB block: - block 0, . free, R reserved, "
                 "C committed, H heap region, L large heap item)\n\n",
            p->granularity / 1024);
}

/* ---- JSON ---- */

static void json_str(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        switch (*c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (*c < 0x20) {
                fprintf(out, "\\u%04x", *c);
            } else {
                fputc(*c, out);
            }
        }
    }
    fputc('"', out);
}

static void json_summary(FILE *out, const struct lr_process *p)
{
    if (!p->has_summary) {
        fputs("null", out);
        return;
    }
    const struct run_summary *s = &p->summary;
    char text[4096];
    run_summary_format(s, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    fprintf(out, "{\"failed\": %" PRIu64 ", \"failures\": {", run_summary_failures(s));
    for (unsigned i = 0; i < LOG_API_COUNT; i++) {
        fprintf(out, "%s\"%s\": %" PRIu64, i ? ", " : "", log_api_name(i), s->failures[i]);
    }
    fprintf(out,
            "}, \"slot_exhausted\": %" PRIu64 ", \"fragmented\": %" PRIu64 ", \"ram\": %" PRIu64
            ", \"state_cap\": %" PRIu64 ", \"blocks\": %u, \"peak_reserved_blocks\": %u, \"peak_committed_bytes\": %" PRIu64
            ", \"heap_peak_live_bytes\": %" PRIu64 ", \"heap_peak_live_blocks\": %" PRIu64
            ", \"heap_peak_committed_bytes\": %" PRIu64 ", \"bad_frees\": %" PRIu64 ", \"foreign_frees\": %" PRIu64
            ", \"outside_peak_bytes\": %" PRIu64 ", \"libc_malloc_bytes\": %" PRIu64 ", \"unrecorded_failures\": %" PRIu64 ", \"heap_live_bytes\": %" PRIu64
            ", \"heap_live_blocks\": %" PRIu64 ", \"text\": ",
            s->fail_exhausted, s->fail_fragmented, s->fail_ram, s->fail_cap, (unsigned)s->blocks,
            (unsigned)s->peak_reserved_blocks, s->peak_committed_pages * s->page_size, s->heap_peak_live_bytes,
            s->heap_peak_live_blocks, s->heap_peak_committed_bytes, s->bad_frees, s->foreign_frees, s->outside_peak,
            s->libc_malloc_bytes, s->unrecorded_failures, s->heap_live_bytes, s->heap_live_blocks);
    json_str(out, text);
    fputc('}', out);
}

static void json_frames(FILE *out, const struct frame *frames, size_t nframes)
{
    fputs("[", out);
    for (size_t i = 0; i < nframes; i++) {
        const struct frame *fr = &frames[i];
        fprintf(out, "%s\n      {\"address\": %" PRIu64 ", \"module\": ", i ? "," : "", fr->address);
        json_str(out, fr->module);
        fprintf(out, ", \"offset\": %" PRIu64 ", \"function\": ", fr->offset);
        json_str(out, fr->function);
        fputs(", \"file\": ", out);
        json_str(out, fr->file);
        if (fr->file != NULL) {
            fprintf(out, ", \"line\": %d", fr->line);
        } else {
            fputs(", \"line\": null", out);
        }
        fprintf(out, ", \"inlined\": %s}", fr->inlined ? "true" : "false");
    }
    fputs("]", out);
}

static void json_total(FILE *out, const char *name, uint64_t bytes, uint64_t blocks, bool last)
{
    fprintf(out, "\"%s\": {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 "}%s", name, bytes, blocks,
            last ? "" : ", ");
}

/* exit, crash, leaks and leak_totals of a process. */
static void json_leaks(FILE *out, const struct lr_process *p, const struct leaks *lk)
{
    fputs(", \"exit\": ", out);
    if (!p->has_end || p->end.how == LOG_END_UNKNOWN) {
        fputs("null", out);
    } else if (p->end.how == LOG_END_EXIT) {
        fprintf(out, "{\"code\": %d}", p->end.value);
    } else {
        fprintf(out, "{\"signal\": %d", p->end.value);
        if (lk->ncrash != 0 || p->end.fault_addr != 0) {
            fprintf(out, ", \"fault_address\": %" PRIu64 ", \"stack\": ", p->end.fault_addr);
            json_frames(out, lk->crash, lk->ncrash);
        }
        fputs("}", out);
    }
    fputs(", \"leaks\": ", out);
    if (!p->has_end || !(p->end.flags & LOG_END_LEAKS)) {
        fputs("null, \"leak_totals\": null", out);
        return;
    }
    fputs("[", out);
    const char *sep = "";
    for (size_t i = 0; i < lk->n; i++) {
        const struct leak_view *v = &lk->v[i];
        if (v->suppressed) {
            continue;
        }
        fprintf(out, "%s\n    {\"kind\": \"%s\", \"bytes\": %" PRIu64 ", \"charged_bytes\": %" PRIu64
                     ", \"blocks\": %" PRIu64 ", \"stack\": ",
                sep, leaks_kind_key(v->leak->kind), v->leak->bytes, v->leak->charged, v->leak->blocks);
        json_frames(out, v->frames, v->nframes);
        fputs("}", out);
        sep = ",";
    }
    fputs("], \"leak_totals\": {", out);
    for (unsigned k = 0; k < LEAK_KINDS; k++) {
        json_total(out, leaks_kind_key(k), lk->bytes[k], lk->blocks[k], false);
    }
    json_total(out, "suppressed", lk->suppressed[0], lk->suppressed[1], true);
    fputs("}", out);
}

static void json_process(FILE *out, const struct lr_log *log, const struct lr_process *p, struct site *sites,
                         size_t nsites, const struct leaks *leaks, bool first)
{
    fprintf(out, "%s\n  {\"pid\": %u, \"ppid\": %u, \"command\": ", first ? "" : ",", (unsigned)p->pid,
            (unsigned)p->ppid);
    json_str(out, p->command);
    fputs(", \"profile\": ", out);
    json_str(out, p->profile);
    fputs(", \"log\": ", out);
    json_str(out, log->path);
    fprintf(out, ", \"forked\": %s, \"summary\": ", (p->flags & 1) ? "true" : "false");
    json_summary(out, p);
    fputs(", \"oom\": [", out);
    for (size_t k = 0; k < nsites; k++) {
        const struct site *s = &sites[k];
        const struct lr_failure *f = &p->failures[s->first];
        fprintf(out, "%s\n    {\"count\": %zu, \"reasons\": [", k ? "," : "", s->count);
        const char *sep = "";
        for (unsigned i = 0; i < LOG_REASON_COUNT; i++) {
            if (s->reasons[i] != 0) {
                fprintf(out, "%s\"%s\"", sep, log_reason_key(i));
                sep = ", ";
            }
        }
        fputs("], \"api\": \"", out);
        sep = "";
        for (unsigned i = 0; i < LOG_API_COUNT; i++) {
            if (s->apis[i] != 0) {
                fprintf(out, "%s%s", sep, log_api_name(i));
                sep = ",";
            }
        }
        fprintf(out, "\", \"size_min\": %" PRIu64 ", \"size_max\": %" PRIu64 ", \"states\": [", s->size_min,
                s->size_max);
        sep = "";
        for (size_t i = 0; i <= MEMSTATE_COUNT; i++) {
            if (s->states[i] != 0) {
                fprintf(out, "%s\"%s\"", sep, state_name(i));
                sep = ", ";
            }
        }
        fprintf(out,
                "], \"first\": {\"seconds\": %.6f, \"thread\": %u, \"free_blocks\": %u, \"largest_free_run\": %u, "
                "\"blocks\": %u, \"committed_bytes\": %" PRIu64 ", \"ram_free_bytes\": %" PRIu64
                ", \"lma_bytes\": %" PRIu64 ", \"slot_map\": ",
                (double)f->time_ns / 1e9, (unsigned)f->tid, (unsigned)f->free_blocks, (unsigned)f->largest_free_run,
                (unsigned)f->blocks, f->committed_bytes, f->ram_free_bytes, f->lma_bytes);
        json_str(out, f->map);
        fputs("}, \"stack\": ", out);
        json_frames(out, s->frames, s->nframes);
        fputs("}", out);
    }
    fputs("]", out);
    json_leaks(out, p, leaks);
    fputs("}", out);
}

/* ---- folded stacks ---- */

static void folded_name(FILE *out, const struct frame *f)
{
    char buf[512];
    if (f->function != NULL) {
        snprintf(buf, sizeof buf, "%s", f->function);
    } else if (f->module != NULL) {
        snprintf(buf, sizeof buf, "%s+0x%" PRIx64, f->module, f->offset);
    } else {
        snprintf(buf, sizeof buf, "0x%" PRIx64, f->address);
    }
    for (char *c = buf; *c != '\0'; c++) {
        *c = (*c == ';' || *c == '\n') ? ':' : *c; /* ';' separates frames */
    }
    fputs(buf, out);
}

static void folded_process(FILE *out, const struct site *sites, size_t nsites)
{
    for (size_t k = 0; k < nsites; k++) {
        const struct site *s = &sites[k];
        if (s->nframes == 0) {
            fputs("[no stack]", out);
        }
        for (size_t i = s->nframes; i-- > 0;) {
            folded_name(out, &s->frames[i]);
            if (i != 0) {
                fputc(';', out);
            }
        }
        fprintf(out, " %zu\n", s->count);
    }
}

/* ---- finding the logs ---- */

struct log_list {
    char **paths;
    size_t n;
};

static void add_path(struct log_list *l, const char *path)
{
    char **grown = realloc(l->paths, (l->n + 1) * sizeof *grown);
    char *copy = strdup(path);
    if (grown == NULL || copy == NULL) {
        fprintf(stderr, "cebox report: out of memory\n");
        exit(2);
    }
    l->paths = grown;
    l->paths[l->n++] = copy;
}

/* cebox-PID.log: the pid, or -1 for any other name. */
static long pid_in_log_name(const char *name)
{
    if (strncmp(name, "cebox-", 6) != 0) {
        return -1;
    }
    char *end;
    long pid = strtol(name + 6, &end, 10);
    return end != name + 6 && strcmp(end, ".log") == 0 && name[6] >= '0' && name[6] <= '9' ? pid : -1;
}

static int by_pid(const void *a, const void *b)
{
    long x = pid_in_log_name(base_name(*(char *const *)a)), y = pid_in_log_name(base_name(*(char *const *)b));
    return x < y ? -1 : x > y;
}

/* Adds the logs of a directory, by pid.  Returns how many. */
static int add_directory(struct log_list *l, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "cebox report: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    size_t before = l->n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (pid_in_log_name(e->d_name) >= 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            add_path(l, path);
        }
    }
    closedir(d);
    if (l->n > before) { /* qsort's array may not be NULL, even when empty */
        qsort(l->paths + before, l->n - before, sizeof *l->paths, by_pid);
    }
    return (int)(l->n - before);
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: cebox report [--format text|json|folded] [--suppressions FILE]... DIR|LOGFILE...\n"
               "Prints, per process of a run recorded with --out DIR, the exit summary and the failed\n"
               "allocations grouped by call stack (most frequent first), symbolized offline.\n"
               "  --format text    for people (default)\n"
               "  --format json    one JSON document\n"
               "  --format folded  folded stacks for flamegraph.pl and speedscope\n"
               "  --suppressions FILE  leak:PATTERN lines (LeakSanitizer's form): leak sites with a frame\n"
               "                   whose function, source file or module matches are counted as suppressed\n");
}

int report_main(int argc, char **argv)
{
    enum format format = FORMAT_TEXT;
    struct log_list logs = {NULL, 0};
    int status = 0;
    bool options = true;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (options && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            usage(stdout);
            return 0;
        }
        if (options && strcmp(a, "--") == 0) {
            options = false;
            continue;
        }
        if (options && (strcmp(a, "--suppressions") == 0 || strncmp(a, "--suppressions=", 15) == 0)) {
            const char *v = a[14] == '=' ? a + 15 : (i + 1 < argc ? argv[++i] : NULL);
            if (v == NULL || read_suppressions(v) != 0) {
                if (v == NULL) {
                    fprintf(stderr, "cebox report: --suppressions needs a FILE\n");
                }
                return 2;
            }
            continue;
        }
        if (options && (strcmp(a, "--format") == 0 || strncmp(a, "--format=", 9) == 0)) {
            const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (v != NULL && strcmp(v, "text") == 0) {
                format = FORMAT_TEXT;
            } else if (v != NULL && strcmp(v, "json") == 0) {
                format = FORMAT_JSON;
            } else if (v != NULL && strcmp(v, "folded") == 0) {
                format = FORMAT_FOLDED;
            } else {
                fprintf(stderr, "cebox report: --format '%s' is not valid; accepted: text, json or folded\n",
                        v != NULL ? v : "");
                return 2;
            }
            continue;
        }
        if (options && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "cebox report: unknown option '%s'; see 'cebox report --help'\n", a);
            return 2;
        }
        struct stat st;
        if (stat(a, &st) != 0) {
            fprintf(stderr, "cebox report: %s: %s\n", a, strerror(errno));
            status = 2;
        } else if (S_ISDIR(st.st_mode)) {
            int n = add_directory(&logs, a);
            if (n == 0) {
                fprintf(stderr, "cebox report: %s: no event logs (cebox-PID.log) here; record a run with "
                                "'cebox run --out %s PROGRAM'\n", a, a);
            }
            status = n <= 0 ? 2 : status;
        } else {
            add_path(&logs, a);
        }
    }
    if (logs.n == 0) {
        if (status == 0) {
            fprintf(stderr, "cebox report: no log given; usage: cebox report [--format text|json|folded] "
                            "DIR|LOGFILE...\n");
        }
        return 2;
    }

    struct symbolizer *sym = symbolizer_new();
    bool first = true, read_any = false;
    if (format == FORMAT_JSON) {
        printf("{\"processes\": [");
    }
    struct lr_log *all = xcalloc(logs.n, sizeof *all);
    for (size_t i = 0; i < logs.n; i++) {
        char err[512];
        if (logread_file(logs.paths[i], &all[i], err, sizeof err) != 0) {
            fprintf(stderr, "cebox report: %s\n", err);
            status = 2;
            continue;
        }
        read_any = true;
        for (size_t k = 0; k < all[i].nprocs; k++) {
            const struct lr_process *p = &all[i].procs[k];
            size_t nsites;
            struct site *sites = group(sym, p, &nsites);
            struct leaks lk;
            group_leaks(sym, p, &lk);
            switch (format) {
            case FORMAT_TEXT: text_process(stdout, &all[i], p, sites, nsites, &lk); break;
            case FORMAT_JSON: json_process(stdout, &all[i], p, sites, nsites, &lk, first); break;
            case FORMAT_FOLDED: folded_process(stdout, sites, nsites); break;
            }
            first = false;
            free_leaks(&lk);
            free_sites(sites, nsites);
        }
        if (all[i].damaged) {
            if (format == FORMAT_TEXT) {
                printf("(%s is damaged at offset %" PRIu64 ": what follows it is lost)\n\n", all[i].path,
                       all[i].damage_offset);
            }
            status = status == 0 ? 1 : status;
        }
    }
    if (format == FORMAT_JSON) {
        printf("\n], \"errors\": [");
        const char *sep = "";
        for (size_t i = 0; i < logs.n; i++) {
            if (all[i].damaged) {
                printf("%s\n  {\"file\": ", sep);
                json_str(stdout, all[i].path);
                printf(", \"offset\": %" PRIu64 ", \"message\": ", all[i].damage_offset);
                json_str(stdout, all[i].damage);
                printf("}");
                sep = ",";
            }
        }
        printf("]}\n");
    }
    fflush(stdout);
    /* Damage last, on stderr, where it is not lost in the report. */
    for (size_t i = 0; i < logs.n; i++) {
        if (all[i].damaged) {
            if (all[i].records == 0) {
                fprintf(stderr, "cebox report: %s: offset %" PRIu64 ": %s\n", all[i].path, all[i].damage_offset,
                        all[i].damage);
            } else {
                fprintf(stderr,
                        "cebox report: %s: offset %" PRIu64 ": %s; the %zu intact record%s before it %s reported\n",
                        all[i].path, all[i].damage_offset, all[i].damage, all[i].records,
                        all[i].records == 1 ? "" : "s", all[i].records == 1 ? "is" : "are");
            }
        }
        logread_free(&all[i]);
        free(logs.paths[i]);
    }
    symbolizer_warnings(sym, stderr);
    symbolizer_free(sym);
    free(all);
    free(logs.paths);
    free_suppressions();
    return read_any ? status : 2;
}

int report_leaks_found(const char *dir, const char *const *suppressions, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (read_suppressions(suppressions[i]) != 0) {
            free_suppressions();
            return -1;
        }
    }
    struct log_list logs = {NULL, 0};
    int found = add_directory(&logs, dir) < 0 ? -1 : 0;
    struct symbolizer *sym = symbolizer_new();
    for (size_t i = 0; i < logs.n; i++) {
        struct lr_log log;
        char err[512];
        if (logread_file(logs.paths[i], &log, err, sizeof err) != 0) {
            fprintf(stderr, "cebox: %s\n", err);
            found = found == 0 ? -1 : found;
        } else {
            for (size_t k = 0; k < log.nprocs; k++) {
                struct leaks lk;
                group_leaks(sym, &log.procs[k], &lk);
                found = has_lost_bytes(&lk) ? 1 : found;
                free_leaks(&lk);
            }
            logread_free(&log);
        }
        free(logs.paths[i]);
    }
    symbolizer_free(sym);
    free(logs.paths);
    free_suppressions();
    return found;
}
