/*
 * ram.c - device RAM, private or shared by a session (see ram.h).
 */
#include "ram.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"

#define RAM_MAGIC 0x43454252u /* "CEBR" */
#define RAM_VERSION 1u
#define RAM_MAX_MEMBERS 256

struct ram_member {
    int32_t pid;     /* 0: free row */
    uint32_t unused;
    uint64_t committed;
};

struct ram_shared {
    uint32_t magic, version;
    pthread_mutex_t lock;
    uint64_t total_pages, page;
    uint64_t used_pages;
    int32_t forced;    /* MEMSTATE_COUNT: none */
    uint32_t table;
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

static bool process_gone(int32_t pid)
{
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
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
    struct ram_shared *sh = os_map_private(bytes);
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
    long ret = syscall(SYS_mmap, NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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
        os_release(r->sh, r->map_bytes);
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
        }
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
    unlock(r->sh);
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
