/* deepbind_lib.c - a library that allocates and keeps what it allocated;
 * loaded by deepbind.c with RTLD_DEEPBIND.  foreign.c loads it too, for
 * blocks of glibc's malloc (deepbind_alloc) to hand to cebox's free and
 * realloc. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

size_t deepbind_grab(void);
void *deepbind_alloc(size_t n);

static void *kept[2];

size_t deepbind_grab(void)
{
    kept[0] = malloc(1000);      /* from glibc's arena */
    kept[1] = malloc(512 << 10); /* a chunk glibc maps on its own */
    if (kept[0] == NULL || kept[1] == NULL) {
        return 0;
    }
    memset(kept[1], 1, 512 << 10);
    return 1000 + (512 << 10);
}

/* malloc as this library sees it: glibc's, the preload bypassed. */
void *deepbind_alloc(size_t n)
{
    return malloc(n);
}
