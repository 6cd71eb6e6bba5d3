/*
 * procmodules.c - a running process's objects from /proc/PID/maps (see
 * procmodules.h).
 */
#include "procmodules.h"

#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One object while the maps are read: its range, and the start of the
 * mapping of the file page at `base_off` (its first loadable segment's). */
struct pm_object {
    char *path;
    uint64_t lo, hi;
    uint64_t first_off, first_start; /* its lowest file offset mapped, and where */
};

/* The first loadable segment of the ELF file at path: its page-aligned
 * file offset and address.  False when it is no 64-bit ELF file we can read. */
static bool first_load(const char *path, uint64_t page, uint64_t *off, uint64_t *vaddr)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    Elf64_Ehdr eh;
    bool ok = pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
              eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr);
    bool found = false;
    for (unsigned i = 0; ok && !found && i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) != (ssize_t)sizeof ph) {
            break;
        }
        if (ph.p_type == PT_LOAD) {
            *off = ph.p_offset & ~(page - 1);
            *vaddr = ph.p_vaddr & ~(page - 1);
            found = true;
        }
    }
    close(fd);
    return found;
}

static struct pm_object *object_of(struct pm_object **objs, size_t *n, const char *path)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*objs)[i].path, path) == 0) {
            return &(*objs)[i];
        }
    }
    struct pm_object *grown = realloc(*objs, (*n + 1) * sizeof *grown);
    char *copy = strdup(path);
    if (grown == NULL || copy == NULL) {
        free(copy);
        *objs = grown != NULL ? grown : *objs;
        return NULL;
    }
    *objs = grown;
    grown[*n] = (struct pm_object){.path = copy, .lo = UINT64_MAX, .first_off = UINT64_MAX};
    return &grown[(*n)++];
}

/* The file-backed mappings of pid, by object. */
static size_t read_objects(int pid, struct pm_object **objs)
{
    char name[64], line[4096 + 128];
    snprintf(name, sizeof name, "/proc/%d/maps", pid);
    FILE *f = fopen(name, "re");
    size_t n = 0;
    *objs = NULL;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        uint64_t lo, hi, off;
        int path_at = 0;
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*s %n", &lo, &hi, &off, &path_at) != 3 ||
            path_at == 0 || line[path_at] != '/') {
            continue; /* anonymous, or [heap], [stack], [vdso]... */
        }
        line[strcspn(line, "\n")] = '\0';
        struct pm_object *o = object_of(objs, &n, line + path_at);
        if (o == NULL) {
            break;
        }
        o->lo = lo < o->lo ? lo : o->lo;
        o->hi = hi > o->hi ? hi : o->hi;
        if (off < o->first_off) {
            o->first_off = off;
            o->first_start = lo;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

size_t procmodules_read(int pid, struct lr_module **out)
{
    struct pm_object *objs;
    size_t n = read_objects(pid, &objs), kept = 0;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    *out = n != 0 ? calloc(n, sizeof **out) : NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t off, vaddr;
        if (*out != NULL && first_load(objs[i].path, page, &off, &vaddr) && off == objs[i].first_off) {
            (*out)[kept++] = (struct lr_module){.bias = objs[i].first_start - vaddr, .lo = objs[i].lo,
                                                .hi = objs[i].hi, .path = objs[i].path};
        } else {
            free(objs[i].path);
        }
    }
    free(objs);
    return kept;
}

void procmodules_free(struct lr_module *mods, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(mods[i].path);
    }
    free(mods);
}
