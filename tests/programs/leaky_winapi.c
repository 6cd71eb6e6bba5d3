/*
 * leaky_winapi.c - Win32 heap items lost and freed, for tests/leaks.sh (a
 * program linked with libcebox, run with CEBOX_LEAKS=yes and CEBOX_OUT):
 * 100 bytes lost at lose_heapalloc (HeapAlloc on the process heap), 30 at
 * lose_localalloc (LocalAlloc), 70 at grow_heapalloc (HeapReAlloc of a
 * 10-byte item), a reservation of 128 KB at lose_virtualalloc
 * (VirtualAlloc, pages committed in it later); a heap of its own with items
 * in it, destroyed; items freed by HeapFree and LocalFree, a reservation
 * released by VirtualFree.  Nothing else is left.
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

static NOINLINE void *lose_virtualalloc(void)
{
    char *p = VirtualAlloc(NULL, 0x20000, MEM_RESERVE, PAGE_NOACCESS);
    VirtualAlloc(p + 0x10000, 0x1000, MEM_COMMIT, PAGE_READWRITE); /* no new reservation */
    return p;
}

int main(void)
{
    void *volatile keep;
    keep = lose_heapalloc();
    keep = lose_localalloc();
    keep = grow_heapalloc();
    keep = lose_virtualalloc();
    VirtualFree(VirtualAlloc(NULL, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE), 0, MEM_RELEASE);
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
