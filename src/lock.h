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
 * Contention: a heap operation holds the lock for well under a
 * microsecond, far less than a futex sleep and wake cost (two system calls
 * and two context switches), so a thread that finds the lock held first
 * spins, bounded (LOCK_SPIN reads with a pause instruction between them,
 * a few microseconds), reading the word and trying to take it only when
 * it reads free; only then does it mark the lock contended (2) and sleep.
 * A thread that takes the lock by spinning takes it as 1 even when others
 * sleep: the holder's release still wakes one of them (the sleeper that
 * finds the lock taken marks it 2 again and sleeps on), so no wake-up is
 * lost.  The spin makes a hand-over between two running threads cost a
 * cache-line transfer instead of a sleep.
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

/* Reads of a held lock before sleeping.  Measured on two cores
 * (bench/churn2.c): enough to outlast a heap operation, short enough
 * that a thread whose holder was preempted soon sleeps instead. */
#define LOCK_SPIN 256

static inline void lock_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

static inline bool lock_try(struct lock *l, int *seen)
{
    *seen = 0;
    return atomic_compare_exchange_strong_explicit(&l->state, seen, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Spins while the lock is held, trying it each time it reads free.  True
 * when taken; false after LOCK_SPIN reads, with *seen the last state. */
static inline bool lock_spin(struct lock *l, int *seen)
{
    for (int i = 0; i < LOCK_SPIN; i++) {
        lock_pause();
        if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0 && lock_try(l, seen)) {
            return true;
        }
    }
    *seen = atomic_load_explicit(&l->state, memory_order_relaxed);
    return false;
}

static inline void lock_take(struct lock *l)
{
    int c;
    if (lock_try(l, &c) || lock_spin(l, &c)) {
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
