/*
 * logread.h - reads cebox event logs (src/record/logformat.h, docs/LOG-FORMAT.md)
 * for `cebox report`.
 *
 * Owns: the in-memory form of a log: its processes (one per header
 * record), each with its modules, stacks, failures, slot maps, timeline
 * samples and the maps sampled with them (both kept in time order: cebox
 * run appends its own to the file) and exit summary.  Every address of a stack is tied to the module that held it
 * when the stack was recorded.
 *
 * Failure behaviour: reading stops at the first record that is truncated
 * or corrupt (bad magic, impossible length, checksum mismatch, fields
 * missing); everything before it is kept, and the log carries the offset
 * and the reason.  Unknown record types are skipped (newer writers).
 */
#ifndef CEBOX_LOGREAD_H
#define CEBOX_LOGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/logformat.h"
#include "record/runsummary.h"

struct lr_module {
    uint64_t bias, lo, hi; /* load bias and the range of its loadable segments */
    unsigned char build_id[LOG_MAX_BUILD_ID];
    size_t build_id_len;
    char *path;
};

struct lr_stack {
    uint32_t id;
    uint32_t depth;
    uint64_t *ips;   /* innermost first */
    int *module;     /* per frame: index in the process's modules, or -1 */
};

struct lr_failure {
    uint32_t seq;
    unsigned api, reason, state;
    uint32_t tid;
    uint64_t size;
    uint64_t time_ns;   /* since the process's log started */
    uint32_t stack_id;  /* 0: none */
    uint32_t error;     /* the Win32 error the entry point failed with */
    uint32_t blocks, free_blocks, largest_free_run;
    uint64_t committed_bytes, ram_free_bytes, lma_bytes;
    char *map;          /* its slot map's cells (owned by the process's maps); NULL when not recorded */
};

/* A slot map: one character per block, NUL-terminated, each reservation's
 * first block a capital and its others in lower case (read so from logs
 * that did not mark them: each run of one letter taken as one). */
struct lr_map {
    uint32_t seq;       /* the failure it follows; 0 for the others */
    unsigned cause;     /* enum log_map_cause */
    uint64_t time_ns;   /* since the process's log started */
    bool marked;        /* the writer told reservations apart */
    char *cells;
};

/* The blocks of one kind never freed at one stack (--leaks). */
struct lr_leak {
    uint32_t stack_id;  /* 0: none */
    unsigned kind;      /* enum leak_kind: definite, indirect, possible, reachable */
    uint64_t bytes, charged, blocks;
    unsigned what;      /* enum log_leak_what: heap blocks, or reservations (mmap, VirtualAlloc) */
};

/* A record of the sites' views (--leaks with --out: GROWTH, PEAK,
 * PINNING): its head fields and its sites, each a stack id and fields
 * (logformat.h's enums; a field the writer did not have reads as 0). */
struct lr_site_val {
    uint32_t stack_id;
    uint64_t v[LOG_SITES_MAX_FIELDS];
};

struct lr_sites {
    uint64_t head[LOG_SITES_MAX_HEAD]; /* times made relative to the process's start */
    struct lr_site_val *sites;
    size_t n;
};

/* An image, DLL or stack reservation in the slot (the OCCUPANT record). */
struct lr_occupant {
    char kind;          /* 'E' image, 'D' DLL, 'S' stack */
    bool xip;           /* a DLL's writable data only */
    uint32_t first_block, blocks, pages;
    char *name;
};

/* How the process ended (the END record). */
struct lr_end {
    unsigned how;       /* enum log_end_how */
    int value;          /* exit status or signal */
    uint64_t fault_addr;
    uint32_t crash_stack_id;
    uint32_t flags;     /* LOG_END_* */
    uint64_t untracked;
    uint64_t calls;     /* allocation calls fault injection counted (0: no rule, or an older log) */
};

struct lr_process {
    uint64_t offset;    /* of its header record in the file */
    uint32_t version, pid, ppid, flags;
    uint64_t start_real_ns, start_mono_ns;
    /* The origin of every time the reader gives (failures, samples, the
     * end): the start of its `cebox run` (CLOCK_MONOTONIC, the header's
     * run_start), the origin of the run's session log too; the process's own
     * start in logs without one.  run_offset_ns: the process's start after it. */
    uint64_t origin_ns, run_offset_ns;
    bool run_origin;    /* origin_ns is the run's start */
    uint32_t page_size, granularity;
    uint64_t slot_base, slot_size, ram_bytes;
    uint32_t stack_depth;
    char *profile, *command, *settings, *exe; /* command: arguments joined by spaces */
    struct lr_module *modules;
    size_t nmodules;
    struct lr_stack *stacks;
    size_t nstacks;
    struct lr_failure *failures;
    size_t nfailures;
    struct lr_map *maps;        /* in the order written (failures', then the peak's and the exit's) */
    size_t nmaps;
    struct log_sample *samples; /* the timeline, by time; time_ns since the log started */
    size_t nsamples;
    struct lr_map *tlmaps;      /* the slot maps cebox run copied at its ticks (record 13), by time */
    size_t ntlmaps;
    struct lr_occupant *occupants; /* what the slot held when the log was begun */
    size_t noccupants;
    bool has_summary;
    struct run_summary summary;
    struct lr_leak *leaks;
    size_t nleaks;
    struct lr_sites *growth; /* growth samples, by time */
    size_t ngrowth;
    bool has_peak, has_pinning; /* the last of each */
    struct lr_sites peak, pinning;
    bool has_pinning_least;      /* the pinning at the slot's least free run */
    struct lr_sites pinning_least;
    bool has_end;
    struct lr_end end;
    uint64_t exit_ns;   /* since the log started (with the summary) */
};

struct lr_log {
    char *path;
    struct lr_process *procs;
    size_t nprocs;
    bool damaged;          /* reading stopped early */
    uint64_t damage_offset;
    char damage[160];      /* why, without the file name or offset */
    size_t records;        /* intact records read */
};

/* Reads the log at `path`.  Returns 0 (check log->damaged), or -1 when the
 * file cannot be read at all, with the reason in err. */
int logread_file(const char *path, struct lr_log *log, char *err, size_t errlen);

/* The same over bytes already in memory; `name` is kept as the path. */
void logread_buffer(const char *name, const unsigned char *data, size_t len, struct lr_log *log);

void logread_free(struct lr_log *log);

/* The stack with this id in p, or NULL. */
const struct lr_stack *logread_stack(const struct lr_process *p, uint32_t id);

#endif
