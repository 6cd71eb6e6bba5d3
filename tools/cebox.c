/*
 * cebox.c - the command-line tool.
 *
 * Owns: command-line parsing.  Every setting option maps one to one onto a
 * row of the options table (src/options.c): `--slot-size 16M` is checked by
 * the same parser as CEBOX_SLOT_SIZE=16M and then exported as that variable,
 * so the tool and the library can never disagree about a value.
 *
 * Commands:
 *   cebox settings [OPTIONS] [--markdown]   effective settings
 *   cebox demo [OPTIONS]                    the bundled example
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cebox.h"
#include "cebox/winmem.h"
#include "config.h"
#include "options.h"

#define EXIT_USAGE 2

static const char *env_get(const char *name)
{
    return getenv(name);
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: cebox COMMAND [OPTIONS]\n"
            "Run code inside an emulated Windows CE process (32 MB slot, 64 KB blocks).\n\n"
            "Commands:\n"
            "  demo       fill the slot with 512 one-page VirtualAlloc calls and show it\n"
            "  settings   print the settings in force (--markdown: the option table)\n\n"
            "Options (each sets the CEBOX_ variable of the same name):\n");
    for (size_t i = 0; i < options_count(); i++) {
        fprintf(f, "  --%-20s %s (%s)\n", options_flag(i), options_help(i), options_var(i));
    }
    fprintf(f, "\n  --help, --version\n");
}

/* Applies "--flag VALUE" / "--flag=VALUE" at argv[*i]; returns 0, 1 when the
 * argument is not a setting, -1 after printing an error. */
static int take_setting(int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        return 1;
    }
    for (size_t k = 0; k < options_count(); k++) {
        const char *flag = options_flag(k);
        size_t n = strlen(flag);
        if (strncmp(arg + 2, flag, n) != 0 || (arg[2 + n] != '\0' && arg[2 + n] != '=')) {
            continue;
        }
        const char *value = arg[2 + n] == '=' ? arg + 3 + n : NULL;
        if (value == NULL) {
            if (*i + 1 >= argc) {
                fprintf(stderr, "cebox: --%s needs a value\n", flag);
                return -1;
            }
            value = argv[++*i];
        }
        char err[OPTIONS_ERR_MAX];
        if (options_check(options_var(k), value, err) != 0) {
            fprintf(stderr, "cebox: --%s: %s\n", flag, err);
            return -1;
        }
        setenv(options_var(k), value, 1);
        return 0;
    }
    return 1;
}

/* Parses the settings options; `extra` receives --markdown. */
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
        if (markdown != NULL && strcmp(argv[i], "--markdown") == 0) {
            *markdown = true;
            continue;
        }
        fprintf(stderr, "cebox: unknown option '%s' for '%s'; see 'cebox --help'\n", argv[i], argv[1]);
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
    if (parse_settings(argc, argv, &markdown) != 0 || check_environment(&s) != 0) {
        return EXIT_USAGE;
    }
    fflush(stdout);
    if (markdown) {
        options_print_markdown(1);
    } else {
        options_print(1, &s, env_get);
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
    if (parse_settings(argc, argv, NULL) != 0 || check_environment(&s) != 0) {
        return EXIT_USAGE;
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
    fprintf(stderr, "cebox: unknown command '%s'; accepted: demo, settings, --help, --version\n", cmd);
    return EXIT_USAGE;
}
