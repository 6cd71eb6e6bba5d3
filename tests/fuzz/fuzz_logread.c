/*
 * fuzz_logread.c - fuzz target: arbitrary bytes as an event log, read by
 * logread_buffer (what `cebox report` does with every cebox-PID.log).
 *
 * Beyond "no crash, no sanitizer report", it checks what logread.h
 * promises of whatever it returns: an undamaged log starts with a header
 * record and so has a process; a damaged one says why and where (inside the
 * input); every stack frame's module is -1 or one of its process's modules
 * whose range holds the address; logread_stack finds each stored stack by
 * its id; every string is NUL-terminated (ASan sees strlen run past an end).
 *
 * Each input is read twice: as it is (the framing, the checksums, damage
 * detection), and with every record's CRC recomputed as far as the framing
 * holds (fuzz_repair_checksums).
 */
#include "fuzz.h"

#include <string.h>

#include "report/logread.h"

static void check_stack(const struct lr_process *p, const struct lr_stack *s)
{
    FUZZ_CHECK(s->depth <= LOG_MAX_DEPTH);
    FUZZ_CHECK(s->ips != NULL && s->module != NULL);
    for (uint32_t i = 0; i < s->depth; i++) {
        int m = s->module[i];
        FUZZ_CHECK(m >= -1 && (m == -1 || (size_t)m < p->nmodules));
        if (m >= 0) {
            FUZZ_CHECK(s->ips[i] >= p->modules[m].lo && s->ips[i] < p->modules[m].hi);
        }
    }
    FUZZ_CHECK(logread_stack(p, s->id) == s); /* ids are unique within a process */
}

static void check_process(const struct lr_process *p)
{
    FUZZ_CHECK(p->profile != NULL && p->command != NULL && p->settings != NULL && p->exe != NULL);
    (void)(strlen(p->profile) + strlen(p->command) + strlen(p->settings) + strlen(p->exe));
    for (size_t i = 0; i < p->nmodules; i++) {
        FUZZ_CHECK(p->modules[i].path != NULL && p->modules[i].build_id_len <= LOG_MAX_BUILD_ID);
        (void)strlen(p->modules[i].path);
    }
    for (size_t i = 0; i < p->nstacks; i++) {
        check_stack(p, &p->stacks[i]);
    }
    for (size_t i = 0; i < p->nfailures; i++) {
        const struct lr_failure *f = &p->failures[i];
        FUZZ_CHECK(f->map == NULL || strlen(f->map) <= (1u << 24));
        (void)logread_stack(p, f->stack_id);
    }
    for (size_t i = 0; i < p->nmaps; i++) {
        /* A failure's map follows its failure; the others have seq 0. */
        FUZZ_CHECK(p->maps[i].cells != NULL && strlen(p->maps[i].cells) <= (1u << 24));
        FUZZ_CHECK(p->maps[i].cause != LOG_MAP_FAILURE || p->maps[i].seq != 0 || p->nfailures != 0);
    }
    if (p->has_summary) {
        FUZZ_CHECK(memchr(p->summary.command, '\0', sizeof p->summary.command) != NULL);
        FUZZ_CHECK(memchr(p->summary.profile, '\0', sizeof p->summary.profile) != NULL);
    }
}

static void read_and_check(const uint8_t *data, size_t size)
{
    struct lr_log log;
    logread_buffer("fuzz.log", data, size, &log);
    FUZZ_CHECK(log.path != NULL && strcmp(log.path, "fuzz.log") == 0);
    if (log.damaged) {
        FUZZ_CHECK(memchr(log.damage, '\0', sizeof log.damage) != NULL && log.damage[0] != '\0');
        FUZZ_CHECK(size == 0 || log.damage_offset < size);
    } else {
        FUZZ_CHECK(size != 0 && log.nprocs >= 1 && log.records >= log.nprocs);
    }
    FUZZ_CHECK(log.nprocs <= log.records || (log.damaged && log.nprocs == log.records + 1));
    for (size_t i = 0; i < log.nprocs; i++) {
        check_process(&log.procs[i]);
        FUZZ_CHECK(log.procs[i].offset < size);
    }
    logread_free(&log);
    FUZZ_CHECK(log.procs == NULL && log.nprocs == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_and_check(data, size);
    unsigned char *copy = fuzz_repaired_copy(data, size);
    read_and_check(copy, size);
    free(copy);
    return 0;
}
