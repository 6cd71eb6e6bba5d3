/*
 * test_eventlog.c - the writer in-process, read back with the reader:
 * failures through VirtualAlloc, HeapAlloc (a full fixed heap), LocalAlloc
 * and device RAM, with their reasons, call stacks (deduplicated: one stack
 * record per distinct stack), slot maps and the module map (an object
 * dlopen'ed later included); a forked child's own log, and children forked
 * while another thread is writing the log; a log removed while
 * the process runs begun again; nothing written
 * without CEBOX_OUT; errno untouched.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cebox/winmem.h"
#include "core.h"
#include "entry.h"
#include "record/eventlog.h"
#include "record/summary.h"
#include "report/logread.h"

static char top[] = "/tmp/cebox-test-eventlog-XXXXXX";
static char dir[sizeof top + 32];

/* A fresh 1 MB box writing to top/NAME. */
static void box(const char *name, const char *ram)
{
    char err[OPTIONS_ERR_MAX];
    snprintf(dir, sizeof dir, "%s/%s", top, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    setenv("CEBOX_OUT", dir, 1);
    setenv("CEBOX_SLOT_SIZE", "1M", 1);
    setenv("CEBOX_STACK_DEPTH", "16", 1);
    if (ram != NULL) {
        setenv("CEBOX_RAM", ram, 1);
    } else {
        unsetenv("CEBOX_RAM");
    }
    assert_int_equal(core_reset(err), 0);
}

static void read_log(pid_t pid, struct lr_log *log)
{
    char path[sizeof dir + 32], err[512];
    snprintf(path, sizeof path, "%s/cebox-%d.log", dir, (int)pid);
    assert_int_equal(logread_file(path, log, err, sizeof err), 0);
    assert_false(log->damaged);
    assert_true(log->nprocs >= 1);
}

static bool stack_has(const struct lr_process *p, uint32_t id, const void *ip)
{
    const struct lr_stack *s = logread_stack(p, id);
    for (uint32_t i = 0; s != NULL && i < s->depth; i++) {
        if (s->ips[i] == (uintptr_t)ip) {
            return true;
        }
    }
    return false;
}

static void *caller;

/* Reserves `blocks` 64 KB blocks, nothing committed. */
__attribute__((noinline)) static void *reserve(size_t blocks)
{
    void *p = VirtualAlloc(NULL, blocks * 65536, MEM_RESERVE, PAGE_READWRITE); /* not an LMA request */
    caller = __builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void virtualalloc_failures(void **state)
{
    (void)state;
    box("virtual", NULL);
    assert_non_null(reserve(10)); /* 5 of the 15 usable blocks left */
    uint64_t before = summary_failures(LOG_API_VIRTUALALLOC);
    void *first_site = NULL;
    static volatile int rounds = 3; /* read at run time: one call site, not an unrolled three */
    for (int i = 0; i < rounds; i++) {
        errno = 1234;
        assert_null(reserve(8)); /* slot exhausted, three times from one call site */
        first_site = caller;
        assert_int_equal(errno, 1234);
        assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
    }
    /* A malloc as the preload library makes it: the process heap's
     * allocation of a request as large as the slot fails, and the heap
     * (its large item refused by the slot for its size) says why. */
    struct heap *ph = core_process_heap(core_get());
    DWORD err = 0;
    assert_null(ph->ops->alloc(ph, 0, 1u << 20, &err));
    entry_fail(LOG_API_MALLOC, 1u << 20, ERROR_NOT_ENOUGH_MEMORY, LOG_REASON_NONE);
    assert_int_equal(summary_failures(LOG_API_VIRTUALALLOC), before + 3);

    struct lr_log log;
    read_log(getpid(), &log);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->pid, getpid());
    assert_int_equal(p->slot_size, 1u << 20);
    assert_int_equal(p->stack_depth, 16);
    assert_non_null(strstr(p->settings, "CEBOX_STACK_DEPTH=16\t(set)"));
    assert_true(p->nmodules >= 2);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    assert_string_equal(p->modules[0].path, exe);
    assert_true(p->modules[0].build_id_len > 0);
    assert_int_equal(p->nfailures, 4);
    const struct lr_failure *f = &p->failures[0];
    assert_int_equal(f->api, LOG_API_VIRTUALALLOC);
    assert_int_equal(f->reason, LOG_REASON_EXHAUSTED);
    assert_int_equal(f->size, 8 * 65536);
    assert_int_equal(f->error, ERROR_NOT_ENOUGH_MEMORY);
    assert_int_equal(f->state, 0);
    assert_int_equal(f->free_blocks, 5);
    assert_int_equal(f->largest_free_run, 5);
    assert_int_equal(f->blocks, 16);
    assert_non_null(f->map);
    assert_string_equal(f->map, "-Rrrrrrrrrr....."); /* one reservation of 10 blocks */
    assert_true(stack_has(p, f->stack_id, first_site));
    /* One stack for the three identical failures, written once. */
    assert_int_equal(p->failures[1].stack_id, f->stack_id);
    assert_int_equal(p->failures[2].stack_id, f->stack_id);
    assert_int_equal(p->failures[3].reason, LOG_REASON_TOO_LARGE);
    assert_int_equal(p->failures[3].api, LOG_API_MALLOC);
    assert_int_equal(p->nstacks, 1 + (p->failures[3].stack_id != f->stack_id));
    assert_true(log.records >= 1 + p->nmodules + p->nstacks + 2 * 4);
    assert_true(p->failures[1].time_ns >= f->time_ns);
    logread_free(&log);
}

static void heap_failures(void **state)
{
    (void)state;
    box("heap", NULL);
    HANDLE h = HeapCreate(0, 4096, 8192);
    assert_non_null(h);
    int ok = 0;
    while (HeapAlloc(h, 0, 2000) != NULL) {
        ok++;
    }
    assert_true(ok >= 1);
    assert_null(LocalAlloc(LMEM_FIXED, 900 * 1024)); /* 15 blocks; 11 are free */
    assert_null(HeapReAlloc(GetProcessHeap(), HEAP_REALLOC_IN_PLACE_ONLY, LocalAlloc(LMEM_FIXED, 16), 600000));
    struct lr_log log;
    read_log(getpid(), &log);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->nfailures, 3);
    assert_int_equal(p->failures[0].api, LOG_API_HEAPALLOC);
    assert_int_equal(p->failures[0].reason, LOG_REASON_HEAP_FULL);
    assert_int_equal(p->failures[0].error, 0); /* CE sets none */
    assert_int_equal(p->failures[1].api, LOG_API_LOCALALLOC);
    assert_int_equal(p->failures[1].reason, LOG_REASON_EXHAUSTED);
    assert_int_equal(p->failures[1].free_blocks, 11);
    assert_int_equal(p->failures[2].api, LOG_API_HEAPREALLOC);
    assert_int_equal(p->failures[2].reason, LOG_REASON_IN_PLACE);
    assert_non_null(strchr(p->failures[1].map, 'H'));
    logread_free(&log);
}

static void ram_failure_and_dlopen(void **state)
{
    (void)state;
    box("ram", "64K");
    void *lib = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    assert_null(VirtualAlloc(NULL, 128 * 1024, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
    struct lr_log log;
    read_log(getpid(), &log);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->nfailures, 1);
    assert_int_equal(p->failures[0].reason, LOG_REASON_RAM);
    assert_int_equal(p->ram_bytes, 64 * 1024);
    if (lib != NULL) {
        bool seen = false;
        for (size_t i = 0; i < p->nmodules; i++) {
            seen = seen || strstr(p->modules[i].path, "libz.so") != NULL;
        }
        assert_true(seen);
        dlclose(lib);
    }
    logread_free(&log);
}

static void forked_child_has_its_own_log(void **state)
{
    (void)state;
    box("fork", NULL);
    assert_non_null(reserve(10));
    assert_null(reserve(8)); /* the parent's, before the fork */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        _exit(reserve(8) == NULL ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct lr_log log;
    read_log(child, &log);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->pid, child);
    assert_int_equal(p->ppid, getpid());
    assert_int_equal(p->flags & 1, 1);
    assert_int_equal(p->nfailures, 1);
    assert_int_equal(p->failures[0].seq, 1);
    /* Its one thread is itself: the thread id the parent's thread kept
     * (the parent's failure asked for it) is forgotten at the fork. */
    assert_int_equal(p->failures[0].tid, (uint32_t)child);
    /* Its stack is in its own file, although the parent wrote it first. */
    assert_non_null(logread_stack(p, p->failures[0].stack_id));
    assert_true(p->nmodules >= 2);
    logread_free(&log);
    read_log(getpid(), &log);
    assert_int_equal(log.procs[0].nfailures, 1);
    assert_int_equal(log.procs[0].failures[0].tid, (uint32_t)getpid());
    logread_free(&log);
}

/* A thread that fails reservations until told to stop: each failure is a
 * record written under the log's lock. */
static atomic_bool stop_failing;

static void *fail_until_stopped(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_failing)) {
        (void)reserve(8);
    }
    return NULL;
}

/* Waits at most 10 s for child; false (the child killed) if it hangs. */
static bool child_ends(pid_t child, int *status)
{
    for (int waited_ms = 0; waited_ms < 10000; waited_ms++) {
        pid_t got = waitpid(child, status, WNOHANG);
        if (got == child) {
            return true;
        }
        usleep(1000);
    }
    kill(child, SIGKILL);
    (void)waitpid(child, status, 0);
    return false;
}

/* Children forked while another thread writes the log: the lock is held
 * across each fork (the fork handlers), so no child finds it taken by a
 * thread it does not have, and each writes its own failure. */
static void forks_while_another_thread_logs(void **state)
{
    (void)state;
    box("forks", NULL);
    assert_non_null(reserve(10));
    atomic_store(&stop_failing, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fail_until_stopped, NULL), 0);
    for (int i = 0; i < 40; i++) {
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
            _exit(reserve(8) == NULL ? 0 : 1);
        }
        int status;
        bool ended = child_ends(child, &status);
        if (!ended) {
            atomic_store(&stop_failing, true);
            pthread_join(t, NULL);
            fail_msg("fork %d: the child hung at its first log record", i);
        }
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        struct lr_log log;
        read_log(child, &log);
        assert_int_equal(log.procs[0].nfailures, 1);
        assert_int_equal(log.procs[0].failures[0].tid, (uint32_t)child);
        logread_free(&log);
    }
    atomic_store(&stop_failing, true);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* The program removes the log while it runs: the next failure begins the
 * file again (header, modules, its stack), readable on its own. */
static void removed_log_begun_again(void **state)
{
    (void)state;
    box("removed", NULL);
    assert_non_null(reserve(10));
    assert_null(reserve(8));
    char path[sizeof dir + 32];
    snprintf(path, sizeof path, "%s/cebox-%d.log", dir, (int)getpid());
    assert_int_equal(unlink(path), 0);
    assert_null(reserve(8)); /* the same stack as the first */
    struct lr_log log;
    read_log(getpid(), &log);
    assert_int_equal(log.nprocs, 1);
    const struct lr_process *p = &log.procs[0];
    assert_int_equal(p->nfailures, 1);
    assert_non_null(logread_stack(p, p->failures[0].stack_id));
    assert_true(stack_has(p, p->failures[0].stack_id, caller));
    assert_true(p->nmodules >= 2);
    logread_free(&log);
}

static size_t files_in(const char *path)
{
    DIR *d = opendir(path);
    size_t n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static void nothing_without_out(void **state)
{
    (void)state;
    box("none", NULL);
    unsetenv("CEBOX_OUT");
    char err[OPTIONS_ERR_MAX];
    assert_int_equal(core_reset(err), 0);
    uint64_t before = summary_failures(LOG_API_VIRTUALALLOC);
    assert_non_null(reserve(10));
    assert_null(reserve(8));
    assert_int_equal(summary_failures(LOG_API_VIRTUALALLOC), before + 1);
    assert_int_equal(files_in(dir), 0);
    assert_string_equal(eventlog_path(), "");
}

static int teardown(void **state)
{
    (void)state;
    char cmd[sizeof top + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    if (mkdtemp(top) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(virtualalloc_failures),
        cmocka_unit_test(heap_failures),
        cmocka_unit_test(ram_failure_and_dlopen),
        cmocka_unit_test(forked_child_has_its_own_log),
        cmocka_unit_test(forks_while_another_thread_logs),
        cmocka_unit_test(removed_log_begun_again),
        cmocka_unit_test(nothing_without_out),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
