/*
 * bench_maps.c - how many host mappings (lines of /proc/self/maps) a
 * process has with N small blocks live: each allocator's mapping count at
 * a million live blocks (README "Real programs", the line on mappings).
 * Not a test: it only reports.
 *
 * Allocates N blocks of 8 bytes (16-byte items under ce5), writes each,
 * keeps them all, then prints the line count.  Deterministic: nothing
 * random.
 *
 * Usage: bench_maps [N]   (default 1000000)
 */
#include "workload.h"

int main(int argc, char **argv)
{
    unsigned long n = workload_arg(argc, argv, 1, 1000000);
    void **live = malloc(n * sizeof *live);
    if (live == NULL) {
        workload_fail("malloc", n * sizeof *live);
    }
    for (unsigned long i = 0; i < n; i++) {
        live[i] = malloc(8);
        if (live[i] == NULL) {
            workload_fail("malloc", 8);
        }
        memset(live[i], (int)(i & 0xFF), 8);
    }
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL) {
        return 1;
    }
    char line[512];
    unsigned lines = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lines++;
    }
    fclose(f);
    printf("maps: %u mappings with %lu blocks live\n", lines, n);
    return 0;
}
