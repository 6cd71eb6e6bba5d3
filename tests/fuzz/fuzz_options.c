/*
 * fuzz_options.c - fuzz target: the settings parser, options_load and
 * options_check, fed the variables an input decodes to.
 *
 * Input: lines "NAME=VALUE" (split at '\n', the first '=' ends the name;
 * a later line for the same name wins, as the last export would).  The
 * getter serves exactly these variables; every other name is unset.
 *
 * Checked, besides no crash and no sanitizer report:
 *   - options_load fails exactly when options_check refuses one of the
 *     set variables' values (the same parser answers both);
 *   - a refusal is one line, inside OPTIONS_ERR_MAX, naming a variable;
 *   - accepted settings are in range, every text field is NUL-terminated
 *     inside its array and equals the value given (nothing truncated),
 *     and the schedule kept parses again.
 * Only the parsing API of options.h is used (options_load, options_check,
 * options_parse_schedule, the variable names and profiles).
 */
#include "fuzz.h"

#include <string.h>

#include "options.h"

#define MAX_VARS 32
#define MAX_INPUT 4096

static char text[MAX_INPUT + 1];
static const char *names[MAX_VARS], *values[MAX_VARS];
static size_t nvars;

static const char *lookup(const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < nvars; i++) {
        v = strcmp(names[i], name) == 0 ? values[i] : v;
    }
    return v;
}

static void decode(const uint8_t *data, size_t size)
{
    size = size < MAX_INPUT ? size : MAX_INPUT;
    memcpy(text, data, size);
    text[size] = '\0';
    nvars = 0;
    for (char *line = text; line != NULL && nvars < MAX_VARS;) {
        char *next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        char *eq = strchr(line, '=');
        if (eq != NULL) {
            *eq = '\0';
            names[nvars] = line;
            values[nvars] = eq + 1;
            nvars++;
        }
        line = next;
    }
}

static void check_refusal(const char *err)
{
    size_t len = strnlen(err, OPTIONS_ERR_MAX);
    FUZZ_CHECK(len > 0 && len < OPTIONS_ERR_MAX);
    FUZZ_CHECK(strchr(err, '\n') == NULL);
}

/* The text field for variable `var`, or NULL when it has none. */
static const char *text_field(const struct cebox_settings *s, const char *var, size_t *cap)
{
    static const struct {
        const char *var;
        size_t offset, cap;
    } fields[] = {
        {"CEBOX_OUT", offsetof(struct cebox_settings, out_dir), sizeof(((struct cebox_settings *)0)->out_dir)},
        {"CEBOX_STATE_SCHEDULE", offsetof(struct cebox_settings, schedule),
         sizeof(((struct cebox_settings *)0)->schedule)},
        {"CEBOX_SESSION", offsetof(struct cebox_settings, session), sizeof(((struct cebox_settings *)0)->session)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(fields[i].var, var) == 0) {
            *cap = fields[i].cap;
            return (const char *)s + fields[i].offset;
        }
    }
    return NULL;
}

static void check_settings(const struct cebox_settings *s)
{
    FUZZ_CHECK(s->profile != NULL && options_profile(s->profile->name) == s->profile);
    FUZZ_CHECK(s->slot_size >= 1024 * 1024 && s->slot_size % (64 * 1024) == 0);
    FUZZ_CHECK(s->ram >= 64 * 1024 && s->ram % 4096 == 0);
    FUZZ_CHECK(s->thresholds >= 0 && s->thresholds < 4 && s->state >= 0 && s->state < 4);
    FUZZ_CHECK(s->stack_depth >= 1 && s->stack_depth <= 128);
    FUZZ_CHECK(s->hibernate_signal >= 0 && s->hibernate_signal <= 64);
    for (size_t i = 0; i < options_count(); i++) {
        size_t cap = 0;
        const char *field = text_field(s, options_var(i), &cap);
        const char *given = lookup(options_var(i));
        if (field == NULL) {
            continue;
        }
        FUZZ_CHECK(memchr(field, '\0', cap) != NULL);
        FUZZ_CHECK(given == NULL || strcmp(field, given) == 0);
    }
    struct schedule_step steps[SCHEDULE_MAX];
    FUZZ_CHECK(s->schedule[0] == '\0' || options_parse_schedule(s->schedule, steps, SCHEDULE_MAX) > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode(data, size);
    char err[OPTIONS_ERR_MAX];
    bool any_refused = false;
    for (size_t i = 0; i < nvars; i++) {
        if (lookup(names[i]) != values[i]) {
            continue; /* overridden by a later line: never read */
        }
        bool known = false;
        for (size_t k = 0; k < options_count(); k++) {
            known = known || strcmp(options_var(k), names[i]) == 0;
        }
        int r = options_check(names[i], values[i], err);
        FUZZ_CHECK(r == 0 || r == -1);
        if (r != 0) {
            check_refusal(err);
            any_refused = any_refused || known;
        }
        FUZZ_CHECK(known || r == -1);
    }
    struct cebox_settings s;
    int r = options_load(lookup, &s, err);
    /* Each value alone may pass and the whole still be refused: the one
     * cross-check between rows, a limited state (--state or a schedule
     * step) under a table without a limited level. */
    bool cross_refusal = !any_refused && r == -1 && strstr(err, "state limited is not valid with CEBOX_THRESHOLDS=") != NULL;
    FUZZ_CHECK(r == (any_refused ? -1 : 0) || cross_refusal);
    if (r == 0) {
        FUZZ_CHECK(err[0] == '\0');
        check_settings(&s);
    } else {
        check_refusal(err);
        FUZZ_CHECK(strncmp(err, "CEBOX_", 6) == 0);
    }
    return 0;
}
