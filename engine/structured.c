/* structured.c: constrained decoding in the engine (engine.h's
 * engine_set_token_bytes, engine_grammar): the vocabulary's bytes, the cache
 * of compiled grammars, and each sequence's matcher at sampling (output.c).
 *
 * Grammars are compiled on the caller's thread (the server's workers), so a
 * slow schema never stalls a step; the cache is a short list under its own
 * lock, reference-counted because a grammar lives while a sequence uses it.
 * Matchers and masks are the engine thread's alone (grammar.h: nothing
 * there locks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../base/strbuf.h"
#include "engine_impl.h"
#include "model_config.h"

/* Grammars kept when no sequence uses them, and the mask cache of each. */
#define GRAMMARS_KEPT 32
#define GRAMMAR_CACHE_BYTES ((size_t)16 << 20)

struct grammar_entry {
    char *key;          /* the spec, written out */
    size_t key_len;
    grammar *g;
    int refs;           /* callers' references and sequences */
    uint64_t last_use;
};

void engine_set_token_bytes(engine *e, int n, const uint8_t *const *bytes, const uint32_t *lens)
{
    int V = e->cfg->vocab_size;
    const uint8_t **b = xcalloc((size_t)V, sizeof(*b));
    uint32_t *l = xcalloc((size_t)V, sizeof(*l)); /* ids past the tokenizer's: no bytes, never allowed */
    for (int i = 0; i < n && i < V; i++) {
        b[i] = bytes[i];
        l[i] = lens[i];
    }
    int32_t eos[64];
    int n_eos = 0;
    for (int i = 0; i < e->cfg->n_eos && n_eos < 63; i++) eos[n_eos++] = e->cfg->eos_ids[i];
    if (e->eos_id >= 0) eos[n_eos++] = e->eos_id;
    grammar_vocab_free(e->gvocab);
    e->gvocab = grammar_vocab_new(V, b, l, eos, n_eos);
    e->end_id = n_eos ? eos[0] : -1;
    free(e->mask);
    e->mask = xmalloc(grammar_vocab_mask_words(e->gvocab) * sizeof(uint32_t));
    free(b);
    free(l);
}

static void spec_key(struct strbuf *k, const struct grammar_spec *s)
{
    const char *parts[] = {s->text, s->prefix, s->suffix, s->separator};
    strbuf_printf(k, "%d %d %d %d", (int)s->kind, (int)s->repeat, s->max_repeat, s->max_ws);
    for (int i = 0; i < 4; i++) { /* each part with its length, so no two specs share a key */
        size_t n = parts[i] ? strlen(parts[i]) : 0;
        strbuf_printf(k, " %zu:", parts[i] ? n : (size_t)-1);
        strbuf_append(k, parts[i] ? parts[i] : "", n);
    }
}

/* The entry of g (the lock held). */
static struct grammar_entry *entry_of(engine *e, const grammar *g)
{
    for (int i = 0; i < e->n_grammars; i++)
        if (e->grammars[i].g == g) return &e->grammars[i];
    return NULL;
}

/* Frees the least recently used grammars no one holds, past GRAMMARS_KEPT. */
static void evict(engine *e)
{
    for (;;) {
        int idle = 0, lru = -1;
        for (int i = 0; i < e->n_grammars; i++)
            if (!e->grammars[i].refs) {
                idle++;
                if (lru < 0 || e->grammars[i].last_use < e->grammars[lru].last_use) lru = i;
            }
        if (idle <= GRAMMARS_KEPT) return;
        grammar_free(e->grammars[lru].g);
        free(e->grammars[lru].key);
        e->grammars[lru] = e->grammars[--e->n_grammars];
    }
}

/* The cached grammar of key, with a reference taken (the lock held); NULL if none. */
static grammar *lookup(engine *e, const struct strbuf *key)
{
    for (int i = 0; i < e->n_grammars; i++) {
        struct grammar_entry *en = &e->grammars[i];
        if (en->key_len == key->len && !memcmp(en->key, key->s, key->len)) {
            en->refs++;
            en->last_use = ++e->grammar_clock;
            return en->g;
        }
    }
    return NULL;
}

grammar *engine_grammar(engine *e, const struct grammar_spec *spec, char *err, size_t cap)
{
    if (!e->gvocab) {
        snprintf(err, cap, "constrained decoding is not available: the engine has no token bytes");
        return NULL;
    }
    if (e->end_id < 0) {
        snprintf(err, cap, "constrained decoding needs an end-of-sequence token, and the model has none");
        return NULL;
    }
    struct strbuf key = {0};
    spec_key(&key, spec);
    pthread_mutex_lock(&e->grammar_mu);
    grammar *g = lookup(e, &key);
    pthread_mutex_unlock(&e->grammar_mu);
    if (g) {
        strbuf_free(&key);
        return g;
    }
    struct grammar_spec s = *spec; /* compiled without the lock: other requests go on */
    if (!s.cache_bytes) s.cache_bytes = GRAMMAR_CACHE_BYTES;
    grammar *c = grammar_compile(&s, err, cap);
    if (!c) {
        strbuf_free(&key);
        return NULL;
    }
    pthread_mutex_lock(&e->grammar_mu);
    if ((g = lookup(e, &key))) { /* another thread compiled it meanwhile */
        grammar_free(c);
        strbuf_free(&key);
    } else {
        GROW(e->grammars, e->n_grammars, e->cap_grammars);
        e->grammars[e->n_grammars++] = (struct grammar_entry){key.s, key.len, c, 1, ++e->grammar_clock};
        g = c;
        evict(e);
    }
    pthread_mutex_unlock(&e->grammar_mu);
    return g;
}

void engine__grammar_ref(engine *e, grammar *g)
{
    pthread_mutex_lock(&e->grammar_mu);
    struct grammar_entry *en = entry_of(e, g);
    if (en) en->refs++;
    pthread_mutex_unlock(&e->grammar_mu);
}

void engine_grammar_release(engine *e, grammar *g)
{
    if (!g) return;
    pthread_mutex_lock(&e->grammar_mu);
    struct grammar_entry *en = entry_of(e, g);
    if (en) en->refs--;
    evict(e);
    pthread_mutex_unlock(&e->grammar_mu);
}

void engine__grammars_free(engine *e)
{
    for (int i = 0; i < e->n_grammars; i++) {
        grammar_free(e->grammars[i].g);
        free(e->grammars[i].key);
    }
    free(e->grammars);
    grammar_vocab_free(e->gvocab);
    free(e->mask);
}

/* The engine thread, before s samples: s's matcher (made on first use)
 * masks row (-inf for every token its grammar refuses now). Returns the id
 * to take instead of sampling when the grammar must end there (EOS), else -1. */
int32_t engine__grammar_mask(engine *e, struct sequence *s, float *row)
{
    if (!s->gm) s->gm = gm_new(s->grammar);
    if (gm_must_end(s->gm)) return e->end_id;
    gm_fill_mask(s->gm, e->gvocab, e->mask);
    int V = e->cfg->vocab_size;
    for (int w = 0; w * 32 < V; w++) {
        uint32_t m = e->mask[w];
        int end = w * 32 + 32 < V ? w * 32 + 32 : V;
        if (m == 0xffffffffu) continue;
        if (!m) /* the common case: a whole word of refused tokens */
            for (int i = w * 32; i < end; i++) row[i] = -INFINITY;
        else
            for (int i = w * 32; i < end; i++)
                if (!(m >> (i - w * 32) & 1)) row[i] = -INFINITY;
    }
    return -1;
}

/* After s took tok: true when the output is complete (its grammar took the
 * end), false while it goes on. A token the grammar refuses cannot come
 * from a masked row; if it does anyway (a bug), the output ends there. */
bool engine__grammar_accept(engine *e, struct sequence *s, int32_t tok)
{
    if (!s->gm) s->gm = gm_new(s->grammar);
    if (!gm_accept_token(s->gm, e->gvocab, tok)) {
        fprintf(stderr, "tessera: the grammar refused token %d that its mask allowed; ending the output\n", tok);
        return true;
    }
    return gm_terminated(s->gm);
}
