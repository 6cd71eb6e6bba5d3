/*
 * threads.c - 4 threads doing 100 000 malloc/free each, checking that no
 * block is handed out twice (each thread writes and re-reads its own
 * pattern) and that every block lies in the slot, aligned as glibc's
 * malloc promises (16 bytes on x86-64, whatever the profile's heap aligns).
 * With "fork": while they run, the main thread forks children that
 * allocate and map (cebox's heap and slot locks) and exit: a child that
 * inherited a lock held by a thread it lacks would hang (killed by its
 * alarm), or find the heap torn.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box.h"

#define THREADS 4
#define OPS 100000
#define LIVE 256

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg, seed = id * 7919u + 1;
    unsigned char *live[LIVE] = {0};
    size_t sizes[LIVE] = {0};
    uintptr_t bad = 0;
    for (int op = 0; op < OPS; op++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % LIVE;
        if (live[k] != NULL) {
            for (size_t i = 0; i < sizes[k]; i += 61) {
                bad += live[k][i] != (unsigned char)(id + k);
            }
            free(live[k]);
            live[k] = NULL;
        } else {
            sizes[k] = 1 + (seed >> 16) % ((seed & 7) == 0 ? 20000 : 300);
            live[k] = malloc(sizes[k]);
            if (live[k] == NULL || !in_box(live[k]) ||
                ((uintptr_t)live[k] & (_Alignof(max_align_t) - 1)) != 0) {
                bad++;
                continue;
            }
            memset(live[k], (int)(id + k), sizes[k]);
        }
    }
    for (int k = 0; k < LIVE; k++) {
        free(live[k]);
    }
    return (void *)bad;
}

#define FORKS 60

/* A forked child's allocations and a mapping, then its exit status: 0
 * when all went through intact. */
static int forked_child(void)
{
    alarm(2); /* a lock held by a thread the child lacks: killed, not hung */
    int bad = 0;
    for (int i = 0; i < 50; i++) {
        unsigned char *p = malloc(64 + (size_t)i * 500);
        if (p == NULL || !in_box(p)) {
            bad++;
            continue;
        }
        memset(p, 0x5a, 64);
        bad += p[63] != 0x5a;
        free(p);
    }
    void *m = mmap(NULL, 256 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bad += m == MAP_FAILED || munmap(m, 256 * 1024) != 0;
    return bad == 0 ? 0 : 1;
}

/* Whether child pid exits 0 within 5 s; a hung one (stuck in cebox's
 * fork handler, before its own alarm) is killed. */
static bool child_exited_0(pid_t pid)
{
    int status = 0;
    for (int waited = 0; waited < 500; waited++) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid) {
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        if (got < 0) {
            return false;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return false;
}

/* Children forked while the workers run: how many did not exit 0 (the
 * first failure ends the forking). */
static unsigned fork_while_busy(void)
{
    unsigned failed = 0;
    for (int i = 0; i < FORKS && failed == 0; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            _exit(forked_child());
        }
        failed += pid < 0 || !child_exited_0(pid);
    }
    return failed;
}

int main(int argc, char **argv)
{
    bool forks = argc > 1 && strcmp(argv[1], "fork") == 0;
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
    }
    unsigned failed_children = forks ? fork_while_busy() : 0;
    uintptr_t bad = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (uintptr_t)r;
    }
    CHECK(box_present(), "running inside cebox");
    CHECK(bad == 0,
          "%d threads x %d operations: every block private, intact, aligned and in the slot (%lu bad)",
          THREADS, OPS, (unsigned long)bad);
    if (forks) {
        CHECK(failed_children == 0, "%d children forked while the threads allocate: each allocates, maps and exits (%u did not)",
              FORKS, failed_children);
    }
    return box_done();
}
