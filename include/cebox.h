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

/* ---- device RAM and the CE memory states ----
 *
 * Under `cebox run` the device is shared by every process of the run;
 * otherwise it is private to this process (size: CEBOX_RAM). */

enum cebox_memory_state {
    CEBOX_STATE_NORMAL,
    CEBOX_STATE_LIMITED,  /* hibernate notices go out */
    CEBOX_STATE_LOW,      /* commits over 16 KB that cross the threshold fail */
    CEBOX_STATE_CRITICAL, /* commits over 8 KB that cross the threshold fail */
};

/* The state the device's free RAM gives (or the forced one). */
int cebox_memory_state(void);

/* Free and total device RAM in bytes (free RAM is pinned while a state is
 * forced). */
size_t cebox_free_ram(void);
size_t cebox_total_ram(void);

/* Forces the device into a state (free RAM pinned just inside it, or with
 * CEBOX_STATE_BY=ballast RAM taken as by another process), for every
 * process of the run; CEBOX_STATE_NORMAL hands it back to free RAM.
 * Returns 0, or -1 for an unknown state or one the table has not
 * (CEBOX_STATE_LIMITED under the ce5 table). */
int cebox_force_state(int state);

/* Registers fn(ctx) to run when this process gets a hibernate notice (the
 * emulation of WM_HIBERNATE): free what you can.  It runs on a thread of
 * cebox's (started by the first registration), within 20 ms of the notice,
 * outside any cebox lock: it may free and allocate, and must lock what it
 * shares with the program's other threads.  At most 8 callbacks; returns 0,
 * or -1 when the table is full or fn is NULL.  A program that may run
 * without cebox can declare this function weak and call it only when it is
 * there. */
typedef void (*cebox_hibernate_fn)(void *ctx);
int cebox_on_hibernate(cebox_hibernate_fn fn, void *ctx);

/* MEM_AUTO_COMMIT (CE: reserved pages committed read/write when first
 * touched; with no RAM left the access faults).  It needs a SIGSEGV
 * handler, so cebox installs one only when the program asks: enable
 * installs it (chaining to the action it displaces for every other fault)
 * and lets VirtualAlloc accept the flag; 0 puts the program's action back
 * and refuses the flag again (ERROR_NOT_SUPPORTED), existing reservations
 * then faulting on an untouched page.  A program that installs its own
 * SIGSEGV action afterwards takes the faults over until it enables this
 * again (which then displaces that one).  Returns 0, or -1 when
 * the handler cannot be installed.  Pages committed so are charged to RAM
 * like any other. */
int cebox_auto_commit(int enable);

#ifdef __cplusplus
}
#endif

#endif
