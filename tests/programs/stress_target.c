/*
 * stress_target.c - the program tests/stress.sh runs campaigns on.  Its
 * allocation sites: a checked malloc (load_config: an error message and
 * exit 3), an unchecked malloc (make_label) and an unchecked realloc in
 * another function (grow_table), a malloc that frees its cache and tries
 * again (cache_fill), and one in a second thread (worker: checked).  Only
 * the two unchecked ones can crash.  "hang": an allocation whose failure
 * makes it wait forever; "exec": the same program exec'd in a forked child
 * (the parent exits 1 when the child did not exit 0).  The SITE: markers
 * are what the test looks for.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *cache;

__attribute__((noinline, noipa)) static int load_config(void)
{
    char *cfg = malloc(200);
    if (cfg == NULL) {
        fprintf(stderr, "stress_target: cannot allocate the configuration\n");
        exit(3);
    }
    memset(cfg, 'c', 200);
    int sum = cfg[7];
    free(cfg);
    return sum;
}

/* no_sanitize_undefined: a UBSan build must still die of SIGSEGV here */
__attribute__((noinline, noipa, no_sanitize_undefined)) static char *make_label(size_t n)
{
    char *label = malloc(n); /* SITE:label-malloc */
    label[0] = 'L';          /* SITE:label-crash */
    label[n - 1] = '\0';
    return label;
}

__attribute__((noinline, noipa, no_sanitize_undefined)) static int *grow_table(int *table, size_t n)
{
    table = realloc(table, n * sizeof *table); /* SITE:table-realloc */
    table[n - 1] = (int)n;                     /* SITE:table-crash */
    return table;
}

/* On failure, gives the cache back and tries once more. */
__attribute__((noinline, noipa)) static char *cache_fill(size_t n)
{
    char *p = malloc(n);
    if (p == NULL) {
        free(cache);
        cache = NULL;
        p = malloc(n);
    }
    return p;
}

static void *worker(void *arg)
{
    char *w = malloc(333);
    if (w == NULL) {
        return (void *)1;
    }
    memset(w, 0, 333);
    free(w);
    return arg;
}

static int hang_on_failure(void)
{
    char *p = malloc(4000);
    while (p == NULL) {
        pause(); /* waits for memory that never comes */
    }
    free(p);
    return 0;
}

static int run_child(void)
{
    pid_t pid = fork();
    if (pid < 0) {
        return 1;
    }
    if (pid == 0) {
        execl("/proc/self/exe", "stress_target", (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "hang") == 0) {
        return hang_on_failure();
    }
    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        return run_child();
    }
    int sum = load_config();
    cache = malloc(1000);
    char *label = make_label(24);
    int *table = calloc(4, sizeof *table);
    if (table == NULL) {
        fprintf(stderr, "stress_target: no memory for the table\n");
        return 4;
    }
    table = grow_table(table, 64);
    char *big = cache_fill(5000);
    if (big == NULL) {
        fprintf(stderr, "stress_target: no memory for the buffer\n");
        return 4;
    }
    pthread_t t;
    void *res = NULL;
    if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, &res) != 0 || res != NULL) {
        fprintf(stderr, "stress_target: the worker failed\n");
        return 5;
    }
    free(big);
    free(table);
    free(label);
    free(cache);
    return sum == 'c' ? 0 : 6;
}
