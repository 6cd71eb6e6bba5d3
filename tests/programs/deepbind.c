/* deepbind.c - loads tests/programs/deepbind_lib.so (path in argv[1]) with
 * RTLD_DEEPBIND, so that the library's malloc binds to libc's own rather
 * than to the preloaded one, and has it allocate: the exit summary of
 * `cebox run` must say that memory went around the emulation.  Exits 0
 * when the library ran, 1 otherwise. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: deepbind LIBRARY\n");
        return 1;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
    if (lib == NULL) {
        fprintf(stderr, "deepbind: %s\n", dlerror());
        return 1;
    }
    size_t (*grab)(void);
    void *sym = dlsym(lib, "deepbind_grab");
    if (sym == NULL) {
        fprintf(stderr, "deepbind: %s\n", dlerror());
        return 1;
    }
    *(void **)&grab = sym;
    size_t held = grab();
    printf("the library holds %zu bytes\n", held);
    free(malloc(100)); /* the program's own malloc still reaches cebox */
    return held != 0 ? 0 : 1;
}
