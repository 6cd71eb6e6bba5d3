/*
 * logformat.h - the event log's on-disk format, shared by its only writer
 * (eventlog.c, inside the target) and its reader (tools/report/logread.c, in
 * `cebox report`).  docs/LOG-FORMAT.md is the prose version of this file.
 *
 * Owns: record types and framing, the entry-point codes and the one
 * enumeration of failure reasons, and their names, CRC-32, and a bounded
 * byte-buffer encoder and decoder.
 *
 * Invariants: integers are little-endian whatever the host; a record is
 * a 16-byte head followed by `length` payload bytes, and its CRC covers
 * the first 12 bytes of the head and the payload, so a torn or altered
 * record is detected where it starts.  Nothing here allocates (the writer
 * runs inside the allocator).
 */
#ifndef CEBOX_LOGFORMAT_H
#define CEBOX_LOGFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_VERSION 1
#define LOG_MAGIC 0x474c4243u       /* the bytes "CBLG" */
#define LOG_HEAD_SIZE 16
#define LOG_MAX_PAYLOAD (1u << 20)  /* no record is larger */
#define LOG_HEADER_TAG "CEBOXLOG"   /* first 8 payload bytes of a header record */
#define LOG_MAX_DEPTH 128           /* frames per stack */
#define LOG_MAX_BUILD_ID 64

enum log_record {
    LOG_REC_HEADER = 1,  /* starts a process: pid, command, settings */
    LOG_REC_MODULE = 2,  /* a loaded object: path, load bias, range, build-id */
    LOG_REC_STACK = 3,   /* a distinct call stack, by id */
    LOG_REC_FAILURE = 4, /* a failed allocation */
    LOG_REC_MAP = 5,     /* a slot map: at a failure, the peak, the exit */
    LOG_REC_SUMMARY = 6, /* the exit summary */
    LOG_REC_LEAK = 7,    /* --leaks: the blocks of one kind never freed, at one stack */
    LOG_REC_END = 8,     /* how the process ended (exit status or signal) */
    LOG_REC_SAMPLE = 9,  /* one point of the timeline */
    LOG_REC_GROWTH = 10, /* --leaks: live bytes of the top allocation sites at one moment */
    LOG_REC_PEAK = 11,   /* --leaks: the live set by site at the heap's peak */
    LOG_REC_PINNING = 12, /* --leaks: the sites whose blocks pin heap regions and pages */
    LOG_REC_TIMELINE_MAP = 13, /* cebox run: a member's slot map at a tick, when it changed (record 5's payload) */
    LOG_REC_OCCUPANT = 14, /* an image, DLL or stack reservation in the slot (occupancy.c) */
};

/* Records 10, 11 and 12 share one layout (docs/LOG-FORMAT.md): u8 nhead,
 * u8 nfields, nhead u64 head fields, u32 n, then n sites, each a u32 stack
 * id and nfields u64 fields.  The counts let a writer append fields to
 * either list; a reader takes the ones it knows and reads absent ones as
 * 0.  The fields of each record, in order: */
enum log_growth_head { LOG_GROWTH_TIME, LOG_GROWTH_KIND, LOG_GROWTH_LIVE_BYTES, LOG_GROWTH_LIVE_BLOCKS,
                       LOG_GROWTH_SITES, LOG_GROWTH_NHEAD };
enum log_growth_field { LOG_GROWTH_BYTES, LOG_GROWTH_BLOCKS, LOG_GROWTH_NFIELDS };
enum log_peak_head { LOG_PEAK_TIME, LOG_PEAK_LIVE_BYTES, LOG_PEAK_LIVE_BLOCKS, LOG_PEAK_MAX_BYTES,
                     LOG_PEAK_REST_BYTES, LOG_PEAK_REST_BLOCKS, LOG_PEAK_NHEAD };
enum log_peak_field { LOG_PEAK_BYTES, LOG_PEAK_BLOCKS, LOG_PEAK_NFIELDS };
enum log_pin_head { LOG_PIN_TIME, LOG_PIN_REGIONS, LOG_PIN_COMMITTED_PAGES, LOG_PIN_EMPTY_PAGES,
                    LOG_PIN_SHARED_PAGES, LOG_PIN_SHARED_REGIONS, LOG_PIN_LARGEST_FREE_RUN, LOG_PIN_KIND,
                    LOG_PIN_NHEAD };
/* A pinning record's moment (its head's kind; absent from older logs: 0). */
enum log_pin_kind { LOG_PIN_AT_EXIT = 0, LOG_PIN_AT_LEAST_RUN = 1 };
enum log_pin_field { LOG_PIN_BYTES, LOG_PIN_REGIONS_PINNED, LOG_PIN_PAGES, LOG_PIN_FREE_RUN_WITHOUT,
                     LOG_PIN_NFIELDS };
#define LOG_SITES_MAX_HEAD 16   /* the most head fields a reader keeps */
#define LOG_SITES_MAX_FIELDS 8  /* the most fields per site a reader keeps */

/* Who took a timeline sample, and when. */
enum log_sample_kind {
    LOG_SAMPLE_TICK = 0,    /* cebox run, every --sample-interval */
    LOG_SAMPLE_FAILURE = 1, /* the target, right after a failure record */
    LOG_SAMPLE_EXIT = 2,    /* the target, right before its exit summary */
    LOG_SAMPLE_STATE = 3,   /* cebox run, at a change of the memory state */
    LOG_SAMPLE_PEAK = 4,    /* cebox run, at a tick that saw more committed than every sample before */
};

/* Why a slot map was taken (record 5's trailing cause; absent: a failure). */
enum log_map_cause {
    LOG_MAP_FAILURE = 0,   /* follows the failure its seq names */
    LOG_MAP_PEAK = 1,      /* the last moment the slot held its peak of reserved blocks */
    LOG_MAP_EXIT = 2,      /* at the exit summary */
    LOG_MAP_ON_DEMAND = 3, /* asked for while the process ran */
    LOG_MAP_SAMPLE = 4,    /* record 13: cebox run's copy at a timeline tick */
    LOG_MAP_CAUSES
};
/* Record 5's flags: each reservation's first block a capital, its other
 * blocks in lower case (absent: every block a capital). */
#define LOG_MAP_MARKED 1u

/* One point of a process's timeline (record 9). */
struct log_sample {
    uint64_t time_ns;     /* CLOCK_MONOTONIC */
    unsigned kind;        /* enum log_sample_kind */
    uint32_t slot_reserved_blocks, largest_free_run_blocks;
    uint32_t peak_reserved_blocks, min_largest_free_run_blocks; /* so far */
    uint64_t slot_committed_bytes; /* slot and Large Memory Area */
    uint64_t heap_live_bytes, heap_committed_bytes; /* the process heap */
    uint64_t ram_free_bytes;
    unsigned state;       /* enum memstate */
    /* The process heap's free space (absent from older logs: has_free false) */
    bool has_free;
    uint64_t heap_free_items, heap_largest_free_bytes, heap_empty_pages;
};

/* The entry point a failed request came through. */
enum log_api {
    LOG_API_MALLOC,       /* malloc, calloc, realloc, memalign, ... */
    LOG_API_MMAP,         /* mmap, mremap, mprotect over the slot */
    LOG_API_VIRTUALALLOC,
    LOG_API_HEAPALLOC,
    LOG_API_HEAPREALLOC,
    LOG_API_LOCALALLOC,
    LOG_API_LOCALREALLOC,
    LOG_API_HEAPCREATE,
    LOG_API_COUNT
};

/* Why a request failed: the one list of reasons in cebox (noted by the
 * slot and the heap, taken by entry_fail, written to the log, read by
 * `cebox report`).  The numbers are the log's codes (docs/LOG-FORMAT.md):
 * old logs keep their meaning, so values are only ever added at the end. */
enum log_reason {
    LOG_REASON_NONE,
    LOG_REASON_EXHAUSTED,  /* too few free blocks in the slot */
    LOG_REASON_FRAGMENTED, /* enough free blocks, but no contiguous run */
    LOG_REASON_RAM,        /* device RAM exhausted */
    LOG_REASON_STATE_CAP,  /* refused by the low/critical memory-state cap */
    LOG_REASON_HEAP_FULL,  /* a fixed-size heap is full (CE sets no error) */
    LOG_REASON_TOO_LARGE,  /* at least the size of the slot */
    LOG_REASON_IN_PLACE,   /* cannot grow in place and may not move */
    LOG_REASON_INJECTED,   /* a failure cebox was told to inject */
    LOG_REASON_OTHER,
    LOG_REASON_COUNT
};

/* How a process ended (LOG_REC_END). */
enum log_end_how {
    LOG_END_EXIT,    /* exit(value) or main returned value */
    LOG_END_SIGNAL,  /* killed by signal value */
    LOG_END_UNKNOWN, /* exited, with a status cebox did not see */
};

/* What a LEAK record's blocks are (its trailing `what` field). */
enum log_leak_what { LOG_LEAK_HEAP = 0, LOG_LEAK_MAPPINGS = 1 };

/* LOG_REC_END flags. */
#define LOG_END_LEAKS 1u      /* --leaks: the LEAK records before this one are the live set */
#define LOG_END_UNLOCKED 2u   /* the leak table was read without its lock */
#define LOG_END_INCOMPLETE 4u /* no memory to classify: no LEAK records */

/* "malloc", "mmap", "VirtualAlloc", ...; "?" when out of range. */
const char *log_api_name(unsigned api);
/* Short names for machines ("exhausted", "fragmented", ...) and the
 * sentence for people ("slot exhausted", ...); "?" when out of range. */
const char *log_reason_key(unsigned reason);
const char *log_reason_text(unsigned reason);

/* CRC-32 (IEEE 802.3, as zlib), continued from `crc` (start with 0). */
uint32_t log_crc32(uint32_t crc, const void *data, size_t len);

/* ---- encoding: a fixed buffer filled front to back ---- */

struct log_enc {
    unsigned char *buf;
    size_t cap, len;
    bool overflow; /* something did not fit: the record must not be written */
};

/* Starts a record of `type` in buf (the head is completed by log_enc_finish). */
void log_enc_begin(struct log_enc *e, unsigned char *buf, size_t cap, unsigned type);
void log_put_u8(struct log_enc *e, uint8_t v);
void log_put_u16(struct log_enc *e, uint16_t v);
void log_put_u32(struct log_enc *e, uint32_t v);
void log_put_u64(struct log_enc *e, uint64_t v);
void log_put_bytes(struct log_enc *e, const void *p, size_t n);
/* A u32 length, then the bytes. */
void log_put_str(struct log_enc *e, const void *p, size_t n);
/* Fills in length and CRC.  Returns the record's size, or 0 on overflow. */
size_t log_enc_finish(struct log_enc *e);

/* A whole sample record's payload. */
void log_put_sample(struct log_enc *e, const struct log_sample *s);

/* The payload of a slot map (record 5): n cells run-length encoded, then
 * the cause, its time (CLOCK_MONOTONIC ns) and LOG_MAP_MARKED. */
void log_put_map(struct log_enc *e, uint32_t seq, const char *cells, size_t n, uint64_t lma_bytes,
                 enum log_map_cause cause, uint64_t time_ns);
/* "failure", "peak", "exit", "on-demand", "sample" ("?" past the list). */
const char *log_map_cause_key(unsigned cause);

/* ---- decoding: a cursor over one payload ---- */

struct log_dec {
    const unsigned char *p;
    size_t len, pos;
    bool short_read; /* a field ran past the payload */
};

void log_dec_init(struct log_dec *d, const void *payload, size_t len);
uint8_t log_get_u8(struct log_dec *d);
uint16_t log_get_u16(struct log_dec *d);
uint32_t log_get_u32(struct log_dec *d);
uint64_t log_get_u64(struct log_dec *d);
/* Copies n bytes (zero-fills on a short read). */
void log_get_bytes(struct log_dec *d, void *out, size_t n);
/* A length-prefixed string: points *out into the payload (not
 * NUL-terminated) and returns its length; 0 and NULL on a short read. */
size_t log_get_str(struct log_dec *d, const char **out);

void log_get_sample(struct log_dec *d, struct log_sample *s);

/* Parses a 16-byte head.  Returns 0, or -1 with a reason in *why (bad
 * magic, impossible length). */
int log_head_parse(const unsigned char head[LOG_HEAD_SIZE], unsigned *type, uint32_t *length,
                   uint32_t *crc, const char **why);
/* The CRC a record with this head and payload must carry. */
uint32_t log_record_crc(const unsigned char head[LOG_HEAD_SIZE], const void *payload, size_t len);

#endif
