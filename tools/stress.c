/*
 * stress.c - `cebox stress` (see stress.h).
 *
 * The plan: a recording run (`cebox run --record-stacks FILE`, nothing
 * failed) gives the reference exit status, whether the program writes to
 * stderr, the distinct allocation stacks (their hashes, in FILE) and the
 * allocation calls each process made (the END record's count).  Then:
 *   stacks  one run per stack: --fail-stack HASH --fail-nth 1, which fails
 *           the first call with that stack in each process;
 *   nth     one run per call number k from 1 to the largest count of a
 *           process: --fail-nth k;
 *   states  one run per forced memory state: --state limited (when the
 *           table has that level: not ce5), low, critical.
 * Every run is `cebox run --quiet --out RUNDIR ...` of this executable, in a
 * process group of its own (killed whole at --timeout), stdin from --input
 * or /dev/null, stdout and stderr into RUNDIR.
 *
 * A run's outcome comes from its logs (tools/report reads and symbolizes
 * them): a process that died of a crash signal makes it a crash (a crash
 * inside cebox when the innermost frame is in cebox-preload.so), a timeout a
 * hang; otherwise it is handled when its status differs from the
 * reference's or it wrote to stderr where the reference did not, else ok.
 * Crashes are bucketed by the signal and the crash stack's two innermost
 * frames outside the C and C++ runtimes and cebox; each bucket's first run is
 * run again alone (a single injected failure per process) to confirm that
 * it reproduces the same bucket.
 *
 * Invariants: every child is reaped, and so is every process a run leaves
 * in its group (adopted: this process is a child subreaper), before the run
 * is read; a run's directory is removed once read unless --out keeps it;
 * rendered stacks are copied out of the logs before they are freed (the
 * frames point into them).
 */
#include "stress.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "report/logread.h"
#include "report/model.h"
#include "report/report.h"
#include "report/symbolize.h"

enum outcome { OUT_OK, OUT_HANDLED, OUT_CRASH, OUT_HANG, OUT_CEBOX, OUT_KINDS };
static const char *const outcome_key[OUT_KINDS] = {"ok", "handled", "crash", "hang", "cebox_crash"};
static const char *const outcome_text[OUT_KINDS] = {"ok", "handled", "crash", "hang", "crash inside cebox"};

/* What one run fails. */
enum spec_kind { SPEC_RECORD, SPEC_STACK, SPEC_NTH, SPEC_STATE };
struct spec {
    enum spec_kind kind;
    uint64_t value; /* the hash, the call number, the state (1 limited .. 3 critical) */
};

static const char *const state_names[] = {"normal", "limited", "low", "critical"};

/* What a run came to; the texts are the caller's to free (result_free). */
struct result {
    enum outcome outcome;
    int status;        /* as a shell reports it: 128 + N for signal N */
    uint64_t injected; /* failures injected, over its processes */
    uint64_t calls;    /* the most allocation calls a process made (counted by fault injection) */
    bool wrote_stderr;
    /* crash (or crash inside cebox) */
    int signal;
    char *key, *where;
    char *crash_text, *crash_json;     /* the crash stack */
    char *failure_text, *failure_json; /* the failure before it, or NULL */
};

/* A bucket's first run and the hangs are the earliest in the plan's order,
 * not in the order parallel runs happen to finish, so that a campaign
 * reports the same buckets, numbered alike, every time. */
struct bucket {
    struct result first; /* the run that fell in it earliest in the plan */
    struct spec spec;
    size_t index; /* that run's place in the plan */
    size_t count;
    bool confirmed;
};

struct hang {
    struct spec spec;
    size_t index;
};

struct campaign {
    const struct stress_options *o;
    char **argv;
    char base[PATH_MAX - 128];
    bool temporary;
    struct symbolizer *sym;
    int ref_status;
    bool ref_stderr;
    size_t unique_stacks;
    uint64_t calls;
    size_t runs, outcomes[OUT_KINDS];
    struct bucket *buckets;
    size_t nbuckets;
    struct hang *hangs;
    size_t nhangs;
    struct spec *specs;    /* the campaign's runs */
    struct result recorded; /* the recording run's */
    /* progress */
    size_t total, done, crashes;
    double start, last_progress;
    bool tty, progress;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "cebox stress: out of memory\n");
        exit(2);
    }
    return p;
}

static void *xrealloc(void *p, size_t size)
{
    p = realloc(p, size);
    if (p == NULL) {
        fprintf(stderr, "cebox stress: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- options ---- */

void stress_defaults(struct stress_options *o)
{
    memset(o, 0, sizeof *o);
    o->strategy = STRESS_STACKS;
    o->timeout = 10;
}

static int needs_value(int argc, int i, const char *opt)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "cebox: %s needs a value\n", opt);
        return -1;
    }
    return 0;
}

static int bad_value(const char *opt, const char *v, const char *accepted)
{
    fprintf(stderr, "cebox: %s '%s' is not valid; accepted: %s\n", opt, v, accepted);
    return -1;
}

static bool parse_spec(const char *text, struct spec *s);

int stress_take_option(int argc, char **argv, int *i, struct stress_options *o)
{
    const char *a = argv[*i];
    static const char *const with_value[] = {"--strategy", "-j", "--jobs", "--timeout", "--input",
                                             "--format", "--json", "--out", "--replay"};
    size_t k = 0, n = sizeof with_value / sizeof with_value[0];
    while (k < n && strcmp(a, with_value[k]) != 0) {
        k++;
    }
    if (k == n) {
        return 1;
    }
    if (needs_value(argc, *i, a) != 0) {
        return -1;
    }
    const char *v = argv[++*i];
    char *end;
    if (strcmp(a, "--strategy") == 0) {
        bool stacks = strcmp(v, "stacks") == 0, nth = strcmp(v, "nth") == 0, states = strcmp(v, "states") == 0;
        if (!stacks && !nth && !states) {
            return bad_value(a, v, "stacks, nth or states");
        }
        o->strategy = stacks ? STRESS_STACKS : nth ? STRESS_NTH : STRESS_STATES;
    } else if (strcmp(a, "-j") == 0 || strcmp(a, "--jobs") == 0) {
        long j = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || j < 1 || j > 256) {
            return bad_value(a, v, "a number of parallel runs from 1 to 256");
        }
        o->jobs = (unsigned)j;
    } else if (strcmp(a, "--timeout") == 0) {
        double t = strtod(v, &end);
        if (*v == '\0' || *end != '\0' || !(t >= 0.1 && t <= 86400)) {
            return bad_value(a, v, "seconds from 0.1 to 86400");
        }
        o->timeout = t;
    } else if (strcmp(a, "--format") == 0) {
        if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0) {
            return bad_value(a, v, "text or json");
        }
        o->json = strcmp(v, "json") == 0;
    } else if (strcmp(a, "--replay") == 0) {
        struct spec s;
        if (!parse_spec(v, &s)) {
            return bad_value(a, v, "stack:HASH, nth:N or state:limited|low|critical (as a campaign prints it)");
        }
        o->replay = v;
    } else if (strcmp(a, "--input") == 0) {
        if (access(v, R_OK) != 0) {
            fprintf(stderr, "cebox: --input %s: %s\n", v, strerror(errno));
            return -1;
        }
        o->input = v;
    } else {
        *(strcmp(a, "--json") == 0 ? &o->json_file : &o->out_dir) = v;
    }
    return 0;
}

/* ---- a run's words ---- */

/* "stack:HASH", "nth:K", "state:NAME": a run, as --replay takes it. */
static bool parse_spec(const char *text, struct spec *s)
{
    char *end;
    if (strncmp(text, "stack:", 6) == 0 && strlen(text + 6) == 16 &&
        strspn(text + 6, "0123456789abcdefABCDEF") == 16) {
        *s = (struct spec){SPEC_STACK, strtoull(text + 6, NULL, 16)};
        return s->value != 0;
    }
    if (strncmp(text, "nth:", 4) == 0 && text[4] >= '1' && text[4] <= '9') {
        *s = (struct spec){SPEC_NTH, strtoull(text + 4, &end, 10)};
        return *end == '\0' && strlen(text + 4) <= 18;
    }
    for (uint64_t k = 1; k < 4 && strncmp(text, "state:", 6) == 0; k++) {
        if (strcmp(text + 6, state_names[k]) == 0) {
            *s = (struct spec){SPEC_STATE, k};
            return true;
        }
    }
    return false;
}

static void spec_id(const struct spec *s, char *buf, size_t cap)
{
    if (s->kind == SPEC_STACK) {
        snprintf(buf, cap, "stack:%016" PRIx64, s->value);
    } else if (s->kind == SPEC_NTH) {
        snprintf(buf, cap, "nth:%" PRIu64, s->value);
    } else {
        snprintf(buf, cap, "state:%s", s->kind == SPEC_STATE ? state_names[s->value] : "none");
    }
}

/* The `cebox run` options of a run (record: its stack file in dir);
 * returns how many words are in w (at most 4), which point into store. */
static size_t spec_words(const struct spec *s, const char *dir, const char *w[4], char store[2][PATH_MAX])
{
    switch (s->kind) {
    case SPEC_RECORD:
        snprintf(store[0], PATH_MAX, "%s/stacks", dir);
        w[0] = "--record-stacks", w[1] = store[0];
        return 2;
    case SPEC_STACK:
        snprintf(store[0], PATH_MAX, "%016" PRIx64, s->value);
        w[0] = "--fail-stack", w[1] = store[0], w[2] = "--fail-nth", w[3] = "1";
        return 4;
    case SPEC_NTH:
        snprintf(store[0], PATH_MAX, "%" PRIu64, s->value);
        w[0] = "--fail-nth", w[1] = store[0];
        return 2;
    case SPEC_STATE:
        w[0] = "--state", w[1] = state_names[s->value];
        return 2;
    }
    return 0;
}

/* Appends word to the line, in single quotes when the shell would read
 * it otherwise. */
static void put_word(FILE *f, const char *word)
{
    if (word[0] != '\0' && strspn(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,/:@%") ==
                               strlen(word)) {
        fprintf(f, " %s", word);
        return;
    }
    fputs(" '", f);
    for (const char *c = word; *c != '\0'; c++) {
        if (*c == '\'') {
            fputs("'\\''", f);
        } else {
            fputc(*c, f);
        }
    }
    fputc('\'', f);
}

/* The command that replays run s: `cebox run` (stress false) or `cebox
 * stress --replay` with the setting options of the campaign.  Malloc'ed. */
static char *replay_line(const struct campaign *c, const struct spec *s, bool stress)
{
    char *text = NULL, store[2][PATH_MAX], id[64];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        exit(2);
    }
    fputs(stress ? "cebox stress" : "cebox run", f);
    for (const char *const *set = c->o->settings; set != NULL && *set != NULL; set++) {
        put_word(f, *set);
    }
    if (stress) {
        spec_id(s, id, sizeof id);
        fprintf(f, " --replay %s", id);
    } else {
        const char *w[4];
        size_t n = spec_words(s, "", w, store);
        for (size_t i = 0; i < n; i++) {
            put_word(f, w[i]);
        }
    }
    fputs(" --", f);
    for (char **a = c->argv; *a != NULL; a++) {
        put_word(f, *a);
    }
    fclose(f);
    return text;
}

/* ---- one run ---- */

static void redirect(int fd, const char *path, int flags)
{
    int opened = open(path, flags | O_CLOEXEC, 0644);
    if (opened >= 0) {
        dup2(opened, fd);
        close(opened);
    }
}

/* In the child: `cebox run --quiet --out dir RULES -- PROGRAM ARGS`. */
static void exec_run(const struct campaign *c, const struct spec *s, const char *dir, const sigset_t *mask)
{
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, mask, NULL);
    char path[PATH_MAX + 16], store[2][PATH_MAX];
    redirect(0, c->o->input != NULL ? c->o->input : "/dev/null", O_RDONLY);
    snprintf(path, sizeof path, "%s/stdout", dir);
    redirect(1, path, O_WRONLY | O_CREAT | O_TRUNC);
    snprintf(path, sizeof path, "%s/stderr", dir);
    redirect(2, path, O_WRONLY | O_CREAT | O_TRUNC);
    size_t n = 0;
    while (c->argv[n] != NULL) {
        n++;
    }
    const char **args = calloc(n + 12, sizeof *args);
    if (args == NULL) {
        _exit(127);
    }
    size_t k = 0;
    args[k++] = "cebox", args[k++] = "run", args[k++] = "--quiet", args[k++] = "--out", args[k++] = dir;
    k += spec_words(s, dir, args + k, store);
    args[k++] = "--";
    for (size_t i = 0; i <= n; i++) {
        args[k + i] = c->argv[i];
    }
    execv("/proc/self/exe", (char **)args);
    _exit(127);
}

static bool crash_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGFPE || sig == SIGILL ||
           sig == SIGTRAP || sig == SIGSYS;
}

/* The C and C++ runtimes and cebox: a crash in memcpy or abort is the
 * program's caller's. */
static bool runtime_module(const char *m)
{
    static const char *const prefixes[] = {"libc.so", "ld-linux", "libstdc++.so", "libgcc_s.so", "libm.so",
                                           "libpthread.so", "cebox-preload.so"};
    for (size_t i = 0; m != NULL && i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (strncmp(m, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

static void frame_where(FILE *f, const struct frame *fr)
{
    if (fr->function != NULL && fr->file != NULL) {
        fprintf(f, "%s %s:%d", fr->function, report_base_name(fr->file), fr->line);
    } else if (fr->function != NULL) {
        fprintf(f, "%s (%s)", fr->function, fr->module != NULL ? fr->module : "?");
    } else {
        fprintf(f, "%s+0x%" PRIx64, fr->module != NULL ? fr->module : "?", fr->offset);
    }
}

static char *stack_text(const struct frame *frames, size_t n, bool json)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        exit(2);
    }
    if (json) {
        report_json_frames(f, frames, n);
    }
    for (size_t i = 0; !json && i < n; i++) {
        report_text_frame(f, i, &frames[i]);
    }
    fclose(f);
    return text;
}

/* The bucket key of a crash (signal and the two innermost frames outside
 * the runtimes; cebox's own frames when the crash is inside cebox) and
 * where it is (the first of those frames). */
static void crash_key(const struct report_crash *rc, struct result *r)
{
    char *key = NULL, *where = NULL, sig[32];
    size_t klen = 0, wlen = 0, used = 0;
    FILE *k = open_memstream(&key, &klen), *w = open_memstream(&where, &wlen);
    if (k == NULL || w == NULL) {
        exit(2);
    }
    fputs(report_signal_text(sig, sizeof sig, rc->signal), k);
    for (size_t i = 0; i < rc->nstack && used < 2; i++) {
        const struct frame *fr = &rc->stack[i];
        bool last = i + 1 == rc->nstack && used == 0;
        if (runtime_module(fr->module) && !rc->inside_cebox && !last) {
            continue;
        }
        fputs(" | ", k);
        frame_where(k, fr);
        if (used++ == 0) {
            frame_where(w, fr);
        }
    }
    fclose(k);
    fclose(w);
    r->key = key;
    r->where = where;
}

static void take_crash(struct result *r, const struct report_crash *rc)
{
    r->signal = rc->signal;
    crash_key(rc, r);
    r->crash_text = stack_text(rc->stack, rc->nstack, false);
    r->crash_json = stack_text(rc->stack, rc->nstack, true);
    const struct lr_failure *f = rc->before;
    if (f != NULL) {
        char head[160], *frames = stack_text(rc->before_frames, rc->nbefore, false);
        snprintf(head, sizeof head, "%s(%" PRIu64 ") (%s)", log_api_name(f->api), f->size,
                 f->reason == LOG_REASON_INJECTED ? "injected" : log_reason_key(f->reason));
        size_t len = strlen(head) + strlen(frames) + 2;
        r->failure_text = xcalloc(1, len);
        snprintf(r->failure_text, len, "%s\n%s", head, frames);
        free(frames);
        char *json = NULL, *stack = stack_text(rc->before_frames, rc->nbefore, true);
        size_t jlen = 0;
        FILE *j = open_memstream(&json, &jlen);
        if (j == NULL) {
            exit(2);
        }
        fprintf(j, "{\"api\": \"%s\", \"size\": %" PRIu64 ", \"reason\": \"%s\", \"stack\": %s}",
                log_api_name(f->api), f->size, log_reason_key(f->reason), stack);
        fclose(j);
        free(stack);
        r->failure_json = json;
    }
}

/* Frees what a crash gave r, leaving its other figures. */
static void crash_free(struct result *r)
{
    free(r->key);
    free(r->where);
    free(r->crash_text);
    free(r->crash_json);
    free(r->failure_text);
    free(r->failure_json);
    r->key = r->where = r->crash_text = r->crash_json = r->failure_text = r->failure_json = NULL;
}

static void result_free(struct result *r)
{
    crash_free(r);
    memset(r, 0, sizeof *r);
}

/* Reads one process's ending into r. */
static void read_process(struct campaign *c, const struct lr_process *p, struct result *r, bool *crashed,
                         bool *inside)
{
    for (size_t i = 0; i < p->nfailures; i++) {
        r->injected += p->failures[i].reason == LOG_REASON_INJECTED;
    }
    if (p->has_end && p->end.calls > r->calls) {
        r->calls = p->end.calls;
    }
    struct report_crash rc;
    if (!report_crash_of(c->sym, p, &rc)) {
        return;
    }
    bool crash = crash_signal(rc.signal);
    /* The first crash names the run; one inside cebox wins over it. */
    if (crash && (!*crashed || (rc.inside_cebox && !*inside))) {
        crash_free(r);
        take_crash(r, &rc);
        *crashed = true;
        *inside = rc.inside_cebox;
    }
    report_crash_free(&rc);
}

static bool is_log_name(const char *name)
{
    size_t n = strlen(name);
    return strncmp(name, "cebox-", 6) == 0 && n > 10 && strcmp(name + n - 4, ".log") == 0;
}

/* The logs of dir, read into r; crashed/inside say what was found. */
static void read_logs(struct campaign *c, const char *dir, struct result *r, bool *crashed, bool *inside)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (!is_log_name(e->d_name)) {
            continue;
        }
        char path[PATH_MAX + 256], err[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct lr_log log;
        if (logread_file(path, &log, err, sizeof err) != 0) {
            continue;
        }
        for (size_t i = 0; i < log.nprocs; i++) {
            read_process(c, &log.procs[i], r, crashed, inside);
        }
        logread_free(&log);
    }
    if (d != NULL) {
        closedir(d);
    }
}

static off_t file_size(const char *dir, const char *name)
{
    char path[PATH_MAX + 32];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* The outcome of the run that ended with `status` in dir. */
static void analyse(struct campaign *c, const char *dir, int status, bool timed_out, struct result *r)
{
    memset(r, 0, sizeof *r);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r->wrote_stderr = file_size(dir, "stderr") > 0;
    bool crashed = false, inside = false;
    read_logs(c, dir, r, &crashed, &inside);
    if (timed_out) {
        r->outcome = OUT_HANG;
    } else if (inside) {
        r->outcome = OUT_CEBOX;
    } else if (crashed) {
        r->outcome = OUT_CRASH;
    } else if (r->status > 128 && crash_signal(r->status - 128)) {
        /* killed with no log saying where (a process that left no END record) */
        char key[64];
        snprintf(key, sizeof key, "signal %d | (no crash stack recorded)", r->status - 128);
        r->key = strdup(key);
        r->where = strdup("(no crash stack recorded)");
        r->crash_text = strdup("    (none)\n");
        r->crash_json = strdup("[]");
        if (r->key == NULL || r->where == NULL || r->crash_text == NULL || r->crash_json == NULL) {
            fprintf(stderr, "cebox stress: out of memory\n");
            exit(2);
        }
        r->signal = r->status - 128;
        r->outcome = OUT_CRASH;
    } else if (r->status != c->ref_status || (r->wrote_stderr && !c->ref_stderr)) {
        r->outcome = OUT_HANDLED;
    } else {
        r->outcome = OUT_OK;
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A killed `cebox run` could not remove its session file: its first line
 * in DIR/cebox.session names it. */
static void remove_session_file(const char *dir)
{
    char path[PATH_MAX + 32], line[PATH_MAX];
    snprintf(path, sizeof path, "%s/cebox.session", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    if (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *file = strstr(line, "/dev/shm/cebox"); /* "cebox: session FILE (cebox run pid N)" */
        if (file != NULL) {
            file[strcspn(file, " ")] = '\0';
            unlink(file);
        }
    }
    fclose(f);
}

/* ---- many runs ---- */

struct job {
    pid_t pid; /* 0: free */
    size_t index;
    double deadline;
    bool killed;
    char dir[PATH_MAX];
};

typedef void (*run_done_fn)(struct campaign *c, size_t index, struct result *r);

static void progress(struct campaign *c, bool last)
{
    if (!c->progress || (last && !c->tty)) {
        return; /* the last line only clears the terminal's */
    }
    double t = now_s(), elapsed = t - c->start;
    if (!last && t - c->last_progress < (c->tty ? 0.1 : 5.0)) {
        return;
    }
    c->last_progress = t;
    if (last) {
        fputs("\r\033[K", stderr);
        return;
    }
    double left = c->done != 0 ? elapsed / (double)c->done * (double)(c->total - c->done) : 0;
    fprintf(stderr, "%scebox stress: %zu/%zu runs, %zu crash%s, %.1f s, about %.0f s left%s", c->tty ? "\r\033[K" : "",
            c->done, c->total, c->crashes, c->crashes == 1 ? "" : "es", elapsed, left, c->tty ? "" : "\n");
}

static int start_job(struct campaign *c, struct job *j, const struct spec *s, size_t index, const char *prefix,
                     const sigset_t *mask)
{
    snprintf(j->dir, sizeof j->dir, "%s/%s-%zu", c->base, prefix, index + 1);
    if (mkdir(j->dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cebox stress: %s: %s\n", j->dir, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "cebox stress: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        exec_run(c, s, j->dir, mask);
    }
    setpgid(pid, pid); /* also in the child: whichever runs first */
    j->pid = pid;
    j->index = index;
    j->deadline = now_s() + c->o->timeout;
    j->killed = false;
    return 0;
}

/* Kills whatever the run left behind in its group and waits until it is
 * gone: this process adopts the run's orphans (a child subreaper,
 * stress_main), so each one is reaped here, not at some later time by
 * whichever process adopts orphans otherwise. */
static void end_group(pid_t group)
{
    kill(-group, SIGKILL);
    while (waitpid(-group, NULL, 0) > 0 || errno == EINTR) {
    }
}

static void finish_job(struct campaign *c, struct job *j, int status, run_done_fn done)
{
    end_group(j->pid);
    if (j->killed) {
        remove_session_file(j->dir);
    }
    struct result r;
    analyse(c, j->dir, status, j->killed, &r);
    done(c, j->index, &r);
    if (c->temporary) {
        remove_tree(j->dir);
    }
    j->pid = 0;
}

/* The next time the loop must wake: the nearest deadline, or the progress tick. */
static double next_wake(const struct job *jobs, unsigned n)
{
    double wake = now_s() + 0.1;
    for (unsigned k = 0; k < n; k++) {
        if (jobs[k].pid != 0 && !jobs[k].killed && jobs[k].deadline < wake) {
            wake = jobs[k].deadline;
        }
    }
    return wake;
}

static void wait_for_children(const sigset_t *chld, double wake)
{
    double dt = wake - now_s();
    if (dt <= 0) {
        return;
    }
    struct timespec ts = {(time_t)dt, (long)((dt - (double)(time_t)dt) * 1e9)};
    sigtimedwait(chld, NULL, &ts);
}

static void kill_late(struct job *jobs, unsigned n)
{
    double t = now_s();
    for (unsigned k = 0; k < n; k++) {
        if (jobs[k].pid != 0 && !jobs[k].killed && t >= jobs[k].deadline) {
            kill(-jobs[k].pid, SIGKILL);
            jobs[k].killed = true;
        }
    }
}

static void reap(struct campaign *c, struct job *jobs, unsigned n, unsigned *running, run_done_fn done)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (unsigned k = 0; k < n; k++) {
            if (jobs[k].pid == pid) {
                finish_job(c, &jobs[k], status, done);
                --*running;
            }
        }
    }
}

/* Runs specs[0..n) `jobs` at a time, each in DIR/prefix-N; done gets each
 * result (its texts are done's).  0, or -1 when a run could not start. */
static int run_all(struct campaign *c, const struct spec *specs, size_t n, const char *prefix, run_done_fn done)
{
    unsigned width = c->o->jobs;
    struct job *jobs = xcalloc(width, sizeof *jobs);
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    unsigned running = 0;
    size_t next = 0;
    int status = 0;
    fflush(NULL);
    while (next < n || running > 0) {
        for (unsigned k = 0; k < width && next < n && status == 0; k++) {
            if (jobs[k].pid == 0) {
                status = start_job(c, &jobs[k], &specs[next], next, prefix, &old);
                running += status == 0;
                next++;
            }
        }
        if (status != 0) {
            next = n; /* start no more; reap those running */
        }
        wait_for_children(&chld, next_wake(jobs, width));
        reap(c, jobs, width, &running, done);
        kill_late(jobs, width);
        progress(c, false);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(jobs);
    return status;
}

/* ---- the campaign ---- */

/* The recording run's result (run_all's callback). */
static void record_done(struct campaign *c, size_t index, struct result *r)
{
    (void)index;
    c->recorded = *r;
}

/* The stack hashes the recording run wrote: how many, into *out. */
static size_t read_stacks(const char *dir, uint64_t **out)
{
    char path[PATH_MAX + 16], line[64];
    snprintf(path, sizeof path, "%.*s/stacks", PATH_MAX, dir);
    FILE *f = fopen(path, "r");
    size_t n = 0, cap = 0;
    *out = NULL;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strlen(line) != 17 || strspn(line, "0123456789abcdef") != 16) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[n++] = strtoull(line, NULL, 16);
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

static void campaign_done(struct campaign *c, size_t index, struct result *r)
{
    c->runs++;
    c->done++;
    c->outcomes[r->outcome]++;
    if (r->outcome == OUT_HANG) {
        c->hangs = xrealloc(c->hangs, (c->nhangs + 1) * sizeof *c->hangs);
        c->hangs[c->nhangs++] = (struct hang){.spec = c->specs[index], .index = index};
    }
    if (r->key == NULL || (r->outcome != OUT_CRASH && r->outcome != OUT_CEBOX)) {
        result_free(r);
        return;
    }
    c->crashes++;
    for (size_t b = 0; b < c->nbuckets; b++) {
        struct bucket *k = &c->buckets[b];
        if (strcmp(k->first.key, r->key) == 0) {
            k->count++;
            if (index < k->index) {
                result_free(&k->first);
                k->first = *r;
                k->spec = c->specs[index];
                k->index = index;
            } else {
                result_free(r);
            }
            return;
        }
    }
    c->buckets = xrealloc(c->buckets, (c->nbuckets + 1) * sizeof *c->buckets);
    c->buckets[c->nbuckets++] =
        (struct bucket){.first = *r, .spec = c->specs[index], .index = index, .count = 1};
}

static int by_bucket_index(const void *a, const void *b)
{
    size_t x = ((const struct bucket *)a)->index, y = ((const struct bucket *)b)->index;
    return (x > y) - (x < y);
}

static int by_hang_index(const void *a, const void *b)
{
    size_t x = ((const struct hang *)a)->index, y = ((const struct hang *)b)->index;
    return (x > y) - (x < y);
}

/* The buckets and hangs in the plan's order, whatever order the runs ended in. */
static void campaign_order(struct campaign *c)
{
    if (c->nbuckets > 1) {
        qsort(c->buckets, c->nbuckets, sizeof *c->buckets, by_bucket_index);
    }
    if (c->nhangs > 1) {
        qsort(c->hangs, c->nhangs, sizeof *c->hangs, by_hang_index);
    }
}

static void confirm_done(struct campaign *c, size_t index, struct result *r)
{
    struct bucket *b = &c->buckets[index];
    b->confirmed = r->key != NULL && strcmp(r->key, b->first.key) == 0;
    result_free(r);
}

/* The runs of the strategy, from the recording run's figures. */
static size_t plan(struct campaign *c, const uint64_t *stacks, struct spec **out)
{
    const struct stress_options *o = c->o;
    /* The forced states the table has: limited only where it has that
     * level (under ce5, `--state limited` is refused). */
    size_t first_state = o->has_limited ? 1 : 2;
    size_t n = o->strategy == STRESS_STACKS ? c->unique_stacks
               : o->strategy == STRESS_NTH  ? (size_t)c->calls
                                            : 4 - first_state;
    struct spec *s = xcalloc(n + 1, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        s[i] = o->strategy == STRESS_STACKS ? (struct spec){SPEC_STACK, stacks[i]}
               : o->strategy == STRESS_NTH  ? (struct spec){SPEC_NTH, i + 1}
                                            : (struct spec){SPEC_STATE, first_state + i};
    }
    *out = s;
    return n;
}

static int make_base(struct campaign *c)
{
    if (c->o->out_dir != NULL) {
        snprintf(c->base, sizeof c->base, "%s", c->o->out_dir);
        if (mkdir(c->base, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "cebox stress: --out %s: %s\n", c->base, strerror(errno));
            return -1;
        }
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(c->base, sizeof c->base, "%s/cebox-stress-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(c->base) == NULL) {
        fprintf(stderr, "cebox stress: cannot make a directory in %s: %s\n", tmp ? tmp : "/tmp", strerror(errno));
        return -1;
    }
    c->temporary = true;
    return 0;
}

static const char *strategy_name(enum stress_strategy s)
{
    return s == STRESS_STACKS ? "stacks" : s == STRESS_NTH ? "nth" : "states";
}

/* ---- output ---- */

static void print_text(const struct campaign *c, FILE *f, double elapsed)
{
    fprintf(f, "cebox stress: %s: %zu run%s (strategy %s; %zu distinct allocation stacks, %" PRIu64
               " allocation calls in the recording run), %.1f s, %.1f runs/s\n",
            c->argv[0], c->runs, c->runs == 1 ? "" : "s", strategy_name(c->o->strategy), c->unique_stacks, c->calls,
            elapsed, elapsed > 0 ? (double)c->runs / elapsed : 0);
    fprintf(f, "  outcomes:");
    for (int k = 0; k < OUT_KINDS; k++) {
        fprintf(f, "%s %s %zu", k ? "," : "", outcome_text[k], c->outcomes[k]);
    }
    fprintf(f, "\n  crash buckets: %zu\n", c->nbuckets);
    for (size_t i = 0; i < c->nbuckets; i++) {
        const struct bucket *b = &c->buckets[i];
        char sig[32], *run = replay_line(c, &b->spec, false), *stress = replay_line(c, &b->spec, true);
        fprintf(f, "\nbucket %zu: %s at %s%s, %zu run%s (alone, it %s)\n", i + 1,
                report_signal_text(sig, sizeof sig, b->first.signal), b->first.where,
                b->first.outcome == OUT_CEBOX ? ": crash inside cebox (a cebox bug: please report it)" : "",
                b->count, b->count == 1 ? "" : "s", b->confirmed ? "reproduces" : "did not reproduce");
        if (b->first.failure_text != NULL) {
            fprintf(f, "  after the failure of %s", b->first.failure_text);
        } else {
            fprintf(f, "  (no failed allocation before it)\n");
        }
        fprintf(f, "  crash stack:\n%s  replay: %s\n          %s\n", b->first.crash_text, run, stress);
        free(run);
        free(stress);
    }
    for (size_t i = 0; i < c->nhangs; i++) {
        char *run = replay_line(c, &c->hangs[i].spec, false);
        fprintf(f, "\nhang %zu (killed after %.1f s): replay: %s\n", i + 1, c->o->timeout, run);
        free(run);
    }
}

static void print_json(const struct campaign *c, FILE *f, double elapsed)
{
    fprintf(f, "{\"program\": ");
    report_json_str(f, c->argv[0]);
    fprintf(f, ", \"strategy\": \"%s\", \"runs\": %zu, \"unique_stacks\": %zu, \"calls\": %" PRIu64
               ", \"elapsed_s\": %.3f, \"runs_per_s\": %.2f,\n \"outcomes\": {",
            strategy_name(c->o->strategy), c->runs, c->unique_stacks, c->calls, elapsed,
            elapsed > 0 ? (double)c->runs / elapsed : 0);
    for (int k = 0; k < OUT_KINDS; k++) {
        fprintf(f, "%s\"%s\": %zu", k ? ", " : "", outcome_key[k], c->outcomes[k]);
    }
    fprintf(f, "},\n \"buckets\": [");
    for (size_t i = 0; i < c->nbuckets; i++) {
        const struct bucket *b = &c->buckets[i];
        char sig[32], id[64], *run = replay_line(c, &b->spec, false), *stress = replay_line(c, &b->spec, true);
        spec_id(&b->spec, id, sizeof id);
        fprintf(f, "%s\n  {\"signal\": \"%s\", \"count\": %zu, \"inside_cebox\": %s, \"where\": ", i ? "," : "",
                report_signal_text(sig, sizeof sig, b->first.signal), b->count,
                b->first.outcome == OUT_CEBOX ? "true" : "false");
        report_json_str(f, b->first.where);
        fprintf(f, ", \"confirmed\": %s, \"replay_id\": \"%s\", \"replay\": ", b->confirmed ? "true" : "false", id);
        report_json_str(f, run);
        fprintf(f, ", \"replay_stress\": ");
        report_json_str(f, stress);
        fprintf(f, ",\n   \"injected\": %s,\n   \"crash_stack\": %s}",
                b->first.failure_json != NULL ? b->first.failure_json : "null", b->first.crash_json);
        free(run);
        free(stress);
    }
    fprintf(f, "],\n \"hangs\": [");
    for (size_t i = 0; i < c->nhangs; i++) {
        char *run = replay_line(c, &c->hangs[i].spec, false);
        fprintf(f, "%s{\"replay\": ", i ? ", " : "");
        report_json_str(f, run);
        fputc('}', f);
        free(run);
    }
    fprintf(f, "]}\n");
}

static int write_outputs(const struct campaign *c, double elapsed)
{
    if (c->o->json) {
        print_json(c, stdout, elapsed);
    } else {
        print_text(c, stdout, elapsed);
    }
    if (c->o->json_file != NULL) {
        FILE *f = fopen(c->o->json_file, "w");
        if (f == NULL) {
            fprintf(stderr, "cebox stress: --json %s: %s\n", c->o->json_file, strerror(errno));
            return -1;
        }
        print_json(c, f, elapsed);
        fclose(f);
    }
    return 0;
}

/* Copies the first line of dir/name to f (what `cebox run` said). */
static void copy_first_line(const char *dir, const char *name, FILE *f)
{
    char path[PATH_MAX + 32], line[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *in = fopen(path, "r");
    if (in != NULL && fgets(line, sizeof line, in) != NULL) {
        fputs(line, f);
    }
    if (in != NULL) {
        fclose(in);
    }
}

/* The recording run: the reference and the figures the plan needs.  0, or
 * 1 after saying why there is nothing to stress. */
static int record(struct campaign *c, uint64_t **stacks)
{
    struct spec rec = {SPEC_RECORD, 0};
    bool keep = c->temporary;
    c->temporary = false; /* its stack file is read after it */
    int st = run_all(c, &rec, 1, "record", record_done);
    c->temporary = keep;
    if (st != 0) {
        return 1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/record-1", c->base);
    c->unique_stacks = read_stacks(dir, stacks);
    const struct result *recorded = &c->recorded;
    c->calls = recorded->calls;
    c->ref_status = recorded->status;
    c->ref_stderr = recorded->wrote_stderr;
    if (recorded->status == 127 || recorded->status == 126) {
        fprintf(stderr, "cebox stress: %s could not be run (status %d):\n", c->argv[0], recorded->status);
        copy_first_line(dir, "stderr", stderr);
        result_free(&c->recorded);
        return 1;
    }
    if (recorded->outcome == OUT_HANG || recorded->key != NULL) {
        fprintf(stderr, "cebox stress: %s %s with no failure injected (status %d%s%s); see %s\n", c->argv[0],
                recorded->outcome == OUT_HANG ? "hung" : "crashed",
                recorded->status, recorded->where != NULL ? ", at " : "", recorded->where ? recorded->where : "",
                c->temporary ? "its output with --out DIR" : dir);
        result_free(&c->recorded);
        return 1;
    }
    result_free(&c->recorded);
    return 0;
}

static void campaign_free(struct campaign *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        result_free(&c->buckets[i].first);
    }
    free(c->buckets);
    free(c->hangs);
    symbolizer_free(c->sym);
    if (c->temporary) {
        remove_tree(c->base);
    }
}

int stress_main(const struct stress_options *opts, char **argv)
{
    struct stress_options o = *opts;
    if (o.jobs == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        o.jobs = cpus > 0 && cpus <= 256 ? (unsigned)cpus : 1;
    }
    /* A run's processes whose parent dies (killed at --timeout with their
     * group) become this process's children, for end_group to reap. */
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL);
    struct campaign c = {.o = &o, .argv = argv, .sym = symbolizer_new()};
    if (make_base(&c) != 0) {
        symbolizer_free(c.sym);
        return 2;
    }
    c.tty = isatty(2);
    c.start = c.last_progress = now_s();
    uint64_t *stacks = NULL;
    int status = record(&c, &stacks);
    if (status == 0) {
        struct spec one;
        size_t n = o.replay != NULL && parse_spec(o.replay, &one) ? 1 : plan(&c, stacks, &c.specs);
        if (o.replay != NULL) {
            c.specs = xcalloc(1, sizeof *c.specs);
            c.specs[0] = one;
        }
        c.total = n;
        c.progress = o.replay == NULL;
        status = run_all(&c, c.specs, n, "run", campaign_done) != 0 ? 2 : 0;
        progress(&c, true);
        campaign_order(&c);
        struct spec *again = xcalloc(c.nbuckets + 1, sizeof *again);
        for (size_t b = 0; b < c.nbuckets; b++) {
            again[b] = c.buckets[b].spec;
        }
        c.progress = false;
        run_all(&c, again, c.nbuckets, "confirm", confirm_done);
        free(again);
        free(c.specs);
        c.specs = NULL;
        double elapsed = now_s() - c.start;
        if (write_outputs(&c, elapsed) != 0 && status == 0) {
            status = 2;
        }
        if (status == 0) {
            status = c.nbuckets + c.nhangs != 0 ? 1 : 0;
        }
    }
    free(stacks);
    campaign_free(&c);
    return status;
}
