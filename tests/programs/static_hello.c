/* static_hello.c - linked statically: LD_PRELOAD cannot reach it. */
#include <stdio.h>

int main(void)
{
    puts("hello");
    return 0;
}
