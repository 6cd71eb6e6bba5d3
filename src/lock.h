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
 * spins, bounded (LOCK_SPIN_READS reads, about 330 microseconds),
 * reading the word and trying to take it only when it reads free; only
 * then does it mark the lock contended (2) and sleep.  A thread that takes
 * the lock by spinning takes it as 1 even when others sleep: the holder's
 * release still wakes one of them (the sleeper that finds the lock taken
 * marks it 2 again and sleeps on), so no wake-up is lost.
 *
 * The reads back off: each waits twice as many pause instructions as the
 * one before, up to LOCK_BACKOFF_MAX.  A hand-over between cores is the
 * expensive part of contention: the heap's bookkeeping that the operation
 * touches (bitmaps, trees, the region) moves to the new holder's cache,
 * several times what the operation costs where it is cached.  A waiter
 * that reads the word at every pause takes the lock in the short gap
 * between two operations of the holder, so the heap changes core at
 * nearly every operation; one that reads rarely lets the holder run
 * stretches of operations in its own cache, and takes over now and then.
 * Less fair, more throughput (bench_larson, two threads: see the
 * constants).  Why not combining (a waiter publishes its operation and
 * the holder runs it before releasing): with two threads there is at most
 * one operation to run for the other, so nothing is batched, and handing
 * it over and back moves the lock's and the published record's lines on
 * every operation: measured as above (six runs of each), 1.14 to 3.10 s
 * against 1.03 to 2.40 s for this lock before it backed off.
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

/* Reads of a held lock before sleeping, the pause instructions before the
 * first of them, and the most between two of them: 256 + 512, then 1024
 * ten times, 11 008 pauses in all, about 330 us where this was measured
 * (2 cores of a KVM guest, a pause about 30 ns).  Spinning longer than a
 * sleep costs only when the holder was preempted; sleeping sooner makes
 * every release of the holder a wake-up system call.  bench_larson
 * 1200000 2 on two cores otherwise idle (chrt -f), medians of 8 to 10
 * alternating runs against reading at every pause, 256 reads (1.14 to
 * 1.29 s): backing off to 256 pauses, 16 reads 0.90 s; to 1024 pauses, 16
 * reads 0.81 s, 12 reads 0.77 s; to 256 pauses, 4 reads (sleeping sooner)
 * 2.81 s.  The first read waits 256 pauses, not 1: a thread that has just
 * released the lock and asks again reads at once, at the holder's first
 * gap between two operations, and takes the heap back after a few of
 * them; waiting first leaves the holder a longer stretch.  Medians of 5 to
 * 6 alternating runs, first wait 1 / 64 / 256 / 1024 pauses: ce6 1.42 /
 * 1.29 / 1.26 s, and 1.52 / 1.38 / 1.51 s (first wait 1, 256, 1024) in a
 * noisier batch; ce5 1.90 / 1.76 / 1.88 s. */
#define LOCK_SPIN_READS 12
#define LOCK_FIRST_DELAY 256
#define LOCK_BACKOFF_MAX 1024

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
 * when taken; false after LOCK_SPIN_READS reads, with *seen the last
 * state. */
static inline bool lock_spin(struct lock *l, int *seen)
{
    int delay = LOCK_FIRST_DELAY;
    for (int i = 0; i < LOCK_SPIN_READS; i++) {
        for (int j = 0; j < delay; j++) {
            lock_pause();
        }
        if (delay < LOCK_BACKOFF_MAX) {
            delay *= 2;
        }
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
