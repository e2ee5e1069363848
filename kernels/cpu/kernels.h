/* kernels.h: CPU kernels for the Llama forward, fp32 compute.
 *
 * Each op has a scalar reference (`_ref`, plain loops written to be read) and
 * a fast entry point that uses AVX2/FMA/F16C when the CPU has them and falls
 * back to the reference otherwise. Ops that the backend splits across threads
 * take a half-open work range [i0, i1) over their outermost parallel index;
 * a single-threaded caller passes the full range. */
#ifndef TESSERA_KERNELS_CPU_H
#define TESSERA_KERNELS_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "../dtype.h"
#include "../sample.h"

/* The instruction sets the fast paths use: AVX2+FMA+F16C for every op,
 * AVX-512 F/BW/VL for the matmul (matmul_avx512). The CPU's, checked once,
 * lowered by the environment variable TESSERA_CPU=avx2 or =ref. */
enum kcpu_level { KCPU_REF, KCPU_AVX2, KCPU_AVX512, KCPU_AMX };
bool kcpu_have_avx2(void);
bool kcpu_have_avx512(void);
/* AMX tiles with bf16 (Sapphire Rapids and later) and the OS's permission
 * to use them; TESSERA_CPU=avx512 turns them off. */
bool kcpu_have_amx(void);
/* Uses no path above l (tests compare the paths; KCPU_AMX lifts the cap). */
void kcpu_cap(enum kcpu_level l);

/* y[t, n] = sum_k x[t, k] * w[n, k] for n in [n0, n1), t in [0, T); with
 * accumulate, y[t, n] += that sum instead.
 *   y: [T, ldy] fp32, x: [T, ldx] fp32 (the first K of each row are used),
 *   w: [N, K] in wt (a Linear weight, or a block of its columns). */
void matmul_ref(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
                int T, int K, int n0, int n1, bool accumulate);
void matmul(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
            int T, int K, int n0, int n1, bool accumulate);
/* The row count of the matmul in use's register tiles: row ranges split
 * across threads at multiples of it keep every tile whole. */
int matmul_row_align(void);

/* Quantized weights (Q8_0, Q4_0, Q4_K, Q6_K; kernels/quant.h) multiply
 * activations quantized to 8 bits, as llama.cpp does: the integer products
 * of a block are exact, one float multiply per block scales them.
 *
 * A quantized activation row (qact) of K floats, K a multiple of the weight
 * type's block, is qact_row_bytes(wt, K) bytes:
 *   int8_t  q[K]                    x[k] ~= q[k] * d[k / G]
 *   float   d[K / G]                G = 32 for Q8_0/Q4_0, 256 for Q4_K/Q6_K
 *   int16_t sum16[K / 16]           sum16[i] = q[16 i] + ... + q[16 i + 15]
 * padded to a multiple of 64 bytes (rows of a batch stay 64-byte aligned
 * when the first is). Per group: d = max|x| / 127, q = x * (1 / d) rounded
 * to nearest even (so |q| <= 127); an all-zero group has d = 0, q = 0. */
int qact_group(enum dtype wt);
size_t qact_row_bytes(enum dtype wt, int K);
/* Rows t in [t0, t1) of x: [T, ldx] -> rows of xq (qact_row_bytes apart).
 * Every path gives the same bytes. */
void qact_quantize_ref(void *xq, const float *x, int ldx, enum dtype wt, int K, int t0, int t1);
void qact_quantize(void *xq, const float *x, int ldx, enum dtype wt, int K, int t0, int t1);

/* matmul's contract with a quantized weight w: [N, K] (row n at
 * n * dtype_row_bytes(wt, K)) and quantized activations xq: T rows of
 * qact_row_bytes(wt, K). y[t, n] (+)= sum over blocks of the block's exact
 * integer dot product times its scales, for n in [n0, n1). */
void matmul_q_ref(float *y, int ldy, const void *xq, const void *w, enum dtype wt,
                  int T, int K, int n0, int n1, bool accumulate);
void matmul_q(float *y, int ldy, const void *xq, const void *w, enum dtype wt,
              int T, int K, int n0, int n1, bool accumulate);
/* matmul_row_align's twin for matmul_q. */
int matmul_q_row_align(void);

/* Prompt-sized matmuls of quantized weights on AMX (amx.c; call only when
 * kcpu_have_amx()): x converted once to bf16 tiles (amx_act_bytes; rows
 * [t0, t1) per call, t0 a multiple of 16 and t1 too or T, so threads can
 * share it), then per group of 16 weight
 * rows a bf16 panel of their dequantized values ([16][K], zero rows past
 * `rows`) and the tile loop. y[t, n0 + r] (+)= the dot of x's row t and
 * weight row n0 + r, r < rows. K a multiple of 32. */
bool amx_probe(void);
size_t amx_act_bytes(int T, int K);
void amx_act_convert(void *xb, const float *x, int ldx, int T, int K, int t0, int t1);
void amx_panel(void *panel, const void *w, enum dtype wt, int K, int n0, int rows);
void matmul_amx(float *y, int ldy, const void *xb, const void *panel, int T, int K, int n0, int rows,
                bool accumulate);

/* Packed quantized weights: the fast kernels' own layout, made once at load
 * (backend_cpu.c) where qpack_available(wt). Rows go in groups of
 * QPACK_ROWS, interleaved so that each int32 lane of a vpdpbusd is one row
 * (activations broadcast, never reduced across lanes), with the scales of a
 * group's blocks stored apart from its quants. Group g (rows 16 g ..
 * 16 g + 15; rows past N are zeros) starts at g * qpack_group_bytes(wt, K).
 * The layouts are private to the kernels that read them. */
#define QPACK_ROWS 16
bool qpack_available(enum dtype wt);
size_t qpack_group_bytes(enum dtype wt, int K);
/* Groups [g0, g1) of w: [N, K] (ggml blocks) into dst (the whole packed
 * tensor); threads may pack disjoint groups. */
void qpack(void *dst, const void *w, enum dtype wt, int N, int K, int g0, int g1);
/* matmul_q's contract on packed weights wp; n0 a multiple of QPACK_ROWS
 * and n1 one too or the last row N (only rows in [n0, n1) are stored). */
void matmul_qp(float *y, int ldy, const void *xq, const void *wp, enum dtype wt,
               int T, int K, int n0, int n1, bool accumulate);

/* out[t] = x[t] / rms(x[t]) * w for rows t in [t0, t1); x, out: [T, H]. */
void rmsnorm_ref(float *out, const float *x, const float *w, int H, float eps,
                 int t0, int t1);
void rmsnorm(float *out, const float *x, const float *w, int H, float eps,
             int t0, int t1);

/* HF rotate-half RoPE in place on rows t in [t0, t1) of x: [T, n_heads, hd].
 * cos, sin: [T, hd/2], precomputed for each token's position. */
void rope_ref(float *x, int n_heads, int hd, const float *cos, const float *sin,
              int t0, int t1);
void rope(float *x, int n_heads, int hd, const float *cos, const float *sin,
          int t0, int t1);

/* out[i] = silu(gate[i]) * up[i] for i in [i0, i1). */
void silu_mul_ref(float *out, const float *gate, const float *up, int64_t i0, int64_t i1);
void silu_mul(float *out, const float *gate, const float *up, int64_t i0, int64_t i1);

/* The first index of the largest value of x[0..n): NaN never wins; 0 when
 * nothing beats -inf. Greedy sampling, on either side of the copy. */
int32_t argmax_ref(const float *x, int n);

/* The device sampler's reference (kernels/sample.h): row (edited in place:
 * bias and penalties) -> a token. sample_edit_ref only edits;
 * sample_threshold_ref: the kept tokens' threshold on x = row / temperature
 * for the row's max x m (row already edited). */
int32_t sample_ref(float *row, int V, const struct sample_row *r, const struct sample_lists *l);
/* The log-sum-exp of row[0..V) (the logprob of token i is row[i] - it),
 * and in top_ids/top_logprobs[0..n) the n likeliest tokens' ids and
 * logprobs, largest first, ties by lower id (sample.h's logprobs). */
float logprobs_ref(const float *row, int V, int n, int32_t *top_ids, float *top_logprobs);
void sample_edit_ref(float *row, const struct sample_row *r, const struct sample_lists *l);
float sample_threshold_ref(const float *row, int V, const struct sample_row *r, float m);

/* y[t, i] += bias[i] for rows t in [t0, t1); y: [T, n], bias: [n] (the
 * biases of q/k/v/o_proj). */
void add_bias_ref(float *y, const float *bias, int n, int t0, int t1);

/* x[i] += y[i] for i in [i0, i1). */
void add_ref(float *x, const float *y, int64_t i0, int64_t i1);
void add(float *x, const float *y, int64_t i0, int64_t i1);

/* out[t] = table[ids[t]] (converted to fp32) for t in [t0, t1); table: [V, H]. */
void embed_ref(float *out, const void *table, enum dtype dt, const int32_t *ids,
               int H, int t0, int t1);

/* Paged KV cache of one layer: [num_blocks, block_size, n_kv_heads, hd] fp32,
 * token slot s = block_id * block_size + offset. */
struct kv_layer {
    float *k, *v;
    int block_size, n_kv_heads, head_dim;
    float *scales; /* an fp8 cache's [k, v] per-tensor scales (host memory; 0 until the CUDA backend sets them
                      from the first step's K and V); NULL: none (every other cache) */
};

/* Writes k, v: [T, n_kv_heads * hd] into the slots slots[t], t in [t0, t1). */
void kv_write_ref(const struct kv_layer *kv, const float *k, const float *v,
                  const int64_t *slots, int t0, int t1);

/* The queries of one step, flattened over sequences (varlen). Token t belongs
 * to sequence tok_seq[t], sits at positions[t] and attends causally to the
 * positions 0..positions[t] of its sequence, read through its block table. */
struct attn_batch {
    int n_tokens, n_heads;
    const int32_t *tok_seq;      /* [T] */
    const int32_t *positions;    /* [T] */
    const int32_t *block_tables; /* [n_seqs, max_blocks] */
    int max_blocks;
    float scale;                 /* usually 1/sqrt(hd) */
    /* Per sequence, for kernels that walk sequences (CUDA): its tokens are
     * [seq_start[i], seq_start[i+1]); host-side bounds over the batch. */
    int n_seqs;
    const int32_t *seq_start;    /* [n_seqs + 1] */
    int max_q_len, max_ctx;
    int n_single;                /* sequences with one query token (decodes) */
};

/* out, q: [T, n_heads, hd]. Work items i = t * n_heads + h in [i0, i1).
 * scratch: at least (max context) floats. */
void attention_ref(float *out, const float *q, const struct kv_layer *kv,
                   const struct attn_batch *b, float *scratch, int64_t i0, int64_t i1);
void attention(float *out, const float *q, const struct kv_layer *kv,
               const struct attn_batch *b, float *scratch, int64_t i0, int64_t i1);

/* Fast paths, exposed for tests; call only when kcpu_have_avx2(). */
void matmul_avx2(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
                 int T, int K, int n0, int n1, bool accumulate);
void rmsnorm_avx2(float *out, const float *x, const float *w, int H, float eps,
                  int t0, int t1);
void rope_avx2(float *x, int n_heads, int hd, const float *cos, const float *sin,
               int t0, int t1);
void silu_mul_avx2(float *out, const float *gate, const float *up, int64_t i0, int64_t i1);
void add_avx2(float *x, const float *y, int64_t i0, int64_t i1);
void attention_avx2(float *out, const float *q, const struct kv_layer *kv,
                    const struct attn_batch *b, float *scratch, int64_t i0, int64_t i1);
/* Call only when kcpu_have_avx512(). */
void qact_quantize_avx512(void *xq, const float *x, int ldx, enum dtype wt, int K, int t0, int t1);
void matmul_q_avx512(float *y, int ldy, const void *xq, const void *w, enum dtype wt,
                     int T, int K, int n0, int n1, bool accumulate);
/* AVX2 (no VNNI: vpmaddubsw + vpmaddwd) on ggml's layout, for CPUs without
 * AVX-512 VNNI; call only when kcpu_have_avx2(). */
void qact_quantize_avx2(void *xq, const float *x, int ldx, enum dtype wt, int K, int t0, int t1);
void matmul_q_avx2(float *y, int ldy, const void *xq, const void *w, enum dtype wt,
                   int T, int K, int n0, int n1, bool accumulate);
/* Packed layouts and their kernels (AVX-512 VNNI): Q8_0 and Q4_0 in
 * avx512_qpack.c, Q4_K and Q6_K in avx512_qpack_k.c. */
size_t qpack_group_bytes_q8q4(enum dtype wt, int K);
void qpack_q8q4(void *dst, const void *w, enum dtype wt, int N, int K, int g0, int g1);
void matmul_qp_q8q4_avx512(float *y, int ldy, const void *xq, const void *wp, enum dtype wt,
                           int T, int K, int n0, int n1, bool accumulate);
size_t qpack_group_bytes_k(enum dtype wt, int K);
void qpack_k(void *dst, const void *w, enum dtype wt, int N, int K, int g0, int g1);
void matmul_qp_k_avx512(float *y, int ldy, const void *xq, const void *wp, enum dtype wt,
                        int T, int K, int n0, int n1, bool accumulate);
void matmul_avx512(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
                   int T, int K, int n0, int n1, bool accumulate);

#endif
