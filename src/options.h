/*
 * options.h - the one table of cebox's settings and the CE profiles.
 *
 * Owns: the option table (one row per setting: variable, flag, the field it
 * fills, its type, default, range, help), the profile constants (every
 * number of CE-SEMANTICS.md that differs between CE versions), and the
 * parsing and printing of CEBOX_* values.
 *
 * Invariants: a `struct cebox_settings` that options_load() returned without
 * error holds only values inside the table's ranges, every text whole (a
 * value that does not fit its field is refused, never cut), and says in
 * `set` which variables were given; nothing in cebox reads a CEBOX_*
 * variable except through options_load(), which asks for each once.  Parsing
 * allocates nothing (it runs inside the preload library before malloc
 * exists).
 */
#ifndef CEBOX_OPTIONS_H
#define CEBOX_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum heap_kind { HEAP_KIND_CE3, HEAP_KIND_CE5, HEAP_KIND_CE6 };

/* Every number that distinguishes one CE version from another. */
struct cebox_profile {
    const char *name;     /* "ce5" */
    const char *describes;
    size_t slot_size;     /* bytes of the process slot */
    size_t granularity;   /* reservation unit (64 KB) */
    size_t page_size;     /* commit unit */
    bool large_memory_area;  /* reserve-only >= lma_min goes outside the slot */
    size_t lma_min;
    bool ce3_vm_checks;   /* CE 3.0's VirtualAlloc/VirtualProtect checks (slot.h) */
    bool release_mixed;   /* MEM_RELEASE of a partly committed region allowed */
    bool honour_top_down; /* MEM_TOP_DOWN scans from the top (CE 3 only) */
    bool alloc_prot_error_is_invalid; /* VirtualAlloc turns protection errors into 87 */
    enum heap_kind heap;  /* which heap algorithm; its parameters live in its file */
    size_t ram;           /* default device RAM for programs */
    int thresholds;       /* default memory-state table (enum memstate_table_id) */
};

/* One step of a state schedule: `ms` milliseconds after the start, `state`. */
struct schedule_step {
    unsigned ms;
    int state; /* enum memstate */
};
#define SCHEDULE_MAX 16
#define SCHEDULE_SECONDS_MAX 86400
/* Room for SCHEDULE_MAX steps of the longest step, "86400.000s:critical", each
 * followed by its comma (the last one's place holds the NUL).  A longer
 * schedule can only be spelled with leading zeros; it is refused. */
#define SCHEDULE_TEXT_MAX (SCHEDULE_MAX * sizeof "86400.000s:critical")

/* Bytes of a list setting (CEBOX_ONLY), its NUL included. */
#define OPTIONS_LIST_MAX 256

/* Which exit summaries a process prints on stderr (CEBOX_SUMMARIES). */
enum summaries_mode { SUMMARIES_ALL, SUMMARIES_FAILURES, SUMMARIES_NONE };

/* Which shared libraries are ROM (XIP: only their writable data is
 * reserved in the slot) and which RAM DLLs (charged whole), CEBOX_LIBRARIES. */
enum libraries_split { LIBRARIES_SYSTEM_XIP, LIBRARIES_ALL_RAM, LIBRARIES_ALL_XIP, LIBRARIES_NONE };

/* --fail-nth: at most FAIL_NTH_MAX call numbers, each at most 18 digits. */
#define FAIL_NTH_MAX 64
#define FAIL_NTH_TEXT_MAX 256

/* Settings in force: the profile plus whatever the user overrode. */
struct cebox_settings {
    const struct cebox_profile *profile;
    size_t slot_size;
    size_t ram;
    bool large_memory_area;
    char out_dir[256]; /* "" when none */
    bool quiet;        /* no exit summary on stderr */
    int summaries;     /* enum summaries_mode */
    bool follow;       /* keep LD_PRELOAD for programs this one starts */
    char only[OPTIONS_LIST_MAX]; /* "" (box every program) or globs separated by ':' */
    int thresholds;    /* enum memstate_table_id */
    int state;         /* enum memstate: the state to start in (normal: not forced) */
    char schedule[SCHEDULE_TEXT_MAX]; /* "0.5s:low,10s:normal" or "" */
    char session[256];  /* session file path or "" */
    int session_fd;     /* descriptor the session file is open on, or -1 */
    int stderr_fd;      /* cebox run's stderr, for a program that closed its own; or -1 */
    unsigned watch_fd;  /* --no-follow: cebox run's exec watch descriptor, 0: none */
    int hibernate_signal; /* 0: none */
    bool close_apps;
    unsigned stack_depth; /* frames kept per recorded call stack */
    size_t log_limit;     /* bytes after which a log takes no more failures */
    unsigned sample_interval_ms; /* the timeline's period under cebox run (0: failures and exit only) */
    /* Fault injection (src/fault.c): each rule is on when its option is
     * given (options_given), whatever its value. */
    char fail_nth[FAIL_NTH_TEXT_MAX]; /* "3,10": increasing call numbers */
    unsigned fail_every;          /* every Nth call */
    uint64_t fail_probability;    /* billionths (1 is 1000000000) */
    unsigned seed;                /* of the per-process generator */
    size_t fail_size_min, fail_size_max; /* bytes, inclusive */
    uint64_t fail_after, fail_until;     /* nanoseconds since the process began */
    char fail_in[128];            /* a glob over function and module names */
    int fail_state;               /* enum memstate: at least this state */
    char fail_once_file[256];     /* the stacks failed so far, across runs */
    uint64_t fail_stack;          /* only calls with this stack hash (fault_stack_hash, never 0) */
    char record_stacks_file[256]; /* the distinct stacks seen, appended (nothing failed for it) */
    bool leaks;           /* track every heap block's stack; leak report at exit */
    int state_by;         /* enum ram_force_mode: how forced states are held (pin, ballast) */
    /* The process's occupants in a preloaded process's slot (occupancy.c). */
    bool occupy;          /* image, libraries and stacks take their blocks */
    size_t stack_size;    /* per thread, rounded up to 64 KB in the slot; 0: none */
    int libraries;        /* enum libraries_split */
    unsigned commit_ahead; /* pages a heap region's commit maps read/write ahead (slot.h; 0: exact) */
    uint64_t set;         /* bit i: options_var(i) was given (else its default) */
};

/* Parses "none" (0), "USR1", "SIGUSR1" or a number 1..64; -1 if invalid. */
int options_parse_signal(const char *s);

/* Parses "2s:low,10.5s:normal" into at most max steps (out may be NULL);
 * seconds may have up to three decimals (milliseconds).
 * Returns the number of steps, or -1 when the text is not a schedule. */
int options_parse_schedule(const char *s, struct schedule_step *out, size_t max);

/* Parses "3,10,200" (increasing numbers from 1, at most FAIL_NTH_MAX)
 * into out (may be NULL).  Returns the count, or -1 when invalid. */
int options_parse_counts(const char *s, uint64_t *out, size_t max);

/* Was the variable `var` given (its row's bit in s->set)?  False for a
 * name that is no row. */
bool options_given(const struct cebox_settings *s, const char *var);

/* Is a variable whose name starts with `prefix` given?  One pass over the
 * variables given, for a caller with many names of one family (fault
 * injection's CEBOX_FAIL_*). */
bool options_given_with_prefix(const struct cebox_settings *s, const char *prefix);

/* Looks a variable up; returns NULL when unset.  getenv fits. */
typedef const char *(*options_getter)(const char *name);

enum { OPTIONS_ERR_MAX = 320 };

/* Fills *out from the profile named by CEBOX_PROFILE (default ce5) and the
 * other CEBOX_* variables.  Returns 0, or -1 with one line in `err` (no
 * newline) naming the variable, the bad value and what is accepted; *out is
 * then unspecified and must not be used. */
int options_load(options_getter get, struct cebox_settings *out, char err[OPTIONS_ERR_MAX]);

/* options_load with getenv's answers taken from env (an environ-style
 * array: "NAME=value" entries, NULL-terminated; the first entry of a name
 * counts, as getenv finds it) in one pass over it, rather than a search of
 * it per option: the preload library's start. */
int options_load_environ(char *const *env, struct cebox_settings *out, char err[OPTIONS_ERR_MAX]);

/* Checks one value for the option whose variable is `var` (for command-line
 * front ends).  Same return and message as options_load. */
int options_check(const char *var, const char *value, char err[OPTIONS_ERR_MAX]);

/* Looks up a profile by name; NULL if there is none. */
const struct cebox_profile *options_profile(const char *name);

/* Writes "VARIABLE=value\t(source)" lines describing `s` (as options_load
 * returned it) to fd; the source is "set" when the variable was given,
 * otherwise "profile" or "default", from `s` alone (the environment is not
 * read again). */
void options_print(int fd, const struct cebox_settings *s);

/* Writes the same lines as options_print into buf (at most len bytes,
 * NUL-terminated; no allocation).  Returns the length written. */
size_t options_format(const struct cebox_settings *s, char *buf, size_t len);

/* Writes the option table as a Markdown table to fd (for the README). */
void options_print_markdown(int fd);

/* Number of rows in the table, and the variable and cli name of row i. */
size_t options_count(void);
const char *options_var(size_t i);
const char *options_flag(size_t i);
const char *options_help(size_t i);
/* True for yes/no settings: on the command line `--NAME` means yes and
 * `--no-NAME` means no. */
bool options_is_flag(size_t i);
/* True for lists (CEBOX_ONLY): on the command line the option may be
 * repeated, and the values are joined with ':'. */
bool options_is_list(size_t i);

/* Does `name` match one of the ':'-separated fnmatch(3) globs (no flags: '*'
 * matches '/' too)?  No allocation in the C locale. */
bool options_matches_glob(const char *globs, const char *name);

/* Parses "123", "64K", "32M", "2G" (binary units).  Returns 0 or -1. */
int options_parse_size(const char *s, size_t *out);

#endif
