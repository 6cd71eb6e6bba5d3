/*
 * stack.c - libunwind capture and the table of distinct stacks (see
 * stack.h).
 *
 * Memory: uthash's own allocations (the table header and the bucket
 * arrays) are whole private mappings, given back with the size uthash
 * passes to uthash_free; entries are carved from 64 KB private chunks that
 * live as long as the table.  Nothing here calls libc's malloc.
 */
#define UNW_LOCAL_ONLY
#include "record/stack.h"

#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "record/logformat.h"
#include "record/unwpipe.h"
#include "os.h"

/* ---- memory for uthash: private mappings only ---- */

static size_t page_round(size_t n)
{
    size_t page = os_page_size();
    return (n + page - 1) & ~(page - 1);
}

static void *table_map(size_t n)
{
    return os_map_private(page_round(n));
}

static void table_unmap(void *p, size_t n)
{
    if (p != NULL) {
        os_release(p, page_round(n));
    }
}

#define uthash_malloc(sz) table_map(sz)
#define uthash_free(ptr, sz) table_unmap((ptr), (sz))
/* A failed allocation leaves the new entry out (hh.tbl == NULL) instead of
 * calling exit(). */
#define HASH_NONFATAL_OOM 1
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
        os_release(c, c->size);
    }
    stack_table_init(t);
}

static void *carve(struct stack_table *t, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct stack_chunk *c = t->chunks;
    if (c == NULL || c->size - c->used < n) {
        size_t hdr = (sizeof *c + 15) & ~(size_t)15;
        size_t size = page_round(hdr + n > CHUNK_SIZE ? hdr + n : CHUNK_SIZE);
        c = os_map_private(size);
        if (c == NULL) {
            return NULL;
        }
        c->size = size;
        c->used = hdr;
        c->next = t->chunks;
        t->chunks = c;
    }
    void *p = (unsigned char *)c + c->used;
    c->used += n;
    return p;
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
        return NULL; /* uthash had no memory: the entry stays unused */
    }
    e->info.id = ++t->next_id;
    e->info.hits = 1;
    t->count++;
    *added = true;
    return &e->info;
}

/* ---- capture ---- */

/* The address range of the shared object that holds this code (the
 * preload library or libcebox.so); empty when the core is linked into the
 * program itself (unit tests), whose frames are then all kept. */
static struct {
    pthread_once_t once;
    uintptr_t lo, hi;
} self = {.once = PTHREAD_ONCE_INIT};

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t me = (uintptr_t)arg, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            lo = a < lo ? a : lo;
            hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
        }
    }
    if (me >= lo && me < hi) {
        if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0') {
            self.lo = lo;
            self.hi = hi;
        }
        return 1;
    }
    return 0;
}

/* Also, before libunwind's first unwind opens its pipe: that pipe goes
 * where the program does not look (unwpipe.h). */
static void find_self_once(void)
{
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&stack_capture);
    unwpipe_install((uintptr_t)&unw_backtrace);
}

static bool is_self(uintptr_t ip)
{
    return ip >= self.lo && ip < self.hi;
}

/* Frames of cebox above the program's: stack_capture, the event log, the
 * entry point and the helpers between (a handful); this many more are
 * captured so that the program still gets `max`. */
#define OWN_FRAMES_SLACK 16

size_t stack_capture(uintptr_t *ips, size_t max)
{
    pthread_once(&self.once, find_self_once);
    if (max > LOG_MAX_DEPTH) {
        max = LOG_MAX_DEPTH;
    }
    void *raw[LOG_MAX_DEPTH + OWN_FRAMES_SLACK];
    int n = unw_backtrace(raw, (int)(max + OWN_FRAMES_SLACK));
    if (n <= 0) {
        return 0;
    }
    size_t first = 1; /* this function */
    while (first < (size_t)n && is_self((uintptr_t)raw[first])) {
        first++;
    }
    if (first == (size_t)n) {
        first = 1; /* all cebox: keep all but this function */
    }
    size_t count = 0;
    for (size_t i = first; i < (size_t)n && count < max; i++) {
        ips[count++] = (uintptr_t)raw[i];
    }
    return count;
}
