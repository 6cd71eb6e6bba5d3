/*
 * fragment.c - fragments the slot on purpose: `fragment ROUNDS BIG [MS]`.
 * Round i maps a short-lived buffer of 2 + i blocks (64 KB each), unmaps
 * it, and maps a small long-lived one (one block, MAP_FIXED) right after
 * where it was: each large buffer is one block larger than the hole the
 * last one left, so it goes past every hole (first fit), and the slot's free space stays high (only
 * the small ones stay) while its largest free run falls round after
 * round.  It sleeps MS milliseconds (default 30) between rounds, so that
 * the timeline sees each one, then asks for BIG blocks in one mmap, then
 * unmaps the small ones (the slot is whole again) and sleeps once more.
 * Prints "big: ok" or "big: failed"; exits 0 when every round's mappings
 * succeeded, 1 otherwise.  `fragment ROUNDS BIG MS FAILS` first makes FAILS
 * mmap requests larger than any slot (each fails and is logged), to fill
 * a log up to --log-limit before the rounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define BLOCK (64 * 1024)

static void *map_blocks(void *at, size_t n)
{
    int fixed = at != NULL ? MAP_FIXED : 0;
    void *p = mmap(at, n * BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | fixed, -1, 0);
    if (p != MAP_FAILED) {
        ((volatile char *)p)[0] = 1; /* one committed page each */
    }
    return p;
}

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

#define MAX_ROUNDS 64

int main(int argc, char **argv)
{
    char *smalls[MAX_ROUNDS];
    int rounds = argc > 1 ? atoi(argv[1]) : 8;
    rounds = rounds < MAX_ROUNDS ? rounds : MAX_ROUNDS;
    size_t big = argc > 2 ? (size_t)atoi(argv[2]) : 20;
    long ms = argc > 3 ? atol(argv[3]) : 30;
    for (int i = argc > 4 ? atoi(argv[4]) : 0; i > 0; i--) {
        if (mmap(NULL, (size_t)1 << 31, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
            printf("a 2 GB mapping did not fail\n");
            return 1;
        }
    }
    for (int i = 0; i < rounds; i++) {
        size_t n = 2 + (size_t)i;
        char *large = map_blocks(NULL, n + 1);
        if (large == MAP_FAILED) {
            printf("round %d: mapping failed\n", i);
            return 1;
        }
        munmap(large, (n + 1) * BLOCK);
        smalls[i] = map_blocks(large + n * BLOCK, 1);
        if (smalls[i] == MAP_FAILED) {
            printf("round %d: small mapping failed\n", i);
            return 1;
        }
        pause_ms(ms);
    }
    void *p = map_blocks(NULL, big);
    printf("big: %s\n", p == MAP_FAILED ? "failed" : "ok");
    fflush(stdout);
    for (int i = 0; i < rounds; i++) {
        munmap(smalls[i], BLOCK);
    }
    pause_ms(ms);
    return 0;
}
