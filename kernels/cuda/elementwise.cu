/* elementwise.cu: embedding gather, RMSNorm (with the residual add fused,
 * and optionally the cast of its output to a GEMM's input type; also the
 * per-head norm of q and k, rows of head_dim, in place), the bias add, RoPE
 * (alone, or fused with the paged KV write), SiLU-and-mul (optionally with
 * the cast), the fp32 -> half/bf16 cast and the paged KV write. */
#include <limits.h>

#include "common.cuh"
#include "kernels.h"

// ----------------------------------------------------------------------------
// CUDA kernels

/* one block per token: out[t] = table[ids[t]] */
template <class T>
__global__ void embed_kernel(float *out, const T *table, const int32_t *ids, int H)
{
    int t = blockIdx.x;
    const T *row = table + (int64_t)ids[t] * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x) out[(int64_t)t * H + i] = to_float(row[i]);
}

/* one block per token: x += residual; out = x / rms(x) * w; cast (unless
 * NULL) = out rounded to E */
template <class E>
__global__ void rmsnorm_kernel(float *out, E *cast, float *x, const float *residual, const float *w, int H,
                               float eps)
{
    int64_t base = (int64_t)blockIdx.x * H;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        float v = x[base + i];
        if (residual) {
            v += residual[base + i];
            x[base + i] = v;
        }
        ss += v * v;
    }
    float inv = 1.0f / sqrtf(block_sum(ss) / H + eps);
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        float y = x[base + i] * inv * w[i];
        out[base + i] = y;
        if (cast) cast[base + i] = from_float<E>(y);
    }
}

/* grid-stride over y[T, n]: y[i] += bias[i % n] */
__global__ void add_bias_kernel(float *y, const float *bias, int64_t total, int n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += bias[i % n];
}

/* The warp's best (value, index): larger, or as large and earlier. */
static __device__ __forceinline__ void warp_argmax(float &v, int &idx)
{
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(FULL_MASK, v, o);
        int j = __shfl_xor_sync(FULL_MASK, idx, o);
        if (w > v || (w == v && j < idx)) v = w, idx = j;
    }
}

/* one block per row; threads scan strided columns, then warps and the
 * block reduce (value, index) pairs */
__global__ void argmax_kernel(int32_t *out, const float *x, int n)
{
    KSHARED(float, wv, [32]);
    KSHARED(int, wi, [32]);
    const float *row = x + (int64_t)blockIdx.x * n;
    float v = -INFINITY;
    int idx = INT_MAX;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        if (row[i] > v) v = row[i], idx = i; /* NaN compares false */
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    warp_argmax(v, idx);
    if (lane == 0) wv[warp] = v, wi[warp] = idx;
    __syncthreads();
    if (warp == 0) {
        v = lane < n_warps ? wv[lane] : -INFINITY;
        idx = lane < n_warps ? wi[lane] : INT_MAX;
        warp_argmax(v, idx);
        if (lane == 0) out[blockIdx.x] = idx == INT_MAX ? 0 : idx;
    }
}

/* Rotates pair (i, i + hd/2) of each of n_heads heads of one token, one
 * pair per thread of the block: in[] (cos and sin its rows) into out[]
 * (may be in[]) as E. */
template <class E>
static __device__ __forceinline__ void rope_row(E *out, const float *in, int n_heads, int hd, const float *c,
                                                const float *s, float mul = 1.0f)
{
    int half = hd / 2;
    for (int j = threadIdx.x; j < n_heads * half; j += blockDim.x) {
        int h = j / half, i = j % half;
        float a = in[h * hd + i], b = in[h * hd + i + half];
        out[h * hd + i] = from_float<E>((a * c[i] - b * s[i]) * mul);
        out[h * hd + i + half] = from_float<E>((b * c[i] + a * s[i]) * mul);
    }
}

/* one block per token */
__global__ void rope_kernel(float *x, int n_heads, int hd, const float *cos, const float *sin)
{
    int t = blockIdx.x, half = hd / 2;
    float *row = x + (int64_t)t * n_heads * hd;
    rope_row<float>(row, row, n_heads, hd, cos + (int64_t)t * half, sin + (int64_t)t * half);
}

/* one block per token of qkv (rows of q, k and v heads, stacked): q
 * rotated into q_out, k rotated and v into slot slots[t] (none when < 0),
 * times k_mul and v_mul (an fp8 cache's 1 / scale) */
template <class E>
__global__ void rope_kv_write_kernel(float *q_out, const float *qkv, const float *cos, const float *sin,
                                     E *k_cache, E *v_cache, const int64_t *slots, int n_heads, int n_kv_heads,
                                     int hd, float k_mul, float v_mul)
{
    int t = blockIdx.x, half = hd / 2, row = n_kv_heads * hd;
    const float *q = qkv + (int64_t)t * (n_heads * hd + 2 * row), *k = q + n_heads * hd, *v = k + row;
    const float *c = cos + (int64_t)t * half, *s = sin + (int64_t)t * half;
    rope_row<float>(q_out + (int64_t)t * n_heads * hd, q, n_heads, hd, c, s);
    int64_t slot = slots[t];
    if (slot < 0) return;
    rope_row<E>(k_cache + slot * row, k, n_kv_heads, hd, c, s, k_mul);
    for (int i = threadIdx.x; i < row; i += blockDim.x) v_cache[slot * row + i] = from_float<E>(v[i] * v_mul);
}

/* out[i] = silu(gate) * up of row i / I, column i % I, gate and up rows
 * ld apart (gate/up stacked: ld = 2 I, up = gate + I; apart: ld = I);
 * cast (unless NULL) = out rounded to E */
template <class E>
__global__ void silu_mul_kernel(float *out, E *cast, const float *gate, const float *up, int64_t n, int64_t I,
                                int64_t ld)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t at = i / I * ld + i % I;
        float g = gate[at];
        float y = g / (1.0f + expf(-g)) * up[at];
        out[i] = y;
        if (cast) cast[i] = from_float<E>(y);
    }
}

template <class T>
__global__ void cast_kernel(T *dst, const float *src, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = from_float<T>(src[i]);
}

/* one block per token: its K and V rows, times k_mul and v_mul, into slot slots[t] */
template <class T>
__global__ void kv_write_kernel(T *k_cache, T *v_cache, const float *k, const float *v, const int64_t *slots,
                                int row, float k_mul, float v_mul)
{
    int t = blockIdx.x;
    int64_t slot = slots[t];
    if (slot < 0) return;
    for (int i = threadIdx.x; i < row; i += blockDim.x) {
        k_cache[slot * row + i] = from_float<T>(k[(int64_t)t * row + i] * k_mul);
        v_cache[slot * row + i] = from_float<T>(v[(int64_t)t * row + i] * v_mul);
    }
}

/* block b of 2: out[b] = max |x| over the T rows of n values (row stride
 * ld) of x = k (b 0) or v (b 1) */
__global__ void kv_amax_kernel(float *out, const float *k, const float *v, int T, int n, int64_t ld)
{
    const float *x = blockIdx.x ? v : k;
    float m = 0.0f;
    for (int64_t i = threadIdx.x; i < (int64_t)T * n; i += blockDim.x) m = fmaxf(m, fabsf(x[i / n * ld + i % n]));
    m = block_max(m);
    if (threadIdx.x == 0) out[blockIdx.x] = m;
}

// ----------------------------------------------------------------------------
// kernel launchers

/* threads for a row of n elements: a multiple of 32, at most 256 */
static int row_threads(int n)
{
    int t = CEIL_DIV(n, 32) * 32;
    return t > 256 ? 256 : t < 32 ? 32 : t;
}

static int flat_blocks(int64_t n)
{
    int64_t b = CEIL_DIV(n, 256);
    return (int)(b > 4096 ? 4096 : b < 1 ? 1 : b);
}

extern "C" void kc_embed(cudaStream_t s, float *out, const void *table, enum dtype dt, const int32_t *ids, int T,
                         int H)
{
    if (T <= 0) return;
    DISPATCH_DTYPE(dt, E, {
        auto k = embed_kernel<E>;
        KLAUNCH(k, T, row_threads(H), 0, s, out, (const E *)table, ids, H);
    });
    KCHECK(cudaGetLastError());
}

extern "C" void kc_rmsnorm_cast(cudaStream_t s, float *out, void *cast, enum dtype dt, float *x,
                                const float *residual, const float *w, int T, int H, float eps)
{
    if (T <= 0) return;
    if (!cast) dt = DTYPE_F32;
    DISPATCH_DTYPE(dt, E, {
        auto k = rmsnorm_kernel<E>;
        KLAUNCH(k, T, row_threads(H), 0, s, out, (E *)cast, x, residual, w, H, eps);
    });
    KCHECK(cudaGetLastError());
}

extern "C" void kc_rmsnorm(cudaStream_t s, float *out, float *x, const float *residual, const float *w, int T,
                           int H, float eps)
{
    kc_rmsnorm_cast(s, out, NULL, DTYPE_F32, x, residual, w, T, H, eps);
}

extern "C" void kc_add_bias(cudaStream_t s, float *y, const float *bias, int T, int n)
{
    int64_t total = (int64_t)T * n;
    if (total <= 0) return;
    KLAUNCH(add_bias_kernel, flat_blocks(total), 256, 0, s, y, bias, total, n);
    KCHECK(cudaGetLastError());
}

extern "C" void kc_rope(cudaStream_t s, float *x, int T, int n_heads, int hd, const float *cos, const float *sin)
{
    if (T <= 0) return;
    KLAUNCH(rope_kernel, T, row_threads(n_heads * hd / 2), 0, s, x, n_heads, hd, cos, sin);
    KCHECK(cudaGetLastError());
}

extern "C" void kc_rope_kv_write(cudaStream_t s, float *q_out, const float *qkv, int T, int n_heads,
                                 int n_kv_heads, int hd, const float *cos, const float *sin, void *k_cache,
                                 void *v_cache, enum dtype dt, const int64_t *slots, float k_mul, float v_mul)
{
    if (T <= 0) return;
    DISPATCH_KV(dt, E, {
        auto kern = rope_kv_write_kernel<E>;
        KLAUNCH(kern, T, row_threads(n_heads * hd / 2), 0, s, q_out, qkv, cos, sin, (E *)k_cache, (E *)v_cache,
                slots, n_heads, n_kv_heads, hd, k_mul, v_mul);
    });
    KCHECK(cudaGetLastError());
}

static void silu_mul(cudaStream_t s, float *out, void *cast, enum dtype dt, const float *gate, const float *up,
                     int64_t n, int64_t I, int64_t ld)
{
    if (n <= 0) return;
    if (!cast) dt = DTYPE_F32;
    DISPATCH_DTYPE(dt, E, {
        auto k = silu_mul_kernel<E>;
        KLAUNCH(k, flat_blocks(n), 256, 0, s, out, (E *)cast, gate, up, n, I, ld);
    });
    KCHECK(cudaGetLastError());
}

extern "C" void kc_silu_mul(cudaStream_t s, float *out, const float *gate, const float *up, int64_t n)
{
    silu_mul(s, out, NULL, DTYPE_F32, gate, up, n, n, n);
}

extern "C" void kc_silu_mul_stacked(cudaStream_t s, float *out, void *cast, enum dtype dt, const float *gate_up,
                                    int T, int I)
{
    silu_mul(s, out, cast, dt, gate_up, gate_up + I, (int64_t)T * I, I, 2 * (int64_t)I);
}

extern "C" void kc_argmax(cudaStream_t s, int32_t *out, const float *x, int rows, int n)
{
    if (rows <= 0) return;
    KLAUNCH(argmax_kernel, rows, 1024, 0, s, out, x, n);
    KCHECK(cudaGetLastError());
}

extern "C" void kc_cast(cudaStream_t s, void *dst, enum dtype dt, const float *src, int64_t n)
{
    if (n <= 0) return;
    DISPATCH_DTYPE(dt, E, {
        auto k = cast_kernel<E>;
        KLAUNCH(k, flat_blocks(n), 256, 0, s, (E *)dst, src, n);
    });
    KCHECK(cudaGetLastError());
}

extern "C" void kc_kv_write(cudaStream_t s, void *k_cache, void *v_cache, enum dtype dt, const float *k,
                            const float *v, const int64_t *slots, int T, int row, float k_mul, float v_mul)
{
    if (T <= 0) return;
    DISPATCH_KV(dt, E, {
        auto kern = kv_write_kernel<E>;
        KLAUNCH(kern, T, row_threads(row), 0, s, (E *)k_cache, (E *)v_cache, k, v, slots, row, k_mul, v_mul);
    });
    KCHECK(cudaGetLastError());
}

extern "C" void kc_kv_amax(cudaStream_t s, float *out, const float *k, const float *v, int T, int n, int64_t ld)
{
    KLAUNCH(kv_amax_kernel, 2, 1024, 0, s, out, k, v, T, n, ld);
    KCHECK(cudaGetLastError());
}
