/*
 * unwpipe.h - libunwind's own descriptors, kept where the program does not
 * look.
 *
 * Why: libunwind (1.6) checks that an address is readable by writing one
 * byte of it into a pipe it opens at its first unwind, at the lowest free
 * numbers, and reads it back; when the read fails it closes both numbers
 * and opens a new pipe.  A program that closes every descriptor (close_range)
 * and then opens its own files gets them on those numbers: the next unwind
 * that checks an address consumes a byte of one and writes one into the
 * other.
 *
 * Owns: the slot of libunwind's call to pipe2 (its GOT entry), which is
 * pointed at a pipe2 that moves both ends high (ownfd_move_high).  Only
 * libunwind's calls go there: the program's pipe2 is libc's.
 *
 * Invariants: installed once, before libunwind's first unwind; when the
 * slot cannot be found (another libunwind, a static one, an architecture
 * without the relocation types below) nothing is changed.
 */
#ifndef CEBOX_UNWPIPE_H
#define CEBOX_UNWPIPE_H

#include <stdbool.h>
#include <stdint.h>

/* Points the pipe2 slot of the object that holds `unwinder` (an address in
 * libunwind) at cebox's.  True when a slot was changed.  Not thread-safe:
 * call it once (stack_capture's first call does). */
bool unwpipe_install(uintptr_t unwinder);

#endif
