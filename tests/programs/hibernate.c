/*
 * hibernate.c - a program that cooperates with CE's memory states: it keeps
 * a cache it can drop, registers a hibernate callback (when cebox is there)
 * and/or handles SIGUSR1, then allocates until free RAM falls under the
 * hibernate level, and waits for the notice.
 *
 *   hibernate callback|signal|keep [TARGET_KB [SECONDS]]
 * callback: drops the cache in a hibernate callback; signal: on SIGUSR1;
 * keep: notes the callback but keeps the cache.  It allocates until free
 * RAM is under TARGET_KB (default 200), then waits up to SECONDS (default
 * 3) for the notice.  Exits 0 when the notice came (and, but for keep, the
 * cache was dropped), 1 otherwise.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cebox.h"

extern int cebox_on_hibernate(cebox_hibernate_fn fn, void *ctx) __attribute__((weak));
extern size_t cebox_free_ram(void) __attribute__((weak));
extern int cebox_memory_state(void) __attribute__((weak));

#define CACHE_BLOCKS 3
#define CACHE_BLOCK (120 * 1024) /* large heap items: freeing one gives its pages back */

static char *cache[CACHE_BLOCKS];
static volatile sig_atomic_t got_signal;
/* Set by the callback, which runs on cebox's notice thread. */
static atomic_int dropped, noticed;
static int keep_mode;

static void note_only(void *ctx)
{
    (void)ctx;
    noticed = 1;
    printf("pid %d: hibernate notice\n", (int)getpid());
    fflush(stdout);
}

static void drop_cache(void *ctx)
{
    (void)ctx;
    for (int i = 0; i < CACHE_BLOCKS; i++) {
        free(cache[i]);
        cache[i] = NULL;
    }
    /* Only now: main() stops waiting once it sees either flag. */
    dropped = 1;
    noticed = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    got_signal = 1;
}

int main(int argc, char **argv)
{
    int use_signal = argc > 1 && strcmp(argv[1], "signal") == 0;
    keep_mode = argc > 1 && strcmp(argv[1], "keep") == 0;
    size_t target = (argc > 2 ? (size_t)atoi(argv[2]) : 200) * 1024;
    int seconds = argc > 3 ? atoi(argv[3]) : 3;
    if (cebox_free_ram == NULL) {
        puts("not running inside cebox");
        return 1;
    }
    for (int i = 0; i < CACHE_BLOCKS; i++) {
        cache[i] = malloc(CACHE_BLOCK);
        if (cache[i] == NULL) {
            puts("no room for the cache");
            return 1;
        }
        memset(cache[i], 1, CACHE_BLOCK);
    }
    if (use_signal) {
        signal(SIGUSR1, on_usr1);
    } else {
        cebox_on_hibernate(keep_mode ? note_only : drop_cache, NULL);
    }
    /* Allocate until free RAM is under the hibernate level of the tables
     * (224 KB at most), then keep the allocator busy while waiting.  The
     * notice can come while it still allocates (the crossing commit wakes
     * the shell at once): then it stops, as a program that heeds it would,
     * rather than take back what the callback released. */
    size_t used = 0;
    while (cebox_free_ram() > target && used < (64u << 20) && (keep_mode || !noticed)) {
        char *p = malloc(4000);
        if (p == NULL) {
            break;
        }
        memset(p, 2, 4000);
        used += 4000;
    }
    printf("allocated %zu KB; free RAM %zu KB; state %d\n", used / 1024, cebox_free_ram() / 1024,
           cebox_memory_state());
    fflush(stdout); /* a test may wait for this line: the memory is held now */
    struct timespec tick = {0, 10 * 1000 * 1000};
    /* keep: stays the whole time, busy, like a foreground application. */
    for (int i = 0; i < seconds * 100 && !dropped && (keep_mode || !noticed); i++) {
        if (got_signal) {
            drop_cache(NULL);
            break;
        }
        free(malloc(16)); /* the callback runs at the next entry into cebox */
        nanosleep(&tick, NULL);
    }
    if (keep_mode) {
        return noticed ? 0 : 1;
    }
    printf("%s; free RAM %zu KB\n", dropped ? "cache dropped after the notice" : "no notice",
           cebox_free_ram() / 1024);
    fflush(stdout);
    return dropped ? 0 : 1;
}
