/*
 * execnote.h - under --no-follow, what tells `cebox run` that the first
 * program exec'd another one, which runs outside the box (see execnote.c
 * and tools/execwatch.c).
 */
#ifndef CEBOX_EXECNOTE_H
#define CEBOX_EXECNOTE_H

#include "options.h"

/* At the start of a boxed process: takes the descriptor cebox run passed
 * (CEBOX_WATCH_FD), made close-on-exec so that an exec closes it. */
void execnote_start(const struct cebox_settings *s);

/* In a forked child: its copy is closed (the child is another process). */
void execnote_forked(void);

/* At a normal exit: one byte saying that this image ended, not exec'd. */
void execnote_exit(void);

#endif
