/*
 * preload.c - the only file that defines libc's allocation and mapping
 * functions.  Loaded with LD_PRELOAD (by `cebox run` or by hand), it serves
 * the program's malloc family from the CE process heap and its anonymous
 * private mmap family from the CE slot.
 *
 * Owns: the use of the recursion guard (entry_inside), the bootstrap arena,
 * the queue of re-entered frees and unmaps, the table of over-aligned
 * blocks, and the fork handlers.  Every request passes entry_begin and
 * every failure is recorded by entry_fail (entry.h); the exit summary is
 * summary.c's.
 *
 * Invariants:
 *  - cebox never calls the interposed functions itself: its memory comes
 *    from raw system calls (os.c).  A call that arrives while this thread is
 *    already inside cebox (a signal handler, a library cebox calls) is
 *    served from the static bootstrap arena, which never takes a lock, so a
 *    re-entered call cannot deadlock; what it cannot do without a lock (free
 *    a heap block, unmap slot pages) waits in a lock-free queue, and it
 *    never touches the slot's pages behind the slot's back.
 *  - A pointer that cebox did not hand out (allocated by ld.so before the
 *    take-over, or simply wrong) is never written through: free ignores
 *    foreign pointers and reports bad ones inside the slot; realloc copies a
 *    foreign block with process_vm_readv (or a pipe), which cannot fault.
 *  - errno is preserved except where libc sets it (ENOMEM, EINVAL).
 *  - Mappings cebox does not emulate (files, shared memory, thread stacks,
 *    fixed addresses outside the slot) go to the kernel unchanged.
 *  - A process that CEBOX_ONLY leaves out of the box makes nothing of
 *    cebox's (no core, slot, log or summary): each call goes to glibc's
 *    allocator or the kernel after one test of a static variable.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"
#include "entry.h"
#include "heap/heap.h"
#include "invariant.h"
#include "layout.h"
#include "lock.h"
#include "meta.h"
#include "occupancy.h"
#include "os.h"
#include "record/eventlog.h"
#include "preload/execnote.h"
#include "record/fatal.h"
#include "record/summary.h"

#define API __attribute__((visibility("default")))

/* ---- re-entrance guard and the bootstrap arena ---- */

/* The guard is entry_inside (entry.h), shared with the exit summary. */

/* The calling thread's guard, for libcebox's Win32-named functions in a
 * program linked with it (a copy of the core of its own): they set this
 * one, which this library's malloc tests (entry.h, ENTRY_WIN32_INSIDE). */
API int *cebox_inside_flag(void)
{
    return &entry_inside;
}

/* Serves calls made while cebox itself is running (and nothing else),
 * without a lock: blocks of power-of-two classes (16 bytes to the whole
 * arena) cut from its start, each after a 16-byte header; a freed block
 * goes on its class's free list (a lock-free stack whose head carries a
 * counter against ABA) for the next re-entered call of that class.
 * Over-aligned blocks are never reused. */
#define BOOT_ARENA_SIZE (1u << 20)
#define BOOT_CLASSES 17                /* 16 << 16 == BOOT_ARENA_SIZE */
#define BOOT_LIVE 0xB0070000u          /* header tag: magic | class */
#define BOOT_FREE 0xB0080000u
#define BOOT_UNCLASSED 0xFFFFu         /* over-aligned: never reused */
static _Alignas(4096) unsigned char boot_arena[BOOT_ARENA_SIZE] CEBOX_LARGE_TABLE;
static atomic_size_t boot_used;
static _Atomic uint64_t boot_lists[BOOT_CLASSES]; /* counter << 32 | offset */

struct boot_block {
    size_t size;      /* bytes asked for */
    atomic_uint tag;  /* BOOT_LIVE or BOOT_FREE | class */
    atomic_uint next; /* on a free list: the next block's offset, 0 ends */
};

static bool in_boot_arena(const void *p)
{
    return (const unsigned char *)p >= boot_arena && (const unsigned char *)p < boot_arena + BOOT_ARENA_SIZE;
}

static struct boot_block *boot_header(size_t offset)
{
    return (struct boot_block *)(void *)(boot_arena + offset) - 1;
}

/* A block from its class's free list, or 0. */
static size_t boot_pop(unsigned cls)
{
    uint64_t head = atomic_load(&boot_lists[cls]);
    while ((uint32_t)head != 0) {
        /* A stale next (the block taken meanwhile) fails the exchange. */
        uint64_t next = ((head >> 32) + 1) << 32 | atomic_load(&boot_header((uint32_t)head)->next);
        if (atomic_compare_exchange_weak(&boot_lists[cls], &head, next)) {
            return (uint32_t)head;
        }
    }
    return 0;
}

/* Fresh space from the arena's start: the offset of a block, or 0. */
static size_t boot_cut(size_t n, size_t align)
{
    size_t used = atomic_load(&boot_used), start;
    do {
        start = (used + sizeof(struct boot_block) + align - 1) & ~(align - 1);
        if (n > BOOT_ARENA_SIZE || start > BOOT_ARENA_SIZE - n) {
            return 0;
        }
    } while (!atomic_compare_exchange_weak(&boot_used, &used, start + n));
    return start;
}

static void *boot_alloc(size_t n, size_t align)
{
    unsigned cls = 0;
    while (cls < BOOT_CLASSES && (size_t)16 << cls < n) {
        cls++;
    }
    size_t at = 0;
    if (align <= 16 && cls < BOOT_CLASSES) {
        at = boot_pop(cls);
        at = at != 0 ? at : boot_cut((size_t)16 << cls, 16);
    } else if (align > 16) {
        cls = BOOT_UNCLASSED;
        at = boot_cut(n, align);
    }
    if (at == 0) {
        errno = ENOMEM; /* as malloc's */
        return NULL;
    }
    struct boot_block *b = boot_header(at);
    b->size = n;
    atomic_store(&b->tag, BOOT_LIVE | cls);
    return boot_arena + at;
}

/* Bytes of the arena block at p that may be read (p may be no block). */
static size_t boot_size(const void *p)
{
    size_t avail = (size_t)(boot_arena + BOOT_ARENA_SIZE - (const unsigned char *)p);
    if ((const unsigned char *)p < boot_arena + sizeof(struct boot_block)) {
        return avail;
    }
    size_t n = ((const struct boot_block *)p - 1)->size;
    return n < avail ? n : avail;
}

/* Puts a live block of a class on its free list; anything else (a pointer
 * into a block, a second free, an over-aligned block) is left alone. */
static void boot_free(const void *p)
{
    size_t at = (size_t)((const unsigned char *)p - boot_arena);
    if (at < sizeof(struct boot_block) || at % 16 != 0) {
        return;
    }
    struct boot_block *b = boot_header(at);
    unsigned tag = atomic_load(&b->tag);
    unsigned cls = tag & 0xFFFFu;
    if ((tag & ~0xFFFFu) != BOOT_LIVE || cls >= BOOT_CLASSES ||
        !atomic_compare_exchange_strong(&b->tag, &tag, BOOT_FREE | cls)) {
        return;
    }
    uint64_t head = atomic_load(&boot_lists[cls]), next;
    do {
        atomic_store(&b->next, (uint32_t)head);
        next = ((head >> 32) + 1) << 32 | at;
    } while (!atomic_compare_exchange_weak(&boot_lists[cls], &head, next));
}

/* ---- processes left out of the box (--only) ----
 *
 * Their calls go to glibc's allocator through the __libc_* entry points it
 * exports for allocators that wrap it (a dlsym would allocate), and the
 * rarer functions through dlsym once.  Decided at the first call or at the
 * constructor, whichever comes first, before the core exists. */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);
extern int __libc_mallopt(int param, int value);

enum { SELECTION_UNKNOWN, SELECTION_BOXED, SELECTION_LIBC };
static atomic_int selection;

static __attribute__((noinline)) bool decide_boxed(void)
{
    int saved = errno, was = entry_inside;
    entry_inside = 1; /* whatever the decision allocates comes from the arena */
    bool boxed = core_boxes_this_program();
    entry_inside = was;
    errno = saved;
    atomic_store(&selection, boxed ? SELECTION_BOXED : SELECTION_LIBC);
    return boxed;
}

/* Is this process in the box?  (Every program is, without --only.) */
static inline __attribute__((always_inline)) bool boxed_process(void)
{
    int sel = atomic_load_explicit(&selection, memory_order_relaxed);
    return sel == SELECTION_BOXED || (sel == SELECTION_UNKNOWN && decide_boxed());
}

/* glibc's functions that have no __libc_ name, looked up once each. */
enum libc_extra { LIBC_USABLE_SIZE, LIBC_MALLINFO2, LIBC_TRIM, LIBC_STATS, LIBC_EXTRA_COUNT };
union libc_fn {
    void *sym;
    size_t (*usable_size)(void *p);
    struct mallinfo2 (*mallinfo2)(void);
    int (*trim)(size_t pad);
    void (*stats)(void);
};

static union libc_fn libc_extra(enum libc_extra which)
{
    static const char *const names[LIBC_EXTRA_COUNT] = {"malloc_usable_size", "mallinfo2", "malloc_trim",
                                                        "malloc_stats"};
    static void *_Atomic found[LIBC_EXTRA_COUNT];
    union libc_fn f = {.sym = atomic_load(&found[which])};
    if (f.sym == NULL) {
        entry_inside = 1; /* dlsym may allocate: from the arena */
        f.sym = dlsym(RTLD_NEXT, names[which]);
        entry_inside = 0;
        atomic_store(&found[which], f.sym);
    }
    return f;
}

/* realloc for a process out of the box: a block of cebox's arena (from
 * its own work) is copied out, everything else is glibc's. */
static void *libc_resize(void *p, size_t n)
{
    if (!in_boot_arena(p)) {
        return __libc_realloc(p, n);
    }
    void *q = __libc_malloc(n);
    size_t avail = (size_t)(boot_arena + BOOT_ARENA_SIZE - (unsigned char *)p);
    if (q != NULL) {
        memcpy(q, p, n < avail ? n : avail);
    }
    return q;
}

/* ---- the core ---- */

/* The process's core, heap and slot, as every call sees them. */
struct proc {
    struct cebox_core *core;
    const struct heap_ops *ops;
    struct heap *heap;
    uintptr_t slot_base; /* the slot, for the test of every pointer */
    size_t slot_size;
};

/* errno is not saved on the way in: nothing on the served path sets it
 * (raw system calls, no libc call that reports in errno), and each rare
 * path that might (the core's start, the entry hook and tracker, queued
 * frees, a refused pointer's report) keeps it itself.  So a call touches
 * errno only to report a failure.  Under --enable-debug, leave checks it. */
struct ctx {
    const struct proc *p; /* the published one, or own */
    struct proc own;
    int saved_errno; /* for leave_keeping_errno */
#ifdef CEBOX_DEBUG
    int errno_in; /* errno on the way in, for leave's check */
#endif
};

/* Small functions on the path of every malloc and free, inlined so that a
 * call costs what glibc's does rather than a chain of calls. */
#define HOT static inline __attribute__((always_inline))

/* Stands in for the process heap while it cannot be made (the slot or the
 * device RAM has no room for its first region): every allocation fails
 * with ENOMEM, nothing is ever a block of it. */
static void *no_alloc(struct heap *h, DWORD flags, size_t n, DWORD *err)
{
    (void)h, (void)flags, (void)n;
    *err = ERROR_NOT_ENOUGH_MEMORY;
    return NULL;
}

static void *no_realloc(struct heap *h, DWORD flags, void *p, size_t n, DWORD *err)
{
    (void)p;
    return no_alloc(h, flags, n, err);
}

static bool no_free(struct heap *h, DWORD flags, void *p, DWORD *err)
{
    (void)h, (void)flags;
    *err = ERROR_INVALID_PARAMETER;
    summary_note_bad_free(p, HEAP_BAD_FOREIGN);
    return false;
}

static size_t no_size(struct heap *h, DWORD flags, const void *p, DWORD *err)
{
    (void)h, (void)flags, (void)p, (void)err;
    return (size_t)-1;
}

static size_t no_compact(struct heap *h, DWORD flags, DWORD *err)
{
    (void)h, (void)flags, (void)err;
    return 0;
}

static void no_stats(struct heap *h, struct heap_stats *out)
{
    (void)h;
    memset(out, 0, sizeof *out);
}

static const struct heap_ops no_heap_ops = {
    .name = "none", .align = _Alignof(max_align_t), .alloc = no_alloc, .realloc = no_realloc,
    .free = no_free, .size = no_size, .compact = no_compact, .stats = no_stats,
};

/* What every call needs once the process heap exists.  A preloaded
 * process never drops its heap or its slot, so this is published once
 * (proc_state) and then read by every call without a lock. */
static struct proc proc;
enum { PROC_NONE, PROC_WRITING, PROC_READY };
static atomic_int proc_state; /* one writer, chosen by compare-and-swap: no
                               * lock that a fork could leave taken */

/* This library's reasons in the gate (entry.h, entry_gate): a heap that
 * aligns less than malloc must (its blocks over-aligned: malloc's general
 * path), over-aligned blocks live (a free may need the table's base), and
 * in the bits from GATE_PENDING_ONE up the count of queued re-entered
 * frees and unmaps (at most PENDING_MAX).  The fast malloc needs the gate
 * open to MALLOC_SHUT's reasons, the fast free to FREE_SHUT's; each keeps
 * its general path for every other case. */
#define GATE_UNDERALIGNED ((unsigned)ENTRY_GATE_OWN)
#define GATE_ALIGNED_LIVE ((unsigned)ENTRY_GATE_OWN << 1)
#define GATE_PENDING_ONE (1u << 8)
#define GATE_PENDING (~(GATE_PENDING_ONE - 1))
#define MALLOC_SHUT (ENTRY_GATE_HOOK | ENTRY_GATE_TRACKER | ENTRY_GATE_CLOSED | GATE_UNDERALIGNED)
#define FREE_SHUT (ENTRY_GATE_TRACKER | ENTRY_GATE_CLOSED | GATE_ALIGNED_LIVE | GATE_PENDING)

/* The core, with the process's image, main stack and libraries placed in
 * its slot before anything else takes a block (occupancy.c: once). */
static struct cebox_core *boxed_core(void)
{
    struct cebox_core *core = core_get();
    occupancy_start(core);
    return core;
}

/* enter() until the process heap exists: asks the core each time (the heap
 * may become possible later), and publishes it once it does. */
static __attribute__((noinline)) void enter_slow(struct ctx *c)
{
    int saved = errno; /* the core's start opens and reads files */
    struct proc *o = &c->own;
    o->core = boxed_core();
    o->heap = core_process_heap(o->core);
    o->ops = o->heap != NULL ? o->heap->ops : &no_heap_ops;
    o->slot_base = slot_base(o->core->slot);
    o->slot_size = slot_size(o->core->slot);
    c->p = o;
    if (o->heap != NULL) {
        int expected = PROC_NONE;
        if (atomic_compare_exchange_strong(&proc_state, &expected, PROC_WRITING)) {
            proc = *o;
            atomic_store_explicit(&proc_state, PROC_READY, memory_order_release);
            if (o->ops->align < _Alignof(max_align_t)) {
                atomic_fetch_or(&entry_gate, GATE_UNDERALIGNED);
            }
            atomic_fetch_and(&entry_gate, ~(unsigned)ENTRY_GATE_CLOSED); /* after proc is written */
        }
    }
    errno = saved;
}

/* enter() once the gate said the process heap is published (it opens
 * only then): a fast path that calls this keeps the published proc in
 * registers, not in a context read back later. */
HOT void enter_published(struct ctx *c)
{
#ifdef CEBOX_DEBUG
    c->errno_in = errno;
#endif
    entry_inside = 1;
    c->p = &proc;
}

/* Enters cebox; false (and nothing entered) in a process out of the box,
 * whose caller goes to glibc instead. */
HOT bool enter(struct ctx *c)
{
    bool ready = atomic_load_explicit(&proc_state, memory_order_acquire) == PROC_READY;
    if (__builtin_expect(!ready, 0) && !boxed_process()) {
        return false;
    }
#ifdef CEBOX_DEBUG
    c->errno_in = errno;
#endif
    entry_inside = 1;
    if (__builtin_expect(ready, 1)) {
        c->p = &proc;
    } else {
        enter_slow(c);
    }
    return true;
}

/* enter() for a call that restores errno in leave_keeping_errno (unless
 * it reports an error there): one whose failure is not reported in errno
 * (posix_memalign), or that may call libc's syscall() (the mmap family). */
static bool enter_keeping_errno(struct ctx *c)
{
    if (!enter(c)) {
        return false;
    }
    c->saved_errno = errno;
    return true;
}

/* Is p inside the slot of pr (where every block cebox hands out lies)? */
HOT bool in_slot_of(const struct proc *pr, const void *p)
{
    return (uintptr_t)p - pr->slot_base < pr->slot_size;
}

HOT bool in_slot(const struct ctx *c, const void *p)
{
    return in_slot_of(c->p, p);
}

/* Leaves cebox after enter(); errno is set to `err` when non-zero, else
 * left as the call found it (nothing on its way set it). */
HOT void leave(struct ctx *c, int err)
{
    (void)c; /* (read by the check under --enable-debug) */
    entry_inside = 0;
    if (__builtin_expect(err != 0, 0)) {
        errno = err;
    }
    DEBUG_INVARIANT(err != 0 || errno == c->errno_in, "errno kept by a call that did not fail");
}

/* leave() after enter_keeping_errno (or enter_mapping): errno as it was on
 * the way in unless `err` reports a failure. */
static void leave_keeping_errno(struct ctx *c, int err)
{
    if (err == 0) {
        errno = c->saved_errno;
    }
    leave(c, err);
}

/* ---- what re-entered calls leave for later ----
 *
 * A re-entered free of a heap block, or munmap of slot pages, cannot take
 * the locks it needs (the code it interrupted may hold them), so it is
 * queued here without a lock and done by the next plain free (any thread's),
 * realloc or mmap-family call (or at exit).  A full queue leaves a block
 * allocated (the exit summary counts it) and fails a munmap with ENOMEM. */

#define PENDING_MAX 128
enum { PENDING_EMPTY, PENDING_FILLING, PENDING_READY, PENDING_TAKEN };

static struct pending {
    atomic_int state;
    void *addr;
    size_t len; /* pages to unmap; 0 for a heap block to free */
} pending[PENDING_MAX] CEBOX_LARGE_TABLE; /* counted in the gate (GATE_PENDING) */

static bool pending_put(void *addr, size_t len)
{
    for (int i = 0; i < PENDING_MAX; i++) {
        int expected = PENDING_EMPTY;
        if (atomic_compare_exchange_strong(&pending[i].state, &expected, PENDING_FILLING)) {
            pending[i].addr = addr;
            pending[i].len = len;
            atomic_store(&pending[i].state, PENDING_READY);
            atomic_fetch_add(&entry_gate, GATE_PENDING_ONE);
            return true;
        }
    }
    return false;
}

HOT bool pending_any(void)
{
    return entry_gate_shut(GATE_PENDING);
}

static void free_block_of(const struct proc *pr, void *p);

/* Does what re-entered calls left (the guard is held), with the process
 * heap and slot of pr. */
static __attribute__((noinline)) void pending_run_of(const struct proc *pr)
{
    int saved = errno; /* a refused block is reported */
    for (int i = 0; i < PENDING_MAX; i++) {
        int expected = PENDING_READY;
        if (atomic_compare_exchange_strong(&pending[i].state, &expected, PENDING_TAKEN)) {
            void *addr = pending[i].addr;
            size_t len = pending[i].len;
            atomic_store(&pending[i].state, PENDING_EMPTY);
            atomic_fetch_sub(&entry_gate, GATE_PENDING_ONE);
            if (len == 0) {
                free_block_of(pr, addr);
            } else {
                slot_unmap(pr->core->slot, addr, len);
            }
        }
    }
    errno = saved;
}

static void pending_run(struct ctx *c)
{
    pending_run_of(c->p);
}

/* Does a re-entered mapping call touch the slot, whose bookkeeping it
 * cannot take?  (Before the process heap exists, nothing re-enters.) */
static bool reentered_touches_slot(const void *addr, size_t len)
{
    if (atomic_load_explicit(&proc_state, memory_order_acquire) != PROC_READY) {
        return false;
    }
    uintptr_t a = (uintptr_t)addr;
    return len != 0 && a < proc.slot_base + proc.slot_size &&
           (len > UINTPTR_MAX - a || a + len > proc.slot_base);
}

/* ---- over-aligned blocks: aligned pointer -> base pointer ----
 *
 * The heap aligns data to its ops->align bytes.  A larger alignment is served by
 * allocating alignment-1 bytes more and handing out an aligned address
 * inside the block; this table remembers the block it came from.  It lives
 * in a meta.c block, is rehashed into one twice the size when half full,
 * and is keyed by address with linear probing; a removed slot gets a
 * tombstone.  When the bigger table cannot be had, the old one stays and
 * the aligned allocation fails (ENOMEM), its block given back. */

struct align_entry {
    uintptr_t aligned, base;
};

#define ALIGN_TOMB ((uintptr_t)1)

static struct {
    pthread_mutex_t lock;
    struct align_entry *slots;
    size_t cap, used; /* used counts live entries and tombstones */
} amap = {.lock = PTHREAD_MUTEX_INITIALIZER};
static atomic_size_t amap_live; /* live entries, read without the lock */
/* The lowest power of two dividing every aligned pointer ever put (0: none
 * yet), written under the lock, read without it: a pointer that it does
 * not divide is no entry. */
static atomic_uintptr_t amap_min_align;

static size_t amap_hash(uintptr_t p, size_t cap)
{
    return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static bool amap_grow_locked(void)
{
    size_t cap = amap.cap ? amap.cap * 2 : 1024;
    struct align_entry *fresh = meta_alloc(cap * sizeof *fresh);
    if (fresh == NULL) {
        return false;
    }
    size_t live = 0;
    for (size_t i = 0; i < amap.cap; i++) {
        uintptr_t a = amap.slots[i].aligned;
        if (a != 0 && a != ALIGN_TOMB) {
            size_t j = amap_hash(a, cap);
            while (fresh[j].aligned != 0) {
                j = (j + 1) & (cap - 1);
            }
            fresh[j] = amap.slots[i];
            live++;
        }
    }
    meta_free(amap.slots, amap.cap * sizeof *amap.slots);
    amap.slots = fresh;
    amap.cap = cap;
    amap.used = live;
    return true;
}

static bool amap_put(uintptr_t aligned, uintptr_t base)
{
    pthread_mutex_lock(&amap.lock);
    bool ok = (amap.used + 1) * 2 <= amap.cap || amap_grow_locked();
    if (ok) {
        size_t j = amap_hash(aligned, amap.cap);
        while (amap.slots[j].aligned != 0 && amap.slots[j].aligned != ALIGN_TOMB) {
            j = (j + 1) & (amap.cap - 1);
        }
        amap.used += amap.slots[j].aligned == 0;
        amap.slots[j] = (struct align_entry){aligned, base};
        uintptr_t low = aligned & -aligned, min = atomic_load_explicit(&amap_min_align, memory_order_relaxed);
        if (min == 0 || low < min) {
            atomic_store_explicit(&amap_min_align, low, memory_order_relaxed);
        }
        if (atomic_fetch_add(&amap_live, 1) == 0) { /* under the lock: in step with the count */
            atomic_fetch_or(&entry_gate, GATE_ALIGNED_LIVE);
        }
    }
    pthread_mutex_unlock(&amap.lock);
    return ok;
}

/* Finds (and with `remove`, forgets) the base of an aligned pointer; 0 if p
 * is not one. */
static uintptr_t amap_find(uintptr_t aligned, bool remove)
{
    uintptr_t base = 0;
    pthread_mutex_lock(&amap.lock);
    if (amap.cap != 0) {
        size_t j = amap_hash(aligned, amap.cap);
        while (amap.slots[j].aligned != 0) {
            if (amap.slots[j].aligned == aligned) {
                base = amap.slots[j].base;
                if (remove) {
                    amap.slots[j].aligned = ALIGN_TOMB;
                    if (atomic_fetch_sub(&amap_live, 1) == 1) {
                        atomic_fetch_and(&entry_gate, ~GATE_ALIGNED_LIVE);
                    }
                }
                break;
            }
            j = (j + 1) & (amap.cap - 1);
        }
    }
    pthread_mutex_unlock(&amap.lock);
    return base;
}

/* ---- the malloc family ---- */

/* A block of n bytes from the process heap, the failure recorded (the
 * caller has passed entry_begin). */
HOT void *alloc_from_heap(struct ctx *c, size_t n, DWORD flags)
{
    DWORD err; /* the heap's reason is noted for entry_fail, its error not looked at */
    void *p = c->p->ops->alloc(c->p->heap, flags, n, &err);
    if (p == NULL) {
        entry_fail(LOG_API_MALLOC, n, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_NONE);
    }
    /* (cppcheck takes the block for something made from &err) */
    /* cppcheck-suppress returnDanglingLifetime */
    return p;
}

/* The end of a fast malloc that the heap failed (the guard still held):
 * recorded, left, ENOMEM.  Out of line, off the fast path's registers. */
static __attribute__((noinline, cold)) void *malloc_failed(size_t n)
{
    entry_fail(LOG_API_MALLOC, n, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_NONE);
    entry_inside = 0;
    errno = ENOMEM;
    return NULL;
}

static void *aligned_from_heap(struct ctx *c, size_t align, size_t n, DWORD flags);

/* What malloc, calloc and realloc hand out: a heap block, aligned as glibc
 * promises on this host (max_align_t).  A heap that aligns less (CE 3.0: 8)
 * gets its blocks over-aligned like memalign's, so the program never sees
 * an 8-aligned malloc on a 64-bit host. */
HOT void *plain_from_heap(struct ctx *c, size_t n, DWORD flags)
{
    if (__builtin_expect(c->p->ops->align >= _Alignof(max_align_t), 1)) {
        return alloc_from_heap(c, n, flags);
    }
    return aligned_from_heap(c, _Alignof(max_align_t), n, flags);
}

/* malloc and calloc once entered: the block, told to the tracker, and
 * the call left (errno ENOMEM when it failed). */
HOT void *malloc_entered(struct ctx *c, size_t n, DWORD flags)
{
    void *p = plain_from_heap(c, n, flags);
    if (p != NULL) {
        entry_done(LOG_API_MALLOC, p, n);
    }
    leave(c, p == NULL ? ENOMEM : 0);
    return p;
}

/* malloc in every case: re-entered, before the heap is published, out of
 * the box. */
static __attribute__((noinline)) void *malloc_general(size_t n)
{
    if (entry_inside) {
        return boot_alloc(n, 16);
    }
    /* Before enter(): nothing is live yet when a hook is called. */
    if (!entry_begin(LOG_API_MALLOC, n)) {
        return NULL;
    }
    struct ctx c;
    if (!enter(&c)) {
        return __libc_malloc(n);
    }
    return malloc_entered(&c, n, 0);
}

/* A fast path's heap call: the heap's error (never looked at but on
 * failure) and the size asked for, side by side on the stack.  The heap is
 * given the error's address, so the size is read back from here on the
 * failure path, not kept in a register saved across the call (two
 * instructions a call fewer). */
struct fast_call {
    DWORD err;
    size_t n;
};

/* May this call take the fast malloc?  The common case: the gate open to
 * MALLOC_SHUT's reasons (the heap published and aligning as malloc must,
 * no hook, no tracker) and not re-entered. */
HOT bool malloc_fast_open(void)
{
    return !__builtin_expect(entry_gate_shut(MALLOC_SHUT) || entry_inside, 0);
}

/* malloc (calloc: flags HEAP_ZERO_MEMORY) once malloc_fast_open said yes:
 * what malloc_general does then, without its tests. */
HOT void *malloc_fast(size_t n, DWORD flags)
{
    struct ctx c;
    enter_published(&c);
    struct fast_call call;
    call.n = n;
    void *p = c.p->ops->alloc(c.p->heap, flags, n, &call.err);
    if (__builtin_expect(p == NULL, 0)) {
        return malloc_failed(call.n);
    }
    leave(&c, 0);
    /* cppcheck-suppress returnDanglingLifetime */
    return p;
}

/* malloc's whole body, inlined into malloc and into realloc's NULL case. */
HOT void *malloc_any(size_t n)
{
    return malloc_fast_open() ? malloc_fast(n, 0) : malloc_general(n);
}

/* malloc, exported under its own name below (a local name, which the
 * other functions here could call without the PLT). */
static __attribute__((noinline)) void *cebox_malloc(size_t n)
{
    return malloc_any(n);
}

API void *malloc(size_t n) __attribute__((alias("cebox_malloc")));

/* calloc in every case but malloc_fast's (n: count * size, which did not
 * overflow). */
static __attribute__((noinline)) void *calloc_general(size_t count, size_t size, size_t n)
{
    if (entry_inside) {
        void *p = boot_alloc(n, 16);
        return p != NULL ? memset(p, 0, n) : NULL; /* the arena's space is reused */
    }
    if (!entry_begin(LOG_API_MALLOC, n)) {
        return NULL;
    }
    struct ctx c;
    if (!enter(&c)) {
        return __libc_calloc(count, size);
    }
    return malloc_entered(&c, n, HEAP_ZERO_MEMORY);
}

API void *calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc_fast_open() ? malloc_fast(n, HEAP_ZERO_MEMORY) : calloc_general(count, size, n);
}

/* May p be an over-aligned pointer?  Only when some exist, and only if p
 * is aligned as much as the least aligned one ever made (at least twice
 * the heap's alignment, often a cache line or a page); this keeps the
 * table's lock off the path of ordinary frees. */
HOT bool maybe_aligned_of(const void *p)
{
    uintptr_t min = atomic_load_explicit(&amap_min_align, memory_order_relaxed);
    return atomic_load_explicit(&amap_live, memory_order_relaxed) != 0 && ((uintptr_t)p & (min - 1)) == 0;
}

HOT bool maybe_aligned(const struct ctx *c, const void *p)
{
    (void)c;
    return maybe_aligned_of(p);
}

/* Gives p to the heap (the guard is held), which refuses and reports
 * (through the bad-pointer hook) anything that is not a live block.  Its
 * error is not looked at (the heap only writes it). */
HOT void heap_give_back(const struct proc *pr, void *p)
{
    DWORD err;
    pr->ops->free(pr->heap, 0, p, &err);
}

/* Frees p, which lies in the slot, inside cebox: an over-aligned block's
 * base, anything else as it is. */
static inline __attribute__((always_inline)) void free_slot_block(const struct proc *pr, void *p)
{
    uintptr_t base = maybe_aligned_of(p) ? amap_find((uintptr_t)p, true) : 0;
    heap_give_back(pr, base != 0 ? (void *)base : p);
}

HOT void free_block_of(const struct proc *pr, void *p)
{
    if (!in_slot_of(pr, p)) {
        summary_note_foreign_free();
        return;
    }
    free_slot_block(pr, p);
}

HOT void free_inside(struct ctx *c, void *p)
{
    free_block_of(c->p, p);
}

/* free once entered: what re-entered calls left first, then the tracker
 * (before: the address may be handed out again at once), then the block. */
HOT void free_entered(struct ctx *c, void *p)
{
    if (__builtin_expect(pending_any(), 0)) {
        pending_run_of(c->p);
    }
    entry_freed(LOG_API_MALLOC, p);
    free_inside(c, p);
    leave(c, 0);
}

/* free in every case: NULL, a block of the arena, re-entered, before the
 * heap is published, out of the box, a pointer outside the slot. */
static __attribute__((noinline)) void free_general(void *p)
{
    if (p == NULL) {
        return;
    }
    if (in_boot_arena(p)) {
        boot_free(p);
        return;
    }
    if (entry_inside) {
        /* Re-entered (a signal handler during cebox's work): freeing now
         * could deadlock on the heap's lock, so the block waits. */
        (void)pending_put(p, 0);
        return;
    }
    struct ctx c;
    if (!enter(&c)) {
        __libc_free(p);
        return;
    }
    free_entered(&c, p);
}

/* free past the fast path's test.  A program that keeps an over-aligned
 * block (posix_memalign, aligned new) shuts the gate for good; while that
 * is its only reason, a pointer in the slot (not re-entered) still needs
 * nothing but the table's test (free_slot_block), not free_general's. */
static __attribute__((noinline)) void free_past_gate(void *p)
{
    if (p == NULL) {
        return;
    }
    bool only_aligned = (atomic_load_explicit(&entry_gate, memory_order_acquire) & FREE_SHUT) == GATE_ALIGNED_LIVE;
    if (only_aligned && !entry_inside && in_slot_of(&proc, p)) {
        struct ctx c;
        enter_published(&c);
        free_slot_block(c.p, p);
        leave(&c, 0);
        return;
    }
    free_general(p);
}

/* free, exported under its own name below.  The common case (the gate
 * open to FREE_SHUT's reasons: the heap published, no tracker, nothing
 * queued, no over-aligned block live; not re-entered; a pointer in the
 * slot: neither NULL nor a block of the arena, which lies outside it) is
 * what free_general does then, without its tests. */
static __attribute__((noinline)) void cebox_free(void *p)
{
    if (__builtin_expect(entry_gate_shut(FREE_SHUT) || entry_inside || !in_slot_of(&proc, p), 0)) {
        free_past_gate(p);
        return;
    }
    struct ctx c;
    enter_published(&c);
    heap_give_back(c.p, p);
    leave(&c, 0);
}

API void free(void *p) __attribute__((alias("cebox_free")));

/* Usable size of a block cebox handed out, 0 for anything else. */
static size_t usable_inside(struct ctx *c, const void *p)
{
    if (!in_slot(c, p)) {
        return 0;
    }
    uintptr_t base = maybe_aligned(c, p) ? amap_find((uintptr_t)p, false) : 0;
    DWORD err = 0;
    size_t n = c->p->ops->size(c->p->heap, 0, base != 0 ? (void *)base : p, &err);
    if (n == (size_t)-1) {
        return 0;
    }
    return base != 0 ? n - ((uintptr_t)p - base) : n;
}

/* Copies up to n bytes of a block cebox did not allocate without ever
 * faulting: the kernel stops at the first unreadable byte. */
static void copy_foreign(void *dst, const void *src, size_t n)
{
    os_copy_unfaulting(dst, src, n); /* a pipe where a sandbox refuses process_vm_readv */
}

/* A block the heap moved to an address short of malloc's alignment (only a
 * heap aligning less than max_align_t): moved once more to an aligned
 * block.  If that cannot be had, the program keeps the heap's block: its
 * bytes are safe, only the alignment falls short. */
static void *realign(struct ctx *c, void *q, size_t n)
{
    void *r = aligned_from_heap(c, _Alignof(max_align_t), n, 0);
    if (r == NULL) {
        return q;
    }
    memcpy(r, q, n);
    DWORD err = 0;
    c->p->ops->free(c->p->heap, 0, q, &err);
    return r;
}

static void *realloc_inside(struct ctx *c, void *p, size_t n, bool *failed)
{
    *failed = false;
    if (!in_slot(c, p)) {
        /* From before the take-over (or the bootstrap arena): move it in. */
        void *q = plain_from_heap(c, n, 0);
        if (q != NULL) {
            if (in_boot_arena(p)) {
                size_t old = boot_size(p);
                memcpy(q, p, n < old ? n : old);
                boot_free(p);
            } else {
                copy_foreign(q, p, n);
            }
        }
        *failed = q == NULL;
        return q;
    }
    DWORD err = 0;
    if (!(maybe_aligned(c, p) && amap_find((uintptr_t)p, false) != 0)) {
        /* A block of the heap (or a bad pointer, which the heap reports). */
        void *q = c->p->ops->realloc(c->p->heap, 0, p, n, &err);
        if (q == NULL && entry_lacked_room(err)) {
            entry_fail(LOG_API_MALLOC, n, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_NONE);
        }
        *failed = q == NULL;
        if (q != NULL && ((uintptr_t)q & (_Alignof(max_align_t) - 1)) != 0) {
            q = realign(c, q, n);
        }
        /* cppcheck-suppress returnDanglingLifetime */
        return q;
    }
    /* An over-aligned block: move it to a plain one. */
    size_t old = usable_inside(c, p);
    void *q = plain_from_heap(c, n, 0);
    if (q != NULL) {
        memcpy(q, p, old < n ? old : n);
        free_inside(c, p);
    }
    *failed = q == NULL;
    return q;
}

/* realloc of a real block to a real size, in every case. */
static __attribute__((noinline)) void *resize_general(void *p, size_t n)
{
    if (entry_inside) {
        /* A handler's realloc, of an arena block or of any other (a heap
         * block whose size cannot be asked for now): never read past it. */
        void *q = boot_alloc(n, 16);
        if (q != NULL) {
            int saved = errno; /* copy_foreign's system calls may set it */
            if (in_boot_arena(p)) {
                size_t old = boot_size(p);
                memcpy(q, p, n < old ? n : old);
            } else {
                copy_foreign(q, p, n);
            }
            cebox_free(p);
            errno = saved;
        }
        return q;
    }
    if (!entry_begin(LOG_API_MALLOC, n)) {
        return NULL;
    }
    struct ctx c;
    bool failed;
    if (!enter(&c)) {
        return libc_resize(p, n);
    }
    if (__builtin_expect(pending_any(), 0)) {
        pending_run(&c);
    }
    entry_freed(LOG_API_MALLOC, p);
    void *q = realloc_inside(&c, p, n, &failed);
    if (q != NULL) {
        entry_done(LOG_API_MALLOC, q, n);
    } else if (in_slot(&c, p)) {
        entry_done(LOG_API_MALLOC, p, usable_inside(&c, p)); /* still the program's */
    }
    leave(&c, failed ? ENOMEM : 0);
    return q;
}

/* The end of a fast realloc that the heap refused (the guard still held,
 * the block unchanged): recorded when it lacked room (a bad pointer was
 * reported by the heap), left, ENOMEM. */
static __attribute__((noinline, cold)) void *resize_failed(size_t n, DWORD err)
{
    if (entry_lacked_room(err)) {
        entry_fail(LOG_API_MALLOC, n, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_NONE);
    }
    entry_inside = 0;
    errno = ENOMEM;
    return NULL;
}

/* realloc of a real block to a real size.  The common case (the gate open
 * to both malloc's and free's reasons: no hook, tracker, queued free,
 * over-aligned block, nor a heap aligning less than malloc; not
 * re-entered; p in the slot) is the heap's realloc, which refuses and
 * reports a pointer that is no block; every other goes to resize_general. */
static __attribute__((noinline)) void *cebox_resize(void *p, size_t n)
{
    if (__builtin_expect(entry_gate_shut(MALLOC_SHUT | FREE_SHUT) || entry_inside || !in_slot_of(&proc, p), 0)) {
        return resize_general(p, n);
    }
    struct ctx c;
    enter_published(&c);
    struct fast_call call;
    call.n = n;
    void *q = c.p->ops->realloc(c.p->heap, 0, p, n, &call.err);
    if (__builtin_expect(q == NULL, 0)) {
        return resize_failed(call.n, call.err);
    }
    leave(&c, 0);
    /* cppcheck-suppress returnDanglingLifetime */
    return q;
}

/* realloc(NULL, n), common in programs that allocate through realloc: a
 * malloc of its own that takes realloc's arguments as they are, so that
 * realloc jumps to it on its first test. */
static __attribute__((noinline, noipa)) void *malloc_for_realloc(void *null, size_t n)
{
    (void)null;
    return malloc_any(n);
}

/* Each case is a jump to its own function. */
API void *realloc(void *p, size_t n)
{
    if (p == NULL) {
        return malloc_for_realloc(p, n);
    }
    if (n == 0) {
        cebox_free(p);
        return NULL;
    }
    return cebox_resize(p, n);
}

API void *reallocarray(void *p, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

/* Allocates n bytes aligned to `align` (a power of two). */
static void *aligned_block(struct ctx *c, size_t align, size_t n)
{
    if (!entry_begin(LOG_API_MALLOC, n)) {
        return NULL;
    }
    return aligned_from_heap(c, align, n, 0);
}

/* A block of n bytes aligned to `align` (a power of two), over-allocated
 * when the heap aligns less (the caller has passed entry_begin). */
static void *aligned_from_heap(struct ctx *c, size_t align, size_t n, DWORD flags)
{
    if (align <= c->p->ops->align) {
        return alloc_from_heap(c, n, flags);
    }
    size_t total;
    if (__builtin_add_overflow(n, align - 1, &total)) {
        entry_fail(LOG_API_MALLOC, n, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_TOO_LARGE);
        return NULL;
    }
    void *base = alloc_from_heap(c, total, flags);
    if (base == NULL) {
        return NULL;
    }
    uintptr_t aligned = ((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1);
    if (aligned != (uintptr_t)base && !amap_put(aligned, (uintptr_t)base)) {
        /* No room to remember it (the table could not grow): the block
         * goes back, and this is a failed malloc like any other. */
        DWORD err = 0;
        c->p->ops->free(c->p->heap, 0, base, &err);
        entry_fail(LOG_API_MALLOC, n, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_OTHER);
        return NULL;
    }
    return (void *)aligned;
}

static void *aligned_inside(struct ctx *c, size_t align, size_t n)
{
    void *p = aligned_block(c, align, n);
    if (p != NULL) {
        entry_done(LOG_API_MALLOC, p, n);
    }
    return p;
}

static bool is_pow2(size_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

API int posix_memalign(void **out, size_t align, size_t n)
{
    if (!is_pow2(align) || align % sizeof(void *) != 0) {
        return EINVAL;
    }
    if (entry_inside) {
        int saved = errno;
        void *p = boot_alloc(n, align);
        errno = saved;
        if (p == NULL) {
            return ENOMEM;
        }
        *out = p;
        return 0;
    }
    struct ctx c;
    if (!enter_keeping_errno(&c)) { /* a failure is reported in the result */
        void *q = __libc_memalign(align, n);
        *out = q != NULL ? q : *out;
        return q != NULL ? 0 : ENOMEM;
    }
    void *p = aligned_inside(&c, align, n);
    leave_keeping_errno(&c, 0);
    if (p == NULL) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

API void *memalign(size_t align, size_t n)
{
    /* glibc rounds a non-power-of-two alignment up (any alignment up to the
     * heap's own is a plain allocation). */
    size_t a = 1;
    while (a < align && a != 0) {
        a <<= 1;
    }
    if (a == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (entry_inside) {
        return boot_alloc(n, a);
    }
    struct ctx c;
    if (!enter(&c)) {
        return __libc_memalign(a, n);
    }
    void *p = aligned_inside(&c, a, n);
    leave(&c, p == NULL ? ENOMEM : 0);
    return p;
}

API void *aligned_alloc(size_t align, size_t n)
{
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return memalign(align, n);
}

API void *valloc(size_t n)
{
    return memalign(4096, n);
}

API void *pvalloc(size_t n)
{
    size_t rounded;
    if (__builtin_add_overflow(n, 4095, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    return memalign(4096, rounded & ~(size_t)4095);
}

API size_t malloc_usable_size(void *p)
{
    if (p == NULL || in_boot_arena(p) || entry_inside) {
        return 0;
    }
    struct ctx c;
    if (!enter(&c)) {
        union libc_fn f = libc_extra(LIBC_USABLE_SIZE);
        return f.sym != NULL ? f.usable_size(p) : 0;
    }
    size_t n = usable_inside(&c, p);
    leave(&c, 0);
    return n;
}

/* mallinfo's fields from the process heap's totals. */
static struct mallinfo2 mallinfo_of_heap(void)
{
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    if (entry_inside) {
        return mi;
    }
    struct ctx c;
    struct heap_stats st;
    if (!enter(&c)) {
        union libc_fn f = libc_extra(LIBC_MALLINFO2);
        return f.sym != NULL ? f.mallinfo2() : mi;
    }
    c.p->ops->stats(c.p->heap, &st);
    leave(&c, 0);
    mi.arena = st.committed_bytes;
    mi.ordblks = st.live_blocks;
    mi.hblks = st.large_items;
    mi.uordblks = st.live_bytes;
    mi.fordblks = st.committed_bytes > st.live_bytes ? st.committed_bytes - st.live_bytes : 0;
    mi.usmblks = st.peak_committed_bytes;
    return mi;
}

API struct mallinfo2 mallinfo2(void)
{
    return mallinfo_of_heap();
}

static int clamp_int(size_t v)
{
    return v > INT32_MAX ? INT32_MAX : (int)v;
}

API struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo_of_heap();
    struct mallinfo mi = {
        .arena = clamp_int(m2.arena), .ordblks = clamp_int(m2.ordblks),
        .hblks = clamp_int(m2.hblks), .usmblks = clamp_int(m2.usmblks),
        .uordblks = clamp_int(m2.uordblks), .fordblks = clamp_int(m2.fordblks),
    };
    return mi;
}

/* HeapCompact: gives back the free pages at the end of each region. */
API int malloc_trim(size_t pad)
{
    (void)pad;
    if (entry_inside) {
        return 0;
    }
    struct ctx c;
    struct heap_stats before, after;
    DWORD err = 0;
    if (!enter(&c)) {
        union libc_fn f = libc_extra(LIBC_TRIM);
        return f.sym != NULL ? f.trim(pad) : 0;
    }
    c.p->ops->stats(c.p->heap, &before);
    c.p->ops->compact(c.p->heap, 0, &err);
    c.p->ops->stats(c.p->heap, &after);
    leave(&c, 0);
    return after.committed_bytes < before.committed_bytes;
}

/* The CE heap has no tunables: every request is accepted and has no effect. */
API int mallopt(int param, int value)
{
    if (!boxed_process()) {
        return __libc_mallopt(param, value);
    }
    return 1;
}

API void malloc_stats(void)
{
    if (entry_inside) {
        return;
    }
    struct ctx c;
    if (!enter(&c)) {
        union libc_fn f = libc_extra(LIBC_STATS);
        if (f.sym != NULL) {
            f.stats();
        }
        return;
    }
    int saved = errno;
    summary_write(2, c.p->core);
    errno = saved;
    leave(&c, 0);
}

/* ---- the mmap family ---- */

static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
    return syscall(nr, a, b, c, d, e, f); /* sets errno like libc */
}

static DWORD page_protection(int prot)
{
    bool r = prot & PROT_READ, w = prot & PROT_WRITE, x = prot & PROT_EXEC;
    if (x) {
        return w ? PAGE_EXECUTE_READWRITE : PAGE_EXECUTE_READ;
    }
    if (w) {
        return PAGE_READWRITE;
    }
    return r ? PAGE_READONLY : PAGE_NOACCESS;
}

/* Which mappings cebox emulates: private anonymous memory that is not a
 * thread stack. */
static bool emulated(int flags)
{
    return (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
           !(flags & (MAP_STACK | MAP_GROWSDOWN));
}

/* enter() for the mmap family, which first does what re-entered calls
 * left: a queued munmap must never outlive the pages it names. */
static bool enter_mapping(struct ctx *c)
{
    if (!enter_keeping_errno(c)) {
        return false;
    }
    if (pending_any()) {
        pending_run(c);
    }
    return true;
}

static void *real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    long r = raw(SYS_mmap, (long)addr, (long)len, prot, flags, fd, (long)off);
    if (r == -1) {
        return MAP_FAILED;
    }
    /* A call made while cebox is inside is cebox's own (the unwinder's,
     * the loader's for dladdr): never counted as the program's memory. */
    if (entry_inside) {
        summary_note_own_map(len);
    } else {
        summary_note_outside_map(len);
    }
    return (void *)r;
}

static void *mmap_inside(struct ctx *c, void *addr, size_t len, int prot, int flags, int *err)
{
    struct slot *s = c->p->core->slot;
    DWORD perm = page_protection(prot);
    void *p = NULL;
    DWORD e;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
        MEMORY_BASIC_INFORMATION m;
        if ((flags & MAP_FIXED_NOREPLACE) && slot_virtual_query(s, addr, &m) == 0 &&
            m.State != MEM_FREE) {
            *err = EEXIST;
            return MAP_FAILED;
        }
        e = slot_map_fixed(s, addr, len, perm);
        p = addr;
    } else if (perm == PAGE_NOACCESS) {
        e = slot_virtual_alloc(s, NULL, len, MEM_RESERVE, PAGE_NOACCESS, &p);
    } else {
        e = slot_virtual_alloc(s, NULL, len, MEM_RESERVE | MEM_COMMIT, perm, &p);
    }
    if (e != 0) {
        entry_fail(LOG_API_MMAP, len, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_NONE);
        *err = ENOMEM;
        return MAP_FAILED;
    }
    return p;
}

/* Is the whole slot below 2 GB, where MAP_32BIT asks for memory? */
static bool slot_is_low(const struct ctx *c)
{
    return c->p->slot_base + c->p->slot_size <= 0x80000000u;
}

API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    bool fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
    if (entry_inside && fixed && emulated(flags) && reentered_touches_slot(addr, len)) {
        errno = ENOMEM; /* the slot's pages are not the kernel's to replace */
        return MAP_FAILED;
    }
    if (entry_inside || !emulated(flags)) {
        return real_mmap(addr, len, prot, flags, fd, off);
    }
    if (len == 0 || (fixed && ((uintptr_t)addr & 4095) != 0)) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    struct ctx c;
    if (!enter_mapping(&c)) {
        return (void *)raw(SYS_mmap, (long)addr, (long)len, prot, flags, fd, (long)off);
    }
    occupancy_check_loaded(c.p->core); /* libraries loaded or unloaded since: their blocks (occupancy.c) */
    if ((fixed && !slot_owns(c.p->core->slot, addr)) || ((flags & MAP_32BIT) && !slot_is_low(&c))) {
        /* A fixed address outside the box is the program's business; so is
         * a MAP_32BIT request when the slot could not be put below 2 GB
         * (slot.c's place_slot): the kernel's low memory holds it. */
        leave_keeping_errno(&c, 0);
        return real_mmap(addr, len, prot, flags, fd, off);
    }
    int err = ENOMEM;
    void *p = MAP_FAILED;
    if (entry_begin(LOG_API_MMAP, len)) {
        err = 0;
        p = mmap_inside(&c, addr, len, prot, flags, &err);
        if (p != MAP_FAILED) {
            entry_done(LOG_API_MMAP, p, len); /* a new reservation at p: --leaks keeps its stack */
        }
    }
    leave_keeping_errno(&c, err);
    return p;
}

API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

API int munmap(void *addr, size_t len)
{
    if (((uintptr_t)addr & 4095) != 0 || len == 0) {
        errno = EINVAL;
        return -1;
    }
    if (entry_inside && reentered_touches_slot(addr, len)) {
        /* Done by the next plain call; until then the pages stay. */
        if (!pending_put(addr, len)) {
            errno = ENOMEM;
            return -1;
        }
        return 0;
    }
    if (entry_inside) { /* cebox's own mapping (real_mmap) */
        summary_note_own_unmap(len);
        return (int)raw(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
    }
    struct ctx c;
    if (!enter_mapping(&c)) {
        return (int)raw(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
    }
    if (slot_owns(c.p->core->slot, addr)) {
        slot_unmap(c.p->core->slot, addr, len);
        entry_freed(LOG_API_MMAP, addr); /* after: the tracker asks the slot what is left */
        leave_keeping_errno(&c, 0);
        return 0;
    }
    leave_keeping_errno(&c, 0);
    summary_note_outside_unmap(len);
    return (int)raw(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
}

API int mprotect(void *addr, size_t len, int prot)
{
    if (((uintptr_t)addr & 4095) != 0) {
        errno = EINVAL;
        return -1;
    }
    if (entry_inside && reentered_touches_slot(addr, len)) {
        errno = ENOMEM; /* the slot's protections cannot be changed now */
        return -1;
    }
    if (entry_inside) {
        return (int)raw(SYS_mprotect, (long)addr, (long)len, prot, 0, 0, 0);
    }
    struct ctx c;
    if (!enter_mapping(&c)) {
        return (int)raw(SYS_mprotect, (long)addr, (long)len, prot, 0, 0, 0);
    }
    if (len != 0 && slot_owns(c.p->core->slot, addr)) {
        DWORD e = ERROR_NOT_ENOUGH_MEMORY; /* the hook's refusal is recorded already */
        if (entry_begin(LOG_API_MMAP, len)) {
            e = slot_mprotect(c.p->core->slot, addr, len, page_protection(prot));
            if (e == ERROR_NOT_ENOUGH_MEMORY) {
                entry_fail(LOG_API_MMAP, len, e, LOG_REASON_NONE);
            }
        }
        leave_keeping_errno(&c, e != 0 ? ENOMEM : 0);
        return e != 0 ? -1 : 0;
    }
    leave_keeping_errno(&c, 0);
    return (int)raw(SYS_mprotect, (long)addr, (long)len, prot, 0, 0, 0);
}

static size_t page_round(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

/* The protection mmap would take for a CE one (page_protection's inverse). */
static int host_protection(DWORD perm)
{
    switch (perm & 0xff) {
    case PAGE_READONLY: return PROT_READ;
    case PAGE_READWRITE: return PROT_READ | PROT_WRITE;
    case PAGE_EXECUTE_READ: return PROT_READ | PROT_EXEC;
    case PAGE_EXECUTE_READWRITE: return PROT_READ | PROT_WRITE | PROT_EXEC;
    default: return PROT_NONE;
    }
}

/* The kernel's checks of mremap's arguments (lengths page-rounded), in its
 * order: EINVAL or 0. */
static int mremap_bad_arguments(uintptr_t old, size_t oldlen, size_t newlen, int flags, uintptr_t target)
{
    if ((flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) != 0 || (old & 4095) != 0 ||
        newlen == 0) {
        return EINVAL;
    }
    if (!(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))) {
        return 0;
    }
    bool bad = (target & 4095) != 0 || !(flags & MREMAP_MAYMOVE) ||
               ((flags & MREMAP_DONTUNMAP) && oldlen != newlen) ||
               ((flags & MREMAP_FIXED) && target < old + oldlen && old < target + newlen);
    return bad ? EINVAL : 0;
}

/* The old range must be one mapping, as the kernel's one VMA: mapped pages
 * of one reservation with one state and protection (EFAULT otherwise); a
 * private mapping cannot be duplicated with length 0 (EINVAL). */
static int mremap_old_range(struct slot *s, const void *old, size_t oldlen, MEMORY_BASIC_INFORMATION *m)
{
    if (slot_virtual_query(s, old, m) != 0 || !slot_pages_mapped(s, old, oldlen != 0 ? oldlen : 1, true)) {
        return EFAULT;
    }
    if (oldlen == 0) {
        return EINVAL;
    }
    return m->RegionSize >= oldlen ? 0 : EFAULT;
}

/* Grows [old, old+oldlen) in place when the pages after it are unmapped
 * pages of the same reservation. */
static bool grow_in_place(struct slot *s, char *old, size_t oldlen, size_t newlen,
                          const MEMORY_BASIC_INFORMATION *m)
{
    if ((uintptr_t)old + newlen > slot_region_end(s, old) ||
        !slot_pages_mapped(s, old + oldlen, newlen - oldlen, false)) {
        return false;
    }
    DWORD prot = m->State == MEM_COMMIT ? m->Protect : PAGE_NOACCESS;
    return slot_map_fixed(s, old + oldlen, newlen - oldlen, prot) == 0;
}

/* Moves the mapping m describes to fresh pages (at target with
 * MREMAP_FIXED, which may lie outside the slot, as mmap's fixed addresses
 * may), with its protection and contents; the old pages are unmapped, or
 * with MREMAP_DONTUNMAP stay mapped, emptied. */
static void *move_mapping(struct ctx *c, char *old, size_t oldlen, size_t newlen, int flags, void *target,
                          const MEMORY_BASIC_INFORMATION *m, int *err)
{
    struct slot *s = c->p->core->slot;
    bool committed = m->State == MEM_COMMIT;
    DWORD perm = committed ? m->Protect : PAGE_NOACCESS;
    int mflags = MAP_PRIVATE | MAP_ANONYMOUS | ((flags & MREMAP_FIXED) ? MAP_FIXED : 0);
    int prot = committed ? PROT_READ | PROT_WRITE : PROT_NONE;
    bool outside = (flags & MREMAP_FIXED) && !slot_owns(s, target);
    char *p = outside ? real_mmap(target, newlen, prot, mflags, -1, 0)
                      : mmap_inside(c, target, newlen, prot, mflags, err);
    if (p == MAP_FAILED) {
        *err = outside ? errno : *err;
        return MAP_FAILED;
    }
    if (committed) {
        if (!(host_protection(perm) & PROT_READ)) {
            /* committed PROT_NONE pages hold contents too: readable to copy */
            (void)slot_mprotect(s, old, oldlen, PAGE_READONLY);
        }
        memcpy(p, old, oldlen < newlen ? oldlen : newlen);
        if (perm != PAGE_READWRITE && outside) {
            (void)raw(SYS_mprotect, (long)p, (long)newlen, host_protection(perm), 0, 0, 0);
        } else if (perm != PAGE_READWRITE) {
            (void)slot_mprotect(s, p, newlen, perm);
        }
    }
    if (!(flags & MREMAP_DONTUNMAP)) {
        slot_unmap(s, old, oldlen);
    } else if (committed) {
        /* Emptied in place, still committed (nothing to charge, so nothing
         * can fail), with its protection back. */
        (void)raw(SYS_madvise, (long)old, (long)oldlen, MADV_DONTNEED, 0, 0, 0);
        if (!(host_protection(perm) & PROT_READ)) {
            (void)slot_mprotect(s, old, oldlen, perm);
        }
    }
    return p;
}

static void *mremap_inside(struct ctx *c, void *old, size_t oldlen, size_t newlen, int flags,
                           void *target, int *err)
{
    struct slot *s = c->p->core->slot;
    MEMORY_BASIC_INFORMATION m;
    oldlen = page_round(oldlen);
    newlen = page_round(newlen);
    *err = mremap_bad_arguments((uintptr_t)old, oldlen, newlen, flags, (uintptr_t)target);
    if (*err == 0) {
        *err = mremap_old_range(s, old, oldlen, &m);
    }
    if (*err != 0) {
        return MAP_FAILED;
    }
    if (!(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))) {
        if (newlen <= oldlen) {
            if (newlen < oldlen) {
                slot_unmap(s, (char *)old + newlen, oldlen - newlen);
            }
            return old;
        }
        if (grow_in_place(s, old, oldlen, newlen, &m)) {
            return old;
        }
        entry_clear_reason(); /* a move may still succeed: no cause left over */
        if (!(flags & MREMAP_MAYMOVE)) {
            *err = ENOMEM;
            return MAP_FAILED;
        }
    }
    return move_mapping(c, old, oldlen, newlen, flags, target, &m, err);
}

API void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...)
{
    void *target = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        target = va_arg(ap, void *);
        va_end(ap);
    }
    if (entry_inside && (reentered_touches_slot(old, oldlen) ||
                   ((flags & MREMAP_FIXED) && reentered_touches_slot(target, newlen)))) {
        errno = ENOMEM; /* the slot's pages cannot be moved now */
        return MAP_FAILED;
    }
    if (entry_inside) {
        return (void *)raw(SYS_mremap, (long)old, (long)oldlen, (long)newlen, flags, (long)target, 0);
    }
    struct ctx c;
    bool entered = enter_mapping(&c);
    if (!entered || !slot_owns(c.p->core->slot, old)) {
        if (entered) {
            leave_keeping_errno(&c, 0);
        }
        return (void *)raw(SYS_mremap, (long)old, (long)oldlen, (long)newlen, flags, (long)target, 0);
    }
    int err = 0;
    void *p = entry_begin(LOG_API_MMAP, newlen) ? mremap_inside(&c, old, oldlen, newlen, flags, target, &err)
                                               : MAP_FAILED;
    if (p == MAP_FAILED && err == 0) {
        err = ENOMEM; /* refused by the entry hook */
    }
    leave_keeping_errno(&c, err);
    return p;
}

/* ---- process life: start, exit status and fork (exit: summary.c) ---- */

/* The status the program exits with, for the summary's ending: exit()
 * called by the program, and main's return (libc calls exit from inside
 * itself, which no interposition sees, so main is wrapped: the program's
 * _start calls __libc_start_main through the PLT). */
typedef int (*main_fn)(int, char **, char **);
typedef int (*start_main_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);
static main_fn program_main;

static int main_returns(int argc, char **argv, char **envp)
{
    int status = program_main(argc, argv, envp);
    summary_note_exit_status(status);
    return status;
}

/* Looks up the next definition of a libc function (once, at the start). */
static void *next_symbol(const char *name)
{
    int was_inside = entry_inside;
    entry_inside = 1; /* dlsym's allocations are cebox's, not the program's */
    void *sym = dlsym(RTLD_NEXT, name);
    entry_inside = was_inside;
    return sym;
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end);

API int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                          void (*rtld_fini)(void), void *stack_end)
{
    start_main_fn next;
    void *sym = next_symbol("__libc_start_main");
    memcpy(&next, &sym, sizeof next); /* object to function pointer */
    if (atomic_load_explicit(&selection, memory_order_relaxed) == SELECTION_LIBC) {
        /* Out of the box (decided by the constructor): no summary, so
         * neither its command line nor main's status, and no page of
         * their code to fault in. */
        return next(main, argc, argv, init, fini, rtld_fini, stack_end);
    }
    program_main = main;
    eventlog_note_arguments(argc, argv); /* the summary's command line, without /proc */
    return next(main_returns, argc, argv, init, fini, rtld_fini, stack_end);
}

API __attribute__((noreturn)) void exit(int status)
{
    static void *_Atomic next_exit;
    void *sym = atomic_load(&next_exit);
    if (sym == NULL) {
        sym = next_symbol("exit");
        atomic_store(&next_exit, sym);
    }
    if (atomic_load_explicit(&selection, memory_order_relaxed) != SELECTION_LIBC) {
        summary_note_exit_status(status);
    }
    void (*next)(int);
    memcpy(&next, &sym, sizeof next);
    next(status);
    __builtin_unreachable();
}

/* The library's DT_FINI (-Wl,-fini in Makefile.am): nothing to do, its
 * destructors being .fini_array's; in the start's code, where crti's
 * empty _fini lies at the very end of the library's, a 64 KB window that
 * every exit faulted in for it alone. */
CEBOX_START_CODE __attribute__((visibility("hidden"), used)) void preload_fini(void);
CEBOX_START_CODE void preload_fini(void)
{
}

/* _exit and _Exit run no destructor, so the summary's would never run: a
 * shell such as dash ends this way, and so do forked children.  The
 * program's calls come here (libc's own, from exit and posix_spawn's
 * child, do not); the process ends as libc's would end it. */
API __attribute__((noreturn)) void _exit(int status)
{
    if (atomic_load_explicit(&selection, memory_order_relaxed) != SELECTION_LIBC) {
        summary_quick_exit(status);
    }
    os_exit_group(status);
}

API __attribute__((noreturn)) void _Exit(int status)
{
    _exit(status);
}

/* ---- threads: each one's stack in the slot (occupancy.c) ----
 *
 * pthread_create is wrapped, rather than the stack charged when the thread
 * starts, because only the call itself can refuse the thread: one whose
 * stack finds no room never starts and the call answers EAGAIN, as
 * CreateThread fails on a device.  The wrapper adds nothing to the thread
 * but a start record: the real pthread_create makes the real thread with
 * the program's attributes.  The stack goes back when the thread ends,
 * however it ends (return, pthread_exit, cancellation): the destructor of a
 * thread-specific value.  Threads cebox starts itself (the hibernate
 * watcher: created with entry_inside set) take no stack. */

struct thread_start {
    void *(*fn)(void *);
    void *arg;
    void *stack;                 /* the slot's stack block, or NULL */
    pthread_t self;              /* set by the thread (0 until it runs) */
    struct thread_start *prev, *next;
};

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static pthread_create_fn next_pthread_create;
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
/* The live threads' records, for a forked child (only the forking thread
 * lives on there: the others' stacks go back). */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_start *threads;

static void thread_record_free(struct thread_start *t)
{
    occupancy_stack_release(core_get(), t->stack);
    meta_free(t, sizeof *t);
}

static void thread_unlink_locked(struct thread_start *t)
{
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        threads = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
}

static void thread_unlink(struct thread_start *t)
{
    pthread_mutex_lock(&threads_lock);
    thread_unlink_locked(t);
    pthread_mutex_unlock(&threads_lock);
}

static void thread_link(struct thread_start *t)
{
    pthread_mutex_lock(&threads_lock);
    t->next = threads;
    if (threads != NULL) {
        threads->prev = t;
    }
    threads = t;
    pthread_mutex_unlock(&threads_lock);
}

/* Unlinks and frees a record, inside cebox: the slot's lock and the
 * bookkeeping's are taken, and a signal handler's calls meanwhile must not
 * wait for them (they come from the bootstrap arena). */
static void thread_record_drop(struct thread_start *t)
{
    int was_inside = entry_inside;
    entry_inside = 1;
    thread_unlink(t);
    thread_record_free(t);
    entry_inside = was_inside;
}

static void thread_ended(void *value)
{
    thread_record_drop(value);
}

static void thread_key_make(void)
{
    void *sym = next_symbol("pthread_create");
    memcpy(&next_pthread_create, &sym, sizeof sym);
    if (pthread_key_create(&thread_key, thread_ended) != 0) {
        thread_key = (pthread_key_t)-1;
    }
}

static void *thread_begins(void *arg)
{
    struct thread_start *t = arg;
    t->self = pthread_self();
    int was_inside = entry_inside;
    entry_inside = 1; /* a key past the first 32 makes glibc allocate: cebox's own */
    (void)pthread_setspecific(thread_key, t);
    entry_inside = was_inside;
    return t->fn(t->arg);
}

/* A forked child: the threads that did not fork are gone, and so are
 * their stacks. */
static void threads_forked(void)
{
    if (threads == NULL) {
        return; /* nothing recorded (the child is alone: no lock to read it), and no lock word written */
    }
    pthread_t me = pthread_self();
    pthread_mutex_lock(&threads_lock);
    for (struct thread_start *t = threads, *next; t != NULL; t = next) {
        next = t->next;
        if (t->self == 0 || !pthread_equal(t->self, me)) {
            thread_unlink_locked(t);
            thread_record_free(t);
        }
    }
    pthread_mutex_unlock(&threads_lock);
}

/* The start record of a new thread, its stack reserved and the record
 * linked; NULL with *err 0 when the thread needs none (stacks take nothing,
 * or cebox's bookkeeping is out of room: never the program's loss), NULL
 * with *err EAGAIN when its stack finds no room.  Runs inside cebox: the
 * occupancy's, the slot's and the bookkeeping's locks are taken here, and a
 * signal handler that comes meanwhile must not wait for them (its calls
 * come from the bootstrap arena, as while a malloc runs). */
static struct thread_start *thread_record_make(void *(*fn)(void *), void *arg, int *err)
{
    entry_inside = 1;
    struct cebox_core *core = boxed_core();
    occupancy_check_loaded(core);
    struct thread_start *t = NULL;
    if (core->settings.occupy && core->settings.stack_size != 0) {
        t = meta_alloc(sizeof *t);
    }
    if (t != NULL) {
        *t = (struct thread_start){.fn = fn, .arg = arg};
        *err = occupancy_stack_reserve(core, &t->stack);
        if (*err == 0) {
            thread_link(t);
        } else {
            thread_record_free(t);
            t = NULL;
        }
    }
    entry_inside = 0;
    return t;
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

API int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    pthread_once(&thread_key_once, thread_key_make);
    if (next_pthread_create == NULL) {
        return EAGAIN; /* no libc below: nothing can start a thread */
    }
    if (entry_inside || !boxed_process() || thread_key == (pthread_key_t)-1) {
        return next_pthread_create(thread, attr, fn, arg);
    }
    int saved = errno, err = 0;
    struct thread_start *t = thread_record_make(fn, arg, &err);
    errno = saved;
    if (t == NULL && err == 0) {
        return next_pthread_create(thread, attr, fn, arg);
    }
    if (t == NULL) {
        return err;
    }
    /* Outside cebox: what glibc allocates for the thread is the program's. */
    err = next_pthread_create(thread, attr, thread_begins, t);
    if (err != 0) {
        thread_record_drop(t);
    }
    errno = saved;
    return err;
}

/* ---- the fatal signals' actions (record/fatal.c keeps the program's) ---- */

static _Atomic fatal_sigaction_fn next_sigaction;

/* libc's sigaction, looked up at its first use (a start makes none unless
 * fatal.c watches signals or the program sets an action); -1 (ENOSYS) if
 * there is none. */
static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    fatal_sigaction_fn next = atomic_load_explicit(&next_sigaction, memory_order_relaxed);
    if (next == NULL) {
        void *sym = next_symbol("sigaction");
        if (sym == NULL) {
            errno = ENOSYS;
            return -1;
        }
        memcpy(&next, &sym, sizeof sym);
        atomic_store_explicit(&next_sigaction, next, memory_order_relaxed);
    }
    return next(sig, act, old);
}

API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (fatal_owns(sig)) {
        return fatal_sigaction(sig, act, old);
    }
    return real_sigaction(sig, act, old);
}

API sighandler_t signal(int sig, sighandler_t handler)
{
    if (!fatal_owns(sig)) {
        static void *_Atomic next_signal;
        void *sym = atomic_load(&next_signal);
        if (sym == NULL) {
            sym = next_symbol("signal");
            atomic_store(&next_signal, sym);
        }
        sighandler_t (*next)(int, sighandler_t);
        memcpy(&next, &sym, sizeof next);
        return next(sig, handler);
    }
    /* As glibc's signal(): BSD semantics, the signal blocked in its handler. */
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, sig);
    return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

/* At exit, before the summary: the frees and unmaps signal handlers queued
 * while cebox was busy are done (enter_mapping runs them), and with
 * --no-follow cebox run hears that this image ended without an exec. */
static void before_exit_summary(void)
{
    execnote_exit();
    if (entry_inside) {
        return;
    }
    struct ctx c;
    if (enter_mapping(&c)) {
        occupancy_check_loaded(c.p->core); /* the summary counts what is loaded now */
        leave_keeping_errno(&c, 0);
    }
}

/* fork: every lock cebox has is taken before and released after, in both
 * processes, so the child never inherits a lock held by a thread it lacks.
 * A process that has only ever had one thread (lock_needed, lock.h) has no
 * other thread to hold one, so its fork takes none: the words of the locks
 * are not written, and neither process faults their pages in again by
 * copy-on-write (a shell's fork and exec of every command).  The choice is
 * made before the fork, for both ends: a child is single-threaded whatever
 * its parent was.  Between the two the forking thread is inside cebox: a
 * signal that comes there (glibc delivers the ones that came during the
 * clone as it returns, before the handlers after) has its calls served
 * from the bootstrap arena, not from a heap whose lock this thread holds. */
/* initial-exec, as entry_inside: the library is loaded at the start, and
 * the default model called __tls_get_addr in every fork handler (a page of
 * the loader's code for a fork+exec child to fault in). */
static _Thread_local int fork_was_inside __attribute__((tls_model("initial-exec")));
static _Thread_local bool fork_took_locks __attribute__((tls_model("initial-exec")));

static void before_fork(void)
{
    fork_was_inside = entry_inside;
    entry_inside = 1;
    fork_took_locks = lock_needed();
    if (!fork_took_locks) {
        return;
    }
    pthread_mutex_lock(&threads_lock);
    occupancy_lock();
    pthread_mutex_lock(&amap.lock);
    /* Then the core's handlers, registered before these, take the heaps',
     * the slot's and a private device's locks (core.c). */
}

static void after_fork(void)
{
    if (!fork_took_locks) {
        return;
    }
    pthread_mutex_unlock(&amap.lock);
    occupancy_unlock();
    pthread_mutex_unlock(&threads_lock);
}

static void after_fork_parent(void)
{
    after_fork();
    entry_inside = fork_was_inside;
}

static void after_fork_child(void)
{
    after_fork();
    struct cebox_core *core = core_get();
    /* The child's one thread: the slot is read without its lock (slot.h),
     * whose page a fork+exec would otherwise copy for it. */
    ram_forked(&core->ram, slot_forked_committed_pages(core->slot));
    struct heap *ph = atomic_load(&core->process_heap);
    if (ph != NULL && ph->pub != NULL) {
        ph->ops->publish(ph, &core->ram); /* the timeline's figures into the child's own row now */
    }
    slot_forked_publish_map(core->slot); /* the child's new row of the session starts empty */
    execnote_forked();
    core_restart_watcher();
    threads_forked(); /* the child's slot loses the stacks of the threads it lacks */
    entry_inside = fork_was_inside;
}

/* Refused pointers from the heap: one line each (the first few). */
static void bad_pointer(const char *op, const void *handle, const void *p, enum heap_bad_kind why)
{
    (void)handle;
    if (strcmp(op, "HeapSize") == 0) {
        return; /* malloc_usable_size of a non-block answers 0; it frees nothing */
    }
    int saved = errno; /* free keeps errno (ctx) */
    summary_note_bad_free(p, why);
    errno = saved;
}

__attribute__((constructor(101))) static void preload_start(void)
{
    if (!boxed_process()) {
        /* --only: out of the box, and the environment passed on as it is;
         * nothing to say at exit. */
        __atomic_store_n(&summary_exit_wanted, 0, __ATOMIC_RELAXED);
        return;
    }
    entry_inside = 1;
    struct cebox_core *core = boxed_core();
    if (!core->settings.follow) {
        /* --no-follow: programs this one starts run without cebox, and
         * cebox run hears of an exec. */
        unsetenv("LD_PRELOAD");
        execnote_start(&core->settings);
    }
    heap_set_bad_pointer_hook(bad_pointer);
    core_process_heap(core); /* the process heap exists from the start, as on CE */
    core_atfork(before_fork, after_fork_parent, after_fork_child);
    fatal_start(core, real_sigaction);
    eventlog_start(core);
    summary_start_preloaded(before_exit_summary); /* the exit summary: summary.c's destructor */
    entry_inside = 0;
}
