/*
 * control.c - cebox's own public API (include/cebox.h) over the core.
 */
#include "cebox.h"

#include "config.h"
#include "core.h"
#include "export.h"

CEBOX_EXPORT const char *cebox_version(void)
{
    return PACKAGE_VERSION;
}

CEBOX_EXPORT void cebox_slot_info(struct cebox_slot_info *out)
{
    struct slot *s = core_get()->slot;
    struct slot_stats st;
    slot_get_stats(s, &st);
    size_t page = slot_page_size(s);
    out->base = slot_base(s);
    out->size = slot_size(s);
    out->granularity = slot_granularity(s);
    out->blocks = st.blocks;
    out->free_blocks = st.free_blocks;
    out->largest_free_run = st.largest_free_run;
    out->reserved_blocks = st.reserved_blocks;
    out->peak_reserved_blocks = st.peak_reserved_blocks;
    out->committed_bytes = st.committed_pages * page;
    out->peak_committed_bytes = st.peak_committed_pages * page;
}

CEBOX_EXPORT size_t cebox_slot_map(char *buf, size_t len)
{
    return slot_map(core_get()->slot, buf, len);
}
