/* cublas.c: the cuBLAS calls Tessera makes, as a reference GEMM on the host.
 * Column-major like cuBLAS; products summed in fp32 in k order. A GEMM is
 * stream work (emu.h): run at once, or recorded while its stream captures. */
#include <cublas_v2.h>
#include <stdint.h>
#include <stdlib.h>

#include "../dtype.h"
#include "emu.h"

struct cublasContext {
    cudaStream_t stream;
};

cublasStatus_t cublasCreate_v2(cublasHandle_t *h)
{
    *h = calloc(1, sizeof(**h));
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t h)
{
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *workspace, size_t bytes)
{
    (void)h, (void)workspace, (void)bytes;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
    (void)h, (void)mode;
    return CUBLAS_STATUS_SUCCESS;
}

bool emu_blas_dtype(cudaDataType t, enum dtype *out)
{
    switch (t) {
    case CUDA_R_32F: *out = DTYPE_F32; return true;
    case CUDA_R_16F: *out = DTYPE_F16; return true;
    case CUDA_R_16BF: *out = DTYPE_BF16; return true;
    default: return false;
    }
}

struct gemm {
    cublasOperation_t ta, tb;
    int m, n, k, lda, ldb, ldc;
    float alpha, beta;            /* read at the call, as cuBLAS's host pointer mode does */
    const void *A, *B;
    void *C;
    enum dtype a_t, b_t, c_t;
};

static void run_gemm(void *arg)
{
    const struct gemm *g = arg;
    for (int j = 0; j < g->n; j++) {
        for (int i = 0; i < g->m; i++) {
            float acc = 0.0f;
            for (int l = 0; l < g->k; l++) {
                size_t ai = g->ta == CUBLAS_OP_N ? i + (size_t)l * g->lda : l + (size_t)i * g->lda;
                size_t bi = g->tb == CUBLAS_OP_N ? l + (size_t)j * g->ldb : j + (size_t)l * g->ldb;
                acc += dtype_get(g->A, g->a_t, ai) * dtype_get(g->B, g->b_t, bi);
            }
            size_t ci = i + (size_t)j * g->ldc;
            float c = g->alpha * acc;
            if (g->beta != 0.0f) c += g->beta * dtype_get(g->C, g->c_t, ci);
            dtype_set(g->C, g->c_t, ci, c);
        }
    }
}

/* C = alpha op(A) op(B) + beta C with alpha, beta fp32 host scalars. */
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                            cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)algo;
    struct gemm g = {ta, tb, m, n, k, lda, ldb, ldc, *(const float *)alpha, *(const float *)beta, A, B, C,
                     DTYPE_F32, DTYPE_F32, DTYPE_F32};
    if (!emu_blas_dtype(at, &g.a_t) || !emu_blas_dtype(bt, &g.b_t) || !emu_blas_dtype(ct, &g.c_t) ||
        (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC) ||
        (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    emu_stream_work(h->stream, run_gemm, &g, sizeof(g), NULL, NULL);
    return CUBLAS_STATUS_SUCCESS;
}
