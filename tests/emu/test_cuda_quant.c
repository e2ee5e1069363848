/* test_cuda_quant.c: the quantized-weight kernels (kernels/cuda/quant.cu)
 * against the CPU reference dequantization (kernels/quant.c), each type on
 * odd shapes, random blocks (test_util's fill_qblocks: some with d = 0;
 * fp8's F8_ROWS quantized from random rows, one of them zeros).
 *   bf16 dequantization and the embedding gather: bit for bit (the same
 *     values, rounded to bf16 round-to-nearest-even, or kept in fp32).
 *   GEMV: the dot products of x with the reference's dequantized rows in
 *     fp64, to 1e-5 of sum |w x| (fp32 sums in another order).
 * Emulated under `make test`; natively with `make test-cuda`. */
#include <criterion/criterion.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cuda/kernels.h"
#include "../../kernels/quant.h"
#include "../unit/test_util.h"
#include "cuda_test.h"

static const enum dtype QTYPES[] = {DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_K, DTYPE_Q6_K, DTYPE_F8_ROWS};
#define N_QTYPES 5

/* A random quantized matrix [rows, K] and its reference dequantization. */
struct qmat {
    enum dtype dt;
    int rows, K;
    size_t row_bytes;
    void *blocks;
    float *ref;
};

static struct qmat qmat_make(enum dtype dt, int rows, int K, uint64_t *rng)
{
    struct qmat m = {dt, rows, K, dtype_row_bytes(dt, K), NULL, NULL};
    m.blocks = malloc(m.row_bytes * rows);
    if (dt == DTYPE_F8_ROWS) { /* --quantization fp8's rows: quantized from random floats, one row of zeros */
        float *x = malloc(sizeof(float) * K);
        for (int r = 0; r < rows; r++) {
            fill_uniform(x, K, -2, 2, rng);
            if (r == 1) memset(x, 0, sizeof(float) * K);
            quantize_row_f8_rows(x, (char *)m.blocks + r * m.row_bytes, K);
        }
        free(x);
    } else {
        fill_qblocks(m.blocks, dt, (size_t)rows * K / dtype_block(dt), rng);
    }
    m.ref = malloc(sizeof(float) * rows * K);
    for (int r = 0; r < rows; r++)
        dequantize_row(dt, (const char *)m.blocks + r * m.row_bytes, m.ref + (size_t)r * K, K);
    return m;
}

static void qmat_free(struct qmat *m)
{
    free(m->blocks);
    free(m->ref);
}

/* K: a super-block and a half would not be whole; 3 of 256 and 5 of 32 are */
static int k_of(enum dtype dt, int i) { return dtype_block(dt) == 256 ? 256 * (i + 1) : 32 * (2 * i + 1); }

Test(cuda_quant, dequant_to_bf16_bit_exact)
{
    uint64_t rng = 11;
    for (int d = 0; d < N_QTYPES; d++)
        for (int i = 0; i < 3; i++) {
            struct qmat m = qmat_make(QTYPES[d], 7, k_of(QTYPES[d], i), &rng);
            size_t n = (size_t)m.rows * m.K;
            void *dw = dev_copy(m.blocks, m.row_bytes * m.rows), *dout = dev_alloc(n * 2);
            kc_dequant_bf16(0, dout, dw, m.dt, m.rows, m.K);
            uint16_t *got = host_copy(dout, n * 2), *want = malloc(n * 2);
            for (size_t j = 0; j < n; j++) dtype_set(want, DTYPE_BF16, j, m.ref[j]);
            size_t bad = 0;
            while (bad < n && got[bad] == want[bad]) bad++;
            cr_expect_eq(bad, n, "%s K=%d: value %zu is bf16 %04x, the reference rounds to %04x",
                         dtype_name(m.dt), m.K, bad, bad < n ? got[bad] : 0, bad < n ? want[bad] : 0);
            free(got), free(want);
            cudaFree(dw), cudaFree(dout);
            qmat_free(&m);
        }
}

Test(cuda_quant, embedding_gather_bit_exact)
{
    uint64_t rng = 12;
    const int32_t ids[] = {4, 0, 8, 4, 1};
    int T = 5;
    int32_t *d_ids = dev_copy(ids, sizeof(ids));
    for (int d = 0; d < N_QTYPES; d++) {
        struct qmat m = qmat_make(QTYPES[d], 9, k_of(QTYPES[d], 2), &rng);
        void *dw = dev_copy(m.blocks, m.row_bytes * m.rows);
        float *dout = dev_alloc(sizeof(float) * T * m.K);
        kc_qembed(0, dout, dw, m.dt, d_ids, T, m.K);
        float *got = host_copy(dout, sizeof(float) * T * m.K);
        for (int t = 0; t < T; t++)
            cr_expect(!memcmp(got + (size_t)t * m.K, m.ref + (size_t)ids[t] * m.K, sizeof(float) * m.K),
                      "%s: token %d (row %d) differs", dtype_name(m.dt), t, ids[t]);
        free(got);
        cudaFree(dw), cudaFree(dout);
        qmat_free(&m);
    }
    cudaFree(d_ids);
}

Test(cuda_quant, gemv_one_to_eight_tokens)
{
    uint64_t rng = 13;
    static const int Ns[] = {1, 6, 37};
    for (int d = 0; d < N_QTYPES; d++)
        for (int ni = 0; ni < 3; ni++) {
            int N = Ns[ni];
            struct qmat m = qmat_make(QTYPES[d], N, k_of(QTYPES[d], ni), &rng);
            int K = m.K;
            float *x = malloc(sizeof(float) * KC_QGEMV_MAX_T * K);
            fill_uniform(x, (size_t)KC_QGEMV_MAX_T * K, -1, 1, &rng);
            void *dw = dev_copy(m.blocks, m.row_bytes * N);
            float *dx = dev_copy(x, sizeof(float) * KC_QGEMV_MAX_T * K),
                  *dy = dev_alloc(sizeof(float) * KC_QGEMV_MAX_T * N);
            for (int T = 1; T <= KC_QGEMV_MAX_T; T += (T < 3 ? 1 : 5)) {
                kc_qgemv(0, dy, dx, dw, m.dt, N, K, T);
                float *got = host_copy(dy, sizeof(float) * T * N), *ref = malloc(sizeof(float) * T * N),
                      *mag = malloc(sizeof(float) * T * N);
                for (int t = 0; t < T; t++)
                    for (int n = 0; n < N; n++) {
                        double s = 0, a = 0;
                        for (int k = 0; k < K; k++) {
                            double p = (double)x[(size_t)t * K + k] * m.ref[(size_t)n * K + k];
                            s += p, a += fabs(p);
                        }
                        ref[t * N + n] = (float)s, mag[t * N + n] = (float)a;
                    }
                char label[64];
                snprintf(label, sizeof(label), "%s N=%d K=%d T=%d", dtype_name(m.dt), N, K, T);
                cr_expect(qmatmul_close(got, ref, mag, T, N, N, 0, 1e-5f, label), "%s", label);
                free(got), free(ref), free(mag);
            }
            free(x);
            cudaFree(dw), cudaFree(dx), cudaFree(dy);
            qmat_free(&m);
        }
}

/* An FP8 GEMM's activations: each token row's scale and e4m3 bytes as
 * quantize_row_f8_rows makes them, bit for bit (rows of ordinary values,
 * of zeros, of one huge value among tiny ones, and of values at the
 * saturation edge). */
Test(cuda_quant, fp8_activation_rows_bit_exact)
{
    enum { T = 5, K = 96 };
    uint64_t rng = 17;
    float x[T * K];
    fill_uniform(x, T * K, -3, 3, &rng);
    memset(x + K, 0, sizeof(float) * K);
    fill_uniform(x + 2 * K, K, -1e-6f, 1e-6f, &rng);
    x[2 * K + 5] = 3e4f;
    for (int i = 0; i < K; i++) x[3 * K + i] = (i % 2 ? -1 : 1) * (440.0f + (float)i / 8);
    float *dx = dev_copy(x, sizeof(x)), *ds = dev_alloc(sizeof(float) * T);
    uint8_t *dq = dev_alloc(T * K);
    kc_quant_rows_f8(0, dq, ds, dx, T, K);
    uint8_t *q = host_copy(dq, T * K), want[F8_ROWS_HEAD + K];
    float *sc = host_copy(ds, sizeof(float) * T);
    for (int t = 0; t < T; t++) {
        quantize_row_f8_rows(x + t * K, want, K);
        float d;
        memcpy(&d, want, 4);
        cr_expect_eq(sc[t], d, "row %d: scale %g, the reference's %g", t, sc[t], d);
        for (int i = 0; i < K; i++)
            cr_expect_eq(q[t * K + i], want[F8_ROWS_HEAD + i], "row %d [%d]: %02x, the reference's %02x", t, i,
                         q[t * K + i], want[F8_ROWS_HEAD + i]);
    }
    free(q), free(sc);
    cudaFree(dx), cudaFree(ds), cudaFree(dq);
}
