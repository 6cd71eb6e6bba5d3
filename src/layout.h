/*
 * layout.h - where the preload library's large static tables go.
 *
 * A start writes a few dozen small static variables spread over many
 * files; the linker lays .bss out file by file, so large tables in between
 * (the 1 MB bootstrap arena, caches, the occupancy lists, fault
 * injection's and the fatal signals' state, the queue of re-entered frees)
 * put each small variable on a page of its own, and every start faulted
 * ten of them in.  CEBOX_LARGE_TABLE puts a zero-initialized table in
 * .lbss, which the x86-64 linker places after .bss: the small variables
 * then share a few pages (.bss is 8 KB).  Elsewhere it does nothing.
 *
 * Invariant: only for tables that start all zeros: no initializer, or one
 * of zeros only (PTHREAD_MUTEX_INITIALIZER is, on glibc): .lbss holds no
 * data, and a table with other bytes would not build.
 */
#ifndef CEBOX_LAYOUT_H
#define CEBOX_LAYOUT_H

#if defined(__x86_64__) && defined(__ELF__)
#define CEBOX_LARGE_TABLE __attribute__((section(".lbss")))
#else
#define CEBOX_LARGE_TABLE
#endif


/* The code of a start that leaves the process out of the box (--only):
 * the settings' parse and the name's match, kept with the constructor in
 * .text.startup, at the front of the library's code, so that such a
 * start faults in one 64 KB window of it, not two.  (GNU ld and lld
 * place .text.startup input sections together.) */
#if defined(__ELF__)
#define CEBOX_START_CODE __attribute__((section(".text.startup")))
#else
#define CEBOX_START_CODE
#endif

#endif
