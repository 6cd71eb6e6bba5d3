/*
 * cebox.h - cebox's own control and inspection API.
 *
 * For programs that link libcebox (pkg-config cebox) and want to look at the
 * emulated CE process they run in: where the slot is, how full it is.  The CE
 * memory API itself (VirtualAlloc, ...) is in <cebox/winmem.h>.
 */
#ifndef CEBOX_H
#define CEBOX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *cebox_version(void);

struct cebox_slot_info {
    uintptr_t base;            /* first byte of the slot (block 0) */
    size_t size;               /* bytes in the slot */
    size_t granularity;        /* bytes per block */
    unsigned blocks;           /* blocks in the slot, block 0 included */
    unsigned free_blocks;      /* blocks not reserved (block 0 excluded) */
    unsigned largest_free_run; /* longest run of free blocks */
    unsigned reserved_blocks, peak_reserved_blocks;
    size_t committed_bytes, peak_committed_bytes; /* slot and Large Memory Area */
};

/* Fills *out with the current state of the slot. */
void cebox_slot_info(struct cebox_slot_info *out);

/* Writes one character per block of the slot into buf (at most len) and
 * returns the number written: '-' block 0, '.' free, 'R' reserved,
 * 'C' with committed pages, 'H' heap region, 'L' large heap item. */
size_t cebox_slot_map(char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
