/* hf_added.c: added tokens of tokenizer.json (see hf.h), matched before
 * the model as tokenizers' AddedVocabulary does: leftmost-longest over the
 * tokens' texts (a byte trie: O(text x longest token)), then single_word,
 * lstrip and rstrip applied to each match. Tokens with "normalized": true
 * are matched, by their normalized text, in normalized pieces. */
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "hf.h"

static int trie_node(struct trie *t, uint8_t byte)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->v = xrealloc(t->v, (size_t)t->cap * sizeof(*t->v));
    }
    t->v[t->n] = (struct trie_node){.child = -1, .sibling = -1, .token = -1, .byte = byte};
    return t->n++;
}

static int trie_child(const struct trie *t, int node, uint8_t byte)
{
    int c = t->v[node].child;
    while (c >= 0 && t->v[c].byte != byte) c = t->v[c].sibling;
    return c;
}

static void trie_insert(struct trie *t, const char *s, size_t len, int token)
{
    if (!t->n) trie_node(t, 0);
    int node = 0;
    for (size_t i = 0; i < len; i++) {
        int c = trie_child(t, node, (uint8_t)s[i]);
        if (c < 0) {
            c = trie_node(t, (uint8_t)s[i]);
            t->v[c].sibling = t->v[node].child;
            t->v[node].child = c;
        }
        node = c;
    }
    if (t->v[node].token < 0) t->v[node].token = token; /* the first of equal texts wins */
}

/* The longest token starting at s[0..n): its index, *len its length; -1. */
static int trie_longest(const struct trie *t, const char *s, size_t n, size_t *len)
{
    int node = 0, best = -1;
    for (size_t i = 0; i < n && t->n; i++) {
        node = trie_child(t, node, (uint8_t)s[i]);
        if (node < 0) break;
        if (t->v[node].token >= 0) {
            best = t->v[node].token;
            *len = i + 1;
        }
    }
    return best;
}

int added_build(struct added *a, const struct normalizer *z)
{
    a->norm_text = xcalloc((size_t)a->n + 1, sizeof(char *));
    for (int i = 0; i < a->n; i++) {
        struct added_token *k = &a->tok[i];
        if (!k->len) continue;
        if (!k->normalized) {
            trie_insert(&a->raw, k->content, k->len, i);
            continue;
        }
        struct strbuf nb = {0};
        if (normalize(z, k->content, k->len, &nb)) return -1;
        if (nb.len) trie_insert(&a->norm, nb.s, nb.len, i);
        a->norm_text[i] = strbuf_take(&nb);
    }
    return 0;
}

static bool word_char_before(const char *s, size_t at)
{
    if (!at) return false;
    size_t c = at - 1;
    while (c > 0 && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
    int k;
    int32_t ch = utf8_next(s + c, at - c, &k);
    return ch == '_' || uni_is_alnum(ch);
}

static bool word_char_at(const char *s, size_t n, size_t at)
{
    if (at >= n) return false;
    int k;
    int32_t ch = utf8_next(s + at, n - at, &k);
    return ch == '_' || uni_is_alnum(ch);
}

/* tokenizers' find_matches on one piece s[0..n), into out. */
static void split_piece(const struct added *a, const struct trie *t, const char *s, size_t n, int flags,
                        struct pieces *out)
{
    size_t from = 0, at = 0; /* from: start_offset; at: where the matcher goes on */
    while (at < n) {
        size_t len = 0;
        int i = trie_longest(t, s + at, n - at, &len);
        if (i < 0) {
            at++;
            continue;
        }
        const struct added_token *k = &a->tok[i];
        size_t start = at, stop = at + len;
        at = stop;
        if (k->single_word && (word_char_before(s, start) || word_char_at(s, n, stop))) continue;
        if (k->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t c = ns - 1;
                while (c > 0 && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
                int kl;
                if (!uni_is_whitespace(utf8_next(s + c, ns - c, &kl))) break;
                ns = c;
            }
            start = ns > from ? ns : from;
        }
        int kl;
        while (k->rstrip && stop < n && uni_is_whitespace(utf8_next(s + stop, n - stop, &kl))) stop += (size_t)kl;
        if (from < start) pieces_add(out, s + from, start - from, -1, from == 0 ? flags : 0);
        pieces_add(out, s + start, stop - start, k->id, 0);
        from = stop;
    }
    if (from < n) pieces_add(out, s + from, n - from, -1, from == 0 ? flags : 0);
}

void added_split(const struct added *a, bool normalized, const struct pieces *in, struct pieces *out)
{
    const struct trie *t = normalized ? &a->norm : &a->raw;
    for (int i = 0; i < in->n; i++) {
        const struct piece *x = &in->v[i];
        if (x->id >= 0 || !t->n) pieces_add(out, piece_text(in, i), x->len, x->id, x->flags);
        else split_piece(a, t, piece_text(in, i), x->len, x->flags, out);
    }
}

void added_free(struct added *a)
{
    for (int i = 0; i < a->n; i++) {
        free(a->tok[i].content);
        if (a->norm_text) free(a->norm_text[i]);
    }
    free(a->tok);
    free(a->norm_text);
    free(a->raw.v);
    free(a->norm.v);
}
