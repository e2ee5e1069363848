/* quant.cu: GGUF block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K in ggml's
 * layouts, kernels/quant.h) and --quantization fp8's F8_ROWS (dtype.h: a
 * row's 16-byte head holding its fp32 scale, then its e4m3 bytes) used in
 * place on the GPU: the GEMV of short steps dequantizes as it reads,
 * longer steps dequantize to bf16 for a cuBLAS GEMM (or, for F8_ROWS,
 * quantize their activations to e4m3 a token row at a time for cuBLASLt's
 * FP8 GEMM), and the embedding gather dequantizes its rows.
 *
 * Every kernel works in groups of 32 weights (a Q8_0 or Q4_0 block; an
 * eighth of a Q4_K or Q6_K super-block): deq32 gives a group's values
 * exactly as the CPU reference (kernels/quant.c) does, each product rounded
 * on its own (__fmul_rn: no fused multiply-add), so the dequantized weights
 * match the reference bit for bit. Blocks sit at odd byte offsets (34, 18,
 * 210 bytes), so they are read a byte at a time. */
#include "common.cuh"
#include "kernels.h"

// ----------------------------------------------------------------------------
// One group of 32 weights

static __device__ __forceinline__ float f16_at(const uint8_t *p)
{
    __half_raw h;
    h.x = (unsigned short)(p[0] | p[1] << 8);
    return __half2float(__half(h));
}

/* bytes of one block of DT and the weights it holds */
template <int DT> struct qblock;
template <> struct qblock<DTYPE_Q8_0> { enum { bytes = 34, elems = 32 }; };
template <> struct qblock<DTYPE_Q4_0> { enum { bytes = 18, elems = 32 }; };
template <> struct qblock<DTYPE_Q4_K> { enum { bytes = 144, elems = 256 }; };
template <> struct qblock<DTYPE_Q6_K> { enum { bytes = 210, elems = 256 }; };
template <> struct qblock<DTYPE_F8_ROWS> { enum { bytes = 32, elems = 32 }; }; /* + the row's scale */

/* w[0..32) = weights 32 g .. 32 g + 31 of the quantized row `row`. */
template <int DT> static __device__ __forceinline__ void deq32(const uint8_t *row, int g, float *w);

template <> __device__ __forceinline__ void deq32<DTYPE_Q8_0>(const uint8_t *row, int g, float *w)
{
    const uint8_t *b = row + 34 * g;
    float d = f16_at(b);
    for (int l = 0; l < 32; l++) w[l] = __fmul_rn((float)(int8_t)b[2 + l], d);
}

template <> __device__ __forceinline__ void deq32<DTYPE_Q4_0>(const uint8_t *row, int g, float *w)
{
    const uint8_t *b = row + 18 * g;
    float d = f16_at(b);
    for (int l = 0; l < 16; l++) {
        w[l] = __fmul_rn((float)((b[2 + l] & 15) - 8), d);
        w[l + 16] = __fmul_rn((float)((b[2 + l] >> 4) - 8), d);
    }
}

/* x = d * sc * q - dmin * m; sc and m are 6-bit, packed in scales[12] */
template <> __device__ __forceinline__ void deq32<DTYPE_Q4_K>(const uint8_t *row, int g, float *w)
{
    const uint8_t *b = row + 144 * (g / 8), *s = b + 4;
    int j = g % 8, sc, m;
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    float d1 = __fmul_rn(f16_at(b), (float)sc), m1 = __fmul_rn(f16_at(b + 2), (float)m);
    const uint8_t *q = b + 16 + 32 * (j / 2);
    int shift = 4 * (j & 1);
    for (int l = 0; l < 32; l++) w[l] = __fsub_rn(__fmul_rn(d1, (float)((q[l] >> shift) & 15)), m1);
}

/* x = d * scales[i / 16] * (q - 32); the low 4 bits of q in ql, the high 2 in qh */
template <> __device__ __forceinline__ void deq32<DTYPE_Q6_K>(const uint8_t *row, int g, float *w)
{
    const uint8_t *b = row + 210 * (g / 8);
    int h = (g % 8) / 4, k = g % 4;
    const uint8_t *ql = b + 64 * h + 32 * (k & 1), *qh = b + 128 + 32 * h;
    const int8_t *sc = (const int8_t *)(b + 192) + 8 * h + 2 * k;
    float d = f16_at(b + 208);
    int sl = 4 * (k >> 1), sh = 2 * k;
    for (int l = 0; l < 32; l++) {
        int q = ((ql[l] >> sl) & 15) | (((qh[l] >> sh) & 3) << 4);
        w[l] = __fmul_rn(__fmul_rn(d, (float)sc[l / 16]), (float)(q - 32));
    }
}

/* x = e4m3 * the row's scale (the first 4 bytes of its head) */
template <> __device__ __forceinline__ void deq32<DTYPE_F8_ROWS>(const uint8_t *row, int g, float *w)
{
    float d;
    memcpy(&d, row, 4);
    const uint8_t *b = row + F8_ROWS_HEAD + 32 * g;
    for (int l = 0; l < 32; l++) {
        __nv_fp8_e4m3 v;
        v.__x = b[l];
        w[l] = __fmul_rn(static_cast<float>(v), d);
    }
}

template <int DT> static __device__ __forceinline__ size_t row_bytes(int K)
{
    return (size_t)(K / qblock<DT>::elems) * qblock<DT>::bytes + (DT == DTYPE_F8_ROWS ? F8_ROWS_HEAD : 0);
}

// ----------------------------------------------------------------------------
// CUDA kernels

#define QGEMV_WARPS 4

/* One warp per row of W: lane l takes groups l, l + 32, ..., dequantizes
 * each once and dots it with the T token rows of x; the warp sums. */
template <int DT>
__global__ void __launch_bounds__(32 * QGEMV_WARPS)
    qgemv_kernel(float *y, const float *x, const uint8_t *w, int N, int K, int T)
{
    int lane = threadIdx.x % 32, row = blockIdx.x * QGEMV_WARPS + threadIdx.x / 32;
    if (row >= N) return; /* the whole warp */
    const uint8_t *wr = w + (size_t)row * row_bytes<DT>(K);
    float acc[KC_QGEMV_MAX_T];
    for (int t = 0; t < KC_QGEMV_MAX_T; t++) acc[t] = 0.0f;
    for (int g = lane; g < K / 32; g += 32) {
        float wv[32];
        deq32<DT>(wr, g, wv);
#pragma unroll
        for (int t = 0; t < KC_QGEMV_MAX_T; t++) {
            if (t >= T) break;
            const float4 *xv = (const float4 *)(x + (size_t)t * K + 32 * g);
            float s = 0.0f;
            for (int i = 0; i < 8; i++) {
                float4 v = xv[i];
                s += wv[4 * i] * v.x + wv[4 * i + 1] * v.y + wv[4 * i + 2] * v.z + wv[4 * i + 3] * v.w;
            }
            acc[t] += s;
        }
    }
    for (int t = 0; t < T; t++) {
        float v = warp_sum(acc[t]);
        if (lane == 0) y[(size_t)t * N + row] = v;
    }
}

/* grid-stride over the groups of W [rows, K]: out = W rounded to bf16 */
template <int DT>
__global__ void dequant_bf16_kernel(__nv_bfloat16 *out, const uint8_t *w, int64_t rows, int K)
{
    int64_t per_row = K / 32, n = rows * per_row;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / per_row;
        int g = (int)(i % per_row);
        float wv[32];
        deq32<DT>(w + r * row_bytes<DT>(K), g, wv);
        __nv_bfloat16 *o = out + r * K + 32 * g;
        for (int l = 0; l < 32; l++) o[l] = __float2bfloat16_rn(wv[l]);
    }
}

/* one block per token: out[t] = table[ids[t]] dequantized */
template <int DT>
__global__ void qembed_kernel(float *out, const uint8_t *table, const int32_t *ids, int H)
{
    int t = blockIdx.x;
    const uint8_t *row = table + (size_t)ids[t] * row_bytes<DT>(H);
    for (int g = threadIdx.x; g < H / 32; g += blockDim.x) deq32<DT>(row, g, out + (size_t)t * H + 32 * g);
}

/* one block per token row t of x [T, K]: scales[t] = max |x[t]| / 448 (1
 * for a row of zeros), q[t] = x[t] / scales[t] in e4m3, round to nearest
 * even, saturating (quantize_row_f8_rows's rule) */
__global__ void quant_rows_f8_kernel(uint8_t *q, float *scales, const float *x, int K)
{
    const float *xr = x + (size_t)blockIdx.x * K;
    float m = 0.0f;
    for (int i = threadIdx.x; i < K; i += blockDim.x) m = fmaxf(m, fabsf(xr[i]));
    m = block_max(m);
    float d = m > 0.0f ? m / 448.0f : 1.0f;
    if (threadIdx.x == 0) scales[blockIdx.x] = d;
    uint8_t *qr = q + (size_t)blockIdx.x * K;
    for (int i = threadIdx.x; i < K; i += blockDim.x) qr[i] = from_float<__nv_fp8_e4m3>(xr[i] / d).__x;
}

// ----------------------------------------------------------------------------
// Launchers

/* Runs LAUNCH(DT) with DT the template argument for dt. */
#define QUANT_DISPATCH(dt, LAUNCH)                                                      \
    do {                                                                                \
        switch (dt) {                                                                   \
        case DTYPE_Q8_0: LAUNCH(DTYPE_Q8_0); break;                                     \
        case DTYPE_Q4_0: LAUNCH(DTYPE_Q4_0); break;                                     \
        case DTYPE_Q4_K: LAUNCH(DTYPE_Q4_K); break;                                     \
        case DTYPE_Q6_K: LAUNCH(DTYPE_Q6_K); break;                                     \
        case DTYPE_F8_ROWS: LAUNCH(DTYPE_F8_ROWS); break;                               \
        default: fprintf(stderr, "%s: %s is not a quantized type\n", __func__, dtype_name(dt)); abort(); \
        }                                                                               \
        KCHECK(cudaGetLastError());                                                     \
    } while (0)

void kc_qgemv(cudaStream_t s, float *y, const float *x, const void *w, enum dtype dt, int N, int K, int T)
{
    if (N <= 0 || T <= 0) return;
    if (T > KC_QGEMV_MAX_T) {
        fprintf(stderr, "kc_qgemv: %d tokens (at most %d)\n", T, KC_QGEMV_MAX_T);
        abort();
    }
    const uint8_t *wb = (const uint8_t *)w;
#define QGEMV(DT) KLAUNCH(qgemv_kernel<DT>, CEIL_DIV(N, QGEMV_WARPS), 32 * QGEMV_WARPS, 0, s, y, x, wb, N, K, T)
    QUANT_DISPATCH(dt, QGEMV);
#undef QGEMV
}

void kc_dequant_bf16(cudaStream_t s, void *out, const void *w, enum dtype dt, int64_t rows, int K)
{
    int64_t groups = rows * (K / 32);
    if (groups <= 0) return;
    int grid = (int)(CEIL_DIV(groups, 256) < 4096 ? CEIL_DIV(groups, 256) : 4096);
    __nv_bfloat16 *o = (__nv_bfloat16 *)out;
    const uint8_t *wb = (const uint8_t *)w;
#define DEQUANT(DT) KLAUNCH(dequant_bf16_kernel<DT>, grid, 256, 0, s, o, wb, rows, K)
    QUANT_DISPATCH(dt, DEQUANT);
#undef DEQUANT
}

void kc_qembed(cudaStream_t s, float *out, const void *table, enum dtype dt, const int32_t *ids, int T, int H)
{
    if (T <= 0) return;
    const uint8_t *tb = (const uint8_t *)table;
#define QEMBED(DT) KLAUNCH(qembed_kernel<DT>, T, 128, 0, s, out, tb, ids, H)
    QUANT_DISPATCH(dt, QEMBED);
#undef QEMBED
}

void kc_quant_rows_f8(cudaStream_t s, void *q, float *scales, const float *x, int T, int K)
{
    if (T <= 0) return;
    KLAUNCH(quant_rows_f8_kernel, T, 256, 0, s, (uint8_t *)q, scales, x, K);
    KCHECK(cudaGetLastError());
}
