/*
 * fault.h - fault injection: which allocation calls fail on purpose
 * (`cebox run --fail-*`).
 *
 * Owns: the rules read from the settings (struct fault_rules), the
 * decision for one call (fault_decide), the per-process call counter and
 * generator, the set of stacks already failed for --fail-once-per-stack
 * and its file, and the entry hook that applies them (registered by
 * fault_start only when some rule is given: with none, entry_begin stays
 * one predictable branch).
 *
 * Rules combine: a call fails when every rule given holds.  The filters
 * (size window, time window, memory state, --fail-in, --fail-stack) are
 * tested first;
 * the calls they let through are counted (1, 2, 3, ...) and the counting
 * rules (--fail-nth, --fail-every, --fail-probability) test that number;
 * --fail-once-per-stack is tested last, so a stack is remembered only when
 * it really fails.  --record-stacks fails nothing: it notes the stack of
 * every call the filters let through in its file (once per distinct
 * stack, as --fail-once-per-stack writes them), and those calls are
 * counted; with no other rule, nothing fails.  Once every --fail-nth
 * number is past, no call can fail and none is unwound any more (unless
 * --record-stacks needs the stacks).  With no filter every call is counted, from cebox's
 * start in the process: libc's and the loader's start-up calls count too.
 * A forked child counts again from 1 and its clock starts again.
 *
 * Invariants: fault_decide allocates nothing from the slot (its set of
 * stacks is meta.c memory), takes no cebox lock but its own (never held
 * while it unwinds or calls the loader) and, for --fail-state, the
 * device's (ram_state: a leaf), and leaves errno as it found it.  The
 * stack rules see the 32 innermost frames of a call, whatever
 * --stack-depth says (that one is for the log).
 */
#ifndef CEBOX_FAULT_H
#define CEBOX_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "record/logformat.h"

/* Which rules are given (bits of fault_rules.on). */
enum {
    FAULT_NTH = 1u << 0,
    FAULT_EVERY = 1u << 1,
    FAULT_PROBABILITY = 1u << 2,
    FAULT_SIZE_MIN = 1u << 3,
    FAULT_SIZE_MAX = 1u << 4,
    FAULT_AFTER = 1u << 5,
    FAULT_UNTIL = 1u << 6,
    FAULT_IN = 1u << 7,
    FAULT_STATE = 1u << 8,
    FAULT_ONCE_PER_STACK = 1u << 9,
    FAULT_STACK = 1u << 10,
    FAULT_RECORD_STACKS = 1u << 11, /* an observer: fails nothing by itself */
};

struct fault_rules {
    uint32_t on; /* FAULT_* */
    uint64_t nth[FAIL_NTH_MAX];
    size_t nnth;
    uint64_t every;
    uint64_t probability; /* billionths */
    uint64_t seed;
    size_t size_min, size_max;
    uint64_t after_ns, until_ns;
    char in[sizeof(((struct cebox_settings *)0)->fail_in)];
    int state; /* enum memstate */
    char once_file[sizeof(((struct cebox_settings *)0)->fail_once_file)];
    uint64_t stack; /* --fail-stack */
    char record_file[sizeof(((struct cebox_settings *)0)->record_stacks_file)];
};

/* What a decision reads from the process; the tests give their own. */
struct fault_world {
    uint64_t (*now_ns)(void); /* a monotonic clock */
    int (*state)(void);       /* the device's memory state (enum memstate) */
    /* The call stack, innermost first, without cebox's frames. */
    size_t (*stack)(uintptr_t *ips, size_t max);
};

/* Reads the rules from settings: false when none is given. */
bool fault_rules_from(const struct cebox_settings *s, struct fault_rules *out);

/* Sets up the decision state for rules in world (the clock starts now,
 * the count at 0) and forgets any before.  Reads the files of
 * --fail-once-per-stack and --record-stacks when given (created when
 * missing; their paths made absolute): 0, or the errno value of a file
 * that cannot be opened. */
int fault_setup(const struct fault_rules *rules, const struct fault_world *world);

/* The decision for one call: LOG_REASON_INJECTED to fail it, else
 * LOG_REASON_NONE.  Any thread. */
enum log_reason fault_decide(enum log_api api, size_t size);

/* The process's calls so far that the filters let through. */
uint64_t fault_counted(void);

/* Core start-up: reads the rules from settings and, when any is given,
 * sets them up against the real process (clock, device state, libunwind)
 * and registers the entry hook.  Returns 0, or -1 with one line in err
 * (the file of --fail-once-per-stack cannot be opened; no hook then). */
int fault_start(const struct cebox_settings *s, char err[OPTIONS_ERR_MAX]);

/* Does the glob (`*`, `?`) match the whole of text? */
bool fault_glob(const char *pattern, const char *text);

/* A call stack's identity across runs: each return address as its
 * module's file name and offset (ASLR moves the modules, not these).
 * Never 0 (the files and --fail-stack use 0 for "none"). */
uint64_t fault_stack_hash(const uintptr_t *ips, size_t depth);

#endif
