/*
 * replay.c - runs files through a fuzz target's LLVMFuzzerTestOneInput
 * without libFuzzer, so that every `make check` replays the checked-in
 * corpus (seeds and every input that once crashed) with whatever compiler
 * and sanitizers the build has.
 *
 *   replay_TARGET [FILE-OR-DIRECTORY...]
 *
 * Without arguments it replays $top_srcdir/tests/fuzz/corpus/TARGET (the
 * name is compiled in as FUZZ_TARGET).  Each input is read into a buffer
 * of exactly its size (an overread is a sanitizer report, not a quiet read
 * of the next byte).  Exit status: 0 when every input passed; a broken
 * property aborts; 1 when an input cannot be read or there is none (a
 * corpus that silently vanished must not pass).
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET must name the target (its corpus folder)"
#endif

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fprintf(stderr, "replay: %s: cannot stat\n", path);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size != 0 ? size : 1);
    if (data == NULL || fread(data, 1, size, f) != size) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    printf("replay %s (%zu bytes)\n", path, size);
    fflush(stdout); /* the name is in the log if the target crashes */
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of dir, in name order; returns how many, or -1. */
static long replay_directory(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **paths = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char **grown = realloc(paths, (n + 1) * sizeof *paths);
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(len);
        if (grown == NULL || path == NULL) {
            fprintf(stderr, "replay: out of memory\n");
            exit(1);
        }
        paths = grown;
        snprintf(path, len, "%s/%s", dir, e->d_name);
        paths[n++] = path;
    }
    closedir(d);
    qsort(paths, n, sizeof *paths, by_name);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISREG(st.st_mode)) {
            count = (count >= 0 && replay_file(paths[i]) == 0) ? count + 1 : -1;
        }
        free(paths[i]);
    }
    free(paths);
    return count;
}

static long replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        return replay_directory(path);
    }
    return replay_file(path) == 0 ? 1 : -1;
}

int main(int argc, char **argv)
{
    char fallback[4096];
    const char *srcdir = getenv("top_srcdir");
    snprintf(fallback, sizeof fallback, "%s/tests/fuzz/corpus/%s", srcdir != NULL ? srcdir : ".", FUZZ_TARGET);
    char *defaults[] = {fallback};
    char **paths = argc > 1 ? argv + 1 : defaults;
    int npaths = argc > 1 ? argc - 1 : 1;
    long total = 0;
    for (int i = 0; i < npaths; i++) {
        long n = replay_path(paths[i]);
        if (n < 0) {
            return 1;
        }
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    printf("%ld passed, 0 failed\n", total);
    return 0;
}
