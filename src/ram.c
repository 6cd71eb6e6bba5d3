/*
 * ram.c - device RAM budget (see ram.h).
 */
#include "ram.h"

void ram_init(struct ram *r, size_t total_pages)
{
    r->total_pages = total_pages;
    atomic_init(&r->used_pages, 0);
}

int ram_charge(struct ram *r, size_t pages)
{
    size_t used = atomic_load_explicit(&r->used_pages, memory_order_relaxed);
    do {
        if (pages > r->total_pages - used) {
            return -1;
        }
    } while (!atomic_compare_exchange_weak_explicit(&r->used_pages, &used, used + pages,
                                                    memory_order_relaxed, memory_order_relaxed));
    return 0;
}

void ram_credit(struct ram *r, size_t pages)
{
    atomic_fetch_sub_explicit(&r->used_pages, pages, memory_order_relaxed);
}

size_t ram_free_pages(const struct ram *r)
{
    return r->total_pages - atomic_load_explicit(&r->used_pages, memory_order_relaxed);
}
