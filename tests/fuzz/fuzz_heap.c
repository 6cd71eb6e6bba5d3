/*
 * fuzz_heap.c - fuzz target: the CE heaps (ce3, ce5, ce6) through the
 * Win32 heap API, with bookkeeping failures injected between operations.
 *
 * Input: byte 0 chooses the profile (modulo 3: ce3, ce5, ce6), byte 1 the
 * heap (even: growable; odd: fixed, of 64 KB times the byte's upper bits);
 * then operations of 3 bytes: the op (low 3 bits), a block index and a
 * size byte.  Sizes are spread over 8 bytes to a few hundred KB, so small
 * items, region-sized ones and large items (each heap's own reservations)
 * all come up.  Ops: allocate, free, resize (moving, or in place only),
 * ask the size, and make the next allocation of cebox's bookkeeping fail
 * (meta_fail_after) for the op after it.
 *
 * Checked, besides no crash and no sanitizer report: the heap validates
 * after every op; a block's bytes survive every resize and every failed
 * op (each block is filled with its own byte); HeapSize covers what was
 * asked; a failure leaves the block as it was; after freeing everything
 * and destroying the heap, cebox's bookkeeping and the device's free RAM
 * (the process heap's committed pages aside) are what they were before
 * the heap was made.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "cebox/winmem.h"
#include "core.h"
#include "meta.h"

#define BLOCKS 16

static const char *const profiles[] = {"ce3", "ce5", "ce6"};

struct block {
    unsigned char *p;
    size_t n;
    unsigned char fill;
};

static struct block blocks[BLOCKS];

static size_t size_of(uint8_t b)
{
    /* 3 bits of scale, 5 of mantissa: 1..31 << 0..14 bytes, up to ~500 KB */
    size_t m = (b & 31u) + 1;
    return m << (b >> 5) * 2;
}

static void check_block(const struct block *k)
{
    for (size_t i = 0; i < k->n; i++) {
        FUZZ_CHECK(k->p[i] == k->fill);
    }
}

static void set_block(struct block *k, unsigned char *p, size_t n, unsigned char fill)
{
    k->p = p;
    k->n = n;
    k->fill = fill;
    memset(p, fill, n);
}

static void free_block(HANDLE h, struct block *k)
{
    if (k->p != NULL) {
        check_block(k);
        FUZZ_CHECK(HeapFree(h, 0, k->p));
        k->p = NULL;
    }
}

static void alloc_block(HANDLE h, struct block *k, size_t n, unsigned char fill)
{
    unsigned char *p = HeapAlloc(h, 0, n);
    if (p != NULL) {
        FUZZ_CHECK(HeapSize(h, 0, p) >= n);
        set_block(k, p, n, fill);
    }
}

/* in_place: HEAP_REALLOC_IN_PLACE_ONLY. */
static void resize_block(HANDLE h, struct block *k, size_t n, bool in_place)
{
    unsigned char *p = HeapReAlloc(h, in_place ? HEAP_REALLOC_IN_PLACE_ONLY : 0, k->p, n);
    if (p == NULL) {
        check_block(k); /* a failure leaves it as it was */
        return;
    }
    FUZZ_CHECK(!in_place || p == k->p);
    FUZZ_CHECK(HeapSize(h, 0, p) >= n);
    k->p = p;
    k->n = n < k->n ? n : k->n;
    check_block(k);
    set_block(k, p, n, k->fill);
}

/* One operation on block k of heap h: 0, 1 allocate (or free, when the
 * block is in use), 2 free, 3 resize, 4 resize in place, 5 ask its size. */
static void run_op(HANDLE h, uint8_t op, struct block *k, size_t n, unsigned char fill)
{
    if (op <= 1 && k->p == NULL) {
        alloc_block(h, k, n, fill);
    } else if (op <= 2) {
        free_block(h, k);
    } else if (op <= 4 && k->p != NULL) {
        resize_block(h, k, n, op == 4);
    } else if (op == 5 && k->p != NULL) {
        FUZZ_CHECK(HeapSize(h, 0, k->p) >= k->n);
    }
}

/* Free RAM plus the process heap's committed pages: ce6 keeps CE's own
 * records (a large item's, a fixed heap's structure) in the process heap,
 * which may keep the pages it committed for them. */
static size_t unheld_ram(void)
{
    MEMORYSTATUS ms;
    GlobalMemoryStatus(&ms);
    struct heap *ph = core_process_heap(core_get());
    struct heap_stats st;
    ph->ops->stats(ph, &st);
    return ms.dwAvailPhys + st.committed_bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    char err[OPTIONS_ERR_MAX];
    setenv("CEBOX_PROFILE", profiles[data[0] % 3], 1);
    setenv("CEBOX_RAM", "16M", 1);
    FUZZ_CHECK(core_reset(err) == 0);
    /* The process heap is made at the first heap call, and its pool of
     * large-item records (ce5, ce6) at its first large item: both stay.
     * (ce6 puts a fixed heap's structure there, a large item from a
     * maximum of 2 MB.) */
    HANDLE ph = GetProcessHeap();
    FUZZ_CHECK(ph != NULL);
    FUZZ_CHECK(HeapFree(ph, 0, HeapAlloc(ph, 0, 200000)));
    size_t meta_before = meta_bytes_in_use(), ram_before = unheld_ram();
    HANDLE h = data[1] % 2 == 0 ? HeapCreate(0, 0, 0) : HeapCreate(0, 0, (size_t)(data[1] >> 1) * 0x10000 + 0x10000);
    FUZZ_CHECK(h != NULL);
    memset(blocks, 0, sizeof blocks);
    for (size_t i = 2; i + 3 <= size; i += 3) {
        uint8_t op = data[i] & 7u;
        struct block *k = &blocks[data[i + 1] % BLOCKS];
        if (op >= 6) {
            meta_fail_after(1 + (data[i + 2] & 3u)); /* the next op meets it */
            continue;
        }
        run_op(h, op, k, size_of(data[i + 2]), (unsigned char)(data[i + 1] | 1u));
        meta_fail_after(0);
        FUZZ_CHECK(HeapValidate(h, 0, NULL));
    }
    meta_fail_after(0);
    for (size_t i = 0; i < BLOCKS; i++) {
        free_block(h, &blocks[i]);
    }
    FUZZ_CHECK(HeapDestroy(h));
    FUZZ_CHECK(meta_bytes_in_use() == meta_before);
    FUZZ_CHECK(unheld_ram() == ram_before);
    return 0;
}
