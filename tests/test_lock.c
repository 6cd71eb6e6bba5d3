/*
 * test_lock.c - the heap lock (src/lock.h) under contention: several
 * threads increment one plain counter under the lock, so the final count
 * is exact only if every increment ran alone.  Some holders yield the CPU
 * while holding it, so waiters exhaust their spin and sleep on the futex,
 * and the hand-over from a sleeping waiter is tested too; others work
 * outside the lock between two holds, so that waiters often find it free
 * and take it from their (backed-off) spin, racing each other.  Also
 * core_run_once (core.h), the once without a futex wake: under a race its
 * function runs once, and no caller returns before it has finished.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "core.h"
#include "lock.h"

#define THREADS 4
#define ROUNDS 200000
#define YIELD_EVERY 997 /* a holder yields now and then: waiters sleep */

static struct lock lock;
static volatile unsigned long counter;

#define HOLD_STEPS 64 /* a hold long enough that a race is seen at once */

/* A read, a pause and a write: two operations that overlap lose a count. */
static void add_one_slowly(unsigned long i)
{
    unsigned long v = counter;
    for (volatile int k = 0; k < HOLD_STEPS; k++) {
    }
    if (i % YIELD_EVERY == 0) {
        sched_yield();
    }
    counter = v + 1;
}

/* ROUNDS holds of the lock.  With gaps, work outside the lock for a
 * varying while between two holds: the lock is then often free when a
 * spinning waiter reads it, so waiters take it by spinning (the backed-off
 * reads of lock_spin), racing each other and the returning holders. */
static void take_rounds(bool gaps)
{
    for (unsigned long i = 0; i < ROUNDS; i++) {
        lock_take(&lock);
        add_one_slowly(i);
        lock_give(&lock);
        unsigned long gap = gaps ? (i * 7919) % (4 * HOLD_STEPS) : 0;
        for (volatile unsigned long k = 0; k < gap; k++) {
        }
    }
}

static void *worker_take(void *arg)
{
    (void)arg;
    take_rounds(false);
    return NULL;
}

static void *worker_take_with_gaps(void *arg)
{
    (void)arg;
    take_rounds(true);
    return NULL;
}

static void *worker_enter(void *arg)
{
    (void)arg;
    for (unsigned long i = 0; i < ROUNDS; i++) {
        lock_enter(&lock);
        add_one_slowly(i);
        lock_leave(&lock);
    }
    return NULL;
}

static void run_threads(void *(*fn)(void *))
{
    pthread_t t[THREADS];
    counter = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, fn, NULL), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    assert_int_equal(counter, (unsigned long)THREADS * ROUNDS);
    /* Released after the last hand-over, with no waiter marked. */
    assert_int_equal(atomic_load(&lock.state), 0);
}

static void test_take_and_give_count_exactly(void **state)
{
    (void)state;
    run_threads(worker_take);
}

static void test_spinning_waiters_count_exactly(void **state)
{
    (void)state;
    run_threads(worker_take_with_gaps);
}

static void test_enter_and_leave_count_exactly(void **state)
{
    (void)state;
    /* Threads exist by now (the tests above made them), so the
     * single-threaded skip is off and enter/leave lock. */
    assert_true(lock_needed());
    run_threads(worker_enter);
}

static atomic_int entered;

static void *take_once(void *arg)
{
    (void)arg;
    lock_take(&lock);
    atomic_store(&entered, 1);
    lock_give(&lock);
    return NULL;
}

/* A waiter that spun out and sleeps (the lock reads 2, contended) does not
 * get in while the lock is held, and is woken by the release. */
static void test_a_sleeping_waiter_is_woken(void **state)
{
    (void)state;
    pthread_t t;
    lock_take(&lock);
    atomic_store(&entered, 0);
    assert_int_equal(pthread_create(&t, NULL, take_once, NULL), 0);
    for (int i = 0; i < 10000 && atomic_load(&lock.state) != 2; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    assert_int_equal(atomic_load(&lock.state), 2);
    assert_int_equal(atomic_load(&entered), 0);
    lock_give(&lock);
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 10;
    assert_int_equal(pthread_timedjoin_np(t, NULL, &limit), 0); /* a lost wake-up fails here */
    assert_int_equal(atomic_load(&entered), 1);
    assert_int_equal(atomic_load(&lock.state), 0);
}

static _Atomic int once_state = CORE_ONCE_NOT_YET;
static atomic_int once_runs, once_finished, early_returns;

/* Slow enough that the other threads come while it runs. */
static void slow_once(void)
{
    atomic_fetch_add(&once_runs, 1);
    struct timespec ms = {0, 20000000};
    nanosleep(&ms, NULL);
    atomic_store(&once_finished, 1);
}

static void *race_once(void *arg)
{
    (void)arg;
    core_run_once(&once_state, slow_once);
    if (atomic_load(&once_finished) == 0) {
        atomic_fetch_add(&early_returns, 1);
    }
    return NULL;
}

static void test_run_once_runs_once_and_waits(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, race_once, NULL), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    core_run_once(&once_state, slow_once); /* done: returns at once */
    assert_int_equal(atomic_load(&once_runs), 1);
    assert_int_equal(atomic_load(&early_returns), 0);
    assert_int_equal(atomic_load(&once_state), CORE_ONCE_DONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_sleeping_waiter_is_woken),
        cmocka_unit_test(test_take_and_give_count_exactly),
        cmocka_unit_test(test_spinning_waiters_count_exactly),
        cmocka_unit_test(test_enter_and_leave_count_exactly),
        cmocka_unit_test(test_run_once_runs_once_and_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
