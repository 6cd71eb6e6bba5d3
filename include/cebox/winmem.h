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
    DWORD Type;               /* MEM_PRIVATE, MEM_IMAGE or MEM_MAPPED; 0 when free */
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

#define PROCESSOR_ARCHITECTURE_INTEL 0
#define PROCESSOR_ARCHITECTURE_ARM 5
#define PROCESSOR_INTEL_486 486

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
 * (block 0 is never handed out), or from the top with MEM_TOP_DOWN (ce3
 * only).  The slot's base as lpAddress means no address, as on CE.  An
 * address is rounded down to 64 KB; if any block in the range is in use the
 * call fails with ERROR_INVALID_PARAMETER.  With no free run large enough:
 * ERROR_NOT_ENOUGH_MEMORY.  So 512 one-page MEM_RESERVE|MEM_COMMIT calls run
 * out of the 32 MB slot before the end: each costs a whole block.
 * A request of 32 MB or more is refused with ERROR_INVALID_PARAMETER (ce3:
 * more than 32 MB; exactly 32 MB fails with ERROR_NOT_ENOUGH_MEMORY).
 * MEM_IMAGE or MEM_MAPPED in the type is recorded for VirtualQuery.
 *
 * Large Memory Area (profiles ce3, ce5): no address, a page-rounded size
 * of 2 MB or more, type exactly MEM_RESERVE and PAGE_NOACCESS reserves
 * outside the slot; failure there is ERROR_OUTOFMEMORY.  The same size with
 * MEM_COMMIT must fit in the slot.  On ce3 MEM_TOP_DOWN keeps a request in
 * the slot (CE 3.0 tests it first).
 *
 * MEM_COMMIT rounds to pages; the range must lie inside one reservation
 * (ERROR_INVALID_PARAMETER).  Committed pages read as zero; committing a
 * committed page only sets its protection.  Without device RAM:
 * ERROR_NOT_ENOUGH_MEMORY.
 *
 * Size 0, unknown flags, PAGE_NOACCESS with a modifier, or several base
 * protections: ERROR_INVALID_PARAMETER.  PAGE_WRITECOPY and
 * PAGE_EXECUTE_WRITECOPY: ERROR_NOT_SUPPORTED.  MEM_AUTO_COMMIT (with
 * MEM_RESERVE: each page committed read/write when first touched, the
 * access faulting when no RAM is left) only after cebox_auto_commit(1)
 * (cebox.h), else ERROR_NOT_SUPPORTED.
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
 * A Large Memory Area region is released only through its exact base, and
 * then whatever its pages' states (CE's mapper rule).
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
 * Protect is what was set (the x86 kernel's reading: execute protections
 * stay; PAGE_EXECUTE reads as PAGE_EXECUTE_READ).  Type is MEM_PRIVATE, or
 * MEM_IMAGE / MEM_MAPPED for a reservation made with that type (the Large
 * Memory Area's: MEM_MAPPED) where CE keeps a MEMBLOCK: committed pages, the
 * reservation's first block, a partial last block, a block once committed;
 * a run of other reserved blocks reads MEM_PRIVATE, as on CE 5.
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
 * addresses from the slot's block 1 to CE's 0x7FFFFFFF counted from the
 * slot's base (CE's address 0), one x86 processor (PROCESSOR_INTEL_486),
 * whose CE keeps the execute protections VirtualQuery reports. */
void GetSystemInfo(LPSYSTEM_INFO lpSystemInfo);

/*
 * GlobalMemoryStatus - device RAM and slot use.
 * dwTotalVirtual is the slot size; dwAvailVirtual the 64 KB-aligned free
 * blocks of the slot; dwTotalPhys the device RAM (CEBOX_RAM); dwAvailPhys
 * what is left of it after every commit; dwMemoryLoad the used percentage
 * as CE computes it, 100 - free * 100 / total (rounded up); page-file
 * fields 0.
 */
void GlobalMemoryStatus(LPMEMORYSTATUS lpBuffer);

/* ---- heaps ----
 *
 * The CE 5.0 heap (profile ce5, the default; ce3 and ce6 use it too until
 * their own algorithms exist), placement-exact: every pointer, HeapSize and
 * committed page is the one a CE 5.0 device (retail build) would give for the
 * same sequence of calls, as offsets inside the slot.
 *
 * A heap is a list of regions of 0x2F000 reserved bytes (three 64 KB blocks
 * of the slot each), committed page by page as it grows.  Items have an
 * 8-byte header as on the 32-bit device: an item of n bytes takes
 * (n + 8) rounded up to 16, data is 16-byte aligned, and HeapSize is that
 * minus 8 (HeapAlloc(1) -> 8, HeapAlloc(9) -> 24).  The first data byte of
 * a heap is at its handle + 0x60, of a later region at its base + 0x30.
 * Requests of 98,280 bytes or more (bytes + 24 >= 0x18000) in a growable
 * heap get a reservation of their own: data at its 64 KB-aligned base + 0x20,
 * HeapSize = the committed page-rounded size - 32 (100,000 -> 102,368).
 * Free space is merged forward only, and given back to the slot only by
 * HeapCompact (and HeapFree of a large item, and HeapDestroy).
 *
 * Handles are addresses in the slot (the heap header, as on CE); an unknown
 * or destroyed handle is refused with ERROR_INVALID_PARAMETER.  Every heap
 * is serialized, whatever HEAP_NO_SERIALIZE says (as on CE).
 *
 * Pointers that are not the data address of a busy item of the heap are
 * refused and never followed (cebox's bookkeeping lies outside the slot, so
 * a program that overruns a buffer cannot damage it): a pointer outside the
 * heap or inside an item gets ERROR_INVALID_PARAMETER; a pointer to freed
 * space or to a busy item of another heap fails as on CE 5, which sets no
 * error for HeapFree and HeapSize then.
 *
 * Sizes are SIZE_T, but the heap computes as CE does in 32 bits: a request
 * over 1 GB (0x40000000) fails with ERROR_NOT_ENOUGH_MEMORY.
 */

#define HEAP_NO_SERIALIZE          0x00000001
#define HEAP_GENERATE_EXCEPTIONS   0x00000004
#define HEAP_ZERO_MEMORY           0x00000008
#define HEAP_REALLOC_IN_PLACE_ONLY 0x00000010

#define LMEM_FIXED       0x0000
#define LMEM_MOVEABLE    0x0002
#define LMEM_NOCOMPACT   0x0010
#define LMEM_NODISCARD   0x0020
#define LMEM_ZEROINIT    0x0040
#define LMEM_MODIFY      0x0080
#define LMEM_DISCARDABLE 0x0F00
#define LMEM_VALID_FLAGS 0x0F72
#define LHND             (LMEM_MOVEABLE | LMEM_ZEROINIT)
#define LPTR             (LMEM_FIXED | LMEM_ZEROINIT)
#define NONZEROLHND      (LMEM_MOVEABLE)
#define NONZEROLPTR      (LMEM_FIXED)

/* GetProcessHeap - the process heap, created when cebox starts exactly as
 * CE's coredll does: HeapCreate(0, 0, 0), one region at the first free run
 * of three blocks, one page committed. */
HANDLE GetProcessHeap(void);

/*
 * HeapCreate - a new heap.
 *
 * flOptions may only be HEAP_NO_SERIALIZE (stored, ignored), else
 * ERROR_INVALID_PARAMETER.  (CE 5.0 also accepts HEAP_SHARED_READONLY for
 * kernel-mode callers, a heap in the shared area; cebox does not emulate it
 * and refuses it with ERROR_INVALID_PARAMETER like any other flag.)
 * Both sizes are rounded up to pages in 32-bit arithmetic (so a maximum near
 * 4 GB wraps to 0).  dwMaximumSize 0: a growable heap, one region of 0x2F000
 * bytes to start with; otherwise a fixed heap of exactly that (rounded)
 * size, one region that never grows and never makes large items.  Commits
 * dwInitialSize (one page if 0; at most the region).  So HeapCreate(0,0,0)
 * reserves three blocks and commits one page.  Failure: NULL with
 * ERROR_NOT_ENOUGH_MEMORY (a maximum of 32 MB or more always fails).
 */
HANDLE HeapCreate(DWORD flOptions, SIZE_T dwInitialSize, SIZE_T dwMaximumSize);

/*
 * HeapDestroy - release every region and large item of a heap to the slot.
 * ERROR_INVALID_PARAMETER (FALSE) for an unknown handle and for the process
 * heap.  Pointers into the heap become invalid (they fault).
 */
BOOL HeapDestroy(HANDLE hHeap);

/*
 * HeapAlloc - n bytes from the heap.
 *
 * dwFlags: HEAP_NO_SERIALIZE, HEAP_ZERO_MEMORY; anything else (including
 * HEAP_GENERATE_EXCEPTIONS) is ERROR_INVALID_PARAMETER.  n = 0 is a real
 * 8-byte block.  Without HEAP_ZERO_MEMORY the data is not cleared, except
 * the slack between n and the item's end.  Placement is CE's: a next-fit
 * search from each region's rover, regions in creation order, then the
 * uncommitted end of a region, then a new region.
 * Failure (NULL): ERROR_NOT_ENOUGH_MEMORY for n > 1 GB, no slot space or no
 * RAM; a full fixed heap fails without setting any error (as on CE); a
 * large item keeps VirtualAlloc's error (ERROR_INVALID_PARAMETER when its
 * reservation would reach the slot's size).
 */
LPVOID HeapAlloc(HANDLE hHeap, DWORD dwFlags, SIZE_T dwBytes);

/*
 * HeapReAlloc - resize a block.
 *
 * dwFlags: HEAP_NO_SERIALIZE, HEAP_ZERO_MEMORY, HEAP_REALLOC_IN_PLACE_ONLY;
 * HEAP_GENERATE_EXCEPTIONS gives ERROR_NOT_SUPPORTED, any other bit
 * ERROR_INVALID_PARAMETER.  lpMem NULL, foreign, interior or freed:
 * ERROR_INVALID_PARAMETER.  A smaller size shrinks in place (splitting off
 * the rest if it is 16 bytes or more); a larger one grows in place into the
 * free space after the block or the region's uncommitted end, else the
 * block moves (allocate, copy, free) unless HEAP_REALLOC_IN_PLACE_ONLY
 * (then NULL with ERROR_NOT_ENOUGH_MEMORY).  A large item keeps its place
 * while its committed pages suffice and never shrinks.  If committing for
 * an in-place grow fails, CE 5 returns NULL (ERROR_NOT_ENOUGH_MEMORY)
 * without trying to move.  HEAP_ZERO_MEMORY zeroes the added bytes.
 */
LPVOID HeapReAlloc(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem, SIZE_T dwBytes);

/*
 * HeapFree - free a block.  Nothing is merged backward, nothing is
 * decommitted (except a large item's reservation, which is released).
 * dwFlags other than HEAP_NO_SERIALIZE, an unknown handle, a foreign or
 * interior pointer: FALSE with ERROR_INVALID_PARAMETER.  A block already
 * freed, or a block of another heap: FALSE without setting an error (as on
 * CE 5, whose HeapFree finds the item's owner is not this heap).
 */
BOOL HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem);

/*
 * HeapSize - usable bytes of a block (see above), or (SIZE_T)-1: with
 * ERROR_INVALID_PARAMETER for bad flags, handle or pointer; without setting
 * an error for a freed block or a block of another heap (as on CE 5).
 */
SIZE_T HeapSize(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem);

/*
 * HeapCompact - merge every free run and decommit the whole pages of each
 * region's trailing free run beyond the page that holds its header.  Free
 * space elsewhere stays committed; regions are never released.  Returns the
 * largest free item, header included (0xFA0 for a fresh heap), or 0 with
 * ERROR_INVALID_PARAMETER for flags other than HEAP_NO_SERIALIZE or an
 * unknown handle.
 */
UINT HeapCompact(HANDLE hHeap, DWORD dwFlags);

/*
 * HeapValidate - TRUE when lpMem is a busy block of the heap; with lpMem
 * NULL, when the heap's bookkeeping is consistent.  Never sets an error;
 * FALSE for bad flags or handle.
 */
BOOL HeapValidate(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem);

/*
 * LocalAlloc - HeapAlloc on the process heap.  uFlags: any of
 * LMEM_VALID_FLAGS (0x0F72); only LMEM_ZEROINIT has an effect (the result is
 * always a plain pointer, so LHND works like LPTR).  LMEM_MODIFY or any other
 * bit: NULL with ERROR_INVALID_PARAMETER.
 */
HLOCAL LocalAlloc(UINT uFlags, SIZE_T uBytes);

/*
 * LocalReAlloc - HeapReAlloc on the process heap.  Without LMEM_MOVEABLE the
 * block may only change in place (HEAP_REALLOC_IN_PLACE_ONLY); LMEM_ZEROINIT
 * zeroes the added bytes.  Flags outside 0x0FF2, or LMEM_DISCARDABLE bits
 * without LMEM_MODIFY: ERROR_INVALID_PARAMETER.  LMEM_MODIFY does not skip
 * the resize.
 */
HLOCAL LocalReAlloc(HLOCAL hMem, SIZE_T uBytes, UINT uFlags);

/*
 * LocalFree - HeapFree on the process heap.  NULL: returns NULL and sets
 * nothing.  Success: NULL.  Failure (including a double free): returns hMem
 * with ERROR_INVALID_PARAMETER.
 */
HLOCAL LocalFree(HLOCAL hMem);

/*
 * LocalSize - HeapSize on the process heap, with 0 instead of (SIZE_T)-1.
 * The error is set only when HeapSize sets one (not for a freed block).
 */
SIZE_T LocalSize(HLOCAL hMem);

#ifdef __cplusplus
}
#endif

#endif /* CEBOX_WINMEM_H */
