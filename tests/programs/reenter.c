/*
 * reenter.c - a signal handler that allocates while the thread it
 * interrupted is inside cebox.  An interval timer (ITIMER_REAL,
 * SA_RESTART) fires every 50 us; its handler keeps a ring of blocks and
 * mappings that outlive one call (so a block made by a re-entered call is
 * freed by a plain one and the other way round), checks each before
 * letting it go, reallocs, mmaps, mprotects, mremaps and munmaps, and frees
 * (and grows) blocks the looping threads allocated.  argv[2] threads (1 by
 * default; the signal goes to any of them, each handler with its thread's
 * own ring) loop on malloc/free/realloc/mmap/munmap for argv[1] ms and
 * check their own blocks.  At the end everything is given back, and the
 * heap's live blocks and the slot's mapping blocks must be what they were
 * before.  Prints TAP-style lines (box.h); exits 0 when every check passed.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>

#include "box.h"

#define PG 4096UL
#define RING 16

/* Looked up weakly, as box.h does: the program links no cebox. */
extern size_t cebox_slot_map(char *buf, size_t len) __attribute__((weak));

/* What the handler holds from one call to a later one. */
struct held {
    unsigned char *p;
    size_t n;
    unsigned char tag;
    bool mapped; /* a mapping (munmap) rather than a block (free) */
};

static __thread struct held ring[RING]; /* each thread's handler has its own */
static __thread unsigned ring_next;
/* The slot, read before the timer starts: cebox_slot_info takes the
 * slot's lock, which a handler must not. */
static struct cebox_slot_info box;
static atomic_int calls, bad, nulls, outside, map_refused, too_much_refused;
/* Blocks the main thread allocated, for the handler to free or grow. */
static _Atomic(unsigned char *) to_free, to_grow;
#define HANDOFF_N 3000
#define GROW_N (200 * 1024)

static void fill(unsigned char *p, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(tag + i * 13);
    }
}

static bool intact(const unsigned char *p, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)(tag + i * 13)) {
            return false;
        }
    }
    return true;
}

/* A call the handler may be refused (ENOMEM: the slot's pages while the
 * interrupted thread is inside cebox) but that must not fail otherwise. */
static void may_refuse(bool failed)
{
    if (failed && errno == ENOMEM) {
        map_refused++;
    } else if (failed) {
        bad++;
    }
}

/* Checks what an earlier call left and gives it back; a mapping is first
 * moved one page larger and made read-only, from whatever call this is. */
static void let_go(struct held *h)
{
    if (!intact(h->p, h->n, h->tag)) {
        bad++;
    }
    if (h->mapped) {
        unsigned char *q = mremap(h->p, h->n, h->n + PG, MREMAP_MAYMOVE);
        may_refuse(q == MAP_FAILED);
        if (q != MAP_FAILED) {
            bad += !intact(q, h->n, h->tag);
            h->p = q;
            h->n += PG;
        }
        may_refuse(mprotect(h->p, h->n, PROT_READ) != 0);
        if (munmap(h->p, h->n) != 0) {
            bad++;
        }
    } else {
        free(h->p);
    }
    h->p = NULL;
}

/* A block: malloc or calloc, then realloc to twice its size. */
static void take_block(struct held *h, unsigned k)
{
    size_t n = 1 + k % 700;
    unsigned char *p = k & 4 ? calloc(1, n) : malloc(n);
    if (p == NULL) {
        nulls++;
        return;
    }
    if ((uintptr_t)p - box.base >= box.size) {
        outside++;
    }
    for (size_t i = 0; k & 4 && i < n; i++) {
        bad += p[i] != 0; /* calloc's zeros, even from reused space */
    }
    fill(p, n, (unsigned char)k);
    unsigned char *q = realloc(p, 2 * n);
    if (q == NULL) {
        nulls++;
        free(p);
        return;
    }
    if (!intact(q, n, (unsigned char)k)) {
        bad++;
    }
    fill(q, 2 * n, (unsigned char)k);
    *h = (struct held){q, 2 * n, (unsigned char)k, false};
}

/* A mapping: two pages, read-only, then moved to four. */
static void take_mapping(struct held *h, unsigned k)
{
    unsigned char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        map_refused++;
        return;
    }
    fill(p, 2 * PG, (unsigned char)k);
    if (mprotect(p, 2 * PG, PROT_READ) != 0) {
        map_refused++;
    }
    unsigned char *q = mremap(p, 2 * PG, 4 * PG, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
        map_refused++;
        *h = (struct held){p, 2 * PG, (unsigned char)k, true};
        return;
    }
    if (!intact(q, 2 * PG, (unsigned char)k) || mprotect(q, 4 * PG, PROT_READ | PROT_WRITE) != 0) {
        bad++;
        munmap(q, 4 * PG);
        return;
    }
    fill(q, 4 * PG, (unsigned char)k);
    *h = (struct held){q, 4 * PG, (unsigned char)k, true};
}

/* The main thread's blocks: one to free, one to grow (it lies at the end
 * of what its heap region has committed, so a copy of the new size from it
 * would run off the mapping). */
static void take_handoffs(void)
{
    unsigned char *p = atomic_exchange(&to_free, NULL);
    if (p != NULL) {
        if (!intact(p, HANDOFF_N, 0x5A)) {
            bad++;
        }
        free(p);
    }
    p = atomic_exchange(&to_grow, NULL);
    if (p != NULL) {
        errno = 0;
        unsigned char *q = realloc(p, GROW_N + 64 * 1024);
        if (q == NULL) {
            /* Two such at once, from two threads' handlers, are more than
             * the bootstrap arena holds: ENOMEM, as for take_too_much. */
            too_much_refused++;
            bad += errno != ENOMEM || !intact(p, GROW_N, 0x33);
            free(p);
        } else {
            if (!intact(q, GROW_N, 0x33)) {
                bad++;
            }
            free(q);
        }
    }
}

/* More than the bootstrap arena holds: refused while the thread is inside
 * cebox, but as malloc refuses, with ENOMEM. */
static void take_too_much(void)
{
    errno = 0;
    void *p = malloc(2 << 20);
    if (p == NULL) {
        too_much_refused++;
        bad += errno != ENOMEM;
    }
    free(p);
}

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    unsigned k = (unsigned)atomic_fetch_add(&calls, 1);
    struct held *h = &ring[ring_next++ % RING];
    if (h->p != NULL) {
        let_go(h);
    }
    if (k % 3 == 2) {
        take_mapping(h, k);
    } else {
        take_block(h, k);
    }
    take_handoffs();
    if (k % 32 == 0) {
        take_too_much();
    }
    errno = saved;
}

/* Blocks of the slot that hold mappings ('R' and 'C'), not the heap. */
static unsigned mapping_blocks(void)
{
    static char map[8192];
    size_t n = cebox_slot_map(map, sizeof map);
    unsigned count = 0;
    for (size_t i = 0; i < n; i++) {
        count += map[i] == 'R' || map[i] == 'C';
    }
    return count;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void set_timer(long usec)
{
    struct itimerval it = {{0, usec}, {0, usec}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* Leaves a new block of n bytes for the handler, unless another thread
 * just did. */
static void hand_off(_Atomic(unsigned char *) *to, size_t n, unsigned char tag)
{
    unsigned char *p = malloc(n), *none = NULL;
    if (p != NULL) {
        fill(p, n, tag);
        if (!atomic_compare_exchange_strong(to, &none, p)) {
            free(p);
        }
    }
}

/* The main thread's work: blocks it checks, a mapping, handoffs. */
static unsigned main_loop(double ms)
{
    unsigned char *mine[64] = {NULL};
    unsigned mbad = 0;
    double end = now_ms() + ms;
    for (unsigned i = 0; now_ms() < end; i++) {
        unsigned slot = i % 64;
        size_t n = 16 + (slot * 97) % 2000;
        if (mine[slot] != NULL) {
            mbad += !intact(mine[slot], n, (unsigned char)slot);
            unsigned char *q = realloc(mine[slot], n + 100);
            mbad += q == NULL || !intact(q, n, (unsigned char)slot);
            free(q);
        }
        mine[slot] = malloc(n);
        if (mine[slot] == NULL) {
            mbad++;
            continue;
        }
        fill(mine[slot], n, (unsigned char)slot);
        if (i % 16 == 0) {
            unsigned char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            mbad += m == MAP_FAILED;
            if (m != MAP_FAILED) {
                fill(m, 3 * PG, 7);
                mbad += !intact(m, 3 * PG, 7);
                munmap(m, 3 * PG);
            }
        }
        if (atomic_load(&to_free) == NULL) {
            hand_off(&to_free, HANDOFF_N, 0x5A);
        }
        if (i % 256 == 0 && atomic_load(&to_grow) == NULL) {
            hand_off(&to_grow, GROW_N, 0x33);
        }
    }
    for (unsigned i = 0; i < 64; i++) {
        free(mine[i]);
        mine[i] = NULL;
    }
    return mbad;
}

/* Ends a thread's part: no more handlers on it, and its ring given back. */
static void let_go_ring(void)
{
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, NULL);
    for (unsigned i = 0; i < RING; i++) {
        if (ring[i].p != NULL) {
            let_go(&ring[i]);
        }
    }
}

static double run_ms;
static atomic_uint workers_bad;

static void *worker(void *arg)
{
    (void)arg;
    atomic_fetch_add(&workers_bad, main_loop(run_ms));
    let_go_ring();
    return NULL;
}

static void *idle(void *arg)
{
    return arg;
}

/* Runs fn on threads - 1 new threads and main_loop on this one (fn NULL:
 * idle threads, no loop); returns the number of threads that ran. */
static int start_threads(int threads, void *(*fn)(void *))
{
    pthread_t tid[8];
    int started = 0;
    while (started + 1 < threads && started < 8 &&
           pthread_create(&tid[started], NULL, fn != NULL ? fn : idle, NULL) == 0) {
        started++;
    }
    if (fn != NULL) {
        atomic_fetch_add(&workers_bad, main_loop(run_ms));
    }
    for (int i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
    }
    return started + 1;
}

int main(int argc, char **argv)
{
    double ms = argc > 1 ? atof(argv[1]) : 500;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (!box_present()) {
        printf("reenter: run it under cebox (glibc's malloc is not async-signal-safe)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    cebox_slot_info(&box);
    /* glibc keeps a little per thread it has run (its stack cache): a first
     * round of the same threads, doing nothing, pays for that before. */
    start_threads(threads, NULL);
    struct mallinfo2 before = mallinfo2();
    unsigned maps_before = mapping_blocks();
    box_set_handler(SIGALRM, on_alarm);
    set_timer(50);
    run_ms = ms;
    int started = start_threads(threads, worker);
    set_timer(0);
    let_go_ring();
    unsigned mbad = atomic_load(&workers_bad);
    free(atomic_exchange(&to_free, NULL));
    free(atomic_exchange(&to_grow, NULL));
    free(malloc(16)); /* one more plain free: whatever waits is given back */
    struct mallinfo2 after = mallinfo2();
    unsigned maps_after = mapping_blocks();

    CHECK(started == threads, "%d threads ran the loop", started);
    CHECK(calls > 100, "the handler ran (%d calls, %d of its blocks outside the slot)", atomic_load(&calls),
          atomic_load(&outside));
    CHECK(mbad == 0, "the looping threads' blocks and mappings stayed intact (%u bad)", mbad);
    CHECK(bad == 0, "the handler's blocks, mappings and handoffs stayed intact, every refusal ENOMEM (%d bad)",
          atomic_load(&bad));
    CHECK(nulls == 0, "no allocation in the handler failed (%d did)", atomic_load(&nulls));
    CHECK(after.ordblks <= before.ordblks, "no heap block is lost: %zu live before, %zu after",
          before.ordblks, after.ordblks);
    CHECK(maps_after == maps_before, "no mapping is lost: %u slot blocks map memory before, %u after",
          maps_before, maps_after);
    printf("# large mallocs and reallocs refused to the handler (inside cebox): %d\n", atomic_load(&too_much_refused));
    printf("# mmap family calls refused to the handler (slot pages, inside cebox): %d\n", atomic_load(&map_refused));
    return box_done();
}
