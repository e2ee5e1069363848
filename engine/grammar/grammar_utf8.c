/* grammar_utf8.c: sets of code points as paths of byte ranges that spell
 * exactly their valid UTF-8 (no surrogates, no overlongs), raw or as the
 * inside of a JSON string. */
#include "grammar_impl.h"

static void cp_bytes(uint32_t cp, uint8_t *b, int *n)
{
    if (cp < 0x80) b[0] = (uint8_t)cp, *n = 1;
    else if (cp < 0x800) b[0] = (uint8_t)(0xC0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 0x3F)), *n = 2;
    else if (cp < 0x10000)
        b[0] = (uint8_t)(0xE0 | cp >> 12), b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)), b[2] = (uint8_t)(0x80 | (cp & 0x3F)), *n = 3;
    else
        b[0] = (uint8_t)(0xF0 | cp >> 18), b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F)),
        b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)), b[3] = (uint8_t)(0x80 | (cp & 0x3F)), *n = 4;
}

/* Russ Cox's utf8-ranges: split until lo and hi differ only in whole
 * trailing continuation bytes, then one byte range per position. */
void gr_cp_range(grammar *g, int from, int to, uint32_t lo, uint32_t hi)
{
    if (lo > hi || g->failed) return;
    if (hi > CP_MAX) hi = CP_MAX;
    if (lo <= 0xDFFF && hi >= 0xD800) {
        if (lo < 0xD800) gr_cp_range(g, from, to, lo, 0xD7FF);
        if (hi > 0xDFFF) gr_cp_range(g, from, to, 0xE000, hi);
        return;
    }
    static const uint32_t lens[] = {0x7F, 0x7FF, 0xFFFF};
    for (int k = 0; k < 3; k++)
        if (lo <= lens[k] && hi > lens[k]) {
            gr_cp_range(g, from, to, lo, lens[k]);
            gr_cp_range(g, from, to, lens[k] + 1, hi);
            return;
        }
    uint8_t a[4], b[4];
    int n, nb;
    cp_bytes(lo, a, &n);
    cp_bytes(hi, b, &nb);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if (lo & m) {
                gr_cp_range(g, from, to, lo, lo | m);
                gr_cp_range(g, from, to, (lo | m) + 1, hi);
                return;
            }
            if ((hi & m) != m) {
                gr_cp_range(g, from, to, lo, (hi & ~m) - 1);
                gr_cp_range(g, from, to, hi & ~m, hi);
                return;
            }
        }
    }
    int cur = from;
    for (int i = 0; i < n; i++) {
        int t = i == n - 1 ? to : gb_node(g);
        gb_byte(g, cur, a[i], b[i], t, COP_NONE, 0);
        cur = t;
    }
}

/* A set of code points from -> to; inside a JSON string each as its JSON
 * spelling: '"' and '\\' escaped, \b \f \n \r \t for those controls, the
 * other controls left out. */
void gr_emit_set(grammar *g, int from, int to, const struct gr_range *r, int n, bool json)
{
    static const char ctl[][2] = {{'\b', 'b'}, {'\f', 'f'}, {'\n', 'n'}, {'\r', 'r'}, {'\t', 't'}, {'"', '"'}, {'\\', '\\'}};
    for (int i = 0; i < n; i++) {
        uint32_t lo = r[i].lo, hi = r[i].hi;
        if (!json) {
            gr_cp_range(g, from, to, lo, hi);
            continue;
        }
        for (size_t k = 0; k < sizeof(ctl) / sizeof(ctl[0]); k++)
            if ((uint32_t)ctl[k][0] >= lo && (uint32_t)ctl[k][0] <= hi) {
                int m = gb_node(g);
                gb_byte(g, from, '\\', '\\', m, COP_NONE, 0);
                gb_byte(g, m, ctl[k][1], ctl[k][1], to, COP_NONE, 0);
            }
        /* the raw part: [lo, hi] minus controls, '"' and '\\' */
        if (lo < 0x20) lo = 0x20;
        uint32_t cuts[] = {'"', '\\'};
        for (int k = 0; k < 2 && lo <= hi; k++) {
            if (cuts[k] >= lo && cuts[k] <= hi) {
                if (cuts[k] > lo) gr_cp_range(g, from, to, lo, cuts[k] - 1);
                lo = cuts[k] + 1;
            }
        }
        if (lo <= hi) gr_cp_range(g, from, to, lo, hi);
    }
}

