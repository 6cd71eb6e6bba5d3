/*
 * entry.h - the one way into cebox of every allocation API, and the one
 * way their failures are recorded.
 *
 * Every request of the malloc and mmap families (src/preload/preload.c)
 * and of the Win32-named functions (src/winapi.c, src/heapapi.c) passes
 * entry_begin before it is served, and every one that fails for lack of
 * memory ends in entry_fail.
 *
 * Owns: the entry hook (one function pointer: fault injection makes calls
 * fail through it), the tracker (leak tracking sees every block handed
 * out and taken back through it), the gate (every reason the preload
 * library's fast paths must not be taken, in one word), the
 * thread's "inside cebox" flag, the calling thread's pending failure
 * reason, and the recording of a failure
 * (errno or last error, the summary's counters, the event log).
 *
 * Invariants:
 *  - with no hook registered, entry_begin costs one load and one
 *    predictable branch, nothing else;
 *  - the gate's hook and tracker bits are set exactly while one is
 *    registered;
 *  - a failure is counted once and logged once, by entry_fail, under the
 *    name of the function the program called;
 *  - the pending reason is noted where the cause is found (the slot: no
 *    blocks, no run, no RAM, a state cap, a request of the slot's size; the
 *    heap: a full fixed heap, a realloc that may not move, a request no
 *    heap can serve) and taken by entry_fail, so it never outlives the
 *    request that set it (a cause that a caller recovers from is cleared
 *    with entry_clear_reason).
 */
#ifndef CEBOX_ENTRY_H
#define CEBOX_ENTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "cebox/winmem.h"
#include "memstate.h"
#include "record/logformat.h"

/* Set while this thread runs inside cebox (the preload library's
 * re-entrance guard, and the exit summary's): a call of the malloc family
 * that arrives then is served from the bootstrap arena (preload.c).
 * Initial-exec, so reading it never allocates. */
extern _Thread_local int entry_inside __attribute__((tls_model("initial-exec")));

/* ---- the gate: why a call cannot take the preload library's fast path ----
 *
 * One word, so that the fast malloc and free of the preload library
 * (preload.c) test every reason to take their general path with one load:
 * a registered hook or tracker (set here, by entry_set_hook and
 * entry_set_tracker, after the pointer is stored and before it is
 * cleared), the library not ready yet (ENTRY_GATE_CLOSED, set from the
 * start; the preload library clears it once its process heap is
 * published, elsewhere it stays set and means nothing) and the preload
 * library's own reasons, in the bits from ENTRY_GATE_OWN up.  A call that
 * found the gate open goes on without a hook or tracker registered
 * meanwhile (both are registered at the core's start, before the gate
 * opens). */
enum {
    ENTRY_GATE_HOOK = 1u << 0,
    ENTRY_GATE_TRACKER = 1u << 1,
    ENTRY_GATE_CLOSED = 1u << 2,
    ENTRY_GATE_OWN = 1u << 3,
};

extern atomic_uint entry_gate __attribute__((visibility("hidden")));

/* Is any of the gate's `reasons` set?  An acquire load (a plain one on
 * x86): what was published before a reason was cleared is visible. */
static inline __attribute__((always_inline)) bool entry_gate_shut(unsigned reasons)
{
    return (atomic_load_explicit(&entry_gate, memory_order_acquire) & reasons) != 0;
}

/* Sees every request before it is served: the entry point and the size.
 * Returns LOG_REASON_NONE to let it proceed, or the reason to fail it with
 * (LOG_REASON_INJECTED for fault injection): the call then fails as for
 * lack of memory (ENOMEM, ERROR_NOT_ENOUGH_MEMORY) and is recorded.  It
 * runs with entry_inside set (so an allocation it makes comes from the
 * preload library's bootstrap arena), holding no cebox lock, in the
 * thread of the request. */
typedef enum log_reason (*entry_hook_fn)(enum log_api api, size_t size);

/* Registers the hook (NULL: none).  Any thread; calls already past
 * entry_begin keep the hook they saw. */
void entry_set_hook(entry_hook_fn fn);

/* The registered hook (entry_begin's only read).  Hidden, so that the
 * test reads it directly rather than through the GOT. */
extern entry_hook_fn _Atomic entry_hook __attribute__((visibility("hidden")));

/* entry_begin's rare case, out of line: calls the registered hook fn.
 * True to serve the request, errno as it was; false once its refusal is
 * recorded. */
bool entry_ask_hook(entry_hook_fn fn, enum log_api api, size_t size);

/* Before a request of `size` bytes through `api` is served.  Returns true
 * to serve it; false when the hook failed it, already recorded by
 * entry_fail with the API's out-of-memory error (errno ENOMEM or the last
 * error ERROR_NOT_ENOUGH_MEMORY set). */
static inline __attribute__((always_inline)) bool entry_begin(enum log_api api, size_t size)
{
    entry_hook_fn fn = atomic_load_explicit(&entry_hook, memory_order_acquire); /* a plain load on x86 */
    return __builtin_expect(fn == NULL, 1) || entry_ask_hook(fn, api, size);
}

/* ---- the tracker: sees every block handed out and taken back ----
 *
 * Leak tracking (record/leaks.c) registers one; fault injection has no
 * use for it.  entry_done runs after a request succeeded, with the
 * pointer the program gets and the size it asked for; entry_freed before a
 * block is given back (before, so that another thread cannot be handed
 * the same address and be told about it first).  A reservation of the
 * mmap family or VirtualAlloc (MEM_RESERVE) is reported to done with its
 * base and length, and its munmap or MEM_RELEASE to freed after the
 * release (a munmap may give back only part of it: the tracker asks the
 * slot what is left).  Both run in the thread
 * of the request, holding no heap or slot lock; in the preload library
 * with entry_inside set (what they allocate comes from the bootstrap
 * arena).  With no tracker
 * registered each is one load and one predictable branch. */
struct entry_tracker {
    void (*done)(enum log_api api, void *p, size_t size);
    void (*freed)(enum log_api api, void *p);
};

/* Registers the tracker (NULL: none); the struct must outlive its use. */
void entry_set_tracker(const struct entry_tracker *t);

extern const struct entry_tracker *_Atomic entry_tracker __attribute__((visibility("hidden")));

/* Is a tracker registered (for work done only for it: a heap's items
 * walked before it is destroyed)? */
static inline bool entry_tracking(void)
{
    return atomic_load_explicit(&entry_tracker, memory_order_acquire) != NULL;
}

/* The tracker's calls, out of line; each keeps errno (the entry points
 * do not save it). */
void entry_track_done(const struct entry_tracker *t, enum log_api api, void *p, size_t size);
void entry_track_freed(const struct entry_tracker *t, enum log_api api, void *p);

static inline __attribute__((always_inline)) void entry_done(enum log_api api, void *p, size_t size)
{
    const struct entry_tracker *t = atomic_load_explicit(&entry_tracker, memory_order_acquire);
    if (__builtin_expect(t != NULL, 0)) {
        entry_track_done(t, api, p, size);
    }
}

static inline __attribute__((always_inline)) void entry_freed(enum log_api api, void *p)
{
    const struct entry_tracker *t = atomic_load_explicit(&entry_tracker, memory_order_acquire);
    if (__builtin_expect(t != NULL, 0)) {
        entry_track_freed(t, api, p);
    }
}

/* A request through `api` for `size` bytes failed for lack of memory:
 * counts it (summary.c), records it (eventlog.c: with --out, its reason,
 * call stack and slot map) and reports it as the API does: errno = ENOMEM
 * for the malloc and mmap families, the last error = err (when not 0: CE
 * sets none for a full fixed heap) for the Win32 names, whose errno is left
 * alone.  err is also the error the log shows.  reason: LOG_REASON_NONE
 * takes the thread's pending reason (LOG_REASON_OTHER when none was
 * noted); any other value wins over it.  The pending reason is cleared.
 * Call it in the thread of the request, right after the failure, holding
 * no cebox lock (in the preload library with the recursion guard still
 * set: the stack capture may allocate). */
void entry_fail(enum log_api api, size_t size, DWORD err, enum log_reason reason);

/* Did a request that failed with err fail for lack of room: err is
 * ERROR_NOT_ENOUGH_MEMORY, or a cause was noted (a request of the slot's
 * size or more, which CE refuses with ERROR_INVALID_PARAMETER; a full
 * fixed heap, with no error)?  Other errors are the caller's mistakes. */
bool entry_lacked_room(DWORD err);

/* A Win32-named request failed with err (0 when CE sets none):
 * entry_fail when it lacked room (entry_lacked_room); otherwise only the
 * last error (when err is not 0). */
void entry_fail_win32(enum log_api api, size_t size, DWORD err);

/* The thread's pending failure reason: noted by the slot and the heap
 * where they find the cause (the last one noted wins), taken by
 * entry_fail; entry_clear_reason forgets it (a cause the caller recovered
 * from, or a Win32 request starting: see entry_begin_win32). */
void entry_note_reason(enum log_reason reason);
void entry_clear_reason(void);

/* The memory state the thread's pending failure met, when it is worse
 * than the device's (a commit the low/critical cap refused: the device
 * is still in the state before it).  Taken by entry_fail with the reason
 * and cleared with it; the log records the worse of the two. */
void entry_note_state(enum memstate state);

/* entry_begin for the Win32 names, whose failures are told apart by the
 * pending reason (entry_fail_win32): the request starts with none. */
static inline bool entry_begin_win32(enum log_api api, size_t size)
{
    entry_clear_reason();
    return entry_begin(api, size);
}

/* ---- the Win32-named functions inside cebox ----
 *
 * Each marks its thread inside cebox until it returns (ENTRY_WIN32_INSIDE,
 * its first statement), as the preload library's entry points do: a signal
 * handler's malloc-family call meanwhile is served as re-entered (from the
 * bootstrap arena) instead of waiting for a lock this thread holds (a
 * heap's, the slot's, the RAM session's), and a fatal signal's summary
 * leaves those locks alone.  A program linked with libcebox and preloaded
 * too has two copies of the core, each with its own flag: the one set is
 * the preload library's (it exports cebox_inside_flag), whose malloc is the
 * one a handler reaches. */
extern int *cebox_inside_flag(void) __attribute__((weak, visibility("default")));

struct entry_win32_guard {
    int *flag;
    int was;
};

static inline struct entry_win32_guard entry_win32_enter(void)
{
    int *flag = cebox_inside_flag != NULL ? cebox_inside_flag() : &entry_inside;
    struct entry_win32_guard g = {flag, *flag};
    *flag = 1;
    return g;
}

static inline void entry_win32_leave(const struct entry_win32_guard *g)
{
    *g->flag = g->was;
}

#define ENTRY_WIN32_INSIDE \
    struct entry_win32_guard entry_win32_guard_ __attribute__((cleanup(entry_win32_leave))) = entry_win32_enter()

#endif
