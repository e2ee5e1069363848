/* test_golden_cuda.c: the golden models (tests/data/golden, see
 * tests/unit/test_golden.c) through the CUDA backend in float32, against
 * transformers' logits: the prompt in one step (prefill kernel), in chunks
 * of 7 over a shuffled pool, and its last tokens one at a time (decode
 * kernel). Emulated under `make test`; natively with `make test-cuda`. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/backend.h"
#include "../../base/err.h"
#include "../../engine/kv_cache.h"
#include "../../engine/model.h"
#include "../../engine/single.h"
#include "../../kernels/cuda/kernels.h"
#include "../unit/test_util.h"

#define LOGIT_ATOL 1e-4f

/* The logits of every position of g's prompt: the first n_chunked tokens in
 * steps of `chunk`, the rest one token a step. */
static float *forward(model *m, kv_pool *pool, const struct golden_ref *g, int chunk, int n_chunked, int skew)
{
    float *logits = malloc((size_t)g->n * g->vocab * sizeof(float));
    struct kv_seq dummy = {0}, s = {0};
    cr_assert(kv_seq_reserve(pool, &dummy, skew * 16));
    cr_assert_eq(single_forward(m, pool, &s, 0, g->ids, n_chunked, chunk, true, logits), 0, "%s", err_msg());
    for (int t = n_chunked; t < g->n; t++)
        cr_assert_eq(single_forward(m, pool, &s, t, g->ids + t, 1, 1, true, logits + (size_t)t * g->vocab), 0,
                     "%s", err_msg());
    kv_seq_release(pool, &s);
    kv_seq_release(pool, &dummy);
    return logits;
}

static void expect_close(const struct golden_ref *g, const float *got, const char *name, const char *how)
{
    float err;
    bool ok = golden_close(g, got, LOGIT_ATOL, name, &err);
    cr_log_info("%s (cuda, %s): max abs logit error %.3g", name, how, err);
    cr_assert(ok, "%s: %s", name, how);
}

static void check_golden_cuda(const char *name)
{
    char dir[256], err[512];
    snprintf(dir, sizeof(dir), "tests/data/golden/%s", name);
    struct golden_ref g;
    cr_assert_eq(golden_ref_load(&g, dir, err, sizeof(err)), 0, "%s", err);
    struct backend *b = backend_cuda_create(0, DTYPE_F32, DTYPE_F32, 0.9, false);
    cr_assert(b, "%s", err_msg());
    struct model_params mp = {.num_kv_blocks = 16, .block_size = 16, .max_step_tokens = 128, .max_seqs = 1,
                              .rank = 0, .world = 1};
    model *m;
    cr_assert_eq(model_load(&m, dir, b, &mp), 0, "%s: %s", dir, err_msg());
    kv_pool *pool = kv_pool_create(mp.num_kv_blocks, 16, false);
    float *got = forward(m, pool, &g, 128, g.n, 0);
    expect_close(&g, got, name, "whole prompt");
    free(got);
    got = forward(m, pool, &g, 7, g.n - 6, 3);
    expect_close(&g, got, name, "chunks of 7, then 6 decodes");
    free(got);
    kv_pool_destroy(pool);
    model_destroy(m);
    b->ops->destroy(b);
    golden_ref_free(&g);
}

Test(golden_cuda, qwen2_qkv_bias) { check_golden_cuda("qwen2-bias-f32"); }
Test(golden_cuda, qwen3_qk_norm_head_dim) { check_golden_cuda("qwen3-qknorm-f32"); }
Test(golden_cuda, qwen3_attention_bias) { check_golden_cuda("qwen3-bias-f32"); }
Test(golden_cuda, llama3_vocab_128256) { check_golden_cuda("llama3-vocab128k-bf16"); }
Test(golden_cuda, mistral_nemo_head_dim) { check_golden_cuda("mistral-nemo-bf16"); }
Test(golden_cuda, llama_odd_hidden_llama3_rope) { check_golden_cuda("llama-odd-f32"); }
Test(golden_cuda, mistral_f16_sharded) { check_golden_cuda("mistral-f16-sharded"); }

/* A quantized GGUF (build/gguf/quant, scripts/make_quant_gguf.py) on CUDA
 * against its F32 twin (the same weights dequantized by the gguf package).
 * Steps of up to KC_QGEMV_MAX_T tokens use the dequantizing GEMV, whose
 * weights are the twin's exactly: only fp32 summation order differs (bound
 * 1e-4 of the logits' RMS). Longer steps round weights and activations to
 * bf16 (2^-9 relative each) for cuBLAS: bound 2% of the RMS, 90% of the
 * greedy choices the same. */
#define QGEMV_REL 1e-4
#define QBF16_REL 0.02
static float *logits_of(const char *file, const int32_t *ids, int n, int chunk, int *vocab)
{
    struct backend *b = backend_cuda_create(0, DTYPE_F32, DTYPE_F32, 0.9, false);
    cr_assert(b, "%s", err_msg());
    struct model_params mp = {.num_kv_blocks = 4, .block_size = 16, .max_step_tokens = 32, .max_seqs = 1,
                              .rank = 0, .world = 1};
    model *m;
    cr_assert_eq(model_load(&m, file, b, &mp), 0, "%s: %s", file, err_msg());
    *vocab = model_get_config(m)->vocab_size;
    kv_pool *pool = kv_pool_create(mp.num_kv_blocks, 16, false);
    float *logits = malloc((size_t)n * *vocab * sizeof(float));
    struct kv_seq s = {0};
    cr_assert_eq(single_forward(m, pool, &s, 0, ids, n, chunk, true, logits), 0, "%s", err_msg());
    kv_seq_release(pool, &s);
    kv_pool_destroy(pool);
    model_destroy(m);
    b->ops->destroy(b);
    return logits;
}

Test(golden_cuda, quantized_gguf_against_f32_twin)
{
    const int32_t ids[20] = {1, 17, 300, 42, 5, 99, 250, 3, 77, 128, 64, 200, 9, 31, 310, 2, 88, 150, 6, 12};
    const char *const schemes[] = {"Q8_0", "Q4_0", "Q4_K", "Q6_K", "Q4_K_M"};
    for (int i = 0; i < 5; i++) {
        char q[128], ref[128], what[64];
        snprintf(q, sizeof(q), "build/gguf/quant/%s.gguf", schemes[i]);
        snprintf(ref, sizeof(ref), "build/gguf/quant/%s-ref.gguf", schemes[i]);
        int vq, vr;
        float *want = logits_of(ref, ids, 20, 20, &vr), *gemv = logits_of(q, ids, 20, KC_QGEMV_MAX_T, &vq),
              *bf16 = logits_of(q, ids, 20, 20, &vq);
        cr_assert_eq(vq, vr);
        snprintf(what, sizeof(what), "%s, GEMV steps", schemes[i]);
        cr_expect(logits_near(gemv, want, 20, vq, QGEMV_REL, 100, what), "%s", what);
        snprintf(what, sizeof(what), "%s, bf16 GEMM", schemes[i]);
        cr_expect(logits_near(bf16, want, 20, vq, QBF16_REL, 90, what), "%s", what);
        free(want), free(gemv), free(bf16);
    }
}
