/*
 * meta.c - cebox's bookkeeping allocator (see meta.h for the contract).
 *
 * Every block is a private anonymous mapping of its own, rounded up to the
 * page: the structures it serves are few and large (tables sized by the slot
 * or a heap region), so a mapping each costs little and keeps the
 * allocator free of locks, which matters because it runs inside malloc, in
 * signal handlers and across fork.  The first blocks of a process are cut
 * from one mapping instead (the start's: see start_cut_block), each still
 * its own pages.  A grow within the block's pages is made
 * in place; a bigger one maps the new block, copies and unmaps the old.
 */
#include "meta.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "os.h"

static atomic_ulong fail_countdown; /* 0: off; 1: the next allocation fails */
static atomic_size_t in_use;

static size_t page_round(size_t n)
{
    size_t page = os_page_size();
    return n > SIZE_MAX - (page - 1) ? 0 : (n + page - 1) & ~(page - 1);
}

/* The test switch: true when this allocation is the one chosen to fail. */
static int injected_failure(void)
{
    unsigned long left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (left != 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &left, left - 1)) {
            return left == 1;
        }
    }
    return 0;
}

/* The start's blocks.  A process's first blocks (at a ce6 start the
 * slot's tables, the process heap's and two of a page: some 3 MB in four
 * requests) are cut, one after the other, from one mapping made at the
 * first request: one mmap at each start, not four.  Its pages are faulted
 * in only as used, like any block's, and a block cut from it is its own
 * whole pages there: freed, shrunk or grown in place as any block is, its
 * pages unmapped, and never cut again (the cursor only moves on), so every
 * block is zero-filled still.  A request past its end is mapped on its own;
 * its unused end is address space only, never touched. */
#define START_BYTES ((size_t)4 << 20)
static _Atomic uintptr_t start_base;
static atomic_size_t start_cut; /* bytes of it handed out */

static uintptr_t start_region(void)
{
    uintptr_t base = atomic_load_explicit(&start_base, memory_order_acquire);
    if (base == 0) {
        uintptr_t fresh = (uintptr_t)os_map_private(START_BYTES);
        if (fresh == 0) {
            return 0;
        }
        if (atomic_compare_exchange_strong(&start_base, &base, fresh)) {
            return fresh;
        }
        os_release((void *)fresh, START_BYTES); /* another thread's came first: base is it */
    }
    return base;
}

/* `bytes` (page-rounded) from the start's mapping, or NULL when it has no
 * room left for them (or cannot be made). */
static void *start_cut_block(size_t bytes)
{
    size_t cut = atomic_load_explicit(&start_cut, memory_order_relaxed);
    do {
        if (bytes > START_BYTES - cut) {
            return NULL;
        }
    } while (!atomic_compare_exchange_weak(&start_cut, &cut, cut + bytes));
    uintptr_t base = start_region();
    return base != 0 ? (void *)(base + cut) : NULL; /* a failed map loses its cut: only space */
}

void *meta_alloc(size_t size)
{
    size_t bytes = page_round(size);
    if (bytes == 0 || injected_failure()) {
        return NULL;
    }
    void *p = start_cut_block(bytes);
    if (p == NULL) {
        p = os_map_private(bytes);
    }
    if (p != NULL) {
        atomic_fetch_add_explicit(&in_use, bytes, memory_order_relaxed);
    }
    return p;
}

void meta_free(void *p, size_t size)
{
    if (p == NULL) {
        return;
    }
    size_t bytes = page_round(size);
    os_release(p, bytes);
    atomic_fetch_sub_explicit(&in_use, bytes, memory_order_relaxed);
}

/* A grow that stays inside the pages the block already has is done in
 * place (and a shrink in place too): the bookkeeping tables grow a few
 * entries at a time, and most of their grows need no new mapping.  It
 * still counts as an allocation for the test switch, so that a sweep fails
 * every grow, whatever its size. */
void *meta_grow(void *p, size_t old_size, size_t new_size)
{
    if (p == NULL) {
        return meta_alloc(new_size);
    }
    size_t have = page_round(old_size), need = page_round(new_size);
    if (need != 0 && need <= have) {
        if (injected_failure()) {
            return NULL;
        }
        if (new_size > old_size) {
            memset((char *)p + old_size, 0, new_size - old_size);
        } else if (need < have) {
            /* A shrink gives its whole tail pages back, so that meta_free
             * with the new size releases all that is left. */
            os_release((char *)p + need, have - need);
            atomic_fetch_sub_explicit(&in_use, have - need, memory_order_relaxed);
        }
        return p;
    }
    void *fresh = meta_alloc(new_size);
    if (fresh == NULL) {
        return NULL;
    }
    memcpy(fresh, p, old_size < new_size ? old_size : new_size);
    meta_free(p, old_size);
    return fresh;
}

void meta_fail_after(unsigned long n)
{
    atomic_store(&fail_countdown, n);
}

size_t meta_bytes_in_use(void)
{
    return atomic_load_explicit(&in_use, memory_order_relaxed);
}
