/* backend.h: the op table every backend implements.
 *
 * model.c is written once against these ops. A backend owns its memory:
 * buffers come from alloc() and may live on a device; model.c never reads or
 * writes their contents except through to_device()/to_host(). All activations
 * are fp32; weights are struct tensor in F32/F16/BF16 or in GGUF's
 * quantized blocks (Q8_0, Q4_0, Q4_K, Q6_K). Shapes are noted as
 * [rows, cols] with T = tokens in the step. */
#ifndef TESSERA_BACKEND_H
#define TESSERA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels/cpu/kernels.h"
#include "weights.h"

struct backend;

/* What a weight is read for: rows looked up by token id (the embedding),
 * the w of a matmul (any layout the backend's matmul reads), or both (an
 * embedding tied to the LM head). */
enum weight_use { WEIGHT_ROWS, WEIGHT_MATMUL, WEIGHT_BOTH };

struct backend_ops {
    const char *name;
    void *(*alloc)(struct backend *b, size_t bytes);
    void (*free)(struct backend *b, void *p);
    void (*to_device)(struct backend *b, void *dst, const void *src, size_t bytes);
    void (*to_host)(struct backend *b, void *dst, const void *src, size_t bytes);
    /* Makes a host weight usable by the backend, for `use`. dev->data is
     * either host->data (a CPU view) or the backend's memory, which the
     * caller gives back with free() above; so is dev->packed unless NULL. */
    void (*upload_weight)(struct backend *b, const struct tensor *host, struct tensor *dev,
                          enum weight_use use);

    /* out[T, H] = table[ids[t]] */
    void (*embed)(struct backend *b, float *out, const struct tensor *table, const int32_t *ids, int T);
    /* If residual: x += residual first (in place). Then out = rmsnorm(x) * w.
     * x, residual, out: [T, H]; w: [H]. */
    void (*rmsnorm)(struct backend *b, float *out, float *x, const float *residual,
                    const float *w, int T, int H, float eps);
    /* y[T, w->rows] = x[T, w->cols] w^T */
    void (*matmul)(struct backend *b, float *y, const float *x, const struct tensor *w, int T);
    /* y[t, i] += bias[i]; y: [T, n], bias: [n] */
    void (*add_bias)(struct backend *b, float *y, const float *bias, int T, int n);
    /* In place on x: [T, n_heads, hd]; cos, sin: [T, hd/2]. */
    void (*rope)(struct backend *b, float *x, int T, int n_heads, int hd, const float *cos,
                 const float *sin);
    /* k, v: [T, n_kv_heads * hd] into their paged slots. */
    void (*kv_write)(struct backend *b, const struct kv_layer *kv, const float *k, const float *v,
                     const int64_t *slots, int T);

    /* Stacked projections (all three NULL: not offered; the model then
     * multiplies q, k, v and gate, up apart). upload_stacked: the rows of
     * hosts[0..n) (one dtype, one width) one under the other as one matmul
     * weight, so that q/k/v (gate/up) take one GEMM. rope_kv_write: from
     * qkv [T, (n_heads + 2 kv->n_kv_heads) hd], rows of q's heads, k's and
     * v's: q [T, n_heads hd] = rope(q part), and rope(k part) and the v
     * part into their slots as kv_write. silu_mul_stacked: out [T, inter] =
     * silu(gate) * up from gate_up [T, 2 inter]. */
    void (*upload_stacked)(struct backend *b, const struct tensor *const *hosts, int n, struct tensor *dev);
    void (*rope_kv_write)(struct backend *b, float *q, const float *qkv, int T, int n_heads, const float *cos,
                          const float *sin, const struct kv_layer *kv, const int64_t *slots);
    void (*silu_mul_stacked)(struct backend *b, float *out, const float *gate_up, int T, int inter);
    /* out, q: [T, n_heads * hd]; causal over each token's own sequence. */
    void (*attention)(struct backend *b, float *out, const float *q, const struct kv_layer *kv,
                      const struct attn_batch *ab);
    /* out[n] = silu(gate[n]) * up[n] */
    void (*silu_mul)(struct backend *b, float *out, const float *gate, const float *up, int64_t n);
    /* out[r] = argmax_ref(row r of x[rows, n]): out is backend memory */
    void (*argmax)(struct backend *b, int32_t *out, const float *x, int rows, int n);
    /* out[r] = a token drawn from row r of logits [rows, n] by the rules of
     * kernels/sample.h with sb->rows[r] (logits edited in place; out
     * backend memory), and sb->logprobs[r] filled for a row that asks.
     * NULL: not offered (the engine samples on the host). */
    void (*sample)(struct backend *b, int32_t *out, float *logits, int rows, int n, const struct sample_batch *sb);
    /* Sum over tensor-parallel ranks, in place; a no-op with one rank. */
    void (*all_reduce)(struct backend *b, float *buf, int64_t n);
    /* Bytes the KV cache may take by default once weights of weight_bytes
     * are loaded; NULL: a quarter of the host's available memory. */
    int64_t (*kv_budget)(struct backend *b, int64_t weight_bytes);
    /* Graphs (all four NULL: not offered, or turned off): between
     * graph_begin and graph_end the ops are recorded, not run (no to_host,
     * to_device, alloc or free in between); graph_end returns the
     * recording, graph_launch replays it on the same buffers, or returns
     * false when a buffer the backend uses inside ops was reallocated since
     * (record it again); graph_free frees one. */
    void (*graph_begin)(struct backend *b);
    void *(*graph_end)(struct backend *b);
    bool (*graph_launch)(struct backend *b, void *graph);
    void (*graph_free)(struct backend *b, void *graph);
    void (*destroy)(struct backend *b);
};

struct backend {
    const struct backend_ops *ops;
    enum dtype kv_dtype;     /* the KV cache's element type */
    enum dtype weight_dtype; /* what float weights are stored as (CPU: as loaded; F32 nominally) */
};

/* The CPU backend with n_threads compute threads (including the caller);
 * n_threads < 1: one per online core. */
struct backend *backend_cpu_create(int n_threads);

/* The CUDA backend on GPU `device`, float weights stored as dt (F32, F16,
 * BF16) and the KV cache as kv_dt (the same, or F8_E4M3), the KV cache
 * sized by default to gpu_mem_util of the device's memory; decode steps
 * replayed as CUDA graphs unless enforce_eager. NULL with err_msg() set
 * when there is no such device. Only in builds with CUDA (make CUDA=1, or
 * the emulated make emu). */
struct backend *backend_cuda_create(int device, enum dtype dt, enum dtype kv_dt, double gpu_mem_util,
                                    bool enforce_eager);

#endif
