/* backend_cuda_impl.h: the CUDA backend's state, shared by its files
 * (backend_cuda.c: the op table; backend_cuda_graph.c: graphs;
 * backend_cuda_fp8.c: cuBLASLt's FP8 GEMM). Not for use outside engine/
 * and the backend's tests. */
#ifndef TESSERA_BACKEND_CUDA_IMPL_H
#define TESSERA_BACKEND_CUDA_IMPL_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "../base/err.h"
#include "backend.h"

#define CUDA_OK(call)                                                                      \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        CHECKF(e_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(e_));                \
    } while (0)
#ifdef TESSERA_EMU
#define BLAS_WORKSPACE ((size_t)1 << 12) /* the emulated cuBLAS needs none */
#else
#define BLAS_WORKSPACE ((size_t)32 << 20) /* what cuBLAS asks for on Hopper */
#endif

#define BLAS_OK(call)                                                                      \
    do {                                                                                   \
        cublasStatus_t s_ = (call);                                                        \
        CHECKF(s_ == CUBLAS_STATUS_SUCCESS, "%s: cuBLAS status %d", #call, (int)s_);       \
    } while (0)

struct backend_cuda {
    struct backend base;
    struct backend_ops ops;      /* cuda_ops, less the graph ops with --enforce-eager */
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;               /* cuBLAS's workspace (and cuBLASLt's: one stream) */
    cublasLtHandle_t lt;         /* FP8 GEMMs; NULL: none on this GPU (backend_cuda_fp8.c) */
    bool fp8_refused;            /* cuBLASLt refused one: none from then on */
    long fp8_gemms;              /* GEMMs run on it so far */
    double mem_util;
    int device, n_sm;            /* its GPU; multiprocessors: sizes split-K attention */
    void *cast;                  /* a GEMM's input rounded to the weights' type */
    size_t cast_bytes;
    const float *cast_of;        /* whose rounding cast holds; NULL once any op writes */
    int64_t cast_n;
    enum dtype cast_dt;
    void *deq;                   /* quantized weights dequantized to bf16, DEQ_CHUNK at a time */
    size_t deq_bytes;
    void *f8_act;                /* an FP8 GEMM's activations: e4m3 rows, then their scales */
    size_t f8_act_bytes;
    void *attn_tmp;              /* split-K partial results */
    size_t attn_tmp_bytes;
    void *kv_amax;               /* kc_kv_amax's two maxima (first step only: not a graph's) */
    size_t kv_amax_bytes;
    unsigned char *staging;      /* pinned host buffer for copies */
    size_t staging_cap, staging_used;
    unsigned buffers_gen;        /* bumped when a cuda_scratch buffer is reallocated */
    void *samp;                  /* the sample op's parameters and lists */
    size_t samp_bytes;
    ncclComm_t nccl;             /* tensor parallelism: the ranks' communicator; NULL: one rank */
};

static inline struct backend_cuda *cu(struct backend *b) { return (struct backend_cuda *)b; }

/* For ops that write device memory: the rounded GEMM input in c->cast may
 * no longer match its source. Consecutive GEMMs on one input (q, k, v; gate,
 * up) round it once. */
static inline struct backend_cuda *cu_write(struct backend *b)
{
    struct backend_cuda *c = cu(b);
    c->cast_of = NULL;
    return c;
}

/* *buf (of *cap bytes), grown to at least bytes, for a buffer ops use
 * inside graphs: a reallocation makes the graphs recorded on the old one
 * stale (buffers_gen). */
void *cuda_scratch(struct backend *b, void **buf, size_t *cap, size_t bytes, const char *what);

/* backend_cuda_fp8.c: y[T, N] = x[T, K] W^T for an F8_ROWS W on cuBLASLt;
 * false (nothing written) where it has no such GEMM. cuda_fp8_scales: the
 * scales of the F8_ROWS rows of hosts[0..n) (rows in all) to d, the fp32
 * vector that follows the rows on the device, where the GEMM reads them. */
bool cuda_fp8_gemm(struct backend_cuda *c, float *y, const float *x, const struct tensor *w, int T);
void cuda_fp8_scales(float *d, const struct tensor *const *hosts, int n, int64_t rows);

/* backend_cuda_graph.c: the graph ops (backend.h) */
void cuda_graph_begin(struct backend *b);
void *cuda_graph_end(struct backend *b);
bool cuda_graph_launch(struct backend *b, void *graph);
void cuda_graph_free(struct backend *b, void *graph);

#endif
