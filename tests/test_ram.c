/*
 * test_ram.c - the device RAM's session directly: the file cebox run
 * creates, joining through an inherited descriptor, refusing a descriptor
 * that names another file, a member killed while it holds the session's
 * lock, a member that exec'd, and a full member table; forced states held
 * by a ballast or pinned, the shell's wake word, limited under ce5; a
 * member's live sites as a viewer reads them, and its forked child's copy;
 * a charge of many pages at once that crosses no level.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memstate.h"
#include "ram.h"
#include "testutil.h"

#define PAGE 4096u

static char dir[100]; /* its files' paths must fit a session header's 128 bytes */
static char path[128], other[128];

static int make_dir(void **state)
{
    (void)state;
    if (testutil_temp_template(dir, sizeof dir, "ram") != 0 || mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/session", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    unlink(path);
    unlink(other);
    return rmdir(dir);
}

/* A fresh session of `pages` pages at `at`; returns the descriptor it is
 * kept open on. */
static int new_session(const char *at, size_t pages)
{
    unlink(at);
    int fd = -1;
    assert_int_equal(ram_session_create(at, pages, PAGE, MEMSTATE_TABLE_CE5, MEMSTATE_COUNT, &fd), 0);
    assert_true(fd >= 3);
    return fd;
}

/* A session of 100 pages at path, joined by a charged with 10 of them:
 * returns the session's fd. */
static int session_with_member(struct ram *a)
{
    int fd = new_session(path, 100);
    assert_int_equal(ram_session_join(a, path), 0);
    assert_int_equal(ram_charge(a, 10), RAM_OK);
    return fd;
}

/* In a forked child (no cmocka there): joins the session at path and
 * charges pages, or exits 1. */
static void child_join_charging(struct ram *c, size_t pages)
{
    if (ram_session_join(c, path) != 0 || ram_charge(c, pages) != RAM_OK) {
        _exit(1);
    }
}

/* The whole content of file fd. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap, 0);
    assert_true(n > 0);
    return (size_t)n;
}

/* The free pages another process sees when it joins (through fd when
 * fd >= 0, else by the path); -1 when it cannot join.  (A second join in
 * one process would take over the first one's row: same pid.) */
static int free_seen_by_another_process(int fd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ram r;
        int err = fd >= 0 ? ram_session_join_fd(&r, fd, path) : ram_session_join(&r, path);
        _exit(err != 0 ? 255 : (int)ram_free_pages(&r));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status) == 255 ? -1 : WEXITSTATUS(status);
}

static void test_the_file_is_0600_and_stays_open_high_and_close_on_exec(void **state)
{
    (void)state;
    int fd = new_session(path, 100);
    struct stat named, open_st;
    assert_int_equal(stat(path, &named), 0);
    assert_int_equal(named.st_mode & 0777, 0600);
    assert_int_equal(fstat(fd, &open_st), 0);
    assert_true(open_st.st_ino == named.st_ino && open_st.st_dev == named.st_dev);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > RAM_SESSION_FD_MIN) {
        assert_true(fd >= RAM_SESSION_FD_MIN);
    }
    assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
    close(fd);
}

static void test_a_member_joins_through_the_descriptor(void **state)
{
    (void)state;
    int fd = new_session(path, 100);
    struct ram a;
    assert_int_equal(ram_session_join_fd(&a, fd, path), 0);
    assert_true(a.session);
    assert_string_equal(ram_private_reason(&a), "");
    assert_int_equal(ram_charge(&a, 10), RAM_OK);
    assert_int_equal(free_seen_by_another_process(-1), 90); /* one device */
    assert_int_equal(free_seen_by_another_process(fd), 90);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* never closed by a join */
    /* The path gone (cebox run ended, or another mount namespace): the
     * header's own identity still vouches for the descriptor. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(free_seen_by_another_process(-1), -1);
    assert_int_equal(free_seen_by_another_process(fd), 90);
    ram_release(&a);
    close(fd);
}

static void test_a_descriptor_that_names_another_file_is_not_used(void **state)
{
    (void)state;
    int fd = new_session(path, 100);
    struct ram r;
    int spare = dup(fd);
    close(spare);
    assert_int_equal(ram_session_join_fd(&r, spare, path), EBADF); /* closed */
    assert_int_equal(ram_session_join_fd(&r, 2, path), EBADF);     /* a standard stream */
    int null = open("/dev/null", O_RDWR);
    assert_int_equal(ram_session_join_fd(&r, null, path), ESTALE);
    close(null);
    int ro = open(path, O_RDONLY);
    assert_int_equal(ram_session_join_fd(&r, ro, path), ESTALE); /* cannot be shared writable */
    close(ro);

    /* A byte-for-byte copy of the session: right size, magic and version,
     * but another file; refused, and never written. */
    static char orig[65536], after[65536];
    size_t n = read_all(fd, orig, sizeof orig);
    int copy = open(other, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(write(copy, orig, n), (ssize_t)n);
    assert_int_equal(ram_session_join_fd(&r, copy, path), ESTALE);
    assert_int_equal(read_all(copy, after, sizeof after), n);
    assert_memory_equal(orig, after, n);
    close(copy);

    /* Another real session: its own header is right, but it is not the
     * one at path. */
    int fd2 = new_session(other, 100);
    assert_int_equal(ram_session_join_fd(&r, fd2, path), ESTALE);
    assert_int_equal(ram_session_join_fd(&r, fd2, other), 0);
    ram_release(&r);
    close(fd2);
    close(fd);
}

/* A session created at a path too long for its header to keep: a join
 * by descriptor tells it from another session by a stat of the path. */
static void test_a_session_at_a_long_path_is_told_apart_by_stat(void **state)
{
    (void)state;
    char longer[512];
    snprintf(longer, sizeof longer, "%s/%0160d", dir, 7);
    int fd = new_session(longer, 100);
    int at_path = new_session(path, 100);
    struct ram r;
    assert_int_equal(ram_session_join_fd(&r, fd, path), ESTALE);   /* another session is at path */
    assert_int_equal(ram_session_join_fd(&r, at_path, longer), ESTALE);
    assert_int_equal(ram_session_join_fd(&r, fd, longer), 0);
    ram_release(&r);
    assert_int_equal(unlink(longer), 0); /* gone: the header alone vouches */
    assert_int_equal(ram_session_join_fd(&r, fd, longer), 0);
    ram_release(&r);
    close(at_path);
    close(fd);
}

static void test_a_member_killed_holding_the_lock_blocks_nobody(void **state)
{
    (void)state;
    struct ram a;
    int fd = session_with_member(&a);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ram c;
        child_join_charging(&c, 20);
        /* Dies in the middle of an update: the lock held, the used pages
         * off by 1000. */
        ram_hold_lock_for_test(&c, 1000);
        (void)!write(p[1], "x", 1);
        pause();
        _exit(0);
    }
    char x = 0;
    assert_int_equal(read(p[0], &x, 1), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    /* Left a zombie, as the program of a run is until cebox run reaps it. */
    siginfo_t info;
    assert_int_equal(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
    assert_int_equal(info.si_status, SIGKILL);

    alarm(10); /* a deadlock fails the test instead of hanging it */
    /* The next to take the lock recomputes the count from the rows and
     * reclaims the dead member's 20 pages. */
    assert_int_equal(ram_free_pages(&a), 90);
    struct ram_member_info m[4];
    assert_int_equal(ram_members(&a, m, 4), 0);
    assert_int_equal(ram_charge(&a, 5), RAM_OK);
    assert_int_equal(ram_free_pages(&a), 85);
    assert_int_equal(free_seen_by_another_process(-1), 85);
    alarm(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    ram_release(&a);
    close(p[0]);
    close(p[1]);
    close(fd);
}

/* A member that exec'd (a program that gave up root cannot join again) is
 * reclaimed although its process lives: its mapping went with the old image. */
static void test_a_member_that_execd_is_reclaimed(void **state)
{
    (void)state;
    struct ram a;
    int fd = session_with_member(&a);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ram c;
        close(p[0]);
        child_join_charging(&c, 20);
        (void)!write(p[1], "x", 1); /* joined and charged */
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(1);
    }
    close(p[1]);
    char x = 0;
    assert_int_equal(read(p[0], &x, 1), 1);
    assert_int_equal(x, 'x');
    assert_int_equal(read(p[0], &x, 1), 0); /* EOF: the child exec'd */
    close(p[0]);
    assert_false(ram_process_gone(pid));
    struct ram_member_info m[4];
    assert_int_equal(ram_members(&a, m, 4), 0);
    assert_int_equal(ram_free_pages(&a), 90);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ram_release(&a);
    close(fd);
}

/* The timeline: what a member publishes is what the shell samples, in the
 * member's own row; a forked child's row starts with the parent's figures
 * (its slot and heap are copies), then goes its own way. */
static void test_the_timeline_figures_of_a_member_and_its_forked_child(void **state)
{
    (void)state;
    int fd = new_session(path, 100);
    struct ram a;
    assert_int_equal(ram_session_join(&a, path), 0);
    ram_publish_slot(&a, 7, 40, 9, 30);
    ram_publish_heap_live(&a, 12345);
    ram_publish_heap_committed(&a, 65536);
    assert_int_equal(ram_charge(&a, 3), RAM_OK);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(p[0]);
        ram_forked(&a, 3);
        struct ram_timeline t;
        ram_own_timeline(&a, &t);
        bool copied = t.heap_live_bytes == 12345 && t.heap_committed_bytes == 65536;
        ram_publish_slot(&a, 8, 20, 10, 20);
        (void)!write(p[1], copied ? "y" : "n", 1);
        alarm(5); /* never outlives a parent whose check failed */
        pause(); /* until killed: stays a member while the parent looks */
        _exit(0);
    }
    close(p[1]);
    char x = 0;
    assert_int_equal(read(p[0], &x, 1), 1);
    assert_int_equal(x, 'y');
    struct ram_member_sample m[8];
    size_t n = ram_sample_members(&a, m, 8);
    assert_int_equal(n, 2); /* a and the child */
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].pid == getpid()) {
            assert_int_equal(m[i].committed_bytes, 3 * PAGE);
            assert_int_equal(m[i].tl.slot_reserved_blocks, 7);
            assert_int_equal(m[i].tl.largest_free_run_blocks, 40);
            assert_int_equal(m[i].tl.peak_reserved_blocks, 9);
            assert_int_equal(m[i].tl.min_largest_free_run_blocks, 30);
            assert_int_equal(m[i].tl.heap_live_bytes, 12345);
            seen |= 1;
        } else if (m[i].pid == child) {
            assert_int_equal(m[i].tl.slot_reserved_blocks, 8);
            assert_int_equal(m[i].tl.largest_free_run_blocks, 20);
            assert_int_equal(m[i].tl.heap_live_bytes, 12345);
            assert_int_equal(m[i].tl.heap_committed_bytes, 65536);
            assert_int_equal(m[i].committed_bytes, 3 * PAGE);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(p[0]);
    ram_release(&a);
    close(fd);
}

/* A member's live sites reach a viewer whole, a forked child's row starts
 * with the parent's (its leak table is a copy), and a pid with no row
 * has none. */
static void test_live_sites_of_a_member_and_its_forked_child(void **state)
{
    (void)state;
    int fd = new_session(path, 100);
    struct ram a;
    assert_int_equal(ram_session_join(&a, path), 0);
    struct ram_live_sites in = {.tracking = 1, .count = 2, .time_ns = 5, .allocations = 4096, .sites = 3,
                                .live_bytes = 12016, .live_blocks = 13};
    in.site[0] = (struct ram_live_site){.bytes = 12000, .blocks = 12, .depth = 2, .full_depth = 40,
                                        .ips = {0x1234, 0x5678}};
    in.site[1] = (struct ram_live_site){.bytes = 16, .blocks = 1, .depth = 1, .full_depth = 1, .ips = {0x9abc}};
    in.site[RAM_LIVE_SITES - 1].ips[RAM_LIVE_DEPTH - 1] = 0xfeed; /* the copy's last word */
    ram_publish_live_sites(&a, &in);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(p[0]);
        ram_forked(&a, 0);
        (void)!write(p[1], "y", 1);
        alarm(5);
        pause();
        _exit(0);
    }
    close(p[1]);
    char x = 0;
    assert_int_equal(read(p[0], &x, 1), 1);
    struct ram_view v;
    assert_int_equal(ram_view_open(&v, path), 0);
    pid_t pids[2] = {getpid(), child};
    for (int k = 0; k < 2; k++) {
        struct ram_live_sites out;
        assert_true(ram_view_live_sites(&v, pids[k], &out));
        assert_int_equal(out.seq % 2, 0);
        assert_int_equal(out.tracking, 1);
        assert_int_equal(out.count, 2);
        assert_int_equal(out.allocations, 4096);
        assert_int_equal(out.sites, 3);
        assert_int_equal(out.live_bytes, 12016);
        assert_int_equal(out.live_blocks, 13);
        assert_int_equal(out.site[0].bytes, 12000);
        assert_int_equal(out.site[0].blocks, 12);
        assert_int_equal(out.site[0].full_depth, 40);
        assert_int_equal(out.site[0].ips[1], 0x5678);
        assert_int_equal(out.site[1].ips[0], 0x9abc);
        assert_int_equal(out.site[RAM_LIVE_SITES - 1].ips[RAM_LIVE_DEPTH - 1], 0xfeed);
    }
    struct ram_live_sites none;
    assert_false(ram_view_live_sites(&v, 999999999, &none));
    ram_view_close(&v);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(p[0]);
    ram_release(&a);
    close(fd);
}

/* A row taken over shows none of its former member's cells.  The member of
 * a row writes every `every`th cell of a map of `blocks`; the same process
 * joins again (as the image it exec'd does: its old row is freed and the
 * first free row, that one, taken) and writes only its block 0: the rest
 * of its map reads free.  The chunks of cells written are cleared, by
 * stores when they are few, by giving the file's pages back when many. */
static void check_row_taken_over(uint32_t blocks, uint32_t every)
{
    static char cells[RAM_MAP_BLOCKS];
    int fd = new_session(path, 100);
    struct ram a, b;
    assert_int_equal(ram_session_join(&a, path), 0);
    ram_map_begin(&a);
    ram_map_blocks(&a, blocks);
    for (uint32_t i = 0; i < blocks; i += every) {
        ram_map_set(&a, i, i == 0 ? '-' : 'C');
    }
    ram_map_set(&a, blocks - 1, 'D');
    ram_map_end(&a);
    assert_int_equal(ram_session_join(&b, path), 0);
    assert_int_equal(b.member, a.member);
    ram_map_begin(&b);
    ram_map_blocks(&b, blocks);
    ram_map_set(&b, 0, '-');
    ram_map_end(&b);
    struct ram_view v;
    assert_int_equal(ram_view_open(&v, path), 0);
    assert_int_equal(ram_view_map(&v, getpid(), cells, sizeof cells), blocks);
    assert_int_equal(cells[0], '-');
    uint32_t free_cells = 0;
    for (uint32_t i = 1; i < blocks; i++) {
        free_cells += cells[i] == '.';
    }
    assert_int_equal(free_cells, blocks - 1);
    ram_view_close(&v);
    ram_release(&b);
    ram_release(&a); /* its row went with the second join: only its mapping is left */
    close(fd);
}

static void test_a_row_taken_over_starts_free(void **state)
{
    (void)state;
    check_row_taken_over(RAM_MAP_BLOCKS, 1);                 /* every chunk: given back */
    check_row_taken_over(RAM_MAP_BLOCKS, 3 * RAM_MAP_CHUNK); /* chunks 0, 3, 6 and 7: stores */
    check_row_taken_over(512, 1);
}

/* A slot's lowest blocks (its image) and its highest (what a start places
 * top-down) share one page of the row's map, whose cells are rotated
 * (ram_map_place): a start writes one page of it, not two.  The cells
 * still read back in block order. */
static void check_ends_share_a_page(uint32_t blocks)
{
    static char cells[RAM_MAP_BLOCKS];
    /* In /dev/shm, as cebox run's sessions: a page of a file there is in
     * memory once written and not before (a disk file's reads ahead). */
    char shm[64];
    snprintf(shm, sizeof shm, "/dev/shm/cebox-test-ram-%d", (int)getpid());
    int fd = new_session(shm, 100);
    struct ram a;
    assert_int_equal(ram_session_join(&a, shm), 0);
    ram_map_begin(&a);
    ram_map_blocks(&a, blocks);
    ram_map_set(&a, 0, '-');
    ram_map_set(&a, 1, 'I');
    ram_map_set(&a, blocks - 40, 'D');
    ram_map_set(&a, blocks - 1, 'S');
    ram_map_end(&a);
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = RAM_MAP_BLOCKS / page, resident = 0;
    unsigned char vec[RAM_MAP_BLOCKS / 4096];
    assert_true(pages <= sizeof vec);
    assert_int_equal(mincore(a.map, RAM_MAP_BLOCKS, vec), 0);
    for (size_t i = 0; i < pages; i++) {
        resident += vec[i] & 1;
    }
    assert_int_equal(resident, 1);
    struct ram_view v;
    assert_int_equal(ram_view_open(&v, shm), 0);
    assert_int_equal(ram_view_map(&v, getpid(), cells, sizeof cells), blocks);
    assert_int_equal(cells[0], '-');
    assert_int_equal(cells[1], 'I');
    assert_int_equal(cells[2], '.');
    assert_int_equal(cells[blocks - 40], 'D');
    assert_int_equal(cells[blocks - 1], 'S');
    ram_view_close(&v);
    ram_release(&a);
    close(fd);
    unlink(shm);
}

static void test_a_slot_ends_share_a_map_page(void **state)
{
    (void)state;
    check_ends_share_a_page(RAM_MAP_BLOCKS); /* ce6's 2 GB */
    check_ends_share_a_page(512);            /* ce5's 32 MB */
}

/* With every row of the member table taken, a joining process is refused
 * (ENOSPC) and a forked child goes on with a device of its own, charged
 * with its copy of the slot, rather than with pages nobody would give back. */
/* Ends a test's member children: closing go's write end lets each one
 * exit, each is reaped, then the pipes, the session and its file go. */
static void end_members(int go[2], const pid_t *kids, int n, int report[2], struct ram *a, int fd)
{
    close(go[1]);
    for (int i = 0; i < n; i++) {
        waitpid(kids[i], NULL, 0);
    }
    close(go[0]);
    close(report[0]);
    close(report[1]);
    ram_release(a);
    close(fd);
    alarm(0);
}

static void test_a_full_member_table(void **state)
{
    (void)state;
    alarm(30);
    struct ram a;
    int fd = session_with_member(&a);
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t kids[255];
    int n = 0;
    for (; n < 255; n++) { /* the other 255 rows */
        kids[n] = fork();
        assert_true(kids[n] >= 0);
        if (kids[n] == 0) {
            close(go[1]); /* its read ends when the parent closes the last write end */
            close(ready[0]);
            struct ram k;
            char c = ram_session_join(&k, path) == 0 ? 'y' : 'n';
            (void)!write(ready[1], &c, 1);
            (void)!read(go[0], &c, 1); /* until the parent closes it */
            _exit(0);
        }
    }
    for (int i = 0; i < n; i++) {
        char c = 0;
        assert_int_equal(read(ready[0], &c, 1), 1);
        assert_int_equal(c, 'y');
    }
    pid_t joiner = fork(); /* another process: a second join here would take this one's row */
    assert_true(joiner >= 0);
    if (joiner == 0) {
        struct ram refused;
        _exit(ram_session_join(&refused, path) == ENOSPC ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(joiner, &status, 0), joiner);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_string_equal(ram_join_strerror(ENOSPC), "its member table is full");

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        ram_forked(&a, 5); /* as the preload's fork handler does */
        bool ok = !a.session && strstr(ram_private_reason(&a), "member table") != NULL &&
                  ram_total_pages(&a) == 100 && ram_free_pages(&a) == 95 && ram_charge(&a, 1) == RAM_OK;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(ram_free_pages(&a), 90); /* the session never saw the child's pages */
    end_members(go, kids, n, ready, &a, fd);
}

/* A forked child that joins the session at path, writes its row's number
 * (-1: refused) to rows_w, gives the row back at once when `leave`, and
 * stays until the write end of go is closed. */
static pid_t member_child(int rows_w, int go[2], bool leave)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]); /* its read ends when the parent's write end closes */
        struct ram k;
        int row = ram_session_join(&k, path) == 0 ? k.member : -1;
        if (row >= 0 && leave) {
            ram_release(&k);
        }
        (void)!write(rows_w, &row, sizeof row);
        char c;
        (void)!read(go[0], &c, 1);
        _exit(0);
    }
    return pid;
}

/* A join takes the lowest free row: one given back below the rows in use,
 * else the next never taken. */
static void test_rows_are_taken_lowest_first(void **state)
{
    (void)state;
    alarm(10);
    struct ram a;
    int fd = session_with_member(&a);
    assert_int_equal(a.member, 0);
    int rows[2], go[2];
    assert_int_equal(pipe(rows), 0);
    assert_int_equal(pipe(go), 0);
    static const struct {
        bool leave;
        int row;
    } steps[] = {{false, 1}, {true, 2}, {false, 2}, {false, 3}};
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = member_child(rows[1], go, steps[i].leave);
        int row = -2;
        assert_int_equal(read(rows[0], &row, sizeof row), sizeof row);
        assert_int_equal(row, steps[i].row);
    }
    end_members(go, kids, 4, rows, &a, fd);
}

/* A private device of 256 pages with the ppc table (hibernate 224 KB,
 * low 96 KB), its forced states held as `mode` says, charged 100 pages
 * and then forced low. */
static void forced_low_holding_100(struct ram *r, enum ram_force_mode mode)
{
    assert_int_equal(ram_init(r, 256, PAGE, memstate_table_by_id(MEMSTATE_TABLE_PPC)), 0);
    ram_set_force_mode(r, mode);
    assert_int_equal(ram_charge(r, 100), RAM_OK);
    ram_force_state(r, MEMSTATE_LOW);
    assert_int_equal(ram_state(r), MEMSTATE_LOW);
    assert_int_equal(ram_free_pages(r), 96 * 1024 / PAGE - 1); /* just inside low */
}

static void test_a_ballast_lets_frees_move_the_state_back_up(void **state)
{
    (void)state;
    struct ram r;
    forced_low_holding_100(&r, RAM_FORCE_BALLAST);
    assert_int_equal(ram_ballast_pages(&r), 256 - 100 - (96 * 1024 / PAGE - 1));
    ram_credit(&r, 100);
    assert_int_equal(ram_state(&r), MEMSTATE_NORMAL);
    assert_int_equal(ram_free_pages(&r), 100 + 96 * 1024 / PAGE - 1);
    /* Commits take it down again (the last page by itself: the CE rule
     * refuses a large commit that would enter low). */
    assert_int_equal(ram_charge(&r, 99), RAM_OK);
    assert_int_equal(ram_state(&r), MEMSTATE_LIMITED);
    assert_int_equal(ram_charge(&r, 1), RAM_OK);
    assert_int_equal(ram_state(&r), MEMSTATE_LOW);
    ram_force_state(&r, MEMSTATE_NORMAL); /* gives the ballast back */
    assert_int_equal(ram_ballast_pages(&r), 0);
    assert_int_equal(ram_free_pages(&r), 156);
    ram_release(&r);
}

static void test_a_pinned_state_stays_whatever_is_freed(void **state)
{
    (void)state;
    struct ram r;
    forced_low_holding_100(&r, RAM_FORCE_PIN);
    assert_int_equal(ram_ballast_pages(&r), 0);
    ram_credit(&r, 100);
    assert_int_equal(ram_state(&r), MEMSTATE_LOW);
    ram_release(&r);
}

/* The shell's wake word changes when free RAM crosses the hibernate level
 * (down and up) and when a member joins, not at an ordinary charge; the
 * private device's own notice is counted at the crossing down. */
static void test_the_wake_word_follows_crossings_and_joins(void **state)
{
    (void)state;
    struct ram r;
    assert_int_equal(ram_init(&r, 256, PAGE, memstate_table_by_id(MEMSTATE_TABLE_PPC)), 0);
    uint32_t w = ram_shell_word(&r);
    assert_int_equal(ram_charge(&r, 10), RAM_OK);
    assert_int_equal(ram_shell_word(&r), w);
    assert_int_equal(ram_charge(&r, 256 - 10 - 224 * 1024 / PAGE), RAM_OK); /* free exactly at the level */
    assert_int_equal(ram_shell_word(&r), w);
    assert_int_equal(ram_notices(&r), 0);
    assert_int_equal(ram_charge(&r, 1), RAM_OK); /* under it */
    assert_int_not_equal(ram_shell_word(&r), w);
    assert_int_equal(ram_notices(&r), 1);
    w = ram_shell_word(&r);
    ram_credit(&r, 1); /* over it again */
    assert_int_not_equal(ram_shell_word(&r), w);
    ram_release(&r);

    int fd = new_session(path, 100);
    struct ram a;
    assert_int_equal(ram_session_join(&a, path), 0);
    w = ram_shell_word(&a);
    uint32_t joins = ram_joins(&a);
    /* A join over the hibernate level is counted, and wakes nobody: the
     * shell has nothing to do for it until its next tick. */
    struct ram b;
    assert_int_equal(ram_session_join(&b, path), 0);
    assert_int_equal(ram_shell_word(&a), w);
    assert_int_equal(ram_joins(&a), joins + 1);
    /* `cebox state` is no member: it takes no row, so the shell never
     * counts it among the processes to notify. */
    assert_int_equal(ram_session_force(path, MEMSTATE_LOW), 0);
    assert_int_equal(ram_joins(&a), joins + 1);
    assert_int_equal(ram_state(&a), MEMSTATE_LOW);
    /* Under the level, a member that joins is owed its notice: the shell
     * is woken at once. */
    w = ram_shell_word(&a);
    struct ram c;
    assert_int_equal(ram_session_join(&c, path), 0);
    assert_int_not_equal(ram_shell_word(&a), w);
    assert_int_equal(ram_joins(&a), joins + 2);
    ram_release(&c);
    ram_release(&b);
    ram_release(&a);
    close(fd);
}

/* ram_charge_at_once takes its pages only where charging them one by one
 * would cross no level (ppc: hibernate at 56 free pages, limited under 40):
 * otherwise nothing is taken, recorded or woken. */
static void test_a_charge_at_once_crosses_no_level(void **state)
{
    (void)state;
    struct ram r;
    assert_int_equal(ram_init(&r, 256, PAGE, memstate_table_by_id(MEMSTATE_TABLE_PPC)), 0);
    assert_true(ram_charge_at_once(&r, 10));
    assert_int_equal(ram_free_pages(&r), 246);
    uint32_t w = ram_shell_word(&r);
    assert_false(ram_charge_at_once(&r, 191)); /* would end under the hibernate level */
    assert_int_equal(ram_free_pages(&r), 246);
    assert_false(ram_charge_at_once(&r, 247)); /* more than is free */
    assert_true(ram_charge_at_once(&r, 190)); /* free exactly at the level */
    assert_int_equal(ram_free_pages(&r), 56);
    assert_false(ram_charge_at_once(&r, 1));
    assert_int_equal(ram_shell_word(&r), w);
    assert_int_equal(ram_notices(&r), 0);
    assert_int_equal(ram_charge(&r, 1), RAM_OK); /* the crossing, by itself */
    assert_int_equal(ram_notices(&r), 1);
    w = ram_shell_word(&r);
    assert_true(ram_charge_at_once(&r, 15)); /* under the level, still normal */
    assert_int_equal(ram_state(&r), MEMSTATE_NORMAL);
    assert_false(ram_charge_at_once(&r, 1)); /* into limited */
    assert_int_equal(ram_state(&r), MEMSTATE_NORMAL);
    assert_int_equal(ram_free_pages(&r), 40);
    assert_int_equal(ram_shell_word(&r), w);
    assert_int_equal(ram_notices(&r), 1);
    ram_credit(&r, 216);
    assert_int_equal(ram_free_pages(&r), 256);
    ram_release(&r);
}

/* ce5 has no limited level: a session there refuses to be forced limited. */
static void test_limited_is_refused_under_ce5(void **state)
{
    (void)state;
    int fd = new_session(path, 100);
    assert_int_equal(ram_session_force(path, MEMSTATE_LIMITED), ENOTSUP);
    assert_int_equal(ram_session_force(path, MEMSTATE_LOW), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_file_is_0600_and_stays_open_high_and_close_on_exec),
        cmocka_unit_test(test_a_member_joins_through_the_descriptor),
        cmocka_unit_test(test_a_descriptor_that_names_another_file_is_not_used),
        cmocka_unit_test(test_a_session_at_a_long_path_is_told_apart_by_stat),
        cmocka_unit_test(test_a_member_killed_holding_the_lock_blocks_nobody),
        cmocka_unit_test(test_a_member_that_execd_is_reclaimed),
        cmocka_unit_test(test_a_full_member_table),
        cmocka_unit_test(test_the_timeline_figures_of_a_member_and_its_forked_child),
        cmocka_unit_test(test_a_ballast_lets_frees_move_the_state_back_up),
        cmocka_unit_test(test_a_pinned_state_stays_whatever_is_freed),
        cmocka_unit_test(test_the_wake_word_follows_crossings_and_joins),
        cmocka_unit_test(test_limited_is_refused_under_ce5),
        cmocka_unit_test(test_a_charge_at_once_crosses_no_level),
        cmocka_unit_test(test_live_sites_of_a_member_and_its_forked_child),
        cmocka_unit_test(test_a_row_taken_over_starts_free),
        cmocka_unit_test(test_a_slot_ends_share_a_map_page),
        cmocka_unit_test(test_rows_are_taken_lowest_first),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
