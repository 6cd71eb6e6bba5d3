/*
 * ram.c - device RAM, private or shared by a session (see ram.h).
 */
#include "ram.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "meta.h"

#define RAM_MAGIC 0x43454252u /* "CEBR" */
#define RAM_VERSION 2u
#define RAM_MAX_MEMBERS 256

struct ram_member {
    int32_t pid;          /* 0: free row */
    uint32_t notices;     /* hibernate notices sent to this member */
    uint64_t committed;
    uint64_t last_active; /* CLOCK_MONOTONIC ns of its last charge */
};

struct ram_shared {
    uint32_t magic, version;
    pthread_mutex_t lock;
    uint64_t total_pages, page;
    uint64_t used_pages;
    int32_t forced;    /* MEMSTATE_COUNT: none */
    uint32_t table;
    int32_t state;     /* the state after the last charge or credit */
    int32_t below_hibernate; /* free RAM is under the table's hibernate level */
    uint32_t transitions; /* how many were recorded (the ring keeps the last) */
    struct ram_transition ring[RAM_TRANSITIONS];
    struct ram_member members[RAM_MAX_MEMBERS];
};

/* ---- locking that survives a member's death ---- */

static void lock(struct ram_shared *sh)
{
    if (pthread_mutex_lock(&sh->lock) == EOWNERDEAD) {
        /* The holder died mid-update; the counts it was changing are
         * recomputed from the member rows. */
        uint64_t used = 0;
        for (int i = 0; i < RAM_MAX_MEMBERS; i++) {
            used += sh->members[i].committed;
        }
        sh->used_pages = used;
        pthread_mutex_consistent(&sh->lock);
    }
}

static void unlock(struct ram_shared *sh)
{
    pthread_mutex_unlock(&sh->lock);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void init_shared(struct ram_shared *sh, size_t total_pages, size_t page, uint32_t table,
                        int32_t forced, bool process_shared)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (process_shared) {
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    }
    pthread_mutex_init(&sh->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    sh->total_pages = total_pages;
    sh->page = page;
    sh->used_pages = 0;
    sh->forced = forced;
    sh->table = table;
    sh->state = MEMSTATE_NORMAL;
    sh->transitions = 0;
    sh->version = RAM_VERSION;
    sh->magic = RAM_MAGIC;
}

static uint32_t table_id(const struct memstate_table *t)
{
    for (uint32_t i = 0; i < MEMSTATE_TABLE_COUNT; i++) {
        if (memstate_table_by_id((enum memstate_table_id)i) == t) {
            return i;
        }
    }
    return MEMSTATE_TABLE_CE5;
}

/* ---- members ---- */

/* A zombie counts as gone: its memory went with its exit. */
static bool is_zombie(int32_t pid)
{
    char path[48], buf[128];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the command may hold spaces */
    return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

bool ram_process_gone(int32_t pid)
{
    return pid > 0 && ((kill(pid, 0) != 0 && errno == ESRCH) || is_zombie(pid));
}

static bool process_gone(int32_t pid)
{
    return ram_process_gone(pid);
}

/* Returns the pages of members whose process is gone (lock held). */
static size_t reclaim_dead_locked(struct ram_shared *sh)
{
    int saved = errno;
    size_t reclaimed = 0;
    for (int i = 0; i < RAM_MAX_MEMBERS; i++) {
        struct ram_member *m = &sh->members[i];
        if (m->pid != 0 && process_gone(m->pid)) {
            reclaimed += m->committed;
            sh->used_pages -= m->committed;
            memset(m, 0, sizeof *m);
        }
    }
    errno = saved;
    return reclaimed;
}

/* Takes a row for pid (lock held); a row already held by pid belonged to the
 * image this process exec'd from: its pages are gone with it. */
static int add_member_locked(struct ram_shared *sh, int32_t pid, uint64_t committed)
{
    int free_row = -1;
    for (int i = 0; i < RAM_MAX_MEMBERS; i++) {
        struct ram_member *m = &sh->members[i];
        if (m->pid == pid) {
            sh->used_pages -= m->committed;
            memset(m, 0, sizeof *m);
        }
        if (m->pid == 0 && free_row < 0) {
            free_row = i;
        }
    }
    if (free_row < 0) {
        reclaim_dead_locked(sh);
        for (int i = 0; i < RAM_MAX_MEMBERS && free_row < 0; i++) {
            free_row = sh->members[i].pid == 0 ? i : -1;
        }
    }
    if (free_row >= 0) {
        sh->members[free_row].pid = pid;
        sh->members[free_row].committed = committed;
        sh->used_pages += committed;
    }
    return free_row;
}

/* ---- creation ---- */

int ram_init(struct ram *r, size_t total_pages, size_t page, const struct memstate_table *t)
{
    size_t bytes = (sizeof(struct ram_shared) + 4095) & ~(size_t)4095;
    struct ram_shared *sh = meta_alloc(bytes);
    if (sh == NULL) {
        return -1;
    }
    init_shared(sh, total_pages, page, table_id(t), MEMSTATE_COUNT, false);
    *r = (struct ram){.sh = sh, .map_bytes = bytes, .page = page, .table = t, .session = false};
    r->member = add_member_locked(sh, (int32_t)getpid(), 0);
    return 0;
}

static void *map_shared(int fd, size_t bytes)
{
    /* syscall() reads every argument as a long, and the offset goes on the
     * stack: an int 0 there may carry garbage in its upper half (clang
     * stores only 4 bytes), which maps far past the end of the file. */
    long ret = syscall(SYS_mmap, 0L, (long)bytes, (long)(PROT_READ | PROT_WRITE), (long)MAP_SHARED, (long)fd, 0L);
    return ret == -1 ? NULL : (void *)ret;
}

int ram_session_create(const char *path, size_t total_pages, size_t page,
                       enum memstate_table_id table, enum memstate forced)
{
    size_t bytes = sizeof(struct ram_shared);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return errno;
    }
    struct ram_shared *sh = NULL;
    int err = ftruncate(fd, (off_t)bytes) != 0 ? errno : 0;
    if (err == 0 && (sh = map_shared(fd, bytes)) == NULL) {
        err = errno;
    }
    close(fd);
    if (err != 0) {
        unlink(path);
        return err;
    }
    init_shared(sh, total_pages, page, (uint32_t)table, (int32_t)forced, true);
    syscall(SYS_munmap, sh, bytes);
    return 0;
}

int ram_session_join(struct ram *r, const char *path)
{
    size_t bytes = sizeof(struct ram_shared);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    struct stat st;
    struct ram_shared *sh = NULL;
    int err = 0;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size != bytes) {
        err = EINVAL;
    } else if ((sh = map_shared(fd, bytes)) == NULL) {
        err = errno;
    }
    close(fd);
    if (err == 0 && (sh->magic != RAM_MAGIC || sh->version != RAM_VERSION ||
                     sh->table >= MEMSTATE_TABLE_COUNT)) {
        syscall(SYS_munmap, sh, bytes);
        err = EINVAL;
    }
    if (err != 0) {
        return err;
    }
    *r = (struct ram){.sh = sh, .map_bytes = bytes, .page = sh->page, .session = true,
                      .table = memstate_table_by_id((enum memstate_table_id)sh->table)};
    lock(sh);
    r->member = add_member_locked(sh, (int32_t)getpid(), 0);
    unlock(sh);
    return r->member < 0 ? EMFILE : 0;
}

void ram_release(struct ram *r)
{
    if (r->sh == NULL) {
        return;
    }
    lock(r->sh);
    if (r->member >= 0) {
        struct ram_member *m = &r->sh->members[r->member];
        r->sh->used_pages -= m->committed;
        memset(m, 0, sizeof *m);
    }
    unlock(r->sh);
    if (r->session) {
        syscall(SYS_munmap, r->sh, r->map_bytes);
    } else {
        meta_free(r->sh, r->map_bytes);
    }
    r->sh = NULL;
}

void ram_forked(struct ram *r, size_t committed)
{
    if (!r->session) {
        /* A private device is copied with the process: the child's own. */
        struct ram_member *m = &r->sh->members[r->member];
        m->pid = (int32_t)getpid();
        return;
    }
    lock(r->sh);
    r->member = add_member_locked(r->sh, (int32_t)getpid(), committed);
    unlock(r->sh);
}

/* ---- charging ---- */

static size_t free_pages_locked(const struct ram_shared *sh, const struct memstate_table *t)
{
    size_t real = sh->used_pages >= sh->total_pages ? 0 : sh->total_pages - sh->used_pages;
    if (sh->forced < MEMSTATE_COUNT) {
        size_t total = sh->total_pages * sh->page;
        size_t pinned = memstate_pinned_free(t, (enum memstate)sh->forced, total, sh->page) / sh->page;
        return real < pinned ? real : pinned;
    }
    return real;
}

/* Records a change of state (lock held), with the process that caused it. */
static void note_state_locked(struct ram *r)
{
    struct ram_shared *sh = r->sh;
    size_t free_pages = free_pages_locked(sh, r->table);
    enum memstate now = memstate_of(r->table, free_pages * sh->page);
    bool below = r->table != NULL && free_pages * sh->page < r->table->hibernate;
    if (below && !sh->below_hibernate && !r->session && r->member >= 0) {
        /* A device of its own: this process is its only application, so it
         * gets the notice itself.  (In a session, cebox run sends them.) */
        __atomic_add_fetch(&sh->members[r->member].notices, 1, __ATOMIC_RELEASE);
    }
    sh->below_hibernate = below;
    if ((int32_t)now == sh->state) {
        return;
    }
    struct ram_transition *t = &sh->ring[sh->transitions % RAM_TRANSITIONS];
    *t = (struct ram_transition){.time_ns = now_ns(), .free_bytes = free_pages * sh->page,
                                 .pid = (int32_t)getpid(), .from = sh->state, .to = (int32_t)now};
    sh->transitions++;
    sh->state = (int32_t)now;
}

enum ram_result ram_charge(struct ram *r, size_t pages)
{
    struct ram_shared *sh = r->sh;
    lock(sh);
    enum commit_verdict v = memstate_commit_rule(r->table, r->page, pages, free_pages_locked(sh, r->table));
    if (v != COMMIT_OK && reclaim_dead_locked(sh) != 0) {
        v = memstate_commit_rule(r->table, r->page, pages, free_pages_locked(sh, r->table));
    }
    if (v == COMMIT_OK) {
        sh->used_pages += pages;
        if (r->member >= 0) {
            sh->members[r->member].committed += pages;
            sh->members[r->member].last_active = now_ns();
        }
        note_state_locked(r);
    }
    unlock(sh);
    return v == COMMIT_OK ? RAM_OK : v == COMMIT_NO_RAM ? RAM_NO_RAM : RAM_STATE_CAP;
}

void ram_credit(struct ram *r, size_t pages)
{
    struct ram_shared *sh = r->sh;
    lock(sh);
    sh->used_pages -= pages;
    if (r->member >= 0) {
        sh->members[r->member].committed -= pages;
    }
    note_state_locked(r);
    unlock(sh);
}

size_t ram_total_pages(const struct ram *r)
{
    return r->sh->total_pages;
}

size_t ram_free_pages(const struct ram *r)
{
    lock(r->sh);
    size_t f = free_pages_locked(r->sh, r->table);
    unlock(r->sh);
    return f;
}

enum memstate ram_state(const struct ram *r)
{
    return memstate_of(r->table, ram_free_pages(r) * r->page);
}

void ram_force_state(struct ram *r, enum memstate s)
{
    lock(r->sh);
    /* Forcing "normal" hands the state back to free RAM. */
    r->sh->forced = (int32_t)(s == MEMSTATE_NORMAL ? MEMSTATE_COUNT : s);
    note_state_locked(r);
    unlock(r->sh);
}

/* ---- hibernate notices ---- */

uint32_t ram_notices(const struct ram *r)
{
    if (r->sh == NULL || r->member < 0) {
        return 0;
    }
    return __atomic_load_n(&r->sh->members[r->member].notices, __ATOMIC_RELAXED);
}

size_t ram_members(struct ram *r, struct ram_member_info *out, size_t max)
{
    size_t n = 0;
    lock(r->sh);
    reclaim_dead_locked(r->sh);
    for (int i = 0; i < RAM_MAX_MEMBERS && n < max; i++) {
        const struct ram_member *m = &r->sh->members[i];
        if (m->pid != 0 && m->pid != (int32_t)getpid()) {
            out[n++] = (struct ram_member_info){.pid = m->pid, .committed_bytes = m->committed * r->sh->page,
                                                .last_active_ns = m->last_active};
        }
    }
    unlock(r->sh);
    return n;
}

size_t ram_member_committed(struct ram *r, int32_t pid)
{
    size_t bytes = 0;
    lock(r->sh);
    for (int i = 0; i < RAM_MAX_MEMBERS; i++) {
        if (r->sh->members[i].pid == pid) {
            bytes = r->sh->members[i].committed * r->sh->page;
        }
    }
    unlock(r->sh);
    return bytes;
}

void ram_send_notice(struct ram *r, int32_t pid)
{
    lock(r->sh);
    for (int i = 0; i < RAM_MAX_MEMBERS; i++) {
        if (r->sh->members[i].pid == pid) {
            __atomic_add_fetch(&r->sh->members[i].notices, 1, __ATOMIC_RELEASE);
        }
    }
    unlock(r->sh);
}

uint32_t ram_transitions(struct ram *r, uint32_t since, struct ram_transition *out, uint32_t max)
{
    uint32_t n = 0;
    lock(r->sh);
    uint32_t total = r->sh->transitions;
    if (total - since > RAM_TRANSITIONS) {
        since = total - RAM_TRANSITIONS; /* older ones were overwritten */
    }
    for (uint32_t k = since; k < total && n < max; k++) {
        out[n++] = r->sh->ring[k % RAM_TRANSITIONS];
    }
    unlock(r->sh);
    return n;
}

size_t ram_hibernate_threshold(const struct ram *r)
{
    return r->table == NULL ? 0 : r->table->hibernate;
}

int ram_session_force(const char *path, enum memstate s)
{
    struct ram r;
    int err = ram_session_join(&r, path);
    if (err != 0) {
        return err;
    }
    ram_force_state(&r, s);
    ram_release(&r);
    return 0;
}
