/*
 * bench_xmalloc.c - producer/consumer: one thread allocates, another frees,
 * through a bounded queue, in the spirit of Lever and Boreham's xmalloc
 * test.  Every block is freed by a thread that never allocates, so an
 * allocator with per-thread caches must send each one back across threads.
 *
 * The producer allocates BLOCKS tagged blocks of random size (TAG_MIN to
 * MAX_SIZE bytes) and puts each in a ring of QUEUE slots, waiting while it
 * is full; the consumer takes everything the ring holds at once and frees
 * it outside the lock, waiting while it is empty.  A NULL ends the stream.
 *
 * Deterministic: the sizes come from one seeded generator; the consumer's
 * bytes freed must equal the producer's bytes allocated (exit 1 otherwise,
 * or on a damaged block).
 *
 * Usage: bench_xmalloc [BLOCKS]   (default 400000)
 */
#include <pthread.h>

#include "workload.h"

#define QUEUE 1024
#define MAX_SIZE 1024

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t queue_not_full = PTHREAD_COND_INITIALIZER;
static void *ring[QUEUE];
static unsigned long queue_head, queue_tail; /* taken, put: never wrap */

static void queue_put(void *p)
{
    pthread_mutex_lock(&queue_lock);
    while (queue_tail - queue_head == QUEUE) {
        pthread_cond_wait(&queue_not_full, &queue_lock);
    }
    ring[queue_tail++ % QUEUE] = p;
    pthread_cond_signal(&queue_not_empty);
    pthread_mutex_unlock(&queue_lock);
}

/* Moves everything queued (at least one entry, waiting for it) to OUT;
 * returns how many. */
static unsigned queue_take_all(void **out)
{
    pthread_mutex_lock(&queue_lock);
    while (queue_tail == queue_head) {
        pthread_cond_wait(&queue_not_empty, &queue_lock);
    }
    unsigned n = 0;
    while (queue_head != queue_tail) {
        out[n++] = ring[queue_head++ % QUEUE];
    }
    pthread_cond_signal(&queue_not_full);
    pthread_mutex_unlock(&queue_lock);
    return n;
}

static void *consume(void *arg)
{
    uint64_t *freed = arg;
    static void *batch[QUEUE];
    for (;;) {
        unsigned n = queue_take_all(batch);
        for (unsigned i = 0; i < n; i++) {
            if (batch[i] == NULL) {
                return NULL;
            }
            *freed += tag_free(batch[i]);
        }
    }
}

int main(int argc, char **argv)
{
    unsigned long blocks = workload_arg(argc, argv, 1, 400000);
    uint64_t allocated = 0, freed = 0;
    pthread_t consumer;
    if (pthread_create(&consumer, NULL, consume, &freed) != 0) {
        fprintf(stderr, "%s: cannot start the consumer\n", argv[0]);
        return 1;
    }
    struct rng rng;
    rng_seed(&rng, 1);
    for (unsigned long i = 0; i < blocks; i++) {
        size_t size = rng_range(&rng, TAG_MIN, MAX_SIZE);
        allocated += size;
        queue_put(tag_alloc(size));
    }
    queue_put(NULL);
    pthread_join(consumer, NULL);
    printf("xmalloc: %lu blocks, %llu bytes allocated\n", blocks, (unsigned long long)allocated);
    if (freed != allocated) {
        fprintf(stderr, "%s: %llu bytes freed of %llu allocated\n", argv[0],
                (unsigned long long)freed, (unsigned long long)allocated);
        return 1;
    }
    return 0;
}
