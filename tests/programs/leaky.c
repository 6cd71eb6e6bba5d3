/*
 * leaky.c - programs with known leaks, for tests/leaks.sh: each mode leaks
 * blocks of known sizes at known functions, so the test asserts bytes,
 * blocks, kinds and call stacks exactly.
 *
 *   struct    a record (16 bytes) whose name (40 bytes) is only known to it:
 *             definitely lost 16 at leak_record, indirectly lost 40 at
 *             name_record
 *   global    100 bytes kept in a global: still reachable, at keep_global
 *   interior  200 bytes known only by a pointer 16 bytes in: possibly lost,
 *             at keep_interior
 *   threads   four threads each lose 32 bytes at thread_leak: one site
 *   daemon    loses 24 bytes at daemon_leak, says "ready", waits; its own
 *             SIGTERM handler says "handler ran" and dies of the signal
 *   sleeper   loses 8 bytes at sleeper_leak, says "ready", waits, with no
 *             handler of its own (killed by SIGHUP in the test)
 *   churn     three threads allocate and free without pause (realloc too),
 *             after "ready": a signal lands inside cebox most of the time
 *   failchurn as churn, but two of the threads ask for more than any slot
 *             holds, without pause: each failure is written to the event
 *             log, so a signal most often finds another thread holding
 *             the log's lock
 *   crash     loses 48 bytes at crash_leak, then writes to address 0x10
 *   printf    prints "hi" and frees everything it allocated
 *   fork      the child loses 56 bytes at child_leak; the parent nothing
 *   worker    a thread holds the only pointer to its 64 bytes (from
 *             hold_block) in a register or on its stack while main exits:
 *             still reachable (the thread is stopped and scanned)
 *   siginfo   an SA_SIGINFO handler of SIGINT that returns; sigaction and
 *             signal report the program's own actions; SIGINT raised twice
 *             (the second time after signal(SIGINT, SIG_IGN)); exits 5
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

struct record {
    char *name;
    long id;
};

void *kept;
char *inner;

static NOINLINE char *name_record(void)
{
    char *s = malloc(40);
    strcpy(s, "a name nobody frees");
    return s;
}

static NOINLINE void leak_record(void)
{
    struct record *r = malloc(sizeof *r);
    r->name = name_record();
    r->id = 7;
    __asm__ volatile("" : : "r"(r) : "memory");
}

static NOINLINE void keep_global(void)
{
    kept = malloc(100);
}

static NOINLINE void keep_interior(void)
{
    inner = (char *)malloc(200) + 16;
}

static NOINLINE void *thread_leak(void *arg)
{
    void *p = malloc(32);
    __asm__ volatile("" : : "r"(p) : "memory");
    return arg;
}

static void threads(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, thread_leak, NULL);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
}

static void on_term(int sig)
{
    static const char msg[] = "handler ran\n";
    (void)!write(1, msg, sizeof msg - 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static NOINLINE void daemon_leak(void)
{
    void *p = malloc(24);
    __asm__ volatile("" : : "r"(p) : "memory");
}

static void daemon_mode(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    daemon_leak();
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}

static NOINLINE void sleeper_leak(void)
{
    void *p = malloc(8);
    __asm__ volatile("" : : "r"(p) : "memory");
}

static void sleeper_mode(void)
{
    sleeper_leak();
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}

static void *churn_loop(void *arg)
{
    for (unsigned long i = 0;; i++) {
        char *p = malloc(16 + i % 200);
        p = realloc(p, 32 + i % 300);
        free(p);
    }
    return arg;
}

static void *fail_loop(void *arg)
{
    for (;;) {
        void *p = malloc((size_t)1 << 40);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    return arg;
}

/* Two threads running `others`, then the main thread churns too. */
static void churn_mode(void *(*others)(void *))
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        pthread_create(&t[i], NULL, others, NULL);
    }
    printf("ready\n");
    fflush(stdout);
    churn_loop(NULL);
}

static NOINLINE void crash_leak(void)
{
    void *p = malloc(48);
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Overwrites the registers that may still hold the lost pointer (the
 * crash's context is scanned, as memcheck scans the registers). */
static NOINLINE long scrub(long a, long b, long c, long d)
{
    __asm__ volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d));
    return a + b + c + d;
}

static NOINLINE void crash(void)
{
    crash_leak();
    int *volatile bad = (int *)0x10;
    if (scrub(1, 2, 3, 4) == 10) {
        *bad = 1;
    }
}

static volatile int worker_ready;

static NOINLINE void *hold_block(void *arg)
{
    char *volatile p = malloc(64);
    p[0] = 1;
    worker_ready = 1;
    for (;;) {
        pause(); /* p lives on in this frame */
    }
    return arg;
}

static void worker_mode(void)
{
    pthread_t t;
    pthread_create(&t, NULL, hold_block, NULL);
    while (!worker_ready) {
        usleep(1000);
    }
}

static volatile sig_atomic_t got_signo, got_code;

static void on_int(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_signo = sig;
    got_code = si->si_code;
}

static int siginfo_mode(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_int;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGINT, NULL, &old);
    bool own = (old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_int;
    raise(SIGINT);
    printf("handler got signal %d, si_code %s; sigaction reports the program's handler: %s\n", (int)got_signo,
           got_code == SI_TKILL || got_code == SI_USER ? "user" : "other", own ? "yes" : "no");
    void (*prev)(int) = signal(SIGINT, SIG_IGN);
    raise(SIGINT);
    printf("signal returned the previous handler: %s; ignored SIGINT survived\n",
           (uintptr_t)prev == (uintptr_t)on_int ? "yes" : "no");
    return 5;
}

static NOINLINE void child_leak(void)
{
    void *p = malloc(56);
    __asm__ volatile("" : : "r"(p) : "memory");
}

static int fork_mode(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        child_leak();
        exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "struct") == 0) {
        leak_record();
    } else if (strcmp(mode, "global") == 0) {
        keep_global();
    } else if (strcmp(mode, "interior") == 0) {
        keep_interior();
    } else if (strcmp(mode, "threads") == 0) {
        threads();
    } else if (strcmp(mode, "daemon") == 0) {
        daemon_mode();
    } else if (strcmp(mode, "churn") == 0) {
        churn_mode(churn_loop);
    } else if (strcmp(mode, "failchurn") == 0) {
        churn_mode(fail_loop);
    } else if (strcmp(mode, "sleeper") == 0) {
        sleeper_mode();
    } else if (strcmp(mode, "crash") == 0) {
        crash();
    } else if (strcmp(mode, "printf") == 0) {
        printf("hi\n");
    } else if (strcmp(mode, "fork") == 0) {
        return fork_mode();
    } else if (strcmp(mode, "worker") == 0) {
        worker_mode();
    } else if (strcmp(mode, "siginfo") == 0) {
        return siginfo_mode();
    } else {
        fprintf(stderr, "usage: leaky struct|global|interior|threads|daemon|crash|printf|fork\n");
        return 2;
    }
    return 0;
}
