/*
 * options.c - the option table, the profiles and the value parsers.
 * See options.h for the contract.  No allocation here: the preload library
 * parses its settings before any heap exists.
 */
#include "options.h"

#include "memstate.h"
#include "os.h"

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
        .release_mixed = false, .honour_top_down = true, .alloc_prot_error_is_invalid = false,
        .heap = HEAP_KIND_CE3, .heap_region_reserve = 0x60000, .ram = 32 * MB,
        .thresholds = MEMSTATE_TABLE_PPC,
    },
    {
        .name = "ce5", .describes = "Windows CE .NET 4.2 / CE 5.0",
        .slot_size = 32 * MB, .granularity = 64 * KB, .page_size = 4 * KB,
        .large_memory_area = true, .lma_min = 2 * MB,
        .release_mixed = false, .honour_top_down = false, .alloc_prot_error_is_invalid = true,
        .heap = HEAP_KIND_CE5, .heap_region_reserve = 0x2F000, .ram = 64 * MB,
        .thresholds = MEMSTATE_TABLE_CE5,
    },
    {
        .name = "ce6", .describes = "Windows Embedded CE 6.0",
        .slot_size = 2 * GB, .granularity = 64 * KB, .page_size = 4 * KB,
        .large_memory_area = false, .lma_min = 0,
        .release_mixed = true, .honour_top_down = false, .alloc_prot_error_is_invalid = true,
        .heap = HEAP_KIND_CE6, .heap_region_reserve = 64 * KB, .ram = 512 * MB,
        .thresholds = MEMSTATE_TABLE_CE5,
    },
};
#define PROFILE_COUNT (sizeof profiles / sizeof profiles[0])
#define DEFAULT_PROFILE (&profiles[1])

enum opt_type { OPT_PROFILE, OPT_SIZE, OPT_BOOL, OPT_PATH, OPT_CHOICE, OPT_SCHEDULE, OPT_SIGNAL, OPT_INT };

struct option_def {
    const char *flag;     /* command-line spelling, without "--" */
    const char *var;      /* environment variable */
    enum opt_type type;
    size_t min, max, multiple; /* OPT_SIZE; min and max for OPT_INT too */
    const char *const *choices; /* OPT_CHOICE only, NULL-terminated */
    const char *default_text;
    const char *help;
};

enum {
    OPT_IDX_PROFILE, OPT_IDX_SLOT_SIZE, OPT_IDX_RAM, OPT_IDX_LMA, OPT_IDX_THRESHOLDS,
    OPT_IDX_OUT, OPT_IDX_QUIET, OPT_IDX_FOLLOW, OPT_IDX_STATE, OPT_IDX_SCHEDULE, OPT_IDX_HIBERNATE_SIGNAL, OPT_IDX_CLOSE_APPS, OPT_IDX_SESSION,
    OPT_IDX_STACK_DEPTH, OPT_IDX_LOG_LIMIT, OPT_IDX_COUNT
};

static const char *const table_names[] = {"hpc", "ppc", "ce5", "hpc1k", NULL};
static const char *const state_names[] = {"normal", "limited", "low", "critical", NULL};

static const struct option_def table[OPT_IDX_COUNT] = {
    [OPT_IDX_PROFILE] = {"profile", "CEBOX_PROFILE", OPT_PROFILE, 0, 0, 0, NULL, "ce5",
                         "CE version to emulate: ce3, ce5 or ce6; sets every other default"},
    [OPT_IDX_SLOT_SIZE] = {"slot-size", "CEBOX_SLOT_SIZE", OPT_SIZE, 1 * MB, 2 * GB, 64 * KB, NULL,
                           "ce3/ce5: 32M, ce6: 2G",
                           "size of the process slot (the box every allocation must fit in)"},
    [OPT_IDX_RAM] = {"ram", "CEBOX_RAM", OPT_SIZE, 64 * KB, 64 * GB, 4 * KB, NULL,
                     "ce3: 32M, ce5: 64M, ce6: 512M",
                     "device RAM available to programs; every committed page uses it"},
    [OPT_IDX_LMA] = {"large-memory-area", "CEBOX_LARGE_MEMORY_AREA", OPT_BOOL, 0, 0, 0, NULL,
                     "ce3/ce5: yes, ce6: no",
                     "reserve-only requests of 2M or more go outside the slot"},
    [OPT_IDX_THRESHOLDS] = {"thresholds", "CEBOX_THRESHOLDS", OPT_CHOICE, 0, 0, 0, table_names,
                            "ce3: ppc, ce5/ce6: ce5",
                            "memory-state table: H/PC, Pocket PC, CE 5's SetOOMEvent defaults, or H/PC with "
                            "1 KB pages"},
    [OPT_IDX_OUT] = {"out", "CEBOX_OUT", OPT_PATH, 0, 0, 0, NULL, "none",
                     "directory for the per-process summaries and event logs with the call stacks of "
                     "failed allocations (cebox-PID.summary, cebox-PID.log; read them with cebox report)"},
    [OPT_IDX_QUIET] = {"quiet", "CEBOX_QUIET", OPT_BOOL, 0, 0, 0, NULL, "no",
                       "no summary on stderr when a program exits"},
    [OPT_IDX_FOLLOW] = {"follow", "CEBOX_FOLLOW", OPT_BOOL, 0, 0, 0, NULL, "yes",
                        "programs started by the program run under cebox too (--no-follow: no)"},
    [OPT_IDX_STATE] = {"state", "CEBOX_STATE", OPT_CHOICE, 0, 0, 0, state_names, "normal",
                       "start in this memory state (free RAM pinned just inside it)"},
    [OPT_IDX_SCHEDULE] = {"state-schedule", "CEBOX_STATE_SCHEDULE", OPT_SCHEDULE, 0, 0, 0, NULL, "none",
                          "change the state over time, e.g. 2s:low,10s:normal (normal: free RAM decides)"},
    [OPT_IDX_HIBERNATE_SIGNAL] = {"hibernate-signal", "CEBOX_HIBERNATE_SIGNAL", OPT_SIGNAL, 0, 0, 0, NULL, "none",
                                  "signal sent with each hibernate notice (none: the callback only)"},
    [OPT_IDX_CLOSE_APPS] = {"close-apps", "CEBOX_CLOSE_APPS", OPT_BOOL, 0, 0, 0, NULL, "no",
                            "Pocket PC: in limited memory, ask background processes to close (SIGTERM, "
                            "SIGKILL after 8 s)"},
    [OPT_IDX_SESSION] = {"session", "CEBOX_SESSION", OPT_PATH, 0, 0, 0, NULL, "none",
                         "device shared by the processes of one run (cebox run sets it)"},
    [OPT_IDX_STACK_DEPTH] = {"stack-depth", "CEBOX_STACK_DEPTH", OPT_INT, 1, 128, 1, NULL, "32",
                             "frames recorded per call stack of a failed allocation (innermost first)"},
    [OPT_IDX_LOG_LIMIT] = {"log-limit", "CEBOX_LOG_LIMIT", OPT_SIZE, 64 * KB, 64 * GB, 1 * KB, NULL, "64M",
                           "size at which a process's event log stops taking failures (they are still "
                           "counted; the summary says how many went unrecorded)"},
};

int options_parse_schedule(const char *s, struct schedule_step *out, size_t max)
{
    size_t n = 0;
    unsigned long last = 0;
    while (*s != '\0') {
        char *end;
        if (*s < '0' || *s > '9') {
            return -1;
        }
        unsigned long secs = strtoul(s, &end, 10);
        if (end[0] != 's' || end[1] != ':' || secs > 86400 || (n > 0 && secs <= last)) {
            return -1;
        }
        s = end + 2;
        size_t len = strcspn(s, ",");
        int state = -1;
        for (int i = 0; state_names[i] != NULL; i++) {
            if (strlen(state_names[i]) == len && strncmp(state_names[i], s, len) == 0) {
                state = i;
            }
        }
        if (state < 0 || n >= SCHEDULE_MAX) {
            return -1;
        }
        if (out != NULL && n < max) {
            out[n] = (struct schedule_step){.seconds = (unsigned)secs, .state = state};
        }
        n++;
        last = secs;
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
    if (strcmp(s, "none") == 0) {
        return 0;
    }
    if (*s >= '0' && *s <= '9') {
        char *end;
        long v = strtol(s, &end, 10);
        return (*end == '\0' && v >= 1 && v <= 64) ? (int)v : -1;
    }
    const char *n = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(names[i].name, n) == 0) {
            return names[i].signo;
        }
    }
    return -1;
}

const struct cebox_profile *options_profile(const char *name)
{
    for (size_t i = 0; i < PROFILE_COUNT; i++) {
        if (strcmp(profiles[i].name, name) == 0) {
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

static int parse_bool(const char *s, bool *out)
{
    if (strcasecmp(s, "yes") == 0 || strcmp(s, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcasecmp(s, "no") == 0 || strcmp(s, "0") == 0) {
        *out = false;
        return 0;
    }
    return -1;
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

static void describe_accepted(const struct option_def *d, char *buf, size_t len)
{
    char lo[32], hi[32], mul[32];
    switch (d->type) {
    case OPT_PROFILE:
        snprintf(buf, len, "ce3, ce5 or ce6");
        break;
    case OPT_BOOL:
        snprintf(buf, len, "yes, no, 1 or 0");
        break;
    case OPT_PATH:
        snprintf(buf, len, "a path of 1 to %zu bytes", sizeof(((struct cebox_settings *)0)->out_dir) - 1);
        break;
    case OPT_CHOICE: {
        size_t used = 0;
        for (size_t i = 0; d->choices[i] != NULL && used < len; i++) {
            const char *sep = i == 0 ? "" : d->choices[i + 1] == NULL ? " or " : ", ";
            used += (size_t)snprintf(buf + used, len - used, "%s%s", sep, d->choices[i]);
        }
        break;
    }
    case OPT_SIGNAL:
        snprintf(buf, len, "none, a signal name (USR1, SIGUSR2, TERM, ...) or a number from 1 to 64");
        break;
    case OPT_INT:
        snprintf(buf, len, "a whole number from %zu to %zu", d->min, d->max);
        break;
    case OPT_SCHEDULE:
        snprintf(buf, len, "comma-separated SECONDSs:STATE steps in increasing time, STATE one of "
                           "normal, limited, low, critical; %zu characters at most",
                 sizeof(((struct cebox_settings *)0)->schedule) - 1);
        break;
    case OPT_SIZE:
        format_size(lo, sizeof lo, d->min);
        format_size(hi, sizeof hi, d->max);
        format_size(mul, sizeof mul, d->multiple);
        snprintf(buf, len, "a size in bytes with optional K, M or G, from %s to %s, a multiple of %s",
                 lo, hi, mul);
        break;
    }
}

static int refuse(const struct option_def *d, const char *value, char err[OPTIONS_ERR_MAX])
{
    char accepted[160];
    describe_accepted(d, accepted, sizeof accepted);
    snprintf(err, OPTIONS_ERR_MAX, "%s='%s' is not valid; accepted: %s", d->var, value, accepted);
    return -1;
}

/* Parses `value` for row `d` into the matching field of *s (if s != NULL). */
static int apply(size_t idx, const char *value, struct cebox_settings *s, char err[OPTIONS_ERR_MAX])
{
    const struct option_def *d = &table[idx];
    size_t size = 0;
    bool flag = false;
    size_t choice = 0;
    int signo = 0;
    const struct cebox_profile *p = NULL;
    switch (d->type) {
    case OPT_PROFILE:
        if ((p = options_profile(value)) == NULL) {
            return refuse(d, value, err);
        }
        break;
    case OPT_BOOL:
        if (parse_bool(value, &flag) != 0) {
            return refuse(d, value, err);
        }
        break;
    case OPT_SIZE:
        if (options_parse_size(value, &size) != 0 || size < d->min || size > d->max ||
            size % d->multiple != 0) {
            return refuse(d, value, err);
        }
        break;
    case OPT_PATH:
        if (value[0] == '\0' || strlen(value) >= sizeof s->out_dir) {
            return refuse(d, value, err);
        }
        break;
    case OPT_CHOICE:
        for (choice = 0; d->choices[choice] != NULL && strcmp(d->choices[choice], value) != 0; choice++) {
        }
        if (d->choices[choice] == NULL) {
            return refuse(d, value, err);
        }
        break;
    case OPT_SCHEDULE:
        /* A valid schedule can be longer than the field (16 steps of
         * "86400s:critical", or leading zeros): refused, never cut. */
        if (strlen(value) >= sizeof s->schedule || options_parse_schedule(value, NULL, 0) < 0) {
            return refuse(d, value, err);
        }
        break;
    case OPT_SIGNAL:
        if ((signo = options_parse_signal(value)) < 0) {
            return refuse(d, value, err);
        }
        break;
    case OPT_INT:
        if (value[0] < '0' || value[0] > '9' || value[strspn(value, "0123456789")] != '\0' ||
            strlen(value) > 9 || (size = strtoul(value, NULL, 10)) < d->min || size > d->max) {
            return refuse(d, value, err);
        }
        break;
    }
    if (s == NULL) {
        return 0;
    }
    switch (idx) {
    case OPT_IDX_PROFILE: s->profile = p; break;
    case OPT_IDX_SLOT_SIZE: s->slot_size = size; break;
    case OPT_IDX_RAM: s->ram = size; break;
    case OPT_IDX_LMA: s->large_memory_area = flag; break;
    case OPT_IDX_OUT: strcpy(s->out_dir, value); break;
    case OPT_IDX_QUIET: s->quiet = flag; break;
    case OPT_IDX_FOLLOW: s->follow = flag; break;
    case OPT_IDX_THRESHOLDS: s->thresholds = (int)choice; break;
    case OPT_IDX_STATE: s->state = (int)choice; break;
    case OPT_IDX_SCHEDULE: strcpy(s->schedule, value); break;
    case OPT_IDX_SESSION: strcpy(s->session, value); break;
    case OPT_IDX_HIBERNATE_SIGNAL: s->hibernate_signal = signo; break;
    case OPT_IDX_CLOSE_APPS: s->close_apps = flag; break;
    case OPT_IDX_STACK_DEPTH: s->stack_depth = (unsigned)size; break;
    case OPT_IDX_LOG_LIMIT: s->log_limit = size; break;
    default: break;
    }
    return 0;
}

static void apply_profile(const struct cebox_profile *p, struct cebox_settings *s)
{
    s->profile = p;
    s->slot_size = p->slot_size;
    s->ram = p->ram;
    s->large_memory_area = p->large_memory_area;
    s->thresholds = p->thresholds;
}

static void apply_defaults(struct cebox_settings *s)
{
    s->out_dir[0] = '\0';
    s->quiet = false;
    s->follow = true;
    s->state = MEMSTATE_NORMAL;
    s->schedule[0] = '\0';
    s->session[0] = '\0';
    s->hibernate_signal = 0;
    s->close_apps = false;
    s->stack_depth = 32;
    s->log_limit = 64 * MB;
}

int options_load(options_getter get, struct cebox_settings *out, char err[OPTIONS_ERR_MAX])
{
    err[0] = '\0';
    struct cebox_settings s;
    const char *name = get(table[OPT_IDX_PROFILE].var);
    apply_defaults(&s);
    apply_profile(DEFAULT_PROFILE, &s);
    if (name != NULL && apply(OPT_IDX_PROFILE, name, &s, err) != 0) {
        return -1;
    }
    apply_profile(s.profile, &s);
    for (size_t i = 0; i < OPT_IDX_COUNT; i++) {
        const char *v = (i == OPT_IDX_PROFILE) ? NULL : get(table[i].var);
        if (v != NULL && apply(i, v, &s, err) != 0) {
            return -1;
        }
    }
    *out = s;
    return 0;
}

int options_check(const char *var, const char *value, char err[OPTIONS_ERR_MAX])
{
    for (size_t i = 0; i < OPT_IDX_COUNT; i++) {
        if (strcmp(table[i].var, var) == 0) {
            return apply(i, value, NULL, err);
        }
    }
    snprintf(err, OPTIONS_ERR_MAX, "%s is not a cebox setting", var);
    return -1;
}

size_t options_count(void)
{
    return OPT_IDX_COUNT;
}

const char *options_var(size_t i)
{
    return i < OPT_IDX_COUNT ? table[i].var : NULL;
}

const char *options_flag(size_t i)
{
    return i < OPT_IDX_COUNT ? table[i].flag : NULL;
}

bool options_is_flag(size_t i)
{
    return i < OPT_IDX_COUNT && table[i].type == OPT_BOOL;
}

const char *options_help(size_t i)
{
    return i < OPT_IDX_COUNT ? table[i].help : NULL;
}

static void write_str(int fd, const char *s)
{
    os_write_all(fd, s, strlen(s));
}

static void format_value(size_t idx, const struct cebox_settings *s, char *buf, size_t len)
{
    switch (idx) {
    case OPT_IDX_PROFILE: snprintf(buf, len, "%s", s->profile->name); break;
    case OPT_IDX_SLOT_SIZE: format_size(buf, len, s->slot_size); break;
    case OPT_IDX_RAM: format_size(buf, len, s->ram); break;
    case OPT_IDX_LMA: snprintf(buf, len, "%s", s->large_memory_area ? "yes" : "no"); break;
    case OPT_IDX_OUT: snprintf(buf, len, "%s", s->out_dir[0] ? s->out_dir : "(none)"); break;
    case OPT_IDX_QUIET: snprintf(buf, len, "%s", s->quiet ? "yes" : "no"); break;
    case OPT_IDX_FOLLOW: snprintf(buf, len, "%s", s->follow ? "yes" : "no"); break;
    case OPT_IDX_THRESHOLDS: snprintf(buf, len, "%s", table_names[s->thresholds]); break;
    case OPT_IDX_STATE: snprintf(buf, len, "%s", state_names[s->state]); break;
    case OPT_IDX_SCHEDULE: snprintf(buf, len, "%s", s->schedule[0] ? s->schedule : "(none)"); break;
    case OPT_IDX_SESSION: snprintf(buf, len, "%s", s->session[0] ? s->session : "(none)"); break;
    case OPT_IDX_HIBERNATE_SIGNAL:
        if (s->hibernate_signal == 0) {
            snprintf(buf, len, "none");
        } else {
            snprintf(buf, len, "%d", s->hibernate_signal);
        }
        break;
    case OPT_IDX_CLOSE_APPS: snprintf(buf, len, "%s", s->close_apps ? "yes" : "no"); break;
    case OPT_IDX_STACK_DEPTH: snprintf(buf, len, "%u", s->stack_depth); break;
    case OPT_IDX_LOG_LIMIT: format_size(buf, len, s->log_limit); break;
    default: buf[0] = '\0'; break;
    }
}

void options_print(int fd, const struct cebox_settings *s, options_getter get)
{
    char line[512], value[300];
    for (size_t i = 0; i < OPT_IDX_COUNT; i++) {
        format_value(i, s, value, sizeof value);
        const char *source = get(table[i].var) != NULL          ? "set"
                             : (i == OPT_IDX_PROFILE || i >= OPT_IDX_OUT) ? "default"
                                                                          : "profile";
        snprintf(line, sizeof line, "%s=%s\t(%s)\n", table[i].var, value, source);
        write_str(fd, line);
    }
}

size_t options_format(const struct cebox_settings *s, options_getter get, char *buf, size_t len)
{
    char value[300];
    size_t used = 0;
    if (len == 0) {
        return 0;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < OPT_IDX_COUNT && used < len - 1; i++) {
        format_value(i, s, value, sizeof value);
        const char *source = get(table[i].var) != NULL          ? "set"
                             : (i == OPT_IDX_PROFILE || i >= OPT_IDX_OUT) ? "default"
                                                                          : "profile";
        int n = snprintf(buf + used, len - used, "%s=%s\t(%s)\n", table[i].var, value, source);
        used = n < 0 ? used : (used + (size_t)n < len ? used + (size_t)n : len - 1);
    }
    return used;
}

void options_print_markdown(int fd)
{
    char line[512], accepted[160];
    write_str(fd, "| variable | `cebox` option | default | accepted | meaning |\n");
    write_str(fd, "|---|---|---|---|---|\n");
    for (size_t i = 0; i < OPT_IDX_COUNT; i++) {
        describe_accepted(&table[i], accepted, sizeof accepted);
        snprintf(line, sizeof line, "| `%s` | `--%s` | %s | %s | %s |\n", table[i].var, table[i].flag,
                 table[i].default_text, accepted, table[i].help);
        write_str(fd, line);
    }
}
