/* test_cuda_sample.c: the device sampler (kernels/cuda/sample.cu) against
 * its CPU reference (kernels/cpu/sample_ref.c): the same token for the same
 * row, parameters and draw u, over greedy rows with penalties, temperature
 * alone, top-k, top-p, min-p, all together, logit_bias (an id listed twice)
 * and rows masked to -inf. The two sum the kept mass in different orders,
 * so a draw within float rounding of the boundary between two neighbouring
 * kept tokens may go either way: at most 1 in 500 such splits, and only
 * between neighbours. Every row also reports logprobs: the 6 likeliest
 * tokens as logprobs_ref orders them (ties by lower id; one run's logits
 * are whole halves, full of ties) and the drawn token's logprob, of the
 * logits before bias and penalties, to 1e-5. That the reference has the
 * host sampler's distribution is tests/unit/test_sampler.c's. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/kernels.h"
#include "../../kernels/cuda/kernels.h"
#include "../unit/test_util.h"
#include "cuda_test.h"

enum { V = 300, DRAWS = 64 };

/* The penalties and the bias fall on the row's largest logits, where they
 * move the draw: the 5 largest are penalised, the 6th is raised twice (an
 * id listed twice) and the largest lowered. */
static const int32_t PEN_COUNTS[] = {0, 2, 1, 0, 5};
static const float BIAS[] = {0.5f, -0.5f, 0.3f};

/* The kept token just before or after tok in id order, or -1. */
static int neighbour(const float *row, const struct sample_row *r, float tau, int tok, int dir)
{
    for (int i = tok + dir; i >= 0 && i < V; i += dir)
        if (row[i] / r->temperature >= tau) return i;
    return -1;
}

/* The drawn tokens' logprobs and the top ones against logprobs_ref. */
static void check_logprobs(const float *logits, const int32_t *got, const struct sample_logprobs *lps)
{
    int32_t ids[6];
    float vals[6];
    float lse = logprobs_ref(logits, V, 6, ids, vals);
    for (int d = 0; d < DRAWS; d++) {
        cr_assert_float_eq(lps[d].logprob, logits[got[d]] - lse, 1e-5, "draw %d: token %d", d, got[d]);
        for (int k = 0; k < 6; k++) {
            cr_assert_eq(lps[d].top_ids[k], ids[k], "draw %d: top %d", d, k);
            cr_assert_float_eq(lps[d].top_logprobs[k], vals[k], 1e-5, "draw %d: top %d", d, k);
        }
    }
}

enum logits_kind { PLAIN, MASKED, TIED };

static void check_params(struct sample_row base, uint64_t seed, enum logits_kind kind)
{
    uint64_t rng = seed;
    float *logits = malloc(sizeof(float) * V), *rows = malloc(sizeof(float) * V * DRAWS);
    fill_uniform(logits, V, -4, 4, &rng);
    if (kind == TIED) /* whole halves */
        for (int i = 0; i < V; i++) logits[i] = roundf(2 * logits[i]) / 2;
    if (kind == MASKED) /* a grammar's mask: all but a few at -inf */
        for (int i = 0; i < V; i++)
            if (i % 37) logits[i] = -INFINITY;
    int32_t top[6];
    float vals[6];
    logprobs_ref(logits, V, 6, top, vals); /* the 6 largest, largest first */
    const int32_t PEN_IDS[] = {top[0], top[1], top[2], top[3], top[4]}, BIAS_IDS[] = {top[5], top[0], top[5]};
    struct sample_row params[DRAWS];
    for (int d = 0; d < DRAWS; d++) {
        memcpy(rows + (size_t)d * V, logits, sizeof(float) * V);
        params[d] = base;
        params[d].u = (float)((d + 0.5) / DRAWS);
        params[d].logprobs = true, params[d].n_top = 6;
    }
    int32_t *d_pen = dev_copy(PEN_IDS, sizeof(PEN_IDS)), *d_cnt = dev_copy(PEN_COUNTS, sizeof(PEN_COUNTS));
    int32_t *d_bid = dev_copy(BIAS_IDS, sizeof(BIAS_IDS));
    float *d_bias = dev_copy(BIAS, sizeof(BIAS)), *d_rows = dev_copy(rows, sizeof(float) * V * DRAWS);
    struct sample_row *d_params = dev_copy(params, sizeof(params));
    int32_t *d_out = dev_alloc(sizeof(int32_t) * DRAWS);
    struct sample_logprobs *d_lps = dev_alloc(sizeof(struct sample_logprobs) * DRAWS);
    float *d_raw = dev_alloc(sizeof(float) * 8);
    struct sample_lists dl = {d_pen, d_cnt, d_bid, d_bias}, hl = {PEN_IDS, PEN_COUNTS, BIAS_IDS, BIAS};
    kc_sample(0, d_out, d_rows, DRAWS, V, d_params, dl, d_lps, d_raw, d_raw + 5);
    int32_t *got = host_copy(d_out, sizeof(int32_t) * DRAWS);
    struct sample_logprobs *lps = host_copy(d_lps, sizeof(struct sample_logprobs) * DRAWS);
    check_logprobs(logits, got, lps);
    int splits = 0;
    for (int d = 0; d < DRAWS; d++) {
        float *row = rows + (size_t)d * V;
        int want = sample_ref(row, V, &params[d], &hl);
        if (got[d] == want) continue;
        float m = -INFINITY;
        for (int i = 0; i < V; i++) m = fmaxf(m, row[i] / base.temperature);
        float tau = sample_threshold_ref(row, V, &params[d], m);
        cr_assert(base.temperature >= 1e-5f && (got[d] == neighbour(row, &base, tau, want, 1) ||
                                                got[d] == neighbour(row, &base, tau, want, -1)),
                  "draw %d (u %.4f): device %d, reference %d", d, params[d].u, got[d], want);
        splits++;
    }
    cr_assert_leq(splits * 500, DRAWS, "%d draws split on rounding", splits);
    free(logits), free(rows), free(got), free(lps);
    cudaFree(d_pen), cudaFree(d_cnt), cudaFree(d_bid), cudaFree(d_bias), cudaFree(d_rows), cudaFree(d_params),
        cudaFree(d_out), cudaFree(d_lps), cudaFree(d_raw);
}

static struct sample_row row_of(float t, int k, float p, float min_p)
{
    return (struct sample_row){.temperature = t, .top_k = k, .top_p = p, .min_p = min_p, .repetition_penalty = 1,
                               .pen0 = 0, .pen1 = 5, .bias0 = 0, .bias1 = 3};
}

Test(cuda_sample, greedy_with_penalties)
{
    struct sample_row r = row_of(0, 0, 1, 0);
    r.repetition_penalty = 1.3f, r.presence_penalty = 0.5f, r.frequency_penalty = 0.25f;
    check_params(r, 1, PLAIN);
}

Test(cuda_sample, temperature_alone) { check_params(row_of(0.7f, 0, 1, 0), 2, PLAIN); }
Test(cuda_sample, top_k) { check_params(row_of(1.0f, 12, 1, 0), 3, PLAIN); }
Test(cuda_sample, top_p) { check_params(row_of(1.3f, 0, 0.8f, 0), 4, PLAIN); }
Test(cuda_sample, min_p) { check_params(row_of(0.9f, 0, 1, 0.05f), 5, PLAIN); }

Test(cuda_sample, everything_at_once)
{
    struct sample_row r = row_of(0.8f, 40, 0.9f, 0.02f);
    r.repetition_penalty = 1.1f, r.presence_penalty = 0.3f, r.frequency_penalty = 0.2f;
    check_params(r, 6, PLAIN);
}

Test(cuda_sample, masked_rows) { check_params(row_of(1.0f, 5, 0.95f, 0), 7, MASKED); }
Test(cuda_sample, tied_logits) { check_params(row_of(1.0f, 0, 0.9f, 0), 8, TIED); }
