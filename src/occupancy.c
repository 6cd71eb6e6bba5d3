/*
 * occupancy.c - the image, DLLs and stacks of a preloaded process in its
 * slot (see occupancy.h).
 *
 * What a device does (CE 5.0 loader.c, schedule.c; CE-SEMANTICS.md):
 *  - the EXE is reserved at block 1 for its whole virtual size, in whole
 *    64 KB blocks;
 *  - each XIP DLL (in ROM) has its code above the slot, but its read/write
 *    data is reserved in every process's slot; a RAM DLL is reserved whole,
 *    top-down below the DLLs already there;
 *  - a thread's stack is a reservation of the EXE's stack size rounded up
 *    to 64 KB, made with "no address" (first fit from the bottom), its top
 *    page committed and the rest committed as it is touched.
 * cebox charges RAM for the pages a device commits from the start: an
 * image's or DLL's writable segments (written per process), a stack's top
 * page.  The pages a thread touches further down its stack are not
 * measured (it would take a fault handler or a scan of the real stack).
 *
 * Which objects are the program's: the executable and the DT_NEEDED
 * closure of it, matched by soname (or file name).  The preload library
 * and the libraries only it needs are cebox's own and are left out; so are
 * the vDSO and objects preloaded beside cebox.  Objects loaded later (the
 * program's dlopen, with what they need) are the program's: they are
 * charged, and those unloaded (dlclose) given back, at the next check
 * (occupancy_check_loaded: mmap, pthread_create, the exit), when
 * the loader's counters have moved.  dlopen itself is not wrapped: glibc
 * finds a library by its caller's RUNPATH, which a wrapper would hide.
 */
#include "occupancy.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/auxv.h>

#include "core.h"
#include "cstr.h"
#include "layout.h"
#include "slot.h"

/* Objects looked at, at most (a program with more: the rest uncharged). */
#define OBJECTS_MAX 512

static struct {
    atomic_uint image_blocks, ram_dlls, ram_dll_blocks, xip_dlls, xip_dll_blocks, refused;
    atomic_uint stack_blocks, stacks, peak_stacks, threads_refused;
} st;

static atomic_bool started;

/* ---- the rules ---- */

bool occupancy_system_path(const char *path)
{
    static const char *const dirs[] = {"/lib/", "/usr/lib/", "/lib64/", "/usr/lib64/", "/lib32/", "/usr/lib32/"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (cstr_has_prefix(path, dirs[i])) {
            return true;
        }
    }
    return false;
}

static size_t round_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

bool occupancy_extent_of(const ElfW(Phdr) *ph, size_t n, size_t page, struct occupancy_extent *out)
{
    uintptr_t lo = UINTPTR_MAX, hi = 0, wlo = UINTPTR_MAX, whi = 0;
    for (size_t i = 0; i < n; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0) {
            continue;
        }
        uintptr_t start = ph[i].p_vaddr / page * page, end = round_up(ph[i].p_vaddr + ph[i].p_memsz, page);
        lo = start < lo ? start : lo;
        hi = end > hi ? end : hi;
        if (ph[i].p_flags & PF_W) {
            wlo = start < wlo ? start : wlo;
            whi = end > whi ? end : whi;
        }
    }
    if (hi == 0) {
        return false;
    }
    out->size = hi - lo;
    out->w_start = whi != 0 ? wlo - lo : 0;
    out->w_end = whi != 0 ? whi - lo : 0;
    return true;
}

/* ---- placing occupants ---- */

static void note_max(atomic_uint *peak, unsigned v)
{
    unsigned old = atomic_load(peak);
    while (v > old && !atomic_compare_exchange_weak(peak, &old, v)) {
    }
}

static bool occupy(struct slot *s, enum slot_tag tag, enum slot_place place, size_t bytes, size_t c_off,
                   size_t c_bytes, void **base)
{
    struct slot_occupant o = {.tag = tag, .place = place, .offset = slot_granularity(s), .bytes = bytes,
                              .commit_offset = c_off, .commit_bytes = c_bytes};
    return slot_occupy(s, &o, base) == 0;
}

/* What an occupant took, for the log (occupancy_list). */
static struct occupancy_entry entry_of(const struct slot *s, char kind, const void *base, size_t bytes,
                                       size_t c_bytes, const char *name)
{
    size_t gran = slot_granularity(s), page = slot_page_size(s);
    return (struct occupancy_entry){.kind = kind, .name = name,
                                    .first_block = (uint32_t)(((uintptr_t)base - slot_base(s)) / gran),
                                    .blocks = (uint32_t)(round_up(bytes, gran) / gran),
                                    .pages = (uint32_t)(round_up(c_bytes, page) / page)};
}

/* The image and the main stack as placed (kind 0: not placed). */
static struct occupancy_entry image_entry, main_stack_entry;

static unsigned blocks_of(const struct slot *s, size_t bytes)
{
    return (unsigned)(round_up(bytes, slot_granularity(s)) / slot_granularity(s));
}

/* The EXE at block 1, from its own program headers (the auxiliary vector:
 * no loader call).  Its writable segments are committed. */
static void place_image(struct slot *s)
{
    struct occupancy_extent e;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    void *base;
    if (ph == NULL || !occupancy_extent_of(ph, getauxval(AT_PHNUM), slot_page_size(s), &e)) {
        return;
    }
    if (occupy(s, SLOT_TAG_IMAGE, SLOT_PLACE_AT, e.size, e.w_start, e.w_end - e.w_start, &base)) {
        const char *name = (const char *)getauxval(AT_EXECFN);
        image_entry = entry_of(s, 'E', base, e.size, e.w_end - e.w_start, name != NULL ? name : "");
        atomic_store(&st.image_blocks, blocks_of(s, e.size));
    } else {
        atomic_fetch_add(&st.refused, 1);
    }
}

static size_t stack_bytes(const struct cebox_core *c)
{
    return round_up(c->settings.stack_size, slot_granularity(c->slot));
}

int occupancy_stack_reserve(struct cebox_core *c, void **base)
{
    size_t bytes = stack_bytes(c), page = slot_page_size(c->slot);
    *base = NULL;
    if (bytes == 0 || !c->settings.occupy) {
        return 0;
    }
    if (!occupy(c->slot, SLOT_TAG_STACK, SLOT_PLACE_BOTTOM, bytes, bytes - page, page, base)) {
        atomic_fetch_add(&st.threads_refused, 1);
        return EAGAIN;
    }
    note_max(&st.peak_stacks, atomic_fetch_add(&st.stacks, 1) + 1);
    return 0;
}

void occupancy_stack_release(struct cebox_core *c, void *base)
{
    if (base != NULL && slot_vacate(c->slot, base) == 0) {
        atomic_fetch_sub(&st.stacks, 1);
    }
}

/* ---- the program's libraries ---- */

struct object {
    const char *path;
    uintptr_t addr;
    const ElfW(Phdr) *ph;
    uint16_t phnum;
    const char *strtab;
    const ElfW(Dyn) *dyn;
    bool program; /* in the executable's DT_NEEDED closure */
};

static size_t nobjects;

/* Every object seen so far (by its program headers' address), charged or
 * not, with its reservation; the table below is used under
 * loaded_lock, which is only ever tried (see occupancy_check_loaded). */
struct known {
    const ElfW(Phdr) *ph;
    void *base;    /* its DLL reservation, NULL when not charged */
    uint32_t blocks;
    bool xip, present;
    struct occupancy_entry entry; /* for the log, when charged */
};
/* libraries[i].object is the loader's i-th object, libraries[i].known
 * the i-th known one: the two lists are counted apart, but kept side by
 * side, from a page's start, so that a start's few objects touch one page
 * of the table, not one of each or two (a page fault is some 3 us). */
static struct library {
    struct object object;
    struct known known;
} libraries[OBJECTS_MAX] CEBOX_LARGE_TABLE __attribute__((aligned(4096)));
static size_t nknown;
static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long seen_adds, seen_subs; /* the loader's counters at the last look */

/* A dynamic entry's address: the loader relocates them in place on most
 * machines; where it does not, they are offsets from the load address. */
static uintptr_t dyn_address(const struct object *o, uintptr_t ptr)
{
    return ptr < o->addr ? ptr + o->addr : ptr;
}

static void read_dynamic(struct object *o)
{
    for (uint16_t i = 0; i < o->phnum; i++) {
        if (o->ph[i].p_type == PT_DYNAMIC) {
            o->dyn = (const ElfW(Dyn) *)(o->addr + o->ph[i].p_vaddr);
        }
    }
    for (const ElfW(Dyn) *d = o->dyn; d != NULL && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_STRTAB) {
            o->strtab = (const char *)dyn_address(o, d->d_un.d_ptr);
        }
    }
}

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        seen_adds = info->dlpi_adds;
        seen_subs = info->dlpi_subs;
    }
    if (nobjects == OBJECTS_MAX) {
        return 1;
    }
    struct object *o = &libraries[nobjects++].object;
    *o = (struct object){.path = info->dlpi_name != NULL ? info->dlpi_name : "", .addr = info->dlpi_addr,
                         .ph = info->dlpi_phdr, .phnum = info->dlpi_phnum};
    read_dynamic(o);
    return 0;
}

/* The name a DT_NEEDED entry finds an object by: its soname, else the
 * last part of its path. */
static const char *soname_of(const struct object *o)
{
    for (const ElfW(Dyn) *d = o->dyn; o->strtab != NULL && d != NULL && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_SONAME) {
            return o->strtab + d->d_un.d_val;
        }
    }
    const char *slash = cstr_find_last(o->path, '/');
    return slash != NULL ? slash + 1 : o->path;
}

static void mark_needed_by(size_t i);

static void mark_program(const char *needed)
{
    const char *slash = cstr_find_last(needed, '/');
    for (size_t j = 0; j < nobjects; j++) {
        struct object *o = &libraries[j].object;
        if (!o->program && (cstr_equal(soname_of(o), needed) || (slash != NULL && cstr_equal(o->path, needed)))) {
            o->program = true;
            mark_needed_by(j);
        }
    }
}

static void mark_needed_by(size_t i)
{
    const struct object *o = &libraries[i].object;
    for (const ElfW(Dyn) *d = o->dyn; o->strtab != NULL && d != NULL && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_NEEDED) {
            mark_program(o->strtab + d->d_un.d_val);
        }
    }
}

static bool is_xip(int split, const char *path)
{
    return split == LIBRARIES_ALL_XIP || (split == LIBRARIES_SYSTEM_XIP && occupancy_system_path(path));
}

/* One library: an XIP DLL's writable range, or a RAM DLL whole, top-down;
 * k says what it took. */
static void place_library(struct slot *s, int split, const struct object *o, struct known *k)
{
    struct occupancy_extent e;
    if (o->path[0] != '/' || !occupancy_extent_of(o->ph, o->phnum, slot_page_size(s), &e)) {
        return; /* the vDSO, or nothing to load */
    }
    bool xip = is_xip(split, o->path);
    if (xip && e.w_end == e.w_start) {
        return; /* all in ROM */
    }
    size_t bytes = xip ? e.w_end - e.w_start : e.size, c_off = xip ? 0 : e.w_start;
    if (!occupy(s, SLOT_TAG_DLL, SLOT_PLACE_TOP, bytes, c_off, e.w_end - e.w_start, &k->base)) {
        atomic_fetch_add(&st.refused, 1);
        return;
    }
    k->xip = xip;
    k->blocks = blocks_of(s, bytes);
    k->entry = entry_of(s, 'D', k->base, bytes, e.w_end - e.w_start, o->path); /* the loader keeps the path */
    k->entry.xip = xip;
    atomic_fetch_add(xip ? &st.xip_dlls : &st.ram_dlls, 1);
    atomic_fetch_add(xip ? &st.xip_dll_blocks : &st.ram_dll_blocks, k->blocks);
}

static void vacate_library(struct slot *s, struct known *k)
{
    if (k->base != NULL && slot_vacate(s, k->base) == 0) {
        atomic_fetch_sub(k->xip ? &st.xip_dlls : &st.ram_dlls, 1);
        atomic_fetch_sub(k->xip ? &st.xip_dll_blocks : &st.ram_dll_blocks, k->blocks);
    }
}

static struct known *known_of(const ElfW(Phdr) *ph)
{
    for (size_t i = 0; i < nknown; i++) {
        if (libraries[i].known.ph == ph) {
            return &libraries[i].known;
        }
    }
    return NULL;
}

/* After the loader's list is in objects[]: new objects the program's
 * (`program`) are placed, known ones gone are given back.  Lock held. */
static void update_libraries_locked(struct slot *s, int split)
{
    for (size_t i = 0; i < nknown; i++) {
        libraries[i].known.present = false;
    }
    for (size_t i = 0; i < nobjects; i++) {
        struct known *k = known_of(libraries[i].object.ph);
        if (k == NULL && nknown < OBJECTS_MAX) {
            k = &libraries[nknown++].known;
            *k = (struct known){.ph = libraries[i].object.ph};
            if (i != 0 && libraries[i].object.program) {
                place_library(s, split, &libraries[i].object, k);
            }
        }
        if (k != NULL) {
            k->present = true;
        }
    }
    for (size_t i = 0; i < nknown;) {
        if (libraries[i].known.present) {
            i++;
            continue;
        }
        vacate_library(s, &libraries[i].known); /* dlclose'd */
        libraries[i].known = libraries[--nknown].known;
    }
}

/* The loader's list now; the caller holds loaded_lock (the loader's own
 * lock is taken inside, never with the slot's). */
static void collect_objects_locked(void)
{
    nobjects = 0;
    dl_iterate_phdr(collect, NULL);
}

static void place_libraries(struct slot *s, int split)
{
    pthread_mutex_lock(&loaded_lock);
    collect_objects_locked();
    if (nobjects != 0) {
        libraries[0].object.program = true; /* the executable comes first */
        mark_needed_by(0);
        update_libraries_locked(s, split);
    }
    pthread_mutex_unlock(&loaded_lock);
}

/* The loader's counters alone: the first object is enough. */
static int read_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
    unsigned long long *c = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c[0] = info->dlpi_adds;
        c[1] = info->dlpi_subs;
    }
    return 1;
}

void occupancy_check_loaded(struct cebox_core *c)
{
    if (!atomic_load_explicit(&started, memory_order_relaxed) || !c->settings.occupy ||
        c->settings.libraries == LIBRARIES_NONE) {
        return;
    }
    /* Only tried: a thread in a dl_iterate_phdr callback of the program's
     * holds the loader's lock and may land here while another thread holds
     * this one and waits for the loader's. */
    if (pthread_mutex_trylock(&loaded_lock) != 0) {
        return;
    }
    unsigned long long now[2] = {seen_adds, seen_subs};
    dl_iterate_phdr(read_counters, now);
    if (now[0] != seen_adds || now[1] != seen_subs) {
        collect_objects_locked();
        for (size_t i = 0; i < nobjects; i++) {
            libraries[i].object.program = true; /* loaded since the start: the program's */
        }
        update_libraries_locked(c->slot, c->settings.libraries);
    }
    pthread_mutex_unlock(&loaded_lock);
}

void occupancy_start(struct cebox_core *c)
{
    bool expected = false;
    if (!c->settings.occupy || c->slot == NULL || !atomic_compare_exchange_strong(&started, &expected, true)) {
        return;
    }
    void *main_stack;
    place_image(c->slot);
    atomic_store(&st.stack_blocks, blocks_of(c->slot, stack_bytes(c)));
    if (occupancy_stack_reserve(c, &main_stack) != 0) {
        atomic_fetch_sub(&st.threads_refused, 1);
        atomic_fetch_add(&st.refused, 1);
    } else if (main_stack != NULL) {
        main_stack_entry = entry_of(c->slot, 'S', main_stack, stack_bytes(c), slot_page_size(c->slot),
                                    "the main thread's stack");
    }
    if (c->settings.libraries != LIBRARIES_NONE) {
        place_libraries(c->slot, c->settings.libraries);
    }
}

void occupancy_lock(void)
{
    pthread_mutex_lock(&loaded_lock);
}

void occupancy_unlock(void)
{
    pthread_mutex_unlock(&loaded_lock);
}

size_t occupancy_list(size_t from, struct occupancy_entry *out, size_t max)
{
    size_t n = 0, at = 0; /* at: the occupants' index, counted from the first */
    const struct occupancy_entry *fixed[] = {&image_entry, &main_stack_entry};
    for (size_t i = 0; i < 2; i++) {
        if (fixed[i]->kind != 0 && at++ >= from && n < max) {
            out[n++] = *fixed[i];
        }
    }
    if (pthread_mutex_trylock(&loaded_lock) != 0) {
        return n; /* a check under way (or a signal handler interrupted one) */
    }
    for (size_t i = 0; i < nknown && n < max; i++) {
        if (libraries[i].known.base != NULL && at++ >= from) {
            out[n++] = libraries[i].known.entry;
        }
    }
    pthread_mutex_unlock(&loaded_lock);
    return n;
}

void occupancy_get_stats(struct occupancy_stats *out)
{
    *out = (struct occupancy_stats){
        .image_blocks = atomic_load(&st.image_blocks),
        .ram_dlls = atomic_load(&st.ram_dlls),
        .ram_dll_blocks = atomic_load(&st.ram_dll_blocks),
        .xip_dlls = atomic_load(&st.xip_dlls),
        .xip_dll_blocks = atomic_load(&st.xip_dll_blocks),
        .refused = atomic_load(&st.refused),
        .stack_blocks = atomic_load(&st.stack_blocks),
        .stacks = atomic_load(&st.stacks),
        .peak_stacks = atomic_load(&st.peak_stacks),
        .threads_refused = atomic_load(&st.threads_refused),
    };
}
