/*
 * core.c - creation of the process's emulated CE process (see core.h).
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "layout.h"
#include "lock.h"
#include "os.h"
#include "record/leaks.h"
#include "record/stack.h"

static struct cebox_core the_core;
static _Atomic int core_once = CORE_ONCE_NOT_YET;

/* The settings as the process's start read them, kept by the --only
 * decision (core_boxes_this_program) for the core's start, which follows
 * it in the same call: the environment is read and parsed once.  Kept in
 * the core's own settings field, which the start writes anyway (a copy of
 * their 2 KB of their own took a page of .bss more). */
enum { START_NONE, START_WRITING, START_READY, START_CLOSED };
static atomic_int start_state;

CEBOX_START_CODE static int load_settings(struct cebox_settings *s, char err[OPTIONS_ERR_MAX])
{
    return options_load_environ(environ, s, err);
}

CEBOX_START_CODE static void keep_start_settings(const struct cebox_settings *s)
{
    int expected = START_NONE;
    if (atomic_compare_exchange_strong(&start_state, &expected, START_WRITING)) {
        the_core.settings = *s;
        atomic_store_explicit(&start_state, START_READY, memory_order_release);
    }
}

/* The start's settings: those the decision kept, else read now (and no
 * decision keeps any after this: the core's start writes the same field).
 * A decision still writing them is waited for. */
static int load_start_settings(struct cebox_settings *s, char err[OPTIONS_ERR_MAX])
{
    int state = START_NONE;
    if (atomic_compare_exchange_strong(&start_state, &state, START_CLOSED)) {
        return load_settings(s, err);
    }
    while (state == START_WRITING) {
        sched_yield();
        state = atomic_load_explicit(&start_state, memory_order_acquire);
    }
    if (state == START_READY) {
        *s = the_core.settings;
        return 0;
    }
    return load_settings(s, err);
}

static void die(const char *msg)
{
    /* One line, straight to the descriptor: no stdio, no heap. */
    static const char prefix[] = "cebox: ";
    os_write_stderr(prefix, sizeof prefix - 1);
    os_write_stderr(msg, strlen(msg));
    os_write_stderr("\n", 1);
    _exit(CORE_EXIT_BAD_SETTINGS);
}

/* A device of the process's own, in the state the settings ask for. */
static int init_private(struct cebox_core *c, const struct cebox_settings *s)
{
    const struct cebox_profile *p = s->profile;
    const struct memstate_table *t = memstate_table_by_id((enum memstate_table_id)s->thresholds);
    if (ram_init(&c->ram, s->ram / p->page_size, p->page_size, t) != 0) {
        return -1;
    }
    ram_set_force_mode(&c->ram, (enum ram_force_mode)s->state_by);
    if (s->state != MEMSTATE_NORMAL) {
        ram_force_state(&c->ram, (enum memstate)s->state);
    }
    return 0;
}

/* The session `cebox run` made: through the descriptor it handed down
 * while that still names the session's file (a program that changed user
 * can no longer open the 0600 path), else by the path.  A process that can
 * do neither runs on a device of its own (of the run's size: cebox run
 * exported its settings), and its exit summary says why: cebox never stops
 * a program over its own bookkeeping. */
static int join_session(struct cebox_core *c, const struct cebox_settings *s)
{
    int err = s->session_fd >= 0 ? ram_session_join_fd(&c->ram, s->session_fd, s->session) : EBADF;
    if (err != 0) {
        err = ram_session_join(&c->ram, s->session);
    }
    if (err == 0) {
        return 0;
    }
    if (init_private(c, s) != 0) {
        return -1;
    }
    char why[RAM_WHY_MAX];
    snprintf(why, sizeof why, "could not join the session %s: %s", s->session, ram_join_strerror(err));
    ram_note_private(&c->ram, why);
    return 0;
}

/* The device RAM: the session's when `cebox run` made one, else private. */
static int init_ram(struct cebox_core *c, const struct cebox_settings *s)
{
    return s->session[0] != '\0' ? join_session(c, s) : init_private(c, s);
}

static DWORD build(struct cebox_core *c, const struct cebox_settings *s)
{
    const struct cebox_profile *p = s->profile;
    c->settings = *s;
    os_set_spare_stderr(s->stderr_fd);
    if (init_ram(c, s) != 0) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    struct slot_config cfg = {
        .size = s->slot_size,
        .granularity = p->granularity,
        .page_size = p->page_size,
        .large_memory_area = s->large_memory_area,
        .lma_min = p->lma_min,
        .release_mixed = p->release_mixed,
        .honour_top_down = p->honour_top_down,
        .alloc_prot_error_is_invalid = p->alloc_prot_error_is_invalid,
        .ce3_vm_checks = p->ce3_vm_checks,
        .ram = &c->ram,
        .commit_ahead = s->commit_ahead,
        .peak_times = s->out_dir[0] != '\0' || s->leaks, /* only a log reads them */
    };
    DWORD err = slot_create(&cfg, &c->slot);
    if (err != 0) {
        /* Nothing half built stays behind: the device goes with the slot. */
        ram_release(&c->ram);
        c->slot = NULL;
    }
    return err;
}

/* ---- fork ----
 * The core's locks (the process heap's making, every heap's, the slot's,
 * a private device's) are taken before a fork and given back after it in
 * both processes, so the child's copies are never left held by a thread
 * it does not have: a child forked while another thread was inside
 * VirtualAlloc or HeapAlloc can allocate.  Registered with the core's start, so before the preload's
 * and the log's handlers: pthread_atfork runs the preparations in the
 * reverse order (the log's lock, the preload's tables, then these) and the
 * others in this order, the same nesting as the calls themselves.  A
 * process that has only ever had one thread has nobody to hold them
 * (lock_needed) and takes none: their words are not written, and no page
 * of them is copied on write after the fork. */
static _Thread_local bool fork_locked __attribute__((tls_model("initial-exec")));
/* Held while the process heap is made (core_process_heap): the outermost. */
static pthread_mutex_t process_heap_lock = PTHREAD_MUTEX_INITIALIZER;

static void fork_prepare(void)
{
    fork_locked = lock_needed();
    if (!fork_locked) {
        return;
    }
    pthread_mutex_lock(&process_heap_lock);
    heap_lock_all();
    slot_lock(the_core.slot);
    ram_fork_lock(&the_core.ram);
}

static void fork_release(bool child)
{
    if (!fork_locked) {
        return;
    }
    ram_fork_unlock(&the_core.ram, child);
    slot_unlock(the_core.slot);
    heap_unlock_all();
    pthread_mutex_unlock(&process_heap_lock);
}

static void fork_parent(void)
{
    fork_release(false);
}

static void fork_child(void)
{
    fork_release(true);
}

static void core_init(void)
{
    char err[OPTIONS_ERR_MAX];
    struct cebox_settings s;
    if (load_start_settings(&s, err) != 0) {
        die(err);
    }
    if (build(&the_core, &s) != 0) {
        die("cannot reserve the slot's address range (the host refused the mapping)");
    }
    if (fault_start(&the_core.settings, err) != 0) { /* the entry hook, only when a --fail-* rule is given */
        die(err);
    }
    core_atfork(fork_prepare, fork_parent, fork_child); /* once: core_init runs once a process */
    leaks_start(&the_core); /* --leaks: the tracker, from the first block on */
    if (s.out_dir[0] != '\0' || s.leaks) {
        stack_load_unwinder(); /* the failures', the crash's and the blocks' stacks (fault_start: its rules') */
    }
}

void core_run_once(_Atomic int *state, void (*fn)(void))
{
    if (atomic_load_explicit(state, memory_order_acquire) == CORE_ONCE_DONE) {
        return;
    }
    int expected = CORE_ONCE_NOT_YET;
    if (atomic_compare_exchange_strong(state, &expected, CORE_ONCE_RUNNING)) {
        fn();
        atomic_store_explicit(state, CORE_ONCE_DONE, memory_order_release);
        return;
    }
    while (atomic_load_explicit(state, memory_order_acquire) != CORE_ONCE_DONE) {
        sched_yield();
    }
}

/* glibc's registration (GLIBC_2.3.2), and this object's handle, which
 * crtbeginS.o defines. */
extern int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso);
extern void *__dso_handle __attribute__((weak, visibility("hidden")));

CEBOX_START_CODE int core_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    return __register_atfork(prepare, parent, child, &__dso_handle != NULL ? __dso_handle : NULL);
}

/* Runs on every malloc and free of a preloaded program: one load once
 * the core is made. */
struct cebox_core *core_get(void)
{
    if (atomic_load_explicit(&core_once, memory_order_acquire) != CORE_ONCE_DONE) {
        core_run_once(&core_once, core_init);
    }
    return &the_core;
}

CEBOX_START_CODE bool core_boxes_this_program(void)
{
    char err[OPTIONS_ERR_MAX], exe[PATH_MAX];
    struct cebox_settings s;
    if (load_settings(&s, err) != 0) {
        return true; /* bad settings: core_get stops the process with the reason */
    }
    keep_start_settings(&s);
    if (s.only[0] == '\0') {
        return true;
    }
    /* Asked of the kernel directly: libc's readlink cost the start a lazy
     * binding. */
    long n = os_syscall6(SYS_readlinkat, AT_FDCWD, (long)"/proc/self/exe", (long)exe, (long)sizeof exe - 1, 0, 0);
    if (n <= 0) {
        return true;
    }
    exe[n] = '\0';
    const char *base = exe; /* after the last '/' (no strrchr: a lazy binding and a page of libc) */
    for (long i = 0; i < n; i++) {
        base = exe[i] == '/' ? exe + i + 1 : base;
    }
    return options_matches_glob(s.only, exe) || options_matches_glob(s.only, base);
}

struct heap *core_process_heap(struct cebox_core *c)
{
    struct heap *h = atomic_load_explicit(&c->process_heap, memory_order_acquire);
    if (h != NULL) {
        return h;
    }
    pthread_mutex_lock(&process_heap_lock);
    h = atomic_load_explicit(&c->process_heap, memory_order_relaxed);
    if (h == NULL) {
        DWORD err = 0;
        h = heap_create(heap_ops_for(c->settings.profile->heap), c->slot, 0, 0, 0, &err);
        /* The heap's figures, only where they are read: the timeline's log,
         * or the session's shell (a notice that released nothing says
         * whether the heap holds freed pages still committed). */
        if (h != NULL && h->ops->publish != NULL && (c->settings.out_dir[0] != '\0' || c->ram.session)) {
            h->ops->publish(h, &c->ram);
        }
        atomic_store_explicit(&c->process_heap, h, memory_order_release);
    }
    pthread_mutex_unlock(&process_heap_lock);
    return h;
}

int core_reset(char err[OPTIONS_ERR_MAX])
{
    struct cebox_settings s;
    core_get();
    if (load_settings(&s, err) != 0) {
        return -1;
    }
    heap_destroy_all_on(the_core.slot);
    atomic_store(&the_core.process_heap, NULL);
    slot_destroy(the_core.slot);
    the_core.slot = NULL;
    ram_release(&the_core.ram);
    if (build(&the_core, &s) != 0) {
        strcpy(err, "cannot reserve the slot");
        return -1;
    }
    return 0;
}
