/*
 * notice.c - hibernate notices as a program sees them, for tests/states.sh.
 *
 *   notice wait SECONDS
 *       waits for a notice (the device is already under the hibernate
 *       level: --state low); exits 0 when it came.
 *   notice recover KB SECONDS PIDFILE
 *       holds KB in 128 KB blocks, writes its pid to PIDFILE (the test then
 *       forces a state), waits for the notice (up to 20 s), frees the
 *       blocks and waits up to SECONDS for the normal state; exits 0 when
 *       it came back.
 *   notice nofree SECONDS SESSIONLOG
 *       allocates small blocks until free RAM is under 200 KB, frees them
 *       all at the notice without compacting the heap, and stays until the
 *       shell's line about its notice is in SESSIONLOG; exits 0 then.
 * Every wait is bounded by SECONDS.  Exit 1: not what was waited for;
 * 2: bad use or not under cebox.
 */
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

static atomic_int noticed;

static void on_notice(void *ctx)
{
    (void)ctx;
    atomic_store(&noticed, 1);
}

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Waits up to `seconds` for the notice. */
static int wait_notice(int seconds)
{
    for (int i = 0; i < seconds * 100 && !atomic_load(&noticed); i++) {
        pause_ms(10);
    }
    return atomic_load(&noticed);
}

#define NOTICE_WAIT_S 20 /* returns as soon as the notice comes */
#define RECOVER_BLOCK (128 * 1024) /* a large heap item: freeing it gives its pages back */

static int recover(size_t kb, int seconds, const char *pidfile)
{
    size_t n = kb * 1024 / RECOVER_BLOCK;
    char **blocks = calloc(n, sizeof *blocks);
    for (size_t i = 0; blocks != NULL && i < n; i++) {
        blocks[i] = malloc(RECOVER_BLOCK);
        if (blocks[i] == NULL) {
            return 2;
        }
        memset(blocks[i], 1, RECOVER_BLOCK);
    }
    FILE *f = fopen(pidfile, "w");
    if (blocks == NULL || f == NULL) {
        return 2;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    if (!wait_notice(NOTICE_WAIT_S)) {
        puts("no notice");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        free(blocks[i]);
    }
    for (int i = 0; i < seconds * 100 && cebox_memory_state() != CEBOX_STATE_NORMAL; i++) {
        pause_ms(10);
    }
    int state = cebox_memory_state();
    printf("state %d after freeing %zu KB; free RAM %zu KB\n", state, kb, cebox_free_ram() / 1024);
    return state == CEBOX_STATE_NORMAL ? 0 : 1;
}

/* True once `log` has the shell's line for this process's notice. */
static int shell_reported(const char *log)
{
    char want[64], line[512];
    snprintf(want, sizeof want, "hibernate notice to pid %d:", (int)getpid());
    FILE *f = fopen(log, "r");
    int found = 0;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
        found = strstr(line, want) != NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return found;
}

#define NOFREE_MAX 4096
#define NOFREE_BLOCK 1000

static int nofree(int seconds, const char *log)
{
    static char *blocks[NOFREE_MAX];
    size_t n = 0;
    while (n < NOFREE_MAX && cebox_free_ram() > 200 * 1024 && (blocks[n] = malloc(NOFREE_BLOCK)) != NULL) {
        memset(blocks[n++], 1, NOFREE_BLOCK);
    }
    if (!wait_notice(seconds)) {
        puts("no notice");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        free(blocks[i]);
    }
    for (int i = 0; i < seconds * 100 && !shell_reported(log); i++) {
        pause_ms(10);
    }
    return shell_reported(log) ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3 || cebox_on_hibernate == NULL || cebox_on_hibernate(on_notice, NULL) != 0) {
        return 2;
    }
    if (strcmp(argv[1], "wait") == 0) {
        int got = wait_notice(atoi(argv[2]));
        puts(got ? "notice" : "no notice");
        return got ? 0 : 1;
    }
    if (strcmp(argv[1], "recover") == 0 && argc == 5) {
        return recover((size_t)atol(argv[2]), atoi(argv[3]), argv[4]);
    }
    if (strcmp(argv[1], "nofree") == 0 && argc == 4) {
        return nofree(atoi(argv[2]), argv[3]);
    }
    return 2;
}
