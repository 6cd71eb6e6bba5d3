/*
 * mremap_cases.c - mremap's cases, each on one outcome line, so that
 * tests/hardpaths.sh can run it natively and under cebox and compare the
 * lines: grow in place, grow that must move, shrink, MREMAP_FIXED into
 * and out of the slot, MREMAP_DONTUNMAP, and the argument errors.
 *
 * A line is "NAME: RESULT [checks]": RESULT is "same" (the old address),
 * "moved", "target" (the MREMAP_FIXED address) or the errno name; the
 * checks say whether the contents came along and what the old and new
 * pages allow (r, w or -, probed through a pipe, which cannot fault).
 * Each group of cases runs in a child of its own: one that crashes prints
 * a line saying so and the others still run.  The comparison is the
 * shell's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL

static int pipefd[2];

/* "r", "w", "rw" or "-" for the page at p, without ever faulting. */
static const char *access_of(void *p)
{
    char c;
    bool r = write(pipefd[1], p, 1) == 1;
    if (r) {
        (void)read(pipefd[0], &c, 1);
        (void)write(pipefd[1], &c, 1); /* puts the same byte back */
    } else {
        c = 0;
        (void)write(pipefd[1], &c, 1);
    }
    bool w = read(pipefd[0], p, 1) == 1;
    if (!w) {
        (void)read(pipefd[0], &c, 1);
    }
    return r && w ? "rw" : r ? "r" : w ? "w" : "-";
}

static void *map(size_t pages, int prot)
{
    void *p = mmap(NULL, pages * PG, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap of %zu pages failed: %s\n", pages, strerror(errno));
        _exit(2);
    }
    return p;
}

/* Fills pages with a pattern that names each byte's page and offset. */
static void fill(void *p, size_t pages)
{
    unsigned char *b = p;
    for (size_t i = 0; i < pages * PG; i++) {
        b[i] = (unsigned char)(i * 7 + i / PG + 1);
    }
}

static bool holds(const void *p, size_t pages)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < pages * PG; i++) {
        if (b[i] != (unsigned char)(i * 7 + i / PG + 1)) {
            return false;
        }
    }
    return true;
}

static bool zero(const void *p, size_t pages)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < pages * PG; i++) {
        if (b[i] != 0) {
            return false;
        }
    }
    return true;
}

static const char *errname(int e)
{
    switch (e) {
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case EAGAIN: return "EAGAIN";
    default: return "other-errno";
    }
}

/* Prints the result part of a line; true when the call succeeded. */
static bool result(const char *name, void *r, void *old, void *target)
{
    printf("%s: ", name);
    if (r == MAP_FAILED) {
        printf("%s", errname(errno));
        return false;
    }
    printf("%s", r == old ? "same" : r == target ? "target" : "moved");
    return true;
}

/* A page of `pages` mapped pages followed by one more mapped page, so that
 * nothing can grow in place. */
static void *map_blocked(size_t pages, int prot)
{
    char *p = map(pages + 1, prot);
    if (mprotect(p + pages * PG, PG, PROT_READ) != 0) {
        printf("mprotect failed: %s\n", strerror(errno));
        _exit(2);
    }
    return p;
}

/* Forks: in the child, returns true to run a group of cases, which ends
 * with child_done(); in the parent, waits, says so if the child crashed,
 * and returns false.  One case that crashes cannot hide the others. */
static bool in_child(const char *name)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        return true;
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("%s: the group crashed or failed (status %#x)\n", name, (unsigned)status);
    }
    return false;
}

static void child_done(void)
{
    fflush(stdout);
    _exit(0);
}

static void grow_in_place(void)
{
    char *a = map(16, PROT_READ | PROT_WRITE); /* room: unmap the rest */
    munmap(a + PG, 15 * PG);
    fill(a, 1);
    void *r = mremap(a, PG, 4 * PG, 0);
    if (result("grow in place", r, a, NULL)) {
        printf(" kept=%d tail-zero=%d tail=%s", holds(a, 1), zero(a + PG, 3), access_of(a + 3 * PG));
    }
    printf("\n");
    munmap(a, 16 * PG);
}

static void grow_no_room(void)
{
    char *a = map(2, PROT_READ | PROT_WRITE);
    void *r = mremap(a, PG, 2 * PG, 0);
    result("grow with no room, no MAYMOVE", r, a, NULL);
    printf(" second=%s\n", access_of(a + PG));
    munmap(a, 2 * PG);
}

static void grow_over_prot_none(void)
{
    /* The second page is a mapping too (PROT_NONE): no room after the
     * first either. */
    char *a = map(2, PROT_NONE);
    mprotect(a, PG, PROT_READ | PROT_WRITE);
    void *r = mremap(a, PG, 2 * PG, 0);
    result("grow over a PROT_NONE page, no MAYMOVE", r, a, NULL);
    printf(" second=%s\n", access_of(a + PG));
    munmap(a, 2 * PG);
}

static void grow_move(int prot, const char *name)
{
    char *a = map_blocked(2, PROT_READ | PROT_WRITE);
    fill(a, 2);
    mprotect(a, 2 * PG, prot);
    char *r = mremap(a, 2 * PG, 5 * PG, MREMAP_MAYMOVE);
    if (result(name, r, a, NULL)) {
        if (!(prot & PROT_READ)) {
            mprotect(r, 5 * PG, PROT_READ);
        }
        printf(" kept=%d tail-zero=%d new=%s old=%s", holds(r, 2), zero(r + 2 * PG, 3),
               access_of(r + 4 * PG), access_of(a));
        munmap(r, 5 * PG);
    }
    printf(" blocker=%s\n", access_of(a + 2 * PG));
    munmap(a, 3 * PG);
}

static void shrink(void)
{
    char *a = map(4, PROT_READ | PROT_WRITE);
    fill(a, 4);
    void *r = mremap(a, 4 * PG, 2 * PG, 0);
    if (result("shrink", r, a, NULL)) {
        printf(" kept=%d third=%s", holds(a, 2), access_of(a + 2 * PG));
    }
    printf("\n");
    r = mremap(a, 2 * PG, PG + 1, 0);
    if (result("shrink to an unaligned length", r, a, NULL)) {
        printf(" kept=%d second=%s", holds(a, 2), access_of(a + PG));
    }
    printf("\n");
    munmap(a, 4 * PG);
}

/* Moves a (2 pages) to target + off pages with MREMAP_FIXED. */
static void fixed_to(char *a, char *target, size_t off, const char *name, size_t target_pages)
{
    char *to = target + off * PG;
    char *r = mremap(a, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (result(name, r, a, to)) {
        printf(" kept=%d old=%s", holds(r, 2), access_of(a));
    }
    if (off > 0) {
        printf(" before-target=%s", access_of(target));
    }
    if (target_pages > off + 2) {
        printf(" after-target=%s", access_of(to + 2 * PG));
    }
    printf("\n");
    munmap(a, 2 * PG);
    munmap(target, target_pages * PG);
}

static char *map_filled(void)
{
    char *a = map(2, PROT_READ | PROT_WRITE);
    fill(a, 2);
    return a;
}

static void fixed_cases(void)
{
    char *a = map_filled();
    fixed_to(a, map(4, PROT_READ | PROT_WRITE), 1, "MREMAP_FIXED over a mapping", 4);
    /* Free space at a 64 KB boundary: under cebox a free block of the slot
     * (mmap(MAP_FIXED) claims free blocks only at their start, as CE). */
    a = map_filled();
    char *freed = map(16, PROT_READ | PROT_WRITE);
    munmap(freed, 16 * PG);
    fixed_to(a, freed, 0, "MREMAP_FIXED into free space", 3);
    a = map_filled();
    freed = map(16, PROT_READ | PROT_WRITE);
    munmap(freed, 16 * PG);
    fixed_to(a, freed, 1, "MREMAP_FIXED into free space off a 64 KB boundary", 3);
    /* A shared mapping is never emulated: outside the slot under cebox. */
    a = map_filled();
    char *out = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    fixed_to(a, out, 1, "MREMAP_FIXED over a mapping outside the slot", 4);
}

static void dontunmap(void)
{
    char *a = map_blocked(2, PROT_READ | PROT_WRITE);
    fill(a, 2);
    char *r = mremap(a, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    if (result("MREMAP_DONTUNMAP", r, a, NULL)) {
        printf(" kept=%d old=%s old-zero=%d", holds(r, 2), access_of(a), zero(a, 2));
        munmap(r, 2 * PG);
    }
    printf("\n");
    char *none = map_blocked(2, PROT_READ | PROT_WRITE);
    fill(none, 2);
    mprotect(none, 2 * PG, PROT_NONE);
    r = mremap(none, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    if (result("MREMAP_DONTUNMAP of a PROT_NONE mapping", r, none, NULL)) {
        printf(" old=%s", access_of(none));
        mprotect(r, 2 * PG, PROT_READ);
        mprotect(none, 2 * PG, PROT_READ);
        printf(" kept=%d old-zero=%d", holds(r, 2), zero(none, 2));
        munmap(r, 2 * PG);
    }
    printf("\n");
    munmap(none, 3 * PG);
    r = mremap(a, 2 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    result("MREMAP_DONTUNMAP that resizes", r, a, NULL);
    printf("\n");
    r = mremap(a, 2 * PG, 2 * PG, MREMAP_DONTUNMAP);
    result("MREMAP_DONTUNMAP without MAYMOVE", r, a, NULL);
    printf("\n");
    munmap(a, 3 * PG);
}

static void errors(void)
{
    char *a = map_blocked(2, PROT_READ | PROT_WRITE);
    fill(a, 2);
    struct {
        const char *name;
        char *old;
        size_t oldlen, newlen;
        int flags;
        char *target;
    } cases[] = {
        {"unaligned old address", a + 1, PG, 2 * PG, MREMAP_MAYMOVE, NULL},
        {"new length 0", a, PG, 0, MREMAP_MAYMOVE, NULL},
        {"unknown flag", a, PG, 2 * PG, MREMAP_MAYMOVE | 8, NULL},
        {"MREMAP_FIXED without MAYMOVE", a, PG, PG, MREMAP_FIXED, a + 8 * PG},
        {"MREMAP_FIXED to an unaligned target", a, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, a + 8 * PG + 1},
        {"MREMAP_FIXED onto itself", a, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, a + PG},
        {"old length 0 (private)", a, 0, PG, MREMAP_MAYMOVE, NULL},
        {"old range past the mapping, MAYMOVE", a, 4 * PG, 6 * PG, MREMAP_MAYMOVE, NULL},
        {"old range over two protections", a, 3 * PG, 4 * PG, MREMAP_MAYMOVE, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (in_child(cases[i].name)) {
            void *r = mremap(cases[i].old, cases[i].oldlen, cases[i].newlen, cases[i].flags, cases[i].target);
            result(cases[i].name, r, cases[i].old, cases[i].target);
            printf(" intact=%d\n", holds(a, 2));
            child_done();
        }
    }
    munmap(a, 3 * PG);
    char *gone = map(2, PROT_READ | PROT_WRITE);
    munmap(gone + PG, PG);
    void *r = mremap(gone, 2 * PG, 4 * PG, MREMAP_MAYMOVE);
    result("old range half unmapped, MAYMOVE", r, gone, NULL);
    printf("\n");
    munmap(gone, PG);
    r = mremap(gone, PG, 2 * PG, MREMAP_MAYMOVE);
    result("unmapped old range, MAYMOVE", r, gone, NULL);
    printf("\n");
}

static void grow_move_rw(void)
{
    grow_move(PROT_READ | PROT_WRITE, "grow that must move");
}

static void grow_move_ro(void)
{
    grow_move(PROT_READ, "grow that must move, read-only");
}

static void grow_move_none(void)
{
    grow_move(PROT_NONE, "grow that must move, PROT_NONE");
}

/* Each group of cases, in a child of its own. */
static void (*const groups[])(void) = {
    grow_in_place, grow_no_room, grow_over_prot_none, grow_move_rw, grow_move_ro,
    grow_move_none, shrink, fixed_cases, dontunmap, errors,
};

int main(void)
{
    if (pipe(pipefd) != 0) {
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "group %zu", i + 1);
        if (in_child(name)) {
            groups[i]();
            child_done();
        }
    }
    return 0;
}
