/* sample.cu: sampling on the device (kernels/sample.h has the rules; the
 * CPU reference is kernels/cpu/sample_ref.c). One block per row: the
 * row's bias and penalties edited in place, then every pass a block
 * reduction over the row: the max, the thresholds by bisection over the
 * float order (32 passes at most each), the kept mass, and a block scan of
 * the threads' contiguous chunks (summed by one thread) to find where the
 * draw falls. A row that
 * reports logprobs first takes its log-sum-exp and its n likeliest tokens
 * (n passes of a block argmax below the last one taken) and keeps the
 * values of the ids it is about to edit, so that the sampled token's own
 * logit is known as the model gave it. */
#include <float.h>
#include <string.h>

#include "common.cuh"
#include "kernels.h"

/* Ordered keys of floats (sample_ref.c's): a < b <=> key(a) < key(b). */
static __device__ __forceinline__ uint32_t key_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b & 0x80000000u ? ~b : b | 0x80000000u;
}

static __device__ __forceinline__ float float_of(uint32_t k)
{
    uint32_t b = k & 0x80000000u ? k & 0x7fffffffu : ~k;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* The first index of the row's largest value (argmax_ref's rule), for
 * every thread. */
static __device__ int block_argmax(const float *row, int n)
{
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) mx = row[i] > mx ? row[i] : mx; /* NaN never wins */
    mx = block_max(mx);
    float first = (float)n;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        if (row[i] == mx) {
            first = (float)i;
            break;
        }
    first = -block_max(-first);
    return first >= (float)n ? 0 : (int)first; /* exact: n < 2^24 */
}

/* Tokens with x = row / t >= tau: how many, and their mass exp(x - m). */
static __device__ void above(const float *row, int V, float t, float m, float tau, float *count, float *mass)
{
    float c = 0, s = 0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float x = row[i] / t;
        if (x >= tau) c += 1.0f, s += expf(x - m);
    }
    *count = block_sum(c);
    *mass = block_sum(s);
}

/* The largest threshold in [lo, m] whose tokens at or above it number at
 * least want (by_mass false) or hold at least want of the mass. */
static __device__ float bisect(const float *row, int V, float t, float m, float lo, float want, bool by_mass)
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

/* Where target falls in the cumulative mass of the kept tokens (x >= tau),
 * in id order; the last kept token when rounding puts it past the end. */
static __device__ int draw(const float *row, int V, float t, float m, float tau, float target)
{
    KSHARED(float, sums, [1024]);
    KSHARED(int, found, [2]);
    int chunk = CEIL_DIV(V, (int)blockDim.x), i0 = threadIdx.x * chunk, i1 = i0 + chunk < V ? i0 + chunk : V;
    float s = 0;
    int last = -1;
    for (int i = i0; i < i1; i++) {
        float x = row[i] / t;
        if (x >= tau) s += expf(x - m), last = i;
    }
    sums[threadIdx.x] = s;
    if (threadIdx.x == 0) found[0] = V, found[1] = -1;
    __syncthreads();
    if (threadIdx.x == 0) { /* exclusive prefix sums, in thread order */
        float cum = 0;
        for (int j = 0; j < (int)blockDim.x; j++) {
            float v = sums[j];
            sums[j] = cum;
            cum += v;
        }
    }
    __syncthreads();
    float cum = sums[threadIdx.x];
    if (last >= 0 && target >= cum && target < cum + s) {
        for (int i = i0; i < i1; i++) {
            float x = row[i] / t;
            if (!(x >= tau)) continue;
            cum += expf(x - m);
            if (target < cum) {
                atomicMin(&found[0], i);
                break;
            }
        }
    }
    if (last >= 0) atomicMax(&found[1], last);
    __syncthreads();
    return found[0] < V ? found[0] : found[1];
}

/* The logprobs of a row not yet edited: lse, and the n likeliest tokens
 * into lp (largest first, ties by lower id); the values at the ids the
 * row's bias and penalties will edit kept in raw_pen / raw_bias. */
static __device__ float raw_logprobs(const float *row, int V, const sample_row &r, const sample_lists &l,
                                     sample_logprobs *lp, float *raw_pen, float *raw_bias)
{
    float m = -INFINITY, s = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) m = row[i] > m ? row[i] : m;
    m = block_max(m);
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(row[i] - m);
    float lse = m + logf(block_sum(s));
    float prev = INFINITY;
    int prev_id = -1;
    for (int k = threadIdx.x; k < r.n_top; k += blockDim.x) /* entries past V stay 0, as on the host */
        lp->top_ids[k] = 0, lp->top_logprobs[k] = 0.0f;
    for (int k = 0; k < r.n_top; k++) { /* the largest below (prev, prev_id) in (value desc, id asc) order */
        float best = -INFINITY;
        for (int i = threadIdx.x; i < V; i += blockDim.x)
            if ((row[i] < prev || (row[i] == prev && i > prev_id)) && row[i] > best) best = row[i];
        best = block_max(best);
        float first = (float)V;
        for (int i = threadIdx.x; i < V; i += blockDim.x)
            if (row[i] == best && (best < prev || i > prev_id) && (float)i < first) first = (float)i;
        first = -block_max(-first);
        if (first >= (float)V) break;
        prev = best, prev_id = (int)first;
        if (threadIdx.x == 0) lp->top_ids[k] = prev_id, lp->top_logprobs[k] = best - lse;
    }
    for (int j = r.pen0 + (int)threadIdx.x; j < r.pen1; j += blockDim.x) raw_pen[j] = row[l.pen_ids[j]];
    for (int j = r.bias0 + (int)threadIdx.x; j < r.bias1; j += blockDim.x) raw_bias[j] = row[l.bias_ids[j]];
    __syncthreads();
    return lse;
}

/* The logit the model gave tok, from the edited row and the kept values. */
static __device__ float raw_logit(const float *row, int tok, const sample_row &r, const sample_lists &l,
                                  const float *raw_pen, const float *raw_bias)
{
    KSHARED(float, v, [1]);
    if (threadIdx.x == 0) v[0] = row[tok];
    __syncthreads();
    for (int j = r.pen0 + (int)threadIdx.x; j < r.pen1; j += blockDim.x)
        if (l.pen_ids[j] == tok) v[0] = raw_pen[j];
    for (int j = r.bias0 + (int)threadIdx.x; j < r.bias1; j += blockDim.x)
        if (l.bias_ids[j] == tok) v[0] = raw_bias[j]; /* every writer writes the same value */
    __syncthreads();
    return v[0];
}

/* The row's token by sample.h's rules, its logits already edited; every
 * thread gets it. */
static __device__ int pick(const float *row, int V, const sample_row &r)
{
    float t = r.temperature, m = -INFINITY;
    if (t >= 1e-5f) {
        for (int i = threadIdx.x; i < V; i += blockDim.x) m = fmaxf(m, row[i] / t);
        m = block_max(m);
    }
    if (t < 1e-5f || m == -INFINITY) return block_argmax(row, V); /* greedy, or nothing to draw from */
    float tau = -FLT_MAX, c, z;
    above(row, V, t, m, tau, &c, &z);
    if (r.top_k > 0 && r.top_k < c) tau = bisect(row, V, t, m, tau, (float)r.top_k, false);
    if (r.top_p < 1.0f) {
        above(row, V, t, m, tau, &c, &z);
        tau = bisect(row, V, t, m, tau, r.top_p * z, true);
    }
    if (r.min_p > 0.0f) tau = fmaxf(tau, m + logf(r.min_p));
    above(row, V, t, m, tau, &c, &z);
    return draw(row, V, t, m, tau, r.u * z);
}

__global__ void sample_kernel(int32_t *out, float *logits, int V, const sample_row *rows, sample_lists l,
                              sample_logprobs *lps, float *raw_pen, float *raw_bias)
{
    const sample_row r = rows[blockIdx.x];
    float *row = logits + (int64_t)blockIdx.x * V;
    float lse = r.logprobs ? raw_logprobs(row, V, r, l, lps + blockIdx.x, raw_pen, raw_bias) : 0.0f;
    if (threadIdx.x == 0) /* in list order: an id may repeat */
        for (int j = r.bias0; j < r.bias1; j++) row[l.bias_ids[j]] += l.bias[j];
    __syncthreads();
    for (int j = r.pen0 + (int)threadIdx.x; j < r.pen1; j += blockDim.x) { /* distinct ids */
        float x = row[l.pen_ids[j]];
        if (r.repetition_penalty != 1.0f) x = x > 0 ? x / r.repetition_penalty : x * r.repetition_penalty;
        if (l.pen_counts[j]) x -= r.frequency_penalty * (float)l.pen_counts[j] + r.presence_penalty;
        row[l.pen_ids[j]] = x;
    }
    __syncthreads();
    int tok = pick(row, V, r);
    if (r.logprobs) {
        float x = raw_logit(row, tok, r, l, raw_pen, raw_bias);
        if (threadIdx.x == 0) lps[blockIdx.x].logprob = x - lse;
    }
    if (threadIdx.x == 0) out[blockIdx.x] = tok;
}

extern "C" void kc_sample(cudaStream_t s, int32_t *out, float *logits, int rows, int V, const struct sample_row *params,
                          struct sample_lists lists, struct sample_logprobs *lps, float *raw_pen, float *raw_bias)
{
    if (rows <= 0) return;
    int threads = CEIL_DIV(V, 8 * 32) * 32;
    threads = threads < 32 ? 32 : threads > 1024 ? 1024 : threads;
    KLAUNCH(sample_kernel, rows, threads, 0, s, out, logits, V, params, lists, lps, raw_pen, raw_bias);
    KCHECK(cudaGetLastError());
}
