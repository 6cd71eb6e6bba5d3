/*
 * heapapi.c - the Win32-named heap functions (Heap*, Local*) over the
 * process's heaps.
 *
 * Owns: nothing but the translation: handles to heaps (through the registry
 * of heap.c, with the process heap checked first), the Local* flags to Heap*
 * flags, and the last error.  The rules live in the heap algorithms.
 *
 * The process heap is made at the first call of any function here (before
 * a HeapCreate'd heap, as at CE's process start), see core_process_heap.
 *
 * Last error: set only when the heap reports a non-zero code; CE fails some
 * calls without setting any (a full fixed heap, a double free, HeapSize of a
 * freed block), and so do these.
 *
 * Every allocating call passes entry_begin_win32 first, and its failure
 * goes to entry_fail_win32 (entry.h) under the name of the function the
 * program called, which records it when it lacked room (the heap says
 * why: a full fixed heap, a realloc that may not move, a request too
 * large) and sets the last error.
 */
#include "cebox/winmem.h"
#include "core.h"
#include "entry.h"
#include "export.h"
#include "heap/heap.h"

#define LMEM_REALLOC_FLAGS (LMEM_VALID_FLAGS | LMEM_MODIFY)

static void fail(DWORD err)
{
    if (err != 0) {
        SetLastError(err);
    }
}

/* The last handle this thread resolved, valid while no heap was destroyed
 * since (heap_generation), so most calls skip the registry's lock. */
static _Thread_local struct {
    HANDLE handle;
    struct heap *heap;
    unsigned long generation;
} last_resolved;

/* The heap behind a handle, or NULL. */
static struct heap *resolve(HANDLE h)
{
    struct heap *ph = core_process_heap(core_get());
    if (h == NULL) {
        return NULL;
    }
    unsigned long gen = heap_generation();
    if (h == last_resolved.handle && gen == last_resolved.generation) {
        return last_resolved.heap;
    }
    struct heap *found = ph != NULL && ph->ops->handle(ph) == h ? ph : heap_lookup(h);
    if (found != NULL) {
        last_resolved.handle = h;
        last_resolved.heap = found;
        last_resolved.generation = gen;
    }
    return found;
}

/* resolve(), with CE's error for a handle that names no heap. */
static struct heap *resolve_or_fail(HANDLE h)
{
    struct heap *found = resolve(h);
    if (found == NULL) {
        fail(ERROR_INVALID_PARAMETER);
    }
    return found;
}

static struct heap *process_heap(void)
{
    return core_process_heap(core_get());
}

CEBOX_EXPORT HANDLE GetProcessHeap(void)
{
    ENTRY_WIN32_INSIDE;
    struct heap *h = process_heap();
    return h != NULL ? h->ops->handle(h) : NULL;
}

CEBOX_EXPORT HANDLE HeapCreate(DWORD flOptions, SIZE_T dwInitialSize, SIZE_T dwMaximumSize)
{
    ENTRY_WIN32_INSIDE;
    struct cebox_core *c = core_get();
    DWORD err = 0;
    /* The process heap exists before any other heap, as on CE. */
    core_process_heap(c);
    if (!entry_begin_win32(LOG_API_HEAPCREATE, dwInitialSize)) {
        return NULL;
    }
    struct heap *h = heap_create(heap_ops_for(c->settings.profile->heap), c->slot, flOptions,
                                 dwInitialSize, dwMaximumSize, &err);
    if (h == NULL) {
        entry_fail_win32(LOG_API_HEAPCREATE, dwInitialSize, err);
        return NULL;
    }
    return h->ops->handle(h);
}

/* A destroyed heap's items are no longer the program's: the tracker is
 * told of each (leak tracking), before they go. */
static bool forget_item(void *ctx, const struct heap_walk_entry *e)
{
    (void)ctx;
    if (e->kind != HEAP_WALK_REGION && e->busy) {
        entry_freed(LOG_API_HEAPALLOC, (void *)e->addr);
    }
    return true;
}

static void forget_items(struct heap *h)
{
    if (entry_tracking()) {
        h->ops->walk(h, forget_item, NULL);
    }
}

CEBOX_EXPORT BOOL HeapDestroy(HANDLE hHeap)
{
    ENTRY_WIN32_INSIDE;
    struct heap *h = resolve(hHeap);
    if (h == NULL || h == process_heap()) {
        fail(ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    forget_items(h);
    DWORD err = 0;
    if (!heap_destroy(h, &err)) {
        fail(err);
        return FALSE;
    }
    return TRUE;
}

/* HeapAlloc, recorded as `api` when it fails for lack of room. */
static LPVOID alloc_as(HANDLE hHeap, DWORD dwFlags, SIZE_T dwBytes, enum log_api api)
{
    struct heap *h = resolve_or_fail(hHeap);
    if (h == NULL || !entry_begin_win32(api, dwBytes)) {
        return NULL;
    }
    DWORD err = 0;
    void *p = h->ops->alloc(h, dwFlags, dwBytes, &err);
    if (p == NULL) {
        entry_fail_win32(api, dwBytes, err);
    } else {
        entry_done(api, p, dwBytes);
    }
    /* cppcheck-suppress returnDanglingLifetime */
    return p;
}

static LPVOID realloc_as(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem, SIZE_T dwBytes, enum log_api api)
{
    struct heap *h = resolve_or_fail(hHeap);
    if (h == NULL || !entry_begin_win32(api, dwBytes)) {
        return NULL;
    }
    DWORD err = 0;
    bool tracking = entry_tracking();
    size_t old = tracking ? h->ops->size(h, 0, lpMem, &err) : 0;
    entry_freed(api, lpMem); /* before: its address may be handed out again at once */
    err = 0;
    void *p = h->ops->realloc(h, dwFlags, lpMem, dwBytes, &err);
    if (p == NULL) {
        entry_fail_win32(api, dwBytes, err);
        if (tracking && old != (size_t)-1) {
            entry_done(api, lpMem, old); /* still the program's */
        }
    } else {
        entry_done(api, p, dwBytes);
    }
    /* cppcheck-suppress returnDanglingLifetime */
    return p;
}

CEBOX_EXPORT LPVOID HeapAlloc(HANDLE hHeap, DWORD dwFlags, SIZE_T dwBytes)
{
    ENTRY_WIN32_INSIDE;
    return alloc_as(hHeap, dwFlags, dwBytes, LOG_API_HEAPALLOC);
}

CEBOX_EXPORT LPVOID HeapReAlloc(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem, SIZE_T dwBytes)
{
    ENTRY_WIN32_INSIDE;
    return realloc_as(hHeap, dwFlags, lpMem, dwBytes, LOG_API_HEAPREALLOC);
}

CEBOX_EXPORT BOOL HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem)
{
    ENTRY_WIN32_INSIDE;
    struct heap *h = resolve_or_fail(hHeap);
    if (h == NULL) {
        return FALSE;
    }
    DWORD err = 0;
    entry_freed(LOG_API_HEAPALLOC, lpMem);
    if (!h->ops->free(h, dwFlags, lpMem, &err)) {
        fail(err);
        return FALSE;
    }
    return TRUE;
}

CEBOX_EXPORT SIZE_T HeapSize(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem)
{
    ENTRY_WIN32_INSIDE;
    struct heap *h = resolve_or_fail(hHeap);
    if (h == NULL) {
        return (SIZE_T)-1;
    }
    DWORD err = 0;
    size_t n = h->ops->size(h, dwFlags, lpMem, &err);
    if (n == (size_t)-1) {
        fail(err);
    }
    return n;
}

CEBOX_EXPORT UINT HeapCompact(HANDLE hHeap, DWORD dwFlags)
{
    ENTRY_WIN32_INSIDE;
    struct heap *h = resolve_or_fail(hHeap);
    if (h == NULL) {
        return 0;
    }
    DWORD err = 0;
    size_t n = h->ops->compact(h, dwFlags, &err);
    if (err != 0) {
        fail(err);
        return 0;
    }
    return (UINT)n;
}

CEBOX_EXPORT BOOL HeapValidate(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem)
{
    ENTRY_WIN32_INSIDE;
    struct heap *h = resolve(hHeap);
    return h != NULL && h->ops->validate(h, dwFlags, lpMem) ? TRUE : FALSE;
}

CEBOX_EXPORT HLOCAL LocalAlloc(UINT uFlags, SIZE_T uBytes)
{
    ENTRY_WIN32_INSIDE;
    if (uFlags & ~(UINT)LMEM_VALID_FLAGS) {
        fail(ERROR_INVALID_PARAMETER);
        return NULL;
    }
    return alloc_as(GetProcessHeap(), (uFlags & LMEM_ZEROINIT) ? HEAP_ZERO_MEMORY : 0, uBytes, LOG_API_LOCALALLOC);
}

CEBOX_EXPORT HLOCAL LocalReAlloc(HLOCAL hMem, SIZE_T uBytes, UINT uFlags)
{
    ENTRY_WIN32_INSIDE;
    if ((uFlags & ~(UINT)LMEM_REALLOC_FLAGS) ||
        ((uFlags & LMEM_DISCARDABLE) && !(uFlags & LMEM_MODIFY))) {
        fail(ERROR_INVALID_PARAMETER);
        return NULL;
    }
    DWORD flags = ((uFlags & LMEM_ZEROINIT) ? HEAP_ZERO_MEMORY : 0) |
                  ((uFlags & LMEM_MOVEABLE) ? 0 : HEAP_REALLOC_IN_PLACE_ONLY);
    return realloc_as(GetProcessHeap(), flags, hMem, uBytes, LOG_API_LOCALREALLOC);
}

CEBOX_EXPORT HLOCAL LocalFree(HLOCAL hMem)
{
    ENTRY_WIN32_INSIDE;
    if (hMem == NULL) {
        return NULL;
    }
    if (!HeapFree(GetProcessHeap(), 0, hMem)) {
        SetLastError(ERROR_INVALID_PARAMETER);
        return hMem;
    }
    return NULL;
}

CEBOX_EXPORT SIZE_T LocalSize(HLOCAL hMem)
{
    ENTRY_WIN32_INSIDE;
    SIZE_T n = HeapSize(GetProcessHeap(), 0, hMem);
    return n == (SIZE_T)-1 ? 0 : n;
}
