/*
 * entry.c - the entry hook and the recording of failed requests (see
 * entry.h for the contract).
 *
 * Nothing here runs on the success path of a request but entry_begin's
 * test of the hook (inline in entry.h).
 */
#include "entry.h"

#include <errno.h>

#include "record/eventlog.h"
#include "record/summary.h"

entry_hook_fn _Atomic entry_hook;
const struct entry_tracker *_Atomic entry_tracker;
_Thread_local int entry_inside __attribute__((tls_model("initial-exec")));

/* Why this thread's current request failed, when a lower layer found out
 * (see entry_note_reason).  Initial-exec: it is written inside the
 * allocator, where a lazily allocated TLS block would recurse. */
static _Thread_local enum log_reason pending __attribute__((tls_model("initial-exec")));
/* The state that request met, when worse than the device's (normal, 0,
 * otherwise: see entry_note_state). */
static _Thread_local enum memstate pending_state __attribute__((tls_model("initial-exec")));

atomic_uint entry_gate = ENTRY_GATE_CLOSED;

/* The gate's `reason` set while `on` (after the pointer it stands for is
 * stored, and cleared after it is). */
static void gate_mark(unsigned reason, bool on)
{
    if (on) {
        atomic_fetch_or(&entry_gate, reason);
    } else {
        atomic_fetch_and(&entry_gate, ~reason);
    }
}

void entry_set_hook(entry_hook_fn fn)
{
    atomic_store_explicit(&entry_hook, fn, memory_order_release);
    gate_mark(ENTRY_GATE_HOOK, fn != NULL);
}

void entry_set_tracker(const struct entry_tracker *t)
{
    atomic_store_explicit(&entry_tracker, t, memory_order_release);
    gate_mark(ENTRY_GATE_TRACKER, t != NULL);
}

bool entry_ask_hook(entry_hook_fn fn, enum log_api api, size_t size)
{
    /* Inside cebox while the hook and the recording run: what they
     * allocate comes from the bootstrap arena, so entry_begin may be
     * called before the preload library sets the guard itself. */
    int was_inside = entry_inside, saved = errno;
    entry_inside = 1;
    enum log_reason why = fn(api, size);
    if (why != LOG_REASON_NONE) {
        entry_fail(api, size, ERROR_NOT_ENOUGH_MEMORY, why); /* the log's error for ENOMEM too */
    } else {
        errno = saved; /* the caller does not save it */
    }
    entry_inside = was_inside;
    return why == LOG_REASON_NONE;
}

void entry_track_done(const struct entry_tracker *t, enum log_api api, void *p, size_t size)
{
    int saved = errno;
    t->done(api, p, size);
    errno = saved;
}

void entry_track_freed(const struct entry_tracker *t, enum log_api api, void *p)
{
    int saved = errno;
    t->freed(api, p);
    errno = saved;
}

/* The malloc and mmap families report failures in errno; the Win32 names
 * in the thread's last error. */
static bool reports_in_errno(enum log_api api)
{
    return api == LOG_API_MALLOC || api == LOG_API_MMAP;
}

void entry_fail(enum log_api api, size_t size, DWORD err, enum log_reason reason)
{
    enum log_reason noted = pending;
    enum memstate met = pending_state;
    entry_clear_reason();
    if (reason == LOG_REASON_NONE) {
        reason = noted != LOG_REASON_NONE ? noted : LOG_REASON_OTHER;
    }
    summary_count_failure(api);
    if (reason == LOG_REASON_INJECTED) {
        summary_count_injected();
    }
    eventlog_failure(api, size, err, reason, met);
    if (reports_in_errno(api)) {
        errno = ENOMEM;
    } else if (err != 0) {
        SetLastError(err);
    }
}

bool entry_lacked_room(DWORD err)
{
    /* ERROR_OUTOFMEMORY: a Large Memory Area reservation the host refused */
    return err == ERROR_NOT_ENOUGH_MEMORY || err == ERROR_OUTOFMEMORY || pending != LOG_REASON_NONE;
}

void entry_fail_win32(enum log_api api, size_t size, DWORD err)
{
    if (entry_lacked_room(err)) {
        entry_fail(api, size, err, LOG_REASON_NONE);
    } else if (err != 0) {
        SetLastError(err);
    }
}

void entry_note_reason(enum log_reason reason)
{
    pending = reason;
}

void entry_note_state(enum memstate state)
{
    pending_state = state;
}

void entry_clear_reason(void)
{
    pending = LOG_REASON_NONE;
    pending_state = MEMSTATE_NORMAL;
}
