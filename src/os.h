/*
 * os.h - the only way cebox maps, protects and unmaps memory.
 *
 * Owns: every call to the kernel's mmap/mprotect/munmap/madvise made by cebox
 * (the session file's shared mapping included), the futex calls of the heap
 * lock, and the raw write helper the allocation paths use for messages.
 * They are made as raw system calls so that they never reach the interposed
 * libc functions of the preload library and never touch errno of the caller
 * (see os.c).
 *
 * Contract: addresses and lengths are page-aligned; functions return 0 on
 * success and a positive errno value on failure.
 */
#ifndef CEBOX_OS_H
#define CEBOX_OS_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#define OS_PROT_NONE 0
#define OS_PROT_READ 1
#define OS_PROT_WRITE 2
#define OS_PROT_EXEC 4

/* Reserve `size` bytes of address space aligned to `align` (a power of two,
 * at least the page size), inaccessible and without backing store.  Stores
 * the base in *out.  Fails with ENOMEM when the address space is full. */
int os_reserve_aligned(size_t size, size_t align, void **out);

/* Reserves [addr, addr+size) PROT_NONE exactly there, or fails (EEXIST
 * when something is mapped in the range) and maps nothing. */
int os_reserve_at(void *addr, size_t size);

/* os_reserve_aligned, tried first at the highest aligned place whose end
 * is at or below `below` (a mapping just made: the kernel maps downwards,
 * so the room under it is most likely free): one system call then, where
 * the over-reservation and its trimming are three. */
int os_reserve_aligned_below(const void *below, size_t size, size_t align, void **out);

/* Give pages back to the kernel: the range is unmapped. */
int os_release(void *addr, size_t len);

/* Make pages accessible with `prot` (OS_PROT_* bits).  Contents are kept. */
int os_protect(void *addr, size_t len, int prot);

/* Drop the contents and the memory of pages, whatever their protection,
 * which it leaves as it is: the pages read as zero once accessible. */
int os_discard(void *addr, size_t len);

/* Gives back the file pages under a shared mapping's range (page-aligned):
 * they read as zero again, and a tmpfs file no longer holds them
 * (MADV_REMOVE).  Returns 0 or an errno value (EINVAL, EOPNOTSUPP where the
 * file system cannot). */
int os_discard_shared(void *addr, size_t len);

/* Faults a private mapping's pages in, writable, in one call
 * (MADV_POPULATE_WRITE): cheaper than a fault per page for memory about to
 * be written.  Returns 0 or an errno value (EINVAL before Linux 5.14: the
 * pages then fault in when touched, as without the call). */
int os_populate(void *addr, size_t len);

/* mincore(2): vec[i] bit 0 set when page i of the range is in memory
 * (a page swapped out, or never touched, reads 0). */
int os_resident(void *addr, size_t len, unsigned char *vec);

/* Moves the pages of [src, src + len) to dst (page aligned, both private
 * anonymous read/write mappings) without copying them; src stays mapped,
 * reading as zero (MREMAP_DONTUNMAP, Linux 5.7) or inaccessible (where
 * that flag is refused, as under valgrind or before 5.7: a plain move and
 * a PROT_NONE mapping of src again).  0, or -1 when neither works (probed
 * once, on scratch pages): the caller copies then. */
int os_move_pages(void *dst, void *src, size_t len);

/* Test only: the next os_move_pages probes the host again (a test that
 * installs a seccomp filter after the probe). */
void os_move_probe_again(void);

/* Map `size` bytes read-write for cebox's own bookkeeping (never in a slot).
 * Zero-filled.  Returns NULL on failure. */
void *os_map_private(size_t size);

/* Writes all of buf to fd (retrying short writes and EINTR), as a raw
 * system call: the caller's errno is left alone.  Returns 0, or the errno
 * value of the write that failed. */
int os_write_all(int fd, const void *buf, size_t len);

/* Ends the process at once with status, as _exit does (exit_group). */
_Noreturn void os_exit_group(int status);

/* cebox's own messages (the exit summary, bad frees, internal errors) go
 * to descriptor 2; when the program has closed it (write fails with EBADF,
 * as after coreutils' close_stdout at exit), to the spare copy of `cebox
 * run`'s stderr that the settings name (CEBOX_STDERR_FD), if any.  A
 * descriptor 2 the program reopened elsewhere keeps the messages: they go
 * where the program sends its own errors.  os_set_spare_stderr(-1): none. */
void os_set_spare_stderr(int fd);
int os_write_stderr(const void *buf, size_t len);

/* The host's page size, from the auxiliary vector (no allocation). */
size_t os_page_size(void);

/* ---- the raw system call, a shared file mapping and the futex ---- */

/* A system call that returns -errno in its result instead of setting errno
 * (x86_64 and aarch64 Linux both report errors as values in [-4095, -1]).
 * Inline so that lock.h's futex costs no call beyond the kernel's; os.c's
 * other functions go through it too. */
static inline long os_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#else
    int saved = errno;
    long ret = syscall(nr, a, b, c, d, e, f);
    if (ret == -1) {
        ret = -errno;
    }
    errno = saved;
    return ret;
#endif
}

/* Maps the first `len` bytes of file fd (open read-write) shared and
 * read-write, anywhere; stores the address in *out.  Unmap with
 * os_release. */
int os_map_shared_file(int fd, size_t len, void **out);
/* The same, read-only unless `writable` (fd open for reading is enough). */
int os_map_shared_file_prot(int fd, size_t len, bool writable, void **out);

/* futex(2) on *word with operation op (FUTEX_WAIT or FUTEX_WAKE, flags
 * included) and value val, no timeout.  Returns 0 or an errno value
 * (FUTEX_WAIT: EAGAIN when *word no longer held val, EINTR); a waiter must
 * look at the word again either way. */
static inline int os_futex(atomic_int *word, int op, int val)
{
    long ret = os_syscall6(SYS_futex, (long)word, op, val, 0, 0, 0);
    return ret < 0 && ret >= -4095 ? (int)-ret : 0;
}

/* ---- descriptors and threads, with the same contract: raw system calls,
 * the caller's errno untouched ---- */

/* The calling thread's id. */
int os_gettid(void);

/* The process's id (getpid(2) without libc: the start and the exit
 * summary of every process ask it, and it was a page of libc's code to
 * fault in and a symbol to bind). */
int os_getpid(void);

/* open(2) of path: the new descriptor, or -errno. */
int os_open(const char *path, int flags, int mode);

/* close(2): 0 or the errno value. */
int os_close(int fd);

/* One write(2): the bytes written, or -errno. */
long os_write(int fd, const void *buf, size_t len);

/* One read(2): the bytes read, or -errno. */
long os_read(int fd, void *buf, size_t len);

/* One pread(2): the bytes read at offset, or -errno. */
long os_pread(int fd, void *buf, size_t len, long offset);

/* flock(2) (LOCK_EX, LOCK_UN): 0 or the errno value. */
int os_flock(int fd, int op);

/* fcntl(fd, F_DUPFD_CLOEXEC, base): the lowest free descriptor at or above
 * base, now a close-on-exec copy of fd, or -errno (EINVAL when base is not
 * below the soft RLIMIT_NOFILE, EMFILE when no number is free there). */
int os_dup_above(int fd, int base);

/* The identity of the file behind a descriptor (its device and inode
 * numbers), and its link count (0: removed from every directory) and size
 * when read.  From statx, asking for these fields only (fstat when the
 * kernel has no statx). */
struct os_file_id {
    unsigned long long dev, ino, links, size;
};

/* Fills *out for fd: 0, or the errno value (EBADF: fd is not open). */
int os_fd_identity(int fd, struct os_file_id *out);

/* pipe2(2): 0 (fds filled), or the errno value. */
int os_pipe2(int fds[2], int flags);

/* The soft RLIMIT_NOFILE (descriptors this process may open), or -1 when
 * it cannot be read; RLIM_INFINITY reads as INT_MAX. */
int os_fd_limit(void);

#endif

/* ---- reading this process's own memory without faulting ---- */

/* Copies up to len bytes at src into dst with process_vm_readv on this
 * process, which stops at the first unreadable byte instead of faulting:
 * the bytes copied, or -errno (EFAULT: src itself is unreadable; EPERM or
 * ENOSYS: a sandbox refuses the call). */
long os_read_self(void *dst, const void *src, size_t len);

/* As os_read_self, falling back where process_vm_readv is refused to a
 * pipe, a page at a time (write(2) from an unreadable page fails with
 * EFAULT rather than faulting).  Bytes it could not read stay as they were
 * in dst. */
void os_copy_unfaulting(void *dst, const void *src, size_t len);

/* getdents64(2): bytes filled, 0 at the end, or -errno. */
long os_getdents64(int fd, void *buf, size_t len);

/* tgkill(2) to thread tid of this process: 0 or the errno value. */
int os_tgkill(int tid, int sig);
