/*
 * stack.c - capture (the fast unwinder, libunwind loaded when needed) and
 * the table of distinct stacks (see stack.h).
 *
 * Memory: uthash's own allocations (the table header and the bucket
 * arrays) are meta.c blocks, given back with the size uthash passes to
 * uthash_free; entries are carved from 64 KB meta.c chunks that live as
 * long as the table.  Nothing here calls libc's malloc.  When uthash has
 * no memory for a new entry (HASH_NONFATAL_OOM: it undoes the add), the
 * entry's bytes are given back to its chunk, and a chunk made for it alone
 * goes too, so a failed insert leaves the table as it was.
 */
#include "record/stack.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "invariant.h"
#include "meta.h"
#include "record/logformat.h"
#include "record/unwind.h"
#include "record/unwpipe.h"
#include "entry.h"
#include "os.h"

#define uthash_malloc(sz) meta_alloc(sz)
#define uthash_free(ptr, sz) meta_free((ptr), (sz))
/* A failed allocation leaves the new entry out (hh.tbl == NULL) instead of
 * calling exit(). */
#define HASH_NONFATAL_OOM 1

/* Keys are whole return addresses: hashed a word at a time (a multiply
 * and a shift each), not byte by byte as uthash's default does; with
 * --leaks every allocation interns its stack, and this hash is most of
 * that cost after the unwind itself. */
static unsigned stack_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
    for (size_t i = 0; i + sizeof(uint64_t) <= len; i += sizeof(uint64_t)) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return (unsigned)(h ^ (h >> 29));
}
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = stack_hash((keyptr), (size_t)(keylen)))
#include <uthash.h>

struct stack_entry {
    UT_hash_handle hh;
    struct stack_info info;
    uint32_t depth;
    uintptr_t ips[]; /* the key: depth addresses */
};

struct stack_chunk {
    struct stack_chunk *next;
    size_t size, used; /* bytes of the mapping, bytes handed out (header included) */
};

#define CHUNK_SIZE ((size_t)64 * 1024)

void stack_table_init(struct stack_table *t)
{
    memset(t, 0, sizeof *t);
}

void stack_table_destroy(struct stack_table *t)
{
    HASH_CLEAR(hh, t->head); /* frees the buckets and the table header */
    for (struct stack_chunk *c = t->chunks, *next; c != NULL; c = next) {
        next = c->next;
        meta_free(c, c->size);
    }
    stack_table_init(t);
}

#define CHUNK_HDR ((sizeof(struct stack_chunk) + 15) & ~(size_t)15)

static size_t carved_size(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static void *carve(struct stack_table *t, size_t n)
{
    n = carved_size(n);
    struct stack_chunk *c = t->chunks;
    if (c == NULL || c->size - c->used < n) {
        size_t size = CHUNK_HDR + n > CHUNK_SIZE ? CHUNK_HDR + n : CHUNK_SIZE;
        c = meta_alloc(size);
        if (c == NULL) {
            return NULL;
        }
        c->size = size;
        c->used = CHUNK_HDR;
        c->next = t->chunks;
        t->chunks = c;
    }
    void *p = (unsigned char *)c + c->used;
    c->used += n;
    return p;
}

/* Takes back the last carve of n bytes (an entry uthash could not add),
 * with its chunk when nothing else was carved from it. */
static void uncarve(struct stack_table *t, size_t n)
{
    struct stack_chunk *c = t->chunks;
    c->used -= carved_size(n);
    if (c->used == CHUNK_HDR) {
        t->chunks = c->next;
        meta_free(c, c->size);
    }
}

struct stack_info *stack_table_intern(struct stack_table *t, const uintptr_t *ips, size_t depth,
                                      bool *added)
{
    *added = false;
    if (depth > LOG_MAX_DEPTH) {
        depth = LOG_MAX_DEPTH;
    }
    size_t keylen = depth * sizeof *ips;
    struct stack_entry *e = NULL;
    HASH_FIND(hh, t->head, ips, keylen, e);
    if (e != NULL) {
        e->info.hits++;
        return &e->info;
    }
    e = carve(t, sizeof *e + keylen);
    if (e == NULL) {
        return NULL;
    }
    memset(e, 0, sizeof *e);
    e->depth = (uint32_t)depth;
    if (keylen != 0) {
        memcpy(e->ips, ips, keylen);
    }
    HASH_ADD_KEYPTR(hh, t->head, e->ips, keylen, e);
    if (e->hh.tbl == NULL) {
        uncarve(t, sizeof *e + keylen); /* uthash had no memory and undid the add */
        return NULL;
    }
    e->info.id = ++t->next_id;
    e->info.hits = 1;
    t->count++;
    *added = true;
    return &e->info;
}

size_t stack_info_frames(const struct stack_info *si, const uintptr_t **ips)
{
    const struct stack_entry *e =
        (const struct stack_entry *)((const char *)si - offsetof(struct stack_entry, info));
    *ips = e->ips;
    return e->depth;
}

/* ---- capture ---- */

/* The address range of the shared object that holds this code (the
 * preload library or libcebox.so); empty when the core is linked into the
 * program itself (unit tests), whose frames are then all kept. */
static struct {
    pthread_once_t once;
    uintptr_t lo, hi;
} self = {.once = PTHREAD_ONCE_INIT};

void stack_object_bounds(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi)
{
    *lo = UINTPTR_MAX;
    *hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            *lo = a < *lo ? a : *lo;
            *hi = a + ph->p_memsz > *hi ? a + ph->p_memsz : *hi;
        }
    }
}

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t me = (uintptr_t)arg, lo, hi;
    stack_object_bounds(info, &lo, &hi);
    if (me >= lo && me < hi) {
        if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0') {
            self.lo = lo;
            self.hi = hi;
        }
        return 1;
    }
    return 0;
}

static void find_self_once(void)
{
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&stack_capture);
}

/* libunwind's unw_backtrace, from the library loaded when a stack may be
 * asked for (stack_load_unwinder); NULL until then, or when it cannot be
 * loaded (a capture the fast unwinder cannot do then has no frames). */
static struct {
    pthread_once_t once;
    int (*backtrace)(void **frames, int max);
} unw = {.once = PTHREAD_ONCE_INIT};

/* Loads libunwind (and its own dependencies) with the guard set, so that
 * what the loader allocates is cebox's, and points libunwind's pipe2 at
 * cebox's before its first unwind opens that pipe (unwpipe.h). */
static void load_libunwind(void)
{
    int saved = errno, was_inside = entry_inside;
    entry_inside = 1;
    void *lib = dlopen(CEBOX_LIBUNWIND_SONAME, RTLD_NOW | RTLD_LOCAL);
    void *sym = lib != NULL ? dlsym(lib, "unw_backtrace") : NULL;
    if (sym != NULL) {
        unwpipe_install((uintptr_t)sym);
    }
    memcpy(&unw.backtrace, &sym, sizeof sym); /* object to function pointer */
    entry_inside = was_inside;
    errno = saved;
}

void stack_load_unwinder(void)
{
    pthread_once(&unw.once, load_libunwind);
}

/* libunwind's frames (0 without it); inlined, so that the first frame is
 * the caller's, as when it calls unw_backtrace itself. */
__attribute__((always_inline)) static inline int libunwind_backtrace(void **frames, int max)
{
    stack_load_unwinder();
    return unw.backtrace != NULL ? unw.backtrace(frames, max) : 0;
}

static bool is_self(uintptr_t ip, uintptr_t lo, uintptr_t hi)
{
    return ip >= lo && ip < hi;
}

/* Frames of cebox above the program's: stack_capture, the event log, the
 * entry point and the helpers between (a handful); this many more are
 * captured so that the program still gets `max`. */
#define OWN_FRAMES_SLACK 16
#define RAW_MAX (LOG_MAX_DEPTH + OWN_FRAMES_SLACK)

#ifdef CEBOX_DEBUG
/* Whether libunwind finds the frames the fast unwinder found (raw[0],
 * where each was called, differs; libunwind has this function's frame
 * more). */
__attribute__((noinline)) static bool same_as_libunwind(void *const *raw, int n, int max)
{
    void *ref[RAW_MAX + 1];
    int m = libunwind_backtrace(ref, max + 1);
    return m == n + 1 && (n <= 1 || memcmp(raw + 1, ref + 2, (size_t)(n - 1) * sizeof *raw) == 0);
}
#endif

/* Inlined in both callers, so that raw[0] is the caller's own frame. */
__attribute__((always_inline)) static inline size_t capture(enum stack_unwinder u, uintptr_t *ips,
                                                            size_t max)
{
    pthread_once(&self.once, find_self_once);
    if (max > LOG_MAX_DEPTH) {
        max = LOG_MAX_DEPTH;
    }
    void *raw[RAW_MAX];
    /* What libunwind allocates or maps is cebox's, never the program's: with
     * the guard set it goes to the bootstrap arena or the kernel, and no
     * hook (fault injection) sees it.  Without it, a failure injected into
     * libunwind's own mmap would be recorded, and so unwound, from inside
     * unw_backtrace, which then waits for the lock it holds (a crash
     * handler's capture hung so).  The fast path's rule lookups call the
     * loader, and are guarded the same way. */
    int was_inside = entry_inside;
    entry_inside = 1;
    int n = -1;
    if (u == STACK_UNWIND_FAST) {
        n = unwind_fast(raw, (int)(max + OWN_FRAMES_SLACK));
        DEBUG_INVARIANT(n < 0 || same_as_libunwind(raw, n, (int)(max + OWN_FRAMES_SLACK)),
                        "the fast unwinder's frames are libunwind's");
    }
    if (n < 0) {
        n = libunwind_backtrace(raw, (int)(max + OWN_FRAMES_SLACK));
    }
    entry_inside = was_inside;
    if (n <= 0) {
        return 0;
    }
    size_t first = 1; /* this function */
    uintptr_t lo = self.lo, hi = self.hi; /* loaded once: the stores to ips may alias self */
    while (first < (size_t)n && is_self((uintptr_t)raw[first], lo, hi)) {
        first++;
    }
    bool all_self = first == (size_t)n;
    if (all_self) {
        first = 1; /* all cebox: keep all but this function */
    }
    /* Runs of the program's frames, copied whole: cebox's frames further
     * down are left out too (the preload library's wrapper of main, for
     * the exit status, sits under every stack of main).  With --leaks this
     * runs for every allocation. */
    size_t count = 0;
    uintptr_t span = hi - lo;
    for (size_t i = first; i < (size_t)n && count < max;) {
        size_t end = (size_t)n - i > max - count ? i + (max - count) : (size_t)n;
        size_t j = i;
        while (j < end && (all_self || (uintptr_t)raw[j] - lo >= span)) {
            j++;
        }
        memcpy(ips + count, raw + i, (j - i) * sizeof *ips);
        count += j - i;
        i = j + 1; /* past a frame of cebox's (or the end) */
    }
    return count;
}

size_t stack_capture(uintptr_t *ips, size_t max)
{
    return capture(STACK_UNWIND_FAST, ips, max);
}

size_t stack_capture_using(enum stack_unwinder u, uintptr_t *ips, size_t max)
{
    return capture(u, ips, max);
}
