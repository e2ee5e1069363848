/* test_sampler.c: greedy, temperature, top-k/top-p/min-p, penalties, seeds. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../engine/sampler.h"
#include "../../kernels/cpu/kernels.h"

#define V 8

static int32_t sample_once(struct sampling_params p, const float *logits_in)
{
    float logits[V];
    memcpy(logits, logits_in, sizeof(logits));
    struct sampler s;
    struct sampler_scratch w;
    sampler_init(&s, &p);
    sampler_scratch_init(&w, V);
    int32_t id = sampler_sample(&s, &w, logits, NULL, 0, 0);
    sampler_scratch_deinit(&w);
    return id;
}

Test(sampler, greedy_takes_the_first_maximum)
{
    struct sampling_params p = sampling_params_default();
    p.temperature = 0;
    float l[V] = {0, 3, 1, 3, -1, 2, 0, 0};
    cr_assert_eq(sample_once(p, l), 1);
}

/* What greedy means on both sides of the logits copy (kc_argmax too). */
Test(sampler, argmax_skips_nan_and_prefers_the_first)
{
    float ties[] = {-1, 5, 2, 5, 5};
    cr_assert_eq(argmax_ref(ties, 5), 1);
    float nan_first[] = {NAN, -3, 7, NAN, 7};
    cr_assert_eq(argmax_ref(nan_first, 5), 2);
    float none[] = {-INFINITY, NAN, -INFINITY};
    cr_assert_eq(argmax_ref(none, 3), 0);
    float last[] = {-INFINITY, -INFINITY, -1e30f};
    cr_assert_eq(argmax_ref(last, 3), 2);
}

/* Frequencies of n draws with one sampler (one seeded stream). */
static void histogram(struct sampling_params p, const float *logits_in, int n, int *counts)
{
    struct sampler s;
    struct sampler_scratch w;
    sampler_init(&s, &p);
    sampler_scratch_init(&w, V);
    memset(counts, 0, V * sizeof(int));
    for (int i = 0; i < n; i++) {
        float logits[V];
        memcpy(logits, logits_in, sizeof(logits));
        counts[sampler_sample(&s, &w, logits, NULL, 0, 0)]++;
    }
    sampler_scratch_deinit(&w);
}

Test(sampler, temperature_one_follows_softmax)
{
    struct sampling_params p = sampling_params_default();
    p.seed = 1, p.has_seed = true;
    float l[V] = {0, 1, 2, 0, 0, 0, 0, 0};
    int c[V], n = 200000;
    histogram(p, l, n, c);
    double z = 6 + M_E + M_E * M_E; /* six logits of 0 */
    for (int i = 0; i < V; i++) {
        double want = exp(l[i]) / z;
        cr_assert(fabs((double)c[i] / n - want) < 0.01, "token %d: %f vs %f", i, (double)c[i] / n, want);
    }
}

Test(sampler, top_k_top_p_min_p_cut_the_tail)
{
    float l[V] = {5, 4, 3, 2, 1, 0, -1, -2};
    int c[V];
    struct sampling_params p = sampling_params_default();
    p.seed = 3, p.has_seed = true;
    p.top_k = 2;
    histogram(p, l, 5000, c);
    cr_assert(c[0] > 0 && c[1] > 0 && c[0] + c[1] == 5000);
    /* probabilities ~ .636 .234 .086 ...: top_p 0.8 keeps the first two */
    p.top_k = 0, p.top_p = 0.8f;
    histogram(p, l, 5000, c);
    cr_assert(c[0] + c[1] == 5000 && c[1] > 0);
    /* min_p 0.3: keeps tokens with p >= 0.3 * p_max, i.e. logit >= 5 + ln 0.3 = 3.8 */
    p.top_p = 1, p.min_p = 0.3f;
    histogram(p, l, 5000, c);
    cr_assert(c[0] + c[1] == 5000 && c[1] > 0);
}

Test(sampler, nucleus_beyond_the_first_64_candidates)
{
    /* a flat distribution over 200 tokens: top_p 0.9 must keep 180 of them */
    enum { N = 200 };
    float l[N];
    for (int i = 0; i < N; i++) l[i] = 0.0f;
    struct sampling_params p = sampling_params_default();
    p.seed = 4, p.has_seed = true, p.top_p = 0.9f;
    struct sampler s;
    struct sampler_scratch w;
    sampler_init(&s, &p);
    sampler_scratch_init(&w, N);
    int seen[N] = {0}, distinct = 0;
    for (int i = 0; i < 20000; i++) {
        float x[N];
        memcpy(x, l, sizeof(x));
        int id = sampler_sample(&s, &w, x, NULL, 0, 0);
        distinct += !seen[id]++;
    }
    sampler_scratch_deinit(&w);
    cr_assert(distinct > 170 && distinct <= 181, "distinct %d", distinct);
}

Test(sampler, same_seed_same_tokens)
{
    float l[V] = {1, 1, 1, 1, 1, 1, 1, 1};
    int a[V], b[V], c[V];
    struct sampling_params p = sampling_params_default();
    p.seed = 42, p.has_seed = true;
    histogram(p, l, 777, a);
    histogram(p, l, 777, b);
    cr_assert(memcmp(a, b, sizeof(a)) == 0);
    p.seed = 43;
    histogram(p, l, 777, c);
    cr_assert(memcmp(a, c, sizeof(a)) != 0);
}

Test(sampler, penalties)
{
    struct sampling_params p = sampling_params_default();
    p.temperature = 0;
    p.repetition_penalty = 2.0f;
    int32_t tokens[3] = {0, 2, 2}; /* a prompt of one token, then two generated */
    struct sampler s;
    struct sampler_scratch w;
    sampler_scratch_init(&w, V);
    sampler_init(&s, &p);
    float l[V] = {3, 2, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(sampler_sample(&s, &w, l, tokens, 1, 1), 1); /* 3 / 2 = 1.5 < 2 */
    cr_assert_float_eq(l[0], 1.5f, 1e-6);
    float neg[V] = {-1, -1.5f, -9, -9, -9, -9, -9, -9};
    cr_assert_eq(sampler_sample(&s, &w, neg, tokens, 1, 1), 1); /* -1 * 2 = -2 < -1.5 */

    p.repetition_penalty = 1;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    sampler_init(&s, &p); /* prompt tokens do not count */
    float l2[V] = {0, 0, 1, 0, 0, 0, 0, 0};
    sampler_sample(&s, &w, l2, tokens, 3, 1);
    cr_assert_float_eq(l2[2], 1 - 2 * 0.5f - 0.25f, 1e-6);
    cr_assert_float_eq(l2[0], 0, 1e-6);
    for (int i = 0; i < V; i++) /* the scratch is left as it was found */
        cr_assert(!w.counts[i] && !w.seen[i]);
    sampler_scratch_deinit(&w);
}

Test(sampler, params_check_names_the_field)
{
    struct sampling_params p = sampling_params_default();
    cr_assert_null(sampling_params_check(&p));
    p.top_p = 0;
    cr_assert_str_eq(sampling_params_check(&p), "top_p");
    p = sampling_params_default();
    p.temperature = -1;
    cr_assert_str_eq(sampling_params_check(&p), "temperature");
}
