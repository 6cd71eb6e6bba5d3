/* crash.c - exits with the status or signal given: `crash exit 3`, `crash
 * segv`; `crash closeerr` closes its stderr at exit, as coreutils'
 * close_stdout does, before the library destructors run. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void close_stderr(void)
{
    fclose(stderr);
}

int main(int argc, char **argv)
{
    char *p = malloc(100);
    (void)p;
    if (argc > 2 && strcmp(argv[1], "exit") == 0) {
        return atoi(argv[2]);
    }
    if (argc > 1 && strcmp(argv[1], "segv") == 0) {
        raise(SIGSEGV);
    }
    if (argc > 1 && strcmp(argv[1], "closeerr") == 0) {
        atexit(close_stderr);
    }
    return 0;
}
