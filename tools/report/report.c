/*
 * report.c - `cebox report`: the event logs of a run, read offline.
 *
 * Owns: finding the logs (a directory's cebox-PID.log files, or the files
 * named), grouping their processes into runs, each process's leak sites
 * (--leaks) with the suppressions (the defaults for libc's and ld.so's own
 * blocks, and LeakSanitizer-style files), and three of the outputs: text
 * for people, one JSON document, folded stacks for flamegraph.pl and
 * speedscope; the fourth, an HTML page, is html.c's.  Every format shows
 * the same model: each process's failures grouped by distinct stack and
 * symbolized (model.c, with symbolize.c).  The exit
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

#include "memstate.h"
#include "record/leaks.h"
#include "record/runsummary.h"
#include "report/html.h"
#include "report/logread.h"
#include "report/model.h"
#include "report/symbolize.h"
#include "report/siteviews.h"
#include "report/slotmaps.h"
#include "report/timeline.h"

enum format { FORMAT_TEXT, FORMAT_JSON, FORMAT_FOLDED, FORMAT_HTML };

/* ---- leaks (--leaks) ---- */

/* Suppressions in LeakSanitizer's form: `leak:PATTERN`, matched against
 * every frame's function, source file and module; `*` matches anything,
 * `^` and `$` anchor the pattern, which otherwise matches anywhere. */
static struct {
    char **patterns;
    size_t n;
} supp;

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

/* The default suppressions (the exit summary's too) name the innermost
 * frame only; the files' patterns any frame. */
static bool is_suppressed(const struct leak_view *v)
{
    if (v->nframes != 0 && run_summary_default_suppressed(v->frames[0].function, v->frames[0].module)) {
        return true;
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

/* ---- crash triage ---- */

/* The module cebox's preload library is loaded as. */
static const char cebox_preload_module[] = "cebox-preload.so";

/* The last failure recorded before the crash, by time (the crash is at the
 * exit summary cebox's signal handler wrote; without one, any failure is
 * before it).  NULL when there is none. */
static const struct lr_failure *last_failure_before_crash(const struct lr_process *p)
{
    const struct lr_failure *last = NULL;
    for (size_t i = 0; i < p->nfailures; i++) {
        const struct lr_failure *f = &p->failures[i];
        if (p->has_summary && f->time_ns > p->exit_ns) {
            continue;
        }
        if (last == NULL || f->time_ns >= last->time_ns) {
            last = f;
        }
    }
    return last;
}

/* For a process killed by a signal: the failure that may explain it, and
 * whether the fault is cebox's own (innermost frame in its library). */
static void triage_crash(struct symbolizer *sym, const struct lr_process *p, struct leaks *lk)
{
    if (!p->has_end || p->end.how != LOG_END_SIGNAL) {
        return;
    }
    lk->before = last_failure_before_crash(p);
    if (lk->before != NULL) {
        lk->before_frames = report_symbolize_stack(sym, p, lk->before->stack_id, &lk->nbefore);
    }
    lk->inside_cebox = lk->ncrash != 0 && lk->crash[0].module != NULL &&
                       strcmp(lk->crash[0].module, cebox_preload_module) == 0;
}

/* Milliseconds from the failure to the crash, or -1 when the crash's time
 * is unknown (no exit summary). */
static double ms_before_crash(const struct lr_process *p, const struct lr_failure *f)
{
    if (!p->has_summary || p->exit_ns < f->time_ns) {
        return -1;
    }
    return (double)(p->exit_ns - f->time_ns) / 1e6;
}

/* The crash stack of p, when it has one, and its triage. */
static void symbolize_ending(struct symbolizer *sym, const struct lr_process *p, struct leaks *lk)
{
    if (p->has_end && p->end.crash_stack_id != 0) {
        lk->crash = report_symbolize_crash(sym, p, p->end.crash_stack_id, &lk->ncrash);
    }
    triage_crash(sym, p, lk);
}

/* The leak sites of p, symbolized, suppressions applied, most bytes first. */
static void group_leaks(struct symbolizer *sym, const struct lr_process *p, struct leaks *lk)
{
    memset(lk, 0, sizeof *lk);
    lk->v = report_xcalloc(p->nleaks, sizeof *lk->v);
    for (size_t i = 0; i < p->nleaks; i++) {
        struct leak_view *v = &lk->v[lk->n++];
        v->leak = &p->leaks[i];
        v->frames = report_symbolize_stack(sym, p, v->leak->stack_id, &v->nframes);
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
    symbolize_ending(sym, p, lk);
}

static void free_leaks(struct leaks *lk)
{
    for (size_t i = 0; i < lk->n; i++) {
        free(lk->v[i].frames);
    }
    free(lk->v);
    free(lk->crash);
    free(lk->before_frames);
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
        snprintf(buf, cap, "%s at %s:%d", f->function, report_base_name(f->file), f->line);
    } else if (f->function != NULL) {
        snprintf(buf, cap, "%s (%s+0x%" PRIx64 ")", f->function, f->module ? f->module : "?", f->offset);
    } else {
        snprintf(buf, cap, "%s+0x%" PRIx64, f->module ? f->module : "?", f->offset);
    }
    return buf;
}

/* ---- text ---- */

void report_text_frame(FILE *out, size_t n, const struct frame *f)
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
    fprintf(out, "  slot at the first failure (at %.3f s, thread %u): %u of %u blocks free, "
                 "largest free run %u; %s committed; %s RAM free\n",
            (double)f->time_ns / 1e9, (unsigned)f->tid, (unsigned)f->free_blocks, (unsigned)f->blocks,
            (unsigned)f->largest_free_run, run_summary_bytes(a, sizeof a, f->committed_bytes), run_summary_bytes(b, sizeof b, f->ram_free_bytes));
    if (f->map != NULL) {
        slotmaps_print(out, f->map, p->granularity);
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

/* "SIGSEGV", or "signal N" for a number without a name. */
static const char *signal_text(char *buf, size_t cap, int sig)
{
    const char *name = sigabbrev_np(sig);
    if (name != NULL) {
        snprintf(buf, cap, "SIG%s", name);
    } else {
        snprintf(buf, cap, "signal %d", sig);
    }
    return buf;
}

/* " at function file:line" of a stack's innermost frame, or the
 * frame_text form when something is unknown. */
static void text_where(FILE *out, const struct frame *frames, size_t n)
{
    char buf[512];
    if (n == 0) {
        return;
    }
    if (frames[0].function != NULL && frames[0].file != NULL) {
        fprintf(out, " at %s %s:%d", frames[0].function, report_base_name(frames[0].file), frames[0].line);
    } else {
        fprintf(out, " at %s", frame_text(buf, sizeof buf, &frames[0]));
    }
}

/* One line on a crash: where, and the last failed allocation before it
 * (a program that did not check what malloc returned), or that the
 * fault is in cebox's own code. */
static void text_crash(FILE *out, const struct lr_process *p, const struct leaks *lk)
{
    if (!p->has_end || p->end.how != LOG_END_SIGNAL) {
        return;
    }
    char sig[32];
    fprintf(out, "pid %u died of %s", (unsigned)p->pid, signal_text(sig, sizeof sig, p->end.value));
    text_where(out, lk->crash, lk->ncrash);
    if (lk->inside_cebox) {
        fprintf(out, ": crash inside cebox (a cebox bug: please report it)");
    }
    const struct lr_failure *f = lk->before;
    if (f != NULL) {
        double ms = ms_before_crash(p, f);
        if (ms >= 0) {
            fprintf(out, ", %.2f ms after", ms);
        } else {
            fprintf(out, ", after");
        }
        fprintf(out, " the %s failure of %s(%" PRIu64 ")", f->reason == LOG_REASON_INJECTED ? "injected" : "last",
                log_api_name(f->api), f->size);
        text_where(out, lk->before_frames, lk->nbefore);
    }
    fputc('\n', out);
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
            report_text_frame(out, i, &lk->crash[i]);
        }
    }
    text_crash(out, p, lk);
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
        bool map = v->leak->what == LOG_LEAK_MAPPINGS;
        fprintf(out, "\nleak %zu: %s, %s in %" PRIu64 " %s%s (%s %s)\n", ++shown, leaks_kind_text(v->leak->kind),
                run_summary_bytes(a, sizeof a, v->leak->bytes), v->leak->blocks, map ? "reservation" : "block",
                v->leak->blocks == 1 ? "" : "s", map ? "mmap or VirtualAlloc, slot blocks" : "charged",
                run_summary_bytes(b, sizeof b, v->leak->charged));
        if (v->nframes == 0) {
            fprintf(out, "    (no stack recorded)\n");
        }
        for (size_t k = 0; k < v->nframes; k++) {
            report_text_frame(out, k, &v->frames[k]);
        }
    }
    if (shown != 0) {
        fputc('\n', out);
    }
}

const char *report_occupant_blocks(char *buf, size_t cap, const struct lr_occupant *o)
{
    if (o->blocks > 1) {
        snprintf(buf, cap, "blocks %u-%u", (unsigned)o->first_block, (unsigned)(o->first_block + o->blocks - 1));
    } else {
        snprintf(buf, cap, "block %u", (unsigned)o->first_block);
    }
    return buf;
}

const char *report_occupant_note(const struct lr_occupant *o)
{
    return o->xip ? "XIP: its writable data" : o->kind == 'D' ? "RAM DLL" : "";
}

const char *report_occupant_key(const struct lr_occupant *o)
{
    return o->kind == 'E' ? "image" : o->kind == 'S' ? "stack" : o->xip ? "xip-dll" : "ram-dll";
}

/* What the slot held when the log was begun (the OCCUPANT records): one
 * line per image, DLL and stack, with its blocks. */
static void text_occupants(FILE *out, const struct lr_process *p)
{
    if (p->noccupants == 0) {
        return;
    }
    fprintf(out, "slot at the start: %zu occupant%s (image, DLLs, main stack)\n", p->noccupants,
            p->noccupants == 1 ? "" : "s");
    for (size_t i = 0; i < p->noccupants; i++) {
        const struct lr_occupant *o = &p->occupants[i];
        const char *note = report_occupant_note(o);
        char where[48];
        bool noted = note[0] != '\0';
        fprintf(out, "  %c %s, %u page%s committed  %s%s%s%s\n", o->kind,
                report_occupant_blocks(where, sizeof where, o), (unsigned)o->pages, o->pages == 1 ? "" : "s",
                o->name, noted ? " (" : "", note, noted ? ")" : "");
    }
}

static void text_process(FILE *out, struct symbolizer *sym, const struct lr_log *log, const struct lr_process *p,
                         struct site *sites, size_t nsites, const struct leaks *lk)
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
    char origin[64] = "";
    if (p->run_origin) { /* every time below counts from the run's start, as its session log does */
        snprintf(origin, sizeof origin, ", at %.3f s of the run", (double)p->run_offset_ns / 1e9);
    }
    fprintf(out, "== pid %u: %s (profile %s, started %s%s%s)\n   log %s\n", (unsigned)p->pid, command, p->profile,
            when, origin, (p->flags & 1) ? ", forked" : "", log->path);
    if (p->has_summary) {
        char buf[4096];
        run_summary_format(&p->summary, RUN_SUMMARY_NO_HINT, NULL, buf, sizeof buf);
        fputs(buf, out);
    } else {
        fprintf(out, "(no exit summary: the process exec'd another program, was killed by SIGKILL, ended "
                     "by a raw exit system call, or ended under an older cebox)\n");
    }
    text_ending(out, p, lk);
    siteviews_text(out, sym, p);
    text_occupants(out, p);
    timeline_text(out, p);
    slotmaps_text(out, p);
    if (p->nfailures == 0) {
        fprintf(out, "no failed allocations recorded\n\n");
        return;
    }
    fprintf(out, "%zu failed allocation%s recorded at %zu site%s (distinct stacks), most frequent first:\n",
            p->nfailures, p->nfailures == 1 ? "" : "s", nsites, nsites == 1 ? "" : "s");
    for (size_t k = 0; k < nsites; k++) {
        const struct site *s = &sites[k];
        fprintf(out, "\nsite %zu: %zu failure%s", k + 1, s->count, s->count == 1 ? "" : "s");
        for (unsigned i = 0; i < LOG_API_COUNT; i++) {
            if (s->apis[i] != 0) {
                fprintf(out, ", %s", report_api_text(i));
            }
        }
        char size[80];
        fprintf(out, ", %s", report_size_text(size, sizeof size, s->size_min, s->size_max));
        fputs("\n  ", out);
        report_write_causes(out, s);
        fputc('\n', out);
        if (s->nframes == 0) {
            fprintf(out, "    (no stack recorded)\n");
        }
        for (size_t i = 0; i < s->nframes; i++) {
            report_text_frame(out, i, &s->frames[i]);
        }
        text_map(out, p, &p->failures[s->first]);
    }
    fputc('\n', out);
    slotmaps_legend(out, p->granularity);
    fputc('\n', out);
}

/* ---- JSON ---- */

void report_json_str(FILE *out, const char *s)
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

/* The newer figures of the summary, null in logs of older writers:
 * committed slot memory at its peak by kind, and cebox's own memory. */
static void json_summary_kinds(FILE *out, const struct run_summary *s)
{
    if (s->kinds_known) {
        fprintf(out, "\"peak_committed_heap_bytes\": %" PRIu64 ", \"peak_committed_mapped_bytes\": %" PRIu64 ", ",
                s->peak_committed_heap_pages * s->page_size, run_summary_mapped_peak_pages(s) * s->page_size);
    } else {
        fputs("\"peak_committed_heap_bytes\": null, \"peak_committed_mapped_bytes\": null, ", out);
    }
    if (s->occupancy_known) {
        fprintf(out,
                "\"slot_base\": %" PRIu64 ", \"peak_committed_image_bytes\": %" PRIu64
                ", \"peak_committed_stack_bytes\": %" PRIu64 ", ",
                s->slot_base, s->peak_committed_image_pages * s->page_size,
                s->peak_committed_stack_pages * s->page_size);
    } else {
        fputs("\"slot_base\": null, \"peak_committed_image_bytes\": null, \"peak_committed_stack_bytes\": null, ", out);
    }
    if (s->own_known) {
        fprintf(out, "\"own_meta_bytes\": %" PRIu64 ", \"own_mapped_peak_bytes\": %" PRIu64 ", ", s->own_meta_bytes,
                s->own_mapped_peak);
    } else {
        fputs("\"own_meta_bytes\": null, \"own_mapped_peak_bytes\": null, ", out);
    }
}

/* "occupants": the OCCUPANT records, in order. */
static void json_occupants(FILE *out, const struct lr_process *p)
{
    fputs(", \"occupants\": [", out);
    for (size_t i = 0; i < p->noccupants; i++) {
        const struct lr_occupant *o = &p->occupants[i];
        fprintf(out, "%s{\"kind\": \"%s\", \"first_block\": %u, \"blocks\": %u, \"committed_pages\": %u, \"name\": ",
                i == 0 ? "" : ", ", report_occupant_key(o),
                (unsigned)o->first_block, (unsigned)o->blocks, (unsigned)o->pages);
        report_json_str(out, o->name);
        fputs("}", out);
    }
    fputs("]", out);
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
            ", \"heap_live_blocks\": %" PRIu64 ", \"injected\": %" PRIu64 ", ",
            s->fail_exhausted, s->fail_fragmented, s->fail_ram, s->fail_cap, (unsigned)s->blocks,
            (unsigned)s->peak_reserved_blocks, s->peak_committed_pages * s->page_size, s->heap_peak_live_bytes,
            s->heap_peak_live_blocks, s->heap_peak_committed_bytes, s->bad_frees, s->foreign_frees, s->outside_peak,
            s->libc_malloc_bytes, s->unrecorded_failures, s->heap_live_bytes, s->heap_live_blocks,
            s->fail_injected);
    json_summary_kinds(out, s);
    fputs("\"text\": ", out);
    report_json_str(out, text);
    fputc('}', out);
}

void report_json_frames(FILE *out, const struct frame *frames, size_t nframes)
{
    fputs("[", out);
    for (size_t i = 0; i < nframes; i++) {
        const struct frame *fr = &frames[i];
        fprintf(out, "%s\n      {\"address\": %" PRIu64 ", \"module\": ", i ? "," : "", fr->address);
        report_json_str(out, fr->module);
        fprintf(out, ", \"offset\": %" PRIu64 ", \"function\": ", fr->offset);
        report_json_str(out, fr->function);
        fputs(", \"file\": ", out);
        report_json_str(out, fr->file);
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

/* "crash" of a process: null unless a signal killed it. */
static void json_crash(FILE *out, const struct lr_process *p, const struct leaks *lk)
{
    fputs(", \"crash\": ", out);
    if (!p->has_end || p->end.how != LOG_END_SIGNAL) {
        fputs("null", out);
        return;
    }
    char sig[32];
    fputs("{\"signal\": ", out);
    report_json_str(out, signal_text(sig, sizeof sig, p->end.value));
    fprintf(out, ", \"fault_addr\": %" PRIu64 ", \"inside_cebox\": %s, \"stack\": ", p->end.fault_addr,
            lk->inside_cebox ? "true" : "false");
    report_json_frames(out, lk->crash, lk->ncrash);
    fputs(", \"after_failure\": ", out);
    const struct lr_failure *f = lk->before;
    if (f == NULL) {
        fputs("null}", out);
        return;
    }
    double ms = ms_before_crash(p, f);
    if (ms >= 0) {
        fprintf(out, "{\"ms_before\": %.3f", ms);
    } else {
        fputs("{\"ms_before\": null", out);
    }
    fprintf(out, ", \"reason\": \"%s\", \"api\": \"%s\", \"size\": %" PRIu64 ", \"stack\": ",
            log_reason_key(f->reason), log_api_name(f->api), f->size);
    report_json_frames(out, lk->before_frames, lk->nbefore);
    fputs("}}", out);
}

/* The HTML section of a process, with its crash view when a signal
 * killed it (the same triage as the text's and the JSON's). */
static void html_with_crash(struct html_proc *hp, size_t index, const struct site *sites, size_t nsites,
                            const struct leaks *lk)
{
    const struct lr_process *p = hp->p;
    struct html_crash c;
    if (p->has_end && p->end.how == LOG_END_SIGNAL) {
        c = (struct html_crash){.stack = lk->crash, .nstack = lk->ncrash, .inside_cebox = lk->inside_cebox,
                                .before = lk->before, .before_stack = lk->before_frames, .nbefore = lk->nbefore,
                                .ms_before = lk->before != NULL ? ms_before_crash(p, lk->before) : -1};
        signal_text(c.signal, sizeof c.signal, p->end.value);
        hp->crash = &c;
    }
    html_process(stdout, hp, index, sites, nsites, lk);
    hp->crash = NULL;
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
            report_json_frames(out, lk->crash, lk->ncrash);
        }
        fputs("}", out);
    }
    json_crash(out, p, lk);
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
        fprintf(out, "%s\n    {\"kind\": \"%s\", \"what\": \"%s\", \"bytes\": %" PRIu64 ", \"charged_bytes\": %" PRIu64
                     ", \"blocks\": %" PRIu64 ", \"stack\": ",
                sep, leaks_kind_key(v->leak->kind), v->leak->what == LOG_LEAK_MAPPINGS ? "mapping" : "heap",
                v->leak->bytes, v->leak->charged, v->leak->blocks);
        report_json_frames(out, v->frames, v->nframes);
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

static void json_process(FILE *out, struct symbolizer *sym, const struct lr_log *log, const struct lr_process *p,
                         struct site *sites,
                         size_t nsites, const struct leaks *leaks, bool first, size_t run)
{
    fprintf(out, "%s\n  {\"pid\": %u, \"ppid\": %u, \"run\": %zu, \"command\": ", first ? "" : ",",
            (unsigned)p->pid, (unsigned)p->ppid, run);
    report_json_str(out, p->command);
    fputs(", \"profile\": ", out);
    report_json_str(out, p->profile);
    fputs(", \"log\": ", out);
    report_json_str(out, log->path);
    fprintf(out, ", \"forked\": %s, \"time_origin\": \"%s\", \"started_t\": %.6f, \"summary\": ",
            (p->flags & 1) ? "true" : "false", p->run_origin ? "run" : "process", (double)p->run_offset_ns / 1e9);
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
                fprintf(out, "%s\"%s\"", sep, report_state_name(i));
                sep = ", ";
            }
        }
        fprintf(out,
                "], \"first\": {\"seconds\": %.6f, \"thread\": %u, \"free_blocks\": %u, \"largest_free_run\": %u, "
                "\"blocks\": %u, \"committed_bytes\": %" PRIu64 ", \"ram_free_bytes\": %" PRIu64
                ", \"lma_bytes\": %" PRIu64 ", \"slot_map\": ",
                (double)f->time_ns / 1e9, (unsigned)f->tid, (unsigned)f->free_blocks, (unsigned)f->largest_free_run,
                (unsigned)f->blocks, f->committed_bytes, f->ram_free_bytes, f->lma_bytes);
        report_json_str(out, f->map);
        fputs("}, \"stack\": ", out);
        report_json_frames(out, s->frames, s->nframes);
        fputs("}", out);
    }
    fputs("]", out);
    json_leaks(out, p, leaks);
    siteviews_json(out, sym, p);
    timeline_json(out, p);
    slotmaps_json(out, p);
    json_occupants(out, p);
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

void report_folded_line(FILE *out, const struct lr_process *p, const struct frame *frames, size_t nframes,
                        uint64_t value)
{
    const char *name = p->exe != NULL && p->exe[0] != '\0' ? report_base_name(p->exe) : p->command;
    struct frame root = {.function = name};
    folded_name(out, &root);
    fprintf(out, "[%u];", (unsigned)p->pid);
    if (nframes == 0) {
        fputs("[no stack]", out);
    }
    for (size_t i = nframes; i-- > 0;) {
        folded_name(out, &frames[i]);
        if (i != 0) {
            fputc(';', out);
        }
    }
    fprintf(out, " %" PRIu64 "\n", value);
}

/* Failures (count per site), leak sites not suppressed (bytes), or a view
 * of siteviews.c (bytes). */
static void folded_process(FILE *out, struct symbolizer *sym, const struct lr_process *p, const struct site *sites,
                           size_t nsites, const struct leaks *lk, enum siteviews_folded which)
{
    if (which == SITEVIEWS_FOLD_FAILURES) {
        for (size_t k = 0; k < nsites; k++) {
            report_folded_line(out, p, sites[k].frames, sites[k].nframes, sites[k].count);
        }
    } else if (which == SITEVIEWS_FOLD_LEAKS) {
        for (size_t i = 0; i < lk->n; i++) {
            const struct leak_view *v = &lk->v[i];
            if (!v->suppressed) {
                report_folded_line(out, p, v->frames, v->nframes, v->leak->bytes);
            }
        }
    } else {
        siteviews_folded(out, sym, p, which);
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
    long x = pid_in_log_name(report_base_name(*(char *const *)a)), y = pid_in_log_name(report_base_name(*(char *const *)b));
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
    enum siteviews_folded fold; /* what --format folded folds (--folded-of) */
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
    struct entry *e = report_xcalloc(n, sizeof *e);
    struct run *runs = report_xcalloc(n, sizeof *runs);
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
    struct run **order = report_xcalloc(r, sizeof *order);
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
    /* The page's contents come first: the processes it will show. */
    struct html_proc *page = format == FORMAT_HTML ? report_xcalloc(n, sizeof *page) : NULL;
    size_t npage = 0;
    for (size_t i = 0; page != NULL && i < n; i++) {
        if (wanted(f, e[i].p)) {
            page[npage++] = (struct html_proc){.log = e[i].log, .p = e[i].p, .run = e[i].run->rank, .sym = sym};
        }
    }
    if (page != NULL) {
        html_begin(stdout, where, page, npage, nruns);
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
        struct site *sites = report_group(sym, e[i].p, &nsites);
        struct leaks lk;
        group_leaks(sym, e[i].p, &lk);
        switch (format) {
        case FORMAT_TEXT: text_process(stdout, sym, e[i].log, e[i].p, sites, nsites, &lk); break;
        case FORMAT_JSON:
            json_process(stdout, sym, e[i].log, e[i].p, sites, nsites, &lk, shown == 0, e[i].run->rank);
            break;
        case FORMAT_FOLDED: folded_process(stdout, sym, e[i].p, sites, nsites, &lk, f->fold); break;
        case FORMAT_HTML: html_with_crash(&page[shown], shown + 1, sites, nsites, &lk); break;
        }
        shown++;
        free_leaks(&lk);
        report_free_sites(sites, nsites);
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
            report_json_str(stdout, r->session[0] != '\0' ? r->session : NULL);
            putchar('}');
        }
    }
    free(page);
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
    fprintf(f, "Usage: cebox report [--format text|json|folded|html] [--folded-of WHAT] [--pid N] [--failed-only] [--suppressions FILE]... DIR|LOGFILE...\n"
               "Prints, per process of a run recorded with --out DIR, the exit summary and the failed\n"
               "allocations grouped by call stack (most frequent first), symbolized offline.\n\n"
               "Options of report:\n"
               "  --format text    for people (default)\n"
               "  --format json    one JSON document\n"
               "  --format folded  folded stacks for flamegraph.pl and speedscope (root: name[pid])\n"
               "  --folded-of failures|leaks|peak|pinning  what folded stacks count: failures per\n"
               "                   stack (default), bytes never freed, bytes live at the peak, bytes pinned\n"
               "  --format html    one self-contained page (works offline; charts and slot maps as SVG)\n"
               "  --suppressions FILE  leak:PATTERN lines (LeakSanitizer's form): leak sites with a frame\n"
               "                   whose function, source file or module matches are counted as suppressed\n"
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
            } else if (v != NULL && strcmp(v, "html") == 0) {
                format = FORMAT_HTML;
            } else {
                fprintf(stderr, "cebox report: --format '%s' is not valid; accepted: text, json, folded or html\n",
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
        if (options && (strcmp(a, "--folded-of") == 0 || strncmp(a, "--folded-of=", 12) == 0)) {
            static const char *const names[] = {"failures", "leaks", "peak", "pinning"};
            const char *v = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
            size_t k = 0;
            while (v != NULL && k < sizeof names / sizeof names[0] && strcmp(v, names[k]) != 0) {
                k++;
            }
            if (v == NULL || k == sizeof names / sizeof names[0]) {
                fprintf(stderr, "cebox report: --folded-of '%s' is not valid; accepted: failures, leaks, peak or "
                                "pinning\n", v != NULL ? v : "");
                return 2;
            }
            f.fold = (enum siteviews_folded)k;
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
            fprintf(stderr, "cebox report: no log given; usage: cebox report [--format text|json|folded|html] "
                            "DIR|LOGFILE...\n");
        }
        return 2;
    }

    struct lr_log *all = report_xcalloc(logs.n, sizeof *all);
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
    if (format == FORMAT_HTML) {
        html_end(stdout, all, logs.n);
    }
    if (format == FORMAT_JSON) {
        printf("], \"errors\": [");
        const char *sep = "";
        for (size_t i = 0; i < logs.n; i++) {
            if (all[i].damaged) {
                printf("%s\n  {\"file\": ", sep);
                report_json_str(stdout, all[i].path);
                printf(", \"offset\": %" PRIu64 ", \"message\": ", all[i].damage_offset);
                report_json_str(stdout, all[i].damage);
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

/* ---- for cebox stress (report.h) ---- */

bool report_crash_of(struct symbolizer *sym, const struct lr_process *p, struct report_crash *out)
{
    memset(out, 0, sizeof *out);
    if (!p->has_end || p->end.how != LOG_END_SIGNAL) {
        return false;
    }
    struct leaks lk;
    memset(&lk, 0, sizeof lk);
    symbolize_ending(sym, p, &lk);
    *out = (struct report_crash){.signal = p->end.value, .stack = lk.crash, .nstack = lk.ncrash,
                                 .before = lk.before, .before_frames = lk.before_frames, .nbefore = lk.nbefore,
                                 .inside_cebox = lk.inside_cebox};
    return true;
}

void report_crash_free(struct report_crash *c)
{
    free(c->stack);
    free(c->before_frames);
    memset(c, 0, sizeof *c);
}

const char *report_signal_text(char *buf, size_t cap, int sig)
{
    return signal_text(buf, cap, sig);
}
