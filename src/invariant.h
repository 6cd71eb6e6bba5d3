/*
 * invariant.h - assertions at cebox's invariants.
 *
 * INVARIANT(cond, what) checks, in every build, a property that the code
 * relies on and that prose alone used to state (the heap lock is held, a
 * committed page is charged to RAM, the device's used pages are the sum of
 * its members').  A broken invariant means cebox itself is wrong, and going
 * on would corrupt the program's memory, so it prints one line naming the
 * file, the line and `what` on stderr and aborts.  It allocates nothing and
 * calls nothing interposed: it may run inside malloc or a signal handler.
 *
 * DEBUG_INVARIANT(cond, what) is the same check, compiled only with
 * `./configure --enable-debug` (CEBOX_DEBUG): for checks that cost more
 * than a comparison on a hot path.
 */
#ifndef CEBOX_INVARIANT_H
#define CEBOX_INVARIANT_H

#include "config.h"

/* Prints "cebox: internal error at FILE:LINE: WHAT" and aborts.  Never returns. */
_Noreturn void invariant_failed(const char *file, int line, const char *what);

#define INVARIANT(cond, what)                                                                      \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0)) {                                                        \
            invariant_failed(__FILE__, __LINE__, (what));                                          \
        }                                                                                          \
    } while (0)

#ifdef CEBOX_DEBUG
#define DEBUG_INVARIANT(cond, what) INVARIANT(cond, what)
#else
#define DEBUG_INVARIANT(cond, what) ((void)0)
#endif

#endif
