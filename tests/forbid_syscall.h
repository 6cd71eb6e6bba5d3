/*
 * forbid_syscall.h - for tests: from now on one system call of this process
 * fails with EPERM, as under a sandbox's seccomp filter.  A filter cannot be
 * taken back: install it in a child, or in a process of its own.
 * install_syscall_filter installs a filter program of the caller's.
 */
#ifndef CEBOX_TEST_FORBID_SYSCALL_H
#define CEBOX_TEST_FORBID_SYSCALL_H

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>

/* Installs a filter program for the rest of this process's life. */
static inline bool install_syscall_filter(struct sock_filter *code, unsigned short len)
{
    struct sock_fprog prog = {.len = len, .filter = code};
    /* prctl reads its arguments as unsigned longs */
    return prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) == 0 &&
           prctl(PR_SET_SECCOMP, (unsigned long)SECCOMP_MODE_FILTER, (unsigned long)&prog) == 0;
}

static inline bool forbid_syscall(unsigned nr)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    return install_syscall_filter(code, sizeof code / sizeof code[0]);
}

#endif
