/*
 * stopthreads.c - holding the other threads still (see stopthreads.h).
 */
#include "record/stopthreads.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "layout.h"
#include "os.h"

#define STOP_MAX 256     /* threads held at once; the others are counted as missed */
#define STOP_WAIT_MS 200 /* for all of them to answer */

struct stopped {
    _Atomic int tid;       /* 0: free */
    _Atomic int parked;    /* its handler has saved everything below */
    pthread_t self;
    uintptr_t sp;
    gregset_t regs;
};

static struct {
    struct stopped t[STOP_MAX];
    size_t n;
    _Atomic int release;
} st CEBOX_LARGE_TABLE;

#ifdef REG_RSP
static void on_stop(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    int tid = os_gettid();
    for (size_t i = 0; i < STOP_MAX; i++) {
        struct stopped *t = &st.t[i];
        if (atomic_load(&t->tid) != tid || atomic_load(&st.release)) {
            continue;
        }
        const mcontext_t *mc = &((const ucontext_t *)uc)->uc_mcontext;
        memcpy(t->regs, mc->gregs, sizeof t->regs);
        t->sp = (uintptr_t)mc->gregs[REG_RSP];
        t->self = pthread_self();
        atomic_store(&t->parked, 1);
        while (!atomic_load(&st.release)) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        return;
    }
}

#endif

/* The other threads' ids, from /proc/self/task, into st.t. */
static void list_threads(void)
{
    st.n = 0;
    int fd = os_open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    int me = os_gettid();
    char buf[4096];
    long n;
    while ((n = os_getdents64(fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            const char *name = buf + off + 19; /* d_ino, d_off, d_reclen, d_type */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            int tid = 0;
            for (const char *c = name; *c >= '0' && *c <= '9'; c++) {
                tid = tid * 10 + (*c - '0');
            }
            if (tid > 0 && tid != me && st.n < STOP_MAX) {
                atomic_store(&st.t[st.n].parked, 0);
                atomic_store(&st.t[st.n++].tid, tid);
            }
            off += reclen;
        }
    }
    os_close(fd);
}

static void wait_parked(size_t *parked)
{
    for (int ms = 0; ms < STOP_WAIT_MS; ms++) {
        *parked = 0;
        for (size_t i = 0; i < st.n; i++) {
            *parked += (size_t)atomic_load(&st.t[i].parked);
        }
        if (*parked == st.n) {
            return;
        }
        struct timespec one = {0, 1000000};
        nanosleep(&one, NULL);
    }
}

/* The end (highest address) of a stopped thread's stack, 0 if unknown. */
static uintptr_t stack_end(pthread_t t)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(t, &attr) != 0) {
        return 0;
    }
    bool ok = pthread_attr_getstack(&attr, &addr, &size) == 0;
    pthread_attr_destroy(&attr);
    return ok ? (uintptr_t)addr + size : 0;
}

#ifndef REG_RSP
size_t stopthreads_visit(stopthreads_fn fn, void *ctx, size_t *missed)
{
    (void)fn, (void)ctx;
    *missed = 0; /* x86-64 only for now: no thread is stopped */
    return 0;
}
#else
size_t stopthreads_visit(stopthreads_fn fn, void *ctx, size_t *missed)
{
    *missed = 0;
    atomic_store(&st.release, 0);
    list_threads();
    if (st.n == 0) {
        return 0;
    }
    int sig = SIGRTMAX;
    struct sigaction mine, old, ignore;
    memset(&mine, 0, sizeof mine);
    mine.sa_sigaction = on_stop;
    mine.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&mine.sa_mask);
    if (sigaction(sig, &mine, &old) != 0) {
        *missed = st.n;
        return 0;
    }
    for (size_t i = 0; i < st.n; i++) {
        os_tgkill(atomic_load(&st.t[i].tid), sig);
    }
    size_t parked = 0;
    wait_parked(&parked);
    for (size_t i = 0; i < st.n; i++) {
        struct stopped *t = &st.t[i];
        if (atomic_load(&t->parked)) {
            uintptr_t end = stack_end(t->self);
            fn(ctx, t->regs, sizeof t->regs, t->sp, end > t->sp ? end : t->sp);
        }
    }
    atomic_store(&st.release, 1);
    for (size_t i = 0; i < st.n; i++) {
        atomic_store(&st.t[i].tid, 0);
    }
    /* Ignoring it discards a stop signal still pending in a thread that
     * blocks it; then the program's own action is back. */
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigaction(sig, &ignore, NULL);
    sigaction(sig, &old, NULL);
    *missed = st.n - parked;
    return parked;
}
#endif
