/*
 * fragment.c - fragments the slot on purpose: `fragment ROUNDS BIG [MS]`.
 * Round i maps a short-lived buffer of 2 + i blocks (64 KB each), unmaps
 * it, and maps a small long-lived one (one block, MAP_FIXED) right after
 * where it was: each large buffer is one block larger than the hole the
 * last one left, so it goes past every hole (first fit), and the slot's free space stays high (only
 * the small ones stay) while its largest free run falls round after
 * round.  It sleeps MS milliseconds (default 30) between rounds, so that
 * the timeline sees each one, then asks for BIG blocks in one mmap, then
 * unmaps the small ones (the slot is whole again) and sleeps once more.
 * Prints "big: ok" or "big: failed"; exits 0 when every round's mappings
 * succeeded, 1 otherwise.  `fragment ROUNDS BIG MS FAILS` first makes FAILS
 * mmap requests larger than any slot (each fails and is logged), to fill
 * a log up to --log-limit before the rounds.
 *
 * `fragment --ticks ...` also waits, after each round and after the
 * unmapping, until cebox run has sampled it since (at most 10 s each): a
 * timeline check then need not hope that a tick came within MS on a
 * loaded machine.  "Sampled since" is read in its own log
 * ($CEBOX_OUT/cebox-PID.log): the second tick sample that begins past the
 * log's end at the mark.  cebox run ticks one at a time, so at most one
 * tick that read the figures before the mark can write after it.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "record/logformat.h"

#define BLOCK (64 * 1024)

static void *map_blocks(void *at, size_t n)
{
    int fixed = at != NULL ? MAP_FIXED : 0;
    void *p = mmap(at, n * BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | fixed, -1, 0);
    if (p != MAP_FAILED) {
        ((volatile char *)p)[0] = 1; /* one committed page each */
    }
    return p;
}

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Walks the log's records: the end of the last whole one, and how many
 * tick samples begin at or past `from`. */
static off_t walk_log(const char *path, off_t from, int *ticks)
{
    *ticks = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    off_t at = 0;
    unsigned char head[LOG_HEAD_SIZE + 9];
    for (;;) {
        ssize_t n = pread(fd, head, sizeof head, at);
        if (n < LOG_HEAD_SIZE) {
            break;
        }
        uint32_t magic, len;
        uint16_t type;
        memcpy(&magic, head, 4); /* little-endian, as the x86-64 host */
        memcpy(&type, head + 4, 2);
        memcpy(&len, head + 8, 4);
        off_t end = at + LOG_HEAD_SIZE + (off_t)len;
        if (magic != LOG_MAGIC || end > lseek(fd, 0, SEEK_END)) {
            break; /* not begun, or a record still being appended */
        }
        bool tick = n == (ssize_t)sizeof head && head[LOG_HEAD_SIZE + 8] == LOG_SAMPLE_TICK; /* its kind */
        if (at >= from && type == LOG_REC_SAMPLE && tick) {
            (*ticks)++;
        }
        at = end;
    }
    close(fd);
    return at;
}

/* --ticks: until cebox run has sampled the figures as they are now. */
static void wait_sampled(bool ticks)
{
    const char *dir = getenv("CEBOX_OUT");
    if (!ticks || dir == NULL) {
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/cebox-%d.log", dir, (int)getpid());
    int seen;
    off_t mark = walk_log(path, 0, &seen);
    for (int ms = 0; ms < 10000; ms++) {
        walk_log(path, mark, &seen);
        if (seen >= 2) {
            return;
        }
        pause_ms(1);
    }
    printf("no tick sampled it within 10 s\n");
}

#define MAX_ROUNDS 64

int main(int argc, char **argv)
{
    char *smalls[MAX_ROUNDS];
    bool ticks = argc > 1 && strcmp(argv[1], "--ticks") == 0;
    if (ticks) {
        argc--;
        argv++;
    }
    int rounds = argc > 1 ? atoi(argv[1]) : 8;
    rounds = rounds < MAX_ROUNDS ? rounds : MAX_ROUNDS;
    size_t big = argc > 2 ? (size_t)atoi(argv[2]) : 20;
    long ms = argc > 3 ? atol(argv[3]) : 30;
    for (int i = argc > 4 ? atoi(argv[4]) : 0; i > 0; i--) {
        if (mmap(NULL, (size_t)1 << 31, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
            printf("a 2 GB mapping did not fail\n");
            return 1;
        }
    }
    for (int i = 0; i < rounds; i++) {
        size_t n = 2 + (size_t)i;
        char *large = map_blocks(NULL, n + 1);
        if (large == MAP_FAILED) {
            printf("round %d: mapping failed\n", i);
            return 1;
        }
        munmap(large, (n + 1) * BLOCK);
        smalls[i] = map_blocks(large + n * BLOCK, 1);
        if (smalls[i] == MAP_FAILED) {
            printf("round %d: small mapping failed\n", i);
            return 1;
        }
        pause_ms(ms);
        wait_sampled(ticks);
    }
    void *p = map_blocks(NULL, big);
    printf("big: %s\n", p == MAP_FAILED ? "failed" : "ok");
    fflush(stdout);
    for (int i = 0; i < rounds; i++) {
        munmap(smalls[i], BLOCK);
    }
    wait_sampled(ticks); /* then the pause, as without --ticks */
    pause_ms(ms);
    return 0;
}
