/* crash.c - exits with the status or signal given: `crash exit 3`, `crash segv`. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

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
    return 0;
}
