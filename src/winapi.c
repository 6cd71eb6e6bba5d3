/*
 * winapi.c - the Win32-named virtual-memory API over the process's slot.
 *
 * Owns: the per-thread last-error value.  Everything else is a thin layer:
 * argument checks that need no state live in slot.c next to the state they
 * protect, so the preload library and this API run the same code; a
 * VirtualAlloc passes entry_begin and reports its failures through
 * entry_fail_win32 (entry.h).
 */
#include <string.h>

#include "cebox/winmem.h"
#include "core.h"
#include "entry.h"
#include "export.h"

static _Thread_local DWORD last_error;

CEBOX_EXPORT DWORD GetLastError(void)
{
    return last_error;
}

CEBOX_EXPORT void SetLastError(DWORD dwErrCode)
{
    last_error = dwErrCode;
}

/* Records err (if any) and reports success as TRUE. */
static BOOL result(DWORD err)
{
    if (err != 0) {
        last_error = err;
        return FALSE;
    }
    return TRUE;
}

CEBOX_EXPORT LPVOID VirtualAlloc(LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType,
                                 DWORD flProtect)
{
    ENTRY_WIN32_INSIDE;
    /* The core first: made by a program's first call, it registers the
     * entry hook (fault.c) that this call must pass too. */
    struct cebox_core *core = core_get();
    if (!entry_begin_win32(LOG_API_VIRTUALALLOC, dwSize)) {
        return NULL;
    }
    void *out = NULL;
    DWORD err = slot_virtual_alloc(core->slot, lpAddress, dwSize, flAllocationType, flProtect, &out);
    if (err != 0) {
        /* A request of the slot's size or more fails with CE's 87, and is
         * recorded: for the user it is an allocation that cannot fit. */
        entry_fail_win32(LOG_API_VIRTUALALLOC, dwSize, err);
        return NULL;
    }
    if (flAllocationType & MEM_RESERVE) {
        entry_done(LOG_API_VIRTUALALLOC, out, dwSize); /* --leaks keeps the reservation's stack */
    }
    return out;
}

CEBOX_EXPORT BOOL VirtualFree(LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType)
{
    ENTRY_WIN32_INSIDE;
    DWORD err = slot_virtual_free(core_get()->slot, lpAddress, dwSize, dwFreeType);
    if (err == 0 && (dwFreeType & MEM_RELEASE)) {
        entry_freed(LOG_API_VIRTUALALLOC, lpAddress); /* after: the reservation is gone */
    }
    return result(err);
}

CEBOX_EXPORT SIZE_T VirtualQuery(LPCVOID lpAddress, PMEMORY_BASIC_INFORMATION lpBuffer,
                                 SIZE_T dwLength)
{
    ENTRY_WIN32_INSIDE;
    if (lpBuffer == NULL || dwLength < sizeof(MEMORY_BASIC_INFORMATION)) {
        result(ERROR_BAD_LENGTH);
        return 0;
    }
    MEMORY_BASIC_INFORMATION m;
    if (!result(slot_virtual_query(core_get()->slot, lpAddress, &m))) {
        return 0;
    }
    memcpy(lpBuffer, &m, sizeof m);
    return sizeof m;
}

CEBOX_EXPORT BOOL VirtualProtect(LPVOID lpAddress, SIZE_T dwSize, DWORD flNewProtect,
                                 PDWORD lpflOldProtect)
{
    ENTRY_WIN32_INSIDE;
    return result(slot_virtual_protect(core_get()->slot, lpAddress, dwSize, flNewProtect, lpflOldProtect));
}

/* CE's top user address (SC_GetSystemInfo: 0x7FFFFFFF, the whole 2 GB user
 * space, not the slot's end). */
#define CE_MAX_APPLICATION_ADDRESS 0x7FFFFFFFu

/* Addresses are given in the slot's coordinates: the slot's base stands for
 * CE's address 0, so the minimum is block 1 and the maximum CE's top.
 *
 * The processor is x86 (a CEPC: PROCESSOR_INTEL_486, the kernel's default
 * in mdx86.c, level and revision 0), not ARM: CE on ARM has no execute bit
 * and reads PAGE_EXECUTE_* back as PAGE_READONLY/PAGE_READWRITE, while the
 * host enforces execute permission; a program that saved such a protection
 * and restored it would make its code non-executable on the host.  x86 CE
 * keeps the execute protections (a software bit), as the host does. */
CEBOX_EXPORT void GetSystemInfo(LPSYSTEM_INFO si)
{
    ENTRY_WIN32_INSIDE;
    struct slot *s = core_get()->slot;
    memset(si, 0, sizeof *si);
    si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_INTEL;
    si->dwPageSize = (DWORD)slot_page_size(s);
    si->lpMinimumApplicationAddress = (void *)(slot_base(s) + slot_granularity(s));
    si->lpMaximumApplicationAddress = (void *)(slot_base(s) + CE_MAX_APPLICATION_ADDRESS);
    si->dwActiveProcessorMask = 1;
    si->dwNumberOfProcessors = 1;
    si->dwProcessorType = PROCESSOR_INTEL_486;
    si->dwAllocationGranularity = (DWORD)slot_granularity(s);
}

/* CE's memory load, 100 - free * 100 / total in integer arithmetic: the
 * load rounds up (one page used of 16384 is 1 %). */
static DWORD memory_load(size_t total, size_t avail)
{
    return total == 0 ? 0 : (DWORD)(100 - avail * 100 / total);
}

CEBOX_EXPORT void GlobalMemoryStatus(LPMEMORYSTATUS ms)
{
    ENTRY_WIN32_INSIDE;
    struct cebox_core *c = core_get();
    struct slot_stats st;
    slot_get_stats(c->slot, &st);
    size_t page = slot_page_size(c->slot);
    size_t total = ram_total_pages(&c->ram), avail = ram_free_pages(&c->ram);
    memset(ms, 0, sizeof *ms);
    ms->dwLength = sizeof *ms;
    ms->dwMemoryLoad = memory_load(total, avail);
    ms->dwTotalPhys = total * page;
    ms->dwAvailPhys = avail * page;
    ms->dwTotalVirtual = slot_size(c->slot);
    ms->dwAvailVirtual = (size_t)st.free_blocks * slot_granularity(c->slot);
}
