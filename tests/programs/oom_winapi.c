/*
 * oom_winapi.c - failures through the Win32-named API of a program linked
 * with libcebox (no preload library): HeapAlloc, LocalAlloc and
 * VirtualAlloc in a 1 MB slot, and HeapAlloc on a full fixed-size heap.
 * Run with CEBOX_SLOT_SIZE=1M and CEBOX_OUT=DIR; tests/report.sh reads the
 * log.  Keep the SITE and CALL markers on the lines of their calls.
 */
#include <stdio.h>

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

int main(int argc, char **argv)
{
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
