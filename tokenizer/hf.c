/* hf.c: encoding and decoding with a loaded tokenizer.json (see hf.h). */
#include <stdlib.h>
#include <string.h>

#include "hf.h"

int hf_encode(const struct hf *h, const char *text, size_t len, bool add_special, struct ids *out)
{
    struct pieces a = {0}, b = {0};
    struct strbuf nb = {0};
    pieces_add(&a, text, len, -1, PIECE_FIRST);
    added_split(&h->added, false, &a, &b); /* tokens matched as written */
    pieces_reset(&a);
    int rc = 0;
    for (int i = 0; !rc && i < b.n; i++) { /* the rest normalized, piece by piece */
        const struct piece *x = &b.v[i];
        if (x->id >= 0) {
            pieces_add(&a, piece_text(&b, i), x->len, x->id, x->flags);
            continue;
        }
        nb.len = 0;
        rc = normalize(h->norm, piece_text(&b, i), x->len, &nb);
        pieces_add(&a, nb.s ? nb.s : "", nb.len, -1, x->flags);
    }
    pieces_reset(&b);
    struct pieces c = {0};
    if (!rc) {
        added_split(&h->added, true, &a, &b); /* tokens matched normalized */
        rc = pretokenize(h->pre, &b, &c);
    }
    for (int i = 0; add_special && !rc && i < h->n_post_pre; i++) ids_push(out, h->post_pre[i]);
    for (int i = 0; !rc && i < c.n; i++) {
        if (c.v[i].id >= 0) ids_push(out, c.v[i].id);
        else bpe_encode(&h->bpe, piece_text(&c, i), c.v[i].len, out);
    }
    for (int i = 0; add_special && !rc && i < h->n_post_post; i++) ids_push(out, h->post_post[i]);
    pieces_free(&a);
    pieces_free(&b);
    pieces_free(&c);
    strbuf_free(&nb);
    return rc;
}

void hf_decode(const struct hf *h, const int32_t *ids, int n, struct strbuf *out)
{
    struct pieces toks = {0};
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= h->n_ids || !h->id_piece[id] || h->id_special[id]) continue;
        pieces_add(&toks, h->id_piece[id], strlen(h->id_piece[id]), 0, 0);
    }
    decode_tokens(h->dec, &toks, out);
    pieces_free(&toks);
}

int32_t hf_token_id(const struct hf *h, const char *piece, size_t len)
{
    int32_t id = strmap_get(&h->added_ids, piece, len);
    return id >= 0 ? id : strmap_get(&h->bpe.vocab, piece, len);
}

void hf_free(struct hf *h)
{
    if (!h) return;
    normalizer_free(h->norm);
    free(h->norm);
    pretokenizer_free(h->pre);
    free(h->pre);
    decoder_free(h->dec);
    free(h->dec);
    bpe_free(&h->bpe);
    added_free(&h->added);
    free(h->post_pre);
    free(h->post_post);
    free(h->id_piece);
    free(h->id_special);
    free(h->arena);
    strmap_free(&h->added_ids);
    free(h);
}
