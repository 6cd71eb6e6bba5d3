/*
 * cfi.h - the unwind rule at one return address, read from the DWARF call
 * frame information (.eh_frame, found through .eh_frame_hdr) of the loaded
 * object whose executable segment holds it: the fast unwinder of stack.c
 * steps frames with these rules.
 *
 * Owns nothing: it reads the objects' mapped sections in place, allocates
 * nothing and takes no lock of cebox's (dl_iterate_phdr takes the loader's).
 *
 * Only the rules of ordinary compiled code are expressed: the CFA is rsp
 * or rbp plus a constant, the return address is saved just below the CFA,
 * rbp is either left alone or saved at a constant offset from the CFA.
 * Anything else (a signal frame, a DWARF expression, a CFA on another
 * register, an address without an FDE, data it cannot parse) is
 * CFI_UNKNOWN, and the caller unwinds that stack with libunwind instead.
 */
#ifndef CEBOX_CFI_H
#define CEBOX_CFI_H

#include <stdint.h>

enum cfi_kind {
    CFI_UNKNOWN = 0, /* not expressible here (or not found) */
    CFI_STEP,        /* a frame to step over with the rule */
    CFI_END,         /* the outermost frame: its return address is undefined */
};

struct cfi_rule {
    uint8_t kind;      /* enum cfi_kind */
    uint8_t cfa_rbp;   /* the CFA is rbp + cfa_off (else rsp + cfa_off) */
    uint8_t rbp_saved; /* the caller's rbp is at CFA + rbp_off (else rbp is unchanged) */
    int32_t cfa_off;
    int32_t rbp_off;
};

/* The rule of the frame whose code returns to `ra` (the rule of the call
 * instruction, at ra - 1).  Returns rule.kind; the rule is CFI_UNKNOWN
 * when ra lies in no executable segment of a loaded object. */
enum cfi_kind cfi_rule_at(uintptr_t ra, struct cfi_rule *rule);

#endif
