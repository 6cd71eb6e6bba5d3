/*
 * ram.h - the device RAM budget that every committed page draws on.
 *
 * Owns: the count of device RAM pages in use by the emulated process.
 * Bookkeeping of cebox itself is never charged (it must not disturb what it
 * measures).  Lock-free: charges and credits are atomic, so the slot and the
 * heaps may call in while holding their own locks.
 */
#ifndef CEBOX_RAM_H
#define CEBOX_RAM_H

#include <stdatomic.h>
#include <stddef.h>

struct ram {
    size_t total_pages;
    atomic_size_t used_pages;
};

void ram_init(struct ram *r, size_t total_pages);

/* Takes `pages` pages; returns 0, or -1 (nothing taken) when fewer remain. */
int ram_charge(struct ram *r, size_t pages);

/* Gives back pages taken by ram_charge. */
void ram_credit(struct ram *r, size_t pages);

size_t ram_free_pages(const struct ram *r);

#endif
