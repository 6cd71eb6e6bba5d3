/*
 * fatal.c - cebox's handler for the signals that end a process (see
 * fatal.h for the contract).
 *
 * The program's actions are kept here, one per signal, and the kernel's
 * stays cebox's handler.  When a signal comes, the program's action
 * decides: its handler is called as the kernel would have called it (it
 * may return, exit, or restore the default action and raise the signal
 * again, which then comes back here); an ignored signal is ignored (but a
 * crash signal, which would only fault again, is treated as the default);
 * the default action ends the process: summary_finish records the ending,
 * then the default action is put back and the signal raised, unblocked, so
 * that the process dies of it.
 */
#include "record/fatal.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "core.h"
#include "entry.h"
#include "layout.h"
#include "record/eventlog.h"
#include "record/leaks.h"
#include "record/stack.h"
#include "record/summary.h"

static const int watched[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
#define WATCHED (sizeof watched / sizeof watched[0])

static struct {
    fatal_sigaction_fn next;
    bool ours[NSIG];
    struct sigaction program[NSIG]; /* the program's own action */
    pthread_mutex_t lock;           /* the program's sigaction calls, signals blocked */
    unsigned depth;                 /* stack depth of a crash */
} ft CEBOX_LARGE_TABLE = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool is_crash(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGFPE || sig == SIGILL;
}

static bool is_function(const struct sigaction *a)
{
    return a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

/* Calls the program's handler as the kernel would: with its mask (and the
 * signal itself unless SA_NODEFER) blocked, its SA_RESETHAND honoured. */
static void call_program(int sig, siginfo_t *si, void *uc)
{
    struct sigaction a = ft.program[sig];
    if (a.sa_flags & SA_RESETHAND) {
        ft.program[sig].sa_handler = SIG_DFL;
        ft.program[sig].sa_flags &= ~SA_SIGINFO;
    }
    sigset_t mask = a.sa_mask, before;
    if (!(a.sa_flags & SA_NODEFER)) {
        sigaddset(&mask, sig);
    }
    pthread_sigmask(SIG_BLOCK, &mask, &before);
    if (a.sa_flags & SA_SIGINFO) {
        a.sa_sigaction(sig, si, uc);
    } else {
        a.sa_handler(sig);
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
}

/* The crash stack, from the faulting instruction on: the frames of the
 * handler and of the kernel's return trampoline are left out when the
 * interrupted context's instruction pointer is found among them. */
static size_t crash_stack(uintptr_t *ips, size_t max, const void *uc)
{
    size_t n = stack_capture(ips, max);
#if defined(__x86_64__) && defined(REG_RIP)
    uintptr_t pc = (uintptr_t)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
    for (size_t i = 0; i < n; i++) {
        if (ips[i] == pc) {
            memmove(ips, ips + i, (n - i) * sizeof *ips);
            return n - i;
        }
    }
#else
    (void)uc;
#endif
    return n;
}

/* The end of the process by sig: recorded, then the default action. */
static void die_of(int sig, siginfo_t *si, void *uc)
{
    uintptr_t ips[LOG_MAX_DEPTH];
    struct eventlog_ending end = {.how = LOG_END_SIGNAL, .value = sig};
    if (is_crash(sig)) {
        end.fault_addr = (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL) && si != NULL
                             ? (uintptr_t)si->si_addr
                             : 0;
        end.crash_depth = crash_stack(ips, ft.depth, uc);
        end.crash_ips = ips;
    }
    struct leak_roots roots = {.stack_from = (uintptr_t)__builtin_frame_address(0), .slot_unlocked = true};
#if defined(__x86_64__) && defined(REG_RSP)
    const mcontext_t *mc = &((const ucontext_t *)uc)->uc_mcontext;
    roots.stack_from = (uintptr_t)mc->gregs[REG_RSP];
    roots.regs = mc->gregs;
    roots.regs_len = sizeof mc->gregs;
#endif
    summary_finish(&end, true, &roots);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    ft.next(sig, &dfl, NULL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    /* Still here (the signal is blocked some other way): a crash returns
     * to the faulting instruction, which faults again with the default. */
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    const struct sigaction *a = &ft.program[sig];
    if (is_function(a)) {
        call_program(sig, si, uc);
    } else if (a->sa_handler == SIG_DFL || is_crash(sig)) {
        die_of(sig, si, uc);
    }
    errno = saved;
}

void fatal_start(struct cebox_core *core, fatal_sigaction_fn next)
{
    if (next == NULL || (core->settings.out_dir[0] == '\0' && !core->settings.leaks)) {
        return;
    }
    ft.next = next;
    ft.depth = core->settings.stack_depth;
    struct sigaction mine;
    memset(&mine, 0, sizeof mine);
    mine.sa_sigaction = on_signal;
    mine.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&mine.sa_mask); /* nothing else while the ending is written */
    for (size_t i = 0; i < WATCHED; i++) {
        int sig = watched[i];
        if (next(sig, NULL, &ft.program[sig]) != 0 || ft.program[sig].sa_handler == SIG_IGN) {
            continue; /* ignored from the start (nohup): it kills nobody */
        }
        if (next(sig, &mine, NULL) == 0) {
            ft.ours[sig] = true;
        }
    }
}

void fatal_hold_kills(sigset_t *before)
{
    sigset_t kills;
    sigemptyset(&kills);
    for (size_t i = 0; i < WATCHED; i++) {
        if (!is_crash(watched[i])) {
            sigaddset(&kills, watched[i]);
        }
    }
    pthread_sigmask(SIG_BLOCK, &kills, before);
}

void fatal_unhold_kills(const sigset_t *before)
{
    pthread_sigmask(SIG_SETMASK, before, NULL);
}

bool fatal_owns(int sig)
{
    return sig > 0 && sig < NSIG && ft.ours[sig];
}

/* sigaction is async-signal-safe: a handler may call it while its thread
 * is inside this one, and must not wait for a lock that thread holds.
 * Every signal is blocked while the lock is held (the kernel's own
 * sigaction is one step for the thread that calls it, too). */
int fatal_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &before);
    pthread_mutex_lock(&ft.lock);
    if (old != NULL) {
        *old = ft.program[sig];
    }
    if (act != NULL) {
        ft.program[sig] = *act;
    }
    pthread_mutex_unlock(&ft.lock);
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    return 0;
}
