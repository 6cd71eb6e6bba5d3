/*
 * ram.c - device RAM, private or shared by a session (see ram.h).
 *
 * A session file starts with a header that names the file itself (device
 * and inode, from fstat at creation) and the path it was created at.  A
 * descriptor handed down by `cebox run` is used only after fstat and that
 * header show it is an original session file and the one CEBOX_SESSION
 * names (by the kept path; by a stat of the path, where it can be looked
 * at, when the path was too long to keep): a stale number that now names
 * another file of the program's (a copy of the session included) is
 * never written to.
 *
 * A member is alive while its process exists and still maps the session
 * file (/proc/PID/maps: device and inode): an image that exec'd took its
 * pages with it, and its row goes even when the new image cannot join.
 *
 * Free RAM is the pages neither the members nor the ballast hold (a
 * forced state under --state-by ballast); a pinned forced state caps it.
 * The session's wake words are futexes: the charge or credit that crosses
 * the hibernate level, and every join while free RAM is under it, changes
 * shell_wake and wakes the shell after the lock is released; a notice wakes its member's watcher
 * on the member's notice count.  Nothing is allocated to wake anyone.
 *
 * Invariants checked here (invariant.h): every function named *_locked
 * runs with the lock held (a flag beside the mutex says so; unlocking
 * checks the mutex's own record of its owner); the used pages equal the
 * sum of the members' pages at every reclaim, and after every charge and
 * credit with --enable-debug (a scan of the table).
 */
#include "ram.h"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "meta.h"
#include "invariant.h"
#include "os.h"

#define RAM_MAGIC 0x43454252u /* "CEBR" */
#define RAM_VERSION 13u /* 4: the members' timeline figures; 5: wake words, joins, ballast; 6: the start time, the heap's free figures; 7: the members' slot maps; 8: their top live sites (--leaks); 9: free cells 0, a row's stale cells, the rows used; 10: the rows' pids in one table; 11: the map's cells rotated (ram_map_place); 12: the file's name in the header; 13: activity by count, not time */
#define RAM_MAX_MEMBERS 256

struct ram_member {
    uint32_t notices;     /* hibernate notices sent to this member */
    uint64_t committed;
    uint64_t last_active; /* the device's activity count at its last charge (0: none) */
    struct ram_timeline tl; /* written by the member only, relaxed */
    struct ram_map_row map;  /* its slot map's count and size (bytes: after the table) */
    struct ram_live_sites live; /* written by the member only, under its count */
    uint32_t map_stale;   /* the chunks of its map (bits, as map.dirty) in which former
                           * members of the row may have left cells, cleared by the
                           * member that takes the row */
};

/* What a descriptor's file must begin with to be taken for the session. */
enum { RAM_NAME_MAX = 128 };

struct ram_header {
    uint32_t magic, version;
    uint64_t dev, ino; /* the session file's own identity; 0 for a private device */
    /* The path the file was created at, or "" (a private device, or a
     * path too long for it): a start handed the descriptor compares it
     * with CEBOX_SESSION's in memory, not by a stat of the path. */
    char name[RAM_NAME_MAX];
};

struct ram_shared {
    struct ram_header hdr;
    pthread_mutex_t lock;
    uint32_t held;     /* 1 while the lock is held: what *_locked functions check */
    uint64_t total_pages, page;
    uint64_t used_pages;
    /* Counts the charges (lock held): a member's last_active is the count
     * at its last one, all a hibernate round needs to order the members
     * least recently active first.  A count, not a time: a charge is
     * nearly every start's first commit, and a clock read there would
     * fault in three pages of libc and the vDSO that a program like
     * /bin/true never touches. */
    uint64_t activity;
    int32_t forced;    /* MEMSTATE_COUNT: none */
    int32_t force_mode; /* enum ram_force_mode: how a forced state is held */
    uint64_t ballast_pages; /* RAM a forced state took as another process would */
    uint32_t table;
    int32_t state;     /* the state after the last charge or credit */
    int32_t below_hibernate; /* free RAM is under the table's hibernate level */
    uint32_t transitions; /* how many were recorded (the ring keeps the last) */
    /* Futex words (no lock needed): shell_wake changes at every crossing
     * of the hibernate level and every join, and wakes the shell waiting
     * on it; joins counts the members that took a row. */
    uint32_t shell_wake, joins;
    /* Rows [0, rows_used) have been taken (lock held): those above are
     * free, and the joins, sums and reclaims look no further (the member
     * table is 96 pages; a start reads the pids of the rows in use, and
     * its own row). */
    uint32_t rows_used;
    uint64_t start_ns;    /* CLOCK_MONOTONIC when the device was made: the run's time origin */
    /* Each row's member (0: a free row), apart from the rows: a join looks
     * for its free row and for its own pid in this kilobyte, on the
     * header's page, not in a word of each row (a page per three rows). */
    int32_t pids[RAM_MAX_MEMBERS];
    struct ram_transition ring[RAM_TRANSITIONS];
    struct ram_member members[RAM_MAX_MEMBERS];
};

/* A session file: the shared area, then each row's RAM_MAP_BLOCKS map
 * bytes from a page boundary (sparse: pages no member writes cost nothing). */
#define RAM_MAPS_OFFSET ((sizeof(struct ram_shared) + 4095) & ~(size_t)4095)
#define RAM_SESSION_BYTES (RAM_MAPS_OFFSET + (size_t)RAM_MAX_MEMBERS * RAM_MAP_BLOCKS)

static const unsigned char *row_map(const struct ram_shared *sh, int row)
{
    return (const unsigned char *)sh + RAM_MAPS_OFFSET + (size_t)row * RAM_MAP_BLOCKS;
}

/* Row i's member, 0 for a free row (relaxed: readers without the lock
 * check it again after their copy). */
static int32_t row_pid(const struct ram_shared *sh, int i)
{
    return __atomic_load_n(&sh->pids[i], __ATOMIC_RELAXED);
}

static int row_of(const struct ram_shared *sh, const struct ram_member *m)
{
    return (int)(m - sh->members);
}

/* ---- locking that survives a member's death ---- */

static void assert_held(const struct ram_shared *sh)
{
    INVARIANT(__atomic_load_n(&sh->held, __ATOMIC_RELAXED) != 0, "the device's lock is held");
}

/* The rows taken so far (lock held): no row above holds a member. */
static int rows_used_locked(const struct ram_shared *sh)
{
    return sh->rows_used < RAM_MAX_MEMBERS ? (int)sh->rows_used : RAM_MAX_MEMBERS;
}

/* The pages of the rows in use (lock held). */
static uint64_t members_sum_locked(const struct ram_shared *sh)
{
    assert_held(sh);
    uint64_t sum = 0;
    for (int i = 0; i < rows_used_locked(sh); i++) {
        sum += row_pid(sh, i) != 0 ? sh->members[i].committed : 0;
    }
    return sum;
}

static size_t reclaim_dead_locked(struct ram_shared *sh);

/* The previous holder died mid-update: the rows it may have been writing
 * are tidied (their whole maps left for their next members to clear), the
 * used pages recomputed from them, and its row (with any other dead
 * member's) reclaimed. */
static void recover_locked(struct ram_shared *sh)
{
    sh->rows_used = 0;
    for (int i = 0; i < RAM_MAX_MEMBERS; i++) {
        if (row_pid(sh, i) == 0) {
            memset(&sh->members[i], 0, sizeof sh->members[i]);
            sh->members[i].map_stale = UINT32_MAX;
        } else {
            sh->rows_used = (uint32_t)i + 1;
        }
    }
    sh->used_pages = members_sum_locked(sh);
    reclaim_dead_locked(sh);
}

static void lock(struct ram_shared *sh)
{
    int rc = pthread_mutex_lock(&sh->lock);
    INVARIANT(rc == 0 || rc == EOWNERDEAD, "the device's lock can be taken");
    __atomic_store_n(&sh->held, 1, __ATOMIC_RELAXED);
    if (rc == EOWNERDEAD) {
        recover_locked(sh);
        pthread_mutex_consistent(&sh->lock);
    }
}

static void unlock(struct ram_shared *sh)
{
    __atomic_store_n(&sh->held, 0, __ATOMIC_RELAXED);
    /* A robust mutex refuses (EPERM) an unlock by a thread that does not
     * hold it: a lock() and unlock() out of pair shows here. */
    int rc = pthread_mutex_unlock(&sh->lock);
    INVARIANT(rc == 0, "the device's lock is released by its holder");
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- waking without a lock: futexes on words of the device ----
 * Shared futex operations (no FUTEX_PRIVATE_FLAG): the words live in a
 * file mapped by several processes.  Neither side allocates or holds a
 * lock; a wake with nobody waiting is one system call, and only crossings,
 * joins and notices make one, never an ordinary charge. */

/* The raw call (os.h): libc's syscall() would set errno on a failure, and
 * is one more symbol to bind and page of libc's code at every join. */
static void futex_wake_all(uint32_t *word)
{
    (void)os_syscall6(SYS_futex, (long)word, FUTEX_WAKE, INT_MAX, 0, 0, 0);
}

/* Sleeps while *word == seen, at most timeout_ms; a change before the
 * call returns at once (EAGAIN), a signal early (EINTR): both are fine for
 * callers that look again. */
static void futex_wait_ms(uint32_t *word, uint32_t seen, unsigned timeout_ms)
{
    struct timespec t = {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000L};
    (void)os_syscall6(SYS_futex, (long)word, FUTEX_WAIT, (long)seen, (long)&t, 0, 0);
}

static void bump_and_wake(uint32_t *word)
{
    __atomic_add_fetch(word, 1, __ATOMIC_RELEASE);
    futex_wake_all(word);
}

/* The device's lock, robust (a member that dies holding it is tidied
 * after: recover_locked), shared between processes for a session. */
static void init_lock(struct ram_shared *sh, bool process_shared)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (process_shared) {
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    }
    pthread_mutex_init(&sh->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    sh->held = 0;
}

static void init_shared(struct ram_shared *sh, size_t total_pages, size_t page, uint32_t table,
                        int32_t forced, bool process_shared)
{
    init_lock(sh, process_shared);
    sh->total_pages = total_pages;
    sh->page = page;
    sh->used_pages = 0;
    sh->forced = forced;
    sh->force_mode = RAM_FORCE_PIN;
    sh->ballast_pages = 0;
    sh->shell_wake = 0;
    sh->joins = 0;
    sh->table = table;
    sh->state = MEMSTATE_NORMAL;
    sh->transitions = 0;
    sh->start_ns = now_ns();
    sh->hdr.version = RAM_VERSION;
    sh->hdr.magic = RAM_MAGIC;
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

/* Reads /proc/PID/maps line by line, looking at each line's device and
 * inode fields ("start-end perms offset MAJ:MIN INODE path"). */
struct maps_scan {
    char line[128]; /* the start of the current line; the rest is not needed */
    size_t len;
    bool found;
};

/* Skips n space-separated fields of p. */
static const char *skip_fields(const char *p, int n)
{
    for (; n > 0; n--) {
        while (*p == ' ') {
            p++;
        }
        while (*p != ' ' && *p != '\0') {
            p++;
        }
    }
    while (*p == ' ') {
        p++;
    }
    return p;
}

/* Reads a number in `base` (10 or 16) at *p and moves *p past it. */
static uint64_t take_number(const char **p, unsigned base)
{
    uint64_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : base == 16 && c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                                          : base;
        if (d >= base) {
            return v;
        }
        v = v * base + d;
    }
}

/* Parsed by hand: this runs inside a charge, on the allocation path,
 * where stdio may not. */
static void maps_line(struct maps_scan *m, uint64_t dev_major, uint64_t dev_minor, uint64_t ino)
{
    m->line[m->len] = '\0';
    m->len = 0;
    const char *p = skip_fields(m->line, 3);
    uint64_t maj = take_number(&p, 16);
    if (*p++ != ':') {
        return;
    }
    uint64_t min = take_number(&p, 16);
    p = skip_fields(p, 0);
    uint64_t inode = take_number(&p, 10);
    m->found = maj == dev_major && min == dev_minor && inode == ino;
}

/* True unless process pid is known not to map the session file any more:
 * an image that exec'd took its mapping and its pages with it, although
 * the process lives on (its new image may not be able to join: a program
 * that gave up root, or one started with --no-follow).  A process whose
 * maps this one may not read counts as mapping it. */
static bool still_maps(int32_t pid, const struct ram_header *hdr)
{
    char path[48], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return true;
    }
    struct maps_scan m = {.len = 0, .found = false};
    uint64_t maj = major((dev_t)hdr->dev), min = minor((dev_t)hdr->dev);
    ssize_t n = 0;
    while (!m.found && (n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n && !m.found; i++) {
            if (buf[i] == '\n') {
                maps_line(&m, maj, min, hdr->ino);
            } else if (m.len < sizeof m.line - 1) {
                m.line[m.len++] = buf[i];
            }
        }
    }
    bool unreadable = n < 0 && !m.found;
    close(fd);
    return m.found || unreadable;
}

/* A member's row can go: its process is gone, or (in a session) no longer
 * maps the session's file. */
static bool member_gone(const struct ram_shared *sh, int32_t pid)
{
    return ram_process_gone(pid) || (sh->hdr.ino != 0 && !still_maps(pid, &sh->hdr));
}

/* Frees a member's row (lock held): its pages go back to the device, and
 * the extent of the cells it may have written stays, for the next member
 * of the row to clear.  Returns the pages. */
static uint64_t free_row_locked(struct ram_shared *sh, struct ram_member *m)
{
    uint64_t pages = m->committed;
    uint32_t stale = m->map_stale | __atomic_load_n(&m->map.dirty, __ATOMIC_RELAXED);
    sh->used_pages -= pages;
    memset(m, 0, sizeof *m);
    m->map_stale = stale;
    __atomic_store_n(&sh->pids[row_of(sh, m)], 0, __ATOMIC_RELAXED);
    return pages;
}

/* Returns the pages of members whose process is gone (lock held). */
static size_t reclaim_dead_locked(struct ram_shared *sh)
{
    INVARIANT(sh->used_pages == members_sum_locked(sh),
              "the device's used pages are the sum of its members' pages");
    int saved = errno;
    size_t reclaimed = 0;
    for (int i = 0; i < rows_used_locked(sh); i++) {
        int32_t pid = row_pid(sh, i);
        if (pid != 0 && member_gone(sh, pid)) {
            reclaimed += free_row_locked(sh, &sh->members[i]);
        }
    }
    errno = saved;
    return reclaimed;
}

/* Takes a row for pid (lock held); a row already held by pid belonged to the
 * image this process exec'd from: its pages are gone with it.  -1 when the
 * table is full even after reclaiming the dead. */
static int add_member_locked(struct ram_shared *sh, int32_t pid, uint64_t committed)
{
    assert_held(sh);
    int free_row = -1, rows = rows_used_locked(sh);
    for (int i = 0; i < rows; i++) {
        if (row_pid(sh, i) == pid) {
            free_row_locked(sh, &sh->members[i]);
        }
        if (row_pid(sh, i) == 0 && free_row < 0) {
            free_row = i;
        }
    }
    if (free_row < 0 && rows < RAM_MAX_MEMBERS) {
        free_row = rows; /* the lowest free row: none below it is */
    }
    if (free_row < 0) {
        reclaim_dead_locked(sh);
        for (int i = 0; i < RAM_MAX_MEMBERS && free_row < 0; i++) {
            free_row = row_pid(sh, i) == 0 ? i : -1;
        }
    }
    if (free_row >= 0) {
        if (free_row >= rows) {
            sh->rows_used = (uint32_t)free_row + 1;
        }
        __atomic_store_n(&sh->pids[free_row], pid, __ATOMIC_RELAXED);
        sh->members[free_row].committed = committed;
        sh->used_pages += committed;
        __atomic_add_fetch(&sh->joins, 1, __ATOMIC_RELEASE);
    }
    return free_row;
}

/* Whether a join owes the shell a wake (lock held): a member that joins a
 * device under the hibernate level is owed its notice at once.  Above the
 * level the shell has nothing to do for it (the join is counted, and its
 * next tick sees the member); a wake there cost every start two switches
 * to cebox run and back (a shell's fork child joins, then its exec). */
static bool joined_under_level_locked(const struct ram_shared *sh)
{
    assert_held(sh);
    return sh->below_hibernate != 0;
}

static void wake_shell_for_join(struct ram_shared *sh, bool owed)
{
    if (owed) {
        bump_and_wake(&sh->shell_wake);
    }
}

/* Points r->tl at this member's row (NULL without one): the timeline's
 * figures are published through it without a lock. */
static void point_timeline(struct ram *r)
{
    bool row = r->sh != NULL && r->member >= 0;
    r->tl = row ? &r->sh->members[r->member].tl : NULL;
    /* Only a session has the map bytes; nobody outside reads a private device. */
    r->map_row = row && r->session ? &r->sh->members[r->member].map : NULL;
    r->map = r->map_row != NULL ? (unsigned char *)row_map(r->sh, r->member) : NULL;
    r->live = r->map_row != NULL ? &r->sh->members[r->member].live : NULL;
}

/* Chunks of stale cells cleared by stores: a member of the same program
 * (the image its fork child exec'd, say) writes into the same few chunks
 * again at once, and a store costs no system call nor a page to give back
 * and fault in anew; more are given back (they read as zeros again). */
#define STALE_CHUNKS_STORED 4

/* The row just taken starts with an all-free map: the chunks in which
 * former members left cells are cleared, by stores or by giving the
 * file's pages back. */
static void clear_stale_map(struct ram *r)
{
    if (r->map == NULL) {
        return;
    }
    struct ram_member *m = &r->sh->members[r->member];
    uint32_t stale = m->map_stale;
    int chunks = 0;
    for (uint32_t left = stale; left != 0; left &= left - 1) {
        chunks++; /* no __builtin_popcount: without -mpopcnt it is a call into libgcc's code */
    }
    if (chunks > STALE_CHUNKS_STORED && os_discard_shared(r->map, RAM_MAP_BLOCKS) == 0) {
        stale = 0;
    }
    for (; stale != 0; stale &= stale - 1) {
        uint32_t first = (uint32_t)__builtin_ctz(stale) * RAM_MAP_CHUNK;
        if (first < RAM_MAP_BLOCKS) {
            memset(r->map + first, RAM_MAP_FREE, RAM_MAP_CHUNK);
        }
    }
    m->map_stale = 0;
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
    lock(sh);
    r->member = add_member_locked(sh, (int32_t)os_getpid(), 0);
    unlock(sh);
    point_timeline(r);
    return 0;
}

/* fd moved to RAM_SESSION_FD_MIN or above (close-on-exec), out of the way
 * of the low numbers programs reuse; as it was when the limit is lower. */
static int move_high(int fd)
{
    struct rlimit rl;
    int min = RAM_SESSION_FD_MIN;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= (rlim_t)min) {
        min = 3;
    }
    int high = fcntl(fd, F_DUPFD_CLOEXEC, min);
    if (high < 0) {
        return fd;
    }
    close(fd);
    return high;
}

/* Writes path into the header when it fits (else leaves it "": a join
 * by descriptor then stats the path). */
static void keep_name(struct ram_header *hdr, const char *path)
{
    size_t n = 0;
    while (n < RAM_NAME_MAX && path[n] != '\0') {
        n++;
    }
    if (n < RAM_NAME_MAX) {
        memcpy(hdr->name, path, n + 1);
    }
}

int ram_session_create(const char *path, size_t total_pages, size_t page,
                       enum memstate_table_id table, enum memstate forced, int *fd_out)
{
    size_t bytes = RAM_SESSION_BYTES;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return errno;
    }
    struct stat st;
    void *map = NULL;
    int err = ftruncate(fd, (off_t)bytes) != 0 || fstat(fd, &st) != 0 ? errno : 0;
    if (err == 0) {
        err = os_map_shared_file(fd, bytes, &map);
    }
    if (err != 0) {
        close(fd);
        unlink(path);
        return err;
    }
    struct ram_shared *sh = map;
    init_shared(sh, total_pages, page, (uint32_t)table, (int32_t)forced, true);
    sh->hdr.dev = (uint64_t)st.st_dev;
    sh->hdr.ino = (uint64_t)st.st_ino;
    keep_name(&sh->hdr, path);
    os_release(sh, bytes);
    if (fd_out == NULL) {
        close(fd);
        return 0;
    }
    fd = move_high(fd);
    if (fd < 3) {
        close(fd); /* a standard stream's number: not one to hand down */
        fd = -1;
    }
    *fd_out = fd;
    return 0;
}

/* Is the mapped header a session's of this version, and (`original`, the
 * fstat of the descriptor) the one written into that very file? */
static bool header_fits(const struct ram_shared *sh, const struct stat *original)
{
    return sh->hdr.magic == RAM_MAGIC && sh->hdr.version == RAM_VERSION && sh->table < MEMSTATE_TABLE_COUNT &&
           (original == NULL || (sh->hdr.dev == (uint64_t)original->st_dev && sh->hdr.ino == (uint64_t)original->st_ino));
}

/* Is the session whose header is hdr the one at path?  By the name kept
 * in the header (no system call); a header with none (the path was too
 * long) by a stat of path, when path can be looked at. */
static bool header_names(const struct ram_header *hdr, const char *path)
{
    if (hdr->name[0] != '\0') {
        size_t i = 0;
        while (i < RAM_NAME_MAX - 1 && hdr->name[i] != '\0' && hdr->name[i] == path[i]) {
            i++;
        }
        return hdr->name[i] == path[i];
    }
    struct stat named;
    int saved = errno;
    bool ok = stat(path, &named) != 0 || (hdr->dev == (uint64_t)named.st_dev && hdr->ino == (uint64_t)named.st_ino);
    errno = saved;
    return ok;
}

/* Maps the session open on fd and, as a member, takes a row in it; a
 * controller (`cebox state`, cebox run's setup) takes none: it commits
 * nothing, and is no process for the shell to notify.  `original`: fd's
 * fstat, found a regular file of the session's size already, whose header
 * must name it and `path` (ESTALE if not); NULL: fd is checked here
 * (EINVAL). */
static int attach(struct ram *r, int fd, bool member, const struct stat *original, const char *path)
{
    size_t bytes = RAM_SESSION_BYTES;
    struct stat st;
    if (original == NULL && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != bytes)) {
        return EINVAL;
    }
    void *map = NULL;
    int err = os_map_shared_file(fd, bytes, &map);
    if (err != 0) {
        return err;
    }
    struct ram_shared *sh = map;
    if (!header_fits(sh, original) || (original != NULL && !header_names(&sh->hdr, path))) {
        os_release(sh, bytes); /* nothing written: the file is as it was */
        return original != NULL ? ESTALE : EINVAL;
    }
    *r = (struct ram){.sh = sh, .map_bytes = bytes, .page = sh->page, .session = true,
                      .table = memstate_table_by_id((enum memstate_table_id)sh->table)};
    if (!member) {
        r->member = -1;
        return 0;
    }
    lock(sh);
    r->member = add_member_locked(sh, (int32_t)os_getpid(), 0);
    bool owed = joined_under_level_locked(sh);
    unlock(sh);
    wake_shell_for_join(sh, owed);
    if (r->member < 0) {
        os_release(sh, bytes);
        r->sh = NULL;
        return ENOSPC;
    }
    point_timeline(r);
    clear_stale_map(r);
    return 0;
}

static int open_and_attach(struct ram *r, const char *path, bool member)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    int err = attach(r, fd, member, NULL, path);
    close(fd);
    return err;
}

int ram_session_join(struct ram *r, const char *path)
{
    return open_and_attach(r, path, true);
}

/* 0 when fd is open on a regular file of the session's size (st: its
 * fstat); EBADF when fd is not open, ESTALE when it names another file.
 * Whether it is an original session file, and the one at path, is
 * attach's to check on the mapping (the header names both): a read of
 * the header, or a stat of the path, cost each start a system call.
 * (Write access is the mapping's to check too: a descriptor open
 * read-only is refused by mmap, and nothing is mapped.)  fstat is asked
 * of the kernel directly: libc's wrapper cost the start a lazy binding. */
static int names_a_session(int fd, struct stat *st)
{
    long ret = os_syscall6(SYS_fstat, fd, (long)st, 0, 0, 0, 0);
    if (ret < 0) {
        return ret == -EBADF ? EBADF : ESTALE;
    }
    return S_ISREG(st->st_mode) && (size_t)st->st_size == RAM_SESSION_BYTES ? 0 : ESTALE;
}

int ram_session_join_fd(struct ram *r, int fd, const char *path)
{
    struct stat st;
    int err = fd < 3 ? EBADF : names_a_session(fd, &st);
    if (err == 0) {
        err = attach(r, fd, true, &st, path);
    }
    return err == EACCES ? ESTALE : err; /* the session's file, open without write access */
}

/* An errno value's text without strerror: strerror translates through
 * gettext, whose locale lock a program may hold when cebox first runs
 * (textdomain's strdup is a first malloc), and gpgv hung so under apt. */
static const char *plain_strerror(int err)
{
#ifdef HAVE_STRERRORDESC_NP
    const char *text = strerrordesc_np(err);
    if (text != NULL) {
        return text;
    }
#endif
    (void)err;
    return "system error";
}

const char *ram_join_strerror(int err)
{
    switch (err) {
    case EINVAL: return "not a cebox session file";
    case ENOSPC: return "its member table is full";
    case ESTALE: return "the descriptor names another file";
    default: return plain_strerror(err);
    }
}

void ram_note_private(struct ram *r, const char *why)
{
    snprintf(r->why_private, sizeof r->why_private, "%s", why);
}

const char *ram_private_reason(const struct ram *r)
{
    return r->why_private;
}

void ram_release(struct ram *r)
{
    if (r->sh == NULL) {
        return;
    }
    lock(r->sh);
    if (r->member >= 0) {
        free_row_locked(r->sh, &r->sh->members[r->member]);
    }
    unlock(r->sh);
    if (r->session) {
        os_release(r->sh, r->map_bytes);
    } else {
        meta_free(r->sh, r->map_bytes);
    }
    r->sh = NULL;
    r->tl = NULL;
    r->live = NULL;
    r->map_row = NULL;
    r->map = NULL;
}

/* A forked child that found no row in the session: it goes on with a
 * device of its own, of the session's size and state, charged with its
 * copy of the slot, rather than charging pages that nobody would give back.
 * Without even the memory for that, it runs uncounted (member -1). */
static void fork_to_private(struct ram *r, size_t committed)
{
    struct ram_shared *old = r->sh;
    size_t total = old->total_pages, old_bytes = r->map_bytes;
    int32_t forced = old->forced, force_mode = old->force_mode;
    uint64_t ballast = old->ballast_pages;
    const struct memstate_table *t = r->table;
    if (ram_init(r, total, r->page, t) != 0) {
        r->member = -1;
        point_timeline(r);
        ram_note_private(r, "uncounted: the session's member table was full at fork");
        return;
    }
    os_release(old, old_bytes);
    lock(r->sh);
    r->sh->forced = forced;
    r->sh->force_mode = force_mode;
    r->sh->ballast_pages = ballast;
    r->sh->members[r->member].committed = committed;
    r->sh->used_pages = committed;
    unlock(r->sh);
    ram_note_private(r, "the session's member table was full at fork");
}

static bool private_device(const struct ram *r)
{
    return r->sh != NULL && !r->session;
}

void ram_fork_lock(struct ram *r)
{
    if (private_device(r)) {
        lock(r->sh);
    }
}

void ram_fork_unlock(struct ram *r, bool child)
{
    if (!private_device(r)) {
        return;
    }
    if (child) {
        /* A robust mutex names its holder by thread id, which the child's
         * thread does not have (unlock would say EPERM): the child's copy,
         * taken for the fork, is made anew, free.  glibc's fork leaves the
         * child's thread an empty robust list, so nothing else names it. */
        init_lock(r->sh, false);
    } else {
        unlock(r->sh);
    }
}

int32_t ram_member_pid(const struct ram *r)
{
    return r->sh != NULL && r->member >= 0 ? row_pid(r->sh, r->member) : 0;
}

void ram_forked(struct ram *r, size_t committed)
{
    if (!r->session) {
        /* A private device is copied with the process: the child's own. */
        r->sh->pids[r->member] = (int32_t)os_getpid();
        return;
    }
    /* The child's slot and heap are copies of the parent's: so are their
     * figures, until the child next changes them (a zeroed row would show
     * the timeline a slot with no free run). */
    struct ram_timeline copied = r->tl != NULL ? *r->tl : (struct ram_timeline){0};
    struct ram_live_sites live = r->live != NULL ? *r->live : (struct ram_live_sites){0};
    lock(r->sh);
    r->member = add_member_locked(r->sh, (int32_t)os_getpid(), committed);
    bool owed = joined_under_level_locked(r->sh);
    unlock(r->sh);
    wake_shell_for_join(r->sh, owed);
    point_timeline(r);
    if (r->member < 0) {
        fork_to_private(r, committed);
    } else {
        clear_stale_map(r);
    }
    if (r->tl != NULL) {
        *r->tl = copied;
    }
    if (r->live != NULL) {
        ram_publish_live_sites(r, &live); /* so are its live sites: the leak table is copied too */
    }
}

/* ---- charging ---- */

/* Free pages from the counts: a forced state pins free RAM just inside it. */
static uint64_t free_pages_of(const struct memstate_table *t, uint64_t total, uint64_t used, int32_t forced,
                              uint64_t page)
{
    uint64_t real = used >= total ? 0 : total - used; /* used: the members' pages and the ballast */
    if (forced >= 0 && forced < MEMSTATE_COUNT) {
        uint64_t pinned = memstate_pinned_free(t, (enum memstate)forced, total * page, page) / page;
        return real < pinned ? real : pinned;
    }
    return real;
}

static size_t free_pages_locked(const struct ram_shared *sh, const struct memstate_table *t)
{
    assert_held(sh);
    return (size_t)free_pages_of(t, sh->total_pages, sh->used_pages + sh->ballast_pages, sh->forced, sh->page);
}

/* What a change of free RAM owes, to be done once the lock is released:
 * wake the shell (the hibernate level was crossed, either way), wake this
 * process's own notice watcher (a private device's notice). */
enum { WAKE_SHELL = 1, WAKE_SELF = 2 };

static bool below_hibernate_level(const struct ram *r, size_t free_pages)
{
    return r->table != NULL && free_pages * r->sh->page < r->table->hibernate;
}

/* Records a change of state (lock held), with the process that caused it;
 * returns the wakes it owes (WAKE_*). */
static unsigned note_state_locked(struct ram *r)
{
    struct ram_shared *sh = r->sh;
    size_t free_pages = free_pages_locked(sh, r->table);
    enum memstate now = memstate_of(r->table, free_pages * sh->page);
    bool below = below_hibernate_level(r, free_pages);
    unsigned wakes = 0;
    if (below != (sh->below_hibernate != 0)) {
        __atomic_add_fetch(&sh->shell_wake, 1, __ATOMIC_RELEASE);
        wakes |= WAKE_SHELL;
    }
    if (below && !sh->below_hibernate && !r->session && r->member >= 0) {
        /* A device of its own: this process is its only application, so it
         * gets the notice itself.  (In a session, cebox run sends them.) */
        __atomic_add_fetch(&sh->members[r->member].notices, 1, __ATOMIC_RELEASE);
        wakes |= WAKE_SELF;
    }
    sh->below_hibernate = below;
    if ((int32_t)now == sh->state) {
        return wakes;
    }
    struct ram_transition *t = &sh->ring[sh->transitions % RAM_TRANSITIONS];
    *t = (struct ram_transition){.time_ns = now_ns(), .free_bytes = free_pages * sh->page,
                                 .pid = (int32_t)os_getpid(), .from = sh->state, .to = (int32_t)now};
    sh->transitions++;
    sh->state = (int32_t)now;
    return wakes;
}

/* Unlocks, then makes the wakes note_state_locked asked for. */
static void unlock_and_wake(struct ram *r, unsigned wakes)
{
    unlock(r->sh);
    if (wakes & WAKE_SHELL) {
        futex_wake_all(&r->sh->shell_wake);
    }
    if ((wakes & WAKE_SELF) && r->member >= 0) {
        futex_wake_all(&r->sh->members[r->member].notices);
    }
}

/* Would note_state_locked record or wake nothing now (lock held)? */
static bool levels_unchanged_locked(const struct ram *r)
{
    const struct ram_shared *sh = r->sh;
    size_t free_pages = free_pages_locked(sh, r->table);
    return (int32_t)memstate_of(r->table, free_pages * sh->page) == sh->state &&
           below_hibernate_level(r, free_pages) == (sh->below_hibernate != 0);
}

static void take_pages_locked(struct ram *r, size_t pages)
{
    struct ram_shared *sh = r->sh;
    sh->used_pages += pages;
    sh->members[r->member].committed += pages;
    sh->members[r->member].last_active = ++sh->activity;
}

/* The pages are taken only when the rule lets them all through with no
 * level crossed before or after (the rule is monotonic in free RAM, so
 * each of the single charges would then have passed, and none would have
 * noted a state or woken anyone). */
bool ram_charge_at_once(struct ram *r, size_t pages)
{
    struct ram_shared *sh = r->sh;
    if (r->member < 0) {
        return false;
    }
    lock(sh);
    bool ok = levels_unchanged_locked(r) &&
              memstate_commit_rule(r->table, r->page, pages, free_pages_locked(sh, r->table)) == COMMIT_OK;
    if (ok) {
        sh->used_pages += pages; /* a look at the levels after them */
        ok = levels_unchanged_locked(r);
        sh->used_pages -= pages;
    }
    if (ok) {
        take_pages_locked(r, pages);
    }
    DEBUG_INVARIANT(sh->used_pages == members_sum_locked(sh),
                    "the device's used pages are the sum of its members' pages");
    unlock(sh);
    return ok;
}

enum ram_result ram_charge(struct ram *r, size_t pages)
{
    struct ram_shared *sh = r->sh;
    lock(sh);
    enum commit_verdict v = memstate_commit_rule(r->table, r->page, pages, free_pages_locked(sh, r->table));
    if (v != COMMIT_OK && reclaim_dead_locked(sh) != 0) {
        v = memstate_commit_rule(r->table, r->page, pages, free_pages_locked(sh, r->table));
    }
    if (v == COMMIT_OK && r->member >= 0) {
        take_pages_locked(r, pages);
    }
    unsigned wakes = v == COMMIT_OK ? note_state_locked(r) : 0;
    DEBUG_INVARIANT(sh->used_pages == members_sum_locked(sh),
                    "the device's used pages are the sum of its members' pages");
    unlock_and_wake(r, wakes);
    return v == COMMIT_OK ? RAM_OK : v == COMMIT_NO_RAM ? RAM_NO_RAM : RAM_STATE_CAP;
}

void ram_credit(struct ram *r, size_t pages)
{
    struct ram_shared *sh = r->sh;
    lock(sh);
    if (r->member >= 0) {
        struct ram_member *m = &sh->members[r->member];
        DEBUG_INVARIANT(m->committed >= pages, "a member gives back no more pages than it holds");
        /* Bounded all the same: a row taken from a process still alive
         * (another pid namespace) must not wrap the count around. */
        size_t back = m->committed < pages ? (size_t)m->committed : pages;
        m->committed -= back;
        sh->used_pages -= back;
    }
    unsigned wakes = note_state_locked(r);
    DEBUG_INVARIANT(sh->used_pages == members_sum_locked(sh),
                    "the device's used pages are the sum of its members' pages");
    unlock_and_wake(r, wakes);
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

enum memstate ram_state_after(const struct ram *r, size_t pages)
{
    size_t f = ram_free_pages(r);
    return memstate_of(r->table, (pages < f ? f - pages : 0) * r->page);
}

/* The ballast that puts free RAM just inside state s now (lock held):
 * what free RAM, without a ballast, has beyond the state's pinned level. */
static uint64_t ballast_for_locked(const struct ram *r, enum memstate s)
{
    const struct ram_shared *sh = r->sh;
    assert_held(sh);
    if (s == MEMSTATE_NORMAL) {
        return 0;
    }
    size_t total = sh->total_pages * sh->page;
    uint64_t level = memstate_pinned_free(r->table, s, total, sh->page) / sh->page;
    uint64_t unballasted = sh->used_pages >= sh->total_pages ? 0 : sh->total_pages - sh->used_pages;
    return unballasted > level ? unballasted - level : 0;
}

void ram_force_state(struct ram *r, enum memstate s)
{
    lock(r->sh);
    if (r->sh->force_mode == RAM_FORCE_BALLAST) {
        r->sh->forced = MEMSTATE_COUNT;
        r->sh->ballast_pages = ballast_for_locked(r, s);
    } else {
        /* Forcing "normal" hands the state back to free RAM. */
        r->sh->forced = (int32_t)(s == MEMSTATE_NORMAL ? MEMSTATE_COUNT : s);
        r->sh->ballast_pages = 0;
    }
    unlock_and_wake(r, note_state_locked(r));
}

void ram_set_force_mode(struct ram *r, enum ram_force_mode m)
{
    lock(r->sh);
    r->sh->force_mode = (int32_t)m;
    unlock(r->sh);
}

size_t ram_ballast_pages(const struct ram *r)
{
    return (size_t)__atomic_load_n(&r->sh->ballast_pages, __ATOMIC_RELAXED);
}

/* ---- hibernate notices ---- */

uint32_t ram_notices(const struct ram *r)
{
    if (r->sh == NULL || r->member < 0) {
        return 0;
    }
    return __atomic_load_n(&r->sh->members[r->member].notices, __ATOMIC_ACQUIRE);
}

void ram_wait_notice(const struct ram *r, uint32_t seen, unsigned timeout_ms)
{
    if (r->sh == NULL || r->member < 0) {
        struct timespec t = {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
        return;
    }
    futex_wait_ms(&r->sh->members[r->member].notices, seen, timeout_ms);
}

uint32_t ram_shell_word(const struct ram *r)
{
    return __atomic_load_n(&r->sh->shell_wake, __ATOMIC_ACQUIRE);
}

void ram_wait_shell(const struct ram *r, uint32_t seen, unsigned timeout_ms)
{
    futex_wait_ms(&r->sh->shell_wake, seen, timeout_ms);
}

void ram_wake_shell(struct ram *r)
{
    bump_and_wake(&r->sh->shell_wake);
}

uint32_t ram_joins(const struct ram *r)
{
    return __atomic_load_n(&r->sh->joins, __ATOMIC_ACQUIRE);
}

size_t ram_members(struct ram *r, struct ram_member_info *out, size_t max)
{
    size_t n = 0;
    lock(r->sh);
    reclaim_dead_locked(r->sh);
    for (int i = 0; i < RAM_MAX_MEMBERS && n < max; i++) {
        const struct ram_member *m = &r->sh->members[i];
        int32_t pid = row_pid(r->sh, i);
        if (pid != 0 && pid != (int32_t)os_getpid()) {
            out[n++] = (struct ram_member_info){.pid = pid, .committed_bytes = m->committed * r->sh->page,
                                                .last_active = m->last_active};
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
        if (row_pid(r->sh, i) == pid) {
            bytes = r->sh->members[i].committed * r->sh->page;
        }
    }
    unlock(r->sh);
    return bytes;
}

bool ram_send_notice(struct ram *r, int32_t pid)
{
    int row = -1;
    lock(r->sh);
    for (int i = 0; i < RAM_MAX_MEMBERS; i++) {
        if (row_pid(r->sh, i) == pid) {
            __atomic_add_fetch(&r->sh->members[i].notices, 1, __ATOMIC_RELEASE);
            row = i;
        }
    }
    unlock(r->sh);
    if (row >= 0) {
        /* The member's watcher sleeps on this word (a row taken by another
         * process meanwhile only gets a spurious wake). */
        futex_wake_all(&r->sh->members[row].notices);
    }
    return row >= 0;
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
    int err = open_and_attach(&r, path, false);
    if (err != 0) {
        return err;
    }
    if (s == MEMSTATE_LIMITED && r.table != NULL && r.table->limited == 0) {
        err = ENOTSUP;
    } else {
        ram_force_state(&r, s);
    }
    ram_release(&r);
    return err;
}

int ram_session_force_by(const char *path, enum ram_force_mode m, enum memstate s)
{
    struct ram r;
    int err = open_and_attach(&r, path, false);
    if (err != 0) {
        return err;
    }
    ram_set_force_mode(&r, m);
    ram_force_state(&r, s);
    ram_release(&r);
    return 0;
}

void ram_hold_lock_for_test(struct ram *r, int64_t skew)
{
    lock(r->sh);
    r->sh->used_pages += (uint64_t)skew;
}

/* ---- the timeline ---- */

uint64_t ram_start_ns(const struct ram *r)
{
    return r->sh != NULL ? r->sh->start_ns : 0;
}

void ram_publish_free_figures(struct ram *r, uint64_t free_items, uint64_t largest_free_bytes,
                              uint64_t empty_pages, uint64_t work)
{
    struct ram_timeline *tl = r->tl;
    if (tl != NULL) {
        __atomic_store_n(&tl->heap_free_items, free_items, __ATOMIC_RELAXED);
        __atomic_store_n(&tl->heap_largest_free_bytes, largest_free_bytes, __ATOMIC_RELAXED);
        __atomic_store_n(&tl->heap_empty_pages, empty_pages, __ATOMIC_RELAXED);
        __atomic_store_n(&tl->figures_work, work, __ATOMIC_RELAXED);
        __atomic_store_n(&tl->heap_dirty, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&tl->figures_answered, 1, __ATOMIC_RELAXED);
    }
}

void ram_want_free_figures(struct ram *r, int32_t pid)
{
    for (int i = 0; i < RAM_MAX_MEMBERS; i++) {
        struct ram_member *m = &r->sh->members[i];
        if (row_pid(r->sh, i) == pid) {
            __atomic_store_n(&m->tl.figures_answered, 0, __ATOMIC_RELAXED);
            return;
        }
    }
}

/* One member's figures, each loaded relaxed (a word is never torn). */
static void load_timeline(const struct ram_timeline *tl, struct ram_timeline *out)
{
    out->slot_reserved_blocks = __atomic_load_n(&tl->slot_reserved_blocks, __ATOMIC_RELAXED);
    out->largest_free_run_blocks = __atomic_load_n(&tl->largest_free_run_blocks, __ATOMIC_RELAXED);
    out->peak_reserved_blocks = __atomic_load_n(&tl->peak_reserved_blocks, __ATOMIC_RELAXED);
    out->min_largest_free_run_blocks = __atomic_load_n(&tl->min_largest_free_run_blocks, __ATOMIC_RELAXED);
    out->heap_live_bytes = __atomic_load_n(&tl->heap_live_bytes, __ATOMIC_RELAXED);
    out->heap_committed_bytes = __atomic_load_n(&tl->heap_committed_bytes, __ATOMIC_RELAXED);
    out->heap_free_items = __atomic_load_n(&tl->heap_free_items, __ATOMIC_RELAXED);
    out->heap_largest_free_bytes = __atomic_load_n(&tl->heap_largest_free_bytes, __ATOMIC_RELAXED);
    out->heap_empty_pages = __atomic_load_n(&tl->heap_empty_pages, __ATOMIC_RELAXED);
    out->figures_answered = __atomic_load_n(&tl->figures_answered, __ATOMIC_RELAXED);
    out->heap_dirty = __atomic_load_n(&tl->heap_dirty, __ATOMIC_RELAXED);
    out->figures_work = __atomic_load_n(&tl->figures_work, __ATOMIC_RELAXED);
}

void ram_own_timeline(const struct ram *r, struct ram_timeline *out)
{
    *out = (struct ram_timeline){0};
    if (r->sh != NULL && r->member >= 0) {
        load_timeline(&r->sh->members[r->member].tl, out);
    }
}

/* One row's figures, read without the lock. */
static void sample_row(const struct ram_shared *sh, const struct ram_member *m, struct ram_member_sample *out)
{
    out->pid = row_pid(sh, row_of(sh, m));
    out->committed_bytes = __atomic_load_n(&m->committed, __ATOMIC_RELAXED) * sh->page;
    load_timeline(&m->tl, &out->tl);
}

size_t ram_sample_members(struct ram *r, struct ram_member_sample *out, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < RAM_MAX_MEMBERS && n < max; i++) {
        const struct ram_member *m = &r->sh->members[i];
        int32_t pid = row_pid(r->sh, i);
        if (pid == 0) {
            continue;
        }
        sample_row(r->sh, m, &out[n]);
        n++;
    }
    return n;
}

/* ---- the live sites (--leaks) ---- */

/* The live sites after their count and flag, as 64-bit words: each is
 * stored and loaded whole (relaxed), so a reader's copy is torn only
 * between words, which the count then tells it to retry. */
#define LIVE_WORDS_FROM offsetof(struct ram_live_sites, count)
#define LIVE_WORDS ((sizeof(struct ram_live_sites) - LIVE_WORDS_FROM) / sizeof(uint64_t))
_Static_assert(LIVE_WORDS_FROM % sizeof(uint64_t) == 0 && sizeof(struct ram_live_sites) % sizeof(uint64_t) == 0,
               "the live sites copy in whole words");

static uint64_t *live_words(struct ram_live_sites *l)
{
    return (uint64_t *)(void *)((char *)l + LIVE_WORDS_FROM);
}

static const uint64_t *live_words_of(const struct ram_live_sites *l)
{
    return (const uint64_t *)(const void *)((const char *)l + LIVE_WORDS_FROM);
}

void ram_publish_live_sites(struct ram *r, const struct ram_live_sites *in)
{
    struct ram_live_sites *row = r->live;
    if (row == NULL) {
        return;
    }
    __atomic_store_n(&row->seq, row->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&row->tracking, in->tracking, __ATOMIC_RELAXED);
    uint64_t *to = live_words(row);
    const uint64_t *from = live_words_of(in);
    for (size_t i = 0; i < LIVE_WORDS; i++) {
        __atomic_store_n(&to[i], from[i], __ATOMIC_RELAXED);
    }
    __atomic_store_n(&row->seq, row->seq + 1, __ATOMIC_RELEASE);
}

/* ---- the view from outside ---- */

int ram_view_open(struct ram_view *v, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    struct stat st;
    void *map = NULL;
    int err = fstat(fd, &st) != 0 ? errno
              : !S_ISREG(st.st_mode) || (size_t)st.st_size != RAM_SESSION_BYTES ? EINVAL
                                                                                : 0;
    if (err == 0) {
        err = os_map_shared_file_prot(fd, RAM_SESSION_BYTES, false, &map);
    }
    close(fd);
    if (err != 0) {
        return err;
    }
    const struct ram_shared *sh = map;
    if (sh->hdr.magic != RAM_MAGIC || sh->hdr.version != RAM_VERSION || sh->table >= MEMSTATE_TABLE_COUNT ||
        sh->page == 0) {
        os_release(map, RAM_SESSION_BYTES);
        return EINVAL;
    }
    *v = (struct ram_view){.sh = sh, .map_bytes = RAM_SESSION_BYTES};
    return 0;
}

void ram_view_close(struct ram_view *v)
{
    if (v->sh != NULL) {
        os_release((void *)v->sh, v->map_bytes);
        v->sh = NULL;
    }
}

size_t ram_view_members(const struct ram_view *v, struct ram_view_member *out, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < RAM_MAX_MEMBERS && n < max; i++) {
        const struct ram_member *m = &v->sh->members[i];
        int32_t pid = row_pid(v->sh, i);
        if (pid == 0 || ram_process_gone(pid)) {
            continue; /* a free row, or one not reclaimed yet */
        }
        sample_row(v->sh, m, &out[n].s);
        out[n].map_blocks = __atomic_load_n(&m->map.blocks, __ATOMIC_RELAXED);
        n++;
    }
    return n;
}

/* A consistent copy of row i's map, or 0 after too many tries (the member
 * writes it under its slot's lock: a batch is a few stores).  With seq,
 * nothing is copied (0) while the count is still *seq, and *seq takes the
 * count of the copy made. */
static size_t copy_row_map(const struct ram_shared *sh, int i, char *buf, size_t len, uint32_t *seq)
{
    const struct ram_member *m = &sh->members[i];
    const unsigned char *cells = row_map(sh, i);
    for (int attempt = 0; attempt < 100000; attempt++) {
        uint32_t s1 = __atomic_load_n(&m->map.seq, __ATOMIC_ACQUIRE);
        uint32_t blocks = __atomic_load_n(&m->map.blocks, __ATOMIC_RELAXED);
        if (blocks == 0 || blocks > RAM_MAP_BLOCKS || (seq != NULL && s1 == *seq)) {
            return 0;
        }
        size_t n = blocks < len ? blocks : len;
        for (size_t b = 0; b < n; b++) {
            char c = (char)__atomic_load_n(&cells[ram_map_place((uint32_t)b)], __ATOMIC_RELAXED);
            buf[b] = c != RAM_MAP_FREE ? c : '.';
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if ((s1 & 1) == 0 && __atomic_load_n(&m->map.seq, __ATOMIC_RELAXED) == s1) {
            if (seq != NULL) {
                *seq = s1;
            }
            return n;
        }
    }
    return 0;
}

/* Member pid's map, copied as copy_row_map does. */
static size_t copy_member_map(const struct ram_shared *sh, int32_t pid, char *buf, size_t len, uint32_t *seq)
{
    for (int i = 0; i < RAM_MAX_MEMBERS && pid != 0; i++) {
        if (row_pid(sh, i) == pid) {
            size_t n = copy_row_map(sh, i, buf, len, seq);
            /* The row may have changed hands while it was copied. */
            return row_pid(sh, i) == pid ? n : 0;
        }
    }
    return 0;
}

size_t ram_view_map(const struct ram_view *v, int32_t pid, char *buf, size_t len)
{
    return copy_member_map(v->sh, pid, buf, len, NULL);
}

size_t ram_member_map(struct ram *r, int32_t pid, uint32_t *seq, char *buf, size_t len)
{
    return copy_member_map(r->sh, pid, buf, len, seq);
}

bool ram_view_live_sites(const struct ram_view *v, int32_t pid, struct ram_live_sites *out)
{
    for (int i = 0; i < RAM_MAX_MEMBERS && pid != 0; i++) {
        const struct ram_member *m = &v->sh->members[i];
        if (row_pid(v->sh, i) != pid) {
            continue;
        }
        for (int attempt = 0; attempt < 100000; attempt++) {
            uint32_t s1 = __atomic_load_n(&m->live.seq, __ATOMIC_ACQUIRE);
            out->tracking = __atomic_load_n(&m->live.tracking, __ATOMIC_RELAXED);
            uint64_t *to = live_words(out);
            const uint64_t *from = live_words_of(&m->live);
            for (size_t w = 0; w < LIVE_WORDS; w++) {
                to[w] = __atomic_load_n(&from[w], __ATOMIC_RELAXED);
            }
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if ((s1 & 1) == 0 && __atomic_load_n(&m->live.seq, __ATOMIC_RELAXED) == s1) {
                out->seq = s1;
                out->count = out->count <= RAM_LIVE_SITES ? out->count : RAM_LIVE_SITES;
                /* The row may have changed hands while it was copied. */
                return row_pid(v->sh, i) == pid;
            }
        }
        return false;
    }
    return false;
}

void ram_view_device(const struct ram_view *v, uint64_t *free_bytes, enum memstate *state, uint64_t *total_bytes)
{
    const struct ram_shared *sh = v->sh;
    const struct memstate_table *t = memstate_table_by_id((enum memstate_table_id)sh->table);
    uint64_t total = __atomic_load_n(&sh->total_pages, __ATOMIC_RELAXED);
    uint64_t used = __atomic_load_n(&sh->used_pages, __ATOMIC_RELAXED) +
                    __atomic_load_n(&sh->ballast_pages, __ATOMIC_RELAXED);
    int32_t forced = __atomic_load_n(&sh->forced, __ATOMIC_RELAXED);
    *free_bytes = free_pages_of(t, total, used, forced, sh->page) * sh->page;
    *total_bytes = total * sh->page;
    *state = memstate_of(t, (size_t)*free_bytes);
}
