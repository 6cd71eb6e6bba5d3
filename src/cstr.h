/*
 * cstr.h - the few string functions a process start needs, written out.
 *
 * Every process under cebox reads its settings, matches --only, maps its
 * libraries' names and notes its arguments in the preload library's
 * constructor.  Each libc string function it called cost the start a lazy
 * binding (some 750 instructions) and often a page fault on its code in
 * libc; the strings compared are short (option names, library names,
 * paths), where libc's vector code gains nothing.
 *
 * Invariant: these loops must stay loops (a compiler that turned one into
 * the library call would bring the binding back): checked with objdump -d,
 * no str*@plt call in the start's functions (GCC 12-14 at -O2 keep them).
 */
#ifndef CEBOX_CSTR_H
#define CEBOX_CSTR_H

#include <stdbool.h>
#include <stddef.h>

/* strlen(s). */
static inline size_t cstr_len(const char *s)
{
    const char *p = s;
    while (*p != '\0') {
        p++;
    }
    return (size_t)(p - s);
}

/* The bytes of s before its first c or its end (strcspn with one byte). */
static inline size_t cstr_span_before(const char *s, char c)
{
    size_t n = 0;
    while (s[n] != '\0' && s[n] != c) {
        n++;
    }
    return n;
}

/* strcmp(a, b) == 0. */
static inline bool cstr_equal(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* Does s start with prefix?  (strncmp(s, prefix, strlen(prefix)) == 0) */
static inline bool cstr_has_prefix(const char *s, const char *prefix)
{
    while (*prefix != '\0' && *s == *prefix) {
        s++;
        prefix++;
    }
    return *prefix == '\0';
}

/* The first c in s, or NULL (strchr for c != 0). */
static inline const char *cstr_find(const char *s, char c)
{
    for (; *s != '\0'; s++) {
        if (*s == c) {
            return s;
        }
    }
    return NULL;
}

/* The last c in s, or NULL (strrchr for c != 0). */
static inline const char *cstr_find_last(const char *s, char c)
{
    const char *last = NULL;
    for (; *s != '\0'; s++) {
        last = *s == c ? s : last;
    }
    return last;
}

#endif
