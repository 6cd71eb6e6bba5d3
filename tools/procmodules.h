/*
 * procmodules.h - the loaded objects of a running process, from outside
 * it, as `cebox report` knows them from a log: for `cebox status`, which
 * symbolizes addresses a boxed program published (tools/report/symbolize.c).
 *
 * Owns: reading /proc/PID/maps (each file-backed mapping's path, range and
 * file offset) and each object's ELF program headers, from which its load
 * bias follows: the start of the mapping of its first loadable segment's
 * file page, less that segment's page-aligned address.
 *
 * Failure: an object whose file cannot be read (gone, or not ELF) is left
 * out, so its addresses print as unknown; no build-id is read (the file is
 * the one mapped now, read at once).
 */
#ifndef CEBOX_PROCMODULES_H
#define CEBOX_PROCMODULES_H

#include <stddef.h>

#include "report/logread.h"

/* The objects process pid maps now, in *out (malloc'd; free with
 * procmodules_free).  Returns how many (0 when its maps cannot be read). */
size_t procmodules_read(int pid, struct lr_module **out);
void procmodules_free(struct lr_module *mods, size_t n);

#endif
