/*
 * oomutil.h - what the out-of-memory sweeps share (test_oom_sweep.c,
 * oom_preload.c).
 */
#ifndef CEBOX_OOMUTIL_H
#define CEBOX_OOMUTIL_H

#include <stdbool.h>

#include "meta.h"

/* After an operation run under meta_fail_after(n): true when its n-th
 * bookkeeping allocation happened (and failed) inside it; false when it
 * made fewer, and then one of these probes takes the failure instead.  A
 * sweep ends at the first n the operation does not reach.  Turns the
 * switch off either way. */
static inline bool failure_landed(unsigned long n)
{
    bool landed = true;
    for (unsigned long i = 0; i < n && landed; i++) {
        void *p = meta_alloc(1);
        landed = p != NULL;
        meta_free(p, 1);
    }
    meta_fail_after(0);
    return landed;
}

#endif
