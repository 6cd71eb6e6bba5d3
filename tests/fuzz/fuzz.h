/*
 * fuzz.h - what every fuzz target in tests/fuzz/ defines, and the one check
 * they share.
 *
 * A target is a file with LLVMFuzzerTestOneInput: libFuzzer drives it in
 * the `--enable-fuzz` build (clang, `make fuzz`), and tests/fuzz/replay.c
 * drives the same function over the checked-in corpus in every `make check`
 * (gcc or clang, no fuzzer runtime).  A target returns 0 for every input;
 * a property it finds broken is reported by FUZZ_CHECK, which aborts, so
 * both drivers see it as a crash (libFuzzer saves the input).
 */
#ifndef CEBOX_FUZZ_H
#define CEBOX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stores the right CRC in every event-log record head of data, from the
 * start to where the framing stops (bad magic, impossible or truncated
 * length), so that mutated payloads reach the record decoders instead of
 * all stopping at the checksum (repair.c). */
void fuzz_repair_checksums(unsigned char *data, size_t size);

/* A malloc'd copy of data (one byte at least) with its checksums repaired;
 * the caller frees it. */
unsigned char *fuzz_repaired_copy(const uint8_t *data, size_t size);

/* One line naming the broken property, then abort (a crash to both drivers). */
#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: fuzz property broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#endif
