/*
 * prog_linked.c - a program linked with the shared libcebox the way users
 * link it (public headers only).  Used by tests/cli.sh: it reserves and
 * commits one page, writes it, and prints what VirtualQuery says.
 */
#include <stdio.h>

#include "cebox.h"
#include "cebox/winmem.h"

int main(void)
{
    char *p = VirtualAlloc(NULL, 4096, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    if (p == NULL) {
        printf("VirtualAlloc failed: %lu\n", (unsigned long)GetLastError());
        return 1;
    }
    p[0] = 'x';
    MEMORY_BASIC_INFORMATION m;
    if (VirtualQuery(p, &m, sizeof m) != sizeof m) {
        return 1;
    }
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    printf("offset %#lx state %#lx protect %#lx slot %zu\n", (unsigned long)((uintptr_t)p - info.base),
           (unsigned long)m.State, (unsigned long)m.Protect, info.size);
    return VirtualFree(p, 0, MEM_RELEASE) ? 0 : 1;
}
