/*
 * preload_api.c - run under `cebox run`: every interposed function behaves
 * as libc documents and as the CE heap and slot dictate.
 *
 * It misuses the API on purpose (bad frees, overflowing sizes, the
 * deprecated mallinfo), so it is built without the warnings for those.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box.h"

#define PAGE 4096u
#define BLOCK 0x10000u

static bool faults(volatile char *p)
{
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        (void)*p;
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

static void heap_sizes(void)
{
    char *a = malloc(1), *b = malloc(9), *c = malloc(100000);
    CHECK(in_box(a) && in_box(b) && in_box(c), "malloc'd blocks lie in the slot");
    CHECK(malloc_usable_size(a) == 8, "malloc(1) has the CE HeapSize 8 (got %zu)", malloc_usable_size(a));
    CHECK(malloc_usable_size(b) == 24, "malloc(9) has HeapSize 24 (got %zu)", malloc_usable_size(b));
    CHECK(((uintptr_t)c & 0xFFFF) == 0x20, "malloc(100000) is a large item at a 64 KB boundary + 0x20");
    CHECK(malloc_usable_size(c) == 102368, "malloc(100000) has HeapSize 102368 (got %zu)", malloc_usable_size(c));
    CHECK(((uintptr_t)a & 15) == 0 && ((uintptr_t)b & 15) == 0, "data is 16-byte aligned");
    free(a);
    free(b);
    free(c);
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) is 0");
    char *z = malloc(0);
    CHECK(z != NULL && malloc_usable_size(z) == 8, "malloc(0) is a real 8-byte block");
    free(z);
}

static void calloc_realloc(void)
{
    unsigned char *p = calloc(1000, 3);
    bool zero = p != NULL;
    for (int i = 0; zero && i < 3000; i++) {
        zero = p[i] == 0;
    }
    CHECK(zero, "calloc zero-fills");
    errno = 0;
    CHECK(calloc(SIZE_MAX / 2, 4) == NULL && errno == ENOMEM, "calloc overflow: NULL, ENOMEM");
    memset(p, 7, 3000);
    p = realloc(p, 200000);
    CHECK(p != NULL && p[0] == 7 && p[2999] == 7, "realloc keeps the contents when it moves");
    p = realloc(p, 10);
    CHECK(p != NULL && p[9] == 7, "realloc shrinks");
    CHECK(realloc(p, 0) == NULL, "realloc(p, 0) frees and returns NULL");
    int *arr = reallocarray(NULL, 100, sizeof(int));
    CHECK(arr != NULL, "reallocarray");
    errno = 0;
    CHECK(reallocarray(arr, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM, "reallocarray overflow: ENOMEM");
    free(arr);
}

static void alignment(void)
{
    void *p = NULL;
    CHECK(posix_memalign(&p, 64, 100) == 0 && ((uintptr_t)p & 63) == 0 && in_box(p),
          "posix_memalign(64) in the slot");
    CHECK(malloc_usable_size(p) >= 100, "its usable size covers the request");
    free(p);
    CHECK(posix_memalign(&p, 4096, 5000) == 0 && ((uintptr_t)p & 4095) == 0, "posix_memalign(4096)");
    free(p);
    CHECK(posix_memalign(&p, 3, 10) == EINVAL, "posix_memalign(3): EINVAL");
    errno = 0;
    CHECK(aligned_alloc(24, 48) == NULL && errno == EINVAL, "aligned_alloc(24): EINVAL");
    void *q = aligned_alloc(256, 512);
    CHECK(q != NULL && ((uintptr_t)q & 255) == 0, "aligned_alloc(256)");
    q = realloc(q, 100000);
    CHECK(q != NULL, "realloc of an over-aligned block");
    free(q);
    void *v = valloc(10), *pv = pvalloc(5000), *m = memalign(48, 10);
    CHECK(((uintptr_t)v & 4095) == 0 && ((uintptr_t)pv & 4095) == 0, "valloc and pvalloc are page-aligned");
    CHECK(malloc_usable_size(pv) >= 8192, "pvalloc rounds the size up to pages");
    CHECK(((uintptr_t)m & 63) == 0, "memalign(48) rounds the alignment up to 64");
    free(v);
    free(pv);
    free(m);
}

static void errno_and_info(void)
{
    errno = 1234;
    void *p = malloc(10);
    free(p);
    free(NULL);
    CHECK(errno == 1234, "malloc and free leave errno alone");
    struct mallinfo2 before = mallinfo2();
    char *big = malloc(50000);
    memset(big, 1, 50000);
    __asm__ volatile("" : : "r"(big) : "memory"); /* keep the block: the compiler may drop it */
    struct mallinfo2 after = mallinfo2();
    CHECK(after.uordblks >= before.uordblks + 50000, "mallinfo2 counts live bytes (%zu, then %zu)",
          before.uordblks, after.uordblks);
    free(big);
    struct mallinfo mi = mallinfo();
    CHECK(mi.arena > 0, "mallinfo reports the committed heap");
    CHECK(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1, "mallopt is accepted");
    malloc_trim(0);
}

static void mappings(void)
{
    char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED && in_box(p) && ((uintptr_t)p & (BLOCK - 1)) == 0,
          "anonymous mmap reserves a block of the slot");
    CHECK(p[0] == 0 && p[3 * PAGE - 1] == 0, "its pages read as zero");
    memset(p, 1, 3 * PAGE);
    char *r = mmap(NULL, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r != MAP_FAILED && in_box(r), "a PROT_NONE mapping under 2 MB is a reservation in the slot");
    CHECK(faults(r), "reserved pages fault");
    CHECK(mprotect(r, 2 * PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect commits");
    r[PAGE] = 5;
    CHECK(mprotect(r, 2 * PAGE, PROT_NONE) == 0 && mprotect(r, 2 * PAGE, PROT_READ) == 0 && r[PAGE] == 5,
          "PROT_NONE and back keeps the contents");
    char *lma = mmap(NULL, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(lma != MAP_FAILED && !in_box(lma), "a PROT_NONE mapping of 4 MB goes to the Large Memory Area");
    CHECK(mprotect(lma, PAGE, PROT_READ | PROT_WRITE) == 0 && (lma[0] = 1) == 1, "and can be committed");
    CHECK(munmap(lma, 4 << 20) == 0, "and unmapped");
    char *g = mremap(p, 3 * PAGE, 40 * PAGE, MREMAP_MAYMOVE);
    CHECK(g != MAP_FAILED && g[0] == 1 && g[3 * PAGE - 1] == 1 && g[39 * PAGE] == 0,
          "mremap grows, keeping the contents");
    CHECK(mremap(g, 40 * PAGE, 2 * PAGE, 0) == g, "mremap shrinks in place");
    CHECK(faults(g + 2 * PAGE), "the pages given up fault");
    CHECK(munmap(g, 2 * PAGE) == 0 && faults(g), "munmap: the pages fault");
    CHECK(munmap(r, 1 << 20) == 0, "munmap of the reservation");
    errno = 0;
    CHECK(munmap((char *)r + 1, PAGE) == -1 && errno == EINVAL, "munmap of an unaligned address: EINVAL");
    char *fixed = mmap(r, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(fixed == r && (fixed[0] = 3) == 3, "MAP_FIXED at a free block of the slot");
    munmap(fixed, PAGE);
    int fd = open("/proc/self/exe", O_RDONLY);
    char *file = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(file != MAP_FAILED && !in_box(file) && memcmp(file, "\177ELF", 4) == 0,
          "a file mapping stays outside the slot");
    munmap(file, PAGE);
    close(fd);
    char *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED && !in_box(shared), "shared anonymous memory stays outside the slot");
    munmap(shared, PAGE);
}

/* Fill the box with 1 MB blocks: NULL and ENOMEM at the end, never a crash,
 * and everything usable again after the frees. */
static void exhaustion(void)
{
    static void *blocks[4096];
    int n = 0;
    errno = 0;
    while (n < 4096 && (blocks[n] = malloc(1 << 20)) != NULL) {
        memset(blocks[n], n, 1 << 20);
        n++;
    }
    CHECK(n > 5 && n < 4096 && errno == ENOMEM, "malloc runs out of the box with ENOMEM (after %d MB)", n);
    errno = 0;
    CHECK(mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED &&
              errno == ENOMEM,
          "mmap fails with ENOMEM too");
    bool intact = true;
    for (int i = 0; i < n; i++) {
        intact = intact && ((unsigned char *)blocks[i])[12345] == (unsigned char)i;
        free(blocks[i]);
    }
    CHECK(intact, "every block kept its contents");
    void *again = malloc(1 << 20);
    CHECK(again != NULL, "after the frees, memory is there again");
    free(again);
}

static void bad_frees(void)
{
    char *p = malloc(64);
    strcpy(p, "still here");
    free(p + 16); /* interior pointer: reported, not followed */
    CHECK(strcmp(p, "still here") == 0, "an interior free leaves the block alone");
    free(p);
    free(p); /* double free: reported */
    static char not_heap[32];
    free(not_heap); /* outside the slot: ignored */
    void *q = malloc(64);
    CHECK(q != NULL, "the heap works after bad frees");
    free(q);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    CHECK(box_present(), "running inside cebox");
    if (!box_present()) {
        return box_done();
    }
    heap_sizes();
    calloc_realloc();
    alignment();
    errno_and_info();
    mappings();
    bad_frees();
    exhaustion();
    return box_done();
}
