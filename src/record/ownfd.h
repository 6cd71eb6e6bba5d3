/*
 * ownfd.h - the files cebox keeps open inside the target (the event log,
 * the exit summary), kept apart from the program's own descriptors.
 *
 * Owns: one descriptor per struct ownfd, with the identity (st_dev,
 * st_ino) of the file it was opened on and the path to open it again.
 *
 * Invariants:
 *  - the descriptor is close-on-exec and moved to a high number, where
 *    programs do not look (they get the lowest free numbers, and dup2 onto
 *    small ones), but below the soft RLIMIT_NOFILE; when nothing is free up
 *    there it stays where open() put it;
 *  - cebox writes or closes a descriptor only after statx shows it still
 *    holds the file it opened: a program that closed it (close,
 *    close_range, closefrom) or put its own file on that number (dup2) keeps
 *    its file untouched, and cebox opens its file again by path;
 *  - every call keeps errno (raw system calls, os.h) and allocates nothing.
 *
 * Not thread-safe: the caller serializes the calls on one struct.  Another
 * thread of the program can still close or replace the descriptor between
 * the check and the write; the high number is what makes that unlikely.
 */
#ifndef CEBOX_OWNFD_H
#define CEBOX_OWNFD_H

#include <stdbool.h>
#include <stddef.h>

#include "os.h"

struct ownfd {
    int fd;                 /* -1: none open */
    int flags;              /* to open the file again (without O_CREAT, O_TRUNC) */
    struct os_file_id id;   /* the file fd was opened on */
    unsigned long long written; /* bytes written to it through this struct */
    bool checked;           /* just opened or checked: the next write skips its check */
    const char *path;       /* the caller's string, alive as long as the struct is used */
};

#define OWNFD_NONE {.fd = -1}

/* Opens path with flags (O_CLOEXEC added) and mode, and moves it high.
 * 0, or the errno value of the open (f then holds none). */
int ownfd_open(struct ownfd *f, const char *path, int flags, int mode);

/* What ownfd_ensure found. */
enum ownfd_state {
    OWNFD_SAME,    /* open on the same file as before (perhaps opened again) */
    OWNFD_NEW,     /* opened again, but the path now names another file (or
                    * one shorter than what was written: made anew, its inode
                    * number reused) */
    OWNFD_LOST,    /* not open: the path cannot be opened */
};

/* Makes sure f's descriptor is still its file, opening the path again
 * (with O_CREAT when create) when the program closed or replaced it.  The
 * old number is never closed: it is gone, or the program's.  After
 * OWNFD_NEW f holds the new file. */
enum ownfd_state ownfd_ensure(struct ownfd *f, bool create);

/* Writes all of buf to f's file, checking first that the descriptor is
 * still the file (reopened by path, without creating it, when not), unless
 * ownfd_open or ownfd_ensure has just done so.
 * 0, or an errno value with *written set to the bytes that did get
 * written: ENOENT when the file cannot be opened again, ESTALE when the
 * path now names another file (nothing is written there: ownfd_ensure
 * adopts it, so that the caller can start it properly). */
int ownfd_write(struct ownfd *f, const void *buf, size_t len, size_t *written);

/* Closes the descriptor if it still holds f's file; f holds none after. */
void ownfd_close(struct ownfd *f);

/* fd (one of cebox's, close-on-exec) moved to a high number: the new
 * number (fd closed), or fd itself when nothing is free up there. */
int ownfd_move_high(int fd);

/* The number where cebox's descriptors go, given the soft RLIMIT_NOFILE
 * (exposed for the tests). */
int ownfd_base(int limit);

#endif
