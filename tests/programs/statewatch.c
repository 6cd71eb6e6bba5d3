/*
 * statewatch.c - `statewatch STATE SECONDS PIDFILE`: writes its pid to
 * PIDFILE, then waits until cebox reports memory state STATE (0 normal,
 * 1 limited, 2 low, 3 critical); exits 0 when it came, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

extern int cebox_memory_state(void) __attribute__((weak));

int main(int argc, char **argv)
{
    if (argc < 4 || cebox_memory_state == NULL) {
        return 2;
    }
    int want = atoi(argv[1]), tenths = atoi(argv[2]) * 10;
    FILE *f = fopen(argv[3], "w");
    if (f == NULL) {
        return 2;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    struct timespec tick = {0, 100 * 1000 * 1000};
    for (int i = 0; i < tenths; i++) {
        if (cebox_memory_state() == want) {
            printf("state %d reached\n", want);
            return 0;
        }
        nanosleep(&tick, NULL);
    }
    printf("state %d not reached (now %d)\n", want, cebox_memory_state());
    return 1;
}
