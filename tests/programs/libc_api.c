/*
 * libc_api.c - every function the preload library interposes, called once
 * with its result checked: run unboxed under `cebox run --only` it shows
 * that each one reaches glibc or the kernel intact.  Prints "api ok", or
 * the first call that misbehaved (exit 1).
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MUST(cond)                                       \
    do {                                                 \
        if (!(cond)) {                                   \
            printf("failed: %s (line %d)\n", #cond, __LINE__); \
            return 1;                                    \
        }                                                \
    } while (0)

int main(void)
{
    void *p = NULL;
    MUST(posix_memalign(&p, 256, 1000) == 0 && ((uintptr_t)p & 255) == 0);
    MUST(posix_memalign(&p, 3, 10) != 0); /* not a power of two: refused, p kept */
    void *q = aligned_alloc(64, 128), *v = valloc(100), *pv = pvalloc(100), *m = memalign(128, 10);
    MUST(q != NULL && ((uintptr_t)q & 63) == 0 && ((uintptr_t)m & 127) == 0);
    MUST(v != NULL && pv != NULL && ((uintptr_t)v & 4095) == 0 && ((uintptr_t)pv & 4095) == 0);
    char *c = calloc(10, 10);
    for (int i = 0; i < 100; i++) {
        MUST(c[i] == 0);
    }
    memset(c, 7, 100);
    c = realloc(c, 100000);
    MUST(c != NULL && c[99] == 7);
    c = reallocarray(c, 10, 20);
    MUST(c != NULL && c[99] == 7 && malloc_usable_size(c) >= 200);
    MUST(mallinfo2().uordblks >= 200);
    malloc_trim(0);
    MUST(mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1);
    char *mm = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    MUST(mm != MAP_FAILED);
    memset(mm, 1, 1 << 20);
    mm = mremap(mm, 1 << 20, 2 << 20, MREMAP_MAYMOVE);
    MUST(mm != MAP_FAILED && mm[12345] == 1);
    MUST(mprotect(mm, 4096, PROT_READ) == 0 && munmap(mm, 2 << 20) == 0);
    free(p);
    free(q);
    free(v);
    free(pv);
    free(m);
    free(c);
    puts("api ok");
    return 0;
}
