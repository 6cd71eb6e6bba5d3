/*
 * holdmap.c - a known slot layout, held while a test looks at it:
 * `holdmap [hold]` allocates two 1 MB blocks one after the other (two
 * large heap items, side by side in the slot) and one 4-block mapping,
 * prints "ready PID", and with "hold" waits for its standard input to
 * close (at most 30 s).  Then it frees the second block and the mapping
 * (so its exit's map differs from its peak's) and exits 0.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MB (1024 * 1024)

int main(int argc, char **argv)
{
    char *a = malloc(MB), *b = malloc(MB);
    void *m = mmap(NULL, 4 * 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == NULL || b == NULL || m == MAP_FAILED) {
        return 1;
    }
    memset(a, 1, MB);
    memset(b, 2, MB);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "hold") == 0) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        char c;
        while (poll(&p, 1, 30000) == 1 && read(0, &c, 1) == 1) {
        }
    }
    free(b);
    munmap(m, 4 * 65536);
    free(a);
    return 0;
}
