/*
 * cebox.c - the command-line tool.
 *
 * Owns: command-line parsing.  Every setting option maps one to one onto a
 * row of the options table (src/options.c): `--slot-size 16M` is checked by
 * the same parser as CEBOX_SLOT_SIZE=16M and then exported as that variable,
 * so the tool and the library can never disagree about a value.
 *
 * Commands:
 *   cebox run [OPTIONS] [--] PROGRAM [ARGS]  run a program inside the box
 *   cebox settings [OPTIONS] [--markdown]   effective settings
 *   cebox demo [OPTIONS]                    the bundled example
 *   cebox stress [OPTIONS] [--] PROGRAM     a fault-injection campaign (stress.c)
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "config.h"
#include "memstate.h"
#include "options.h"
#include "ram.h"
#include "report/report.h"
#include "findsession.h"
#include "fit.h"
#include "livemap.h"
#include "shell.h"
#include "stress.h"

#define EXIT_USAGE 2

static const char *env_get(const char *name)
{
    return getenv(name);
}

static void print_settings_options(FILE *f)
{
    fprintf(f, "Options (each sets the CEBOX_ variable of the same name):\n");
    for (size_t i = 0; i < options_count(); i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "%s%s", options_flag(i), options_is_flag(i) ? "" : " VALUE");
        fprintf(f, "  --%-24s %s (%s)\n", flag, options_help(i), options_var(i));
    }
    fprintf(f, "  (yes/no settings: --NAME for yes, --no-NAME for no, --NAME=VALUE)\n");
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: cebox COMMAND [OPTIONS]\n"
            "Run code inside an emulated Windows CE process (32 MB slot, 64 KB blocks).\n\n"
            "Commands:\n"
            "  run [OPTIONS] [--] PROGRAM [ARGS...]\n"
            "             run PROGRAM with its malloc and mmap served by the emulated CE process;\n"
            "             also: --error-exitcode N (exit with N when, with --leaks, some process\n"
            "             lost definitely or indirectly lost bytes no suppression matched) and\n"
            "             --suppressions FILE (leak:PATTERN lines; repeatable)\n"
            "  state SESSION|PID STATE\n"
            "             force the memory state of a running session: normal (free RAM\n"
            "             decides), limited, low or critical\n"
            "  map SESSION|PID\n"
            "             the slot map of each boxed process of a running session, now\n"
            "  status SESSION|PID\n"
            "             state, free RAM, slot use, largest free run and slot map, now\n"
            "  fit [OPTIONS] [--format text|json] [--] PROGRAM [ARGS...]\n"
            "             the smallest slot and device RAM PROGRAM still runs the same in\n"
            "  stress [OPTIONS] [--strategy stacks|nth|states] [-j N] [--timeout S] [--] PROGRAM [ARGS...]\n"
            "             fail each allocation stack (or call, or memory state) of PROGRAM in turn,\n"
            "             one run each, and group the crashes with the command that replays each\n"
            "  report [--format text|json|folded|html] [--folded-of WHAT] [--pid N] [--failed-only] [--suppressions FILE]... DIR|LOGFILE...\n"
            "             the failed allocations and leaks of a run recorded with --out DIR, by call stack\n"
            "  demo       fill the slot with 512 one-page VirtualAlloc calls and show it\n"
            "  settings   print the settings in force (--markdown: the option table)\n"
            "'cebox COMMAND --help' describes one command.\n\n");
    print_settings_options(f);
    fprintf(f, "\n  --help, --version\n");
}

/* The help of one command: what it does, the options that apply, an example. */
struct command_help {
    const char *name, *synopsis, *text;
    bool settings; /* the options of the table apply */
    const char *extra, *example;
};

static const struct command_help command_helps[] = {
    {"run", "run [OPTIONS] [--] PROGRAM [ARGS...]",
     "Runs PROGRAM with its malloc and mmap families served by an emulated CE process; the\n"
     "programs it starts get boxes of their own (see --follow, --only) and share the device\n"
     "RAM of the run.  At each process's exit, a summary on stderr (see --summaries).\n",
     true,
     "  -v, --verbose             print the session file (for cebox state) when the run starts\n",
     "  cebox run --ram 16M --out /tmp/run1 ./myprog --its-args\n"
     "  cebox run --state-schedule 2s:low,10s:normal ./myprog\n"},
    {"fit", "fit [OPTIONS] [--format text|json] [--] PROGRAM [ARGS...]",
     "Finds by bisection the smallest slot (in 64 KB blocks) and, separately, the smallest device\n"
     "RAM (in 4 KB pages) at which PROGRAM still exits with the status it has with the settings in\n"
     "force, and prints both with their margin to 32 MB.  Each trial is a cebox run of PROGRAM\n"
     "(its output discarded, no --out); the program should behave the same at every run.\n",
     true, "  --format text|json        json: {\"slot_size\": BYTES, \"ram\": BYTES, \"status\": N}\n",
     "  cebox fit -- ./myprog --its-args\n"},
    {"stress", "stress [OPTIONS] [--] PROGRAM [ARGS...]",
     "A fault-injection campaign.  A recording run (nothing failed; --record-stacks) finds the\n"
     "distinct call stacks of PROGRAM's allocation calls; then one run per stack fails the first\n"
     "call with that stack (--fail-stack HASH --fail-nth 1), in parallel.  Each run is ok, handled\n"
     "(another exit status, or output on stderr the recording run did not give), crash (a signal),\n"
     "hang (killed at --timeout with its process group) or crash inside cebox.  Crashes are\n"
     "grouped by the crash stack's innermost frames of the program; each group gets both stacks,\n"
     "symbolized, and the command that replays it, which is run once more to confirm that the\n"
     "single injected failure reproduces the crash.  The setting options apply to every run\n"
     "(--fail-in, --fail-size-min, ... narrow the campaign).  Exit status: 0 when no run crashed\n"
     "or hung, 1 when some did, 2 for bad usage.\n",
     true,
     "  --strategy stacks|nth|states  stacks (default): one run per distinct allocation stack;\n"
     "                            nth: --fail-nth 1, 2, ... up to the calls of the recording run;\n"
     "                            states: one run per forced state (limited, low, critical)\n"
     "  -j, --jobs N              parallel runs (default: the number of CPUs)\n"
     "  --timeout SECONDS         a run still going after this is a hang (default 10)\n"
     "  --input FILE              every run's standard input (default /dev/null)\n"
     "  --format text|json        the final table, or one JSON document on stdout\n"
     "  --json FILE               the JSON document into FILE as well\n"
     "  --out DIR                 keep each run's logs, stdout and stderr in DIR/run-N\n"
     "                            (default: a directory in $TMPDIR, removed at the end)\n"
     "  --replay ID               only the run ID (stack:HASH, nth:N, state:NAME) of a campaign\n",
     "  cebox stress -j 2 --timeout 5 -- ./myprog --its-args\n"
     "  cebox stress --strategy nth --format json -- ./myprog < /dev/null\n"},
    {"state", "state SESSION-FILE|PID normal|limited|low|critical",
     "Forces the memory state of a running session; PID is the pid of cebox run or of any\n"
     "program it boxes.  normal lets free RAM decide again.\n",
     false, NULL, "  cebox state 4242 low\n"},
    {"map", "map SESSION-FILE|PID",
     "Prints the slot map of each boxed process of a running session as it is now, one character\n"
     "per 64 KB block (a capital starts each reservation).  PID is a boxed process (that process\n"
     "only) or cebox run (all of its processes).  Read from the session's shared memory: the\n"
     "program runs no thread and takes no signal for it.\n",
     false, NULL, "  cebox map 4242\n"},
    {"status", "status SESSION-FILE|PID",
     "The live view of a running session: its memory state and free device RAM, then per boxed\n"
     "process the slot's reserved blocks (and their peak), the largest free run (and the smallest\n"
     "so far), committed bytes, the process heap's live and committed bytes and the slot map now.\n"
     "PID as for cebox map.\n",
     false, NULL, "  cebox status 4242\n"},
    {"settings", "settings [OPTIONS] [--markdown]",
     "Prints the settings in force (from the options given and the CEBOX_ variables), each with\n"
     "its source: default, profile or set.\n",
     true, "  --markdown                the option table, in Markdown\n", "  cebox settings --profile ce3\n"},
    {"demo", "demo [OPTIONS]",
     "Calls VirtualAlloc(NULL, 4096, MEM_RESERVE|MEM_COMMIT, PAGE_READWRITE) 512 times and shows\n"
     "that each page costs a 64 KB block: the slot runs out after 511 calls.\n",
     true, NULL, "  cebox demo --slot-size 4M\n"},
};

/* Prints the help of `cmd` on stdout (`cebox report --help` is report.c's). */
static void command_help(const char *cmd)
{
    for (size_t i = 0; i < sizeof command_helps / sizeof command_helps[0]; i++) {
        const struct command_help *h = &command_helps[i];
        if (strcmp(h->name, cmd) != 0) {
            continue;
        }
        printf("Usage: cebox %s\n%s\n", h->synopsis, h->text);
        if (h->extra != NULL) {
            printf("Options of %s:\n%s  -h, --help                this help\n\n", h->name, h->extra);
        } else {
            printf("Options of %s:\n  -h, --help                this help\n\n", h->name);
        }
        if (h->settings) {
            print_settings_options(stdout);
            printf("\n");
        }
        printf("Example:\n%s", h->example);
        return;
    }
    usage(stdout);
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* Applies "--flag VALUE" / "--flag=VALUE" (and, for yes/no settings,
 * "--flag" / "--no-flag") at argv[*i]; returns 0, 1 when the argument is not
 * a setting, -1 after printing an error. */
static int take_setting(int argc, char **argv, int *i)
{
    static uint64_t given_lists; /* bit k: list option k was given on this command line */
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        return 1;
    }
    for (size_t k = 0; k < options_count(); k++) {
        const char *flag = options_flag(k), *name = arg + 2, *value = NULL;
        size_t n = strlen(flag);
        bool negated = options_is_flag(k) && strncmp(name, "no-", 3) == 0;
        if (negated) {
            name += 3;
        }
        if (strncmp(name, flag, n) != 0 || (name[n] != '\0' && name[n] != '=')) {
            continue;
        }
        if (name[n] == '=') {
            value = name + n + 1;
            if (negated) {
                fprintf(stderr, "cebox: --no-%s takes no value\n", flag);
                return -1;
            }
        } else if (options_is_flag(k)) {
            value = negated ? "no" : "yes";
        } else if (*i + 1 < argc) {
            value = argv[++*i];
        } else {
            fprintf(stderr, "cebox: --%s needs a value\n", flag);
            return -1;
        }
        char err[OPTIONS_ERR_MAX], *joined = NULL;
        if (options_is_list(k) && (given_lists >> k & 1u) != 0) {
            /* A repeated list option adds to the values given before it. */
            const char *before = getenv(options_var(k));
            size_t len = strlen(before) + strlen(value) + 2;
            joined = malloc(len);
            if (joined == NULL) {
                fprintf(stderr, "cebox: out of memory\n");
                return -1;
            }
            snprintf(joined, len, "%s:%s", before, value);
            value = joined;
        }
        int checked = options_check(options_var(k), value, err);
        if (checked == 0) {
            setenv(options_var(k), value, 1);
            given_lists |= (uint64_t)options_is_list(k) << k;
        } else {
            fprintf(stderr, "cebox: --%s: %s\n", flag, err);
        }
        free(joined);
        return checked;
    }
    return 1;
}

/* An option the command does not take: one line, and the usage status. */
static int unknown_option(const char *cmd, const char *arg)
{
    fprintf(stderr, "cebox: unknown option '%s' for '%s'; see 'cebox %s --help'\n", arg, cmd, cmd);
    return EXIT_USAGE;
}

/* Parses the settings options; `markdown` receives --markdown.  Returns 0,
 * 1 after printing the help, -1 after printing an error. */
static int parse_settings(int argc, char **argv, bool *markdown)
{
    for (int i = 2; i < argc; i++) {
        int r = take_setting(argc, argv, &i);
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            continue;
        }
        if (is_help(argv[i])) {
            command_help(argv[1]);
            return 1;
        }
        if (markdown != NULL && strcmp(argv[i], "--markdown") == 0) {
            *markdown = true;
            continue;
        }
        unknown_option(argv[1], argv[i]);
        return -1;
    }
    return 0;
}

/* Refuses bad CEBOX_* values already in the environment with the same line
 * the library would print, before anything runs. */
static int check_environment(struct cebox_settings *s)
{
    char err[OPTIONS_ERR_MAX];
    if (options_load(env_get, s, err) != 0) {
        fprintf(stderr, "cebox: %s\n", err);
        return -1;
    }
    return 0;
}

static int cmd_settings(int argc, char **argv)
{
    bool markdown = false;
    struct cebox_settings s;
    int parsed = parse_settings(argc, argv, &markdown);
    if (parsed != 0 || check_environment(&s) != 0) {
        return parsed > 0 ? 0 : EXIT_USAGE;
    }
    fflush(stdout);
    if (markdown) {
        options_print_markdown(1);
    } else {
        options_print(1, &s);
    }
    return 0;
}

static void print_map(void)
{
    char map[65536];
    size_t n = cebox_slot_map(map, sizeof map);
    for (size_t i = 0; i < n; i += 64) {
        printf("  %08zx  %.*s\n", i * 0x10000, (int)(n - i < 64 ? n - i : 64), map + i);
    }
}

/* The seeds' loop: 512 one-page reserve+commit calls, each costing a block. */
static int cmd_demo(int argc, char **argv)
{
    struct cebox_settings s;
    int parsed = parse_settings(argc, argv, NULL);
    if (parsed != 0 || check_environment(&s) != 0) {
        return parsed > 0 ? 0 : EXIT_USAGE;
    }
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    printf("cebox %s: profile %s, slot of %zu KB (%u blocks of %zu KB) at %#lx\n",
           cebox_version(), s.profile->name, info.size / 1024, info.blocks, info.granularity / 1024,
           (unsigned long)info.base);
    printf("VirtualAlloc(NULL, 4096, MEM_RESERVE|MEM_COMMIT, PAGE_READWRITE) x 512:\n");
    int ok = 0;
    DWORD err = 0;
    for (int i = 0; i < 512; i++) {
        char *p = VirtualAlloc(NULL, 4096, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        if (p == NULL) {
            err = GetLastError();
            break;
        }
        p[0] = (char)i; /* the page is really there */
        ok++;
    }
    cebox_slot_info(&info);
    printf("  %d calls succeeded, ", ok);
    if (err != 0) {
        printf("call %d failed with error %lu (%s)\n", ok + 1, (unsigned long)err,
               err == ERROR_NOT_ENOUGH_MEMORY ? "ERROR_NOT_ENOUGH_MEMORY" : "unexpected");
    } else {
        printf("none failed\n");
    }
    printf("  %u of %u blocks reserved for %zu KB committed: each 4 KB page cost a 64 KB block\n",
           info.reserved_blocks, info.blocks, info.committed_bytes / 1024);
    printf("slot map ('-' block 0, 'C' committed, '.' free):\n");
    print_map();
    return 0;
}

/* ---- cebox run ---- */

/* The preload library: next to this binary in a build tree, else installed. */
static int find_preload(char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            int n2 = snprintf(out, len, "%.*s/.libs/cebox-preload.so", (int)(len - 32), self);
            if (n2 > 0 && (size_t)n2 < len && access(out, R_OK) == 0) {
                return 0;
            }
        }
    }
    snprintf(out, len, "%s/cebox-preload.so", PKGLIBDIR);
    return access(out, R_OK) == 0 ? 0 : -1;
}

/* Finds PROGRAM like the shell does.  Returns 0, or 127 (not found) or 126
 * (found, not executable) after printing why. */
static int resolve_program(const char *prog, char *out, size_t len)
{
    if (strchr(prog, '/') != NULL) {
        snprintf(out, len, "%s", prog);
    } else {
        const char *path = getenv("PATH");
        bool found = false;
        for (const char *p = path ? path : "/usr/bin:/bin"; !found && *p != '\0';) {
            size_t dlen = strcspn(p, ":");
            snprintf(out, len, "%.*s/%s", (int)(dlen ? dlen : 1), dlen ? p : ".", prog);
            found = access(out, F_OK) == 0;
            p += dlen + (p[dlen] == ':');
        }
        if (!found) {
            fprintf(stderr, "cebox: %s: command not found\n", prog);
            return 127;
        }
    }
    struct stat st;
    if (stat(out, &st) != 0) {
        fprintf(stderr, "cebox: %s: %s\n", prog, strerror(errno));
        return 127;
    }
    if (!S_ISREG(st.st_mode) || access(out, X_OK) != 0) {
        fprintf(stderr, "cebox: %s: not an executable file\n", prog);
        return 126;
    }
    return 0;
}

enum escape { ESCAPE_NONE, ESCAPE_STATIC, ESCAPE_SETUID };

/* Programs the dynamic loader will not preload into: statically linked ones
 * (no PT_INTERP) and set-user/group-ID ones run by someone else. */
static enum escape escapes_preload(const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) == 0 && (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
                                 ((st.st_mode & S_ISGID) && st.st_gid != getegid()))) {
        return ESCAPE_SETUID;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return ESCAPE_NONE; /* exec will say why */
    }
    unsigned char head[256];
    ssize_t n = read(fd, head, sizeof head - 1);
    enum escape result = ESCAPE_NONE;
    if (n > 2 && head[0] == '#' && head[1] == '!' && depth == 0) {
        /* A script: what matters is its interpreter. */
        head[n] = '\0';
        char *interp = (char *)head + 2 + strspn((char *)head + 2, " \t");
        interp[strcspn(interp, " \t\n")] = '\0';
        result = escapes_preload(interp, 1);
    } else if (n >= (ssize_t)sizeof(Elf64_Ehdr) && memcmp(head, ELFMAG, SELFMAG) == 0 &&
               head[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        memcpy(&eh, head, sizeof eh);
        bool interp = false;
        for (int i = 0; i < eh.e_phnum && !interp; i++) {
            Elf64_Phdr ph;
            if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (size_t)i * eh.e_phentsize)) != sizeof ph) {
                break;
            }
            interp = ph.p_type == PT_INTERP;
        }
        result = interp ? ESCAPE_NONE : ESCAPE_STATIC;
    }
    close(fd);
    return result;
}

static void export_preload(const char *lib)
{
    const char *old = getenv("LD_PRELOAD");
    if (old == NULL || old[0] == '\0') {
        setenv("LD_PRELOAD", lib, 1);
        return;
    }
    size_t len = strlen(lib) + strlen(old) + 2;
    char *both = malloc(len);
    if (both == NULL) {
        setenv("LD_PRELOAD", lib, 1);
        return;
    }
    snprintf(both, len, "%s:%s", lib, old);
    setenv("LD_PRELOAD", both, 1);
    free(both);
}

static pid_t child_pid;

static void forward_signal(int sig)
{
    if (child_pid > 0) {
        kill(child_pid, sig);
    }
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Makes the device the run's processes share: a file in /dev/shm (or
 * TMPDIR), mode 0600, named in CEBOX_SESSION for them and removed by
 * cmd_run at the end.  The file stays open on a high descriptor, named in
 * CEBOX_SESSION_FD and inherited by the program: a process that drops root
 * before it execs joins through it, and the file is never opened to other
 * users. */
static int start_session(struct cebox_settings *s)
{
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    unsigned salt = (unsigned)now_seconds() ^ ((unsigned)getpid() << 8);
    for (int attempt = 0; attempt < 16; attempt++, salt = salt * 1103515245u + 12345u) {
        snprintf(s->session, sizeof s->session, "%s/cebox-session-%d-%08x", dir, (int)getpid(), salt);
        bool pinned = s->state != MEMSTATE_NORMAL && s->state_by == RAM_FORCE_PIN;
        enum memstate forced = pinned ? (enum memstate)s->state : MEMSTATE_COUNT;
        int err = ram_session_create(s->session, s->ram / s->profile->page_size, s->profile->page_size,
                                     (enum memstate_table_id)s->thresholds, forced, &s->session_fd);
        if (err == 0 && s->state_by == RAM_FORCE_BALLAST) {
            /* Before the program starts: it never sees the device otherwise. */
            err = ram_session_force_by(s->session, RAM_FORCE_BALLAST, (enum memstate)s->state);
            if (err != 0) {
                unlink(s->session);
                if (s->session_fd >= 0) {
                    close(s->session_fd);
                }
                err = err == EEXIST ? EIO : err; /* not a name to try again */
            }
        }
        if (err == 0) {
            setenv("CEBOX_SESSION", s->session, 1);
            char fd[16];
            snprintf(fd, sizeof fd, "%d", s->session_fd);
            if (s->session_fd >= 0) {
                setenv("CEBOX_SESSION_FD", fd, 1);
            } else {
                unsetenv("CEBOX_SESSION_FD");
            }
            return 0;
        }
        if (err != EEXIST) {
            fprintf(stderr, "cebox: cannot create the session file %s: %s\n", s->session, strerror(err));
            return -1;
        }
    }
    fprintf(stderr, "cebox: cannot create a session file in %s\n", dir);
    return -1;
}

/* A copy of cebox run's stderr on a high descriptor (CEBOX_STDERR_FD, 900
 * or above, like the session's), inherited by the program: its exit
 * summary still reaches the terminal when it closes its descriptor 2
 * before it exits, as coreutils do.  None when cebox run has no stderr, or
 * the descriptor limit is too low for one out of the program's way (a low
 * number could be closed and reused by the program for a file of its own,
 * which the summary would then be written into). */
static void keep_stderr(struct cebox_settings *s)
{
    s->stderr_fd = fcntl(2, F_DUPFD_CLOEXEC, RAM_SESSION_FD_MIN);
    if (s->stderr_fd < 0) {
        unsetenv("CEBOX_STDERR_FD");
        return;
    }
    char fd[16];
    snprintf(fd, sizeof fd, "%d", s->stderr_fd);
    setenv("CEBOX_STDERR_FD", fd, 1);
}

/* Runs the program and returns its status the way a shell reports it. */
static int run_and_wait(const char *path, char **args, const struct cebox_settings *s)
{
    /* --no-follow: the boxed program tells, through a pipe, whether it
     * exec'd another program (see tools/execwatch.c).  Not with --only: the
     * first program may be out of the box, and would not take the pipe. */
    struct execwatch watch;
    bool watching = !s->follow && s->only[0] == '\0' && execwatch_open(&watch) == 0;
    struct sigaction ignore = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward_signal};
    struct sigaction old_int, old_quit;
    sigaction(SIGINT, &ignore, &old_int); /* the terminal signals the program */
    sigaction(SIGQUIT, &ignore, &old_quit);
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
    int log_fd = shell_open_log(s); /* its first line before the program runs */
    fflush(NULL);
    child_pid = fork();
    if (child_pid < 0) {
        fprintf(stderr, "cebox: fork: %s\n", strerror(errno));
        if (log_fd >= 0) {
            close(log_fd);
        }
        return 126;
    }
    if (child_pid == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        if (s->session_fd >= 0) {
            fcntl(s->session_fd, F_SETFD, 0); /* the program inherits the session */
        }
        if (s->stderr_fd >= 0) {
            fcntl(s->stderr_fd, F_SETFD, 0);
        }
        if (watching) {
            execwatch_child(&watch);
        }
        execv(path, args);
        fprintf(stderr, "cebox: cannot execute %s: %s\n", path, strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    if (watching) {
        execwatch_parent(&watch, child_pid, path);
    }
    int status;
    int waited = shell_wait(child_pid, s, log_fd, watching ? &watch : NULL, &status);
    if (watching) {
        execwatch_report(&watch, s->quiet);
    }
    if (waited != 0) {
        fprintf(stderr, "cebox: waitpid: %s\n", strerror(errno));
        return 126;
    }
    if (WIFSIGNALED(status)) {
        if (!s->quiet) {
            fprintf(stderr, "cebox: %s was killed by signal %d (%s)\n", path, WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
        }
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

/* The --out directory: made when missing, refused (one line, before
 * anything runs) when it is no directory or cebox cannot create files in it:
 * the program would run with no summaries and no logs.  A file is created
 * and removed to learn it, since permission bits do not tell (root, read-only
 * mounts, sysfs). */
static int prepare_out_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cebox: --out %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    int err = stat(dir, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (err != 0) {
        fprintf(stderr, "cebox: --out %s: %s\n", dir, strerror(err));
        return -1;
    }
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/.cebox-probe-%d", dir, (int)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "cebox: --out %s: %s\n", dir, strerror(errno));
        return -1;
    }
    close(fd);
    unlink(probe);
    return 0;
}

/* --error-exitcode and --suppressions: options of `cebox run` only, read
 * at its end (they are no setting of the target). */
struct leak_check {
    int exitcode; /* -1: none */
    const char **suppressions;
    size_t n;
    char tmpdir[sizeof ((struct cebox_settings *)0)->out_dir]; /* the logs' directory when --out was not given */
};

/* Takes "--error-exitcode N" or "--suppressions FILE" at argv[*i]: 0, 1
 * when it is neither, -1 after printing an error. */
static int take_leak_option(int argc, char **argv, int *i, struct leak_check *lc)
{
    const char *arg = argv[*i];
    bool code = strcmp(arg, "--error-exitcode") == 0, supp = strcmp(arg, "--suppressions") == 0;
    if (!code && !supp) {
        return 1;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "cebox: %s needs a value\n", arg);
        return -1;
    }
    const char *v = argv[++*i];
    if (code) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || n < 1 || n > 255) {
            fprintf(stderr, "cebox: --error-exitcode '%s': a status from 1 to 255\n", v);
            return -1;
        }
        lc->exitcode = (int)n;
        return 0;
    }
    const char **grown = realloc(lc->suppressions, (lc->n + 1) * sizeof *grown);
    if (grown == NULL) {
        fprintf(stderr, "cebox: out of memory\n");
        return -1;
    }
    lc->suppressions = grown;
    lc->suppressions[lc->n++] = v;
    return 0;
}

/* With --error-exitcode and no --out, the logs go to a directory of
 * their own, removed at the end. */
static int leak_check_prepare(struct leak_check *lc, struct cebox_settings *s)
{
    if (lc->exitcode < 0 || s->out_dir[0] != '\0') {
        return 0;
    }
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] != '/') {
        base = "/tmp";
    }
    int n = snprintf(lc->tmpdir, sizeof lc->tmpdir, "%s/cebox-leaks-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof lc->tmpdir) {
        errno = ENAMETOOLONG;
    }
    if (n < 0 || (size_t)n >= sizeof lc->tmpdir || mkdtemp(lc->tmpdir) == NULL) {
        lc->tmpdir[0] = '\0'; /* nothing of ours to remove at the end */
        fprintf(stderr, "cebox: --error-exitcode: cannot make a directory for the logs: %s\n", strerror(errno));
        return -1;
    }
    setenv("CEBOX_OUT", lc->tmpdir, 1);
    snprintf(s->out_dir, sizeof s->out_dir, "%s", lc->tmpdir);
    return 0;
}

static void remove_tmpdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* The run's status: --error-exitcode's when some process lost bytes. */
static int leak_check_finish(struct leak_check *lc, const char *out_dir, int status)
{
    if (lc->exitcode >= 0) {
        int found = report_leaks_found(out_dir, lc->suppressions, lc->n);
        status = found > 0 ? lc->exitcode : status;
    }
    if (lc->tmpdir[0] != '\0') {
        remove_tmpdir(lc->tmpdir);
    }
    free(lc->suppressions);
    return status;
}

/* The end of a command's options: PROGRAM must follow, and the settings
 * (the options given and the CEBOX_* variables) must hold.  0, or
 * EXIT_USAGE after a one-line message. */
static int program_and_settings(int argc, int i, const char *cmd, struct cebox_settings *s)
{
    if (i >= argc) {
        fprintf(stderr, "cebox: %s: no program given; usage: cebox %s [OPTIONS] [--] PROGRAM [ARGS...]\n", cmd,
                cmd);
        return EXIT_USAGE;
    }
    return check_environment(s) != 0 ? EXIT_USAGE : 0;
}

/* Where a command's options end: at "--" (skipped) or at the first word
 * that is no option, PROGRAM.  Returns true there, with *i on PROGRAM. */
static bool options_end(char **argv, int *i)
{
    if (strcmp(argv[*i], "--") == 0) {
        ++*i;
        return true;
    }
    return argv[*i][0] != '-';
}

/* The descriptors cebox run hands the program (the session's, its stderr's
 * copy, the exec watch's) are its own to set: one given on its command
 * line would be replaced without a word.  Returns the option's length, or
 * 0 when arg is none of them. */
static size_t run_own_option(const char *arg)
{
    static const char *const own[] = {"--session-fd", "--stderr-fd", "--watch-fd"};
    for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) {
        size_t n = strlen(own[k]);
        if (strncmp(arg, own[k], n) == 0 && (arg[n] == '\0' || arg[n] == '=')) {
            return n;
        }
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    int i = 2;
    bool verbose = false;
    struct leak_check lc = {.exitcode = -1};
    for (; i < argc; i++) {
        if (options_end(argv, &i)) {
            break;
        }
        if (is_help(argv[i])) {
            command_help("run");
            return 0;
        }
        if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
            continue;
        }
        size_t own = run_own_option(argv[i]);
        if (own != 0) {
            fprintf(stderr, "cebox: run: %.*s is not an option of cebox run: it sets that descriptor itself for "
                            "the programs it starts\n",
                    (int)own, argv[i]);
            return EXIT_USAGE;
        }
        int r = take_setting(argc, argv, &i);
        if (r > 0) {
            r = take_leak_option(argc, argv, &i, &lc);
        }
        if (r < 0) {
            return EXIT_USAGE;
        }
        if (r > 0) {
            return unknown_option("run", argv[i]);
        }
    }
    struct cebox_settings s;
    if (program_and_settings(argc, i, "run", &s) != 0) {
        return EXIT_USAGE;
    }
    if (lc.exitcode >= 0 && !s.leaks) {
        fprintf(stderr, "cebox: --error-exitcode needs --leaks\n");
        return EXIT_USAGE;
    }
    if (s.out_dir[0] != '\0' && prepare_out_dir(s.out_dir) != 0) {
        return EXIT_USAGE;
    }
    char path[PATH_MAX], lib[PATH_MAX];
    int r = resolve_program(argv[i], path, sizeof path);
    if (r != 0) {
        return r;
    }
    switch (escapes_preload(path, 0)) {
    case ESCAPE_STATIC:
        fprintf(stderr, "cebox: %s is statically linked: the loader cannot preload cebox into it, "
                        "so it cannot run in the box\n", path);
        return 126;
    case ESCAPE_SETUID:
        fprintf(stderr, "cebox: %s is set-user/group-ID: the loader ignores LD_PRELOAD for it, "
                        "so it cannot run in the box\n", path);
        return 126;
    case ESCAPE_NONE:
        break;
    }
    if (find_preload(lib, sizeof lib) != 0) {
        fprintf(stderr, "cebox: the preload library is missing (%s); reinstall cebox\n", lib);
        return 126;
    }
    if (s.session[0] != '\0') {
        fprintf(stderr, "cebox: CEBOX_SESSION is set (%s): cebox run makes its own session; "
                        "unset it to run a program in a new box\n", s.session);
        return EXIT_USAGE;
    }
    if (leak_check_prepare(&lc, &s) != 0) {
        return 126;
    }
    export_preload(lib);
    if (start_session(&s) != 0) {
        return 126;
    }
    keep_stderr(&s);
    if (verbose) {
        fprintf(stderr, "cebox: session %s (cebox state %d STATE forces its memory state)\n", s.session,
                (int)getpid());
    }
    int status = run_and_wait(path, argv + i, &s);
    unlink(s.session);
    if (s.session_fd >= 0) {
        close(s.session_fd);
    }
    if (s.stderr_fd >= 0) {
        close(s.stderr_fd);
    }
    return leak_check_finish(&lc, s.out_dir, status);
}

/* ---- cebox fit ---- */

static int cmd_fit(int argc, char **argv)
{
    int i = 2;
    bool json = false;
    for (; i < argc; i++) {
        if (options_end(argv, &i)) {
            break;
        }
        if (is_help(argv[i])) {
            command_help("fit");
            return 0;
        }
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc &&
            (strcmp(argv[i + 1], "json") == 0 || strcmp(argv[i + 1], "text") == 0)) {
            json = strcmp(argv[++i], "json") == 0;
            continue;
        }
        int r = take_setting(argc, argv, &i);
        if (r < 0) {
            return EXIT_USAGE;
        }
        if (r > 0) {
            return unknown_option("fit", argv[i]);
        }
    }
    struct cebox_settings s;
    if (program_and_settings(argc, i, "fit", &s) != 0) {
        return EXIT_USAGE;
    }
    return fit_main(&s, argv + i, json);
}

/* ---- cebox stress ---- */

static int cmd_stress(int argc, char **argv)
{
    struct stress_options o;
    stress_defaults(&o);
    const char **settings = calloc((size_t)argc + 1, sizeof *settings); /* for the replay lines */
    if (settings == NULL) {
        return EXIT_USAGE;
    }
    size_t nsettings = 0;
    int i = 2, status = EXIT_USAGE;
    for (; i < argc; i++) {
        if (options_end(argv, &i)) {
            break;
        }
        if (is_help(argv[i])) {
            command_help("stress");
            free(settings);
            return 0;
        }
        int first = i, r = stress_take_option(argc, argv, &i, &o);
        if (r > 0) {
            r = take_setting(argc, argv, &i);
            for (int k = first; r == 0 && k <= i; k++) {
                settings[nsettings++] = argv[k];
            }
        }
        if (r != 0) {
            if (r > 0) {
                unknown_option("stress", argv[i]);
            }
            free(settings);
            return EXIT_USAGE;
        }
    }
    struct cebox_settings s;
    if (program_and_settings(argc, i, "stress", &s) == 0) {
        o.settings = settings;
        o.has_limited = memstate_table_by_id((enum memstate_table_id)s.thresholds)->limited != 0;
        status = stress_main(&o, argv + i);
    }
    free(settings);
    return status;
}

/* ---- cebox state ---- */

static int cmd_state(int argc, char **argv)
{
    if (argc == 3 && is_help(argv[2])) {
        command_help("state");
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "cebox: usage: cebox state SESSION-FILE|PID normal|limited|low|critical\n");
        return EXIT_USAGE;
    }
    enum memstate st = memstate_parse(argv[3]);
    if (st == MEMSTATE_COUNT) {
        fprintf(stderr, "cebox: state '%s' is not valid; accepted: normal, limited, low or critical\n", argv[3]);
        return EXIT_USAGE;
    }
    char session[PATH_MAX];
    if (findsession_resolve(argv[2], session, sizeof session, NULL) != 0) {
        return 1;
    }
    const char *target = session;
    int err = ram_session_force(target, st);
    if (err != 0) {
        fprintf(stderr, "cebox: %s: %s\n", target,
                err == EINVAL    ? "not a cebox session file"
                : err == ENOTSUP ? "state limited is not valid: the session's table has no limited level; "
                                   "accepted: normal, low or critical"
                                 : strerror(err));
        return err == ENOTSUP ? EXIT_USAGE : 1;
    }
    return 0;
}

/* cebox map and cebox status: livemap.c. */
static int cmd_live(int argc, char **argv, bool status)
{
    if (argc == 3 && is_help(argv[2])) {
        command_help(argv[1]);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "cebox: usage: cebox %s SESSION-FILE|PID\n", argv[1]);
        return EXIT_USAGE;
    }
    return livemap_main(argv[2], status);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("cebox %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "settings") == 0) {
        return cmd_settings(argc, argv);
    }
    if (strcmp(cmd, "demo") == 0) {
        return cmd_demo(argc, argv);
    }
    if (strcmp(cmd, "run") == 0) {
        return cmd_run(argc, argv);
    }
    if (strcmp(cmd, "state") == 0) {
        return cmd_state(argc, argv);
    }
    if (strcmp(cmd, "map") == 0 || strcmp(cmd, "status") == 0) {
        return cmd_live(argc, argv, strcmp(cmd, "status") == 0);
    }
    if (strcmp(cmd, "report") == 0) {
        return report_main(argc, argv);
    }
    if (strcmp(cmd, "fit") == 0) {
        return cmd_fit(argc, argv);
    }
    if (strcmp(cmd, "stress") == 0) {
        return cmd_stress(argc, argv);
    }
    fprintf(stderr, "cebox: unknown command '%s'; accepted: run, state, demo, settings, report, fit, stress, map, status, --help, --version\n", cmd);
    return EXIT_USAGE;
}
