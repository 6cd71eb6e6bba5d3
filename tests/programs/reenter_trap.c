/*
 * reenter_trap.c - a signal handler that allocates, delivered exactly
 * where cebox holds its locks, every time.  reenter.c's timer lands there
 * by chance; here a seccomp filter turns every mprotect system call of the
 * process, and fork's clone, into a SIGSYS at that instruction.  The
 * handler makes the mprotect itself (pkey_mprotect with no key) or refuses
 * the clone (EAGAIN), and allocates, maps and frees as reenter.c's handler
 * does.  cebox commits and decommits slot pages with mprotect while it
 * holds the slot's lock, and fork's
 * clone runs between cebox's fork handlers, which hold every lock cebox
 * has: a handler that is not then served as re-entered (from the
 * bootstrap arena) waits for a lock its own thread holds, and the run
 * hangs (the script's timeout fails it).  A thread's stack record makes
 * no host call any more (its pages stay inaccessible, and the slot calls
 * the host only where a protection changes), so that path is left to
 * reenter.c's timer; the traps of thread creation are glibc's own
 * mappings.
 *
 * The program creates and joins threads (their stacks' records made and
 * dropped), forks, and allocates and maps itself (the plain paths, for
 * comparison).  x86-64 only (the trapped call's registers); exits 77 where
 * the trap cannot be set up.  Prints TAP-style lines (box.h); exits 0 when
 * every check passed. */
#include <errno.h>
#include <linux/audit.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "../forbid_syscall.h"
#include "box.h"

#define ROUNDS 20
#define PG 4096UL

static atomic_int traps, handled, refusals, bad;
static atomic_bool armed;
static __thread int depth; /* the handler's own calls trap too: only the first allocates */

#if defined(__x86_64__)
/* The handler's part of a trapped call: mprotect as the kernel would have
 * done it; a fork's clone refused, as for lack of processes. */
static void emulate(const siginfo_t *si, ucontext_t *uc)
{
    greg_t *r = uc->uc_mcontext.gregs;
    if (si->si_syscall == SYS_mprotect) {
        long got = syscall(SYS_pkey_mprotect, r[REG_RDI], r[REG_RSI], r[REG_RDX], -1);
        r[REG_RAX] = got == -1 ? -errno : got;
    } else {
        r[REG_RAX] = -EAGAIN;
    }
}

/* mprotect, and clone without CLONE_THREAD (fork's; a thread is made by
 * clone3, or by clone with that flag), trap. */
static struct sock_filter trap_program[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 4, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 2),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])), /* the flags' low half */
    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
};

static bool trap_start(void)
{
    return syscall(SYS_pkey_mprotect, NULL, 0, PROT_NONE, -1) == 0 && /* the handler's way round the trap */
           install_syscall_filter(trap_program, sizeof trap_program / sizeof trap_program[0]);
}
#else
static void emulate(const siginfo_t *si, ucontext_t *uc)
{
    (void)si;
    (void)uc;
}

static bool trap_start(void)
{
    return false;
}
#endif

/* What reenter.c's handler does, once: a block too large for the bootstrap
 * arena (the heap's large items come from the slot), a small one checked,
 * and a mapping. */
static void allocate(void)
{
    errno = 0;
    void *big = malloc(2 << 20);
    refusals += big == NULL;
    bad += big == NULL && errno != ENOMEM;
    free(big);
    unsigned char *p = malloc(100);
    if (p == NULL) {
        bad++;
    } else {
        memset(p, 0x77, 100);
        bad += p[0] != 0x77 || p[99] != 0x77;
        free(p);
    }
    void *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        refusals++;
        bad += errno != ENOMEM;
    } else if (munmap(m, 2 * PG) != 0) {
        bad++;
    }
}

static void on_trap(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    int saved = errno;
    emulate(si, ctx);
    traps++;
    if (depth++ == 0 && atomic_load(&armed)) {
        allocate();
        handled++;
    }
    depth--;
    errno = saved;
}

static void *thread_main(void *arg)
{
    unsigned char *p = malloc(300);
    if (p != NULL) {
        memset(p, 1, 300);
    }
    free(p);
    return arg;
}

static int threads_round(void)
{
    int joined = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_main, NULL) == 0 && pthread_join(t, NULL) == 0) {
            joined++;
        }
    }
    return joined;
}

/* Forks whose clone the handler refuses: glibc runs cebox's fork handlers
 * before and after it, the handler between them. */
static int forks_round(void)
{
    int refused_forks = 0;
    for (int i = 0; i < ROUNDS; i++) {
        errno = 0;
        pid_t pid = fork();
        if (pid == 0) {
            _exit(0); /* not trapped after all: the check below fails */
        }
        if (pid > 0) {
            waitpid(pid, NULL, 0);
        }
        refused_forks += pid == -1 && errno == EAGAIN;
    }
    return refused_forks;
}

static int plain_round(void)
{
    int ok = 0;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned char *big = malloc((3 << 20) + (size_t)i * PG);
        void *m = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (big != NULL && m != MAP_FAILED && mprotect(m, PG, PROT_READ) == 0) {
            big[0] = big[3 << 20] = 5;
            ok++;
        }
        free(big);
        if (m != MAP_FAILED) {
            munmap(m, 5 * PG);
        }
    }
    return ok;
}

int main(void)
{
    if (!box_present()) {
        printf("reenter_trap: run it under cebox (glibc's malloc is not async-signal-safe)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_trap;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) != 0 || !trap_start()) {
        printf("# the system calls cannot be trapped here (x86-64 seccomp and pkey_mprotect needed)\n");
        return 77;
    }
    atomic_store(&armed, true);
    int traps_before = atomic_load(&traps);
    int joined = threads_round();
    int thread_traps = atomic_load(&traps) - traps_before;
    traps_before = atomic_load(&traps);
    int refused = forks_round();
    int fork_traps = atomic_load(&traps) - traps_before;
    int plain = plain_round();
    atomic_store(&armed, false);
    free(malloc(16)); /* one more plain free: whatever the handler queued is given back */

    CHECK(joined == ROUNDS, "%d of %d threads created and joined, the handler allocating at %d trapped calls",
          joined, ROUNDS, thread_traps);
    /* Not one a thread: the slot makes no host call where a page's
     * protection does not change (a stack occupant's inaccessible pages),
     * and glibc reuses the stacks of joined threads. */
    CHECK(thread_traps >= 1, "the calls of thread creation were trapped (%d)", thread_traps);
    CHECK(refused == ROUNDS && fork_traps == ROUNDS,
          "%d of %d forks refused at their clone, by a handler that allocated there (%d trapped)", refused, ROUNDS,
          fork_traps);
    CHECK(plain == ROUNDS, "%d of %d large blocks and mappings of the program's own", plain, ROUNDS);
    CHECK(bad == 0, "the handler's blocks were intact and every refusal ENOMEM (%d bad, %d refused, %d handled)",
          atomic_load(&bad), atomic_load(&refusals), atomic_load(&handled));
    return box_done();
}
