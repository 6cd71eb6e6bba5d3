/*
 * unwind.c - the fast unwinder (see unwind.h).
 *
 * unw_backtrace costs about 40 instructions a frame, and with --leaks
 * every allocation unwinds some 20 to 50 frames, most of them those of an
 * allocation before (main, the interpreter's loop, ...).  So each thread
 * keeps the frames of its last four captures (instruction pointer, stack
 * pointer, rbp), its copies: a program allocating from a few sites in
 * turn (lua: three) finds each site's stack in a copy of its own.  A
 * capture is met with a copy whose innermost frame is its own (same stack
 * pointer and code), the one confirmed furthest of those; without one,
 * with the newest copy, stepping fresh frames, with the DWARF rules of
 * cfi.c cached by address, until it meets one of the copy's: the same
 * stack pointer, the same instruction pointer, and the same rbp where a
 * CFA further out depends on it.  From there on the frames are the copy's
 * as long as the words the unwind read for them still hold what they held
 * (each return address, and each saved rbp that matters); where one
 * differs, fresh steps take over again.  An unwind is a function of the
 * starting registers and of the words it reads, so a frame taken from a
 * copy is the one a fresh unwind finds.  Before that, a capture that
 * starts where the newest copy did but at another depth takes its inner
 * frames moved by the difference, checked the same way, as far as their
 * CFAs are rsp-based (the allocator's frames and cebox's own are the same
 * from call to call whatever the depth).  A capture that stepped anything
 * goes to the oldest other copy (the one it met stays for its own stack);
 * one met all along leaves its copy as it is.
 *
 * Rules are cached by address and never dropped: an object unloaded and
 * another loaded at the same addresses would find the old rules (as
 * libunwind's per-address caches would); the reads stay checked, so the
 * worst is a wrong stack, never a fault.
 *
 * It never faults: it reads the stack only inside a range it has checked
 * readable (os_read_self, a page at a time, at most CHECK_PAGES a
 * capture), every CFA must lie above the frame before it, and it steps
 * only from addresses that have an FDE in an executable segment of a
 * loaded object.  Anything else gives up, and libunwind does that capture.
 *
 * A copy is kept outermost frame first, so that the frames a capture
 * shares with the copy it met are copied (or stay, written over the same
 * copy) as a block and only the fresh inner frames are written one by
 * one.
 */
#include "record/unwind.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "meta.h"
#include "os.h"
#include "record/cfi.h"

/* ---- rules by address ----
 * Packed in 64 bits: kind (2 bits), CFA on rbp, rbp saved, the CFA's
 * offset (32 bits), minus rbp's offset from the CFA (28 bits). */

static uint64_t rule_pack(const struct cfi_rule *r)
{
    uint64_t neg = (uint64_t)(-(int64_t)r->rbp_off);
    if (r->kind == CFI_STEP && neg >= (1u << 28)) {
        return CFI_UNKNOWN; /* a saved rbp that far from the CFA: not met in practice */
    }
    return r->kind | (uint64_t)r->cfa_rbp << 2 | (uint64_t)r->rbp_saved << 3 |
           (uint64_t)(uint32_t)r->cfa_off << 4 | neg << 36;
}

#define RULE_KIND(p) ((unsigned)((p) & 3))
#define RULE_CFA_RBP(p) ((unsigned)((p) >> 2) & 1)
#define RULE_RBP_SAVED(p) ((unsigned)((p) >> 3) & 1)
#define RULE_CFA_OFF(p) ((uintptr_t)(uint32_t)((p) >> 4))
#define RULE_RBP_OFF(p) ((uintptr_t)(-(intptr_t)((p) >> 36)))

/* The table all threads share: a seqlock per entry (a reader never waits:
 * an entry being written reads as a miss), one writer at a time (a
 * try-lock: a writer that finds it taken leaves the rule out). */
#define SHARED_RULES 4096u

struct shared_rule {
    atomic_uint seq;
    _Atomic uintptr_t ip;
    _Atomic uint64_t rule;
};

static _Atomic(struct shared_rule *) shared_rules;
static atomic_flag shared_writer = ATOMIC_FLAG_INIT;

static struct shared_rule *shared_table(void)
{
    struct shared_rule *t = atomic_load_explicit(&shared_rules, memory_order_acquire);
    if (t == NULL) {
        struct shared_rule *fresh = meta_alloc(SHARED_RULES * sizeof *fresh);
        if (fresh == NULL) {
            return NULL;
        }
        if (atomic_compare_exchange_strong(&shared_rules, &t, fresh)) {
            return fresh;
        }
        meta_free(fresh, SHARED_RULES * sizeof *fresh); /* another thread's won */
    }
    return t;
}

static size_t shared_index(uintptr_t ip)
{
    return (size_t)((ip * 0x9E3779B97F4A7C15ull) >> 52) & (SHARED_RULES - 1);
}

static bool shared_get(struct shared_rule *e, uintptr_t ip, uint64_t *packed)
{
    unsigned before = atomic_load_explicit(&e->seq, memory_order_acquire);
    uintptr_t key = atomic_load_explicit(&e->ip, memory_order_relaxed);
    uint64_t v = atomic_load_explicit(&e->rule, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    unsigned after = atomic_load_explicit(&e->seq, memory_order_relaxed);
    *packed = v;
    return key == ip && before == after && (before & 1) == 0;
}

static void shared_put(struct shared_rule *e, uintptr_t ip, uint64_t packed)
{
    if (atomic_flag_test_and_set_explicit(&shared_writer, memory_order_acquire)) {
        return;
    }
    unsigned seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->ip, ip, memory_order_relaxed);
    atomic_store_explicit(&e->rule, packed, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
    atomic_flag_clear_explicit(&shared_writer, memory_order_release);
}

/* ---- the thread's cache ---- */

struct frame {
    uintptr_t ip, sp, rbp; /* the frame's registers (rbp: its true value) */
    uint64_t rule;         /* packed: the step from it to its caller; 0 until made */
};

struct thread_rule {
    uintptr_t ip;
    uint64_t rule;
};

/* One capture kept: its frames outermost first, and for each whether a
 * CFA further out depends on its rbp. */
#define COPIES 4u
#define COPY_FRAMES 88u

struct copy {
    uint32_t count;    /* frames[0..count) */
    uint32_t complete; /* frames[0] is the stack's outermost frame */
    uint64_t used;     /* the cache's clock when last met or written */
    uint8_t needed[COPY_FRAMES];
    struct frame frames[COPY_FRAMES];
};

#define THREAD_RULES 256u /* 128 pairs */
#define CACHE_BYTES ((size_t)16384)

struct cache {
    uintptr_t safe_lo, safe_hi; /* checked readable: [safe_lo, safe_hi) */
    uint64_t clock;             /* counts the captures */
    uint64_t unmet;             /* frames captured that no copy held at their place */
    struct thread_rule rules[THREAD_RULES];
    struct copy copies[COPIES];
};

_Static_assert(sizeof(struct cache) <= CACHE_BYTES, "the cache fits its block");
_Static_assert(COPY_FRAMES >= 64, "a default capture (48 frames) fits");

static _Thread_local struct cache *thread_cache __attribute__((tls_model("initial-exec")));
static _Thread_local int unwinding __attribute__((tls_model("initial-exec")));
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static bool key_made;

static void cache_free(void *c)
{
    thread_cache = NULL;
    meta_free(c, CACHE_BYTES);
}

static void make_key(void)
{
    key_made = pthread_key_create(&cache_key, cache_free) == 0;
}

/* The calling thread's cache (made on its first capture, given back at
 * its exit through the key's destructor), or NULL without memory. */
static struct cache *cache_of_thread(void)
{
    if (thread_cache == NULL) {
        pthread_once(&key_once, make_key);
        if (!key_made) {
            return NULL;
        }
        struct cache *c = meta_alloc(CACHE_BYTES);
        if (c != NULL && pthread_setspecific(cache_key, c) != 0) {
            meta_free(c, CACHE_BYTES);
            c = NULL;
        }
        thread_cache = c;
    }
    return thread_cache;
}

/* ---- the readable range of the stack ---- */

#define PAGE ((uintptr_t)4096)
#define CHECK_PAGES 16 /* pages checked at most per capture */

static bool page_readable(uintptr_t page)
{
    uint64_t word;
    return os_read_self(&word, (const void *)page, sizeof word) == (long)sizeof word;
}

/* Whether [a, a + 8) may be read: extends the checked range upwards,
 * through pages found readable (at most *budget of them). */
static bool extend_readable(struct cache *c, uintptr_t a, unsigned *budget)
{
    if (a < c->safe_lo || a > UINTPTR_MAX - 2 * PAGE) {
        return false;
    }
    while (a + 8 > c->safe_hi) {
        if (*budget == 0 || !page_readable(c->safe_hi)) {
            return false;
        }
        --*budget;
        c->safe_hi += PAGE;
    }
    return true;
}

static inline bool readable(struct cache *c, uintptr_t a, unsigned *budget)
{
    return (a >= c->safe_lo && a + 8 <= c->safe_hi) || extend_readable(c, a, budget);
}

/* Makes the checked range hold sp, the capture's first stack pointer: kept
 * when it does, grown down to it when it is near below (a deeper call on
 * the same stack: the pages between are its frames), else started again
 * at its page (readable: it is the stack in use). */
static void anchor_readable(struct cache *c, uintptr_t sp)
{
    uintptr_t page = sp & ~(PAGE - 1);
    if (sp >= c->safe_lo && sp < c->safe_hi) {
        return;
    }
    if (page < c->safe_lo && c->safe_lo - page <= CHECK_PAGES * PAGE) {
        c->safe_lo = page;
        return;
    }
    c->safe_lo = page;
    c->safe_hi = page + PAGE;
}

/* ---- stepping ---- */

struct walk {
    struct cache *c;
    struct shared_rule *shared;
    unsigned budget; /* pages it may still check */
    void **out;      /* the next frame goes here */
    void **end;      /* full */
    bool ended;      /* the outermost frame's rule was met */
};

enum step_result { STEP_OK, STEP_END, STEP_ZERO, STEP_FAIL };

/* A rule the thread's table does not have: from the shared table, else
 * from .eh_frame (then put in both).  The thread's table is two-way: the
 * pair's first entry is the newer, the older goes. */
__attribute__((noinline)) static uint64_t rule_miss(struct walk *w, struct thread_rule *pair, uintptr_t ip)
{
    struct shared_rule *e = &w->shared[shared_index(ip)];
    uint64_t packed;
    if (!shared_get(e, ip, &packed)) {
        struct cfi_rule fresh;
        cfi_rule_at(ip, &fresh);
        packed = rule_pack(&fresh);
        shared_put(e, ip, packed);
    }
    pair[1] = pair[0];
    pair[0] = (struct thread_rule){ip, packed};
    return packed;
}

static inline uint64_t rule_of(struct walk *w, uintptr_t ip)
{
    struct thread_rule *pair = &w->c->rules[((ip * 0x9E3779B97F4A7C15ull) >> 57) * 2];
    if (pair[0].ip == ip) {
        return pair[0].rule;
    }
    return pair[1].ip == ip ? pair[1].rule : rule_miss(w, pair, ip);
}

/* From frame *from to its caller, into *to (the rule of the step noted in
 * from).  STEP_END: from is the outermost frame (its rule says so);
 * STEP_ZERO: its return address is 0, where libunwind stops too. */
__attribute__((always_inline)) static inline enum step_result step_fresh(struct walk *w,
                                                                         struct frame *from,
                                                                         struct frame *to)
{
    uint64_t r = rule_of(w, from->ip);
    if (RULE_KIND(r) != CFI_STEP) {
        return RULE_KIND(r) == CFI_END ? STEP_END : STEP_FAIL;
    }
    uintptr_t cfa = (RULE_CFA_RBP(r) ? from->rbp : from->sp) + RULE_CFA_OFF(r);
    uintptr_t rbp_slot = cfa + RULE_RBP_OFF(r);
    /* the return address and the saved rbp lie in the frame left, between
     * its stack pointer and the CFA (so walk_cached reads only there) */
    if (cfa <= from->sp || (cfa & 7) != 0 || !readable(w->c, cfa - 8, &w->budget) ||
        (RULE_RBP_SAVED(r) && (rbp_slot < from->sp || !readable(w->c, rbp_slot, &w->budget)))) {
        return STEP_FAIL; /* a frame that leaves the checked stack */
    }
    from->rule = r;
    to->ip = *(const uintptr_t *)(cfa - 8);
    to->sp = cfa;
    to->rbp = RULE_RBP_SAVED(r) ? *(const uintptr_t *)rbp_slot : from->rbp;
    to->rule = 0;
    return to->ip == 0 ? STEP_ZERO : STEP_OK;
}

/* Steps fresh from *from, the frames beyond it going to out[0..cap) and
 * to the capture; returns their count, or -1 to give up. */
static int walk_fresh(struct walk *w, struct frame *from, struct frame *out, int cap)
{
    int count = 0;
    for (struct frame *cur = from; w->out < w->end; cur = &out[count++]) {
        if (count == cap) {
            return -1;
        }
        enum step_result s = step_fresh(w, cur, &out[count]);
        if (s == STEP_FAIL) {
            return -1;
        }
        if (s != STEP_OK) {
            w->ended = s == STEP_END;
            break;
        }
        *w->out++ = (void *)out[count].ip;
    }
    return count;
}

/* From frame k of copy m (whose true rbp is `rbp`) outwards: each caller
 * whose return address, and saved rbp where it matters, are still in
 * place goes to the capture.  Returns the index of the outermost frame
 * confirmed (k or further out), its rbp set to this stack's: the one a
 * fresh step from it needs.  The rbp of the frames between is left as it
 * was: where a CFA further out depends on it, it was checked equal, and
 * elsewhere nothing reads it before a walk has set it again. */
static uint32_t walk_cached(struct walk *w, struct copy *m, uint32_t k, uintptr_t rbp)
{
    struct frame *fr = m->frames;
    uint32_t room = (uint32_t)(w->end - w->out);
    uint32_t stop = k > room ? k - room : 0;
    /* every word read below lies in [fr[k].sp, fr[stop].sp) */
    if (!readable(w->c, fr[stop].sp - 8, &w->budget)) {
        fr[k].rbp = rbp;
        return k;
    }
    void **out = w->out;
    const struct frame *from = &fr[k], *last = &fr[stop];
    const uint8_t *needed = &m->needed[k]; /* from's */
    for (; from > last; from--, needed--) {
        const struct frame *to = from - 1;
        if (*(const uintptr_t *)(to->sp - 8) != to->ip) {
            break;
        }
        if (RULE_RBP_SAVED(from->rule)) {
            uintptr_t saved = *(const uintptr_t *)(to->sp + RULE_RBP_OFF(from->rule));
            if (needed[-1] && saved != to->rbp) {
                break;
            }
            rbp = saved;
        }
        *out++ = (void *)to->ip;
    }
    uint32_t i = (uint32_t)(from - fr);
    fr[i].rbp = rbp;
    w->out = out;
    return i;
}

/* needed[] of frames [from, count): a frame's rbp matters when its own CFA
 * is rbp-based or it passes rbp on unchanged to a caller whose matters. */
static void mark_needed(struct copy *m, uint32_t from)
{
    unsigned outer = from > 0 ? m->needed[from - 1] : 0;
    for (uint32_t i = from; i < m->count; i++) {
        uint64_t r = m->frames[i].rule;
        outer = RULE_CFA_RBP(r) | ((RULE_RBP_SAVED(r) ^ 1u) & outer);
        m->needed[i] = (uint8_t)outer;
    }
}

/* Copy dst after a capture, outermost first: deep[0..nd) (fresh frames
 * beyond the kept ones, innermost first), src's frames [lo, lo + keep)
 * (src may be dst), top[0..nt) (the fresh frames before them, innermost
 * first); the outermost are left out past COPY_FRAMES. */
static void remember(struct copy *dst, const struct copy *src, const struct frame *deep,
                     uint32_t nd, uint32_t lo, uint32_t keep, const struct frame *top,
                     uint32_t nt, bool complete)
{
    uint32_t total = nd + keep + nt;
    if (total > COPY_FRAMES) {
        uint32_t drop = total - COPY_FRAMES;
        uint32_t from_deep = drop < nd ? drop : nd;
        nd -= from_deep;
        drop -= from_deep;
        if (drop > keep) { /* then from the kept frames' outer end, then top's */
            nt -= drop - keep;
            drop = keep;
        }
        lo += drop;
        keep -= drop;
        complete = false;
    }
    /* needed[] of the kept frames holds where they stay outermost */
    bool needed_kept = nd == 0 && lo == 0;
    if (keep != 0 && (dst != src || nd != lo)) {
        memmove(&dst->frames[nd], &src->frames[lo], keep * sizeof *dst->frames);
        if (needed_kept && dst != src) {
            memcpy(dst->needed, src->needed, keep);
        }
    }
    for (uint32_t i = 0; i < nd; i++) {
        dst->frames[nd - 1 - i] = deep[i];
    }
    struct frame *after = &dst->frames[nd + keep + nt - 1];
    for (uint32_t i = 0; i < nt; i++) {
        after[-(intptr_t)i] = top[i];
    }
    dst->count = nd + keep + nt;
    dst->complete = complete;
    mark_needed(dst, needed_kept ? keep : 0);
}

/* The registers of the caller just after its call: ip (the return
 * address), sp (past it) and rbp, as the call left them. */
struct regs {
    uintptr_t ip, sp, rbp;
};
void cebox_unwind_regs(struct regs *r) __attribute__((visibility("hidden")));
__asm__(".text\n"
        ".p2align 4\n"
        ".globl cebox_unwind_regs\n"
        ".hidden cebox_unwind_regs\n"
        ".type cebox_unwind_regs, @function\n"
        "cebox_unwind_regs:\n"
        "\tmovq (%rsp), %rax\n"
        "\tmovq %rax, (%rdi)\n"
        "\tleaq 8(%rsp), %rax\n"
        "\tmovq %rax, 8(%rdi)\n"
        "\tmovq %rbp, 16(%rdi)\n"
        "\tret\n"
        ".size cebox_unwind_regs, .-cebox_unwind_regs\n");

/* Fresh frames of one capture (before the cached part and after it):
 * past this many, libunwind does the capture. */
#define FRESH_MAX 64
/* The walker's own frames, ahead of the caller's: walk's and unwind_fast's */
#define OWN 2

/* Whether fresh frame f is frame k of copy m: same place, same code, and
 * the same rbp where a CFA further out depends on it. */
static inline bool same_frame(const struct copy *m, const struct frame *f, uint32_t k)
{
    const struct frame *g = &m->frames[k];
    return f->sp == g->sp && f->ip == g->ip && (!m->needed[k] || f->rbp == g->rbp);
}

/* The inner frames again at another depth: when the capture starts where
 * copy m did (same instruction pointer) but with the stack pointer moved
 * by delta, m's inner frames, moved by delta, are this capture's as far
 * as their return addresses are still in place and their CFAs are
 * rsp-based (a frame's size is then its code's).  Puts them in
 * fresh[0..nt), emitted, and leaves fresh[nt] as the first frame not
 * confirmed (its registers right, its rule not yet known). */
static uint32_t walk_shifted(struct walk *w, const struct copy *m, struct frame *fresh)
{
    uint32_t i = m->count - 1, nt = 0;
    uintptr_t delta = fresh[0].sp - m->frames[i].sp;
    uintptr_t rbp = fresh[0].rbp;
    while (i > 0 && nt + 1 < FRESH_MAX && w->end - w->out > 1) {
        uint64_t r = m->frames[i].rule;
        if (RULE_KIND(r) != CFI_STEP || RULE_CFA_RBP(r)) {
            break;
        }
        const struct frame *caller = &m->frames[i - 1];
        uintptr_t sp = caller->sp + delta;
        if (!readable(w->c, sp - 8, &w->budget) || *(const uintptr_t *)(sp - 8) != caller->ip) {
            break;
        }
        if (RULE_RBP_SAVED(r)) {
            uintptr_t slot = sp + RULE_RBP_OFF(r);
            if (!readable(w->c, slot, &w->budget)) {
                break;
            }
            rbp = *(const uintptr_t *)slot;
        }
        fresh[nt].rule = r;
        *w->out++ = (void *)fresh[nt].ip;
        nt++;
        fresh[nt] = (struct frame){.ip = caller->ip, .sp = sp, .rbp = rbp};
        i--;
    }
    return nt;
}

/* The frames of a copy are in order of stack pointer, highest first: the
 * count of them whose stack pointer is at least sp (the frame at j - 1 is
 * then the innermost of those). */
static uint32_t first_not_below(const struct copy *m, uintptr_t sp)
{
    uint32_t lo = 0, hi = m->count; /* frames[0, lo) are at or above sp; [hi, count) below */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->frames[mid].sp >= sp) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The copy met last (the newest), and the one to write over (the oldest
 * other than keep, unless it is the only one). */
static struct copy *newest_copy(struct cache *c)
{
    struct copy *best = &c->copies[0];
    for (unsigned i = 1; i < COPIES; i++) {
        best = c->copies[i].used > best->used ? &c->copies[i] : best;
    }
    return best;
}

static struct copy *oldest_copy_but(struct cache *c, struct copy *keep)
{
    struct copy *best = NULL;
    for (unsigned i = 0; i < COPIES; i++) {
        struct copy *m = &c->copies[i];
        if (m != keep && (best == NULL || m->used < best->used)) {
            best = m;
        }
    }
    return best != NULL ? best : keep; /* one copy only: over itself */
}

/* The copies whose innermost frame is the capture's first, *top (another
 * allocation site at the same depth, or the same one again): each is
 * walked outwards, and the first confirmed to the stack's end (or to the
 * capture's), else the one confirmed furthest, is the one returned, its
 * frames emitted and *lo the outermost confirmed; NULL when none. */
static struct copy *meet_at_top(struct walk *w, const struct frame *top, uint32_t *lo)
{
    void **start = w->out;
    struct copy *best = NULL, *last = NULL;
    uint32_t best_lo = UINT32_MAX;
    for (unsigned i = 0; i < COPIES; i++) {
        struct copy *m = &w->c->copies[i];
        if (m->count == 0 || !same_frame(m, top, m->count - 1)) {
            continue;
        }
        w->out = start;
        *w->out++ = (void *)top->ip;
        last = m;
        *lo = walk_cached(w, m, m->count - 1, top->rbp);
        if ((*lo == 0 && m->complete) || w->out == w->end) {
            return m;
        }
        if (*lo < best_lo) {
            best = m;
            best_lo = *lo;
        }
    }
    if (best != last) { /* walk the best again: the emitted frames are the last one's */
        w->out = start;
        *w->out++ = (void *)top->ip;
        *lo = walk_cached(w, best, best->count - 1, top->rbp);
    }
    w->out = best != NULL ? w->out : start;
    return best;
}

/* The fresh frames from fresh[0] until one of copy m is met (then *k is
 * its index, emitted, and true is returned) or the stack or capture ends;
 * *nt is the count of fresh frames emitted, -1 to give up. */
static int walk_to_copy(struct walk *w, const struct copy *m, struct frame *fresh, uint32_t *k)
{
    uint32_t nt = 0, j;
    /* (at the same depth the loop below meets the copy at once, and its
     * frames stay where they are) */
    if (m->count > 0 && m->frames[m->count - 1].ip == fresh[0].ip &&
        m->frames[m->count - 1].sp != fresh[0].sp) {
        nt = walk_shifted(w, m, fresh);
    }
    j = first_not_below(m, fresh[nt].sp);
    for (;;) {
        while (j > 0 && m->frames[j - 1].sp < fresh[nt].sp) {
            j--;
        }
        if (j > 0 && same_frame(m, &fresh[nt], j - 1)) {
            *k = j - 1;
            *w->out++ = (void *)m->frames[j - 1].ip;
            return (int)nt;
        }
        *w->out++ = (void *)fresh[nt].ip;
        nt++;
        if (w->out == w->end) {
            break;
        }
        if (nt == FRESH_MAX) {
            return -1;
        }
        enum step_result s = step_fresh(w, &fresh[nt - 1], &fresh[nt]);
        if (s == STEP_FAIL) {
            return -1;
        }
        if (s != STEP_OK) {
            w->ended = s == STEP_END;
            break;
        }
    }
    *k = UINT32_MAX; /* nothing shared */
    return (int)nt;
}

/* The unwind proper, into raw[0..max) (its own frames first): the count,
 * or -1 to give up (*walked: the copy it was walking).  The capture is
 * met with a copy (one at the same depth, else the newest), and what it
 * stepped fresh goes to the oldest other copy, with the frames it shared;
 * a capture all met in its copy leaves it as it is. */
__attribute__((noinline)) static int walk(struct cache *c, struct shared_rule *shared, void **raw,
                                          int max, struct copy **walked)
{
    struct frame fresh[FRESH_MAX + 1];
    struct regs regs;
    cebox_unwind_regs(&regs);
    anchor_readable(c, regs.sp);
    struct walk w = {.c = c, .shared = shared, .budget = CHECK_PAGES, .out = raw, .end = raw + max};
    fresh[0] = (struct frame){.ip = regs.ip, .sp = regs.sp, .rbp = regs.rbp};
    uint32_t nt = 0, k, lo;
    struct copy *src = meet_at_top(&w, &fresh[0], &lo);
    if (src != NULL) {
        k = src->count - 1;
    } else {
        src = newest_copy(c);
        *walked = src;
        int n = walk_to_copy(&w, src, fresh, &k);
        if (n < 0) {
            return -1;
        }
        nt = (uint32_t)n;
        if (k == UINT32_MAX) {
            struct copy *dst = oldest_copy_but(c, NULL);
            remember(dst, src, NULL, 0, 0, 0, fresh, nt, w.ended);
            dst->used = ++c->clock;
            c->unmet += nt;
            return (int)(w.out - raw);
        }
        lo = walk_cached(&w, src, k, fresh[nt].rbp);
    }
    *walked = src;
    src->used = ++c->clock;
    uint32_t nd = 0;
    bool complete = src->complete;
    if (w.out < w.end && (lo > 0 || !src->complete)) {
        /* a caller changed, or the copy ends short of the stack's end */
        struct frame from = src->frames[lo];
        int n = walk_fresh(&w, &from, fresh + nt, (int)(FRESH_MAX - nt));
        if (n < 0) {
            return -1;
        }
        src->frames[lo].rule = from.rule;
        nd = (uint32_t)n;
        complete = w.ended;
    } else {
        lo = 0;
    }
    if (nt != 0 || nd != 0 || lo != 0 || k + 1 != src->count) {
        struct copy *dst = oldest_copy_but(c, src);
        remember(dst, src, fresh + nt, nd, lo, k + 1 - lo, fresh, nt, complete);
        dst->used = ++c->clock;
    }
    c->unmet += nt + nd;
    return (int)(w.out - raw);
}

unsigned long unwind_frames_unmet(void)
{
    return thread_cache != NULL ? (unsigned long)thread_cache->unmet : 0;
}

int unwind_fast(void **raw, int max)
{
    if (unwinding || max <= 0) {
        return -1; /* a signal handler's capture amid this thread's own */
    }
    unwinding = 1; /* before the caches are made too: a handler makes none */
    atomic_signal_fence(memory_order_seq_cst);
    int saved = errno;
    struct shared_rule *shared = shared_table();
    struct cache *c = cache_of_thread();
    int n = -1;
    if (shared != NULL && c != NULL) {
        void *buf[FRESH_MAX + COPY_FRAMES + OWN];
        struct copy *walked = NULL;
        if (max + OWN <= (int)(sizeof buf / sizeof *buf)) {
            n = walk(c, shared, buf, max + OWN, &walked);
        }
        if (n < 0 && walked != NULL) {
            walked->count = 0; /* forget it: the next capture there starts afresh */
        } else if (n >= 0) {
            n = n > OWN ? n - OWN : 0;
            memcpy(raw, buf + OWN, (size_t)n * sizeof *raw);
        }
    }
    errno = saved;
    atomic_signal_fence(memory_order_seq_cst);
    unwinding = 0;
    return n;
}
