/*
 * eventlog.c - failed allocations, recorded as they happen (see eventlog.h
 * for the contract and docs/LOG-FORMAT.md for the bytes).
 *
 * The cost model: nothing on the success path; on a failure with no
 * CEBOX_OUT, nothing (entry_fail counts it in summary.c); with CEBOX_OUT,
 * one unwind, a look at the loader's object counters, and three write(2)
 * calls (stack on its first use, failure, slot map), each after a statx
 * that checks the descriptor still holds the log (ownfd.h: the program may
 * have closed it or put its own file on that number).
 */
#include "record/eventlog.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "layout.h"
#include "cstr.h"
#include "memstate.h"
#include "meta.h"
#include "occupancy.h"
#include "os.h"
#include "record/fatal.h"
#include "record/leaks.h"
#include "record/ownfd.h"
#include "record/stack.h"

/* Large enough for any record: the biggest is the slot map of a 2 GB slot
 * (32 768 blocks) in the worst case of one run per block (5 bytes each). */
#define REC_BUF_SIZE ((size_t)256 * 1024)
#define CMDLINE_MAX 4096
#define LOG_PATH_MAX 4096

struct module_seen {
    uintptr_t bias, lo, hi;
    uint64_t path_hash;
};

static struct {
    pthread_mutex_t lock;
    atomic_int holder;  /* the thread id holding the lock (0: none, or not yet known) */
    sigset_t held_mask; /* the holder's signal mask before log_lock blocked the kills */
    pid_t pid;          /* the process the state below belongs to (0: none yet) */
    bool forked;        /* that process is a forked child (its log's header says so) */
    struct ownfd file;  /* the open log (path: .path), high and identity-checked */
    bool broken;        /* cannot open, or a record was torn: this process writes no more */
    bool lost;          /* a record could not be written at all: the rest of this event is
                         * dropped, and the next one writes its modules and stacks again */
    bool warned;
    uint32_t generation; /* bumped for each log file started in this address space */
    uint32_t seq;        /* failures recorded in the current file */
    uint64_t bytes;      /* written to the current file */
    unsigned char *rec; /* REC_BUF_SIZE bytes (meta.c) */
    char *map;
    size_t map_cap;
    struct stack_table stacks;
    struct module_seen *mods;
    size_t nmods, mods_cap;
    unsigned long long dl_adds, dl_subs;
    bool dl_known;
    size_t command_len;
    uint64_t start_mono, start_real;
    pid_t start_pid; /* eventlog_start ran in this process */
} lg = {.lock = PTHREAD_MUTEX_INITIALIZER, .file = OWNFD_NONE};

/* The log's texts, apart from lg: lg has bytes other than zeros (its
 * descriptor's -1), so it is .data, and with these 17 KB in it the
 * small variables after it in .bss spilled onto a page more, which every
 * start wrote.  Zeros, in .lbss (layout.h): a start without a log never
 * touches them. */
static struct {
    char setting[sizeof(((struct cebox_settings *)0)->out_dir)]; /* CEBOX_OUT as given */
    char dir[LOG_PATH_MAX]; /* the same, made absolute at the start */
    char path[LOG_PATH_MAX + 32];
    char exe[LOG_PATH_MAX];
    char command[CMDLINE_MAX];
} lgt CEBOX_LARGE_TABLE;

/* Set when a signal handler begins the process's ending: no other thread
 * starts a failure's records or a periodic one after it (they are counted
 * as unrecorded), so the handler waits for one record at most. */
static atomic_bool ending;

/* The log's lock, with its holder's thread id (for log_lock_in_handler:
 * set once taken, cleared before it is given back), held with the kill
 * signals blocked (fatal.h): a SIGTERM never interrupts the holder, whose
 * lock the handler would then wait for in vain and lose the ending. */
/* This thread's id, asked of the kernel once per thread (each gettid is a
 * system call, and every lock names its holder); 0: not asked yet.  Kept
 * only once fork_child is registered (ensure_fork_handlers): a forked
 * child's only thread forgets its parent's there. */
static _Thread_local int own_tid __attribute__((tls_model("initial-exec")));
static _Atomic int fork_handlers = CORE_ONCE_NOT_YET; /* core_run_once's */

static int log_thread_id(void)
{
    if (own_tid != 0) {
        return own_tid;
    }
    int tid = os_gettid();
    if (atomic_load(&fork_handlers) == CORE_ONCE_DONE) {
        own_tid = tid;
    }
    return tid;
}

static void log_lock(void)
{
    sigset_t before;
    fatal_hold_kills(&before);
    pthread_mutex_lock(&lg.lock);
    lg.held_mask = before;
    atomic_store(&lg.holder, log_thread_id());
}

static void log_unlock(void)
{
    sigset_t before = lg.held_mask;
    atomic_store(&lg.holder, 0);
    pthread_mutex_unlock(&lg.lock);
    fatal_unhold_kills(&before);
}

/* Failures of this process counted but not recorded: the log had reached
 * CEBOX_LOG_LIMIT. */
static atomic_uint_fast64_t unrecorded;

/* ---- small helpers: time, text, output ---- */

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void say(const char *a, const char *b, const char *c)
{
    const char *parts[] = {"cebox: ", a, b, c, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        os_write_stderr(parts[i], strlen(parts[i]));
    }
}

/* Where the kernel laid out the arguments' strings ([start, end), the
 * environment's after them up to env_end), as the preload library's
 * __libc_start_main saw them; start 0: unknown. */
static struct {
    uintptr_t start, end, env_end;
} args;

/* The end of n strings (n > 0) laid out one after the other from strs[0]
 * (each starts past the one before, after a NUL), or 0 when they are not
 * so laid out.  Only the last one is measured: a start's environment is
 * some kilobytes, and a byte loop over all of it cost more than the
 * strlen binding it saved (libc's own cost a lazy binding). */
static uintptr_t end_of_packed(char *const *strs, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if ((uintptr_t)strs[i] <= (uintptr_t)strs[i - 1] || strs[i][-1] != '\0') {
            return 0;
        }
    }
    return (uintptr_t)strs[n - 1] + cstr_len(strs[n - 1]) + 1;
}

void eventlog_note_arguments(int argc, char **argv)
{
    /* ld.so run as the program (no AT_BASE) has dropped its own arguments
     * from argv: the kernel's area starts before argv[0] then. */
    if (argc <= 0 || argv == NULL || getauxval(AT_BASE) == 0) {
        return;
    }
    char **envp = argv + argc + 1;
    size_t nenv = 0;
    while (envp[nenv] != NULL) {
        nenv++;
    }
    uintptr_t end = end_of_packed(argv, (size_t)argc);
    uintptr_t env_end = nenv != 0 && (uintptr_t)envp[0] == end ? end_of_packed(envp, nenv) : end;
    if (end != 0) {
        args.start = (uintptr_t)argv[0];
        args.end = end;
        args.env_end = env_end != 0 ? env_end : end;
    }
}

/* What a read of /proc/self/cmdline of up to cap bytes gives, read from
 * the process's own memory by the kernel's rule (fs/proc/base.c,
 * get_mm_cmdline): the arguments' area, unless its last byte is no longer
 * NUL (setproctitle: then the text from its start to the first NUL, within
 * a page and the environment's end).  -1 when the area is unknown (the
 * caller reads the file then).  Read in place: the area is the kernel's
 * strings at the top of the main thread's stack, found packed there at
 * the start (eventlog_note_arguments), and that mapping lasts as long as
 * the process (a copy by process_vm_readv cost two system calls). */
static long read_command_area(char *buf, size_t cap)
{
    if (args.start == 0 || cap == 0) {
        return -1;
    }
    /* One read: the arguments, or the most a title could give (a page,
     * within the environment's end), whichever is longer. */
    size_t args_len = args.end - args.start, area = args.env_end - args.start, page = os_page_size();
    size_t title_max = area < page ? area : page;
    size_t want = args_len > title_max ? args_len : title_max;
    size_t got = want < cap ? want : cap;
    memcpy(buf, (const void *)args.start, got);
    char last = *(const char *)(args.end - 1);
    if (last == '\0') {
        return (long)(got < args_len ? got : args_len);
    }
    size_t lim = got < title_max ? got : title_max;
    size_t n = strnlen(buf, lim);
    return (long)(n < lim ? n + 1 : n); /* the NUL, when found */
}

/* The command line into buf (cap bytes), arguments separated by NUL bytes
 * (as the kernel keeps it), trailing NULs dropped and one ending it: from
 * memory when the arguments' area is known, else from /proc/self/cmdline.
 * Returns its length. */
static size_t command_into(char *buf, size_t cap)
{
    long n = read_command_area(buf, cap - 1);
    int fd = n < 0 ? os_open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC, 0) : -1;
    if (fd >= 0) {
        n = os_read(fd, buf, cap - 1);
        os_close(fd);
    }
    if (n <= 0) {
        strcpy(buf, "?");
        n = 2;
    }
    while (n > 1 && buf[n - 1] == '\0') {
        n--;
    }
    buf[n] = '\0';
    return (size_t)n;
}

/* The command line as the log keeps it (its header's). */
static void read_command(void)
{
    lg.command_len = command_into(lgt.command, sizeof lgt.command);
}

/* The command line and the executable's path, for a log's header. */
static void read_identity(void)
{
    read_command();
    ssize_t m = readlink("/proc/self/exe", lgt.exe, sizeof lgt.exe - 1);
    lgt.exe[m > 0 ? m : 0] = '\0';
}

/* CEBOX_OUT made absolute, so a program that changes its directory still
 * writes where the user asked. */
static void resolve_dir(const char *setting)
{
    snprintf(lgt.setting, sizeof lgt.setting, "%s", setting);
    char cwd[LOG_PATH_MAX - sizeof lgt.setting - 2];
    if (setting[0] != '/' && getcwd(cwd, sizeof cwd) != NULL) {
        snprintf(lgt.dir, sizeof lgt.dir, "%s/%s", cwd, setting);
    } else {
        snprintf(lgt.dir, sizeof lgt.dir, "%s", setting);
    }
}

/* Writes one record (true when it is all in the file).  A record torn by a
 * failed write stops the log for good, so that no record ever follows a
 * torn one; a record not written at all (the file cannot be opened again)
 * drops the rest of the event, and nothing that follows refers to it. */
static bool emit_locked(struct log_enc *e)
{
    size_t len = log_enc_finish(e);
    if (len == 0 || lg.broken || lg.lost) {
        return false;
    }
    size_t written;
    int err = ownfd_write(&lg.file, e->buf, len, &written);
    lg.bytes += written;
    if (err != 0 && written > 0) {
        lg.broken = true;
    } else if (err != 0) {
        lg.lost = true;
    }
    return err == 0;
}

static void put_cstr(struct log_enc *e, const char *s)
{
    log_put_str(e, s, cstr_len(s));
}

/* ---- the module map ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

/* The GNU build-id of an object, read from its PT_NOTE segments in memory.
 * Returns its length (0: none). */
static size_t build_id(const struct dl_phdr_info *info, unsigned char *out, size_t cap)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) {
            continue;
        }
        size_t align = ph->p_align == 8 ? 8 : 4;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            ElfW(Nhdr) nh;
            memcpy(&nh, p, sizeof nh);
            size_t name_off = sizeof nh;
            size_t desc_off = name_off + ((nh.n_namesz + align - 1) & ~(align - 1));
            size_t next = desc_off + ((nh.n_descsz + align - 1) & ~(align - 1));
            if (next > (size_t)(end - p)) {
                break;
            }
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && memcmp(p + name_off, "GNU", 4) == 0) {
                size_t n = nh.n_descsz < cap ? nh.n_descsz : cap;
                memcpy(out, p + desc_off, n);
                return n;
            }
            p += next;
        }
    }
    return 0;
}

static bool remember_module_locked(const struct module_seen *m)
{
    for (size_t i = 0; i < lg.nmods; i++) {
        const struct module_seen *o = &lg.mods[i];
        if (o->bias == m->bias && o->lo == m->lo && o->hi == m->hi && o->path_hash == m->path_hash) {
            return false;
        }
    }
    if (lg.nmods == lg.mods_cap) {
        size_t cap = lg.mods_cap ? lg.mods_cap * 2 : 128;
        struct module_seen *grown = meta_grow(lg.mods, lg.mods_cap * sizeof *grown, cap * sizeof *grown);
        if (grown == NULL) {
            return true; /* not remembered: written again at a later scan, harmless */
        }
        lg.mods = grown;
        lg.mods_cap = cap;
    }
    lg.mods[lg.nmods++] = *m;
    return true;
}

static int module_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    struct module_seen m = {.bias = info->dlpi_addr, .lo = UINTPTR_MAX, .hi = 0};
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            m.lo = a < m.lo ? a : m.lo;
            m.hi = a + ph->p_memsz > m.hi ? a + ph->p_memsz : m.hi;
        }
    }
    if (m.hi == 0) {
        return 0;
    }
    const char *path = info->dlpi_name != NULL && info->dlpi_name[0] != '\0' ? info->dlpi_name : lgt.exe;
    m.path_hash = hash_str(path);
    if (!remember_module_locked(&m)) {
        return 0;
    }
    unsigned char id[LOG_MAX_BUILD_ID];
    size_t idlen = build_id(info, id, sizeof id);
    struct log_enc e;
    log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_MODULE);
    log_put_u64(&e, m.bias);
    log_put_u64(&e, m.lo);
    log_put_u64(&e, m.hi);
    log_put_str(&e, id, idlen);
    put_cstr(&e, path);
    emit_locked(&e);
    return 0;
}

static int counters_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    bool *ok = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        *ok = lg.dl_known && info->dlpi_adds == lg.dl_adds && info->dlpi_subs == lg.dl_subs;
        lg.dl_adds = info->dlpi_adds;
        lg.dl_subs = info->dlpi_subs;
        lg.dl_known = true;
    }
    return 1; /* the counters are the same in every entry */
}

/* Writes a record for each loaded object not written yet; skipped when the
 * loader's counters of loads and unloads have not moved. */
static void scan_modules_locked(void)
{
    bool unchanged = false;
    dl_iterate_phdr(counters_cb, &unchanged);
    if (!unchanged) {
        dl_iterate_phdr(module_cb, NULL);
    }
}

/* ---- opening the log ---- */

static void header_locked(struct cebox_core *core, bool forked)
{
    struct log_enc e;
    char settings[3072];
    options_format(&core->settings, settings, sizeof settings);
    log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_HEADER);
    log_put_bytes(&e, LOG_HEADER_TAG, 8);
    log_put_u32(&e, LOG_VERSION);
    log_put_u32(&e, (uint32_t)lg.pid);
    log_put_u32(&e, (uint32_t)getppid());
    log_put_u32(&e, forked ? 1u : 0u);
    log_put_u64(&e, lg.start_real);
    log_put_u64(&e, lg.start_mono);
    log_put_u32(&e, (uint32_t)slot_page_size(core->slot));
    log_put_u32(&e, (uint32_t)slot_granularity(core->slot));
    log_put_u64(&e, slot_base(core->slot));
    log_put_u64(&e, slot_size(core->slot));
    log_put_u64(&e, (uint64_t)ram_total_pages(&core->ram) * core->ram.page);
    log_put_u32(&e, core->settings.stack_depth);
    put_cstr(&e, core->settings.profile->name);
    log_put_str(&e, lgt.command, lg.command_len);
    put_cstr(&e, settings);
    put_cstr(&e, lgt.exe);
    log_put_u64(&e, core->ram.session ? ram_start_ns(&core->ram) : 0);
    emit_locked(&e);
}

/* The record buffer, and a slot map buffer with a byte per block.  A
 * buffer that cannot be had now is asked for again at the next event. */
static bool map_buffers_locked(struct cebox_core *core)
{
    if (lg.rec == NULL) {
        lg.rec = meta_alloc(REC_BUF_SIZE);
    }
    size_t blocks = slot_size(core->slot) / slot_granularity(core->slot);
    if (lg.map_cap < blocks) {
        char *grown = meta_grow(lg.map, lg.map_cap, blocks);
        if (grown != NULL) {
            lg.map = grown;
            lg.map_cap = blocks;
        }
    }
    return lg.rec != NULL && lg.map_cap >= blocks;
}

static void warn_unwritable_locked(const struct cebox_core *core)
{
    if (!lg.warned && !core->settings.quiet) {
        lg.warned = true;
        say("cannot write the event log ", lgt.path, ": failures are counted but not recorded");
    }
}

/* One occupancy record per entry; false when a write failed. */
static bool occupant_records_locked(const struct occupancy_entry *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct log_enc e;
        log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_OCCUPANT);
        log_put_u8(&e, (uint8_t)list[i].kind);
        log_put_u8(&e, list[i].xip);
        log_put_u32(&e, list[i].first_block);
        log_put_u32(&e, list[i].blocks);
        log_put_u32(&e, list[i].pages);
        put_cstr(&e, list[i].name);
        if (!emit_locked(&e)) {
            return false;
        }
    }
    return true;
}

/* The image, main stack and libraries in the slot (occupancy.c), one
 * record each, after the module map: what the slot held when the file was
 * begun (libraries loaded later are in the summary's counts only). */
static void occupants_locked(void)
{
    struct occupancy_entry list[16];
    size_t n;
    for (size_t from = 0; (n = occupancy_list(from, list, sizeof list / sizeof list[0])) != 0; from += n) {
        if (!occupant_records_locked(list, n)) {
            return;
        }
    }
}

/* Starts the records of the current file: the header and the module map;
 * every stack is written again before its next use. */
static void begin_file_locked(struct cebox_core *core)
{
    lg.lost = false;
    lg.seq = 0;
    lg.bytes = 0;
    lg.nmods = 0;
    lg.dl_known = false;
    lg.generation++;
    header_locked(core, lg.forked);
    scan_modules_locked();
    occupants_locked();
}

/* Is the log still open on this process's file?  Opened again when the
 * program closed its descriptor or put its own file on that number; begun
 * again when the path now names another file (removed and made anew).
 * After an event whose records were lost, modules and stacks are written
 * again before their next use (the reader takes the repeats). */
static bool still_open_locked(struct cebox_core *core)
{
    switch (ownfd_ensure(&lg.file, true)) {
    case OWNFD_SAME:
        if (lg.lost) {
            lg.lost = false;
            lg.nmods = 0;
            lg.dl_known = false;
            lg.generation++;
        }
        return true;
    case OWNFD_NEW:
        begin_file_locked(core);
        return !lg.broken && !lg.lost;
    case OWNFD_LOST:
        break;
    }
    warn_unwritable_locked(core);
    return false;
}

/* Makes sure this process has its log open; starts the file (header and
 * module map) when it has not.  False when nothing can be written. */
static bool ensure_open_locked(struct cebox_core *core)
{
    pid_t pid = os_getpid();
    const char *setting = core->settings.out_dir;
    if (lg.pid == pid && cstr_equal(lgt.setting, setting)) {
        return !lg.broken && still_open_locked(core);
    }
    /* No bookkeeping memory: this event goes unwritten (it is counted),
     * and the next one tries again; the log is not given up for it. */
    if (!map_buffers_locked(core)) {
        return false;
    }
    /* A new process (forked: fork_child let go of the parent's file) or,
     * in tests, a new CEBOX_OUT. */
    lg.forked = lg.pid != 0 && lg.pid != pid;
    ownfd_close(&lg.file);
    if (lgt.dir[0] == '\0' || !cstr_equal(lgt.setting, setting)) {
        resolve_dir(setting); /* a forked child keeps the directory its parent resolved */
    }
    lg.pid = pid;
    lg.broken = false;
    if (lg.start_pid != pid) {
        lg.start_mono = now_ns(CLOCK_MONOTONIC);
        lg.start_real = now_ns(CLOCK_REALTIME);
    }
    read_identity();
    snprintf(lgt.path, sizeof lgt.path, "%s/cebox-%d.log", lgt.dir, (int)pid);
    if (ownfd_open(&lg.file, lgt.path, O_WRONLY | O_CREAT | O_APPEND, 0644) != 0) {
        lg.broken = true;
        warn_unwritable_locked(core);
        return false;
    }
    begin_file_locked(core);
    return !lg.broken && !lg.lost;
}

/* ---- fork ----
 *
 * The log's lock is taken across a fork only in a process that can have a
 * log (--out): without one nobody ever takes it, and a fork of such a
 * process (a boxed shell starting each command) neither changes the
 * signal mask three times nor writes the log's pages, which the child
 * (and the parent, after it) would each copy for those writes. */
static bool fork_locked; /* fork_prepare took the lock */

static void fork_prepare(void)
{
    bool lock = core_get()->settings.out_dir[0] != '\0';
    if (fork_locked != lock) {
        fork_locked = lock; /* written only when it changes: no page copied for it */
    }
    if (lock) {
        log_lock();
    }
}

static void fork_parent(void)
{
    if (fork_locked) {
        log_unlock();
    }
}

static void fork_child(void)
{
    own_tid = 0;
    if (atomic_load(&unrecorded) != 0) {
        atomic_store(&unrecorded, 0);
    }
    /* The parent's file (this process starts its own at its first event),
     * closed only if the number still holds it: it may be the program's. */
    if (lg.file.fd >= 0) {
        ownfd_close(&lg.file);
    }
    if (fork_locked) {
        log_unlock();
    }
}

static void register_fork_handlers(void)
{
    core_atfork(fork_prepare, fork_parent, fork_child);
}

/* The fork handlers, registered once per process (core_run_once: no
 * futex system call at the start). */
static void ensure_fork_handlers(void)
{
    core_run_once(&fork_handlers, register_fork_handlers);
}

/* ---- the public functions ---- */

void eventlog_start(struct cebox_core *core)
{
    ensure_fork_handlers();
    /* No log to start: the settings hold for the process's life, so none
     * opens later, and the start's pid and times go unread (a log that
     * does open takes them then, ensure_open_locked).  Four system calls
     * fewer at each start. */
    if (core->settings.out_dir[0] == '\0') {
        return;
    }
    log_lock();
    lg.start_pid = os_getpid();
    lg.start_mono = now_ns(CLOCK_MONOTONIC);
    lg.start_real = now_ns(CLOCK_REALTIME);
    resolve_dir(core->settings.out_dir);
    ensure_open_locked(core);
    log_unlock();
}

static uint32_t stack_record_locked(const uintptr_t *ips, size_t depth)
{
    if (depth == 0) {
        return 0;
    }
    bool added;
    struct stack_info *si = stack_table_intern(&lg.stacks, ips, depth, &added);
    if (si == NULL) {
        return 0;
    }
    if (si->mark != lg.generation) {
        struct log_enc e;
        log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_STACK);
        log_put_u32(&e, si->id);
        log_put_u32(&e, (uint32_t)depth);
        for (size_t i = 0; i < depth; i++) {
            log_put_u64(&e, ips[i]);
        }
        if (emit_locked(&e)) {
            si->mark = lg.generation;
        }
    }
    return si->id;
}

/* A slot map record: the map now (a failure's, the exit's) or at the
 * peak, whose own time replaces `when`. */
static void map_record_locked(struct cebox_core *core, uint32_t seq, uint64_t lma_bytes, enum log_map_cause cause,
                              uint64_t when)
{
    uint64_t peak_ns = 0;
    enum slot_map_which which = cause == LOG_MAP_PEAK ? SLOT_MAP_PEAK : SLOT_MAP_NOW;
    size_t n = slot_map_marked(core->slot, which, lg.map, lg.map_cap, &peak_ns);
    struct log_enc e;
    log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_MAP);
    log_put_map(&e, seq, lg.map, n, lma_bytes, cause, cause == LOG_MAP_PEAK ? peak_ns : when);
    emit_locked(&e);
}

/* Has this process's log reached its limit (lock held)?  Then failures
 * are counted (the summary says how many went unrecorded) but neither
 * written nor unwound: a program that fails in a loop must not fill the
 * disk.  The file grows by at most one failure's records past the limit,
 * and the exit summary always goes in. */
/* A timeline point of the target's own (a failure, the exit), from the
 * slot's figures taken for the moment and the process heap's published
 * ones (read without the heap's lock, which a failing heap may hold; the
 * free figures are those of the last request, fresh at exit). */
static void sample_record_locked(struct cebox_core *core, unsigned kind, uint64_t when,
                                 const struct slot_stats *st, uint64_t ram_free, enum memstate state)
{
    struct ram_timeline tl;
    ram_own_timeline(&core->ram, &tl);
    struct log_sample smp = {
        .time_ns = when,
        .kind = kind,
        .slot_reserved_blocks = st->reserved_blocks,
        .largest_free_run_blocks = st->largest_free_run,
        .peak_reserved_blocks = st->peak_reserved_blocks,
        .min_largest_free_run_blocks = st->min_largest_free_run,
        .slot_committed_bytes = (uint64_t)st->committed_pages * slot_page_size(core->slot),
        .heap_live_bytes = tl.heap_live_bytes,
        .heap_committed_bytes = tl.heap_committed_bytes,
        .ram_free_bytes = ram_free,
        .state = (unsigned)state,
        .has_free = ram_free_figures_fresh(&tl),
        .heap_free_items = tl.heap_free_items,
        .heap_largest_free_bytes = tl.heap_largest_free_bytes,
        .heap_empty_pages = tl.heap_empty_pages,
    };
    struct log_enc e;
    log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_SAMPLE);
    log_put_sample(&e, &smp);
    emit_locked(&e);
}

static bool limit_reached_locked(const struct cebox_core *core)
{
    return lg.pid == os_getpid() && lg.bytes >= core->settings.log_limit;
}

/* Counts the failure as unrecorded when the log is full. */
static bool skip_when_full(const struct cebox_core *core)
{
    log_lock();
    bool full = limit_reached_locked(core);
    log_unlock();
    if (full) {
        atomic_fetch_add(&unrecorded, 1);
    }
    return full;
}

static void record(struct cebox_core *core, enum log_api api, size_t size, DWORD err, enum log_reason reason,
                   enum memstate met)
{
    ensure_fork_handlers();
    if (atomic_load(&ending)) {
        atomic_fetch_add(&unrecorded, 1);
        return;
    }
    if (skip_when_full(core)) {
        return;
    }
    /* Everything about the moment first, outside the log's lock. */
    uintptr_t ips[LOG_MAX_DEPTH];
    size_t depth = stack_capture(ips, core->settings.stack_depth);
    uint64_t when = now_ns(CLOCK_MONOTONIC);
    uint32_t tid = (uint32_t)os_gettid();
    enum memstate state = ram_state(&core->ram);
    if (met > state) {
        state = met;
    }
    uint64_t ram_free = (uint64_t)ram_free_pages(&core->ram) * core->ram.page;
    struct slot_stats st;
    slot_get_stats(core->slot, &st);

    log_lock();
    bool open = ensure_open_locked(core);
    if (open && limit_reached_locked(core)) { /* filled by another thread meanwhile */
        atomic_fetch_add(&unrecorded, 1);
    } else if (open) {
        scan_modules_locked(); /* objects dlopen'ed since: before the stack that may need them */
        uint32_t id = stack_record_locked(ips, depth);
        uint32_t seq = ++lg.seq;
        struct log_enc e;
        log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_FAILURE);
        log_put_u32(&e, seq);
        log_put_u16(&e, (uint16_t)api);
        log_put_u16(&e, (uint16_t)reason);
        log_put_u32(&e, tid);
        log_put_u32(&e, (uint32_t)state);
        log_put_u64(&e, size);
        log_put_u64(&e, when);
        log_put_u32(&e, id);
        log_put_u32(&e, err);
        log_put_u32(&e, st.blocks);
        log_put_u32(&e, st.free_blocks);
        log_put_u32(&e, st.largest_free_run);
        log_put_u64(&e, (uint64_t)st.committed_pages * slot_page_size(core->slot));
        log_put_u64(&e, ram_free);
        log_put_u64(&e, st.lma_reserved_bytes);
        emit_locked(&e);
        map_record_locked(core, seq, st.lma_reserved_bytes, LOG_MAP_FAILURE, when);
        sample_record_locked(core, LOG_SAMPLE_FAILURE, when, &st, ram_free, state);
    }
    log_unlock();
}

void eventlog_failure(enum log_api api, size_t size, DWORD err, enum log_reason reason, enum memstate met)
{
    struct cebox_core *core = core_get();
    if (core->settings.out_dir[0] != '\0' && core->slot != NULL) {
        int saved = errno; /* the caller sets errno as libc would */
        record(core, api, size, err, reason, met);
        leaks_sample(LOG_SAMPLE_FAILURE); /* the sites' live bytes beside the timeline's point */
        errno = saved;
    }
}

uint64_t eventlog_unrecorded(void)
{
    return atomic_load(&unrecorded);
}

/* Arguments joined by spaces (the kernel separates them by NULs). */
static void join_arguments(char *out, size_t cap, const char *command, size_t len)
{
    size_t i = 0;
    for (; i < len && i + 1 < cap; i++) {
        out[i] = command[i] != '\0' ? command[i] : ' ';
    }
    if (cap != 0) {
        out[i] = '\0';
    }
}

void eventlog_command(char *out, size_t cap, int pid, bool locks_free)
{
    if (core_get()->settings.out_dir[0] == '\0') {
        /* No log: read now, with no lock, no signal mask and nothing of
         * the log's (a process without --out writes none of its pages);
         * raw system calls only, so a signal handler may too. */
        char command[CMDLINE_MAX];
        size_t len = command_into(command, sizeof command);
        join_arguments(out, cap, command, len);
        return;
    }
    if (!locks_free) {
        /* Written once, before the log's header: a copy without the lock
         * reads either nothing or all of it. */
        bool kept = lg.command_len != 0 && lg.pid == pid;
        join_arguments(out, cap, kept ? lgt.command : "?", kept ? lg.command_len : 1);
        return;
    }
    log_lock();
    if (lg.command_len == 0 || lg.pid != pid) {
        read_command();
    }
    join_arguments(out, cap, lgt.command, lg.command_len);
    log_unlock();
}

/* The log's lock in the handler of a signal that ends the process.  The
 * thread it interrupted may hold it (mid-record): then it is never free,
 * and nothing more is written.  Another thread that holds it lets it go
 * once its record is written (and starts no other: `ending`; threads that
 * fail without pause took it back before the handler's next try, on a
 * loaded machine), so the ending waits for it, a bounded time:
 * that thread may itself wait for a lock the interrupted one holds (the
 * slot's, taken inside this one).  Once a wait ran out, the ending's later
 * records only try.  (A single try once lost the ending of a process
 * killed while another thread wrote a failure.) */
#define END_LOCK_WAIT_MS 500

static bool log_lock_in_handler(void)
{
    static atomic_bool waited_out;
    int me = log_thread_id();
    atomic_store(&ending, true);
    for (int ms = 0;; ms++) {
        if (pthread_mutex_trylock(&lg.lock) == 0) {
            fatal_hold_kills(&lg.held_mask); /* log_unlock puts the handler's mask back */
            atomic_store(&lg.holder, me);
            return true;
        }
        if (atomic_load(&lg.holder) == me || atomic_load(&waited_out)) {
            return false;
        }
        if (ms == END_LOCK_WAIT_MS) {
            atomic_store(&waited_out, true);
            return false;
        }
        struct timespec one = {0, 1000000};
        nanosleep(&one, NULL);
    }
}

/* The log's lock at the end of the process (in a signal handler, as
 * above).  NULL when there is no log to write. */
static bool log_wanted(const struct cebox_core *core)
{
    return core->settings.out_dir[0] != '\0' && core->slot != NULL;
}

static struct cebox_core *end_lock(bool in_signal)
{
    struct cebox_core *core = core_get();
    if (!log_wanted(core)) {
        return NULL;
    }
    if (in_signal) {
        if (!log_lock_in_handler()) {
            return NULL;
        }
    } else {
        log_lock();
    }
    if (!ensure_open_locked(core)) {
        log_unlock();
        return NULL;
    }
    return core;
}

void eventlog_leaks(const struct leak_report *r, bool in_signal)
{
    int saved = errno;
    if (end_lock(in_signal) == NULL) {
        return;
    }
    scan_modules_locked();
    for (size_t i = 0; i < r->nsites; i++) {
        const struct leak_site *t = &r->sites[i];
        uint32_t id = stack_record_locked(t->ips, t->depth);
        struct log_enc e;
        log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_LEAK);
        log_put_u32(&e, id);
        log_put_u8(&e, t->kind);
        log_put_u64(&e, t->bytes);
        log_put_u64(&e, t->charged);
        log_put_u64(&e, t->blocks);
        log_put_u8(&e, t->map ? LOG_LEAK_MAPPINGS : LOG_LEAK_HEAP);
        emit_locked(&e);
    }
    log_unlock();
    errno = saved;
}

void eventlog_sites(unsigned type, const uint64_t *head, size_t nhead, const struct eventlog_site *sites,
                    size_t n, size_t nfields, bool periodic, bool in_signal)
{
    int saved = errno;
    if (periodic && atomic_load(&ending)) {
        return; /* another thread's tick while a signal ends the process */
    }
    struct cebox_core *core = end_lock(in_signal);
    if (core == NULL) {
        return;
    }
    if (!periodic || !limit_reached_locked(core)) {
        scan_modules_locked();
        uint32_t ids[EVENTLOG_SITES_MAX];
        n = n < EVENTLOG_SITES_MAX ? n : EVENTLOG_SITES_MAX;
        for (size_t i = 0; i < n; i++) { /* the stacks first: a record never precedes its stacks */
            ids[i] = stack_record_locked(sites[i].ips, sites[i].depth);
        }
        struct log_enc e;
        log_enc_begin(&e, lg.rec, REC_BUF_SIZE, type);
        log_put_u8(&e, (uint8_t)nhead);
        log_put_u8(&e, (uint8_t)nfields);
        for (size_t i = 0; i < nhead; i++) {
            log_put_u64(&e, head[i]);
        }
        log_put_u32(&e, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            log_put_u32(&e, ids[i]);
            for (size_t f = 0; f < nfields; f++) {
                log_put_u64(&e, sites[i].v[f]);
            }
        }
        emit_locked(&e);
    }
    log_unlock();
    errno = saved;
}

void eventlog_end(const struct eventlog_ending *end, bool in_signal)
{
    int saved = errno;
    if (end_lock(in_signal) == NULL) {
        return;
    }
    uint32_t crash_id = 0;
    if (end->crash_depth != 0) {
        scan_modules_locked();
        crash_id = stack_record_locked(end->crash_ips, end->crash_depth);
    }
    struct log_enc e;
    log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_END);
    log_put_u8(&e, (uint8_t)end->how);
    log_put_u32(&e, (uint32_t)end->value);
    log_put_u64(&e, end->fault_addr);
    log_put_u32(&e, crash_id);
    log_put_u32(&e, end->flags);
    log_put_u64(&e, end->untracked);
    log_put_u64(&e, end->calls);
    emit_locked(&e);
    log_unlock();
    errno = saved;
}

/* The summary's occupancy fields (LOG-FORMAT.md: after cebox's own memory). */
static void put_occupancy(struct log_enc *e, const struct run_summary *s)
{
    const uint32_t counts[] = {s->image_blocks, s->xip_dlls, s->xip_dll_blocks, s->ram_dlls, s->ram_dll_blocks,
                               s->stack_blocks, s->peak_stacks, s->threads_refused, s->occupants_refused};
    log_put_u64(e, s->slot_base);
    log_put_u64(e, s->peak_committed_image_pages);
    log_put_u64(e, s->peak_committed_stack_pages);
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        log_put_u32(e, counts[i]);
    }
}

void eventlog_exit(const struct run_summary *s, bool in_signal)
{
    int saved = errno;
    /* The exit sample takes the slot's and the session's locks: not from a
     * signal handler, whose thread may have been holding them. */
    struct cebox_core *core = core_get();
    bool sample = !in_signal && core->slot != NULL;
    struct slot_stats st;
    uint64_t ram_free = 0;
    enum memstate state = MEMSTATE_NORMAL;
    if (sample) {
        struct heap *ph = atomic_load(&core->process_heap);
        if (ph != NULL) {
            heap_refresh_free_figures(ph); /* its lock, before the log's; the session's figures too */
        }
    }
    if (!log_wanted(core)) {
        errno = saved;
        return; /* no exit sample to take */
    }
    if (sample) {
        slot_get_stats(core->slot, &st);
        ram_free = (uint64_t)ram_free_pages(&core->ram) * core->ram.page;
        state = ram_state(&core->ram);
    }
    uint64_t when = now_ns(CLOCK_MONOTONIC);
    if (end_lock(in_signal) != NULL) {
        if (sample) {
            sample_record_locked(core, LOG_SAMPLE_EXIT, when, &st, ram_free, state);
            /* The peak's map, kept lazily by the slot (slot.c), then the
             * exit's: with a failure's, the moments a user asks about. */
            map_record_locked(core, 0, st.lma_reserved_bytes, LOG_MAP_PEAK, when);
            map_record_locked(core, 0, st.lma_reserved_bytes, LOG_MAP_EXIT, when);
        }
        struct log_enc e;
        log_enc_begin(&e, lg.rec, REC_BUF_SIZE, LOG_REC_SUMMARY);
        log_put_u64(&e, when);
        log_put_u32(&e, s->pid);
        put_cstr(&e, s->command);
        put_cstr(&e, s->profile);
        log_put_u64(&e, s->granularity);
        log_put_u64(&e, s->page_size);
        log_put_u32(&e, s->blocks);
        log_put_u32(&e, s->peak_reserved_blocks);
        log_put_u64(&e, s->peak_committed_pages);
        log_put_u64(&e, s->heap_peak_live_bytes);
        log_put_u64(&e, s->heap_peak_live_blocks);
        log_put_u64(&e, s->heap_peak_committed_bytes);
        log_put_u32(&e, LOG_API_COUNT);
        for (int i = 0; i < LOG_API_COUNT; i++) {
            log_put_u64(&e, s->failures[i]);
        }
        log_put_u64(&e, s->fail_exhausted);
        log_put_u64(&e, s->fail_fragmented);
        log_put_u64(&e, s->fail_ram);
        log_put_u64(&e, s->fail_cap);
        log_put_u64(&e, s->bad_frees);
        log_put_u64(&e, s->foreign_frees);
        log_put_u64(&e, s->outside_peak);
        log_put_u64(&e, s->libc_malloc_bytes);
        log_put_u64(&e, s->unrecorded_failures);
        log_put_u64(&e, s->heap_live_bytes);
        log_put_u64(&e, s->heap_live_blocks);
        put_cstr(&e, s->private_device);
        log_put_u64(&e, s->fail_injected);
        log_put_u64(&e, s->peak_committed_heap_pages);
        log_put_u64(&e, s->own_meta_bytes);
        log_put_u64(&e, s->own_mapped_peak);
        put_occupancy(&e, s);
        emit_locked(&e);
        log_unlock();
    }
    errno = saved;
}

void eventlog_forget(void)
{
    log_lock();
    ownfd_close(&lg.file);
    meta_free(lg.rec, REC_BUF_SIZE);
    meta_free(lg.map, lg.map_cap);
    meta_free(lg.mods, lg.mods_cap * sizeof *lg.mods);
    lg.rec = NULL;
    lg.map = NULL;
    lg.mods = NULL;
    lg.map_cap = lg.mods_cap = lg.nmods = 0;
    stack_table_destroy(&lg.stacks);
    lg.pid = 0;
    lgt.setting[0] = '\0';
    lgt.dir[0] = '\0';
    lg.broken = false;
    lg.dl_known = false;
    log_unlock();
}

const char *eventlog_dir(void)
{
    const char *setting = core_get()->settings.out_dir;
    return lgt.dir[0] != '\0' && cstr_equal(lgt.setting, setting) ? lgt.dir : setting;
}

const char *eventlog_path(void)
{
    /* The core is asked only when a log is open: it exists then, and a
     * process that never used cebox gets none made here. */
    if (lg.file.fd < 0 || lg.pid != os_getpid()) {
        return "";
    }
    const char *setting = core_get()->settings.out_dir;
    return setting[0] != '\0' && cstr_equal(lgt.setting, setting) ? lgt.path : "";
}
