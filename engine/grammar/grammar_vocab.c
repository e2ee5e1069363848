/* grammar_vocab.c: the vocabulary: each token's bytes, the byte trie over
 * them (sorted, so that tokens sharing a prefix share its nodes, stored in
 * preorder for the mask walk of grammar_mask.c), and gm_accept_token. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "grammar_impl.h"

/* tells vocabularies apart in the mask cache's keys */
static _Atomic uint64_t vocab_serial;

static int tok_cmp(const void *a, const void *b, void *ctx)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    const struct grammar_vocab *v = ctx;
    uint32_t lx = v->len[x], ly = v->len[y];
    int c = memcmp(v->blob + v->off[x], v->blob + v->off[y], lx < ly ? lx : ly);
    if (c) return c;
    return lx != ly ? (lx < ly ? -1 : 1) : (x < y ? -1 : x > y);
}

static void build_trie(struct grammar_vocab *v)
{
    int32_t *ids = xmalloc(((size_t)v->n + 1) * sizeof(*ids));
    int k = 0;
    size_t total = 0;
    for (int i = 0; i < v->n; i++)
        if (v->len[i] && !v->is_eos[i]) ids[k++] = i, total += v->len[i];
    qsort_r(ids, (size_t)k, sizeof(*ids), tok_cmp, v);
    v->tb = xmalloc(total + 1);
    v->tdepth = xmalloc((total + 1) * sizeof(*v->tdepth));
    v->tend = xmalloc((total + 1) * sizeof(*v->tend));
    v->ttok = xmalloc((total + 1) * sizeof(*v->ttok));
    v->tsame = xmalloc(((size_t)v->n + 1) * sizeof(*v->tsame));
    uint32_t maxlen = 0;
    for (int i = 0; i < k; i++) maxlen = v->len[ids[i]] > maxlen ? v->len[ids[i]] : maxlen;
    int32_t *open = xmalloc(((size_t)maxlen + 2) * sizeof(*open)); /* node at each depth of the path */
    int n = 0, depth = 0;
    for (int i = 0; i < k; i++) {
        int32_t t = ids[i];
        const uint8_t *b = v->blob + v->off[t];
        uint32_t len = v->len[t], l = 0;
        if (i) {
            int32_t p = ids[i - 1];
            uint32_t lp = v->len[p];
            const uint8_t *pb = v->blob + v->off[p];
            while (l < lp && l < len && pb[l] == b[l]) l++;
        }
        /* close the path's nodes deeper than the common prefix */
        for (int d = depth; d > (int)l; d--) v->tend[open[d]] = n;
        depth = (int)l;
        v->tsame[t] = -1;
        if (len == l) { /* the same bytes as the previous token */
            int32_t *q = &v->ttok[open[len]];
            while (*q >= 0) q = &v->tsame[*q];
            *q = t;
            continue;
        }
        for (uint32_t d = l + 1; d <= len; d++) {
            v->tb[n] = b[d - 1];
            v->tdepth[n] = (uint16_t)d;
            v->ttok[n] = -1;
            open[d] = n++;
        }
        v->ttok[open[len]] = t;
        depth = (int)len;
    }
    for (int d = depth; d > 0; d--) v->tend[open[d]] = n;
    v->n_nodes = n;
    v->max_depth = (int)maxlen;
    free(open);
    free(ids);
}

struct grammar_vocab *grammar_vocab_new(int n_tokens, const uint8_t *const *bytes, const uint32_t *lens,
                                        const int32_t *eos_ids, int n_eos)
{
    struct grammar_vocab *v = xcalloc(1, sizeof(*v));
    v->n = n_tokens > 0 ? n_tokens : 0;
    v->serial = atomic_fetch_add(&vocab_serial, 1) + 1;
    v->words = ((size_t)v->n + 31) / 32;
    v->off = xmalloc(((size_t)v->n + 1) * sizeof(*v->off));
    v->len = xmalloc(((size_t)v->n + 1) * sizeof(*v->len));
    v->is_eos = xcalloc((size_t)v->n + 1, 1);
    size_t total = 0;
    for (int i = 0; i < v->n; i++) {
        v->len[i] = lens[i] > 65535 ? 0 : lens[i]; /* longer than any depth counter: never allowed */
        v->off[i] = total;
        total += v->len[i];
    }
    v->blob = xmalloc(total + 1);
    for (int i = 0; i < v->n; i++)
        if (v->len[i]) memcpy(v->blob + v->off[i], bytes[i], v->len[i]);
    v->eos = xmalloc(((size_t)n_eos + 1) * sizeof(*v->eos));
    for (int i = 0; i < n_eos; i++)
        if (eos_ids[i] >= 0 && eos_ids[i] < v->n) {
            v->is_eos[eos_ids[i]] = 1;
            v->eos[v->n_eos++] = eos_ids[i];
        }
    build_trie(v);
    return v;
}

void grammar_vocab_free(struct grammar_vocab *v)
{
    if (!v) return;
    free(v->blob);
    free(v->off);
    free(v->len);
    free(v->is_eos);
    free(v->eos);
    free(v->tb);
    free(v->tdepth);
    free(v->tend);
    free(v->ttok);
    free(v->tsame);
    free(v);
}

int grammar_vocab_size(const struct grammar_vocab *v) { return v->n; }
size_t grammar_vocab_mask_words(const struct grammar_vocab *v) { return v->words; }

bool gm_accept_token(struct grammar_matcher *m, const struct grammar_vocab *v, int32_t id)
{
    if (m->terminated || id < 0 || id >= v->n) return false;
    if (v->is_eos[id]) {
        if (!gm_can_end(m)) return false;
        gm__terminate(m);
        return true;
    }
    if (!v->len[id]) return false;
    return gm_accept_bytes(m, v->blob + v->off[id], v->len[id]);
}

