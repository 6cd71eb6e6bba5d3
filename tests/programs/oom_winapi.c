/*
 * oom_winapi.c - failures through the Win32-named API of a program linked
 * with libcebox (no preload library): HeapAlloc, LocalAlloc and
 * VirtualAlloc in a 1 MB slot, and HeapAlloc on a full fixed-size heap.
 * Run with CEBOX_SLOT_SIZE=1M and CEBOX_OUT=DIR; tests/report.sh reads the
 * log.  Keep the SITE and CALL markers on the lines of their calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cebox/winmem.h"

#define NOINLINE __attribute__((noinline))
#define BIG ((SIZE_T)900 * 1024)

static volatile int sink;

NOINLINE static void *win_level2(int which)
{
    void *p = NULL;
    switch (which) {
    case 0: p = HeapAlloc(GetProcessHeap(), 0, BIG); break; /* SITE:HeapAlloc */
    case 1: p = LocalAlloc(LMEM_FIXED, BIG); break; /* SITE:LocalAlloc */
    default: p = VirtualAlloc(NULL, BIG, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE); break; /* SITE:VirtualAlloc */
    }
    sink++;
    return p;
}

NOINLINE static void *win_level1(int which)
{
    void *p = win_level2(which); /* CALL:win_level2 */
    sink++;
    return p;
}

NOINLINE static int fill_fixed_heap(void)
{
    HANDLE h = HeapCreate(0, 4096, 8192);
    int failed = 0;
    for (int i = 0; i < 8 && h != NULL; i++) {
        failed += HeapAlloc(h, 0, 2000) == NULL; /* SITE:heapfull */
    }
    return failed;
}

/* "bytes N": one block of N usable bytes left allocated (the exit
 * summary's "still allocated"), and a VirtualAlloc of N bytes failing in
 * the full slot (a site of that size in the report): the same count,
 * printed by both. */
static int same_count_twice(SIZE_T n)
{
    void *kept = HeapAlloc(GetProcessHeap(), 0, n);
    if (kept == NULL || HeapSize(GetProcessHeap(), 0, kept) != n) {
        return 1; /* n must be a usable size: 16k - 8 */
    }
    while (VirtualAlloc(NULL, 65536, MEM_RESERVE, PAGE_NOACCESS) != NULL) {
    }
    return VirtualAlloc(NULL, n, MEM_RESERVE, PAGE_NOACCESS) == NULL ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "bytes") == 0) {
        return same_count_twice((SIZE_T)strtoul(argv[2], NULL, 10));
    }
    if (argc > 1) { /* "toolarge": requests of more than the slot, which CE refuses with 87 */
        void *v = VirtualAlloc(NULL, (SIZE_T)40 << 20, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        void *h = HeapAlloc(GetProcessHeap(), 0, (SIZE_T)40 << 20);
        printf("too large: %s %s, error %lu\n", v ? "ok" : "failed", h ? "ok" : "failed",
               (unsigned long)GetLastError());
        return 0;
    }
    (void)argv;
    int failed = 0;
    for (int which = 0; which < 3; which++) {
        failed += win_level1(which) == NULL; /* CALL:win_level1 */
    }
    int full = fill_fixed_heap();
    printf("failed %d, fixed heap full after %d\n", failed, 8 - full);
    return 0;
}
