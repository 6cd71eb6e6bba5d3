/*
 * steps.c - `steps LIMITED_KB LOW_KB CRITICAL_KB`: commits the device's RAM
 * one 4 KB page at a time (one anonymous mmap each) and checks after every
 * step that cebox reports the state the thresholds give for the free RAM it
 * reports: normal at or over LIMITED (0: no limited state), limited under
 * it, low under LOW, critical under CRITICAL.  Prints each transition with
 * the free RAM at which it came; exits 0 when every step agreed and every
 * state commits can reach was reached, 1 otherwise.  (No commit may leave
 * fewer than 15 free pages, CE's stack reserve, so a critical level of
 * 48 KB is out of the commits' reach, as on a device.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

extern int cebox_memory_state(void) __attribute__((weak));
extern size_t cebox_free_ram(void) __attribute__((weak));

static int expected(size_t free_bytes, size_t limited, size_t low, size_t critical)
{
    if (free_bytes < critical) {
        return 3;
    }
    if (free_bytes < low) {
        return 2;
    }
    return free_bytes < limited ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 || cebox_memory_state == NULL) {
        return 2;
    }
    size_t limited = strtoul(argv[1], NULL, 10) * 1024, low = strtoul(argv[2], NULL, 10) * 1024;
    size_t critical = strtoul(argv[3], NULL, 10) * 1024;
    int state = cebox_memory_state(), seen = 1 << state, bad = 0;
    for (int step = 0; step < 100000; step++) {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("commit refused at %zu KB free (state %d)\n", cebox_free_ram() / 1024, state);
            break;
        }
        p[0] = 1;
        size_t f = cebox_free_ram();
        int now = cebox_memory_state();
        if (now != expected(f, limited, low, critical)) {
            printf("step %d: %zu KB free but state %d\n", step, f / 1024, now);
            bad = 1;
        }
        if (now != state) {
            printf("state %d -> %d at %zu KB free\n", state, now, f / 1024);
            state = now;
            seen |= 1 << now;
        }
    }
    int want = (limited ? 2 : 0) | 4 | (critical > 16 * 4096 ? 8 : 0);
    return !bad && (seen & want) == want ? 0 : 1;
}
