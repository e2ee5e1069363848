/* attention_tc.cu: prefill attention on tensor cores, flash-attention 2
 * style (kc_attention_prefill picks it for half and bf16 caches with head
 * sizes 64 and 128; attention.cu's CUDA-core kernel takes the rest).
 *
 * A block of TC_WARPS warps takes TC_BQ query rows of one (sequence, head),
 * 16 rows a warp. Q is scaled, rounded to the cache type and held as mma A
 * fragments for the whole pass. Tiles of TC_BK keys go from the paged cache
 * into shared memory (16-byte copies, rows padded by 8 values against bank
 * conflicts); S = Q K^T runs as mma.sync m16n8k16 (fp32 accumulate), the
 * causal mask and the online softmax work on the S fragments in registers
 * (each row's max and sum reduced over the 4 lanes that hold it), and the
 * probabilities, rounded to the cache type, are the A fragments of
 * O += P V without a trip through shared memory (FA2's register reuse). */
#include "common.cuh"
#include "kernels.h"

#define TC_WARPS 4
#define TC_BQ (TC_WARPS * 16)
#define TC_BK 64

/* Two adjacent values of shared memory as one fragment register. */
template <class E> static __device__ __forceinline__ uint32_t ld2(const E *p)
{
    uint32_t r;
    memcpy(&r, p, 4);
    return r;
}

template <class E, int HD>
__global__ void __launch_bounds__(TC_WARPS * 32)
tc_prefill_kernel(float *out, const float *q, const E *k_cache, const E *v_cache, kc_attn a, int min_q)
{
    constexpr int KS = HD + 8; /* shared row stride, in values */
    int s = blockIdx.z, h = blockIdx.y, q_begin = a.seq_start[s], qn = a.seq_start[s + 1] - q_begin;
    int r0 = blockIdx.x * TC_BQ;
    if (r0 >= qn || qn < min_q) return;
    int rows = qn - r0 < TC_BQ ? qn - r0 : TC_BQ;
    int kvh = h / (a.n_heads / a.n_kv_heads), lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int g = lane >> 2, t = lane & 3, wr = warp * 16 + g; /* this lane's rows: wr and wr + 8 */
    const int32_t *bt = a.block_tables + (int64_t)s * a.max_blocks;
    const int32_t *pos = a.positions + q_begin + r0;

    KSHARED_DYNAMIC(E, smem);
    E *q_s = smem;              /* [TC_BQ][KS] */
    E *k_s = q_s + TC_BQ * KS;  /* [TC_BK][KS] */
    E *v_s = k_s + TC_BK * KS;  /* [TC_BK][KS] */
    for (int e = threadIdx.x; e < TC_BQ * HD; e += blockDim.x) {
        int r = e / HD, d = e % HD;
        float x = r < rows ? q[((int64_t)(q_begin + r0 + r) * a.n_heads + h) * HD + d] * a.scale : 0.0f;
        q_s[r * KS + d] = from_float<E>(x);
    }
    __syncthreads();
    uint32_t qa[HD / 16][4];
#pragma unroll
    for (int kc = 0; kc < HD / 16; kc++) {
        const E *r = q_s + wr * KS + kc * 16 + 2 * t;
        qa[kc][0] = ld2(r), qa[kc][1] = ld2(r + 8 * KS), qa[kc][2] = ld2(r + 8), qa[kc][3] = ld2(r + 8 * KS + 8);
    }
    int qpos[2] = {wr < rows ? pos[wr] : -1, wr + 8 < rows ? pos[wr + 8] : -1}; /* -1: all masked */
    int n_keys = pos[rows - 1] + 1;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, o[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;

    for (int k0 = 0; k0 < n_keys; k0 += TC_BK) {
        __syncthreads(); /* the previous tile is consumed */
        for (int e = threadIdx.x; e < TC_BK * (HD / 8); e += blockDim.x) { /* 16-byte pieces */
            int j = e / (HD / 8), c = e % (HD / 8) * 8;
            uint4 kv = {0, 0, 0, 0}, vv = {0, 0, 0, 0};
            if (k0 + j < n_keys) {
                int64_t slot = (int64_t)bt[(k0 + j) / a.block_size] * a.block_size + (k0 + j) % a.block_size;
                int64_t at = (slot * a.n_kv_heads + kvh) * HD + c;
                kv = *reinterpret_cast<const uint4 *>(k_cache + at);
                vv = *reinterpret_cast<const uint4 *>(v_cache + at);
            }
            *reinterpret_cast<uint4 *>(k_s + j * KS + c) = kv;
            *reinterpret_cast<uint4 *>(v_s + j * KS + c) = vv;
        }
        __syncthreads();

        float sc[TC_BK / 8][4]; /* S: rows wr (0, 1) and wr + 8 (2, 3), keys n * 8 + 2t (+1) */
#pragma unroll
        for (int n = 0; n < TC_BK / 8; n++) {
            sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
            for (int kc = 0; kc < HD / 16; kc++) {
                const E *kr = k_s + (n * 8 + g) * KS + kc * 16 + 2 * t;
                uint32_t b[2] = {ld2(kr), ld2(kr + 8)};
                mma_16816<E>(sc[n], qa[kc], b);
            }
        }
        /* causal mask, then the online softmax of rows wr and wr + 8 */
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < TC_BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                if (k0 + n * 8 + 2 * t + (i & 1) > qpos[i >> 1]) sc[n][i] = -INFINITY;
                mx[i >> 1] = fmaxf(mx[i >> 1], sc[n][i]);
            }
        float alpha[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(FULL_MASK, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(FULL_MASK, mx[r], 2));
            float m_new = fmaxf(m[r], mx[r]);
            alpha[r] = m_new == -INFINITY ? 1.0f : expf(m[r] - m_new);
            m[r] = m_new;
        }
#pragma unroll
        for (int n = 0; n < TC_BK / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float p = m[i >> 1] == -INFINITY ? 0.0f : expf(sc[n][i] - m[i >> 1]);
                sc[n][i] = p;
                sum[i >> 1] += p;
            }
#pragma unroll
        for (int r = 0; r < 2; r++) {
            sum[r] += __shfl_xor_sync(FULL_MASK, sum[r], 1);
            sum[r] += __shfl_xor_sync(FULL_MASK, sum[r], 2);
            l[r] = l[r] * alpha[r] + sum[r];
        }
#pragma unroll
        for (int n = 0; n < HD / 8; n++) o[n][0] *= alpha[0], o[n][1] *= alpha[0], o[n][2] *= alpha[1], o[n][3] *= alpha[1];
        /* O += P V: P's fragments are S's, 16 keys a step */
#pragma unroll
        for (int kc = 0; kc < TC_BK / 16; kc++) {
            const float *p0 = sc[2 * kc], *p1 = sc[2 * kc + 1];
            uint32_t pa[4] = {pack2(from_float<E>(p0[0]), from_float<E>(p0[1])),
                              pack2(from_float<E>(p0[2]), from_float<E>(p0[3])),
                              pack2(from_float<E>(p1[0]), from_float<E>(p1[1])),
                              pack2(from_float<E>(p1[2]), from_float<E>(p1[3]))};
            const E *vr = v_s + (kc * 16 + 2 * t) * KS + g;
#pragma unroll
            for (int n = 0; n < HD / 8; n++) {
                uint32_t b[2] = {pack2(vr[n * 8], vr[n * 8 + KS]), pack2(vr[n * 8 + 8 * KS], vr[n * 8 + 9 * KS])};
                mma_16816<E>(o[n], pa, b);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int row = wr + 8 * r;
        if (row >= rows) continue;
        float *dst = out + ((int64_t)(q_begin + r0 + row) * a.n_heads + h) * HD + 2 * t;
#pragma unroll
        for (int n = 0; n < HD / 8; n++)
            dst[n * 8] = o[n][2 * r] / l[r] * a.v_scale, dst[n * 8 + 1] = o[n][2 * r + 1] / l[r] * a.v_scale;
    }
}

extern "C" bool kc_prefill_on_tensor_cores(enum dtype dt, int head_dim)
{
    return (dt == DTYPE_F16 || dt == DTYPE_BF16) && (head_dim == 64 || head_dim == 128);
}

template <class E, int HD>
static void launch_tc(cudaStream_t s, float *out, const float *q, const void *k_cache, const void *v_cache,
                      const kc_attn *a, int min_q)
{
    size_t smem = (size_t)(TC_BQ + 2 * TC_BK) * (HD + 8) * sizeof(E);
    auto k = tc_prefill_kernel<E, HD>;
    if (smem > 48 * 1024)
        KCHECK(cudaFuncSetAttribute((const void *)k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    dim3 grid(CEIL_DIV(a->max_q_len, TC_BQ), a->n_heads, a->n_seqs);
    KLAUNCH(k, grid, TC_WARPS * 32, smem, s, out, q, (const E *)k_cache, (const E *)v_cache, *a, min_q);
    KCHECK(cudaGetLastError());
}

extern "C" void kc_attention_prefill_tc(cudaStream_t s, float *out, const float *q, const void *k_cache,
                                        const void *v_cache, enum dtype dt, const struct kc_attn *a, int min_q)
{
    if (a->n_seqs <= 0 || a->max_q_len <= 0) return;
    if (dt == DTYPE_BF16 && a->head_dim == 64) launch_tc<__nv_bfloat16, 64>(s, out, q, k_cache, v_cache, a, min_q);
    else if (dt == DTYPE_BF16) launch_tc<__nv_bfloat16, 128>(s, out, q, k_cache, v_cache, a, min_q);
    else if (a->head_dim == 64) launch_tc<__half, 64>(s, out, q, k_cache, v_cache, a, min_q);
    else launch_tc<__half, 128>(s, out, q, k_cache, v_cache, a, min_q);
}
