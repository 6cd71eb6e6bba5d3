/*
 * oom_inline.c - a failing allocation inside inlined code, for
 * tests/report.sh: built with -O2 -g, the allocation sits in a helper
 * inlined into a function inlined into main, so its return address belongs
 * to main's machine code while the source has three levels:
 *
 *   main -> inline_outer (inlined) -> inline_inner (inlined) -> malloc
 *
 * a chain of 20 inlined functions, longer than the report's frame buffer:
 *
 *   main -> deep20 (inlined) -> deep19 -> ... -> deep1 (inlined) -> malloc
 *
 * and, for comparison, one call of a function that is not inlined:
 *
 *   main -> kept_frame (not inlined) -> malloc
 *
 * All ask for more than the slot (run it under `cebox run --slot-size
 * 1M`), so all fail whatever the slot holds; each asks for its own size
 * (2 MB + 1, + 2, + 0) for the test to tell them apart.  always_inline
 * makes the inlining certain with gcc and clang.  The test finds the lines
 * of the calls by their SITE, CALL and DEEP markers: keep each marker on
 * the line of its call, and the DEEP lines one after another.
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

/* deepK calls deepJ on the line of its DEEP: each level has its own line. */
#define DEEP(k, j) ALWAYS_INLINE void *deep##k(size_t n) { sink++; void *p = deep##j(n); sink++; return p; }

ALWAYS_INLINE void *deep1(size_t n)
{
    void *p = malloc(n); /* SITE:deep1 */
    sink += p != NULL;
    return p;
}
DEEP(2, 1) /* DEEP:first */
DEEP(3, 2)
DEEP(4, 3)
DEEP(5, 4)
DEEP(6, 5)
DEEP(7, 6)
DEEP(8, 7)
DEEP(9, 8)
DEEP(10, 9)
DEEP(11, 10)
DEEP(12, 11)
DEEP(13, 12)
DEEP(14, 13)
DEEP(15, 14)
DEEP(16, 15)
DEEP(17, 16)
DEEP(18, 17)
DEEP(19, 18)
DEEP(20, 19)

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
    p = deep20(big + 2); /* CALL:deep */
    failed += p == NULL;
    free(p);
    p = kept_frame(big); /* CALL:kept */
    failed += p == NULL;
    free(p);
    printf("failed %d\n", failed);
    return 0;
}
