/*
 * fault.c - fault injection (see fault.h for the contract and the order
 * in which rules are tested).
 *
 * Runs inside entry_begin's hook, with the re-entrance guard set: what
 * libunwind or the loader allocate comes from the preload library's
 * bootstrap arena.  The cheap rules go first so that the stack is
 * captured only for calls that every other filter let through, and only
 * when --fail-in or --fail-once-per-stack needs it.
 *
 * Names and modules come from dladdr (the loader's list and the dynamic
 * symbol table: no allocation, the loader's recursive lock, no cebox
 * lock held), so --fail-in sees exported functions and file names of
 * modules; source files need debug information, which only `cebox
 * report` reads.  dladdr scans a module's symbol table, so what it says of
 * a return address is cached (a lock-free direct-mapped table, cleared by
 * any change of the loader's module list or of the rules).
 *
 * The generator of --fail-probability is splitmix64 of (seed, call
 * number): a pure function, so threads need no shared state beyond the
 * call counter and the same seed fails the same numbered calls.
 *
 * --fail-once-per-stack keeps the hashes of the stacks failed so far in
 * an open-addressing set (meta.c memory) under its own mutex, and in the
 * file, one line of 16 hex digits per stack.  A stack not in the set is
 * decided under flock(2) of the file after reading what other processes
 * appended since: parallel runs never fail the same stack twice.
 * --record-stacks keeps the stacks seen the same way, in a set and file
 * of its own (struct stack_file: the same code for both).
 */
#include "fault.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "entry.h"
#include "layout.h"
#include "meta.h"
#include "os.h"
#include "record/stack.h"

/* ---- rules ---- */

static void copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

bool fault_rules_from(const struct cebox_settings *s, struct fault_rules *out)
{
    static const struct {
        const char *var;
        uint32_t bit;
    } given[] = {
        {"CEBOX_FAIL_NTH", FAULT_NTH}, {"CEBOX_FAIL_EVERY", FAULT_EVERY},
        {"CEBOX_FAIL_PROBABILITY", FAULT_PROBABILITY}, {"CEBOX_FAIL_SIZE_MIN", FAULT_SIZE_MIN},
        {"CEBOX_FAIL_SIZE_MAX", FAULT_SIZE_MAX}, {"CEBOX_FAIL_AFTER", FAULT_AFTER},
        {"CEBOX_FAIL_UNTIL", FAULT_UNTIL}, {"CEBOX_FAIL_IN", FAULT_IN},
        {"CEBOX_FAIL_STATE", FAULT_STATE}, {"CEBOX_FAIL_ONCE_PER_STACK", FAULT_ONCE_PER_STACK},
        {"CEBOX_FAIL_STACK", FAULT_STACK}, {"CEBOX_RECORD_STACKS", FAULT_RECORD_STACKS},
    };
    memset(out, 0, sizeof *out);
    /* Most starts give no rule: one pass over the variables given says so
     * (a dozen lookups by name did). */
    if (!options_given_with_prefix(s, "CEBOX_FAIL_") && !options_given(s, "CEBOX_RECORD_STACKS")) {
        return false;
    }
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++) {
        if (options_given(s, given[i].var)) {
            out->on |= given[i].bit;
        }
    }
    int n = options_parse_counts(s->fail_nth, out->nth, FAIL_NTH_MAX);
    out->nnth = n > 0 ? (size_t)n : 0;
    out->every = s->fail_every;
    out->probability = s->fail_probability;
    out->seed = s->seed;
    out->size_min = s->fail_size_min;
    out->size_max = s->fail_size_max;
    out->after_ns = s->fail_after;
    out->until_ns = s->fail_until;
    out->state = s->fail_state;
    copy_field(out->in, sizeof out->in, s->fail_in);
    copy_field(out->once_file, sizeof out->once_file, s->fail_once_file);
    out->stack = s->fail_stack;
    copy_field(out->record_file, sizeof out->record_file, s->record_stacks_file);
    return out->on != 0;
}

/* ---- the process's decision state ---- */

enum { FAULT_DEPTH = 32, ONCE_LINE = 17 /* 16 hex digits and '\n' */ };

/* A set of stack hashes (0 marks a free place) kept in step with its file:
 * how much of the file it holds, and the file's path made absolute. */
struct stack_file {
    uint64_t *set;
    size_t cap, used;
    long file_read;
    char path[4096 + sizeof(((struct fault_rules *)0)->once_file)];
};

static struct {
    struct fault_rules rules;
    struct fault_world world;
    uint64_t start_ns;
    uint64_t last_nth; /* the largest --fail-nth number (0: no such rule) */
    pthread_mutex_t lock; /* of both stack files */
    struct stack_file once, seen; /* --fail-once-per-stack, --record-stacks */
} fs CEBOX_LARGE_TABLE = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The calls counted, apart from fs: every exit reads it (the log's end
 * record), and a small variable shares the pages a start writes anyway,
 * where fs's would be a page read for it alone. */
static atomic_uint_fast64_t counted;

static void restart_clock_and_count(void)
{
    atomic_store(&counted, 0);
    fs.start_ns = fs.world.now_ns();
}

/* ---- the stack's hash set ---- */

static bool set_has(const struct stack_file *sf, uint64_t h)
{
    for (size_t i = sf->cap == 0 ? 0 : h & (sf->cap - 1); sf->cap != 0; i = (i + 1) & (sf->cap - 1)) {
        if (sf->set[i] == h) {
            return true;
        }
        if (sf->set[i] == 0) {
            return false;
        }
    }
    return false;
}

static void set_place(uint64_t *set, size_t cap, uint64_t h)
{
    size_t i = h & (cap - 1);
    while (set[i] != 0 && set[i] != h) {
        i = (i + 1) & (cap - 1);
    }
    set[i] = h;
}

/* Adds h (not 0); false when the set could not grow. */
static bool set_add(struct stack_file *sf, uint64_t h)
{
    if (set_has(sf, h)) {
        return true;
    }
    if ((sf->used + 1) * 2 > sf->cap) {
        size_t cap = sf->cap == 0 ? 256 : sf->cap * 2;
        uint64_t *set = meta_alloc(cap * sizeof *set);
        if (set == NULL) {
            return false;
        }
        for (size_t i = 0; i < sf->cap; i++) {
            if (sf->set[i] != 0) {
                set_place(set, cap, sf->set[i]);
            }
        }
        meta_free(sf->set, sf->cap * sizeof *sf->set);
        sf->set = set;
        sf->cap = cap;
    }
    set_place(sf->set, sf->cap, h);
    sf->used++;
    return true;
}

static void set_forget(struct stack_file *sf)
{
    meta_free(sf->set, sf->cap * sizeof *sf->set);
    sf->set = NULL;
    sf->cap = sf->used = 0;
    sf->file_read = 0;
}

/* ---- the file of --fail-once-per-stack ---- */

static uint64_t parse_hex_line(const char *line)
{
    uint64_t h = 0;
    for (int i = 0; i < 16; i++) {
        char c = line[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
        if (d == 16) {
            return 0;
        }
        h = h << 4 | d;
    }
    return line[16] == '\n' ? h : 0;
}

/* Adds the whole lines of fd past what the set holds. */
static void read_new_lines(struct stack_file *sf, int fd)
{
    char buf[ONCE_LINE * 240];
    for (;;) {
        long n = os_pread(fd, buf, sizeof buf, sf->file_read);
        if (n < ONCE_LINE) {
            return;
        }
        long whole = n / ONCE_LINE * ONCE_LINE;
        for (long at = 0; at < whole; at += ONCE_LINE) {
            uint64_t h = parse_hex_line(buf + at);
            if (h != 0 && !set_add(sf, h)) {
                return;
            }
        }
        sf->file_read += whole;
    }
}

static int open_stack_file(const struct stack_file *sf)
{
    return os_open(sf->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void append_line(struct stack_file *sf, int fd, uint64_t h)
{
    static const char hex[] = "0123456789abcdef";
    char line[ONCE_LINE];
    for (int i = 0; i < 16; i++) {
        line[i] = hex[h >> (60 - 4 * i) & 15];
    }
    line[16] = '\n';
    if (os_write(fd, line, sizeof line) == (long)sizeof line) {
        sf->file_read += ONCE_LINE; /* ours is the last line: the lock is held */
    }
}

/* Is this the first time stack h (not 0) is in sf, in this run or the
 * ones before that shared the file?  Remembers it when it is. */
static bool first_time_in(struct stack_file *sf, uint64_t h)
{
    pthread_mutex_lock(&fs.lock);
    bool first = false;
    if (!set_has(sf, h)) {
        int fd = open_stack_file(sf);
        if (fd >= 0 && os_flock(fd, LOCK_EX) == 0) {
            read_new_lines(sf, fd);
            first = !set_has(sf, h) && set_add(sf, h);
            if (first) {
                append_line(sf, fd, h);
            }
            os_flock(fd, LOCK_UN);
        } else {
            first = set_add(sf, h); /* no file: once in this process */
        }
        if (fd >= 0) {
            os_close(fd);
        }
    }
    pthread_mutex_unlock(&fs.lock);
    return first;
}

/* ---- stacks ---- */

bool fault_glob(const char *p, const char *t)
{
    const char *star = NULL, *resume = NULL;
    while (*t != '\0') {
        if (*p == '*') {
            star = p++;
            resume = t;
        } else if (*p == '?' || *p == *t) {
            p++;
            t++;
        } else if (star != NULL) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*') {
        p++;
    }
    return *p == '\0';
}

static const char *file_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* The frame's module and nearest exported symbol (a return address: the
 * call is the byte before it). */
static bool frame_info(uintptr_t ip, Dl_info *info)
{
    memset(info, 0, sizeof *info);
    return ip != 0 && dladdr((void *)(ip - 1), info) != 0;
}

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ull;
    }
    return h;
}

#define FNV_START 0xcbf29ce484222325ull

/* What one return address says: its module file name and offset folded
 * into a hash (fault_stack_hash), and whether its function or module
 * matches --fail-in. */
struct frame_facts {
    uint64_t hash;
    bool matches;
};

static struct frame_facts frame_facts(uintptr_t ip, const char *pattern)
{
    struct frame_facts f = {0, false};
    Dl_info info;
    uint64_t offset = ip;
    uint64_t h = FNV_START;
    if (frame_info(ip, &info) && info.dli_fname != NULL) {
        const char *name = file_name(info.dli_fname);
        h = fnv_bytes(h, name, strlen(name) + 1);
        offset = (uint64_t)(ip - (uintptr_t)info.dli_fbase);
        f.matches = pattern[0] != '\0' && fault_glob(pattern, name);
    }
    if (!f.matches && pattern[0] != '\0' && info.dli_sname != NULL) {
        f.matches = fault_glob(pattern, info.dli_sname);
    }
    f.hash = fnv_bytes(h, &offset, sizeof offset);
    return f;
}

/* dladdr scans a module's whole symbol table, so the facts of recent
 * return addresses are kept: a direct-mapped cache, each entry under its
 * own sequence count (odd while written: a reader that sees it move asks
 * dladdr itself), valid for one generation of the loader's list (a
 * dlclose may put another module at the same address) and of the rules. */
enum { FRAME_CACHE = 2048 };

static struct frame_entry {
    atomic_uint_fast64_t seq;
    _Atomic uintptr_t ip;
    atomic_uint_fast64_t gen, hash;
    atomic_bool matches;
} frame_cache[FRAME_CACHE] CEBOX_LARGE_TABLE;

static atomic_uint_fast64_t rules_gen;

static int loader_counters(struct dl_phdr_info *info, size_t size, void *out)
{
    (void)size;
    *(uint64_t *)out = (uint64_t)info->dlpi_adds << 32 ^ (uint64_t)info->dlpi_subs;
    return 1; /* the counters are in the first answer */
}

/* Changes whenever the loader adds or removes a module or the rules are set up. */
static uint64_t facts_generation(void)
{
    uint64_t loader = 0;
    dl_iterate_phdr(loader_counters, &loader);
    return loader * 0x9e3779b97f4a7c15ull + atomic_load_explicit(&rules_gen, memory_order_relaxed);
}

static bool cached_facts(uintptr_t ip, uint64_t gen, struct frame_facts *out)
{
    struct frame_entry *e = &frame_cache[(ip >> 2) % FRAME_CACHE];
    uint64_t before = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (before & 1) {
        return false;
    }
    bool hit = atomic_load_explicit(&e->ip, memory_order_relaxed) == ip &&
               atomic_load_explicit(&e->gen, memory_order_relaxed) == gen;
    out->hash = atomic_load_explicit(&e->hash, memory_order_relaxed);
    out->matches = atomic_load_explicit(&e->matches, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return hit && atomic_load_explicit(&e->seq, memory_order_relaxed) == before;
}

static void cache_facts(uintptr_t ip, uint64_t gen, struct frame_facts f)
{
    struct frame_entry *e = &frame_cache[(ip >> 2) % FRAME_CACHE];
    uint64_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(&e->seq, &seq, seq + 1, memory_order_acquire,
                                                              memory_order_relaxed)) {
        return; /* another thread writes it: leave it to that one */
    }
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->ip, ip, memory_order_relaxed);
    atomic_store_explicit(&e->gen, gen, memory_order_relaxed);
    atomic_store_explicit(&e->hash, f.hash, memory_order_relaxed);
    atomic_store_explicit(&e->matches, f.matches, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
}

/* 0 is no hash (a free place in the sets, "none" for --fail-stack). */
static uint64_t nonzero(uint64_t h)
{
    return h == 0 ? 1 : h;
}

/* The facts of every frame: whether one matches --fail-in, and the
 * stack's hash (fault_stack_hash). */
static struct frame_facts stack_facts(const uintptr_t *ips, size_t depth, const char *pattern)
{
    struct frame_facts all = {FNV_START, false};
    uint64_t gen = facts_generation();
    for (size_t i = 0; i < depth; i++) {
        struct frame_facts f;
        if (!cached_facts(ips[i], gen, &f)) {
            f = frame_facts(ips[i], pattern);
            cache_facts(ips[i], gen, f);
        }
        all.matches |= f.matches;
        all.hash = fnv_bytes(all.hash, &f.hash, sizeof f.hash);
    }
    all.hash = nonzero(all.hash);
    return all;
}

/* Without the cache, whose matches are for the rules' pattern. */
uint64_t fault_stack_hash(const uintptr_t *ips, size_t depth)
{
    uint64_t h = FNV_START;
    for (size_t i = 0; i < depth; i++) {
        uint64_t frame = frame_facts(ips[i], "").hash;
        h = fnv_bytes(h, &frame, sizeof frame);
    }
    return nonzero(h);
}

/* ---- the decision ---- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static bool in_list(const uint64_t *list, size_t n, uint64_t k)
{
    size_t lo = 0, hi = n; /* increasing: options_parse_counts */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (list[mid] == k) {
            return true;
        }
        if (list[mid] < k) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

/* The rules that need no stack and no count. */
static bool filters_hold(const struct fault_rules *r, size_t size)
{
    if (((r->on & FAULT_SIZE_MIN) && size < r->size_min) || ((r->on & FAULT_SIZE_MAX) && size > r->size_max)) {
        return false;
    }
    if (r->on & (FAULT_AFTER | FAULT_UNTIL)) {
        uint64_t t = fs.world.now_ns() - fs.start_ns;
        if (((r->on & FAULT_AFTER) && t < r->after_ns) || ((r->on & FAULT_UNTIL) && t >= r->until_ns)) {
            return false;
        }
    }
    return !(r->on & FAULT_STATE) || fs.world.state() >= r->state;
}

/* The counting rules, for the k-th call the filters let through. */
static bool count_rules_hold(const struct fault_rules *r, uint64_t k)
{
    if ((r->on & FAULT_NTH) && !in_list(r->nth, r->nnth, k)) {
        return false;
    }
    if ((r->on & FAULT_EVERY) && k % r->every != 0) {
        return false;
    }
    return !(r->on & FAULT_PROBABILITY) || splitmix64(r->seed * 0x2545f4914f6cdd1dull + k) % 1000000000u < r->probability;
}

/* The rules that need the call's stack. */
#define FAULT_STACK_RULES (FAULT_IN | FAULT_ONCE_PER_STACK | FAULT_STACK | FAULT_RECORD_STACKS)

/* Every --fail-nth number is past: no later call can fail. */
static bool nth_exhausted(void)
{
    return fs.last_nth != 0 && atomic_load_explicit(&counted, memory_order_relaxed) >= fs.last_nth &&
           !(fs.rules.on & FAULT_RECORD_STACKS);
}

static bool decide(enum log_api api, size_t size)
{
    (void)api;
    const struct fault_rules *r = &fs.rules;
    if (nth_exhausted() || !filters_hold(r, size)) {
        return false;
    }
    struct frame_facts stack = {0, false};
    if (r->on & FAULT_STACK_RULES) {
        uintptr_t ips[FAULT_DEPTH];
        size_t depth = fs.world.stack(ips, FAULT_DEPTH);
        stack = stack_facts(ips, depth, r->in);
        if (((r->on & FAULT_IN) && !stack.matches) || ((r->on & FAULT_STACK) && stack.hash != r->stack)) {
            return false;
        }
        if (r->on & FAULT_RECORD_STACKS) {
            first_time_in(&fs.seen, stack.hash);
        }
    }
    uint64_t k = atomic_fetch_add(&counted, 1) + 1;
    if ((r->on & ~(uint32_t)FAULT_RECORD_STACKS) == 0 || !count_rules_hold(r, k)) {
        return false; /* only observed */
    }
    return !(r->on & FAULT_ONCE_PER_STACK) || first_time_in(&fs.once, stack.hash);
}

enum log_reason fault_decide(enum log_api api, size_t size)
{
    int saved = errno;
    bool fail = decide(api, size);
    errno = saved;
    return fail ? LOG_REASON_INJECTED : LOG_REASON_NONE;
}

uint64_t fault_counted(void)
{
    return atomic_load(&counted);
}

/* A stack file's path made absolute, so that a program that changes its
 * directory still uses the one the user named. */
static void resolve_path(struct stack_file *sf, const char *file)
{
    char cwd[4096];
    if (file[0] != '/' && getcwd(cwd, sizeof cwd) != NULL) {
        snprintf(sf->path, sizeof sf->path, "%s/%s", cwd, file);
    } else {
        snprintf(sf->path, sizeof sf->path, "%s", file);
    }
}

/* Reads what earlier runs wrote in the file: 0, or the errno value of the
 * open. */
static int read_stack_file(struct stack_file *sf, const char *file)
{
    resolve_path(sf, file);
    int fd = open_stack_file(sf);
    if (fd < 0) {
        return -fd;
    }
    os_flock(fd, LOCK_EX);
    read_new_lines(sf, fd);
    os_flock(fd, LOCK_UN);
    os_close(fd);
    return 0;
}

/* The option whose file the last fault_setup could not open, or NULL. */
static const char *setup_failed;

int fault_setup(const struct fault_rules *rules, const struct fault_world *world)
{
    int err = 0;
    pthread_mutex_lock(&fs.lock);
    fs.rules = *rules;
    fs.world = *world;
    fs.last_nth = (rules->on & FAULT_NTH) && rules->nnth != 0 ? rules->nth[rules->nnth - 1] : 0;
    set_forget(&fs.once);
    set_forget(&fs.seen);
    setup_failed = NULL;
    if (rules->on & FAULT_ONCE_PER_STACK) {
        err = read_stack_file(&fs.once, rules->once_file);
        setup_failed = err != 0 ? "--fail-once-per-stack" : NULL;
    }
    if (err == 0 && (rules->on & FAULT_RECORD_STACKS)) {
        err = read_stack_file(&fs.seen, rules->record_file);
        setup_failed = err != 0 ? "--record-stacks" : NULL;
    }
    restart_clock_and_count();
    atomic_fetch_add(&rules_gen, 1); /* the cached matches were for the old pattern */
    pthread_mutex_unlock(&fs.lock);
    return err;
}

/* ---- the real process ---- */

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int device_state(void)
{
    return (int)ram_state(&core_get()->ram);
}

/* fork: the set's lock is never inherited held; the child is a new
 * process, counted and timed from its start. */
static void before_fork(void)
{
    pthread_mutex_lock(&fs.lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&fs.lock);
}

static void after_fork_child(void)
{
    pthread_mutex_unlock(&fs.lock);
    restart_clock_and_count();
}

int fault_start(const struct cebox_settings *s, char err[OPTIONS_ERR_MAX])
{
    struct fault_rules rules;
    if (!fault_rules_from(s, &rules)) {
        return 0; /* no hook: zero cost */
    }
    static const struct fault_world real = {monotonic_ns, device_state, stack_capture};
    int e = fault_setup(&rules, &real);
    if (e != 0) {
        bool once = strcmp(setup_failed, "--fail-once-per-stack") == 0;
        snprintf(err, OPTIONS_ERR_MAX, "%s: cannot open %s: %s", setup_failed, once ? rules.once_file : rules.record_file,
                 strerror(e));
        return -1;
    }
    core_atfork(before_fork, after_fork_parent, after_fork_child);
    stack_load_unwinder(); /* --fail-stack, --fail-in, --fail-once-per-stack, --record-stacks unwind */
    entry_set_hook(fault_decide);
    return 0;
}
