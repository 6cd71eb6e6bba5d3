/*
 * cebox/winmem.h - the Windows CE memory API, emulated by cebox.
 *
 * A program includes this header and links with
 *     `pkg-config --cflags --libs cebox`
 * to allocate from an emulated Windows CE process: a slot of 32 MB (profile
 * ce5, the default) made of 64 KB blocks, with device RAM and CE's rules.
 * Every pointer these functions return lies inside the slot, a real range of
 * the process's address space reserved by cebox; reserved and decommitted
 * pages fault on access exactly as they would on a device.
 *
 * Types and constant values are those of the Windows SDK headers so that CE
 * code compiles unchanged.  The behaviour is CE's, not the desktop's: each
 * function below says where the two differ.
 *
 * Settings (profile, slot size, ...) come from CEBOX_* environment variables,
 * read once, at the first call of any function here.  An invalid value stops
 * the process with one line on stderr that names the variable, the value and
 * what is accepted (exit status 2): cebox never runs with a setting other than
 * the one asked for.
 *
 * Threads: every function may be called from any thread.  GetLastError is
 * per thread.
 */
#ifndef CEBOX_WINMEM_H
#define CEBOX_WINMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Win32 types (sizes as on a 32-bit CE device where it matters) ---- */
typedef uint32_t DWORD;
typedef DWORD *LPDWORD, *PDWORD;
typedef int BOOL;
typedef uint16_t WORD;
typedef unsigned int UINT;
typedef void *LPVOID;
typedef const void *LPCVOID;
typedef void *HANDLE;
typedef HANDLE HLOCAL;
typedef size_t SIZE_T;
typedef uintptr_t DWORD_PTR;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

typedef struct _MEMORY_BASIC_INFORMATION {
    LPVOID BaseAddress;       /* queried address rounded down to its page */
    LPVOID AllocationBase;    /* base of the reservation (NULL when free) */
    DWORD AllocationProtect;  /* always PAGE_NOACCESS on CE (0 when free) */
    SIZE_T RegionSize;        /* bytes from BaseAddress with same state/protect */
    DWORD State;              /* MEM_COMMIT, MEM_RESERVE or MEM_FREE */
    DWORD Protect;            /* protection of the run (0 unless committed) */
    DWORD Type;               /* MEM_PRIVATE, 0 when free */
} MEMORY_BASIC_INFORMATION, *PMEMORY_BASIC_INFORMATION;

typedef struct _SYSTEM_INFO {
    WORD wProcessorArchitecture;
    WORD wReserved;
    DWORD dwPageSize;
    LPVOID lpMinimumApplicationAddress;
    LPVOID lpMaximumApplicationAddress;
    DWORD_PTR dwActiveProcessorMask;
    DWORD dwNumberOfProcessors;
    DWORD dwProcessorType;
    DWORD dwAllocationGranularity;
    WORD wProcessorLevel;
    WORD wProcessorRevision;
} SYSTEM_INFO, *LPSYSTEM_INFO;

typedef struct _MEMORYSTATUS {
    DWORD dwLength;
    DWORD dwMemoryLoad;
    SIZE_T dwTotalPhys;
    SIZE_T dwAvailPhys;
    SIZE_T dwTotalPageFile;
    SIZE_T dwAvailPageFile;
    SIZE_T dwTotalVirtual;
    SIZE_T dwAvailVirtual;
} MEMORYSTATUS, *LPMEMORYSTATUS;

/* ---- constants: values of the Windows SDK headers ---- */
#define PAGE_NOACCESS          0x01
#define PAGE_READONLY          0x02
#define PAGE_READWRITE         0x04
#define PAGE_WRITECOPY         0x08
#define PAGE_EXECUTE           0x10
#define PAGE_EXECUTE_READ      0x20
#define PAGE_EXECUTE_READWRITE 0x40
#define PAGE_EXECUTE_WRITECOPY 0x80
#define PAGE_GUARD             0x100
#define PAGE_NOCACHE           0x200

#define MEM_COMMIT       0x00001000
#define MEM_RESERVE      0x00002000
#define MEM_DECOMMIT     0x00004000
#define MEM_RELEASE      0x00008000
#define MEM_FREE         0x00010000
#define MEM_PRIVATE      0x00020000
#define MEM_MAPPED       0x00040000
#define MEM_RESET        0x00080000
#define MEM_TOP_DOWN     0x00100000
#define MEM_AUTO_COMMIT  0x00200000
#define MEM_IMAGE        0x01000000

#define PROCESSOR_ARCHITECTURE_ARM 5

#define ERROR_SUCCESS           0
#define ERROR_NOT_ENOUGH_MEMORY 8
#define ERROR_ACCESS_DENIED     5
#define ERROR_INVALID_HANDLE    6
#define ERROR_OUTOFMEMORY       14
#define ERROR_BAD_LENGTH        24
#define ERROR_NOT_SUPPORTED     50
#define ERROR_INVALID_PARAMETER 87

/* ---- errors ---- */

/* The calling thread's last error code; set by every function below that
 * fails (and by SetLastError).  Successful calls leave it unchanged. */
DWORD GetLastError(void);
void SetLastError(DWORD dwErrCode);

/* ---- virtual memory ---- */

/*
 * VirtualAlloc - reserve and/or commit pages of the slot.
 *
 * MEM_RESERVE takes whole 64 KB blocks: first fit from the lowest free block
 * (block 0 is never handed out), or from the top with MEM_TOP_DOWN.  An
 * address is rounded down to 64 KB; if any block in the range is in use the
 * call fails with ERROR_INVALID_PARAMETER.  With no free run large enough:
 * ERROR_NOT_ENOUGH_MEMORY.  So 512 one-page MEM_RESERVE|MEM_COMMIT calls run
 * out of the 32 MB slot before the end: each costs a whole block.
 *
 * Large Memory Area (profiles ce3, ce5): lpAddress NULL, a page-rounded size
 * of 2 MB or more, type exactly MEM_RESERVE and PAGE_NOACCESS reserves
 * outside the slot; failure there is ERROR_OUTOFMEMORY.  The same size with
 * MEM_COMMIT must fit in the slot.
 *
 * MEM_COMMIT rounds to pages; the range must lie inside one reservation
 * (ERROR_INVALID_PARAMETER).  Committed pages read as zero; committing a
 * committed page only sets its protection.  Without device RAM:
 * ERROR_NOT_ENOUGH_MEMORY.
 *
 * Size 0, unknown flags, PAGE_NOACCESS with a modifier, or several base
 * protections: ERROR_INVALID_PARAMETER.  PAGE_WRITECOPY and
 * PAGE_EXECUTE_WRITECOPY: ERROR_NOT_SUPPORTED.  MEM_AUTO_COMMIT is not
 * emulated: ERROR_NOT_SUPPORTED.
 *
 * Returns the base of what was reserved or committed (page- or block-
 * rounded), NULL on failure.
 */
LPVOID VirtualAlloc(LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType,
                    DWORD flProtect);

/*
 * VirtualFree - decommit pages or release a reservation.
 *
 * MEM_RELEASE: dwSize must be 0 and lpAddress the reservation's base.  On
 * ce3/ce5 a reservation whose pages are partly committed and partly reserved
 * is refused (ERROR_INVALID_PARAMETER); a wholly committed or wholly reserved
 * one is released, and its blocks return to the slot.  ce6 releases any.
 * MEM_DECOMMIT: dwSize non-zero and the page-rounded range inside one
 * reservation, else ERROR_INVALID_PARAMETER; decommitted pages fault on
 * access and give their RAM back.  Exactly one of the two flags.
 */
BOOL VirtualFree(LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType);

/*
 * VirtualQuery - describe the run of pages that starts at lpAddress's page.
 *
 * Fills lpBuffer (see MEMORY_BASIC_INFORMATION above) and returns the
 * number of bytes written, or 0: ERROR_BAD_LENGTH when dwLength is smaller
 * than the structure, ERROR_INVALID_PARAMETER for an address neither in the
 * slot nor in a Large Memory Area reservation.  For a free address the run
 * is the free blocks up to the next reservation or the slot's end.
 */
SIZE_T VirtualQuery(LPCVOID lpAddress, PMEMORY_BASIC_INFORMATION lpBuffer,
                    SIZE_T dwLength);

/*
 * VirtualProtect - change the protection of committed pages.
 *
 * Every page of the page-rounded range must be committed and lie in one
 * reservation, else ERROR_INVALID_PARAMETER.  Stores the old protection of
 * the first page in *lpflOldProtect (which must not be NULL).
 * PAGE_GUARD is kept as a flag but a guard page simply faults on access: the
 * one-shot guard exception of CE is not emulated.  PAGE_NOCACHE is recorded.
 */
BOOL VirtualProtect(LPVOID lpAddress, SIZE_T dwSize, DWORD flNewProtect,
                    PDWORD lpflOldProtect);

/* GetSystemInfo - page size 4096, allocation granularity 64 KB, application
 * addresses from the slot's block 1 to its end, one ARM processor. */
void GetSystemInfo(LPSYSTEM_INFO lpSystemInfo);

/*
 * GlobalMemoryStatus - device RAM and slot use.
 * dwTotalVirtual is the slot size; dwAvailVirtual the 64 KB-aligned free
 * blocks of the slot; dwTotalPhys the device RAM (CEBOX_RAM); dwAvailPhys
 * what is left of it after every commit; dwMemoryLoad the used percentage;
 * page-file fields 0.
 */
void GlobalMemoryStatus(LPMEMORYSTATUS lpBuffer);

#ifdef __cplusplus
}
#endif

#endif /* CEBOX_WINMEM_H */
