/* hf_decode.c: tokenizer.json decoders (see hf.h), each a step from a list
 * of token strings to another, as tokenizers' decode_chain: ByteLevel,
 * Metaspace, ByteFallback, Fuse, Strip, Replace and Sequence.
 *
 * One difference, on purpose: bytes that do not form UTF-8 (a character cut
 * between tokens) are kept as they are, where tokenizers writes U+FFFD. The
 * streaming detokenizer needs the bytes to hold a character back until its
 * last byte arrives; text leaving the process is repaired at the edge. */
#include <stdlib.h>
#include <string.h>

#include "hf.h"

/* Token strings -> the bytes they show in the byte-level alphabet; a token
 * with a character outside it stays as written. */
static void bytelevel(const struct pieces *in, struct pieces *out)
{
    struct strbuf all = {0};
    for (int i = 0; i < in->n; i++) {
        const char *s = piece_text(in, i);
        size_t n = in->v[i].len, mark = all.len;
        int k;
        for (size_t j = 0; j < n; j += (size_t)k) {
            int b = bytelevel_byte(utf8_next(s + j, n - j, &k));
            if (b < 0) {
                all.len = mark;
                strbuf_append(&all, s, n);
                break;
            }
            char c = (char)b;
            strbuf_append(&all, &c, 1);
        }
    }
    pieces_add(out, all.s ? all.s : "", all.len, 0, 0);
    strbuf_free(&all);
}

static void metaspace(const struct decoder *d, const struct pieces *in, struct pieces *out)
{
    struct strbuf t = {0};
    size_t rl = strlen(d->replacement);
    for (int i = 0; i < in->n; i++) {
        const char *s = piece_text(in, i);
        size_t n = in->v[i].len;
        t.len = 0;
        for (size_t j = 0; j < n; j++) {
            if (rl && j + rl <= n && !memcmp(s + j, d->replacement, rl)) {
                if (i || d->prepend == PREPEND_NEVER) strbuf_append(&t, " ", 1);
                j += rl - 1;
            } else {
                strbuf_append(&t, s + j, 1);
            }
        }
        pieces_add(out, t.s ? t.s : "", t.len, 0, 0);
    }
    strbuf_free(&t);
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

static void bytefallback(const struct pieces *in, struct pieces *out)
{
    struct strbuf bytes = {0};
    for (int i = 0; i < in->n; i++) {
        const char *s = piece_text(in, i);
        int hi = in->v[i].len == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' ? hexval(s[3]) : -1;
        int lo = hi >= 0 ? hexval(s[4]) : -1;
        if (lo >= 0) {
            char b = (char)(hi * 16 + lo);
            strbuf_append(&bytes, &b, 1);
            continue;
        }
        if (bytes.len) pieces_add(out, bytes.s, bytes.len, 0, 0);
        bytes.len = 0;
        pieces_add(out, s, in->v[i].len, 0, 0);
    }
    if (bytes.len) pieces_add(out, bytes.s, bytes.len, 0, 0);
    strbuf_free(&bytes);
}

static void fuse(const struct pieces *in, struct pieces *out)
{
    pieces_add(out, in->text.s ? in->text.s : "", in->text.len, 0, 0); /* pieces lie back to back */
}

/* Up to d->start copies of the content character off each token's start,
 * up to d->stop off its end. */
static void strip(const struct decoder *d, const struct pieces *in, struct pieces *out)
{
    size_t cl = strlen(d->content);
    for (int i = 0; i < in->n; i++) {
        const char *s = piece_text(in, i);
        size_t a = 0, b = in->v[i].len;
        for (int k = 0; k < d->start && cl && a + cl <= b && !memcmp(s + a, d->content, cl); k++) a += cl;
        for (int k = 0; k < d->stop && cl && b >= a + cl && !memcmp(s + b - cl, d->content, cl); k++) b -= cl;
        pieces_add(out, s + a, b - a, 0, 0);
    }
}

static int replace(const struct decoder *d, const struct pieces *in, struct pieces *out)
{
    struct normalizer z = {.kind = NORM_REPLACE, .text = d->content, .literal = d->literal, .re = d->re};
    struct strbuf t = {0};
    int rc = 0;
    for (int i = 0; !rc && i < in->n; i++) {
        t.len = 0;
        rc = normalize(&z, piece_text(in, i), in->v[i].len, &t);
        pieces_add(out, t.s ? t.s : "", t.len, 0, 0);
    }
    strbuf_free(&t);
    return rc;
}

static int decode_step(const struct decoder *d, const struct pieces *in, struct pieces *out)
{
    switch (d->kind) {
    case DEC_BYTELEVEL: bytelevel(in, out); return 0;
    case DEC_METASPACE: metaspace(d, in, out); return 0;
    case DEC_BYTEFALLBACK: bytefallback(in, out); return 0;
    case DEC_FUSE: fuse(in, out); return 0;
    case DEC_STRIP: strip(d, in, out); return 0;
    case DEC_REPLACE: return replace(d, in, out);
    case DEC_SEQUENCE: break;
    }
    struct pieces a = {0}, b = {0};
    const struct pieces *src = in;
    int rc = 0;
    for (int i = 0; !rc && i < d->n_kids; i++) {
        struct pieces *dst = i == d->n_kids - 1 ? out : (src == &a ? &b : &a);
        if (dst != out) pieces_reset(dst);
        rc = decode_step(&d->kids[i], src, dst);
        src = dst;
    }
    if (!d->n_kids) fuse(in, out);
    pieces_free(&a);
    pieces_free(&b);
    return rc;
}

int decode_tokens(const struct decoder *d, struct pieces *toks, struct strbuf *out)
{
    if (!d) {
        for (int i = 0; i < toks->n; i++) {
            if (i) strbuf_append(out, " ", 1);
            strbuf_append(out, piece_text(toks, i), toks->v[i].len);
        }
        return 0;
    }
    struct pieces res = {0};
    int rc = decode_step(d, toks, &res);
    strbuf_append(out, res.text.s ? res.text.s : "", res.text.len);
    pieces_free(&res);
    return rc;
}

void decoder_free(struct decoder *d)
{
    if (!d) return;
    for (int i = 0; i < d->n_kids; i++) decoder_free(&d->kids[i]);
    free(d->kids);
    free(d->content);
    free(d->literal);
    regex_free(&d->re);
}

/* ---- one token in the middle of a text (tok_token_bytes) ---- */

/* Decoder d on one token alone, b[0] -> b[0] (b[1]: scratch). *joined: an
 * earlier step (Fuse, ByteLevel, an empty Sequence) has made the tokens one
 * text, so d sees the whole text, of which the token is a middle part: what
 * a step does to each character (ByteLevel, Metaspace, Replace) it does to
 * the token; what it does to the ends of its input (Strip) or to an input as
 * a whole (ByteFallback's <0xNN>) does not reach a middle part. Metaspace on
 * the whole text drops every replacement, as decode_tokens does to a first
 * token. A Replace whose pattern would match across tokens is applied to the
 * token alone. */
/* token_decode's ByteLevel step: false (the token as written) when a
 * character is outside its alphabet. */
static bool token_bytelevel(const char *s, size_t n, struct strbuf *t)
{
    int k;
    for (size_t j = 0; j < n; j += (size_t)k) {
        int c = bytelevel_byte(utf8_next(s + j, n - j, &k));
        char byte = (char)c;
        if (c < 0) return false;
        strbuf_append(t, &byte, 1);
    }
    return true;
}

/* token_decode's Metaspace step: each replacement a space, or nothing when
 * the token is the whole text's start (drop). */
static void token_metaspace(const struct decoder *d, const char *s, size_t n, bool drop, struct strbuf *t)
{
    size_t rl = strlen(d->replacement);
    for (size_t j = 0; j < n; j++) {
        if (rl && j + rl <= n && !memcmp(s + j, d->replacement, rl)) {
            if (!drop) strbuf_append(t, " ", 1);
            j += rl - 1;
        } else {
            strbuf_append(t, s + j, 1);
        }
    }
}

static void token_decode(const struct decoder *d, struct strbuf b[2], bool *joined)
{
    if (d->kind == DEC_SEQUENCE) {
        for (int i = 0; i < d->n_kids; i++) token_decode(&d->kids[i], b, joined);
        if (!d->n_kids) *joined = true;
        return;
    }
    const char *s = b[0].s ? b[0].s : "";
    size_t n = b[0].len;
    struct strbuf *t = &b[1];
    t->len = 0;
    bool changed = true;
    switch (d->kind) {
    case DEC_BYTELEVEL:
        changed = token_bytelevel(s, n, t);
        *joined = true;
        break;
    case DEC_METASPACE: /* on the whole text (joined), the token is decode's token 0 */
        token_metaspace(d, s, n, *joined && d->prepend != PREPEND_NEVER, t);
        break;
    case DEC_BYTEFALLBACK: {
        int hi = !*joined && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' ? hexval(s[3]) : -1;
        int lo = hi >= 0 ? hexval(s[4]) : -1;
        char byte = (char)(hi * 16 + lo);
        if (lo >= 0) strbuf_append(t, &byte, 1);
        else changed = false;
        break;
    }
    case DEC_FUSE:
        *joined = true;
        changed = false;
        break;
    case DEC_STRIP: {
        size_t cl = *joined ? 0 : strlen(d->content), a = 0, e = n; /* joined: the ends are not the token's */
        for (int k = 0; k < d->start && cl && a + cl <= e && !memcmp(s + a, d->content, cl); k++) a += cl;
        for (int k = 0; k < d->stop && cl && e >= a + cl && !memcmp(s + e - cl, d->content, cl); k++) e -= cl;
        strbuf_append(t, s + a, e - a);
        break;
    }
    case DEC_REPLACE: {
        struct normalizer z = {.kind = NORM_REPLACE, .text = d->content, .literal = d->literal, .re = d->re};
        changed = normalize(&z, s, n, t) == 0; /* a failing matcher leaves the token as it is */
        break;
    }
    case DEC_SEQUENCE: break;
    }
    if (changed) {
        struct strbuf x = b[0];
        b[0] = b[1];
        b[1] = x;
    }
}

int hf_token_bytes(const struct hf *h, int32_t id, struct strbuf b[2])
{
    if (id < 0 || id >= h->n_ids || !h->id_piece[id] || h->id_special[id]) return -1;
    b[0].len = 0;
    if (!h->dec) strbuf_append(&b[0], " ", 1); /* no decoder: tokens joined by spaces */
    strbuf_append(&b[0], h->id_piece[id], strlen(h->id_piece[id]));
    bool joined = false;
    if (h->dec) token_decode(h->dec, b, &joined);
    return 0;
}
