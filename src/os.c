/*
 * os.c - raw memory system calls (see os.h for the contract).
 *
 * Why raw syscalls: the preload library defines mmap, munmap and mprotect
 * itself, so calling them here would recurse into cebox; and the program's
 * errno must survive cebox's own work, so the syscall's error is returned,
 * never stored in errno.
 */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <stdlib.h>
#include <unistd.h>

#include "invariant.h"

/* The raw system call of os.h (os_syscall6): -errno in the result, errno untouched. */
static long raw_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
    return os_syscall6(nr, a, b, c, d, e, f);
}

static int syscall_error(long ret)
{
    return (ret < 0 && ret >= -4095) ? (int)-ret : 0;
}

static long raw_mmap(void *addr, size_t len, int prot, int flags)
{
    return raw_syscall6(SYS_mmap, (long)addr, (long)len, prot, flags, -1, 0);
}

static int linux_prot(int prot)
{
    return ((prot & OS_PROT_READ) ? PROT_READ : 0) | ((prot & OS_PROT_WRITE) ? PROT_WRITE : 0) |
           ((prot & OS_PROT_EXEC) ? PROT_EXEC : 0);
}

int os_release(void *addr, size_t len)
{
    return syscall_error(raw_syscall6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0));
}

int os_reserve_aligned(size_t size, size_t align, void **out)
{
    /* Over-reserve by `align`, then trim both ends: the kernel gives no
     * alignment guarantee beyond the page. */
    size_t span = size + align;
    if (span < size) {
        return ENOMEM;
    }
    long ret = raw_mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    int err = syscall_error(ret);
    if (err) {
        return err;
    }
    uintptr_t raw = (uintptr_t)ret;
    uintptr_t base = (raw + align - 1) & ~(uintptr_t)(align - 1);
    if (base > raw) {
        os_release((void *)raw, base - raw);
    }
    uintptr_t end = base + size, raw_end = raw + span;
    if (raw_end > end) {
        os_release((void *)end, raw_end - end);
    }
    *out = (void *)base;
    return 0;
}

int os_reserve_at(void *addr, size_t size)
{
    /* MAP_FIXED_NOREPLACE never replaces a mapping; a kernel older than
     * 4.17 takes the flag for a hint and may answer elsewhere, which is
     * given back. */
    long ret = raw_mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE);
    int err = syscall_error(ret);
    if (err) {
        return err;
    }
    if ((uintptr_t)ret != (uintptr_t)addr) {
        os_release((void *)ret, size);
        return EEXIST;
    }
    return 0;
}

int os_reserve_aligned_below(const void *below, size_t size, size_t align, void **out)
{
    uintptr_t top = (uintptr_t)below;
    if (top > size) {
        uintptr_t hint = (top - size) & ~(uintptr_t)(align - 1);
        if (hint != 0 && os_reserve_at((void *)hint, size) == 0) {
            *out = (void *)hint;
            return 0;
        }
    }
    return os_reserve_aligned(size, align, out);
}

int os_protect(void *addr, size_t len, int prot)
{
    return syscall_error(raw_syscall6(SYS_mprotect, (long)addr, (long)len, linux_prot(prot), 0, 0, 0));
}

int os_discard(void *addr, size_t len)
{
    /* The mapping stays as it is (no new one beside its neighbours); its
     * private pages are freed and read as zeros when next touched. */
    return syscall_error(raw_syscall6(SYS_madvise, (long)addr, (long)len, MADV_DONTNEED, 0, 0, 0));
}

int os_discard_shared(void *addr, size_t len)
{
    return syscall_error(raw_syscall6(SYS_madvise, (long)addr, (long)len, MADV_REMOVE, 0, 0, 0));
}

int os_populate(void *addr, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    return syscall_error(raw_syscall6(SYS_madvise, (long)addr, (long)len, MADV_POPULATE_WRITE, 0, 0, 0));
#else
    (void)addr, (void)len;
    return EINVAL;
#endif
}

int os_resident(void *addr, size_t len, unsigned char *vec)
{
    return syscall_error(raw_syscall6(SYS_mincore, (long)addr, (long)len, (long)vec, 0, 0, 0));
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7 */
#endif

/* How this host moves pages: with MREMAP_DONTUNMAP (Linux 5.7), which
 * leaves the source mapped, or by a plain fixed mremap, which unmaps it,
 * followed at once by a PROT_NONE mapping of the source's range again
 * (valgrind 3.19 refuses MREMAP_DONTUNMAP, older kernels lack it; the
 * slot never has a hole for longer than those two calls, and the slot's
 * lock is held across them, so no mapping of cebox's can land there).
 * MOVE_NONE: neither works, the caller copies. */
enum move_kind { MOVE_UNKNOWN, MOVE_KEEP, MOVE_REFILL, MOVE_NONE };
static _Atomic int move_known; /* an enum move_kind: what the probe found */

/* One move by `kind` (MOVE_KEEP or MOVE_REFILL): 0 when the pages are at
 * dst, -1 when nothing moved.  A refill that fails (a mapping of someone
 * else's took the range between the calls) still counts as a move: the
 * source then stays unmapped, and the slot's later commits there fail. */
static int move_by(int kind, void *dst, void *src, size_t len)
{
    long flags = MREMAP_MAYMOVE | MREMAP_FIXED | (kind == MOVE_KEEP ? MREMAP_DONTUNMAP : 0);
    long ret = raw_syscall6(SYS_mremap, (long)src, (long)len, (long)len, flags, (long)dst, 0);
    if (syscall_error(ret) != 0 || ret != (long)dst) {
        return -1;
    }
    if (kind == MOVE_REFILL) {
        (void)os_reserve_at(src, len);
    }
    return 0;
}

/* Does a move by `kind` do what it should?  Tried on two scratch pages,
 * looking at the bytes (under valgrind 3.19 MREMAP_DONTUNMAP once lost
 * them) and at the source: still mapped (mincore answers for it), and
 * empty when it stayed accessible. */
static bool move_kind_works(int kind)
{
    const size_t len = 2 * os_page_size();
    long a = raw_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    long b = raw_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    bool ok = false;
    if (!syscall_error(a) && !syscall_error(b)) {
        unsigned char *src = (unsigned char *)a, *dst = (unsigned char *)b, vec[2];
        src[0] = 0x5A;
        src[len - 1] = 0xA5;
        ok = move_by(kind, dst, src, len) == 0 && dst[0] == 0x5A && dst[len - 1] == 0xA5 &&
             os_resident(src, len, vec) == 0 && (kind != MOVE_KEEP || (src[0] == 0 && src[len - 1] == 0));
    }
    if (!syscall_error(a)) {
        os_release((void *)a, len);
    }
    if (!syscall_error(b)) {
        os_release((void *)b, len);
    }
    return ok;
}

/* The kind of move this host makes, probed once. */
static int move_kind(void)
{
    int k = atomic_load_explicit(&move_known, memory_order_relaxed);
    if (k != MOVE_UNKNOWN) {
        return k;
    }
    k = move_kind_works(MOVE_KEEP) ? MOVE_KEEP : move_kind_works(MOVE_REFILL) ? MOVE_REFILL : MOVE_NONE;
    atomic_store_explicit(&move_known, k, memory_order_relaxed);
    return k;
}

int os_move_pages(void *dst, void *src, size_t len)
{
    int kind = move_kind();
    return kind == MOVE_NONE ? -1 : move_by(kind, dst, src, len);
}

void os_move_probe_again(void)
{
    atomic_store_explicit(&move_known, MOVE_UNKNOWN, memory_order_relaxed);
}

void *os_map_private(size_t size)
{
    long ret = raw_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    return syscall_error(ret) ? NULL : (void *)ret;
}

int os_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        long n = raw_syscall6(SYS_write, fd, (long)p, (long)len, 0, 0, 0);
        int err = syscall_error(n);
        if (err == EINTR) {
            continue;
        }
        if (err != 0 || n == 0) {
            return err != 0 ? err : EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

_Noreturn void os_exit_group(int status)
{
    for (;;) {
        raw_syscall6(SYS_exit_group, status, 0, 0, 0, 0, 0);
    }
}

static _Atomic int spare_stderr = -1;

void os_set_spare_stderr(int fd)
{
    atomic_store_explicit(&spare_stderr, fd, memory_order_relaxed);
}

int os_write_stderr(const void *buf, size_t len)
{
    int err = os_write_all(2, buf, len);
    int spare = atomic_load_explicit(&spare_stderr, memory_order_relaxed);
    if (err == EBADF && spare >= 0) {
        err = os_write_all(spare, buf, len);
    }
    return err;
}

size_t os_page_size(void)
{
    return (size_t)getauxval(AT_PAGESZ);
}

_Noreturn void invariant_failed(const char *file, int line, const char *what)
{
    /* Built by hand: snprintf may allocate on some paths, and this runs
     * where nothing may. */
    char buf[512];
    size_t n = 0;
    const char *parts[] = {"cebox: internal error at ", file, ":", NULL, ": ", what, "\n"};
    char num[16];
    size_t k = sizeof num;
    unsigned v = line > 0 ? (unsigned)line : 0;
    num[--k] = '\0';
    do {
        num[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && k > 0);
    parts[3] = num + k;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        for (const char *c = parts[i]; *c != '\0' && n < sizeof buf; c++) {
            buf[n++] = *c;
        }
    }
    os_write_stderr(buf, n);
    /* glibc's abort() is async-signal-safe and ends the process even when
     * the program catches SIGABRT and returns. */
    abort();
}

int os_map_shared_file(int fd, size_t len, void **out)
{
    return os_map_shared_file_prot(fd, len, true, out);
}

int os_map_shared_file_prot(int fd, size_t len, bool writable, void **out)
{
    long ret = raw_syscall6(SYS_mmap, 0, (long)len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    int err = syscall_error(ret);
    if (err == 0) {
        *out = (void *)ret;
    }
    return err;
}

/* ---- descriptors and threads ---- */

int os_gettid(void)
{
    return (int)raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

int os_getpid(void)
{
    return (int)raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
}

int os_open(const char *path, int flags, int mode)
{
    return (int)raw_syscall6(SYS_openat, AT_FDCWD, (long)path, flags, mode, 0, 0);
}

int os_close(int fd)
{
    return syscall_error(raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0));
}

long os_write(int fd, const void *buf, size_t len)
{
    return raw_syscall6(SYS_write, fd, (long)buf, (long)len, 0, 0, 0);
}

long os_read(int fd, void *buf, size_t len)
{
    return raw_syscall6(SYS_read, fd, (long)buf, (long)len, 0, 0, 0);
}

long os_pread(int fd, void *buf, size_t len, long offset)
{
    return raw_syscall6(SYS_pread64, fd, (long)buf, (long)len, offset, 0, 0);
}

int os_flock(int fd, int op)
{
    return syscall_error(raw_syscall6(SYS_flock, fd, op, 0, 0, 0, 0));
}

int os_dup_above(int fd, int base)
{
    return (int)raw_syscall6(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base, 0, 0, 0);
}

/* fstat's answer, for kernels without statx (before 4.11) or sandboxes
 * that refuse it. */
static int identity_by_fstat(int fd, struct os_file_id *out)
{
    struct stat st;
    int err = syscall_error(raw_syscall6(SYS_fstat, fd, (long)&st, 0, 0, 0, 0));
    if (err == 0) {
        out->dev = ((unsigned long long)major(st.st_dev) << 32) | minor(st.st_dev); /* as statx's */
        out->ino = (unsigned long long)st.st_ino;
        out->links = (unsigned long long)st.st_nlink;
        out->size = st.st_size > 0 ? (unsigned long long)st.st_size : 0;
    }
    return err;
}

int os_fd_identity(int fd, struct os_file_id *out)
{
    /* statx asked for these fields only: a full fstat of a file being
     * appended to costs several times more on ext4 (measured: 2 us against
     * 0.5 us after a write), and this runs before every log write. */
    static _Atomic bool no_statx;
    if (atomic_load_explicit(&no_statx, memory_order_relaxed)) {
        return identity_by_fstat(fd, out);
    }
    struct statx sx;
    int err = syscall_error(raw_syscall6(SYS_statx, fd, (long)"", AT_EMPTY_PATH,
                                         STATX_INO | STATX_NLINK | STATX_SIZE, (long)&sx, 0));
    if (err == ENOSYS || err == EPERM) {
        atomic_store_explicit(&no_statx, true, memory_order_relaxed);
        return identity_by_fstat(fd, out);
    }
    if (err == 0) {
        out->dev = ((unsigned long long)sx.stx_dev_major << 32) | sx.stx_dev_minor;
        out->ino = sx.stx_ino;
        out->links = sx.stx_nlink;
        out->size = sx.stx_size;
    }
    return err;
}

int os_pipe2(int fds[2], int flags)
{
    return syscall_error(raw_syscall6(SYS_pipe2, (long)fds, flags, 0, 0, 0, 0));
}

int os_fd_limit(void)
{
    struct rlimit lim;
    if (syscall_error(raw_syscall6(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&lim, 0, 0)) != 0) {
        return -1;
    }
    return lim.rlim_cur >= (rlim_t)INT_MAX ? INT_MAX : (int)lim.rlim_cur;
}

/* ---- reading this process's own memory without faulting ---- */

long os_read_self(void *dst, const void *src, size_t len)
{
    struct iovec local = {.iov_base = dst, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)src, .iov_len = len};
    return raw_syscall6(SYS_process_vm_readv, os_getpid(), (long)&local, 1, (long)&remote, 1, 0);
}

/* A pipe holds more than a page, so neither end ever blocks. */
static void copy_through_pipe(unsigned char *dst, const unsigned char *src, size_t n)
{
    int fd[2];
    if (os_pipe2(fd, O_CLOEXEC) != 0) {
        return;
    }
    size_t page = os_page_size();
    for (size_t done = 0, chunk; done < n; done += chunk) {
        chunk = page - ((uintptr_t)(src + done) & (page - 1));
        chunk = chunk < n - done ? chunk : n - done;
        if (os_write(fd[1], src + done, chunk) != (long)chunk || os_read(fd[0], dst + done, chunk) != (long)chunk) {
            break;
        }
    }
    os_close(fd[0]);
    os_close(fd[1]);
}

void os_copy_unfaulting(void *dst, const void *src, size_t len)
{
    long got = os_read_self(dst, src, len);
    if (got < 0 && got != -EFAULT) {
        copy_through_pipe(dst, src, len);
    }
}

long os_getdents64(int fd, void *buf, size_t len)
{
    return raw_syscall6(SYS_getdents64, fd, (long)buf, (long)len, 0, 0, 0);
}

int os_tgkill(int tid, int sig)
{
    return syscall_error(raw_syscall6(SYS_tgkill, os_getpid(), tid, sig, 0, 0, 0));
}
