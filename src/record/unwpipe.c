/*
 * unwpipe.c - libunwind's pipe2 goes to cebox's (see unwpipe.h).
 *
 * The slot is found the way the dynamic loader fills it: in the object's
 * dynamic section, the PLT relocations (DT_JMPREL) and the others
 * (DT_RELA, for code built with -fno-plt), the one whose symbol is pipe2.
 * A slot inside the object's RELRO segment is read-only once relocated: it
 * is made writable for the store, and read-only again.
 */
#include "record/unwpipe.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "os.h"
#include "record/ownfd.h"

#if defined(__x86_64__)
#define SLOT_JUMP R_X86_64_JUMP_SLOT
#define SLOT_DATA R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define SLOT_JUMP R_AARCH64_JUMP_SLOT
#define SLOT_DATA R_AARCH64_GLOB_DAT
#endif

/* libunwind's pipe2: the pipe, both ends moved high when close-on-exec was
 * asked for (libunwind asks for it; without it they stay where they are,
 * since ownfd_move_high makes its copies close-on-exec). */
static int high_pipe2(int fds[2], int flags)
{
    int raw[2];
    int err = os_pipe2(raw, flags);
    if (err != 0) {
        errno = err;
        return -1;
    }
    if (flags & O_CLOEXEC) {
        raw[0] = ownfd_move_high(raw[0]);
        raw[1] = ownfd_move_high(raw[1]);
    }
    fds[0] = raw[0];
    fds[1] = raw[1];
    return 0;
}

#ifdef SLOT_JUMP

struct dyn_tables {
    const ElfW(Rela) *rel[2];
    size_t rel_bytes[2];
    const ElfW(Sym) *symtab;
    const char *strtab;
    size_t strsz;
    uintptr_t relro_lo, relro_hi;
};

/* The loader has relocated most address entries of the dynamic section in
 * place on some architectures and not on others. */
static uintptr_t dyn_addr(uintptr_t base, ElfW(Addr) v)
{
    return v < base ? base + v : v;
}

static bool read_dynamic(const struct dl_phdr_info *info, struct dyn_tables *t)
{
    const ElfW(Dyn) *dyn = NULL;
    memset(t, 0, sizeof *t);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC) {
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
        } else if (ph->p_type == PT_GNU_RELRO) {
            t->relro_lo = info->dlpi_addr + ph->p_vaddr;
            t->relro_hi = t->relro_lo + ph->p_memsz;
        }
    }
    bool rela_plt = false;
    for (; dyn != NULL && dyn->d_tag != DT_NULL; dyn++) {
        uintptr_t a = dyn_addr(info->dlpi_addr, dyn->d_un.d_ptr);
        switch (dyn->d_tag) {
        case DT_JMPREL: t->rel[0] = (const ElfW(Rela) *)a; break;
        case DT_PLTRELSZ: t->rel_bytes[0] = dyn->d_un.d_val; break;
        case DT_PLTREL: rela_plt = dyn->d_un.d_val == DT_RELA; break;
        case DT_RELA: t->rel[1] = (const ElfW(Rela) *)a; break;
        case DT_RELASZ: t->rel_bytes[1] = dyn->d_un.d_val; break;
        case DT_SYMTAB: t->symtab = (const ElfW(Sym) *)a; break;
        case DT_STRTAB: t->strtab = (const char *)a; break;
        case DT_STRSZ: t->strsz = dyn->d_un.d_val; break;
        default: break;
        }
    }
    if (!rela_plt) {
        t->rel[0] = NULL;
    }
    return t->symtab != NULL && t->strtab != NULL;
}

static bool names_pipe2(const struct dyn_tables *t, const ElfW(Rela) *r)
{
    unsigned type = (unsigned)ELF64_R_TYPE(r->r_info);
    size_t sym = ELF64_R_SYM(r->r_info);
    if ((type != SLOT_JUMP && type != SLOT_DATA) || sym == 0) {
        return false;
    }
    size_t name = t->symtab[sym].st_name;
    return name + sizeof "pipe2" <= t->strsz && memcmp(t->strtab + name, "pipe2", sizeof "pipe2") == 0;
}

/* Stores fn in the slot, through a writable window when RELRO protects it. */
static bool store_slot(const struct dyn_tables *t, uintptr_t slot, void *fn)
{
    bool relro = slot >= t->relro_lo && slot < t->relro_hi;
    uintptr_t page = slot & ~(uintptr_t)(os_page_size() - 1);
    size_t len = os_page_size() * ((slot + sizeof fn > page + os_page_size()) ? 2 : 1);
    if (relro && os_protect((void *)page, len, OS_PROT_READ | OS_PROT_WRITE) != 0) {
        return false;
    }
    __atomic_store_n((void **)slot, fn, __ATOMIC_RELEASE);
    if (relro) {
        os_protect((void *)page, len, OS_PROT_READ);
    }
    return true;
}

static bool patch_object(const struct dl_phdr_info *info)
{
    struct dyn_tables t;
    if (!read_dynamic(info, &t)) {
        return false;
    }
    int (*fn)(int[2], int) = high_pipe2;
    void *target;
    memcpy(&target, &fn, sizeof target); /* function to object pointer */
    bool done = false;
    for (int k = 0; k < 2; k++) {
        size_t n = t.rel[k] != NULL ? t.rel_bytes[k] / sizeof *t.rel[k] : 0;
        for (size_t i = 0; i < n; i++) {
            if (names_pipe2(&t, &t.rel[k][i])) {
                done |= store_slot(&t, info->dlpi_addr + t.rel[k][i].r_offset, target);
            }
        }
    }
    return done;
}

struct search {
    uintptr_t addr;
    bool done;
};

static int visit(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct search *s = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && s->addr >= lo && s->addr < lo + ph->p_memsz) {
            s->done = patch_object(info);
            return 1;
        }
    }
    return 0;
}

bool unwpipe_install(uintptr_t unwinder)
{
    struct search s = {.addr = unwinder};
    dl_iterate_phdr(visit, &s);
    return s.done;
}

#else

bool unwpipe_install(uintptr_t unwinder)
{
    (void)unwinder;
    (void)high_pipe2;
    return false;
}

#endif
