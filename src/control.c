/*
 * control.c - cebox's own public API (include/cebox.h) over the core.
 */
#include "cebox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "config.h"
#include "core.h"
#include "entry.h"
#include "export.h"
#include "memstate.h"

CEBOX_EXPORT const char *cebox_version(void)
{
    return PACKAGE_VERSION;
}

CEBOX_EXPORT void cebox_slot_info(struct cebox_slot_info *out)
{
    struct slot *s = core_get()->slot;
    struct slot_stats st;
    slot_get_stats(s, &st);
    size_t page = slot_page_size(s);
    out->base = slot_base(s);
    out->size = slot_size(s);
    out->granularity = slot_granularity(s);
    out->blocks = st.blocks;
    out->free_blocks = st.free_blocks;
    out->largest_free_run = st.largest_free_run;
    out->reserved_blocks = st.reserved_blocks;
    out->peak_reserved_blocks = st.peak_reserved_blocks;
    out->committed_bytes = st.committed_pages * page;
    out->peak_committed_bytes = st.peak_committed_pages * page;
}

CEBOX_EXPORT size_t cebox_slot_map(char *buf, size_t len)
{
    return slot_map(core_get()->slot, buf, len);
}

CEBOX_EXPORT int cebox_memory_state(void)
{
    return (int)ram_state(&core_get()->ram);
}

CEBOX_EXPORT size_t cebox_free_ram(void)
{
    struct cebox_core *c = core_get();
    return ram_free_pages(&c->ram) * c->ram.page;
}

CEBOX_EXPORT size_t cebox_total_ram(void)
{
    struct cebox_core *c = core_get();
    return ram_total_pages(&c->ram) * c->ram.page;
}

CEBOX_EXPORT int cebox_force_state(int state)
{
    struct ram *r = &core_get()->ram;
    if (state < CEBOX_STATE_NORMAL || state > CEBOX_STATE_CRITICAL ||
        (state == CEBOX_STATE_LIMITED && r->table != NULL && r->table->limited == 0)) {
        return -1;
    }
    ram_force_state(r, (enum memstate)state);
    return 0;
}

/* ---- hibernate callbacks ---- */

#define MAX_CALLBACKS 8

static struct {
    _Atomic(cebox_hibernate_fn) fn;
    void *_Atomic ctx;
} callbacks[MAX_CALLBACKS];
static atomic_uint ncallbacks;
static atomic_uint notices_seen;
static atomic_bool watcher_running;

/* The notice watcher: CE posts WM_HIBERNATE to the application's message
 * queue; cebox has no queue to post to, so a thread of its own (started
 * with the first callback) sleeps on this process's notice count (a futex:
 * the shell's notice wakes it at once; 20 ms at most, should a wake be
 * missed) and runs the callbacks.  Running them inside an arbitrary malloc
 * call instead would re-enter whatever the program was doing (stdio, its
 * own locks). */
#define WATCH_TIMEOUT_MS 20

static void *watch_notices(void *arg)
{
    struct cebox_core *c = arg;
    for (;;) {
        ram_wait_notice(&c->ram, atomic_load(&notices_seen), WATCH_TIMEOUT_MS);
        core_deliver_hibernate(c);
    }
    return NULL;
}

static void start_watcher(void)
{
    if (atomic_exchange(&watcher_running, true)) {
        return;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* Inside cebox: the watcher is cebox's thread, not the program's, so
     * it takes no stack in the slot (occupancy.c) and what its creation
     * allocates is cebox's own. */
    int was_inside = entry_inside;
    entry_inside = 1;
    int err = pthread_create(&t, &attr, watch_notices, core_get());
    entry_inside = was_inside;
    if (err != 0) {
        atomic_store(&watcher_running, false);
    }
    pthread_attr_destroy(&attr);
}

void core_restart_watcher(void)
{
    /* After fork the child has no watcher thread, and a row of its own
     * whose count starts afresh: the parent's notices are not the child's. */
    atomic_store(&watcher_running, false);
    atomic_store(&notices_seen, ram_notices(&core_get()->ram));
    if (atomic_load(&ncallbacks) > 0) {
        start_watcher();
    }
}

CEBOX_EXPORT int cebox_on_hibernate(cebox_hibernate_fn fn, void *ctx)
{
    unsigned i = atomic_fetch_add(&ncallbacks, 1);
    if (fn == NULL || i >= MAX_CALLBACKS) {
        atomic_fetch_sub(&ncallbacks, 1);
        return -1;
    }
    atomic_store(&callbacks[i].ctx, ctx);
    atomic_store(&callbacks[i].fn, fn);
    start_watcher();
    return 0;
}

void core_deliver_hibernate(struct cebox_core *c)
{
    unsigned seen = atomic_load(&notices_seen), now = ram_notices(&c->ram);
    if (seen == now || !atomic_compare_exchange_strong(&notices_seen, &seen, now)) {
        return; /* nothing new, or another thread is delivering it */
    }
    unsigned n = atomic_load(&ncallbacks);
    for (unsigned i = 0; i < n && i < MAX_CALLBACKS; i++) {
        cebox_hibernate_fn fn = atomic_load(&callbacks[i].fn);
        if (fn != NULL) {
            fn(atomic_load(&callbacks[i].ctx));
        }
    }
}
