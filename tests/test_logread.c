/*
 * test_logread.c - the event log reader on logs built here with the
 * writer's encoder: every field read back; every truncation and every
 * single-byte corruption stops reading at the damaged record's offset,
 * with every record before it intact; two processes in one file; foreign
 * files; newer record types skipped; the maps sampled on the timeline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "record/logformat.h"
#include "record/runsummary.h"
#include "report/logread.h"
#include "report/timeline.h"

#define MAX_RECORDS 32

struct built {
    unsigned char data[16384];
    size_t len;
    size_t starts[MAX_RECORDS]; /* offset of each record */
    size_t n;
};

static unsigned char rec[8192];

static void add(struct built *b, struct log_enc *e)
{
    size_t n = log_enc_finish(e);
    assert_true(n > 0);
    assert_true(b->len + n <= sizeof b->data);
    b->starts[b->n++] = b->len;
    memcpy(b->data + b->len, e->buf, n);
    b->len += n;
}

static void header(struct built *b, uint32_t pid, uint32_t version)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_HEADER);
    log_put_bytes(&e, LOG_HEADER_TAG, 8);
    log_put_u32(&e, version);
    log_put_u32(&e, pid);
    log_put_u32(&e, 1);       /* ppid */
    log_put_u32(&e, 0);       /* flags */
    log_put_u64(&e, 1000);    /* realtime start */
    log_put_u64(&e, 5000);    /* monotonic start */
    log_put_u32(&e, 4096);
    log_put_u32(&e, 65536);
    log_put_u64(&e, 0x7f0000000000ull);
    log_put_u64(&e, 1u << 20);
    log_put_u64(&e, 64u << 20);
    log_put_u32(&e, 32);
    log_put_str(&e, "ce5", 3);
    log_put_str(&e, "prog\0arg one\0two", 16);
    log_put_str(&e, "CEBOX_OUT=x\t(set)\n", 18);
    log_put_str(&e, "/bin/prog", 9);
    add(b, &e);
}

static void module(struct built *b, uint64_t bias, uint64_t lo, uint64_t hi, const char *path)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_MODULE);
    log_put_u64(&e, bias);
    log_put_u64(&e, lo);
    log_put_u64(&e, hi);
    log_put_str(&e, "\x01\x02\x03\x04", 4);
    log_put_str(&e, path, strlen(path));
    add(b, &e);
}

static void stack(struct built *b, uint32_t id, const uint64_t *ips, uint32_t depth)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_STACK);
    log_put_u32(&e, id);
    log_put_u32(&e, depth);
    for (uint32_t i = 0; i < depth; i++) {
        log_put_u64(&e, ips[i]);
    }
    add(b, &e);
}

static void failure(struct built *b, uint32_t seq, uint32_t stack_id, uint64_t size, unsigned reason)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_FAILURE);
    log_put_u32(&e, seq);
    log_put_u16(&e, LOG_API_MALLOC);
    log_put_u16(&e, (uint16_t)reason);
    log_put_u32(&e, 77);        /* tid */
    log_put_u32(&e, 2);         /* low */
    log_put_u64(&e, size);
    log_put_u64(&e, 5000 + 1500000000ull); /* 1.5 s after the start */
    log_put_u32(&e, stack_id);
    log_put_u32(&e, 8);
    log_put_u32(&e, 16);
    log_put_u32(&e, 5);
    log_put_u32(&e, 3);
    log_put_u64(&e, 8192);
    log_put_u64(&e, 1u << 20);
    log_put_u64(&e, 0);
    add(b, &e);
}

static void map(struct built *b, uint32_t seq)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_MAP);
    log_put_u32(&e, seq);
    log_put_u32(&e, 16);
    log_put_u64(&e, 0);
    log_put_u32(&e, 3);
    log_put_u8(&e, '-');
    log_put_u32(&e, 1);
    log_put_u8(&e, 'H');
    log_put_u32(&e, 3);
    log_put_u8(&e, '.');
    log_put_u32(&e, 12);
    add(b, &e);
}

/* A map cebox run sampled on the timeline (record 13) at `at` ns after
 * the header's start. */
static void timeline_map(struct built *b, const char *cells, uint64_t at)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_TIMELINE_MAP);
    log_put_map(&e, 0, cells, strlen(cells), 0, LOG_MAP_SAMPLE, 5000 + at);
    add(b, &e);
}

/* An exit summary; `trailing` u64 fields after outside_peak (0: a log of
 * before libc_malloc_bytes; 4: with it, unrecorded_failures and the live
 * heap at exit), then the private-device string when `device` is not NULL. */
/* A summary record's fields up to cebox's own memory (with `after` 4). */
static void summary_fields(struct log_enc *e, uint32_t pid, int trailing, const char *device, int after)
{
    log_put_u64(e, 5000 + 2000000000ull);
    log_put_u32(e, pid);
    log_put_str(e, "prog arg one two", 16);
    log_put_str(e, "ce5", 3);
    log_put_u64(e, 65536);
    log_put_u64(e, 4096);
    log_put_u32(e, 16);
    log_put_u32(e, 4);
    log_put_u64(e, 3);
    log_put_u64(e, 100);
    log_put_u64(e, 2);
    log_put_u64(e, 8192);
    log_put_u32(e, LOG_API_COUNT);
    for (int i = 0; i < LOG_API_COUNT; i++) {
        log_put_u64(e, (uint64_t)i);
    }
    for (int i = 0; i < 7 + trailing; i++) {
        log_put_u64(e, (uint64_t)(10 + i));
    }
    if (device != NULL) {
        log_put_str(e, device, strlen(device));
    }
    for (int i = 0; i < after; i++) {
        log_put_u64(e, (uint64_t)(30 + i));
    }
}

static void summary_tail(struct built *b, uint32_t pid, int trailing, const char *device, int after)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_SUMMARY);
    summary_fields(&e, pid, trailing, device, after);
    add(b, &e);
}

static void summary_with(struct built *b, uint32_t pid, int trailing, const char *device)
{
    summary_tail(b, pid, trailing, device, 0);
}

static void summary(struct built *b, uint32_t pid)
{
    summary_with(b, pid, 0, NULL);
}

/* header, 2 modules, a stack, failure+map twice (same stack), summary. */
static void build(struct built *b)
{
    memset(b, 0, sizeof *b);
    header(b, 4242, LOG_VERSION);
    module(b, 0x1000, 0x1000, 0x5000, "/bin/prog");
    module(b, 0x7000, 0x7000, 0x9000, "/lib/libc.so.6");
    uint64_t ips[3] = {0x1100, 0x7100, 0xdead};
    stack(b, 1, ips, 3);
    failure(b, 1, 1, 4096, LOG_REASON_EXHAUSTED);
    map(b, 1);
    failure(b, 2, 1, 8192, LOG_REASON_FRAGMENTED);
    map(b, 2);
    summary(b, 4242);
}

static void reads_every_field(void **state)
{
    (void)state;
    struct built b;
    build(&b);
    struct lr_log log;
    logread_buffer("mem.log", b.data, b.len, &log);
    assert_false(log.damaged);
    assert_int_equal(log.records, b.n);
    assert_string_equal(log.path, "mem.log");
    assert_int_equal(log.nprocs, 1);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->pid, 4242);
    assert_int_equal(p->ppid, 1);
    assert_string_equal(p->command, "prog arg one two");
    assert_string_equal(p->profile, "ce5");
    assert_string_equal(p->exe, "/bin/prog");
    assert_int_equal(p->granularity, 65536);
    assert_int_equal(p->slot_size, 1u << 20);
    assert_int_equal(p->nmodules, 2);
    assert_string_equal(p->modules[1].path, "/lib/libc.so.6");
    assert_int_equal(p->modules[1].build_id_len, 4);
    assert_int_equal(p->nstacks, 1);
    const struct lr_stack *s = logread_stack(p, 1);
    assert_non_null(s);
    assert_int_equal(s->depth, 3);
    assert_int_equal(s->module[0], 0);
    assert_int_equal(s->module[1], 1);
    assert_int_equal(s->module[2], -1); /* in no module */
    assert_null(logread_stack(p, 2));
    assert_int_equal(p->nfailures, 2);
    const struct lr_failure *f = &p->failures[1];
    assert_int_equal(f->seq, 2);
    assert_int_equal(f->reason, LOG_REASON_FRAGMENTED);
    assert_int_equal(f->size, 8192);
    assert_int_equal(f->time_ns, 1500000000ull);
    assert_int_equal(f->tid, 77);
    assert_int_equal(f->state, 2);
    assert_int_equal(f->free_blocks, 5);
    assert_int_equal(f->largest_free_run, 3);
    assert_string_equal(f->map, "-Hhh............"); /* an unmarked map: a run of one letter is one reservation */
    assert_string_equal(p->failures[0].map, "-Hhh............");
    assert_true(p->has_summary);
    assert_int_equal(p->summary.pid, 4242);
    assert_string_equal(p->summary.command, "prog arg one two");
    assert_int_equal(p->summary.failures[LOG_API_VIRTUALALLOC], LOG_API_VIRTUALALLOC);
    assert_int_equal(p->summary.outside_peak, 16);
    assert_int_equal(p->summary.libc_malloc_bytes, 0); /* absent: an older log */
    assert_int_equal(p->summary.unrecorded_failures, 0);
    assert_int_equal(p->summary.heap_live_blocks, 0);
    assert_false(p->summary.kinds_known); /* absent: read as 0, not printed */
    assert_int_equal(p->summary.peak_committed_heap_pages, 0);
    assert_false(p->summary.own_known);
    assert_int_equal(p->exit_ns, 2000000000ull);
    logread_free(&log);
}

/* The summary's optional trailing fields are read when present. */
static void reads_the_optional_summary_fields(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    summary_with(&b, 4242, 4, NULL);
    struct lr_log log;
    logread_buffer("mem.log", b.data, b.len, &log);
    assert_false(log.damaged);
    assert_true(log.procs[0].has_summary);
    assert_string_equal(log.procs[0].summary.private_device, ""); /* absent */
    assert_int_equal(log.procs[0].summary.outside_peak, 16);
    assert_int_equal(log.procs[0].summary.libc_malloc_bytes, 17);
    assert_int_equal(log.procs[0].summary.unrecorded_failures, 18);
    assert_int_equal(log.procs[0].summary.heap_live_bytes, 19);
    assert_int_equal(log.procs[0].summary.heap_live_blocks, 20);
    logread_free(&log);
}

/* Why a process ran on a private device: the summary's last field, and
 * its line in the text. */
static void reads_the_private_device_reason(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    const char *why = "could not join the session /dev/shm/s: Permission denied";
    summary_with(&b, 4242, 4, why);
    struct lr_log log;
    logread_buffer("mem.log", b.data, b.len, &log);
    assert_false(log.damaged);
    assert_true(log.procs[0].has_summary);
    assert_int_equal(log.procs[0].summary.heap_live_blocks, 20);
    assert_string_equal(log.procs[0].summary.private_device, why);
    char text[4096];
    run_summary_format(&log.procs[0].summary, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    assert_non_null(strstr(text, "\ncebox:   device: private (could not join the session /dev/shm/s: "
                                 "Permission denied)\n"));
    logread_free(&log);
}

/* The heap's share of the committed peak: the field after fail_injected,
 * and its line in the text. */
static void reads_the_committed_kinds(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    summary_tail(&b, 4242, 4, "", 2); /* fail_injected 30, heap pages 31 */
    struct lr_log log;
    logread_buffer("mem.log", b.data, b.len, &log);
    assert_false(log.damaged);
    const struct run_summary *s = &log.procs[0].summary;
    assert_int_equal(s->fail_injected, 30);
    assert_true(s->kinds_known);
    assert_int_equal(s->peak_committed_heap_pages, 31);
    assert_false(s->own_known); /* cebox's own memory: absent here */
    char text[4096];
    run_summary_format(s, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    /* peak committed 3 pages of 4096 in this record: the heap's 31 exceed
     * it, so the rest is 0, never a wrapped count */
    assert_non_null(strstr(text, "\ncebox:   slot committed at its peak: heap 124.0 KB, "
                                 "mappings and VirtualAlloc 0 bytes\n"));
    logread_free(&log);
}

/* A timeline sample of `kind` at `at` ns after the header's start. */
static void sample(struct built *b, unsigned kind, uint64_t at)
{
    struct log_sample s;
    memset(&s, 0, sizeof s);
    s.time_ns = 5000 + at;
    s.kind = kind;
    s.slot_reserved_blocks = (uint32_t)(at / 1000000);
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_SAMPLE);
    log_put_sample(&e, &s);
    add(b, &e);
}

/* The exit sample is a process's last: a tick of cebox run's after it
 * (taken between the target's exit sample and its end) is dropped, with
 * the map copied then, whether its record comes before the exit's in the
 * file or after. */
static void drops_samples_after_the_exit(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    timeline_map(&b, "-Hhh............", 1000000);
    sample(&b, LOG_SAMPLE_TICK, 1000000);
    timeline_map(&b, "-Hhh.C..........", 5000000);
    sample(&b, LOG_SAMPLE_TICK, 5000000); /* written before the exit's, later than it */
    sample(&b, LOG_SAMPLE_EXIT, 4000000);
    sample(&b, LOG_SAMPLE_TICK, 3000000); /* late, but before the exit: kept */
    timeline_map(&b, "-Hhh.C.C........", 6000000);
    sample(&b, LOG_SAMPLE_TICK, 6000000); /* after the exit */
    struct lr_log log;
    logread_buffer("exit.log", b.data, b.len, &log);
    assert_false(log.damaged);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->nsamples, 3);
    assert_int_equal(p->samples[0].slot_reserved_blocks, 1);
    assert_int_equal(p->samples[1].slot_reserved_blocks, 3);
    assert_int_equal(p->samples[2].slot_reserved_blocks, 4);
    assert_int_equal(p->samples[2].kind, LOG_SAMPLE_EXIT);
    assert_int_equal(p->ntlmaps, 1);
    assert_string_equal(p->tlmaps[0].cells, "-Hhh............");
    logread_free(&log);
}

/* The maps cebox run samples (record 13): kept apart from the others, in
 * time order although appended late, each with its cells and time, and
 * the one in force at a moment found by time; one whose runs pass the
 * slot's blocks stops the reading, every record before it kept. */
static void reads_timeline_maps(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    timeline_map(&b, "-Hhh.C..........", 1000000000ull);
    timeline_map(&b, "-Hhh.C.C.C.C....", 3000000000ull);
    timeline_map(&b, "-Hhh.C.C........", 2000000000ull); /* a tick written after a later one */
    struct lr_log log;
    logread_buffer("tlmaps.log", b.data, b.len, &log);
    assert_false(log.damaged);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->nmaps, 0);
    assert_int_equal(p->ntlmaps, 3);
    static const char *const in_order[] = {"-Hhh.C..........", "-Hhh.C.C........", "-Hhh.C.C.C.C...."};
    for (unsigned i = 0; i < 3; i++) {
        assert_string_equal(p->tlmaps[i].cells, in_order[i]);
        assert_int_equal(p->tlmaps[i].time_ns, (i + 1) * 1000000000ull);
        assert_int_equal(p->tlmaps[i].cause, LOG_MAP_SAMPLE);
        assert_true(p->tlmaps[i].marked);
    }
    assert_string_equal(log_map_cause_key(LOG_MAP_SAMPLE), "sample");
    /* the map in force: the latest at or before the moment */
    assert_int_equal(timeline_map_at(p, 999999999ull), TIMELINE_NO_MAP);
    assert_int_equal(timeline_map_at(p, 1000000000ull), 0);
    assert_int_equal(timeline_map_at(p, 2500000000ull), 1);
    assert_int_equal(timeline_map_at(p, 3000000000ull), 2);
    assert_int_equal(timeline_map_at(p, 9000000000ull), 2);
    logread_free(&log);

    /* 17 blocks in a map of 16: damaged there */
    size_t before = b.len;
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_TIMELINE_MAP);
    log_put_u32(&e, 0);
    log_put_u32(&e, 16);
    log_put_u64(&e, 0);
    log_put_u32(&e, 2);
    log_put_u8(&e, '-');
    log_put_u32(&e, 1);
    log_put_u8(&e, '.');
    log_put_u32(&e, 16);
    add(&b, &e);
    timeline_map(&b, "-Hhh............", 4000000000ull);
    logread_buffer("tlmaps.log", b.data, b.len, &log);
    assert_true(log.damaged);
    assert_int_equal(log.damage_offset, before);
    assert_non_null(strstr(log.damage, "more blocks than the slot"));
    assert_int_equal(log.procs[0].ntlmaps, 3);
    logread_free(&log);
}

/* Maps of the marked format (cause, time, flags at the end): a failure's
 * goes with its failure, the peak's and the exit's are the process's with
 * their times; two adjacent large items stay two; a cause of a newer
 * writer is kept as a number. */
static void reads_marked_maps(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    failure(&b, 1, 0, 8192, LOG_REASON_FRAGMENTED);
    static const char *const cells[] = {"-HhhLlLl........", "-HhhLllLll......", "-Hhh............", "-C.............."};
    static const unsigned causes[] = {LOG_MAP_FAILURE, LOG_MAP_PEAK, LOG_MAP_EXIT, 9};
    for (unsigned i = 0; i < 4; i++) {
        struct log_enc e;
        log_enc_begin(&e, rec, sizeof rec, LOG_REC_MAP);
        log_put_map(&e, i == 0 ? 1 : 0, cells[i], 16, 0, (enum log_map_cause)causes[i],
                    5000 + (i + 1) * 1000000000ull);
        add(&b, &e);
    }
    struct lr_log log;
    logread_buffer("maps.log", b.data, b.len, &log);
    assert_false(log.damaged);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->nmaps, 4);
    assert_string_equal(p->failures[0].map, "-HhhLlLl........");
    assert_ptr_equal(p->failures[0].map, p->maps[0].cells);
    assert_int_equal(p->maps[0].time_ns, p->failures[0].time_ns); /* a failure's map has its failure's time */
    for (unsigned i = 1; i < 4; i++) {
        assert_int_equal(p->maps[i].cause, causes[i]);
        assert_true(p->maps[i].marked);
        assert_int_equal(p->maps[i].seq, 0);
        assert_int_equal(p->maps[i].time_ns, (i + 1) * 1000000000ull);
        assert_string_equal(p->maps[i].cells, cells[i]);
    }
    assert_string_equal(log_map_cause_key(LOG_MAP_PEAK), "peak");
    assert_string_equal(log_map_cause_key(9), "?");
    logread_free(&log);
}

/* cebox's own memory: the two fields after the committed kinds, and its
 * line in the text. */
/* A summary made where the slot's and the heap's locks could not be taken
 * (no slot blocks read): it says so, and shows no zeros for them. */
static void an_unread_slot_is_said_not_shown_as_zeros(void **state)
{
    (void)state;
    struct run_summary s;
    memset(&s, 0, sizeof s);
    s.pid = 7;
    strcpy(s.command, "prog");
    strcpy(s.profile, "ce5");
    s.failures[LOG_API_MALLOC] = 2;
    char text[4096];
    run_summary_format(&s, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    assert_non_null(strstr(text, "cebox:   slot and heap: not read (a signal came while cebox held their locks)\n"));
    assert_null(strstr(text, "slot: peak"));
    assert_null(strstr(text, "heap: peak"));
    assert_null(strstr(text, "slot exhausted"));
    assert_non_null(strstr(text, "cebox:   failed allocations: 2 (malloc family 2, mmap family 0)\n"));
    s.blocks = 512; /* read: the lines as ever */
    run_summary_format(&s, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    assert_null(strstr(text, "not read"));
    assert_non_null(strstr(text, "cebox:   slot: peak 0 of 512 blocks reserved"));
    assert_non_null(strstr(text, "; slot exhausted 0, no contiguous run 0, RAM 0\n"));
}

static void reads_cebox_own_memory(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    summary_tail(&b, 4242, 4, "", 4); /* ..., own bookkeeping 32, own mappings 33 */
    struct lr_log log;
    logread_buffer("mem.log", b.data, b.len, &log);
    assert_false(log.damaged);
    const struct run_summary *s = &log.procs[0].summary;
    assert_true(s->own_known);
    assert_int_equal(s->own_meta_bytes, 32);
    assert_int_equal(s->own_mapped_peak, 33);
    char text[4096];
    run_summary_format(s, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    assert_non_null(strstr(text, "\ncebox:   own memory (cebox's, not the program's): bookkeeping 32 bytes at exit, "
                                 "mappings peak 33 bytes\n"));
    logread_free(&log);
}

/* A GROWTH, PEAK or PINNING record: nhead head fields 100, 101, ... (the
 * first, the time, 5000 + 2 s), and two sites (stack 7 and 9) of nfields
 * fields 10, 11, ... and 20, 21, ... */
static void sites_record(struct built *b, unsigned type, unsigned nhead, unsigned nfields)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, type);
    log_put_u8(&e, (uint8_t)nhead);
    log_put_u8(&e, (uint8_t)nfields);
    for (unsigned i = 0; i < nhead; i++) {
        log_put_u64(&e, i == 0 ? 5000 + 2000000000ull : 100 + i);
    }
    log_put_u32(&e, 2);
    for (unsigned k = 0; k < 2; k++) {
        log_put_u32(&e, k == 0 ? 7 : 9);
        for (unsigned f = 0; f < nfields; f++) {
            log_put_u64(&e, (k == 0 ? 10 : 20) + f);
        }
    }
    add(b, &e);
}

static void leak_record(struct built *b, bool with_what, uint8_t what)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_LEAK);
    log_put_u32(&e, 7);
    log_put_u8(&e, 0);
    log_put_u64(&e, 65536);
    log_put_u64(&e, 65536);
    log_put_u64(&e, 1);
    if (with_what) {
        log_put_u8(&e, what);
    }
    add(b, &e);
}

/* Records 10-12: head fields and site fields the writer had not are read
 * as 0, those this reader does not know are skipped; the time is made
 * relative to the start; growth samples accumulate, the last peak and
 * pinning records win.  A LEAK record's `what`: absent (older logs) is
 * heap blocks. */
static void reads_site_views(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    sites_record(&b, LOG_REC_GROWTH, 3, LOG_GROWTH_NFIELDS + 2); /* fewer head fields, more site fields */
    sites_record(&b, LOG_REC_GROWTH, LOG_SITES_MAX_HEAD + 3, 1);  /* more head fields, fewer site fields */
    sites_record(&b, LOG_REC_PEAK, LOG_PEAK_NHEAD, LOG_PEAK_NFIELDS);
    sites_record(&b, LOG_REC_PEAK, LOG_PEAK_NHEAD, LOG_PEAK_NFIELDS + 1);
    sites_record(&b, LOG_REC_PINNING, LOG_PIN_NHEAD, LOG_PIN_NFIELDS);
    leak_record(&b, false, 0);
    leak_record(&b, true, LOG_LEAK_MAPPINGS);
    struct lr_log log;
    logread_buffer("views.log", b.data, b.len, &log);
    assert_false(log.damaged);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->ngrowth, 2);
    const struct lr_sites *g = &p->growth[0];
    assert_int_equal(g->head[LOG_GROWTH_TIME], 2000000000ull);
    assert_int_equal(g->head[1], 101);
    assert_int_equal(g->head[2], 102);
    assert_int_equal(g->head[3], 0); /* not written */
    assert_int_equal(g->n, 2);
    assert_int_equal(g->sites[1].stack_id, 9);
    assert_int_equal(g->sites[1].v[LOG_GROWTH_BYTES], 20);
    assert_int_equal(g->sites[1].v[LOG_GROWTH_BLOCKS], 21);
    g = &p->growth[1];
    assert_int_equal(g->head[LOG_SITES_MAX_HEAD - 1], 100 + LOG_SITES_MAX_HEAD - 1);
    assert_int_equal(g->sites[0].v[0], 10);
    assert_int_equal(g->sites[0].v[1], 0); /* not written */
    assert_int_equal(g->sites[1].stack_id, 9);
    assert_true(p->has_peak);
    assert_int_equal(p->peak.n, 2);
    assert_int_equal(p->peak.sites[1].v[LOG_PEAK_BLOCKS], 21);
    assert_int_equal(p->peak.sites[1].v[LOG_PEAK_NFIELDS], 22); /* the second one's extra field: it won */
    assert_true(p->has_pinning);
    assert_int_equal(p->pinning.head[LOG_PIN_LARGEST_FREE_RUN], 100 + LOG_PIN_LARGEST_FREE_RUN);
    assert_int_equal(p->pinning.sites[0].v[LOG_PIN_FREE_RUN_WITHOUT], 10 + LOG_PIN_FREE_RUN_WITHOUT);
    assert_int_equal(p->nleaks, 2);
    assert_int_equal(p->leaks[0].what, LOG_LEAK_HEAP);
    assert_int_equal(p->leaks[1].what, LOG_LEAK_MAPPINGS);
    logread_free(&log);
}

/* A site record whose count promises more sites than it holds is damage. */
static void short_site_record(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_PINNING);
    log_put_u8(&e, 1);
    log_put_u8(&e, 4);
    log_put_u64(&e, 5000);
    log_put_u32(&e, 3); /* three sites of 36 bytes: none follows */
    log_put_u32(&e, 1);
    add(&b, &e);
    struct lr_log log;
    logread_buffer("short.log", b.data, b.len, &log);
    assert_true(log.damaged);
    assert_int_equal(log.damage_offset, b.starts[1]);
    assert_false(log.procs[0].has_pinning);
    logread_free(&log);
}

/* The record that holds byte `at`. */
static size_t record_of(const struct built *b, size_t at)
{
    size_t r = 0;
    while (r + 1 < b->n && b->starts[r + 1] <= at) {
        r++;
    }
    return r;
}

/* Cut anywhere: at a record boundary the log is simply shorter; inside a
 * record, reading stops at that record's start with every earlier record
 * kept. */
static void every_truncation(void **state)
{
    (void)state;
    struct built b;
    build(&b);
    for (size_t cut = 0; cut < b.len; cut++) {
        struct lr_log log;
        logread_buffer("cut.log", b.data, cut, &log);
        size_t r = record_of(&b, cut);
        if (cut == 0) {
            assert_true(log.damaged);
            assert_int_equal(log.damage_offset, 0);
        } else if (cut == b.starts[r]) {
            assert_false(log.damaged);
            assert_int_equal(log.records, r);
        } else {
            assert_true(log.damaged);
            assert_int_equal(log.damage_offset, b.starts[r]);
            assert_int_equal(log.records, r);
            assert_non_null(strstr(log.damage, "truncated"));
            if (r > 0) {
                assert_int_equal(log.nprocs, 1);
            }
        }
        /* Failures recorded before the cut are all there. */
        if (r > 4 && log.nprocs == 1) {
            assert_true(log.procs[0].nfailures >= 1);
            assert_int_equal(log.procs[0].failures[0].size, 4096);
        }
        logread_free(&log);
    }
}

/* Any single byte altered: reading stops at the record holding it, at its
 * start, with the records before it intact. */
static void every_corruption(void **state)
{
    (void)state;
    struct built b;
    build(&b);
    for (size_t at = 0; at < b.len; at++) {
        unsigned char copy[sizeof b.data];
        memcpy(copy, b.data, b.len);
        copy[at] ^= 0x5a;
        struct lr_log log;
        logread_buffer("bad.log", copy, b.len, &log);
        size_t r = record_of(&b, at);
        assert_true(log.damaged);
        assert_int_equal(log.damage_offset, b.starts[r]);
        assert_int_equal(log.records, r);
        assert_true(log.damage[0] != '\0');
        logread_free(&log);
    }
}

static void two_processes_in_one_file(void **state)
{
    (void)state;
    struct built b;
    build(&b);
    header(&b, 4242, LOG_VERSION); /* the same pid after exec */
    uint64_t ips[1] = {0x1234};
    stack(&b, 1, ips, 1);
    failure(&b, 1, 1, 64, LOG_REASON_RAM);
    struct lr_log log;
    logread_buffer("two.log", b.data, b.len, &log);
    assert_false(log.damaged);
    assert_int_equal(log.nprocs, 2);
    assert_int_equal(log.procs[0].nfailures, 2);
    assert_int_equal(log.procs[1].nfailures, 1);
    assert_int_equal(log.procs[1].nmodules, 0);
    assert_int_equal(log.procs[1].failures[0].reason, LOG_REASON_RAM);
    assert_null(log.procs[1].failures[0].map);
    assert_false(log.procs[1].has_summary);
    logread_free(&log);
}

static void foreign_and_future_files(void **state)
{
    (void)state;
    struct lr_log log;
    const char text[] = "this is not a log at all, just some text long enough";
    logread_buffer("text.log", (const unsigned char *)text, sizeof text, &log);
    assert_true(log.damaged);
    assert_int_equal(log.damage_offset, 0);
    assert_non_null(strstr(log.damage, "not a cebox event log"));
    logread_free(&log);

    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 1, LOG_VERSION + 1);
    logread_buffer("future.log", b.data, b.len, &log);
    assert_true(log.damaged);
    assert_non_null(strstr(log.damage, "version"));
    logread_free(&log);

    /* A record type this reader does not know is skipped. */
    build(&b);
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, 99);
    log_put_u32(&e, 1234);
    add(&b, &e);
    failure(&b, 3, 0, 1, LOG_REASON_OTHER);
    logread_buffer("newer.log", b.data, b.len, &log);
    assert_false(log.damaged);
    assert_int_equal(log.procs[0].nfailures, 3);
    logread_free(&log);

    /* A record of the right size whose fields are short. */
    memset(&b, 0, sizeof b);
    header(&b, 1, LOG_VERSION);
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_FAILURE);
    log_put_u32(&e, 1);
    add(&b, &e);
    logread_buffer("short.log", b.data, b.len, &log);
    assert_true(log.damaged);
    assert_int_equal(log.damage_offset, b.starts[1]);
    assert_non_null(strstr(log.damage, "too short"));
    logread_free(&log);
}

static void reads_files(void **state)
{
    (void)state;
    struct built b;
    build(&b);
    char path[] = "/tmp/cebox-test-logread-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
    close(fd);
    struct lr_log log;
    char err[256];
    assert_int_equal(logread_file(path, &log, err, sizeof err), 0);
    assert_false(log.damaged);
    assert_int_equal(log.procs[0].nfailures, 2);
    logread_free(&log);
    unlink(path);
    assert_int_equal(logread_file(path, &log, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
}

static void crc_and_names(void **state)
{
    (void)state;
    assert_int_equal(log_crc32(0, "123456789", 9), 0xcbf43926u);
    assert_string_equal(log_api_name(LOG_API_HEAPALLOC), "HeapAlloc");
    assert_string_equal(log_api_name(999), "?");
    assert_string_equal(log_reason_key(LOG_REASON_FRAGMENTED), "fragmented");
    assert_string_equal(log_reason_text(999), "?");
    /* The encoder refuses what does not fit instead of writing past it. */
    unsigned char small[20];
    struct log_enc e;
    log_enc_begin(&e, small, sizeof small, LOG_REC_STACK);
    log_put_u64(&e, 1);
    assert_int_equal(log_enc_finish(&e), 0);
}

/* An exit summary; `trailing` u64 fields after outside_peak (0: a log of
 * before libc_malloc_bytes; 4: with it, unrecorded_failures and the live
 * heap at exit), then the private-device string when `device` is not NULL. */
/* A summary record: `trailing` optional u64 fields after the fixed ones,
 * then the device string when not NULL and `after` u64 fields (30, 31,
 * ...) after it. */

/* Where the slot is and what the image, DLLs and stacks took: the fields
 * after cebox's own memory, and the summary's lines. */
static void reads_the_occupancy(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_SUMMARY);
    summary_fields(&e, 4242, 4, "", 4);
    log_put_u64(&e, 0x4000000);
    log_put_u64(&e, 1); /* image and DLL pages at the peak: not more than the peak's 3 */
    log_put_u64(&e, 1); /* stack pages */
    const uint32_t counts[] = {2, 3, 4, 1, 5, 1, 7, 1, 2};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        log_put_u32(&e, counts[i]);
    }
    add(&b, &e);
    struct lr_log log;
    logread_buffer("mem.log", b.data, b.len, &log);
    assert_false(log.damaged);
    const struct run_summary *s = &log.procs[0].summary;
    assert_true(s->occupancy_known);
    assert_int_equal(s->slot_base, 0x4000000);
    assert_int_equal(s->image_blocks, 2);
    assert_int_equal(s->ram_dll_blocks, 5);
    assert_int_equal(s->peak_stacks, 7);
    assert_int_equal(s->occupants_refused, 2);
    char text[4096];
    run_summary_format(s, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    assert_non_null(strstr(text, "\ncebox:   slot at 0x4000000 (below 2 GB, as on a device): image 2 blocks, DLLs 3 XIP "
                                 "(data, 4 blocks) and 1 in RAM (5 blocks), stacks 1 block each (peak 7); threads "
                                 "refused for want of a stack block: 1; found no room: 2\n"));
    /* peak 3 pages: heap 31 (more than all), so the others' 0 and the kinds' */
    assert_non_null(strstr(text, ", image and DLLs 4096 bytes, stacks 4096 bytes\n"));
    logread_free(&log);
    /* An older log has none of it: no such line. */
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    summary_tail(&b, 4242, 4, "", 4);
    logread_buffer("mem.log", b.data, b.len, &log);
    assert_false(log.procs[0].summary.occupancy_known);
    run_summary_format(&log.procs[0].summary, RUN_SUMMARY_NO_HINT, NULL, text, sizeof text);
    assert_null(strstr(text, "slot at"));
    assert_null(strstr(text, "image and DLLs"));
    logread_free(&log);
}

static void occupant_record(struct built *b, char kind, bool xip, uint32_t first, uint32_t blocks, const char *name)
{
    struct log_enc e;
    log_enc_begin(&e, rec, sizeof rec, LOG_REC_OCCUPANT);
    log_put_u8(&e, (uint8_t)kind);
    log_put_u8(&e, xip);
    log_put_u32(&e, first);
    log_put_u32(&e, blocks);
    log_put_u32(&e, 3);
    if (name != NULL) {
        log_put_str(&e, name, strlen(name));
    }
    add(b, &e);
}

/* The occupancy records (14): each image, DLL and stack in order; one cut
 * short stops the reading there. */
static void reads_the_occupants(void **state)
{
    (void)state;
    struct built b;
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    occupant_record(&b, 'E', false, 1, 2, "/usr/bin/app");
    occupant_record(&b, 'D', true, 509, 3, "/lib/x86_64-linux-gnu/libc.so.6");
    struct lr_log log;
    logread_buffer("mem.log", b.data, b.len, &log);
    assert_false(log.damaged);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->noccupants, 2);
    assert_int_equal(p->occupants[0].kind, 'E');
    assert_int_equal(p->occupants[0].first_block, 1);
    assert_int_equal(p->occupants[0].blocks, 2);
    assert_int_equal(p->occupants[0].pages, 3);
    assert_string_equal(p->occupants[0].name, "/usr/bin/app");
    assert_true(p->occupants[1].xip);
    assert_string_equal(p->occupants[1].name, "/lib/x86_64-linux-gnu/libc.so.6");
    logread_free(&log);
    memset(&b, 0, sizeof b);
    header(&b, 4242, LOG_VERSION);
    occupant_record(&b, 'S', false, 3, 1, NULL);
    logread_buffer("short.log", b.data, b.len, &log);
    assert_true(log.damaged);
    assert_non_null(strstr(log.damage, "occupant record too short"));
    assert_int_equal(log.procs[0].noccupants, 0);
    logread_free(&log);
}

/* run_summary_bytes writes what snprintf's "%.1f" of the quotient would:
 * every size from 10 KB for 300 000 bytes, every tie of a tenth among the
 * KB and MB sizes tried, the unit boundaries and a spread of large sizes. */
static void assert_bytes_as_printf(uint64_t b)
{
    char got[32], want[32];
    if (b >= 10u * 1024 * 1024) {
        snprintf(want, sizeof want, "%.1f MB", (double)b / (1024.0 * 1024.0));
    } else if (b >= 10u * 1024) {
        snprintf(want, sizeof want, "%.1f KB", (double)b / 1024.0);
    } else {
        snprintf(want, sizeof want, "%llu bytes", (unsigned long long)b);
    }
    assert_string_equal(run_summary_bytes(got, sizeof got, b), want);
}

static void formats_bytes_as_printf(void **state)
{
    (void)state;
    for (uint64_t b = 0; b < 10 * 1024 + 300000; b++) {
        assert_bytes_as_printf(b);
    }
    for (uint64_t q = 2; q < 2000000; q += 5) { /* b * 10 = 1024 q + 512: a tie of KB tenths */
        assert_bytes_as_printf((1024 * q + 512) / 10);
    }
    for (uint64_t q = 0; q < 200000; q++) { /* MB tenths: b * 10 = 2^20 q + 2^19 when a whole b */
        uint64_t x = ((uint64_t)1 << 20) * q + ((uint64_t)1 << 19);
        if (x % 10 == 0) {
            assert_bytes_as_printf(x / 10);
        }
        assert_bytes_as_printf(10u * 1024 * 1024 + q * 977);
    }
    uint64_t v = 1;
    for (int i = 0; i < 2000; i++) {
        v = v * 6364136223846793005ull + 1442695040888963407ull;
        assert_bytes_as_printf(v >> (i % 64));
    }
    static const uint64_t edges[] = {10239, 10240, 10485759, 10485760, (1ull << 53) - 1, 1ull << 53, UINT64_MAX};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        assert_bytes_as_printf(edges[i]);
    }
    char small[5];
    assert_string_equal(run_summary_bytes(small, sizeof small, 123456), "120."); /* truncated as snprintf does */
}

/* The summary's lines: run_summary_vappend writes what vsnprintf does,
 * for each conversion the summary uses (edge values: 0, the largest, the
 * negative), text around them, a conversion it leaves to vsnprintf, and
 * every truncation of the longest line, after text already there (through
 * run_summary_append, the summary's own wrapper of it). */

#define ASSERT_AS_PRINTF(cap, ...)                                                                      \
    do {                                                                                                \
        char got[160] = "ab", want[160] = "ab";                                                         \
        size_t n_ = run_summary_append(got, 2, (cap), __VA_ARGS__);                                     \
        int w_ = snprintf(want + 2, (cap) - 2, __VA_ARGS__);                                            \
        assert_string_equal(got, want);                                                                 \
        assert_int_equal(n_, 2 + (size_t)w_ < (cap) ? 2 + (size_t)w_ : (cap) - 1);                      \
    } while (0)

static void formats_summary_lines_as_printf(void **state)
{
    (void)state;
    for (size_t cap = 3; cap <= 160; cap++) {
        ASSERT_AS_PRINTF(cap, "cebox: pid %u (%s), %d %d %llu %llu; %#llx %#llx %% %s.\n", UINT32_MAX, "/bin/true",
                         INT32_MIN, -7, (unsigned long long)UINT64_MAX, 0ull, 0ull, 0x7fe780000000ull, "");
    }
    static const unsigned long long values[] = {0, 1, 9, 10, 99, 4096, 0xdeadbeefull, UINT64_MAX};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        ASSERT_AS_PRINTF(160, "%llu|%#llx|%u|%d|%d", values[i], values[i], (unsigned)values[i], (int)values[i],
                         -(int)(values[i] % 1000));
    }
    ASSERT_AS_PRINTF(160, "plain text, no conversion");
    ASSERT_AS_PRINTF(160, "%5u|%-3s|%.1f", 42u, "x", 2.25); /* not the summary's own: vsnprintf's */
    char full[4] = "abc";
    assert_int_equal(run_summary_append(full, 3, sizeof full, "%s", "more"), 3); /* already full: unchanged */
    assert_string_equal(full, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_bytes_as_printf),
        cmocka_unit_test(formats_summary_lines_as_printf),
        cmocka_unit_test(reads_every_field),
        cmocka_unit_test(reads_the_optional_summary_fields),
        cmocka_unit_test(reads_the_private_device_reason),
        cmocka_unit_test(reads_the_committed_kinds),
        cmocka_unit_test(reads_cebox_own_memory),
        cmocka_unit_test(an_unread_slot_is_said_not_shown_as_zeros),
        cmocka_unit_test(reads_site_views),
        cmocka_unit_test(short_site_record),
        cmocka_unit_test(reads_marked_maps),
        cmocka_unit_test(reads_timeline_maps),
        cmocka_unit_test(drops_samples_after_the_exit),
        cmocka_unit_test(every_truncation),
        cmocka_unit_test(every_corruption),
        cmocka_unit_test(two_processes_in_one_file),
        cmocka_unit_test(foreign_and_future_files),
        cmocka_unit_test(reads_files),
        cmocka_unit_test(crc_and_names),
        cmocka_unit_test(reads_the_occupancy),
        cmocka_unit_test(reads_the_occupants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
