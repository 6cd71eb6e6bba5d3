/*
 * leaky_winapi.c - Win32 heap items lost and freed, for tests/leaks.sh (a
 * program linked with libcebox, run with CEBOX_LEAKS=yes and CEBOX_OUT):
 * 100 bytes lost at lose_heapalloc (HeapAlloc on the process heap), 30 at
 * lose_localalloc (LocalAlloc), 70 at grow_heapalloc (HeapReAlloc of a
 * 10-byte item); a heap of its own with items in it, destroyed; items
 * freed by HeapFree and LocalFree.  Nothing else is left.
 */
#include <stdio.h>

#include "cebox/winmem.h"

#define NOINLINE __attribute__((noinline))

static NOINLINE void *lose_heapalloc(void)
{
    return HeapAlloc(GetProcessHeap(), 0, 100);
}

static NOINLINE void *lose_localalloc(void)
{
    return LocalAlloc(LMEM_FIXED, 30);
}

static NOINLINE void *grow_heapalloc(void)
{
    void *p = HeapAlloc(GetProcessHeap(), 0, 10);
    return HeapReAlloc(GetProcessHeap(), 0, p, 70);
}

int main(void)
{
    void *volatile keep;
    keep = lose_heapalloc();
    keep = lose_localalloc();
    keep = grow_heapalloc();
    HANDLE h = HeapCreate(0, 0, 0);
    for (int i = 0; i < 5; i++) {
        keep = HeapAlloc(h, 0, 40);
    }
    HeapDestroy(h);
    HeapFree(GetProcessHeap(), 0, HeapAlloc(GetProcessHeap(), 0, 500));
    LocalFree(LocalAlloc(LMEM_FIXED, 600));
    keep = NULL;
    (void)keep;
    puts("done");
    return 0;
}
