/*
 * sigaction_reenter.c - sigaction called from a signal handler while the
 * thread it interrupted is inside sigaction, as POSIX allows (sigaction is
 * async-signal-safe).  Run under cebox with --out (or --leaks), which keeps
 * the program's actions for the signals that end a process (SIGTERM
 * among them) behind a lock of its own.  The main thread asks for
 * SIGTERM's action in a loop (nearly all of its time inside cebox's
 * sigaction) for argv[1] ms while an interval timer every 50 us makes a
 * handler ask for it too: a handler that lands while the lock is held and
 * waits for it never returns (the script's timeout fails the run).  Not deterministic, but the window is most of the loop
 * and the timer fires thousands of times.  Prints TAP-style lines (box.h);
 * exits 0 when every check passed.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "box.h"

static atomic_int calls, bad;

/* The program's action for SIGTERM, set at the start: what every answer
 * must be.  It ends the run, as the default would (timeout's signal). */
static void on_term(int sig)
{
    (void)sig;
    _exit(3);
}

static bool term_is_mine(void)
{
    struct sigaction old;
    return sigaction(SIGTERM, NULL, &old) == 0 && old.sa_handler == on_term;
}

static void on_alarm(int sig)
{
    (void)sig;
    bad += !term_is_mine();
    calls++;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    double ms = argc > 1 ? atof(argv[1]) : 300;
    setvbuf(stdout, NULL, _IOLBF, 0);
    box_set_handler(SIGTERM, on_term);
    box_set_handler(SIGALRM, on_alarm);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    unsigned long asked = 0, wrong = 0;
    for (double end = now_ms() + ms; now_ms() < end;) {
        for (int i = 0; i < 1000; i++, asked++) {
            wrong += !term_is_mine();
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    CHECK(calls > 100, "the handler ran %d times while the main thread asked %lu times", atomic_load(&calls), asked);
    CHECK(wrong == 0 && bad == 0, "every answer was the program's action (%lu wrong in the loop, %d in the handler)",
          wrong, atomic_load(&bad));
    return box_done();
}
