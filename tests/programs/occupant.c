/*
 * occupant.c - a program run under cebox run by tests/occupancy.sh: what
 * the slot holds before the program allocates (image, DLLs, stacks), the
 * seeds' loop of one-page reservations, and threads until one is refused.
 *   occupant map          the slot's base and its map (one line of blocks)
 *   occupant loop         512 one-page anonymous mmaps (VirtualAlloc
 *                         reserve+commit): how many succeed
 *   occupant threads N    starts N threads that wait; the count started and
 *                         the error of the first refused
 *   occupant low          mmap(MAP_32BIT) lands below 2 GB
 *   occupant dlopen LIB   the map before dlopen(LIB), after it and after
 *                         dlclose (each after an mmap: cebox looks at
 *                         the loader's list there)
 *   occupant fork N       starts N threads that wait, forks: the child
 *                         prints its map (its slot keeps the main stack
 *                         only), then the parent lets them end
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box.h"

extern size_t cebox_slot_map(char *buf, size_t len) __attribute__((weak));

static int print_map(void)
{
    static char map[65536];
    struct cebox_slot_info info;
    if (!box_present() || cebox_slot_map == NULL) {
        printf("no box\n");
        return 1;
    }
    cebox_slot_info(&info);
    size_t n = cebox_slot_map(map, sizeof map - 1);
    map[n] = '\0';
    printf("base %#lx\nmap %s\n", (unsigned long)info.base, map);
    return 0;
}

static int loop(void)
{
    int ok = 0;
    for (int i = 0; i < 512; i++) {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            break;
        }
        p[0] = (char)i;
        ok++;
    }
    printf("%d calls succeeded\n", ok);
    return 0;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int released;

static void *wait_for_go(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!released) {
        pthread_cond_wait(&go, &lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void release_all(void)
{
    pthread_mutex_lock(&lock);
    released = 1;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&lock);
}

/* Starts up to n waiting threads; returns how many, *err the first
 * refusal's error (0: none). */
static int start_waiting(pthread_t *t, int n, int *err)
{
    int started = 0;
    released = 0;
    *err = 0;
    for (; started < n; started++) {
        *err = pthread_create(&t[started], NULL, wait_for_go, NULL);
        if (*err != 0) {
            break;
        }
    }
    return started;
}

static void release_and_join(pthread_t *t, int n)
{
    release_all();
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
    }
}

static int threads(int n)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    int err;
    int started = start_waiting(t, n, &err);
    printf("%d threads started, first refused: %s\n", started, err == 0 ? "none" : err == EAGAIN ? "EAGAIN" : strerror(err));
    release_and_join(t, started);
    /* Their stacks are back: as many start again. */
    int again = start_waiting(t, started, &err);
    printf("%d started again after the joins\n", again);
    release_and_join(t, again);
    free(t);
    return 0;
}

static int low(void)
{
    void *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    printf("MAP_32BIT %s, %s\n", p == MAP_FAILED ? "failed" : (uintptr_t)p < 0x80000000u ? "below 2 GB" : "above 2 GB",
           in_box(p) ? "in the slot" : "outside the slot");
    return 0;
}

static int fork_with_threads(int n)
{
    pthread_t t[16];
    int err;
    n = start_waiting(t, n > 16 ? 16 : n, &err);
    if (err != 0) {
        release_and_join(t, n);
        return 1;
    }
    printf("parent ");
    print_map();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child ");
        print_map();
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    release_and_join(t, n);
    return 0;
}

/* An mmap and munmap: cebox notes the libraries loaded since its last look. */
static void touch_mmap(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
        munmap(p, 4096);
    }
}

static int load_and_unload(const char *lib)
{
    touch_mmap();
    printf("before ");
    print_map();
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    touch_mmap();
    printf("loaded ");
    print_map();
    dlclose(h);
    touch_mmap();
    printf("unloaded ");
    print_map();
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "map";
    if (strcmp(mode, "loop") == 0) {
        return loop();
    }
    if (strcmp(mode, "threads") == 0) {
        return threads(argc > 2 ? atoi(argv[2]) : 8);
    }
    if (strcmp(mode, "dlopen") == 0 && argc > 2) {
        return load_and_unload(argv[2]);
    }
    if (strcmp(mode, "fork") == 0) {
        return fork_with_threads(argc > 2 ? atoi(argv[2]) : 3);
    }
    if (strcmp(mode, "low") == 0) {
        return low();
    }
    return print_map();
}
