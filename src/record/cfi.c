/*
 * cfi.c - the unwind rule at a return address, from .eh_frame (see cfi.h).
 *
 * The object is found with dl_iterate_phdr: the one with an executable
 * PT_LOAD segment holding the address.  Its PT_GNU_EH_FRAME header has a
 * table sorted by start address (in the common datarel/sdata4 form; any
 * other form is CFI_UNKNOWN), searched in two; the FDE found and its CIE
 * are parsed and the CFA program run up to the address.  Every read stays
 * inside the read-only segment that holds the header: a length or offset
 * that leads out of it makes the rule CFI_UNKNOWN, never a stray read.
 */
#include "record/cfi.h"

#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* DWARF register numbers of x86_64 */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* ---- bounded reading ---- */

struct reader {
    const uint8_t *p, *end;
    bool bad;
};

static bool can_read(struct reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

static uint64_t read_fixed(struct reader *r, size_t n)
{
    if (!can_read(r, n)) {
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, n); /* little endian */
    r->p += n;
    return v;
}

static uint64_t read_uleb(struct reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; can_read(r, 1); shift += 7) {
        uint8_t b = *r->p++;
        if (shift < 64) {
            v |= (uint64_t)(b & 0x7f) << shift;
        }
        if ((b & 0x80) == 0) {
            return v;
        }
    }
    return 0;
}

static int64_t read_sleb(struct reader *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0;
    do {
        if (!can_read(r, 1)) {
            return 0;
        }
        b = *r->p++;
        if (shift < 64) {
            v |= (uint64_t)(b & 0x7f) << shift;
        }
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40)) {
        v |= ~(uint64_t)0 << shift;
    }
    return (int64_t)v;
}

/* DW_EH_PE_* pointer encodings */
#define PE_OMIT 0xff
#define PE_FORMAT 0x0f
#define PE_APPLY 0x70
#define PE_INDIRECT 0x80

/* A pointer in encoding `enc`; pcrel is from where it is read, datarel
 * from `data` (the .eh_frame_hdr). */
static uintptr_t read_encoded(struct reader *r, uint8_t enc, uintptr_t data)
{
    uintptr_t at = (uintptr_t)r->p;
    uint64_t v;
    switch (enc & PE_FORMAT) {
    case 0x00: v = read_fixed(r, 8); break;                              /* absptr */
    case 0x01: v = read_uleb(r); break;                                  /* uleb128 */
    case 0x02: v = read_fixed(r, 2); break;                              /* udata2 */
    case 0x03: v = read_fixed(r, 4); break;                              /* udata4 */
    case 0x04: v = read_fixed(r, 8); break;                              /* udata8 */
    case 0x09: v = (uint64_t)read_sleb(r); break;                        /* sleb128 */
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)read_fixed(r, 2); break; /* sdata2 */
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)read_fixed(r, 4); break; /* sdata4 */
    case 0x0c: v = read_fixed(r, 8); break;                              /* sdata8 */
    default: r->bad = true; return 0;
    }
    switch (enc & PE_APPLY) {
    case 0x00: break;
    case 0x10: v += at; break;   /* pcrel */
    case 0x30: v += data; break; /* datarel */
    default: r->bad = true; return 0;
    }
    if (enc & PE_INDIRECT) {
        r->bad = true; /* not in the FDE fields this reads */
        return 0;
    }
    return (uintptr_t)v;
}

/* ---- finding the FDE ---- */

struct lookup {
    uintptr_t pc;
    const uint8_t *hdr;
    uintptr_t seg_lo, seg_hi; /* the segment holding the header */
    bool in_text;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct lookup *l = arg;
    bool holds = false;
    const ElfW(Phdr) *eh = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && l->pc >= lo && l->pc < lo + ph->p_memsz) {
            holds = true;
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            eh = ph;
        }
    }
    if (!holds) {
        return 0;
    }
    l->in_text = true;
    if (eh == NULL) {
        return 1;
    }
    uintptr_t hdr = info->dlpi_addr + eh->p_vaddr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && hdr >= lo && hdr < lo + ph->p_filesz) {
            l->hdr = (const uint8_t *)hdr;
            l->seg_lo = lo;
            l->seg_hi = lo + ph->p_filesz;
        }
    }
    return 1;
}

/* A reader over [at, at + len), or a bad one when that leaves the segment. */
static struct reader reader_at(const struct lookup *l, uintptr_t at, uint64_t len)
{
    struct reader r = {(const uint8_t *)at, (const uint8_t *)at, true};
    if (at >= l->seg_lo && at <= l->seg_hi && len <= l->seg_hi - at) {
        r.end = r.p + len;
        r.bad = false;
    }
    return r;
}

/* The FDE whose range may hold pc (the last table entry starting at or
 * below it), or 0. */
static uintptr_t search_table(const struct lookup *l)
{
    struct reader r = reader_at(l, (uintptr_t)l->hdr, l->seg_hi - (uintptr_t)l->hdr);
    uint8_t version = (uint8_t)read_fixed(&r, 1);
    uint8_t frame_enc = (uint8_t)read_fixed(&r, 1);
    uint8_t count_enc = (uint8_t)read_fixed(&r, 1);
    uint8_t table_enc = (uint8_t)read_fixed(&r, 1);
    if (r.bad || version != 1 || table_enc != 0x3b || frame_enc == PE_OMIT || count_enc == PE_OMIT) {
        return 0; /* no sorted table of datarel sdata4 pairs */
    }
    (void)read_encoded(&r, frame_enc, (uintptr_t)l->hdr);
    uint64_t count = read_encoded(&r, count_enc, (uintptr_t)l->hdr);
    if (r.bad || count == 0 || count > (uint64_t)(r.end - r.p) / 8) {
        return 0;
    }
    const int32_t *table = (const int32_t *)(const void *)r.p;
    uintptr_t base = (uintptr_t)l->hdr;
    size_t lo = 0, hi = (size_t)count; /* the answer is below hi */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (base + (intptr_t)table[2 * mid] <= l->pc) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if (base + (intptr_t)table[2 * lo] > l->pc) {
        return 0;
    }
    return base + (intptr_t)table[2 * lo + 1];
}

/* ---- CIE and FDE ---- */

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    bool signal_frame;
    bool has_z; /* FDEs have augmentation data */
    struct reader insns; /* the initial instructions */
};

/* A record's length and contents (not the 64-bit DWARF form). */
static bool open_record(const struct lookup *l, uintptr_t at, struct reader *rec)
{
    struct reader r = reader_at(l, at, 4);
    uint64_t len = read_fixed(&r, 4);
    if (r.bad || len == 0 || len >= 0xfffffff0u) {
        return false;
    }
    *rec = reader_at(l, at + 4, len);
    return !rec->bad;
}

static bool parse_cie(const struct lookup *l, uintptr_t at, struct cie *c)
{
    struct reader r;
    if (!open_record(l, at, &r) || read_fixed(&r, 4) != 0) {
        return false; /* not a CIE */
    }
    uint8_t version = (uint8_t)read_fixed(&r, 1);
    const char *aug = (const char *)r.p;
    size_t auglen = strnlen(aug, (size_t)(r.end - r.p));
    if (r.bad || (version != 1 && version != 3) || auglen == (size_t)(r.end - r.p)) {
        return false;
    }
    r.p += auglen + 1;
    if (strstr(aug, "eh") != NULL) {
        return false; /* the old g++ pointer: not met in current objects */
    }
    c->code_align = read_uleb(&r);
    c->data_align = read_sleb(&r);
    uint64_t ra = version == 1 ? read_fixed(&r, 1) : read_uleb(&r);
    c->fde_enc = 0;
    c->signal_frame = false;
    c->has_z = aug[0] == 'z';
    if (ra != REG_RA) {
        return false;
    }
    if (aug[0] == 'z') {
        uint64_t len = read_uleb(&r);
        if (r.bad || len > (uint64_t)(r.end - r.p)) {
            return false;
        }
        struct reader a = {r.p, r.p + len, false};
        r.p += len;
        for (const char *s = aug + 1; *s != '\0'; s++) {
            switch (*s) {
            case 'R': c->fde_enc = (uint8_t)read_fixed(&a, 1); break;
            case 'L': (void)read_fixed(&a, 1); break;
            case 'P': (void)read_encoded(&a, (uint8_t)read_fixed(&a, 1) & 0x7f, 0); break;
            case 'S': c->signal_frame = true; break;
            default: return false;
            }
        }
        if (a.bad) {
            return false;
        }
    } else if (aug[0] != '\0') {
        return false;
    }
    c->insns = r;
    return !r.bad;
}

/* ---- the CFA program ---- */

enum reg_how { SAME, AT_CFA, UNDEFINED, OTHER };

struct reg_rule {
    uint8_t how;
    int64_t off;
};

struct row {
    uint64_t cfa_reg;
    int64_t cfa_off;
    bool cfa_other; /* an expression */
    struct reg_rule rbp, ra;
};

#define STATE_STACK 8

struct machine {
    struct row row, initial, saved[STATE_STACK];
    unsigned nsaved;
    uintptr_t loc, target;
    const struct cie *cie;
    bool bad, done;
};

static struct reg_rule *tracked(struct row *row, uint64_t reg)
{
    return reg == REG_RBP ? &row->rbp : reg == REG_RA ? &row->ra : NULL;
}

static void set_reg(struct machine *m, uint64_t reg, uint8_t how, int64_t off)
{
    struct reg_rule *rr = tracked(&m->row, reg);
    if (rr != NULL) {
        rr->how = how;
        rr->off = off;
    }
}

static void restore_reg(struct machine *m, uint64_t reg)
{
    struct reg_rule *rr = tracked(&m->row, reg);
    if (rr != NULL) {
        *rr = *tracked(&m->initial, reg);
    }
}

static void set_cfa(struct machine *m, uint64_t reg, int64_t off)
{
    m->row.cfa_reg = reg;
    m->row.cfa_off = off;
    m->row.cfa_other = false;
}

static void advance(struct machine *m, uint64_t delta)
{
    m->loc += delta * m->cie->code_align;
    if (m->loc > m->target) {
        m->done = true; /* the row in force at the target is complete */
    }
}

static void skip_block(struct reader *r)
{
    uint64_t len = read_uleb(r);
    if (can_read(r, len)) {
        r->p += len;
    }
}

/* One instruction of the CFA program. */
static void step_insn(struct machine *m, struct reader *r)
{
    uint8_t op = (uint8_t)read_fixed(r, 1);
    uint64_t reg;
    int64_t da = m->cie->data_align;
    switch (op & 0xc0) {
    case 0x40: advance(m, op & 0x3f); return;
    case 0x80: set_reg(m, op & 0x3f, AT_CFA, (int64_t)read_uleb(r) * da); return;
    case 0xc0: restore_reg(m, op & 0x3f); return;
    }
    switch (op) {
    case 0x00: break; /* nop */
    case 0x01: {      /* set_loc */
        uintptr_t to = read_encoded(r, m->cie->fde_enc, 0);
        if (to < m->loc) {
            m->bad = true;
        } else {
            m->loc = to;
            m->done = m->loc > m->target;
        }
        break;
    }
    case 0x02: advance(m, read_fixed(r, 1)); break;
    case 0x03: advance(m, read_fixed(r, 2)); break;
    case 0x04: advance(m, read_fixed(r, 4)); break;
    case 0x05: reg = read_uleb(r); set_reg(m, reg, AT_CFA, (int64_t)read_uleb(r) * da); break;
    case 0x06: restore_reg(m, read_uleb(r)); break;
    case 0x07: set_reg(m, read_uleb(r), UNDEFINED, 0); break;
    case 0x08: set_reg(m, read_uleb(r), SAME, 0); break;
    case 0x09: reg = read_uleb(r); (void)read_uleb(r); set_reg(m, reg, OTHER, 0); break;
    case 0x0a:
        if (m->nsaved == STATE_STACK) {
            m->bad = true;
        } else {
            m->saved[m->nsaved++] = m->row;
        }
        break;
    case 0x0b:
        if (m->nsaved == 0) {
            m->bad = true;
        } else {
            /* the whole row, the CFA too, as GCC's epilogues expect (and
             * libgcc's unwinder does) */
            m->row = m->saved[--m->nsaved];
        }
        break;
    case 0x0c: reg = read_uleb(r); set_cfa(m, reg, (int64_t)read_uleb(r)); break;
    case 0x0d: set_cfa(m, read_uleb(r), m->row.cfa_off); break;
    case 0x0e: m->row.cfa_off = (int64_t)read_uleb(r); break;
    case 0x0f: skip_block(r); m->row.cfa_other = true; break;
    case 0x10: reg = read_uleb(r); skip_block(r); set_reg(m, reg, OTHER, 0); break;
    case 0x11: reg = read_uleb(r); set_reg(m, reg, AT_CFA, read_sleb(r) * da); break;
    case 0x12: reg = read_uleb(r); set_cfa(m, reg, read_sleb(r) * da); break;
    case 0x13: m->row.cfa_off = read_sleb(r) * da; break;
    case 0x14: reg = read_uleb(r); (void)read_uleb(r); set_reg(m, reg, OTHER, 0); break;
    case 0x15: reg = read_uleb(r); (void)read_sleb(r); set_reg(m, reg, OTHER, 0); break;
    case 0x16: reg = read_uleb(r); skip_block(r); set_reg(m, reg, OTHER, 0); break;
    case 0x2e: (void)read_uleb(r); break; /* GNU_args_size: no bearing on the CFA */
    case 0x2f: reg = read_uleb(r); set_reg(m, reg, AT_CFA, -(int64_t)read_uleb(r) * da); break;
    default: m->bad = true; break;
    }
}

static void run_program(struct machine *m, struct reader r)
{
    while (!m->done && !m->bad && r.p < r.end) {
        step_insn(m, &r);
        m->bad |= r.bad;
    }
}

/* The row in force at the target, as a rule. */
static enum cfi_kind row_rule(const struct row *row, struct cfi_rule *rule)
{
    if (row->ra.how == UNDEFINED) {
        rule->kind = CFI_END;
        return CFI_END;
    }
    bool cfa_ok = !row->cfa_other && (row->cfa_reg == REG_RSP || row->cfa_reg == REG_RBP) &&
                  row->cfa_off > 0 && row->cfa_off < INT32_MAX;
    bool ra_ok = row->ra.how == AT_CFA && row->ra.off == -8;
    bool rbp_ok = row->rbp.how == SAME ||
                  (row->rbp.how == AT_CFA && row->rbp.off < 0 && row->rbp.off > INT32_MIN);
    if (!cfa_ok || !ra_ok || !rbp_ok) {
        return CFI_UNKNOWN;
    }
    rule->cfa_rbp = row->cfa_reg == REG_RBP;
    rule->cfa_off = (int32_t)row->cfa_off;
    rule->rbp_saved = row->rbp.how == AT_CFA;
    rule->rbp_off = rule->rbp_saved ? (int32_t)row->rbp.off : 0;
    rule->kind = CFI_STEP;
    return CFI_STEP;
}

static enum cfi_kind rule_from_fde(const struct lookup *l, uintptr_t fde, struct cfi_rule *rule)
{
    struct reader r;
    if (!open_record(l, fde, &r)) {
        return CFI_UNKNOWN;
    }
    uintptr_t id_at = (uintptr_t)r.p;
    uint32_t cie_off = (uint32_t)read_fixed(&r, 4);
    struct cie cie;
    if (r.bad || cie_off == 0 || cie_off > id_at || !parse_cie(l, id_at - cie_off, &cie) ||
        cie.signal_frame) {
        return CFI_UNKNOWN;
    }
    uintptr_t start = read_encoded(&r, cie.fde_enc, 0);
    uintptr_t range = read_encoded(&r, cie.fde_enc & PE_FORMAT, 0);
    if (r.bad || l->pc < start || l->pc - start >= range) {
        return CFI_UNKNOWN; /* in a gap between FDEs */
    }
    if (cie.has_z) {
        skip_block(&r); /* the FDE's augmentation data (the LSDA pointer) */
    }
    if (r.bad) {
        return CFI_UNKNOWN;
    }
    struct machine m = {.cie = &cie, .loc = start, .target = l->pc};
    m.row.cfa_reg = REG_RSP;
    m.row.rbp.how = SAME;
    m.row.ra.how = SAME;
    run_program(&m, cie.insns); /* the CIE's rows take no address */
    m.done = false;
    m.loc = start;
    m.initial = m.row;
    m.nsaved = 0;
    run_program(&m, r);
    if (m.bad) {
        return CFI_UNKNOWN;
    }
    return row_rule(&m.row, rule);
}

enum cfi_kind cfi_rule_at(uintptr_t ra, struct cfi_rule *rule)
{
    memset(rule, 0, sizeof *rule);
    struct lookup l = {.pc = ra - 1};
    dl_iterate_phdr(find_object, &l);
    if (l.hdr == NULL) {
        return CFI_UNKNOWN;
    }
    uintptr_t fde = search_table(&l);
    if (fde == 0) {
        return CFI_UNKNOWN;
    }
    return rule_from_fde(&l, fde, rule);
}
