/*
 * reenter_winapi.c - a signal handler that allocates while the thread it
 * interrupted is inside the Win32-named API of libcebox, to which this
 * program is linked, run under cebox as well (two copies of the core: the
 * library's and the preload library's, members of the same RAM session).
 * The main thread reserves, commits and releases with VirtualAlloc and
 * VirtualFree, and allocates and frees on the process heap, for argv[1] ms;
 * an interval timer every 50 us makes a handler malloc a block too large
 * for the bootstrap arena and a small one.  A handler that is not served
 * as re-entered there waits for a lock its own thread holds (the session's
 * RAM, charged by both copies) and the run hangs (the script's timeout
 * fails it).  Not deterministic, but the window is most of the loop and
 * the timer fires thousands of times.  Prints TAP-style lines (box.h);
 * exits 0 when every check passed.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "box.h"
#include "cebox/winmem.h"

static atomic_int calls, bad;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    errno = 0;
    void *big = malloc(2 << 20);
    bad += big == NULL && errno != ENOMEM; /* refused inside cebox: ENOMEM */
    free(big);
    unsigned char *p = malloc(200);
    bad += p == NULL;
    free(p);
    calls++;
    errno = saved;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* One round of the main thread's calls; false if one failed. */
static bool win32_round(HANDLE heap)
{
    void *v = VirtualAlloc(NULL, 65536, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    void *h = HeapAlloc(heap, 0, 3000);
    bool ok = v != NULL && h != NULL;
    ok &= v == NULL || VirtualFree(v, 0, MEM_RELEASE);
    ok &= h == NULL || HeapFree(heap, 0, h);
    return ok;
}

int main(int argc, char **argv)
{
    double ms = argc > 1 ? atof(argv[1]) : 300;
    setvbuf(stdout, NULL, _IOLBF, 0);
    HANDLE heap = GetProcessHeap();
    box_set_handler(SIGALRM, on_alarm);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    unsigned long rounds = 0, failed = 0;
    for (double end = now_ms() + ms; now_ms() < end; rounds++) {
        failed += !win32_round(heap);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    CHECK(calls > 100, "the handler ran %d times during %lu rounds of Win32 calls", atomic_load(&calls), rounds);
    CHECK(failed == 0, "every Win32 call succeeded (%lu rounds failed)", failed);
    CHECK(bad == 0, "the handler's blocks came, or were refused with ENOMEM (%d bad)", atomic_load(&bad));
    return box_done();
}
