/*
 * symbolize.c - offline symbolization with libdw (see symbolize.h).
 */
#include "report/symbolize.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sym_module {
    char *path;
    unsigned char id[LOG_MAX_BUILD_ID];
    size_t idlen;
    Dwfl *dwfl;        /* NULL when the module cannot be read */
    Dwfl_Module *mod;
    char *why;         /* why not, for the warning; NULL when silent */
};

struct symbolizer {
    struct sym_module *mods;
    size_t nmods;
    char **strings; /* demangled names, freed with the symbolizer */
    size_t nstrings;
    char *(*demangle)(const char *name, char *buf, size_t *len, int *status);
    void *libstdcxx;
};

static char *debuginfo_path; /* NULL: libdw's default, ":.debug:/usr/lib/debug" */

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "cebox report: out of memory\n");
        exit(2);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

struct symbolizer *symbolizer_new(void)
{
    struct symbolizer *s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    /* C++ names, when the C++ runtime is installed (it is not linked). */
    s->libstdcxx = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
    if (s->libstdcxx != NULL) {
        *(void **)&s->demangle = dlsym(s->libstdcxx, "__cxa_demangle");
    }
    return s;
}

void symbolizer_free(struct symbolizer *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->nmods; i++) {
        if (s->mods[i].dwfl != NULL) {
            dwfl_end(s->mods[i].dwfl);
        }
        free(s->mods[i].path);
        free(s->mods[i].why);
    }
    free(s->mods);
    for (size_t i = 0; i < s->nstrings; i++) {
        free(s->strings[i]);
    }
    free(s->strings);
    if (s->libstdcxx != NULL) {
        dlclose(s->libstdcxx);
    }
    free(s);
}

static const char *keep(struct symbolizer *s, char *str)
{
    char **grown = realloc(s->strings, (s->nstrings + 1) * sizeof *grown);
    if (grown == NULL) {
        free(str);
        return NULL;
    }
    s->strings = grown;
    s->strings[s->nstrings++] = str;
    return str;
}

/* A symbol's name for people: demangled, without its version
 * ("__libc_start_main@@GLIBC_2.34" is __libc_start_main). */
static const char *demangled(struct symbolizer *s, const char *name)
{
    if (name != NULL && strchr(name, '@') != NULL) {
        char *plain = strdup(name);
        if (plain == NULL) {
            return name;
        }
        plain[strcspn(plain, "@")] = '\0';
        const char *kept = keep(s, plain);
        name = kept != NULL ? kept : name;
    }
    if (name == NULL || s->demangle == NULL || strncmp(name, "_Z", 2) != 0) {
        return name;
    }
    int status = -1;
    char *d = s->demangle(name, NULL, NULL, &status);
    if (d == NULL || status != 0) {
        free(d);
        return name;
    }
    const char *kept = keep(s, d);
    return kept != NULL ? kept : name;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* A Dwfl holding the ELF file at path, reported at address 0 so that
 * addresses are the module's own (link-time) ones. */
static Dwfl *open_elf(const char *name, const char *path, Dwfl_Module **mod)
{
    Dwfl *d = dwfl_begin(&callbacks);
    if (d == NULL) {
        return NULL;
    }
    dwfl_report_begin(d);
    *mod = dwfl_report_elf(d, name, path, -1, 0, false);
    dwfl_report_end(d, NULL, NULL);
    if (*mod == NULL) {
        dwfl_end(d);
        return NULL;
    }
    return d;
}

static bool same_build_id(Dwfl_Module *mod, const unsigned char *id, size_t idlen)
{
    const unsigned char *bits;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(mod, &bits, &vaddr);
    if (idlen == 0 || n <= 0) {
        return true; /* nothing to compare */
    }
    return (size_t)n == idlen && memcmp(bits, id, idlen) == 0;
}

static char *printf_dup(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *out = xmalloc(n);
    snprintf(out, n, "%s%s", a, b);
    return out;
}

static void open_module(struct sym_module *sm)
{
    const char *name = base_name(sm->path);
    if (strncmp(name, "linux-vdso", 10) == 0 || strncmp(name, "linux-gate", 10) == 0) {
        return; /* the kernel's: no file, nothing to say */
    }
    if (access(sm->path, R_OK) == 0) {
        sm->dwfl = open_elf(name, sm->path, &sm->mod);
        if (sm->dwfl != NULL && !same_build_id(sm->mod, sm->id, sm->idlen)) {
            dwfl_end(sm->dwfl);
            sm->dwfl = NULL;
            sm->mod = NULL;
            sm->why = xstrdup("rebuilt since the run (its build-id differs)");
        } else if (sm->dwfl == NULL) {
            sm->why = printf_dup("not an ELF file libdw can read: ", dwfl_errmsg(-1));
        }
    } else {
        sm->why = xstrdup("no longer there");
    }
    if (sm->dwfl == NULL && sm->idlen > 1) {
        /* Its separate debug file, by build-id, holds the symbols too. */
        char path[64 + 2 * LOG_MAX_BUILD_ID];
        int n = snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%02x/", sm->id[0]);
        for (size_t i = 1; i < sm->idlen && n > 0 && (size_t)n < sizeof path - 8; i++) {
            n += snprintf(path + n, sizeof path - (size_t)n, "%02x", sm->id[i]);
        }
        snprintf(path + n, sizeof path - (size_t)n, ".debug");
        if (access(path, R_OK) == 0) {
            sm->dwfl = open_elf(name, path, &sm->mod);
            if (sm->dwfl != NULL) {
                free(sm->why);
                sm->why = NULL;
            }
        }
    }
}

static struct sym_module *module_for(struct symbolizer *s, const struct lr_module *m)
{
    for (size_t i = 0; i < s->nmods; i++) {
        struct sym_module *sm = &s->mods[i];
        if (strcmp(sm->path, m->path) == 0 && sm->idlen == m->build_id_len &&
            memcmp(sm->id, m->build_id, m->build_id_len) == 0) {
            return sm;
        }
    }
    struct sym_module *grown = realloc(s->mods, (s->nmods + 1) * sizeof *grown);
    if (grown == NULL) {
        return NULL;
    }
    s->mods = grown;
    struct sym_module *sm = &s->mods[s->nmods++];
    memset(sm, 0, sizeof *sm);
    sm->path = xstrdup(m->path);
    sm->idlen = m->build_id_len;
    memcpy(sm->id, m->build_id, m->build_id_len);
    open_module(sm);
    return sm;
}

/* The name of a subprogram or inlined subroutine DIE: its linkage name
 * (demangled) if it has one, else its plain name. */
static const char *die_name(struct symbolizer *s, Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (name == NULL) {
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
    }
    if (name != NULL) {
        return demangled(s, name);
    }
    return dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
}

/* Where an inlined subroutine was called from. */
static void call_site(Dwarf_Die *cu, Dwarf_Die *inl, const char **file, int *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word idx, ln;
    Dwarf_Files *files;
    size_t nfiles;
    *file = NULL;
    *line = 0;
    if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &idx) == 0 &&
        dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && idx < nfiles) {
        *file = dwarf_filesrc(files, idx, NULL, NULL);
    }
    if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &ln) == 0) {
        *line = (int)ln;
    }
}

/* The compilation unit holding address a of the module.  libdw finds it
 * through .debug_aranges, which clang does not emit (and libdw before 0.189
 * has no other way), so without it the units' own ranges are walked. */
static Dwarf_Die *unit_of(Dwfl_Module *mod, Dwarf_Addr a, Dwarf_Die *storage, Dwarf_Addr *bias)
{
    Dwarf_Die *cu = dwfl_module_addrdie(mod, a, bias);
    if (cu != NULL) {
        return cu;
    }
    while ((cu = dwfl_module_nextcu(mod, cu, bias)) != NULL) {
        if (dwarf_haspc(cu, a - *bias) > 0) {
            *storage = *cu;
            return storage;
        }
    }
    return NULL;
}

/* The scopes holding address a of unit cu, innermost first, in the unit's
 * own tree: each inlined subroutine, then the function it was inlined into,
 * up to the unit.  dwarf_getscopes alone is not enough: past the innermost
 * inlined subroutine it continues through that function's abstract
 * definition, so the functions it was inlined into (main, say) would be
 * lost; dwarf_getscopes_die walks the parents of that innermost scope
 * instead, as eu-addr2line -i does.  Returns how many (0 when none, the
 * array then NULL); the caller frees *scopes. */
static int concrete_scopes(Dwarf_Die *cu, Dwarf_Addr a, Dwarf_Die **scopes)
{
    *scopes = NULL;
    Dwarf_Die *found = NULL;
    int n = dwarf_getscopes(cu, a, &found);
    if (n <= 0) {
        free(found);
        return 0;
    }
    Dwarf_Die innermost = found[0];
    Dwarf_Die *chain = NULL;
    int m = dwarf_getscopes_die(&innermost, &chain);
    if (m <= 0) { /* keep what dwarf_getscopes found: the innermost level at least */
        free(chain);
        *scopes = found;
        return n;
    }
    free(found);
    *scopes = chain;
    return m;
}

/* Stores frame n of a chain when out has room for it. */
static void put_frame(struct sym_frame *out, size_t max, size_t n, struct sym_frame f)
{
    if (n < max) {
        out[n] = f;
    }
}

size_t symbolize(struct symbolizer *s, const struct lr_module *m, uint64_t ip, bool is_return,
                 struct sym_frame *out, size_t max)
{
    put_frame(out, max, 0, (struct sym_frame){NULL, NULL, 0, false});
    struct sym_module *sm = m != NULL ? module_for(s, m) : NULL;
    if (sm == NULL || sm->mod == NULL) {
        return 1;
    }
    uint64_t off = ip - m->bias;
    Dwarf_Addr a = is_return && off > 0 ? off - 1 : off; /* inside the call instruction */
    GElf_Off symoff;
    GElf_Sym sym;
    const char *symname = demangled(s, dwfl_module_addrinfo(sm->mod, a, &symoff, &sym, NULL, NULL, NULL));
    int line = 0;
    Dwfl_Line *dl = dwfl_module_getsrc(sm->mod, a);
    const char *file = dl != NULL ? dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL) : NULL;
    size_t n = 0;
    Dwarf_Addr bias = 0;
    Dwarf_Die unit;
    Dwarf_Die *cu = unit_of(sm->mod, a, &unit, &bias);
    Dwarf_Line *l = file == NULL && cu != NULL ? dwarf_getsrc_die(cu, a - bias) : NULL;
    if (l != NULL) { /* the line table of a unit found by its ranges */
        file = dwarf_linesrc(l, NULL, NULL);
        dwarf_lineno(l, &line);
    }
    Dwarf_Die *scopes = NULL;
    int nscopes = cu != NULL ? concrete_scopes(cu, a - bias, &scopes) : 0;
    for (int i = 0; i < nscopes; i++) { /* all of them: the whole chain is counted */
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_inlined_subroutine) {
            put_frame(out, max, n++, (struct sym_frame){die_name(s, &scopes[i]), file, line, true});
            call_site(cu, &scopes[i], &file, &line);
        } else if (tag == DW_TAG_subprogram) {
            const char *name = symname != NULL ? symname : die_name(s, &scopes[i]);
            put_frame(out, max, n++, (struct sym_frame){name, file, line, false});
            break;
        }
    }
    free(scopes);
    if (n == 0) {
        put_frame(out, max, n++, (struct sym_frame){symname, file, line, false});
    }
    return n;
}

size_t symbolizer_warnings(struct symbolizer *s, FILE *f)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nmods; i++) {
        if (s->mods[i].why != NULL) {
            fprintf(f, "cebox report: %s: %s; its frames are shown as module+offset\n", s->mods[i].path,
                    s->mods[i].why);
            n++;
        }
    }
    return n;
}
