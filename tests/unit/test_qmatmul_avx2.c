/* test_qmatmul_avx2.c: the AVX2 quantized matmul (avx2_quant.c), for CPUs
 * without AVX-512 VNNI: qact_quantize_avx2 byte for byte against the
 * reference, matmul_q_avx2 against matmul_q_ref on odd shapes of every block
 * type, and TESSERA_CPU=avx2's dispatch. Helpers as in test_qmatmul.c. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/kernels.h"
#include "../../kernels/quant.h"
#include "test_util.h"

static const enum dtype QTYPES[] = {DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_K, DTYPE_Q6_K};

static void require_avx2(void)
{
    if (!kcpu_have_avx2()) cr_skip_test("this CPU has no AVX2: only the references run here");
}

/* Rows with all-zero groups, huge and tiny (subnormal) values, exact ties,
 * and activations at +-127 d exactly (the int8 extremes). */
static void fill_special(float *x, int T, int ldx, uint64_t *rng)
{
    static const float specials[] = {0.0f, -0.0f, 3.0e38f, -3.0e38f, 1.0e30f, 1.0e-38f, 1.0e-40f,
                                     -1.0e-45f, 0.5f, -2.5f, 127.0f, FLT_MIN};
    fill_qacts(x, T, ldx, rng);
    for (int t = 0; t < T; t++) {
        float *xt = x + (size_t)t * ldx;
        int mode = t % 5;
        for (int k = 0; k < ldx; k++) {
            if (mode == 0 && k < 300) xt[k] = 0.0f;                                 /* zero groups */
            if (mode == 1 && k % 7 == 0) xt[k] = specials[rng_next(rng) % 12];
            if (mode == 2) xt[k] = (float)((int)(rng_next(rng) % 255) - 127) * 0.5f; /* ties */
            if (mode == 3 && k % 32 < 16) xt[k] *= 1.0e-39f;
            if (mode == 4) xt[k] = (rng_next(rng) & 1) ? 127.0f : -127.0f;
        }
    }
}

Test(qmatmul_avx2, qact_quantize_is_bytewise_the_reference)
{
    require_avx2();
    static const int Ks[] = {256, 512, 2048, 5632 / 256 * 256};
    uint64_t rng = 21;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++)
        for (size_t b = 0; b < sizeof(Ks) / sizeof(*Ks); b++) {
            enum dtype wt = QTYPES[a];
            int K = Ks[b], T = 11, ldx = K + 13;
            size_t rb = qact_row_bytes(wt, K);
            float *x = malloc(sizeof(float) * T * ldx);
            char *q0 = malloc(rb * T), *q1 = malloc(rb * T);
            fill_special(x, T, ldx, &rng);
            memset(q0, 0xab, rb * T);
            memset(q1, 0xab, rb * T);
            qact_quantize_ref(q0, x, ldx, wt, K, 1, T);
            qact_quantize_avx2(q1, x, ldx, wt, K, 1, T);
            cr_assert(memcmp(q0, q1, rb * T) == 0, "%s K=%d: bytes differ", dtype_name(wt), K);
            for (size_t i = 0; i < rb; i++) cr_assert(((unsigned char *)q1)[i] == 0xab, "row 0 written");
            free(x), free(q0), free(q1);
        }
}

/* sum |w a| per (t, n), the scale of float rounding errors, from the decoded
 * weights (dequantize_row) and the activations q * d. */
static void magnitude(const void *w, enum dtype wt, const char *xq, int T, int K, int N, float *mag)
{
    int G = qact_group(wt);
    size_t rb = qact_row_bytes(wt, K), wrow = dtype_row_bytes(wt, K);
    float *wf = malloc(sizeof(float) * K);
    for (int n = 0; n < N; n++) {
        dequantize_row(wt, (const char *)w + wrow * n, wf, K);
        for (int t = 0; t < T; t++) {
            const char *row = xq + rb * t;
            const float *d = (const float *)(row + K);
            double m = 0;
            for (int k = 0; k < K; k++) m += fabs((double)wf[k] * ((const int8_t *)row)[k] * d[k / G]);
            mag[(size_t)t * N + n] = (float)m;
        }
    }
    free(wf);
}

/* |a - b| <= rel * mag + tiny everywhere; prints the first miss. */
static bool close_to_mag(const float *a, const float *b, const float *mag, size_t n, float rel, const char *label)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= rel * mag[i] + 1e-30f)) {
            fprintf(stderr, "%s: [%zu] %.9g vs %.9g (mag %g)\n", label, i, a[i], b[i], mag[i]);
            return false;
        }
    return true;
}

/* matmul_q_avx2 against matmul_q_ref on rows [n0, N) (split at mid as two
 * threads would), then accumulating into what is there. */
static void check_avx2(enum dtype wt, int T, int K, int N, int n0, uint64_t *rng)
{
    size_t nb = (size_t)N * K / dtype_block(wt), rb = qact_row_bytes(wt, K), n = (size_t)T * N;
    void *w = malloc(nb * dtype_block_bytes(wt));
    float *x = malloc(sizeof(float) * T * K);
    char *xq = malloc(rb * T);
    fill_qblocks(w, wt, nb, rng);
    fill_qacts(x, T, K, rng);
    qact_quantize_ref(xq, x, K, wt, K, 0, T);
    float *y0 = malloc(4 * n), *y1 = malloc(4 * n), *mag = malloc(4 * n);
    magnitude(w, wt, xq, T, K, N, mag);
    for (size_t i = 0; i < n; i++) y0[i] = y1[i] = (float)i;
    int mid = n0 + (N - n0) / 2;
    matmul_q_ref(y0, N, xq, w, wt, T, K, n0, N, false);
    matmul_q_avx2(y1, N, xq, w, wt, T, K, n0, mid, false);
    matmul_q_avx2(y1, N, xq, w, wt, T, K, mid, N, false);
    char label[96];
    snprintf(label, sizeof(label), "matmul_q_avx2 %s T=%d K=%d N=%d n0=%d", dtype_name(wt), T, K, N, n0);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < n0; j++) cr_assert(y1[(size_t)t * N + j] == (float)((size_t)t * N + j), "%s: wrote row", label);
    cr_assert(close_to_mag(y1, y0, mag, n, 1e-5f, label), "%s", label);
    matmul_q_ref(y0, N, xq, w, wt, T, K, n0, N, true);
    matmul_q_avx2(y1, N, xq, w, wt, T, K, n0, N, true);
    for (size_t i = 0; i < n; i++) mag[i] *= 2;
    cr_assert(close_to_mag(y1, y0, mag, n, 1e-5f, label), "%s, accumulating", label);
    free(w), free(x), free(xq), free(y0), free(y1), free(mag);
}

Test(qmatmul_avx2, matches_reference)
{
    require_avx2();
    static const int Ts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};
    static const int Ns[] = {1, 5, 13};
    uint64_t rng = 22;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++) {
        int B = dtype_block(QTYPES[a]);
        int Ks[] = {B, 3 * B, 2048};
        for (size_t i = 0; i < sizeof(Ts) / sizeof(*Ts); i++)
            for (int k = 0; k < 3; k++)
                for (size_t j = 0; j < sizeof(Ns) / sizeof(*Ns); j++)
                    check_avx2(QTYPES[a], Ts[i], Ks[k], Ns[j], Ns[j] > 1 ? 1 + (int)(j % 2) : 0, &rng);
    }
}

/* Saturation's worst cases: Q8_0's -128 and 127 weights against activations
 * at +-127, every bit set in the K-quants' quants and scales. */
Test(qmatmul_avx2, extreme_quants)
{
    require_avx2();
    uint64_t rng = 23;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++) {
        enum dtype wt = QTYPES[a];
        int T = 3, K = 512, N = 6;
        size_t nb = (size_t)N * K / dtype_block(wt), bb = dtype_block_bytes(wt), rb = qact_row_bytes(wt, K);
        unsigned char *w = malloc(nb * bb);
        fill_qblocks(w, wt, nb, &rng);
        for (size_t b = 0; b < nb; b++) {
            unsigned char *blk = w + b * bb;
            unsigned char v = b % 3 == 0 ? 0x80 : b % 3 == 1 ? 0x7f : 0xff;
            switch (wt) {
            case DTYPE_Q8_0: memset(blk + 2, v, 32); break;
            case DTYPE_Q4_0: memset(blk + 2, 0xff * (b % 2), 16); break;
            case DTYPE_Q4_K: memset(blk + 4, 0xff, 140); break;
            case DTYPE_Q6_K: memset(blk, 0xff, 192), memset(blk + 192, b % 2 ? 0x80 : 0x7f, 16); break;
            default: break;
            }
        }
        float *x = malloc(sizeof(float) * T * K);
        for (int i = 0; i < T * K; i++) x[i] = (i / 3) % 2 ? 127.0f : -127.0f;
        char *xq = malloc(rb * T);
        qact_quantize_ref(xq, x, K, wt, K, 0, T);
        size_t n = (size_t)T * N;
        float *y0 = malloc(4 * n), *y1 = malloc(4 * n), *mag = malloc(4 * n);
        magnitude(w, wt, xq, T, K, N, mag);
        matmul_q_ref(y0, N, xq, w, wt, T, K, 0, N, false);
        matmul_q_avx2(y1, N, xq, w, wt, T, K, 0, N, false);
        cr_assert(close_to_mag(y1, y0, mag, n, 1e-5f, dtype_name(wt)), "%s", dtype_name(wt));
        matmul_q_avx2(y1, N, xq, w, wt, 1, K, 0, N, false);
        cr_assert(close_to_mag(y1, y0, mag, (size_t)N, 1e-5f, dtype_name(wt)), "%s, one token", dtype_name(wt));
        free(w), free(x), free(xq), free(y0), free(y1), free(mag);
    }
}

/* Capped at AVX2 (as TESSERA_CPU=avx2 or a CPU without AVX-512 VNNI), the
 * dispatched paths are these. */
Test(qmatmul_avx2, dispatch_at_avx2)
{
    require_avx2();
    uint64_t rng = 24;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++) {
        enum dtype wt = QTYPES[a];
        int T = 5, K = 512, N = 9;
        size_t nb = (size_t)N * K / dtype_block(wt), rb = qact_row_bytes(wt, K), n = (size_t)T * N;
        void *w = malloc(nb * dtype_block_bytes(wt));
        fill_qblocks(w, wt, nb, &rng);
        float *x = malloc(sizeof(float) * T * K);
        fill_qacts(x, T, K, &rng);
        char *q0 = malloc(rb * T), *q1 = malloc(rb * T);
        float *y0 = malloc(4 * n), *y1 = malloc(4 * n);
        kcpu_cap(KCPU_AVX2);
        qact_quantize(q1, x, K, wt, K, 0, T);
        qact_quantize_avx2(q0, x, K, wt, K, 0, T);
        cr_assert(memcmp(q0, q1, rb * T) == 0);
        matmul_q(y1, N, q0, w, wt, T, K, 0, N, false);
        matmul_q_avx2(y0, N, q0, w, wt, T, K, 0, N, false);
        cr_assert(memcmp(y0, y1, 4 * n) == 0, "capped at AVX2: the AVX2 path");
        cr_assert(matmul_q_row_align() % 4 == 0);
        kcpu_cap(KCPU_AMX);
        free(w), free(x), free(q0), free(q1), free(y0), free(y1);
    }
}
