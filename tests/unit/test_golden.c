/* test_golden.c: the forward against Hugging Face transformers.
 *
 * tests/data/golden/<model>/ holds tiny random-weight models written by
 * transformers (scripts/make_golden.py) and the logits transformers computed
 * in float32 for an 80-token prompt (all positions, or the logit_rows that
 * reference.json lists). The stories260K cases hold transformers' greedy
 * continuations of the real trained model. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../engine/backend.h"
#include "../../base/err.h"
#include "../../engine/kv_cache.h"
#include "../../engine/model.h"
#include "../../engine/single.h"
#include "../../tokenizer/tokenizer.h"
#include "test_util.h"

/* Max abs logit error allowed at every position. The references are fp32
 * forwards of the same weights (BF16/F16 files are upcast exactly to fp32 by
 * transformers, as we do), so only summation order differs: errors are
 * ~1e-6 relative to logits of magnitude ~1-10. */
#define LOGIT_ATOL 1e-4f

static const char *GOLDEN[] = {"llama-gqa-f32", "llama-tied-f32", "llama-odd-f32", "llama-bf16",
                               "mistral-f16-sharded", "qwen2-bias-f32", "qwen3-qknorm-f32", "qwen3-bias-f32",
                               "llama3-vocab128k-bf16", "mistral-nemo-bf16"};

struct loaded {
    struct backend *b;
    model *m;
    kv_pool *pool;
};

static struct loaded load(const char *dir, int threads, int max_ctx)
{
    struct loaded L;
    L.b = backend_cpu_create(threads);
    struct model_params mp = {.num_kv_blocks = (max_ctx + 15) / 16 + 4, .block_size = 16,
                              .max_step_tokens = 128, .max_seqs = 1, .rank = 0, .world = 1};
    int rc = model_load(&L.m, dir, L.b, &mp);
    cr_assert_eq(rc, 0, "%s: %s", dir, err_msg());
    L.pool = kv_pool_create(mp.num_kv_blocks, 16, false);
    return L;
}

static void unload(struct loaded *L)
{
    kv_pool_destroy(L->pool);
    model_destroy(L->m);
    L->b->ops->destroy(L->b);
}

/* Logits of the whole prompt, computed in chunks of `chunk` tokens, after a
 * dummy sequence took `skew` blocks so the block table is not the identity. */
static float *forward_all(struct loaded *L, const int32_t *ids, int n, int chunk, int skew)
{
    int V = model_get_config(L->m)->vocab_size;
    float *logits = malloc((size_t)n * V * sizeof(float));
    struct kv_seq dummy = {0}, s = {0};
    cr_assert(kv_seq_reserve(L->pool, &dummy, skew * 16));
    cr_assert_eq(single_forward(L->m, L->pool, &s, 0, ids, n, chunk, true, logits), 0, "%s", err_msg());
    kv_seq_release(L->pool, &s);
    kv_seq_release(L->pool, &dummy);
    return logits;
}

/* got: [n, vocab] against the kept rows of the reference. */
static void expect_golden(const struct golden_ref *g, const float *got, const char *name, const char *how)
{
    float err;
    bool ok = golden_close(g, got, LOGIT_ATOL, name, &err);
    cr_log_info("%s (%s): max abs logit error %.3g", name, how, err);
    cr_assert(ok, "%s: %s", name, how);
}

static void check_golden(const char *name)
{
    char dir[256], err[512];
    snprintf(dir, sizeof(dir), "tests/data/golden/%s", name);
    struct golden_ref g;
    cr_assert_eq(golden_ref_load(&g, dir, err, sizeof(err)), 0, "%s", err);
    struct loaded L = load(dir, 2, 256);
    cr_assert_eq(model_get_config(L.m)->vocab_size, g.vocab);
    float *got = forward_all(&L, g.ids, g.n, 128, 0);
    expect_golden(&g, got, name, "whole prompt");
    free(got);
    /* chunked prefill over a shuffled pool gives the same logits */
    got = forward_all(&L, g.ids, g.n, 7, 3);
    expect_golden(&g, got, name, "chunks of 7");
    free(got);
    /* the scalar reference kernels too, and the AVX2 matmul where the run
     * above used the AVX-512 one */
    kcpu_cap(KCPU_REF);
    got = forward_all(&L, g.ids, g.n, 32, 1);
    kcpu_cap(KCPU_AMX);
    expect_golden(&g, got, name, "reference kernels");
    free(got);
    if (kcpu_have_avx512()) {
        kcpu_cap(KCPU_AVX2);
        got = forward_all(&L, g.ids, g.n, 5, 2);
        kcpu_cap(KCPU_AMX);
        expect_golden(&g, got, name, "AVX2 kernels");
        free(got);
    }
    unload(&L);
    golden_ref_free(&g);
}

/* The GGUF copy of a golden model (scripts/make_gguf.py --tests build/gguf,
 * which `make test-unit` runs first): the same logits as the safetensors
 * folder, bit for bit, so within the same bound of transformers'. Where the
 * copy carries llama3 RoPE as llama.cpp's rope_freqs factors, inv_freq is
 * f / factor instead of transformers' blend, an ulp or so apart. */
static void check_gguf(const char *name)
{
    char dir[256], file[256], err[512];
    snprintf(dir, sizeof(dir), "tests/data/golden/%s", name);
    snprintf(file, sizeof(file), "build/gguf/golden/%s.gguf", name);
    struct golden_ref g;
    cr_assert_eq(golden_ref_load(&g, dir, err, sizeof(err)), 0, "%s", err);
    struct loaded S = load(dir, 2, 256), G = load(file, 2, 256);
    const struct model_config *sc = model_get_config(S.m), *gc = model_get_config(G.m);
    cr_assert_eq(gc->vocab_size, sc->vocab_size);
    cr_assert_eq(gc->head_dim, sc->head_dim);
    cr_assert_eq(gc->tie_word_embeddings, sc->tie_word_embeddings);
    cr_assert(gc->qkv_bias == sc->qkv_bias && gc->o_bias == sc->o_bias && gc->qk_norm == sc->qk_norm);
    float *want = forward_all(&S, g.ids, g.n, 7, 3), *got = forward_all(&G, g.ids, g.n, 7, 3);
    expect_golden(&g, got, file, "GGUF, chunks of 7");
    size_t n = (size_t)g.n * gc->vocab_size;
    float diff = 0;
    for (size_t i = 0; i < n; i++) diff = fmaxf(diff, fabsf(got[i] - want[i]));
    cr_log_info("%s: max |GGUF - safetensors| logit %.3g", name, diff);
    if (!gc->rope_scaling.n_freq_factors) cr_assert_eq(diff, 0.0f, "%s: GGUF logits differ by %g", name, diff);
    free(want);
    free(got);
    unload(&S);
    unload(&G);
    golden_ref_free(&g);
}

Test(golden, gguf_llama_gqa_f32) { check_gguf(GOLDEN[0]); }
Test(golden, gguf_llama_tied_f32) { check_gguf(GOLDEN[1]); }
Test(golden, gguf_llama_odd_llama3_rope_freqs) { check_gguf(GOLDEN[2]); }
Test(golden, gguf_llama_bf16_linear_rope) { check_gguf(GOLDEN[3]); }
Test(golden, gguf_mistral_f16) { check_gguf(GOLDEN[4]); }
Test(golden, gguf_qwen2_qkv_bias) { check_gguf(GOLDEN[5]); }
Test(golden, gguf_qwen3_qk_norm) { check_gguf(GOLDEN[6]); }
Test(golden, gguf_qwen3_attention_bias) { check_gguf(GOLDEN[7]); }
Test(golden, gguf_llama3_vocab_128256) { check_gguf(GOLDEN[8]); }
Test(golden, gguf_mistral_nemo_head_dim) { check_gguf(GOLDEN[9]); }

Test(golden, llama_gqa_f32) { check_golden(GOLDEN[0]); }
Test(golden, llama_tied_f32) { check_golden(GOLDEN[1]); }
Test(golden, llama_odd_hidden_llama3_rope) { check_golden(GOLDEN[2]); }
Test(golden, llama_bf16_linear_rope) { check_golden(GOLDEN[3]); }
Test(golden, mistral_f16_sharded) { check_golden(GOLDEN[4]); }
Test(golden, qwen2_qkv_bias) { check_golden(GOLDEN[5]); }
Test(golden, qwen3_qk_norm_head_dim) { check_golden(GOLDEN[6]); }
Test(golden, qwen3_attention_bias) { check_golden(GOLDEN[7]); }
Test(golden, llama3_vocab_128256) { check_golden(GOLDEN[8]); }
Test(golden, mistral_nemo_head_dim) { check_golden(GOLDEN[9]); }

/* Greedy continuations of stories260K from model (a folder or a .gguf),
 * token for token. */
static void check_stories_greedy(const char *model)
{
    json_error_t je;
    json_t *g = json_load_file("tests/data/stories260K_greedy.json", 0, &je);
    cr_assert_not_null(g, "%s", je.text);
    char err[512];
    tokenizer *tok;
    cr_assert_eq(tok_load(&tok, stories260k_dir(), err, sizeof(err)), 0, "%s", err);
    struct loaded L = load(model, 2, 512);
    int V = model_get_config(L.m)->vocab_size;
    float *logits = malloc(V * sizeof(float));
    size_t ci;
    json_t *c;
    json_t *cases = json_object_get(g, "cases");
    cr_assert(json_array_size(cases) >= 3);
    json_array_foreach(cases, ci, c) {
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        json_t *jp = json_object_get(c, "prompt_ids"), *jo = json_object_get(c, "output_ids");
        int32_t ids[512];
        int n = tok_encode(tok, prompt, strlen(prompt), true, ids, 512);
        cr_assert_eq((size_t)n, json_array_size(jp), "%s: prompt length", prompt);
        for (int i = 0; i < n; i++) cr_assert_eq(ids[i], json_integer_value(json_array_get(jp, i)));
        struct kv_seq s = {0};
        cr_assert_eq(single_forward(L.m, L.pool, &s, 0, ids, n, 64, false, logits), 0);
        for (size_t k = 0; k < json_array_size(jo); k++) {
            int best = 0;
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[best]) best = v;
            cr_assert_eq(best, json_integer_value(json_array_get(jo, k)), "\"%s\": token %zu differs", prompt, k);
            int32_t next = best;
            cr_assert_eq(single_forward(L.m, L.pool, &s, n + (int)k, &next, 1, 1, false, logits), 0);
        }
        kv_seq_release(L.pool, &s);
    }
    free(logits);
    unload(&L);
    tok_free(tok);
    json_decref(g);
}

Test(golden, stories260k_greedy_matches_transformers) { check_stories_greedy(stories260k_dir()); }
/* its F32 GGUF copy, alone and in a folder with the tokenizer files */
Test(golden, stories260k_gguf_greedy_matches_transformers)
{
    check_stories_greedy("build/gguf/stories260K/stories260K.gguf");
    check_stories_greedy("build/gguf/stories260K");
}
