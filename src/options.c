/*
 * options.c - the option table, the profiles and the value parsers.
 * See options.h for the contract.
 *
 * Each row of the table describes its own field of struct cebox_settings:
 * its offset and size (the C type is checked when this file compiles), its
 * type, and where its default comes from: a text parsed exactly as a user's
 * value, or the field of the same name in the profile.  The type alone
 * chooses the parser, the formatter and the "accepted" text, so nothing here
 * names a particular option and adding one is a row plus a field.
 *
 * Invariants: every text field is written by copy_text() only, which refuses
 * a value that does not fit its field (never truncates it); bit i of
 * `set` is on exactly when the getter gave row i a value; the getter is asked
 * about each variable once.  No allocation: the preload library parses its
 * settings inside the program's first malloc.
 */
#include "options.h"

#include "cstr.h"
#include "invariant.h"
#include "layout.h"
#include "memstate.h"
#include "os.h"

#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define KB ((size_t)1024)
#define MB (KB * 1024)
#define GB (MB * 1024)

/* CE 3.0 (Pocket PC 2002), CE .NET 4.2 / 5.0 and Embedded CE 6.0.
 * Numbers: CE-SEMANTICS.md, "Profiles". */
static const struct cebox_profile profiles[] = {
    {
        .name = "ce3", .describes = "Windows CE 3.0 / Pocket PC 2002",
        .slot_size = 32 * MB, .granularity = 64 * KB, .page_size = 4 * KB,
        .large_memory_area = true, .lma_min = 2 * MB,
        .ce3_vm_checks = true,
        .release_mixed = false, .honour_top_down = true, .alloc_prot_error_is_invalid = false,
        .heap = HEAP_KIND_CE3, .ram = 32 * MB,
        .thresholds = MEMSTATE_TABLE_PPC,
    },
    {
        .name = "ce5", .describes = "Windows CE .NET 4.2 / CE 5.0",
        .slot_size = 32 * MB, .granularity = 64 * KB, .page_size = 4 * KB,
        .large_memory_area = true, .lma_min = 2 * MB,
        .ce3_vm_checks = false,
        .release_mixed = false, .honour_top_down = false, .alloc_prot_error_is_invalid = true,
        .heap = HEAP_KIND_CE5, .ram = 64 * MB,
        .thresholds = MEMSTATE_TABLE_CE5,
    },
    {
        .name = "ce6", .describes = "Windows Embedded CE 6.0",
        .slot_size = 2 * GB, .granularity = 64 * KB, .page_size = 4 * KB,
        .large_memory_area = false, .lma_min = 0,
        .ce3_vm_checks = false,
        .release_mixed = true, .honour_top_down = false, .alloc_prot_error_is_invalid = true,
        .heap = HEAP_KIND_CE6, .ram = 512 * MB,
        .thresholds = MEMSTATE_TABLE_CE5,
    },
};
#define PROFILE_COUNT (sizeof profiles / sizeof profiles[0])

enum opt_type {
    OPT_PROFILE, OPT_SIZE, OPT_BOOL, OPT_PATH, OPT_CHOICE, OPT_SCHEDULE, OPT_SIGNAL, OPT_INT,
    OPT_FD, OPT_GLOBS, OPT_COUNTS, OPT_DECIMAL, OPT_PATTERN, OPT_HASH,
};

struct option_def {
    const char *flag;     /* command-line spelling, without "--" */
    const char *var;      /* environment variable */
    enum opt_type type;
    size_t offset, size;  /* the field in struct cebox_settings */
    bool from_profile;    /* the default is the profile's field at profile_offset */
    size_t profile_offset;
    const char *default_value; /* otherwise parsed as if given; NULL: zero, "" */
    const char *default_doc;   /* the README's default when not default_value */
    size_t min, max, multiple; /* OPT_SIZE; min and max for OPT_INT too */
    const char *const *choices; /* OPT_CHOICE only, NULL-terminated */
    const char *help;
};

/* Compile-time checks inside the rows: 0, or an array of negative size. */
#define CHECK_ZERO(cond) (0 * sizeof(char[(cond) ? 1 : -1]))
#define SETTING(m) (((struct cebox_settings *)0)->m)
#define PROFILE(m) (((struct cebox_profile *)0)->m)
#define FIELD_AT(m, check) .offset = offsetof(struct cebox_settings, m) + (check), .size = sizeof SETTING(m)
/* A field of C type `ctype`, and a field that is an array of char. */
#define SCALAR_FIELD(m, ctype) FIELD_AT(m, CHECK_ZERO(_Generic(&SETTING(m), ctype *: 1, default: 0)))
#define TEXT_FIELD(m) FIELD_AT(m, CHECK_ZERO(_Generic(&SETTING(m), char(*)[sizeof SETTING(m)]: 1, default: 0)))

#define PROFILE_OPTION(m) .type = OPT_PROFILE, SCALAR_FIELD(m, const struct cebox_profile *)
#define SIZE_OPTION(m) .type = OPT_SIZE, SCALAR_FIELD(m, size_t)
#define BOOL_OPTION(m) .type = OPT_BOOL, SCALAR_FIELD(m, bool)
#define INT_OPTION(m) .type = OPT_INT, SCALAR_FIELD(m, unsigned)
#define CHOICE_OPTION(m) .type = OPT_CHOICE, SCALAR_FIELD(m, int)
#define SIGNAL_OPTION(m) .type = OPT_SIGNAL, SCALAR_FIELD(m, int)
#define FD_OPTION(m) .type = OPT_FD, SCALAR_FIELD(m, int)
#define PATH_OPTION(m) .type = OPT_PATH, TEXT_FIELD(m)
#define SCHEDULE_OPTION(m) .type = OPT_SCHEDULE, TEXT_FIELD(m)
#define GLOBS_OPTION(m) .type = OPT_GLOBS, TEXT_FIELD(m)
#define COUNTS_OPTION(m) .type = OPT_COUNTS, TEXT_FIELD(m)
#define PATTERN_OPTION(m) .type = OPT_PATTERN, TEXT_FIELD(m)
#define HASH_OPTION(m) .type = OPT_HASH, SCALAR_FIELD(m, uint64_t)
/* A decimal number (at most 9 decimals) kept in billionths. */
#define DECIMAL_OPTION(m) .type = OPT_DECIMAL, SCALAR_FIELD(m, uint64_t)
/* OPTION(m) whose default is the profile's member m, of the same type as the
 * setting (subtracting pointers to different types does not compile). */
#define FROM_PROFILE(OPTION, m) OPTION(m), .from_profile = true, \
    .profile_offset = offsetof(struct cebox_profile, m) + 0 * sizeof(&PROFILE(m) - &SETTING(m))

static const char *const table_names[] = {"hpc", "ppc", "ce5", "hpc1k", NULL};
static const char *const state_names[] = {"normal", "limited", "low", "critical", NULL};
static const char *const state_by_names[] = {"pin", "ballast", NULL}; /* enum ram_force_mode */
static const char *const summaries_names[] = {"all", "failures", "none", NULL}; /* enum summaries_mode */
static const char *const libraries_names[] = {"system-xip", "all-ram", "all-xip", "none", NULL}; /* enum libraries_split */
_Static_assert(sizeof libraries_names / sizeof libraries_names[0] == LIBRARIES_NONE + 2, "a name per split");
_Static_assert(sizeof summaries_names / sizeof summaries_names[0] == SUMMARIES_NONE + 2, "a name per mode");

static const struct option_def table[] = {
    {"profile", "CEBOX_PROFILE", PROFILE_OPTION(profile), .default_value = "ce5",
     .help = "CE version to emulate: ce3, ce5 or ce6; sets every other default"},
    {"slot-size", "CEBOX_SLOT_SIZE", FROM_PROFILE(SIZE_OPTION, slot_size),
     .min = 1 * MB, .max = 2 * GB, .multiple = 64 * KB, .default_doc = "ce3/ce5: 32M, ce6: 2G",
     .help = "size of the process slot (the box every allocation must fit in)"},
    {"ram", "CEBOX_RAM", FROM_PROFILE(SIZE_OPTION, ram),
     .min = 64 * KB, .max = 64 * GB, .multiple = 4 * KB, .default_doc = "ce3: 32M, ce5: 64M, ce6: 512M",
     .help = "device RAM available to programs; every committed page uses it"},
    {"large-memory-area", "CEBOX_LARGE_MEMORY_AREA", FROM_PROFILE(BOOL_OPTION, large_memory_area),
     .default_doc = "ce3/ce5: yes, ce6: no",
     .help = "reserve-only requests of 2M or more go outside the slot"},
    {"thresholds", "CEBOX_THRESHOLDS", FROM_PROFILE(CHOICE_OPTION, thresholds),
     .choices = table_names, .default_doc = "ce3: ppc, ce5/ce6: ce5",
     .help = "memory-state table: H/PC, Pocket PC, CE 5's SetOOMEvent defaults, or H/PC with 1 KB pages"},
    {"out", "CEBOX_OUT", PATH_OPTION(out_dir), .default_doc = "none",
     .help = "directory for the per-process summaries and event logs with the call stacks of failed "
             "allocations (cebox-PID.summary, cebox-PID.log; read them with cebox report)"},
    {"quiet", "CEBOX_QUIET", BOOL_OPTION(quiet), .default_value = "no",
     .help = "no summary on stderr when a program exits"},
    {"only", "CEBOX_ONLY", GLOBS_OPTION(only), .default_doc = "none (every program)",
     .help = "box only the programs whose executable's path or base name matches this fnmatch(3) glob "
             "(repeatable); the others run unboxed and pass cebox on to the programs they start"},
    {"summaries", "CEBOX_SUMMARIES", CHOICE_OPTION(summaries), .choices = summaries_names,
     .default_value = "all",
     .help = "which exit summaries go to stderr: all, failures (only processes with failed allocations or "
             "heap blocks still allocated at exit), none (--quiet also drops the session's lines)"},
    {"follow", "CEBOX_FOLLOW", BOOL_OPTION(follow), .default_value = "yes",
     .help = "programs started by the program run under cebox too (--no-follow: no)"},
    {"state", "CEBOX_STATE", CHOICE_OPTION(state), .choices = state_names, .default_value = "normal",
     .help = "start in this memory state (free RAM pinned just inside it, or see --state-by)"},
    {"state-schedule", "CEBOX_STATE_SCHEDULE", SCHEDULE_OPTION(schedule), .default_doc = "none",
     .help = "change the state over time, e.g. 0.5s:low,10s:normal (normal: free RAM decides)"},
    {"hibernate-signal", "CEBOX_HIBERNATE_SIGNAL", SIGNAL_OPTION(hibernate_signal), .default_value = "none",
     .help = "signal sent with each hibernate notice (none: the callback only)"},
    {"close-apps", "CEBOX_CLOSE_APPS", BOOL_OPTION(close_apps), .default_value = "no",
     .help = "Pocket PC: in limited memory, ask background processes to close (SIGTERM, SIGKILL after 8 s)"},
    {"session", "CEBOX_SESSION", PATH_OPTION(session), .default_doc = "none",
     .help = "device shared by the processes of one run (cebox run sets it)"},
    {"session-fd", "CEBOX_SESSION_FD", FD_OPTION(session_fd), .min = 3, .max = 1048575, .default_value = "none",
     .help = "descriptor on which the session file stays open, so that a program that changed user still "
             "joins (cebox run sets it)"},
    {"stderr-fd", "CEBOX_STDERR_FD", FD_OPTION(stderr_fd), .min = 3, .max = 1048575, .default_value = "none",
     .help = "descriptor of cebox run's own stderr, where the exit summary and cebox's other messages go "
             "when the program has closed its descriptor 2 (cebox run sets it)"},
    {"watch-fd", "CEBOX_WATCH_FD", INT_OPTION(watch_fd), .min = 0, .max = 1048576, .default_value = "0",
     .help = "with --no-follow, the descriptor on which cebox run learns that the program exec'd "
             "another, which runs outside the box (cebox run sets it; 0: none)"},
    {"stack-depth", "CEBOX_STACK_DEPTH", INT_OPTION(stack_depth), .min = 1, .max = 128,
     .default_value = "32",
     .help = "frames recorded per call stack of a failed allocation (innermost first)"},
    {"leaks", "CEBOX_LEAKS", BOOL_OPTION(leaks), .default_value = "no",
     .help = "record the call stack of every heap block; at exit, report the blocks never freed by "
             "kind (definitely, indirectly, possibly lost, still reachable) and call stack"},
    {"sample-interval", "CEBOX_SAMPLE_INTERVAL", INT_OPTION(sample_interval_ms), .min = 0, .max = 3600000,
     .default_value = "50",
     .help = "with --out, milliseconds between the timeline's samples of each process (slot, heap, RAM), "
             "taken by cebox run at its 20 ms tick; also one at each state change and peak between two, "
             "and at each failure and at exit (0: those two only)"},
    {"log-limit", "CEBOX_LOG_LIMIT", SIZE_OPTION(log_limit), .min = 64 * KB, .max = 64 * GB,
     .multiple = 1 * KB, .default_value = "64M",
     .help = "size at which a process's event log stops taking failures (they are still counted; the "
             "summary says how many went unrecorded)"},
    /* Fault injection (src/fault.c).  A call fails when every rule given
     * holds; the counting rules count the calls the others let through. */
    {"fail-nth", "CEBOX_FAIL_NTH", COUNTS_OPTION(fail_nth), .default_doc = "none",
     .help = "fail the Nth allocation call of each process (counted from cebox's start in it, libc's "
             "start-up calls included; among the calls the other --fail-* rules let through)"},
    {"fail-every", "CEBOX_FAIL_EVERY", INT_OPTION(fail_every), .min = 1, .max = 999999999,
     .default_doc = "none", .help = "fail every Nth allocation call (N, 2N, ...), counted as for --fail-nth"},
    {"fail-probability", "CEBOX_FAIL_PROBABILITY", DECIMAL_OPTION(fail_probability), .min = 0, .max = 1,
     .default_doc = "none",
     .help = "fail each allocation call with this probability (the generator is seeded by --seed)"},
    {"seed", "CEBOX_SEED", INT_OPTION(seed), .min = 0, .max = 999999999, .default_value = "0",
     .help = "seed of --fail-probability's generator: the same seed fails the same calls"},
    {"fail-size-min", "CEBOX_FAIL_SIZE_MIN", SIZE_OPTION(fail_size_min), .min = 0, .max = 64 * GB,
     .multiple = 1, .default_doc = "none", .help = "fail only requests of at least this many bytes"},
    {"fail-size-max", "CEBOX_FAIL_SIZE_MAX", SIZE_OPTION(fail_size_max), .min = 0, .max = 64 * GB,
     .multiple = 1, .default_doc = "none", .help = "fail only requests of at most this many bytes"},
    {"fail-after", "CEBOX_FAIL_AFTER", DECIMAL_OPTION(fail_after), .min = 0, .max = SCHEDULE_SECONDS_MAX,
     .default_doc = "none", .help = "fail only calls made this many seconds or more after the process began"},
    {"fail-until", "CEBOX_FAIL_UNTIL", DECIMAL_OPTION(fail_until), .min = 0, .max = SCHEDULE_SECONDS_MAX,
     .default_doc = "none", .help = "fail only calls made less than this many seconds after the process began"},
    {"fail-in", "CEBOX_FAIL_IN", PATTERN_OPTION(fail_in), .default_doc = "none",
     .help = "fail only calls whose stack has a function (exported: link with -rdynamic) or module "
             "(file name) matching this glob"},
    {"fail-state", "CEBOX_FAIL_STATE", CHOICE_OPTION(fail_state), .choices = state_names,
     .default_doc = "none", .help = "fail only while the device's memory state is this one or worse"},
    {"fail-once-per-stack", "CEBOX_FAIL_ONCE_PER_STACK", PATH_OPTION(fail_once_file), .default_doc = "none",
     .help = "fail each distinct call stack once, remembering those failed so far in this file "
             "(shared by parallel and later runs)"},
    {"state-by", "CEBOX_STATE_BY", CHOICE_OPTION(state_by), .choices = state_by_names, .default_value = "pin",
     .help = "how a forced state is held: pin (free RAM pinned just inside it) or ballast (device RAM taken "
             "as by another process, so the programs' frees move the state back up)"},
    /* The process's occupants (src/occupancy.c). */
    {"occupy", "CEBOX_OCCUPY", BOOL_OPTION(occupy), .default_value = "yes",
     .help = "the program's image (from block 1), its libraries (top-down) and its threads' stacks take "
             "their blocks in the slot as on a device (no: the slot starts empty)"},
    {"stack-size", "CEBOX_STACK_SIZE", SIZE_OPTION(stack_size), .min = 0, .max = 1 * MB,
     .multiple = 4 * KB, .default_value = "64K",
     .help = "each thread's stack in the slot (the main thread's too), rounded up to 64K; its top page "
             "is committed (0: stacks take nothing)"},
    {"libraries", "CEBOX_LIBRARIES", CHOICE_OPTION(libraries), .choices = libraries_names,
     .default_value = "system-xip",
     .help = "which shared libraries are in ROM (XIP: only their writable data takes blocks) and which "
             "are RAM DLLs (charged whole, top-down): system-xip (those under /lib, /usr/lib, /lib64, "
             "/usr/lib64, /lib32, /usr/lib32 are XIP), all-ram, all-xip, none"},
    {"fail-stack", "CEBOX_FAIL_STACK", HASH_OPTION(fail_stack), .default_doc = "none",
     .help = "fail only calls whose call stack has this hash (16 hex digits, as --record-stacks, "
             "--fail-once-per-stack and cebox stress write them)"},
    {"record-stacks", "CEBOX_RECORD_STACKS", PATH_OPTION(record_stacks_file), .default_doc = "none",
     .help = "append the hash of each distinct allocation call stack to this file, failing nothing "
             "(one line each, as --fail-once-per-stack; shared by parallel runs)"},
    /* The host's protection of the slot's pages (src/slot.c). */
    {"commit-ahead", "CEBOX_COMMIT_AHEAD", INT_OPTION(commit_ahead), .min = 0, .max = 4096,
     .default_value = "32",
     .help = "when a heap region's commit, or a large item's growth in place, needs a system call, the "
             "host maps this many of the reservation's next pages read/write with it (all that is left, "
             "and the rest of its last block, when fewer than twice this many are), so its next commits "
             "need none; those pages "
             "stay uncommitted in RAM, "
             "the counts, the maps and VirtualQuery, but a stray touch of them does not fault "
             "(0: exact, a page is accessible only while committed)"},
};
#define OPT_COUNT (sizeof table / sizeof table[0])
_Static_assert(OPT_COUNT <= sizeof SETTING(set) * CHAR_BIT, "one bit of cebox_settings.set per option");

/* Parses "SECONDS[.FRACTION]s" (at most millisecond precision) into
 * milliseconds at *ms; returns the first byte after the 's', or NULL. */
static const char *parse_step_time(const char *s, unsigned long *ms)
{
    if (*s < '0' || *s > '9') {
        return NULL;
    }
    char *end;
    unsigned long secs = strtoul(s, &end, 10), frac = 0;
    if (secs > SCHEDULE_SECONDS_MAX) {
        return NULL;
    }
    s = end;
    if (*s == '.') {
        unsigned long scale = 100;
        for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10) {
            if (scale == 0) {
                return NULL; /* finer than a millisecond */
            }
            frac += (unsigned long)(*s - '0') * scale;
        }
        if (scale == 100) {
            return NULL; /* "2.s" */
        }
    }
    *ms = secs * 1000 + frac;
    return *s == 's' && *ms <= SCHEDULE_SECONDS_MAX * 1000UL ? s + 1 : NULL;
}

int options_parse_schedule(const char *s, struct schedule_step *out, size_t max)
{
    size_t n = 0;
    unsigned long last = 0;
    while (*s != '\0') {
        unsigned long ms;
        s = parse_step_time(s, &ms);
        if (s == NULL || *s != ':' || (n > 0 && ms <= last)) {
            return -1;
        }
        s++;
        size_t len = strcspn(s, ",");
        int state = -1;
        for (int i = 0; state_names[i] != NULL; i++) {
            if (cstr_len(state_names[i]) == len && memcmp(state_names[i], s, len) == 0) {
                state = i;
            }
        }
        if (state < 0 || n >= SCHEDULE_MAX) {
            return -1;
        }
        if (out != NULL && n < max) {
            out[n] = (struct schedule_step){.ms = (unsigned)ms, .state = state};
        }
        n++;
        last = ms;
        s += len;
        if (*s == ',') {
            s++;
            if (*s == '\0') {
                return -1;
            }
        }
    }
    return n == 0 ? -1 : (int)n;
}

int options_parse_signal(const char *s)
{
    static const struct {
        const char *name;
        int signo;
    } names[] = {{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"TERM", SIGTERM},
                 {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH},
                 {"CONT", SIGCONT}, {"PWR", SIGPWR}, {"URG", SIGURG}};
    if (cstr_equal(s, "none")) {
        return 0;
    }
    if (*s >= '0' && *s <= '9') {
        char *end;
        long v = strtol(s, &end, 10);
        return (*end == '\0' && v >= 1 && v <= 64) ? (int)v : -1;
    }
    const char *n = cstr_has_prefix(s, "SIG") ? s + 3 : s;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (cstr_equal(names[i].name, n)) {
            return names[i].signo;
        }
    }
    return -1;
}

const struct cebox_profile *options_profile(const char *name)
{
    for (size_t i = 0; i < PROFILE_COUNT; i++) {
        if (cstr_equal(profiles[i].name, name)) {
            return &profiles[i];
        }
    }
    return NULL;
}

int options_parse_size(const char *s, size_t *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    size_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        size_t digit = (size_t)(*s - '0');
        if (v > (SIZE_MAX - digit) / 10) {
            return -1;
        }
        v = v * 10 + digit;
    }
    size_t unit = 1;
    switch (*s) {
    case '\0': break;
    case 'k': case 'K': unit = KB; s++; break;
    case 'm': case 'M': unit = MB; s++; break;
    case 'g': case 'G': unit = GB; s++; break;
    default: return -1;
    }
    if (*s != '\0' || (v != 0 && v > SIZE_MAX / unit)) {
        return -1;
    }
    *out = v * unit;
    return 0;
}

/* ---- the types: parse into a field, format a field, say what is accepted ---- */

/* Appends the i-th of n names of a list, "a, b or c", at buf + used;
 * returns the new length (at most len - 1). */
static size_t list_append(char *buf, size_t len, size_t used, size_t i, size_t n, const char *name)
{
    const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
    int w = used < len ? snprintf(buf + used, len - used, "%s%s", sep, name) : 0;
    used += w < 0 ? 0 : (size_t)w;
    return used < len ? used : len - 1;
}

static size_t choice_count(const char *const *choices)
{
    size_t n = 0;
    while (choices[n] != NULL) {
        n++;
    }
    return n;
}

/* The one place a text field is written: a value that does not fit is
 * refused, never cut. */
CEBOX_START_CODE static int copy_text(const struct option_def *d, const char *value, void *field)
{
    size_t n = cstr_len(value);
    if (n >= d->size) {
        return -1;
    }
    memcpy(field, value, n + 1);
    return 0;
}

static void format_text(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    const char *text = field;
    snprintf(buf, len, "%s", text[0] != '\0' ? text : "(none)");
}

CEBOX_START_CODE static int parse_profile(const struct option_def *d, const char *value, void *field)
{
    (void)d;
    const struct cebox_profile *p = options_profile(value);
    if (p == NULL) {
        return -1;
    }
    *(const struct cebox_profile **)field = p;
    return 0;
}

static void format_profile(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    snprintf(buf, len, "%s", (*(const struct cebox_profile *const *)field)->name);
}

static void describe_profile(const struct option_def *d, char *buf, size_t len)
{
    (void)d;
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < PROFILE_COUNT; i++) {
        used = list_append(buf, len, used, i, PROFILE_COUNT, profiles[i].name);
    }
}

/* strcasecmp(value, word) == 0 for a lower-case word, in ASCII as the C
 * locale compares.  Every start parses its settings (the defaults too), and
 * libc's strcasecmp, strspn and strtoul were a page of libc's code each
 * to fault in and a symbol each to bind. */
CEBOX_START_CODE static bool is_word_nocase(const char *value, const char *word)
{
    for (; *word != '\0'; value++, word++) {
        char c = *value >= 'A' && *value <= 'Z' ? (char)(*value - 'A' + 'a') : *value;
        if (c != *word) {
            return false;
        }
    }
    return *value == '\0';
}

CEBOX_START_CODE static int parse_bool(const struct option_def *d, const char *value, void *field)
{
    (void)d;
    bool *out = field;
    if (is_word_nocase(value, "yes") || cstr_equal(value, "1")) {
        *out = true;
        return 0;
    }
    if (is_word_nocase(value, "no") || cstr_equal(value, "0")) {
        *out = false;
        return 0;
    }
    return -1;
}

static void format_bool(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    snprintf(buf, len, "%s", *(const bool *)field ? "yes" : "no");
}

static void describe_bool(const struct option_def *d, char *buf, size_t len)
{
    (void)d;
    snprintf(buf, len, "yes, no, 1 or 0");
}

CEBOX_START_CODE static int parse_sized(const struct option_def *d, const char *value, void *field)
{
    size_t v;
    if (options_parse_size(value, &v) != 0 || v < d->min || v > d->max || v % d->multiple != 0) {
        return -1;
    }
    *(size_t *)field = v;
    return 0;
}

/* Writes "32M" rather than 33554432 when the value is a whole unit. */
static void format_size(char *buf, size_t len, size_t v)
{
    if (v != 0 && v % GB == 0) {
        snprintf(buf, len, "%zuG", v / GB);
    } else if (v != 0 && v % MB == 0) {
        snprintf(buf, len, "%zuM", v / MB);
    } else if (v != 0 && v % KB == 0) {
        snprintf(buf, len, "%zuK", v / KB);
    } else {
        snprintf(buf, len, "%zu", v);
    }
}

static void format_sized(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    format_size(buf, len, *(const size_t *)field);
}

static void describe_sized(const struct option_def *d, char *buf, size_t len)
{
    char lo[32], hi[32], mul[32];
    format_size(lo, sizeof lo, d->min);
    format_size(hi, sizeof hi, d->max);
    format_size(mul, sizeof mul, d->multiple);
    snprintf(buf, len, "a size in bytes with optional K, M or G, from %s to %s%s%s", lo, hi,
             d->multiple > 1 ? ", a multiple of " : "", d->multiple > 1 ? mul : "");
}

/* The decimal digits s starts with and their value in *value; more than
 * `most` of them count as most + 1 (*value then unset).  strspn and
 * strtoul without libc (see is_word_nocase). */
static size_t leading_digits(const char *s, size_t most, uint64_t *value)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n == most) {
            return most + 1;
        }
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    *value = v;
    return n;
}

CEBOX_START_CODE static int parse_int(const struct option_def *d, const char *value, void *field)
{
    uint64_t v = 0;
    size_t digits = leading_digits(value, 9, &v);
    if (digits == 0 || digits > 9 || value[digits] != '\0') {
        return -1;
    }
    if (v < d->min || v > d->max) {
        return -1;
    }
    *(unsigned *)field = (unsigned)v;
    return 0;
}

static void format_int(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    snprintf(buf, len, "%u", *(const unsigned *)field);
}

static void describe_int(const struct option_def *d, char *buf, size_t len)
{
    snprintf(buf, len, "a whole number from %zu to %zu", d->min, d->max);
}

CEBOX_START_CODE static int parse_choice(const struct option_def *d, const char *value, void *field)
{
    for (size_t i = 0; d->choices[i] != NULL; i++) {
        if (cstr_equal(d->choices[i], value)) {
            *(int *)field = (int)i;
            return 0;
        }
    }
    return -1;
}

static void format_choice(const struct option_def *d, const void *field, char *buf, size_t len)
{
    int v = *(const int *)field;
    snprintf(buf, len, "%s", v >= 0 && (size_t)v < choice_count(d->choices) ? d->choices[v] : "?");
}

static void describe_choice(const struct option_def *d, char *buf, size_t len)
{
    size_t used = 0, n = choice_count(d->choices);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        used = list_append(buf, len, used, i, n, d->choices[i]);
    }
}

CEBOX_START_CODE static int parse_signal(const struct option_def *d, const char *value, void *field)
{
    (void)d;
    int signo = options_parse_signal(value);
    if (signo < 0) {
        return -1;
    }
    *(int *)field = signo;
    return 0;
}

static void format_signal(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    int signo = *(const int *)field;
    if (signo == 0) {
        snprintf(buf, len, "none");
    } else {
        snprintf(buf, len, "%d", signo);
    }
}

static void describe_signal(const struct option_def *d, char *buf, size_t len)
{
    (void)d;
    snprintf(buf, len, "none, a signal name (USR1, SIGUSR2, TERM, ...) or a number from 1 to 64");
}

CEBOX_START_CODE static int parse_path(const struct option_def *d, const char *value, void *field)
{
    return value[0] == '\0' ? -1 : copy_text(d, value, field);
}

static void describe_path(const struct option_def *d, char *buf, size_t len)
{
    snprintf(buf, len, "a path of 1 to %zu bytes", d->size - 1);
}

CEBOX_START_CODE static int parse_schedule(const struct option_def *d, const char *value, void *field)
{
    return options_parse_schedule(value, NULL, 0) < 0 ? -1 : copy_text(d, value, field);
}

static void describe_schedule(const struct option_def *d, char *buf, size_t len)
{
    snprintf(buf, len, "up to %d comma-separated SECONDSs:STATE steps in increasing time (SECONDS to the "
                       "milliseconds: 2, 0.5, 1.25), %zu bytes at most, STATE one of normal, limited, low, critical",
             SCHEDULE_MAX, d->size - 1);
}

/* Is the text only separators (or empty)?  A loop, not strspn: --only is
 * parsed at the start of every process it names or leaves out, and
 * strspn was a libc function to bind and two of libc's pages to fault in
 * for it alone. */
static bool only_separators(const char *value)
{
    while (*value == ':') {
        value++;
    }
    return *value == '\0';
}

/* A list of globs: any text; the front end joins repeated options with ':'. */
CEBOX_START_CODE static int parse_globs(const struct option_def *d, const char *value, void *field)
{
    return only_separators(value) ? -1 : copy_text(d, value, field);
}

static void describe_globs(const struct option_def *d, char *buf, size_t len)
{
    snprintf(buf, len, "fnmatch(3) globs separated by ':', %zu bytes at most", d->size - 1);
}

/* A descriptor number, or none (-1). */
CEBOX_START_CODE static int parse_fd(const struct option_def *d, const char *value, void *field)
{
    unsigned v;
    if (cstr_equal(value, "none")) {
        *(int *)field = -1;
        return 0;
    }
    if (parse_int(d, value, &v) != 0) {
        return -1;
    }
    *(int *)field = (int)v;
    return 0;
}

static void format_fd(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    int fd = *(const int *)field;
    if (fd < 0) {
        snprintf(buf, len, "none");
    } else {
        snprintf(buf, len, "%d", fd);
    }
}

static void describe_fd(const struct option_def *d, char *buf, size_t len)
{
    snprintf(buf, len, "none or a descriptor number from %zu to %zu", d->min, d->max);
}

int options_parse_counts(const char *s, uint64_t *out, size_t max)
{
    size_t n = 0;
    uint64_t last = 0;
    for (;;) {
        uint64_t v = 0;
        size_t digits = leading_digits(s, 18, &v);
        if (digits == 0 || digits > 18 || n >= FAIL_NTH_MAX) {
            return -1;
        }
        if (v <= last) {
            return -1; /* from 1, increasing */
        }
        if (out != NULL && n < max) {
            out[n] = v;
        }
        n++;
        last = v;
        s += digits;
        if (*s == '\0') {
            return (int)n;
        }
        if (*s++ != ',') {
            return -1;
        }
    }
}

CEBOX_START_CODE static int parse_counts(const struct option_def *d, const char *value, void *field)
{
    return options_parse_counts(value, NULL, 0) < 0 ? -1 : copy_text(d, value, field);
}

static void describe_counts(const struct option_def *d, char *buf, size_t len)
{
    snprintf(buf, len, "up to %d comma-separated whole numbers from 1, increasing, %zu bytes at most",
             FAIL_NTH_MAX, d->size - 1);
}

enum { BILLION = 1000000000 };

/* "0.25", "1", "86400", "2.5": digits, then at most 9 decimals. */
CEBOX_START_CODE static int parse_decimal(const struct option_def *d, const char *value, void *field)
{
    size_t whole = strspn(value, "0123456789"), decimals = 0;
    if (whole == 0 || whole > 9) {
        return -1;
    }
    uint64_t v = strtoull(value, NULL, 10) * BILLION;
    const char *s = value + whole;
    if (*s == '.') {
        s++;
        decimals = strspn(s, "0123456789");
        if (decimals == 0 || decimals > 9 || s[decimals] != '\0') {
            return -1;
        }
        uint64_t frac = strtoull(s, NULL, 10);
        for (size_t i = decimals; i < 9; i++) {
            frac *= 10;
        }
        v += frac;
    } else if (*s != '\0') {
        return -1;
    }
    if (v < (uint64_t)d->min * BILLION || v > (uint64_t)d->max * BILLION) {
        return -1;
    }
    *(uint64_t *)field = v;
    return 0;
}

static void format_decimal(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    uint64_t v = *(const uint64_t *)field;
    unsigned frac = (unsigned)(v % BILLION);
    if (frac == 0) {
        snprintf(buf, len, "%llu", (unsigned long long)(v / BILLION));
        return;
    }
    int digits = 9;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(buf, len, "%llu.%0*u", (unsigned long long)(v / BILLION), digits, frac);
}

static void describe_decimal(const struct option_def *d, char *buf, size_t len)
{
    snprintf(buf, len, "a decimal number from %zu to %zu, at most 9 decimals", d->min, d->max);
}

static void describe_pattern(const struct option_def *d, char *buf, size_t len)
{
    snprintf(buf, len, "a glob (* and ?) of 1 to %zu bytes", d->size - 1);
}

/* A call stack's hash: exactly 16 hex digits, not all zero (fault.c
 * never gives 0). */
CEBOX_START_CODE static int parse_hash(const struct option_def *d, const char *value, void *field)
{
    (void)d;
    if (cstr_len(value) != 16 || strspn(value, "0123456789abcdefABCDEF") != 16) {
        return -1;
    }
    uint64_t v = strtoull(value, NULL, 16);
    if (v == 0) {
        return -1;
    }
    *(uint64_t *)field = v;
    return 0;
}

static void format_hash(const struct option_def *d, const void *field, char *buf, size_t len)
{
    (void)d;
    snprintf(buf, len, "%016llx", (unsigned long long)*(const uint64_t *)field);
}

static void describe_hash(const struct option_def *d, char *buf, size_t len)
{
    (void)d;
    snprintf(buf, len, "a call stack's hash: 16 hexadecimal digits, not all 0");
}

struct option_type {
    /* Parses value into the row's field: 0, or -1 with the field unspecified. */
    int (*parse)(const struct option_def *d, const char *value, void *field);
    void (*format)(const struct option_def *d, const void *field, char *buf, size_t len);
    void (*describe)(const struct option_def *d, char *buf, size_t len);
};

static const struct option_type types[] = {
    [OPT_PROFILE] = {parse_profile, format_profile, describe_profile},
    [OPT_SIZE] = {parse_sized, format_sized, describe_sized},
    [OPT_BOOL] = {parse_bool, format_bool, describe_bool},
    [OPT_PATH] = {parse_path, format_text, describe_path},
    [OPT_CHOICE] = {parse_choice, format_choice, describe_choice},
    [OPT_SCHEDULE] = {parse_schedule, format_text, describe_schedule},
    [OPT_SIGNAL] = {parse_signal, format_signal, describe_signal},
    [OPT_INT] = {parse_int, format_int, describe_int},
    [OPT_FD] = {parse_fd, format_fd, describe_fd},
    [OPT_GLOBS] = {parse_globs, format_text, describe_globs},
    [OPT_COUNTS] = {parse_counts, format_text, describe_counts},
    [OPT_DECIMAL] = {parse_decimal, format_decimal, describe_decimal},
    [OPT_PATTERN] = {parse_path, format_text, describe_pattern},
    [OPT_HASH] = {parse_hash, format_hash, describe_hash},
};

/* ---- rows and settings ---- */

enum {
    ACCEPTED_MAX = 192, /* the "accepted" text of any row */
    SHOWN_VALUE_MAX = 64, /* a refused value longer than this is abbreviated */
    SHOWN_VALUE_CUT = 40,
};

CEBOX_START_CODE static void *field_of(const struct option_def *d, struct cebox_settings *s)
{
    return (char *)s + d->offset;
}

static const void *field_in(const struct option_def *d, const struct cebox_settings *s)
{
    return (const char *)s + d->offset;
}

/* Copies the first n bytes of value (cut back to a character boundary) for a
 * message, with control characters as '?' so that the message stays one line. */
static void shown_value(const char *value, size_t n, char *buf)
{
    while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80) {
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        buf[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    buf[n] = '\0';
}

static int refuse(const struct option_def *d, const char *value, char err[OPTIONS_ERR_MAX])
{
    char accepted[ACCEPTED_MAX], shown[SHOWN_VALUE_MAX + 1];
    types[d->type].describe(d, accepted, sizeof accepted);
    size_t n = cstr_len(value);
    if (n <= SHOWN_VALUE_MAX) {
        shown_value(value, n, shown);
        snprintf(err, OPTIONS_ERR_MAX, "%s='%s' is not valid; accepted: %s", d->var, shown, accepted);
    } else {
        shown_value(value, SHOWN_VALUE_CUT, shown);
        snprintf(err, OPTIONS_ERR_MAX, "%s='%s...' (%zu bytes) is not valid; accepted: %s", d->var, shown, n,
                 accepted);
    }
    return -1;
}

/* Gives row i the value the getter returned, or its default when none. */
static int load_row(size_t i, const char *given, struct cebox_settings *s, char err[OPTIONS_ERR_MAX])
{
    const struct option_def *d = &table[i];
    void *field = field_of(d, s);
    if (given != NULL) {
        if (types[d->type].parse(d, given, field) != 0) {
            return refuse(d, given, err);
        }
        s->set |= (uint64_t)1 << i;
    } else if (d->from_profile) {
        INVARIANT(s->profile != NULL, "the profile is loaded before the defaults that come from it");
        memcpy(field, (const char *)s->profile + d->profile_offset, d->size);
    } else if (d->default_value != NULL) {
        int parsed = types[d->type].parse(d, d->default_value, field);
        INVARIANT(parsed == 0, "an option's default is one of its values");
    }
    return 0;
}

/* A state the table cannot give: limited under a table without a
 * limited level (ce5), which would otherwise silently mean low. */
static bool state_in_table(int state, int thresholds)
{
    const struct memstate_table *t = memstate_table_by_id((enum memstate_table_id)thresholds);
    return state != MEMSTATE_LIMITED || t->limited != 0;
}

/* The settings that must agree with each other: --state and
 * --state-schedule with --thresholds. */
static int check_states_in_table(const struct cebox_settings *s, char err[OPTIONS_ERR_MAX])
{
    const char *table_name = memstate_table_by_id((enum memstate_table_id)s->thresholds)->name;
    struct schedule_step steps[SCHEDULE_MAX];
    int n = s->schedule[0] != '\0' ? options_parse_schedule(s->schedule, steps, SCHEDULE_MAX) : 0;
    const char *var = !state_in_table(s->state, s->thresholds) ? "CEBOX_STATE" : NULL;
    for (int i = 0; i < n && var == NULL; i++) {
        var = !state_in_table(steps[i].state, s->thresholds) ? "CEBOX_STATE_SCHEDULE" : NULL;
    }
    if (var == NULL) {
        return 0;
    }
    snprintf(err, OPTIONS_ERR_MAX,
             "%s: state limited is not valid with CEBOX_THRESHOLDS=%s, which has no limited level; "
             "accepted: normal, low or critical (or a table with a limited level: hpc, ppc, hpc1k)",
             var, table_name);
    return -1;
}

/* Fills *out from each row's given value (NULL: its default). */
CEBOX_START_CODE static int load_given(const char *const given[OPT_COUNT], struct cebox_settings *out, char err[OPTIONS_ERR_MAX])
{
    struct cebox_settings s;
    err[0] = '\0';
    memset(&s, 0, sizeof s);
    /* The profile first: the other rows' defaults come from it. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < OPT_COUNT; i++) {
            if ((table[i].type == OPT_PROFILE) == (pass == 0) && load_row(i, given[i], &s, err) != 0) {
                return -1;
            }
        }
    }
    if (check_states_in_table(&s, err) != 0) {
        return -1;
    }
    *out = s;
    return 0;
}

int options_load(options_getter get, struct cebox_settings *out, char err[OPTIONS_ERR_MAX])
{
    const char *given[OPT_COUNT];
    for (size_t i = 0; i < OPT_COUNT; i++) {
        given[i] = get(table[i].var);
    }
    return load_given(given, out, err);
}

#define VAR_PREFIX "CEBOX_"
#define VAR_PREFIX_LEN (sizeof VAR_PREFIX - 1)

/* ---- the start's string work, without libc's string functions ----
 * Every process under cebox reads its settings here, in the preload
 * library's constructor (and with --only matches its name): the short
 * comparisons are cstr.h's, because each libc string function called
 * costs the start a lazy binding (some 750 instructions) and a page fault
 * on its code in libc. */

/* The row whose variable is the first name_len characters of `entry` (an
 * environment entry "NAME=value", or a name), or OPT_COUNT; name_len is
 * more than the prefix.  Every row's name starts with the prefix and one
 * more character, which rules out most rows before a comparison. */
CEBOX_START_CODE static size_t row_of_entry(const char *entry, size_t name_len)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const char *var = table[i].var;
        if (var[VAR_PREFIX_LEN] != entry[VAR_PREFIX_LEN]) {
            continue;
        }
        size_t k = 0; /* entry's first name_len bytes hold no NUL: var's ends the loop */
        while (k < name_len && var[k] == entry[k]) {
            k++;
        }
        if (k == name_len && var[name_len] == '\0') {
            return i;
        }
    }
    return OPT_COUNT;
}

CEBOX_START_CODE int options_load_environ(char *const *env, struct cebox_settings *out, char err[OPTIONS_ERR_MAX])
{
    const char *given[OPT_COUNT] = {NULL};
    for (; env != NULL && *env != NULL; env++) {
        const char *entry = *env, *eq;
        /* The first byte first: most of an environment is not cebox's. */
        if (entry[0] != VAR_PREFIX[0] || !cstr_has_prefix(entry, VAR_PREFIX) || (eq = cstr_find(entry, '=')) == NULL) {
            continue;
        }
        size_t n = (size_t)(eq - entry);
        size_t i = n > VAR_PREFIX_LEN ? row_of_entry(entry, n) : OPT_COUNT;
        if (i < OPT_COUNT && given[i] == NULL) { /* the first entry of a name, as getenv finds */
            given[i] = eq + 1;
        }
    }
    return load_given(given, out, err);
}

int options_check(const char *var, const char *value, char err[OPTIONS_ERR_MAX])
{
    struct cebox_settings scratch;
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct option_def *d = &table[i];
        if (cstr_equal(d->var, var)) {
            return types[d->type].parse(d, value, field_of(d, &scratch)) == 0 ? 0 : refuse(d, value, err);
        }
    }
    snprintf(err, OPTIONS_ERR_MAX, "%s is not a cebox setting", var);
    return -1;
}

/* Only the rows given are compared (a start asks about a dozen names,
 * and few options are given): each set bit in turn, lowest first. */
bool options_given(const struct cebox_settings *s, const char *var)
{
    for (uint64_t left = s->set; left != 0; left &= left - 1) {
        size_t i = (size_t)__builtin_ctzll(left);
        if (i < OPT_COUNT && cstr_equal(table[i].var, var)) {
            return true;
        }
    }
    return false;
}

bool options_given_with_prefix(const struct cebox_settings *s, const char *prefix)
{
    for (uint64_t left = s->set; left != 0; left &= left - 1) {
        size_t i = (size_t)__builtin_ctzll(left);
        if (i < OPT_COUNT && cstr_has_prefix(table[i].var, prefix)) {
            return true;
        }
    }
    return false;
}

size_t options_count(void)
{
    return OPT_COUNT;
}

const char *options_var(size_t i)
{
    return i < OPT_COUNT ? table[i].var : NULL;
}

const char *options_flag(size_t i)
{
    return i < OPT_COUNT ? table[i].flag : NULL;
}

bool options_is_flag(size_t i)
{
    return i < OPT_COUNT && table[i].type == OPT_BOOL;
}

bool options_is_list(size_t i)
{
    return i < OPT_COUNT && table[i].type == OPT_GLOBS;
}

/* Is every byte of the n bytes at s (or up to its NUL when n is SIZE_MAX)
 * one that fnmatch reads alike in every locale and that is not special to
 * it without flags, other than '*' and '?'? */
static bool plain_glob_bytes(const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '[' || c == '\\' || c >= 0x80) {
            return false;
        }
    }
    return true;
}

/* fnmatch(glob, name, 0) == 0 for the n-byte glob g of literal ASCII
 * bytes, '*' (any run of bytes, '/' and a leading '.' too) and '?' (any
 * one byte), and an ASCII name: the greedy match that, on a mismatch,
 * lets the last '*' take one byte more. */
static bool plain_glob_matches(const char *g, size_t n, const char *name)
{
    size_t gi = 0, star = SIZE_MAX;
    const char *s = name, *star_s = name;
    while (*s != '\0') {
        if (gi < n && g[gi] == '*') {
            star = gi++;
            star_s = s;
        } else if (gi < n && (g[gi] == '?' || g[gi] == *s)) {
            gi++;
            s++;
        } else if (star != SIZE_MAX) {
            gi = star + 1;
            s = ++star_s;
        } else {
            return false;
        }
    }
    while (gi < n && g[gi] == '*') {
        gi++;
    }
    return gi == n;
}

/* One glob of globs: the plain ones matched here, any other (a bracket
 * expression, an escape, a byte the locale reads) by fnmatch. */
CEBOX_START_CODE static bool glob_matches(const char *g, size_t n, const char *name)
{
    if (plain_glob_bytes(g, n) && plain_glob_bytes(name, SIZE_MAX)) {
        return plain_glob_matches(g, n, name);
    }
    char one[OPTIONS_LIST_MAX];
    memcpy(one, g, n);
    one[n] = '\0';
    return fnmatch(one, name, 0) == 0;
}

CEBOX_START_CODE bool options_matches_glob(const char *globs, const char *name)
{
    for (const char *g = globs; *g != '\0';) {
        size_t n = cstr_span_before(g, ':');
        if (n > 0 && n < OPTIONS_LIST_MAX && glob_matches(g, n, name)) {
            return true;
        }
        g += n + (g[n] == ':');
    }
    return false;
}

const char *options_help(size_t i)
{
    return i < OPT_COUNT ? table[i].help : NULL;
}

static void write_str(int fd, const char *s)
{
    os_write_all(fd, s, strlen(s));
}

/* Writes "VARIABLE=value\t(source)\n" for row i into buf, as snprintf. */
static int format_line(size_t i, const struct cebox_settings *s, char *buf, size_t len)
{
    const struct option_def *d = &table[i];
    char value[sizeof(struct cebox_settings)]; /* holds any text field */
    bool given = (s->set >> i & 1u) != 0;
    if (!given && !d->from_profile && d->default_value == NULL) {
        snprintf(value, sizeof value, "(none)"); /* a rule that is off, not a value of zero */
    } else {
        types[d->type].format(d, field_in(d, s), value, sizeof value);
    }
    const char *source = given ? "set" : d->from_profile ? "profile" : "default";
    return snprintf(buf, len, "%s=%s\t(%s)\n", d->var, value, source);
}

void options_print(int fd, const struct cebox_settings *s)
{
    char line[sizeof(struct cebox_settings) + 64];
    for (size_t i = 0; i < OPT_COUNT; i++) {
        format_line(i, s, line, sizeof line);
        write_str(fd, line);
    }
}

size_t options_format(const struct cebox_settings *s, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0) {
        return 0;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < OPT_COUNT && used < len - 1; i++) {
        int n = format_line(i, s, buf + used, len - used);
        used = n < 0 ? used : (used + (size_t)n < len ? used + (size_t)n : len - 1);
    }
    return used;
}

void options_print_markdown(int fd)
{
    char line[1024], accepted[ACCEPTED_MAX];
    write_str(fd, "| variable | `cebox` option | default | accepted | meaning |\n");
    write_str(fd, "|---|---|---|---|---|\n");
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct option_def *d = &table[i];
        types[d->type].describe(d, accepted, sizeof accepted);
        snprintf(line, sizeof line, "| `%s` | `--%s` | %s | %s | %s |\n", d->var, d->flag,
                 d->default_doc != NULL ? d->default_doc : d->default_value, accepted, d->help);
        write_str(fd, line);
    }
}
