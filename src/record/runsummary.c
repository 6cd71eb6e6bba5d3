/*
 * runsummary.c - the text of the exit summary (see runsummary.h).
 */
#include "record/runsummary.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "record/leaks.h"

uint64_t run_summary_mapped_peak_pages(const struct run_summary *s)
{
    uint64_t others = s->peak_committed_heap_pages + s->peak_committed_image_pages + s->peak_committed_stack_pages;
    return s->peak_committed_pages > others ? s->peak_committed_pages - others : 0;
}

/* The digits of v, in order, at out (room for 20); returns their count. */
static size_t decimal(char *out, uint64_t v)
{
    char rev[20];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = rev[n - 1 - i];
    }
    return n;
}

/* bytes / 2^shift with one decimal and the unit, as printf's "%.1f" writes
 * that quotient (exact in binary below 2^53 bytes): rounded to nearest, a
 * tie to the even tenth.  Integer arithmetic: the start of every process
 * prints its exit summary, and printf's float formatting was a third of
 * it. */
static size_t tenths_with_unit(char *out, uint64_t bytes, unsigned shift, const char *unit)
{
    unsigned __int128 x = (unsigned __int128)bytes * 10;
    uint64_t q = (uint64_t)(x >> shift), half = (uint64_t)1 << (shift - 1);
    uint64_t r = (uint64_t)(x & (((unsigned __int128)1 << shift) - 1));
    q += r > half || (r == half && (q & 1) != 0);
    size_t n = decimal(out, q / 10);
    out[n++] = '.';
    out[n++] = (char)('0' + q % 10);
    out[n++] = ' ';
    memcpy(out + n, unit, strlen(unit) + 1);
    return n + strlen(unit);
}

const char *run_summary_bytes(char *buf, size_t len, uint64_t bytes)
{
    char text[40];
    if (bytes >= (uint64_t)1 << 53) {
        snprintf(text, sizeof text, "%.1f MB", (double)bytes / (1024.0 * 1024.0)); /* as printf rounds it then */
    } else if (bytes >= 10u * 1024 * 1024) {
        tenths_with_unit(text, bytes, 20, "MB");
    } else if (bytes >= 10u * 1024) {
        tenths_with_unit(text, bytes, 10, "KB");
    } else {
        memcpy(text + decimal(text, bytes), " bytes", sizeof " bytes");
    }
    if (len != 0) { /* snprintf's truncation */
        size_t n = strlen(text) < len - 1 ? strlen(text) : len - 1;
        memcpy(buf, text, n);
        buf[n] = '\0';
    }
    return buf;
}

/* The summary's own printf, for the conversions its lines use (%s, %u,
 * %d, %llu, %#llx, %%): every process prints the summary at exit, and
 * vsnprintf was two thirds of its cost (and two pages of libc's code to
 * fault in).  Writes what fits of the text before buf[cap - 1], ends it,
 * and returns the new length; -1, nothing written, for a conversion it
 * does not know (the caller then asks vsnprintf). */
struct text {
    char *buf;
    size_t used, cap;
};

static void put(struct text *t, const char *s, size_t n)
{
    size_t room = t->cap - 1 - t->used;
    n = n < room ? n : room;
    memcpy(t->buf + t->used, s, n);
    t->used += n;
}

static void put_hex(struct text *t, unsigned long long v)
{
    char rev[16];
    size_t n = 0;
    do {
        rev[n++] = "0123456789abcdef"[v % 16];
        v /= 16;
    } while (v != 0);
    while (n > 0) {
        put(t, &rev[--n], 1);
    }
}

static bool known_conversions(const char *fmt)
{
    for (const char *p = strchr(fmt, '%'); p != NULL; p = strchr(p + 2, '%')) {
        bool known = p[1] == 's' || p[1] == 'u' || p[1] == 'd' || p[1] == '%' ||
                     strncmp(p + 1, "llu", 3) == 0 || strncmp(p + 1, "#llx", 4) == 0;
        if (!known) {
            return false;
        }
        p += p[1] == 'l' ? 2 : p[1] == '#' ? 3 : 0;
    }
    return true;
}

static void format_text(struct text *t, const char *fmt, va_list ap)
{
    char digits[24];
    for (const char *p = fmt; *p != '\0'; p++) {
        const char *pct = strchr(p, '%');
        size_t plain = pct != NULL ? (size_t)(pct - p) : strlen(p);
        put(t, p, plain);
        if (pct == NULL) {
            return;
        }
        p = pct + 1;
        if (*p == 's') {
            const char *arg = va_arg(ap, const char *);
            arg = arg != NULL ? arg : "(null)"; /* as glibc prints it */
            put(t, arg, strlen(arg));
        } else if (*p == 'u') {
            put(t, digits, decimal(digits, va_arg(ap, unsigned)));
        } else if (*p == 'd') {
            int v = va_arg(ap, int);
            if (v < 0) {
                put(t, "-", 1);
            }
            put(t, digits, decimal(digits, v < 0 ? (uint64_t)0 - (uint64_t)(int64_t)v : (uint64_t)v));
        } else if (*p == 'l') { /* %llu */
            put(t, digits, decimal(digits, va_arg(ap, unsigned long long)));
            p += 2;
        } else if (*p == '#') { /* %#llx: 0x before all but 0, as printf */
            unsigned long long v = va_arg(ap, unsigned long long);
            put(t, "0x", v != 0 ? 2 : 0);
            put_hex(t, v);
            p += 3;
        } else {
            put(t, "%", 1);
        }
    }
}

size_t run_summary_vappend(char *buf, size_t used, size_t cap, const char *fmt, va_list ap)
{
    if (cap == 0 || used >= cap - 1) {
        return used;
    }
    if (known_conversions(fmt)) {
        struct text t = {.buf = buf, .used = used, .cap = cap};
        format_text(&t, fmt, ap);
        buf[t.used] = '\0';
        return t.used;
    }
    int n = vsnprintf(buf + used, cap - used, fmt, ap);
    return n < 0 ? used : (used + (size_t)n < cap ? used + (size_t)n : cap - 1);
}

size_t run_summary_append(char *buf, size_t used, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = run_summary_vappend(buf, used, cap, fmt, ap);
    va_end(ap);
    return n;
}

uint64_t run_summary_failures(const struct run_summary *s)
{
    uint64_t total = 0;
    for (int i = 0; i < LOG_API_COUNT; i++) {
        total += s->failures[i];
    }
    return total;
}

typedef unsigned long long ull;

static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

/* Where the slot is (a device's place: below 2 GB) and what the image,
 * DLLs and stacks took in it. */
static size_t occupancy_line(const struct run_summary *s, char *buf, size_t n, size_t cap)
{
    bool device = s->slot_base + (uint64_t)s->blocks * s->granularity <= 0x80000000u;
    const char *where = device ? "below 2 GB, as on a device" : "above 2 GB: no device range of its size was free";
    if (s->image_blocks + s->xip_dll_blocks + s->ram_dll_blocks + s->stack_blocks + s->occupants_refused == 0) {
        return run_summary_append(buf, n, cap, "cebox:   slot at %#llx (%s)\n", (ull)s->slot_base, where); /* --occupy no */
    }
    n = run_summary_append(buf, n, cap, "cebox:   slot at %#llx (%s): image %u block%s, DLLs %u XIP (data, %u block%s) and %u in RAM "
               "(%u block%s), stacks %u block%s each (peak %u)",
               (ull)s->slot_base, where,
               (unsigned)s->image_blocks, plural(s->image_blocks), (unsigned)s->xip_dlls,
               (unsigned)s->xip_dll_blocks, plural(s->xip_dll_blocks), (unsigned)s->ram_dlls,
               (unsigned)s->ram_dll_blocks, plural(s->ram_dll_blocks), (unsigned)s->stack_blocks,
               plural(s->stack_blocks), (unsigned)s->peak_stacks);
    if (s->threads_refused != 0) {
        n = run_summary_append(buf, n, cap, "; threads refused for want of a stack block: %u", (unsigned)s->threads_refused);
    }
    if (s->occupants_refused != 0) {
        n = run_summary_append(buf, n, cap, "; found no room: %u", (unsigned)s->occupants_refused);
    }
    return run_summary_append(buf, n, cap, "\n");
}

/* The slot's lines (its peak, occupants, committed kinds, headroom) and
 * the heap's. */
static size_t slot_and_heap_lines(const struct run_summary *s, char *buf, size_t n, size_t cap)
{
    char a[32], b[32];
    n = run_summary_append(buf, n, cap, "cebox:   slot: peak %u of %u blocks reserved (%s), peak %s committed\n",
               (unsigned)s->peak_reserved_blocks, (unsigned)s->blocks,
               run_summary_bytes(a, sizeof a, (uint64_t)s->peak_reserved_blocks * s->granularity),
               run_summary_bytes(b, sizeof b, s->peak_committed_pages * s->page_size));
    if (s->occupancy_known) {
        n = occupancy_line(s, buf, n, cap);
    }
    if (s->kinds_known && s->peak_committed_pages != 0) {
        uint64_t heap = s->peak_committed_heap_pages;
        uint64_t mapped = run_summary_mapped_peak_pages(s);
        n = run_summary_append(buf, n, cap, "cebox:   slot committed at its peak: heap %s, mappings and VirtualAlloc %s",
                   run_summary_bytes(a, sizeof a, heap * s->page_size),
                   run_summary_bytes(b, sizeof b, mapped * s->page_size));
        if (s->occupancy_known) {
            n = run_summary_append(buf, n, cap, ", image and DLLs %s, stacks %s",
                       run_summary_bytes(a, sizeof a, s->peak_committed_image_pages * s->page_size),
                       run_summary_bytes(b, sizeof b, s->peak_committed_stack_pages * s->page_size));
        }
        n = run_summary_append(buf, n, cap, "\n");
    }
    if (s->headroom_known) {
        n = run_summary_append(buf, n, cap, "cebox:   headroom: smallest largest free run %u blocks (%s), peak %u blocks reserved\n",
                   (unsigned)s->min_largest_free_run,
                   run_summary_bytes(a, sizeof a, (uint64_t)s->min_largest_free_run * s->granularity),
                   (unsigned)s->peak_reserved_blocks);
    }
    n = run_summary_append(buf, n, cap, "cebox:   heap: peak %s live, peak %llu block%s, peak %s committed\n",
                           run_summary_bytes(a, sizeof a, s->heap_peak_live_bytes), (ull)s->heap_peak_live_blocks,
                           plural(s->heap_peak_live_blocks), run_summary_bytes(b, sizeof b, s->heap_peak_committed_bytes));
    if (s->heap_live_blocks != 0) {
        n = run_summary_append(buf, n, cap, "cebox:   still allocated: %s in %llu block%s\n",
                   run_summary_bytes(a, sizeof a, s->heap_live_bytes), (ull)s->heap_live_blocks,
                   s->heap_live_blocks == 1 ? "" : "s");
    }
    return n;
}

size_t run_summary_format(const struct run_summary *s, enum run_summary_hint hint, const char *log,
                          char *buf, size_t cap)
{
    char a[32], b[32];
    size_t n = 0;
    if (cap != 0) {
        buf[0] = '\0';
    }
    n = run_summary_append(buf, n, cap, "cebox: pid %u (%s), profile %s\n", (unsigned)s->pid, s->command, s->profile);
    if (s->private_device[0] != '\0') {
        n = run_summary_append(buf, n, cap, "cebox:   device: private (%s)\n", s->private_device);
    }
    if (s->blocks != 0) {
        n = slot_and_heap_lines(s, buf, n, cap);
    } else {
        /* A slot has blocks: none means that its figures and the heap's
         * were not read (a fatal signal, or a handler's _exit, came while
         * cebox held their locks), which zeros would misstate. */
        n = run_summary_append(buf, n, cap, "cebox:   slot and heap: not read (a signal came while cebox held "
                                            "their locks)\n");
    }
    uint64_t total = run_summary_failures(s);
    n = run_summary_append(buf, n, cap, "cebox:   failed allocations: %llu (malloc family %llu, mmap family %llu", (ull)total,
               (ull)s->failures[LOG_API_MALLOC], (ull)s->failures[LOG_API_MMAP]);
    for (int i = LOG_API_MMAP + 1; i < LOG_API_COUNT; i++) {
        if (s->failures[i] != 0) {
            n = run_summary_append(buf, n, cap, ", %s %llu", log_api_name((unsigned)i), (ull)s->failures[i]);
        }
    }
    n = run_summary_append(buf, n, cap, ")");
    if (s->blocks != 0) { /* the slot's reasons: read with its figures */
        n = run_summary_append(buf, n, cap, "; slot exhausted %llu, no contiguous run %llu, RAM %llu",
                               (ull)s->fail_exhausted, (ull)s->fail_fragmented, (ull)s->fail_ram);
    }
    if (s->fail_cap != 0) {
        n = run_summary_append(buf, n, cap, ", low/critical cap %llu", (ull)s->fail_cap);
    }
    if (s->fail_injected != 0) {
        n = run_summary_append(buf, n, cap, ", injected %llu", (ull)s->fail_injected);
    }
    n = run_summary_append(buf, n, cap, "\n");
    if (s->bad_frees != 0 || s->foreign_frees != 0) {
        n = run_summary_append(buf, n, cap, "cebox:   bad frees reported %llu, frees of memory from before cebox ignored %llu\n",
                   (ull)s->bad_frees, (ull)s->foreign_frees);
    }
    if (s->outside_peak != 0) {
        n = run_summary_append(buf, n, cap, "cebox:   outside the slot (files, shared memory, thread stacks): peak %s\n",
                   run_summary_bytes(a, sizeof a, s->outside_peak));
    }
    if (s->own_known) {
        n = run_summary_append(buf, n, cap, "cebox:   own memory (cebox's, not the program's): bookkeeping %s at exit, mappings peak %s\n",
                   run_summary_bytes(a, sizeof a, s->own_meta_bytes), run_summary_bytes(b, sizeof b, s->own_mapped_peak));
    }
    if (s->unrecorded_failures != 0) {
        n = run_summary_append(buf, n, cap,
                   "cebox:   %llu of them not recorded: the log reached its size limit "
                   "(--log-limit)\n",
                   (ull)s->unrecorded_failures);
    }
    if (s->libc_malloc_bytes != 0) {
        n = run_summary_append(buf, n, cap,
                   "cebox:   not emulated: glibc's own malloc holds %s (code bound to it around cebox, "
                   "such as a library loaded with RTLD_DEEPBIND)\n",
                   run_summary_bytes(a, sizeof a, s->libc_malloc_bytes));
    }
    if (total != 0 && hint == RUN_SUMMARY_HINT_OUT) {
        n = run_summary_append(buf, n, cap, "cebox:   where they failed: run with --out DIR to record their call stacks, "
                                "then: cebox report DIR\n");
    } else if (total != 0 && hint == RUN_SUMMARY_HINT_LOG && log != NULL) {
        n = run_summary_append(buf, n, cap, "cebox:   call stacks of the failures: cebox report %s\n", log);
    }
    return n;
}

size_t run_summary_leaks(const uint64_t bytes[4], const uint64_t blocks[4], const char *const top[4],
                         const uint64_t *suppressed, char *buf, size_t len, size_t cap)
{
    char a[32];
    for (int k = 0; k < 4; k++) {
        if (blocks[k] == 0) {
            continue;
        }
        len = run_summary_append(buf, len, cap, "cebox:   %s: %s in %llu block%s", leaks_kind_text((unsigned)k),
                     run_summary_bytes(a, sizeof a, bytes[k]), (ull)blocks[k], blocks[k] == 1 ? "" : "s");
        if (top[k] != NULL) {
            len = run_summary_append(buf, len, cap, "; most at %s", top[k]);
        }
        len = run_summary_append(buf, len, cap, "\n");
    }
    if (suppressed != NULL && suppressed[1] != 0) {
        len = run_summary_append(buf, len, cap, "cebox:   suppressed: %s in %llu block%s\n",
                     run_summary_bytes(a, sizeof a, suppressed[0]), (ull)suppressed[1],
                     suppressed[1] == 1 ? "" : "s");
    }
    return len;
}

/* The innermost function's name, anchored at its start ("^"), and at its
 * end too when it ends in "$" (LeakSanitizer's notation, as in the
 * suppression files); a site allocated by ld.so itself (link maps, dynamic
 * TLS, thread vectors) is known by its module. */
static const char *const default_suppressions[] = {
    "^_IO_file_doallocate$", "^setlocale$", "^_nl_", "^newlocale$", "^__gconv_open$", "^tzset$",
    "^__tzfile_read$", "^_dl_",
};

static bool anchored_match(const char *pattern, const char *text)
{
    size_t len = strlen(pattern + 1);
    bool whole = len != 0 && pattern[len] == '$';
    size_t n = whole ? len - 1 : len;
    return strncmp(text, pattern + 1, n) == 0 && (!whole || text[n] == '\0');
}

bool run_summary_default_suppressed(const char *function, const char *module)
{
    if (module != NULL && strncmp(module, "ld-", 3) == 0) {
        return true;
    }
    for (size_t i = 0; function != NULL && i < sizeof default_suppressions / sizeof default_suppressions[0]; i++) {
        if (anchored_match(default_suppressions[i], function)) {
            return true;
        }
    }
    return false;
}

size_t run_summary_ending(unsigned how, int value, uint64_t fault_addr, char *buf, size_t len, size_t cap)
{
    if (how == LOG_END_SIGNAL) {
        const char *name = sigabbrev_np(value);
        len = run_summary_append(buf, len, cap, "cebox:   killed by signal %d (SIG%s)", value, name != NULL ? name : "?");
        if (fault_addr != 0) {
            len = run_summary_append(buf, len, cap, ", fault address %#llx", (ull)fault_addr);
        }
        len = run_summary_append(buf, len, cap, "\n");
    } else if (how == LOG_END_EXIT) {
        len = run_summary_append(buf, len, cap, "cebox:   exit status %d\n", value);
    }
    return len;
}
