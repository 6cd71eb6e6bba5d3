/*
 * report.c - `cebox report`: the event logs of a run, read offline.
 *
 * Owns: finding the logs (a directory's cebox-PID.log files, or the files
 * named), grouping each process's failures by distinct stack, and the
 * three outputs: text for people, one JSON document, folded stacks for
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
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "report/logread.h"
#include "memstate.h"
#include "record/runsummary.h"
#include "report/symbolize.h"
#include "report/timeline.h"

enum format { FORMAT_TEXT, FORMAT_JSON, FORMAT_FOLDED };

#define CHAIN_FRAMES 16 /* source frames per address held on the stack; longer inline chains use the heap */

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

/* Appends the frames of the stack's address i to the site: its whole
 * inline chain, innermost first (on the heap when longer than the buffer). */
static void add_address(struct symbolizer *sym, const struct lr_process *p, const struct lr_stack *st, uint32_t i,
                        struct site *s, size_t *cap)
{
    const struct lr_module *m = st->module[i] >= 0 ? &p->modules[st->module[i]] : NULL;
    struct sym_frame buf[CHAIN_FRAMES] = {{NULL, NULL, 0, false}}, *sf = buf;
    size_t n = m != NULL ? symbolize(sym, m, st->ips[i], true, buf, CHAIN_FRAMES) : 1;
    if (n > CHAIN_FRAMES) {
        sf = xcalloc(n, sizeof *sf);
        size_t again = symbolize(sym, m, st->ips[i], true, sf, n);
        n = again < n ? again : n;
    }
    reserve_frames(s, cap, n);
    for (size_t k = 0; k < n; k++) {
        s->frames[s->nframes++] = (struct frame){
            .address = st->ips[i],
            .offset = m != NULL ? st->ips[i] - m->bias : st->ips[i],
            .module = m != NULL ? base_name(m->path) : NULL,
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

static void symbolize_site(struct symbolizer *sym, const struct lr_process *p, struct site *s)
{
    const struct lr_stack *st = s->stack_id != 0 ? logread_stack(p, s->stack_id) : NULL;
    size_t cap = 0;
    for (uint32_t i = 0; st != NULL && i < st->depth; i++) {
        add_address(sym, p, st, i, s, &cap);
    }
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
static struct site *group(struct symbolizer *sym, const struct lr_process *p, size_t *nsites)
{
    struct site *sites = xcalloc(p->nfailures, sizeof *sites);
    struct failure_ref *refs = xcalloc(p->nfailures, sizeof *refs);
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

static void text_process(FILE *out, const struct lr_log *log, const struct lr_process *p, struct site *sites,
                         size_t nsites)
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
        fprintf(out, "(no exit summary: the process was killed, crashed, called _exit or exec'd another "
                     "program)\n");
    }
    timeline_text(out, p);
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
            ", \"heap_live_blocks\": %" PRIu64 ", \"injected\": %" PRIu64 ", \"text\": ",
            s->fail_exhausted, s->fail_fragmented, s->fail_ram, s->fail_cap, (unsigned)s->blocks,
            (unsigned)s->peak_reserved_blocks, s->peak_committed_pages * s->page_size, s->heap_peak_live_bytes,
            s->heap_peak_live_blocks, s->heap_peak_committed_bytes, s->bad_frees, s->foreign_frees, s->outside_peak,
            s->libc_malloc_bytes, s->unrecorded_failures, s->heap_live_bytes, s->heap_live_blocks,
            s->fail_injected);
    json_str(out, text);
    fputc('}', out);
}

static void json_process(FILE *out, const struct lr_log *log, const struct lr_process *p, struct site *sites,
                         size_t nsites, bool first, size_t run)
{
    fprintf(out, "%s\n  {\"pid\": %u, \"ppid\": %u, \"run\": %zu, \"command\": ", first ? "" : ",",
            (unsigned)p->pid, (unsigned)p->ppid, run);
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
        fputs("}, \"stack\": [", out);
        for (size_t i = 0; i < s->nframes; i++) {
            const struct frame *fr = &s->frames[i];
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
        fputs("]}", out);
    }
    fputc(']', out);
    timeline_json(out, p);
    fputc('}', out);
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

/* ---- runs and filters ----
 *
 * The processes of one `cebox run` share its session: the CEBOX_SESSION
 * line of their header's settings (older logs have it too).  Processes
 * with none (LD_PRELOAD by hand, programs linked with libcebox) make one
 * group of their own. */

#define MAX_PIDS 64

struct filter {
    uint32_t pids[MAX_PIDS];
    size_t npids;
    bool failed_only;
};

static bool wanted(const struct filter *f, const struct lr_process *p)
{
    bool pid_ok = f->npids == 0;
    for (size_t i = 0; i < f->npids && !pid_ok; i++) {
        pid_ok = f->pids[i] == p->pid;
    }
    bool failed = p->nfailures != 0 || (p->has_summary && run_summary_failures(&p->summary) != 0);
    return pid_ok && (!f->failed_only || failed);
}

struct run {
    char session[256]; /* "" for processes outside cebox run */
    uint64_t start_ns; /* the earliest start of its processes */
    size_t procs, rank;
};

struct entry {
    const struct lr_log *log;
    const struct lr_process *p;
    struct run *run;
    size_t order; /* as read: logs by pid, processes in file order */
};

static void session_of(const struct lr_process *p, char *out, size_t len)
{
    static const char key[] = "CEBOX_SESSION=";
    out[0] = '\0';
    for (const char *at = p->settings; at != NULL && *at != '\0'; at = strchr(at, '\n'), at = at ? at + 1 : NULL) {
        if (strncmp(at, key, sizeof key - 1) == 0) {
            at += sizeof key - 1;
            size_t n = strcspn(at, "\t\n");
            if (!(n == 6 && strncmp(at, "(none)", 6) == 0)) {
                snprintf(out, len, "%.*s", (int)n, at);
            }
            return;
        }
    }
}

static int by_start(const void *a, const void *b)
{
    const struct run *x = *(const struct run *const *)a, *y = *(const struct run *const *)b;
    return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

static int by_run(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->run->rank != y->run->rank) {
        return x->run->rank < y->run->rank ? -1 : 1;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Every process of the logs, grouped by run (runs by start time); returns
 * how many and sets *nruns. */
static struct entry *group_runs(const struct lr_log *all, size_t nlogs, struct run **runs_out, size_t *nruns,
                                size_t *nentries)
{
    size_t n = 0;
    for (size_t i = 0; i < nlogs; i++) {
        n += all[i].nprocs;
    }
    struct entry *e = xcalloc(n, sizeof *e);
    struct run *runs = xcalloc(n, sizeof *runs);
    size_t k = 0, r = 0;
    for (size_t i = 0; i < nlogs; i++) {
        for (size_t j = 0; j < all[i].nprocs; j++, k++) {
            const struct lr_process *p = &all[i].procs[j];
            char session[sizeof runs->session];
            session_of(p, session, sizeof session);
            size_t at = 0;
            while (at < r && strcmp(runs[at].session, session) != 0) {
                at++;
            }
            if (at == r) {
                snprintf(runs[r].session, sizeof runs[r].session, "%s", session);
                runs[r++].start_ns = p->start_real_ns;
            }
            runs[at].start_ns = p->start_real_ns < runs[at].start_ns ? p->start_real_ns : runs[at].start_ns;
            runs[at].procs++;
            e[k] = (struct entry){.log = &all[i], .p = p, .run = &runs[at], .order = k};
        }
    }
    struct run **order = xcalloc(r, sizeof *order);
    for (size_t i = 0; i < r; i++) {
        order[i] = &runs[i];
    }
    if (r > 0) {
        qsort(order, r, sizeof *order, by_start);
    }
    for (size_t i = 0; i < r; i++) {
        order[i]->rank = i + 1;
    }
    free(order);
    if (n > 0) {
        qsort(e, n, sizeof *e, by_run);
    }
    *runs_out = runs;
    *nruns = r;
    *nentries = n;
    return e;
}

static void text_run(const struct run *run, size_t nruns)
{
    char when[64] = "?";
    time_t t = (time_t)(run->start_ns / 1000000000u);
    struct tm tm;
    if (localtime_r(&t, &tm) != NULL) {
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    }
    printf("=== run %zu of %zu: started %s, %zu process%s", run->rank, nruns, when, run->procs,
           run->procs == 1 ? "" : "es");
    if (run->session[0] != '\0') {
        printf(" (session %s)\n\n", run->session);
    } else {
        printf(" not started by cebox run\n\n");
    }
}

/* Prints the processes the filter keeps, run by run; returns how many. */
static size_t print_runs(const struct lr_log *all, size_t nlogs, const struct filter *f, enum format format,
                         const char *where, struct symbolizer *sym)
{
    struct run *runs;
    size_t nruns, n, shown = 0;
    struct entry *e = group_runs(all, nlogs, &runs, &nruns, &n);
    if (format == FORMAT_TEXT && nruns > 1) {
        printf("%zu runs in %s\n\n", nruns, where);
    }
    const struct run *last = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!wanted(f, e[i].p)) {
            continue;
        }
        if (format == FORMAT_TEXT && nruns > 1 && e[i].run != last) {
            text_run(e[i].run, nruns);
            last = e[i].run;
        }
        size_t nsites;
        struct site *sites = group(sym, e[i].p, &nsites);
        switch (format) {
        case FORMAT_TEXT: text_process(stdout, e[i].log, e[i].p, sites, nsites); break;
        case FORMAT_JSON: json_process(stdout, e[i].log, e[i].p, sites, nsites, shown == 0, e[i].run->rank); break;
        case FORMAT_FOLDED: folded_process(stdout, sites, nsites); break;
        }
        shown++;
        free_sites(sites, nsites);
    }
    if (format == FORMAT_JSON) {
        printf("\n], \"runs\": [");
        for (size_t rank = 1; rank <= nruns; rank++) {
            const struct run *r = runs;
            while (r->rank != rank) {
                r++;
            }
            printf("%s\n  {\"run\": %zu, \"start_real_ns\": %" PRIu64 ", \"processes\": %zu, \"session\": ",
                   rank > 1 ? "," : "", rank, r->start_ns, r->procs);
            json_str(stdout, r->session[0] != '\0' ? r->session : NULL);
            putchar('}');
        }
    }
    free(e);
    free(runs);
    return shown;
}

/* The text cebox run's shell writes with --out (cebox.session): each line
 * begins "cebox: ", where an event log begins with its magic. */
static bool is_session_log(const char *path)
{
    char head[8] = "";
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = '\0';
    return strncmp(head, "cebox: ", 7) == 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: cebox report [--format text|json|folded] [--pid N] [--failed-only] DIR|LOGFILE...\n"
               "Prints, per process of a run recorded with --out DIR, the exit summary and the failed\n"
               "allocations grouped by call stack (most frequent first), symbolized offline.\n\n"
               "Options of report:\n"
               "  --format text    for people (default)\n"
               "  --format json    one JSON document\n"
               "  --format folded  folded stacks for flamegraph.pl and speedscope\n"
               "  --pid N          only process N (repeatable)\n"
               "  --failed-only    only the processes with failed allocations\n"
               "  -h, --help       this help\n\n"
               "The processes of several runs into one DIR are grouped by run (\"N runs in DIR\").\n\n"
               "Example:\n"
               "  cebox run --out /tmp/run1 ./myprog && cebox report /tmp/run1\n");
}

int report_main(int argc, char **argv)
{
    enum format format = FORMAT_TEXT;
    struct log_list logs = {NULL, 0};
    struct filter f = {.npids = 0};
    const char *where = NULL; /* the directory read, for "N runs in DIR" */
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
        if (options && (strcmp(a, "--pid") == 0 || strncmp(a, "--pid=", 6) == 0)) {
            const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            char *end = NULL;
            unsigned long pid = v != NULL ? strtoul(v, &end, 10) : 0;
            if (v == NULL || *v < '0' || *v > '9' || *end != '\0' || pid > UINT32_MAX || f.npids == MAX_PIDS) {
                fprintf(stderr, "cebox report: --pid '%s' is not valid; accepted: a process id (at most %d "
                                "--pid)\n", v != NULL ? v : "", MAX_PIDS);
                return 2;
            }
            f.pids[f.npids++] = (uint32_t)pid;
            continue;
        }
        if (options && strcmp(a, "--failed-only") == 0) {
            f.failed_only = true;
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
            where = where == NULL ? a : "these logs";
            int n = add_directory(&logs, a);
            if (n == 0) {
                fprintf(stderr, "cebox report: %s: no event logs (cebox-PID.log) here; record a run with "
                                "'cebox run --out %s PROGRAM'\n", a, a);
            }
            status = n <= 0 ? 2 : status;
        } else if (is_session_log(a)) {
            fprintf(stderr, "cebox report: %s is the session's event lines of cebox run (memory-state changes, "
                            "hibernate notices; plain text), not a process's event log: the logs are the "
                            "cebox-PID.log files beside it\n", a);
            status = 2;
        } else {
            where = "these logs";
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

    struct lr_log *all = xcalloc(logs.n, sizeof *all);
    bool read_any = false;
    for (size_t i = 0; i < logs.n; i++) {
        char err[512];
        if (logread_file(logs.paths[i], &all[i], err, sizeof err) != 0) {
            fprintf(stderr, "cebox report: %s\n", err);
            status = 2;
            continue;
        }
        read_any = true;
        if (all[i].damaged) {
            status = status == 0 ? 1 : status;
        }
    }
    struct symbolizer *sym = symbolizer_new();
    if (format == FORMAT_JSON) {
        printf("{\"processes\": [");
    }
    size_t shown = print_runs(all, logs.n, &f, format, where != NULL ? where : "these logs", sym);
    for (size_t i = 0; format == FORMAT_TEXT && i < logs.n; i++) {
        if (all[i].damaged) {
            printf("(%s is damaged at offset %" PRIu64 ": what follows it is lost)\n\n", all[i].path,
                   all[i].damage_offset);
        }
    }
    if (shown == 0 && read_any && (f.npids != 0 || f.failed_only)) {
        fprintf(stderr, "cebox report: no process %s in %s\n",
                f.npids != 0 ? "with the pids given" : "with failed allocations", where != NULL ? where : "these logs");
        status = f.npids != 0 ? 2 : status;
    }
    if (format == FORMAT_JSON) {
        printf("], \"errors\": [");
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
    return read_any ? status : 2;
}
