/*
 * box.h - for test programs run under the preload library: is cebox there,
 * and does a pointer lie in its slot?  (And the TAP-style CHECK lines, and a
 * signal handler set the plain way.)  cebox_slot_info is looked up weakly,
 * so the same program runs (and says so) without cebox.
 */
#ifndef CEBOX_TEST_BOX_H
#define CEBOX_TEST_BOX_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cebox.h"

#ifdef __cplusplus
extern "C" {
#endif
extern void cebox_slot_info(struct cebox_slot_info *out) __attribute__((weak));
#ifdef __cplusplus
}
#endif

static inline bool box_present(void)
{
    return cebox_slot_info != NULL;
}

static inline bool in_box(const void *p)
{
    if (!box_present()) {
        return false;
    }
    struct cebox_slot_info info;
    cebox_slot_info(&info);
    return (uintptr_t)p >= info.base && (uintptr_t)p < info.base + info.size;
}

/* A plain handler for sig (SA_RESTART, nothing else blocked in it). */
static inline void box_set_handler(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static int box_failures, box_checks;

#define CHECK(cond, ...)                                              \
    do {                                                              \
        box_checks++;                                                 \
        if (cond) {                                                   \
            printf("ok %d - ", box_checks);                           \
        } else {                                                      \
            box_failures++;                                           \
            printf("not ok %d - (%s:%d) ", box_checks, __FILE__, __LINE__); \
        }                                                             \
        printf(__VA_ARGS__);                                          \
        printf("\n");                                                 \
    } while (0)

static inline int box_done(void)
{
    printf("%d passed, %d failed\n", box_checks - box_failures, box_failures);
    return box_failures == 0 ? 0 : 1;
}

#endif
