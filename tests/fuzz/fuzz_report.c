/*
 * fuzz_report.c - fuzz target: arbitrary bytes as a log file given to
 * `cebox report` (report_main), so that grouping, symbolizing and the four
 * output formats meet whatever the log reader accepts, not only the logs
 * cebox writes.
 *
 * The input, its record checksums repaired (fuzz_repair_checksums: the
 * checksum test itself is the log reader target's), is written to an
 * in-memory file (memfd) named by its /proc/self/fd path; the format is chosen by the input's size (size % 7:
 * text, json, folded, html, and folded of the leaks, the peak and the pinning
 * sites), so that a seed log and its mutations see all of them.
 * The report goes to /dev/null.  Checked: no crash, no sanitizer report, no
 * exit (out of memory is an exit), and the status is 0 or 1 (a damaged
 * log), never 2: a readable file is always a report.
 */
#include "fuzz.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "report/report.h"

static int log_fd = -1, null_fd = -1;
static char log_path[64];

static void open_files(void)
{
    log_fd = memfd_create("fuzz-report.log", 0);
    null_fd = open("/dev/null", O_WRONLY);
    FUZZ_CHECK(log_fd >= 0 && null_fd >= 0);
    snprintf(log_path, sizeof log_path, "/proc/self/fd/%d", log_fd);
}

static void write_log(const uint8_t *data, size_t size)
{
    FUZZ_CHECK(ftruncate(log_fd, 0) == 0);
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(log_fd, data + done, size - done, (off_t)done);
        FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const formats[] = {"text", "json", "folded", "html", "folded", "folded", "folded"};
    static const char *const folds[] = {"failures", "failures", "failures", "failures", "leaks", "peak", "pinning"};
    if (log_fd < 0) {
        open_files();
    }
    unsigned char *copy = fuzz_repaired_copy(data, size);
    write_log(copy, size);
    free(copy);
    char *argv[] = {"cebox", "report", "--format", (char *)formats[size % 7], "--folded-of", (char *)folds[size % 7],
                    log_path, NULL};
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FUZZ_CHECK(saved >= 0 && dup2(null_fd, STDOUT_FILENO) == STDOUT_FILENO);
    int status = report_main(7, argv);
    fflush(stdout);
    FUZZ_CHECK(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO && close(saved) == 0);
    FUZZ_CHECK(status == 0 || status == 1);
    return 0;
}
