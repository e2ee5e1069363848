/* backend_cuda_fp8.c: --quantization fp8's GEMM for steps longer than the
 * GEMV's on cuBLASLt. The step's activations are quantized to e4m3 a token
 * row at a time (kc_quant_rows_f8: a scale per token), multiplied by the
 * e4m3 weights on the tensor cores with fp32 accumulation, and each
 * product y[t, n] scaled by its weight row's and token row's scales
 * (cuBLASLt's "outer vector" scaling, cuBLAS 12.9+), written as fp32.
 *
 * An F8_ROWS weight on the device is its rows (a 16-byte head holding the
 * scale, then K e4m3 bytes; dtype.h) followed by the rows' scales once
 * more as one fp32 vector (cuda_upload_stacked). In cuBLAS's column-major
 * terms the weight is A, K x N with leading dimension K + 16 from the
 * first row's bytes (16-byte aligned, as FP8 GEMMs want), transposed; the
 * quantized activations are B, K x T; y^T is D, N x T.
 *
 * A GPU before sm_89 has no FP8 GEMM (c->lt NULL); Ada's cuBLASLt takes
 * one scale per tensor only, so it refuses the first call, as would any
 * other that cannot (c->fp8_refused, one line on stderr). There long steps
 * dequantize the weights to bf16 as GGUF types do (backend_cuda.c). */
#include <stdio.h>
#include <string.h>

#include "../kernels/cuda/kernels.h"
#include "backend_cuda_impl.h"

void cuda_fp8_scales(float *d, const struct tensor *const *hosts, int n, int64_t rows)
{
    float *s = xmalloc(sizeof(float) * (size_t)rows), *p = s;
    for (int i = 0; i < n; i++) {
        size_t row_bytes = dtype_row_bytes(DTYPE_F8_ROWS, hosts[i]->cols);
        for (int64_t r = 0; r < hosts[i]->rows; r++) memcpy(p++, (const char *)hosts[i]->data + r * row_bytes, 4);
    }
    CUDA_OK(cudaMemcpy(d, s, sizeof(float) * (size_t)rows, cudaMemcpyHostToDevice));
    free(s);
}

/* One GEMM's matmul descriptor, layouts and the heuristic's choice. */
struct lt_call {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulHeuristicResult_t algo;
};

static void lt_release(struct lt_call *l)
{
    if (l->op) cublasLtMatmulDescDestroy(l->op);
    if (l->a) cublasLtMatrixLayoutDestroy(l->a);
    if (l->b) cublasLtMatrixLayoutDestroy(l->b);
    if (l->d) cublasLtMatrixLayoutDestroy(l->d);
}

/* Fills l for y = x W^T with the scale vectors given; NOT_SUPPORTED when
 * the heuristic finds no algorithm (lt_release frees l either way). */
static cublasStatus_t lt_prepare(struct backend_cuda *c, struct lt_call *l, const float *w_scales,
                                 const float *x_scales, int N, int K, int T)
{
    const int32_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N, outer = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    const uint64_t ws = BLAS_WORKSPACE;
    cublasLtMatmulPreference_t pref = NULL;
    int found = 0;
    cublasStatus_t s = cublasLtMatmulDescCreate(&l->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
#define LT_SET(call) (s = s == CUBLAS_STATUS_SUCCESS ? (call) : s)
    LT_SET(cublasLtMatmulDescSetAttribute(l->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    LT_SET(cublasLtMatmulDescSetAttribute(l->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    LT_SET(cublasLtMatmulDescSetAttribute(l->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &outer, sizeof(outer)));
    LT_SET(cublasLtMatmulDescSetAttribute(l->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &outer, sizeof(outer)));
    LT_SET(cublasLtMatmulDescSetAttribute(l->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scales, sizeof(w_scales)));
    LT_SET(cublasLtMatmulDescSetAttribute(l->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scales, sizeof(x_scales)));
    LT_SET(cublasLtMatrixLayoutCreate(&l->a, CUDA_R_8F_E4M3, K, N, K + F8_ROWS_HEAD));
    LT_SET(cublasLtMatrixLayoutCreate(&l->b, CUDA_R_8F_E4M3, K, T, K));
    LT_SET(cublasLtMatrixLayoutCreate(&l->d, CUDA_R_32F, N, T, N));
    LT_SET(cublasLtMatmulPreferenceCreate(&pref));
    LT_SET(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    LT_SET(cublasLtMatmulAlgoGetHeuristic(c->lt, l->op, l->a, l->b, l->d, l->d, pref, 1, &l->algo, &found));
#undef LT_SET
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    return s == CUBLAS_STATUS_SUCCESS && !found ? CUBLAS_STATUS_NOT_SUPPORTED : s;
}

/* cuBLASLt refused: no FP8 GEMM on this backend from now on (the handle
 * stays: this may run while a graph is captured). */
static bool lt_refused(struct backend_cuda *c, cublasStatus_t s)
{
    fprintf(stderr, "tessera: cuBLASLt has no FP8 GEMM with per-channel scales on this GPU (status %d); fp8 "
            "weights are dequantized to bf16 for steps over %d tokens\n", (int)s, KC_QGEMV_MAX_T);
    c->fp8_refused = true;
    return false;
}

bool cuda_fp8_gemm(struct backend_cuda *c, float *y, const float *x, const struct tensor *w, int T)
{
    int N = (int)w->rows, K = (int)w->cols;
    if (!c->lt || c->fp8_refused || N % 16 || K % 16) return false; /* the FP8 GEMM's shapes */
    const unsigned char *wb = w->data;
    size_t act = ((size_t)T * K + 15) & ~(size_t)15;
    unsigned char *q = cuda_scratch(&c->base, &c->f8_act, &c->f8_act_bytes, act + sizeof(float) * T,
                                    "FP8 activations");
    const float *w_scales = (const float *)(wb + (size_t)N * dtype_row_bytes(DTYPE_F8_ROWS, K));
    float *x_scales = (float *)(q + act);
    struct lt_call l = {0};
    cublasStatus_t s = lt_prepare(c, &l, w_scales, x_scales, N, K, T);
    if (s == CUBLAS_STATUS_SUCCESS) {
        const float one = 1.0f, zero = 0.0f;
        kc_quant_rows_f8(c->stream, q, x_scales, x, T, K);
        s = cublasLtMatmul(c->lt, l.op, &one, wb + F8_ROWS_HEAD, l.a, q, l.b, &zero, y, l.d, y, l.d, &l.algo.algo,
                           c->blas_ws, BLAS_WORKSPACE, c->stream);
    }
    lt_release(&l);
    if (s != CUBLAS_STATUS_SUCCESS) return lt_refused(c, s);
    c->fp8_gemms++;
    return true;
}
