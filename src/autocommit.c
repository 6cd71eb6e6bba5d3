/*
 * autocommit.c - MEM_AUTO_COMMIT for a program linked with libcebox that
 * asks for it (cebox_auto_commit, include/cebox.h): a SIGSEGV handler that
 * commits a reserved page of such a reservation when it is first touched,
 * and passes every other fault on to the action the program had.
 *
 * Owns: that handler and the action it displaced.
 *
 * Invariants: nothing is installed unless the program asks (a signal is
 * the program's to handle; the preload library never asks: it exports no
 * VirtualAlloc, so no MEM_AUTO_COMMIT reservation exists there); a fault
 * that is not a first touch of such a page reaches the previous action
 * exactly as the kernel raised it (SA_SIGINFO or not), the default action
 * being restored and the access retried so that it kills as it would have;
 * errno is kept.
 */
#include "cebox.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "core.h"
#include "export.h"

static struct sigaction displaced;

/* The fault was not a first touch: the program's action, as the kernel
 * would have run it. */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
    if (displaced.sa_flags & SA_SIGINFO) {
        displaced.sa_sigaction(sig, si, uc);
    } else if (displaced.sa_handler != SIG_DFL && displaced.sa_handler != SIG_IGN) {
        displaced.sa_handler(sig);
    } else {
        /* Default (an ignored SIGSEGV from a fault is fatal too): put it
         * back; the retried access then ends the process. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
    }
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    struct cebox_core *c = core_get();
    bool touched = si->si_code == SEGV_ACCERR && c->slot != NULL && slot_touch(c->slot, si->si_addr);
    errno = saved;
    if (!touched) {
        pass_on(sig, si, uc);
    }
}

/* Is on_fault SIGSEGV's action now (the program may have replaced it)? */
static bool ours_installed(void)
{
    struct sigaction now;
    return sigaction(SIGSEGV, NULL, &now) == 0 && (now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_fault;
}

CEBOX_EXPORT int cebox_auto_commit(int enable)
{
    struct cebox_core *c = core_get();
    if (!enable) {
        slot_set_auto_commit(c->slot, false);
        if (ours_installed()) {
            sigaction(SIGSEGV, &displaced, NULL);
        }
        return 0;
    }
    if (!ours_installed()) {
        struct sigaction act;
        memset(&act, 0, sizeof act);
        act.sa_sigaction = on_fault;
        act.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&act.sa_mask);
        if (sigaction(SIGSEGV, &act, &displaced) != 0) {
            return -1;
        }
    }
    slot_set_auto_commit(c->slot, true);
    return 0;
}
