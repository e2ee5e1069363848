/* weights.h: Hugging Face tensor names -> per-layer weights of one
 * tensor-parallel rank.
 *
 * Megatron sharding over `world` ranks: q/k/v and gate/up keep the rows
 * (output features) of this rank's heads or intermediate slice; o_proj and
 * down_proj keep the columns (input features) and the caller all-reduces
 * their output. KV heads are replicated when there are fewer than ranks. The
 * embedding, the final norm and the LM head are replicated on every rank.
 * Row slices point into the safetensors mapping (no copy); column slices are
 * gathered into owned buffers. With world = 1 nothing is copied except the
 * 1-D weights (norms, biases), converted to fp32; biases of q/k/v are cut
 * by rows exactly as their weights, o_proj's bias is replicated. */
#ifndef TESSERA_WEIGHTS_H
#define TESSERA_WEIGHTS_H

#include "model_config.h"
#include "safetensors.h"

/* A 2-D weight [rows, cols] stored as dtype: row-major when block_cols is 0.
 * Otherwise (a CPU backend layout, see backend_cpu.c) its columns are cut into
 * blocks of block_cols (the last one narrower) stored one after another, each
 * block a row-major [rows, its width] matrix. */
struct tensor {
    enum dtype dtype;
    int64_t rows, cols;
    const void *data;
    int64_t block_cols;
    const void *packed;  /* CPU: a quantized weight in the fast kernels' layout for the matmul
                          * (kernels/cpu/kernels.h qpack); data is then the rows for embedding
                          * lookups, or NULL; NULL: none */
};

struct layer_weights {
    float *attn_norm, *mlp_norm;       /* [hidden] */
    float *bq, *bk, *bv;               /* [local heads * hd] rows as wq/wk/wv's; NULL: no bias */
    float *bo;                         /* [hidden], replicated; NULL: no bias */
    float *q_norm, *k_norm;            /* [hd], replicated; NULL: no per-head norm */
    struct tensor wq, wk, wv;          /* [local heads * hd, hidden] */
    struct tensor wo;                  /* [hidden, local heads * hd] */
    struct tensor w_gate, w_up;        /* [local inter, hidden] */
    struct tensor w_down;              /* [hidden, local inter] */
    /* a backend's stacked copies (backend.h, upload_stacked): wq|wk|wv and
     * w_gate|w_up rows; data NULL: multiplied apart (the host's always) */
    struct tensor wqkv, w_gate_up;
};

struct weights {
    int rank, world;
    int n_heads, n_kv_heads, inter;    /* this rank's share */
    struct tensor embed;               /* [vocab, hidden] */
    struct tensor lm_head;             /* [vocab, hidden]; = embed when tied */
    float *final_norm;                 /* [hidden] */
    struct layer_weights *layers;
    int n_layers;
    void **owned;                      /* buffers to free */
    int n_owned;
};

/* Returns 0 or a negative ERR_* with err_msg() naming the tensor, its file
 * and the problem (missing, wrong shape, unsupported dtype, not divisible). */
int weights_load(struct weights *w, const struct model_config *c, const safetensors *st,
                 int rank, int world);
void weights_free(struct weights *w);

/* --quantization: every F32/F16/BF16 matmul weight whose rows are whole
 * blocks of 32 becomes `to` (DTYPE_Q8_0, DTYPE_Q4_0 or DTYPE_F8_ROWS) in an
 * owned buffer, and the mapped pages of the original go back to the kernel.
 * The LM head becomes Q8_0 with Q8_0 and Q4_0 (llama.cpp too keeps the
 * output layer at a higher precision than Q4_0) and stays as stored with
 * fp8 (as vLLM's); the embedding table, and an LM head tied to it, stay as
 * stored: a token reads one row of it. */
void weights_quantize(struct weights *w, enum dtype to, safetensors *st);

#endif
