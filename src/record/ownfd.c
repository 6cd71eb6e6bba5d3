/*
 * ownfd.c - cebox's own descriptors in the target (see ownfd.h).
 *
 * Why the identity check: the program owns the descriptor table.  It may
 * close every descriptor above 2 before it execs (close_range, closefrom),
 * or dup2 its own file onto any number; a number cebox only remembered
 * would then be written into the program's file, or closed under it.  The
 * identity check (one statx) costs about half a microsecond, and cebox
 * writes only at start, on a failed allocation and at exit, so every write
 * checks first (a check made by ownfd_ensure serves the write after it).
 */
#include "record/ownfd.h"

#include <errno.h>
#include <fcntl.h>

/* Programs get the lowest free numbers and dup2 onto small ones (shells use
 * 10 and up, and 255), so cebox takes a number three quarters of the way
 * up the limit, but no higher than 768: the kernel's descriptor table grows
 * to the highest number in use, and a limit of a million must not make
 * every process carry a table that size. */
#define OWNFD_CEILING 1024

int ownfd_base(int limit)
{
    int top = limit > 0 && limit < OWNFD_CEILING ? limit : OWNFD_CEILING;
    return top - top / 4;
}

int ownfd_move_high(int fd)
{
    int base = ownfd_base(os_fd_limit());
    if (base <= fd) {
        return fd;
    }
    int high = os_dup_above(fd, base);
    if (high < 0) {
        return fd; /* nothing free up there (or a low limit): stay where we are */
    }
    os_close(fd);
    return high;
}

static bool same_file(const struct os_file_id *a, const struct os_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino;
}

/* Opens the path into a fresh high descriptor; its identity in *id. */
static int open_high(const char *path, int flags, int mode, struct os_file_id *id)
{
    int fd = os_open(path, flags | O_CLOEXEC, mode);
    if (fd < 0) {
        return fd;
    }
    fd = ownfd_move_high(fd);
    int err = os_fd_identity(fd, id);
    if (err != 0) {
        os_close(fd);
        return -err;
    }
    return fd;
}

int ownfd_open(struct ownfd *f, const char *path, int flags, int mode)
{
    f->fd = -1;
    f->written = 0;
    f->checked = false;
    f->path = path;
    f->flags = flags & ~(O_CREAT | O_TRUNC | O_EXCL);
    int fd = open_high(path, flags, mode, &f->id);
    if (fd < 0) {
        return -fd;
    }
    f->fd = fd;
    f->checked = true;
    return 0;
}

/* What the descriptor holds now. */
enum holding {
    HOLDS_FILE,    /* the file it was opened on */
    HOLDS_REMOVED, /* that file, but removed from its directory since */
    HOLDS_OTHER,   /* nothing (closed), or a file of the program's */
};

static enum holding holding(const struct ownfd *f)
{
    struct os_file_id now;
    if (f->fd < 0 || os_fd_identity(f->fd, &now) != 0 || !same_file(&now, &f->id)) {
        return HOLDS_OTHER;
    }
    return now.links > 0 ? HOLDS_FILE : HOLDS_REMOVED;
}

/* Opens f's path again once the descriptor no longer holds the file as it
 * was: closed by the program or its file put there (the number is left
 * alone), or the file removed (then the old descriptor, still cebox's, is
 * closed only after the new open, so that the new file cannot reuse its
 * inode number).  A file other than f's is adopted only when `adopt`;
 * otherwise it is closed again. */
static enum ownfd_state reopen(struct ownfd *f, enum holding h, bool create, bool adopt)
{
    int old = h == HOLDS_REMOVED ? f->fd : -1;
    f->fd = -1;
    struct os_file_id id;
    int fd = f->path != NULL ? open_high(f->path, f->flags | (create ? O_CREAT : 0), 0644, &id) : -EINVAL;
    if (old >= 0) {
        os_close(old);
    }
    if (fd < 0) {
        return OWNFD_LOST;
    }
    /* A file shorter than what cebox wrote was made anew, even when its
     * inode number is the old one's (a freed inode is soon reused). */
    bool same = h != HOLDS_REMOVED && same_file(&id, &f->id) && id.size >= f->written;
    if (same || adopt) {
        f->fd = fd;
    } else {
        os_close(fd);
    }
    if (same) {
        return OWNFD_SAME;
    }
    if (adopt) {
        f->id = id;
        f->written = 0;
    }
    return OWNFD_NEW;
}

enum ownfd_state ownfd_ensure(struct ownfd *f, bool create)
{
    enum holding h = holding(f);
    enum ownfd_state st = h == HOLDS_FILE ? OWNFD_SAME : reopen(f, h, create, true);
    f->checked = st != OWNFD_LOST;
    return st;
}

/* Before a write: the descriptor holds f's file, reopened if need be, and
 * never another file, even one now at the same path.  0 or an errno. */
static int check_before_write(struct ownfd *f)
{
    enum holding h = holding(f);
    if (h == HOLDS_FILE) {
        return 0;
    }
    switch (reopen(f, h, false, false)) {
    case OWNFD_SAME: return 0;
    case OWNFD_NEW: return ESTALE;
    case OWNFD_LOST: break;
    }
    return ENOENT;
}

int ownfd_write(struct ownfd *f, const void *buf, size_t len, size_t *written)
{
    const char *p = buf;
    *written = 0;
    int err = f->checked ? 0 : check_before_write(f);
    f->checked = false;
    bool retried = false;
    while (err == 0 && len > 0) {
        long n = os_write(f->fd, p, len);
        if (n == -EINTR) {
            continue;
        }
        if (n == -EBADF && *written == 0 && !retried) {
            retried = true; /* closed by another thread since the check: once more */
            err = check_before_write(f);
            continue;
        }
        if (n <= 0) {
            return n < 0 ? (int)-n : EIO;
        }
        p += n;
        len -= (size_t)n;
        *written += (size_t)n;
        f->written += (unsigned long long)n;
    }
    return err;
}

void ownfd_close(struct ownfd *f)
{
    if (holding(f) != HOLDS_OTHER) {
        os_close(f->fd);
    }
    f->fd = -1;
}
