/*
 * test_heap_threads.c - every CE heap algorithm (ce3, ce5, ce6) shared by
 * several threads, with the traffic of a threaded program: most blocks
 * freed by a thread other than the one that allocated them, reallocs that
 * move and resize blocks, large items among the small ones, and a full
 * consistency check of the heap (HeapValidate with no pointer) run by a
 * thread of its own while the others work.
 *
 * What it catches: two operations of one heap that overlap (a lock that
 * does not serialize, a piece of bookkeeping changed outside the lock)
 * leave two blocks sharing bytes (each block carries a pattern checked
 * before it is freed), a block the heap no longer takes back, or
 * bookkeeping that fails the heap's own check, at once or at the end; the
 * heap's statistics must come back to where they started.  And children
 * forked while other threads allocate, commit and free: each child can
 * use the heap and commit pages (the core's locks are held across the
 * fork, never left taken in the child by a thread it lacks).  Built with
 * --enable-debug, the heaps' DEBUG_INVARIANTs run inside every operation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "cebox/winmem.h"
#include "heap/heap.h"
#include "testutil.h"

#define WORKERS 4
#define SLOTS 48           /* live blocks of a worker */
#define REPLACEMENTS 10000 /* per worker */
#define HANDOFF_EVERY 400  /* replacements between two hand-offs */
#define REALLOC_EVERY 7    /* one replacement in 7 is a realloc instead */
#define LARGE_EVERY 211    /* one block in 211 is a large item */
#define SMALL_MAX 1200
#define LARGE_SIZE 0x34000 /* above every profile's large-item threshold */
#define CHECK_EVERY_US 200 /* the checker's pause between two full checks */

/* A block starts with its size and the seed of its pattern; the rest of
 * its bytes are the pattern. */
struct block_head {
    size_t size;
    uint32_t seed;
};

struct worker {
    unsigned id;
    uint32_t rng;
    HANDLE heap;
    unsigned failures;
    pthread_t thread;
};

static pthread_mutex_t mailbox_lock = PTHREAD_MUTEX_INITIALIZER;
static void **mailbox[WORKERS]; /* arrays of SLOTS blocks + a link, per receiver */
static atomic_int workers_done;
static atomic_int checker_ready; /* the workers start after the first check */

static uint32_t next_rng(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static uint8_t pattern_byte(uint32_t seed, size_t i)
{
    return (uint8_t)(seed + i * 131u);
}

static void fill(void *p, size_t size, uint32_t seed)
{
    struct block_head head = {size, seed};
    memcpy(p, &head, sizeof head);
    uint8_t *b = p;
    for (size_t i = sizeof head; i < size; i++) {
        b[i] = pattern_byte(seed, i);
    }
}

/* The block's bytes are still what fill() wrote (the first `keep` of them
 * for a block just resized), and the heap still counts it as big enough. */
static bool intact(HANDLE h, const void *p, size_t keep)
{
    struct block_head head;
    memcpy(&head, p, sizeof head);
    if (keep > head.size || HeapSize(h, 0, p) < head.size) {
        return false;
    }
    const uint8_t *b = p;
    for (size_t i = sizeof head; i < keep; i++) {
        if (b[i] != pattern_byte(head.seed, i)) {
            return false;
        }
    }
    return true;
}

static size_t block_size(struct worker *w)
{
    if (next_rng(&w->rng) % LARGE_EVERY == 0) {
        return LARGE_SIZE;
    }
    return sizeof(struct block_head) + next_rng(&w->rng) % SMALL_MAX;
}

static void *new_block(struct worker *w)
{
    size_t size = block_size(w);
    void *p = HeapAlloc(w->heap, 0, size);
    if (p == NULL) {
        w->failures++;
        return NULL;
    }
    fill(p, size, next_rng(&w->rng));
    return p;
}

static void free_block(struct worker *w, void *p)
{
    if (p == NULL) {
        return;
    }
    struct block_head head;
    memcpy(&head, p, sizeof head);
    if (!intact(w->heap, p, head.size) || !HeapFree(w->heap, 0, p)) {
        w->failures++;
    }
}

/* Resizes p (moving it when the heap must), keeping what fits of its
 * pattern, and fills it again at its new size. */
static void *resize_block(struct worker *w, void *p)
{
    size_t size = block_size(w);
    void *q = HeapReAlloc(w->heap, 0, p, size);
    if (q == NULL) {
        w->failures++;
        return p;
    }
    struct block_head head;
    memcpy(&head, q, sizeof head);
    size_t keep = head.size < size ? head.size : size;
    head.size = keep; /* the bytes past the new size are gone */
    memcpy(q, &head, sizeof head);
    if (!intact(w->heap, q, keep)) {
        w->failures++;
    }
    fill(q, size, next_rng(&w->rng));
    return q;
}

static void **new_array(struct worker *w)
{
    void **a = HeapAlloc(w->heap, HEAP_ZERO_MEMORY, (SLOTS + 1) * sizeof *a);
    if (a == NULL) {
        w->failures++;
        return NULL;
    }
    for (unsigned i = 0; i < SLOTS; i++) {
        a[i] = new_block(w);
    }
    return a;
}

/* Frees a list of arrays that were handed over, and their blocks. */
static void free_arrays(struct worker *w, void **a)
{
    while (a != NULL) {
        void **next = a[SLOTS];
        for (unsigned i = 0; i < SLOTS; i++) {
            free_block(w, a[i]);
        }
        if (!HeapFree(w->heap, 0, a)) {
            w->failures++;
        }
        a = next;
    }
}

/* Hands a to the next worker and frees what was handed to w. */
static void hand_off(struct worker *w, void **a)
{
    unsigned to = (w->id + 1) % WORKERS;
    pthread_mutex_lock(&mailbox_lock);
    void **received = mailbox[w->id];
    mailbox[w->id] = NULL;
    a[SLOTS] = mailbox[to];
    mailbox[to] = a;
    pthread_mutex_unlock(&mailbox_lock);
    free_arrays(w, received);
}

static void *churn(void *arg)
{
    struct worker *w = arg;
    while (!atomic_load(&checker_ready)) {
        sched_yield();
    }
    void **a = new_array(w);
    for (unsigned op = 1; a != NULL && op <= REPLACEMENTS; op++) {
        unsigned i = next_rng(&w->rng) % SLOTS;
        if (op % REALLOC_EVERY == 0 && a[i] != NULL) {
            a[i] = resize_block(w, a[i]);
        } else {
            free_block(w, a[i]);
            a[i] = new_block(w);
        }
        if (op % HANDOFF_EVERY == 0) {
            hand_off(w, a);
            a = new_array(w);
        }
    }
    if (a != NULL) {
        a[SLOTS] = NULL;
        free_arrays(w, a);
    }
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

struct checker {
    HANDLE heap;
    unsigned failures;
};

/* The heap's whole bookkeeping checked again and again while the workers
 * change it: each check sees the heap between two operations. */
static void *check_while_churning(void *arg)
{
    struct checker *c = arg;
    do {
        if (!HeapValidate(c->heap, 0, NULL)) {
            c->failures++;
        }
        atomic_store(&checker_ready, 1);
        usleep(CHECK_EVERY_US);
    } while (atomic_load(&workers_done) < WORKERS);
    return NULL;
}

static struct heap_stats stats_of(HANDLE h)
{
    struct heap *hp = heap_lookup(h);
    struct heap_stats st;
    hp->ops->stats(hp, &st);
    return st;
}

static void churn_heap_from_threads(HANDLE h)
{
    struct heap_stats before = stats_of(h);
    struct worker w[WORKERS];
    struct checker c = {h, 0};
    pthread_t checker;
    atomic_store(&workers_done, 0);
    atomic_store(&checker_ready, 0);
    memset(mailbox, 0, sizeof mailbox);
    assert_int_equal(pthread_create(&checker, NULL, check_while_churning, &c), 0);
    for (unsigned i = 0; i < WORKERS; i++) {
        w[i] = (struct worker){.id = i, .rng = i * 7919u + 1u, .heap = h};
        assert_int_equal(pthread_create(&w[i].thread, NULL, churn, &w[i]), 0);
    }
    for (unsigned i = 0; i < WORKERS; i++) {
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
    }
    assert_int_equal(pthread_join(checker, NULL), 0);
    for (unsigned i = 0; i < WORKERS; i++) {
        free_arrays(&w[i], mailbox[i]); /* the hand-offs nobody took */
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(c.failures, 0);
    assert_true(HeapValidate(h, 0, NULL));
    struct heap_stats after = stats_of(h);
    assert_int_equal(after.live_blocks, before.live_blocks);
    assert_int_equal(after.live_bytes, before.live_bytes);
    assert_true(after.peak_live_blocks > before.live_blocks + WORKERS * SLOTS);
    assert_int_equal(after.bad_pointers, 0);
}

static void churn_profile(const char *profile)
{
    assert_int_equal(testutil_core_reset(profile, NULL, NULL), 0);
    heap_set_bad_pointer_hook(NULL);
    churn_heap_from_threads(GetProcessHeap());
    HANDLE shared = HeapCreate(0, 0, 0);
    assert_non_null(shared);
    churn_heap_from_threads(shared);
    assert_true(HeapDestroy(shared));
}

static void test_ce3_heap_shared_by_threads(void **state)
{
    (void)state;
    churn_profile("ce3");
}

static void test_ce5_heap_shared_by_threads(void **state)
{
    (void)state;
    churn_profile("ce5");
}

static void test_ce6_heap_shared_by_threads(void **state)
{
    (void)state;
    churn_profile("ce6");
}

/* A thread that takes the heap's, the slot's and the device's locks
 * without pause: a block of the process heap, and a reservation committed
 * and released (a charge and a refund of RAM), until told to stop. */
static atomic_bool stop_locking;

static void *lock_in_turn(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_locking)) {
        HeapFree(GetProcessHeap(), 0, HeapAlloc(GetProcessHeap(), 0, 100));
        void *v = VirtualAlloc(NULL, 4096, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        if (v != NULL) {
            VirtualFree(v, 0, MEM_RELEASE);
        }
    }
    return NULL;
}

/* What a forked child does before it exits: 0 when all went well. */
static int child_allocates(void)
{
    void *b = HeapAlloc(GetProcessHeap(), 0, 300);
    void *v = VirtualAlloc(NULL, 8192, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    int bad = b == NULL || v == NULL;
    HeapFree(GetProcessHeap(), 0, b);
    VirtualFree(v, 0, MEM_RELEASE);
    return bad;
}

/* The child's status, or -1 (the child killed) when it has not ended
 * within 10 s: it hangs on a lock. */
static int child_status(pid_t child)
{
    int status;
    for (int ms = 0; ms < 10000; ms++) {
        if (waitpid(child, &status, WNOHANG) == child) {
            return status;
        }
        usleep(1000);
    }
    kill(child, SIGKILL);
    (void)waitpid(child, &status, 0);
    return -1;
}

static void test_children_forked_while_threads_allocate(void **state)
{
    (void)state;
    assert_int_equal(testutil_core_reset("ce5", NULL, NULL), 0);
    atomic_store(&stop_locking, false);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, lock_in_turn, NULL), 0);
    }
    int status = 0, i;
    for (i = 0; i < 60 && status == 0; i++) {
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
            _exit(child_allocates());
        }
        status = child_status(child); /* the first child that hangs or fails ends the test */
    }
    atomic_store(&stop_locking, true);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pthread_join(t[k], NULL), 0);
    }
    if (status == -1) {
        fail_msg("child %d hung (killed after 10 s)", i);
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce3_heap_shared_by_threads),
        cmocka_unit_test(test_ce5_heap_shared_by_threads),
        cmocka_unit_test(test_ce6_heap_shared_by_threads),
        cmocka_unit_test(test_children_forked_while_threads_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
