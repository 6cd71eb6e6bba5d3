/*
 * faults_winapi.c - fault injection through the Win32-named API of a
 * program linked with libcebox (no preload library, so only these calls
 * reach cebox): VirtualAlloc, HeapCreate, HeapAlloc, HeapReAlloc,
 * LocalAlloc and LocalReAlloc, in that order, one line each: "N API ok"
 * or "N API FAIL LASTERROR".  A call whose input a failure took away gets
 * another (the process heap; a block allocated again, unreported, which
 * cebox counts).
 */
#include <stdio.h>

#include "cebox/winmem.h"

static int calls;

static void *report(const char *api, void *p)
{
    printf(p != NULL ? "%d %s ok\n" : "%d %s FAIL %lu\n", ++calls, api, (unsigned long)GetLastError());
    return p;
}

int main(void)
{
    SetLastError(0);
    report("VirtualAlloc", VirtualAlloc(NULL, 65536, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
    HANDLE h = report("HeapCreate", HeapCreate(0, 0, 0));
    HANDLE use = h != NULL ? h : GetProcessHeap();
    void *b = report("HeapAlloc", HeapAlloc(use, 0, 100));
    b = b != NULL ? b : HeapAlloc(use, 0, 100); /* not reported */
    report("HeapReAlloc", HeapReAlloc(use, 0, b, 5000));
    HLOCAL l = report("LocalAlloc", LocalAlloc(LMEM_FIXED, 100));
    l = l != NULL ? l : LocalAlloc(LMEM_FIXED, 100);
    report("LocalReAlloc", LocalReAlloc(l, 5000, LMEM_MOVEABLE));
    return 0;
}
