/* detok.c: incremental, UTF-8-safe detokenization.
 *
 * Keeps two offsets into the ids: text up to read_off has been emitted, and
 * decoding starts a few tokens earlier at prefix_off so that SentencePiece
 * sees the context it needs for spacing. Each push decodes
 * ids[prefix_off..read_off) and ids[prefix_off..n); the new text is the
 * difference, emitted only when it does not end in an incomplete character
 * (byte-fallback tokens of one character arrive one byte at a time and
 * decode to U+FFFD until the last one lands). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#define CONTEXT_TOKENS 5

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

size_t utf8_complete_prefix(const char *s, size_t n)
{
    /* walk back over at most 3 continuation bytes to the last lead byte */
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0) return back ? 0 : n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
    return back + 1 >= need ? n : i - 1;
}

void detok_init(struct detok *d, const tokenizer *t, const int32_t *context, int n_context)
{
    memset(d, 0, sizeof(*d));
    d->tok = t;
    int keep = n_context < CONTEXT_TOKENS ? n_context : CONTEXT_TOKENS;
    d->cap = 64;
    d->ids = malloc(d->cap * sizeof(int32_t));
    if (!d->ids) abort();
    memcpy(d->ids, context + n_context - keep, keep * sizeof(int32_t));
    d->n = d->read_off = keep;
    d->prefix_off = 0;
}

void detok_deinit(struct detok *d)
{
    free(d->ids);
    free(d->a);
    free(d->b);
    memset(d, 0, sizeof(*d));
}

/* Decodes ids[from..to) into *buf (capacity *cap), growing it; returns the length. */
static long decode(struct detok *d, char **buf, size_t *cap, int from, int to)
{
    for (;;) {
        long r = *buf ? tok_decode(d->tok, d->ids + from, to - from, *buf, *cap) : -64;
        if (r >= 0) return r;
        free(*buf);
        *cap = (size_t)(-r) * 2;
        *buf = malloc(*cap);
        if (!*buf) abort();
    }
}

static long emit(struct detok *d, bool final, const char **text)
{
    long plen = decode(d, &d->a, &d->a_cap, d->prefix_off, d->read_off);
    long nlen = decode(d, &d->b, &d->b_cap, d->prefix_off, d->n);
    *text = d->b + plen;
    if (nlen <= plen) {
        *text = "";
        return 0;
    }
    long len = nlen - plen;
    if (!final) {
        if (len >= 3 && !memcmp(d->b + nlen - 3, REPLACEMENT, 3)) return 0;
        if ((long)utf8_complete_prefix(d->b + plen, (size_t)len) != len) return 0;
    }
    /* the window advances: keep the tokens before read_off as context */
    d->prefix_off = d->read_off;
    d->read_off = d->n;
    return len;
}

long detok_push(struct detok *d, int32_t id, const char **text)
{
    if (d->n == d->cap) {
        d->cap *= 2;
        d->ids = realloc(d->ids, d->cap * sizeof(int32_t));
        if (!d->ids) abort();
    }
    d->ids[d->n++] = id;
    return emit(d, false, text);
}

long detok_flush(struct detok *d, const char **text) { return emit(d, true, text); }
