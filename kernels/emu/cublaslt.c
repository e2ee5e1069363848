/* cublaslt.c: the cuBLASLt calls Tessera makes (engine/backend_cuda_fp8.c),
 * an FP8 GEMM with a scale per row of op(A) and per column of B, as a
 * reference on the host:
 *     D[i, j] = alpha * scale_A[i] * scale_B[j] * sum_l op(A)[i, l] B[l, j]
 * (products of the e4m3 values summed in fp32 in l order), stored as D's type.
 *
 * What a real cuBLASLt refuses, this one refuses too, so that a call the
 * emulated tests pass is one a GPU accepts (cuBLAS docs, "FP8 requirements"
 * and "outer vector scaling"): A and B e4m3; A transposed and B not (the
 * "TN" format); compute type 32F and scale type 32F; A and B 16-byte
 * aligned, with leading dimensions a multiple of 16 bytes; scale modes
 * OUTER_VEC_32F for both A and B, or scalar for both; D (and C, which must
 * be D) in F32, F16 or BF16. Anything else is NOT_SUPPORTED at the
 * heuristic and INVALID_VALUE at the matmul, as cuBLASLt reports it. The
 * GEMM is stream work (emu.h): run at once, or recorded while its stream
 * captures. */
#include <cublasLt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../dtype.h"
#include "emu.h"

struct cublasLtContext {
    int unused;
};

struct lt_desc {
    cublasComputeType_t compute;
    cudaDataType_t scale_type;
    int32_t ta, tb;
    int32_t a_mode, b_mode;          /* cublasLtMatmulMatrixScale_t */
    const float *a_scale, *b_scale;  /* device pointers; NULL: 1 */
};

struct lt_layout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};

/* The handles are pointers to the header's opaque structs; ours are our own. */
#define DESC(d) ((struct lt_desc *)(void *)(d))
#define LAYOUT(l) ((struct lt_layout *)(void *)(l))

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    *h = calloc(1, sizeof(**h));
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale)
{
    struct lt_desc *x = calloc(1, sizeof(*x));
    if (!x) return CUBLAS_STATUS_ALLOC_FAILED;
    x->compute = compute, x->scale_type = scale, x->ta = CUBLAS_OP_N, x->tb = CUBLAS_OP_N;
    *d = (cublasLtMatmulDesc_t)(void *)x;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
    free(DESC(d));
    return CUBLAS_STATUS_SUCCESS;
}

/* The attributes Tessera sets; others are not emulated (NOT_SUPPORTED, so
 * that the backend cannot come to rely on one silently). */
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t bytes)
{
    struct lt_desc *x = DESC(d);
    void *field;
    size_t want;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: field = &x->ta, want = sizeof(x->ta); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: field = &x->tb, want = sizeof(x->tb); break;
    case CUBLASLT_MATMUL_DESC_A_SCALE_MODE: field = &x->a_mode, want = sizeof(x->a_mode); break;
    case CUBLASLT_MATMUL_DESC_B_SCALE_MODE: field = &x->b_mode, want = sizeof(x->b_mode); break;
    case CUBLASLT_MATMUL_DESC_A_SCALE_POINTER: field = &x->a_scale, want = sizeof(x->a_scale); break;
    case CUBLASLT_MATMUL_DESC_B_SCALE_POINTER: field = &x->b_scale, want = sizeof(x->b_scale); break;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (!buf || bytes != want) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(field, buf, bytes);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld)
{
    struct lt_layout *x = malloc(sizeof(*x));
    if (!x) return CUBLAS_STATUS_ALLOC_FAILED;
    *x = (struct lt_layout){type, rows, cols, ld};
    *l = (cublasLtMatrixLayout_t)(void *)x;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
    free(LAYOUT(l));
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
    *p = calloc(1, sizeof(**p));
    return *p ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
    free(p);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t bytes)
{
    (void)p;
    if (attr != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) return CUBLAS_STATUS_NOT_SUPPORTED;
    return buf && bytes == sizeof(uint64_t) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

/* A layout's columns start 16-byte aligned (its pointer too, checked at the call). */
static bool aligned_ld(const struct lt_layout *l, size_t elem)
{
    return l->ld >= (int64_t)l->rows && ((size_t)l->ld * elem) % 16 == 0;
}

/* The FP8 GEMM cuBLASLt runs: the rules above. m, n, k from the layouts. */
static bool supported(const struct lt_desc *d, const struct lt_layout *a, const struct lt_layout *b,
                      const struct lt_layout *c, const struct lt_layout *dl, enum dtype *d_type)
{
    bool outer = d->a_mode == CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F &&
                 d->b_mode == CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    bool scalar = d->a_mode == CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F &&
                  d->b_mode == CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
    return d->compute == CUBLAS_COMPUTE_32F && d->scale_type == CUDA_R_32F && (outer || scalar) &&
           d->ta == CUBLAS_OP_T && d->tb == CUBLAS_OP_N && a->type == CUDA_R_8F_E4M3 && b->type == CUDA_R_8F_E4M3 &&
           aligned_ld(a, 1) && aligned_ld(b, 1) && a->rows == b->rows && emu_blas_dtype(dl->type, d_type) &&
           c->type == dl->type && c->rows == dl->rows && c->cols == dl->cols && c->ld == dl->ld &&
           dl->rows == a->cols && dl->cols == b->cols && dl->ld >= (int64_t)dl->rows;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t pref,
                                              int requested, cublasLtMatmulHeuristicResult_t results[], int *returned)
{
    (void)h, (void)pref;
    enum dtype dt;
    *returned = 0;
    if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
    if (!supported(DESC(d), LAYOUT(a), LAYOUT(b), LAYOUT(c), LAYOUT(dl), &dt)) return CUBLAS_STATUS_NOT_SUPPORTED;
    memset(&results[0], 0, sizeof(results[0]));
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

struct lt_gemm {
    int m, n, k;
    int64_t lda, ldb, ldd;
    float alpha;                     /* read at the call: host pointer mode */
    const uint8_t *A, *B;
    const float *sa, *sb;            /* per row of op(A) and column of B; or one each; NULL: 1 */
    bool outer;
    void *D;
    enum dtype d_type;
};

static void run_lt_gemm(void *arg)
{
    const struct lt_gemm *g = arg;
    for (int j = 0; j < g->n; j++)
        for (int i = 0; i < g->m; i++) {
            float acc = 0.0f;
            for (int l = 0; l < g->k; l++) /* op(A)[i, l] = A[l, i]: column i of A */
                acc += f8e4m3_to_f32(g->A[l + (size_t)i * g->lda]) * f8e4m3_to_f32(g->B[l + (size_t)j * g->ldb]);
            float sa = g->sa ? g->sa[g->outer ? i : 0] : 1.0f, sb = g->sb ? g->sb[g->outer ? j : 0] : 1.0f;
            dtype_set(g->D, g->d_type, i + (size_t)j * g->ldd, g->alpha * sa * sb * acc);
        }
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a, const void *B, cublasLtMatrixLayout_t b, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t dl,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes, cudaStream_t stream)
{
    (void)h, (void)algo, (void)ws, (void)ws_bytes;
    const struct lt_desc *x = DESC(d);
    const struct lt_layout *la = LAYOUT(a), *lb = LAYOUT(b), *ld = LAYOUT(dl);
    enum dtype dt;
    if (!supported(x, la, lb, LAYOUT(c), ld, &dt) || *(const float *)beta != 0.0f || C != D ||
        (uintptr_t)A % 16 || (uintptr_t)B % 16)
        return CUBLAS_STATUS_INVALID_VALUE;
    struct lt_gemm g = {(int)ld->rows, (int)ld->cols, (int)la->rows, la->ld, lb->ld, ld->ld, *(const float *)alpha,
                        A, B, x->a_scale, x->b_scale,
                        x->a_mode == CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F, D, dt};
    emu_stream_work(stream, run_lt_gemm, &g, sizeof(g), NULL, NULL);
    return CUBLAS_STATUS_SUCCESS;
}
