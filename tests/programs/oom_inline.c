/*
 * oom_inline.c - a failing allocation inside inlined code, for
 * tests/report.sh: built with -O2 -g, the allocation sits in a helper
 * inlined into a function inlined into main, so its return address belongs
 * to main's machine code while the source has three levels:
 *
 *   main -> inline_outer (inlined) -> inline_inner (inlined) -> malloc
 *
 * and, for comparison, one call of a function that is not inlined:
 *
 *   main -> kept_frame (not inlined) -> malloc
 *
 * Both ask for more than the slot (run it under `cebox run --slot-size
 * 1M`), so both fail whatever the slot holds.  always_inline makes the
 * inlining certain with gcc and clang.  The test finds the lines of the
 * calls by their SITE and CALL markers: keep each marker on the line of
 * its call.
 */
#include <stdio.h>
#include <stdlib.h>

#define ALWAYS_INLINE __attribute__((always_inline)) static inline
#define NOINLINE __attribute__((noinline))

static volatile size_t big = (size_t)2 << 20; /* read at run time: more than a 1 MB slot */
static volatile int sink;

ALWAYS_INLINE void *inline_inner(size_t n)
{
    void *p = malloc(n); /* SITE:inner */
    sink += p != NULL;
    return p;
}

ALWAYS_INLINE void *inline_outer(size_t n)
{
    sink++;
    void *p = inline_inner(n + sink); /* CALL:inner */
    sink++;
    return p;
}

NOINLINE static void *kept_frame(size_t n)
{
    void *p = malloc(n); /* SITE:kept */
    sink += p != NULL;
    return p;
}

int main(void)
{
    int failed = 0;
    void *p = inline_outer(big); /* CALL:outer */
    failed += p == NULL;
    free(p);
    p = kept_frame(big); /* CALL:kept */
    failed += p == NULL;
    free(p);
    printf("failed %d\n", failed);
    return 0;
}
