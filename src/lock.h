/*
 * lock.h - the lock that serializes a heap: a futex mutex in one int.
 *
 * Owns nothing; each heap owns its lock.
 *
 * Why not pthread_mutex_t: every malloc and free takes a heap lock, and
 * glibc's mutex (type checks, owner and counter bookkeeping) cost about 50
 * instructions per lock/unlock pair where this costs two atomic operations
 * when there is no contention.  States (Drepper, "Futexes are tricky",
 * mutex 3): 0 free, 1 held, 2 held with (possible) waiters.  Not
 * recursive and not robust: a heap lock is never held across a call out of
 * cebox, and the preload's re-entry guard keeps a signal handler from
 * taking it twice.  Zero-initialised memory is an unlocked lock.
 *
 * lock_enter/lock_leave, the pair on every heap operation, do not even
 * that while the process has only ever had one thread (glibc's
 * __libc_single_threaded, on which glibc's own malloc relies the same way):
 * nothing can race then, and no heap operation creates a thread, so both
 * ends of a pair see the same answer.  The fork handlers use lock_take and
 * lock_give, which always lock: a fork child may see the flag change.
 */
#ifndef CEBOX_LOCK_H
#define CEBOX_LOCK_H

#include "config.h"

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#ifdef HAVE_SYS_SINGLE_THREADED_H
#include <sys/single_threaded.h>
#endif

#include "os.h"

struct lock {
    atomic_int state;
};

/* The raw call (os.h): a wait or wake under contention never changes the
 * program's errno. */
static inline void lock_futex(struct lock *l, int op, int val)
{
    (void)os_futex(&l->state, op | FUTEX_PRIVATE_FLAG, val);
}

static inline void lock_take(struct lock *l)
{
    int c = 0;
    if (atomic_compare_exchange_strong_explicit(&l->state, &c, 1, memory_order_acquire,
                                                memory_order_relaxed)) {
        return;
    }
    if (c != 2) {
        c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
    }
    while (c != 0) {
        lock_futex(l, FUTEX_WAIT, 2);
        c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
    }
}

static inline void lock_give(struct lock *l)
{
    if (atomic_fetch_sub_explicit(&l->state, 1, memory_order_release) != 1) {
        atomic_store_explicit(&l->state, 0, memory_order_release);
        lock_futex(l, FUTEX_WAKE, 1);
    }
}

static inline bool lock_needed(void)
{
#ifdef HAVE_SYS_SINGLE_THREADED_H
    return !__libc_single_threaded;
#else
    return true;
#endif
}

static inline void lock_enter(struct lock *l)
{
    if (lock_needed()) {
        lock_take(l);
    }
}

static inline void lock_leave(struct lock *l)
{
    if (lock_needed()) {
        lock_give(l);
    }
}

#endif
