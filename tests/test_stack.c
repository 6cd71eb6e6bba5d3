/*
 * test_stack.c - the table of distinct stacks (ids, hits, growth past
 * uthash's bucket expansions, marks, destroy) and capture: the fast
 * unwinder finds libunwind's frames where its cache could mislead it (the
 * same place reached from another caller, frames with and without a frame
 * pointer, deeper and shallower calls in turn, a signal handler, threads)
 * and never reads outside the stack (a frame whose CFA lies far above it).
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "record/logformat.h"
#include "record/stack.h"
#include "record/unwind.h"

static void same_stack_same_id(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    uintptr_t a[3] = {0x1000, 0x2000, 0x3000}, b[3] = {0x1000, 0x2000, 0x3001};
    bool added;
    struct stack_info *x = stack_table_intern(&t, a, 3, &added);
    assert_non_null(x);
    assert_true(added);
    assert_int_equal(x->id, 1);
    assert_int_equal(x->hits, 1);
    struct stack_info *y = stack_table_intern(&t, b, 3, &added);
    assert_non_null(y);
    assert_true(added);
    assert_int_equal(y->id, 2);
    uintptr_t again[3] = {0x1000, 0x2000, 0x3000}; /* equal content, other memory */
    struct stack_info *z = stack_table_intern(&t, again, 3, &added);
    assert_ptr_equal(z, x);
    assert_false(added);
    assert_int_equal(z->hits, 2);
    assert_int_equal(t.count, 2);
    stack_table_destroy(&t);
    assert_int_equal(t.count, 0);
    assert_null(t.head);
}

/* A prefix is another stack: the depth is part of the key. */
static void prefix_is_distinct(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    uintptr_t a[4] = {1, 2, 3, 4};
    bool added;
    uint32_t full = stack_table_intern(&t, a, 4, &added)->id;
    uint32_t shorter = stack_table_intern(&t, a, 3, &added)->id;
    assert_true(added);
    assert_int_not_equal(full, shorter);
    assert_int_equal(stack_table_intern(&t, a, 4, &added)->id, full);
    stack_table_destroy(&t);
}

/* Many stacks: uthash doubles its buckets (uthash_malloc/uthash_free over
 * private mappings) and entries span several chunks; every id stays
 * findable and distinct, marks stay put. */
static void many_stacks(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    enum { N = 20000 };
    bool added;
    for (uintptr_t i = 0; i < N; i++) {
        uintptr_t ips[LOG_MAX_DEPTH];
        size_t depth = 1 + i % LOG_MAX_DEPTH;
        for (size_t k = 0; k < depth; k++) {
            ips[k] = i * 131 + k;
        }
        struct stack_info *si = stack_table_intern(&t, ips, depth, &added);
        assert_non_null(si);
        assert_true(added);
        assert_int_equal(si->id, i + 1);
        si->mark = (uint32_t)i;
    }
    assert_int_equal(t.count, N);
    for (uintptr_t i = 0; i < N; i += 97) {
        uintptr_t ips[LOG_MAX_DEPTH];
        size_t depth = 1 + i % LOG_MAX_DEPTH;
        for (size_t k = 0; k < depth; k++) {
            ips[k] = i * 131 + k;
        }
        struct stack_info *si = stack_table_intern(&t, ips, depth, &added);
        assert_false(added);
        assert_int_equal(si->id, i + 1);
        assert_int_equal(si->mark, i);
        assert_int_equal(si->hits, 2);
    }
    stack_table_destroy(&t);
    /* Usable again after destroy. */
    uintptr_t one = 42;
    assert_int_equal(stack_table_intern(&t, &one, 1, &added)->id, 1);
    stack_table_destroy(&t);
}

/* Deeper than LOG_MAX_DEPTH is cut there. */
static void depth_is_bounded(void **state)
{
    (void)state;
    struct stack_table t;
    stack_table_init(&t);
    uintptr_t ips[LOG_MAX_DEPTH + 10];
    for (size_t k = 0; k < LOG_MAX_DEPTH + 10; k++) {
        ips[k] = k + 1;
    }
    bool added;
    uint32_t a = stack_table_intern(&t, ips, LOG_MAX_DEPTH + 10, &added)->id;
    uint32_t b = stack_table_intern(&t, ips, LOG_MAX_DEPTH, &added)->id;
    assert_int_equal(a, b);
    stack_table_destroy(&t);
}

/* ---- capture ---- */

static void *returns[3];
static size_t captured;
static uintptr_t frames[LOG_MAX_DEPTH];

__attribute__((noinline)) static void capture_here(size_t max)
{
    returns[0] = __builtin_return_address(0);
    captured = stack_capture(frames, max);
    __asm__ volatile("" ::: "memory"); /* no tail call */
}

__attribute__((noinline)) static void capture_level1(size_t max)
{
    capture_here(max);
    returns[1] = __builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

static bool captured_has(const void *ip)
{
    for (size_t i = 0; i < captured; i++) {
        if (frames[i] == (uintptr_t)ip) {
            return true;
        }
    }
    return false;
}

/* The capture holds the callers' return addresses, innermost first, and
 * keeps to the depth asked for. */
static void capture_sees_callers(void **state)
{
    (void)state;
    capture_level1(32);
    assert_true(captured >= 3);
    assert_true(captured_has(returns[0]));
    assert_true(captured_has(returns[1]));
    size_t at0 = 0, at1 = 0;
    for (size_t i = 0; i < captured; i++) {
        at0 = frames[i] == (uintptr_t)returns[0] ? i : at0;
        at1 = frames[i] == (uintptr_t)returns[1] ? i : at1;
    }
    assert_true(at0 < at1);
    capture_level1(2);
    assert_int_equal(captured, 2);
    capture_level1(LOG_MAX_DEPTH + 50); /* clamped */
    assert_true(captured <= LOG_MAX_DEPTH);
}


/* ---- the fast unwinder against libunwind ---- */

struct pair {
    size_t n[2];
    uintptr_t f[2][LOG_MAX_DEPTH];
};

__attribute__((noinline)) static void capture_one(enum stack_unwinder u, size_t *n, uintptr_t *f)
{
    *n = stack_capture_using(u, f, LOG_MAX_DEPTH);
    __asm__ volatile("" ::: "memory");
}

static volatile int two = 2; /* a loop the compiler cannot unroll */

/* Both unwinders from one call site, so that they see the same frames. */
__attribute__((noinline)) static void capture_both(struct pair *p)
{
    for (int u = 0; u < two; u++) {
        capture_one(u == 0 ? STACK_UNWIND_FAST : STACK_UNWIND_LIBUNWIND, &p->n[u], p->f[u]);
    }
    __asm__ volatile("" ::: "memory");
}

static bool pair_same(const struct pair *p)
{
    return p->n[0] == p->n[1] && p->n[0] > 2 &&
           memcmp(p->f[0], p->f[1], p->n[0] * sizeof p->f[0][0]) == 0;
}

/* Levels of a recursion, in turn with a frame pointer and a CFA on rbp
 * (alloca) and without. */
__attribute__((noinline)) static void level_plain(int depth, int vla, struct pair *p);

__attribute__((noinline)) static void level_vla(int depth, int vla, struct pair *p)
{
    volatile char *buf = __builtin_alloca((size_t)vla);
    buf[0] = (char)depth;
    if (depth == 0) {
        capture_both(p);
    } else {
        level_plain(depth - 1, vla, p);
    }
    __asm__ volatile("" ::"r"(buf) : "memory");
}

__attribute__((noinline)) static void level_plain(int depth, int vla, struct pair *p)
{
    if (depth == 0) {
        capture_both(p);
    } else if (depth % 3 == 0) {
        level_vla(depth - 1, vla, p);
    } else {
        level_plain(depth - 1, vla, p);
    }
    __asm__ volatile("" ::: "memory");
}

/* Deeper and shallower in turn, with frames of other sizes: the cache is
 * met shifted, at the same depth, and not at all. */
static void fast_matches_libunwind_at_every_depth(void **state)
{
    (void)state;
    static struct pair p;
    static const int depths[] = {0, 1, 5, 5, 12, 3, 30, 29, 30, 60, 2, 45, 45, 7};
    static const int vlas[] = {16, 600, 5000};
    for (size_t v = 0; v < sizeof vlas / sizeof *vlas; v++) {
        for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
            memset(&p, 0, sizeof p);
            level_plain(depths[d], vlas[v], &p);
            if (!pair_same(&p)) {
                fail_msg("depth %d, array %d: fast %zu frames, libunwind %zu", depths[d], vlas[v], p.n[0],
                         p.n[1]);
            }
        }
    }
}

typedef void (*leaf_fn)(struct pair *p);

__attribute__((noinline)) static void leaf_small(struct pair *p)
{
    capture_both(p);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void leaf_big(struct pair *p)
{
    volatile char pad[512];
    pad[0] = 1;
    capture_both(p);
    __asm__ volatile("" ::"r"(pad) : "memory");
}

/* One call site for every leaf: its frame is met at the same place and
 * address whichever caller it has. */
__attribute__((noinline)) static void shared_frame(leaf_fn leaf, struct pair *p)
{
    leaf(p);
    __asm__ volatile("" ::: "memory");
}

static volatile int side;

__attribute__((noinline)) static void caller_a(leaf_fn leaf, struct pair *p)
{
    shared_frame(leaf, p);
    side = 1;
}

__attribute__((noinline)) static void caller_b(leaf_fn leaf, struct pair *p)
{
    shared_frame(leaf, p);
    side = 2;
}

/* The same frame (place and address) under another caller: the cached
 * frames past it are not this stack's. */
static void another_caller_is_seen(void **state)
{
    (void)state;
    static struct pair p;
    static const struct {
        void (*caller)(leaf_fn, struct pair *);
        leaf_fn leaf;
    } runs[] = {{caller_a, leaf_small}, {caller_b, leaf_big}, {caller_a, leaf_small},
                {caller_b, leaf_small}, {caller_a, leaf_big}, {caller_a, leaf_big}};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        memset(&p, 0, sizeof p);
        runs[i].caller(runs[i].leaf, &p);
        if (!pair_same(&p)) {
            fail_msg("run %zu: fast %zu frames, libunwind %zu", i, p.n[0], p.n[1]);
        }
    }
}

__attribute__((noinline)) static void caller_c(leaf_fn leaf, struct pair *p)
{
    shared_frame(leaf, p);
    side = 3;
}

__attribute__((noinline)) static void deeper_a(leaf_fn leaf, struct pair *p)
{
    caller_a(leaf, p);
    side = 4;
}

/* Allocation sites taken in turn, three at the same depth (the same inner
 * frames, other callers further out) and one deeper: after a first round
 * every capture is exact and found all in the thread's copies, each site
 * in its own, none of its frames stepped again. */
static void alternating_sites_reuse_their_own(void **state)
{
    (void)state;
    static struct pair p;
    static void (*const sites[])(leaf_fn, struct pair *) = {caller_a, caller_b, caller_c, deeper_a};
    unsigned long after_first = 0;
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < sizeof sites / sizeof *sites; i++) {
            memset(&p, 0, sizeof p);
            sites[i](leaf_small, &p);
            if (!pair_same(&p)) {
                fail_msg("round %d, site %zu: fast %zu frames, libunwind %zu", round, i, p.n[0], p.n[1]);
            }
        }
        if (round == 0) {
            after_first = unwind_frames_unmet();
        }
    }
    assert_true(after_first > 0);
    assert_int_equal(unwind_frames_unmet(), after_first);
}

static struct pair in_handler;

static void on_usr1(int sig)
{
    (void)sig;
    level_plain(4, 64, &in_handler);
}

/* Inside a signal handler: the stack goes on through the signal frame. */
static void signal_handler_frames(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = on_usr1}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    for (int i = 0; i < 3; i++) {
        memset(&in_handler, 0, sizeof in_handler);
        raise(SIGUSR1);
        assert_true(pair_same(&in_handler));
    }
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

static pthread_barrier_t all_ready;

static void *thread_captures(void *arg)
{
    static const int depths[] = {3, 20, 8, 8, 40, 1, 13};
    struct pair *p = arg;
    pthread_barrier_wait(&all_ready); /* all at once */
    for (int round = 0; round < 300; round++) {
        level_plain(depths[round % 7], 16 + (round % 5) * 40, p);
        if (!pair_same(p)) {
            return p;
        }
    }
    return NULL;
}

/* Threads capturing at once, each on its own stack. */
static void threads_have_their_own(void **state)
{
    (void)state;
    static struct pair p[4];
    pthread_t t[4];
    assert_int_equal(pthread_barrier_init(&all_ready, NULL, 4), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, thread_captures, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *bad;
        assert_int_equal(pthread_join(t[i], &bad), 0);
        assert_null(bad);
    }
    pthread_barrier_destroy(&all_ready);
}

/* A frame whose call frame information puts its CFA 1 GB above it: an
 * unwinder that believed it would read far outside the stack. */
void far_cfa_frame(leaf_fn leaf, struct pair *p);
__asm__(".text\n"
        ".p2align 4\n"
        ".type far_cfa_frame, @function\n"
        "far_cfa_frame:\n"
        ".cfi_startproc\n"
        "\tsubq $8, %rsp\n"
        ".cfi_def_cfa_offset 0x40000000\n"
        "\tmovq %rdi, %rax\n"
        "\tmovq %rsi, %rdi\n"
        "\tcall *%rax\n"
        "\taddq $8, %rsp\n"
        ".cfi_def_cfa_offset 8\n"
        "\tret\n"
        ".cfi_endproc\n"
        ".size far_cfa_frame, .-far_cfa_frame\n");

static void frame_leaving_the_stack(void **state)
{
    (void)state;
    static struct pair p;
    for (int i = 0; i < 3; i++) {
        memset(&p, 0, sizeof p);
        far_cfa_frame(leaf_small, &p); /* no fault */
        assert_true(p.n[0] == p.n[1] && memcmp(p.f[0], p.f[1], p.n[0] * sizeof p.f[0][0]) == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_stack_same_id),
        cmocka_unit_test(prefix_is_distinct),
        cmocka_unit_test(many_stacks),
        cmocka_unit_test(depth_is_bounded),
        cmocka_unit_test(capture_sees_callers),
        cmocka_unit_test(fast_matches_libunwind_at_every_depth),
        cmocka_unit_test(another_caller_is_seen),
        cmocka_unit_test(alternating_sites_reuse_their_own),
        cmocka_unit_test(signal_handler_frames),
        cmocka_unit_test(threads_have_their_own),
        cmocka_unit_test(frame_leaving_the_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
