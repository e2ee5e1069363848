/* sampler.c: penalties, temperature, top-k/top-p/min-p and a seeded draw. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kernels/cpu/kernels.h"
#include "../base/err.h"

struct sampling_params sampling_params_default(void)
{
    return (struct sampling_params){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f,
                                    .repetition_penalty = 1.0f};
}

const struct sampling_range SAMPLING_RANGES[] = {
    {"temperature", 0.0f, 2.0f, offsetof(struct sampling_params, temperature)},
    {"top_p", 1e-9f, 1.0f, offsetof(struct sampling_params, top_p)},
    {"min_p", 0.0f, 1.0f, offsetof(struct sampling_params, min_p)},
    {"presence_penalty", -2.0f, 2.0f, offsetof(struct sampling_params, presence_penalty)},
    {"frequency_penalty", -2.0f, 2.0f, offsetof(struct sampling_params, frequency_penalty)},
    {"repetition_penalty", 1e-3f, 100.0f, offsetof(struct sampling_params, repetition_penalty)},
};
const int SAMPLING_N_RANGES = (int)(sizeof(SAMPLING_RANGES) / sizeof(SAMPLING_RANGES[0]));

const struct sampling_range *sampling_range(const char *name)
{
    for (int i = 0; i < SAMPLING_N_RANGES; i++)
        if (!strcmp(SAMPLING_RANGES[i].name, name)) return &SAMPLING_RANGES[i];
    return NULL;
}

const char *sampling_params_check(const struct sampling_params *p)
{
    for (int i = 0; i < SAMPLING_N_RANGES; i++) {
        const struct sampling_range *r = &SAMPLING_RANGES[i];
        float v = *(const float *)((const char *)p + r->offset);
        if (!(v >= r->lo && v <= r->hi)) return r->name; /* NaN fails too */
    }
    return NULL;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s)
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

double sampler_uniform(struct sampler *s) { return (next_u64(s->rng) >> 11) * 0x1.0p-53; }

void sampler_init(struct sampler *s, const struct sampling_params *p)
{
    memset(s, 0, sizeof(*s));
    s->p = *p;
    uint64_t seed = p->seed;
    if (!p->has_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec + (uintptr_t)s;
    }
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&seed);
}

void sampler_scratch_init(struct sampler_scratch *w, int vocab)
{
    w->vocab = vocab;
    w->cand = xmalloc(vocab * sizeof(struct cand));
    w->counts = xcalloc(vocab, sizeof(int32_t));
    w->seen = xcalloc(vocab, 1);
}

void sampler_scratch_deinit(struct sampler_scratch *w)
{
    free(w->cand);
    free(w->counts);
    free(w->seen);
    memset(w, 0, sizeof(*w));
}

void sampler_each_token(struct sampler_scratch *w, const int32_t *tokens, int n, int n_prompt,
                        void (*fn)(void *ctx, int32_t id, int32_t count), void *ctx)
{
    for (int i = n_prompt; i < n; i++)
        if (tokens[i] >= 0 && tokens[i] < w->vocab) w->counts[tokens[i]]++;
    for (int i = 0; i < n; i++) {
        int32_t t = tokens[i];
        if (t < 0 || t >= w->vocab || w->seen[t]) continue;
        w->seen[t] = 1;
        fn(ctx, t, w->counts[t]);
    }
    for (int i = 0; i < n; i++) /* back to all zero */
        if (tokens[i] >= 0 && tokens[i] < w->vocab) w->seen[tokens[i]] = 0, w->counts[tokens[i]] = 0;
}

struct penalise {
    const struct sampling_params *p;
    float *logits;
};

static void penalise_one(void *ctx, int32_t t, int32_t count)
{
    const struct penalise *c = ctx;
    const struct sampling_params *p = c->p;
    float *x = &c->logits[t];
    if (p->repetition_penalty != 1.0f) *x = *x > 0 ? *x / p->repetition_penalty : *x * p->repetition_penalty;
    if ((p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f) && count)
        *x -= p->frequency_penalty * count + p->presence_penalty;
}

/* Each distinct token of the sequence once: O(tokens), not O(vocab). */
static void apply_penalties(const struct sampling_params *p, struct sampler_scratch *w, float *logits,
                            const int32_t *tokens, int n, int n_prompt)
{
    if (p->repetition_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f) return;
    struct penalise c = {p, logits};
    sampler_each_token(w, tokens, n, n_prompt, penalise_one, &c);
}

static int cand_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;
}

/* Moves the k largest of c[0..n) to the front, sorted descending. */
static void top_k_sorted(struct cand *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) { /* quickselect: c[0..k) ends up holding the k largest */
        struct cand pivot = c[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_desc(&c[i], &pivot) < 0) i++;
            while (cand_desc(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                struct cand t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
    qsort(c, k, sizeof(*c), cand_desc);
}

int32_t sampler_sample(struct sampler *s, struct sampler_scratch *w, float *logits, const int32_t *tokens, int n_tokens,
                       int n_prompt)
{
    const struct sampling_params *p = &s->p;
    apply_penalties(p, w, logits, tokens, n_tokens, n_prompt);
    if (p->temperature < 1e-5f) return argmax_ref(logits, w->vocab);
    struct cand *cand = w->cand;
    int n = 0;
    for (int i = 0; i < w->vocab; i++) /* tokens masked to -inf (a grammar's) are no candidates */
        if (logits[i] != -INFINITY) cand[n++] = (struct cand){logits[i] / p->temperature, i, 0.0};
    if (!n) return argmax_ref(logits, w->vocab);
    int sorted;
    if (p->top_k > 0 && p->top_k < n) {
        top_k_sorted(cand, n, p->top_k);
        n = sorted = p->top_k;
    } else {
        /* sort the top 64 (enough for most nucleus cuts), all only when needed */
        sorted = n < 64 ? n : 64;
        top_k_sorted(cand, n, sorted);
    }
    float mx = cand[0].logit;
    double total = 0.0;
    for (int i = 0; i < n; i++) total += cand[i].e = exp((double)cand[i].logit - mx); /* once: the passes below reuse it */
    if (p->top_p < 1.0f) {
        double cum = 0.0;
        int i = 0;
        for (;; i++) {
            if (i == sorted && sorted < n) top_k_sorted(cand, n, sorted = n);
            cum += cand[i].e / total;
            if (cum >= p->top_p || i == n - 1) break;
        }
        n = i + 1;
    }
    if (p->min_p > 0.0f) { /* p_i >= min_p * p_max  <=>  logit_i >= mx + log(min_p) */
        float cut = mx + logf(p->min_p);
        if (sorted < n) top_k_sorted(cand, n, sorted = n);
        int i = 1;
        while (i < n && cand[i].logit >= cut) i++;
        n = i;
    }
    total = 0.0;
    for (int i = 0; i < n; i++) total += cand[i].e;
    double r = sampler_uniform(s) * total, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += cand[i].e;
        if (r < cum) return cand[i].id;
    }
    return cand[n - 1].id;
}
