/*
 * unwind.h - the fast unwinder of stack_capture: return addresses from the
 * .eh_frame rules of cfi.c, with each thread's last stacks as a cache.
 *
 * Owns: a table of rules by address shared by all threads, and per thread
 * the frames of its last four captures, a small table of rules and the
 * range of its stack found readable (one 16 KB meta.c block, given back
 * when the thread ends).  All of it is meta.c memory; nothing here calls malloc.
 *
 * Exactness: it finds the frames libunwind finds, or gives up (-1) and
 * the caller asks libunwind: on a frame it has no simple rule for (a
 * signal frame, a DWARF expression, code without an FDE), a frame that
 * would read outside the stack range checked readable, a capture amid
 * another on the same thread (a signal handler's), or no memory.
 *
 * Locking: none of cebox's; async-signal-safe in the sense above (a
 * nested capture gives up).  A rule not yet known is read with
 * dl_iterate_phdr (the loader's lock), as libunwind does.
 */
#ifndef CEBOX_UNWIND_H
#define CEBOX_UNWIND_H

/* At most `max` return addresses of the calling thread, innermost first,
 * as unw_backtrace gives them when called in place of this function:
 * raw[0] is in the caller.  Returns the count, or -1 (nothing usable in
 * raw: ask libunwind). */
int unwind_fast(void **raw, int max);

/* How many frames the calling thread's captures have not found in one of
 * its copies at their place (stepped fresh, or shifted from another depth)
 * since its first: what tests of the cache look at. */
unsigned long unwind_frames_unmet(void);

#endif
