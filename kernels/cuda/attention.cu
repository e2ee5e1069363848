/* attention.cu: attention over the paged KV cache.
 *
 * decode: the sequences with one query token. One block per (sequence, KV
 *   head, up to 8 of its query heads, context partition); the partition size
 *   is chosen so that even one sequence fills the GPU (kc_decode_part_size).
 *   A group of lanes takes a token, each lane a 16-byte vector of its K (then
 *   V) row (a scalar layout for odd head sizes), DEC_UNROLL loads in flight;
 *   a group reduction gives each dot product. Scores stay in shared memory; softmax is exact within the
 *   partition. With several partitions (split-K), each writes its normalised
 *   output, max and sum, and decode_reduce_kernel rescales and combines them.
 * prefill: the sequences with at least min_q query tokens (the backend
 *   passes 2: prompt chunks). One block per (sequence, head, 16 query
 *   rows). K/V tiles of 32 tokens are gathered into shared memory through
 *   the block table (a warp per token); each warp owns 4 query rows and
 *   runs the online softmax (flash attention): lane j scores key j of the
 *   tile against all 4 rows (one float4 K read serves 4 rows), the running
 *   max and sum rescale the accumulators, and each V read serves 4 rows;
 *   lanes split the head dimension of the output. Causal: key position <=
 *   query position. Works for any mix of chunks and decodes; head sizes a
 *   multiple of 4. bf16/f16 caches with head sizes 64 and 128 go to the
 *   tensor-core kernel instead (attention_tc.cu).
 * Softmax and accumulation are fp32; K/V are read in the cache's type. */
#include "common.cuh"
#include "kernels.h"

#define DEC_WARPS 4
#define DEC_UNROLL 4 /* tokens a warp loads at once */
#define MAX_GROUP 8 /* query heads of one KV head per decode block */
#define PF_WARPS 4
#define PF_ROWS 4   /* query rows per warp */
#define PF_BQ (PF_WARPS * PF_ROWS)
#define PF_BK 32    /* keys per tile: one per lane */

// ----------------------------------------------------------------------------
// CUDA kernels

/* The cache row of (sequence block table bt, position p, KV head kvh). */
template <class T>
static __device__ __forceinline__ const T *kv_row(const T *cache, const kc_attn &a, const int32_t *bt, int p,
                                                  int kvh)
{
    int64_t slot = (int64_t)bt[p / a.block_size] * a.block_size + p % a.block_size;
    return cache + (slot * a.n_kv_heads + kvh) * a.head_dim;
}

/* How a lane holds its share of a cache row: E values, at head dims
 * li * E + e in the vector layout (V: the row is TG 16-byte vectors, one
 * load each), at li + 32 * e in the scalar layout (TG = 32, any head size). */
template <bool V, int TG, int E> static __device__ __forceinline__ int dim_of(int li, int e)
{
    return V ? li * E + e : li + TG * e;
}

/* Sum over the TG lanes of a group (TG a power of two, groups aligned). */
template <int TG> static __device__ __forceinline__ float group_sum(float v)
{
#pragma unroll
    for (int o = TG / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

/* The lane's share of the rows of tokens j, j + 32/TG, ... (DEC_UNROLL of
 * them) of the partition starting at p0; tokens at or past n read as zeros. */
template <class T, bool V, int TG, int E>
static __device__ __forceinline__ void load_rows(float (&r)[DEC_UNROLL][E], const T *cache, const kc_attn &a,
                                                 const int32_t *bt, int p0, int j, int n, int kvh, int li)
{
#pragma unroll
    for (int u = 0; u < DEC_UNROLL; u++) {
        int jj = j + u * (32 / TG);
        const T *row = jj < n ? kv_row(cache, a, bt, p0 + jj, kvh) : NULL;
        if (V && row) {
            uint4 raw = *reinterpret_cast<const uint4 *>(row + li * E);
            T x[E];
            memcpy((void *)x, &raw, sizeof(raw)); /* not a cast: no aliasing */
#pragma unroll
            for (int e = 0; e < E; e++) r[u][e] = to_float(x[e]);
        } else {
#pragma unroll
            for (int e = 0; e < E; e++) {
                int d = dim_of<V, TG, E>(li, e);
                r[u][e] = row && d < a.head_dim ? to_float(row[d]) : 0.0f;
            }
        }
    }
}

/* A group of TG lanes takes one token, so a warp covers 32/TG tokens per
 * load and DEC_UNROLL loads are in flight; dot products are group sums. GM:
 * query heads the accumulators are laid out for (>= the block's heads). */
template <class T, bool V, int TG, int E, int GM>
__global__ void __launch_bounds__(DEC_WARPS * 32)
decode_kernel(float *out, float *tmp_out, float *tmp_ml, const float *q, const T *k_cache, const T *v_cache,
              kc_attn a, int part_size, int n_parts)
{
    constexpr int TPW = 32 / TG, STEP = DEC_WARPS * DEC_UNROLL * TPW; /* tokens per warp load; per block pass */
    int group = a.n_heads / a.n_kv_heads, chunks = CEIL_DIV(group, MAX_GROUP);
    int gs = group < MAX_GROUP ? group : MAX_GROUP; /* heads a block is laid out for */
    int kvh = blockIdx.x / chunks, h0 = kvh * group + (int)(blockIdx.x % chunks) * MAX_GROUP;
    int G = kvh * group + group - h0 < gs ? kvh * group + group - h0 : gs;
    int s = blockIdx.y, part = blockIdx.z, tok = a.seq_start[s];
    if (a.seq_start[s + 1] - tok != 1) return; /* prompt chunks are the prefill kernel's */
    int ctx = a.positions[tok] + 1, p0 = part * part_size;
    if (p0 >= ctx) return;
    int n = ctx - p0 < part_size ? ctx - p0 : part_size;
    int hd = a.head_dim, lane = threadIdx.x % 32, warp = threadIdx.x / 32, li = lane % TG, sub = lane / TG;
    const int32_t *bt = a.block_tables + (int64_t)s * a.max_blocks;

    KSHARED_DYNAMIC(float, smem);
    float *q_s = smem;                       /* [gs][hd], pre-scaled */
    float *w_s = q_s + gs * hd;              /* [gs][part_size]: scores, then weights */
    float *o_s = w_s + gs * part_size;       /* [DEC_WARPS][gs][hd] */
    float *ml_s = o_s + DEC_WARPS * gs * hd; /* [2][gs]: max, sum */
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x)
        q_s[i] = q[((int64_t)tok * a.n_heads + h0) * hd + i] * a.scale;
    __syncthreads();

    /* pass 1: scores; the lane's share of every head's q stays in registers */
    float qr[GM][E];
#pragma unroll
    for (int g = 0; g < GM; g++)
#pragma unroll
        for (int e = 0; e < E; e++) {
            int d = dim_of<V, TG, E>(li, e);
            qr[g][e] = g < G && d < hd ? q_s[g * hd + d] : 0.0f;
        }
    for (int j0 = warp * DEC_UNROLL * TPW; j0 < n; j0 += STEP) {
        float k[DEC_UNROLL][E];
        load_rows<T, V, TG, E>(k, k_cache, a, bt, p0, j0 + sub, n, kvh, li);
#pragma unroll
        for (int g = 0; g < GM; g++) {
            if (g >= G) break;
            float dot[DEC_UNROLL];
#pragma unroll
            for (int u = 0; u < DEC_UNROLL; u++) {
                dot[u] = 0.0f;
#pragma unroll
                for (int e = 0; e < E; e++) dot[u] += qr[g][e] * k[u][e];
            }
#pragma unroll
            for (int u = 0; u < DEC_UNROLL; u++) dot[u] = group_sum<TG>(dot[u]);
#pragma unroll
            for (int u = 0; u < DEC_UNROLL; u++) {
                int j = j0 + sub + u * TPW;
                if (li == 0 && j < n) w_s[g * part_size + j] = dot[u];
            }
        }
    }
    __syncthreads();

    /* pass 2: softmax within the partition, a warp per head */
    for (int g = warp; g < G; g += DEC_WARPS) {
        float *w = w_s + g * part_size, mx = -INFINITY, sum = 0.0f;
        for (int j = lane; j < n; j += 32) mx = fmaxf(mx, w[j]);
        mx = warp_max(mx);
        for (int j = lane; j < n; j += 32) {
            float e = expf(w[j] - mx);
            w[j] = e;
            sum += e;
        }
        sum = warp_sum(sum);
        if (lane == 0) {
            ml_s[g] = mx;
            ml_s[gs + g] = sum;
        }
    }
    __syncthreads();

    /* pass 3: weight * V over the warp's tokens for every head */
    float acc[GM][E];
#pragma unroll
    for (int g = 0; g < GM; g++)
#pragma unroll
        for (int e = 0; e < E; e++) acc[g][e] = 0.0f;
    for (int j0 = warp * DEC_UNROLL * TPW; j0 < n; j0 += STEP) {
        float v[DEC_UNROLL][E];
        load_rows<T, V, TG, E>(v, v_cache, a, bt, p0, j0 + sub, n, kvh, li);
#pragma unroll
        for (int g = 0; g < GM; g++) {
            if (g >= G) break;
#pragma unroll
            for (int u = 0; u < DEC_UNROLL; u++) {
                int j = j0 + sub + u * TPW;
                float wgt = j < n ? w_s[g * part_size + j] : 0.0f;
#pragma unroll
                for (int e = 0; e < E; e++) acc[g][e] += wgt * v[u][e];
            }
        }
    }
    /* the warp's token groups summed: one row per warp and head in o_s */
#pragma unroll
    for (int g = 0; g < GM; g++) {
        if (g >= G) break;
#pragma unroll
        for (int e = 0; e < E; e++) {
            float x = acc[g][e];
#pragma unroll
            for (int o = TG; o < 32; o <<= 1) x += __shfl_xor_sync(FULL_MASK, x, o);
            int d = dim_of<V, TG, E>(li, e);
            if (sub == 0 && d < hd) o_s[(warp * gs + g) * hd + d] = x;
        }
    }
    __syncthreads();

    /* the warps' sums, normalised: the output, or this partition's part */
    for (int e = threadIdx.x; e < G * hd; e += blockDim.x) {
        int g = e / hd, d = e % hd, h = h0 + g;
        float v = 0.0f;
        for (int w = 0; w < DEC_WARPS; w++) v += o_s[(w * gs + g) * hd + d];
        v /= ml_s[gs + g];
        if (n_parts == 1) {
            out[((int64_t)tok * a.n_heads + h) * hd + d] = v * a.v_scale;
        } else {
            int64_t idx = ((int64_t)s * a.n_heads + h) * n_parts + part;
            tmp_out[idx * hd + d] = v;
            if (d == 0) {
                tmp_ml[idx * 2] = ml_s[g];
                tmp_ml[idx * 2 + 1] = ml_s[gs + g];
            }
        }
    }
}

/* one block per (head, sequence): combine the partitions' results */
__global__ void decode_reduce_kernel(float *out, const float *tmp_out, const float *tmp_ml, kc_attn a,
                                     int part_size, int n_parts)
{
    int h = blockIdx.x, s = blockIdx.y, tok = a.seq_start[s], hd = a.head_dim;
    if (a.seq_start[s + 1] - tok != 1) return;
    int np = CEIL_DIV(a.positions[tok] + 1, part_size);
    int64_t base = ((int64_t)s * a.n_heads + h) * n_parts;
    float mx = -INFINITY, total = 0.0f;
    for (int p = 0; p < np; p++) mx = fmaxf(mx, tmp_ml[(base + p) * 2]);
    for (int p = 0; p < np; p++) total += tmp_ml[(base + p) * 2 + 1] * expf(tmp_ml[(base + p) * 2] - mx);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int p = 0; p < np; p++)
            acc += tmp_out[(base + p) * hd + d] * tmp_ml[(base + p) * 2 + 1] * expf(tmp_ml[(base + p) * 2] - mx);
        out[((int64_t)tok * a.n_heads + h) * hd + d] = acc / total * a.v_scale;
    }
}

template <class T, int DPL>
__global__ void __launch_bounds__(PF_WARPS * 32)
prefill_kernel(float *out, const float *q, const T *k_cache, const T *v_cache, kc_attn a, int min_q)
{
    int s = blockIdx.z, h = blockIdx.y, q_begin = a.seq_start[s], qn = a.seq_start[s + 1] - q_begin;
    int r0 = blockIdx.x * PF_BQ;
    if (r0 >= qn || qn < min_q) return;
    int rows = qn - r0 < PF_BQ ? qn - r0 : PF_BQ;
    int hd = a.head_dim, ks = hd + 4; /* k_s row stride: 16-byte rows, conflict-free float4 reads */
    int kvh = h / (a.n_heads / a.n_kv_heads), lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t *bt = a.block_tables + (int64_t)s * a.max_blocks;
    const int32_t *pos = a.positions + q_begin + r0;

    KSHARED_DYNAMIC(float, smem);
    float *q_s = smem;              /* [PF_BQ][hd], pre-scaled; rows past `rows` zero */
    float *k_s = q_s + PF_BQ * hd;  /* [PF_BK][hd + 4] */
    float *v_s = k_s + PF_BK * ks;  /* [PF_BK][hd] */
    for (int e = threadIdx.x; e < PF_BQ * hd; e += blockDim.x) {
        int r = e / hd;
        q_s[e] = r < rows ? q[((int64_t)(q_begin + r0 + r) * a.n_heads + h) * hd + e % hd] * a.scale : 0.0f;
    }
    int n_keys = pos[rows - 1] + 1;

    float m[PF_ROWS], l[PF_ROWS], acc[PF_ROWS][DPL];
    int qpos[PF_ROWS];
#pragma unroll
    for (int i = 0; i < PF_ROWS; i++) {
        int r = warp * PF_ROWS + i;
        m[i] = -INFINITY;
        l[i] = 0.0f;
        qpos[i] = r < rows ? pos[r] : -1; /* -1: every key masked */
#pragma unroll
        for (int d = 0; d < DPL; d++) acc[i][d] = 0.0f;
    }

    for (int k0 = 0; k0 < n_keys; k0 += PF_BK) {
        __syncthreads(); /* q_s is written, the previous tile is consumed */
        for (int j = warp; j < PF_BK; j += PF_WARPS) { /* a warp per key: its rows found once */
            const T *kr = k0 + j < n_keys ? kv_row(k_cache, a, bt, k0 + j, kvh) : NULL;
            const T *vr = k0 + j < n_keys ? kv_row(v_cache, a, bt, k0 + j, kvh) : NULL;
            for (int d = lane; d < hd; d += 32) {
                k_s[j * ks + d] = kr ? to_float(kr[d]) : 0.0f;
                v_s[j * hd + d] = vr ? to_float(vr[d]) : 0.0f;
            }
        }
        __syncthreads();

        /* lane j scores key k0 + j against the warp's rows: each K load
         * serves every row, q comes as broadcasts */
        float dot[PF_ROWS];
#pragma unroll
        for (int i = 0; i < PF_ROWS; i++) dot[i] = 0.0f;
        for (int d = 0; d < hd; d += 4) {
            float4 kv = *reinterpret_cast<const float4 *>(k_s + lane * ks + d);
#pragma unroll
            for (int i = 0; i < PF_ROWS; i++) {
                float4 qv = *reinterpret_cast<const float4 *>(q_s + (warp * PF_ROWS + i) * hd + d);
                dot[i] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
            }
        }
        /* online softmax, row by row (warp-uniform branches) */
        float pj[PF_ROWS];
#pragma unroll
        for (int i = 0; i < PF_ROWS; i++) {
            float sc = k0 + lane <= qpos[i] ? dot[i] : -INFINITY;
            float m_new = fmaxf(m[i], warp_max(sc));
            pj[i] = 0.0f;
            if (m_new == -INFINITY) continue; /* no visible key yet */
            float alpha = expf(m[i] - m_new);
            pj[i] = expf(sc - m_new);
            l[i] = l[i] * alpha + warp_sum(pj[i]);
#pragma unroll
            for (int d = 0; d < DPL; d++) acc[i][d] *= alpha;
            m[i] = m_new;
        }
        /* weights x V: each V load serves every row */
        for (int j = 0; j < PF_BK; j++) {
            float v[DPL];
#pragma unroll
            for (int d = 0; d < DPL; d++) v[d] = lane + 32 * d < hd ? v_s[j * hd + lane + 32 * d] : 0.0f;
#pragma unroll
            for (int i = 0; i < PF_ROWS; i++) {
                float w = __shfl_sync(FULL_MASK, pj[i], j);
#pragma unroll
                for (int d = 0; d < DPL; d++) acc[i][d] += w * v[d];
            }
        }
    }
#pragma unroll
    for (int i = 0; i < PF_ROWS; i++) {
        int r = warp * PF_ROWS + i;
        if (r >= rows) continue;
        float *o = out + ((int64_t)(q_begin + r0 + r) * a.n_heads + h) * hd;
#pragma unroll
        for (int d = 0; d < DPL; d++)
            if (lane + 32 * d < hd) o[lane + 32 * d] = acc[i][d] / l[i] * a.v_scale;
    }
}

// ----------------------------------------------------------------------------
// kernel launchers

/* head dims a lane holds: hd <= 32 * DPL */
#define DISPATCH_DPL(hd, DPL, ...)                                   \
    if ((hd) <= 32) { constexpr int DPL = 1; __VA_ARGS__; }          \
    else if ((hd) <= 64) { constexpr int DPL = 2; __VA_ARGS__; }     \
    else if ((hd) <= 128) { constexpr int DPL = 4; __VA_ARGS__; }    \
    else { constexpr int DPL = 8; __VA_ARGS__; }

static void check_attn(const kc_attn *a, const char *who)
{
    if (a->head_dim < 1 || a->head_dim > 256 || a->n_kv_heads < 1 || a->n_heads % a->n_kv_heads) {
        fprintf(stderr, "%s: unsupported head_dim %d or heads %d/%d\n", who, a->head_dim, a->n_heads,
                a->n_kv_heads);
        abort();
    }
}

/* Raises a kernel's dynamic shared memory limit when it needs over 48 KiB. */
template <class K> static void allow_smem(K kernel, size_t bytes)
{
    if (bytes > 48 * 1024) KCHECK(cudaFuncSetAttribute((const void *)kernel,
                                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

template <class T, bool V, int TG, int E, int GM>
static void launch_decode(dim3 grid, size_t smem, cudaStream_t s, float *out, float *tmp_out, float *tmp_ml,
                          const float *q, const void *k_cache, const void *v_cache, const kc_attn &a, int part_size,
                          int n_parts)
{
    auto k = decode_kernel<T, V, TG, E, GM>;
    allow_smem(k, smem);
    KLAUNCH(k, grid, DEC_WARPS * 32, smem, s, out, tmp_out, tmp_ml, q, (const T *)k_cache, (const T *)v_cache, a,
            part_size, n_parts);
}

extern "C" int kc_decode_part_size(const struct kc_attn *a, int n_sm)
{
    int group = a->n_heads / a->n_kv_heads;
    long blocks = (long)a->n_kv_heads * CEIL_DIV(group, MAX_GROUP) * a->n_seqs; /* per partition */
    long parts = CEIL_DIV(2L * n_sm, blocks);
    long size = CEIL_DIV(CEIL_DIV((long)a->max_ctx, parts), 32L) * 32;
    return size < 32 ? 32 : size > KC_MAX_PART ? KC_MAX_PART : (int)size;
}

extern "C" size_t kc_decode_tmp_floats(const struct kc_attn *a, int part_size)
{
    size_t n_parts = CEIL_DIV(a->max_ctx, part_size);
    return n_parts <= 1 ? 0 : (size_t)a->n_seqs * a->n_heads * n_parts * (a->head_dim + 2);
}

extern "C" void kc_attention_decode(cudaStream_t s, float *out, const float *q, const void *k_cache,
                                    const void *v_cache, enum dtype dt, const struct kc_attn *a, int part_size,
                                    float *tmp)
{
    check_attn(a, __func__);
    if (part_size < 32 || part_size % 32 || part_size > KC_MAX_PART) {
        fprintf(stderr, "%s: part_size %d\n", __func__, part_size);
        abort();
    }
    if (a->n_seqs <= 0 || a->max_ctx <= 0) return;
    int group = a->n_heads / a->n_kv_heads, gs = group < MAX_GROUP ? group : MAX_GROUP;
    int n_parts = CEIL_DIV(a->max_ctx, part_size), hd = a->head_dim;
    float *tmp_out = tmp, *tmp_ml = tmp ? tmp + (size_t)a->n_seqs * a->n_heads * n_parts * hd : NULL;
    size_t smem = ((size_t)gs * hd + (size_t)gs * part_size + (size_t)DEC_WARPS * gs * hd + 2 * gs) * sizeof(float);
    dim3 grid(a->n_kv_heads * CEIL_DIV(group, MAX_GROUP), a->n_seqs, n_parts);
    /* the vector layout where a row is 8, 16 or 32 16-byte vectors (head
     * size 64/128/256 in half types, 32/64/128 in fp32); else scalar */
#define DEC_ARGS grid, smem, s, out, tmp_out, tmp_ml, q, k_cache, v_cache, *a, part_size, n_parts
    DISPATCH_KV(dt, E, {
        constexpr int VE = 16 / (int)sizeof(E);
        int tg = hd % VE ? 0 : hd / VE;
        if (tg == 8 && gs == 1) launch_decode<E, true, 8, VE, 1>(DEC_ARGS);
        else if (tg == 8) launch_decode<E, true, 8, VE, MAX_GROUP>(DEC_ARGS);
        else if (tg == 16 && gs == 1) launch_decode<E, true, 16, VE, 1>(DEC_ARGS);
        else if (tg == 16) launch_decode<E, true, 16, VE, MAX_GROUP>(DEC_ARGS);
        else if (tg == 32 && gs == 1) launch_decode<E, true, 32, VE, 1>(DEC_ARGS);
        else if (tg == 32) launch_decode<E, true, 32, VE, MAX_GROUP>(DEC_ARGS);
        else DISPATCH_DPL(hd, DPL, launch_decode<E, false, 32, DPL, MAX_GROUP>(DEC_ARGS));
    });
#undef DEC_ARGS
    KCHECK(cudaGetLastError());
    if (n_parts > 1) {
        KLAUNCH(decode_reduce_kernel, dim3(a->n_heads, a->n_seqs), CEIL_DIV(hd, 32) * 32, 0, s, out, tmp_out,
                tmp_ml, *a, part_size, n_parts);
        KCHECK(cudaGetLastError());
    }
}

extern "C" void kc_attention_prefill(cudaStream_t s, float *out, const float *q, const void *k_cache,
                                     const void *v_cache, enum dtype dt, const struct kc_attn *a, int min_q)
{
    check_attn(a, __func__);
    if (a->head_dim % 4) { /* float4 reads of the K tile; every Llama head size qualifies */
        fprintf(stderr, "%s: head_dim %d is not a multiple of 4\n", __func__, a->head_dim);
        abort();
    }
    if (a->n_seqs <= 0 || a->max_q_len <= 0) return;
    if (kc_prefill_on_tensor_cores(dt, a->head_dim)) {
        kc_attention_prefill_tc(s, out, q, k_cache, v_cache, dt, a, min_q);
        return;
    }
    int hd = a->head_dim;
    size_t smem = ((size_t)PF_BQ * hd + (size_t)PF_BK * (hd + 4) + (size_t)PF_BK * hd) * sizeof(float);
    dim3 grid(CEIL_DIV(a->max_q_len, PF_BQ), a->n_heads, a->n_seqs);
    DISPATCH_KV(dt, E, DISPATCH_DPL(hd, DPL, {
        auto k = prefill_kernel<E, DPL>;
        allow_smem(k, smem);
        KLAUNCH(k, grid, PF_WARPS * 32, smem, s, out, q, (const E *)k_cache, (const E *)v_cache, *a, min_q);
    }));
    KCHECK(cudaGetLastError());
}
