/*
 * bench_larson.c - multi-threaded churn with cross-thread frees, in the
 * spirit of Larson and Krishnan's server benchmark.
 *
 * Each thread keeps an array of SLOTS live blocks and, OPS times, frees the
 * block of a random slot and puts a new block of random size (TAG_MIN to
 * MAX_SIZE bytes) there.  Every HANDOFF_EVERY replacements it hands its
 * whole array to the next thread and starts a new one; the thread that
 * receives an array frees all its blocks, so most frees happen on a thread
 * other than the one that allocated.  Each thread has a mailbox, a list of
 * the arrays handed to it, that it empties at each of its own hand-offs.
 * A thread posts only once the target's mailbox is empty again, unless
 * the target has finished (it would never empty it; main frees what is
 * left): otherwise a thread that runs far ahead of the other (valgrind
 * runs one thread at a time, a loaded machine may too) piles up every
 * array it hands over, 30 MB at 1 200 000 replacements, more than a
 * 32 MB slot holds.  A poster empties its own mailbox before it waits, so
 * no ring of waiting threads can form.
 *
 * Deterministic: each thread draws its sizes from its own seeded generator
 * in a fixed order, so the bytes allocated (printed) do not depend on the
 * interleaving; at the end every block has been freed and the bytes freed
 * must equal them (exit 1 otherwise, or on a damaged block).
 *
 * Usage: bench_larson [OPS [THREADS]]   (defaults 200000 per thread, 2)
 */
#include <pthread.h>
#include <stdbool.h>

#include "workload.h"

#define SLOTS 1000
#define HANDOFF_EVERY 20000
#define MAX_SIZE 1000
#define MAX_THREADS 64

struct worker {
    unsigned id;
    struct rng rng;
    uint64_t allocated;
    uint64_t freed;
    pthread_t thread;
};

static pthread_mutex_t mailbox_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mailbox_emptied = PTHREAD_COND_INITIALIZER;
static void **mailbox[MAX_THREADS];
static bool finished[MAX_THREADS];
static unsigned nthreads;
static unsigned long ops_per_thread;

static void *new_block(struct worker *w)
{
    size_t size = rng_range(&w->rng, TAG_MIN, MAX_SIZE);
    w->allocated += size;
    return tag_alloc(size);
}

/* An array: SLOTS blocks, then the link of its mailbox list. */
static void **new_array(struct worker *w)
{
    void **a = malloc((SLOTS + 1) * sizeof *a);
    if (a == NULL) {
        workload_fail("malloc", (SLOTS + 1) * sizeof *a);
    }
    for (unsigned i = 0; i < SLOTS; i++) {
        a[i] = new_block(w);
    }
    a[SLOTS] = NULL;
    return a;
}

/* Frees the arrays of list A and their blocks; returns the bytes freed. */
static uint64_t free_arrays(void **a)
{
    uint64_t bytes = 0;
    while (a != NULL) {
        void **next = a[SLOTS];
        for (unsigned i = 0; i < SLOTS; i++) {
            bytes += tag_free(a[i]);
        }
        free(a);
        a = next;
    }
    return bytes;
}

/* Frees what was handed to W, then hands A to the next thread. */
static void hand_off(struct worker *w, void **a)
{
    unsigned target = (w->id + 1) % nthreads;
    pthread_mutex_lock(&mailbox_lock);
    void **received = mailbox[w->id];
    mailbox[w->id] = NULL;
    pthread_cond_broadcast(&mailbox_emptied);
    while (mailbox[target] != NULL && !finished[target] && target != w->id) {
        pthread_cond_wait(&mailbox_emptied, &mailbox_lock);
    }
    a[SLOTS] = mailbox[target];
    mailbox[target] = a;
    pthread_mutex_unlock(&mailbox_lock);
    w->freed += free_arrays(received);
}

static void *churn(void *arg)
{
    struct worker *w = arg;
    void **a = new_array(w);
    for (unsigned long op = 1; op <= ops_per_thread; op++) {
        size_t slot = rng_range(&w->rng, 0, SLOTS - 1);
        w->freed += tag_free(a[slot]);
        a[slot] = new_block(w);
        if (op % HANDOFF_EVERY == 0) {
            hand_off(w, a);
            a = new_array(w);
        }
    }
    a[SLOTS] = NULL;
    w->freed += free_arrays(a);
    pthread_mutex_lock(&mailbox_lock);
    finished[w->id] = true; /* its mailbox is main's to empty now */
    pthread_cond_broadcast(&mailbox_emptied);
    pthread_mutex_unlock(&mailbox_lock);
    return NULL;
}

int main(int argc, char **argv)
{
    ops_per_thread = workload_arg(argc, argv, 1, 200000);
    nthreads = (unsigned)workload_arg(argc, argv, 2, 2);
    if (nthreads > MAX_THREADS) {
        fprintf(stderr, "%s: at most %d threads\n", argv[0], MAX_THREADS);
        return 2;
    }
    struct worker w[MAX_THREADS];
    for (unsigned i = 0; i < nthreads; i++) {
        w[i] = (struct worker){ .id = i };
        rng_seed(&w[i].rng, i + 1);
        if (pthread_create(&w[i].thread, NULL, churn, &w[i]) != 0) {
            fprintf(stderr, "%s: cannot start thread %u\n", argv[0], i);
            return 1;
        }
    }
    uint64_t allocated = 0, freed = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(w[i].thread, NULL);
    }
    for (unsigned i = 0; i < nthreads; i++) {
        freed += free_arrays(mailbox[i]);
        allocated += w[i].allocated;
        freed += w[i].freed;
    }
    printf("larson: %u threads x %lu replacements, %llu bytes allocated\n", nthreads,
           ops_per_thread, (unsigned long long)allocated);
    if (freed != allocated) {
        fprintf(stderr, "%s: %llu bytes freed of %llu allocated\n", argv[0],
                (unsigned long long)freed, (unsigned long long)allocated);
        return 1;
    }
    return 0;
}
