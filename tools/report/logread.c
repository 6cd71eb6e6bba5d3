/*
 * logread.c - the event log reader (see logread.h).
 */
#include "report/logread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Out of memory in the tool: nothing sensible is left to do. */
static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n != 0 ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "cebox report: out of memory\n");
        exit(2);
    }
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    if (n != 0) {
        memcpy(d, s, n);
    }
    d[n] = '\0';
    return d;
}

/* Appends one zeroed element to an array of `size`-byte elements whose
 * capacity is the smallest power of two holding `count` (doubled when full,
 * so a log of a million failures reads in linear time). */
static void *grow(void *arr, size_t *count, size_t size)
{
    if ((*count & (*count - 1)) == 0) {
        arr = xrealloc(arr, (*count != 0 ? *count * 2 : 1) * size);
    }
    memset((char *)arr + *count * size, 0, size);
    (*count)++;
    return arr;
}

/* Appends rec to the array arr of count elements (grow, then copy). */
#define APPEND(arr, count, rec)                                                                    \
    ((arr) = grow((arr), &(count), sizeof *(arr)), (arr)[(count) - 1] = (rec))

/* Inserts rec into arr, kept in order of time_ns: after every element
 * of its time (what another writer appended lands mostly last, so this is
 * linear over a whole log). */
#define INSERT_BY_TIME(arr, count, rec)                                                            \
    do {                                                                                           \
        (arr) = grow((arr), &(count), sizeof *(arr));                                              \
        size_t at_ = (count) - 1;                                                                  \
        for (; at_ > 0 && (arr)[at_ - 1].time_ns > (rec).time_ns; at_--) {                         \
            (arr)[at_] = (arr)[at_ - 1];                                                           \
        }                                                                                          \
        (arr)[at_] = (rec);                                                                        \
    } while (0)

/* Notes that a record of kind `what` ended early or broke a bound; the
 * caller returns what it returns (-1: the reader stops there). */
static int too_short(struct lr_log *log, const char *what)
{
    snprintf(log->damage, sizeof log->damage, "%s record too short", what);
    return -1;
}

/* A monotonic time of process p as time since its origin (0 before it). */
static uint64_t since_start(const struct lr_process *p, uint64_t when)
{
    return when >= p->origin_ns ? when - p->origin_ns : 0;
}

static char *get_string(struct log_dec *d)
{
    const char *s;
    size_t n = log_get_str(d, &s);
    return xstrndup(s != NULL ? s : "", s != NULL ? n : 0);
}

/* A NUL-separated list of strings, joined by spaces. */
static char *get_joined(struct log_dec *d)
{
    const char *s;
    size_t n = log_get_str(d, &s);
    char *out = xstrndup(s != NULL ? s : "", s != NULL ? n : 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = out[i] == '\0' ? ' ' : out[i];
    }
    return out;
}

/* ---- one record each ---- */

static int read_header(struct lr_log *log, struct log_dec *d, uint64_t offset)
{
    char tag[8];
    log_get_bytes(d, tag, sizeof tag);
    uint32_t version = log_get_u32(d);
    if (d->short_read || memcmp(tag, LOG_HEADER_TAG, 8) != 0) {
        snprintf(log->damage, sizeof log->damage, "corrupt header record");
        return -1;
    }
    if (version != LOG_VERSION) {
        snprintf(log->damage, sizeof log->damage, "log format version %u; this cebox reads version %u",
                 (unsigned)version, (unsigned)LOG_VERSION);
        return -1;
    }
    log->procs = grow(log->procs, &log->nprocs, sizeof *log->procs);
    struct lr_process *p = &log->procs[log->nprocs - 1];
    p->offset = offset;
    p->version = version;
    p->pid = log_get_u32(d);
    p->ppid = log_get_u32(d);
    p->flags = log_get_u32(d);
    p->start_real_ns = log_get_u64(d);
    p->start_mono_ns = log_get_u64(d);
    p->page_size = log_get_u32(d);
    p->granularity = log_get_u32(d);
    p->slot_base = log_get_u64(d);
    p->slot_size = log_get_u64(d);
    p->ram_bytes = log_get_u64(d);
    p->stack_depth = log_get_u32(d);
    p->profile = get_string(d);
    p->command = get_joined(d); /* arguments separated by NUL bytes */
    p->settings = get_string(d);
    p->exe = get_string(d);
    if (d->short_read) {
        return too_short(log, "header");
    }
    uint64_t run_start = d->pos < d->len ? log_get_u64(d) : 0; /* absent from older logs */
    p->run_origin = run_start != 0 && run_start <= p->start_mono_ns && !d->short_read;
    p->origin_ns = p->run_origin ? run_start : p->start_mono_ns;
    p->run_offset_ns = p->start_mono_ns - p->origin_ns;
    return 0;
}

static int read_module(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_module m;
    memset(&m, 0, sizeof m);
    m.bias = log_get_u64(d);
    m.lo = log_get_u64(d);
    m.hi = log_get_u64(d);
    const char *id;
    size_t idlen = log_get_str(d, &id);
    const char *path;
    size_t plen = log_get_str(d, &path);
    if (d->short_read || idlen > LOG_MAX_BUILD_ID) {
        return too_short(log, "module");
    }
    m.build_id_len = idlen;
    if (idlen != 0) {
        memcpy(m.build_id, id, idlen);
    }
    m.path = xstrndup(path, plen);
    APPEND(p->modules, p->nmodules, m);
    return 0;
}

static int read_occupant(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_occupant o;
    memset(&o, 0, sizeof o);
    o.kind = (char)log_get_u8(d);
    o.xip = log_get_u8(d) != 0;
    o.first_block = log_get_u32(d);
    o.blocks = log_get_u32(d);
    o.pages = log_get_u32(d);
    const char *name;
    size_t len = log_get_str(d, &name);
    if (d->short_read) {
        return too_short(log, "occupant");
    }
    o.name = xstrndup(name, len);
    APPEND(p->occupants, p->noccupants, o);
    return 0;
}

/* The module holding ip now: the latest record whose range covers it (an
 * object loaded where an unloaded one was supersedes it). */
static int module_of(const struct lr_process *p, uint64_t ip)
{
    for (size_t i = p->nmodules; i-- > 0;) {
        if (ip >= p->modules[i].lo && ip < p->modules[i].hi) {
            return (int)i;
        }
    }
    return -1;
}

static int read_stack(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    uint32_t id = log_get_u32(d);
    uint32_t depth = log_get_u32(d);
    if (d->short_read || depth > LOG_MAX_DEPTH || (size_t)depth * 8 > d->len - d->pos) {
        return too_short(log, "stack");
    }
    struct lr_stack s = {.id = id, .depth = depth};
    s.ips = xrealloc(NULL, (depth ? depth : 1) * sizeof *s.ips);
    s.module = xrealloc(NULL, (depth ? depth : 1) * sizeof *s.module);
    for (uint32_t i = 0; i < depth; i++) {
        s.ips[i] = log_get_u64(d);
        s.module[i] = module_of(p, s.ips[i]);
    }
    /* A stack id written again (a forked child's new file) replaces the old. */
    for (size_t i = 0; i < p->nstacks; i++) {
        if (p->stacks[i].id == id) {
            free(p->stacks[i].ips);
            free(p->stacks[i].module);
            p->stacks[i] = s;
            return 0;
        }
    }
    APPEND(p->stacks, p->nstacks, s);
    return 0;
}

static int read_failure(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_failure f;
    memset(&f, 0, sizeof f);
    f.seq = log_get_u32(d);
    f.api = log_get_u16(d);
    f.reason = log_get_u16(d);
    f.tid = log_get_u32(d);
    f.state = log_get_u32(d);
    f.size = log_get_u64(d);
    uint64_t when = log_get_u64(d);
    f.time_ns = since_start(p, when);
    f.stack_id = log_get_u32(d);
    f.error = log_get_u32(d);
    f.blocks = log_get_u32(d);
    f.free_blocks = log_get_u32(d);
    f.largest_free_run = log_get_u32(d);
    f.committed_bytes = log_get_u64(d);
    f.ram_free_bytes = log_get_u64(d);
    f.lma_bytes = log_get_u64(d);
    if (d->short_read) {
        return too_short(log, "failure");
    }
    APPEND(p->failures, p->nfailures, f);
    return 0;
}

/* An unmarked map (an older writer's): each run of one letter is taken as
 * one reservation, its first block a capital. */
static void mark_runs(char *cells, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (cells[i] >= 'A' && cells[i] <= 'Z' && (cells[i - 1] & ~0x20) == cells[i]) {
            cells[i] = (char)(cells[i] | 0x20);
        }
    }
}

/* The payload of records 5 and 13 into m (its cells owned by the caller
 * after a success); -1 with the damage noted. */
static int decode_map(struct lr_log *log, struct lr_process *p, struct log_dec *d, struct lr_map *m)
{
    uint32_t seq = log_get_u32(d);
    uint32_t blocks = log_get_u32(d);
    (void)log_get_u64(d); /* LMA bytes: also in the failure record */
    uint32_t runs = log_get_u32(d);
    if (d->short_read || blocks > (1u << 24) || (size_t)runs * 5 > d->len - d->pos) {
        snprintf(log->damage, sizeof log->damage, "slot map record too short");
        return -1;
    }
    char *cells = xrealloc(NULL, (size_t)blocks + 1);
    size_t n = 0;
    for (uint32_t r = 0; r < runs; r++) {
        char c = (char)log_get_u8(d);
        uint32_t count = log_get_u32(d);
        if (count > blocks - n) {
            free(cells);
            snprintf(log->damage, sizeof log->damage, "slot map record inconsistent (more blocks than the slot)");
            return -1;
        }
        memset(cells + n, c, count);
        n += count;
    }
    cells[n] = '\0';
    *m = (struct lr_map){.seq = seq, .cause = LOG_MAP_FAILURE, .cells = cells};
    if (d->pos < d->len) { /* cause, time and flags: absent from older logs */
        m->cause = log_get_u8(d);
        uint64_t t = log_get_u64(d);
        m->marked = (log_get_u32(d) & LOG_MAP_MARKED) != 0;
        m->time_ns = since_start(p, t);
        if (d->short_read) {
            free(cells);
            snprintf(log->damage, sizeof log->damage, "slot map record too short");
            return -1;
        }
    }
    if (!m->marked) {
        mark_runs(cells, n);
    }
    return 0;
}

static int read_map(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_map m;
    if (decode_map(log, p, d, &m) != 0) {
        return -1;
    }
    struct lr_failure *f = NULL;
    for (size_t i = p->nfailures; m.cause == LOG_MAP_FAILURE && i-- > 0;) {
        if (p->failures[i].seq == m.seq) {
            f = &p->failures[i];
            break;
        }
    }
    if (m.cause == LOG_MAP_FAILURE && f == NULL) {
        free(m.cells); /* no failure to attach it to: ignored */
        return 0;
    }
    if (f != NULL) {
        f->map = m.cells; /* the latest map of that failure; the process's list owns them all */
        m.time_ns = f->time_ns;
    }
    APPEND(p->maps, p->nmaps, m);
    return 0;
}

/* The process's exit sample is its last: cebox run sees a process as
 * gone only once it is a zombie, so a tick between the target's exit
 * sample and its end may sample it once more (its figures then are the
 * exit's); such samples, and the maps copied then, are dropped,
 * whichever record comes first. */
static void drop_after_exit(struct lr_process *p, uint64_t exit_ns)
{
    while (p->nsamples != 0 && p->samples[p->nsamples - 1].time_ns > exit_ns) {
        p->nsamples--;
    }
    while (p->ntlmaps != 0 && p->tlmaps[p->ntlmaps - 1].time_ns > exit_ns) {
        free(p->tlmaps[--p->ntlmaps].cells);
    }
}

/* The time of p's exit sample, if it has one yet (it is the last). */
static bool exit_sampled(const struct lr_process *p, uint64_t *at)
{
    if (p->nsamples == 0 || p->samples[p->nsamples - 1].kind != LOG_SAMPLE_EXIT) {
        return false;
    }
    *at = p->samples[p->nsamples - 1].time_ns;
    return true;
}

/* A map cebox run copied at a tick (record 13), kept in time order as the
 * samples are; whatever cause it says, it is a sampled one. */
static int read_timeline_map(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_map m;
    if (decode_map(log, p, d, &m) != 0) {
        return -1;
    }
    m.cause = LOG_MAP_SAMPLE;
    m.seq = 0;
    uint64_t exit_ns;
    if (exit_sampled(p, &exit_ns) && m.time_ns > exit_ns) {
        free(m.cells); /* copied after the exit's sample: see drop_after_exit */
        return 0;
    }
    INSERT_BY_TIME(p->tlmaps, p->ntlmaps, m);
    return 0;
}

/* A timeline sample, kept in time order: cebox run's are appended by
 * another process and may land a little after the target's later ones. */
static int read_sample(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct log_sample smp;
    log_get_sample(d, &smp);
    if (d->short_read) {
        snprintf(log->damage, sizeof log->damage, "sample record too short");
        return -1;
    }
    smp.time_ns = since_start(p, smp.time_ns);
    uint64_t exit_ns;
    if (exit_sampled(p, &exit_ns) && smp.time_ns >= exit_ns) {
        return 0; /* after the exit's: see drop_after_exit */
    }
    if (smp.kind == LOG_SAMPLE_EXIT) {
        drop_after_exit(p, smp.time_ns);
    }
    INSERT_BY_TIME(p->samples, p->nsamples, smp);
    return 0;
}

static void copy_field(char *dst, size_t cap, struct log_dec *d)
{
    const char *s;
    size_t n = log_get_str(d, &s);
    n = n < cap - 1 ? n : cap - 1;
    if (n != 0) {
        memcpy(dst, s, n);
    }
    dst[n] = '\0';
}

/* The summary's occupancy fields (LOG-FORMAT.md), in put_occupancy's order. */
static void get_occupancy(struct log_dec *d, struct run_summary *s)
{
    uint32_t *const counts[] = {&s->image_blocks, &s->xip_dlls, &s->xip_dll_blocks, &s->ram_dlls,
                                &s->ram_dll_blocks, &s->stack_blocks, &s->peak_stacks, &s->threads_refused,
                                &s->occupants_refused};
    s->occupancy_known = true;
    s->slot_base = log_get_u64(d);
    s->peak_committed_image_pages = log_get_u64(d);
    s->peak_committed_stack_pages = log_get_u64(d);
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        *counts[i] = log_get_u32(d);
    }
}

static int read_summary(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct run_summary s;
    memset(&s, 0, sizeof s);
    uint64_t when = log_get_u64(d);
    s.pid = log_get_u32(d);
    copy_field(s.command, sizeof s.command, d);
    copy_field(s.profile, sizeof s.profile, d);
    s.granularity = log_get_u64(d);
    s.page_size = log_get_u64(d);
    s.blocks = log_get_u32(d);
    s.peak_reserved_blocks = log_get_u32(d);
    s.peak_committed_pages = log_get_u64(d);
    s.heap_peak_live_bytes = log_get_u64(d);
    s.heap_peak_live_blocks = log_get_u64(d);
    s.heap_peak_committed_bytes = log_get_u64(d);
    uint32_t apis = log_get_u32(d);
    if (apis > 1024) {
        d->short_read = true;
    }
    for (uint32_t i = 0; i < apis && !d->short_read; i++) {
        uint64_t v = log_get_u64(d);
        if (i < LOG_API_COUNT) {
            s.failures[i] = v;
        }
    }
    s.fail_exhausted = log_get_u64(d);
    s.fail_fragmented = log_get_u64(d);
    s.fail_ram = log_get_u64(d);
    s.fail_cap = log_get_u64(d);
    s.bad_frees = log_get_u64(d);
    s.foreign_frees = log_get_u64(d);
    s.outside_peak = log_get_u64(d);
    if (d->pos < d->len) { /* absent from older logs */
        s.libc_malloc_bytes = log_get_u64(d);
    }
    if (d->pos < d->len) {
        s.unrecorded_failures = log_get_u64(d);
    }
    if (d->pos < d->len) {
        s.heap_live_bytes = log_get_u64(d);
        s.heap_live_blocks = log_get_u64(d);
    }
    if (d->pos < d->len) {
        copy_field(s.private_device, sizeof s.private_device, d);
    }
    if (d->pos < d->len) {
        s.fail_injected = log_get_u64(d);
    }
    if (d->pos < d->len) {
        s.kinds_known = true;
        s.peak_committed_heap_pages = log_get_u64(d);
    }
    if (d->pos < d->len) {
        s.own_known = true;
        s.own_meta_bytes = log_get_u64(d);
        s.own_mapped_peak = log_get_u64(d);
    }
    if (d->pos < d->len) {
        get_occupancy(d, &s);
    }
    if (d->short_read) {
        return too_short(log, "summary");
    }
    p->has_summary = true;
    p->summary = s;
    p->exit_ns = since_start(p, when);
    return 0;
}

static int read_leak(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_leak l;
    l.stack_id = log_get_u32(d);
    l.kind = log_get_u8(d);
    l.bytes = log_get_u64(d);
    l.charged = log_get_u64(d);
    l.blocks = log_get_u64(d);
    if (d->short_read) {
        return too_short(log, "leak");
    }
    l.what = d->pos < d->len ? log_get_u8(d) : LOG_LEAK_HEAP; /* absent from older logs */
    APPEND(p->leaks, p->nleaks, l);
    return 0;
}

/* Records 10-12: nhead, nfields, the head, the sites; fields past what
 * this reader keeps are skipped, fields the writer did not have are 0.
 * The time (the first head field) is made relative to the start. */
static int read_sites(struct lr_log *log, struct lr_process *p, struct log_dec *d, struct lr_sites *out)
{
    memset(out, 0, sizeof *out);
    unsigned nhead = log_get_u8(d), nfields = log_get_u8(d);
    for (unsigned i = 0; i < nhead; i++) {
        uint64_t v = log_get_u64(d);
        if (i < LOG_SITES_MAX_HEAD) {
            out->head[i] = v;
        }
    }
    out->head[0] = since_start(p, out->head[0]);
    uint32_t n = log_get_u32(d);
    if (d->short_read || (uint64_t)n * (4 + 8 * (uint64_t)nfields) > d->len - d->pos) {
        return too_short(log, "site");
    }
    out->sites = n != 0 ? xrealloc(NULL, n * sizeof *out->sites) : NULL;
    for (uint32_t k = 0; k < n; k++) {
        struct lr_site_val *t = &out->sites[out->n++];
        memset(t, 0, sizeof *t);
        t->stack_id = log_get_u32(d);
        for (unsigned f = 0; f < nfields; f++) {
            uint64_t v = log_get_u64(d);
            if (f < LOG_SITES_MAX_FIELDS) {
                t->v[f] = v;
            }
        }
    }
    return 0;
}

static int read_growth(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_sites g;
    if (read_sites(log, p, d, &g) != 0) {
        return -1;
    }
    APPEND(p->growth, p->ngrowth, g);
    return 0;
}

/* A PEAK record: the last one of a process wins. */
static int read_last(struct lr_log *log, struct lr_process *p, struct log_dec *d, struct lr_sites *dst, bool *has)
{
    struct lr_sites t;
    if (read_sites(log, p, d, &t) != 0) {
        return -1;
    }
    free(dst->sites);
    *dst = t;
    *has = true;
    return 0;
}

/* A PINNING record: at exit, or at the slot's least free run (its head's
 * kind; a log without it has the exit's only).  The last of each wins. */
static int read_pinning(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_sites t;
    if (read_sites(log, p, d, &t) != 0) {
        return -1;
    }
    bool least = t.head[LOG_PIN_KIND] == LOG_PIN_AT_LEAST_RUN;
    struct lr_sites *dst = least ? &p->pinning_least : &p->pinning;
    free(dst->sites);
    *dst = t;
    *(least ? &p->has_pinning_least : &p->has_pinning) = true;
    return 0;
}

static int read_end(struct lr_log *log, struct lr_process *p, struct log_dec *d)
{
    struct lr_end e;
    e.how = log_get_u8(d);
    e.value = (int)log_get_u32(d);
    e.fault_addr = log_get_u64(d);
    e.crash_stack_id = log_get_u32(d);
    e.flags = log_get_u32(d);
    e.untracked = log_get_u64(d);
    if (d->short_read) {
        return too_short(log, "end");
    }
    e.calls = d->pos < d->len ? log_get_u64(d) : 0; /* absent from older logs */
    p->has_end = true;
    p->end = e;
    return 0;
}

/* ---- the file ---- */

static void damage(struct lr_log *log, uint64_t offset, const char *fmt, const char *detail)
{
    log->damaged = true;
    log->damage_offset = offset;
    if (fmt != NULL) {
        snprintf(log->damage, sizeof log->damage, fmt, detail);
    }
}

void logread_buffer(const char *name, const unsigned char *data, size_t len, struct lr_log *log)
{
    memset(log, 0, sizeof *log);
    log->path = xstrndup(name, strlen(name));
    if (len == 0) {
        damage(log, 0, "%s", "empty file: no header record");
        return;
    }
    size_t off = 0;
    while (off < len) {
        if (len - off < LOG_HEAD_SIZE) {
            char what[64];
            snprintf(what, sizeof what, "%zu of its %d head bytes", len - off, LOG_HEAD_SIZE);
            damage(log, off, "record truncated (%s)", what);
            return;
        }
        unsigned type;
        uint32_t length, crc;
        const char *why;
        if (log_head_parse(data + off, &type, &length, &crc, &why) != 0) {
            damage(log, off, off == 0 ? "not a cebox event log (%s)" : "corrupt record (%s: no record starts here)",
                   why);
            return;
        }
        if (length > len - off - LOG_HEAD_SIZE) {
            char what[64];
            snprintf(what, sizeof what, "%zu of its %u payload bytes", len - off - LOG_HEAD_SIZE, (unsigned)length);
            damage(log, off, "record truncated (%s)", what);
            return;
        }
        const unsigned char *payload = data + off + LOG_HEAD_SIZE;
        if (log_record_crc(data + off, payload, length) != crc) {
            damage(log, off, "%s", "corrupt record (checksum mismatch)");
            return;
        }
        if (off == 0 && type != LOG_REC_HEADER) {
            damage(log, off, "%s", "not a cebox event log (it does not begin with a header record)");
            return;
        }
        struct log_dec d;
        log_dec_init(&d, payload, length);
        struct lr_process *p = log->nprocs ? &log->procs[log->nprocs - 1] : NULL;
        int r = 0;
        switch (type) {
        case LOG_REC_HEADER:
            r = read_header(log, &d, off);
            break;
        case LOG_REC_MODULE: r = read_module(log, p, &d); break;
        case LOG_REC_STACK: r = read_stack(log, p, &d); break;
        case LOG_REC_FAILURE: r = read_failure(log, p, &d); break;
        case LOG_REC_MAP: r = read_map(log, p, &d); break;
        case LOG_REC_SUMMARY: r = read_summary(log, p, &d); break;
        case LOG_REC_LEAK: r = read_leak(log, p, &d); break;
        case LOG_REC_END: r = read_end(log, p, &d); break;
        case LOG_REC_SAMPLE: r = read_sample(log, p, &d); break;
        case LOG_REC_GROWTH: r = read_growth(log, p, &d); break;
        case LOG_REC_PEAK: r = read_last(log, p, &d, &p->peak, &p->has_peak); break;
        case LOG_REC_PINNING: r = read_pinning(log, p, &d); break;
        case LOG_REC_OCCUPANT: r = read_occupant(log, p, &d); break;
        case LOG_REC_TIMELINE_MAP: r = read_timeline_map(log, p, &d); break;
        default: break; /* a record of a newer writer: skipped */
        }
        if (r != 0) {
            damage(log, off, NULL, NULL);
            return;
        }
        log->records++;
        off += LOG_HEAD_SIZE + length;
    }
}

int logread_file(const char *path, struct lr_log *log, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            data = xrealloc(data, cap);
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(data);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    logread_buffer(path, data, len, log);
    free(data);
    return 0;
}

void logread_free(struct lr_log *log)
{
    for (size_t i = 0; i < log->nprocs; i++) {
        struct lr_process *p = &log->procs[i];
        free(p->profile);
        free(p->command);
        free(p->settings);
        free(p->exe);
        for (size_t m = 0; m < p->nmodules; m++) {
            free(p->modules[m].path);
        }
        free(p->modules);
        for (size_t s = 0; s < p->nstacks; s++) {
            free(p->stacks[s].ips);
            free(p->stacks[s].module);
        }
        free(p->stacks);
        for (size_t m = 0; m < p->nmaps; m++) {
            free(p->maps[m].cells);
        }
        free(p->maps);
        for (size_t m = 0; m < p->ntlmaps; m++) {
            free(p->tlmaps[m].cells);
        }
        free(p->tlmaps);
        free(p->failures);
        free(p->leaks);
        free(p->samples);
        for (size_t g = 0; g < p->ngrowth; g++) {
            free(p->growth[g].sites);
        }
        free(p->growth);
        free(p->peak.sites);
        free(p->pinning.sites);
        free(p->pinning_least.sites);
        for (size_t o = 0; o < p->noccupants; o++) {
            free(p->occupants[o].name);
        }
        free(p->occupants);
    }
    free(log->procs);
    free(log->path);
    memset(log, 0, sizeof *log);
}

const struct lr_stack *logread_stack(const struct lr_process *p, uint32_t id)
{
    for (size_t i = 0; i < p->nstacks; i++) {
        if (p->stacks[i].id == id) {
            return &p->stacks[i];
        }
    }
    return NULL;
}
