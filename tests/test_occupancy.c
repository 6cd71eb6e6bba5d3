/*
 * test_occupancy.c - the rules occupancy.c places a process's image and
 * libraries by: the loadable extent of an object and its writable part,
 * and which paths are the system's libraries (XIP by default).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "occupancy.h"

#define PAGE 4096u

static ElfW(Phdr) load(uintptr_t vaddr, size_t memsz, unsigned flags)
{
    ElfW(Phdr) p = {.p_type = PT_LOAD, .p_vaddr = vaddr, .p_memsz = memsz, .p_filesz = memsz, .p_flags = flags};
    return p;
}

/* libc.so.6 of Debian 12: four segments, the writable one with its bss. */
static void test_extent_of_a_library(void **state)
{
    (void)state;
    ElfW(Phdr) ph[] = {
        {.p_type = PT_PHDR, .p_vaddr = 0x40, .p_memsz = 0x300},
        load(0x0, 0x25388, PF_R), load(0x26000, 0x1550fc, PF_R | PF_X), load(0x17c000, 0x52c31, PF_R),
        load(0x1cf8d0, 0x12680, PF_R | PF_W),
        {.p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W},
    };
    struct occupancy_extent e;
    assert_true(occupancy_extent_of(ph, sizeof ph / sizeof ph[0], PAGE, &e));
    assert_int_equal(e.size, 0x1e2000);    /* to the page after the bss */
    assert_int_equal(e.w_start, 0x1cf000); /* the writable segment's first page */
    assert_int_equal(e.w_end, 0x1e2000);   /* 19 pages: two 64 KB blocks as XIP data */
}

/* An executable linked at a fixed address: offsets from its lowest page;
 * one with no writable segment has an empty writable range. */
static void test_extent_of_fixed_and_read_only_objects(void **state)
{
    (void)state;
    ElfW(Phdr) exe[] = {load(0x400000, 0x1000, PF_R | PF_X), load(0x401e10, 0x230, PF_R | PF_W)};
    struct occupancy_extent e;
    assert_true(occupancy_extent_of(exe, 2, PAGE, &e));
    assert_int_equal(e.size, 0x3000);    /* its data crosses into a third page */
    assert_int_equal(e.w_start, 0x1000);
    assert_int_equal(e.w_end, 0x3000);
    ElfW(Phdr) ro[] = {load(0x0, 0x1800, PF_R | PF_X)};
    assert_true(occupancy_extent_of(ro, 1, PAGE, &e));
    assert_int_equal(e.size, 0x2000);
    assert_int_equal(e.w_end, e.w_start);
    ElfW(Phdr) none[] = {{.p_type = PT_DYNAMIC, .p_vaddr = 0x1000, .p_memsz = 0x100}, load(0x2000, 0, PF_R)};
    assert_false(occupancy_extent_of(none, 2, PAGE, &e));
}

static void test_system_libraries_are_those_of_the_system_directories(void **state)
{
    (void)state;
    assert_true(occupancy_system_path("/lib/x86_64-linux-gnu/libc.so.6"));
    assert_true(occupancy_system_path("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0"));
    assert_true(occupancy_system_path("/lib64/ld-linux-x86-64.so.2"));
    assert_true(occupancy_system_path("/usr/lib64/libfoo.so"));
    assert_false(occupancy_system_path("/usr/local/lib/libfoo.so"));
    assert_false(occupancy_system_path("/home/me/build/libapp.so"));
    assert_false(occupancy_system_path("/library/libx.so"));
    assert_false(occupancy_system_path("/usr/libexec/x.so"));
    assert_false(occupancy_system_path(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extent_of_a_library),
        cmocka_unit_test(test_extent_of_fixed_and_read_only_objects),
        cmocka_unit_test(test_system_libraries_are_those_of_the_system_directories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
