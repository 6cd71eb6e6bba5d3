/*
 * leaks.c - the table of live blocks and the classification at exit (see
 * leaks.h for the contract).
 *
 * The table is keyed by the block's offset in the slot (every heap block
 * lies there; offset 0 is the slot's first block, which is never a heap
 * block, so 0 marks an empty entry), with linear probing and
 * backward-shift deletion (no tombstones), so a table that lives as long as
 * the process never degrades.
 *
 * The classification, at exit, works on a sorted copy of the table: marks
 * from the roots (a pointer to a block's start makes it reachable, one into
 * its interior possibly lost; a reachable block passes both on, a possible
 * one passes "possible" on), then each block still unmarked leads a clique:
 * it is definitely lost, and every unmarked or definitely lost block it
 * reaches becomes indirectly lost, as in memcheck.  The program's
 * reservations still held are classified with them by the pointers to
 * them (their pages are roots already, so they pass nothing on).
 *
 * The views (with --out): per stack id the bytes and blocks live now and
 * their copy at the peak, updated under the table's lock beside each
 * insertion and removal; growth samples, the peak record and the
 * pinning record (pinning.c) are written through the event log after the
 * lock is let go (the table's lock is never held while the log's or the
 * slot's is taken, but for the slot's queries of reservation_at).
 *
 * Under `cebox run` the same per-stack figures feed the member's top live
 * sites in its session row (ram.h, shown by `cebox status`): published
 * from the pass of each growth sample, and otherwise once every
 * max(LIVE_EVERY, distinct stacks) allocations, so that the pass over the
 * stacks costs each allocation at most one visit, and a run with few
 * stacks shows its sites after its first LIVE_EVERY allocations.
 */
#include "record/leaks.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "ram.h"
#include "entry.h"
#include "meta.h"
#include "os.h"
#include "record/eventlog.h"
#include "record/logformat.h"
#include "record/pinning.h"
#include "record/stack.h"
#include "record/stopthreads.h"

struct live {
    uint32_t off;   /* offset of the block in the slot; 0: empty */
    uint32_t stack; /* id in lt.stacks; 0 when it could not be stored */
    uint32_t size;  /* bytes requested (the slot is at most 2 GB) */
};
_Static_assert(sizeof(struct live) == 12, "12 bytes per table entry");

/* What the tracker keeps per allocation site (stack id): its entry in
 * the stack table, its blocks live now, and their copy at the heap's
 * peak (the views: record/leaks.h). */
struct site_live {
    uint64_t bytes, blocks;
};
struct site {
    const struct stack_info *si;
    struct site_live now, peak;
};

/* An open-addressed table of entries keyed by slot offset. */
struct live_table {
    struct live *slots;
    size_t cap, count;
};

static struct {
    pthread_mutex_t lock;
    struct live_table blocks; /* the heap blocks */
    struct live_table maps;   /* the program's reservations (mmap family, VirtualAlloc), by base */
    struct stack_table stacks;
    struct site *ids; /* stack id -> its site */
    size_t ids_cap;
    uint64_t live_bytes, live_blocks; /* every tracked block */
    uint64_t peak_bytes;              /* the most live_bytes have been */
    bool peak_pending;                /* live_bytes is a new peak not copied yet */
    uint64_t snap_time, snap_bytes, snap_blocks; /* when the peak copy was taken, its totals */
    bool views;                       /* --out: growth samples, peak and pinning records */
    bool per_site;                    /* the per-stack live figures are kept (views, or live sites) */
    struct ram *ram;                  /* the device whose row gets the live sites, or NULL */
    uint64_t tracked, next_publish;   /* allocations tracked; when the live sites are due */
    uint32_t allocs;                  /* allocations since the start (wraps) */
    uint64_t interval_ns, next_sample; /* periodic growth samples (interval 0: none) */
    uintptr_t base;
    size_t span;
    struct slot *slot;
    unsigned depth;
    uint64_t untracked;
    /* The pinning view at the slot's least free run (views only): looked
     * for on a free once pin_frees reaches pin_next, one walk at a time
     * (pin_busy); the view kept and when it was taken. */
    uint64_t pin_frees, pin_last, pin_next; /* frees; at the last walk; the earliest the next may be */
    bool pin_busy, has_pin_least;
    struct pin_report pin_least;
    uint64_t pin_least_time, pin_least_bytes;
} lt = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_bool active;

/* The tracker's own steps, on every allocation and free: inlined. */
#define HOT static inline __attribute__((always_inline))

/* ---- the table ---- */

HOT size_t slot_of(uint32_t off, size_t cap)
{
    return (size_t)(((uint64_t)(off >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

HOT void place(struct live *slots, size_t cap, struct live e)
{
    size_t i = slot_of(e.off, cap);
    while (slots[i].off != 0 && slots[i].off != e.off) {
        i = (i + 1) & (cap - 1);
    }
    slots[i] = e;
}

static bool grow_locked(struct live_table *t)
{
    size_t cap = t->cap != 0 ? t->cap * 2 : 4096;
    struct live *fresh = meta_alloc(cap * sizeof *fresh);
    if (fresh == NULL) {
        return false;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].off != 0) {
            place(fresh, cap, t->slots[i]);
        }
    }
    meta_free(t->slots, t->cap * sizeof *t->slots);
    t->slots = fresh;
    t->cap = cap;
    return true;
}

HOT size_t find_locked(const struct live_table *t, uint32_t off)
{
    if (t->cap == 0) {
        return SIZE_MAX;
    }
    for (size_t i = slot_of(off, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].off == off) {
            return i;
        }
        if (t->slots[i].off == 0) {
            return SIZE_MAX;
        }
    }
}

/* *old: the entry e replaced (a block whose free was missed), or one
 * with off 0. */
HOT bool insert_locked(struct live_table *t, struct live e, struct live *old)
{
    size_t at = find_locked(t, e.off);
    old->off = 0;
    if (at != SIZE_MAX) {
        *old = t->slots[at];
        t->slots[at] = e; /* a block we missed the free of: the newer wins */
        return true;
    }
    if ((t->count + 1) * 4 > t->cap * 3 && !grow_locked(t)) {
        return false;
    }
    place(t->slots, t->cap, e);
    t->count++;
    return true;
}

/* Backward-shift deletion: each entry after the hole that may move into
 * it (its home is not cyclically inside (hole, entry]) does. */
HOT struct live remove_locked(struct live_table *t, uint32_t off)
{
    size_t i = find_locked(t, off);
    if (i == SIZE_MAX) {
        return (struct live){0, 0, 0};
    }
    struct live gone = t->slots[i];
    size_t m = t->cap - 1;
    for (size_t j = (i + 1) & m; t->slots[j].off != 0; j = (j + 1) & m) {
        size_t k = slot_of(t->slots[j].off, t->cap);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].off = 0;
    t->count--;
    return gone;
}

/* The stack's id in the leak table's own stack table (0 when it cannot be
 * stored: the block is still tracked, with no stack). */
HOT uint32_t intern_locked(const uintptr_t *ips, size_t depth)
{
    bool added;
    struct stack_info *si = stack_table_intern(&lt.stacks, ips, depth, &added);
    if (si == NULL) {
        return 0;
    }
    if (si->id >= lt.ids_cap) {
        size_t cap = lt.ids_cap != 0 ? lt.ids_cap * 2 : 1024;
        while (cap <= si->id) {
            cap *= 2;
        }
        struct site *grown = meta_grow(lt.ids, lt.ids_cap * sizeof *grown, cap * sizeof *grown);
        if (grown == NULL) {
            return 0;
        }
        lt.ids = grown;
        lt.ids_cap = cap;
    }
    lt.ids[si->id].si = si;
    return si->id;
}

/* ---- the sites' live figures and the heap's peak ---- */

/* The highest stack id in use + 1 (ids are given in order from 1). */
static uint32_t nids_locked(void)
{
    uint32_t n = lt.stacks.next_id + 1;
    return n < lt.ids_cap ? n : (uint32_t)lt.ids_cap;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The per-stack figures only feed the views (--out) and the live sites
 * (a session row): without either the tracker keeps none. */
HOT void site_add_locked(struct live e)
{
    if (!lt.per_site) {
        return;
    }
    lt.live_bytes += e.size;
    lt.live_blocks++;
    if (e.stack < lt.ids_cap) {
        lt.ids[e.stack].now.bytes += e.size;
        lt.ids[e.stack].now.blocks++;
    }
    if (lt.live_bytes > lt.peak_bytes) {
        lt.peak_bytes = lt.live_bytes;
        lt.peak_pending = true;
    }
}

HOT void site_sub_locked(struct live e)
{
    if (!lt.per_site) {
        return;
    }
    lt.live_bytes -= e.size;
    lt.live_blocks--;
    if (e.stack < lt.ids_cap) {
        lt.ids[e.stack].now.bytes -= e.size;
        lt.ids[e.stack].now.blocks--;
    }
}

/* The live set is about to fall from a new peak: it is copied when it
 * passed the last copy by 1/32 (the first time, always), so a heap that
 * grows by small steps is copied O(log) times, each a pass over the sites;
 * the copy is never more than 1/32 below the real peak (the record
 * carries both). */
static void peak_copy_locked(void)
{
    lt.peak_pending = false;
    if (lt.snap_time != 0 && lt.live_bytes < lt.snap_bytes + lt.snap_bytes / 32) {
        return;
    }
    for (uint32_t i = 0, n = nids_locked(); i < n; i++) {
        lt.ids[i].peak = lt.ids[i].now;
    }
    lt.snap_time = mono_ns();
    lt.snap_bytes = lt.live_bytes;
    lt.snap_blocks = lt.live_blocks;
}

/* Is a periodic growth sample due?  The clock is read every
 * SAMPLE_CHECK allocations only, so the allocation path pays one
 * increment and one branch for it. */
#define SAMPLE_CHECK 1024u

static bool sample_due_locked(void)
{
    if (lt.interval_ns == 0 || (++lt.allocs & (SAMPLE_CHECK - 1)) != 0) {
        return false;
    }
    uint64_t now = mono_ns();
    if (now < lt.next_sample) {
        return false;
    }
    lt.next_sample = now + lt.interval_ns;
    return true;
}

/* ---- the live sites in the session row ---- */

#define LIVE_EVERY 1024u

static size_t top_sites_locked(bool at_peak, struct eventlog_site *out, size_t max, uint64_t rest[2],
                               uint64_t *sites);

/* The first n of top (most bytes first, from top_sites_locked) into the
 * row, with the totals; the next publication is due a pass's worth of
 * allocations later. */
static void live_publish_locked(const struct eventlog_site *top, size_t n, uint64_t sites)
{
    static struct ram_live_sites out; /* under the table's lock: too large for a deep stack */
    memset(&out, 0, sizeof out);
    out.tracking = 1;
    out.time_ns = mono_ns();
    out.allocations = lt.tracked;
    out.sites = sites;
    out.live_bytes = lt.live_bytes;
    out.live_blocks = lt.live_blocks;
    out.count = (uint32_t)(n < RAM_LIVE_SITES ? n : RAM_LIVE_SITES);
    for (uint32_t i = 0; i < out.count; i++) {
        struct ram_live_site *d = &out.site[i];
        d->bytes = top[i].v[0];
        d->blocks = top[i].v[1];
        d->full_depth = (uint32_t)top[i].depth;
        d->depth = d->full_depth < RAM_LIVE_DEPTH ? d->full_depth : RAM_LIVE_DEPTH;
        for (uint32_t k = 0; k < d->depth; k++) {
            d->ips[k] = top[i].ips[k];
        }
    }
    ram_publish_live_sites(lt.ram, &out);
    uint32_t ids = nids_locked();
    lt.next_publish = lt.tracked + (ids > LIVE_EVERY ? ids : LIVE_EVERY);
}

/* A pass of its own for the live sites. */
static void live_walk_locked(void)
{
    struct eventlog_site top[RAM_LIVE_SITES];
    uint64_t rest[2], sites;
    size_t n = top_sites_locked(false, top, RAM_LIVE_SITES, rest, &sites);
    live_publish_locked(top, n, sites);
}

/* Per allocation: an increment and a compare (nothing without a row). */
HOT void live_tick_locked(void)
{
    if (lt.ram != NULL && ++lt.tracked >= lt.next_publish) {
        live_walk_locked();
    }
}

/* ---- the tracker ---- */

static bool pin_due_locked(void);
static void pin_least_view(void);

static bool is_mapping_api(enum log_api api)
{
    return __builtin_expect(api == LOG_API_MMAP || api == LOG_API_VIRTUALALLOC, 0);
}

/* Does a reservation begin at p (not pages mapped inside one)? */
static bool reservation_at(const void *p)
{
    MEMORY_BASIC_INFORMATION m;
    return slot_virtual_query(lt.slot, p, &m) == 0 && m.AllocationBase == p && m.State != MEM_FREE;
}

/* A reservation the program made (mmap, VirtualAlloc with MEM_RESERVE):
 * its base, length and stack, in the table of reservations. */
static void track_map(void *p, size_t size, uint32_t off)
{
    if (!reservation_at(p)) {
        return; /* pages mapped or committed inside a reservation: not a new one */
    }
    uintptr_t ips[LOG_MAX_DEPTH];
    size_t depth = stack_capture(ips, lt.depth);
    struct live e = {off, 0, size > UINT32_MAX ? UINT32_MAX : (uint32_t)size}, old;
    pthread_mutex_lock(&lt.lock);
    e.stack = intern_locked(ips, depth);
    if (!insert_locked(&lt.maps, e, &old)) {
        lt.untracked++;
    }
    pthread_mutex_unlock(&lt.lock);
}

static void track_done(enum log_api api, void *p, size_t size)
{
    uintptr_t off = (uintptr_t)p - lt.base;
    if (off == 0 || off >= lt.span) {
        return; /* not a heap block (the bootstrap arena, or NULL) */
    }
    if (is_mapping_api(api)) {
        track_map(p, size, (uint32_t)off);
        return;
    }
    uintptr_t ips[LOG_MAX_DEPTH];
    size_t depth = stack_capture(ips, lt.depth);
    struct live e = {(uint32_t)off, 0, size > UINT32_MAX ? UINT32_MAX : (uint32_t)size}, old;
    pthread_mutex_lock(&lt.lock);
    e.stack = intern_locked(ips, depth);
    if (!insert_locked(&lt.blocks, e, &old)) {
        lt.untracked++;
    } else {
        if (old.off != 0) {
            site_sub_locked(old);
        }
        site_add_locked(e);
    }
    live_tick_locked();
    bool due = sample_due_locked();
    pthread_mutex_unlock(&lt.lock);
    if (due) {
        leaks_sample(LOG_SAMPLE_TICK);
    }
}

static void track_freed(enum log_api api, void *p)
{
    uintptr_t off = (uintptr_t)p - lt.base;
    if (off == 0 || off >= lt.span) {
        return;
    }
    if (is_mapping_api(api)) {
        /* After the release: gone unless a reservation still begins there
         * (a part given back, or a new one another thread made at once:
         * looked at under the lock, so its entry is never the one removed;
         * the slot's lock is taken inside this one, never the other way). */
        pthread_mutex_lock(&lt.lock);
        if (!reservation_at(p)) {
            remove_locked(&lt.maps, (uint32_t)off);
        }
        pthread_mutex_unlock(&lt.lock);
        return;
    }
    pthread_mutex_lock(&lt.lock);
    if (lt.peak_pending && lt.views) {
        peak_copy_locked(); /* before the free: the live set at its peak */
    }
    struct live gone = remove_locked(&lt.blocks, (uint32_t)off);
    if (gone.off != 0) {
        site_sub_locked(gone);
    }
    bool pin_due = lt.views && ++lt.pin_frees >= lt.pin_next && pin_due_locked();
    pthread_mutex_unlock(&lt.lock);
    if (pin_due) {
        pin_least_view(); /* the block is out of the table: the live set just after this free */
    }
}

static const struct entry_tracker tracker = {.done = track_done, .freed = track_freed};

static void fork_prepare(void)
{
    pthread_mutex_lock(&lt.lock);
}

static void fork_release(void)
{
    pthread_mutex_unlock(&lt.lock);
}

static void fork_child(void)
{
    lt.pin_busy = false; /* a walk another thread had under way did not come along */
    pthread_mutex_unlock(&lt.lock);
}

void leaks_start(struct cebox_core *core)
{
    if (!core->settings.leaks || core->slot == NULL) {
        return;
    }
    lt.slot = core->slot;
    lt.base = slot_base(core->slot);
    lt.span = slot_size(core->slot);
    lt.depth = core->settings.stack_depth;
    lt.views = core->settings.out_dir[0] != '\0';
    lt.ram = core->ram.live != NULL ? &core->ram : NULL;
    lt.per_site = lt.views || lt.ram != NULL;
    lt.interval_ns = lt.views ? (uint64_t)core->settings.sample_interval_ms * 1000000u : 0;
    if (lt.ram != NULL) {
        pthread_mutex_lock(&lt.lock);
        live_walk_locked(); /* the row says --leaks is on, nothing live yet */
        pthread_mutex_unlock(&lt.lock);
    }
    core_atfork(fork_prepare, fork_release, fork_child);
    atomic_store(&active, true);
    entry_set_tracker(&tracker);
}

bool leaks_active(void)
{
    return atomic_load(&active);
}

uint64_t leaks_charged(uint64_t n, uint64_t page)
{
    if (n + 24 >= 0x18000) { /* the heap's large-item threshold (ce5.c) */
        return (n + 0x20 + page - 1) / page * page;
    }
    return (n + 8 + 15) / 16 * 16;
}

const char *leaks_kind_key(unsigned kind)
{
    static const char *const keys[] = {"definite", "indirect", "possible", "reachable"};
    return kind < LEAK_KINDS ? keys[kind] : "?";
}

const char *leaks_kind_text(unsigned kind)
{
    static const char *const texts[] = {"definitely lost", "indirectly lost", "possibly lost",
                                        "still reachable"};
    return kind < LEAK_KINDS ? texts[kind] : "?";
}

/* ---- the classification ---- */

enum mark { M_NONE, M_POSSIBLE, M_REACHABLE, M_DEFINITE, M_INDIRECT };

struct scan {
    struct leak_block *b;
    size_t n, cap; /* cap: the entries b was allocated for */
    uint32_t *work; /* indices to scan; a block is pushed at most twice */
    size_t nwork, work_cap;
    unsigned char *buf; /* SCAN_CHUNK bytes read from the program */
    size_t leader;      /* the clique being marked, or SIZE_MAX */
    size_t threads, threads_missed; /* other threads scanned, not answering */
};

#define SCAN_CHUNK ((size_t)64 * 1024)

/* Heapsort, so that nothing here calls libc (its qsort may allocate). */
typedef bool (*blk_less_fn)(const struct leak_block *a, const struct leak_block *b);

static void sift(struct leak_block *v, size_t root, size_t n, blk_less_fn less)
{
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && less(&v[child], &v[child + 1])) {
            child++;
        }
        if (!less(&v[root], &v[child])) {
            return;
        }
        struct leak_block t = v[root];
        v[root] = v[child];
        v[child] = t;
    }
}

static void sort_blocks(struct leak_block *v, size_t n, blk_less_fn less)
{
    for (size_t i = n / 2; i-- > 0;) {
        sift(v, i, n, less);
    }
    for (size_t end = n; end-- > 1;) {
        struct leak_block t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift(v, 0, end, less);
    }
}

static bool by_addr(const struct leak_block *a, const struct leak_block *b)
{
    return a->addr < b->addr;
}

/* The blocks by address, in O(n): a radix sort of their offsets in the
 * slot (32 bits: the slot is at most 2 GB), a byte at a time, through a
 * meta.c buffer as large as v; heapsort when there is none.  The walks of
 * the pinning view sort the whole live set each time, which heapsort's
 * n log n comparisons made the better part of their cost. */
#define RADIX_BITS 8
#define RADIX (1u << RADIX_BITS)

static uint32_t addr_key(const struct leak_block *b)
{
    return (uint32_t)(b->addr - lt.base);
}

static void sort_by_addr(struct leak_block *v, size_t n)
{
    struct leak_block *tmp = n > 64 ? meta_alloc(n * sizeof *tmp) : NULL;
    if (tmp == NULL) {
        sort_blocks(v, n, by_addr);
        return;
    }
    struct leak_block *from = v, *to = tmp;
    for (unsigned shift = 0; shift < 32; shift += RADIX_BITS) {
        size_t at[RADIX] = {0};
        for (size_t i = 0; i < n; i++) {
            at[(addr_key(&from[i]) >> shift) & (RADIX - 1)]++;
        }
        if (at[(addr_key(&from[0]) >> shift) & (RADIX - 1)] == n) {
            continue; /* one value of this byte: the order stands */
        }
        for (size_t d = 0, sum = 0; d < RADIX; d++) {
            size_t c = at[d];
            at[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            to[at[(addr_key(&from[i]) >> shift) & (RADIX - 1)]++] = from[i];
        }
        struct leak_block *t = from;
        from = to;
        to = t;
    }
    if (from != v) {
        memcpy(v, from, n * sizeof *v);
    }
    meta_free(tmp, n * sizeof *tmp);
}

static bool by_site(const struct leak_block *a, const struct leak_block *b)
{
    if (a->mark != b->mark) {
        return a->mark < b->mark;
    }
    return a->map != b->map ? a->map < b->map : a->stack < b->stack;
}

/* The block that holds address w (its start or its interior), or SIZE_MAX. */
static size_t block_at(const struct scan *s, uintptr_t w)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->b[mid].addr <= w) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return SIZE_MAX;
    }
    const struct leak_block *c = &s->b[lo - 1];
    return w == c->addr || w - c->addr < c->size ? lo - 1 : SIZE_MAX;
}

static void push(struct scan *s, size_t i, uint8_t mark)
{
    s->b[i].mark = mark;
    if (s->nwork < s->work_cap) {
        s->work[s->nwork++] = (uint32_t)i;
    }
}

/* A pointer w found in memory marked `from` (M_REACHABLE for a root). */
static void found(struct scan *s, uintptr_t w, uint8_t from)
{
    size_t i = block_at(s, w);
    if (i == SIZE_MAX || i == s->leader) {
        return;
    }
    uint8_t m = s->b[i].mark;
    bool start = w == s->b[i].addr;
    if (from == M_DEFINITE || from == M_INDIRECT) {
        if (m == M_NONE || m == M_DEFINITE) {
            push(s, i, M_INDIRECT);
        }
    } else if (from == M_REACHABLE && start && (m == M_NONE || m == M_POSSIBLE)) {
        push(s, i, M_REACHABLE);
    } else if (m == M_NONE) {
        push(s, i, M_POSSIBLE);
    }
}

/* Reads [lo, hi) of this process without ever faulting: an unreadable
 * page is skipped. */
static void scan_range(struct scan *s, uintptr_t lo, uintptr_t hi, uint8_t from)
{
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    while (lo + sizeof(uintptr_t) <= hi) {
        size_t want = hi - lo < SCAN_CHUNK ? hi - lo : SCAN_CHUNK;
        long got = os_read_self(s->buf, (const void *)lo, want);
        if (got < (long)sizeof(uintptr_t)) {
            lo = (lo | 4095) + 1; /* unreadable: the next page */
            continue;
        }
        size_t words = (size_t)got / sizeof(uintptr_t);
        for (size_t k = 0; k < words; k++) {
            uintptr_t w;
            memcpy(&w, s->buf + k * sizeof w, sizeof w);
            found(s, w, from);
        }
        lo += words * sizeof(uintptr_t);
    }
}

/* Scans every pushed block until none is left. */
static void drain(struct scan *s)
{
    while (s->nwork > 0) {
        const struct leak_block *b = &s->b[s->work[--s->nwork]];
        if (!b->map) { /* a reservation's pages are roots already (scan_slot_mappings) */
            scan_range(s, b->addr, b->addr + b->size, b->mark);
        }
    }
}

/* ---- roots ---- */

struct module_roots {
    struct scan *s;
    uintptr_t self; /* an address in cebox's own object */
};

static int scan_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct module_roots *m = arg;
    uintptr_t lo, hi;
    stack_object_bounds(info, &lo, &hi);
    /* cebox's own shared object (its bootstrap arena, its tables) is no
     * root; linked into a program (the unit tests), the program is. */
    bool own = m->self >= lo && m->self < hi && info->dlpi_name != NULL && info->dlpi_name[0] != '\0';
    for (int i = 0; i < info->dlpi_phnum && !own; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            scan_range(m->s, a, a + ph->p_memsz, M_REACHABLE);
        }
    }
    return 0;
}

/* The mapping of /proc/self/maps that holds address x: [*lo, *hi). */
static bool mapping_of(uintptr_t x, uintptr_t *lo, uintptr_t *hi)
{
    int fd = os_open("/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    char buf[4096];
    size_t have = 0;
    bool ok = false;
    for (;;) {
        long n = os_read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
            uintptr_t a = 0, b = 0;
            char *p = line;
            for (; *p != '-'; p++) {
                a = a * 16 + (uintptr_t)(*p <= '9' ? *p - '0' : (*p | 32) - 'a' + 10);
            }
            for (p++; *p != ' '; p++) {
                b = b * 16 + (uintptr_t)(*p <= '9' ? *p - '0' : (*p | 32) - 'a' + 10);
            }
            if (x >= a && x < b) {
                *lo = a;
                *hi = b;
                ok = true;
                break;
            }
            line = nl + 1;
        }
        if (ok) {
            break;
        }
        have -= (size_t)(line - buf);
        memmove(buf, line, have);
    }
    os_close(fd);
    return ok;
}

static int add_tls(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    size_t *total = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_TLS) {
            size_t align = ph->p_align > 16 ? ph->p_align : 16;
            *total += (ph->p_memsz + align - 1) / align * align;
        }
    }
    return 0;
}

/* The thread control block above the thread pointer (glibc's struct
 * pthread is about 2.3 KB on x86-64): its pointers (the DTV, the
 * thread's specific data) are roots too. */
#define TCB_SPAN 4096

/* The calling thread: its stack from `from` up (the frame that entered
 * cebox: cebox's own frames below hold stale words of the program's dead
 * frames, which must not keep a block reachable), and its static TLS
 * (variant II: the loaded objects' TLS blocks just below the thread
 * pointer, the control block above).  The TLS is bounded by the objects'
 * PT_TLS sizes, not by its mapping: /proc/self/maps merges that mapping
 * with the neighbouring ones (cebox's own among them). */
static void scan_thread(struct scan *s, uintptr_t from)
{
    uintptr_t lo, hi;
    if (mapping_of(from, &lo, &hi)) {
        scan_range(s, from, hi, M_REACHABLE);
    }
    size_t tls = 0;
    dl_iterate_phdr(add_tls, &tls);
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
    scan_range(s, tp - tls - 64, tp + TCB_SPAN, M_REACHABLE);
}

/* The program's own mappings in the slot (mmap, VirtualAlloc: blocks with
 * committed pages that are no heap region or large item), as memcheck
 * scans every mapping that is not the heap: an allocator of the program's
 * (Python's arenas) keeps its pointers there.  Their uncommitted or
 * inaccessible pages are skipped by the reads. */
static void scan_slot_mappings(struct scan *s)
{
    size_t gran = slot_granularity(lt.slot), blocks = lt.span / gran;
    char *map = meta_alloc(blocks);
    if (map == NULL) {
        return;
    }
    size_t n = slot_map(lt.slot, map, blocks);
    for (size_t i = 0; i < n; i++) {
        if (map[i] == 'C') {
            scan_range(s, lt.base + i * gran, lt.base + (i + 1) * gran, M_REACHABLE);
        }
    }
    meta_free(map, blocks);
}

static void scan_stopped(void *ctx, const void *regs, size_t regs_len, uintptr_t sp, uintptr_t stack_end)
{
    struct scan *s = ctx;
    scan_range(s, (uintptr_t)regs, (uintptr_t)regs + regs_len, M_REACHABLE);
    scan_range(s, sp, stack_end, M_REACHABLE);
}

/* ---- the report ---- */

static size_t copy_table(const struct live_table *t, struct leak_block *out, size_t k, size_t n, bool map)
{
    for (size_t i = 0; i < t->cap && k < n; i++) {
        const struct live *e = &t->slots[i];
        if (e->off != 0) {
            out[k++] = (struct leak_block){lt.base + e->off, e->size, e->stack, M_NONE, map};
        }
    }
    return k;
}

/* Is the reservation the tracker saw made at base still the program's:
 * a reservation still begins there, and no heap took its place? */
static bool still_reserved(uintptr_t base, const char *map)
{
    MEMORY_BASIC_INFORMATION m;
    char c = map[(base - lt.base) / slot_granularity(lt.slot)];
    return (c == 'R' || c == 'C') && slot_virtual_query(lt.slot, (void *)base, &m) == 0 &&
           (uintptr_t)m.AllocationBase == base && m.State != MEM_FREE;
}

/* Drops the reservations of s->b[from..) the program gave back since
 * (a munmap of part of one, a range over several, or a moved one). */
static void keep_reserved(struct scan *s, size_t from)
{
    size_t blocks = lt.span / slot_granularity(lt.slot), k = from;
    char *map = meta_alloc(blocks);
    if (map != NULL) {
        slot_map(lt.slot, map, blocks);
        for (size_t i = from; i < s->n; i++) {
            if (still_reserved(s->b[i].addr, map)) {
                s->b[k++] = s->b[i];
            }
        }
    }
    meta_free(map, blocks);
    s->n = k;
}

/* A copy of the table (with maps, the reservations still held too: that
 * needs the slot's lock); under its lock, or (in a signal handler whose
 * thread holds it) without. */
static bool snapshot(struct scan *s, bool in_signal, struct leak_report *r, bool maps)
{
    bool locked = in_signal ? pthread_mutex_trylock(&lt.lock) == 0 : pthread_mutex_lock(&lt.lock) == 0;
    r->unlocked = !locked;
    r->untracked = lt.untracked;
    size_t nb = lt.blocks.count, n = nb + (maps ? lt.maps.count : 0), k = 0;
    s->b = n != 0 ? meta_alloc(n * sizeof *s->b) : NULL;
    s->cap = n;
    if (s->b != NULL) {
        k = copy_table(&lt.blocks, s->b, 0, nb, false);
        k = maps ? copy_table(&lt.maps, s->b, k, n, true) : k;
    }
    if (locked) {
        pthread_mutex_unlock(&lt.lock);
    }
    s->n = k;
    if (maps && s->b != NULL) {
        keep_reserved(s, nb < k ? nb : k);
    }
    return n == 0 || s->b != NULL;
}

static void scan_free(struct scan *s)
{
    meta_free(s->b, s->cap * sizeof *s->b);
    meta_free(s->work, s->work_cap * sizeof *s->work);
    meta_free(s->buf, SCAN_CHUNK);
}

static void mark_all(struct scan *s, const struct leak_roots *roots)
{
    struct module_roots m = {s, (uintptr_t)&leaks_classify};
    dl_iterate_phdr(scan_module, &m);
    scan_thread(s, roots->stack_from);
    if (roots->slot_unlocked) {
        scan_slot_mappings(s);
    }
    if (roots->regs != NULL) {
        scan_range(s, (uintptr_t)roots->regs, (uintptr_t)roots->regs + roots->regs_len, M_REACHABLE);
    }
    if (roots->stop_threads) { /* last: a stopped thread may hold the loader's or the slot's lock */
        s->threads = stopthreads_visit(scan_stopped, s, &s->threads_missed);
    }
    drain(s);
    for (size_t i = 0; i < s->n; i++) {
        if (s->b[i].mark == M_NONE) {
            s->leader = i;
            push(s, i, M_DEFINITE);
            drain(s);
        }
    }
    s->leader = SIZE_MAX;
}

static enum leak_kind kind_of(uint8_t mark)
{
    switch (mark) {
    case M_REACHABLE:
        return LEAK_REACHABLE;
    case M_POSSIBLE:
        return LEAK_POSSIBLE;
    case M_INDIRECT:
        return LEAK_INDIRECT;
    default:
        return LEAK_DEFINITE;
    }
}

static bool group_sites(struct scan *s, struct leak_report *r, uint64_t page)
{
    for (size_t i = 0; i < s->n; i++) {
        s->b[i].mark = (uint8_t)kind_of(s->b[i].mark);
    }
    sort_blocks(s->b, s->n, by_site);
    r->sites_cap = s->n != 0 ? s->n : 1;
    r->sites = meta_alloc(r->sites_cap * sizeof *r->sites);
    if (r->sites == NULL) {
        return false;
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct leak_block *b = &s->b[i];
        struct leak_site *t = r->nsites != 0 ? &r->sites[r->nsites - 1] : NULL;
        if (t == NULL || t->kind != b->mark || t->map != b->map || t->stack != b->stack) {
            t = &r->sites[r->nsites++];
            t->kind = b->mark;
            t->map = b->map;
            t->stack = b->stack;
            const struct stack_info *si = b->stack < lt.ids_cap ? lt.ids[b->stack].si : NULL;
            t->depth = si != NULL ? stack_info_frames(si, &t->ips) : 0;
        }
        uint64_t gran = slot_granularity(lt.slot);
        uint64_t charged = b->map ? ((uint64_t)b->size + gran - 1) / gran * gran : leaks_charged(b->size, page);
        t->bytes += b->size;
        t->charged += charged;
        t->blocks++;
        r->bytes[b->mark] += b->size;
        r->charged[b->mark] += charged;
        r->blocks[b->mark]++;
    }
    for (size_t i = 0; i < r->nsites; i++) {
        size_t *top = &r->top[r->sites[i].kind];
        if (*top == SIZE_MAX || r->sites[i].bytes > r->sites[*top].bytes) {
            *top = i;
        }
    }
    return true;
}

bool leaks_classify(struct leak_report *r, bool in_signal, const struct leak_roots *roots)
{
    memset(r, 0, sizeof *r);
    for (int k = 0; k < LEAK_KINDS; k++) {
        r->top[k] = SIZE_MAX;
    }
    struct scan s = {.leader = SIZE_MAX};
    bool ok = snapshot(&s, in_signal, r, roots->slot_unlocked);
    if (ok && s.n != 0) {
        s.work_cap = 2 * s.n;
        s.work = meta_alloc(s.work_cap * sizeof *s.work);
        s.buf = meta_alloc(SCAN_CHUNK);
        ok = s.work != NULL && s.buf != NULL;
    }
    if (ok) {
        sort_by_addr(s.b, s.n);
        mark_all(&s, roots);
        r->threads = s.threads;
        r->threads_missed = s.threads_missed;
        ok = group_sites(&s, r, os_page_size());
    }
    scan_free(&s);
    r->incomplete = !ok;
    return ok;
}

void leaks_report_free(struct leak_report *r)
{
    meta_free(r->sites, r->sites_cap * sizeof *r->sites);
    r->sites = NULL;
    r->nsites = r->sites_cap = 0;
}

/* ---- the views (--out): growth samples, the peak, pinning ---- */

#define GROWTH_TOP 32 /* sites per growth sample */
#define PEAK_TOP 256  /* sites in the peak record (the rest summed) */

/* The sites with most bytes in `now` or `peak` (at most max, most bytes
 * first) into out; the others' sum in rest[0] (bytes), rest[1] (blocks),
 * and how many sites have live blocks in *sites.  Returns how many. */
static size_t top_sites_locked(bool at_peak, struct eventlog_site *out, size_t max, uint64_t rest[2],
                               uint64_t *sites)
{
    size_t n = 0;
    rest[0] = rest[1] = 0;
    *sites = 0;
    for (uint32_t i = 0, nids = nids_locked(); i < nids; i++) {
        const struct site_live *v = at_peak ? &lt.ids[i].peak : &lt.ids[i].now;
        if (v->blocks == 0) {
            continue;
        }
        ++*sites;
        rest[0] += v->bytes;
        rest[1] += v->blocks;
        size_t at = n < max ? n++ : max;
        for (; at > 0 && out[at - 1].v[0] < v->bytes; at--) {
            if (at < max) {
                out[at] = out[at - 1];
            }
        }
        if (at < max) {
            const struct stack_info *si = lt.ids[i].si;
            out[at] = (struct eventlog_site){.v = {v->bytes, v->blocks}};
            out[at].depth = si != NULL ? stack_info_frames(si, &out[at].ips) : 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        rest[0] -= out[i].v[0];
        rest[1] -= out[i].v[1];
    }
    return n;
}

/* The table's lock at the end of a process killed by a signal is only
 * tried (its thread may hold it). */
static bool views_lock(bool in_signal)
{
    return in_signal ? pthread_mutex_trylock(&lt.lock) == 0 : pthread_mutex_lock(&lt.lock) == 0;
}

static void growth_sample(enum log_sample_kind kind, bool in_signal)
{
    struct eventlog_site top[GROWTH_TOP];
    uint64_t head[LOG_GROWTH_NHEAD], rest[2];
    if (!views_lock(in_signal)) {
        return;
    }
    size_t n = top_sites_locked(false, top, GROWTH_TOP, rest, &head[LOG_GROWTH_SITES]);
    if (lt.ram != NULL) {
        live_publish_locked(top, n, head[LOG_GROWTH_SITES]); /* the same pass's first sites */
    }
    head[LOG_GROWTH_TIME] = mono_ns();
    head[LOG_GROWTH_KIND] = kind;
    head[LOG_GROWTH_LIVE_BYTES] = lt.live_bytes;
    head[LOG_GROWTH_LIVE_BLOCKS] = lt.live_blocks;
    pthread_mutex_unlock(&lt.lock);
    eventlog_sites(LOG_REC_GROWTH, head, LOG_GROWTH_NHEAD, top, n, LOG_GROWTH_NFIELDS, kind == LOG_SAMPLE_TICK,
                   in_signal);
}

void leaks_sample(enum log_sample_kind kind)
{
    if (atomic_load(&active) && lt.views) {
        growth_sample(kind, false);
    }
}

static void peak_record(bool in_signal)
{
    struct eventlog_site *top = meta_alloc(PEAK_TOP * sizeof *top);
    if (top == NULL || !views_lock(in_signal)) {
        meta_free(top, PEAK_TOP * sizeof *top);
        return;
    }
    if (lt.peak_pending) {
        peak_copy_locked(); /* the peak is now */
    }
    uint64_t head[LOG_PEAK_NHEAD], rest[2], sites;
    size_t n = top_sites_locked(true, top, PEAK_TOP, rest, &sites);
    head[LOG_PEAK_TIME] = lt.snap_time;
    head[LOG_PEAK_LIVE_BYTES] = lt.snap_bytes;
    head[LOG_PEAK_LIVE_BLOCKS] = lt.snap_blocks;
    head[LOG_PEAK_MAX_BYTES] = lt.peak_bytes;
    head[LOG_PEAK_REST_BYTES] = rest[0];
    head[LOG_PEAK_REST_BLOCKS] = rest[1];
    pthread_mutex_unlock(&lt.lock);
    if (lt.snap_time != 0) {
        eventlog_sites(LOG_REC_PEAK, head, LOG_PEAK_NHEAD, top, n, LOG_PEAK_NFIELDS, false, in_signal);
    }
    meta_free(top, PEAK_TOP * sizeof *top);
}

/* The pinning sites of the live set now (pinning.c) into *pr.  False
 * (nothing to free) when there was no memory for it. */
static bool pinning_now(bool in_signal, struct pin_report *pr)
{
    struct scan s = {.leader = SIZE_MAX};
    struct leak_report tmp;
    if (!snapshot(&s, in_signal, &tmp, false)) {
        return false;
    }
    sort_by_addr(s.b, s.n);
    uint32_t nids = 0;
    if (views_lock(in_signal)) {
        nids = nids_locked();
        pthread_mutex_unlock(&lt.lock);
    }
    bool ok = pinning_compute(lt.slot, s.b, s.n, nids, pr);
    scan_free(&s);
    return ok;
}

/* A pinning record of pr (taken at `time`, at the moment `kind` says),
 * its stacks taken from the table under its lock. */
static void pinning_write(const struct pin_report *pr, uint64_t time, enum log_pin_kind kind, bool in_signal)
{
    struct eventlog_site *out = meta_alloc((pr->n != 0 ? pr->n : 1) * sizeof *out);
    if (out != NULL && views_lock(in_signal)) {
        for (size_t i = 0; i < pr->n; i++) {
            const struct pin_site *t = &pr->sites[i];
            const struct stack_info *si = t->stack < lt.ids_cap ? lt.ids[t->stack].si : NULL;
            out[i] = (struct eventlog_site){.v = {t->bytes, t->regions, t->pages, t->free_run_without}};
            out[i].depth = si != NULL ? stack_info_frames(si, &out[i].ips) : 0;
        }
        pthread_mutex_unlock(&lt.lock);
        uint64_t head[LOG_PIN_NHEAD] = {
            [LOG_PIN_TIME] = time,
            [LOG_PIN_REGIONS] = pr->regions,
            [LOG_PIN_COMMITTED_PAGES] = pr->committed_pages,
            [LOG_PIN_EMPTY_PAGES] = pr->empty_pages,
            [LOG_PIN_SHARED_PAGES] = pr->shared_pages,
            [LOG_PIN_SHARED_REGIONS] = pr->shared_regions,
            [LOG_PIN_LARGEST_FREE_RUN] = pr->largest_free_run,
            [LOG_PIN_KIND] = kind,
        };
        eventlog_sites(LOG_REC_PINNING, head, LOG_PIN_NHEAD, out, pr->n, LOG_PIN_NFIELDS, false, in_signal);
    }
    meta_free(out, (pr->n != 0 ? pr->n : 1) * sizeof *out);
}

/* The pinning record at exit: of the live set then. */
static void pinning_record(bool in_signal)
{
    struct pin_report pr;
    if (pinning_now(in_signal, &pr)) {
        pinning_write(&pr, mono_ns(), LOG_PIN_AT_EXIT, in_signal);
        pinning_free(&pr);
    }
}

/* ---- pinning at the slot's least free run ----
 *
 * The moment a fragmented slot fails a request is when its largest free
 * run is smallest, and by exit the program may have freed what pinned it.
 * So on a free that leaves the slot at the least free run it has had,
 * the pinning sites are computed (after the block left the table, with
 * no lock held) and kept when the run is smaller than the kept view's,
 * or the same and the sites pin at least as many bytes (the stretch's
 * worst moment, not its end, when the program frees all before its
 * regions go).  A walk costs about its live blocks (their copy and sort),
 * the table's entries (the copy passes over every one, and the table
 * never shrinks) and the slot's blocks; but for the first, it is paid for
 * beforehand: it waits for PIN_EVERY frees since the last per block's
 * worth of them, so the walks cost a bounded share of the frees whatever
 * the program does (and a program that frees little keeps its first
 * view). */
#define PIN_EVERY 8     /* frees between walks, per live block's worth */
#define PIN_FIXED 512   /* blocks' worth of a walk's fixed cost (the slot's map, its buffers) */
#define PIN_SLOTS_PER_BLOCK 16 /* the table's entries the copy passes over in the time of one block's walk */

#define PIN_RECHECK 64 /* frees before looking again when the slot is not at its worst */

/* Is a walk due now?  When it is not, pin_next says when to look again
 * (the frees' hot path compares one counter with it): PIN_RECHECK frees
 * on, or sooner when the walk is paid for then (its price is the live set
 * of the moment, which frees shrink). */
static bool pin_due_locked(void)
{
    uint32_t now, least;
    uint64_t blocks = lt.blocks.count + lt.blocks.cap / PIN_SLOTS_PER_BLOCK + PIN_FIXED;
    uint64_t price = lt.has_pin_least ? lt.pin_last + PIN_EVERY * blocks : 0;
    if (lt.pin_frees < price) {
        uint64_t wait = price - lt.pin_frees; /* not paid for yet */
        lt.pin_next = lt.pin_frees + (wait < PIN_RECHECK ? wait : PIN_RECHECK);
        return false;
    }
    slot_free_runs(lt.slot, &now, &least);
    if (lt.pin_busy || now != least) { /* a walk under way; the slot roomier than it has been */
        lt.pin_next = lt.pin_frees + PIN_RECHECK;
        return false;
    }
    lt.pin_busy = true;
    return true;
}

static uint64_t pinned_bytes(const struct pin_report *r)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < r->n; i++) {
        sum += r->sites[i].bytes;
    }
    return sum;
}

static void pin_least_view(void)
{
    struct pin_report pr;
    uint64_t t = mono_ns();
    bool ok = pinning_now(false, &pr);
    uint64_t bytes = ok ? pinned_bytes(&pr) : 0;
    pthread_mutex_lock(&lt.lock);
    const struct pin_report *kept = &lt.pin_least;
    bool keep = ok && (!lt.has_pin_least || pr.largest_free_run < kept->largest_free_run ||
                       (pr.largest_free_run == kept->largest_free_run && bytes >= lt.pin_least_bytes));
    bool drop = ok; /* pr holds a report to give back, outside the lock */
    if (keep) {
        struct pin_report old = lt.pin_least;
        lt.pin_least = pr;
        pr = old;
        drop = lt.has_pin_least;
        lt.has_pin_least = true;
        lt.pin_least_time = t;
        lt.pin_least_bytes = bytes;
    }
    lt.pin_last = lt.pin_frees;
    lt.pin_next = lt.pin_frees + PIN_EVERY * PIN_FIXED; /* the least the next waits */
    lt.pin_busy = false;
    pthread_mutex_unlock(&lt.lock);
    if (drop) {
        pinning_free(&pr);
    }
}

/* The kept view's record (at the end; nothing is computed). */
static void pin_least_record(bool in_signal)
{
    if (!views_lock(in_signal)) {
        return;
    }
    bool has = lt.has_pin_least && !lt.pin_busy; /* a walk under way may be about to replace it */
    lt.pin_busy = true; /* and no walk from now on: the view stays as written */
    pthread_mutex_unlock(&lt.lock);
    if (has) {
        pinning_write(&lt.pin_least, lt.pin_least_time, LOG_PIN_AT_LEAST_RUN, in_signal);
    }
}

void leaks_write_views(bool in_signal, bool slot_unlocked)
{
    if (!atomic_load(&active) || !lt.views) {
        return;
    }
    growth_sample(LOG_SAMPLE_EXIT, in_signal);
    peak_record(in_signal);
    pin_least_record(in_signal); /* before the exit's: a reader that knows no kind keeps the last */
    if (slot_unlocked) {
        pinning_record(in_signal);
    }
}
