/*
 * heapholes.c - a heap with holes, then a short peak, for the timeline:
 * `heapholes` allocates 64 blocks of 10000 bytes and frees every other one
 * (32 free items, none next to another, each spanning at least one whole
 * page), waits 350 ms, then holds a 6 MB block for 100 ms, frees it and
 * waits 350 ms more before it exits 0 (1 when an allocation failed).
 * `heapholes fork`: forks; the child allocates 2 MB in 4000-byte blocks,
 * holds them 300 ms and exits; the parent leaves its heap alone while it
 * waits for the child, then exits (whose timeline must not show the
 * child's heap).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int fork_child_heap(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 512; i++) {
            char *p = malloc(4000);
            if (p == NULL) {
                _exit(1);
            }
            memset(p, 3, 4000);
        }
        pause_ms(300);
        exit(0);
    }
    int status = 1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return 1;
    }
    pause_ms(100);
    puts("heapholes: forked");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        return fork_child_heap();
    }
    static char *blocks[64];
    for (int i = 0; i < 64; i++) {
        if ((blocks[i] = malloc(10000)) == NULL) {
            return 1;
        }
        memset(blocks[i], 1, 10000);
    }
    for (int i = 1; i < 64; i += 2) {
        free(blocks[i]);
    }
    pause_ms(350);
    char *big = malloc(6u << 20);
    if (big == NULL) {
        return 1;
    }
    memset(big, 2, 6u << 20);
    pause_ms(100);
    free(big);
    pause_ms(350);
    for (int i = 0; i < 64; i += 2) {
        free(blocks[i]);
    }
    puts("heapholes: done");
    return 0;
}
