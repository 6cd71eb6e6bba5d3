/*
 * testutil.h - helpers shared by the cmocka tests: a fresh core for a
 * profile, the slot's counters, whether an access faults.
 */
#ifndef CEBOX_TESTUTIL_H
#define CEBOX_TESTUTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "core.h"
#include "os.h"
#if defined(__has_include) && __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define FAULT_EXIT 42

/* A mkstemp/mkdtemp template for a test's scratch file or directory:
 * "$TMPDIR/cebox-test-NAME-XXXXXX" (/tmp without an absolute TMPDIR).
 * Returns 0, or -1 when it does not fit in len bytes. */
static inline int testutil_temp_template(char *buf, size_t len, const char *name)
{
    const char *base = getenv("TMPDIR");
    base = base != NULL && base[0] == '/' ? base : "/tmp";
    int n = snprintf(buf, len, "%s/cebox-test-%s-XXXXXX", base, name);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* A new empty scratch file (closed), its path in buf. */
static inline int testutil_temp_file(char *buf, size_t len, const char *name)
{
    int fd = testutil_temp_template(buf, len, name) == 0 ? mkstemp(buf) : -1;
    if (fd < 0) {
        return -1;
    }
    close(fd);
    return 0;
}

/* Resets the core with CEBOX_PROFILE=profile and CEBOX_RAM=ram,
 * CEBOX_SLOT_SIZE=slot (each NULL: unset, the default), no large memory
 * area; returns core_reset's result (0: done). */
static inline int testutil_core_reset(const char *profile, const char *ram, const char *slot)
{
    char err[OPTIONS_ERR_MAX];
    setenv("CEBOX_PROFILE", profile, 1);
    if (ram != NULL) {
        setenv("CEBOX_RAM", ram, 1);
    } else {
        unsetenv("CEBOX_RAM");
    }
    if (slot != NULL) {
        setenv("CEBOX_SLOT_SIZE", slot, 1);
    } else {
        unsetenv("CEBOX_SLOT_SIZE");
    }
    unsetenv("CEBOX_LARGE_MEMORY_AREA");
    return core_reset(err);
}

/* The slot's committed bytes and free 64 KB blocks now. */
static inline size_t slot_committed_bytes(void)
{
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    return info.committed_bytes;
}

static inline unsigned slot_free_blocks(void)
{
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    return info.free_blocks;
}

static void fault_handler(int sig)
{
    (void)sig;
    _exit(FAULT_EXIT);
}

/* The kernel's page protection at p, from /proc/self/maps: true when a read
 * (or write) of p would fault. */
static inline bool maps_forbid(const volatile char *p, bool write)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512], perms[8];
    unsigned long lo, hi;
    bool forbid = true;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && (uintptr_t)p >= lo &&
            (uintptr_t)p < hi) {
            forbid = perms[0] != 'r' || (write && perms[1] != 'w');
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return forbid;
}

/* True when reading (or writing) p faults: the access is made in a forked
 * child that reports SIGSEGV/SIGBUS.  Under valgrind, which does not deliver
 * those faults faithfully, the kernel's page protection is read instead. */
static inline bool access_faults(volatile char *p, bool write)
{
    if (RUNNING_ON_VALGRIND) {
        return maps_forbid(p, write);
    }
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = fault_handler};
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        if (write) {
            *p = 1;
        } else {
            (void)*p;
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT;
}

/* True when every byte of [p, p+n) is zero. */
static inline bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Does the host hand pages over (os_move_pages)?  Not under valgrind.
 * -1 when the probe's own pages cannot be mapped. */
static inline int testutil_host_moves_pages(void)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *a = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *b = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int moved = a == MAP_FAILED || b == MAP_FAILED ? -1 : os_move_pages(b, a, page) == 0;
    if (a != MAP_FAILED) {
        munmap(a, page);
    }
    if (b != MAP_FAILED) {
        munmap(b, page);
    }
    return moved;
}

/* What CE's books say at one moment: committed slot bytes, free RAM, the
 * slot map and the end of the committed run holding p (VirtualQuery).
 * Two runs of one sequence compare step for step with memcmp (no
 * padding).  False when p is not committed. */
struct testutil_books {
    size_t committed, free_ram;
    uintptr_t commit_end;
    char map[64];
};

static inline bool testutil_read_books(struct testutil_books *b, const void *p)
{
    MEMORY_BASIC_INFORMATION m;
    b->committed = slot_committed_bytes();
    b->free_ram = cebox_free_ram();
    cebox_slot_map(b->map, sizeof b->map);
    if (VirtualQuery(p, &m, sizeof m) != sizeof m || m.State != MEM_COMMIT) {
        return false;
    }
    b->commit_end = (uintptr_t)m.BaseAddress + m.RegionSize;
    return true;
}

#endif
