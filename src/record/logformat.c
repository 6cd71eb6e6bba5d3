/*
 * logformat.c - encoding, decoding and names of the event log (see
 * logformat.h and docs/LOG-FORMAT.md).  No allocation, no I/O.
 */
#include "record/logformat.h"

#include <string.h>

const char *log_api_name(unsigned api)
{
    static const char *const names[LOG_API_COUNT] = {
        "malloc", "mmap", "VirtualAlloc", "HeapAlloc", "HeapReAlloc", "LocalAlloc", "LocalReAlloc", "HeapCreate",
    };
    return api < LOG_API_COUNT ? names[api] : "?";
}

const char *log_reason_key(unsigned reason)
{
    static const char *const keys[LOG_REASON_COUNT] = {
        "none", "exhausted", "fragmented", "ram", "state-cap", "heap-full", "too-large", "in-place", "injected", "other",
    };
    return reason < LOG_REASON_COUNT ? keys[reason] : "?";
}

const char *log_reason_text(unsigned reason)
{
    static const char *const texts[LOG_REASON_COUNT] = {
        "no reason recorded",
        "slot exhausted",
        "no contiguous run of free blocks (fragmentation)",
        "device RAM exhausted",
        "refused by the low/critical memory cap",
        "fixed-size heap full",
        "request at least the size of the slot",
        "cannot grow in place",
        "injected failure",
        "other",
    };
    return reason < LOG_REASON_COUNT ? texts[reason] : "?";
}

/* Reflected CRC-32, polynomial 0xEDB88320, four bits at a time. */
uint32_t log_crc32(uint32_t crc, const void *data, size_t len)
{
    static const uint32_t nibble[16] = {
        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
        0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
    };
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble[crc & 15];
        crc = (crc >> 4) ^ nibble[crc & 15];
    }
    return ~crc;
}

/* ---- encoding ---- */

static void store_le(unsigned char *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t load_le(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

void log_enc_begin(struct log_enc *e, unsigned char *buf, size_t cap, unsigned type)
{
    e->buf = buf;
    e->cap = cap;
    e->overflow = cap < LOG_HEAD_SIZE;
    e->len = e->overflow ? 0 : LOG_HEAD_SIZE;
    if (!e->overflow) {
        store_le(buf, LOG_MAGIC, 4);
        store_le(buf + 4, type, 2);
        store_le(buf + 6, 0, 2);
    }
}

static unsigned char *room(struct log_enc *e, size_t n)
{
    if (e->overflow || n > e->cap - e->len) {
        e->overflow = true;
        return NULL;
    }
    unsigned char *p = e->buf + e->len;
    e->len += n;
    return p;
}

static void put_le(struct log_enc *e, uint64_t v, unsigned n)
{
    unsigned char *p = room(e, n);
    if (p != NULL) {
        store_le(p, v, n);
    }
}

void log_put_u8(struct log_enc *e, uint8_t v)
{
    put_le(e, v, 1);
}

void log_put_u16(struct log_enc *e, uint16_t v)
{
    put_le(e, v, 2);
}

void log_put_u32(struct log_enc *e, uint32_t v)
{
    put_le(e, v, 4);
}

void log_put_u64(struct log_enc *e, uint64_t v)
{
    put_le(e, v, 8);
}

void log_put_bytes(struct log_enc *e, const void *p, size_t n)
{
    unsigned char *q = room(e, n);
    if (q != NULL && n != 0) {
        memcpy(q, p, n);
    }
}

void log_put_str(struct log_enc *e, const void *p, size_t n)
{
    if (n > LOG_MAX_PAYLOAD) {
        e->overflow = true;
        return;
    }
    log_put_u32(e, (uint32_t)n);
    log_put_bytes(e, p, n);
}

size_t log_enc_finish(struct log_enc *e)
{
    if (e->overflow || e->len - LOG_HEAD_SIZE > LOG_MAX_PAYLOAD) {
        return 0;
    }
    size_t payload = e->len - LOG_HEAD_SIZE;
    store_le(e->buf + 8, payload, 4);
    store_le(e->buf + 12, log_record_crc(e->buf, e->buf + LOG_HEAD_SIZE, payload), 4);
    return e->len;
}

uint32_t log_record_crc(const unsigned char head[LOG_HEAD_SIZE], const void *payload, size_t len)
{
    return log_crc32(log_crc32(0, head, 12), payload, len);
}

int log_head_parse(const unsigned char head[LOG_HEAD_SIZE], unsigned *type, uint32_t *length,
                   uint32_t *crc, const char **why)
{
    if (load_le(head, 4) != LOG_MAGIC) {
        *why = "bad magic";
        return -1;
    }
    *type = (unsigned)load_le(head + 4, 2);
    *length = (uint32_t)load_le(head + 8, 4);
    *crc = (uint32_t)load_le(head + 12, 4);
    if (*length > LOG_MAX_PAYLOAD) {
        *why = "impossible record length";
        return -1;
    }
    return 0;
}

/* ---- decoding ---- */

void log_dec_init(struct log_dec *d, const void *payload, size_t len)
{
    d->p = payload;
    d->len = len;
    d->pos = 0;
    d->short_read = false;
}

static const unsigned char *take(struct log_dec *d, size_t n)
{
    if (d->short_read || n > d->len - d->pos) {
        d->short_read = true;
        return NULL;
    }
    const unsigned char *p = d->p + d->pos;
    d->pos += n;
    return p;
}

static uint64_t get_le(struct log_dec *d, unsigned n)
{
    const unsigned char *p = take(d, n);
    return p != NULL ? load_le(p, n) : 0;
}

uint8_t log_get_u8(struct log_dec *d)
{
    return (uint8_t)get_le(d, 1);
}

uint16_t log_get_u16(struct log_dec *d)
{
    return (uint16_t)get_le(d, 2);
}

uint32_t log_get_u32(struct log_dec *d)
{
    return (uint32_t)get_le(d, 4);
}

uint64_t log_get_u64(struct log_dec *d)
{
    return get_le(d, 8);
}

void log_get_bytes(struct log_dec *d, void *out, size_t n)
{
    const unsigned char *p = take(d, n);
    if (p != NULL) {
        memcpy(out, p, n);
    } else if (n != 0) {
        memset(out, 0, n);
    }
}

size_t log_get_str(struct log_dec *d, const char **out)
{
    uint32_t n = log_get_u32(d);
    const unsigned char *p = take(d, n);
    *out = (const char *)p;
    return p != NULL ? n : 0;
}

void log_put_sample(struct log_enc *e, const struct log_sample *s)
{
    log_put_u64(e, s->time_ns);
    log_put_u8(e, (uint8_t)s->kind);
    log_put_u32(e, s->slot_reserved_blocks);
    log_put_u32(e, s->largest_free_run_blocks);
    log_put_u32(e, s->peak_reserved_blocks);
    log_put_u32(e, s->min_largest_free_run_blocks);
    log_put_u64(e, s->slot_committed_bytes);
    log_put_u64(e, s->heap_live_bytes);
    log_put_u64(e, s->heap_committed_bytes);
    log_put_u64(e, s->ram_free_bytes);
    log_put_u32(e, s->state);
    log_put_u8(e, s->has_free ? 1 : 0);
    log_put_u64(e, s->heap_free_items);
    log_put_u64(e, s->heap_largest_free_bytes);
    log_put_u64(e, s->heap_empty_pages);
}

void log_put_map(struct log_enc *e, uint32_t seq, const char *cells, size_t n, uint64_t lma_bytes,
                 enum log_map_cause cause, uint64_t time_ns)
{
    log_put_u32(e, seq);
    log_put_u32(e, (uint32_t)n);
    log_put_u64(e, lma_bytes);
    uint32_t runs = 0;
    for (size_t i = 0; i < n; i++) {
        runs += i == 0 || cells[i] != cells[i - 1];
    }
    log_put_u32(e, runs);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && cells[j] == cells[i]) {
            j++;
        }
        log_put_u8(e, (uint8_t)cells[i]);
        log_put_u32(e, (uint32_t)(j - i));
        i = j;
    }
    log_put_u8(e, (uint8_t)cause);
    log_put_u64(e, time_ns);
    log_put_u32(e, LOG_MAP_MARKED);
}

const char *log_map_cause_key(unsigned cause)
{
    static const char *const keys[LOG_MAP_CAUSES] = {"failure", "peak", "exit", "on-demand", "sample"};
    return cause < LOG_MAP_CAUSES ? keys[cause] : "?";
}

void log_get_sample(struct log_dec *d, struct log_sample *s)
{
    s->time_ns = log_get_u64(d);
    s->kind = log_get_u8(d);
    s->slot_reserved_blocks = log_get_u32(d);
    s->largest_free_run_blocks = log_get_u32(d);
    s->peak_reserved_blocks = log_get_u32(d);
    s->min_largest_free_run_blocks = log_get_u32(d);
    s->slot_committed_bytes = log_get_u64(d);
    s->heap_live_bytes = log_get_u64(d);
    s->heap_committed_bytes = log_get_u64(d);
    s->ram_free_bytes = log_get_u64(d);
    s->state = log_get_u32(d);
    s->has_free = false;
    s->heap_free_items = s->heap_largest_free_bytes = s->heap_empty_pages = 0;
    if (!d->short_read && d->pos < d->len) { /* absent from older logs */
        bool known = log_get_u8(d) != 0;
        s->heap_free_items = log_get_u64(d);
        s->heap_largest_free_bytes = log_get_u64(d);
        s->heap_empty_pages = log_get_u64(d);
        s->has_free = known && !d->short_read;
    }
}
