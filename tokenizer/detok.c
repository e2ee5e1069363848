/* detok.c: incremental, UTF-8-safe detokenization.
 *
 * Keeps two offsets into the ids: text up to read_off has been emitted, and
 * decoding starts a few tokens earlier at prefix_off so that SentencePiece
 * sees the context it needs for spacing. Each push decodes
 * ids[prefix_off..read_off) and ids[prefix_off..n); the new text is the
 * difference, emitted only when it does not end in an incomplete character
 * (byte-fallback tokens of one character arrive one byte at a time and
 * decode to U+FFFD until the last one lands). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#define CONTEXT_TOKENS 5
/* Bounds on the window, so that a push costs O(1) decodes of a few tokens
 * whatever the model emits: text is held back for at most HOLD_TOKENS tokens
 * (a character is at most 4 byte-fallback tokens: a longer run that still
 * ends in U+FFFD is garbage, shown as such), and the window's start stays on
 * a silent token for at most SILENT_TOKENS. */
#define HOLD_TOKENS 8
#define SILENT_TOKENS 32

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
    if (keep) memcpy(d->ids, context + n_context - keep, keep * sizeof(int32_t)); /* context may be NULL */
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

/* Whether id alone decodes to no text. */
static bool silent(const struct detok *d, int32_t id)
{
    char buf[16];
    return tok_decode(d->tok, &id, 1, buf, sizeof(buf)) == 0;
}

/* The window advances past ids[read_off..end), whose text is out. It starts
 * again at the last of them that decodes to some text alone: never at a
 * token that decodes to nothing alone (a control token, or "▁", which
 * SentencePiece drops at the start of a decode, and with
 * remove_extra_whitespaces the space of the next piece too: "▁" "▁up" decodes
 * to "up" alone but " up" after other text). After more than SILENT_TOKENS
 * such tokens the ones between the window's start and the last of them leave
 * the window: their text is out already, and what follows decodes the same
 * after those two (the last one still parts byte runs, as control tokens do). */
static void advance(struct detok *d, int end)
{
    int j = end - 1;
    while (j >= d->read_off && silent(d, d->ids[j])) j--;
    if (j >= d->read_off) {
        d->prefix_off = j;
    } else if (end - d->prefix_off > SILENT_TOKENS) {
        int keep = silent(d, d->ids[d->prefix_off]) ? 0 : 1; /* the start, if it has text */
        /* the last id in the vocabulary stays (ids outside it are no tokens: decode drops them) */
        int last = end - 1;
        while (last > d->prefix_off + keep && !tok_id_to_piece(d->tok, d->ids[last])) last--;
        d->ids[end - 1] = d->ids[last];
        int drop = end - 1 - d->prefix_off - keep;
        memmove(d->ids + d->prefix_off + keep, d->ids + end - 1, (size_t)(d->n - end + 1) * sizeof(int32_t));
        d->n -= drop;
        end -= drop;
    }
    d->read_off = end;
}

/* The byte of a byte-fallback piece "<0xHH>"; -1 for another piece, -2 for
 * an id outside the vocabulary (tok_decode drops it: it parts no bytes). */
static int byte_of(const struct detok *d, int32_t id)
{
    const char *p = tok_id_to_piece(d->tok, id);
    unsigned b;
    if (!p) return -2;
    return strlen(p) == 6 && sscanf(p, "<0x%2X>", &b) == 1 ? (int)b : -1;
}

/* How many of the last ids hold the start of a UTF-8 character that the
 * next ids may still complete (its byte pieces, and any ids among them
 * that decode to no bytes); 0 when there is none. */
static int open_character(const struct detok *d)
{
    int bytes = 0;
    for (int i = d->n - 1; i >= d->read_off && bytes < 3; i--) {
        int b = byte_of(d, d->ids[i]);
        if (b == -2) continue;
        if (b < 0) return 0;
        bytes++;
        if ((b & 0xC0) == 0x80) continue; /* a continuation byte: its lead is further back */
        int need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        return need > bytes ? d->n - i : 0;
    }
    return 0;
}

/* The piece as valid UTF-8: tokenizer.json decoders give bytes as they are,
 * and a model can emit bytes that form no character (or a forced piece can
 * end inside one): those show as U+FFFD, as Hugging Face's decode shows them. */
static long valid_text(struct detok *d, const char **text, long len)
{
    if (utf8_valid_prefix(*text, (size_t)len) == (size_t)len) return len;
    size_t need = 3 * (size_t)len + 1;
    if (d->a_cap < need) {
        free(d->a);
        d->a = malloc(need);
        if (!d->a) abort();
        d->a_cap = need;
    }
    long n = (long)utf8_sanitize(d->a, need, *text, (size_t)len);
    *text = d->a;
    return n;
}

/* The new text t[0..len), in d->b, with the carried tail put before it. */
static long join_tail(struct detok *d, const char **t, long len)
{
    long plen = (long)(*t - d->b), k = d->tail_len;
    if (plen < k) {
        if (d->b_cap < (size_t)(len + k)) {
            d->b_cap = (size_t)(len + k);
            d->b = realloc(d->b, d->b_cap);
            if (!d->b) abort();
        }
        memmove(d->b + k, d->b + plen, (size_t)len);
        plen = k;
    }
    memcpy(d->b + plen - k, d->tail, (size_t)k);
    *t = d->b + plen - k;
    return len + k;
}

static long emit(struct detok *d, bool final, const char **text)
{
    /* held too long: out with all but a character still being completed */
    bool force = !final && d->n - d->read_off > HOLD_TOKENS;
    int end = force ? d->n - open_character(d) : d->n;
    long plen = decode(d, &d->a, &d->a_cap, d->prefix_off, d->read_off);
    long nlen = decode(d, &d->b, &d->b_cap, d->prefix_off, end);
    /* the new text follows the old, except where the context ends inside a
     * character the new ids complete (the old text shows U+FFFD there, the
     * new one the character): then it starts at that character */
    if (memcmp(d->a, d->b, (size_t)(plen < nlen ? plen : nlen))) {
        long same = 0;
        while (d->a[same] == d->b[same]) same++;
        plen = (long)utf8_complete_prefix(d->b, (size_t)same);
    }
    *text = "";
    if (nlen <= plen) { /* no text yet; after HOLD_TOKENS, none from these tokens */
        if (force) advance(d, end);
        if (!final || !d->tail_len) return 0;
        long k = d->tail_len; /* the end: a carried tail goes out, repaired */
        memcpy(d->b, d->tail, (size_t)k);
        d->tail_len = 0;
        *text = d->b;
        return valid_text(d, text, k);
    }
    const char *t = d->b + plen;
    long len = d->tail_len ? join_tail(d, &t, nlen - plen) : nlen - plen;
    if (!final && !force) {
        if (len >= 3 && !memcmp(t + len - 3, REPLACEMENT, 3)) return 0;
        if ((long)utf8_complete_prefix(t, (size_t)len) != len) return 0;
    }
    /* forced: the bytes of a character still open wait for the next piece
     * (tokenizer.json decodes bytes as they are, so they join exactly) */
    long keep = force ? (long)utf8_complete_prefix(t, (size_t)len) : len;
    d->tail_len = (int)(len - keep);
    memcpy(d->tail, t + keep, (size_t)d->tail_len);
    advance(d, end);
    *text = t;
    return valid_text(d, text, keep);
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
