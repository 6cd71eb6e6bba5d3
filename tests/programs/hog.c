/*
 * hog.c - takes memory and holds it: `hog KB [SECONDS]` allocates KB
 * kilobytes (touched), then sleeps; exits 0 when it got them all, 1 when an
 * allocation failed.  `hog mmap KB` maps KB with one anonymous mmap instead
 * (a single commit, for the memory-state caps); `hog leave KB` maps all the
 * free device RAM but KB in one mmap (whatever the image, libraries and
 * stacks took before main).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern size_t cebox_free_ram(void) __attribute__((weak));

int main(int argc, char **argv)
{
    bool leave = argc > 2 && strcmp(argv[1], "leave") == 0 && cebox_free_ram != NULL;
    if (leave || (argc > 2 && strcmp(argv[1], "mmap") == 0)) {
        size_t len = (size_t)atoi(argv[2]) * 1024;
        if (leave) {
            size_t free_ram = cebox_free_ram();
            len = free_ram > len ? free_ram - len : 0;
        }
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("mmap %zu KB: %s\n", len / 1024, p == MAP_FAILED ? "failed" : "ok");
        return p == MAP_FAILED ? 1 : 0;
    }
    size_t kb = argc > 1 ? (size_t)atoi(argv[1]) : 1024;
    int seconds = argc > 2 ? atoi(argv[2]) : 0;
    for (size_t i = 0; i < kb / 4; i++) {
        char *p = malloc(4000);
        if (p == NULL) {
            printf("pid %d: out of memory after %zu KB\n", (int)getpid(), i * 4);
            return 1;
        }
        memset(p, 1, 4000);
    }
    printf("pid %d: holding %zu KB\n", (int)getpid(), kb);
    fflush(stdout);
    sleep((unsigned)seconds);
    return 0;
}
