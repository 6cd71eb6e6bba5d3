/*
 * bench_slotgrow.c - a program that grows its slot, for the cost of the
 * pinning view at the slot's least free run (--leaks --out): N blocks of
 * 16 to 271 bytes, after every third one a block chosen at random freed,
 * then every block freed.  Its slot's largest free run falls all along
 * the first phase and stays there during the second, so the walks of
 * that view meet a large live set.
 *
 * Usage: bench_slotgrow [N]   (default 120000: about 14 MB live at the peak)
 * Deterministic (xorshift, a fixed seed).  Not part of cebox: a benchmark
 * program, using libc's malloc freely.
 */
#include <stdint.h>
#include <stdlib.h>

static uint32_t next_random(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 120000;
    uint32_t seed = 2463534242u;
    void **blocks = calloc(n > 0 ? (size_t)n : 1, sizeof *blocks);
    if (blocks == NULL) {
        return 1;
    }
    for (int i = 0; i < n; i++) {
        blocks[i] = malloc(16 + next_random(&seed) % 256);
        if (i % 3 == 2) {
            int k = (int)(next_random(&seed) % (uint32_t)(i + 1));
            free(blocks[k]);
            blocks[k] = NULL;
        }
    }
    for (int i = 0; i < n; i++) {
        free(blocks[i]);
    }
    free(blocks);
    return 0;
}
