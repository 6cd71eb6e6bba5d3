/*
 * foreign.c - free, realloc and malloc_usable_size of pointers cebox did
 * not hand out: blocks of glibc's own malloc (called through dlsym on
 * libc.so.6, and from a library loaded with RTLD_DEEPBIND, argv[1], as
 * code that escaped the preload would), a "block" at the
 * very end of a mapping outside the slot, pointers inside the slot that
 * are no live block, and blocks of cebox's bootstrap arena (caught from a
 * signal handler that interrupted cebox).  With --forbid-process-vm-readv
 * first, a seccomp filter refuses the system call cebox copies foreign
 * blocks with, as some sandboxes do.  Prints TAP-style lines (box.h)
 * and, last, "foreign frees N, bad pointers N": the frees of foreign
 * blocks and the frees and reallocs of slot pointers that are no block it
 * made, for tests/hardpaths.sh to compare with the exit summary.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "../forbid_syscall.h"
#include "box.h"

#define PG 4096UL

static void *(*glibc_malloc)(size_t);
static void (*glibc_free)(void *);
static struct cebox_slot_info box;
static int foreign_frees, bad_pointers;

static bool in_slot(const void *p)
{
    return (uintptr_t)p - box.base < box.size;
}

static void fill(unsigned char *p, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(tag + i * 31 + i / 251);
    }
}

static bool intact(const unsigned char *p, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)(tag + i * 31 + i / 251)) {
            return false;
        }
    }
    return true;
}

/* realloc of glibc blocks of every size class to smaller, equal and larger
 * sizes: every byte that fits comes along, into a block of the slot. */
static void glibc_blocks(void)
{
    static const size_t sizes[] = {1, 15, 16, 17, 100, 4095, 4096, 4097, 70000, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        size_t to[] = {n / 2 + 1, n, 2 * n + 4096};
        bool good = true;
        for (size_t j = 0; j < 3; j++) {
            unsigned char *g = glibc_malloc(n);
            if (g == NULL) {
                good = false;
                continue;
            }
            fill(g, n, (unsigned)(i + j));
            errno = 1234;
            unsigned char *q = realloc(g, to[j]);
            size_t kept = to[j] < n ? to[j] : n;
            good = good && q != NULL && in_slot(q) && intact(q, kept, (unsigned)(i + j)) && errno == 1234;
            if (q != NULL) {
                memset(q, 0xEE, to[j]); /* all of it is the program's */
                free(q);
            }
            /* cebox never wrote the old block: glibc can still free it. */
            good = good && intact(g, n, (unsigned)(i + j));
            glibc_free(g);
        }
        CHECK(good, "realloc of a glibc block of %zu bytes to %zu, %zu and %zu keeps its bytes, and errno",
              n, to[0], to[1], to[2]);
    }
}

static void glibc_free_and_size(void)
{
    unsigned char *g = glibc_malloc(1000);
    fill(g, 1000, 9);
    errno = 1234;
    free(g);
    foreign_frees++;
    CHECK(errno == 1234 && intact(g, 1000, 9), "free of a glibc block is ignored: untouched, errno kept");
    size_t usable = malloc_usable_size(g);
    CHECK(usable == 0, "malloc_usable_size of a glibc block is 0 (%zu)", usable);
    CHECK(realloc(g, 0) == NULL && intact(g, 1000, 9), "realloc(glibc block, 0) frees nothing either");
    foreign_frees++;
    glibc_free(g);
}

/* Blocks a library loaded with RTLD_DEEPBIND (argv[1]) got from glibc's
 * malloc, as code that escaped the preload hands them to the program. */
static void deepbind_blocks(const char *path)
{
    void *lib = dlopen(path, RTLD_NOW | RTLD_DEEPBIND);
    void *(*alloc)(size_t) = NULL;
    if (lib != NULL) {
        *(void **)&alloc = dlsym(lib, "deepbind_alloc");
    }
    if (alloc == NULL) {
        CHECK(false, "%s loaded with RTLD_DEEPBIND", path);
        return;
    }
    bool good = true;
    for (size_t n = 1; n < 200000; n = n * 7 + 3) {
        unsigned char *g = alloc(n);
        good = good && g != NULL && !in_slot(g);
        if (g == NULL) {
            continue;
        }
        fill(g, n, 11);
        unsigned char *q = realloc(g, n + 5000);
        good = good && q != NULL && in_slot(q) && intact(q, n, 11) && intact(g, n, 11);
        free(q);
        free(g);
        foreign_frees++;
        good = good && intact(g, n, 11);
    }
    CHECK(good, "blocks of an RTLD_DEEPBIND library's malloc (1 byte to 172 KB): realloc copies, "
                "free ignores");
}

/* The last bytes of a mapping outside the slot: a copy of the new size
 * from them would run off its end. */
static void end_of_mapping(void)
{
    unsigned char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        CHECK(false, "a shared mapping outside the slot");
        return;
    }
    munmap(m + PG, PG);
    unsigned char *p = m + PG - 48;
    fill(p, 48, 5);
    unsigned char *q = realloc(p, 3 * PG);
    CHECK(!in_slot(m) && q != NULL && in_slot(q) && intact(q, 48, 5),
          "realloc of the last 48 bytes of a mapping to 3 pages: no fault, the 48 bytes come along");
    free(q);
    munmap(m, PG);
}

/* Pointers inside the slot that are no live block: refused, reported, and
 * never followed; the block around them stays as it was. */
static void slot_non_blocks(void)
{
    unsigned char *p = malloc(200);
    fill(p, 200, 3);
    errno = 0;
    void *q = realloc(p + 16, 400);
    bad_pointers++;
    CHECK(q == NULL && intact(p, 200, 3), "realloc of an interior pointer is refused, the block intact");
    q = realloc(p, 300);
    CHECK(q != NULL && intact(q, 200, 3), "the block itself still reallocs");
    free(q);
    errno = 0;
    q = realloc(q, 100);
    bad_pointers++;
    CHECK(q == NULL, "realloc of a freed block is refused");
    unsigned char *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fill(m, PG, 4);
    q = realloc(m + 64, 100);
    bad_pointers++;
    CHECK(in_slot(m) && q == NULL && intact(m, PG, 4),
          "realloc of a pointer into an mmap of the slot is refused");
    CHECK(malloc_usable_size(m + 64) == 0, "malloc_usable_size of it is 0 (and no bad free)");
    munmap(m, PG);
}

/* ---- the bootstrap arena: what a handler's malloc gets while the thread
 * it interrupted is inside cebox ---- */

static void *volatile caught;

static void on_alarm(int sig)
{
    (void)sig;
    if (caught != NULL) {
        return;
    }
    unsigned char *p = malloc(64);
    if (p != NULL && !in_slot(p)) {
        fill(p, 64, 7);
        caught = p;
        return;
    }
    free(p);
}

static void *catch_arena_block(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 20}, {0, 20}};
    setitimer(ITIMER_REAL, &it, NULL);
    time_t end = time(NULL) + 5;
    while (caught == NULL && time(NULL) < end) {
        free(malloc(100));
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    return caught;
}

static void arena_blocks(void)
{
    unsigned char *a = catch_arena_block();
    if (a == NULL) {
        CHECK(false, "a handler's malloc inside cebox got a block of the bootstrap arena");
        return;
    }
    CHECK(intact(a, 64, 7) && malloc_usable_size(a) == 0,
          "a bootstrap arena block: intact, malloc_usable_size 0");
    unsigned char *q = realloc(a, 100000);
    CHECK(q != NULL && in_slot(q) && intact(q, 64, 7), "realloc moves it into the slot with its 64 bytes");
    free(q);
    caught = NULL;
    a = catch_arena_block();
    if (a != NULL) {
        free(a);
        unsigned char *b = malloc(64);
        CHECK(b != NULL && in_slot(b), "free of another arena block is harmless; malloc goes on");
        free(b);
    }
}

int main(int argc, char **argv)
{
    if (!box_present()) {
        printf("foreign: run it under cebox\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* a crash keeps the lines before it */
    if (argc > 1 && strcmp(argv[1], "--forbid-process-vm-readv") == 0) {
        /* cebox's safe copy, refused as in some sandboxes */
        CHECK(forbid_syscall(SYS_process_vm_readv), "process_vm_readv is refused from now on");
        argc--, argv++;
    }
    cebox_slot_info(&box);
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc != NULL) {
        *(void **)&glibc_malloc = dlsym(libc, "malloc");
        *(void **)&glibc_free = dlsym(libc, "free");
    }
    if (glibc_malloc == NULL || glibc_free == NULL || glibc_malloc == malloc) {
        printf("not ok - glibc's own malloc not found\n");
        return 1;
    }
    glibc_blocks();
    glibc_free_and_size();
    end_of_mapping();
    slot_non_blocks();
    arena_blocks();
    if (argc > 1) {
        deepbind_blocks(argv[1]);
    }
    printf("foreign frees %d, bad pointers %d\n", foreign_frees, bad_pointers);
    return box_done();
}
