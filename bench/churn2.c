/*
 * churn2.c - a larson-style churn of two (or more) threads, to measure how
 * an allocator's lock hands over under contention.
 *
 * Each thread owns half of a shared array of block pointers and, for
 * ROUNDS rounds, picks a random index anywhere in the array, frees the
 * block there (often one another thread allocated: a cross-thread free)
 * and puts a new block of a random size (16 to 512 bytes) in its place.
 * The array is shared, so each swap is one atomic exchange: a block is
 * freed by exactly one thread.  Every block starts with its size, checked
 * before it is freed, so an allocator that hands out overlapping memory
 * makes the run fail (exit 1) instead of producing a timing.
 *
 * Deterministic per thread (xorshift, a fixed seed each), so the sizes do
 * not depend on the allocator; the interleaving does, of course.
 *
 * Usage: churn2 [THREADS [ROUNDS]]   (defaults 2 and 2000000)
 * Not part of cebox: a benchmark program, using libc's malloc freely.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096
#define MIN_SIZE 16
#define MAX_SIZE 512

static _Atomic(uintptr_t) slots[SLOTS];
static unsigned long rounds = 2000000;
static atomic_int damaged;

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static uintptr_t new_block(uint64_t *rng)
{
    size_t size = MIN_SIZE + next_random(rng) % (MAX_SIZE - MIN_SIZE + 1);
    size_t *p = malloc(size);
    if (p == NULL) {
        atomic_store(&damaged, 1);
        return 0;
    }
    p[0] = size;
    ((unsigned char *)p)[size - 1] = (unsigned char)size;
    return (uintptr_t)p;
}

static void free_block(uintptr_t b)
{
    if (b == 0) {
        return;
    }
    size_t *p = (size_t *)b;
    size_t size = p[0];
    if (size < MIN_SIZE || size > MAX_SIZE || ((unsigned char *)p)[size - 1] != (unsigned char)size) {
        atomic_store(&damaged, 1);
    }
    free(p);
}

static void *churn(void *arg)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
    for (unsigned long i = 0; i < rounds; i++) {
        size_t at = next_random(&rng) % SLOTS;
        free_block(atomic_exchange(&slots[at], new_block(&rng)));
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long nthreads = argc > 1 ? strtoul(argv[1], NULL, 10) : 2;
    if (argc > 2) {
        rounds = strtoul(argv[2], NULL, 10);
    }
    if (nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "churn2: 1 to 64 threads\n");
        return 2;
    }
    uint64_t rng = 1;
    for (size_t i = 0; i < SLOTS; i++) {
        atomic_store(&slots[i], new_block(&rng));
    }
    pthread_t t[64];
    for (unsigned long i = 0; i < nthreads; i++) {
        if (pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "churn2: pthread_create failed\n");
            return 2;
        }
    }
    for (unsigned long i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
    }
    for (size_t i = 0; i < SLOTS; i++) {
        free_block(atomic_exchange(&slots[i], 0));
    }
    if (atomic_load(&damaged)) {
        fprintf(stderr, "churn2: a block was damaged or not allocated\n");
        return 1;
    }
    printf("churn2: %lu threads x %lu rounds\n", nthreads, rounds);
    return 0;
}
