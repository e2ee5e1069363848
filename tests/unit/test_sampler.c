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

/* The device sampler's rules (kernels/sample.h, reference sample_ref) give
 * the host sampler's distribution: over 64 tokens, the reference's exact
 * probabilities (its edited row, threshold and softmax; a fine grid of
 * draws u through sample_ref lands on each token that share of the time)
 * against 100,000 draws of sampler_sample: the same support, and a
 * chi-square (tokens expected under 5 times pooled) within 6 standard
 * deviations of its degrees of freedom. Each control alone (so that it
 * binds), then all at once. */
static void check_device_rules(struct sampling_params p)
{
    enum { N = 64, DRAWS = 100000, GRID = 50000 };
    float logits[N], row[N];
    uint64_t rng = 77;
    for (int i = 0; i < N; i++) logits[i] = (float)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 40) /
                                            (float)(1 << 24) * 6.0f - 3.0f;
    /* prompt 5, 9, 9; output 9, 12, 12, 30, 44: distinct 5, 9, 12, 30, 44; output counts 0, 1, 2, 1, 1 */
    const int32_t tokens[] = {5, 9, 9, 9, 12, 12, 30, 44};
    const int32_t pen_ids[] = {5, 9, 12, 30, 44}, pen_counts[] = {0, 1, 2, 1, 1}, bias_ids[] = {3, 40, 44};
    const float bias[] = {1.5f, -0.7f, 0.8f};
    p.has_seed = true, p.seed = 5;
    struct sample_row r = {.temperature = p.temperature, .top_k = p.top_k, .top_p = p.top_p, .min_p = p.min_p,
                           .repetition_penalty = p.repetition_penalty, .presence_penalty = p.presence_penalty,
                           .frequency_penalty = p.frequency_penalty, .pen0 = 0, .pen1 = 5, .bias0 = 0, .bias1 = 3};
    struct sample_lists l = {pen_ids, pen_counts, bias_ids, bias};
    double prob[N] = {0}, grid[N] = {0}, z = 0;
    memcpy(row, logits, sizeof(row));
    sample_edit_ref(row, &r, &l);
    float m = -INFINITY;
    for (int i = 0; i < N; i++) m = fmaxf(m, row[i] / p.temperature);
    float tau = sample_threshold_ref(row, N, &r, m);
    for (int i = 0; i < N; i++) z += prob[i] = row[i] / p.temperature >= tau ? exp(row[i] / p.temperature - m) : 0;
    for (int i = 0; i < N; i++) prob[i] /= z;
    for (int g = 0; g < GRID; g++) {
        memcpy(row, logits, sizeof(row));
        r.u = (float)((g + 0.5) / GRID);
        grid[sample_ref(row, N, &r, &l)] += 1.0 / GRID;
    }
    for (int i = 0; i < N; i++) cr_assert_leq(fabs(grid[i] - prob[i]), 2.0 / GRID, "token %d: drawn %g, p %g", i, grid[i], prob[i]);
    int obs[N] = {0};
    struct sampler s;
    struct sampler_scratch w;
    sampler_init(&s, &p);
    sampler_scratch_init(&w, N);
    for (int d = 0; d < DRAWS; d++) {
        memcpy(row, logits, sizeof(row));
        for (int j = 0; j < 3; j++) row[bias_ids[j]] += bias[j]; /* the engine adds the bias first */
        obs[sampler_sample(&s, &w, row, tokens, 8, 3)]++;
    }
    sampler_scratch_deinit(&w);
    double chi2 = 0, pool_e = 0;
    int kept = 0, cells = 0, pool_o = 0;
    for (int i = 0; i < N; i++) {
        if (prob[i] == 0) {
            cr_assert_eq(obs[i], 0, "token %d: the host drew it %d times, the device rules never", i, obs[i]);
            continue;
        }
        kept++;
        double e = prob[i] * DRAWS;
        if (e < 5) {
            pool_e += e, pool_o += obs[i];
            continue;
        }
        cells++;
        chi2 += (obs[i] - e) * (obs[i] - e) / e;
    }
    if (pool_e > 0) cells++, chi2 += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
    int df = cells - 1;
    cr_log_info("device rules vs host sampler: %d tokens kept, chi-square %.1f (df %d)", kept, chi2, df);
    cr_assert_geq(kept, 5, "the cuts were meant to leave several tokens (%d)", kept);
    cr_assert_lt(chi2, df + 6 * sqrt(2.0 * df), "chi-square %.1f with %d degrees of freedom", chi2, df);
}

Test(sampler, device_rules_have_the_host_distribution)
{
    struct sampling_params base = sampling_params_default(), p = base;
    p.temperature = 0.6f, p.repetition_penalty = 1.3f, p.presence_penalty = 0.6f, p.frequency_penalty = 0.4f;
    check_device_rules(p); /* the penalties and the bias, nothing cut */
    p = base, p.top_k = 12;
    check_device_rules(p);
    p = base, p.top_p = 0.7f;
    check_device_rules(p);
    p = base, p.min_p = 0.15f;
    check_device_rules(p);
    p.temperature = 0.9f, p.top_k = 20, p.top_p = 0.85f, p.min_p = 0.03f;
    p.repetition_penalty = 1.2f, p.presence_penalty = 0.3f, p.frequency_penalty = 0.2f;
    check_device_rules(p);
}
