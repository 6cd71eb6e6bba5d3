/*
 * bench_notice.c - how soon a hibernate notice follows the commit that
 * takes free RAM under the hibernate level, under `cebox run` (`make
 * bench-notice` runs it: `cebox run --ram 1M --thresholds ppc
 * bench/bench_notice ROUNDS`).
 *
 * Each round commits 4 KB pages until free RAM is under the level, timing
 * from just before the crossing commit to the moment the program's
 * hibernate callback runs (the notice's delivery: the shell's wake, its
 * notice, this process's watcher thread), then gives the pages back and
 * lets the shell see free RAM over the level again before the next round.
 * Prints the median, 90th percentile and worst latency, and how many
 * rounds got no notice within a second.  A benchmark, not a test: the
 * figures depend on the machine's load.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "cebox.h"

extern int cebox_on_hibernate(cebox_hibernate_fn fn, void *ctx) __attribute__((weak));
extern size_t cebox_free_ram(void) __attribute__((weak));

#define PAGE 4096
#define MAX_PAGES 4096
#define LEVEL (224 * 1024) /* the ppc table's hibernate level */
#define ROUND_GAP_MS 25    /* more than the shell's 20 ms tick: the next round is a new entry */

static _Atomic uint64_t noticed_at;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_notice(void *ctx)
{
    (void)ctx;
    atomic_store(&noticed_at, now_ns());
}

static void sleep_us(long us)
{
    struct timespec t = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&t, NULL);
}

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One round: returns the latency in ns, or 0 when no notice came. */
static uint64_t one_round(char **pages)
{
    size_t n = 0;
    uint64_t crossing = 0;
    atomic_store(&noticed_at, 0);
    while (crossing == 0 && n < MAX_PAGES) {
        uint64_t before = now_ns();
        int crosses = cebox_free_ram() < LEVEL + PAGE;
        char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            break;
        }
        p[0] = 1;
        pages[n++] = p;
        crossing = crosses ? before : 0;
    }
    for (int i = 0; i < 100000 && atomic_load(&noticed_at) == 0; i++) {
        sleep_us(10);
    }
    uint64_t at = atomic_load(&noticed_at);
    while (n > 0) {
        munmap(pages[--n], PAGE);
    }
    sleep_us(ROUND_GAP_MS * 1000L);
    return at > crossing && crossing != 0 ? at - crossing : 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    static char *pages[MAX_PAGES];
    if (cebox_on_hibernate == NULL || cebox_on_hibernate(on_notice, NULL) != 0 || rounds < 1) {
        fprintf(stderr, "bench_notice: run it under cebox run (--ram 1M --thresholds ppc)\n");
        return 2;
    }
    uint64_t *lat = calloc((size_t)rounds, sizeof *lat);
    int got = 0;
    for (int r = 0; lat != NULL && r < rounds; r++) {
        uint64_t l = one_round(pages);
        if (l != 0) {
            lat[got++] = l;
        }
    }
    if (got == 0) {
        printf("notice latency: no notice in %d rounds\n", rounds);
        return 1;
    }
    qsort(lat, (size_t)got, sizeof *lat, by_value);
    printf("notice latency over %d rounds: median %.0f us, 90th percentile %.0f us, worst %.0f us; "
           "%d round(s) without a notice\n",
           got, (double)lat[got / 2] / 1e3, (double)lat[got * 9 / 10] / 1e3, (double)lat[got - 1] / 1e3,
           rounds - got);
    free(lat);
    return 0;
}
