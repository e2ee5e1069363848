/* cublas.c: the cuBLAS calls Tessera makes, as a reference GEMM on the host.
 * Column-major like cuBLAS; products summed in fp32 in k order. */
#include <cublas_v2.h>
#include <stdint.h>
#include <stdlib.h>

#include "../dtype.h"

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

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
    (void)h, (void)mode;
    return CUBLAS_STATUS_SUCCESS;
}

static int to_dtype(cudaDataType t, enum dtype *out)
{
    switch (t) {
    case CUDA_R_32F: *out = DTYPE_F32; return 1;
    case CUDA_R_16F: *out = DTYPE_F16; return 1;
    case CUDA_R_16BF: *out = DTYPE_BF16; return 1;
    default: return 0;
    }
}

/* C = alpha op(A) op(B) + beta C with alpha, beta fp32 host scalars. */
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                            cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)h, (void)algo;
    enum dtype a_t, b_t, c_t;
    if (!to_dtype(at, &a_t) || !to_dtype(bt, &b_t) || !to_dtype(ct, &c_t) ||
        (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC) ||
        (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    float al = *(const float *)alpha, be = *(const float *)beta;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int l = 0; l < k; l++) {
                size_t ai = ta == CUBLAS_OP_N ? i + (size_t)l * lda : l + (size_t)i * lda;
                size_t bi = tb == CUBLAS_OP_N ? l + (size_t)j * ldb : j + (size_t)l * ldb;
                acc += dtype_get(A, a_t, ai) * dtype_get(B, b_t, bi);
            }
            size_t ci = i + (size_t)j * ldc;
            float c = al * acc;
            if (be != 0.0f) c += be * dtype_get(C, c_t, ci);
            dtype_set(C, c_t, ci, c);
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}
