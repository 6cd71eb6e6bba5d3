/*
 * repair.c - fuzz_repair_checksums (see fuzz.h): lets mutated log payloads
 * past the reader's checksum test, for the targets that read logs.
 */
#include "fuzz.h"

#include <string.h>

#include "record/logformat.h"

void fuzz_repair_checksums(unsigned char *data, size_t size)
{
    size_t off = 0;
    while (size - off >= LOG_HEAD_SIZE) {
        unsigned type;
        uint32_t length, crc;
        const char *why;
        if (log_head_parse(data + off, &type, &length, &crc, &why) != 0 || length > size - off - LOG_HEAD_SIZE) {
            return;
        }
        crc = log_record_crc(data + off, data + off + LOG_HEAD_SIZE, length);
        for (int i = 0; i < 4; i++) {
            data[off + 12 + i] = (unsigned char)(crc >> (8 * i));
        }
        off += LOG_HEAD_SIZE + length;
    }
}

unsigned char *fuzz_repaired_copy(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size != 0 ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size != 0) {
        memcpy(copy, data, size);
    }
    fuzz_repair_checksums(copy, size);
    return copy;
}
