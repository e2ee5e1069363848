/* test_qpack_k.c: packed Q4_K and Q6_K weights (kernels.h, "Packed quantized
 * weights"): matmul_qp on qpack's copy against matmul_q_ref on the original
 * blocks, over row ranges split as the backend splits them (multiples of 16,
 * the last ending at N), overwriting and accumulating into y with ldy > N;
 * and packing in parts against packing at once. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/kernels.h"
#include "../../kernels/quant.h"
#include "test_util.h"

static const enum dtype KTYPES[] = {DTYPE_Q4_K, DTYPE_Q6_K};

static void require_packed(enum dtype wt)
{
    if (!qpack_available(wt)) cr_skip_test("%s is not packed on this CPU", dtype_name(wt));
}

/* mag[t, n]: the sum over elements of |each float term of the reference's
 * block sums| (Q4_K: |d sc q a| + |dmin m a|, Q6_K: |d sc (q - 32) a|),
 * times da: the scale of float rounding errors, cancellation included. */
static void magnitudes(float *mag, const void *w, enum dtype wt, const char *xq, int T, int K, int N)
{
    size_t rb = qact_row_bytes(wt, K), wrow = dtype_row_bytes(wt, K);
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++) {
            const int8_t *a = (const int8_t *)(xq + rb * t);
            const float *da = (const float *)(xq + rb * t + K);
            double m = 0;
            for (int k = 0; k < K; k++) {
                int s = k / 256, e = k % 256;
                double term;
                if (wt == DTYPE_Q4_K) {
                    const struct blk_q4_k *b = (const struct blk_q4_k *)((const char *)w + wrow * n) + s;
                    int sc, mn, j = e / 32;
                    q4k_scale_min(b->scales, j, &sc, &mn);
                    int q = (b->qs[32 * (j / 2) + e % 32] >> (4 * (j % 2))) & 15;
                    term = fabs(f16_to_f32(b->d) * sc * q) + fabs(f16_to_f32(b->dmin) * mn);
                } else {
                    const struct blk_q6_k *b = (const struct blk_q6_k *)((const char *)w + wrow * n) + s;
                    int h = e / 128, kk = e % 128, l = kk % 32, c = kk / 32;
                    int lo = (b->ql[64 * h + l + 32 * (c & 1)] >> (4 * (c >> 1))) & 15;
                    int hi = (b->qh[32 * h + l] >> (2 * c)) & 3;
                    term = fabs(f16_to_f32(b->d) * b->scales[e / 16] * ((lo | hi << 4) - 32));
                }
                m += term * fabs((double)a[k]) * da[s];
            }
            mag[(size_t)t * N + n] = (float)m;
        }
}

/* Rows [n0, N) in tasks of `chunk` groups (the last ends at N), into y of
 * row stride ldy > N, then accumulating into it; against matmul_q_ref. The
 * sums are exact integers in both, so only float rounding differs: within
 * 1e-5 of the magnitude (about 20 float roundings of 2^-24 at K = 5632). */
static void check_case(enum dtype wt, int T, int K, int N, int n0, int chunk, uint64_t *rng)
{
    int ldy = N + 5, groups = (N + QPACK_ROWS - 1) / QPACK_ROWS;
    size_t nb = (size_t)N * K / 256, rb = qact_row_bytes(wt, K), ny = (size_t)T * ldy;
    void *w = malloc(nb * dtype_block_bytes(wt));
    void *wp = aligned_alloc(64, (size_t)groups * qpack_group_bytes(wt, K));
    float *x = malloc(sizeof(float) * T * K), *mag = malloc(sizeof(float) * T * N);
    float *y0 = malloc(sizeof(float) * ny), *y1 = malloc(sizeof(float) * ny);
    char *xq = aligned_alloc(64, rb * T);
    fill_qblocks(w, wt, nb, rng);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k += 32) {
            float s = rng_next(rng) % 16 == 0 ? 0.0f : ldexpf(1.0f, (int)(rng_next(rng) % 12) - 6);
            fill_uniform(x + (size_t)t * K + k, 32, -s, s, rng);
        }
    qact_quantize_ref(xq, x, K, wt, K, 0, T);
    qpack(wp, w, wt, N, K, 0, groups);
    magnitudes(mag, w, wt, xq, T, K, N);
    char label[128];
    snprintf(label, sizeof(label), "%s T=%d K=%d N=%d n0=%d chunk=%d", dtype_name(wt), T, K, N, n0, chunk);
    for (int acc = 0; acc < 2; acc++) {
        if (!acc)
            for (size_t i = 0; i < ny; i++) y0[i] = y1[i] = (float)i;
        matmul_q_ref(y0, ldy, xq, w, wt, T, K, n0, N, acc);
        for (int a = n0; a < N; a += chunk * QPACK_ROWS) {
            int b = a + chunk * QPACK_ROWS < N ? a + chunk * QPACK_ROWS : N;
            matmul_qp(y1, ldy, xq, wp, wt, T, K, a, b, acc);
        }
        if (acc)
            for (size_t i = 0; i < (size_t)T * N; i++) mag[i] *= 2;
        cr_assert(qmatmul_close(y1, y0, mag, T, N, ldy, n0, 1e-5f, label), "%s%s", label, acc ? ", accumulating" : "");
    }
    free(w), free(wp), free(x), free(mag), free(y0), free(y1), free(xq);
}

Test(qpack_k, matmul_qp_matches_reference)
{
    static const int Ns[] = {1, 15, 16, 17, 40, 100};
    static const int Ks[] = {256, 512, 2048, 5632};
    static const int Ts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 33, 64};
    uint64_t rng = 31;
    for (size_t a = 0; a < sizeof(KTYPES) / sizeof(*KTYPES); a++) {
        require_packed(KTYPES[a]);
        for (size_t i = 0; i < sizeof(Ns) / sizeof(*Ns); i++)
            for (size_t k = 0; k < sizeof(Ks) / sizeof(*Ks); k++)
                for (size_t t = 0; t < sizeof(Ts) / sizeof(*Ts); t++) {
                    int N = Ns[i], chunk = 1 + (int)(t % 3);
                    /* the big shapes at a few token counts (the reference is slow) */
                    if (Ks[k] * N > 2048 * 40 && Ts[t] > 3 && Ts[t] != 17 && Ts[t] != 64) continue;
                    /* a task that starts past row 0 leaves the rows before it alone */
                    int n0 = N > 16 && t % 2 ? 16 : 0;
                    check_case(KTYPES[a], Ts[t], Ks[k], N, n0, chunk, &rng);
                }
    }
}

Test(qpack_k, packing_in_parts_is_packing_at_once)
{
    static const int Ns[] = {1, 17, 100};
    uint64_t rng = 32;
    for (size_t a = 0; a < sizeof(KTYPES) / sizeof(*KTYPES); a++) {
        enum dtype wt = KTYPES[a];
        require_packed(wt);
        for (size_t i = 0; i < sizeof(Ns) / sizeof(*Ns); i++) {
            int N = Ns[i], K = 768, groups = (N + QPACK_ROWS - 1) / QPACK_ROWS;
            size_t nb = (size_t)N * K / 256, bytes = (size_t)groups * qpack_group_bytes(wt, K);
            cr_assert(qpack_group_bytes(wt, K) >= (size_t)QPACK_ROWS * dtype_row_bytes(wt, K));
            cr_assert(qpack_group_bytes(wt, K) % 64 == 0);
            void *w = malloc(nb * dtype_block_bytes(wt));
            unsigned char *p0 = malloc(bytes), *p1 = malloc(bytes);
            fill_qblocks(w, wt, nb, &rng);
            memset(p0, 0x5a, bytes);
            memset(p1, 0xa5, bytes);
            qpack(p0, w, wt, N, K, 0, groups);
            int mid = groups / 2;
            qpack(p1, w, wt, N, K, mid, groups);
            qpack(p1, w, wt, N, K, 0, mid);
            cr_assert(memcmp(p0, p1, bytes) == 0, "%s N=%d: parts differ", dtype_name(wt), N);
            free(w), free(p0), free(p1);
        }
    }
}
