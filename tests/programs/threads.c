/*
 * threads.c - 4 threads doing 100 000 malloc/free each, checking that no
 * block is handed out twice (each thread writes and re-reads its own
 * pattern) and that every block lies in the slot, aligned as glibc's
 * malloc promises (16 bytes on x86-64, whatever the profile's heap aligns).
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "box.h"

#define THREADS 4
#define OPS 100000
#define LIVE 256

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg, seed = id * 7919u + 1;
    unsigned char *live[LIVE] = {0};
    size_t sizes[LIVE] = {0};
    uintptr_t bad = 0;
    for (int op = 0; op < OPS; op++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % LIVE;
        if (live[k] != NULL) {
            for (size_t i = 0; i < sizes[k]; i += 61) {
                bad += live[k][i] != (unsigned char)(id + k);
            }
            free(live[k]);
            live[k] = NULL;
        } else {
            sizes[k] = 1 + (seed >> 16) % ((seed & 7) == 0 ? 20000 : 300);
            live[k] = malloc(sizes[k]);
            if (live[k] == NULL || !in_box(live[k]) ||
                ((uintptr_t)live[k] & (_Alignof(max_align_t) - 1)) != 0) {
                bad++;
                continue;
            }
            memset(live[k], (int)(id + k), sizes[k]);
        }
    }
    for (int k = 0; k < LIVE; k++) {
        free(live[k]);
    }
    return (void *)bad;
}

int main(void)
{
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
    }
    uintptr_t bad = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (uintptr_t)r;
    }
    CHECK(box_present(), "running inside cebox");
    CHECK(bad == 0,
          "%d threads x %d operations: every block private, intact, aligned and in the slot (%lu bad)",
          THREADS, OPS, (unsigned long)bad);
    return box_done();
}
