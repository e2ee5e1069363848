/* kernels.h: launchers of the CUDA kernels, callable from C.
 *
 * Activations are fp32 [rows, cols] row-major device buffers; `dt` names the
 * storage type of a weight table or of the KV cache (F32, F16, BF16). Every
 * launcher enqueues on `stream` and returns; a failed launch aborts with the
 * CUDA error. The CPU references these are tested against are the matching
 * ops in kernels/cpu/kernels.h. */
#ifndef TESSERA_KERNELS_CUDA_H
#define TESSERA_KERNELS_CUDA_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dtype.h"
#include "../sample.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[T, H] = table[ids[t]] in fp32; table: [V, H] of dt. */
void kc_embed(cudaStream_t s, float *out, const void *table, enum dtype dt, const int32_t *ids, int T, int H);
/* If residual: x += residual (in place). Then out = x / rms(x) * w. */
void kc_rmsnorm(cudaStream_t s, float *out, float *x, const float *residual, const float *w, int T, int H,
                float eps);
/* kc_rmsnorm that also stores out rounded to dt (F16 or BF16) in cast: the
 * input of the GEMM that follows, without a kc_cast pass; cast NULL: none. */
void kc_rmsnorm_cast(cudaStream_t s, float *out, void *cast, enum dtype dt, float *x, const float *residual,
                     const float *w, int T, int H, float eps);
/* y[t, i] += bias[i]: y [T, n], bias [n] (add_bias_ref). */
void kc_add_bias(cudaStream_t s, float *y, const float *bias, int T, int n);
/* Rotate-half RoPE in place on x: [T, n_heads, hd]; cos, sin: [T, hd/2]. */
void kc_rope(cudaStream_t s, float *x, int T, int n_heads, int hd, const float *cos, const float *sin);
/* out[i] = silu(gate[i]) * up[i] */
void kc_silu_mul(cudaStream_t s, float *out, const float *gate, const float *up, int64_t n);
/* out[T, I] = silu(gate) * up with gate_up [T, 2I] (each row the gate's
 * then the up projection's: their weights stacked), and out rounded to dt
 * in cast unless NULL (see kc_rmsnorm_cast). */
void kc_silu_mul_stacked(cudaStream_t s, float *out, void *cast, enum dtype dt, const float *gate_up, int T, int I);
/* out[r] = the first index of the largest value of row r of x[rows, n];
 * NaN never wins, 0 when nothing beats -inf (argmax_ref). */
void kc_argmax(cudaStream_t s, int32_t *out, const float *x, int rows, int n);
/* dst[i] = src[i] rounded to dt (the input of a half or bf16 GEMM). */
void kc_cast(cudaStream_t s, void *dst, enum dtype dt, const float *src, int64_t n);
/* K/V rows [T, row], times k_mul and v_mul (an fp8 cache's 1 / scale; 1
 * otherwise), into the paged cache slots slots[t] (skipped when < 0);
 * caches: [num_blocks * block_size, row] of dt. */
void kc_kv_write(cudaStream_t s, void *k_cache, void *v_cache, enum dtype dt, const float *k, const float *v,
                 const int64_t *slots, int T, int row, float k_mul, float v_mul);
/* out[0], out[1] (device) = max |k|, max |v| over T rows of n values, row
 * stride ld: what an fp8 cache's scales are calibrated from. */
void kc_kv_amax(cudaStream_t s, float *out, const float *k, const float *v, int T, int n, int64_t ld);
/* From qkv [T, (n_heads + 2 n_kv_heads) hd] (each row q's heads, then k's,
 * then v's: the projections' weights stacked), in one kernel (a block per
 * token): q_out [T, n_heads hd] = kc_rope of q; the rotated k and v into
 * the cache slots slots[t] as kc_kv_write (skipped when < 0). */
void kc_rope_kv_write(cudaStream_t s, float *q_out, const float *qkv, int T, int n_heads, int n_kv_heads, int hd,
                      const float *cos, const float *sin, void *k_cache, void *v_cache, enum dtype dt,
                      const int64_t *slots, float k_mul, float v_mul);

/* The queries of one step: sequence i owns tokens [seq_start[i],
 * seq_start[i+1]) of q/out, token t sits at positions[t] and attends to
 * positions 0..positions[t] of its sequence through its block table row. */
struct kc_attn {
    int n_seqs, n_heads, n_kv_heads, head_dim, block_size;
    const int32_t *seq_start;    /* device [n_seqs + 1] */
    const int32_t *positions;    /* device [T] */
    const int32_t *block_tables; /* device [n_seqs, max_blocks] */
    int max_blocks;
    int max_q_len, max_ctx;      /* host-side bounds over the batch */
    float scale;                 /* q . k is multiplied by: 1 / sqrt(hd), times an fp8 cache's K scale */
    float v_scale;               /* the output is multiplied by: 1, or an fp8 cache's V scale */
};

/* Decode: the sequences with exactly one query token (others are left
 * alone). The context is cut into partitions of part_size tokens (a multiple
 * of 32, at most KC_MAX_PART) handled by separate blocks; with more than one
 * partition the partial results go through tmp (kc_decode_tmp_floats) and a
 * reduce kernel. out, q: [T, n_heads, head_dim] fp32; head_dim <= 256. */
#define KC_MAX_PART 512
/* A partition size that gives about two blocks per multiprocessor, so that a
 * small batch still fills the GPU. */
int kc_decode_part_size(const struct kc_attn *a, int n_sm);
size_t kc_decode_tmp_floats(const struct kc_attn *a, int part_size);
void kc_attention_decode(cudaStream_t s, float *out, const float *q, const void *k_cache, const void *v_cache,
                         enum dtype dt, const struct kc_attn *a, int part_size, float *tmp);
/* The sequences with at least min_q query tokens, any mix of prompt chunks
 * and (min_q 1) decodes: flash-attention style, K/V tiles in shared memory,
 * online softmax, causal mask. head_dim <= 256, a multiple of 4. */
void kc_attention_prefill(cudaStream_t s, float *out, const float *q, const void *k_cache, const void *v_cache,
                          enum dtype dt, const struct kc_attn *a, int min_q);
/* Whether kc_attention_prefill runs on tensor cores for this cache type and
 * head size (half and bf16 caches, head sizes 64 and 128: attention_tc.cu;
 * Q and the softmax weights are rounded to the cache type there, sm_80+). */
bool kc_prefill_on_tensor_cores(enum dtype dt, int head_dim);
/* The tensor-core kernel itself (only where kc_prefill_on_tensor_cores). */
void kc_attention_prefill_tc(cudaStream_t s, float *out, const float *q, const void *k_cache, const void *v_cache,
                             enum dtype dt, const struct kc_attn *a, int min_q);

/* Samples one token a row of logits [rows, V] into out[rows] with
 * params[rows] (device memory, as the lists' arrays), the rules of
 * kernels/sample.h; edits the logits in place (bias, penalties). Rows with
 * logprobs set fill lps[row] and use raw_pen / raw_bias (as long as the
 * lists) to keep the values they edit; all three NULL when no row asks. */
void kc_sample(cudaStream_t s, int32_t *out, float *logits, int rows, int V, const struct sample_row *params,
               struct sample_lists lists, struct sample_logprobs *lps, float *raw_pen, float *raw_bias);

/* Quantized weights (dt: Q8_0, Q4_0, Q4_K or Q6_K in ggml's block layouts,
 * or F8_ROWS; rows of K weights, K a multiple of the type's block;
 * quant.cu). */
#define KC_QGEMV_MAX_T 8
/* y[T, N] = x[T, K] W^T, W [N, K] dequantized as it is read; T <=
 * KC_QGEMV_MAX_T (decode steps: each weight is read once for all T). */
void kc_qgemv(cudaStream_t s, float *y, const float *x, const void *w, enum dtype dt, int N, int K, int T);
/* out[rows, K] (bf16) = W's rows dequantized and rounded to bf16: the
 * input of a cuBLAS GEMM for longer steps. */
void kc_dequant_bf16(cudaStream_t s, void *out, const void *w, enum dtype dt, int64_t rows, int K);
/* out[T, H] = table[ids[t]] dequantized to fp32 (kc_embed's quantized twin). */
void kc_qembed(cudaStream_t s, float *out, const void *table, enum dtype dt, const int32_t *ids, int T, int H);
/* x[T, K] -> q[T, K] e4m3 bytes and scales[T], a scale per token row
 * (quantize_row_f8_rows's rule): the activations of an FP8 GEMM. */
void kc_quant_rows_f8(cudaStream_t s, void *q, float *scales, const float *x, int T, int K);

#ifdef __cplusplus
}
#endif

#endif
