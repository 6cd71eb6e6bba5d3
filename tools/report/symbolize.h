/*
 * symbolize.h - addresses of a recorded stack to function, file and line,
 * offline, with elfutils' libdw.
 *
 * Owns: one libdw session per distinct module (path and build-id), opened
 * at its first use and kept for the report's lifetime; symbols come from
 * the object's symbol tables and DWARF, found next to it or, by build-id,
 * in the system's separate debug files (/usr/lib/debug/.build-id, and
 * debuginfod when DEBUGINFOD_URLS is set).  The program need not be
 * running; only its files must still be there.
 *
 * A module whose file is missing, or whose build-id differs from the one
 * recorded (rebuilt since the run), is looked up by build-id among the
 * debug files only; failing that its frames stay module+offset, and one
 * warning per module says why.
 */
#ifndef CEBOX_SYMBOLIZE_H
#define CEBOX_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report/logread.h"

struct symbolizer;

/* One frame of source: a function (NULL when unknown), and where in it
 * (file NULL and line 0 when there is no line information).  An address
 * inside inlined code expands to its whole inline chain, innermost first:
 * one frame per inlined function (inlined true), each at its line, then
 * the function the code was compiled into; every level but the innermost
 * is at the line of its call (DW_AT_call_file and DW_AT_call_line of the
 * inlined subroutine), as `addr2line -f -i` prints them. */
struct sym_frame {
    const char *function;
    const char *file;
    int line;
    bool inlined;
};

struct symbolizer *symbolizer_new(void);
void symbolizer_free(struct symbolizer *s);

/* The frames for `ip` in module m (a return address unless it is the
 * innermost frame of a stack that did not come from a call: callers pass
 * is_return true for recorded stacks, which are all return addresses).
 * Returns how many frames the address has (at least 1: a frame with no
 * function) and fills the first max of them, innermost first: when the
 * result exceeds max, call again with room for all (as with snprintf).
 * The strings live as long as the symbolizer. */
size_t symbolize(struct symbolizer *s, const struct lr_module *m, uint64_t ip, bool is_return,
                 struct sym_frame *out, size_t max);

/* Writes one line per module that could not be symbolized, and why, to f
 * (for the end of a report).  Returns how many. */
size_t symbolizer_warnings(struct symbolizer *s, FILE *f);

#endif
