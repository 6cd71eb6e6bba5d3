/*
 * bench_mstress.c - alloc/free bursts mixing small items and blocks of
 * several 64 KB, in the spirit of mimalloc-bench's mstress: the heap
 * grows, shrinks and grows again, so an allocator that gives memory back
 * (decommits) has to take it again (recommit) at every burst.
 *
 * BURSTS times: every empty slot of an array of SLOTS gets a new tagged
 * block, each of its pages written; then each block is freed with
 * probability 7/8 (the rest live on into the next burst, so the heap is
 * never quite empty and holes form between survivors).  Sizes are
 * log-uniform from 16 bytes to 256 KB - 1 (four 64 KB blocks): as many
 * items of 16-31 bytes as of 128-256 KB.  The peak live size stays near
 * 5.6 MB (7 MB of the slot under cebox), well inside a 32 MB slot.
 *
 * Deterministic: one seeded generator; prints the bytes allocated; exits 1
 * on a damaged block or a failed allocation.
 *
 * Usage: bench_mstress [BURSTS]   (default 200)
 */
#include "workload.h"

#define SLOTS 128
#define MIN_SHIFT 4
#define MAX_SHIFT 17 /* sizes below 1 << (MAX_SHIFT + 1) */
#define PAGE 4096

static size_t log_uniform_size(struct rng *rng)
{
    unsigned shift = (unsigned)rng_range(rng, MIN_SHIFT, MAX_SHIFT);
    return rng_range(rng, (size_t)1 << shift, ((size_t)2 << shift) - 1);
}

/* Writes one byte in each page of the block, so every page is committed. */
static void touch_pages(unsigned char *p, size_t size)
{
    for (size_t off = PAGE; off + 1 < size; off += PAGE) {
        p[off] = (unsigned char)off;
    }
}

int main(int argc, char **argv)
{
    unsigned long bursts = workload_arg(argc, argv, 1, 200);
    static void *slot[SLOTS];
    uint64_t allocated = 0;
    struct rng rng;
    rng_seed(&rng, 1);
    for (unsigned long b = 0; b < bursts; b++) {
        for (unsigned i = 0; i < SLOTS; i++) {
            if (slot[i] == NULL) {
                size_t size = log_uniform_size(&rng);
                allocated += size;
                slot[i] = tag_alloc(size);
                touch_pages(slot[i], size);
            }
        }
        for (unsigned i = 0; i < SLOTS; i++) {
            if (rng_range(&rng, 0, 7) != 0) {
                tag_free(slot[i]);
                slot[i] = NULL;
            }
        }
    }
    for (unsigned i = 0; i < SLOTS; i++) {
        if (slot[i] != NULL) {
            tag_free(slot[i]);
        }
    }
    printf("mstress: %lu bursts of %d slots, %llu bytes allocated\n", bursts, SLOTS,
           (unsigned long long)allocated);
    return 0;
}
