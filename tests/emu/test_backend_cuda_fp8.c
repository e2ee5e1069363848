/* test_backend_cuda_fp8.c: --quantization fp8's GEMM on cuBLASLt
 * (engine/backend_cuda_fp8.c; under `make test` the emulated cuBLASLt,
 * which refuses what a real one refuses: kernels/emu/cublaslt.c).
 *   The backend's matmul on an F8_ROWS weight, for steps longer than the
 *   GEMV's, equals to 1e-5 of sum |w x| the products of the reference's
 *   dequantized weights with the token rows quantized as
 *   quantize_row_f8_rows does (a scale per token), run eagerly and replayed
 *   from a graph, with the GEMM counted on cuBLASLt.
 *   A weight whose rows cuBLASLt cannot take (N not a multiple of 16) goes
 *   the bf16 way instead: to 1e-2 of sum |w x| of the fp32 products (bf16
 *   rounds x), no cuBLASLt GEMM counted. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "../../engine/backend_cuda_impl.h"
#include "../../kernels/quant.h"
#include "../unit/test_util.h"

struct case_ {
    struct backend *b;
    int N, K, T;
    float *x;          /* [T, K] */
    float *wd;         /* [N, K]: the F8_ROWS weight dequantized */
    struct tensor w;   /* on the device */
};

static struct case_ make_case(struct backend *b, int N, int K, int T, uint64_t *rng)
{
    struct case_ c = {b, N, K, T, malloc(sizeof(float) * T * K), malloc(sizeof(float) * N * K), {0}};
    size_t rb = dtype_row_bytes(DTYPE_F8_ROWS, K);
    unsigned char *rows = malloc(rb * N);
    float *wf = malloc(sizeof(float) * N * K);
    fill_uniform(wf, (size_t)N * K, -0.5f, 0.5f, rng);
    for (int k = 0; k < K; k++) wf[3 * K + k] *= 40.0f; /* rows of very different scales */
    for (int n = 0; n < N; n++) {
        quantize_row_f8_rows(wf + (size_t)n * K, rows + n * rb, K);
        dequantize_row(DTYPE_F8_ROWS, rows + n * rb, c.wd + (size_t)n * K, K);
    }
    fill_uniform(c.x, (size_t)T * K, -2, 2, rng);
    for (int k = 0; k < K; k++) c.x[K + k] *= 1e-3f; /* and token rows */
    struct tensor host = {.dtype = DTYPE_F8_ROWS, .rows = N, .cols = K, .data = rows};
    b->ops->upload_weight(b, &host, &c.w, WEIGHT_MATMUL);
    free(rows), free(wf);
    return c;
}

/* The reference y [T, N] and sum |products|, with x's rows first through
 * e4m3 (xq) or not. */
static void reference(const struct case_ *c, bool xq, float *ref, float *mag)
{
    float *xr = malloc(sizeof(float) * c->K);
    unsigned char *q = malloc(dtype_row_bytes(DTYPE_F8_ROWS, c->K));
    for (int t = 0; t < c->T; t++) {
        memcpy(xr, c->x + (size_t)t * c->K, sizeof(float) * c->K);
        if (xq) quantize_row_f8_rows(xr, q, c->K), dequantize_row(DTYPE_F8_ROWS, q, xr, c->K);
        for (int n = 0; n < c->N; n++) {
            double s = 0, a = 0;
            for (int k = 0; k < c->K; k++) {
                double p = (double)xr[k] * c->wd[(size_t)n * c->K + k];
                s += p, a += fabs(p);
            }
            ref[t * c->N + n] = (float)s, mag[t * c->N + n] = (float)a;
        }
    }
    free(xr), free(q);
}

/* y = x W^T on the backend, eagerly or recorded and replayed */
static float *run_matmul(struct case_ *c, bool graph)
{
    const struct backend_ops *o = c->b->ops;
    float *x = o->alloc(c->b, sizeof(float) * c->T * c->K), *y = o->alloc(c->b, sizeof(float) * c->T * c->N);
    float *got = malloc(sizeof(float) * c->T * c->N);
    o->to_device(c->b, x, c->x, sizeof(float) * c->T * c->K);
    if (graph) {
        o->matmul(c->b, y, x, &c->w, c->T); /* eagerly first: sizes the buffers, as the engine does */
        memset(got, 0, sizeof(float) * c->T * c->N);
        o->to_device(c->b, y, got, sizeof(float) * c->T * c->N); /* so that only the replay can fill y */
        o->graph_begin(c->b);
        o->matmul(c->b, y, x, &c->w, c->T);
        void *g = o->graph_end(c->b);
        cr_assert(o->graph_launch(c->b, g));
        o->graph_free(c->b, g);
    } else {
        o->matmul(c->b, y, x, &c->w, c->T);
    }
    o->to_host(c->b, got, y, sizeof(float) * c->T * c->N);
    o->free(c->b, x), o->free(c->b, y);
    return got;
}

static void free_case(struct case_ *c)
{
    c->b->ops->free(c->b, (void *)c->w.data);
    free(c->x), free(c->wd);
}

Test(backend_cuda_fp8, gemm_on_cublaslt_with_token_and_channel_scales)
{
    struct backend *b = backend_cuda_create(0, DTYPE_BF16, DTYPE_BF16, 0.9, false);
    cr_assert(b, "%s", err_msg());
    uint64_t rng = 23;
    static const int shapes[][3] = {{48, 64, 9}, {32, 160, 24}, {16, 32, 40}};
    for (int s = 0; s < 3; s++)
        for (int graph = 0; graph < 2; graph++) {
            struct case_ c = make_case(b, shapes[s][0], shapes[s][1], shapes[s][2], &rng);
            float *ref = malloc(sizeof(float) * c.T * c.N), *mag = malloc(sizeof(float) * c.T * c.N);
            reference(&c, true, ref, mag);
            long before = cu(b)->fp8_gemms;
            float *got = run_matmul(&c, graph);
            char label[80];
            snprintf(label, sizeof(label), "N=%d K=%d T=%d%s", c.N, c.K, c.T, graph ? " (graph)" : "");
            cr_expect_gt(cu(b)->fp8_gemms, before, "%s: the GEMM did not run on cuBLASLt", label);
            cr_expect(qmatmul_close(got, ref, mag, c.T, c.N, c.N, 0, 1e-5f, label), "%s", label);
            free(got), free(ref), free(mag);
            free_case(&c);
        }
    b->ops->destroy(b);
}

Test(backend_cuda_fp8, shapes_cublaslt_cannot_take_go_through_bf16)
{
    struct backend *b = backend_cuda_create(0, DTYPE_BF16, DTYPE_BF16, 0.9, false);
    cr_assert(b, "%s", err_msg());
    uint64_t rng = 29;
    struct case_ c = make_case(b, 40, 64, 12, &rng);
    float *ref = malloc(sizeof(float) * c.T * c.N), *mag = malloc(sizeof(float) * c.T * c.N);
    reference(&c, false, ref, mag);
    float *got = run_matmul(&c, false);
    cr_expect_eq(cu(b)->fp8_gemms, 0);
    cr_expect(qmatmul_close(got, ref, mag, c.T, c.N, c.N, 0, 1e-2f, "N=40 (bf16)"));
    cr_assert(cu(b)->lt && !cu(b)->fp8_refused, "a shape cuBLASLt cannot take leaves the path on for others");
    free(got), free(ref), free(mag);
    free_case(&c);
    b->ops->destroy(b);
}
