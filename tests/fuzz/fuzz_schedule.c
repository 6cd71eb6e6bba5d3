/*
 * fuzz_schedule.c - fuzz target: the state-schedule parser,
 * options_parse_schedule ("2s:low,10s:normal").
 *
 * Input: the first byte chooses how many steps the output array holds
 * (0 to SCHEDULE_MAX + 1, or no array at all); the rest is the text.  The
 * array is allocated to exactly that size, so a write past `max` is an
 * AddressSanitizer report.
 *
 * Checked: the count does not depend on the array (NULL, short or full);
 * it is -1 or 1..SCHEDULE_MAX; the steps stored are min(count, max), with
 * times strictly increasing up to 86400 s and states 0..3; and printing
 * the steps back as "Ns:STATE,..." parses to the same steps.
 */
#include "fuzz.h"

#include <string.h>

#include "options.h"

static const char *const state_names[] = {"normal", "limited", "low", "critical"};

static void check_round_trip(const struct schedule_step *steps, int n)
{
    char text[SCHEDULE_MAX * 24];
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%u.%03us:%s", i ? "," : "", steps[i].ms / 1000,
                                 steps[i].ms % 1000, state_names[steps[i].state]);
    }
    struct schedule_step again[SCHEDULE_MAX];
    FUZZ_CHECK(options_parse_schedule(text, again, SCHEDULE_MAX) == n);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(again[i].ms == steps[i].ms && again[i].state == steps[i].state);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t max = data[0] % (SCHEDULE_MAX + 3); /* SCHEDULE_MAX + 2: no array */
    char *text = malloc(size);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    int expect = options_parse_schedule(text, NULL, 0);
    FUZZ_CHECK(expect == -1 || (expect >= 1 && expect <= SCHEDULE_MAX));
    struct schedule_step full[SCHEDULE_MAX];
    FUZZ_CHECK(options_parse_schedule(text, full, SCHEDULE_MAX) == expect);
    if (max <= SCHEDULE_MAX + 1) {
        struct schedule_step *out = malloc((max != 0 ? max : 1) * sizeof *out);
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(options_parse_schedule(text, out, max) == expect);
        for (size_t i = 0; expect > 0 && i < max && i < (size_t)expect; i++) {
            FUZZ_CHECK(out[i].ms == full[i].ms && out[i].state == full[i].state);
        }
        free(out);
    }
    for (int i = 0; i < expect; i++) {
        FUZZ_CHECK(full[i].ms <= 86400u * 1000 && full[i].state >= 0 && full[i].state <= 3);
        FUZZ_CHECK(i == 0 || full[i].ms > full[i - 1].ms);
    }
    if (expect > 0) {
        check_round_trip(full, expect);
    }
    free(text);
    return 0;
}
