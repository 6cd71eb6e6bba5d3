/*
 * fit.h - `cebox fit`: the smallest slot, and separately the smallest
 * device RAM, at which a program still exits as it does with room to
 * spare.
 *
 * Owns: the runs (each a `cebox run` of the program, its output thrown
 * away) and the bisections, in the settings' granularity (64 KB blocks of
 * slot, 4 KB pages of RAM), between the option table's minimum and the
 * settings in force (the room to spare).  Assumes a program that fits in
 * some size fits in every larger one.
 */
#ifndef CEBOX_FIT_H
#define CEBOX_FIT_H

#include <stdbool.h>

#include "options.h"

/* Runs the search for argv (PROGRAM ARGS..., NULL-terminated) with the
 * settings already in the environment (s: as loaded from it); prints the
 * result on stdout (JSON with `json`).  Returns 0, or 1 when the program
 * could not be run. */
int fit_main(const struct cebox_settings *s, char **argv, bool json);

#endif
