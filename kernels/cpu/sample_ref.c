/* sample_ref.c: the CPU reference of the device sampler (kernels/sample.h),
 * sequential: what kernels/cuda/sample.cu computes in parallel. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

/* Ordered keys of floats: a < b <=> key(a) < key(b) (for non-NaN). */
static uint32_t key_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b & 0x80000000u ? ~b : b | 0x80000000u;
}

static float float_of(uint32_t k)
{
    uint32_t b = k & 0x80000000u ? k & 0x7fffffffu : ~k;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Tokens with x = row / t >= tau: how many, and their mass exp(x - m). */
static void above(const float *row, int V, float t, float m, float tau, float *count, float *mass)
{
    float c = 0, s = 0;
    for (int i = 0; i < V; i++) {
        float x = row[i] / t;
        if (x >= tau) c += 1.0f, s += expf(x - m);
    }
    *count = c, *mass = s;
}

/* The largest threshold in [lo, m] whose tokens at or above it number at
 * least want (by_mass false) or hold at least want of the mass. */
static float bisect(const float *row, int V, float t, float m, float lo, float want, bool by_mass)
{
    uint32_t a = key_of(lo), b = key_of(m);
    float c, s;
    above(row, V, t, m, m, &c, &s);
    if ((by_mass ? s : c) >= want) return m;
    while (b - a > 1) { /* holds at a, not at b */
        uint32_t mid = a + (b - a) / 2;
        above(row, V, t, m, float_of(mid), &c, &s);
        if ((by_mass ? s : c) >= want) a = mid;
        else b = mid;
    }
    return float_of(a);
}

void sample_edit_ref(float *row, const struct sample_row *r, const struct sample_lists *l)
{
    for (int j = r->bias0; j < r->bias1; j++) row[l->bias_ids[j]] += l->bias[j];
    for (int j = r->pen0; j < r->pen1; j++) {
        float x = row[l->pen_ids[j]];
        if (r->repetition_penalty != 1.0f) x = x > 0 ? x / r->repetition_penalty : x * r->repetition_penalty;
        if (l->pen_counts[j]) x -= r->frequency_penalty * (float)l->pen_counts[j] + r->presence_penalty;
        row[l->pen_ids[j]] = x;
    }
}

float sample_threshold_ref(const float *row, int V, const struct sample_row *r, float m)
{
    float t = r->temperature, tau = -FLT_MAX, c, z;
    above(row, V, t, m, tau, &c, &z);
    if (r->top_k > 0 && r->top_k < c) tau = bisect(row, V, t, m, tau, (float)r->top_k, false);
    if (r->top_p < 1.0f) {
        above(row, V, t, m, tau, &c, &z);
        tau = bisect(row, V, t, m, tau, r->top_p * z, true);
    }
    if (r->min_p > 0.0f) tau = fmaxf(tau, m + logf(r->min_p));
    return tau;
}

int32_t sample_ref(float *row, int V, const struct sample_row *r, const struct sample_lists *l)
{
    sample_edit_ref(row, r, l);
    if (r->temperature < 1e-5f) return argmax_ref(row, V);
    float m = -INFINITY;
    for (int i = 0; i < V; i++) m = fmaxf(m, row[i] / r->temperature);
    if (m == -INFINITY) return argmax_ref(row, V);
    float tau = sample_threshold_ref(row, V, r, m), c, z;
    above(row, V, r->temperature, m, tau, &c, &z);
    float target = r->u * z, cum = 0;
    int32_t last = -1;
    for (int i = 0; i < V; i++) {
        float x = row[i] / r->temperature;
        if (!(x >= tau)) continue;
        cum += expf(x - m);
        last = i;
        if (target < cum) return i;
    }
    return last; /* u * z at the rounding edge of the total */
}

float logprobs_ref(const float *row, int V, int n, int32_t *top_ids, float *top_logprobs)
{
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)row[i] - mx);
    float lse = mx + (float)log(sum);
    int k = 0; /* insertion into the n largest so far: a later equal value goes after */
    for (int i = 0; i < V && n > 0; i++) {
        if (k == n && !(row[i] > top_logprobs[n - 1])) continue;
        int j = k < n ? k++ : n - 1;
        while (j > 0 && row[i] > top_logprobs[j - 1]) {
            top_ids[j] = top_ids[j - 1];
            top_logprobs[j] = top_logprobs[j - 1];
            j--;
        }
        top_ids[j] = i;
        top_logprobs[j] = row[i];
    }
    for (int j = 0; j < k; j++) top_logprobs[j] -= lse;
    return lse;
}
